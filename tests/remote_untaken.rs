//! An attempt that its host could not take (real `sshd` on loopback, `support::sshd`): orch's
//! own side failed there before the agent started (the attempt's worktree, its directory, …).
//! It is not the agent's failure: not counted, no retry used, the console names the host and
//! the cause, and the task runs again (a bounded number of times in a row: a host that never
//! takes it does not make the task run forever). Red team 9: another plan's agent filled the
//! host's disk; each attempt of the other plan was recorded "the agent exited with status 1
//! without reporting", used a retry, and the plan ended failed.
//!
//! No sleep orders anything: the fixtures (the host's `git`, the agents) wait for each other's
//! files, each wait bounded.

use crate::support;

use std::path::Path;

use support::{Repo, sshd};

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn events(repo: &Repo, name: &str, plan: &str) -> Vec<serde_json::Value> {
    lines(&repo.root().join(".orch/state/.events.jsonl"))
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == name && v["plan"] == plan)
        .collect()
}

fn log(repo: &Repo, plan: &str, task: &str) -> String {
    std::fs::read_to_string(repo.root().join(format!(".orch/logs/{plan}/{task}.log")))
        .unwrap_or_default()
}

/// A lab of one host `h1` whose sessions run `script` as their `git` (it ends by running git's
/// own).
fn lab_with_git(script: &str) -> (tempfile::TempDir, sshd::Lab) {
    let tools = tempfile::tempdir().expect("tmp");
    let git = tools.path().join("git");
    std::fs::write(&git, script).expect("git");
    std::fs::set_permissions(&git, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let lab = sshd::Lab::start_with(
        &["h1"],
        &format!(
            "SetEnv PATH={}:/usr/local/bin:/usr/bin:/bin",
            tools.path().display()
        ),
    );
    (tools, lab)
}

/// A repository whose plans (name, agent command) run on the lab's host, `retries = 0`.
fn repo_of(lab: &sshd::Lab, sandbox: &str, plans: &[(&str, &str)]) -> Repo {
    let repo = Repo::builder().identity_in_config().build();
    let mut toml = format!(
        "{}[defaults]\nexecutor = \"ssh\"\nnetwork = \"open\"\nsandbox = \"{sandbox}\"\nretries = 0\nmax_agents = 4\n\n",
        lab.host_toml(2)
    );
    for (name, command) in plans {
        repo.write(
            &format!("docs/plans/{name}.md"),
            "# Plan\n\n## Phase 1: One\n- [ ] 1.1 Step 1\n",
        );
        toml.push_str(&format!(
            "[agents.{name}]\ncommand = [\"sh\", \"-c\", {command:?}]\nreport = \"exit\"\n\n\
             [[plan]]\nname = \"{name}\"\nfile = \"docs/plans/{name}.md\"\nagent = \"{name}\"\n\n"
        ));
    }
    repo.write("plans.toml", &toml);
    repo.commit_all("plans");
    repo
}

/// The host's `dir` on a small tmpfs, full when orch's copy there makes the attempt's places (a
/// file fills it right after the base reached the host's cache, as another plan's agent or
/// anything else on the host fills it): the attempt fails there before its agent starts. The
/// next attempt's check of the cache frees the space (the host's `git` removes the file), and
/// it runs. Sandbox on and off. Failed on the code before: the task failed ("the agent exited
/// with status 1 without reporting"), its only try spent.
#[test]
fn an_attempt_on_a_host_whose_disk_is_full_costs_no_retry() {
    if !sshd::available() {
        return;
    }
    for sandbox in ["on", "off"] {
        disk_full(sandbox);
    }
}

/// Unmounts the tmpfs when dropped.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn disk_full(sandbox: &str) {
    let flags = tempfile::tempdir().expect("flags");
    let checks = flags.path().join("checks");
    // The host's git: the first transfer into the cache, once done, fills the disk; the second
    // check of the cache (the next attempt's) frees it.
    let script = format!(
        "#!/bin/sh\n\
         if [ \"$4\" = fetch ] && [ ! -e {filled} ]; then\n\
           /usr/lib/git-core/git \"$@\"; s=$?\n\
           : > {filled}; dd if=/dev/zero of=HOSTDIR/filler bs=1M count=400 2>/dev/null\n\
           exit $s\n\
         fi\n\
         if [ \"$2\" = cat-file ]; then\n\
           n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}\n\
           if [ $n -ge 2 ]; then rm -f HOSTDIR/filler; fi\n\
         fi\n\
         exec /usr/lib/git-core/git \"$@\"\n",
        filled = flags.path().join("filled").display(),
        c = checks.display(),
    );
    let (tools, lab) = lab_with_git(&script);
    let dir = lab.server("h1").dir.clone();
    std::fs::write(
        tools.path().join("git"),
        script.replace("HOSTDIR", &dir.display().to_string()),
    )
    .expect("git");
    std::fs::create_dir_all(&dir).expect("host dir");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=160m", "orchtest"])
        .arg(&dir)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        // CI runs as root, where a tmpfs can be mounted: there, a mount that fails is a failure.
        assert!(
            !nix::unistd::geteuid().is_root(),
            "cannot mount a tmpfs on `{}` as root",
            dir.display()
        );
        eprintln!("skipped: cannot mount a tmpfs (not root)");
        return;
    }
    let _mounted = Mounted(dir.clone());
    let repo = repo_of(&lab, sandbox, &[("b", RAN)]);
    let mut cmd = repo.orch(&["up"]);
    cmd.env("PATH", lab.path());
    let (code, out, err) = repo.run_cmd(&mut cmd);
    let b_log = log(&repo, "b", "1.1");
    let all = format!("sandbox {sandbox}\nstdout:\n{out}\nstderr:\n{err}\nlog:\n{b_log}");
    assert_eq!(code, 0, "{all}");
    assert_eq!(
        repo.statuses("b"),
        vec![("1.1".to_string(), "completed".to_string())],
        "{all}"
    );
    assert_eq!(repo.git(&["show", "plan/b:w.txt"]), "w", "{all}");
    // The attempt the host could not take, then the one that ran: its agent ran once.
    assert_eq!(events(&repo, "task_started", "b").len(), 2, "{all}");
    assert_eq!(b_log.matches("agent-ran").count(), 1, "{all}");
    assert!(
        out.contains(
            "attempt lost with its host (not counted, the task runs again): its host stopped answering or could not take the attempt; the attempt's log says why: host `h1` could not take the attempt (the agent did not start)"
        ) && out.contains("No space left on device"),
        "{all}"
    );
    assert!(
        b_log.contains("host `h1` could not take the attempt (the agent did not start)")
            && !b_log.contains("without reporting"),
        "{all}"
    );
}

/// The fixture agent: says it ran (a word its command line does not hold) and leaves its work.
const RAN: &str = "echo agent\"-\"ran; echo w > w.txt";

/// The host's `dir/attempts`, where orch's copy makes each attempt's directory, is a file (no
/// mount needed). The host's `git` counts the checks of orch's cache (one per attempt) and
/// removes the file at the `heal`-th: the attempts before it fail on the host before the agent
/// starts. Healed at the second attempt: the task completes, no retry used, its agent run once.
/// Never healed: the task runs again a bounded number of times (five not counted), then the
/// attempt counts, said as the host's failure, never as the agent's exit. Failed on the code
/// before: the first attempt counted ("the agent exited with status 1 without reporting").
#[test]
fn an_attempt_whose_directory_the_host_cannot_make_costs_no_retry() {
    if !sshd::available() {
        return;
    }
    for (sandbox, heal) in [("on", 2), ("off", 2), ("off", 100)] {
        attempts_dir_a_file(sandbox, heal);
    }
}

fn attempts_dir_a_file(sandbox: &str, heal: usize) {
    let flags = tempfile::tempdir().expect("flags");
    let counter = flags.path().join("checks");
    let script = format!(
        "#!/bin/sh\n\
         if [ \"$2\" = cat-file ]; then\n\
           n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}\n\
           if [ $n -ge {heal} ]; then rm -f HOSTDIR/attempts; fi\n\
         fi\n\
         exec /usr/lib/git-core/git \"$@\"\n",
        c = counter.display(),
    );
    let (tools, lab) = lab_with_git(&script);
    let dir = lab.server("h1").dir.clone();
    std::fs::write(
        tools.path().join("git"),
        script.replace("HOSTDIR", &dir.display().to_string()),
    )
    .expect("git");
    std::fs::create_dir_all(&dir).expect("host dir");
    std::fs::write(dir.join("attempts"), "not a directory").expect("obstacle");
    let repo = repo_of(&lab, sandbox, &[("p", RAN)]);
    let mut cmd = repo.orch(&["up"]);
    cmd.env("PATH", lab.path());
    let (code, out, err) = repo.run_cmd(&mut cmd);
    let all = format!(
        "sandbox {sandbox}, heal {heal}\nstdout:\n{out}\nstderr:\n{err}\nlog:\n{}",
        log(&repo, "p", "1.1")
    );
    let said = "attempt lost with its host (not counted, the task runs again): its host stopped answering or could not take the attempt; the attempt's log says why: host `h1` could not take the attempt (the agent did not start): cannot make";
    let ran = log(&repo, "p", "1.1").matches("agent-ran").count();
    if heal == 2 {
        assert_eq!(code, 0, "{all}");
        assert_eq!(
            repo.statuses("p"),
            vec![("1.1".to_string(), "completed".to_string())],
            "{all}"
        );
        assert_eq!(repo.git(&["show", "plan/p:w.txt"]), "w", "{all}");
        assert_eq!(events(&repo, "task_started", "p").len(), 2, "{all}");
        assert_eq!(ran, 1, "{all}");
        assert_eq!(out.matches(said).count(), 1, "{all}");
    } else {
        // Five not counted, the sixth counts (`retries = 0`: the task fails), said as the
        // host's failure; the agent never ran.
        assert_ne!(code, 0, "{all}");
        assert_eq!(
            repo.statuses("p"),
            vec![("1.1".to_string(), "failed".to_string())],
            "{all}"
        );
        assert_eq!(events(&repo, "task_started", "p").len(), 6, "{all}");
        assert_eq!(ran, 0, "{all}");
        assert_eq!(out.matches(said).count(), 5, "{all}");
        let error = repo.task("p", "1.1")["error"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(
            error.contains("host `h1` could not take the attempt (the agent did not start)")
                && error.contains("lost with its host: this attempt counts, after 5")
                && !error.contains("exited with status"),
            "{error}\n{all}"
        );
    }
}
