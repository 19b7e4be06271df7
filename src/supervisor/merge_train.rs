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
    let merging = tokio::task::spawn_blocking(move || {
        let runner: std::sync::Arc<dyn crate::merge::resolve::RunAgent> =
            std::sync::Arc::new(super::resolver::AgentRunner::current());
        crate::merge::merge_plan_now_with(&manifest, &name, Some((runner, notify)))
    });
    match interruptible(merging).await {
        Ok(report) => report.outcome,
        Err(e) => PlanMergeOutcome::Error {
            reason: format!("the merge of plan `{plan}` stopped: {e}"),
        },
    }
}

/// Lands the group of `plan` (plans of several repositories) all together or not at all, as
/// `orch merge` does ([`crate::merge::together::now`]), on a blocking thread; Ctrl-C reaches its
/// verify commands as it reaches a merge's.
///
/// A plan of the group that conflicts is handed to its resolver, in its own repository, on the
/// same blocking thread, its notes told to `notify` as they come.
pub(crate) async fn run_landing(
    manifest: &std::path::Path,
    plan: &str,
    notify: Told,
) -> Vec<crate::merge::together::now::PlanLanded> {
    let (manifest, name) = (manifest.to_path_buf(), plan.to_string());
    let landing = tokio::task::spawn_blocking(move || {
        let runner: std::sync::Arc<dyn crate::merge::resolve::RunAgent> =
            std::sync::Arc::new(super::resolver::AgentRunner::current());
        crate::merge::together::now::land_group_now(&manifest, &name, Some((runner, notify)))
    });
    match interruptible(landing).await {
        Ok(landed) => landed,
        Err(e) => vec![crate::merge::together::now::PlanLanded {
            plan: plan.to_string(),
            repo: String::new(),
            target: String::new(),
            outcome: PlanMergeOutcome::Error {
                reason: format!("the landing of plan `{plan}`'s group stopped: {e}"),
            },
        }],
    }
}

/// Waits for `task`; the first Ctrl-C meanwhile asks the merge to stop before a target moves,
/// the second kills its verify command; SIGTERM stops the verify command as the first does.
async fn interruptible<T>(
    mut task: tokio::task::JoinHandle<T>,
) -> Result<T, tokio::task::JoinError> {
    let mut sigint = signal(SignalKind::interrupt()).ok();
    let mut sigterm = signal(SignalKind::terminate()).ok();
    let mut signals = 0;
    loop {
        tokio::select! {
            joined = &mut task => return joined,
            Some(()) = recv_signal(&mut sigterm) => crate::merge::interrupt::request(),
            Some(()) = recv_signal(&mut sigint) => {
                signals += 1;
                if signals == 1 {
                    crate::merge::interrupt::request();
                } else {
                    crate::merge::interrupt::stop_now();
                }
            }
        }
    }
}
