//! Whether a remote attempt was lost with its host comes from orch's own record, never from
//! what the agent did (real `sshd` on loopback, `support::sshd`): an agent on a host that exits
//! 255 or 254, is killed by a signal, or kills orch's side of its session is counted as failed
//! (`retries = 0`: one run), and only the work of an attempt orch recorded lost is taken back
//! from a host, checked as any snapshot: a snapshot orch refused (a tree over `max_file_size`,
//! a `.gitmodules` git's object checks refuse) is dropped on the host, never fetched by the next
//! attempt there.

use crate::support;

use std::path::Path;

use support::{Repo, sshd};

/// Writes an agent script into `dir`; its path.
fn script(dir: &Path, name: &str, body: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}")).expect("script");
    p.display().to_string()
}

/// A repository whose plans (`(name, agent)`, one task each) run with `executor = "ssh"` on the
/// lab's hosts, `host_extra` added to each `[[host]]` table, `defaults` to `[defaults]`.
fn repo_on(lab: &sshd::Lab, plans: &[(&str, &str)], host_extra: &str, defaults: &str) -> Repo {
    let repo = Repo::builder().identity_in_config().build();
    let hosts = lab
        .host_toml(4)
        .replace("slots = 4\n", &format!("slots = 4\n{host_extra}"));
    let mut toml = format!(
        "{hosts}[defaults]\nexecutor = \"ssh\"\nnetwork = \"open\"\nretries = 0\nbackoff = \"0s\"\n{defaults}\n"
    );
    for (n, agent) in plans {
        repo.write(
            &format!("docs/plans/{n}.md"),
            &crate::remote::plan(1).replace("Step 1", &format!("Step of {n}")),
        );
        toml.push_str(&format!(
            "\n[agents.{n}]\ncommand = [\"sh\", \"{agent}\"]\n\n[[plan]]\nname = \"{n}\"\nfile = \"docs/plans/{n}.md\"\nagent = \"{n}\"\n"
        ));
    }
    repo.write("plans.toml", &toml);
    repo.commit_all("plans");
    repo
}

fn up(repo: &Repo, lab: &sshd::Lab, plan: &str) -> (i32, String, String) {
    let mut cmd = repo.orch(&["up", plan]);
    cmd.env("PATH", lab.path());
    repo.run_cmd(&mut cmd)
}

/// The attempts of `plan` that started (its `task_started` events).
fn started(repo: &Repo, plan: &str) -> usize {
    std::fs::read_to_string(repo.root().join(".orch/state/.events.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "task_started" && v["plan"] == plan)
        .count()
}

/// What an agent does to end, and whether it needs an unconfined host (one that can reach
/// orch's processes there).
const ENDS: [(&str, &str, bool); 6] = [
    ("255", "exit 255", false),
    ("254", "exit 254", false),
    ("signal", "kill -9 $$", false),
    ("parent", "kill -9 $PPID; sleep 5", false),
    ("term", "kill -TERM $$", false),
    // orch's copy on the host (`orch remote-run`), an ancestor of the agent, killed.
    (
        "driver",
        "p=$PPID\nwhile [ \"$p\" -gt 1 ]; do\n  if tr '\\0' ' ' < /proc/$p/cmdline | grep -q ' remote-run '; then kill -9 \"$p\"; break; fi\n  p=$(awk '{print $4}' /proc/$p/stat)\ndone\nsleep 5",
        true,
    ),
];

/// Each way an agent on a host ends its attempt, confined (where it can) and on a host with
/// `sandbox = "off"`: the attempt is failed, counted, run once with `retries = 0` (one
/// `task_started`, one run in the agent's journal where it can write one), and no host is
/// said lost.
#[test]
fn an_agent_on_a_host_cannot_make_its_failed_attempt_lost() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start(&["h1"]);
    let bin = lab.tmp.path().join("agents");
    std::fs::create_dir_all(&bin).expect("agents");
    for (name, end, unconfined_only) in ENDS {
        for unconfined in [false, true] {
            if unconfined_only && !unconfined {
                continue;
            }
            let what = format!("{name}, unconfined: {unconfined}");
            let journal = lab.tmp.path().join(format!("journal-{name}-{unconfined}"));
            // A confined agent writes no journal outside its worktree: its runs are counted
            // from orch's events alone.
            let agent = script(
                &bin,
                &format!("{name}.sh"),
                &format!(
                    "echo run >> {j} 2>/dev/null\necho work > work.txt\n{end}\n",
                    j = journal.display()
                ),
            );
            let host_extra = if unconfined {
                "sandbox = \"off\"\n"
            } else {
                ""
            };
            let repo = repo_on(&lab, &[("a", &agent)], host_extra, "");
            let (code, out, err) = up(&repo, &lab, "a");
            assert_eq!(code, 5, "{what}: stdout:\n{out}\nstderr:\n{err}");
            assert_eq!(
                repo.statuses("a"),
                vec![("1.1".into(), "failed".into())],
                "{what}: {out}"
            );
            assert!(
                !out.contains("lost with its host"),
                "{what}: the agent's end is no lost host: {out}"
            );
            assert_eq!(started(&repo, "a"), 1, "{what}: one run: {out}");
            if unconfined {
                assert_eq!(
                    std::fs::read_to_string(&journal).unwrap_or_default(),
                    "run\n",
                    "{what}: the agent ran once"
                );
            }
            let (_, v, _) = repo.run(&["status", "--plan", "a", "--json"]);
            let v: serde_json::Value = serde_json::from_str(&v).expect("json");
            assert_eq!(v["tasks"][0]["retry_count"], 0, "{what}: {v}");
            // The host was never marked down.
            assert!(
                !repo.root().join(".orch/state/.ssh/.down/h1").exists(),
                "{what}: the host is not down"
            );
        }
    }
}

/// The refs under `refs/orch/attempts/lost/`.
fn lost_refs(repo: &Repo) -> String {
    repo.git(&["for-each-ref", "refs/orch/attempts/lost/"])
}

/// A plan whose snapshot orch refuses on a host (a tree over `max_file_size`, a `.gitmodules`
/// that git's object checks refuse, a file over the limit the host refuses itself), then
/// another plan on the same host: it completes, nothing of the refused work is under
/// `refs/orch/attempts/lost/` (nor anywhere in the repository: `git fsck` is clean), the host
/// keeps nothing of the refused attempt, and the log says what was dropped.
#[test]
fn a_refused_snapshot_is_dropped_on_the_host_never_taken_by_the_next_attempt() {
    if !sshd::available() {
        return;
    }
    let lab = sshd::Lab::start(&["h1"]);
    let bin = lab.tmp.path().join("agents");
    std::fs::create_dir_all(&bin).expect("agents");
    let good = script(&bin, "good.sh", "echo good > good.txt\n");
    let refused = [
        (
            "tree",
            "mkdir d\nfor i in $(seq 1 60); do : > d/file-with-a-rather-long-name-to-make-the-tree-object-bigger-$i; done\n",
        ),
        (
            "gitmodules",
            "printf '[submodule \"x\"]\\n\\tpath = x\\n\\turl = --upload-pack=touch /tmp/orch-pwned\\n' > .gitmodules\nmkdir -p y\nprintf x > y/f\n",
        ),
        ("blob", "head -c 4096 /dev/zero > big.bin\necho w > w.txt\n"),
    ];
    for (name, body) in refused {
        for unconfined in [false, true] {
            let what = format!("{name}, unconfined: {unconfined}");
            let evil = script(&bin, &format!("evil-{name}.sh"), body);
            let host_extra = if unconfined {
                "sandbox = \"off\"\n"
            } else {
                ""
            };
            let repo = repo_on(
                &lab,
                &[("p", &evil), ("q", &good)],
                host_extra,
                "max_file_size = \"2KiB\"\n",
            );
            let (code, out, err) = up(&repo, &lab, "p");
            assert_eq!(code, 5, "{what}: stdout:\n{out}\nstderr:\n{err}");
            assert_eq!(
                repo.statuses("p"),
                vec![("1.1".into(), "failed".into())],
                "{what}"
            );
            let (code, out, err) = up(&repo, &lab, "q");
            assert_eq!(code, 0, "{what}: stdout:\n{out}\nstderr:\n{err}");
            assert_eq!(
                repo.statuses("q"),
                vec![("1.1".into(), "completed".into())],
                "{what}"
            );
            assert_eq!(lost_refs(&repo), "", "{what}: nothing of p is taken back");
            let fsck = repo.git_out(&["fsck", "--no-dangling"]);
            assert!(
                fsck.status.success()
                    && !String::from_utf8_lossy(&fsck.stderr).contains("gitmodules"),
                "{what}: git fsck: {}{}",
                String::from_utf8_lossy(&fsck.stdout),
                String::from_utf8_lossy(&fsck.stderr)
            );
            // The host keeps nothing of p's attempt (dropped there by q's driver, said in its
            // log), and nothing of q's.
            let kept: Vec<String> = std::fs::read_dir(lab.server("h1").dir.join("attempts"))
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            assert!(kept.is_empty(), "{what}: the host keeps {kept:?}");
        }
    }
}
