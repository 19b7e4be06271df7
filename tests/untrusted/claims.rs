//! What an agent says touches its own attempt only: a hostile agent of plan `a` prints a usage
//! limit or an invalid key (in several clients' wordings) and exits 1, every attempt; plan `b`,
//! on the same agent, goes on and completes meanwhile (its second task launches after the
//! claim), sandbox on and off. The agent is one of one's own: no probe; a claim of one plan is
//! confirmed only by another plan's, and the log says so.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{self, Repo, events, named, read_lines, wait_line, wait_within};

/// Kills `orch up` (by its pid) if the test ends before it was waited for: a failed wait
/// leaves no run behind.
pub(super) struct KillOnDrop(pub(super) Option<u32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

/// 1.1 then 1.2.
pub(super) const TWO: &str =
    "# P\n\n## Phase 1: Work\n- [ ] 1.1 one\n- [ ] 1.2 two (depends: 1.1)\n";

fn manifest(r: &Path, variant: &str) -> String {
    let agent = support::agent_at("hostile_claim.sh", &[r, Path::new(variant)]);
    format!(
        "[defaults]\nmax_agents = 4\nretries = 0\n\n[agents.X]\ncommand = {agent}\n\n\
         [[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\nagent = \"X\"\n\n\
         [[plan]]\nname = \"b\"\nfile = \"docs/plans/b.md\"\nagent = \"X\"\n"
    )
}

#[test]
fn claims_one_plans_limit_or_bad_key_never_stops_another_plan() {
    for sandbox in support::sandboxes() {
        for variant in ["codex", "claude", "429", "auth"] {
            let what = format!("{variant}, sandbox {sandbox}");
            let rec = tempfile::tempdir().expect("tmp");
            let r = rec.path();
            let repo = Repo::new();
            repo.write("docs/plans/a.md", TWO);
            repo.write("docs/plans/b.md", TWO);
            repo.write("plans.toml", &manifest(r, variant));
            repo.commit_all("plans");
            let main_before = repo.git(&["rev-parse", "main"]);
            let mut child = repo
                .orch(&["up", "--json"])
                .env("ORCH_SANDBOX", sandbox)
                // A limit without a reset time would pause the agent for ten minutes.
                .env("ORCH_LIMIT_BACKOFF_MS", "600000")
                .spawn()
                .expect("spawn orch up");
            let mut guard = KillOnDrop(Some(child.id()));
            let lines = read_lines(&mut child);
            let mut seen = Vec::new();
            // Plan a's attempt claims it; only then may b's first task end (its second one
            // launches after the claim).
            wait_line(&lines, &mut seen, |v| {
                (v["event"] == "agent_paused" || v["event"] == "agent_stopped") && v["agent"] == "X"
            });
            std::fs::write(r.join("go"), "").expect("go");
            wait_line(&lines, &mut seen, |v| {
                (v["event"] == "task_finished" && v["plan"] == "b" && v["task"] == "1.2")
                    || v["event"] == "run_finished"
            });
            // Plan a waits for its limit's reset (or stopped): end the run.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let out = wait_within(child, std::time::Duration::from_secs(60), "orch up");
            guard.0 = None;
            let mut ev: Vec<Value> = seen;
            ev.extend(lines.try_iter());
            ev.extend(events(&String::from_utf8_lossy(&out.stdout)));
            for id in ["1.1", "1.2"] {
                let t = repo.task("b", id);
                assert_eq!(t["status"], "completed", "{what}: b {id}: {t}\n{ev:?}");
                let file = repo.git(&["show", &format!("plan/b:b-{id}.txt")]);
                assert_eq!(file.trim(), format!("b {id}"), "{what}");
            }
            // Plan a did nothing; the agent was paused or stopped for plan a only.
            assert_ne!(repo.task("a", "1.1")["status"], "completed", "{what}");
            let held: Vec<&Value> = named(&ev, "agent_paused")
                .into_iter()
                .chain(named(&ev, "agent_stopped"))
                .collect();
            assert!(!held.is_empty(), "{what}: {ev:?}");
            for h in &held {
                assert_eq!(h["plan"], "a", "{what}: never for every plan: {h}");
            }
            assert!(named(&ev, "agent_failover").is_empty(), "{what}: {ev:?}");
            // The log says which check applies (an agent of one's own: a second plan's word).
            assert!(
                named(&ev, "note").iter().any(|n| n["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("claims the same within"))),
                "{what}: {ev:?}"
            );
            assert_eq!(repo.git(&["rev-parse", "main"]), main_before, "{what}");
        }
    }
}

/// `tests/fixtures/agents/claims_client.sh` installed as `DIR/bin/claude` (orch knows a client
/// by its program's name, and probes it), its marks in `DIR`.
fn install_client(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).expect("bin");
    let script = std::fs::read_to_string(support::fixtures().join("claims_client.sh"))
        .expect("fixture")
        .replace("$CLAIMS_DIR", &dir.display().to_string());
    let p = bin.join("claude");
    std::fs::write(&p, script).expect("write client");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    bin
}

/// A client orch knows (`claude`): plan `a`'s attempt claims a usage limit; orch probes the
/// client itself. A probe that answers leaves plan `b` (same agent) running to completion; one
/// that shows the limit too pauses the agent for `b` as well (its second task, ready only
/// after the probe answered, never starts).
/// Sandbox on and off.
#[test]
fn claims_a_known_clients_claim_is_checked_by_a_probe() {
    for sandbox in support::sandboxes() {
        for probe in ["ok", "limit"] {
            let what = format!("probe {probe}, sandbox {sandbox}");
            let rec = tempfile::tempdir().expect("tmp");
            let r = rec.path();
            let bin = install_client(r);
            std::fs::write(r.join("probe"), probe).expect("probe");
            let repo = Repo::new();
            repo.write("docs/plans/a.md", TWO);
            repo.write("docs/plans/b.md", TWO);
            repo.write(
                "plans.toml",
                "[defaults]\nmax_agents = 4\nretries = 0\n\n\
                 [agents.X]\ncommand = [\"claude\", \"-p\", \"{{ prompt }}\"]\n\n\
                 [[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\nagent = \"X\"\n\n\
                 [[plan]]\nname = \"b\"\nfile = \"docs/plans/b.md\"\nagent = \"X\"\n",
            );
            repo.commit_all("plans");
            let path = format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            );
            let mut child = repo
                .orch(&["up", "--json"])
                .env("ORCH_SANDBOX", sandbox)
                .env("PATH", path)
                .spawn()
                .expect("spawn orch up");
            let mut guard = KillOnDrop(Some(child.id()));
            let lines = read_lines(&mut child);
            let mut seen = Vec::new();
            // The probe's answer: a note (it shows no limit), or the pause for every plan.
            wait_line(&lines, &mut seen, |v| {
                (v["event"] == "note"
                    && v["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("probe of agent X's client does not show")))
                    || (v["event"] == "agent_paused" && v["plan"].is_null())
            });
            std::fs::write(r.join("go"), "").expect("go");
            // Plan b ends its work: both tasks (the probe answered), or the task it had
            // started before the pause, if any (the probe showed the limit).
            let started = |seen: &[Value], id: &str| {
                seen.iter()
                    .any(|v| v["event"] == "task_started" && v["plan"] == "b" && v["task"] == id)
            };
            let last = match probe {
                "ok" => Some("1.2"),
                _ if started(&seen, "1.1") => Some("1.1"),
                _ => None,
            };
            if let Some(last) = last {
                wait_line(&lines, &mut seen, |v| {
                    (v["event"] == "task_finished" && v["plan"] == "b" && v["task"] == last)
                        || v["event"] == "run_finished"
                });
            }
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let out = wait_within(child, std::time::Duration::from_secs(60), "orch up");
            guard.0 = None;
            let mut ev: Vec<Value> = seen;
            ev.extend(lines.try_iter());
            ev.extend(events(&String::from_utf8_lossy(&out.stdout)));
            let everyone: Vec<&Value> = named(&ev, "agent_paused")
                .into_iter()
                .filter(|v| v["plan"].is_null())
                .collect();
            let b12 = repo.task("b", "1.2");
            if probe == "ok" {
                assert_eq!(
                    repo.task("b", "1.1")["status"],
                    "completed",
                    "{what}: {ev:?}"
                );
                assert!(everyone.is_empty(), "{what}: {everyone:?}");
                assert_eq!(b12["status"], "completed", "{what}: {ev:?}");
                let file = repo.git(&["show", "plan/b:b-1.2.txt"]);
                assert_eq!(file.trim(), "b 1.2", "{what}");
            } else {
                assert_eq!(everyone.len(), 1, "{what}: {ev:?}");
                assert!(
                    everyone[0]["reason"]
                        .as_str()
                        .is_some_and(|m| m.contains("orch's probe")),
                    "{what}: {everyone:?}"
                );
                assert_ne!(b12["status"], "completed", "{what}");
                // b's second task (ready only after the probe answered) never starts.
                assert!(
                    !ev.iter().any(|v| v["event"] == "task_started"
                        && v["plan"] == "b"
                        && v["task"] == "1.2"),
                    "{what}: {ev:?}"
                );
            }
            assert_ne!(repo.task("a", "1.1")["status"], "completed", "{what}");
        }
    }
}
