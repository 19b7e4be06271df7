//! One trial: the target's tip with a set of plan branches merged in, in memory, the way the merge
//! train builds a step; then, with a verify command, that commit checked out in a staging worktree
//! of orch's own and verified there. No ref moves; the staging worktree is removed afterwards.

use std::fs;
use std::path::Path;

use super::Candidate;

use crate::git::{Built, MergeRepo, Oid, Staging, Subject};
use crate::manifest::MergeStrategy;
use crate::merge::verify::{Waited, wait_group};
use crate::merge::{MergeError, Verify};

/// The staging worktree's name (`<worktree_root>/.merge-staging-_integration`): a plan name
/// cannot begin with `_`, so it never clashes with the merge train's.
pub(crate) const STAGING_NAME: &str = "_integration";

/// The output of the latest trial, in `<log_dir>`.
const LOG: &str = crate::state_layout::INTEGRATION_LOG;

/// How many lines of the verify command's output a report keeps.
pub(crate) const LAST_LINES: usize = 20;

/// What one trial gave (as the on-disk cache stores it, too).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub(crate) enum TrialOutcome {
    /// It merged cleanly and verify passed (or there is none): the commit built.
    Passed { commit: String },
    /// Merging `plan` into the others conflicts in these paths.
    Conflict { plan: String, files: Vec<String> },
    /// The merged commit was built but verify failed on it.
    VerifyFailed {
        commit: String,
        exit_code: Option<i32>,
        last_lines: Vec<String>,
        /// The image of the container it ran in (a plan of the trial runs in one); absent: on
        /// this machine.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        image: Option<String>,
    },
}

impl TrialOutcome {
    pub(crate) fn failed(&self) -> bool {
        !matches!(self, Self::Passed { .. })
    }
}

/// Merges `plans` (in this order) into `target_tip`, each as the merge train would with the
/// `merge` strategy, and verifies the result. `repo` has the object database the commits go to.
pub(super) fn run(
    repo: &MergeRepo,
    repo_root: &Path,
    target: &str,
    target_tip: Oid,
    plans: &[&Candidate],
    verify: Option<&Verify>,
    staging: &mut Option<Staging>,
) -> Result<TrialOutcome, MergeError> {
    let mut tip = target_tip;
    for p in plans {
        let subject = Subject {
            plan: &p.name,
            branch: &p.branch,
            target,
            base: None,
            strategy: MergeStrategy::Merge,
        };
        match repo.build(tip, p.tip, &subject)? {
            Built::AlreadyMerged | Built::FfImpossible => {}
            Built::Conflict(files) => {
                return Ok(TrialOutcome::Conflict {
                    plan: p.name.clone(),
                    files,
                });
            }
            Built::Ready(next) => tip = next,
        }
    }
    let commit = tip;
    let Some(verify) = verify else {
        return Ok(TrialOutcome::Passed {
            commit: commit.to_string(),
        });
    };
    let path = checkout(staging, repo_root, verify, commit)?;
    let names: Vec<String> = plans.iter().map(|p| p.name.clone()).collect();
    let (exit_code, last_lines, image) = run_verify(verify, &path, target, &names, commit);
    if crate::merge::interrupt::interrupted() {
        // Not an outcome: nothing is cached.
        return Err(MergeError::Interrupted {
            what: "the integration test's verify command was stopped".into(),
        });
    }
    Ok(if exit_code == Some(0) {
        TrialOutcome::Passed {
            commit: commit.to_string(),
        }
    } else {
        TrialOutcome::VerifyFailed {
            commit: commit.to_string(),
            exit_code,
            last_lines,
            image,
        }
    })
}

/// The staging worktree at `commit`: the one of an earlier trial (kept for the `Integrator`'s
/// life) brought to `commit` by a checkout of what differs (untracked files removed, ignored ones
/// such as build output kept), else a new one. Returns its path.
fn checkout(
    staging: &mut Option<Staging>,
    repo_root: &Path,
    verify: &Verify,
    commit: Oid,
) -> Result<std::path::PathBuf, MergeError> {
    if let Some(st) = staging.as_ref() {
        match st.move_to(commit) {
            Ok(()) => return Ok(st.path().to_path_buf()),
            Err(e) => {
                tracing::debug!(error = %e, "the staging worktree is made again");
                *staging = None;
            }
        }
    }
    let st = Staging::create(repo_root, &verify.staging_dir, STAGING_NAME, commit)?;
    let path = st.path().to_path_buf();
    *staging = Some(st);
    Ok(path)
}

/// Runs the verify command on the work of `plans` in `cwd` with its output in the log
/// (overwritten each trial): its exit code (`None`: killed, timed out or not started), the log's
/// last lines, and the image of the container it ran in (`None`: on this machine). The log's
/// lines are those of this run only: one that cannot start empties it first.
fn run_verify(
    verify: &Verify,
    cwd: &Path,
    target: &str,
    plans: &[String],
    commit: Oid,
) -> (Option<i32>, Vec<String>, Option<String>) {
    let log = verify.log_dir.join(LOG);
    let mut image = None;
    let code = spawn_and_wait(verify, &log, cwd, (target, plans, commit), &mut image);
    let mut lines = match &code {
        // Nothing ran: what an earlier trial left in the log is not this one's output.
        Err(_) if image.is_none() => Vec::new(),
        _ => last_lines(&log),
    };
    if let Err(why) = &code {
        lines.push(format!("orch: {why}"));
    }
    (code.ok().flatten(), lines, image)
}

/// The verify command started and waited for; `image` set once it runs in a container.
fn spawn_and_wait(
    verify: &Verify,
    log: &Path,
    cwd: &Path,
    (target, plans, commit): (&str, &[String], Oid),
    image: &mut Option<String>,
) -> Result<Option<i32>, String> {
    let command = crate::merge::verify::shown(&verify.argv);
    if let Some(dir) = log.parent() {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create `{}`: {e}", dir.display()))?;
    }
    // Emptied before anything starts: its lines are this trial's only.
    crate::links::no_follow()
        .write(true)
        .create(true)
        .truncate(true)
        .open(log)
        .map_err(|e| crate::links::refused(log, e))
        .map_err(|e| format!("cannot open `{}`: {e}", log.display()))?;
    let under = crate::merge::verify::Under {
        name: STAGING_NAME,
        plans,
        mount: None,
    };
    let mut prepared = verify.prepare(&verify.argv, cwd, &under, log, &[])?;
    *image = prepared.image.clone();
    let Some((program, args)) = prepared.argv.split_first() else {
        return Err("the verify command is empty".into());
    };
    // Written in append mode: the network's refusals are appended to it while the command
    // writes.
    let out = crate::links::no_follow()
        .append(true)
        .open(log)
        .map_err(|e| crate::links::refused(log, e))
        .and_then(|f| Ok((f.try_clone()?, f)))
        .map_err(|e| format!("cannot open `{}`: {e}", log.display()))?;
    // `ORCH_PLAN`: the last plan merged, the one a failure would blame.
    let culprit = plans.last().map(String::as_str).unwrap_or_default();
    let mut cmd =
        crate::merge::verify::verify_command(program, args, cwd, out, culprit, target, commit);
    cmd.envs(prepared.env.iter().map(|(k, v)| (k, v)));
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start `{command}`: {e}"))?;
    prepared.started(child.id());
    match wait_group(&mut child, verify.timeout, verify.grace) {
        Waited::Exited(status) => Ok(status.code()),
        Waited::Failed(e) => Err(format!("cannot wait for `{command}`: {e}")),
        Waited::Interrupted => Err(format!("`{command}` was stopped (interrupted)")),
        Waited::TimedOut => Err(format!(
            "`{command}` timed out after {}",
            crate::manifest::format_duration(verify.timeout)
        )),
    }
}

/// The last [`LAST_LINES`] lines of a log (lossy UTF-8, from its last 4 MiB at most, read
/// as untrusted); none when it cannot be read.
fn last_lines(log: &Path) -> Vec<String> {
    let Ok((_, bytes)) = crate::untrusted::read::tail(log, 0, 4 << 20) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(LAST_LINES);
    lines[from..].iter().map(|l| (*l).to_string()).collect()
}
