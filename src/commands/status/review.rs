//! `orch status`: each plan's pull request under review (`orch pr --watch`), from the loop's
//! record `<state_dir>/<plan>/review.json`: its round, its open threads and checks at the last
//! poll, how it ended.

use serde_json::{Value, json};

use crate::review::state::{self, PrState};
use crate::workspace::Workspace;

fn record(ws: &Workspace, i: usize) -> Option<PrState> {
    let path = ws.plans[i].status_path.with_file_name("review.json");
    state::load(&path).ok().flatten()
}

fn rounds(ws: &Workspace, i: usize) -> u32 {
    let name = &ws.plans[i].name;
    ws.manifest.as_ref().map_or(3, |m| {
        m.plans
            .iter()
            .find(|p| &p.name == name)
            .map_or(m.defaults.review.rounds, |p| p.review.rounds)
    })
}

/// `  review: #7, round 2 of 3 (running), 1 open thread, checks: ci: success`, or nothing.
pub(super) fn text(ws: &Workspace, i: usize) -> String {
    let Some(st) = record(ws, i) else {
        return String::new();
    };
    let mut line = format!(
        "  review: #{}, round {} of {}",
        st.number,
        st.round,
        rounds(ws, i)
    );
    if let Some(p) = &st.pending {
        line = format!(
            "  review: #{}, round {} of {} (its {} task(s) running)",
            st.number,
            p.round,
            rounds(ws, i),
            p.tasks.len()
        );
    }
    line.push_str(&format!(
        ", {} open thread{}",
        st.open_threads,
        if st.open_threads == 1 { "" } else { "s" }
    ));
    if !st.last_checks.is_empty() {
        line.push_str(&format!(", checks: {}", st.last_checks.join(", ")));
    }
    match (&st.outcome, &st.reason) {
        (Some(o), Some(r)) => line.push_str(&format!("; {o}: {r}")),
        (Some(o), None) => line.push_str(&format!("; {o}")),
        _ => {}
    }
    line.push('\n');
    line
}

/// `"review": {"number", "round", "rounds", "running", "open_threads", "checks", "outcome",
/// "reason"}` in the plan's JSON.
pub(super) fn add_json(ws: &Workspace, i: usize, v: &mut Value) {
    if let Some(st) = record(ws, i) {
        v["review"] = json!({
            "number": st.number,
            "round": st.pending.as_ref().map_or(st.round, |p| p.round),
            "rounds": rounds(ws, i),
            "running": st.pending.is_some(),
            "open_threads": st.open_threads,
            "checks": st.last_checks,
            "outcome": st.outcome,
            "reason": st.reason,
        });
    }
}
