//! orch's own names never meet the users': a state directory holds each plan's directory
//! (`<state_dir>/<plan>/status.json`) beside orch's own files and directories (the proxy's
//! sockets, the hosts' sockets and records, the report directories, the events, the history,
//! the ports, ...), and a plan, a host or a repository may be named like any of them. Each plan
//! here is named like something orch keeps (or kept) there, with a real run: every agent in
//! orch's network namespace (the proxy's sockets are made), on a remote host for the ssh names;
//! then a second run, which finds everything done and runs nothing again: one commit per task,
//! every status kept. Seen failing on main: plan `net` lost its status to the proxy's
//! directory and ran again (two commits for one task); `events.jsonl` could not have a status.

use crate::support;

use support::{Repo, sshd, toml_array};

/// Plan names that meet what orch keeps, or kept, in its state directory.
const NAMES: [&str; 15] = [
    "net",
    "ssh",
    "remote",
    "reports",
    "events.jsonl",
    "history.jsonl",
    "ports.json",
    "integration.json",
    "integration-cache.json",
    "sandbox.json",
    "network.json",
    "network_plans.json",
    "landing.json",
    "landing.paused",
    "integration-verify.log",
];

fn plan(tasks: usize) -> String {
    let mut text = String::from("# Plan\n\n## Phase 1: One\n");
    for i in 1..=tasks {
        text.push_str(&format!("- [ ] 1.{i} Step {i}\n"));
    }
    text
}

/// A repository with a plan of two tasks for each of `names`; `head`: what goes before
/// `[defaults]` (hosts), `defaults` more lines of it.
fn repo_with(names: &[&str], head: &str, defaults: &str, command: &[&str]) -> Repo {
    let repo = Repo::builder().identity_in_config().build();
    let mut toml = format!(
        "{head}[defaults]\nagent = \"a\"\nretries = 0\nmax_agents = 4\n{defaults}\n\
         [agents.a]\ncommand = {}\nreport = \"exit\"\n",
        toml_array(command)
    );
    for (i, n) in names.iter().enumerate() {
        repo.write(&format!("docs/plans/p{i}.md"), &plan(2));
        toml.push_str(&format!(
            "\n[[plan]]\nname = \"{n}\"\nfile = \"docs/plans/p{i}.md\"\n"
        ));
    }
    repo.write("plans.toml", &toml);
    repo.commit_all("plans");
    repo
}

/// Runs `orch up --json` to its end (with `path` as PATH when given): its events.
fn up(repo: &Repo, path: Option<&str>) -> Vec<serde_json::Value> {
    let mut cmd = repo.orch(&["up", "--json"]);
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    let (code, out, err) = repo.run_cmd(&mut cmd);
    assert_eq!(code, 0, "orch up\n{out}\n{err}");
    support::events(&out)
}

/// Every plan of `names` is completed with one commit per task, twice over.
fn each_task_once(repo: &Repo, names: &[&str], when: &str) {
    for n in names {
        let subjects: Vec<String> = repo
            .subjects(&format!("plan/{n}"))
            .into_iter()
            .filter(|s| s.starts_with(&format!("{n} 1.")))
            .collect();
        assert_eq!(
            subjects,
            [format!("{n} 1.1: Step 1"), format!("{n} 1.2: Step 2")],
            "{when}: plan `{n}`"
        );
        for id in ["1.1", "1.2"] {
            assert_eq!(
                repo.task(n, id)["status"],
                "completed",
                "{when}: plan `{n}` task {id}"
            );
        }
    }
}

/// The local plans, each agent in orch's network namespace (the proxy's sockets are made in
/// the state directory): the second run starts no task.
#[test]
fn plans_named_like_orchs_own_files_keep_their_progress() {
    let repo = repo_with(
        &NAMES,
        "",
        "",
        &["sh", "-c", "echo \"$ORCH_TASK\" > \"task-$ORCH_TASK.txt\""],
    );
    let first = up(&repo, None);
    let started = first
        .iter()
        .find(|e| e["event"] == "run_started")
        .expect("run_started");
    // The proxy ran (as tests/network.rs, this needs network namespaces), its sockets in the
    // state directory for the run's length: where plan `net` used to keep its status.
    assert_eq!(started["network"], "confined", "{started}");
    each_task_once(&repo, &NAMES, "first run");
    let second = up(&repo, None);
    let again = support::named(&second, "task_started");
    assert!(again.is_empty(), "the second run ran again: {again:?}");
    each_task_once(&repo, &NAMES, "second run");
}

/// On remote hosts named like orch's own records of the hosts (`usable`, `slots`, `down`), the
/// plans `ssh`, `remote` and `reports`: the second run starts no task.
#[test]
fn plans_and_hosts_named_like_orchs_own_keep_their_progress_on_a_host() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start(&["usable", "slots"]);
    let names = ["ssh", "remote", "reports", "usable"];
    let repo = repo_with(
        &names,
        &lab.host_toml(2),
        "executor = \"ssh\"\nnetwork = \"open\"\n",
        &["sh", "-c", "echo \"$ORCH_TASK\" > \"task-$ORCH_TASK.txt\""],
    );
    up(&repo, Some(&lab.path()));
    each_task_once(&repo, &names, "first run");
    let second = up(&repo, Some(&lab.path()));
    let again = support::named(&second, "task_started");
    assert!(again.is_empty(), "the second run ran again: {again:?}");
    each_task_once(&repo, &names, "second run");
}

/// orch's own entries of the log directory beside the plans' (`<log_dir>/<plan>/`) are dot
/// names: the integration test's log (`.integration-verify.log`) and a group landing's
/// directory (`.land-<group>/`, formerly `land-<group>/`, which plan `land-<group>` shared).
/// No plan may be named so: `orch check` refuses each at its line (exit 2), and nothing is
/// made.
#[test]
fn orchs_own_log_names_can_be_no_plans_name() {
    for name in [".land-v2", ".integration-verify.log", ".land-land-v2"] {
        let repo = repo_with(&[name], "", "", &["true"]);
        let (code, out, err) = repo.run(&["check"]);
        assert_eq!(code, 2, "plan `{name}`: {out}{err}");
        assert!(
            err.contains("plans.toml:")
                && err.contains(&format!("plan name `{name}` is not allowed")),
            "plan `{name}`: {err}"
        );
        assert!(
            !repo.root().join(".orch").exists(),
            "plan `{name}`: .orch made"
        );
    }
}
