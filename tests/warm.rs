//! Warm starts and concurrent plan worktrees, end to end through the
//! real binary: `warm` directories copied into a new plan worktree before its `setup`, the
//! validation of `warm` entries (nothing changed on disk), and a plan whose first agent starts
//! while another plan is still being prepared.

use crate::support;

use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Repo, agent_at as agent, disk_snapshot, named, read_lines, wait_within};

const TIMEOUT: Duration = Duration::from_secs(120);

fn new_repo() -> Repo {
    Repo::builder().canonical().timeout(TIMEOUT).build()
}

#[test]
fn a_new_plan_worktree_has_the_warm_directories_before_its_setup() {
    let repo = new_repo();
    let journal = repo.outside("journal");
    let setup_log = repo.outside("setup-log");
    repo.write(
        "docs/plans/p.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 Build on the warm target\n",
    );
    repo.write(".gitignore", "target/\nnode_modules/\n");
    repo.manifest(
        &agent("ok.sh", &[&journal]),
        "",
        &format!(
            "setup = {}\nwarm = [\"target\", \"node_modules\"]",
            support::agent(
                "warm_setup.sh",
                &[
                    "target/debug/build.txt",
                    "built in main",
                    support::utf8(&setup_log)
                ]
            )
        ),
        &[("p", "")],
    );
    repo.commit_all("plans");
    // The main tree's build output (ignored); `node_modules` does not exist yet.
    repo.write("target/debug/build.txt", "built in main");
    repo.write("target/debug/deps/libx.rlib", "rlib bytes");
    assert_eq!(repo.git(&["status", "--porcelain"]), "");

    let ev = repo.up_events(&[], 0);
    let wt = repo.worktree("p");
    assert_eq!(
        std::fs::read_to_string(wt.join("target/debug/build.txt")).expect("warm target"),
        "built in main"
    );
    assert_eq!(
        std::fs::read_to_string(wt.join("target/debug/deps/libx.rlib")).expect("warm target"),
        "rlib bytes"
    );
    // Setup saw it (it checks the file and fails without it).
    assert_eq!(
        std::fs::read_to_string(&setup_log).expect("setup ran"),
        "warm ok p\n"
    );
    let setup = named(&ev, "setup_finished");
    assert_eq!(setup.len(), 1, "{ev:?}");
    assert_eq!(setup[0]["ok"], true);
    // The missing one is skipped with a note.
    let notes: Vec<&str> = named(&ev, "note")
        .iter()
        .filter_map(|n| n["message"].as_str())
        .collect();
    assert!(
        notes
            .iter()
            .any(|m| m.contains("`node_modules`") && m.contains("does not exist")),
        "{notes:?}"
    );
    assert!(!wt.join("node_modules").exists());
    assert_eq!(repo.statuses("p"), [("1.1".into(), "completed".into())]);
    // Never committed: the plan branch has the task's file, not the warm directory.
    let files = repo.tree_files("plan/p");
    assert!(files.iter().all(|f| !f.starts_with("target/")), "{files:?}");
    assert!(files.contains(&"p.txt".to_string()), "{files:?}");
}

/// Each bad `warm` entry: the error names `plans.toml:line:col`, `orch check` and `orch up` exit
/// 2, and nothing on disk changed.
#[test]
fn a_bad_warm_entry_is_an_error_at_its_place_and_changes_nothing() {
    // (entry line, the TOML value, what the message says)
    let cases: [(&str, &str, &str); 4] = [
        ("tracked", "[\"src\"]", "is tracked by git"),
        ("tracked file", "[\"README.md\"]", "is tracked by git"),
        ("dot-dot", "[\"../elsewhere\"]", "`..`"),
        ("absolute", "[\"/tmp/target\"]", "absolute path"),
    ];
    for (name, value, says) in cases {
        let repo = new_repo();
        repo.write(
            "docs/plans/p.md",
            "# P\n\n## Phase 1: Work\n- [ ] 1.1 Something\n",
        );
        repo.write("src/lib.rs", "pub fn f() {}\n");
        repo.write(".gitignore", "target/\n");
        // `warm` at line 3, column 8 (after `warm = `) of plans.toml.
        repo.write(
            "plans.toml",
            &format!(
                "[defaults]\nagent = \"a\"\nwarm = {value}\n\n[agents.a]\ncommand = [\"true\"]\n\n\
                 [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n"
            ),
        );
        repo.commit_all("plans");
        let before = disk_snapshot(repo.root());
        for command in ["check", "up"] {
            let (code, out, err) = repo.run(&[command]);
            let text = format!("{out}{err}");
            assert_eq!(code, 2, "{name}: orch {command}: {text}");
            assert!(
                text.contains("plans.toml:3:9") && text.contains(says),
                "{name}: orch {command}: {text}"
            );
        }
        assert_eq!(
            disk_snapshot(repo.root()),
            before,
            "{name}: something changed"
        );
        assert!(!repo.branch_exists("plan/p"), "{name}");
    }
}

/// Waits for an event matching `pred` until `deadline`, keeping every line seen.
fn wait_event(
    lines: &Receiver<Value>,
    seen: &mut Vec<Value>,
    deadline: Instant,
    pred: impl Fn(&Value) -> bool,
) {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(v) => {
                let hit = pred(&v);
                seen.push(v);
                if hit {
                    return;
                }
            }
            Err(_) => panic!("no matching event; seen: {seen:?}"),
        }
    }
}

/// Plan `slow`'s setup waits for a file the test writes only once plan `fast`'s first agent
/// started (with a deadline): were plans prepared one after another, or the run to wait for
/// every plan's preparation, the run would fail.
#[test]
fn a_plan_starts_its_first_agent_while_another_is_still_being_prepared() {
    let repo = new_repo();
    let journal = repo.outside("journal");
    let gate = repo.outside("gate");
    for p in ["fast", "slow", "third"] {
        repo.write(
            &format!("docs/plans/{p}.md"),
            &format!("# {p}\n\n## Phase 1: Work\n- [ ] 1.1 Work of {p}\n"),
        );
    }
    let wait_setup = support::agent("wait_file_setup.sh", &[support::utf8(&gate), "60"]);
    repo.manifest(
        &agent("ok.sh", &[&journal]),
        "",
        "max_agents = 4",
        &[
            ("slow", &format!("setup = {wait_setup}")),
            ("fast", ""),
            ("third", ""),
        ],
    );
    repo.commit_all("plans");

    let mut child = repo.orch(&["up", "--json"]).spawn().expect("orch up");
    let lines = read_lines(&mut child);
    let mut seen = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    wait_event(&lines, &mut seen, deadline, |v| {
        v["event"] == "task_started" && v["plan"] == "fast"
    });
    // `slow` is still in its setup: not started.
    assert!(
        !seen
            .iter()
            .any(|v| v["event"] == "task_started" && v["plan"] == "slow"),
        "{seen:?}"
    );
    std::fs::write(&gate, "go").expect("gate");
    let out = wait_within(child, TIMEOUT, "orch up");
    seen.extend(lines.try_iter());
    assert_eq!(out.status.code(), Some(0), "{seen:?}");
    let started: Vec<&str> = named(&seen, "task_started")
        .iter()
        .filter_map(|v| v["plan"].as_str())
        .collect();
    assert_eq!(started.len(), 3, "{seen:?}");
    // `slow` started after `fast` (and the gate).
    let at = |p: &str| started.iter().position(|s| *s == p);
    assert!(at("fast") < at("slow"), "{seen:?}");
    // Every plan's worktree was announced before its own first agent.
    for p in ["fast", "slow", "third"] {
        let pos = |name: &str| {
            seen.iter()
                .position(|v| v["event"] == name && v["plan"] == p)
                .unwrap_or_else(|| panic!("no {name} of {p}: {seen:?}"))
        };
        assert!(pos("plan_started") < pos("task_started"), "{p}: {seen:?}");
        assert_eq!(repo.statuses(p), [("1.1".into(), "completed".into())]);
    }
}

/// With `parallel_tasks` > 1 each task runs in a task worktree of its own: each gets the warm
/// directories too, before the setup that runs there.
#[test]
fn task_worktrees_get_the_warm_directories_too() {
    let repo = new_repo();
    let journal = repo.outside("journal");
    let setup_log = repo.outside("setup-log");
    repo.write(
        "docs/plans/p.md",
        "# P\n\n## Phase 1: Work\n- [ ] 1.1 One\n- [ ] 1.2 Two\n",
    );
    repo.write(".gitignore", "target/\n");
    repo.manifest(
        &format!(
            "[\"sh\", {:?}, {:?}, \"own\"]",
            support::fixtures()
                .join("par_agent.sh")
                .display()
                .to_string(),
            journal.display().to_string()
        ),
        "",
        &format!(
            "parallel_tasks = 2\nsetup = {}\nwarm = [\"target\"]",
            support::agent(
                "warm_setup.sh",
                &["target/out.txt", "warm", support::utf8(&setup_log)]
            )
        ),
        &[("p", "")],
    );
    repo.commit_all("plans");
    repo.write("target/out.txt", "warm");

    repo.up_events(&[], 0);
    assert_eq!(
        repo.statuses("p"),
        [
            ("1.1".into(), "completed".into()),
            ("1.2".into(), "completed".into())
        ]
    );
    let log = std::fs::read_to_string(&setup_log).expect("setup ran");
    // The plan's worktree and each task's: every setup found the warm file.
    assert!(log.lines().count() >= 3, "{log}");
    assert!(log.lines().all(|l| l == "warm ok p"), "{log}");
    let files = repo.tree_files("plan/p");
    assert!(files.iter().all(|f| !f.starts_with("target/")), "{files:?}");
}
