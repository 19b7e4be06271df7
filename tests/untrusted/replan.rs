//! Live re-planning and the agents: `orch up` re-plans from the manifest and the plan
//! files of the main checkout only, which a confined agent cannot write; what an agent writes in
//! its own worktree's copies is never read as the run's plans (and is a protected change of its
//! task).

use std::path::Path;

use crate::landlock;
use crate::support::{
    self, Repo, agent_at, one_task, read_lines, wait_for, wait_line, wait_within,
};

/// The agent edits `plans.toml` and its plan file in its worktree and tries the main checkout's;
/// then the lead edits `plans.toml`: the reload that follows has the lead's change alone, the
/// planted plan and task never run, the main checkout's files are as the lead left them.
#[test]
fn an_agent_cannot_re_plan_the_run_it_is_part_of() {
    if !landlock() {
        return;
    }
    let repo = Repo::bare_minimum();
    let gate = repo.outside("go");
    repo.write("docs/plans/p.md", &one_task("P", "Write work.txt"));
    let manifest = format!(
        "[defaults]\nretries = 0\nsandbox = \"on\"\n\n\
         [agents.a]\ncommand = {}\nreport = \"orch\"\n\n\
         [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"a\"\n",
        agent_at("hostile_replan.sh", &[&gate])
    );
    repo.write("plans.toml", &manifest);
    repo.commit_all("plans");
    let plan_before = repo.read("docs/plans/p.md");

    let mut child = repo
        .orch(&["up", "--json"])
        .env_remove("ORCH_SANDBOX")
        .spawn()
        .expect("spawn orch up");
    let lines = read_lines(&mut child);
    let log = repo.root().join(".orch/logs/p/1.1.log");
    wait_for("the agent's attempts", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("attempted"))
    });
    let text = std::fs::read_to_string(&log).expect("log");
    let main = repo.root().display().to_string();
    assert!(!text.contains(&format!("wrote {main}/")), "{text}");
    // The lead's own edit: the reload reads the main checkout, with nothing of the agent's.
    let edited = manifest.replace("retries = 0\n", "retries = 0\nmax_agents = 2\n");
    // Saved as an editor saves: the run never reads half of it.
    let tmp = repo.root().join("plans.toml.saving");
    std::fs::write(&tmp, &edited).expect("write");
    std::fs::rename(&tmp, repo.root().join("plans.toml")).expect("rename");
    let mut seen = Vec::new();
    wait_line(&lines, &mut seen, |v| v["event"] == "manifest_reloaded");
    let reload = seen.last().cloned().expect("reload");
    assert_eq!(
        reload["changes"],
        serde_json::json!(["max_agents 4 → 2"]),
        "{reload}"
    );
    std::fs::write(&gate, "go").expect("gate");
    let out = wait_within(child, support::TIMEOUT, "orch up");
    while let Ok(v) = lines.try_recv() {
        seen.push(v);
    }
    assert_eq!(out.status.code(), Some(5), "{seen:?}");
    let failed = support::named(&seen, "task_failed");
    assert_eq!(failed.len(), 1, "{seen:?}");
    assert_eq!(
        failed[0]["error"], "changed protected paths: docs/plans/p.md, plans.toml",
        "{failed:?}"
    );
    assert!(
        !seen
            .iter()
            .any(|v| v["plan"] == "q" || v["task"] == "1.9" || v["event"] == "manifest_invalid"),
        "{seen:?}"
    );
    assert_eq!(repo.read("plans.toml"), edited.as_bytes());
    assert_eq!(repo.read("docs/plans/p.md"), plan_before);
    assert!(Path::new(&repo.root().join(".orch/worktrees/p/plans.toml")).exists());
}
