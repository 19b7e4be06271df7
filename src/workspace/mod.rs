//! Finding and loading what a command works on: the manifest (if any), the selected plans,
//! their parsed files and the paths of their status files.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::anyhow;

use crate::agent_env;

pub(crate) mod repos;
mod states;
use crate::diagnostic::Diagnostic;
use crate::error::{CliError, CliResult, exit};
use crate::graph::{CrossDep, CrossTarget, Graph, Waiting};
use crate::manifest::{self, DepTarget, Manifest, PlanShape};
use crate::plan::{self, Plan};
use crate::prompt::Templates;
use crate::status::{self, StatusDoc};
pub(crate) use states::{
    node_state, node_states, read_states, read_statuses, states_fn, status_error,
};

/// The manifest entry of plan `name`, which the workspace loaded from that manifest (an error
/// rather than a panic should the two ever disagree).
pub(crate) fn entry_of<'m>(
    manifest: &'m Manifest,
    name: &str,
) -> CliResult<&'m manifest::PlanEntry> {
    manifest.plan(name).ok_or_else(|| {
        CliError::new(
            exit::FAILURE,
            anyhow!(
                "plan `{name}` is not in `{}` (changed while orch read it?)",
                manifest.path.display()
            ),
        )
    })
}

/// Where the plans come from, as the user said on the command line.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// `--manifest PATH`.
    pub manifest: Option<PathBuf>,
    /// `--plan NAME|PATH`.
    pub plan: Option<String>,
}

impl Selection {
    /// For the agents' side (`next`, `task`): fall back to `ORCH_MANIFEST`, `ORCH_PLAN` and
    /// `ORCH_STATUS_FILE`, which `orch up` gives every agent.
    pub(crate) fn with_agent_env(mut self) -> (Self, Option<PathBuf>) {
        let var = |name| std::env::var_os(name).filter(|s| !s.is_empty());
        self.manifest = self
            .manifest
            .or_else(|| var(agent_env::ORCH_MANIFEST).map(PathBuf::from));
        self.plan = self
            .plan
            .or_else(|| var(agent_env::ORCH_PLAN)?.into_string().ok());
        (self, var(agent_env::ORCH_STATUS_FILE).map(PathBuf::from))
    }
}

/// One plan ready to work with.
#[derive(Clone, Debug)]
pub(crate) struct LoadedPlan {
    /// Manifest name, or the file stem for a plan given by path.
    pub(crate) name: String,
    pub(crate) plan: Plan,
    /// Plan file path relative to the repository root (as written in status files).
    pub(crate) rel_path: String,
    pub(crate) status_path: PathBuf,
    pub(crate) priority: i64,
    /// The `[[repo]]` the plan changes; `None`: the home repository (or a plan given by path).
    pub(crate) repo: Option<String>,
}

impl LoadedPlan {
    /// The plan's status as recorded in its status file, reconciled with the plan, without
    /// writing anything (a missing file reads as a fresh document).
    pub(crate) fn read_status(&self) -> Result<StatusDoc, status::StatusError> {
        self.read_status_at(&self.status_path)
    }

    /// One locked update of the plan's status file ([`status::update`]): `f`'s result, the
    /// document written when `f` succeeds.
    pub(crate) fn update_status<T>(
        &self,
        f: impl FnOnce(&mut StatusDoc) -> Result<T, status::StatusError>,
    ) -> Result<T, status::StatusError> {
        status::update(
            &self.status_path,
            &self.plan,
            &self.rel_path,
            &self.name,
            |doc, _| f(doc),
        )
        .map(|(r, _)| r)
    }

    /// [`Self::read_status`] from another file (`ORCH_STATUS_FILE`, `--status-file`).
    fn read_status_at(&self, path: &Path) -> Result<StatusDoc, status::StatusError> {
        status::view(path, &self.plan, &self.rel_path, &self.name).map(|(doc, _)| doc)
    }
}

/// Keeps `value` until the process exits instead of freeing it piece by piece. The reading
/// commands (`next`, `status`) end right after printing, and freeing the workspace of a
/// 10,000-task plan one string at a time costs more than printing their answer.
pub(crate) fn keep<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

/// The manifest (if one was found) and the plans a command works on.
#[derive(Clone)]
pub struct Workspace {
    pub(crate) manifest: Option<Manifest>,
    /// Every plan of the manifest (cross-plan dependencies need them all), or the one plan file.
    pub(crate) plans: Vec<LoadedPlan>,
    /// Indices into `plans` of the plans the command is about (`--plan`), all by default.
    pub(crate) selected: Vec<usize>,
    /// Warnings and errors from every plan file (and the cross-plan checks).
    pub(crate) diagnostics: Vec<Diagnostic>,
    /// The combined graph, when there were no errors.
    pub(crate) graph: Option<Graph>,
}

impl Workspace {
    pub(crate) fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub(crate) fn plan_list(&self) -> Vec<Plan> {
        self.plans.iter().map(|p| p.plan.clone()).collect()
    }

    pub(crate) fn priorities(&self) -> Vec<i64> {
        self.plans.iter().map(|p| p.priority).collect()
    }

    /// The selected plan that has task `id` (exit 2 when none has it, or several do).
    pub(crate) fn plan_of_task(&self, id: &str) -> CliResult<usize> {
        let candidates: Vec<usize> = self
            .selected
            .iter()
            .copied()
            .filter(|&i| self.plans[i].plan.task(id).is_some())
            .collect();
        match candidates.as_slice() {
            [one] => Ok(*one),
            [] => {
                let where_ = if self.selected.len() == 1 {
                    format!("plan `{}`", self.plans[self.selected[0]].name)
                } else {
                    "any plan".to_string()
                };
                Err(
                    CliError::invalid(anyhow!("task `{id}` does not exist in {where_}"))
                        .with_hint("`orch status` lists the task ids"),
                )
            }
            many => {
                let names: Vec<String> = many
                    .iter()
                    .map(|&i| format!("`{}`", self.plans[i].name))
                    .collect();
                Err(CliError::invalid(anyhow!(
                    "task `{id}` exists in several plans ({}): name one with --plan",
                    names.join(", ")
                )))
            }
        }
    }

    /// The plans a command runs on: the named ones (each once, unknown names are exit 2), else
    /// the selection (`--plan` or all).
    pub(crate) fn select(&self, names: &[String]) -> CliResult<Vec<usize>> {
        if names.is_empty() {
            return Ok(self.selected.clone());
        }
        let mut out = Vec::new();
        for name in names {
            match self.plans.iter().position(|p| &p.name == name) {
                Some(i) if !out.contains(&i) => out.push(i),
                Some(_) => {}
                None => {
                    let known: Vec<String> =
                        self.plans.iter().map(|p| format!("`{}`", p.name)).collect();
                    return Err(CliError::invalid(anyhow!(
                        "no plan named `{name}` in the manifest"
                    ))
                    .with_hint(format!("the manifest's plans are {}", known.join(", "))));
                }
            }
        }
        Ok(out)
    }

    /// Task node `n` as shown: `plan:id` when several plans are selected, else the id.
    pub(crate) fn task_label(&self, g: &Graph, n: usize) -> String {
        self.node_label(g, n, self.selected.len() > 1)
    }

    /// Task node `n` as `plan:id` when `with_plan`, else its id (`node n` for a gate).
    pub(crate) fn node_label(&self, g: &Graph, n: usize, with_plan: bool) -> String {
        let Some((p, t)) = g.task_of(n) else {
            return format!("node {n}");
        };
        let id = &self.plans[p].plan.tasks[t].id;
        if with_plan {
            format!("{}:{id}", self.plans[p].name)
        } else {
            id.clone()
        }
    }

    /// Why a task waits, in words.
    pub(crate) fn describe_waiting(&self, g: &Graph, w: &Waiting) -> String {
        match w {
            Waiting::Task(n) => format!("waits for `{}`", self.task_label(g, *n)),
            Waiting::Failed(n) => format!("blocked by failed `{}`", self.task_label(g, *n)),
            Waiting::Phases { phase, left, .. } => {
                format!("phases before {phase} not finished ({left} task(s) left)")
            }
            Waiting::Upstream { plan, label } => {
                format!("waits for plan `{}` ({label})", self.plans[*plan].name)
            }
            Waiting::Sequential(n) => format!("[SEQUENTIAL] with `{}`", self.task_label(g, *n)),
        }
    }

    /// Fails with exit code 2 and every error when the input is invalid.
    pub(crate) fn require_valid(&self) -> CliResult<&Graph> {
        match &self.graph {
            Some(g) if !self.has_errors() => Ok(g),
            _ => Err(invalid_input(&self.diagnostics)),
        }
    }
}

/// An exit-2 error listing every error diagnostic.
pub(crate) fn invalid_input(diagnostics: &[Diagnostic]) -> CliError {
    let errors: Vec<String> = diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(ToString::to_string)
        .collect();
    let n = errors.len();
    CliError::invalid(anyhow!(
        "{n} error{} in the plans:\n{}",
        if n == 1 { "" } else { "s" },
        errors.join("\n")
    ))
    .with_hint("run `orch check` to see every problem with its location")
}

/// Loads the manifest and plans for `sel`. Plan-file and manifest errors are collected in
/// `diagnostics`; only problems that leave nothing to work with fail here.
pub fn load(sel: &Selection) -> CliResult<Workspace> {
    load_with(sel, true)
}

/// [`load`] for commands that print a few tasks of the plans (`next`, `status` as text): the
/// tasks' `files` are left empty (see [`plan::parse_with`]); [`plan::task_files`] gives them
/// for the tasks printed.
pub(crate) fn load_without_files(sel: &Selection) -> CliResult<Workspace> {
    load_with(sel, false)
}

/// [`load`] with the prompt templates (built in, or replaced in `defaults.templates`) checked
/// too: a template that does not render is an error at its file and line. What `orch check`
/// reports, and what `orch up` checks again when the plans change during a run
/// (`supervisor::replan`), so that the two cannot disagree.
pub(crate) fn load_checked(sel: &Selection) -> CliResult<Workspace> {
    let mut ws = load(sel)?;
    if let Some(m) = &ws.manifest {
        let checked = Templates::load(&m.root, &m.defaults.templates).and_then(|t| t.check());
        if let Err(e) = checked {
            let d = Diagnostic::error(e.path(), e.line().unwrap_or(1), e.reason())
                .with_hint("see `orch init` for the built-in templates and their variables");
            ws.diagnostics.push(d);
        }
    }
    Ok(ws)
}

fn load_with(sel: &Selection, files: bool) -> CliResult<Workspace> {
    let cwd =
        std::env::current_dir().map_err(|e| anyhow!("cannot read the current directory: {e}"))?;
    let manifest_path = match &sel.manifest {
        Some(p) => {
            if std::fs::symlink_metadata(p).is_err() {
                return Err(CliError::invalid(anyhow!(
                    "manifest `{}` does not exist",
                    p.display()
                )));
            }
            Some(p.clone())
        }
        None => manifest::find_manifest(&cwd),
    };
    let manifest = manifest_path.as_deref().map(load_manifest).transpose()?;

    let all = |m: &Manifest| -> CliResult<Vec<LoadedPlan>> {
        m.plans.iter().map(|e| from_entry(m, e, files)).collect()
    };
    let (plans, selected): (Vec<LoadedPlan>, Vec<usize>) = match (&sel.plan, &manifest) {
        (Some(arg), Some(m)) if let Some(index) = m.plans.iter().position(|p| &p.name == arg) => {
            (all(m)?, vec![index])
        }
        (Some(arg), m) => {
            let one = from_path(arg, m.as_ref(), &cwd, files)?;
            // A path naming the file of the manifest's plan of that name is that plan.
            let arg_file = std::path::absolute(arg)
                .ok()
                .and_then(|a| a.canonicalize().ok());
            let listed = m.as_ref().and_then(|m| {
                let index = m.plans.iter().position(|p| p.name == one.name)?;
                (m.plans[index].abs_file.canonicalize().ok() == arg_file).then_some((m, index))
            });
            match listed {
                Some((m, index)) => (all(m)?, vec![index]),
                None => (vec![one], vec![0]),
            }
        }
        (None, Some(m)) => {
            let plans = all(m)?;
            let selected = (0..plans.len()).collect();
            (plans, selected)
        }
        (None, None) => {
            return Err(CliError::invalid(anyhow!(
                "no `plans.toml` found in `{}` or any parent directory",
                cwd.display()
            ))
            .with_hint("pass a plan file with `--plan docs/plans/x.md`, or write a plans.toml (see `orch init`)"));
        }
    };

    let mut diagnostics: Vec<Diagnostic> = plans
        .iter()
        .flat_map(|p| p.plan.diagnostics.iter().cloned())
        .collect();
    if let Some(m) = &manifest {
        diagnostics.extend(m.warnings.iter().cloned());
        diagnostics.extend(warm_tracked(m));
        diagnostics.extend(repos::diagnostics(m));
    }
    // The manifest's cross-plan checks and dependencies, when every plan of it is loaded.
    let whole = manifest.as_ref().filter(|m| plans.len() == m.plans.len());
    if let Some(m) = whole {
        // Only the plans some `depends_on` names are looked at (a shape copies every task id).
        let named = |name: &str| {
            m.plans
                .iter()
                .any(|e| e.depends_on.iter().any(|d| d.plan == name))
        };
        let shapes: HashMap<String, PlanShape> = plans
            .iter()
            .filter(|p| !p.plan.has_errors() && named(&p.name))
            .map(|p| (p.name.clone(), PlanShape::of(&p.plan)))
            .collect();
        diagnostics.extend(manifest::check_targets(m, &shapes));
        diagnostics.extend(sparse_diagnostics(m, &plans));
        diagnostics.extend(attempts_diagnostics(m, &plans));
    }
    let graph = if diagnostics.iter().any(Diagnostic::is_error) {
        None
    } else {
        let list: Vec<&Plan> = plans.iter().map(|p| &p.plan).collect();
        let names: Vec<String> = plans.iter().map(|p| p.name.clone()).collect();
        let cross = whole.map(|m| cross_deps_of(m, &names)).unwrap_or_default();
        let built = Graph::build(&list, &names, &cross);
        built.map_err(|e| diagnostics.extend(e.0)).ok()
    };
    tracing::debug!(
        manifest = ?manifest_path,
        plans = plans.len(),
        selected = selected.len(),
        diagnostics = diagnostics.len(),
        "workspace loaded"
    );
    Ok(Workspace {
        manifest,
        plans,
        selected,
        diagnostics,
        graph,
    })
}

/// The `warm` entries that name a path git tracks: errors at the entry (a warm directory is
/// ignored build output copied into new worktrees, never the repository's content).
fn warm_tracked(m: &Manifest) -> Vec<Diagnostic> {
    let mut warm: Vec<&manifest::Warm> = m.defaults.warm.iter().collect();
    for w in m.plans.iter().flat_map(|p| &p.warm) {
        if !warm.contains(&w) {
            warm.push(w);
        }
    }
    if warm.is_empty() {
        return Vec::new();
    }
    // A manifest outside a repository is reported by the commands that need one.
    let Ok(root) = repo_root(m) else {
        return Vec::new();
    };
    let paths: Vec<PathBuf> = warm.iter().map(|w| w.path.clone()).collect();
    let Ok(tracked) = crate::git::tracked_among(&root, &paths) else {
        return Vec::new();
    };
    warm.iter()
        .filter(|w| tracked.contains(&w.path))
        .map(|w| {
            Diagnostic::error(
                &m.path,
                w.line,
                format!(
                    "`warm` entry `{}` is tracked by git; warm directories are ignored build output such as `target`",
                    w.path.display()
                ),
            )
            .with_column(w.column)
            .with_hint("name a directory git ignores (listed in `.gitignore`), or use `copy` for files")
        })
        .collect()
}

/// Loads and validates a manifest; errors map onto their exit codes.
pub(crate) fn load_manifest(path: &Path) -> CliResult<Manifest> {
    manifest::load(path).map_err(|e| {
        let code = match e {
            manifest::ManifestError::Read { .. } => exit::FAILURE,
            manifest::ManifestError::Invalid { .. } | manifest::ManifestError::Refused { .. } => {
                exit::INVALID
            }
        };
        CliError::new(code, e)
    })
}

fn read_plan(path: &Path, shown: &Path, files: bool) -> CliResult<Plan> {
    let mut p = plan::parse_file_with(path, files).map_err(CliError::invalid)?;
    // Diagnostics name the file as the user knows it.
    p.path = shown.to_path_buf();
    for d in &mut p.diagnostics {
        d.path = shown.to_path_buf();
    }
    Ok(p)
}

fn from_entry(m: &Manifest, entry: &manifest::PlanEntry, files: bool) -> CliResult<LoadedPlan> {
    let plan = read_plan(&entry.abs_file, &entry.file, files)?;
    check_format(m, entry, &plan)?;
    Ok(LoadedPlan {
        name: entry.name.clone(),
        rel_path: entry.file.to_string_lossy().into_owned(),
        status_path: m.state_path(&entry.name),
        priority: entry.priority,
        repo: entry.repo.clone(),
        plan,
    })
}

/// The plan's `format`, if the manifest names one, is the grammar its file was read in (every
/// reader of a plan file recognises the grammar from the text: the key says which it must be).
fn check_format(m: &Manifest, entry: &manifest::PlanEntry, plan: &Plan) -> CliResult<()> {
    let Some((format, line)) = entry.format else {
        return Ok(());
    };
    let speckit = plan.tasks.iter().any(|t| t.speckit.is_some());
    let found = if speckit {
        manifest::PlanFormat::SpecKit
    } else {
        manifest::PlanFormat::Orch
    };
    if format == found {
        return Ok(());
    }
    let what = if speckit {
        "has Spec Kit task lines (`- [ ] T001 …`) and none of orch's"
    } else {
        "has no Spec Kit task line (`- [ ] T001 …`) outside code fences, or has orch task lines (`- [ ] 1.1 …`)"
    };
    Err(CliError::invalid(anyhow!(
        "{}:{line}: plan `{}` says `format = \"{}\"`, but `{}` {what}",
        m.path.display(),
        entry.name,
        format.name(),
        entry.file.display(),
    )))
}

fn from_path(arg: &str, m: Option<&Manifest>, cwd: &Path, files: bool) -> CliResult<LoadedPlan> {
    let path = PathBuf::from(arg);
    if !path.is_file() {
        let mut err = CliError::invalid(anyhow!(
            "`{arg}` is neither a plan of the manifest nor a plan file"
        ));
        if let Some(m) = m.filter(|m| !m.plans.is_empty()) {
            err = err.with_hint(format!("the manifest's plans are {}", plan_names(m)));
        }
        return Err(err);
    }
    let abs = std::path::absolute(&path).map_err(|e| anyhow!("cannot resolve `{arg}`: {e}"))?;
    let canon = abs.canonicalize().unwrap_or_else(|_| abs.clone());
    // A path naming a file the manifest lists is that plan.
    if let Some(m) = m
        && let Some(entry) = m
            .plans
            .iter()
            .find(|e| e.abs_file.canonicalize().is_ok_and(|c| c == canon))
    {
        return from_entry(m, entry, files);
    }
    let root = m
        .map(|m| m.root.clone())
        .or_else(|| main_root_above(&abs))
        .unwrap_or_else(|| {
            abs.parent()
                .map_or_else(|| cwd.to_path_buf(), Path::to_path_buf)
        });
    let name = plan_name_from_path(&abs);
    let rel_path = abs
        .strip_prefix(&root)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| arg.to_string());
    let state_dir = m.map_or_else(
        || PathBuf::from(".orch/state"),
        |m| m.defaults.state_dir.clone(),
    );
    let plan = read_plan(&path, &path, files)?;
    Ok(LoadedPlan {
        status_path: root.join(state_dir).join(&name).join("status.json"),
        name,
        rel_path,
        priority: 0,
        repo: None,
        plan,
    })
}

/// The names of `m`'s plans, quoted: `` `a`, `b` ``.
fn plan_names(m: &Manifest) -> String {
    let names: Vec<String> = m.plans.iter().map(|p| format!("`{}`", p.name)).collect();
    names.join(", ")
}

/// A status-directory name for a plan given by path: its file stem, made safe.
fn plan_name_from_path(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let safe: String = stem
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => c,
            _ => '-',
        })
        .collect();
    let safe = safe.trim_start_matches(['.', '-']).to_string();
    if safe.is_empty() { "plan".into() } else { safe }
}

/// The work dir of the manifest's repository (canonical), opened with git.
pub(crate) fn repo_root(manifest: &Manifest) -> CliResult<PathBuf> {
    let root = crate::git::work_dir(&manifest.root)
        .map_err(CliError::coded)?
        .ok_or_else(|| {
            CliError::invalid(anyhow!(
                "`{}` is a bare repository",
                manifest.root.display()
            ))
        })?;
    Ok(root.canonicalize().unwrap_or(root))
}

/// Where the status files of a plan given by path (no manifest) go: the main repository's root
/// above `path`, found without git. Inside a linked worktree (`.git` is a file
/// `gitdir: <main>/.git/worktrees/<name>`) this is the main repository, so status files never
/// land inside a worktree.
fn main_root_above(path: &Path) -> Option<PathBuf> {
    let dir = path.ancestors().skip(1).find(|d| d.join(".git").exists())?;
    let dot_git = dir.join(".git");
    if dot_git.is_file()
        && let Ok(text) = crate::untrusted::read::small_text(&dot_git)
        && let Some(gitdir) = text.lines().find_map(|l| l.strip_prefix("gitdir:"))
    {
        let gitdir = dir.join(gitdir.trim());
        // <main>/.git/worktrees/<name> → <main>
        if gitdir
            .parent()
            .and_then(Path::file_name)
            .is_some_and(|n| n == "worktrees")
            && let Some(main) = gitdir.ancestors().nth(3)
        {
            return Some(main.to_path_buf());
        }
    }
    Some(dir.to_path_buf())
}

/// Best of N: each plan's `(attempts: N)` clauses checked against the manifest
/// ([`crate::plan::attempts_problems`]).
fn attempts_diagnostics(m: &Manifest, plans: &[LoadedPlan]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for (entry, loaded) in m.plans.iter().zip(plans) {
        let runs = if m
            .agent_of(entry)
            .is_some_and(|a| a.mode == manifest::AgentMode::Plan)
        {
            Some("a plan-mode agent".to_string())
        } else {
            (entry.executor != manifest::ExecutorKind::Local)
                .then(|| format!("through {}", entry.executor.as_str()))
        };
        out.extend(crate::plan::attempts_problems(
            &loaded.plan,
            &loaded.rel_path,
            m.defaults.max_agents,
            runs.as_deref(),
        ));
    }
    out
}

/// Sparse plans (`paths`): a directory that is not in the plan's base (its branch, else the
/// target) is an error at its place in `plans.toml`; a task naming a file outside its plan's
/// paths is a warning at the task's line. Nothing is read from git without `paths`.
fn sparse_diagnostics(m: &Manifest, plans: &[LoadedPlan]) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let mut repo_root = None;
    for (entry, loaded) in m.plans.iter().zip(plans) {
        if entry.paths.is_empty() {
            continue;
        }
        let root = repo_root.get_or_insert_with(|| crate::git::work_dir(&m.root).ok().flatten());
        if let Some(root) = root
            && let Ok(Some(missing)) = crate::git::missing_dirs(
                root,
                &[entry.branch.as_str(), m.defaults.target.as_str()],
                &entry.paths,
            )
        {
            for (dir, (line, column)) in entry.paths.iter().zip(&entry.paths_at) {
                if missing.contains(dir) {
                    out.push(
                        Diagnostic::error(
                            &m.path,
                            *line,
                            format!(
                                "`plan.paths` entry `{dir}` of plan `{}` is not a directory of its base",
                                entry.name
                            ),
                        )
                        .with_column(*column)
                        .with_hint("name directories that exist on the target branch (or the plan's branch)"),
                    );
                }
            }
        }
        for task in &loaded.plan.tasks {
            let outside: Vec<&String> = task
                .files
                .iter()
                .filter(|f| !manifest::in_cone(&entry.paths, f.trim_start_matches("./")))
                .collect();
            if let Some(first) = outside.first() {
                out.push(
                    Diagnostic::warning(
                        &loaded.rel_path,
                        task.line,
                        format!(
                            "task {} names `{first}`, outside the paths of plan `{}` ({}): its agent cannot write there",
                            task.id,
                            entry.name,
                            entry.paths.join(", ")
                        ),
                    )
                    .with_hint("add the directory to the plan's `paths`, or move the task to another plan"),
                );
            }
        }
    }
    out
}

/// The cross-plan dependencies of `m`'s entries between the plans named `names` (by index).
fn cross_deps_of(m: &Manifest, names: &[String]) -> Vec<CrossDep> {
    let index: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i))
        .collect();
    let mut out = Vec::new();
    for entry in &m.plans {
        let Some(&from) = index.get(entry.name.as_str()) else {
            continue;
        };
        for dep in &entry.depends_on {
            if let Some(&to) = index.get(dep.plan.as_str()) {
                out.push(CrossDep {
                    from,
                    to,
                    target: match &dep.target {
                        DepTarget::Plan => CrossTarget::Plan,
                        DepTarget::Phase(p) => CrossTarget::Phase(*p),
                        DepTarget::Task(t) => CrossTarget::Task(t.clone()),
                        DepTarget::Story(s) => CrossTarget::Story(s.clone()),
                    },
                });
            }
        }
    }
    out
}

/// The combined graph of `plans`, in any order (during a re-plan, the run's plans, some of
/// which `m` may no longer list), joined by the cross-plan dependencies of `m`'s entries.
pub(crate) fn graph_of(
    m: &Manifest,
    names: &[String],
    plans: &[&Plan],
) -> Result<Graph, Vec<Diagnostic>> {
    let cross = cross_deps_of(m, names);
    Graph::build(plans, names, &cross).map_err(|e| e.0)
}
