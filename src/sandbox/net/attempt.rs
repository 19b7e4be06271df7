//! What the network proxy knows of one attempt ([`AttemptCtx`]: its plan and task, its log,
//! what it may reach) and the refusals of a run ([`Refusals`], recorded in [`crate::state_layout::NETWORK_REFUSALS`] for
//! `orch status`): shared by the proxy's side that takes an attempt's sockets (`proxy.rs`) and
//! the side that serves them (`serve.rs`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::allow::AllowList;

/// The most refusals of one attempt written to its log; later ones are counted only.
const LOG_MAX: u64 = 200;

/// The refusals of a run, per plan and task (`plan` for a plan agent's): how many, and the
/// last destination.
#[derive(Debug)]
pub(crate) struct Refusals {
    /// Where they are recorded ([`crate::state_layout::NETWORK_REFUSALS`]); `None` for a proxy of one command (`verify`, a
    /// resolver), whose refusals are in its log only.
    path: Option<PathBuf>,
    counts: Mutex<Counts>,
}

/// Per plan, per task: how many refusals, the last destination.
type Counts = BTreeMap<String, BTreeMap<String, (u64, String)>>;

/// The refusals of `unit` of `plan` in the last run, as [`crate::state_layout::NETWORK_REFUSALS`] in `state_dir` has them: how
/// many, the last destination.
pub(crate) fn refusals_of(state_dir: &Path, plan: &str, unit: &str) -> Option<(u64, String)> {
    refusals_of_plan(state_dir, plan).remove(unit)
}

/// The refusals of each task of `plan` in the last run ([`crate::state_layout::NETWORK_REFUSALS`] in `state_dir`).
pub(crate) fn refusals_of_plan(state_dir: &Path, plan: &str) -> BTreeMap<String, (u64, String)> {
    let read = || -> Option<BTreeMap<String, (u64, String)>> {
        let bytes = crate::untrusted::read::optional(
            &crate::state_layout::NETWORK_REFUSALS.at(state_dir),
            crate::untrusted::read::STATE,
        )
        .ok()??;
        let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let units = v.get("plans")?.get(plan)?.as_object()?;
        Some(
            units
                .iter()
                .filter_map(|(u, e)| {
                    let n = e.get("refused")?.as_u64()?;
                    let last = e.get("last")?.as_str()?.to_string();
                    Some((u.clone(), (n, last)))
                })
                .collect(),
        )
    };
    read().unwrap_or_default()
}

impl Refusals {
    pub(super) fn new(path: Option<PathBuf>) -> Self {
        let r = Self {
            path,
            counts: Mutex::new(BTreeMap::new()),
        };
        r.save();
        r
    }

    fn add(&self, plan: &str, unit: &str, dest: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let entry = counts
            .entry(plan.to_string())
            .or_default()
            .entry(unit.to_string())
            .or_default();
        entry.0 += 1;
        entry.1 = dest.to_string();
    }

    #[cfg(test)]
    pub(super) fn of(&self, plan: &str, unit: &str) -> Option<(u64, String)> {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.get(plan)?.get(unit).cloned()
    }

    /// Writes [`crate::state_layout::NETWORK_REFUSALS`]. The counts stay locked until the file
    /// is written: two attempts' refusals saved at once (each save truncates and writes the
    /// file in place) left a longer save's tail after a shorter one's, a file no reader could
    /// parse, and the run's end said nothing of what was refused.
    pub(super) fn save(&self) {
        let Some(path) = &self.path else { return };
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let plans: serde_json::Map<String, serde_json::Value> = {
            counts
                .iter()
                .map(|(plan, units)| {
                    let per: serde_json::Map<String, serde_json::Value> = units
                        .iter()
                        .map(|(u, (n, last))| {
                            (u.clone(), serde_json::json!({"refused": n, "last": last}))
                        })
                        .collect();
                    (plan.clone(), serde_json::Value::Object(per))
                })
                .collect()
        };
        let v = serde_json::json!({ "plans": plans });
        let _ = crate::links::write(path, format!("{v}\n").as_bytes());
        drop(counts);
    }
}

/// What the proxy knows of one attempt.
#[derive(Debug)]
pub(super) struct AttemptCtx {
    pub(super) plan: String,
    pub(super) unit: String,
    pub(super) log: PathBuf,
    pub(super) allow: AllowList,
    pub(super) proxy_port: u16,
    pub(super) refused: AtomicU64,
    pub(super) refusals: Arc<Refusals>,
}

impl AttemptCtx {
    /// A connection refused: `dest` (what it was for: `host:port`, a name), `how` (the way it
    /// tried). One line in the attempt's log (the first [`LOG_MAX`]), counted.
    pub(super) fn refuse(&self, dest: &str, how: &str) {
        let n = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        self.refusals.add(&self.plan, &self.unit, dest);
        if n <= LOG_MAX || n.is_multiple_of(LOG_MAX) {
            self.refusals.save();
        }
        if n <= LOG_MAX {
            log_line(
                &self.log,
                &format!("=== orch: network: refused {dest} ({how}) ==="),
            );
        } else if n == LOG_MAX + 1 {
            log_line(
                &self.log,
                "=== orch: network: further refusals of this attempt are counted, not logged ===",
            );
        }
    }
}

/// Appends one line to the attempt's log (never through a link).
fn log_line(path: &Path, line: &str) {
    let _ = crate::links::append_line(path, line);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_counts_per_task() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = Refusals::new(Some(crate::state_layout::NETWORK_REFUSALS.path(dir.path())));
        r.add("a", "1.1", "evil.example:443");
        r.add("a", "1.1", "127.0.0.1:9");
        r.save();
        assert_eq!(r.of("a", "1.1"), Some((2, "127.0.0.1:9".into())));
        assert_eq!(r.of("a", "1.2"), None);
        let v: serde_json::Value = serde_json::from_slice(
            &std::fs::read(crate::state_layout::NETWORK_REFUSALS.path(dir.path())).expect("read"),
        )
        .expect("json");
        assert_eq!(v["plans"]["a"]["1.1"]["refused"], 2);
    }
}
