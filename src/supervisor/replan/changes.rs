//! What changed between two configurations, one short line each, for `manifest_reloaded`.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use super::absolute;
use crate::duration::format_duration;
use crate::manifest::{
    Budget, Defaults, Dependency, Manifest, PlanEntry, Protect, SandboxKeys, SlurmOptions, Spelled,
    Warm,
};
use crate::plan::{Plan, Task};
use crate::workspace::{LoadedPlan, Workspace};

/// A plan with more changed tasks than this gets counts instead of one line per task.
const TASK_LINES: usize = 6;

/// What changed from `old` to `new`, one short line each, in a stable order: the keys of
/// `[defaults]` (`max_agents 1 → 3`), the agents, `[slurm] poll`, the `[[notify]]` hooks, then
/// each plan in the new manifest's order (`plan c: added`, `plan b: priority 0 → 5`,
/// `plan a: depends_on [] → [b]`, `plan a: task 1.4 added`, `plan a: task 1.2 changed`,
/// `plan a: tasks reordered`), the plans removed (`plan d: removed`), and `plans reordered`.
/// A plan's value that changed only because the same `[defaults]` key changed the same way is
/// not repeated. Moving a task to another line is no change. Empty when nothing that matters
/// changed.
pub(crate) fn changes(old: &Workspace, new: &Workspace) -> Vec<String> {
    let mut out = Vec::new();
    if let (Some(a), Some(b)) = (&old.manifest, &new.manifest) {
        manifest_changes(a, b, &mut out);
    }
    let defaults: BTreeSet<String> = out.iter().cloned().collect();
    let entry = |ws: &'_ Workspace, name: &str| -> Option<PlanEntry> {
        ws.manifest.as_ref().and_then(|m| m.plan(name).cloned())
    };
    for p in &new.plans {
        let Some(was) = old.plans.iter().find(|o| o.name == p.name) else {
            out.push(format!("plan {}: added", p.name));
            continue;
        };
        if let (Some(a), Some(b)) = (entry(old, &p.name), entry(new, &p.name)) {
            let prefix = format!("plan {}: ", p.name);
            let mut lines = Vec::new();
            entry_changes(&a, &b, &prefix, &mut lines);
            // `plan a: timeout 2h → 1h` says nothing more than `timeout 2h → 1h`.
            out.extend(lines.into_iter().filter(|l| {
                l.strip_prefix(&prefix)
                    .is_none_or(|rest| !defaults.contains(rest))
            }));
        }
        plan_changes(was, p, &mut out);
    }
    for p in &old.plans {
        if !new.plans.iter().any(|n| n.name == p.name) {
            out.push(format!("plan {}: removed", p.name));
        }
    }
    let kept = |from: &Workspace, other: &Workspace| -> Vec<String> {
        from.plans
            .iter()
            .filter(|p| other.plans.iter().any(|o| o.name == p.name))
            .map(|p| p.name.clone())
            .collect()
    };
    if kept(old, new) != kept(new, old) {
        out.push("plans reordered".to_string());
    }
    out
}

/// [`changes`], and `templates changed` last when one of `files` (the files that changed, from
/// [`super::changed_files`]) is in the prompt templates directory of either configuration.
pub(crate) fn changes_of(old: &Workspace, new: &Workspace, files: &[PathBuf]) -> Vec<String> {
    let mut out = changes(old, new);
    let dirs: Vec<PathBuf> = [old, new]
        .iter()
        .filter_map(|ws| ws.manifest.as_ref())
        .map(|m| absolute(&m.templates_dir()))
        .collect();
    if files
        .iter()
        .any(|f| dirs.iter().any(|d| absolute(f).starts_with(d)))
    {
        out.push("templates changed".to_string());
    }
    out
}

/// A value as a change line shows it.
trait Shown {
    fn shown(&self) -> String;
}

/// `impl Shown` for each of the types, the value shown as `|v| …` says.
macro_rules! shown {
    (|$v:ident| $body:expr; $($t:ty),*) => {
        $(impl Shown for $t {
            fn shown(&self) -> String {
                let $v = self;
                $body
            }
        })*
    };
}

shown!(|v| v.to_string(); usize, u16, u32, u64, i64, bool, String);
shown!(|v| v.display().to_string(); PathBuf);
shown!(|v| format_duration(*v); Duration);
shown!(|v| v.raw.clone(); Dependency);
shown!(|v| v.path.shown(); Warm);
shown!(|v| v.patterns.shown(); Protect);
shown!(|v| format!("{v:?}"); SandboxKeys, SlurmOptions);
shown!(|v| if v.is_set() { v.describe() } else { "none".to_string() }; Budget);

/// A word of the manifest (`merge_strategy`, `executor`), as it is spelled there.
impl<T: Spelled + std::fmt::Display> Shown for T {
    fn shown(&self) -> String {
        self.to_string()
    }
}

impl<T: Shown> Shown for Option<T> {
    fn shown(&self) -> String {
        self.as_ref()
            .map_or_else(|| "none".to_string(), Shown::shown)
    }
}

impl<T: Shown> Shown for Vec<T> {
    fn shown(&self) -> String {
        let items: Vec<String> = self.iter().map(Shown::shown).collect();
        format!("[{}]", items.join(", "))
    }
}

impl Shown for crate::manifest::BestOf {
    fn shown(&self) -> String {
        format!(
            "attempts {} agents [{}] select {} stop {}",
            self.attempts,
            self.agents.join(", "),
            self.select
                .as_ref()
                .map_or("none".to_string(), |s| s.join(" ")),
            self.stop.as_str()
        )
    }
}

impl Shown for crate::manifest::Limits {
    fn shown(&self) -> String {
        format!(
            "memory {}, pids {}",
            crate::manifest::shown_size(self.memory()),
            self.pids()
        )
    }
}

impl Shown for crate::manifest::SizeLimits {
    fn shown(&self) -> String {
        format!(
            "max_file_size {} max_change_size {} max_change_files {}",
            self.file, self.change, self.files
        )
    }
}

impl Shown for crate::manifest::ResolveWith {
    fn shown(&self) -> String {
        match self {
            Self::Own => "true".to_string(),
            Self::Agent(a) => a.clone(),
        }
    }
}

/// `prefix key old → new` into `out` for each of `keys` whose value, as shown, differs between
/// `old` and `new` (a `depends_on` or `warm` entry moved to another line is the same). The struct is taken apart with every field named, so that a field added to it does not
/// compile until it is listed here: compared (`keys`), or not (`skip`, with the reason).
macro_rules! key_changes {
    ($out:expr, $prefix:expr, $ty:ident, $old:expr, $new:expr,
     keys [$($key:ident),* $(,)?], skip [$($skip:ident),* $(,)?]) => {{
        let $ty { $($key: _,)* $($skip: _,)* } = $new;
        $(
            let (was, now) = ($old.$key.shown(), $new.$key.shown());
            if was != now {
                $out.push(format!("{}{} {was} → {now}", $prefix, stringify!($key)));
            }
        )*
    }};
}

/// `[defaults]`, the agents, `[slurm] poll` and the `[[notify]]` hooks.
fn manifest_changes(old: &Manifest, new: &Manifest, out: &mut Vec<String>) {
    defaults_changes(&old.defaults, &new.defaults, out);
    // `path`, `root`: the same manifest; `plans`: one by one below; `warnings`: advice only.
    let Manifest {
        path: _,
        root: _,
        defaults: _,
        agents,
        plans: _,
        slurm_poll,
        warnings: _,
        notify,
        hosts,
        repos,
        services,
        telemetry,
    } = new;
    let names: BTreeSet<&String> = old.agents.keys().chain(agents.keys()).collect();
    for name in names {
        match (old.agents.get(name), agents.get(name)) {
            (None, Some(_)) => out.push(format!("agent {name}: added")),
            (Some(_), None) => out.push(format!("agent {name}: removed")),
            (Some(a), Some(b)) if a != b => out.push(format!("agent {name}: changed")),
            _ => {}
        }
    }
    if old.slurm_poll != *slurm_poll {
        out.push(format!(
            "slurm.poll {} → {}",
            old.slurm_poll.shown(),
            slurm_poll.shown()
        ));
    }
    if old.hosts != *hosts {
        out.push("hosts changed".to_string());
    }
    if old.repos != *repos {
        out.push("repo changed".to_string());
    }
    if old.services != *services {
        out.push("service changed".to_string());
    }
    if old.notify != *notify {
        out.push("notify changed".to_string());
    }
    if old.telemetry != *telemetry {
        // Read when the run starts: a change applies to the next run.
        out.push("telemetry changed (applies to the next run)".to_string());
    }
}

fn defaults_changes(old: &Defaults, new: &Defaults, out: &mut Vec<String>) {
    key_changes!(
        out,
        "",
        Defaults,
        old,
        new,
        keys [
            target, max_agents, agent, timeout, retries, verify, merge_strategy, auto_merge,
            worktree_root, state_dir, branch_prefix, parallel, parallel_tasks, stuck_after,
            grace, backoff, log_dir, log_max, setup, copy, templates, executor, image, check, budget,
            remote,
            ports, integrate, integrate_feedback, sandbox, protect, allow_protected, warm,
            submodules, best_of, resolve, resolve_verify, verify_all, size_limits,
        ],
        // `review`: read by `orch pr --watch`, nothing of a run's.
        skip [review]
    );
}

fn entry_changes(old: &PlanEntry, new: &PlanEntry, prefix: &str, out: &mut Vec<String>) {
    // `name`: the same plan; `abs_file`: `file` says it; `line`, `paths_at`: where the entry is
    // written, not what it says; `format`: what the file's tasks are read as (they are compared
    // below), checked against the file.
    key_changes!(
        out,
        prefix,
        PlanEntry,
        old,
        new,
        keys [
            file, priority, agent, branch, depends_on, parallel, parallel_tasks, timeout,
            retries, setup, copy, warm, submodules, executor, image, slurm, check, budget, paths,
            protect, allow_protected, best_of, resolve, resolve_verify, hosts, repo, land_with,
            fallback, services, limits, size_limits,
        ],
        skip [name, abs_file, line, paths_at, review, format]
    );
}

/// The plan file's changes: its title, phases, execution notes and tasks.
fn plan_changes(old: &LoadedPlan, new: &LoadedPlan, out: &mut Vec<String>) {
    let (a, b) = (&old.plan, &new.plan);
    // The same plan (most plans of most edits): one comparison, nothing built.
    if a == b {
        return;
    }
    let name = &new.name;
    if a.title != b.title {
        out.push(format!("plan {name}: title changed"));
    }
    let phases = |p: &Plan| -> Vec<(u32, String, Option<String>)> {
        p.phases
            .iter()
            .map(|ph| {
                let trigger = ph.pipeline_start.as_ref().map(|s| s.trigger.clone());
                (ph.number, ph.title.clone(), trigger)
            })
            .collect()
    };
    if phases(a) != phases(b) {
        out.push(format!("plan {name}: phases changed"));
    }
    // The notes without their lines.
    let notes = |p: &Plan| -> Vec<String> {
        let sequential = p
            .sequential
            .iter()
            .map(|g| format!("sequential {} {:?} {}", g.label, g.tasks, g.reason));
        let parallel = p
            .parallel
            .iter()
            .map(|g| format!("parallel {} {:?} {}", g.label, g.phases, g.reason));
        sequential.chain(parallel).collect()
    };
    if notes(a) != notes(b) {
        out.push(format!("plan {name}: execution notes changed"));
    }
    task_changes(name, a, b, out);
}

/// Tasks added and changed (in the new file's order), removed (in the old one's), and whether
/// the tasks both have are in another order; counts instead past [`TASK_LINES`].
fn task_changes(name: &str, old: &Plan, new: &Plan, out: &mut Vec<String>) {
    // By id, once: a plan of thousands of tasks is compared in one pass.
    let (old_ids, new_ids) = (tasks_by_id(old), tasks_by_id(new));
    let (mut added, mut changed, mut removed) = (Vec::new(), Vec::new(), Vec::new());
    let mut lines = Vec::new();
    for t in &new.tasks {
        match old_ids.get(t.id.as_str()) {
            None => {
                added.push(&t.id);
                lines.push(format!("plan {name}: task {} added", t.id));
            }
            Some(was) if !same_task(was, t) => {
                changed.push(&t.id);
                lines.push(format!("plan {name}: task {} changed", t.id));
            }
            Some(_) => {}
        }
    }
    for t in &old.tasks {
        if !new_ids.contains_key(t.id.as_str()) {
            removed.push(&t.id);
            lines.push(format!("plan {name}: task {} removed", t.id));
        }
    }
    if lines.len() > TASK_LINES {
        let counts: Vec<String> = [
            (added.len(), "added"),
            (changed.len(), "changed"),
            (removed.len(), "removed"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        out.push(format!("plan {name}: tasks {}", counts.join(", ")));
    } else {
        out.extend(lines);
    }
    if common_ids(old, &new_ids) != common_ids(new, &old_ids) {
        out.push(format!("plan {name}: tasks reordered"));
    }
}

/// A plan's tasks by id.
fn tasks_by_id(p: &Plan) -> HashMap<&str, &Task> {
    p.tasks.iter().map(|t| (t.id.as_str(), t)).collect()
}

/// The ids of `from`'s tasks that `other` has too, in `from`'s order.
fn common_ids<'a>(from: &'a Plan, other: &HashMap<&str, &Task>) -> Vec<&'a str> {
    from.tasks
        .iter()
        .filter(|t| other.contains_key(t.id.as_str()))
        .map(|t| t.id.as_str())
        .collect()
}

/// Whether two tasks say the same thing, wherever in the file they are: every field but the
/// line (named one by one, so that a new field is compared or ignored on purpose).
fn same_task(a: &Task, b: &Task) -> bool {
    let Task {
        id,
        kind,
        phase,
        description,
        body,
        done,
        depends,
        priority,
        estimate_s,
        files,
        line: _,
        blocking,
        speckit,
    } = a;
    (id, kind, phase, description, body, done)
        == (&b.id, &b.kind, &b.phase, &b.description, &b.body, &b.done)
        && (depends, priority, estimate_s, files, blocking)
            == (
                &b.depends,
                &b.priority,
                &b.estimate_s,
                &b.files,
                &b.blocking,
            )
        && speckit == &b.speckit
}
