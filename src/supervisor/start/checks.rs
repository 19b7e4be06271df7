//! What `orch up` checks before it touches anything: each agent's program, flags and prompt,
//! each plan's worktree; and, once the trees are made, the early warning of branches that would
//! conflict. (Each executor's own checks are its room's: `crate::executor::Executor::check_start`.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::anyhow;

use super::tree_request;
use crate::error::{CliError, CliResult, exit};
use crate::executor::Executor;
use crate::git::{self, TreeAction};
use crate::manifest::{AgentMode, AgentSpec, Manifest, PlanEntry, render_template};
use crate::process::resolve_program;
use crate::prompt::{TaskPrompt, Templates};
use crate::status;
use crate::supervisor::Event;
use crate::workspace::LoadedPlan;

/// What plan `lp`'s worktree needs (`None`: every task is finished and no commit is owed, so
/// it needs none). A new worktree is refused while the plan file differs from its version on
/// the target branch, which the worktree is made from.
pub(super) fn tree_action(
    manifest: &Manifest,
    repo_root: &Path,
    lp: &LoadedPlan,
    entry: &PlanEntry,
) -> CliResult<Option<TreeAction>> {
    let doc = lp.read_status().map_err(CliError::coded)?;
    let unfinished = doc.entries().any(|e| !e.status.is_finished());
    if !unfinished && !commit_owed(&doc) {
        return Ok(None);
    }
    let path = manifest.worktree_path(&lp.name);
    let action = git::plan_tree_preflight(&tree_request(
        manifest,
        repo_root,
        entry,
        &path,
        &entry.copy,
    ))
    .map_err(CliError::coded)?;
    // The plan file is the home repository's: checked against its target for a plan of the
    // home repository only (another repository's worktree does not hold it).
    if matches!(action, TreeAction::Create { .. }) && entry.repo.is_none() {
        let abs = entry
            .abs_file
            .canonicalize()
            .unwrap_or_else(|_| entry.abs_file.clone());
        let rel = abs
            .strip_prefix(repo_root)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| entry.file.clone());
        let target = &manifest.defaults.target;
        if git::file_differs_from(repo_root, target, &rel).map_err(CliError::coded)? {
            return Err(CliError::new(
                exit::REFUSED,
                anyhow!(
                    "plan file `{}` of plan `{}` differs from its version on `{target}`: the new worktree, made from `{target}`, would not have what you see here",
                    entry.file.display(),
                    lp.name,
                ),
            )
            .with_hint(format!(
                "commit it on `{target}` first: git add {} && git commit",
                entry.file.display()
            )));
        }
    }
    Ok(Some(action))
}

/// Whether a task completed in orch's worktree still waits for its commit (a supervisor killed
/// between the agent's report and the commit): the plan needs its worktree again to make it.
fn commit_owed(doc: &status::StatusDoc) -> bool {
    let Some(created) = doc
        .extra
        .get("orchWorktree")
        .and_then(|v| v.get("createdAt"))
        .and_then(|v| v.as_str())
        .and_then(status::parse_timestamp)
    else {
        return false;
    };
    doc.entries().any(|e| {
        e.status == status::TaskStatus::Completed
            && e.commit.is_none()
            && e.completed_at
                .as_deref()
                .and_then(status::parse_timestamp)
                .is_some_and(|t| t >= created)
    })
}

/// The pre-flights of a run: the agents checked, the paths confined agents may write (a client
/// program there runs confined), and what to tell the user.
pub(super) struct Preflights {
    pub(crate) checked: BTreeSet<String>,
    pub(crate) roots: Vec<(PathBuf, String)>,
    pub(crate) landlock: bool,
    pub(crate) notes: Vec<String>,
}

impl Preflights {
    /// How agent `name`'s client at `program` is pre-flighted: confined when it lies where a
    /// confined agent may write (with a note saying so), refused (exit 6) when it does and this
    /// kernel cannot confine it; else as it is.
    fn confinement(
        &mut self,
        name: &str,
        agent: &crate::manifest::AgentSpec,
        program: &Path,
        orch_bin: &Path,
    ) -> CliResult<Option<crate::sandbox::Confine>> {
        if crate::manifest::KnownCli::of(&agent.command).is_none() {
            return Ok(None);
        }
        let Some((at, root, why)) = crate::preflight::agent_writable(program, &self.roots) else {
            return Ok(None);
        };
        let place = if at == program {
            format!("`{}`", at.display())
        } else {
            format!("`{}` (through `{}`)", program.display(), at.display())
        };
        if !self.landlock {
            return Err(CliError::new(
                exit::AGENT,
                anyhow!(
                    "agent `{name}`'s program {place} lies in `{}` ({why}): an agent may have replaced it, and this kernel cannot confine its pre-flight (no Landlock)",
                    root.display()
                ),
            )
            .with_hint(
                "install the client where no agent may write (outside the client's state directory, e.g. /usr/local/bin), or run on a kernel with Landlock",
            ));
        }
        self.notes.push(format!(
            "agent `{name}`'s program {place} lies in `{}` ({why}): an agent may have replaced it, so orch runs it confined, never unconfined (install it elsewhere, e.g. /usr/local/bin, to have it trusted)",
            root.display()
        ));
        Ok(Some(crate::sandbox::Confine {
            orch_bin: orch_bin.to_path_buf(),
            rules: crate::preflight::preflight_rules(agent),
        }))
    }
}

/// The agent's program exists, a CLI orch knows runs and accepts the flags passed
/// ([`crate::preflight`], once per agent), and its prompt renders: found now rather than after
/// worktrees were made. A plan whose executor runs its agent's program elsewhere (a `[[host]]`)
/// has it checked there: whether the host has it is the host's probe's to say (`orch hosts`,
/// and at the start of `orch up`), so only its prompt is checked here.
pub(super) fn agent(
    manifest: &Manifest,
    (entry, executor): (&PlanEntry, &dyn Executor),
    orch_bin: &Path,
    templates: &Templates,
    lp: &LoadedPlan,
    pre: &mut Preflights,
) -> CliResult<()> {
    let agent = manifest.agent_of(entry).ok_or_else(|| {
        CliError::invalid(anyhow!(
            "plan `{}` names unknown agent `{}`",
            entry.name,
            entry.agent
        ))
    })?;
    let orch = orch_bin.display().to_string();
    if executor.checks_agents_here() {
        preflight(
            manifest,
            (&entry.agent, agent),
            &format!("agent `{}` of plan `{}`", entry.agent, entry.name),
            orch_bin,
            pre,
        )?;
    }
    if agent.mode == AgentMode::Task {
        sample_prompt(templates, lp, entry, orch)?;
    }
    Ok(())
}

/// Agent `name`'s program exists (a template filled, resolved as a launch resolves it) and, a
/// CLI orch knows, runs and accepts the flags passed ([`crate::preflight`], once per agent);
/// `who` names it in the error (`agent `A` of plan `p``).
fn preflight(
    manifest: &Manifest,
    (name, agent): (&str, &AgentSpec),
    who: &str,
    orch_bin: &Path,
    pre: &mut Preflights,
) -> CliResult<()> {
    let orch = orch_bin.display().to_string();
    let program = agent
        .command
        .first()
        .map(|a| {
            render_template(a, |v| {
                if v == "orch" {
                    orch.clone()
                } else {
                    String::new()
                }
            })
        })
        .transpose()
        .map_err(|e| CliError::invalid(anyhow!("agent `{name}`: {e}")))?
        .unwrap_or_default();
    let Some(resolved) = resolve_program(&program, &manifest.root) else {
        return Err(CliError::invalid(anyhow!(
            "{who}: program `{program}` was not found{}",
            if program.contains('/') {
                format!(
                    " (relative to the worktree, like `{}`)",
                    manifest.root.join(&program).display()
                )
            } else {
                " on PATH".to_string()
            }
        ))
        .with_hint(format!(
            "install it, or set `command` in `[agents.{name}]` of {}",
            manifest.path.display()
        )));
    };
    if pre.checked.insert(name.to_string()) {
        let confined = pre.confinement(name, agent, &resolved, orch_bin)?;
        crate::preflight::check(
            name,
            &resolved,
            &agent.command,
            &manifest.root,
            confined.as_ref(),
        )
        .map_err(|e| CliError::invalid(anyhow!("{}", e.message)).with_hint(e.hint))?;
    }
    Ok(())
}

/// The fallbacks of the run's plans (`entries`) whose pre-flight fails, each once, with why:
/// failover passes over them (a fallback is needed only at a usage limit, so the run goes on
/// without it). A plan's own agent was checked before, and stops the run when it fails.
/// `entries`: the plans whose agents are checked here.
pub(super) fn fallbacks<'m>(
    manifest: &Manifest,
    entries: impl IntoIterator<Item = &'m PlanEntry>,
    orch_bin: &Path,
    pre: &mut Preflights,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for entry in entries {
        for name in &entry.fallback {
            if pre.checked.contains(name) || out.iter().any(|(n, _)| n == name) {
                continue;
            }
            let Some(agent) = manifest.agents.get(name) else {
                continue;
            };
            let who = format!("fallback agent `{name}` of plan `{}`", entry.name);
            if let Err(e) = preflight(manifest, (name, agent), &who, orch_bin, pre) {
                pre.checked.remove(name);
                out.push((name.clone(), e.to_string()));
            }
        }
    }
    out
}

/// A prompt with every variable filled: a template error shows now, not at the first task.
fn sample_prompt(
    templates: &Templates,
    lp: &LoadedPlan,
    entry: &PlanEntry,
    orch: String,
) -> CliResult<()> {
    let Some(t) = lp.plan.tasks.first() else {
        return Ok(());
    };
    let sample = TaskPrompt {
        plan: lp.name.clone(),
        plan_title: lp.plan.title.clone(),
        plan_file: lp.rel_path.clone(),
        phase_number: t.phase,
        phase_title: String::new(),
        task_id: t.id.clone(),
        kind: "task".into(),
        description: t.description.clone(),
        body: t.body.clone(),
        dependencies: Vec::new(),
        worktree: String::new(),
        branch: entry.branch.clone(),
        orch,
        status_file: lp.status_path.display().to_string(),
        attempt: 1,
        previous_error: None,
        integration: None,
        check: String::new(),
        report_by_exit: false,
        question: None,
        answer: None,
        answers: Vec::new(),
        messages: Vec::new(),
    };
    templates
        .render_task(&sample)
        .map(drop)
        .map_err(|e| CliError::invalid(anyhow!("{e}")))
}

/// Most plans whose branches are compared pairwise at start-up (`n²/2` merges, asked of one `git merge-tree --stdin`).
const CONFLICT_CHECK_MAX: usize = 20;

/// A `Note` for each pair of `(plan, branch)` whose branches would conflict when merged (an
/// early warning; `orch conflicts` has the full picture). Skipped above [`CONFLICT_CHECK_MAX`]
/// plans; a failing check is skipped too (it decides nothing).
pub(super) fn warn_conflicts(
    repo_root: &Path,
    plans: &[(String, String)],
    emit: &mut impl FnMut(&Event),
) {
    if plans.len() < 2 || plans.len() > CONFLICT_CHECK_MAX {
        return;
    }
    let revs: Vec<String> = plans.iter().map(|(_, b)| b.clone()).collect();
    let pairs: Vec<(usize, usize)> = (0..revs.len())
        .flat_map(|i| (i + 1..revs.len()).map(move |j| (i, j)))
        .collect();
    let Ok(results) = git::conflicts_of_pairs(repo_root, &revs, &pairs) else {
        return;
    };
    for (&(i, j), files) in pairs.iter().zip(results) {
        if files.is_empty() {
            continue;
        }
        let list = crate::diagnostic::path_list(&files, 5);
        emit(&Event::Note {
            plan: Some(plans[i].0.clone()),
            message: format!(
                "branches `{}` and `{}` (plan `{}`) would conflict when merged, on {list}; \
                 `orch conflicts` shows every pair",
                plans[i].1, plans[j].1, plans[j].0
            ),
        });
    }
}
