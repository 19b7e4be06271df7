//! The report channel between an agent's `orch task …` and the supervisor that runs it
//!: under `orch up` an agent never writes its plan's status file. Each attempt (and
//! each plan-mode agent) has a report directory of its own, `<state_dir>/.reports/<plan>/<unit>.
//! <attempt>/` (`ORCH_REPORT_DIR`), the only place of the state directory it can write. The
//! state directory is the run's (the home repository's, where the supervisor lock is) for a
//! plan of any repository: `orch task` finds the supervisor beside the directory it was handed
//! (the lock of `<state_dir>`), and a person's call beside the manifest. Its `orch
//! task done|fail|skip|start|reset ID` writes [`REPORT_FILE`] there (a new file renamed into
//! place) and waits for [`ANSWER_FILE`]; the supervisor reads the report (no-follow), decides
//! whether that reporter may report that task, applies it through orch's own transition and
//! writes the answer. A person's `orch task …` during `orch up` reports the same way through a
//! directory of its own, `.reports/.people/<plan>/person-<pid>-<nanos>/`, which it makes and
//! removes: outside the plan's `.reports/<plan>/`, which an agent may write (a container
//! mounts it, `sandbox = "off"`), so that no agent makes a person's report.
//!
//! The supervisor uses each attempt's directory only through a handle ([`dir::ReportDir`])
//! that is the very directory it made (or found, for an attempt it adopted): a link or another
//! directory put in its place is never read nor written.
//!
//! The files are orch's own JSON; both sides read them with serde.

pub(crate) mod dir;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Transition, TransitionOptions, TransitionOutcome};

/// The state directory's subdirectory that holds the report directories.
pub(crate) const REPORTS_DIR: &str = crate::state_layout::REPORTS.name;
/// The pending report in a report directory.
pub(crate) const REPORT_FILE: &str = "report.json";
/// A report the supervisor took and has not answered yet: renamed from [`REPORT_FILE`] when
/// taken, removed once answered (by the supervisor, and by `orch task` when it reads the
/// answer). One found by the next supervisor was taken by one that stopped before answering:
/// it is taken again.
pub(crate) const TAKEN_FILE: &str = "report.taken.json";
/// The supervisor's answer to it.
pub(crate) const ANSWER_FILE: &str = "answer.json";
/// The prefix of a person's report directory.
pub(crate) const PERSON_PREFIX: &str = "person-";

/// The directory of [`REPORTS_DIR`] that holds the persons' report directories.
pub(crate) const PEOPLE_DIR: &str = crate::state_layout::REPORTS_PEOPLE;

/// `<state_dir>/.reports/<plan>`.
pub(crate) fn plan_reports_dir(state_dir: &Path, plan: &str) -> PathBuf {
    state_dir.join(REPORTS_DIR).join(plan)
}

/// The name of the report directory of attempt `attempt` of `unit`: `<unit>.<attempt>`.
pub(crate) fn attempt_name(unit: &str, attempt: u32) -> String {
    format!("{unit}.{attempt}")
}

/// The report directory of attempt `attempt` of `unit` (a task id, or `plan` for a plan-mode
/// agent) of plan `plan`: `<state_dir>/.reports/<plan>/<unit>.<attempt>`.
pub(crate) fn attempt_dir(state_dir: &Path, plan: &str, unit: &str, attempt: u32) -> PathBuf {
    plan_reports_dir(state_dir, plan).join(attempt_name(unit, attempt))
}

/// The state directory of a report directory orch handed an attempt
/// (`<state_dir>/.reports/<plan>/<unit>.<attempt>`).
pub(crate) fn state_dir_of_attempt_dir(dir: &Path) -> Option<&Path> {
    dir.parent().and_then(Path::parent).and_then(Path::parent)
}

/// The latest attempt of `unit` of plan `plan` that has a report directory (orch makes one at
/// each launch and removes it when the attempt is over): the attempt an agent that outlived its
/// supervisor belongs to.
pub(crate) fn latest_attempt(state_dir: &Path, plan: &str, unit: &str) -> Option<u32> {
    let prefix = format!("{unit}.");
    std::fs::read_dir(plan_reports_dir(state_dir, plan))
        .ok()?
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix(&prefix)?
                .parse::<u32>()
                .ok()
        })
        .max()
}

/// One report: what `orch task` was asked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Report {
    /// Told back in the answer (a report left by an earlier call is not taken for this one).
    pub(crate) seq: String,
    /// `start`, `done`, `fail`, `skip`, `reset` or `ask`.
    pub(crate) transition: String,
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) force: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// The question of an `ask`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) question: Option<String>,
}

/// The supervisor's answer to a report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Answer {
    pub(crate) seq: String,
    /// The plan and its status file (what `orch task` prints).
    #[serde(default)]
    pub(crate) plan: String,
    #[serde(default)]
    pub(crate) status_file: PathBuf,
    /// The exit code `orch task` ends with (`crate::exit`).
    pub(crate) code: u8,
    /// What the transition did (applied).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) outcome: Option<TransitionOutcome>,
    /// Why the report was refused or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) hint: Option<String>,
}

/// The transition as a report names it.
pub(crate) fn transition_name(t: Transition) -> &'static str {
    match t {
        Transition::Start => "start",
        Transition::Done => "done",
        Transition::Fail => "fail",
        Transition::Skip => "skip",
        Transition::Reset => "reset",
        Transition::Ask => "ask",
    }
}

impl Report {
    /// The transition it asks for; `None` for a name orch does not know.
    pub(crate) fn transition(&self) -> Option<Transition> {
        crate::manifest::Spelled::parse(&self.transition)
    }

    /// What goes with the transition.
    pub(crate) fn options(&self) -> TransitionOptions {
        TransitionOptions {
            force: self.force,
            note: self.note.clone(),
            error: self.error.clone(),
            reason: self.reason.clone(),
            question: self.question.clone(),
            ..TransitionOptions::default()
        }
    }
}

/// Writes `value` as `dir/name`: a new file (never one that exists, never through a link)
/// renamed into place, so that a reader sees the whole of it or nothing.
pub(crate) fn write_json(dir: &Path, name: &str, value: &impl Serialize) -> std::io::Result<()> {
    let text = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let tmp = dir.join(format!(".tmp-{}-{nanos}-{name}", std::process::id()));
    // `create_new`: O_EXCL, which fails on anything there, a link included.
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(&text)?;
            f.sync_data()
        })
        .and_then(|()| std::fs::rename(&tmp, dir.join(name)));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Reads `path` without following a symbolic link (nor opening a FIFO or device: only a
/// regular file is read); `Ok(None)` when there is none. At most 1 MiB is read.
pub(crate) fn read_nofollow(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    crate::untrusted::read::optional(path, crate::untrusted::read::REPORT)
        .map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_read_back_and_a_link_in_its_place_is_not_followed() {
        let dir = tempfile::tempdir().expect("tmp");
        let r = Report {
            seq: "1".into(),
            transition: "done".into(),
            id: "1.1".into(),
            note: Some("n".into()),
            ..Report::default()
        };
        write_json(dir.path(), REPORT_FILE, &r).expect("write");
        let bytes = read_nofollow(&dir.path().join(REPORT_FILE))
            .expect("read")
            .expect("there");
        let back: Report = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(back, r);
        assert!(
            read_nofollow(&dir.path().join("none"))
                .expect("read")
                .is_none()
        );
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s").expect("write");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&secret, &link).expect("link");
        assert!(read_nofollow(&link).is_err());
        // A link where the answer goes is replaced, not written through.
        let answer_link = dir.path().join(ANSWER_FILE);
        std::os::unix::fs::symlink(&secret, &answer_link).expect("link");
        let a = Answer {
            seq: "1".into(),
            plan: "p".into(),
            status_file: PathBuf::new(),
            code: 0,
            outcome: None,
            error: None,
            hint: None,
        };
        write_json(dir.path(), ANSWER_FILE, &a).expect("write");
        assert_eq!(std::fs::read_to_string(&secret).expect("read"), "s");
        assert!(
            !std::fs::symlink_metadata(&answer_link)
                .expect("meta")
                .file_type()
                .is_symlink()
        );
    }
}
