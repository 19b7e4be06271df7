//! Live re-planning, the effects' side: the manifest, the plan files and the templates watched
//! ([`crate::supervisor::replan`]); an edit read whole once the writes settle, checked as `orch
//! check` and `orch up` check it, and applied to what has not started (the core's
//! [`Input::Replanned`]), or reported (`manifest_invalid`) with the last good configuration kept.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::spec_of;
use crate::supervisor::context::PlanCtx;
use crate::supervisor::core::{Core, Input, Replan, Structure};
use crate::supervisor::event::Event;
use crate::supervisor::replan as inputs;
use crate::supervisor::runner::{Effects, View};
use crate::supervisor::state::{Unit, named};
use crate::workspace::Workspace;

impl Effects<'_> {
    /// Starts watching the run's inputs (`tx` hears of their changes).
    pub(super) fn watch_inputs(&mut self, tx: &tokio::sync::mpsc::UnboundedSender<()>) {
        // A plan file run alone, without a manifest: nothing to re-plan from.
        if self.ws.manifest.is_none() {
            return;
        }
        self.replanning.inputs = inputs::inputs_of(&self.ws);
        self.replanning.seen = Some(inputs::fingerprint(&self.replanning.inputs));
        match inputs::watch_inputs(&self.replanning.inputs, tx.clone()) {
            Ok(w) => self.replanning.watcher = Some(w),
            Err(e) => self.note(
                None,
                format!("cannot watch the manifest and the plan files ({e}); edits during the run are read every second"),
            ),
        }
        self.replan_tx = Some(tx.clone());
    }

    /// Whether an edit waits to be applied (the caller tries again on the next tick).
    pub(super) fn replan_waiting(&self) -> bool {
        self.replanning.waiting.is_some() || self.replanning.watcher.is_none()
    }

    /// Reads the inputs and applies or reports an edit, unless their contents are those last
    /// applied or reported.
    pub(super) fn replan(&mut self, core: &mut Core) {
        if self.replan_tx.is_none() {
            return;
        }
        let fp = inputs::fingerprint(&self.replanning.inputs);
        if self.replanning.seen.as_ref() == Some(&fp) && self.replanning.waiting.is_none() {
            return;
        }
        let files = match self.replanning.seen.as_ref() {
            Some(seen) => inputs::changed_files(seen, &fp),
            None => fp.iter().map(|(p, _)| p.clone()).collect(),
        };
        let invalid = match inputs::load_candidate(&self.ctx.manifest_path) {
            Err(invalid) => Some((invalid.file, invalid.errors)),
            Ok(new_ws) => match self.apply_edit(core, new_ws, &files) {
                Ok(true) => None,
                Ok(false) => return,
                Err(errors) => Some((self.ctx.manifest_path.clone(), errors)),
            },
        };
        self.replanning.seen = Some(fp);
        self.replanning.waiting = None;
        match invalid {
            Some((file, errors)) => (self.emit)(&Event::ManifestInvalid { file, errors }),
            // A plan file added or removed: the files watched, and their contents now.
            None if self.inputs_changed() => {
                self.replanning.seen = Some(inputs::fingerprint(&self.replanning.inputs));
            }
            None => {}
        }
    }

    /// Applies the valid edit `new_ws`; `Ok(false)`: it waits for running tasks it removes.
    fn apply_edit(
        &mut self,
        core: &mut Core,
        new_ws: Workspace,
        files: &[PathBuf],
    ) -> Result<bool, Vec<String>> {
        let Some(manifest) = new_ws.manifest.clone() else {
            return Err(vec!["the manifest could not be read".to_string()]);
        };
        let changes = inputs::changes_of(&self.ws, &new_ws, files);
        if changes.is_empty() {
            // Nothing that matters (a file saved as it was, a task moved to another line).
            return Ok(true);
        }
        let old_ws = self.ws.clone();
        let old_ctx: Vec<Option<Arc<PlanCtx>>> = self.plans.clone();
        let old_n = old_ws.plans.len();
        let order = merged_order(&old_ws, &new_ws, (0..old_n).all(|p| old_ctx[p].is_some()));
        let removed: Vec<bool> = order
            .iter()
            .enumerate()
            .map(|(p, src)| {
                matches!(src, Source::Old) && old_ctx.get(p).is_some_and(Option::is_some)
            })
            .collect();
        let plan_at = |p: usize| -> &crate::workspace::LoadedPlan {
            match order[p] {
                Source::New(i) => &new_ws.plans[i],
                Source::Old => &old_ws.plans[p],
            }
        };
        // The plans' tasks or their dependencies changed (else the graph and the core's plans
        // stay, and an edit of settings costs no more than its check).
        let old_manifest = old_ws.manifest.as_ref();
        let depends = |m: Option<&crate::manifest::Manifest>, name: &str| {
            m.and_then(|m| m.plan(name))
                .map(|e| e.depends_on.clone())
                .unwrap_or_default()
        };
        let structural = order.len() != old_n
            || (0..old_n).any(|p| {
                let lp = plan_at(p);
                lp.plan != old_ws.plans[p].plan
                    || depends(Some(&manifest), &lp.name) != depends(old_manifest, &lp.name)
            });
        let graph = if structural {
            let plans: Vec<&crate::plan::Plan> =
                (0..order.len()).map(|p| &plan_at(p).plan).collect();
            if let Some(why) = core.replan_waits_for(&plans) {
                if self.replanning.waiting.as_deref() != Some(why.as_str()) {
                    self.note(None, format!("plans.toml or a plan file changed: {why}"));
                }
                self.replanning.waiting = Some(why);
                return Ok(false);
            }
            let names: Vec<String> = (0..order.len()).map(|p| plan_at(p).name.clone()).collect();
            Some(
                crate::workspace::graph_of(&manifest, &names, &plans)
                    .map_err(|ds| ds.iter().map(ToString::to_string).collect::<Vec<_>>())?,
            )
        } else {
            None
        };
        // The plans to check and make again: new ones, and those whose entry, agent, plan file
        // or defaults changed.
        let defaults_changed = old_manifest.is_none_or(|m| m.defaults != manifest.defaults);
        let mut check: Vec<usize> = Vec::new();
        let mut running: Vec<usize> = Vec::new();
        let mut at: Vec<(usize, Option<Arc<PlanCtx>>)> = Vec::new();
        for (p, src) in order.iter().enumerate() {
            let Source::New(i) = *src else { continue };
            let old = old_ctx.get(p).cloned().flatten();
            if p < old_n && old.is_none() {
                continue;
            }
            let changed = match (&old, old_manifest) {
                (Some(pc), Some(om)) => {
                    let new_entry = manifest.plan(pc.name());
                    defaults_changed
                        || om.plan(pc.name()) != new_entry
                        || new_entry.and_then(|e| manifest.agent_of(e)) != Some(&pc.agent)
                        || pc.plan != new_ws.plans[i].plan
                }
                _ => true,
            };
            if changed {
                if old.is_some() {
                    running.push(i);
                }
                check.push(i);
                at.push((p, old));
            }
        }
        let mut events = Vec::new();
        let fresh = {
            let checked = crate::supervisor::start::Checked::check_reload(
                &new_ws,
                &manifest,
                &check,
                &running,
                self.ctx.orch_bin.clone(),
            )
            .map_err(|e| vec![error_text(&e)])?;
            checked
                .reload_ctxs(&at, &mut |e: &Event| events.push(e.clone()))
                .map_err(|e| vec![error_text(&e)])?
        };
        let templates =
            crate::prompt::Templates::load(&manifest.root, &manifest.defaults.templates)
                .and_then(|t| t.check().map(|()| t))
                .map_err(|e| vec![e.to_string()])?;
        // From here on the edit is the run's.
        for e in &events {
            (self.emit)(e);
        }
        self.templates = Some(Arc::new(templates));
        let n = order.len();
        self.plans.resize(n, None);
        let mut reread = Vec::new();
        for pc in fresh {
            let p = pc.index;
            let plan_changed = old_ctx
                .get(p)
                .and_then(Option::as_ref)
                .is_none_or(|old| old.plan != pc.plan);
            if plan_changed {
                reread.push(p);
            }
            self.plans[p] = Some(pc);
        }
        self.views.resize_with(n, View::default);
        // The new workspace: the edit's plans (moved, not copied), the removed ones as they were.
        let Workspace {
            plans: mut new_plans,
            diagnostics,
            ..
        } = new_ws;
        let mut taken: Vec<Option<crate::workspace::LoadedPlan>> =
            new_plans.drain(..).map(Some).collect();
        let merged: Vec<crate::workspace::LoadedPlan> = order
            .iter()
            .enumerate()
            .filter_map(|(p, src)| match *src {
                Source::New(i) => taken.get_mut(i).and_then(Option::take),
                Source::Old => old_ws.plans.get(p).cloned(),
            })
            .collect();
        self.ws = Arc::new(Workspace {
            manifest: Some(manifest.clone()),
            selected: (0..n).filter(|&p| self.plan(p).is_some()).collect(),
            plans: merged,
            diagnostics,
            // The core holds the run's graph.
            graph: None,
        });
        // The attempts' report directories, by their tasks' new indices.
        for r in self.reporters.values_mut() {
            if let Unit::Task { plan, task } = r.unit
                && reread.contains(&plan)
                && let Some(Some(old)) = old_ctx.get(plan)
                && let Some(id) = old.plan.tasks.get(task).map(|t| t.id.as_str())
                && let Some(t) = self.ws.plans[plan]
                    .plan
                    .tasks
                    .iter()
                    .position(|x| x.id == id)
            {
                r.unit = Unit::Task { plan, task: t };
            }
        }
        let mut facts = vec![None; n];
        for &p in &reread {
            self.views[p] = View::default();
            let _ = self.reload(p);
            facts[p] = Some(self.views[p].facts.clone());
        }
        let specs = (0..n)
            .map(|p| self.plan(p).map(|pc| spec_of(&pc, &self.ws)))
            .collect();
        let max_agents = match old_manifest {
            // `--max-agents` given: it stays.
            Some(om) if om.defaults.max_agents.max(1) != self.ctx.max_agents => self.ctx.max_agents,
            _ => manifest.defaults.max_agents,
        };
        let r = Replan {
            structure: graph.map(|graph| Structure {
                graph,
                // Only the plans that are new or whose tasks changed: the core keeps the others.
                plans: (0..n)
                    .map(|p| reread.contains(&p).then(|| self.ws.plans[p].plan.clone()))
                    .collect(),
                facts,
            }),
            priorities: self.ws.priorities(),
            names: self.ws.plans.iter().map(|lp| lp.name.clone()).collect(),
            specs,
            removed,
            max_agents,
            backoff: manifest.defaults.backoff,
            budget: manifest.defaults.budget,
        };
        (self.emit)(&Event::ManifestReloaded {
            files: files.to_vec(),
            changes,
        });
        for &p in &reread {
            if let Some(Some(old)) = old_ctx.get(p) {
                self.say_finished_changed(p, &old.plan);
            }
        }
        if let Some(om) = old_manifest {
            self.say_next_run_only(om, &manifest);
        }
        for p in old_n..n {
            core.set_merged_before(p, self.views[p].merged);
            core.set_held(p, self.views[p].held);
        }
        self.apply(core, Input::Replanned(Box::new(r)));
        // The integration preview tests every plan of the manifest as it is now.
        if let Some(integ) = &self.ctx.integration {
            integ.spec.set_plans(&manifest);
        }
        // New plans' worktrees are made now, as at the start.
        for p in old_n..n {
            if let Some(pc) = self.plan(p).filter(|pc| pc.new_tree.is_some()) {
                let told = self.tree_told(p);
                let ctx = self.ctx.clone();
                tokio::spawn(crate::supervisor::prepare::ensure_tree(ctx, pc, told));
            }
        }
        Ok(true)
    }

    /// Names the run-wide settings the edit changed that this run keeps.
    fn say_next_run_only(
        &mut self,
        old: &crate::manifest::Manifest,
        new: &crate::manifest::Manifest,
    ) {
        let later = next_run_only(old, new);
        if later.is_empty() {
            return;
        }
        let keys: Vec<String> = later.iter().map(|k| format!("`{k}`")).collect();
        let one = later.len() == 1;
        self.note(
            None,
            format!(
                "{} changed: {} on the next `orch up` (this run keeps {})",
                keys.join(", "),
                if one { "it applies" } else { "they apply" },
                if one { "its value" } else { "their values" }
            ),
        );
    }

    /// Says which tasks of plan `p` the edit changed (from `old`) that are finished already:
    /// they stay as they are.
    fn say_finished_changed(&mut self, p: usize, old: &crate::plan::Plan) {
        let lp = &self.ws.plans[p];
        let mut ids = Vec::new();
        for (t, task) in lp.plan.tasks.iter().enumerate() {
            let finished = self.views[p]
                .facts
                .get(t)
                .is_some_and(|f| f.status.is_finished());
            let changed = old.tasks.iter().find(|o| o.id == task.id).is_some_and(|o| {
                (&o.description, &o.body, o.kind) != (&task.description, &task.body, task.kind)
            });
            if finished && changed {
                ids.push(task.id.clone());
            }
        }
        if ids.is_empty() {
            return;
        }
        let name = lp.name.clone();
        self.note(
            Some(name.clone()),
            format!(
                "{} of plan `{name}` changed but {} finished already: {} as {} (`orch task reset {} --force --plan {name}` runs it again)",
                named("task", &ids),
                if ids.len() == 1 { "is" } else { "are" },
                if ids.len() == 1 { "it stays" } else { "they stay" },
                if ids.len() == 1 { "it is" } else { "they are" },
                ids[0]
            ),
        );
    }

    /// The set of inputs after an applied edit (a plan file added or removed): watched anew.
    /// Whether it changed.
    fn inputs_changed(&mut self) -> bool {
        let inputs = inputs::inputs_of(&self.ws);
        if inputs == self.replanning.inputs {
            return false;
        }
        self.replanning.inputs = inputs;
        if let Some(tx) = self.replan_tx.clone() {
            self.replanning.watcher = inputs::watch_inputs(&self.replanning.inputs, tx).ok();
        }
        true
    }
}

/// An error of the checks `orch up` makes, with its hint, as one line of `manifest_invalid`.
fn error_text(e: &crate::error::CliError) -> String {
    match &e.hint {
        Some(hint) => format!("{:#}; {hint}", e.error),
        None => format!("{:#}", e.error),
    }
}

/// The run-wide settings of `new` that differ from `old` and that a running `orch up` keeps
/// until its end (where it writes, how it stops agents, its merge train and hooks).
fn next_run_only(
    old: &crate::manifest::Manifest,
    new: &crate::manifest::Manifest,
) -> Vec<&'static str> {
    let (a, b) = (&old.defaults, &new.defaults);
    [
        ("target", a.target != b.target),
        ("auto_merge", a.auto_merge != b.auto_merge),
        ("worktree_root", a.worktree_root != b.worktree_root),
        ("state_dir", a.state_dir != b.state_dir),
        ("log_dir", a.log_dir != b.log_dir),
        ("branch_prefix", a.branch_prefix != b.branch_prefix),
        ("stuck_after", a.stuck_after != b.stuck_after),
        ("grace", a.grace != b.grace),
        ("ports", a.ports != b.ports),
        ("integrate", a.integrate != b.integrate),
        (
            "integrate_feedback",
            a.integrate_feedback != b.integrate_feedback,
        ),
        ("slurm.poll", old.slurm_poll != new.slurm_poll),
        ("[[notify]]", old.notify != new.notify),
    ]
    .into_iter()
    .filter_map(|(key, changed)| changed.then_some(key))
    .collect()
}

/// Where a plan of the re-planned run comes from: the edit (its index there), or the run as it
/// was (a plan the edit removed, kept at its place).
#[derive(Clone, Copy)]
enum Source {
    New(usize),
    Old,
}

/// The re-planned run's plans, by index: the run's plans keep theirs, the edit's new plans come
/// after them (`whole`: the run has every plan of the manifest; a run of some only takes none).
fn merged_order(old: &Workspace, new: &Workspace, whole: bool) -> Vec<Source> {
    let by_name: HashMap<&str, usize> = new
        .plans
        .iter()
        .enumerate()
        .map(|(i, lp)| (lp.name.as_str(), i))
        .collect();
    let mut order: Vec<Source> = old
        .plans
        .iter()
        .map(|lp| {
            by_name
                .get(lp.name.as_str())
                .map_or(Source::Old, |&i| Source::New(i))
        })
        .collect();
    if whole {
        let known: std::collections::HashSet<&str> =
            old.plans.iter().map(|lp| lp.name.as_str()).collect();
        order.extend(
            new.plans
                .iter()
                .enumerate()
                .filter(|(_, lp)| !known.contains(lp.name.as_str()))
                .map(|(i, _)| Source::New(i)),
        );
    }
    order
}
