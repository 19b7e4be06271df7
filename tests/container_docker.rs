//! `executor = "container"` with docker (`ORCH_CONTAINER_ENGINE=docker`), end to end through a
//! real `orch up` and a real dockerd, in the images `.ci/docker images` loads from podman's
//! (`localhost/orch-test-base`, `localhost/orch-test-postgres`): a plan with a PostgreSQL
//! `[[service]]` whose agent (sandbox on, network confined) writes to the database and whose
//! check reads it back completes, while its agent can neither write outside its worktree nor
//! reach a loopback port it is not allowed; a killed `orch up` leaves no container of its plan
//! or service after the next start, and the task then completes; an unknown engine, or none on
//! `PATH`, is refused before anything is made; a dev container's image is built by docker, and
//! a `FROM` docker lacks is refused before any build. Skipped with a message when docker or the images
//! are missing, unless `ORCH_REQUIRE_DOCKER` is set.

use crate::support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::podman::{Engine, POSTGRES, docker_available, of_plan_in};
use support::{Repo, toml_array};

/// The service of these tests: the image's PostgreSQL on a fixed port (so that the probe's
/// allowed endpoint, on a port the kernel picks, may be any), ready when `pg_isready` says so.
const DB: &str = r#"
[[service]]
name = "db"
image = "localhost/orch-test-postgres:latest"
port = 5433
env = { PGPORT = "${ORCH_SERVICE_PORT}" }
ready = ["pg_isready", "-h", "127.0.0.1", "-p", "5433", "-U", "postgres", "-q"]
ready_timeout = "60s"
"#;

/// `psql` of the plan's own database (its address as orch gives it) running `sql`.
fn psql(sql: &str) -> String {
    format!(
        "psql -X -v ON_ERROR_STOP=1 -h \"$ORCH_SERVICE_DB_HOST\" -p \"$ORCH_SERVICE_DB_PORT\" -U postgres -tAc \"{sql}\""
    )
}

/// `orch ARGS` in `repo`, with docker.
fn orch_docker(repo: &Repo, args: &[&str]) -> std::process::Command {
    let mut c = repo.orch(args);
    c.env("ORCH_CONTAINER_ENGINE", "docker");
    c
}

#[test]
fn a_plan_with_a_service_passes_its_check_in_a_docker_container_and_its_agent_stays_confined() {
    use support::net_probe::{ALLOWED, DENIED, parse_results, servers};
    if !docker_available() || !support::landlock() {
        return;
    }
    let s = servers();
    let repo = Repo::builder().timeout(Duration::from_secs(300)).build();
    let root = repo.root().to_path_buf();
    let other = repo.worktree("dkb");
    let home = repo.home().to_path_buf();
    // Paths of this machine's the agent tries: the main checkout, the other plan's worktree,
    // orch's state, HOME.
    let targets = [
        root.join("README.md"),
        root.join("main-new.txt"),
        root.join(".git/config"),
        other.join("b.txt"),
        other.join("new.txt"),
        root.join(".orch/state/new.txt"),
        home.join("new.txt"),
    ];
    let mut script = support::podman::write_tries(&targets, "writes.txt");
    script.push_str(&format!(
        "python3 probe.py {} {} && {} && echo ok > work.txt",
        s.allowed.addr.port(),
        s.other.addr.port(),
        psql("create table t (v text); insert into t values ('from-agent')")
    ));
    repo.write("docs/plans/dka.md", &support::one_task("A", "Work"));
    repo.write("docs/plans/dkb.md", &support::one_task("B", "Write b"));
    repo.write("README.md", "readme\n");
    repo.write(
        "probe.py",
        &std::fs::read_to_string(support::fixtures().join("net_probe.py")).expect("probe"),
    );
    std::fs::create_dir_all(&home).expect("home");
    let a = toml_array(&["sh", "-c", &script]);
    let b = toml_array(&["sh", "-c", "echo b > b.txt"]);
    let check = toml_array(&[
        "sh",
        "-c",
        &format!("test \"$({})\" = from-agent", psql("select v from t")),
    ]);
    let allowed = s.allowed.addr.port();
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nretries = 0\nsandbox = \"on\"\n\n\
             [agents.a]\ncommand = {a}\nreport = \"exit\"\nnetwork_allow = [\"127.0.0.1:{allowed}\"]\n\n\
             [agents.b]\ncommand = {b}\nreport = \"exit\"\nsandbox = \"off\"\n\n\
             [[plan]]\nname = \"dka\"\nfile = \"docs/plans/dka.md\"\nagent = \"a\"\nexecutor = \"container\"\nimage = \"{POSTGRES}\"\nservices = [\"db\"]\ncheck = {check}\n\n\
             [[plan]]\nname = \"dkb\"\nfile = \"docs/plans/dkb.md\"\nagent = \"b\"\n{DB}"
        ),
    );
    repo.commit_all("plans");
    repo.up(&["dkb"]);
    let before = support::disk_snapshot(&root);
    let home_before = support::disk_snapshot(&home);
    let started = Instant::now();
    let (code, out, err) = repo.run_cmd(
        orch_docker(&repo, &["up", "--json", "dka"])
            .env("ORCH_SANDBOX", "on")
            // Docker's, not podman's: a podman orch would run is not there.
            .env("ORCH_PODMAN", "/nonexistent/podman"),
    );
    eprintln!(
        "docker: orch up of 1 confined task beside its service: {:.2?}",
        started.elapsed()
    );
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        err.contains("plan `dka` runs in docker containers (docker ")
            && err.contains("ORCH_CONTAINER_ENGINE=docker)"),
        "the engine is not said:\n{err}"
    );
    assert_eq!(repo.task("dka", "1.1")["status"], "completed");
    assert_eq!(repo.git(&["show", "plan/dka:work.txt"]), "ok");
    let log = String::from_utf8_lossy(&repo.read(".orch/logs/dka/1.1.log")).into_owned();
    assert!(
        log.contains("service `db` of plan `dka` ready after"),
        "{log}"
    );
    let writes = repo.git(&["show", "plan/dka:writes.txt"]);
    support::podman::assert_all_denied(&writes, &targets);
    let after = support::disk_snapshot(&root);
    assert_eq!(
        support::podman::outside_orch(&before, "dka"),
        support::podman::outside_orch(&after, "dka")
    );
    assert_eq!(home_before, support::disk_snapshot(&home));
    // The network: its allowed endpoint, nothing else.
    let got = parse_results(&repo.git(&["show", "plan/dka:results.txt"]));
    for name in ALLOWED {
        let (ok, _, detail) = got.get(name).unwrap_or_else(|| panic!("{name}: {got:?}"));
        assert!(ok, "{name} failed ({detail})\n{log}");
    }
    for name in DENIED {
        let (ok, secs, detail) = got.get(name).unwrap_or_else(|| panic!("{name}: {got:?}"));
        assert!(!ok, "{name} got through ({detail})\n{log}");
        assert!(*secs < 3.5, "{name} took {secs}s ({detail})");
    }
    assert_eq!(s.other.hits(), Vec::<String>::new());
    assert_eq!(s.other_address.hits(), Vec::<String>::new());
    // Nothing of the run is left in docker: neither the plan's container nor its service's.
    assert_eq!(of_plan_in(Engine::Docker, "dka"), Vec::new());
}

#[test]
fn a_killed_orch_up_leaves_no_docker_container_after_the_next_start() {
    if !docker_available() {
        return;
    }
    let script = format!(
        "if [ -n \"$ORCH_TEST_GO\" ]; then echo done > work.txt; exit 0; fi; \
         {} > /dev/null && touch \"$ORCH_REPORT_DIR/../started-before\"; sleep 600",
        psql("select 1")
    );
    let repo = support::podman::repo(
        &[("dkkill", "services = [\"db\"]")],
        &support::one_task("P", "Work"),
        &toml_array(&["sh", "-c", &script]),
        "network = \"none\"",
        POSTGRES,
        "",
        DB,
    );
    let mark = repo
        .root()
        .join(".orch/state/.reports/dkkill/started-before");
    let mut child = orch_docker(&repo, &["up", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    support::process::wait_for("the attempt to start beside its service", || mark.exists());
    let old = of_plan_in(Engine::Docker, "dkkill");
    assert_eq!(
        old.len(),
        2,
        "the plan's container and its service: {old:?}"
    );
    assert_eq!(
        old.iter().filter(|(_, _, s)| s == "db").count(),
        1,
        "{old:?}"
    );
    child.kill().expect("kill -9");
    let _ = child.wait();
    // docker does not know orch is gone: both are there.
    assert_eq!(of_plan_in(Engine::Docker, "dkkill").len(), 2);
    let (code, out, err) =
        repo.run_cmd(orch_docker(&repo, &["up", "--json"]).env("ORCH_TEST_GO", "1"));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(repo.task("dkkill", "1.1")["status"], "completed");
    assert_eq!(repo.git(&["show", "plan/dkkill:work.txt"]), "done");
    // The dead run's containers were swept at the start, the new run's removed at its end.
    assert_eq!(of_plan_in(Engine::Docker, "dkkill"), Vec::new());
}

#[test]
fn an_unknown_engine_or_none_on_path_is_refused_before_anything_is_made() {
    // No docker needed: refused before any container is asked for.
    let repo = support::podman::repo(
        &[("dkeng", "")],
        &support::one_task("P", "Work"),
        &toml_array(&["sh", "-c", "echo x > work.txt"]),
        "network = \"none\"",
        support::podman::IMAGE,
        "",
        "",
    );
    let branches = repo.branches();
    let worktrees = repo.worktrees();
    for value in ["nope", "Docker", "podman docker", "--rm"] {
        let (code, out, err) = repo.run_cmd(
            repo.orch(&["up", "--json"])
                .env("ORCH_CONTAINER_ENGINE", value),
        );
        assert_eq!(code, 2, "{value}: {out}\n{err}");
        assert!(
            err.contains("ORCH_CONTAINER_ENGINE") && err.contains("`podman` or `docker`"),
            "{value}: {err}"
        );
        assert_eq!(repo.branches(), branches, "{value}");
        assert_eq!(repo.worktrees(), worktrees, "{value}");
        assert!(
            !repo.root().join(".orch/worktrees/dkeng").exists(),
            "{value}"
        );
    }
    // Neither engine on PATH (only git and a shell): refused naming both, exit 1.
    let bin = repo.outside("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    for tool in ["git", "sh"] {
        let found = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| std::path::Path::new(d).join(tool))
            .find(|p| p.exists())
            .expect(tool);
        std::os::unix::fs::symlink(found, bin.join(tool)).expect("link");
    }
    let (code, out, err) = repo.run_cmd(
        repo.orch(&["up", "--json"])
            .env("PATH", &bin)
            .env_remove("ORCH_PODMAN")
            .env_remove("ORCH_CONTAINER_ENGINE"),
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("neither `podman` nor `docker`"), "{err}");
    assert_eq!(repo.branches(), branches);
    assert_eq!(repo.worktrees(), worktrees);
}

#[test]
fn a_dev_container_is_built_by_docker_and_a_from_docker_lacks_is_refused() {
    if !docker_available() {
        return;
    }
    let n = support::podman::nonce();
    let plain = "{ \"build\": { \"dockerfile\": \"Dockerfile\", \"args\": { \"G\": \"hi\" } } }";
    let built = format!(
        "# {n}\nFROM {} AS first\nFROM first\nARG G\nRUN echo \"$G-{n}\" > /opt/greeting\n",
        support::podman::IMAGE
    );
    let repo = support::podman::built_repo(
        &["dkbuild"],
        plain,
        &built,
        &[],
        "cat /opt/greeting > work.txt",
    );
    let started = Instant::now();
    let (code, out, err) = repo.run_cmd(&mut orch_docker(&repo, &["up"]));
    eprintln!("docker: build and orch up: {:.2?}", started.elapsed());
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(repo.task("dkbuild", "1.1")["status"], "completed");
    assert_eq!(
        repo.git(&["show", "plan/dkbuild:work.txt"]),
        format!("hi-{n}")
    );
    // The image docker built (named in the console's note) goes: each run of this test builds
    // a new one.
    let all = format!("{out}{err}");
    let tag = all
        .split("built the dev container's image `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("no build said:\n{all}"))
        .to_string();
    let removed = std::process::Command::new("docker")
        .args(["rmi", &tag])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(removed, "docker has no image {tag}");
    // A `FROM` docker would ask a registry for: refused before any build, naming the image.
    for (what, dockerfile, image) in [
        (
            "a registry's",
            format!("# {n}\nFROM docker.io/library/alpine:3\n"),
            "docker.io/library/alpine:3",
        ),
        (
            "through an ARG default",
            format!("# {n}\nARG BASE=docker.io/library/debian:12\nFROM ${{BASE}}\n"),
            "docker.io/library/debian:12",
        ),
        (
            "a variable left",
            format!("# {n}\nFROM $NOWHERE\n"),
            "$NOWHERE",
        ),
        (
            "a later stage",
            format!(
                "# {n}\nFROM {} AS a\nFROM example.org/x:1\n",
                support::podman::IMAGE
            ),
            "example.org/x:1",
        ),
    ] {
        let repo = support::podman::built_repo(
            &["dkbad"],
            "{ \"build\": { \"dockerfile\": \"Dockerfile\" } }",
            &dockerfile,
            &[],
            "echo x > work.txt",
        );
        let started = Instant::now();
        let (code, out, err) = repo.run_cmd(&mut orch_docker(&repo, &["up"]));
        let all = format!("{out}{err}");
        assert_eq!(code, 2, "{what}: {all}");
        assert!(
            all.contains(&format!(
                "its `FROM {image}` names an image docker does not have"
            )),
            "{what}: {all}"
        );
        assert!(
            all.contains(".devcontainer/devcontainer.json"),
            "{what}: {all}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{what}: {:.2?}",
            started.elapsed()
        );
        assert!(!repo.worktree("dkbad").exists(), "{what}");
        assert!(!repo.branch_exists("plan/dkbad"), "{what}");
    }
}
