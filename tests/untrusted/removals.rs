//! What an agent in its plan's container (`executor = "container"`, real podman, the test
//! image) leaves for orch to remove, made so that a removal with limits gives up: a chain of
//! directories deeper than any limit, more entries than any count, a directory made `0000`, a
//! link to a directory of this machine, a FIFO. And the one directory of orch's state an agent
//! that keeps no client state has no business seeing: `<state>/.clients/<plan>/`.

use crate::support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use support::Repo;
use support::podman::{IMAGE, available};

/// A plan `p` of one task run by the POSIX sh `script` (`report = "exit"`) in a container of
/// the test image, `defaults` lines in `[defaults]`.
fn repo_of(script: &str, defaults: &str) -> Repo {
    support::podman::repo(
        &[("p", "")],
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Task 1\n",
        &support::toml_array(&["sh", "-c", script]),
        "network = \"none\"\n",
        IMAGE,
        defaults,
        "",
    )
}

/// The names in `dir` (none when it is not there).
fn names(dir: &Path) -> Vec<String> {
    let mut n: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    n.sort();
    n
}

/// Deep, wide, closed, linked and a FIFO in `d` (as the agent makes it, from this machine).
fn plant(d: &Path, outside: &Path) {
    let mut deep = d.join("deep");
    for i in 0..200 {
        deep.push(format!("{i}"));
    }
    std::fs::create_dir_all(&deep).expect("deep");
    std::fs::write(deep.join("f"), "x").expect("f");
    std::os::unix::fs::symlink(outside, deep.join("out")).expect("link");
    let many = d.join("many");
    std::fs::create_dir_all(&many).expect("many");
    for i in 0..150_000 {
        std::fs::File::create(many.join(format!("f{i}"))).expect("file");
    }
    std::fs::create_dir_all(d.join("closed/in")).expect("closed");
    std::fs::write(d.join("closed/in/f"), "x").expect("f");
    std::fs::set_permissions(d.join("closed"), std::fs::Permissions::from_mode(0o000))
        .expect("0000");
    std::os::unix::fs::symlink(outside, d.join("link")).expect("link");
    nix::unistd::mkfifo(&d.join("fifo"), nix::sys::stat::Mode::S_IRWXU).expect("fifo");
}

/// The agent's script: in its attempt's report directory, a 200-deep chain, 150000 empty files,
/// a directory made `0000` with a file in it, a link to `$ORCH_TEST_OUTSIDE` and a FIFO; then a
/// mark there, and it waits (until `orch up` is killed). Told `ORCH_TEST_GO`, it completes.
const FILL: &str = "if [ -n \"$ORCH_TEST_GO\" ]; then echo done > work.txt; exit 0; fi; \
    d=\"$ORCH_REPORT_DIR/junk\"; mkdir -p \"$d/many\"; \
    p=\"$d/deep\"; i=0; while [ $i -lt 200 ]; do p=\"$p/$i\"; i=$((i+1)); done; \
    mkdir -p \"$p\"; echo x > \"$p/f\"; ln -s \"$ORCH_TEST_OUTSIDE\" \"$p/out\"; \
    cd \"$d/many\" && i=0; while [ $i -lt 150000 ]; do : > f$i; i=$((i+1)); done; \
    mkdir -p \"$d/closed/in\"; echo x > \"$d/closed/in/f\"; chmod 000 \"$d/closed\"; \
    ln -s \"$ORCH_TEST_OUTSIDE\" \"$d/link\"; mkfifo \"$d/fifo\"; \
    touch \"$ORCH_REPORT_DIR/started-before\"; sleep 600";

/// Nothing left of the plan's report directory nor in orch's trash, and the outside directory
/// as it was.
fn all_gone(repo: &Repo, outside: &Path, when: &str) {
    let state = repo.root().join(".orch/state");
    let reports = state.join(".reports/p");
    assert!(
        names(&reports).is_empty(),
        "{when}: {:?} left in the report directory",
        names(&reports)
    );
    assert!(
        names(&state.join(".trash")).is_empty(),
        "{when}: {:?} left in the trash",
        names(&state.join(".trash"))
    );
    assert_eq!(names(outside), ["keep.txt"], "{when}");
    assert_eq!(
        std::fs::read_to_string(outside.join("keep.txt")).expect("keep"),
        "keep",
        "{when}"
    );
}

/// A container agent (sandbox off and on) leaves in its attempt's report directory what a
/// removal with limits gives up on ([`FILL`]: 200 deep, 150000 entries, a `0000` directory, a
/// link to outside, a FIFO), and `orch up` is killed (`kill -9`) under it. The next `orch up`
/// removes all of it (no live attempt holds it), and so does `orch clean` of the plan when the
/// same is planted again from this machine; nothing is left in orch's trash, nothing behind a
/// link is touched. Before, the removal gave up at 64 deep or 100000 entries and left it all
/// there, at every later start and clean.
#[test]
fn removals_a_tree_no_limit_holds_goes_at_the_next_start_and_at_clean() {
    if !available() {
        return;
    }
    for sandbox in ["off", "on"] {
        if sandbox == "on" && !support::landlock() {
            continue;
        }
        let repo = repo_of(FILL, &format!("sandbox = \"{sandbox}\""));
        let outside = repo.outside("host");
        std::fs::create_dir_all(&outside).expect("outside");
        std::fs::write(outside.join("keep.txt"), "keep").expect("keep");
        let reports = repo.root().join(".orch/state/.reports/p");
        let mut child = repo
            .orch(&["up", "--json"])
            .env("ORCH_TEST_OUTSIDE", &outside)
            .env_remove("ORCH_SANDBOX")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let attempts = || -> Vec<PathBuf> {
            std::fs::read_dir(&reports)
                .map(|d| {
                    d.flatten()
                        .map(|e| e.path())
                        .filter(|p| p.join("started-before").exists())
                        .collect()
                })
                .unwrap_or_default()
        };
        support::process::wait_for("the agent's junk", || !attempts().is_empty());
        child.kill().expect("kill -9");
        let _ = child.wait();
        assert!(
            attempts().iter().all(|a| a.join("junk/many").is_dir()),
            "{sandbox}: {:?}",
            names(&reports)
        );
        // The next start (its attempt told to complete).
        let (code, out, err) = repo.run_cmd(
            repo.orch(&["up", "--json"])
                .env("ORCH_TEST_GO", "1")
                .env_remove("ORCH_SANDBOX"),
        );
        assert_eq!(code, 0, "{sandbox}: {out}\n{err}");
        assert_eq!(repo.git(&["show", "plan/p:work.txt"]), "done", "{sandbox}");
        all_gone(&repo, &outside, &format!("{sandbox}: after the next start"));
        // The same again, and `orch clean` of the plan.
        plant(&reports.join("9.9.9"), &outside);
        plant(&reports.join("junk"), &outside);
        let (code, out, err) = repo.run(&["clean", "--force", "p"]);
        assert_eq!(code, 0, "{sandbox}: clean: {out}\n{err}");
        assert!(
            std::fs::symlink_metadata(&reports).is_err(),
            "{sandbox}: clean leaves {:?}",
            names(&reports)
        );
        all_gone(&repo, &outside, &format!("{sandbox}: after clean"));
    }
}

/// The agent's script: says in `work.txt` whether the plan's directory of private client
/// states (`<state>/.clients/p`, found from its report directory `<state>/.reports/p/<a>`)
/// is there in its container.
const LOOK: &str = "if [ -e \"$ORCH_REPORT_DIR/../../../.clients/p\" ] \
    || [ -e \"$ORCH_REPORT_DIR/../../../.clients\" ]; \
    then echo present > work.txt; else echo absent > work.txt; fi";

/// A plan whose agent is a plain `sh` script (no client orch keeps a state of), sandbox off and
/// on: its container has no `.clients` mount (the path is absent inside), and orch made no `.clients/p` for it. Before, `.clients/p` was made and
/// mounted read-write in every container plan. And `orch clean` of a plan removes its
/// `.clients/p` (what an agent left there: deep, closed, a link) and its kept sessions
/// (`.clients/.kept/p`), nothing behind a link followed; before, they were never removed.
#[test]
fn removals_a_plan_without_client_state_has_no_clients_mount_and_clean_removes_them() {
    if !available() {
        return;
    }
    for sandbox in ["off", "on"] {
        if sandbox == "on" && !support::landlock() {
            continue;
        }
        let repo = repo_of(LOOK, &format!("sandbox = \"{sandbox}\""));
        let (code, out, err) =
            repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
        assert_eq!(code, 0, "{sandbox}: {out}\n{err}");
        assert_eq!(
            repo.git(&["show", "plan/p:work.txt"]),
            "absent",
            "{sandbox}: the agent sees orch's `.clients`"
        );
        let clients = repo.root().join(".orch/state/.clients");
        assert!(
            std::fs::symlink_metadata(clients.join("p")).is_err(),
            "{sandbox}: `.clients/p` made for a plan with no client state"
        );
        // What an agent of a client with a state could have left, and a kept session.
        let outside = repo.outside("host");
        std::fs::create_dir_all(&outside).expect("outside");
        std::fs::write(outside.join("keep.txt"), "keep").expect("keep");
        let mut deep = clients.join("p/1.1-1");
        for i in 0..100 {
            deep.push(format!("{i}"));
        }
        std::fs::create_dir_all(&deep).expect("deep");
        std::os::unix::fs::symlink(&outside, deep.join("out")).expect("link");
        std::fs::create_dir_all(clients.join("p/1.1-2/c")).expect("closed");
        std::fs::set_permissions(
            clients.join("p/1.1-2"),
            std::fs::Permissions::from_mode(0o000),
        )
        .expect("0000");
        std::fs::create_dir_all(clients.join(".kept/p/1.1.session")).expect("kept");
        std::fs::write(clients.join(".kept/p/1.1.session/session.json"), "{}").expect("kept");
        let (code, out, err) = repo.run(&["clean", "--force", "p"]);
        assert_eq!(code, 0, "{sandbox}: clean: {out}\n{err}");
        assert!(
            std::fs::symlink_metadata(clients.join("p")).is_err(),
            "{sandbox}: {:?}",
            names(&clients.join("p"))
        );
        assert!(
            std::fs::symlink_metadata(clients.join(".kept/p")).is_err(),
            "{sandbox}: kept sessions stay"
        );
        assert_eq!(names(&outside), ["keep.txt"], "{sandbox}");
    }
}
