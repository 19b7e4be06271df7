//! Several repositories × the report channel: an agent of a plan in a `[[repo]]` other than
//! the home reports its tasks with `orch task done` (`report = "orch"`, every preset's but
//! aider's) and they are completed, committed on that repository's plan branch and landed on
//! its target, as a home plan's are; and as an agent that reports by its exit status. Each cell
//! a real `orch up` of three real repositories side by side (home, api, client) and a real
//! landing (the merge train, or `orch merge` after the run), with the sandbox on and off, each
//! network mode, task and plan mode, and on a `[[host]]` (`executor = "ssh"`).

use crate::support;

use serde_json::Value;
use support::three::{Three, plan_table, repo_table};
use support::{Repo, agent, events, landlock, named};

/// One run: how the plans' agents report, run and land.
#[derive(Clone, Copy, Debug)]
struct Cell {
    /// `report`: `orch` (the agent runs `orch task done`) or `exit`.
    report: &'static str,
    sandbox: &'static str,
    /// `network`: `confined`, `none` or `open`.
    network: &'static str,
    /// `mode`: `task` or `plan`.
    mode: &'static str,
    /// `--merge` (the merge train of `orch up`) or `orch merge` after the run.
    landing: &'static str,
}

/// The plans of every run: `v2` in api (two phases), `client-v2` in client after `v2:1`, `docs`
/// in the home repository; each repository and plan, the file its agent appends its tasks to
/// and what it holds once every task ran.
fn plans(t: &Three) -> [(&Repo, &'static str, &'static str); 3] {
    [
        (&t.api, "v2", "1.1\n2.1\n"),
        (&t.client, "client-v2", "1.1\n"),
        (&t.home, "docs", "1.1\n"),
    ]
}

/// The commits each plan's tasks get, oldest first.
fn subjects_of(plan: &str) -> Vec<String> {
    match plan {
        "v2" => vec![
            "v2 1.1: Add the endpoint".to_string(),
            "v2 2.1: Document it".to_string(),
        ],
        _ => vec![format!("{plan} 1.1: Something")],
    }
}

/// Writes and commits the manifest of `cell`.
fn manifest(t: &Three, cell: Cell) {
    let two = "# V2\n\n## Phase 1: Endpoint\n- [ ] 1.1 Add the endpoint\n\n## Phase 2: Docs\n- [ ] 2.1 Document it\n";
    let one = "# P\n\n## Phase 1: Work\n- [ ] 1.1 Something\n";
    t.home.write("plans/v2.md", two);
    t.home.write("plans/client.md", one);
    t.home.write("plans/docs.md", one);
    let args: &[&str] = if cell.report == "exit" {
        &["exit"]
    } else {
        &[]
    };
    let mode = if cell.mode == "plan" {
        "mode = \"plan\"\n"
    } else {
        ""
    };
    let toml = format!(
        "[defaults]\nagent = \"a\"\nretries = 0\nsandbox = \"{}\"\nnetwork = \"{}\"\n\n\
         [agents.a]\ncommand = {}\nreport = \"{}\"\n{mode}{}{}{}{}{}",
        cell.sandbox,
        cell.network,
        agent("repos_report.sh", args),
        cell.report,
        repo_table("api", &Three::rel(&t.api)),
        repo_table("client", &Three::rel(&t.client)),
        plan_table("v2", "v2", "repo = \"api\"\n"),
        plan_table(
            "client-v2",
            "client",
            "repo = \"client\"\ndepends_on = [\"v2:1\"]\n"
        ),
        plan_table("docs", "docs", ""),
    );
    t.home.write("plans.toml", &toml);
    t.home.commit_all("plans");
}

/// What `orch up` and each task's log said, for a failure's message.
fn said(t: &Three, out: &str, err: &str) -> String {
    let mut all = format!("--- stdout:\n{out}\n--- stderr:\n{err}\n");
    for (r, plan, _) in plans(t) {
        for id in ["1.1", "2.1", "plan"] {
            let log = r.root().join(format!(".orch/logs/{plan}/{id}.log"));
            if let Ok(text) = std::fs::read_to_string(&log) {
                all.push_str(&format!("--- {}:\n{text}\n", log.display()));
            }
        }
    }
    all
}

/// Runs `cell` end to end and checks what a user cares about: every task of every plan
/// completed in its own repository's status file, its commit on that repository's plan branch,
/// and each plan landed on its repository's `main`.
fn run_cell(cell: Cell) {
    let t = Three::new();
    manifest(&t, cell);
    let mut up = vec!["up", "--json"];
    if cell.landing == "--merge" {
        up.push("--merge");
    }
    // `sandbox` and `network` as plans.toml says them, not the test environment's.
    let (code, out, err) = t.home.run_cmd(t.home.orch(&up).env_remove("ORCH_SANDBOX"));
    let ctx = || format!("{cell:?}\n{}", said(&t, &out, &err));
    assert_eq!(code, 0, "orch up failed: {}", ctx());
    let ev = events(&out);
    assert!(named(&ev, "task_failed").is_empty(), "{}", ctx());
    assert!(named(&ev, "report_refused").is_empty(), "{}", ctx());
    for (r, plan, _) in plans(&t) {
        // Each task completed, in the status file of its plan's own repository.
        let ids: &[&str] = if plan == "v2" {
            &["1.1", "2.1"]
        } else {
            &["1.1"]
        };
        for id in ids {
            assert_eq!(
                r.task(plan, id)["status"],
                "completed",
                "{plan} {id}: {}",
                ctx()
            );
        }
        // Its commits are on its plan branch in its own repository.
        let on_branch = r.git(&["log", "--no-merges", "--format=%s", &format!("plan/{plan}")]);
        for s in subjects_of(plan) {
            assert!(
                on_branch.lines().any(|l| l == s),
                "{plan}: no `{s}` on its branch:\n{on_branch}\n{}",
                ctx()
            );
        }
    }
    if cell.landing != "--merge" {
        let (code, mout, merr) = t.home.run(&["merge"]);
        assert_eq!(code, 0, "orch merge failed: {cell:?}\n{mout}\n{merr}");
    }
    for (r, plan, text) in plans(&t) {
        // Landed: the plan branch is in its repository's `main`, which holds the plan's work.
        assert!(
            r.git_ok(&[
                "merge-base",
                "--is-ancestor",
                &format!("plan/{plan}"),
                "main"
            ]),
            "{plan} not landed on its main: {}",
            ctx()
        );
        assert_eq!(
            r.git(&["show", &format!("main:{plan}.txt")]),
            text.trim_end(),
            "{plan}: {}",
            ctx()
        );
    }
}

/// The cells of another repository with `report = "orch"`: each sandbox, each network mode,
/// task and plan mode, both landings (pairwise).
const ORCH_CELLS: [Cell; 4] = [
    Cell {
        report: "orch",
        sandbox: "on",
        network: "confined",
        mode: "task",
        landing: "--merge",
    },
    Cell {
        report: "orch",
        sandbox: "off",
        network: "open",
        mode: "task",
        landing: "orch merge",
    },
    Cell {
        report: "orch",
        sandbox: "on",
        network: "none",
        mode: "plan",
        landing: "orch merge",
    },
    Cell {
        report: "orch",
        sandbox: "off",
        network: "confined",
        mode: "plan",
        landing: "--merge",
    },
];

/// The cells with `report = "exit"`.
const EXIT_CELLS: [Cell; 2] = [
    Cell {
        report: "exit",
        sandbox: "on",
        network: "open",
        mode: "task",
        landing: "orch merge",
    },
    Cell {
        report: "exit",
        sandbox: "off",
        network: "none",
        mode: "task",
        landing: "--merge",
    },
];

fn run_if_confinable(cell: Cell) {
    if cell.sandbox == "on" && !landlock() {
        return;
    }
    run_cell(cell);
}

#[test]
fn a_plan_of_another_repository_reports_through_orch_confined_and_lands_by_the_train() {
    run_if_confinable(ORCH_CELLS[0]);
}

#[test]
fn a_plan_of_another_repository_reports_through_orch_unconfined_and_lands_by_orch_merge() {
    run_if_confinable(ORCH_CELLS[1]);
}

#[test]
fn a_plan_agent_of_another_repository_reports_through_orch_confined_without_network() {
    run_if_confinable(ORCH_CELLS[2]);
}

#[test]
fn a_plan_agent_of_another_repository_reports_through_orch_unconfined() {
    run_if_confinable(ORCH_CELLS[3]);
}

#[test]
fn a_plan_of_another_repository_reports_by_exit_status() {
    for cell in EXIT_CELLS {
        run_if_confinable(cell);
    }
}

/// A person's `orch task done 2.1` during `orch up`, for a task of a plan of another repository
/// (its agent at work on 1.1): the report reaches the supervisor (exit 0, as for a home plan's
/// task), which runs 2.1's check before any commit once 1.1's agent is done with the worktree; the
/// check fails (2.1's file is not there), so 2.1 is not committed.
#[test]
fn a_persons_report_of_a_task_of_another_repository_reaches_orch_up() {
    if !landlock() {
        return;
    }
    let t = Three::new();
    let gate = t.home.outside("gate");
    std::fs::create_dir_all(&gate).expect("gate");
    t.home.write(
        "plans/v2.md",
        "# V2\n\n## Phase 1: One\n- [ ] 1.1 First\n\n## Phase 2: Two\n- [ ] 2.1 Second\n",
    );
    let toml = format!(
        "[defaults]\nagent = \"a\"\nretries = 0\nsandbox = \"on\"\n\
         check = [\"sh\", \"-c\", \"test -f $ORCH_PLAN-$ORCH_TASK.txt\"]\n\n\
         [agents.a]\ncommand = {}\nreport = \"orch\"\nsandbox_write = [{:?}]\n{}{}",
        support::agent_at("gated.sh", &[&gate, std::path::Path::new("60")]),
        gate.display().to_string(),
        repo_table("api", &Three::rel(&t.api)),
        plan_table("v2", "v2", "repo = \"api\"\n"),
    );
    t.home.write("plans.toml", &toml);
    t.home.commit_all("plans");
    let mut up = t.home.orch(&["up", "--json"]);
    up.env_remove("ORCH_SANDBOX");
    let mut child = up.spawn().expect("orch up");
    let lines = support::read_lines(&mut child);
    let mut seen = Vec::new();
    support::wait_line(&lines, &mut seen, |e| {
        e["event"] == "task_started" && e["task"] == "1.1"
    });
    // A person, in the home repository (no ORCH_* variables: `Repo::orch` clears them).
    let (code, out, err) = t.home.run(&["task", "done", "2.1", "--plan", "v2"]);
    let person = format!("{code}\n{out}\n{err}");
    std::fs::write(gate.join("all.go"), "").expect("go");
    let status = support::wait_status_until(
        &mut child,
        std::time::Instant::now() + t.home.timeout(),
        "orch up",
    );
    while let Ok(e) = lines.recv_timeout(std::time::Duration::from_secs(5)) {
        seen.push(e);
    }
    let all = serde_json::to_string_pretty(&seen).unwrap_or_default();
    assert_eq!(code, 0, "the person's report: {person}\n{all}");
    let subjects = t.api.subjects("plan/v2");
    assert_eq!(subjects, ["v2 1.1: First"], "{person}\n{all}");
    let at = |name: &str, id: &str| {
        seen.iter()
            .position(|e| e["event"] == name && e["task"] == id)
            .unwrap_or_else(|| panic!("no {name} of {id}\n{person}\n{all}"))
    };
    // Its check ran, after 1.1's agent was done with the worktree, and failed it.
    assert!(
        at("task_finished", "1.1") < at("task_checking", "2.1"),
        "{all}"
    );
    let failed: &Value = &seen[at("task_failed", "2.1")];
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("check")),
        "{failed}"
    );
    assert!(
        !seen
            .iter()
            .any(|e| e["event"] == "task_started" && e["task"] == "2.1"),
        "{all}"
    );
    assert_ne!(support::exit_code(status), 0, "{all}");
}

/// The plan of another repository runs on a `[[host]]` (`executor = "ssh"`, a real `sshd` on
/// loopback): its agent's `orch task done` there is relayed into its report directory here and
/// taken by `orch up`; its commits land on api's plan branch, and the train lands it on api's
/// `main`.
#[test]
fn a_plan_of_another_repository_on_a_host_reports_through_orch() {
    if !support::sshd::available() {
        return;
    }
    let lab = support::sshd::Lab::start(&["h1"]);
    let t = Three::new();
    manifest(
        &t,
        Cell {
            report: "orch",
            sandbox: "off",
            network: "open",
            mode: "task",
            landing: "--merge",
        },
    );
    let toml = String::from_utf8(t.home.read("plans.toml")).expect("utf-8");
    let toml = format!("{}{}", lab.host_toml(2), toml)
        .replace("repo = \"api\"\n", "repo = \"api\"\nexecutor = \"ssh\"\n");
    t.home.write("plans.toml", &toml);
    t.home.commit_all("on a host");
    let mut cmd = t.home.orch(&["up", "--json", "--merge"]);
    cmd.env("PATH", lab.path()).env_remove("ORCH_SANDBOX");
    let (code, out, err) = t.home.run_cmd(&mut cmd);
    let all = said(&t, &out, &err);
    assert_eq!(code, 0, "orch up failed: {all}");
    let ev = events(&out);
    assert!(
        named(&ev, "task_on_host")
            .iter()
            .any(|e| e["plan"] == "v2" && e["host"] == "h1"),
        "{all}"
    );
    for id in ["1.1", "2.1"] {
        assert_eq!(t.api.task("v2", id)["status"], "completed", "{all}");
    }
    let on_branch = t.api.git(&["log", "--no-merges", "--format=%s", "plan/v2"]);
    for s in subjects_of("v2") {
        assert!(on_branch.lines().any(|l| l == s), "{on_branch}\n{all}");
    }
    assert!(
        t.api
            .git_ok(&["merge-base", "--is-ancestor", "plan/v2", "main"]),
        "{all}"
    );
    assert_eq!(t.api.git(&["show", "main:v2.txt"]), "1.1\n2.1".to_string());
}

/// Whether a Slurm cluster answers with a usable node (`.ci/slurm start`); without one the test
/// says so and passes, unless `ORCH_REQUIRE_SLURM` is set.
fn slurm_cluster() -> bool {
    let up = std::process::Command::new("sinfo")
        .args(["-h", "-o", "%T"])
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| ["idle", "mix", "alloc"].iter().any(|s| l.starts_with(s)))
        });
    if !up {
        assert!(
            std::env::var_os("ORCH_REQUIRE_SLURM").is_none(),
            "ORCH_REQUIRE_SLURM is set but no Slurm cluster answers (`.ci/slurm start`)"
        );
        eprintln!("skipped: no Slurm cluster answers (`.ci/slurm start` starts one)");
    }
    up
}

/// The plan of another repository runs as Slurm batch jobs (`executor = "slurm"`, confined on
/// the node where Landlock is there): its agent's `orch task done` in the job reaches `orch up`
/// through its report directory; its commits land on api's plan branch, and `orch merge` lands
/// it on api's `main`.
#[test]
fn a_plan_of_another_repository_in_a_slurm_job_reports_through_orch() {
    if !slurm_cluster() {
        return;
    }
    let t = Three::under(&support::slurm::disk_dir());
    manifest(
        &t,
        Cell {
            report: "orch",
            sandbox: "auto",
            network: "open",
            mode: "task",
            landing: "orch merge",
        },
    );
    let toml = String::from_utf8(t.home.read("plans.toml")).expect("utf-8");
    let toml = format!("{toml}\n[slurm]\npoll = \"1s\"\n")
        .replace("repo = \"api\"\n", "repo = \"api\"\nexecutor = \"slurm\"\n");
    t.home.write("plans.toml", &toml);
    t.home.commit_all("in Slurm jobs");
    let (code, out, err) = t
        .home
        .run_cmd(t.home.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
    let all = said(&t, &out, &err);
    assert_eq!(code, 0, "orch up failed: {all}");
    // Each task of v2 ran as a batch job, and completed.
    let ev = events(&out);
    let jobs = named(&ev, "task_started")
        .into_iter()
        .filter(|e| e["plan"] == "v2" && e["job_id"].is_string())
        .count();
    assert_eq!(jobs, 2, "{all}");
    for id in ["1.1", "2.1"] {
        assert_eq!(t.api.task("v2", id)["status"], "completed", "{all}");
    }
    let on_branch = t.api.git(&["log", "--no-merges", "--format=%s", "plan/v2"]);
    for s in subjects_of("v2") {
        assert!(on_branch.lines().any(|l| l == s), "{on_branch}\n{all}");
    }
    let (code, mout, merr) = t.home.run(&["merge"]);
    assert_eq!(code, 0, "orch merge failed:\n{mout}\n{merr}");
    assert!(
        t.api
            .git_ok(&["merge-base", "--is-ancestor", "plan/v2", "main"]),
        "{all}"
    );
    assert_eq!(t.api.git(&["show", "main:v2.txt"]), "1.1\n2.1".to_string());
}
