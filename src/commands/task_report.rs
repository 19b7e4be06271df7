//! `orch task …` under a running `orch up`: the report handed to the supervisor
//! ([`crate::status::report`]) instead of a write of the status file, and the wait for its
//! answer. An attempt reports through its own directory (`ORCH_REPORT_DIR`); a person's call
//! while `orch up` runs through a directory it makes for the call, among the persons'
//! (`.reports/.people/<plan>/`), where no agent's mount or write set reaches.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::anyhow;

use super::task_call::{TaskArgs, print_outcome};
use crate::error::{CliError, CliResult, exit};
use crate::manifest::Manifest;
use crate::status::report::dir::{ReportDir, remove_beneath};
use crate::status::report::{
    ANSWER_FILE, Answer, PEOPLE_DIR, PERSON_PREFIX, REPORT_FILE, REPORTS_DIR, Report, TAKEN_FILE,
    read_nofollow, write_json,
};

/// How long `orch task` waits for the supervisor's answer. A report not answered by then stays
/// where it is: the supervisor applies it when it reads it.
const WAIT: Duration = Duration::from_secs(120);

/// A person's `orch task …` for plan `plan` while an `orch up` of the manifest `m` runs: the
/// report goes through the supervisor (which runs the task's check before any commit); `None`
/// when no supervisor runs (the call writes the status file, as ever).
pub(crate) fn via_running_supervisor(
    m: &Manifest,
    plan: &str,
    args: &TaskArgs,
) -> CliResult<Option<u8>> {
    let state_dir = m.root.join(&m.defaults.state_dir);
    if crate::supervisor::lock::running(&state_dir).is_none() {
        return Ok(None);
    }
    // Among the persons' directories (`.reports/.people/<plan>/`), never in the plan's
    // (`.reports/<plan>/`, which its agents may write), made without following a link.
    let parents = [REPORTS_DIR, PEOPLE_DIR, plan];
    let name = format!("{PERSON_PREFIX}{}-{}", std::process::id(), nanos());
    let made = ReportDir::make(&state_dir, &parents, &name).and_then(|d| Ok((d.id()?, d)));
    let (id, dir) = made.map_err(|e| {
        CliError::new(
            exit::FAILURE,
            anyhow!("`orch up` runs plan `{plan}`: cannot hand it the report: {e}"),
        )
    })?;
    // `None`: the supervisor ended meanwhile; the status file, as ever.
    let code = report_and_wait(dir.path(), &state_dir, args, true);
    let _ = remove_beneath(&state_dir, &parents, &name, Some(id));
    code
}

/// Writes `args` as a report in `dir` and waits (bounded) for the supervisor's answer; prints
/// what `orch task` prints and returns its exit code. `state_dir`: the run's state directory,
/// where its supervisor holds the lock (for a plan of any repository:
/// `supervisor::reports::reports_state_dir`). `person`: a person's call (a report not
/// answered in time is withdrawn rather than left for the supervisor). `None`: no supervisor
/// runs (any more) for that state directory, and the report was withdrawn before anyone took
/// it.
pub(crate) fn report_and_wait(
    dir: &Path,
    state_dir: &Path,
    args: &TaskArgs,
    person: bool,
) -> CliResult<Option<u8>> {
    let supervised = || supervisor_runs(state_dir);
    if !supervised() {
        return Ok(None);
    }
    let seq = format!("{}-{}", std::process::id(), nanos());
    let report = Report {
        seq: seq.clone(),
        transition: crate::status::report::transition_name(args.transition).to_string(),
        id: args.id.clone(),
        force: args.opts.force,
        note: args.opts.note.clone(),
        error: args.opts.error.clone(),
        reason: args.opts.reason.clone(),
        question: args.opts.question.clone(),
    };
    let answer_path = dir.join(ANSWER_FILE);
    let _ = std::fs::remove_file(&answer_path);
    write_json(dir, REPORT_FILE, &report).map_err(|e| {
        CliError::new(
            exit::FAILURE,
            anyhow!(
                "cannot hand the report of task `{}` to `orch up` in `{}`: {e}",
                args.id,
                dir.display()
            ),
        )
    })?;
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    let mut polls = 0u32;
    loop {
        if let Ok(Some(bytes)) = read_nofollow(&answer_path)
            && let Ok(answer) = serde_json::from_slice::<Answer>(&bytes)
            && answer.seq == seq
        {
            let _ = std::fs::remove_file(&answer_path);
            let _ = std::fs::remove_file(dir.join(TAKEN_FILE));
            return finish(answer, args).map(Some);
        }
        polls += 1;
        // The supervisor gone, and the report not taken, or taken by it and not answered:
        // withdrawn (a supervisor that starts meanwhile and adopts this agent takes a taken
        // report again).
        if polls.is_multiple_of(8)
            && !supervised()
            && (std::fs::remove_file(dir.join(REPORT_FILE)).is_ok()
                || (std::fs::symlink_metadata(&answer_path).is_err()
                    && std::fs::remove_file(dir.join(TAKEN_FILE)).is_ok()))
        {
            return Ok(None);
        }
        if start.elapsed() >= WAIT {
            if person {
                let _ = std::fs::remove_file(dir.join(REPORT_FILE));
                return Err(CliError::new(
                    exit::FAILURE,
                    anyhow!(
                        "`orch up` did not take the report of task `{}` within {}s; nothing was recorded",
                        args.id,
                        WAIT.as_secs()
                    ),
                ));
            }
            crate::commands::output::eprintln_safe(&format!(
                "note: the report of task `{}` is handed to `orch up` (`{}`), which has not applied it yet",
                args.id,
                dir.display()
            ));
            return Ok(Some(exit::OK));
        }
        std::thread::sleep(pause);
        // A millisecond apart while an answer is due (the supervisor reads a report as soon as
        // the watcher tells it: a few milliseconds), then backing off to 50 ms.
        if polls > 100 {
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

/// What `orch task` prints and exits with for the supervisor's `answer`.
fn finish(answer: Answer, args: &TaskArgs) -> CliResult<u8> {
    if let Some(outcome) = &answer.outcome
        && answer.code == exit::OK
    {
        print_outcome(&answer.plan, &answer.status_file, outcome, args.json);
        return Ok(exit::OK);
    }
    let message = answer
        .error
        .unwrap_or_else(|| format!("`orch up` refused the report of task `{}`", args.id));
    let mut e = CliError::new(answer.code.max(exit::FAILURE), anyhow!("{message}"));
    if let Some(h) = answer.hint {
        e = e.with_hint(h);
    }
    Err(e)
}

/// Whether the `orch up` of `state_dir` still runs, as an agent sees it: the run's liveness file
/// (`.supervisor.live`, or an earlier orch's `supervisor.lock`) is locked (`orch up` holds it
/// for the whole run). Asked through the lock, not the
/// holder's pid: an agent may run in a pid namespace of its client's sandbox (Codex's), where
/// that pid means nothing. When the lock cannot be asked (the file unreadable), the supervisor
/// is taken to run: the report stays for it rather than be written around it.
fn supervisor_runs(state_dir: &Path) -> bool {
    let live = state_dir.join(crate::state_layout::SUPERVISOR_LIVE);
    let path = if std::fs::symlink_metadata(&live).is_ok() {
        live
    } else {
        state_dir.join("supervisor.lock")
    };
    let Ok((file, _)) = crate::untrusted::read::open(&path) else {
        return false;
    };
    // Locked by `orch up` (`WouldBlock`) or not to be asked (`Error`): it runs.
    file.try_lock_shared().is_err()
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}
