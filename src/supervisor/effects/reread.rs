//! The loop's reading of the status files: which changed on disk, re-read whole, what changed
//! told to the core; a plan paused by a person.

use std::collections::HashMap;

use super::Msg;
use crate::status;
use crate::supervisor::core::reread::{self, Change};
use crate::supervisor::core::{Core, Input};
use crate::supervisor::runner::{Effects, facts_of};
use crate::supervisor::state::TaskFacts;

impl Effects<'_> {
    /// Whether plan `p`'s status file says a person paused it: a change is an input for the
    /// core, fed before anything else.
    pub(super) fn held(&mut self, p: usize, held: bool) {
        if self.views[p].held != held {
            self.views[p].held = held;
            self.queue.push_back(Msg {
                reload: None,
                input: Input::PlanHeld { plan: p, held },
            });
        }
    }

    /// Re-reads the status files that changed on disk; returns whether one had.
    pub(super) fn reload_all(&mut self, core: &mut Core) -> bool {
        self.take_reports(core);
        let mut changed = false;
        for p in 0..self.views.len() {
            if let Some(input) = self.reload(p) {
                changed = true;
                self.apply(core, input);
            }
        }
        changed
    }

    /// Re-reads plan `p`'s status file if it changed (size, modification time or inode): the
    /// document read whole, and the tasks whose record changed, as an input for the core.
    pub(crate) fn reload(&mut self, p: usize) -> Option<Input> {
        let lp = &self.ws.plans[p];
        let stamp = status::FileStamp::of(&lp.status_path);
        if stamp.is_some() && stamp == self.views[p].stamp && self.views[p].doc.is_some() {
            return None;
        }
        tracing::debug!(plan = %lp.name, path = %lp.status_path.display(), "status file changed: re-read");
        let bytes = match crate::status::read_file(&lp.status_path) {
            Ok(b) => b,
            Err(e) => {
                self.cannot_read(p, &e);
                return None;
            }
        };
        let created = self.plan(p).and_then(|pc| pc.created_at);
        self.reread(p, bytes, stamp, created)
    }

    /// Reads plan `p`'s status document whole from `bytes` (`None`: no file): the tasks whose
    /// facts differ from those last read are the change told to the core.
    pub(super) fn reread(
        &mut self,
        p: usize,
        bytes: Option<Vec<u8>>,
        stamp: Option<status::FileStamp>,
        created: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Option<Input> {
        let lp = &self.ws.plans[p];
        let pc = self.plan(p);
        // What the run wrote itself is taken as it wrote it: neither parsed nor copied.
        let known = pc.as_deref().map(|pc| (&*pc.known, pc.digest.as_deref()));
        let at = (
            lp.status_path.as_path(),
            known.map(|k| k.0),
            known.and_then(|k| k.1),
        );
        let mut doc =
            match status::view_shared(at, bytes.as_deref(), &lp.plan, &lp.rel_path, &lp.name) {
                Ok(doc) => doc,
                Err(e) => {
                    self.cannot_read(p, &e);
                    return None;
                }
            };
        let by_id: HashMap<&str, &status::TaskEntry> =
            doc.entries().map(|e| (e.id.as_str(), e)).collect();
        let mut facts: Vec<TaskFacts> = lp
            .plan
            .tasks
            .iter()
            .map(|t| match by_id.get(t.id.as_str()) {
                Some(e) => facts_of(t, e, created, pc.as_deref()),
                None => TaskFacts::default(),
            })
            .collect();
        let merged = doc
            .orch_merge
            .as_ref()
            .is_some_and(status::OrchMerge::is_merged);
        let view = &mut self.views[p];
        let mut refused = Vec::new();
        if let Some(before_doc) = view.doc.as_ref() {
            for (t, task) in lp.plan.tasks.iter().enumerate() {
                let (Some(old), Some(new)) = (view.facts.get(t), facts.get(t)) else {
                    continue;
                };
                let Some(before) = before_doc.entry(&task.id).filter(|_| old != new) else {
                    continue;
                };
                let own = reread::OwnRecord {
                    in_run: pc.is_some(),
                    finished: pc
                        .as_ref()
                        .is_some_and(|pc| pc.is_finished_by_orch(&task.id)),
                    commit: pc.as_ref().and_then(|pc| pc.unrecorded_commit(&task.id)),
                };
                match reread::judge(old, new, &own) {
                    Change::Kept => {}
                    Change::Own => {
                        if let Some(pc) = &pc {
                            pc.take_finished_by_orch(&task.id);
                        }
                    }
                    Change::Refused => {
                        refused.push(before.clone());
                        facts[t] = old.clone();
                        if let Some(slot) = std::sync::Arc::make_mut(&mut doc).entry_mut(&task.id) {
                            *slot = before.clone();
                        }
                    }
                }
            }
        }
        let changes: Vec<(usize, TaskFacts)> = facts
            .iter()
            .enumerate()
            .filter(|(t, f)| view.facts.get(*t) != Some(*f))
            .map(|(t, f)| (t, f.clone()))
            .collect();
        let merged_changed = view.merged != merged;
        let held = doc.extra.contains_key(crate::status::PAUSED_KEY);
        self.held(p, held);
        if let Some(pc) = &pc {
            pc.read_back(&doc);
        }
        let view = &mut self.views[p];
        view.stamp = stamp;
        view.doc = Some(doc);
        view.facts = facts;
        view.merged = merged;
        view.warned = false;
        self.restore(p, refused);
        self.poke_jobs(p);
        (!changes.is_empty() || merged_changed).then_some(Input::Status {
            plan: p,
            tasks: changes,
            merged,
        })
    }

    /// Puts back orch's record of the entries `refused` (changes of plan `p`'s status file
    /// that did not come through orch) and says so.
    fn restore(&mut self, p: usize, refused: Vec<status::TaskEntry>) {
        let Some(pc) = self.plan(p) else { return };
        for before in refused {
            let id = before.id.clone();
            let put_back = pc.update_entry(&id, |doc| {
                if let Some(slot) = doc.entry_mut(&id) {
                    *slot = before.clone();
                }
                Ok(())
            });
            let reason = match put_back {
                Ok(()) => format!(
                    "the status file was changed outside orch (not by orch's own transition); \
                     orch's record of the task (`{}`) is put back",
                    before.status
                ),
                Err(e) => format!(
                    "the status file was changed outside orch; orch keeps its record of the \
                     task (`{}`), but could not write it back: {e}",
                    before.status
                ),
            };
            self.refused(&pc, &id, "a change of the status file", &reason, None);
        }
    }

    /// A status file that cannot be read: said once until it can be again.
    pub(super) fn cannot_read(&mut self, p: usize, e: &dyn std::fmt::Display) {
        if !self.views[p].warned {
            self.views[p].warned = true;
            let name = self.ws.plans[p].name.clone();
            self.note(Some(name), format!("cannot read the status file: {e}"));
        }
    }
}
