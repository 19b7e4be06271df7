//! The Slurm executor: `sbatch --parsable` to submit, one `squeue` for the states of every job,
//! `scontrol show job` for how one ended, `scancel` to cancel.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::agent_env::{self, GIT_ENV};

use crate::executor::batch::{
    BatchScheduler, JobEnd, JobSpec, JobState, ListedJob, NOT_SHARED_EXIT,
};

/// The job script: fixed text, the agent's argv arrives as its arguments. It checks that the
/// node sees what the agent needs (else exits [`NOT_SHARED_EXIT`] naming the missing path),
/// enters the worktree and `exec`s the agent, so the job's exit status is the agent's.
pub(crate) fn job_script() -> String {
    format!(
        r#"#!/bin/sh
# Written by orch: runs one agent. Its argv is this script's arguments; nothing here is built
# from task text.
for path in "$ORCH_WORKTREE" "$ORCH_STATUS_FILE" "$ORCH_BIN"; do
    if [ ! -e "$path" ]; then
        echo "orch: \`$path\` is not visible on node $(hostname): worktree_root, state_dir, log_dir and orch itself must be on a filesystem shared with the compute nodes" >&2
        exit {NOT_SHARED_EXIT}
    fi
done
cd "$ORCH_WORKTREE" || exit {NOT_SHARED_EXIT}
exec "$@"
"#
    )
}

/// Slurm through its commands (found on `PATH`).
pub(crate) struct Slurm {
    /// The job script, written once per run.
    script: PathBuf,
    /// Jobs of this user only (`squeue -u`).
    uid: u32,
}

impl Slurm {
    /// Writes the job script into `dir` (orch's state directory).
    pub(crate) fn new(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let script = dir.join("slurm-job.sh");
        let text = job_script();
        let read = crate::untrusted::read::text(&script, crate::untrusted::read::STATE);
        if read.ok().as_deref() != Some(text.as_str()) {
            let tmp = dir.join(format!(".slurm-job.sh.{}", std::process::id()));
            crate::links::write(&tmp, text.as_bytes())?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
            std::fs::rename(&tmp, &script)?;
        }
        Ok(Self {
            script,
            uid: nix::unistd::getuid().as_raw(),
        })
    }

    /// Whether Slurm's commands are there and the controller answers.
    pub(crate) fn check() -> Result<(), String> {
        let out = run(
            crate::agent_env::command("squeue").args(["-h", "-j", "0"]),
            "squeue",
        )?;
        // An unknown job id is an answer: the controller is reachable.
        if out.status.success() || String::from_utf8_lossy(&out.stderr).contains("Invalid job id") {
            Ok(())
        } else {
            Err(format!(
                "the Slurm controller does not answer: squeue: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// The arguments of `sbatch` for `spec` (without the program).
    pub(crate) fn sbatch_args(&self, spec: &JobSpec) -> Vec<String> {
        let o = &spec.options;
        let mut args = vec![
            "--parsable".to_string(),
            format!("--job-name={}", spec.name),
            format!("--comment={}", spec.tag),
            format!("--chdir={}", spec.cwd.display()),
            // `%` starts a replacement symbol in Slurm's file names; `%%` is a literal one.
            format!(
                "--output={}",
                spec.log.display().to_string().replace('%', "%%")
            ),
            "--open-mode=append".to_string(),
            "--export=ALL".to_string(),
            format!("--time={}", minutes(spec.time_limit)),
        ];
        let optional = [
            ("--partition", o.partition.clone()),
            ("--account", o.account.clone()),
            ("--cpus-per-task", o.cpus.map(|c| c.to_string())),
            ("--mem", o.memory.clone()),
        ];
        args.extend(
            optional
                .into_iter()
                .filter_map(|(k, v)| Some(format!("{k}={}", v?))),
        );
        args.extend(o.sbatch_args.iter().cloned());
        args.push(self.script.display().to_string());
        args.extend(spec.argv.iter().cloned());
        args
    }
}

/// Slurm's `--time` in whole minutes, rounded up, at least 1.
pub(crate) fn minutes(d: Duration) -> u64 {
    d.as_secs().div_ceil(60).max(1)
}

fn run(cmd: &mut Command, what: &str) -> Result<std::process::Output, String> {
    // A command that names its job's `PWD` (sbatch's is exported to the job) keeps it.
    if !cmd.get_envs().any(|(k, _)| k == "PWD") {
        crate::process::place_here(cmd);
    }
    cmd.stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{what}` (is Slurm installed and on PATH?): {e}"))
}

/// Errors of the controller that a second try may not see.
fn transient(stderr: &str) -> bool {
    let s = stderr.to_ascii_lowercase();
    s.contains("temporarily unavailable") || s.contains("timed out") || s.contains("try again")
}

impl BatchScheduler for Slurm {
    fn name(&self) -> &'static str {
        "slurm"
    }

    fn submit(&self, spec: &JobSpec) -> Result<String, String> {
        let args = self.sbatch_args(spec);
        let mut tries = 0;
        loop {
            tries += 1;
            let mut cmd = crate::agent_env::command("sbatch");
            cmd.args(&args);
            for var in GIT_ENV {
                cmd.env_remove(var);
            }
            // `--export=ALL` hands the job sbatch's environment: not the user's agent sockets,
            // nor orch's GitHub tokens.
            for var in agent_env::withheld() {
                if agent_env::is_withheld(var, &spec.pass_env) {
                    cmd.env_remove(var);
                }
            }
            cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
            // The job's environment is sbatch's (`--export=ALL`): `PWD` is where it runs.
            cmd.env("PWD", &spec.cwd).env_remove("OLDPWD");
            let out = run(&mut cmd, "sbatch")?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            if out.status.success() {
                // `--parsable`: `<id>` or `<id>;<cluster>`.
                let id = stdout.trim().split(';').next().unwrap_or("").to_string();
                if !id.is_empty() && id.chars().all(|c| c.is_ascii_digit()) {
                    return Ok(id);
                }
                return Err(format!("sbatch printed no job id: `{}`", stdout.trim()));
            }
            if tries < 3 && transient(&stderr) {
                std::thread::sleep(Duration::from_millis(500 * tries));
                continue;
            }
            return Err(format!("sbatch refused the job: {}", stderr.trim()));
        }
    }

    fn list(&self) -> Result<Vec<ListedJob>, String> {
        let uid = self.uid.to_string();
        let out = run(
            crate::agent_env::command("squeue").args([
                "-h",
                "--states=all",
                "-u",
                &uid,
                "-o",
                "%i|%T|%k",
            ]),
            "squeue",
        )?;
        if !out.status.success() {
            return Err(format!(
                "squeue failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(parse_squeue(&String::from_utf8_lossy(&out.stdout)))
    }

    fn final_state(&self, id: &str) -> Result<JobState, String> {
        let out = run(
            crate::agent_env::command("scontrol").args(["show", "job", "-o", id]),
            "scontrol",
        )?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            if stderr.contains("Invalid job id") {
                return Ok(JobState::Ended(JobEnd::Gone));
            }
            return Err(format!("scontrol show job {id} failed: {}", stderr.trim()));
        }
        parse_scontrol(&stdout).ok_or_else(|| {
            format!(
                "cannot read the state of job {id} from scontrol: `{}`",
                stdout.trim()
            )
        })
    }

    fn cancel(&self, ids: &[String]) -> Result<(), String> {
        scancel(ids, &[])
    }

    fn cancel_queued(&self, ids: &[String]) -> Result<(), String> {
        scancel(ids, &["--state=PENDING"])
    }

    fn local_pids(&self, id: &str) -> Result<Vec<u32>, String> {
        // Asks this machine's slurmd, which tracks the job's processes (proctrack).
        let out = run(
            crate::agent_env::command("scontrol").args(["listpids", id]),
            "scontrol",
        )?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() && !stderr.contains("no steps for job") {
            return Err(format!("scontrol listpids {id} failed: {}", stderr.trim()));
        }
        Ok(parse_listpids(&stdout, id))
    }
}

/// The pids of job `id` in `scontrol listpids` output (a header, then `PID JOBID STEPID ...`).
fn parse_listpids(out: &str, id: &str) -> Vec<u32> {
    out.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let pid = f.next()?.parse::<u32>().ok()?;
            (f.next()? == id).then_some(pid)
        })
        .collect()
}

/// `scancel OPTIONS IDS`; a job that already ended is no error.
fn scancel(ids: &[String], options: &[&str]) -> Result<(), String> {
    if ids.is_empty() {
        return Ok(());
    }
    let out = run(
        crate::agent_env::command("scancel").args(options).args(ids),
        "scancel",
    )?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() || stderr.contains("already completing or completed") {
        Ok(())
    } else {
        Err(format!("scancel failed: {}", stderr.trim()))
    }
}

/// The state named by Slurm, with the exit code when known. `None` for `FAILED` without a code:
/// ask [`BatchScheduler::final_state`].
pub(crate) fn map_state(state: &str, exit: Option<i32>) -> Option<JobState> {
    let base = state.split_whitespace().next().unwrap_or("");
    Some(match base {
        "PENDING" | "CONFIGURING" | "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED"
        | "RESV_DEL_HOLD" => JobState::Queued,
        "RUNNING" | "COMPLETING" | "SUSPENDED" | "STOPPED" | "SIGNALING" | "RESIZING"
        | "STAGE_OUT" => JobState::Running,
        "COMPLETED" => JobState::Ended(JobEnd::Exited(exit.unwrap_or(0))),
        "FAILED" => JobState::Ended(JobEnd::Exited(exit?)),
        "TIMEOUT" | "DEADLINE" => JobState::Ended(JobEnd::TimedOut),
        "CANCELLED" => JobState::Ended(JobEnd::Cancelled),
        "NODE_FAIL" | "BOOT_FAIL" => JobState::Ended(JobEnd::NodeFailed),
        "PREEMPTED" => JobState::Ended(JobEnd::Preempted),
        "OUT_OF_MEMORY" => JobState::Ended(JobEnd::OutOfMemory),
        other => JobState::Ended(JobEnd::Other(other.to_string())),
    })
}

/// `squeue -h -o '%i|%T|%k'` lines. A FAILED job is listed as still running: its exit code is
/// asked separately, and a job is only over once that is known.
pub(crate) fn parse_squeue(text: &str) -> Vec<ListedJob> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, '|');
            let id = parts.next()?.trim().to_string();
            let state = parts.next()?.trim();
            let tag = parts.next().unwrap_or("").trim();
            if id.is_empty() {
                return None;
            }
            Some(ListedJob {
                state: map_state(state, None).unwrap_or(JobState::Running),
                exact: state != "FAILED",
                tag: if tag == "(null)" { "" } else { tag }.to_string(),
                id,
            })
        })
        .collect()
}

/// `scontrol show job -o` output: `JobState=` and `ExitCode=<code>:<signal>`.
pub(crate) fn parse_scontrol(text: &str) -> Option<JobState> {
    let field = |name: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(name).map(str::to_string))
    };
    let state = field("JobState=")?;
    let exit = field("ExitCode=").and_then(|e| {
        let (code, signal) = e.split_once(':')?;
        let (code, signal): (i32, i32) = (code.parse().ok()?, signal.parse().ok()?);
        Some(if signal > 0 { 128 + signal } else { code })
    });
    map_state(&state, exit.or(Some(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent_env;

    #[test]
    fn listpids_lines() {
        let out = "PID      JOBID    STEPID   LOCALID GLOBALID\n10098    20       batch    0       0\n10100    20       batch    -       -\n10200    21       batch    -       -\n";
        assert_eq!(parse_listpids(out, "20"), vec![10098, 10100]);
        assert_eq!(parse_listpids(out, "2"), Vec::<u32>::new());
        assert!(parse_listpids("PID      JOBID    STEPID   LOCALID GLOBALID\n", "20").is_empty());
    }

    #[test]
    fn squeue_lines() {
        let jobs = parse_squeue(
            "12|PENDING|orch 1 1.1 /r/.orch/state/a/status.json\n13|RUNNING|(null)\n14|COMPLETED|x y\n15|FAILED|orch 2 2.1 /s|t\n16|TIMEOUT|\n",
        );
        assert_eq!(jobs.len(), 5);
        assert_eq!(jobs[0].state, JobState::Queued);
        assert_eq!(jobs[0].tag, "orch 1 1.1 /r/.orch/state/a/status.json");
        assert_eq!(jobs[1].state, JobState::Running);
        assert_eq!(jobs[1].tag, "");
        assert_eq!(jobs[2].state, JobState::Ended(JobEnd::Exited(0)));
        assert!(!jobs[3].exact, "FAILED needs its exit code");
        assert_eq!(jobs[3].tag, "orch 2 2.1 /s|t", "a `|` in a path survives");
        assert_eq!(jobs[4].state, JobState::Ended(JobEnd::TimedOut));
    }

    #[test]
    fn scontrol_lines() {
        let line = "JobId=7 JobName=orch:a:1.1 UserId=root(0) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) ExitCode=3:0 RunTime=00:00:01";
        assert_eq!(
            parse_scontrol(line),
            Some(JobState::Ended(JobEnd::Exited(3)))
        );
        let killed = "JobId=8 JobState=FAILED ExitCode=0:9";
        assert_eq!(
            parse_scontrol(killed),
            Some(JobState::Ended(JobEnd::Exited(137)))
        );
        let timeout = "JobId=9 JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15";
        assert_eq!(
            parse_scontrol(timeout),
            Some(JobState::Ended(JobEnd::TimedOut))
        );
        assert_eq!(
            parse_scontrol("JobId=10 JobState=CANCELLED by 0 ExitCode=0:15"),
            Some(JobState::Ended(JobEnd::Cancelled))
        );
        assert_eq!(
            parse_scontrol("JobId=11 JobState=RUNNING ExitCode=0:0"),
            Some(JobState::Running)
        );
        assert_eq!(parse_scontrol("nothing here"), None);
    }

    /// The job script, run by hand as Slurm runs it: in `cwd`, with the job's environment.
    fn run_script(cwd: &Path, env: &[(&str, &Path)], args: &[&str]) -> std::process::Output {
        let dir = tempfile::tempdir().expect("tempdir");
        let slurm = Slurm::new(dir.path()).expect("script");
        let mut cmd = Command::new("sh");
        cmd.arg(&slurm.script).args(args).current_dir(cwd);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("sh")
    }

    #[test]
    fn the_job_script_runs_the_argv_as_given_in_the_worktree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let tree = dir.path().join("tree");
        std::fs::create_dir(&tree).expect("tree");
        let status = dir.path().join("status.json");
        std::fs::write(&status, "{}").expect("status");
        let sh = Path::new("/bin/sh");
        let env = [
            (agent_env::ORCH_WORKTREE, tree.as_path()),
            (agent_env::ORCH_STATUS_FILE, status.as_path()),
            (agent_env::ORCH_BIN, sh),
        ];
        let tricky = "$(touch pwned); `touch pwned2` && echo \"quoted\" * ;";
        // Run from elsewhere: the script enters the worktree itself.
        let out = run_script(
            dir.path(),
            &env,
            &["sh", "-c", "pwd; printf '%s\\n' \"$1\"", "agent", tricky],
        );
        assert!(out.status.success(), "{out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let tree = tree.canonicalize().expect("canonical");
        assert_eq!(stdout, format!("{}\n{tricky}\n", tree.display()));
        assert!(!tree.join("pwned").exists() && !dir.path().join("pwned").exists());
        // The agent's exit status is the job's.
        let out = run_script(dir.path(), &env, &["sh", "-c", "exit 7"]);
        assert_eq!(out.status.code(), Some(7));
    }

    #[test]
    fn the_job_script_refuses_a_node_that_cannot_see_the_worktree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = dir.path().join("status.json");
        std::fs::write(&status, "{}").expect("status");
        let missing = dir.path().join("not-mounted-here");
        let sh = Path::new("/bin/sh");
        let env = [
            (agent_env::ORCH_WORKTREE, missing.as_path()),
            (agent_env::ORCH_STATUS_FILE, status.as_path()),
            (agent_env::ORCH_BIN, sh),
        ];
        let marker = dir.path().join("ran");
        let out = run_script(dir.path(), &env, &["touch", marker.to_str().expect("utf8")]);
        assert_eq!(out.status.code(), Some(NOT_SHARED_EXIT));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("`{}` is not visible on node", missing.display())),
            "{stderr}"
        );
        assert!(stderr.contains("shared with the compute nodes"), "{stderr}");
        assert!(!marker.exists(), "the agent ran");
        assert!(
            JobEnd::Exited(NOT_SHARED_EXIT)
                .describe()
                .contains("filesystem shared")
        );
    }

    #[test]
    fn time_limits_round_up_to_minutes() {
        assert_eq!(minutes(Duration::from_secs(1)), 1);
        assert_eq!(minutes(Duration::from_secs(60)), 1);
        assert_eq!(minutes(Duration::from_secs(61)), 2);
        assert_eq!(minutes(Duration::from_secs(7200)), 120);
        assert_eq!(minutes(Duration::ZERO), 1);
    }

    #[test]
    fn tags_round_trip() {
        let tag = crate::executor::batch::job_tag("/a b/status.json", "2.1", 3);
        assert_eq!(
            crate::executor::batch::parse_tag(&tag),
            Some((3, "2.1", "/a b/status.json"))
        );
        assert_eq!(
            crate::executor::batch::parse_tag("orch 1  /p"),
            Some((1, "", "/p"))
        );
        assert_eq!(crate::executor::batch::parse_tag("other"), None);
    }
}
