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

/// The attempts' directories on the lab's host `h1`, and those of them its copy of orch left
/// `abandoned` (kept for the lead to take back).
fn on_host(lab: &sshd::Lab) -> (Vec<String>, Vec<String>) {
    let dir = lab.server("h1").dir.join("attempts");
    let all: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let abandoned = all
        .iter()
        .filter(|k| dir.join(k).join("abandoned").exists())
        .cloned()
        .collect();
    (all, abandoned)
}

/// orch's records of the attempts lost with `h1` in `repo` (their keys).
fn lost_records(repo: &Repo) -> Vec<String> {
    std::fs::read_dir(repo.root().join(".orch/state/.ssh/.lost/h1"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

/// An agent whose first run writes `first.txt`, says so in `journal` and waits for `go`; a run
/// after `go` writes `task.txt` and ends.
fn late_agent(bin: &Path, journal: &Path, go: &Path) -> String {
    script(
        bin,
        "late.sh",
        &format!(
            "if [ ! -e {go} ]; then echo first > first.txt; echo started >> {j}; \
             while [ ! -e {go} ]; do sleep 0.02; done; exit 0; fi\n\
             echo done > task.txt\n",
            j = journal.display(),
            go = go.display()
        ),
    )
}

/// `orch up` of `repo` runs plan `a`'s first attempt on `h1`, whose network then fails: the
/// attempt is recorded lost and kept on the host (its snapshot holds `first.txt`); `orch up` is
/// stopped (SIGTERM: its running attempts too) while the host is down, and the host answers again. The attempt's key.
fn lose_an_attempt(lab: &mut sshd::Lab, repo: &Repo, journal: &Path) -> String {
    let mut cmd = repo.orch(&["up", "a"]);
    cmd.env("PATH", lab.path());
    let child = cmd.spawn().expect("orch up");
    support::wait_for("the first attempt on h1", || journal.exists());
    lab.go_down("h1");
    support::wait_for("the attempt kept on the host", || on_host(lab).1.len() == 1);
    support::wait_for("the attempt recorded lost, the host down", || {
        lost_records(repo).len() == 1 && repo.root().join(".orch/state/.ssh/.down/h1").exists()
    });
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid")),
        nix::sys::signal::Signal::SIGTERM,
    );
    let out = support::wait_within(child, repo.timeout(), "orch up");
    let (_, stdout, stderr) = support::code_out_err(&out);
    lab.restart("h1");
    let records = lost_records(repo);
    assert_eq!(records.len(), 1, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(on_host(lab).1, records, "the host keeps the lost attempt");
    records[0].clone()
}

/// Two repositories at the same path in turn (two leads that share a host's `dir`, or a
/// repository made anew): R1's attempt is lost with the host, R1 is moved aside, R2 is made at
/// its path and runs on the host, then R1 is moved back and runs again. R1 gets its late work
/// back under `refs/orch/attempts/lost/` (its record then removed, nothing left on the host),
/// and R2 never sees R1's snapshot (no lost ref, not its object). R2 another project, R2 with
/// the same plan and task names, and R2 a new `git init` of the same files (the same commits).
/// On the code before: R2's attempt dropped R1's kept work on the host ("orch did not record
/// that attempt lost"), and R1 never got it back, its record left forever.
#[test]
fn two_repositories_at_one_path_never_share_a_hosts_cache() {
    if !sshd::available() {
        return;
    }
    for variant in ["another project", "same plan names", "made anew"] {
        let mut lab = sshd::Lab::start(&["h1"]);
        let bin = lab.tmp.path().join("agents");
        std::fs::create_dir_all(&bin).expect("agents");
        let journal = lab.tmp.path().join("started");
        let go = lab.tmp.path().join("go");
        let agent = late_agent(&bin, &journal, &go);
        let other = script(&bin, "other.sh", "echo other > other.txt\n");
        let r1 = repo_on(&lab, &[("a", &agent)], "", "");
        let key = lose_an_attempt(&mut lab, &r1, &journal);
        std::fs::write(&go, "").expect("go");
        // R2, made elsewhere, takes R1's path while R1 is away.
        let r2 = match variant {
            "another project" => repo_on(&lab, &[("b", &other)], "", ""),
            "same plan names" => repo_on(&lab, &[("a", &other)], "", ""),
            _ => repo_on(&lab, &[("a", &agent)], "", ""),
        };
        if variant == "made anew" {
            assert_eq!(r2.rev("HEAD"), r1.rev("HEAD"), "the same commits");
        }
        let path = r1.root().to_path_buf();
        let away = path.with_extension("away");
        std::fs::rename(&path, &away).expect("R1 aside");
        std::fs::rename(r2.root(), &path).expect("R2 at R1's path");
        let plan = if variant == "another project" {
            "b"
        } else {
            "a"
        };
        let (code, out, err) = up(&r1, &lab, plan);
        let r2_statuses = r1.statuses(plan);
        std::fs::rename(&path, r2.root()).expect("R2 back");
        std::fs::rename(&away, &path).expect("R1 back");
        let what = format!("{variant}: R2's run:\nstdout:\n{out}\nstderr:\n{err}");
        assert_eq!(code, 0, "{what}");
        assert_eq!(
            r2_statuses,
            vec![("1.1".into(), "completed".into())],
            "{what}"
        );
        assert!(
            on_host(&lab).1.contains(&key),
            "{what}: R1's lost attempt is kept on the host: {:?}",
            on_host(&lab)
        );
        // R1 again: its late work comes back, saved, never landed.
        let (code, out, err) = up(&r1, &lab, "a");
        let what = format!("{variant}: R1's run:\nstdout:\n{out}\nstderr:\n{err}");
        assert_eq!(code, 0, "{what}");
        assert_eq!(
            r1.statuses("a"),
            vec![("1.1".into(), "completed".into())],
            "{what}"
        );
        let saved = format!("refs/orch/attempts/lost/h1/{key}");
        assert_eq!(
            r1.git(&[
                "for-each-ref",
                "--format=%(refname)",
                "refs/orch/attempts/lost/"
            ]),
            saved,
            "{what}"
        );
        assert_eq!(r1.git(&["show", &format!("{saved}:first.txt")]), "first");
        assert!(
            !r1.git(&["ls-tree", "--name-only", "plan/a"])
                .contains("first.txt"),
            "{what}: never landed"
        );
        assert_eq!(lost_records(&r1), Vec::<String>::new(), "{what}");
        assert_eq!(on_host(&lab).0, Vec::<String>::new(), "{what}");
        // R2 never saw R1's snapshot.
        let snapshot = r1.rev(&saved);
        assert_eq!(lost_refs(&r2), "", "{what}");
        assert!(
            !r2.git_ok(&["cat-file", "-e", &snapshot]),
            "{what}: R1's snapshot is in R2"
        );
    }
}

/// Every log of plan `plan`'s attempts, one after the other.
fn logs_of(repo: &Repo, plan: &str) -> String {
    std::fs::read_dir(repo.root().join(".orch/logs").join(plan))
        .map(|d| {
            d.flatten()
                .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

/// Plan `a` of one task on the lab's host `h1`, whose attempt was lost (its record kept here,
/// the host keeping its work) and whose agent may now end: the lab, the repository and the
/// attempt's key.
fn one_lost_attempt() -> (sshd::Lab, Repo, String) {
    one_lost_attempt_with("")
}

/// [`one_lost_attempt`] with `defaults` added to the manifest's `[defaults]`.
fn one_lost_attempt_with(defaults: &str) -> (sshd::Lab, Repo, String) {
    let mut lab = sshd::Lab::start(&["h1"]);
    let bin = lab.tmp.path().join("agents");
    std::fs::create_dir_all(&bin).expect("agents");
    let journal = lab.tmp.path().join("started");
    let go = lab.tmp.path().join("go");
    let agent = late_agent(&bin, &journal, &go);
    let repo = repo_on(&lab, &[("a", &agent)], "", defaults);
    let key = lose_an_attempt(&mut lab, &repo, &journal);
    std::fs::write(&go, "").expect("go");
    (lab, repo, key)
}

/// orch's record of a lost attempt whose work the host no longer keeps (its `dir` emptied
/// meanwhile) can never be taken back: the next attempt on the host says so once, in its log
/// and on the console, and removes the record. On the code before: the record stayed forever,
/// nothing said.
#[test]
fn a_lost_attempts_record_the_host_keeps_nothing_of_is_said_once_and_removed() {
    if !sshd::available() {
        return;
    }
    let (lab, repo, key) = one_lost_attempt();
    // The host's `dir` loses the attempt (a person cleans it).
    let kept = lab.server("h1").dir.join("attempts").join(&key);
    std::fs::remove_dir_all(&kept).expect("remove the kept attempt");
    let (code, out, err) = up(&repo, &lab, "a");
    let what = format!("stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(code, 0, "{what}");
    assert_eq!(
        repo.statuses("a"),
        vec![("1.1".into(), "completed".into())],
        "{what}"
    );
    assert_eq!(lost_records(&repo), Vec::<String>::new(), "{what}");
    assert_eq!(lost_refs(&repo), "", "{what}");
    let said = format!("record of attempt `{key}`, lost with host `h1`, is removed");
    let console = format!("{out}{err}");
    assert_eq!(console.matches(&said).count(), 1, "{what}");
    let logs = logs_of(&repo, "a");
    assert_eq!(logs.matches(&said).count(), 1, "{logs}");
    // Said once: a later run says nothing of it.
    let (_, out, err) = up(&repo, &lab, "a");
    assert!(!format!("{out}{err}").contains(&said), "{out}{err}");
}

/// A lead that upgrades keeps what an earlier orch recorded lost: that orch named the host's
/// cache by the repository's path alone and wrote the base alone in its record. Made here from
/// an attempt lost now (its record and the host's cache and mark rewritten as that orch left
/// them): the next run takes its late work back from that cache, and nothing is left.
#[test]
fn an_attempt_an_earlier_orch_recorded_lost_comes_back_after_the_upgrade() {
    if !sshd::available() {
        return;
    }
    let (lab, repo, key) = one_lost_attempt();
    // As an earlier orch left them.
    let record = repo.root().join(".orch/state/.ssh/.lost/h1").join(&key);
    let text = std::fs::read_to_string(&record).expect("record");
    let (base, cache) = text.trim().split_once(' ').expect("`<base> <cache>`");
    let (legacy, _) = cache.split_once('-').expect("`<path>-<identity>`");
    std::fs::write(&record, format!("{base}\n")).expect("old record");
    let dir = lab.server("h1").dir.clone();
    std::fs::rename(
        dir.join("repos").join(format!("{cache}.git")),
        dir.join("repos").join(format!("{legacy}.git")),
    )
    .expect("the old cache");
    std::fs::write(
        dir.join("attempts").join(&key).join("abandoned"),
        format!("{base} {legacy}\n"),
    )
    .expect("the old mark");
    let (code, out, err) = up(&repo, &lab, "a");
    let what = format!("stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(code, 0, "{what}");
    assert_eq!(
        repo.statuses("a"),
        vec![("1.1".into(), "completed".into())],
        "{what}"
    );
    let saved = format!("refs/orch/attempts/lost/h1/{key}");
    assert_eq!(
        repo.git(&[
            "for-each-ref",
            "--format=%(refname)",
            "refs/orch/attempts/lost/"
        ]),
        saved,
        "{what}"
    );
    assert_eq!(repo.git(&["show", &format!("{saved}:first.txt")]), "first");
    assert_eq!(lost_records(&repo), Vec::<String>::new(), "{what}");
    assert_eq!(on_host(&lab).0, Vec::<String>::new(), "{what}");
}

/// A lost attempt whose snapshot on the host is past what a change within the plan's limits
/// can bundle (the host's cache given a commit of 4 MiB of random bytes, in one file or in
/// nine, as an unconfined agent there can; limits 1 MiB and 10 files: at most 3 MiB bundled) is
/// refused once, on the host, never streamed here: said once, its record removed, nothing
/// kept there or here, and the task's next attempt runs. On the code before, such a snapshot
/// was streamed here whole and only then refused, and one past 512 MiB was bundled and
/// streamed again by every later attempt on the host.
#[test]
fn a_lost_snapshot_past_the_limits_is_refused_once_on_the_host() {
    if !sshd::available() {
        return;
    }
    for (what, files) in [("one file", 1), ("nine files", 9)] {
        let (lab, repo, key) =
            one_lost_attempt_with("max_change_size = \"1MiB\"\nmax_change_files = 10\n");
        let wt = lab.server("h1").dir.join("attempts").join(&key).join(&key);
        let each = 4 * 1024 * 1024 / files;
        let grow = format!(
            "set -e\nfor i in $(seq 1 {files}); do head -c {each} /dev/urandom > big-$i.bin; done\n\
             git add -A\ngit -c user.name=x -c user.email=x@x commit -q -m big\n\
             git update-ref refs/orch/snap/{key} HEAD\n"
        );
        let made = std::process::Command::new("sh")
            .args(["-c", &grow])
            .current_dir(&wt)
            .output()
            .expect("sh");
        assert!(made.status.success(), "{what}: {made:?}");
        let (code, out, err) = up(&repo, &lab, "a");
        let logs = logs_of(&repo, "a");
        let shown = format!("{what}: stdout:\n{out}\nstderr:\n{err}\nlogs:\n{logs}");
        assert_eq!(code, 0, "{shown}");
        assert_eq!(
            repo.statuses("a"),
            vec![("1.1".into(), "completed".into())],
            "{shown}"
        );
        let said = format!(
            "the work of attempt `{key}`, lost with host `h1`, is refused and dropped there: its snapshot is larger than {} bytes",
            (3 << 20) + 320
        );
        assert_eq!(format!("{out}{err}").matches(&said).count(), 1, "{shown}");
        assert_eq!(lost_refs(&repo), "", "{shown}");
        assert_eq!(lost_records(&repo), Vec::<String>::new(), "{shown}");
        assert_eq!(on_host(&lab).0, Vec::<String>::new(), "{shown}");
    }
}
