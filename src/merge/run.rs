//! One `orch merge` run: the plans in merge order, each gated (landed, upstream not merged, no
//! branch), then predicted in memory (`--dry-run`) or merged for real with its outcome recorded
//! in the plan's status file. Nothing here prints: the caller reports each step.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

use chrono::Utc;

use super::checks::{MergeLock, orch_dirs, verify_spec};
use super::plan_info::{PlanInfo, Unfinished, plan_infos, select, upstream_landed};
use super::{MergeError, Predicted, Simulator, StepOutcome, StepRequest, Verify};
use crate::error::{CliError, CliResult};
use crate::git;
use crate::manifest::{Manifest, MergeStrategy};
use crate::status;
use crate::workspace::{self, LoadedPlan, Workspace};

/// The result of one step, as printed (`result` in `--json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Merged,
    Conflict,
    VerifyFailed,
    Skipped,
    AlreadyMerged,
    WouldMerge,
}

impl Outcome {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Merged => "merged",
            Self::Conflict => "conflict",
            Self::VerifyFailed => "verify_failed",
            Self::Skipped => "skipped",
            Self::AlreadyMerged => "already_merged",
            Self::WouldMerge => "would_merge",
        }
    }

    /// The plan was requested but does not land (the run exits 5).
    pub(crate) fn is_failure(self) -> bool {
        matches!(self, Self::Conflict | Self::VerifyFailed | Self::Skipped)
    }
}

/// One step as reported.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    pub(crate) plan: String,
    pub(crate) branch: String,
    pub(crate) result: Outcome,
    /// The target's tip after the step (merged), or the branch tip for `ff-only`.
    pub(crate) commit: Option<String>,
    /// Conflicting paths.
    pub(crate) files: Vec<String>,
    pub(crate) reason: Option<String>,
    pub(crate) archive_tag: Option<String>,
    /// The paths a predicted clean merge changes (dry run only).
    pub(crate) changes: usize,
}

impl Step {
    pub(crate) fn new(p: &PlanInfo, result: Outcome) -> Self {
        Self {
            plan: p.name().to_owned(),
            branch: p.branch().to_owned(),
            result,
            commit: None,
            files: Vec::new(),
            reason: None,
            archive_tag: None,
            changes: 0,
        }
    }

    pub(crate) fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
}

pub(crate) fn short(oid: &str) -> &str {
    &oid[..oid.len().min(10)]
}

/// One run of `orch merge`: what it knows about every plan of the manifest, and the plans it
/// takes, in merge order.
pub(crate) struct MergeRun {
    pub(crate) infos: Vec<PlanInfo>,
    /// Index into `infos` by plan name.
    by_name: HashMap<String, usize>,
    /// The names of the plans in the run.
    in_run: HashSet<String>,
    /// The plans of the run (indices into `infos`), upstream plans first.
    pub(crate) order: Vec<usize>,
    /// With no names given: the plans left out because they are not finished.
    pub(crate) unfinished: Vec<Unfinished>,
    pub(crate) repo_root: PathBuf,
    pub(crate) target: String,
    pub(crate) strategy: MergeStrategy,
    stop_on_failure: bool,
    /// The plans' resolver (`resolve`), when the caller gives one.
    pub(crate) resolver: Option<super::resolve::Resolver>,
    /// A person reviewed what the plans change of what a later run trusts
    /// (`--allow-protected`): such a change lands although no `allow_protected` allows it; a
    /// link there still does not.
    allow_protected: bool,
}

/// The run's verify command and its hold on the repository (one `orch merge` at a time), from
/// [`MergeRun::prepare`]; the lock is released when this is dropped.
pub(crate) struct Prepared {
    _lock: MergeLock,
    pub(crate) verify: Option<Verify>,
}

/// What happens to a plan before any git work.
enum Gate {
    Step(Step),
    Go,
}

impl MergeRun {
    /// Plans a run of the plans `names` (every finished plan when empty): the target must exist;
    /// unknown names are exit 2; a requested plan that is not finished or waits on an upstream
    /// plan that is not merged is refused (exit 4), before anything moves.
    pub(crate) fn plan(
        ws: &Workspace,
        manifest: &Manifest,
        names: &[String],
        strategy: Option<MergeStrategy>,
        stop_on_failure: bool,
    ) -> CliResult<Self> {
        let repo_root = workspace::repo_root(manifest)?;
        let target = manifest.defaults.target.clone();
        let strategy = strategy.unwrap_or(manifest.defaults.merge_strategy);
        if git::branch_tip(&repo_root, &target)
            .map_err(CliError::coded)?
            .is_none()
        {
            return Err(CliError::coded(MergeError::TargetMissing { target }));
        }
        let infos = plan_infos(ws, manifest, &repo_root)?;
        let (run_set, unfinished) = {
            let by_name: HashMap<&str, &PlanInfo> = infos.iter().map(|p| (p.name(), p)).collect();
            select(ws, &infos, &by_name, names, &repo_root, &target)?
        };
        let order = super::in_merge_order(&infos, &run_set);
        Ok(Self {
            by_name: infos
                .iter()
                .enumerate()
                .map(|(i, p)| (p.name().to_owned(), i))
                .collect(),
            in_run: order.iter().map(|&i| infos[i].name().to_owned()).collect(),
            infos,
            order,
            unfinished,
            repo_root,
            target,
            strategy,
            stop_on_failure,
            resolver: None,
            allow_protected: false,
        })
    }

    /// Hands a plan with `resolve` that cannot land to its resolver ([`super::resolve`]).
    pub(crate) fn with_resolver(mut self, resolver: super::resolve::Resolver) -> Self {
        self.resolver = Some(resolver);
        self
    }

    /// Lands what a plan changes of what a later run trusts although its `allow_protected`
    /// does not allow it (a person reviewed it: `orch merge --allow-protected`).
    pub(crate) fn allowing_protected(mut self, allow: bool) -> Self {
        self.allow_protected = allow;
        self
    }

    /// Before anything moves: takes the repository's merge lock (exit 4 when another `orch merge`
    /// holds it), checks the verify command (exit 2 when its program is missing), the target's
    /// work tree (exit 4 when the run would clobber it) and what the plans change of what a
    /// later run trusts (exit 4: [`super::trusted`]), and keeps orch's directories out of git.
    pub(crate) fn prepare(&self, ws: &Workspace, manifest: &Manifest) -> CliResult<Prepared> {
        let state_dir = manifest.root.join(&manifest.defaults.state_dir);
        let lock = MergeLock::acquire(&state_dir)?;
        let verify = verify_spec(manifest, &self.repo_root)?;
        self.preflight(ws, manifest)?;
        self.trusted_unchanged(ws, manifest)?;
        git::ensure_excluded(&self.repo_root, &orch_dirs(manifest, &self.repo_root))
            .map_err(CliError::coded)?;
        Ok(Prepared {
            _lock: lock,
            verify,
        })
    }

    /// Refuses (exit 4) a run where a plan's branch changes what a later run trusts that its
    /// `allow_protected` does not allow (unless [`MergeRun::allowing_protected`]), or puts a symbolic
    /// link there (always), naming each plan and file ([`super::trusted::refusal_of`]).
    pub(crate) fn trusted_unchanged(&self, ws: &Workspace, manifest: &Manifest) -> CliResult<()> {
        // Each plan of the run lands in the home repository alone.
        let landings: Vec<super::trusted::Landing<'_>> = self
            .order
            .iter()
            .map(|&i| super::trusted::Landing {
                entry: &self.infos[i].entry,
                repo: None,
                root: &self.repo_root,
                target: &self.target,
            })
            .collect();
        super::trusted::refusal_of(&landings, ws, manifest, self.allow_protected)
    }

    /// Refuses (exit 4) before anything moves when the work tree that has the target checked out
    /// has changes to tracked files, or untracked files where a step of the run (as predicted in
    /// memory) would write. A Spec Kit plan file whose only change is ticked boxes (what `orch
    /// up` writes at its end: [`ticked_plan_file`]) is no obstacle: no plan's branch may change
    /// a plan file (it is protected), so the landing never writes it, and it stays as it is.
    fn preflight(&self, ws: &Workspace, manifest: &Manifest) -> CliResult<()> {
        let Some(work) =
            super::checked_out_at(&self.repo_root, &self.target).map_err(CliError::coded)?
        else {
            return Ok(());
        };
        let state = super::work_state(&work).map_err(CliError::coded)?;
        let changed: Vec<String> = state
            .changed
            .into_iter()
            .filter(|p| !ticked_plan_file(ws, manifest, &work, p))
            .collect();
        if !changed.is_empty() {
            return Err(CliError::coded(MergeError::Dirty {
                path: work,
                target: self.target.to_string(),
                files: changed,
            }));
        }
        if state.untracked.is_empty() {
            return Ok(());
        }
        let (_, paths) = self.simulate().map_err(CliError::coded)?;
        let in_the_way = super::untracked_in_the_way(&state.untracked, &paths);
        if !in_the_way.is_empty() {
            return Err(CliError::coded(MergeError::UntrackedInTheWay {
                path: work,
                target: self.target.to_string(),
                files: in_the_way,
            }));
        }
        Ok(())
    }

    /// An upstream plan by name.
    fn plan_named(&self, name: &str) -> Option<&PlanInfo> {
        self.by_name.get(name).map(|&i| &self.infos[i])
    }

    /// The target's tip now (empty when it cannot be read).
    pub(crate) fn target_tip(&self) -> CliResult<String> {
        Ok(git::branch_tip(&self.repo_root, &self.target)
            .map_err(CliError::coded)?
            .unwrap_or_default())
    }

    /// Decides a plan's step without git work when the plan is landed, has no branch, waits on a
    /// plan that did not land (in this run or before), or the run stopped.
    fn gate(
        &self,
        p: &PlanInfo,
        failed: &HashSet<String>,
        stopped: Option<&str>,
        dry_run: bool,
    ) -> Result<Gate, MergeError> {
        if let Some(landed) = &p.landed {
            return Ok(Gate::Step(
                Step::new(p, Outcome::AlreadyMerged).reason(landed),
            ));
        }
        if let Some(first) = stopped {
            return Ok(Gate::Step(Step::new(p, Outcome::Skipped).reason(format!(
                "not attempted: --stop-on-failure stopped the run after `{first}`"
            ))));
        }
        for u in &p.upstreams {
            if failed.contains(u) {
                return Ok(Gate::Step(Step::new(p, Outcome::Skipped).reason(format!(
                    "depends on `{u}`, which {} merged",
                    if dry_run { "would not be" } else { "was not" }
                ))));
            }
            if self.in_run.contains(u.as_str()) {
                continue;
            }
            let Some(up) = self.plan_named(u) else {
                continue;
            };
            if !upstream_landed(up, &self.repo_root, &self.target)? {
                let why = if up.unfinished.is_empty() {
                    String::new()
                } else {
                    format!(" (it is not finished: {})", up.unfinished.join(", "))
                };
                return Ok(Gate::Step(Step::new(p, Outcome::Skipped).reason(format!(
                    "depends on `{u}`, which is not merged into `{}`{why}",
                    self.target
                ))));
            }
        }
        if p.tip.is_none() {
            return Ok(Gate::Step(Step::new(p, Outcome::Skipped).reason(format!(
                "its branch `{}` does not exist, and its task commits are not in `{}`",
                p.branch(),
                self.target
            ))));
        }
        Ok(Gate::Go)
    }

    /// The dry run: every step predicted on successive virtual targets, in memory. Also returns
    /// every path a predicted clean step changes.
    pub(crate) fn simulate(&self) -> Result<(Vec<Step>, Vec<String>), MergeError> {
        let mut sim = Simulator::new(&self.repo_root, &self.target)?;
        let mut steps = Vec::new();
        let mut failed = HashSet::new();
        let mut stopped: Option<String> = None;
        let mut paths = BTreeSet::new();
        for &i in &self.order {
            let p = &self.infos[i];
            let step = match self.gate(p, &failed, stopped.as_deref(), true)? {
                Gate::Step(s) => s,
                Gate::Go => match sim.step(p.name(), p.branch(), self.strategy)? {
                    Predicted::Clean { paths: changed } => {
                        let mut s = Step::new(p, Outcome::WouldMerge);
                        s.changes = changed.len();
                        paths.extend(changed);
                        s
                    }
                    Predicted::Conflict { paths } => {
                        let mut s = Step::new(p, Outcome::Conflict);
                        s.files = paths;
                        s
                    }
                    Predicted::AlreadyMerged => Step::new(p, Outcome::AlreadyMerged)
                        .reason("merging it would change nothing"),
                    Predicted::FfImpossible => {
                        Step::new(p, Outcome::Skipped).reason(self.ff_reason(p))
                    }
                },
            };
            if step.result.is_failure() {
                failed.insert(p.name().to_owned());
                if self.stop_on_failure && stopped.is_none() {
                    stopped = Some(p.name().to_owned());
                }
            }
            steps.push(step);
        }
        Ok((steps, paths.into_iter().collect()))
    }

    fn ff_reason(&self, p: &PlanInfo) -> String {
        format!(
            "ff-only: `{}` has commits that are not on `{}`; use --strategy merge or squash",
            self.target,
            p.branch()
        )
    }

    /// The real run. Each finished step is pushed to `steps` and shown to `report`; a status
    /// file that cannot be written is told to `warn`. Returns whether it was interrupted
    /// ([`super::interrupt`]); an error stops it (the steps before stay done).
    pub(crate) fn run(
        &self,
        ws: &Workspace,
        verify: Option<&Verify>,
        steps: &mut Vec<Step>,
        mut report: impl FnMut(&Step),
        warn: &mut dyn FnMut(String),
    ) -> Result<bool, MergeError> {
        let mut failed = HashSet::new();
        let mut stopped: Option<String> = None;
        let mut interrupted = false;
        if let Some(note) = verify.and_then(|v| v.sandbox.note.as_ref()) {
            warn(note.clone());
        }
        if let Some(note) = verify.and_then(|v| v.network.note("the verify command")) {
            warn(note);
        }
        for &i in &self.order {
            let p = &self.infos[i];
            // Interrupted before any step (while the branches were examined): none runs.
            interrupted |= crate::merge::interrupt::interrupted();
            let step = if interrupted {
                Step::new(p, Outcome::Skipped).reason("interrupted before its turn")
            } else {
                match self.gate(p, &failed, stopped.as_deref(), false)? {
                    Gate::Step(s) => s,
                    Gate::Go => {
                        let lp = &ws.plans[p.index];
                        let (step, was_interrupted) = self.real_step(ws, p, lp, verify, warn)?;
                        interrupted = was_interrupted;
                        step
                    }
                }
            };
            if step.result.is_failure() {
                failed.insert(p.name().to_owned());
                if self.stop_on_failure && stopped.is_none() {
                    stopped = Some(p.name().to_owned());
                }
            }
            report(&step);
            steps.push(step);
        }
        Ok(interrupted)
    }

    /// Merges one plan for real and records the outcome in its status file.
    fn real_step(
        &self,
        ws: &Workspace,
        p: &PlanInfo,
        lp: &LoadedPlan,
        verify: Option<&Verify>,
        warn: &mut dyn FnMut(String),
    ) -> Result<(Step, bool), MergeError> {
        let own = crate::manifest::own_dirs_of(ws.manifest.as_ref(), &self.repo_root);
        let req = StepRequest {
            repo_root: &self.repo_root,
            own: &own,
            target: &self.target,
            plan: p.name(),
            branch: p.branch(),
            base: p.base.as_deref(),
            strategy: self.strategy,
            verify,
            verified_tree: None,
        };
        let tip_now = || {
            git::branch_tip(&self.repo_root, &self.target)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        let at = status::timestamp(Utc::now());
        let record = |state: &str, commit: &str, files: &[String]| status::OrchMerge {
            state: state.to_string(),
            target: self.target.clone(),
            strategy: self.strategy.as_str().to_string(),
            commit: commit.to_string(),
            files: files.to_vec(),
            branch: p.branch().to_owned(),
            branch_tip: p.tip.clone(),
            at: at.clone(),
            ..status::OrchMerge::default()
        };
        let outcome = super::merge_plan(&req)?;
        let (outcome, resolved_by) = self.after_step(ws, p, &req, outcome)?;
        let record = |state: &str, commit: &str, files: &[String]| status::OrchMerge {
            resolved_by: resolved_by.clone(),
            ..record(state, commit, files)
        };
        let (step, interrupted) = match outcome {
            StepOutcome::Merged(m) => {
                let mut record = record("merged", &m.commit, &[]);
                record.branch_tip = Some(m.branch_tip.clone());
                record.archive_tag = Some(m.archive_tag.clone());
                record.previous = Some(m.previous.clone());
                if m.rebuilt > 0 {
                    record.rebuilt = Some(m.rebuilt);
                }
                self.record(lp, warn, record);
                let mut s = Step::new(p, Outcome::Merged);
                s.commit = Some(m.commit);
                s.archive_tag = Some(m.archive_tag);
                if let Some(agent) = &resolved_by {
                    s.reason = Some(format!("its conflict resolved by agent `{agent}`"));
                }
                if m.rebuilt > 0 {
                    s.reason = Some(format!(
                        "`{}` moved meanwhile; rebuilt on its new tip {} time{}",
                        self.target,
                        m.rebuilt,
                        if m.rebuilt == 1 { "" } else { "s" }
                    ));
                }
                (s, false)
            }
            StepOutcome::AlreadyMerged => (
                Step::new(p, Outcome::AlreadyMerged).reason("merging it would change nothing"),
                false,
            ),
            StepOutcome::Conflict { files } => {
                self.record(lp, warn, record("conflict", &tip_now(), &files));
                let mut s = Step::new(p, Outcome::Conflict);
                s.files = files;
                s.reason = Some(format!(
                    "resolve it on `{}` (merge `{}` into it and fix the files), then run `orch merge` again",
                    p.branch(), self.target
                ));
                (s, false)
            }
            StepOutcome::VerifyFailed { reason } => {
                let mut record = record("verify_failed", &tip_now(), &[]);
                record.reason = Some(reason.clone());
                if let Some(v) = verify {
                    record.log = Some(v.log_path(p.name()).to_string_lossy().into_owned());
                }
                self.record(lp, warn, record);
                (Step::new(p, Outcome::VerifyFailed).reason(reason), false)
            }
            StepOutcome::FfImpossible => (Step::new(p, Outcome::Skipped).reason(self.ff_reason(p)), false),
            StepOutcome::TargetKeptMoving { attempts } => (
                Step::new(p, Outcome::Skipped).reason(format!(
                    "`{}` moved under each of {attempts} attempts (someone else is updating it); their commits are kept; run `orch merge` again",
                    self.target
                )),
                false,
            ),
            StepOutcome::Interrupted => (
                Step::new(p, Outcome::Skipped)
                    .reason("interrupted; nothing of it was merged"),
                true,
            ),
            StepOutcome::Unresolved {
                files,
                verify: was_verify,
                reason,
            } => {
                let (state, result) = if was_verify {
                    ("verify_failed", Outcome::VerifyFailed)
                } else {
                    ("conflict", Outcome::Conflict)
                };
                let mut record = record(state, &tip_now(), &files);
                record.reason = Some(reason.clone());
                self.record(lp, warn, record);
                let mut s = Step::new(p, result).reason(reason);
                s.files = files;
                (s, crate::merge::interrupt::interrupted())
            }
        };
        Ok((step, interrupted))
    }

    /// Writes `orchMerge` into the plan's status file; a failure is a warning (git holds the
    /// truth: the merge is on the target either way).
    fn record(&self, lp: &LoadedPlan, warn: &mut dyn FnMut(String), value: status::OrchMerge) {
        let written = lp.update_status(|doc| {
            doc.orch_merge = Some(value);
            Ok(())
        });
        if let Err(e) = written {
            warn(format!(
                "cannot record the merge of `{}` in `{}`: {e}",
                lp.name,
                lp.status_path.display()
            ));
        }
    }
}

/// Whether `rel`, a changed file of the work tree `work`, is a Spec Kit plan file of the home
/// repository whose only change from `HEAD` is ticked boxes ([`crate::plan::only_speckit_ticks`]):
/// both read bounded, the work tree's file only as a regular file beneath `work` with no link on
/// the way.
fn ticked_plan_file(
    ws: &Workspace,
    manifest: &Manifest,
    work: &std::path::Path,
    rel: &str,
) -> bool {
    let is_plan = ws.plans.iter().any(|p| {
        p.repo.is_none()
            && p.plan.tasks.iter().any(|t| t.speckit.is_some())
            && manifest.root.join(&p.rel_path) == work.join(rel)
    });
    if !is_plan {
        return false;
    }
    let limit = crate::untrusted::read::PLAN;
    let Ok(now) = crate::untrusted::read::whole_beneath(work, std::path::Path::new(rel), limit)
    else {
        return false;
    };
    let head = git::head_file(work, rel, limit.bytes);
    match (head, String::from_utf8(now)) {
        (Some(head), Ok(now)) => {
            std::str::from_utf8(&head).is_ok_and(|head| crate::plan::only_speckit_ticks(head, &now))
        }
        _ => false,
    }
}
