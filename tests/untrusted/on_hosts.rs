//! The safety rules of `exemptions.rs`, `claims.rs` and `own_dirs.rs` where the attempt runs on
//! a `[[host]]` (`executor = "ssh"`, a real `sshd` on loopback: `support::sshd`), as issue 62
//! asks ("local and on an ssh host where the attempt can run there"). The agent is as hostile
//! there as here: its work comes back as a bundle that orch checks here before any commit, and
//! what it prints comes back as its log. Each checks the status, the ref and the files as the
//! local one does; sandbox on and off (orch's copy on the host confines it there).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::claims::{KillOnDrop, TWO};
use super::exemptions::{
    QUOTES, failed_naming_plans_toml, hook, merge_lands, merge_refused, round_agent, round_checked,
    self_allowed, texts, thread,
};
use super::own_dirs::PLANTS;
use crate::support::{
    self, Repo, events, named, read_lines, review, sshd, toml_array, wait_line, wait_within,
};

/// `orch ARGS` with the lab's `ssh` first on `PATH` and the manifest's `sandbox`.
fn run_with(lab: &sshd::Lab, repo: &Repo, args: &[&str]) -> (i32, String, String) {
    let mut cmd = repo.orch(args);
    cmd.env("PATH", lab.path()).env_remove("ORCH_SANDBOX");
    repo.run_cmd(&mut cmd)
}

/// A task on a host whose text (description, body, its own commit message) names `plans.toml`
/// and whose agent there adds a `[[notify]]` hook to it (or an `allow_protected` of its own as
/// well): the task fails naming the file, `plan/p` does not move, the hook never runs, `orch
/// merge p` is refused and `main` does not move; sandbox on and off. With the lead's
/// `allow_protected` the same change from the host is committed and lands.
#[test]
fn on_hosts_a_tasks_text_never_unlocks_plans_toml() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start(&["h1"]);
    let repo_of = |plan: &str, script: &str, sandbox: &str, plan_keys: &str| {
        let repo = Repo::builder().identity_in_config().build();
        repo.write("docs/plans/p.md", plan);
        repo.write(
            "plans.toml",
            &format!(
                "{}[defaults]\nagent = \"a\"\nretries = 0\nsandbox = \"{sandbox}\"\n\
                 executor = \"ssh\"\nnetwork = \"open\"\n\n\
                 [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n{plan_keys}\n\n\
                 [agents.a]\ncommand = {}\n",
                lab.host_toml(2),
                toml_array(&["sh", "-c", script])
            ),
        );
        repo.commit_all("plans");
        repo
    };
    for sandbox in support::sandboxes() {
        for (what, plan, script) in texts() {
            let marker_dir = tempfile::tempdir().expect("tmp");
            let marker = marker_dir.path().join("pwned");
            for edit in [hook(&marker), self_allowed(&marker)] {
                let what = format!("on a host, {what}, sandbox {sandbox}: {edit}");
                let repo = repo_of(plan, &script(&edit), sandbox, "");
                let main_ = repo.rev("main");
                let (code, out, err) = run_with(&lab, &repo, &["up", "--json"]);
                assert_eq!(code, 5, "{what}\n{out}\n{err}");
                let ev = events(&out);
                assert!(
                    !named(&ev, "task_on_host").is_empty(),
                    "{what}: it did not run on the host\n{out}"
                );
                failed_naming_plans_toml(&repo, "p", "1.1", &what);
                assert_eq!(repo.rev("plan/p"), main_, "{what}: committed on plan/p");
                merge_refused(&repo, "p", &main_, &what);
                assert!(!marker.exists(), "{what}: the hook ran");
            }
            // The lead's exemption: the same change from the host lands.
            let what = format!("on a host, {what}, sandbox {sandbox}, allowed by the lead");
            let repo = repo_of(
                plan,
                &script(&hook(&marker)),
                sandbox,
                "allow_protected = [\"plans.toml\"]",
            );
            let (code, out, err) = run_with(&lab, &repo, &["up", "--json"]);
            assert_eq!(code, 0, "{what}\n{out}\n{err}");
            assert_eq!(repo.task("p", "1.1")["status"], "completed", "{what}");
            merge_lands(&repo, "p", &what);
            assert!(!marker.exists(), "{what}: the hook ran");
        }
    }
}

/// A review round's task run on a host quotes the agent's own diff line naming `plans.toml` (or
/// the reviewer's words naming it), and the agent there adds a `[[notify]]` hook in that task:
/// the round's task fails naming the file, `plan/a` and the pull request's branch do not move,
/// nothing is pushed, `orch merge a` is refused and the hook never runs; sandbox on and off. With
/// the lead's `allow_protected` the round's commit from the host is pushed and lands.
#[test]
fn on_hosts_a_review_round_quoting_the_agents_diff_unlocks_nothing() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start(&["h1"]);
    let cases = support::sandboxes()
        .into_iter()
        .flat_map(|sandbox| QUOTES.into_iter().map(move |q| (sandbox, q, false)))
        .chain([("on", QUOTES[0], true)]);
    for (sandbox, (body, hunk), allowed) in cases {
        let marker_dir = tempfile::tempdir().expect("tmp");
        let marker = marker_dir.path().join("pwned");
        let what = format!("on a host, sandbox {sandbox}, allowed: {allowed}: {body} / {hunk}");
        let extra = format!(
            "sandbox = \"{sandbox}\"\nexecutor = \"ssh\"\nnetwork = \"open\"\n{}\n{}",
            if allowed {
                "allow_protected = [\"plans.toml\"]\n"
            } else {
                ""
            },
            lab.host_toml(2)
        );
        let (repo, gh) = review::finished_with(
            &["sh", "-c", &round_agent(&marker)],
            &extra,
            Some(&lab.path()),
        );
        thread(&gh, body, hunk);
        let tip = repo.rev("plan/a");
        let mut cmd = review::orch_cmd_with(
            &repo,
            &gh,
            &["pr", "--watch", "--once", "--json"],
            &lab.path(),
        );
        cmd.env_remove("ORCH_SANDBOX");
        let (code, out, err) = repo.run_cmd(&mut cmd);
        // The round's own `orch up` journals its events (its console is `orch pr`'s).
        let journal = std::fs::read_to_string(repo.root().join(".orch/state/.events.jsonl"))
            .expect("the events journal");
        assert!(
            review::named(&review::events(&journal), "task_on_host")
                .iter()
                .any(|e| e["plan"] == "a" && e["task"] == "2.1"),
            "{what}: the round's task did not run on the host\n{out}\n{err}\n{journal}"
        );
        round_checked(&repo, &gh, (code, &out, &err), &tip, allowed, &what);
        assert!(!marker.exists(), "{what}: the hook ran");
    }
}

/// A hostile agent of plan `a` on a host prints a usage limit or an invalid key (in several
/// clients' wordings) and exits 1, every attempt; plan `b`, on the same agent (on the host too,
/// or here), goes on and completes meanwhile (its second task launches after the claim), the
/// agent paused or stopped for plan `a` only; sandbox on and off.
#[test]
fn on_hosts_one_plans_limit_or_bad_key_never_stops_another_plan() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start(&["h1"]);
    // Where each plan runs: (what, the agent's keys, plan a's keys, plan b's keys).
    let layouts = [
        ("both on the host", "executor = \"ssh\"\n", "", ""),
        ("a on the host, b here", "", "executor = \"ssh\"\n", ""),
    ];
    for sandbox in support::sandboxes() {
        for (layout, agent_keys, a_keys, b_keys) in layouts {
            for variant in ["codex", "claude", "429", "auth"] {
                let what = format!("{layout}, {variant}, sandbox {sandbox}");
                let rec = tempfile::tempdir().expect("tmp");
                let r = rec.path();
                let agent = support::agent_at("hostile_claim.sh", &[r, Path::new(variant)]);
                let repo = Repo::builder().identity_in_config().build();
                repo.write("docs/plans/a.md", TWO);
                repo.write("docs/plans/b.md", TWO);
                repo.write(
                    "plans.toml",
                    &format!(
                        "{}[defaults]\nmax_agents = 4\nretries = 0\n\n\
                         [agents.X]\ncommand = {agent}\nnetwork = \"open\"\n{agent_keys}\n\
                         [[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\nagent = \"X\"\n{a_keys}\n\
                         [[plan]]\nname = \"b\"\nfile = \"docs/plans/b.md\"\nagent = \"X\"\n{b_keys}",
                        lab.host_toml(4)
                    ),
                );
                repo.commit_all("plans");
                let main_before = repo.rev("main");
                let mut child = repo
                    .orch(&["up", "--json"])
                    .env("PATH", lab.path())
                    .env("ORCH_SANDBOX", sandbox)
                    // A limit without a reset time would pause the agent for ten minutes.
                    .env("ORCH_LIMIT_BACKOFF_MS", "600000")
                    .spawn()
                    .expect("spawn orch up");
                let mut guard = KillOnDrop(Some(child.id()));
                let lines = read_lines(&mut child);
                let mut seen = Vec::new();
                // Plan a's attempt claims it; only then may b's first task end.
                wait_line(&lines, &mut seen, |v| {
                    ((v["event"] == "agent_paused" || v["event"] == "agent_stopped")
                        && v["agent"] == "X")
                        || v["event"] == "run_finished"
                });
                std::fs::write(r.join("go"), "").expect("go");
                wait_line(&lines, &mut seen, |v| {
                    (v["event"] == "task_finished" && v["plan"] == "b" && v["task"] == "1.2")
                        || v["event"] == "run_finished"
                });
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
                let out = wait_within(child, std::time::Duration::from_secs(60), "orch up");
                guard.0 = None;
                let mut ev: Vec<Value> = seen;
                ev.extend(lines.try_iter());
                ev.extend(events(&String::from_utf8_lossy(&out.stdout)));
                let err = String::from_utf8_lossy(&out.stderr);
                // Plan a's attempt ran on the host.
                assert!(
                    named(&ev, "task_on_host").iter().any(|e| e["plan"] == "a"),
                    "{what}: a did not run on the host: {ev:?}\n{err}"
                );
                for id in ["1.1", "1.2"] {
                    let t = repo.task("b", id);
                    assert_eq!(
                        t["status"], "completed",
                        "{what}: b {id}: {t}\n{ev:?}\n{err}"
                    );
                    let file = repo.git(&["show", &format!("plan/b:b-{id}.txt")]);
                    assert_eq!(file.trim(), format!("b {id}"), "{what}");
                }
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
                assert_eq!(repo.rev("main"), main_before, "{what}");
            }
        }
    }
}

/// A task on a host whose agent plants files in orch's directories (or a link at `.orch`) and
/// leaves them for orch to commit, unconfined and confined: the task fails naming the path,
/// nothing is committed on `plan/p`, `main` does not move, plan `q` (here) completes and its
/// worktree has nothing planted; `orch merge p` lands nothing of it.
#[test]
fn on_hosts_a_task_that_writes_into_orchs_directories_fails_naming_the_path() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start(&["h1"]);
    for sandbox in support::sandboxes() {
        for (line, path, defaults) in PLANTS {
            let what = format!("on a host: {line} (sandbox {sandbox})");
            let repo = Repo::builder().identity_in_config().build();
            for plan in ["p", "q"] {
                repo.write(
                    &format!("docs/plans/{plan}.md"),
                    &format!("# {plan}\n\n## Phase 1: Work\n- [ ] 1.1 Do the work\n"),
                );
            }
            repo.write(
                "plans.toml",
                &format!(
                    "{}[defaults]\nretries = 0\nsandbox = \"{sandbox}\"\n{defaults}\n\
                     [agents.pa]\ncommand = {}\nnetwork = \"open\"\n\n\
                     [agents.qa]\ncommand = {}\n\n\
                     [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"pa\"\nexecutor = \"ssh\"\n\n\
                     [[plan]]\nname = \"q\"\nfile = \"docs/plans/q.md\"\nagent = \"qa\"\n",
                    lab.host_toml(2),
                    toml_array(&["sh", "-c", &format!("{line}\ntouch done.txt")]),
                    toml_array(&["sh", "-c", "echo \"$ORCH_TASK\" >> q.txt"]),
                ),
            );
            repo.commit_all("plans");
            let main = repo.rev("main");
            let (code, out, err) = run_with(&lab, &repo, &["up", "--json"]);
            assert_eq!(code, 5, "{what}\n{out}\n{err}");
            let ev = events(&out);
            assert!(
                named(&ev, "task_on_host").iter().any(|e| e["plan"] == "p"),
                "{what}: p did not run on the host\n{out}"
            );
            let task = repo.task("p", "1.1");
            assert_eq!(task["status"], "failed", "{what}: {task}");
            let error = task["error"].as_str().unwrap_or_default();
            assert!(
                error.contains("orch's own directories") && error.contains(path),
                "{what}: {error}"
            );
            assert_eq!(repo.rev("plan/p"), main, "{what}: committed on plan/p");
            assert!(
                !repo
                    .tree_files("plan/p")
                    .iter()
                    .any(|f| f.starts_with(path)),
                "{what}"
            );
            assert_eq!(repo.rev("main"), main, "{what}: main moved");
            assert_eq!(repo.task("q", "1.1")["status"], "completed", "{what}");
            let q_tree = if defaults.contains("worktree_root") {
                repo.root().join("wt/q")
            } else {
                repo.worktree("q")
            };
            assert!(
                !q_tree.join("planted.txt").exists(),
                "{what}: planted in q's worktree"
            );
            // Nothing of it lands: `orch merge p` has nothing of the plant to land.
            let _ = repo.run(&["merge", "p"]);
            assert!(
                !repo.tree_files("main").iter().any(|f| f.starts_with(path)),
                "{what}: main holds it"
            );
            assert!(
                !q_tree.join("planted.txt").exists(),
                "{what}: planted in q's worktree by the merge"
            );
        }
    }
}
