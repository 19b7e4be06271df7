//! A batch attempt (the job its executor made of it, `crate::executor::Executor::job`): its
//! submission off the loop, its start and job id recorded, its monitor set up before the job
//! starts.

use std::path::Path;
use std::sync::Arc;

use chrono::Utc;

use crate::executor::{JobSpec, JobTracker};
use crate::process;
use crate::status::{self, RunInfo, Transition, TransitionOptions};
use crate::supervisor::attempt::Proc;
use crate::supervisor::context::PlanCtx;
use crate::supervisor::core::Input;
use crate::supervisor::msg::Msg;
use crate::supervisor::runner::Effects;
use crate::supervisor::state::{RunId, Unit};

impl Effects<'_> {
    /// Submits an attempt as the batch job `spec`. The submission runs off the loop (a busy
    /// controller can take seconds); the core hears of it when it is over.
    pub(super) fn submit(
        &mut self,
        pc: &Arc<PlanCtx>,
        run: RunId,
        (unit, attempt): (Unit, u32),
        spec: JobSpec,
        log: &Path,
        tracker: Arc<JobTracker>,
    ) {
        let id = unit.task().map(|t| pc.plan.tasks[t].id.clone());
        // The monitor is set up now, so that a stop asked for while the job is submitted is
        // seen when it starts.
        let stop_rx = self.stop_receiver(run);
        let tx = self.tx.clone();
        let pcc = pc.clone();
        let log = log.to_path_buf();
        let stop_all = self.stop_all.subscribe();
        let grace = self.ctx.grace;
        let watch_activity = self.ctx.stuck_after.is_some();
        tokio::spawn(async move {
            // The start is recorded before the submission: a supervisor killed in between
            // leaves the task in progress, and the next one finds the job by its tag.
            let record = |job: Option<String>| {
                let pcc = pcc.clone();
                let id = id.clone();
                tokio::task::spawn_blocking(move || record_job(&pcc, id.as_deref(), job))
            };
            let _ = record(None).await;
            let result = tracker.submit(spec).await;
            let (job, state) = match result {
                Ok(x) => x,
                Err(error) => {
                    let error = format!(
                        "cannot submit agent `{}` to {}: {error}",
                        pcc.entry.agent,
                        pcc.executor.name()
                    );
                    process::log_line(&log, &format!("=== orch: {error} ==="));
                    if let Some(t) = unit.task() {
                        let (pc, error) = (pcc.clone(), error.clone());
                        let _ = tokio::task::spawn_blocking(move || {
                            let id = &pc.plan.tasks[t].id;
                            crate::supervisor::settle::record_failure(&pc, id, &error)
                        })
                        .await;
                    }
                    let _ = tx.send(Msg {
                        reload: None,
                        input: Input::LaunchFailed {
                            run,
                            error,
                            fatal: None,
                        },
                    });
                    return;
                }
            };
            let _ = record(Some(job.clone())).await;
            process::log_line(
                &log,
                &format!(
                    "=== orch: attempt {attempt} is {} job {job} ===",
                    tracker.name()
                ),
            );
            let _ = tx.send(Msg {
                reload: None,
                input: Input::Launched {
                    run,
                    pid: 0,
                    job_id: Some(job.clone()),
                },
            });
            let m = crate::supervisor::attempt::Monitor {
                run,
                plan: pcc.index,
                attempt,
                pid: 0,
                proc: Proc::Job {
                    id: job,
                    state,
                    tracker,
                },
                log,
                status_path: pcc.status_path.clone(),
                grace,
                watch_activity,
                tmpdir: None,
                client_state: None,
                keep: None,
                // A job's ending is the scheduler's to say.
                ended: std::path::PathBuf::new(),
                host_record: None,
                told_host: None,
                turn_ended: None,
                stop_one: stop_rx,
                stop_all,
                tx,
            };
            crate::supervisor::attempt::watch(m).await;
        });
    }
}

/// Records a batch attempt: before its submission (`job` `None`) the task goes in progress with
/// `orchRun.executor`; after it, the job id is added (unless the agent already reported).
fn record_job(pc: &PlanCtx, id: Option<&str>, job: Option<String>) {
    let executor = pc.executor.name().to_string();
    let _ = match id {
        Some(id) => pc.update(|doc| {
            if doc.entry(id).is_none_or(|e| e.status.is_finished()) {
                return Ok(());
            }
            match job {
                None => {
                    let opts = TransitionOptions {
                        force: true,
                        run: Some(RunInfo {
                            executor: Some(executor),
                            ..RunInfo::default()
                        }),
                        ..TransitionOptions::default()
                    };
                    status::apply(doc, id, Transition::Start, &opts, Utc::now()).map(|_| ())
                }
                Some(job) => {
                    if let Some(run) = doc.entry_mut(id).and_then(|e| e.orch_run.as_mut()) {
                        run.job_id = Some(job);
                    }
                    Ok(())
                }
            }
        }),
        None => pc.update(|doc| {
            doc.orch_plan_agent = Some(status::OrchPlanAgent {
                pid: 0,
                executor: Some(executor),
                job_id: Some(job),
                started_at: status::timestamp(Utc::now()),
                ..status::OrchPlanAgent::default()
            });
            Ok(())
        }),
    };
}
