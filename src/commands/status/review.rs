//! `orch status`: each plan's pull request under review (`orch pr --watch`), from the loop's
//! record `<state_dir>/<plan>/review.json`: its round, its open threads and checks at the last
//! poll, how it ended.

use serde_json::{Value, json};

use crate::review::state;
use crate::workspace::Workspace;

/// `  review: #7, round 2 of 3 (running), 1 open thread, checks: ci: success`, or nothing.
pub(super) fn text(ws: &Workspace, i: usize) -> String {
    state::of_plan(ws, i).map_or_else(String::new, |(st, rounds)| {
        format!("  review: {}\n", st.summary(rounds))
    })
}

/// `"review": {"number", "round", "rounds", "running", "open_threads", "checks", "outcome",
/// "reason"}` in the plan's JSON.
pub(super) fn add_json(ws: &Workspace, i: usize, v: &mut Value) {
    if let Some((st, rounds)) = state::of_plan(ws, i) {
        v["review"] = json!({
            "number": st.number,
            "round": st.pending.as_ref().map_or(st.round, |p| p.round),
            "rounds": rounds,
            "running": st.pending.is_some(),
            "open_threads": st.open_threads,
            "checks": st.last_checks,
            "outcome": st.outcome,
            "reason": st.reason,
        });
    }
}
