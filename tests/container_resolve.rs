//! The resolving agent of a plan whose agents run in a container runs in a container of the
//! plan's image, never on this machine (issue 64): `orch resolve PLAN` and `orch merge`'s
//! resolver, through real podman in the local image `localhost/orch-test-base` (skipped with a
//! message when podman or the image is missing, unless `ORCH_REQUIRE_PODMAN` is set).
//!
//! Two container plans write the same file; the scripted resolver (sh, in the manifest) keeps
//! both sides' lines and probes where it runs: `/run/.containerenv` (the image's own file) and a
//! file of this machine that no container mounts (outside the repository). With the sandbox on,
//! a resolver on this machine is Landlock-confined, which lets it read everything: on the code
//! before, the probe there said `host` and printed the file.

use crate::support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use support::podman::{IMAGE, available};
use support::{Repo, toml_array};

/// A file of this machine outside every mount, and what it holds.
fn secret(repo: &Repo) -> (PathBuf, String) {
    let path = repo.outside("host-secret.txt");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let text = format!("host-secret-{}-{nanos}", std::process::id());
    std::fs::create_dir_all(path.parent().expect("parent")).expect("home");
    std::fs::write(&path, &text).expect("secret");
    (path, text)
}

/// The resolver: every file with git's conflict markers keeps both sides' lines (the markers
/// dropped); then a line saying where it runs, one with what it read of `secret`.
fn resolver(secret: &Path) -> String {
    format!(
        "for f in $(grep -rlE '^(<<<<<<<|>>>>>>>)' --exclude-dir=.git .); do\n\
         grep -vE '^(<<<<<<<|=======|>>>>>>>|[|][|][|][|][|][|][|])' \"$f\" > \"$f.r\" && mv \"$f.r\" \"$f\"\n\
         done\n\
         if test -e /run/.containerenv; then echo PROBE-where=container; else echo PROBE-where=host; fi\n\
         if s=$(cat {} 2>/dev/null); then echo \"PROBE-secret=$s\"; else echo PROBE-secret=unreadable; fi\n",
        secret.display()
    )
}

/// The sandbox values to try: off, and on where the kernel has Landlock.
fn sandboxes() -> Vec<&'static str> {
    let mut out = vec!["off"];
    if support::landlock() {
        out.push("on");
    }
    out
}

/// Plans `a` and `b` in containers of [`IMAGE`], finished by `orch up` (each wrote
/// `shared.txt`: they conflict), `resolve` the scripted resolver (`fixer`, its command
/// `fixer`); returns the repository and the secret's text.
fn finished(sandbox: &str, fixer: &[String]) -> (Repo, String) {
    let repo = Repo::builder()
        .identity_in_config()
        .timeout(Duration::from_secs(300))
        .build();
    let (path, text) = secret(&repo);
    let fixer = if fixer.is_empty() {
        toml_array(&["sh", "-c", &resolver(&path)])
    } else {
        toml_array(fixer)
    };
    let writer = toml_array(&["sh", "-c", "echo \"$ORCH_PLAN 1.1\" > shared.txt"]);
    let mut manifest = format!(
        "[defaults]\nagent = \"w\"\nretries = 0\nintegrate = \"off\"\nresolve = \"fixer\"\n\
         executor = \"container\"\nimage = \"{IMAGE}\"\n\n\
         [agents.w]\ncommand = {writer}\nreport = \"exit\"\nnetwork = \"none\"\n\n\
         [agents.fixer]\ncommand = {fixer}\nnetwork = \"none\"\n"
    );
    for name in ["a", "b"] {
        repo.write(
            &format!("docs/plans/{name}.md"),
            &support::one_task("P", "Write shared.txt"),
        );
        manifest.push_str(&format!(
            "\n[[plan]]\nname = \"{name}\"\nfile = \"docs/plans/{name}.md\"\n"
        ));
    }
    repo.write("plans.toml", &manifest);
    repo.commit_all("plans");
    let (code, out, err) = repo.run_cmd(repo.orch(&["up"]).env("ORCH_SANDBOX", sandbox));
    assert_eq!(code, 0, "orch up (sandbox {sandbox}):\n{out}\n{err}");
    (repo, text)
}

/// Asserts that the resolver's log shows the probe ran in a container and did not read the
/// secret.
fn ran_in_a_container(repo: &Repo, secret: &str, what: &str) {
    let log = String::from_utf8_lossy(&repo.read(".orch/logs/b/resolve.log")).into_owned();
    assert!(log.contains("PROBE-where=container"), "{what}: {log}");
    assert!(!log.contains("PROBE-where=host"), "{what}: {log}");
    assert!(log.contains("PROBE-secret=unreadable"), "{what}: {log}");
    assert!(
        !log.contains(secret),
        "{what}: the host's file was read: {log}"
    );
    assert!(
        log.contains(&format!(
            "runs in a container of the plan's image `{IMAGE}`"
        )),
        "{what}: {log}"
    );
}

/// `text` holds both plans' lines and no conflict marker.
fn both_sides(text: &str, what: &str) {
    assert!(
        text.contains("a 1.1") && text.contains("b 1.1"),
        "{what}: {text}"
    );
    assert!(
        !text.contains("<<<<<<<") && !text.contains(">>>>>>>") && !text.contains("======="),
        "{what}: {text}"
    );
}

/// No container orch made mounts the repository any more, and no resolution worktree is left.
fn nothing_left(repo: &Repo, what: &str) {
    assert_eq!(
        support::podman::mounting(repo.root()),
        Vec::<String>::new(),
        "{what}"
    );
    let left: Vec<String> = repo
        .worktrees()
        .into_iter()
        .filter(|w| w.contains(".resolve-"))
        .collect();
    assert!(left.is_empty(), "{what}: {left:?}");
}

#[test]
fn orch_resolve_runs_a_container_plans_resolver_in_a_container_of_its_image() {
    if !available() {
        return;
    }
    for sandbox in sandboxes() {
        let what = format!("sandbox {sandbox}");
        let (repo, text) = finished(sandbox, &[]);
        let (code, out, err) =
            repo.run_cmd(repo.orch(&["merge", "a"]).env("ORCH_SANDBOX", sandbox));
        assert_eq!(code, 0, "{what}: {out}\n{err}");
        let (main, tip) = (repo.rev("main"), repo.rev("plan/b"));
        let started = Instant::now();
        let (code, out, err) =
            repo.run_cmd(repo.orch(&["resolve", "b"]).env("ORCH_SANDBOX", sandbox));
        eprintln!("{what}: orch resolve {:.2?}", started.elapsed());
        assert_eq!(code, 0, "{what}: {out}\n{err}");
        // The resolution is on the plan's branch: a merge of its tip and the target's, with
        // both sides' lines; the target did not move.
        assert_ne!(repo.rev("plan/b"), tip, "{what}");
        assert_eq!(repo.rev("plan/b^1"), tip, "{what}");
        assert_eq!(repo.rev("plan/b^2"), main, "{what}");
        assert_eq!(repo.rev("main"), main, "{what}");
        both_sides(&repo.git(&["show", "plan/b:shared.txt"]), &what);
        ran_in_a_container(&repo, &text, &what);
        nothing_left(&repo, &what);
    }
}

#[test]
fn orch_merge_hands_a_container_plans_conflict_to_its_resolver_in_a_container() {
    if !available() {
        return;
    }
    for sandbox in sandboxes() {
        let what = format!("sandbox {sandbox}");
        let (repo, text) = finished(sandbox, &[]);
        let main = repo.rev("main");
        let started = Instant::now();
        let (code, out, err) = repo.run_cmd(repo.orch(&["merge"]).env("ORCH_SANDBOX", sandbox));
        eprintln!("{what}: orch merge {:.2?}", started.elapsed());
        assert_eq!(code, 0, "{what}: {out}\n{err}");
        assert!(out.contains("resolved by agent `fixer`"), "{what}: {out}");
        // Both plans landed, the second through its resolution.
        assert_ne!(repo.rev("main"), main, "{what}");
        for p in ["a", "b"] {
            assert!(
                repo.git_ok(&["merge-base", "--is-ancestor", &format!("plan/{p}"), "main"]),
                "{what}: plan/{p} not in main"
            );
        }
        both_sides(&repo.git(&["show", "main:shared.txt"]), &what);
        ran_in_a_container(&repo, &text, &what);
        nothing_left(&repo, &what);
    }
}

#[test]
fn a_resolvers_client_that_neither_the_image_nor_this_machine_has_is_refused_naming_the_fix() {
    // `gemini` is a client orch knows (a script for `node` where it is installed); the test
    // image has none and neither has this machine's PATH: refused before anything runs, nothing moved.
    if !available() {
        return;
    }
    let fixer: Vec<String> = ["gemini", "-p", "{prompt}"].map(String::from).into();
    let (repo, _) = finished("off", &fixer);
    let (code, out, err) = repo.run(&["merge", "a"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let (main, tip) = (repo.rev("main"), repo.rev("plan/b"));
    let (code, out, err) = repo.run_cmd(repo.orch(&["resolve", "b"]).env("ORCH_SANDBOX", "off"));
    assert_ne!(code, 0, "{out}\n{err}");
    let all = format!("{out}\n{err}");
    assert!(
        all.contains("neither its image") && all.contains("install `gemini` in the image"),
        "{all}"
    );
    assert_eq!(repo.rev("plan/b"), tip);
    assert_eq!(repo.rev("main"), main);
    nothing_left(&repo, "gemini");
}

/// Another image (`.ci/podman images` builds it too). No container of it is started here: the
/// resolution is refused before podman is asked.
const OTHER: &str = "localhost/orch-test-postgres:latest";

#[test]
fn a_resolution_against_a_group_candidate_of_two_images_is_refused_and_nothing_moves() {
    // Plans `a` and `b` of repository `api` land together; both write `shared.txt`, so `b`
    // conflicts with `a` in the group's candidate and is resolved against it (its worktree
    // would hold `a`'s work). Run in one image, then the manifest gives `b` another: the
    // resolver would run one plan's code in the other's image, so it does not run at all.
    if !available() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let make = || {
        Repo::builder()
            .under(dir.path())
            .canonical()
            .identity_in_config()
            .timeout(Duration::from_secs(300))
            .build()
    };
    let (home, api) = (make(), make());
    let (path, text) = secret(&home);
    let api_rel = format!(
        "../{}",
        api.root().file_name().expect("name").to_string_lossy()
    );
    let writer = toml_array(&["sh", "-c", "echo \"$ORCH_PLAN 1.1\" > shared.txt"]);
    let fixer = toml_array(&["sh", "-c", &resolver(&path)]);
    let mut toml = format!(
        "[defaults]\nagent = \"w\"\nretries = 0\nintegrate = \"off\"\nresolve = \"fixer\"\n\
         executor = \"container\"\nimage = \"{IMAGE}\"\n\n\
         [agents.w]\ncommand = {writer}\nreport = \"exit\"\nnetwork = \"none\"\n\n\
         [agents.fixer]\ncommand = {fixer}\nnetwork = \"none\"\n\n\
         [[repo]]\nname = \"api\"\npath = \"{api_rel}\"\n"
    );
    for (name, extra) in [("a", ""), ("b", "land_with = [\"a\"]\n")] {
        home.write(
            &format!("plans/{name}.md"),
            &support::one_task("P", "Write shared.txt"),
        );
        toml.push_str(&format!(
            "\n[[plan]]\nname = \"{name}\"\nfile = \"plans/{name}.md\"\nrepo = \"api\"\n{extra}"
        ));
    }
    home.write("plans.toml", &toml);
    home.commit_all("plans");
    let (code, out, err) = home.run(&["up"]);
    assert_eq!(code, 0, "orch up:\n{out}\n{err}");
    home.write(
        "plans.toml",
        &toml.replace(
            "repo = \"api\"\nland_with",
            &format!("repo = \"api\"\nimage = \"{OTHER}\"\nland_with"),
        ),
    );
    home.commit_all("b in another image");
    let before = (home.refs(), api.refs());
    for args in [&["resolve", "b"][..], &["merge"][..]] {
        let (code, out, err) = home.run(args);
        let all = format!("{out}\n{err}");
        assert_ne!(code, 0, "{args:?}: {all}");
        assert!(
            all.contains("different images")
                && all.contains(&format!("`a` in `{IMAGE}`"))
                && all.contains(&format!("`b` in `{OTHER}`")),
            "{args:?}: {all}"
        );
        // Nothing moved in either repository, and the resolver never ran.
        assert_eq!((home.refs(), api.refs()), before, "{args:?}: a ref changed");
        assert!(!all.contains("PROBE") && !all.contains(&text), "{all}");
        assert!(
            !api.root().join(".orch/logs/b/resolve.log").exists(),
            "{args:?}: the resolver ran"
        );
        nothing_left(&api, &format!("{args:?}"));
    }
}
