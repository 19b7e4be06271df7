//! The loop's effects on a whole plan, each on a task of its own that answers the core: the
//! integration test (a blocking thread), a plan's preparation (its worktree, upstream merges,
//! setup) and its merge by the merge train (with its resolver's notes).

use super::Msg;
use crate::status::StatusDoc;
use crate::supervisor::core::Input;
use crate::supervisor::runner::{Effects, recv_signal};

impl Effects<'_> {
    /// Runs one integration test on a blocking thread; the report's failure is kept for the
    /// prompts of the plans it names before the core hears of it.
    pub(super) fn integrate(&mut self) {
        let tx = self.tx.clone();
        let Some(integ) = self.ctx.integration.clone() else {
            let _ = tx.send(Msg {
                reload: None,
                input: Input::Integrated {
                    result: Err("the integration preview is off".into()),
                },
            });
            return;
        };
        tokio::spawn(async move {
            let job = integ.clone();
            let mut testing = tokio::task::spawn_blocking(move || {
                let mut integrator = job
                    .integrator
                    .lock()
                    .map_err(|_| "the integration cache is poisoned".to_string())?;
                integrator.test(&job.spec).map_err(|e| e.to_string())
            });
            // Ctrl-C stops its verify command, as it stops the merge train's; SIGTERM (orch
            // up stopped by a service manager, `timeout`, a CI cancel) stops it too, at once:
            // the combination's code never outlives the run told to end.
            use tokio::signal::unix::{SignalKind, signal};
            let mut sigint = signal(SignalKind::interrupt()).ok();
            let mut sigterm = signal(SignalKind::terminate()).ok();
            let joined = loop {
                tokio::select! {
                    joined = &mut testing => break joined,
                    Some(()) = recv_signal(&mut sigint) => crate::merge::interrupt::request(),
                    Some(()) = recv_signal(&mut sigterm) => crate::merge::interrupt::request(),
                }
            };
            let result = match joined {
                Ok(r) => r,
                Err(e) => Err(format!("the integration test stopped: {e}")),
            };
            if let (Ok(report), Ok(mut failure)) = (&result, integ.failure.lock()) {
                *failure = report.failure.clone();
            }
            let _ = tx.send(Msg {
                reload: None,
                input: Input::Integrated { result },
            });
        });
    }

    pub(super) fn prepare(&mut self, p: usize) {
        let Some(pc) = self.plan(p) else { return };
        let ws = self.ws.clone();
        let upstreams = pc
            .entry
            .depends_on
            .iter()
            // A plan of another repository is seen through its checkout, never merged.
            .filter(|d| {
                !crate::supervisor::upstream_repos::crosses(
                    ws.manifest.as_ref(),
                    &pc.entry,
                    &d.plan,
                )
            })
            .filter_map(|d| {
                let q = self.ws.plans.iter().position(|lp| lp.name == d.plan)?;
                self.apply_records(q);
                let doc = self.views[q].doc.as_deref().cloned().unwrap_or_else(|| {
                    let lp = &self.ws.plans[q];
                    StatusDoc::new(&lp.plan, &lp.rel_path, &lp.name, chrono::Utc::now())
                });
                Some((
                    d.plan.clone(),
                    self.ws.plans[q].plan.clone(),
                    doc,
                    d.target.clone(),
                    d.raw.clone(),
                ))
            })
            .collect();
        let tx = self.tx.clone();
        let ctx = self.ctx.clone();
        let stop = self.stop_all.subscribe();
        let told = self.tree_told(p);
        tokio::spawn(async move {
            let result = crate::supervisor::prepare::prepare(ctx, pc, upstreams, stop, told).await;
            let _ = tx.send(Msg {
                reload: None,
                input: Input::Prepared { plan: p, result },
            });
        });
    }

    /// What tells the core that plan `p`'s new worktree is made ([`Input::TreeMade`]).
    pub(super) fn tree_told(&self, p: usize) -> crate::supervisor::prepare::TreeTold {
        let tx = self.tx.clone();
        Box::new(move |result| {
            let _ = tx.send(Msg {
                reload: None,
                input: Input::TreeMade {
                    plan: p,
                    result: result.clone(),
                },
            });
        })
    }

    pub(super) fn merge(&mut self, p: usize) {
        let Some(pc) = self.plan(p) else { return };
        let manifest = self.ctx.manifest_path.clone();
        let name = pc.name().to_owned();
        let tx = self.tx.clone();
        let told = tx.clone();
        let notify: crate::supervisor::merge_train::Told = std::sync::Arc::new(move |note| {
            let _ = told.send(Msg {
                reload: None,
                input: Input::Resolving {
                    plan: p,
                    note: note.clone(),
                },
            });
        });
        tokio::spawn(async move {
            let outcome = crate::supervisor::merge_train::run_merge(&manifest, &name, notify).await;
            let _ = tx.send(Msg {
                reload: Some(p),
                input: Input::Merged { plan: p, outcome },
            });
        });
    }

    /// The merge train's landing of a group of plans of several repositories (`plans[0]` names
    /// it), all together or not at all, as `orch merge` lands it.
    pub(super) fn land(&mut self, plans: Vec<usize>) {
        let Some(first) = plans.first().and_then(|&p| self.plan(p)) else {
            return;
        };
        let manifest = self.ctx.manifest_path.clone();
        let name = first.name().to_owned();
        let index: Vec<(String, usize)> = plans
            .iter()
            .filter_map(|&p| self.plan(p).map(|pc| (pc.name().to_owned(), p)))
            .collect();
        let tx = self.tx.clone();
        // A resolver's notes go to the plan they name (the group's first when none matches).
        let (told, names) = (tx.clone(), index.clone());
        let notify: crate::supervisor::merge_train::Told = std::sync::Arc::new(move |note| {
            let plan = match note {
                crate::merge::resolve::ResolveNote::Started { plan, .. }
                | crate::merge::resolve::ResolveNote::Resolved { plan, .. }
                | crate::merge::resolve::ResolveNote::Failed { plan, .. } => plan,
            };
            let Some(&(_, p)) = names.iter().find(|(n, _)| n == plan).or(names.first()) else {
                return;
            };
            let _ = told.send(Msg {
                reload: None,
                input: Input::Resolving {
                    plan: p,
                    note: note.clone(),
                },
            });
        });
        tokio::spawn(async move {
            let landed =
                crate::supervisor::merge_train::run_landing(&manifest, &name, notify).await;
            let outcomes = landed
                .into_iter()
                .filter_map(|l| {
                    let &(_, p) = index.iter().find(|(n, _)| *n == l.plan)?;
                    Some(crate::supervisor::core::LandedPlan {
                        plan: p,
                        target: l.target,
                        outcome: l.outcome,
                    })
                })
                .collect::<Vec<_>>();
            // A plan of the group the landing did not report (it failed before it knew the
            // group) gets the first outcome, so that the train never waits on it.
            let mut all = outcomes.clone();
            for &(_, p) in &index {
                if !all.iter().any(|o| o.plan == p) {
                    let outcome = outcomes.first().map_or_else(
                        || crate::merge::PlanMergeOutcome::Error {
                            reason: "the landing reported nothing".to_string(),
                        },
                        |o| o.outcome.clone(),
                    );
                    all.push(crate::supervisor::core::LandedPlan {
                        plan: p,
                        target: String::new(),
                        outcome,
                    });
                }
            }
            let _ = tx.send(Msg {
                reload: None,
                input: Input::Landed { outcomes: all },
            });
        });
    }
}
