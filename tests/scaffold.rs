//! End-to-end tests of `orch init`, `orch demo`, `orch demo-agent`, `orch logs`, and the project's
//! own `plans.toml`: the real binary on real files in temp dirs.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use serde_json::Value;
use support::{code_out_err, file_snapshot as snapshot, orch_in, wait_within, write_file as write};

const TIMEOUT: Duration = Duration::from_secs(120);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A command with a clean environment: nothing from an outer `orch up` or git.
fn orch(dir: &Path, args: &[&str]) -> Command {
    orch_in(
        dir,
        args,
        &[
            "ORCH_PLAN",
            "ORCH_TASK",
            "ORCH_WORKTREE",
            "ORCH_STATUS_FILE",
            "ORCH_MANIFEST",
            "ORCH_BIN",
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
        ],
    )
}

fn output(mut c: Command) -> (i32, String, String) {
    code_out_err(&wait_within(
        c.spawn().expect("spawn orch"),
        TIMEOUT,
        "orch",
    ))
}

fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    output(orch(dir, args))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

// ---------------------------------------------------------------------------------------------
// orch init

const INIT_FILES: [&str; 4] = [
    "plans.toml",
    "orch/templates/task.md",
    "orch/templates/plan.md",
    "docs/plans/example.md",
];

#[test]
fn init_writes_a_valid_project_that_check_accepts() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let (code, out, err) = run(d, &["init"]);
    assert_eq!(code, 0, "{err}");
    for f in INIT_FILES {
        assert!(d.join(f).is_file(), "{f} missing");
        assert!(out.contains(&format!("wrote {f}")), "{out}");
    }
    assert!(
        out.contains("orch check") && out.contains("orch up"),
        "{out}"
    );
    // The templates are the built-in ones, byte for byte.
    for t in ["task.md", "plan.md"] {
        assert_eq!(
            read(&d.join("orch/templates").join(t)),
            read(&repo_root().join("templates").join(t)),
            "{t}"
        );
    }
    let manifest = read(&d.join("plans.toml"));
    assert!(manifest.contains("[[plan]]\nname = \"example\"\nfile = \"docs/plans/example.md\"\n"));
    assert!(manifest.contains("\ntemplates = \"orch/templates\"\n"));
    assert_eq!(
        read(&d.join(".gitignore")),
        "# orch: plan worktrees, status files and agent logs\n/.orch/\n"
    );

    let (code, out, err) = run(d, &["check"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "plan `example` (docs/plans/example.md): 2 phases, 4 tasks, 1 verification step"
        ),
        "{out}"
    );
    assert!(err.contains("ok: 0 error(s), 0 warning(s)"), "{err}");
}

#[test]
fn init_refuses_to_overwrite_and_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    assert_eq!(run(d, &["init"]).0, 0);
    let before = snapshot(d);
    let (code, out, err) = run(d, &["init"]);
    assert_eq!(code, 4, "{err}");
    assert!(out.is_empty(), "{out}");
    for f in INIT_FILES {
        assert!(err.contains(&format!("`{f}`")), "{f} not listed: {err}");
    }
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(snapshot(d), before, "a refused init changes no byte");
}

#[test]
fn init_refuses_when_any_one_file_exists_and_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    write(d, "docs/plans/example.md", "# mine\n");
    write(d, ".gitignore", "/target\n");
    let before = snapshot(d);
    let (code, _, err) = run(d, &["init"]);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("refusing to overwrite `docs/plans/example.md`"),
        "{err}"
    );
    assert!(!err.contains("`plans.toml`"), "{err}");
    assert_eq!(snapshot(d), before);
    assert!(!d.join("plans.toml").exists());
}

#[test]
fn init_appends_to_gitignore_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // No trailing newline: the entry still lands on its own line.
    write(tmp.path(), "a/.gitignore", "/target");
    let (code, out, err) = run(tmp.path(), &["init", "--dir", "a"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("appended /.orch/ to .gitignore"), "{out}");
    assert_eq!(
        read(&tmp.path().join("a/.gitignore")),
        "/target\n# orch: plan worktrees, status files and agent logs\n/.orch/\n"
    );

    // Already ignored (in another spelling): left alone. `--dir` creates a missing directory.
    write(tmp.path(), "b/c/.gitignore", "node_modules/\n.orch\n");
    let (code, out, err) = run(tmp.path(), &["init", "--dir", "b/c"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(".gitignore already ignores"), "{out}");
    assert_eq!(
        read(&tmp.path().join("b/c/.gitignore")),
        "node_modules/\n.orch\n"
    );
    let (code, _, err) = run(tmp.path(), &["init", "--dir", "new/dir"]);
    assert_eq!(code, 0, "{err}");
    assert!(tmp.path().join("new/dir/plans.toml").is_file());
}

#[test]
fn check_reports_a_broken_template_override_with_its_line() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    assert_eq!(run(d, &["init"]).0, 0);
    write(
        d,
        "orch/templates/task.md",
        "Task {{ task_id }}\nthen {{ tsak_id }}\n",
    );
    let (code, _, err) = run(d, &["check"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("orch/templates/task.md:2: error: template: `tsak_id` is undefined"),
        "{err}"
    );
    write(d, "orch/templates/task.md", "{% if kind %}\nno end\n");
    let (code, _, err) = run(d, &["check"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("orch/templates/task.md:"), "{err}");
    assert!(err.contains("syntax error"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// The project's own plans.toml

#[test]
fn the_projects_own_manifest_passes_check() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let manifest = repo_root().join("plans.toml");
    let m = manifest.to_str().expect("utf-8 path");
    let (code, out, err) = run(tmp.path(), &["check", "--manifest", m, "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["valid"], true);
    assert_eq!(v["warnings"], 0, "{out}");
    let names: Vec<&str> = v["plans"]
        .as_array()
        .expect("plans")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["greeter", "docs", "polish"]);
    // docs waits for greeter's phase 1 (its first task comes after greeter:1.2).
    let waves = v["waves"].as_array().expect("waves");
    let wave_of = |id: &str| {
        waves
            .iter()
            .position(|w| w.as_array().expect("wave").iter().any(|t| t == id))
            .expect(id)
    };
    assert!(wave_of("docs:1.1") > wave_of("greeter:1.2"));
    assert_eq!(wave_of("polish:1.1"), 0);
}

// ---------------------------------------------------------------------------------------------
// orch demo-agent

const DEMO_MANIFEST: &str = "[[plan]]\nname = \"greeter\"\nfile = \"plans/greeter.md\"\n\n[[plan]]\nname = \"docs\"\nfile = \"plans/docs.md\"\n";
const GREETER: &str = "# Greeter\n\n## Phase 1: Core\n- [ ] 1.1 Create the library\n- [ ] 1.2 Add tests (depends: 1.1)\n\n**VERIFY Phase 1:**\n- the tests pass\n";
const DOCS: &str =
    "# Docs\n\n## Phase 1: Docs\n- [ ] 1.1 Write docs\n\n**VERIFY Phase 1:**\n- docs exist\n";

fn demo_agent(dir: &Path, plan: &str, task: &str) -> (i32, String, String) {
    let mut c = orch(dir, &["demo-agent"]);
    c.env("ORCH_PLAN", plan)
        .env("ORCH_TASK", task)
        .env("ORCH_WORKTREE", dir);
    output(c)
}

#[test]
fn demo_agent_appends_a_line_per_task_and_verifies_the_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    write(d, "plans.toml", DEMO_MANIFEST);
    write(d, "plans/greeter.md", GREETER);
    write(d, "plans/docs.md", DOCS);

    let (code, out, err) = demo_agent(d, "greeter", "1.1");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "demo-agent: greeter 1.1: appended \"1.1: Create the library\" to src/greeter.txt"
        ),
        "{out}"
    );
    assert_eq!(
        read(&d.join("src/greeter.txt")),
        "1.1: Create the library\n"
    );
    assert_eq!(demo_agent(d, "greeter", "1.2").0, 0);
    assert_eq!(
        read(&d.join("src/greeter.txt")),
        "1.1: Create the library\n1.2: Add tests (depends: 1.1)\n"
    );

    // The verification step reads, and does not write.
    let before = snapshot(d);
    let (code, out, err) = demo_agent(d, "greeter", "V1");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("checked src/greeter.txt: 2 lines of work"),
        "{out}"
    );
    assert_eq!(snapshot(d), before);

    // Nothing done yet in `docs`: its verification fails and creates nothing.
    let (code, _, err) = demo_agent(d, "docs", "V1");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("`src/docs.txt` is missing or empty"), "{err}");
    assert!(!d.join("src/docs.txt").exists());
}

#[test]
fn demo_agent_refuses_bad_or_missing_environment() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    let (code, _, err) = run(d, &["demo-agent"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("`ORCH_PLAN` is not set"), "{err}");
    let (code, _, err) = demo_agent(d, "../escape", "1.1");
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = demo_agent(d, "ok", "1.1; rm -rf /");
    assert_eq!(code, 2, "{err}");
    assert!(snapshot(d).is_empty(), "nothing written");
    assert!(
        !tmp.path()
            .parent()
            .expect("parent")
            .join("src/escape.txt")
            .exists()
    );
    // Without a manifest the description falls back to the id.
    assert_eq!(demo_agent(d, "solo", "2.1").0, 0);
    assert_eq!(read(&d.join("src/solo.txt")), "2.1: task 2.1\n");
}

// ---------------------------------------------------------------------------------------------
// orch demo

#[test]
fn demo_refuses_a_non_empty_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    write(d, "keep/me.txt", "precious\n");
    let before = snapshot(d);
    let (code, out, err) = run(tmp.path(), &["demo", "keep"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("is not empty"), "{err}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(snapshot(d), before);
    assert!(!d.join("keep/.git").exists());
    // A file is refused too.
    let (code, _, err) = run(tmp.path(), &["demo", "keep/me.txt"]);
    assert_eq!(code, 4, "{err}");
    assert_eq!(snapshot(d), before);
}

/// The demo repository is made before `orch up` runs, whatever `up` then does (with `--no-merge`,
/// nothing lands on main): two commits on `main`, a clean tree, a manifest that `orch check` accepts.
#[test]
fn demo_builds_a_repository_with_the_plans() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("tour");
    // `--no-merge`: main keeps the demo's own two commits.
    let (_, out, err) = run(tmp.path(), &["demo", "--no-merge", "tour"]);
    assert!(out.contains("demo repository: "), "{out}\n{err}");
    assert!(
        out.contains("the plans are not merged (--no-merge)"),
        "{out}"
    );
    let repo = git2::Repository::open(&dir).expect("a git repository");
    let head = repo.head().expect("HEAD");
    assert_eq!(head.shorthand().ok(), Some("main"));
    let mut walk = repo.revwalk().expect("revwalk");
    walk.push(head.target().expect("oid")).expect("push");
    let summaries: Vec<String> = walk
        .map(|oid| {
            let c = repo.find_commit(oid.expect("oid")).expect("commit");
            assert_eq!(c.author().name().ok(), Some("orch demo"));
            c.summary().ok().flatten().unwrap_or_default().to_string()
        })
        .collect();
    assert_eq!(
        summaries,
        [
            "Add three plans and their manifest",
            "Start the demo repository"
        ]
    );
    let statuses = repo.statuses(None).expect("statuses");
    let dirty: Vec<String> = statuses
        .iter()
        .filter(|e| !e.status().is_ignored())
        .map(|e| format!("{:?} {:?}", e.path().ok(), e.status()))
        .collect();
    assert!(
        dirty.is_empty(),
        "the main work tree stays clean: {dirty:?}"
    );
    for p in ["greeter", "docs", "polish"] {
        let rel = format!("docs/plans/{p}.md");
        assert_eq!(
            read(&dir.join(&rel)),
            read(&repo_root().join(&rel)),
            "{rel}"
        );
    }
    let (code, out, err) = run(&dir, &["check"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("plan `docs` (docs/plans/docs.md)"), "{out}");
}

/// The whole tour: every task of every plan done by the scripted agent, on its plan's branch.
#[test]
fn demo_runs_every_plan_to_completion() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("tour");
    let (code, out, err) = run(tmp.path(), &["demo", "tour"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let repo = git2::Repository::open(&dir).expect("repo");
    let expected: [(&str, &[&str]); 3] = [
        ("greeter", &["1.1: ", "1.2: ", "2.1: "]),
        ("docs", &["1.1: ", "1.2: "]),
        ("polish", &["1.1: ", "1.2: ", "1.3: "]),
    ];
    for (plan, prefixes) in expected {
        let branch = repo
            .find_branch(&format!("plan/{plan}"), git2::BranchType::Local)
            .unwrap_or_else(|_| panic!("branch plan/{plan}"));
        let tree = branch.get().peel_to_tree().expect("tree");
        let entry = tree
            .get_path(Path::new(&format!("src/{plan}.txt")))
            .expect("the agent's file is committed");
        let blob = repo.find_blob(entry.id()).expect("blob");
        let text = String::from_utf8_lossy(blob.content()).into_owned();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), prefixes.len(), "{plan}: {text}");
        for prefix in prefixes {
            assert!(
                lines.iter().any(|l| l.starts_with(prefix)),
                "{plan}: {text}"
            );
        }
        assert!(out.contains(&format!("plan/{plan} (")), "{out}");
    }
    // The three plans landed on main by `orch merge`, upstream first: greeter before docs.
    let main = repo
        .find_branch("main", git2::BranchType::Local)
        .expect("main");
    let tree = main.get().peel_to_tree().expect("tree");
    for plan in ["greeter", "docs", "polish"] {
        assert!(
            tree.get_path(Path::new(&format!("src/{plan}.txt"))).is_ok(),
            "{plan} merged into main"
        );
    }
    let mut walk = repo.revwalk().expect("revwalk");
    walk.push(main.get().target().expect("oid")).expect("push");
    walk.simplify_first_parent().expect("first parent");
    let merges: Vec<String> = walk
        .map(|oid| repo.find_commit(oid.expect("oid")).expect("commit"))
        .filter(|c| c.parent_count() == 2)
        .map(|c| c.summary().ok().flatten().unwrap_or_default().to_string())
        .collect();
    let at = |plan: &str| {
        merges
            .iter()
            .position(|m| m.starts_with(&format!("Merge plan `{plan}`")))
            .unwrap_or_else(|| panic!("no merge of {plan}: {merges:?}"))
    };
    // Newest first: docs (which waits on greeter) was merged after greeter.
    assert!(at("docs") < at("greeter"), "{merges:?}");
    assert_eq!(merges.len(), 3, "{merges:?}");
    // The graph, and how to try `orch pr`.
    assert!(
        out.contains("== main after the merges (git log --graph --oneline main)"),
        "{out}"
    );
    assert!(out.contains("Merge plan `greeter`"), "{out}");
    assert!(
        out.contains("orch demo --no-merge") && out.contains("orch pr --dry-run"),
        "{out}"
    );
}

// ---------------------------------------------------------------------------------------------
// orch logs

fn logs_repo() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    write(
        d,
        "plans.toml",
        "[[plan]]\nname = \"a\"\nfile = \"a.md\"\n\n[[plan]]\nname = \"b\"\nfile = \"b.md\"\n",
    );
    write(d, "a.md", GREETER);
    write(d, "b.md", DOCS);
    // The prompt `orch up` keeps next to a task's log is not a log.
    write(d, ".orch/logs/a/1.1.prompt.md", "You are doing one task\n");
    let t0 = SystemTime::now() - Duration::from_secs(3600);
    for (i, (name, text)) in [
        ("setup.log", "npm ci\nok\n"),
        ("1.1.log", "agent output for 1.1\nline 2\n"),
        ("V1.log", "checked\n"),
    ]
    .into_iter()
    .enumerate()
    {
        let p = write(d, &format!(".orch/logs/a/{name}"), text);
        let f = std::fs::File::options().write(true).open(&p).expect("open");
        f.set_modified(t0 + Duration::from_secs(60 * i as u64))
            .expect("mtime");
    }
    tmp
}

#[test]
fn logs_lists_and_prints_a_plans_logs() {
    let tmp = logs_repo();
    let d = tmp.path();
    let before = snapshot(d);

    let (code, out, err) = run(d, &["logs", "a"]);
    assert_eq!(code, 0, "{err}");
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("  ")).collect();
    let names: Vec<&str> = rows
        .iter()
        .map(|l| l.split_whitespace().next().expect("name"))
        .collect();
    assert_eq!(
        names,
        ["setup", "1.1", "V1"],
        "oldest first, newest last:\n{out}"
    );
    assert!(rows[1].contains(" 28 B "), "{out}");
    assert!(out.contains("show one: orch logs a V1"), "{out}");

    let (code, out, err) = run(d, &["logs", "a", "1.1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "agent output for 1.1\nline 2\n");
    let (code, out, _) = run(d, &["logs", "a", "setup"]);
    assert_eq!((code, out.as_str()), (0, "npm ci\nok\n"));

    let (code, out, err) = run(d, &["logs", "a", "1.1", "--path"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        PathBuf::from(out.trim_end()),
        d.join(".orch/logs/a/1.1.log")
    );
    // A known task that has not run: the path it will have.
    let (code, out, _) = run(d, &["logs", "a", "1.2", "--path"]);
    assert_eq!(code, 0);
    assert_eq!(
        PathBuf::from(out.trim_end()),
        d.join(".orch/logs/a/1.2.log")
    );

    let v: Value = {
        let (code, out, err) = run(d, &["logs", "a", "--json"]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&out).expect("json")
    };
    assert_eq!(v["plan"], "a");
    let logs = v["logs"].as_array().expect("logs");
    assert_eq!(logs.len(), 3);
    assert_eq!(logs[1]["name"], "1.1");
    assert_eq!(logs[1]["size"], 28);
    assert!(logs[1]["modified"].as_str().expect("time").ends_with('Z'));

    assert_eq!(snapshot(d), before, "logs changes nothing");
}

#[test]
fn logs_explains_unknown_plans_tasks_and_missing_logs() {
    let tmp = logs_repo();
    let d = tmp.path();
    let (code, _, err) = run(d, &["logs", "nope"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no plan `nope`"), "{err}");
    assert!(
        err.contains("hint: the manifest's plans are `a`, `b`"),
        "{err}"
    );

    let (code, _, err) = run(d, &["logs", "a", "9.9"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("plan `a` has no task `9.9`"), "{err}");
    assert!(err.contains("its tasks are 1.1, 1.2, V1"), "{err}");

    let (code, _, err) = run(d, &["logs", "a", "1.2"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no log yet for `1.2` of plan `a`"), "{err}");

    let (code, _, err) = run(d, &["logs", "b"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no logs yet for plan `b`"), "{err}");

    // Never a path outside the log directory.
    write(d, ".orch/logs/secret.log", "secret\n");
    for bad in ["../secret", "../secret.log", "/etc/passwd", ".hidden"] {
        let (code, out, err) = run(d, &["logs", "a", bad]);
        assert_eq!(code, 2, "{bad}: {err}");
        assert!(out.is_empty(), "{bad}: {out}");
    }

    // Without a manifest.
    let empty = tempfile::tempdir().expect("tempdir");
    let (code, _, err) = run(empty.path(), &["logs", "a"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no `plans.toml` found"), "{err}");
    // With --manifest from elsewhere.
    let m = d.join("plans.toml");
    let (code, out, err) = run(
        empty.path(),
        &["logs", "a", "V1", "--manifest", m.to_str().expect("utf-8")],
    );
    assert_eq!((code, out.as_str()), (0, "checked\n"), "{err}");
}
