//! Failover (`fallback`): a usage limit of agent A moves its plan's pending tasks to the
//! fallback B, and back to A once the limit resets; what was done is not run again. The limit is
//! the agent's whose attempt showed it, by orch's record of who ran the attempt: another agent's
//! words, or an agent's words anywhere but its own client's output, move nothing.

use crate::support;

use std::path::Path;
use std::process::Child;
use std::sync::mpsc::Receiver;

use serde_json::Value;
use support::{Repo, agent_at, events, named, read_lines, wait_line, wait_within};

/// 1.1, then 1.2, then 1.3.
const CHAIN: &str = "# P\n\n## Phase 1: Work\n- [ ] 1.1 one\n- [ ] 1.2 two (depends: 1.1)\n- [ ] 1.3 three (depends: 1.2)\n";
const TWO: &str = "# Q\n\n## Phase 1: Work\n- [ ] 1.1 one\n- [ ] 1.2 two (depends: 1.1)\n";

fn up(repo: &Repo) -> (Child, Receiver<Value>) {
    let mut child = repo.orch(&["up", "--json"]).spawn().expect("spawn orch up");
    let lines = read_lines(&mut child);
    (child, lines)
}

fn agent(r: &Path, who: &str, mode: &str, go: &str) -> String {
    let mut args = vec![r, Path::new(who), Path::new(mode)];
    if !go.is_empty() {
        args.push(Path::new(go));
    }
    agent_at("limited_agent.sh", &args)
}

/// Who ran what, in order: "A 1.1", …
fn ran(r: &Path) -> Vec<String> {
    std::fs::read_to_string(r.join("ran"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `orch up`'s events once it ended with exit `code`.
fn finished(child: Child, code: i32) -> Vec<Value> {
    let out = wait_within(child, std::time::Duration::from_secs(120), "orch up");
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    events(&String::from_utf8_lossy(&out.stdout))
}

#[test]
fn a_usage_limit_moves_pending_tasks_to_the_fallback_and_back_after_the_reset() {
    let rec = tempfile::tempdir().expect("tmp");
    let r = rec.path();
    let repo = Repo::new();
    repo.write("docs/plans/p.md", CHAIN);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nmax_agents = 4\nretries = 0\n\n[agents.A]\ncommand = {}\nfallback = [\"M\", \"B\"]\n\n\
             [agents.M]\ncommand = [\"/nonexistent/orch-fallback\"]\n\n\
             [agents.B]\ncommand = {}\n\n[[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"A\"\n",
            agent(r, "A", "1.2", ""),
            agent(r, "B", "none", "restored"),
        ),
    );
    repo.commit_all("plans");
    let (code, out, err) = repo.run(&["check"]);
    assert_eq!(code, 0, "{out}{err}");
    let (child, lines) = up(&repo);
    let mut seen = Vec::new();
    // M first: its program is missing (its pre-flight failed), so it is skipped, and B takes
    // the task.
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "agent_failover" && v["to"] == "B"
    });
    let failover = seen.last().cloned().expect("failover");
    assert_eq!(failover["from"], "A");
    assert!(
        failover["skipped"][0]
            .as_str()
            .is_some_and(|s| s.starts_with("M cannot work")),
        "{failover}"
    );
    assert_eq!(failover["plans"][0], "p");
    assert!(
        failover["until"]
            .as_str()
            .is_some_and(|u| u.starts_with("20")),
        "{failover}"
    );
    // B runs 1.2 while A waits out its limit; its attempt holds on until A is back.
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "agent_restored" && v["agent"] == "A"
    });
    std::fs::write(r.join("restored"), "").expect("go");
    let mut ev = seen;
    // Every task done; M was never needed but as a fallback, and never launched: exit 0.
    ev.extend(finished(child, 0));
    // 1.1 ran once (A), 1.2 was limited on A and done by B, 1.3 back on A.
    assert_eq!(ran(r), ["A 1.1", "A 1.2", "B 1.2", "A 1.3"]);
    assert!(named(&ev, "task_failed").is_empty(), "{ev:?}");
    assert_eq!(named(&ev, "agent_paused")[0]["agent"], "A");
    assert!(named(&ev, "agent_stopped").is_empty(), "{ev:?}");
    for (id, who) in [("1.1", "A"), ("1.2", "B"), ("1.3", "A")] {
        let t = repo.task("p", id);
        assert_eq!(t["status"], "completed", "{id}: {t}");
        assert_eq!(t["orchAgent"], who, "{id}: {t}");
        let file = repo.git(&["show", &format!("plan/p:p-{id}.txt")]);
        assert_eq!(file.trim(), who, "{id}: the work committed is its agent's");
    }
    let (code, out, _) = repo.run(&["status", "--plan", "p", "--json"]);
    assert_eq!(code, 0);
    let s: Value = serde_json::from_str(&out).expect("json");
    let t = s["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .find(|t| t["id"] == "1.2")
        .expect("1.2")
        .clone();
    assert_eq!(t["agent"], "B", "{t}");
}

/// Plan p (agent A, fallback B) runs while other agents speak of limits: C's own attempt prints
/// a usage limit naming A (C is paused, not A); D writes those words into a committed file and
/// its done note and exits 0 (nothing is paused). p's tasks launched meanwhile run on A: no
/// failover.
#[test]
fn another_agents_words_never_move_a_plans_tasks() {
    let rec = tempfile::tempdir().expect("tmp");
    let r = rec.path();
    let repo = Repo::new();
    repo.write("docs/plans/p.md", TWO);
    repo.write("docs/plans/q.md", TWO);
    repo.write("docs/plans/s.md", TWO);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nmax_agents = 4\nretries = 0\n\n[agents.A]\ncommand = {}\nfallback = [\"B\"]\n\n\
             [agents.B]\ncommand = {}\n\n[agents.C]\ncommand = {}\n\n[agents.D]\ncommand = {}\n\n\
             [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"A\"\n\n\
             [[plan]]\nname = \"q\"\nfile = \"docs/plans/q.md\"\nagent = \"C\"\n\n\
             [[plan]]\nname = \"s\"\nfile = \"docs/plans/s.md\"\nagent = \"D\"\n",
            agent(r, "A", "none", "go"),
            agent(r, "B", "none", ""),
            agent(r, "C", "first", ""),
            agent(r, "D", "words", ""),
        ),
    );
    repo.commit_all("plans");
    let (child, lines) = up(&repo);
    let mut seen = Vec::new();
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "agent_paused" && v["agent"] == "C"
    });
    wait_line(&lines, &mut seen, |v| {
        v["event"] == "task_finished" && v["plan"] == "s" && v["task"] == "1.2"
    });
    std::fs::write(r.join("go"), "").expect("go");
    let mut ev = seen;
    ev.extend(finished(child, 0));
    assert!(named(&ev, "agent_failover").is_empty(), "{ev:?}");
    let paused: Vec<&Value> = named(&ev, "agent_paused");
    assert_eq!(paused.len(), 1, "{paused:?}");
    assert_eq!(paused[0]["agent"], "C");
    let mut did = ran(r);
    did.sort();
    assert_eq!(
        did,
        [
            "A 1.1", "A 1.2", "C 1.1", "C 1.1", "C 1.2", "D 1.1", "D 1.2"
        ]
    );
    for id in ["1.1", "1.2"] {
        assert_eq!(repo.task("p", id)["orchAgent"], "A");
    }
    assert!(
        repo.git(&["show", "plan/s:s-1.1-words.txt"])
            .contains("usage limit")
    );
}

/// A client script named `name` in `bin` that fails its pre-flight as `how` says: `version`
/// (its `--version` fails), `flags` (its `--help` lists none of the preset's flags). Run as
/// an agent, it fails.
fn broken_client(bin: &Path, name: &str, how: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(bin).expect("bin");
    let p = bin.join(name);
    let script = match how {
        "version" => "#!/bin/sh\necho 'broken client' >&2\nexit 1\n",
        _ => {
            "#!/bin/sh\ncase \"$*\" in --version) echo 'old client 0.1'; exit 0;; *--help*) echo 'Usage: client [PROMPT]'; exit 0;; esac\necho 'unknown flag' >&2\nexit 2\n"
        }
    };
    std::fs::write(&p, script).expect("write client");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

/// Plan p's agent A hits a usage limit; its fallbacks before B all fail their pre-flight at the
/// start: a program that is not there, a known client whose `--version` fails, one that does not
/// accept the flags its preset passes. `orch up` says so before the run, failover passes over
/// them to B (the event and the output line name each with why), none is launched, and the
/// run ends with every task done and exit 0 (a fallback is needed only at a limit).
#[test]
fn a_fallback_that_fails_its_preflight_is_skipped_and_the_output_says_so() {
    let rec = tempfile::tempdir().expect("tmp");
    let r = rec.path();
    let bin = r.join("bin");
    let claude = broken_client(&bin, "claude", "version");
    let codex = broken_client(&bin, "codex", "flags");
    let repo = Repo::new();
    repo.write("docs/plans/p.md", CHAIN);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nmax_agents = 4\nretries = 0\n\n[agents.A]\ncommand = {}\nfallback = [\"M\", \"V\", \"F\", \"B\"]\n\n\
             [agents.M]\ncommand = [\"orch-no-such-fallback\"]\n\n\
             [agents.V]\ncommand = [\"{}\", \"-p\", \"{{{{ prompt }}}}\"]\n\n\
             [agents.F]\ncommand = [\"{}\", \"exec\", \"--json\", \"{{{{ prompt }}}}\"]\n\n\
             [agents.B]\ncommand = {}\n\n[[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"A\"\n",
            agent(r, "A", "1.2", ""),
            claude.display(),
            codex.display(),
            agent(r, "B", "none", ""),
        ),
    );
    repo.commit_all("plans");
    let out = wait_within(
        repo.orch(&["up"]).spawn().expect("spawn orch up"),
        std::time::Duration::from_secs(120),
        "orch up",
    );
    let (stdout, err) = (
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}{err}");
    // Said before the run: each, with why.
    for who in ["M", "V", "F"] {
        assert!(
            err.contains(&format!("note: fallback agent `{who}` cannot be used (")),
            "{err}"
        );
    }
    // The failover passes over them to B, and says why each was skipped.
    let log = std::fs::read_to_string(repo.root().join(".orch/state/.events.jsonl")).expect("log");
    let ev = events(&log);
    let failovers = named(&ev, "agent_failover");
    assert_eq!(failovers.len(), 1, "{failovers:?}");
    let failover = failovers[0];
    assert_eq!(
        (failover["from"].as_str(), failover["to"].as_str()),
        (Some("A"), Some("B")),
        "{failover}"
    );
    let skipped: Vec<&str> = failover["skipped"]
        .as_array()
        .expect("skipped")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(skipped.len(), 3, "{failover}");
    for (s, (who, why)) in skipped.iter().zip([
        ("M", "`orch-no-such-fallback` was not found"),
        ("V", "--version"),
        ("F", "does not accept"),
    ]) {
        assert!(
            s.starts_with(&format!("{who} cannot work: its pre-flight failed: "))
                && s.contains(why),
            "{s}"
        );
    }
    let line = stdout
        .lines()
        .find(|l| l.contains("agent A at a usage limit"))
        .unwrap_or_else(|| panic!("no failover line: {stdout}"));
    assert!(
        line.contains("go to B (skipped: M cannot work: its pre-flight failed: "),
        "{line}"
    );
    // None of them was launched; nothing failed, nobody was stopped.
    assert!(named(&ev, "agent_stopped").is_empty(), "{ev:?}");
    assert!(named(&ev, "task_failed").is_empty(), "{ev:?}");
    let did = ran(r);
    assert_eq!(&did[..3], ["A 1.1", "A 1.2", "B 1.2"], "{did:?}");
    assert!(
        did.iter()
            .all(|l| l.starts_with("A ") || l.starts_with("B ")),
        "{did:?}"
    );
    for id in ["1.1", "1.2", "1.3"] {
        assert_eq!(repo.task("p", id)["status"], "completed", "{id}");
    }
    assert_eq!(repo.task("p", "1.2")["orchAgent"], "B");
}

/// A limit of hours, the fallback does every task: the run ends then, without waiting for the
/// reset no task needs; the pause's reason is the limit's line, not what the agent said first.
#[test]
fn the_run_ends_once_the_fallback_has_done_every_task_however_long_the_limit() {
    let rec = tempfile::tempdir().expect("tmp");
    let r = rec.path();
    let repo = Repo::new();
    repo.write("docs/plans/p.md", CHAIN);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nmax_agents = 4\nretries = 0\n\n[agents.A]\ncommand = {}\nfallback = [\"B\"]\n\n\
             [agents.B]\ncommand = {}\n\n[[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"A\"\n",
            agent(r, "A", "hour", ""),
            agent(r, "B", "none", ""),
        ),
    );
    repo.commit_all("plans");
    let (child, lines) = up(&repo);
    // Within the test's deadline (the limit lasts two hours).
    let mut ev = finished(child, 0);
    ev.extend(lines.iter());
    assert_eq!(ran(r), ["A 1.1", "B 1.1", "B 1.2", "B 1.3"]);
    for id in ["1.1", "1.2", "1.3"] {
        assert_eq!(repo.task("p", id)["status"], "completed", "{id}");
    }
    assert_eq!(
        repo.subjects("plan/p"),
        ["p 1.1: one", "p 1.2: two", "p 1.3: three"]
    );
    let paused = named(&ev, "agent_paused");
    assert_eq!(paused.len(), 1, "{ev:?}");
    assert_eq!(
        paused[0]["reason"], "agent A: You've hit your usage limit. Try again in 2 hours.",
        "{ev:?}"
    );
    assert!(named(&ev, "agent_restored").is_empty(), "{ev:?}");
}
