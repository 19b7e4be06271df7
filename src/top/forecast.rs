//! The forecasts on `orch top`'s screen: the run's end and cost in the header, each
//! plan's end in its row, each running task's range and a `SLOW` mark when it has run past the
//! p90 of its kind. The history is read again only when its file changed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::forecast::{self, Estimator, History, monte_carlo};
use crate::status::{FileStamp, StatusDoc};
use crate::workspace::Workspace;

/// The forecast's words for the screen.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Words {
    /// `ends 15:10–15:40, $3.20–5.10 more`, for the header.
    pub(crate) run: String,
    /// Per plan (as the workspace lists them): `ends 15:10–15:40`, empty when it is finished.
    pub(crate) plans: Vec<String>,
    /// Per (plan, task) pending or running: its range, and whether it is slow.
    pub(crate) tasks: HashMap<(String, String), (String, bool)>,
}

/// The history as last read, by its file's stamp.
#[derive(Default)]
pub(crate) struct Learnt {
    path: PathBuf,
    stamp: Option<FileStamp>,
    estimator: Option<Estimator>,
}

impl Learnt {
    pub(crate) fn new(state_dir: &Path) -> Learnt {
        Learnt {
            path: History::path(state_dir),
            stamp: None,
            estimator: None,
        }
    }

    /// The history's file (its stamp tells `orch top` to redraw).
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The estimator, read again when the file changed; `None` while there is no history.
    fn estimator(&mut self, state_dir: &Path) -> Option<&Estimator> {
        let now = FileStamp::of(&self.path);
        if now != self.stamp || self.estimator.is_none() {
            let h = History::load(state_dir);
            self.estimator = (!h.records.is_empty()).then(|| Estimator::new(&h.records));
            self.stamp = now;
        }
        self.estimator.as_ref()
    }

    /// The words of the forecast of `ws` at `now` from the status documents read.
    pub(crate) fn words(
        &mut self,
        ws: &Workspace,
        state_dir: &Path,
        docs: &[Option<StatusDoc>],
        now: DateTime<Utc>,
    ) -> Option<Words> {
        let graph = ws.graph.as_ref()?;
        let est = self.estimator(state_dir)?;
        let all: Vec<usize> = (0..ws.plans.len()).collect();
        let state = forecast::states_of(ws, |p| docs.get(p)?.as_ref(), &all, now);
        let asked = forecast::asked_of(ws, |p| docs.get(p)?.as_ref(), &all);
        let estimates = forecast::estimates(ws, est);
        // Fewer runs than `orch status`: the screen refreshes often.
        let f = forecast::of_workspace(ws, graph, &estimates, &state, None, monte_carlo::RUNS / 2);
        let left = |p: usize| {
            state[p].iter().any(|s| {
                matches!(
                    s,
                    forecast::TaskNow::Pending { .. } | forecast::TaskNow::Running { .. }
                )
            })
        };
        let mut words = Words {
            run: if asked.iter().any(|a| !a.is_empty()) {
                "no end before the answers asked for".to_string()
            } else if (0..ws.plans.len()).any(left) {
                forecast::range_words(now, &f.run)
            } else {
                String::new()
            },
            ..Words::default()
        };
        for (p, lp) in ws.plans.iter().enumerate() {
            words.plans.push(if !asked[p].is_empty() {
                "waits for an answer".to_string()
            } else if left(p) {
                let r = &f.plans[p];
                forecast::ends_words(now, r.end_p50_s, r.end_p90_s)
            } else {
                String::new()
            });
            for (t, task) in lp.plan.tasks.iter().enumerate() {
                if let Some(w) = forecast::task_words(&state[p][t], &estimates[p][t]) {
                    words.tasks.insert((lp.name.clone(), task.id.clone()), w);
                }
            }
        }
        Some(words)
    }
}
