//! `orch merge`: finished plans merged into the target, upstream plans first, each merge built in
//! memory and verified before the target moves; `--dry-run` predicts it all and changes nothing.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fs::OpenOptions;
use std::path::Path;

use anyhow::anyhow;
use chrono::Utc;
use serde_json::{Value, json};

use super::output::{print_json, println_safe};
use crate::error::{CliError, CliResult, exit};
use crate::git;
use crate::manifest::{Manifest, MergeStrategy};
use crate::merge::{
    self, MergeError, OrderItem, Predicted, Simulator, StepOutcome, StepRequest, Verify,
};
use crate::process::resolve_program;
use crate::status::{self, StatusDoc};
use crate::workspace::{self, LoadedPlan, Selection, Workspace};

pub struct MergeArgs {
    /// Plan names; empty = every finished plan that is not merged yet.
    pub plans: Vec<String>,
    pub dry_run: bool,
    pub json: bool,
    /// Overrides `defaults.merge_strategy`.
    pub strategy: Option<MergeStrategy>,
    pub stop_on_failure: bool,
}

/// The result of one step, as printed (`result` in `--json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Merged,
    Conflict,
    VerifyFailed,
    Skipped,
    AlreadyMerged,
    WouldMerge,
}

impl Outcome {
    fn as_str(self) -> &'static str {
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
    fn is_failure(self) -> bool {
        matches!(self, Self::Conflict | Self::VerifyFailed | Self::Skipped)
    }
}

/// One step as reported.
#[derive(Clone, Debug)]
struct Step {
    plan: String,
    branch: String,
    result: Outcome,
    /// The target's tip after the step (merged), or the branch tip for `ff-only`.
    commit: Option<String>,
    /// Conflicting paths.
    files: Vec<String>,
    reason: Option<String>,
    archive_tag: Option<String>,
    /// The paths a predicted clean merge changes (dry run only).
    changes: usize,
}

impl Step {
    fn new(p: &PlanInfo, result: Outcome) -> Self {
        Self {
            plan: p.name.clone(),
            branch: p.branch.clone(),
            result,
            commit: None,
            files: Vec::new(),
            reason: None,
            archive_tag: None,
            changes: 0,
        }
    }

    fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    fn json(&self) -> Value {
        json!({
            "plan": self.plan,
            "branch": self.branch,
            "result": self.result.as_str(),
            "commit": self.commit,
            "files": self.files,
            "reason": self.reason,
            "archive_tag": self.archive_tag,
        })
    }

    fn line(&self, dry_run: bool) -> String {
        let files = crate::diagnostic::path_list(&self.files, 8);
        let detail = match self.result {
            Outcome::Merged => format!(
                "merged as {}{}",
                short(self.commit.as_deref().unwrap_or_default()),
                self.archive_tag
                    .as_ref()
                    .map(|t| format!(" (tag {t})"))
                    .unwrap_or_default()
            ),
            Outcome::WouldMerge => format!(
                "would merge cleanly ({} path{} changed)",
                self.changes,
                if self.changes == 1 { "" } else { "s" }
            ),
            Outcome::Conflict if dry_run => format!("would conflict in {files}"),
            Outcome::Conflict => format!("conflict in {files}; not merged"),
            Outcome::VerifyFailed => "verification failed; not merged".to_string(),
            Outcome::Skipped => "skipped".to_string(),
            Outcome::AlreadyMerged => "already merged".to_string(),
        };
        match &self.reason {
            Some(r) => format!("{}: {detail}: {r}", self.plan),
            None => format!("{}: {detail}", self.plan),
        }
    }
}

fn short(oid: &str) -> &str {
    &oid[..oid.len().min(10)]
}

/// What `orch merge` knows about one plan of the manifest before it starts.
#[derive(Clone, Debug)]
struct PlanInfo {
    /// Index into the workspace's plans.
    index: usize,
    name: String,
    branch: String,
    priority: i64,
    /// The plans named in its `depends_on`, each once.
    upstreams: Vec<String>,
    /// Its tasks and verification steps that are not completed or skipped (`1.2 (pending)`).
    unfinished: Vec<String>,
    /// The branch tip, `None` when the branch does not exist.
    tip: Option<String>,
    /// The commit the branch was made from (`orchWorktree.base`).
    base: Option<String>,
    /// In the target already (known without a trial merge), with how that is known.
    landed: Option<String>,
}

pub fn run(sel: &Selection, args: MergeArgs) -> CliResult<u8> {
    let ws = workspace::load(sel)?;
    ws.require_valid()?;
    let Some(manifest) = ws.manifest.clone() else {
        return Err(CliError::invalid(anyhow!(
            "`orch merge` needs a plans.toml: it merges the plans the manifest lists"
        ))
        .with_hint("write one with `orch init`, or pass `--manifest PATH`"));
    };
    let mut names = args.plans.clone();
    if let Some(p) = &sel.plan {
        match manifest.plan(p) {
            Some(entry) => names.push(entry.name.clone()),
            None => {
                return Err(CliError::invalid(anyhow!(
                    "`--plan {p}`: `orch merge` takes plan names from the manifest"
                )));
            }
        }
    }
    let repo_root = workspace::repo_root(&manifest)?;
    let target = manifest.defaults.target.clone();
    let strategy = args.strategy.unwrap_or(manifest.defaults.merge_strategy);
    if git::branch_tip(&repo_root, &target)
        .map_err(git_error)?
        .is_none()
    {
        return Err(merge_error(MergeError::TargetMissing { target }));
    }

    let infos = plan_infos(&ws, &manifest, &repo_root)?;
    let by_name: HashMap<&str, &PlanInfo> = infos.iter().map(|p| (p.name.as_str(), p)).collect();
    let (run_set, unfinished) = select(&infos, &by_name, &names, &repo_root, &target)?;
    let items: Vec<OrderItem> = run_set
        .iter()
        .map(|&i| OrderItem {
            name: infos[i].name.clone(),
            priority: infos[i].priority,
            depends_on: infos[i].upstreams.clone(),
        })
        .collect();
    let order: Vec<usize> = merge::merge_order(&items)
        .into_iter()
        .map(|k| run_set[k])
        .collect();
    let ctx = RunCtx {
        infos: &infos,
        by_name: &by_name,
        in_run: order.iter().map(|&i| infos[i].name.as_str()).collect(),
        repo_root: &repo_root,
        target: &target,
        strategy,
        stop_on_failure: args.stop_on_failure,
    };
    let header = Header {
        target: &target,
        strategy,
        verify: manifest.defaults.verify.as_deref(),
        dry_run: args.dry_run,
        unfinished: &unfinished,
    };

    if args.dry_run {
        let (steps, _) = ctx.simulate(&order).map_err(merge_error)?;
        if args.json {
            print_json(&header.json(&steps, None));
        } else {
            header.print_text(&order, &infos);
            for s in &steps {
                println_safe(&format!("  {}", s.line(true)));
            }
            println_safe("dry run: nothing was changed");
        }
        return Ok(exit_code(&steps, false));
    }

    // Before anything moves.
    let state_dir = manifest.root.join(&manifest.defaults.state_dir);
    let _lock = MergeLock::acquire(&state_dir)?;
    let verify = verify_spec(&manifest, &repo_root)?;
    preflight(&ctx, &order)?;
    git::ensure_excluded(&repo_root, &orch_dirs(&manifest, &repo_root)).map_err(git_error)?;
    merge::interrupt::install();

    if !args.json {
        header.print_text(&order, &infos);
    }
    let before = git::branch_tip(&repo_root, &target)
        .map_err(git_error)?
        .unwrap_or_default();
    let mut steps = Vec::new();
    let result = ctx.run(&order, &ws, verify.as_ref(), &mut steps, |s| {
        if !args.json {
            println_safe(&format!("  {}", s.line(false)));
        }
    });
    let after = git::branch_tip(&repo_root, &target)
        .map_err(git_error)?
        .unwrap_or_default();
    let interrupted = matches!(result, Ok(true));
    if args.json {
        let mut v = header.json(&steps, Some((&before, &after)));
        if let Err(e) = &result {
            v["error"] = json!(e.to_string());
        }
        print_json(&v);
    } else if before != after {
        println_safe(&format!(
            "`{target}`: {} -> {}",
            short(&before),
            short(&after)
        ));
    }
    match result {
        Err(e) => Err(merge_error(e)),
        Ok(_) => Ok(exit_code(&steps, interrupted)),
    }
}

/// The verify command, checked: its program must exist (exit 2 otherwise).
fn verify_spec(manifest: &Manifest, repo_root: &Path) -> CliResult<Option<Verify>> {
    let Some(argv) = &manifest.defaults.verify else {
        return Ok(None);
    };
    let program = argv.first().map(String::as_str).unwrap_or_default();
    if resolve_program(program, repo_root).is_none() {
        return Err(CliError::invalid(anyhow!(
            "the verify command's program `{program}` was not found{}",
            if program.contains('/') {
                " (relative to the repository root)"
            } else {
                " on PATH"
            }
        ))
        .with_hint(format!(
            "install it, or fix `verify` in `[defaults]` of {}",
            manifest.path.display()
        )));
    }
    Ok(Some(Verify {
        argv: argv.clone(),
        timeout: manifest.defaults.timeout,
        grace: manifest.defaults.grace,
        staging_dir: manifest.root.join(&manifest.defaults.worktree_root),
        log_dir: manifest.root.join(&manifest.defaults.log_dir),
    }))
}

/// Refuses (exit 4) before anything moves when the work tree that has the target checked out
/// has changes to tracked files, or untracked files where a step of the run (as predicted in
/// memory) would write.
fn preflight(ctx: &RunCtx, order: &[usize]) -> CliResult<()> {
    let Some(work) = merge::checked_out_at(ctx.repo_root, ctx.target).map_err(merge_error)? else {
        return Ok(());
    };
    let state = merge::work_state(&work).map_err(merge_error)?;
    if !state.changed.is_empty() {
        return Err(merge_error(MergeError::Dirty {
            path: work,
            target: ctx.target.to_string(),
            files: state.changed,
        }));
    }
    if state.untracked.is_empty() {
        return Ok(());
    }
    let (_, paths) = ctx.simulate(order).map_err(merge_error)?;
    let in_the_way = merge::untracked_in_the_way(&state.untracked, &paths);
    if !in_the_way.is_empty() {
        return Err(merge_error(MergeError::UntrackedInTheWay {
            path: work,
            target: ctx.target.to_string(),
            files: in_the_way,
        }));
    }
    Ok(())
}

/// orch's directories inside the repository, as `info/exclude` lines (`/.orch/worktrees/`).
fn orch_dirs(manifest: &Manifest, repo_root: &Path) -> Vec<String> {
    [
        &manifest.defaults.worktree_root,
        &manifest.defaults.state_dir,
        &manifest.defaults.log_dir,
    ]
    .iter()
    .filter_map(|d| {
        manifest
            .root
            .join(d)
            .strip_prefix(repo_root)
            .ok()
            .map(|r| format!("/{}/", r.display()))
    })
    .collect()
}

fn exit_code(steps: &[Step], interrupted: bool) -> u8 {
    if interrupted {
        exit::INTERRUPTED
    } else if steps.iter().any(|s| s.result.is_failure()) {
        exit::INCOMPLETE
    } else {
        exit::OK
    }
}

/// Reads what is known about every plan of the manifest: status, branch, whether it landed.
fn plan_infos(ws: &Workspace, manifest: &Manifest, repo_root: &Path) -> CliResult<Vec<PlanInfo>> {
    let target = &manifest.defaults.target;
    let docs = workspace::read_statuses(ws, None)?;
    let mut out = Vec::new();
    for (index, (lp, doc)) in ws.plans.iter().zip(&docs).enumerate() {
        let entry = workspace::entry_of(manifest, &lp.name)?;
        let mut upstreams = Vec::new();
        for d in &entry.depends_on {
            if !upstreams.contains(&d.plan) {
                upstreams.push(d.plan.clone());
            }
        }
        let unfinished: Vec<String> = doc
            .entries()
            .filter(|e| !e.status.is_finished())
            .map(|e| format!("{} ({})", e.id, e.status))
            .collect();
        let tip = git::branch_tip(repo_root, &entry.branch).map_err(git_error)?;
        let base = doc
            .extra
            .get("orchWorktree")
            .filter(|w| w.get("branch").and_then(Value::as_str) == Some(entry.branch.as_str()))
            .and_then(|w| w.get("base"))
            .and_then(Value::as_str)
            .map(str::to_string);
        // An unfinished plan is not merged, whatever its branch looks like (a new branch is
        // its target's tip).
        let landed = if unfinished.is_empty() {
            landed(repo_root, target, tip.as_deref(), doc)?
        } else {
            None
        };
        out.push(PlanInfo {
            index,
            name: lp.name.clone(),
            branch: entry.branch.clone(),
            priority: entry.priority,
            upstreams,
            unfinished,
            tip,
            base,
            landed,
        });
    }
    Ok(out)
}

/// Whether a finished plan is in the target already, by the cheap checks: its branch tip is in
/// the target's history; its status file records it merged at this very tip; or its branch is gone
/// and it was recorded merged, or made no commit, or its commits are in the target.
fn landed(
    repo_root: &Path,
    target: &str,
    tip: Option<&str>,
    doc: &StatusDoc,
) -> CliResult<Option<String>> {
    let recorded = doc.orch_merge.as_ref();
    let recorded_merged = recorded.is_some_and(status::OrchMerge::is_merged);
    let recorded_tip = recorded.and_then(|r| r.branch_tip.as_deref());
    let in_target = |oid: &str| merge::target_contains(repo_root, target, oid).map_err(merge_error);
    match tip {
        Some(tip) => {
            if recorded_merged && recorded_tip == Some(tip) {
                return Ok(Some("recorded in its status file".into()));
            }
            if in_target(tip)? {
                return Ok(Some(format!("its tip is in `{target}`")));
            }
            Ok(None)
        }
        None => {
            if recorded_merged {
                return Ok(Some(
                    "recorded in its status file; the branch is gone".into(),
                ));
            }
            let commits: Vec<String> = doc.entries().filter_map(|e| e.commit.clone()).collect();
            match git::latest_of(repo_root, &commits).map_err(git_error)? {
                None => Ok(Some(
                    "nothing to merge: no branch and no task commit".into(),
                )),
                Some(latest) if in_target(&latest)? => {
                    Ok(Some(format!("its task commits are in `{target}`")))
                }
                Some(_) => Ok(None),
            }
        }
    }
}

/// A plan left out of a run without names because it is not finished: its name and what is
/// left (`1.2 (pending)`).
type Unfinished = (String, Vec<String>);

/// The plans of the run (indices into `infos`) and, when no names were given, the plans left
/// out because they are not finished (`(name, unfinished tasks)`). Refusals (exit 4) name every
/// plan refused and why; unknown names are exit 2.
fn select(
    infos: &[PlanInfo],
    by_name: &HashMap<&str, &PlanInfo>,
    names: &[String],
    repo_root: &Path,
    target: &str,
) -> CliResult<(Vec<usize>, Vec<Unfinished>)> {
    if names.is_empty() {
        let mut run = Vec::new();
        let mut unfinished = Vec::new();
        for p in infos {
            if p.unfinished.is_empty() {
                run.push(p.index);
            } else if p.landed.is_none() {
                unfinished.push((p.name.clone(), p.unfinished.clone()));
            }
        }
        return Ok((run, unfinished));
    }
    let mut run = Vec::new();
    for name in names {
        match by_name.get(name.as_str()) {
            Some(p) if !run.contains(&p.index) => run.push(p.index),
            Some(_) => {}
            None => {
                let known: Vec<String> = infos.iter().map(|p| format!("`{}`", p.name)).collect();
                return Err(
                    CliError::invalid(anyhow!("no plan named `{name}` in the manifest"))
                        .with_hint(format!("the manifest's plans are {}", known.join(", "))),
                );
            }
        }
    }
    let requested: HashSet<&str> = run.iter().map(|&i| infos[i].name.as_str()).collect();
    let mut refusals = Vec::new();
    let mut hints = BTreeSet::new();
    for &i in &run {
        let p = &infos[i];
        if p.landed.is_some() {
            continue;
        }
        if !p.unfinished.is_empty() {
            refusals.push(format!(
                "plan `{}` is not finished: {}",
                p.name,
                p.unfinished.join(", ")
            ));
            hints.insert(format!(
                "finish it first (`orch up {}`), or mark what is left with `orch task skip`",
                p.name
            ));
            continue;
        }
        for u in &p.upstreams {
            if requested.contains(u.as_str()) {
                continue;
            }
            let Some(up) = by_name.get(u.as_str()) else {
                continue;
            };
            if upstream_landed(up, repo_root, target).map_err(merge_error)? {
                continue;
            }
            refusals.push(format!(
                "plan `{}` depends on plan `{u}`, which is not merged into `{target}` yet",
                p.name
            ));
            hints.insert(format!(
                "merge `{u}` first, or both in one run: `orch merge {u} {}`",
                p.name
            ));
        }
    }
    if !refusals.is_empty() {
        let n = refusals.len();
        let message = if n == 1 {
            format!("{}; nothing was merged", refusals[0])
        } else {
            format!(
                "{n} plans cannot be merged; nothing was merged:\n  {}",
                refusals.join("\n  ")
            )
        };
        return Err(CliError::new(exit::REFUSED, anyhow!(message))
            .with_hint(hints.into_iter().collect::<Vec<_>>().join("; ")));
    }
    Ok((run, Vec::new()))
}

/// Whether an upstream plan outside the run is finished and in the target: the cheap checks,
/// then a trial merge (a plan landed with `squash` before).
fn upstream_landed(up: &PlanInfo, repo_root: &Path, target: &str) -> Result<bool, MergeError> {
    if up.landed.is_some() {
        return Ok(true);
    }
    if up.tip.is_none() || !up.unfinished.is_empty() {
        return Ok(false);
    }
    merge::is_merged(repo_root, target, &up.branch)
}

/// What a run needs to decide each step.
struct RunCtx<'a> {
    infos: &'a [PlanInfo],
    by_name: &'a HashMap<&'a str, &'a PlanInfo>,
    in_run: HashSet<&'a str>,
    repo_root: &'a Path,
    target: &'a str,
    strategy: MergeStrategy,
    stop_on_failure: bool,
}

/// What happens to a plan before any git work.
enum Gate {
    Step(Step),
    Go,
}

impl RunCtx<'_> {
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
            let Some(up) = self.by_name.get(u.as_str()) else {
                continue;
            };
            if !upstream_landed(up, self.repo_root, self.target)? {
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
                p.branch, self.target
            ))));
        }
        Ok(Gate::Go)
    }

    /// The dry run: every step predicted on successive virtual targets, in memory. Also returns
    /// every path a predicted clean step changes.
    fn simulate(&self, order: &[usize]) -> Result<(Vec<Step>, Vec<String>), MergeError> {
        let mut sim = Simulator::new(self.repo_root, self.target)?;
        let mut steps = Vec::new();
        let mut failed = HashSet::new();
        let mut stopped: Option<String> = None;
        let mut paths = BTreeSet::new();
        for &i in order {
            let p = &self.infos[i];
            let step = match self.gate(p, &failed, stopped.as_deref(), true)? {
                Gate::Step(s) => s,
                Gate::Go => match sim.step(&p.name, &p.branch, self.strategy)? {
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
                failed.insert(p.name.clone());
                if self.stop_on_failure && stopped.is_none() {
                    stopped = Some(p.name.clone());
                }
            }
            steps.push(step);
        }
        Ok((steps, paths.into_iter().collect()))
    }

    fn ff_reason(&self, p: &PlanInfo) -> String {
        format!(
            "ff-only: `{}` has commits that are not on `{}`; use --strategy merge or squash",
            self.target, p.branch
        )
    }

    /// The real run. Each finished step is pushed to `steps` and shown to `report`. Returns
    /// whether it was interrupted; an error stops it (the steps before stay done).
    fn run(
        &self,
        order: &[usize],
        ws: &Workspace,
        verify: Option<&Verify>,
        steps: &mut Vec<Step>,
        mut report: impl FnMut(&Step),
    ) -> Result<bool, MergeError> {
        let mut failed = HashSet::new();
        let mut stopped: Option<String> = None;
        let mut interrupted = false;
        for &i in order {
            let p = &self.infos[i];
            let step = if interrupted {
                Step::new(p, Outcome::Skipped).reason("interrupted before its turn")
            } else {
                match self.gate(p, &failed, stopped.as_deref(), false)? {
                    Gate::Step(s) => s,
                    Gate::Go => {
                        let lp = &ws.plans[p.index];
                        let (step, was_interrupted) = self.real_step(p, lp, verify)?;
                        interrupted = was_interrupted;
                        step
                    }
                }
            };
            if step.result.is_failure() {
                failed.insert(p.name.clone());
                if self.stop_on_failure && stopped.is_none() {
                    stopped = Some(p.name.clone());
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
        p: &PlanInfo,
        lp: &LoadedPlan,
        verify: Option<&Verify>,
    ) -> Result<(Step, bool), MergeError> {
        let req = StepRequest {
            repo_root: self.repo_root,
            target: self.target,
            plan: &p.name,
            branch: &p.branch,
            base: p.base.as_deref(),
            strategy: self.strategy,
            verify,
        };
        let tip_now = || {
            git::branch_tip(self.repo_root, self.target)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        let at = status::timestamp(Utc::now());
        let record = |state: &str, commit: &str, files: &[String]| status::OrchMerge {
            state: state.to_string(),
            target: self.target.to_string(),
            strategy: self.strategy.as_str().to_string(),
            commit: commit.to_string(),
            files: files.to_vec(),
            branch: p.branch.clone(),
            branch_tip: p.tip.clone(),
            at: at.clone(),
            ..status::OrchMerge::default()
        };
        let (step, interrupted) = match merge::merge_plan(&req)? {
            StepOutcome::Merged(m) => {
                let mut record = record("merged", &m.commit, &[]);
                record.branch_tip = Some(m.branch_tip.clone());
                record.archive_tag = Some(m.archive_tag.clone());
                record.previous = Some(m.previous.clone());
                if m.rebuilt > 0 {
                    record.rebuilt = Some(m.rebuilt);
                }
                self.record(lp, record);
                let mut s = Step::new(p, Outcome::Merged);
                s.commit = Some(m.commit);
                s.archive_tag = Some(m.archive_tag);
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
                self.record(lp, record("conflict", &tip_now(), &files));
                let mut s = Step::new(p, Outcome::Conflict);
                s.files = files;
                s.reason = Some(format!(
                    "resolve it on `{}` (merge `{}` into it and fix the files), then run `orch merge` again",
                    p.branch, self.target
                ));
                (s, false)
            }
            StepOutcome::VerifyFailed { reason } => {
                let mut record = record("verify_failed", &tip_now(), &[]);
                record.reason = Some(reason.clone());
                if let Some(v) = verify {
                    record.log = Some(v.log_path(&p.name).to_string_lossy().into_owned());
                }
                self.record(lp, record);
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
        };
        Ok((step, interrupted))
    }

    /// Writes `orchMerge` into the plan's status file; a failure is a warning (git holds the
    /// truth: the merge is on the target either way).
    fn record(&self, lp: &LoadedPlan, value: status::OrchMerge) {
        let written = status::update(
            &lp.status_path,
            &lp.plan,
            &lp.rel_path,
            &lp.name,
            |doc, _| {
                doc.orch_merge = Some(value);
                Ok(())
            },
        );
        if let Err(e) = written {
            eprintln!(
                "warning: cannot record the merge of `{}` in `{}`: {e}",
                lp.name,
                lp.status_path.display()
            );
        }
    }
}

/// The run's settings, printed before the steps (text) or around them (JSON).
struct Header<'a> {
    target: &'a str,
    strategy: MergeStrategy,
    verify: Option<&'a [String]>,
    dry_run: bool,
    unfinished: &'a [Unfinished],
}

impl Header<'_> {
    fn print_text(&self, order: &[usize], infos: &[PlanInfo]) {
        let names: Vec<&str> = order.iter().map(|&i| infos[i].name.as_str()).collect();
        let verify = match self.verify {
            Some(argv) if self.dry_run => {
                format!("; verify `{}` not run", merge::verify::shown(argv))
            }
            Some(argv) => format!("; verify `{}`", merge::verify::shown(argv)),
            None => String::new(),
        };
        if names.is_empty() {
            println_safe(&format!(
                "nothing to merge into `{}`{}",
                self.target,
                if self.unfinished.is_empty() {
                    ""
                } else {
                    " (no plan is finished)"
                }
            ));
        } else {
            println_safe(&format!(
                "{} into `{}` ({}{verify}): {}",
                if self.dry_run {
                    "dry run: merging"
                } else {
                    "merging"
                },
                self.target,
                self.strategy,
                names.join(" -> ")
            ));
        }
        for (name, tasks) in self.unfinished {
            println_safe(&format!(
                "  {name}: not finished, left out: {}",
                tasks.join(", ")
            ));
        }
    }

    fn json(&self, steps: &[Step], tips: Option<(&str, &str)>) -> Value {
        let mut v = json!({
            "target": self.target,
            "strategy": self.strategy.as_str(),
            "dry_run": self.dry_run,
            "verify": self.verify,
            "steps": steps.iter().map(Step::json).collect::<Vec<_>>(),
            "unfinished": self.unfinished.iter().map(|(plan, tasks)| json!({"plan": plan, "tasks": tasks})).collect::<Vec<_>>(),
        });
        if let Some((before, after)) = tips {
            v["target_before"] = json!(before);
            v["target_after"] = json!(after);
        }
        v
    }
}

/// One `orch merge` per repository at a time: an exclusive lock on `<state_dir>/merge.lock`.
struct MergeLock {
    _file: std::fs::File,
}

impl MergeLock {
    fn acquire(state_dir: &Path) -> CliResult<Self> {
        let path = state_dir.join("merge.lock");
        let open = || -> std::io::Result<std::fs::File> {
            std::fs::create_dir_all(state_dir)?;
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
        };
        let file = open().map_err(|e| anyhow!("cannot open `{}`: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(CliError::new(
                exit::REFUSED,
                anyhow!("another `orch merge` is running in this repository"),
            )
            .with_hint("wait for it to finish")),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(anyhow!("cannot lock `{}`: {e}", path.display()).into())
            }
        }
    }
}

fn git_error(e: git::GitError) -> CliError {
    CliError::coded(e)
}

fn merge_error(e: MergeError) -> CliError {
    CliError::coded(e)
}
