//! One resolution, end to end: the conflicted merge written by orch, the resolution worktree,
//! the agent, the gates, the merge commit on the plan branch (or the attempt saved).

use std::path::{Path, PathBuf};

use super::prompt::{self, PromptInput};
use super::request::Conflicted;
pub(super) use super::request::conflicted;
pub(crate) use super::request::{Resolution, ResolveRequest, Why, failure, plan_base};
use super::{AgentJob, EXPLANATION, RESOLVE_PREFIX, ResolveNote, Resolver};
use crate::git::{self, MergeRepo, Oid, Staging};
use crate::manifest::{Manifest, PlanEntry};
use crate::merge::MergeError;

/// The status file's record of what the plan's resolvers spent, all runs (an `orchUsage`).
pub(crate) const RESOLVE_USAGE: &str = "orchResolveUsage";

/// What the plan's resolvers spent, as its status file records it ([`RESOLVE_USAGE`]).
pub(crate) fn resolvers_usage(doc: &crate::status::StatusDoc) -> crate::agent_output::Usage {
    doc.extra
        .get(RESOLVE_USAGE)
        .and_then(|v| serde_json::from_value::<crate::status::OrchUsage>(v.clone()).ok())
        .map(|u| u.usage())
        .unwrap_or_default()
}

/// Why plan `entry`'s `budget` is reached by what it spent (its tasks' `orchUsage` and its
/// resolvers' [`RESOLVE_USAGE`] in the status file at `status_path`), if it is.
fn budget_reached(entry: &PlanEntry, status_path: Option<&Path>) -> Option<String> {
    let doc = crate::status::load(status_path?).ok().flatten()?;
    let used = doc
        .entries()
        .filter_map(|e| e.orch_usage.as_ref())
        .fold(resolvers_usage(&doc), |a, u| a.plus(&u.usage()));
    entry
        .budget
        .reached(used.cost_micro_usd.unwrap_or(0), used.tokens())
}

/// Adds what a resolver spent to the plan's [`RESOLVE_USAGE`] (a failure to write is not the
/// resolution's: its usage is in its log).
fn record_usage(lp: &crate::workspace::LoadedPlan, usage: &crate::agent_output::Usage) {
    let _ = lp.update_status(|doc| {
        let mut total: crate::status::OrchUsage = doc
            .extra
            .get(RESOLVE_USAGE)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        total.add(usage);
        doc.extra.insert(
            RESOLVE_USAGE.to_string(),
            serde_json::to_value(&total).unwrap_or_default(),
        );
        Ok(())
    });
}

/// The files no resolution may change: what a later run trusts ([`crate::manifest::Guarded`],
/// the program and script of each command line, the plan's tasks' own checks with them) in the
/// plan's tree, and the plan's `protect` globs (the data a gate is handed is the work's unless
/// they name it). `Err` when the tree cannot be read: nothing is handed over or landed unchecked.
fn protected(
    manifest: &Manifest,
    (entry, plan): (&PlanEntry, Option<&crate::plan::Plan>),
    repo_root: &Path,
    repo: &MergeRepo,
    tree: Oid,
) -> Result<impl Fn(&str) -> bool + use<>, String> {
    let mut guarded = manifest.guarded(repo_root, Some(entry));
    if let Some(plan) = plan {
        guarded = guarded.with_task_checks(plan);
    }
    // `verify_all` runs in the directory of every repository's candidate: its script is one
    // of this repository's files when its word names it (`api/ci/all.sh`).
    let guarded = crate::merge::trusted::with_verify_all(
        guarded,
        manifest,
        crate::manifest::repo_name(entry),
    );
    let found = repo.protected(&guarded, tree, repo_root)?;
    let protect = entry.protect.clone();
    let cover = git::Cover::new(&found.trusted);
    Ok(move |p: &str| cover.covers(p) || protect.as_ref().is_some_and(|globs| globs.matches(p)))
}

/// The next attempt number of plan `plan`'s resolutions: one past the highest saved, or left
/// by a resolution that was killed (its notes directory, `<state_dir>/.resolve/<plan>-<n>`).
pub(super) fn next_attempt(repo: &MergeRepo, manifest: &Manifest, plan: &str) -> u32 {
    let number = |name: &str, prefix: &str| name.strip_prefix(prefix)?.parse::<u32>().ok();
    let prefix = git::attempt_ref(plan, "resolve", 0);
    let prefix = prefix.trim_end_matches('0');
    let refs = repo.ref_names(prefix).into_iter();
    let mut n = refs.filter_map(|r| number(&r, prefix)).max().unwrap_or(0);
    let notes = notes_dir(manifest, plan, 0);
    if let (Some(dir), Some(name)) = (notes.parent(), notes.file_name().and_then(|f| f.to_str()))
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        let stem = name.trim_end_matches('0');
        let left = entries
            .flatten()
            .filter_map(|e| number(e.file_name().to_str()?, stem));
        n = left.fold(n, u32::max);
    }
    n + 1
}

/// Where the agent's explanation goes: `<state_dir>/.resolve/<plan>-<n>` of the plan's
/// repository.
pub(super) fn notes_dir(manifest: &Manifest, plan: &str, attempt: u32) -> PathBuf {
    plan_base(manifest, plan)
        .join(&manifest.defaults.state_dir)
        .join(crate::state_layout::RESOLVE.name)
        .join(format!("{plan}-{attempt}"))
}

/// The prompt for `req` with the conflicted state `c`.
pub(super) fn prompt_for(
    repo: &MergeRepo,
    manifest: &Manifest,
    entry: &PlanEntry,
    req: &ResolveRequest,
    c: &Conflicted,
    notes: &Path,
) -> String {
    let workdir = plan_base(manifest, req.step.plan)
        .join(&manifest.defaults.worktree_root)
        .join(format!("{RESOLVE_PREFIX}{}", req.step.plan));
    let names_file = |text: &str| c.files.iter().any(|f| text.contains(f.as_str()));
    prompt::render(&PromptInput {
        req,
        workdir: &workdir,
        notes: &notes.join(EXPLANATION),
        files: prompt::marked_files(repo, c.tree, &c.files),
        tasks: req
            .tasks
            .iter()
            .filter(|(_, text)| names_file(text))
            .map(|(line, _)| line.clone())
            .collect(),
        ours: repo.side_commits(c.ours, c.theirs, &c.files, prompt::MAX_COMMITS),
        theirs: repo.side_commits(c.theirs, c.ours, &c.files, prompt::MAX_COMMITS),
        check: entry.check.as_ref().map(|a| crate::merge::verify::shown(a)),
    })
}

/// Hands the plan of `req` to its resolver and lands the result on the plan branch when every
/// gate passes. Blocking. An error is orch's own (git); the agent's failures are
/// [`Resolution::Failed`].
pub(crate) fn resolve(res: &Resolver, req: &ResolveRequest) -> Result<Resolution, MergeError> {
    let manifest = &*res.manifest;
    let failed = |agent: &str, files: &[String], cause: String| {
        let (agent, files) = (agent.to_string(), files.to_vec());
        Ok(Resolution::Failed {
            cause,
            agent,
            files,
            saved: None,
        })
    };
    let plan = req.step.plan;
    let Some(entry) = manifest.plan(plan) else {
        return failed("", &[], format!("plan `{plan}` is not in the manifest"));
    };
    let Some(agent_name) = entry.resolve.clone() else {
        return failed("", &[], format!("plan `{plan}` has no `resolve` agent"));
    };
    let Some(agent) = manifest.agents.get(&agent_name).cloned() else {
        return failed(
            &agent_name,
            &[],
            format!("agent `{agent_name}` is not defined"),
        );
    };
    if let Some(why) = budget_reached(entry, req.loaded.map(|lp| lp.status_path.as_path())) {
        let cause =
            format!("the plan's budget is reached ({why}): its conflict is left to a person");
        return failed(&agent_name, &[], cause);
    }
    let repo = MergeRepo::open(req.step.repo_root)?;
    let c = match conflicted(&repo, req)? {
        Ok(c) => c,
        Err(cause) => return failed(&agent_name, &[], cause),
    };
    let ours_tree = repo.commit_tree(c.ours, &format!("the tree of `{}`", req.step.branch))?;
    let plan_of = req.loaded.map(|lp| &lp.plan);
    let is_protected = match protected(
        manifest,
        (entry, plan_of),
        req.step.repo_root,
        &repo,
        ours_tree,
    ) {
        Ok(f) => f,
        Err(why) => {
            let cause = format!(
                "cannot read what is protected in `{}` ({why}): its conflict is left to a person",
                req.step.branch
            );
            return failed(&agent_name, &c.files, cause);
        }
    };
    if let Some(p) = c.files.iter().find(|f| is_protected(f)) {
        let cause = format!(
            "`{p}` is protected (orch's configuration or `protect`): its conflict is left to a person"
        );
        return failed(&agent_name, &c.files, cause);
    }
    // The plan's code (and that of the plans whose work it is resolved against) never runs
    // on this machine when one of them runs in a container: the agent runs in a container of
    // their image; plans of different images are refused before anything is made.
    let mut plans = vec![plan.to_string()];
    plans.extend(req.theirs_plans().iter().cloned());
    let container = match crate::executor::container::images(manifest).of(&plans) {
        Ok(c) => c,
        Err(why) => {
            let cause = format!("its resolver cannot run: {why}; its conflict is left to a person");
            return failed(&agent_name, &c.files, cause);
        }
    };
    let write = |source| MergeError::WriteCommit {
        branch: req.step.branch.to_string(),
        source,
    };
    let c0 = repo
        .write_commit(
            c.tree,
            &[c.ours, c.theirs],
            &format!(
                "orch: {} merged into `{}`, conflict markers left for the resolver",
                req.theirs_name(),
                req.step.branch
            ),
        )
        .map_err(write)?;
    let attempt = next_attempt(&repo, manifest, req.step.plan);
    let notes = notes_dir(manifest, req.step.plan, attempt);
    let prompt = prompt_for(&repo, manifest, entry, req, &c, &notes);
    let base = plan_base(manifest, req.step.plan);
    let log_dir = base.join(&manifest.defaults.log_dir).join(req.step.plan);
    let log = log_dir.join("resolve.log");
    let _ = std::fs::create_dir_all(&log_dir)
        .and_then(|()| crate::links::write(&log_dir.join("resolve.prompt.md"), prompt.as_bytes()));
    crate::links::fresh_dir(&notes).map_err(|e| MergeError::Staging {
        path: notes.clone(),
        reason: e.to_string(),
    })?;
    let worktree_root = base.join(&manifest.defaults.worktree_root);
    let wt = Staging::create_named(
        req.step.repo_root,
        &worktree_root,
        &format!("{RESOLVE_PREFIX}{}", req.step.plan),
        &format!("orch-resolve/{}", req.step.plan),
        c0,
    )?;
    (res.notify)(&ResolveNote::Started {
        plan: req.step.plan.to_string(),
        agent: agent_name.clone(),
        files: c.files.clone(),
        why: req.why.as_str().to_string(),
        attempt,
    });
    let job = AgentJob {
        plan: req.step.plan.to_string(),
        agent_name: agent_name.clone(),
        agent,
        plan_agent: manifest
            .agent_of(entry)
            .map(|a| (entry.agent.clone(), a.clone())),
        workdir: wt.path().to_path_buf(),
        prompt,
        notes_dir: notes.clone(),
        log,
        timeout: entry.timeout,
        grace: manifest.defaults.grace,
        log_max: manifest.defaults.log_max,
        attempt,
        state_dir: base.join(&manifest.defaults.state_dir),
        manifest_path: manifest.path.clone(),
        container,
    };
    let run = res.runner.run(&job);
    if let (Some(u), Some(lp)) = (&run.usage, req.loaded) {
        record_usage(lp, u);
    }
    let landed = super::land::Gates {
        repo: &repo,
        req,
        manifest,
        entry,
        c: &c,
        workdir: wt.path(),
        notes: &notes,
        agent: &agent_name,
        attempt,
        is_protected: &is_protected,
    }
    .land(&run);
    let result = match landed {
        Ok((commit, verified_tree)) => {
            (res.notify)(&ResolveNote::Resolved {
                plan: req.step.plan.to_string(),
                agent: agent_name.clone(),
                files: c.files.clone(),
                commit: commit.clone(),
                attempt,
                usage: run.usage,
            });
            Resolution::Resolved {
                commit,
                agent: agent_name,
                files: c.files.clone(),
                verified_tree,
            }
        }
        Err(cause) => {
            let saved = super::land::save_attempt(&repo, wt.path(), &c, c0, req.step.plan, attempt);
            (res.notify)(&ResolveNote::Failed {
                plan: req.step.plan.to_string(),
                agent: agent_name.clone(),
                files: c.files.clone(),
                cause: cause.clone(),
                saved: saved.clone(),
                attempt,
                usage: run.usage,
            });
            Resolution::Failed {
                cause,
                agent: agent_name,
                files: c.files.clone(),
                saved,
            }
        }
    };
    // Made by orch for this attempt: removed (a link in it is removed, never followed).
    let _ = std::fs::remove_dir_all(&notes);
    drop(wt);
    Ok(result)
}
