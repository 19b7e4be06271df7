//! Questions through the report channel: an agent asks only for its own task, cannot answer its
//! own question (nor have it answered by a report or an edit of its own), and an attempt that
//! asked reports nothing more. The question is shown escaped.

use std::path::Path;

use serde_json::Value;

use crate::landlock;
use crate::support::{Repo, agent_at, events, named};

const PLAN_A: &str = "# A\n\n## Phase 1: Work\n- [ ] 1.1 ask\n- [ ] 1.2 other\n";
const PLAN_B: &str = "# B\n\n## Phase 1: Work\n- [ ] 1.1 b's task\n";

fn hostile_run(sandbox: &str) -> (Repo, tempfile::TempDir, Vec<Value>) {
    let rec = tempfile::tempdir().expect("tmp");
    let repo = Repo::new();
    let mode = if sandbox == "on" { "confined" } else { "off" };
    let cmd = agent_at("hostile_ask.sh", &[rec.path(), Path::new(mode)]);
    repo.write("docs/plans/a.md", PLAN_A);
    repo.write("docs/plans/b.md", PLAN_B);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"h\"\nretries = 0\nsandbox = \"{sandbox}\"\n\n\
             [agents.h]\ncommand = {cmd}\nreport = \"orch\"\nsandbox_write = [{:?}]\n\n\
             [[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\n\n\
             [[plan]]\nname = \"b\"\nfile = \"docs/plans/b.md\"\n",
            rec.path().display().to_string()
        ),
    );
    repo.commit_all("plans");
    let (code, out, err) = repo.run_cmd(repo.orch(&["up", "--json"]).env_remove("ORCH_SANDBOX"));
    assert_eq!(code, 5, "orch up\n{out}\n{err}");
    (repo, rec, events(&out))
}

fn tried(rec: &Path) -> Vec<(String, i32)> {
    std::fs::read_to_string(rec.join("hostile.txt"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (what, code) = l.split_once(' ')?;
            Some((what.to_string(), code.parse().ok()?))
        })
        .collect()
}

fn code_of(t: &[(String, i32)], what: &str) -> i32 {
    t.iter()
        .find(|(w, _)| w == what)
        .map(|(_, c)| *c)
        .unwrap_or_else(|| panic!("`{what}` not tried: {t:?}"))
}

/// What holds whatever the confinement: only 1.1 waits, with its own question and no answer;
/// 1.2 and plan b ran to completion; the forged reports were refused.
fn only_its_own_question_stands(repo: &Repo, rec: &Path, ev: &[Value]) {
    let t = tried(rec);
    assert_eq!(code_of(&t, "ask"), 0, "its own question: {t:?}");
    assert_eq!(code_of(&t, "ask-other"), 4, "another task's: {t:?}");
    for after in ["reset", "start", "done"] {
        assert_eq!(code_of(&t, after), 4, "`{after}` after asking: {t:?}");
    }
    let a11 = repo.task("a", "1.1");
    assert_eq!(a11["status"], "needs_input", "{a11}");
    assert_eq!(a11["orchQuestion"], "self?");
    assert!(a11.get("orchAnswers").is_none(), "{a11}");
    assert_eq!(repo.task("a", "1.2")["status"], "completed");
    assert_eq!(repo.task("b", "1.1")["status"], "completed");
    let asked = named(ev, "task_needs_input");
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0]["plan"], "a");
    assert_eq!(asked[0]["question"], "self?");
    assert!(named(ev, "report_refused").len() >= 4, "{ev:?}");
}

/// Confined: its own answer (`orch answer`, or an edit of the status file) and a report in a
/// person's directory cannot even be written.
#[test]
fn ask_a_confined_agent_cannot_answer_itself_or_ask_for_another_task() {
    if !landlock() {
        return;
    }
    let (repo, rec, ev) = hostile_run("on");
    only_its_own_question_stands(&repo, rec.path(), &ev);
    let t = tried(rec.path());
    assert_ne!(code_of(&t, "answer"), 0, "its own answer: {t:?}");
    assert_ne!(code_of(&t, "edit"), 0, "the status file edited: {t:?}");
    assert_ne!(
        code_of(&t, "person-b"),
        0,
        "a person's report directory: {t:?}"
    );
}

/// Unconfined, orch's own rules still hold: a person's report directory is writable, but only a
/// task's own attempt asks, and an attempt that asked reports nothing more.
#[test]
fn ask_an_unconfined_agent_asks_only_for_its_own_task() {
    let (repo, rec, ev) = hostile_run("off");
    only_its_own_question_stands(&repo, rec.path(), &ev);
    let t = tried(rec.path());
    assert_eq!(code_of(&t, "person-b"), 0, "written: {t:?}");
    // The same report where persons' directories were before, beside plan b's attempts': taken
    // as nobody's (left as it was, no refusal said for it: one refusal in all).
    let old = repo
        .root()
        .join(".orch/state/.reports/b/person-old/report.json");
    assert!(
        std::fs::read_to_string(&old).is_ok_and(|r| r.contains("forged?")),
        "{}",
        old.display()
    );
    let refused: Vec<&Value> = named(&ev, "report_refused")
        .into_iter()
        .filter(|e| e["plan"] == "b")
        .collect();
    assert_eq!(refused.len(), 1, "the forged ask of plan b: {ev:?}");
    assert!(
        refused[0]["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("only a task's own agent asks"),
        "{refused:?}"
    );
}
