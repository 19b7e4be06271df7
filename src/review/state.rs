//! orch's record of one plan's review loop, `<state_dir>/<plan>/review.json`: what it turned
//! into tasks (threads by id with the last comment taken, reviews by id, failed checks by name
//! and head commit), the replies it posted (never feedback), the round, a round whose tasks are
//! in the plan but not settled yet, and how the loop ended. A restart of `orch pr --watch`
//! reads it and goes on from there: nothing is turned into a task twice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::untrusted::read;

/// One task of a round, and what it answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RoundTask {
    /// The plan task's id (`3.1`).
    pub(crate) task: String,
    /// `thread`, `review` or `check`.
    pub(crate) kind: String,
    /// For a thread: the comment a reply answers (the thread's first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reply_to: Option<u64>,
    /// What it is about, in words (`thread on src/a.rs:4 by @ann`), shown escaped.
    pub(crate) about: String,
    /// The thread got its reply.
    #[serde(default)]
    pub(crate) replied: bool,
}

/// A round whose tasks are in the plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub(crate) round: u32,
    pub(crate) tasks: Vec<RoundTask>,
}

/// The record of one plan's pull request.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PrState {
    /// The pull request's number.
    pub(crate) number: u64,
    /// Rounds done (or started: see `pending`).
    pub(crate) round: u32,
    /// Thread id → the newest comment of it already turned into a task.
    #[serde(default)]
    pub(crate) threads: BTreeMap<String, u64>,
    /// Reviews (by id) whose body was turned into a task.
    #[serde(default)]
    pub(crate) reviews: BTreeSet<String>,
    /// `name@head` of each failed check turned into a task.
    #[serde(default)]
    pub(crate) checks: BTreeSet<String>,
    /// The comments orch posted (replies): never feedback.
    #[serde(default)]
    pub(crate) own: BTreeSet<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) pending: Option<Pending>,
    /// `approved`, `escalated`, `landed`, `closed`; `None` while watched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) outcome: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
    /// The open threads and the checks (`name: conclusion`) of the last poll, for `orch status`.
    #[serde(default)]
    pub(crate) open_threads: usize,
    #[serde(default)]
    pub(crate) last_checks: Vec<String>,
}

impl PrState {
    /// `#7, round 2 of 3 (its 2 task(s) running), 1 open thread, checks: ci: success; escalated:
    /// …`: what `orch status` and `orch top` say of it. Check names and the reason come from
    /// the forge (anyone can name a check): shown escaped.
    pub(crate) fn summary(&self, rounds: u32) -> String {
        use crate::untrusted::text::escaped;
        let mut line = match &self.pending {
            Some(p) => format!(
                "#{}, round {} of {rounds} (its {} task(s) running)",
                self.number,
                p.round,
                p.tasks.len()
            ),
            None => format!("#{}, round {} of {rounds}", self.number, self.round),
        };
        line.push_str(&format!(
            ", {} open thread{}",
            self.open_threads,
            if self.open_threads == 1 { "" } else { "s" }
        ));
        if !self.last_checks.is_empty() {
            let checks: Vec<String> = self
                .last_checks
                .iter()
                .map(|c| escaped(c).into_owned())
                .collect();
            line.push_str(&format!(", checks: {}", checks.join(", ")));
        }
        match (&self.outcome, &self.reason) {
            (Some(o), Some(r)) => line.push_str(&format!("; {}: {}", escaped(o), escaped(r))),
            (Some(o), None) => line.push_str(&format!("; {}", escaped(o))),
            _ => {}
        }
        line
    }
}

/// Plan `i`'s record beside its status file, with its `review_rounds`; `None` without one (or
/// with one that cannot be read).
pub(crate) fn of_plan(ws: &crate::workspace::Workspace, i: usize) -> Option<(PrState, u32)> {
    let lp = ws.plans.get(i)?;
    let st = load(&lp.status_path.with_file_name("review.json"))
        .ok()
        .flatten()?;
    let rounds = ws.manifest.as_ref().map_or(3, |m| {
        m.plans
            .iter()
            .find(|p| p.name == lp.name)
            .map_or(m.defaults.review.rounds, |p| p.review.rounds)
    });
    Some((st, rounds))
}

/// The file of plan `plan` under the state directory `state_dir`.
pub(crate) fn path(state_dir: &Path, plan: &str) -> PathBuf {
    state_dir.join(plan).join("review.json")
}

/// The record at `path`: `None` when there is none; an error (naming the file) when it cannot
/// be read or is not a record (orch does not start over and forget what it did).
pub(crate) fn load(path: &Path) -> Result<Option<PrState>, String> {
    match read::optional(path, read::STATE) {
        Ok(None) => Ok(None),
        Ok(Some(bytes)) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("`{}` is not a review record: {e}", path.display())),
        Err(e) => Err(format!("cannot read `{}`: {e}", path.display())),
    }
}

/// Writes the record: a temporary file beside it, then renamed over it.
pub(crate) fn save(path: &Path, st: &PrState) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write `{}`: {e}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let json = serde_json::to_vec_pretty(st).map_err(|e| e.to_string())?;
    let tmp = path.with_extension("json.tmp");
    crate::links::write(&tmp, &json).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_a_bad_one_is_an_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = path(dir.path(), "a");
        assert_eq!(load(&p), Ok(None));
        let mut st = PrState {
            number: 3,
            round: 1,
            ..PrState::default()
        };
        st.threads.insert("T".into(), 9);
        st.own.insert(12);
        st.pending = Some(Pending {
            round: 2,
            tasks: vec![RoundTask {
                task: "3.1".into(),
                kind: "thread".into(),
                reply_to: Some(9),
                about: "x".into(),
                replied: false,
            }],
        });
        save(&p, &st).expect("save");
        assert_eq!(load(&p), Ok(Some(st)));
        std::fs::write(&p, "{").expect("write");
        assert!(load(&p).expect_err("bad").contains("review.json"));
    }
}
