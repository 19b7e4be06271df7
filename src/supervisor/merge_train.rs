//! The merge train (`orch up --merge`, `auto_merge`): each finished plan is merged into the
//! target as `orch merge PLAN` does, in the order the core decides.

use tokio::signal::unix::{SignalKind, signal};

use super::runner::recv_signal;
use crate::merge::PlanMergeOutcome;

/// Who hears a resolution's notes during the merge train.
pub(crate) type Told = std::sync::Arc<dyn Fn(&crate::merge::resolve::ResolveNote) + Send + Sync>;

/// Merges `plan` as `orch merge PLAN` does (all of its checks, locks and verification), on a
/// blocking thread. Ctrl-C meanwhile reaches it as it reached the `orch merge` child: the first
/// stops the step without moving the target, the second kills its verify command.
///
/// A plan with `resolve` that conflicts is handed to its resolver on the same blocking thread
/// (`crate::merge::resolve`), its notes told to `notify` as they come.
pub(crate) async fn run_merge(
    manifest: &std::path::Path,
    plan: &str,
    notify: Told,
) -> PlanMergeOutcome {
    let (manifest, name) = (manifest.to_path_buf(), plan.to_string());
    let mut merging = tokio::task::spawn_blocking(move || {
        let runner: std::sync::Arc<dyn crate::merge::resolve::RunAgent> =
            std::sync::Arc::new(super::resolver::AgentRunner::current());
        crate::merge::merge_plan_now_with(&manifest, &name, Some((runner, notify)))
    });
    let mut sigint = signal(SignalKind::interrupt()).ok();
    let mut signals = 0;
    let joined = loop {
        tokio::select! {
            joined = &mut merging => break joined,
            Some(()) = recv_signal(&mut sigint) => {
                signals += 1;
                if signals == 1 {
                    crate::merge::interrupt::request();
                } else {
                    crate::merge::interrupt::stop_now();
                }
            }
        }
    };
    match joined {
        Ok(report) => report.outcome,
        Err(e) => PlanMergeOutcome::Error {
            reason: format!("the merge of plan `{plan}` stopped: {e}"),
        },
    }
}
