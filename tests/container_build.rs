//! A dev container built from its Dockerfile (`build` of `.devcontainer/devcontainer.json`),
//! through a real `orch up` and real podman, offline: the Dockerfile starts `FROM` the local
//! test image. The plan's agent runs in the built image (a file only it has, a build argument);
//! the image is built once (a second `orch up` uses it as it is: the same image, no build said);
//! a build that fails, or a Dockerfile or `devcontainer.json` that asks for more than the build
//! gives (a network, a host mount, a URL, a path out of the repository, a link), is refused
//! naming the file (exit 2) and changes nothing. A plan's `setup` runs in its container, with
//! its services up: one that reads a file only the image has passes. Skipped with a message without podman or the
//! image, unless `ORCH_REQUIRE_PODMAN` is set.

use crate::support;

use std::net::TcpListener;

use support::podman::{IMAGE, available, built_repo, nonce};
use support::toml_array;

/// The id of image `tag`, if podman has it.
fn image_id(tag: &str) -> Option<String> {
    let out = std::process::Command::new("podman")
        .args(["image", "inspect", "--format", "{{.Id}}", tag])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn a_dev_container_built_from_its_dockerfile_runs_the_plan_and_is_built_once() {
    if !available() {
        return;
    }
    let n = nonce();
    let dockerfile = format!(
        "# {n}\nFROM {IMAGE}\nARG GREETING\nCOPY hello.txt /opt/hello.txt\nCOPY . /opt/ctx\nRUN echo \"$GREETING\" > /opt/greeting\n"
    );
    // Its `features` and a lifecycle command are not done by orch, and said so; its
    // `.dockerignore` is the build's.
    let json = format!(
        "{{\n  // built here\n  \"build\": {{ \"dockerfile\": \"Dockerfile\", \"context\": \".\", \"args\": {{ \"GREETING\": \"hi {n}\" }} }},\n  \"features\": {{ \"ghcr.io/devcontainers/features/node:1\": {{}} }},\n  \"postCreateCommand\": \"npm ci\",\n}}\n"
    );
    let repo = built_repo(
        &["b1"],
        &json,
        &dockerfile,
        &[
            (".devcontainer/hello.txt", "only the image has me\n"),
            (".devcontainer/.dockerignore", "secret.txt\nbig/\n"),
            (".devcontainer/secret.txt", "not for the image\n"),
            (".devcontainer/big/data.bin", "not for the image either\n"),
        ],
        "cat /opt/hello.txt /opt/greeting > work.txt && ls -A /opt/ctx > ctx.txt",
    );
    let (code, out, err) = repo.run(&["up"]);
    let all = format!("{out}{err}");
    eprintln!("{all}");
    assert_eq!(code, 0, "{all}");
    assert_eq!(repo.task("b1", "1.1")["status"], "completed", "{all}");
    assert_eq!(
        repo.git(&["show", "plan/b1:work.txt"]),
        format!("only the image has me\nhi {n}")
    );
    let ctx = repo.git(&["show", "plan/b1:ctx.txt"]);
    assert!(ctx.lines().any(|l| l == "hello.txt"), "{ctx}");
    assert!(
        !ctx.lines().any(|l| l == "secret.txt" || l == "big"),
        "the .dockerignore'd files are in the image:\n{ctx}"
    );
    assert!(
        all.contains("asks for its `features` (`ghcr.io/devcontainers/features/node:1`) and its `postCreateCommand`, which orch does not do"),
        "{all}"
    );
    let tag = all
        .split("built the dev container's image `")
        .nth(1)
        .and_then(|r| r.split('`').next())
        .unwrap_or_else(|| panic!("the build is not said:\n{all}"))
        .to_string();
    assert!(tag.starts_with("localhost/orch-devcontainer:"), "{tag}");
    let id = image_id(&tag).expect("the built image");
    // Its label is the hash its tag starts with.
    let label = std::process::Command::new("podman")
        .args([
            "image",
            "inspect",
            "--format",
            "{{index .Labels \"dev.orch-cli.build\"}}",
            &tag,
        ])
        .output()
        .expect("podman");
    let label = String::from_utf8_lossy(&label.stdout).trim().to_string();
    assert!(
        label.starts_with(tag.rsplit(':').next().unwrap_or("?")),
        "{label} {tag}"
    );

    // A second run (a new plan) uses the image as it is: no build said, the same image.
    let text = std::fs::read_to_string(repo.root().join("plans.toml")).expect("manifest");
    repo.write("docs/plans/b2.md", &support::one_task("P", "Work"));
    repo.write(
        "plans.toml",
        &format!("{text}\n[[plan]]\nname = \"b2\"\nfile = \"docs/plans/b2.md\"\n"),
    );
    repo.commit_all("b2");
    let (code, out, err) = repo.run(&["up"]);
    let all = format!("{out}{err}");
    assert_eq!(code, 0, "{all}");
    assert_eq!(
        repo.git(&["show", "plan/b2:work.txt"]),
        format!("only the image has me\nhi {n}")
    );
    assert!(
        !all.contains("built the dev container's image"),
        "built again:\n{all}"
    );
    assert_eq!(image_id(&tag).as_deref(), Some(id.as_str()));
    let _ = std::process::Command::new("podman")
        .args(["rmi", "-f", &tag])
        .output();
}

/// This host's address on its default route (no packet is sent), or `None`.
fn host_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    Some(s.local_addr().ok()?.ip()).filter(|ip| !ip.is_loopback())
}

#[test]
fn a_build_that_fails_or_asks_for_more_is_refused_naming_the_file_and_changes_nothing() {
    if !available() {
        return;
    }
    let listener = TcpListener::bind("0.0.0.0:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let host = host_address().map_or("10.0.2.2".to_string(), |a| a.to_string());
    let n = nonce();
    let plain = "{ \"build\": { \"dockerfile\": \"Dockerfile\" } }";
    let from = format!("# {n}\nFROM {IMAGE}\n");
    let connect = |addr: &str| {
        format!(
            "RUN python3 -c \"import socket; socket.create_connection(('{addr}', {port}), 5); open('/reached', 'w')\"\n"
        )
    };
    // (what, devcontainer.json, Dockerfile, what the error says)
    let cases: Vec<(&str, String, String, &str)> = vec![
        (
            "fails",
            plain.into(),
            format!("{from}RUN echo boom-{n} && exit 3\n"),
            "`podman build` failed",
        ),
        (
            "host address",
            plain.into(),
            format!("{from}{}", connect(&host)),
            "`podman build` failed",
        ),
        (
            "host loopback",
            plain.into(),
            format!("{from}{}", connect("127.0.0.1")),
            "`podman build` failed",
        ),
        (
            "not local",
            plain.into(),
            format!("# {n}\nFROM docker.io/library/alpine:3\n"),
            "`podman build` failed",
        ),
        (
            "RUN --network",
            plain.into(),
            format!("{from}RUN --network=host true\n"),
            "its line 3 is refused",
        ),
        (
            "RUN --mount",
            plain.into(),
            format!("{from}RUN --mount=type=bind,source=/,target=/h \\\n  cat /h/etc/shadow\n"),
            "its line 3 is refused",
        ),
        (
            "ADD a URL",
            plain.into(),
            format!("{from}ADD http://{host}:{port}/x /x\n"),
            "its line 3 is refused",
        ),
        (
            "a link",
            "{ \"build\": { \"dockerfile\": \"Dockerfile\", \"context\": \"..\" } }".into(),
            format!("{from}COPY . /src\n"),
            "is a link",
        ),
        (
            "out of the repository",
            "{ \"build\": { \"dockerfile\": \"../../Dockerfile\" } }".into(),
            from.clone(),
            "leads out of the repository",
        ),
        (
            "uncommitted",
            "{ \"build\": { \"dockerfile\": \"Other\" } }".into(),
            from.clone(),
            "is not committed",
        ),
    ];
    for (what, json, dockerfile, want) in cases {
        let repo = built_repo(&["bad"], &json, &dockerfile, &[], "echo x > work.txt");
        if what == "a link" {
            std::os::unix::fs::symlink("/etc", repo.root().join("etc-link")).expect("link");
            repo.commit_all("a link");
        }
        let before = support::disk_snapshot(repo.root());
        let (code, out, err) = repo.run(&["up"]);
        let all = format!("{out}{err}");
        eprintln!("{what}: {}", all.trim());
        assert_eq!(code, 2, "{what}: exit {code}\n{all}");
        assert!(all.contains(want), "{what}: wanted {want:?} in\n{all}");
        assert!(
            all.contains(".devcontainer/devcontainer.json"),
            "{what}: the file is not named\n{all}"
        );
        if what == "fails" {
            assert!(
                all.contains(&format!("boom-{n}")),
                "{what}: the build's output is not shown\n{all}"
            );
        }
        assert!(!repo.worktree("bad").exists(), "{what}");
        assert!(!repo.branch_exists("plan/bad"), "{what}");
        let strip = |s: &std::collections::BTreeSet<(String, String)>| -> Vec<(String, String)> {
            s.iter()
                .filter(|(p, _)| !p.starts_with(".git/"))
                .cloned()
                .collect()
        };
        assert_eq!(
            strip(&before),
            strip(&support::disk_snapshot(repo.root())),
            "{what}"
        );
        assert!(
            listener.accept().is_err(),
            "{what}: the build reached this machine"
        );
    }
}

#[test]
fn a_plans_setup_runs_in_its_container_with_its_services_up() {
    if !available() {
        return;
    }
    // The image (built from the repository's Dockerfile) has a file this machine has not; the
    // setup reads it and asks the plan's service, and leaves what it saw in the worktree for
    // the agent. A setup that needs what the image lacks fails, and the plan's task never runs.
    let n = nonce();
    let dockerfile =
        format!("# {n}\nFROM {IMAGE}\nRUN echo only-in-the-image-{n} > /opt/orch-setup-probe\n");
    let json = "{ \"build\": { \"dockerfile\": \"Dockerfile\" } }";
    assert!(!std::path::Path::new("/opt/orch-setup-probe").exists());
    let mut tag = None;
    for ok in [true, false] {
        let plan = if ok { "setupok" } else { "setupbad" };
        let setup = if ok {
            "cat /opt/orch-setup-probe > .saw && \
             python3 -c \"import os, urllib.request as u; print(u.urlopen('http://%s:%s/' % (os.environ['ORCH_SERVICE_WEB_HOST'], os.environ['ORCH_SERVICE_WEB_PORT']), timeout=10).status)\" >> .saw && \
             test -e /run/.containerenv && echo \"port $ORCH_PORT\" >> .saw"
        } else {
            "test -e /opt/absent-from-the-image"
        };
        let repo = built_repo(
            &[plan],
            json,
            &dockerfile,
            &[],
            "cat .saw > work.txt && rm .saw",
        );
        let text = std::fs::read_to_string(repo.root().join("plans.toml")).expect("manifest");
        let text = text.replace(
            &format!("name = \"{plan}\"\n"),
            &format!(
                "name = \"{plan}\"\nsetup = {}\nservices = [\"web\"]\n",
                toml_array(&["sh", "-c", setup])
            ),
        );
        let service = format!(
            "\n[[service]]\nname = \"web\"\ncommand = {}\n",
            toml_array(&[
                "python3",
                "-m",
                "http.server",
                "${ORCH_SERVICE_PORT}",
                "--bind",
                "127.0.0.1"
            ])
        );
        repo.write("plans.toml", &format!("{text}{service}"));
        repo.commit_all("setup");
        let (code, out, err) = repo.run(&["up"]);
        let all = format!("{out}{err}");
        if tag.is_none() {
            tag = all
                .split("built the dev container's image `")
                .nth(1)
                .and_then(|r| r.split('`').next())
                .map(str::to_string);
        }
        let log = String::from_utf8_lossy(&repo.read(&format!(".orch/logs/{plan}/setup.log")))
            .into_owned();
        if ok {
            assert_eq!(code, 0, "{all}\n{log}");
            assert_eq!(repo.task(plan, "1.1")["status"], "completed", "{all}");
            let saw = repo.git(&["show", &format!("plan/{plan}:work.txt")]);
            let lines: Vec<&str> = saw.lines().collect();
            assert_eq!(
                lines.first().copied(),
                Some(format!("only-in-the-image-{n}").as_str()),
                "{saw}"
            );
            assert_eq!(lines.get(1).copied(), Some("200"), "{saw}\n{log}");
            assert_eq!(
                lines.get(2).copied(),
                Some(
                    format!(
                        "port {}",
                        crate::support::block_of(repo.root(), &format!(".orch/worktrees/{plan}"))
                    )
                    .as_str()
                ),
                "{saw}"
            );
            assert!(
                log.contains(&format!("service `web` of plan `{plan}` ready after")),
                "the setup did not wait for the service:\n{log}"
            );
        } else {
            assert_ne!(code, 0, "{all}");
            assert_ne!(repo.task(plan, "1.1")["status"], "completed", "{all}");
            assert!(
                all.contains(&format!("the setup command of plan `{plan}` failed in its container: the setup `sh -c test -e /opt/absent-from-the-image` failed (exit status 1)")),
                "{all}"
            );
            assert!(
                !repo.branch_exists(&format!("plan/{plan}"))
                    || !repo
                        .tree_files(&format!("plan/{plan}"))
                        .contains(&"work.txt".to_string())
            );
        }
        assert_eq!(support::podman::of_plan(plan), Vec::new(), "{plan}");
    }
    if let Some(tag) = tag {
        let _ = std::process::Command::new("podman")
            .args(["rmi", "-f", &tag])
            .output();
    }
}
