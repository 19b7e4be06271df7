//! Settling an attempt whose agent ended, as the core decided (blocking: git and status-file
//! work): commit the task's work and record it, or save what the attempt left and record the
//! failure, or put the task back. Also the one committer of tasks done outside an attempt.

use std::iter::once_with;

use chrono::Utc;

use super::context::PlanCtx;
use super::core::checks::{self, Found};
use super::state::{Changes, Outcome, PlanAgentEnd, Settlement};
use crate::git;
use crate::process;
use crate::status::{self, StatusDoc, Transition, TransitionOptions};

pub(crate) mod best_of;
mod commit;

use commit::commit_task;
pub(in crate::supervisor) use commit::{UNRECORDED_DEPTH, commit_tree_as};
pub(crate) use commit::{commit_done, commit_outside_attempt};

/// Carries out `how` for the attempt `attempt` of task `task` (or of the plan agent) of `plan`;
/// `text`: the task's description when the attempt started (its commit's subject); `base`: the
/// plan branch's tip when it started (what its work is compared with).
pub(crate) fn settle(
    plan: &PlanCtx,
    (task, text): (Option<usize>, Option<&str>),
    (attempt, base): (u32, Option<&str>),
    how: &Settlement,
) -> Outcome {
    let Some(t) = task.and_then(|t| plan.plan.tasks.get(t)) else {
        return match how {
            Settlement::PlanAgent { commit, reset, end } => {
                settle_plan_agent(plan, (attempt, base), (commit, reset), end)
            }
            _ => Outcome::Failed {
                error: "the attempt's task is not in the plan".to_string(),
                saved: None,
            },
        };
    };
    let id = t.id.as_str();
    match how {
        Settlement::Commit => {
            let (tree, branch, since) = work_of(plan, id, base);
            match commit_refused(plan, t, (&tree, &branch, since)) {
                Some(cause) => fail(plan, id, (attempt, base), &cause, true),
                None => commit_done(plan, id, text.unwrap_or(&t.description)),
            }
        }
        Settlement::Fail { error, record } => {
            let out = fail(plan, id, (attempt, base), error, *record);
            // A verification step's last attempt: its verdict goes on the plan branch.
            if attempt > plan.entry.retries {
                verdict(plan, id, "failed", error);
            }
            out
        }
        Settlement::Interrupt { note } => interrupted(plan, id, (attempt, base), note),
        Settlement::AwaitInput => {
            // What it did before asking is kept (the next attempt starts from the last commit,
            // as after an interruption); its record is the question's, or the answer's.
            save_leftovers(plan, id, (attempt, base), "asked a question in");
            Outcome::Asked
        }
        Settlement::PlanAgent { commit, reset, end } => {
            settle_plan_agent(plan, (attempt, base), (commit, reset), end)
        }
        Settlement::SkipVerify => {
            let reason = plan
                .view()
                .ok()
                .and_then(|d| d.entry(id).and_then(|e| e.skip_reason.clone()))
                .unwrap_or_default();
            verdict(plan, id, "skipped", &reason);
            Outcome::Skipped
        }
        Settlement::Pick { why } => best_of::settle_pick(
            plan,
            (task.unwrap_or_default(), t),
            attempt,
            text.unwrap_or(&t.description),
            why,
        ),
        Settlement::Lose { cause } => best_of::settle_lose(plan, id, attempt, cause),
    }
}

/// For verification step `id`: an empty commit on the plan branch saying what happened
/// (`<plan> V2: verification of phase 2 failed: <first line of why>`). Nothing for a task.
fn verdict(plan: &PlanCtx, id: &str, what: &str, why: &str) {
    let Some(t) = plan
        .plan
        .task(id)
        .filter(|t| t.kind == crate::plan::TaskKind::Verify)
    else {
        return;
    };
    let first = why
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut message = format!(
        "{} {id}: verification of phase {} {what}",
        plan.name(),
        t.phase
    );
    if !first.is_empty() {
        message.push_str(": ");
        message.extend(first.chars().take(200));
    }
    if !why.trim().is_empty() {
        message.push_str("\n\n");
        message.push_str(why.trim());
        message.push('\n');
    }
    let Ok(_git) = plan.git_lock.lock() else {
        return;
    };
    let made = git::pin_worktree(&plan.worktree, plan.branch()).and_then(|()| {
        plan.commits
            .commit_unchanged_on(&plan.worktree, plan.branch(), &message)
    });
    if let Err(e) = made {
        process::log_line(
            &plan.log_path(Some(id)),
            &format!(
                "=== orch: cannot record the verification's outcome on `{}`: {e} ===",
                plan.branch()
            ),
        );
    }
}

/// Adds one attempt's tokens and cost to task `t`'s `orchUsage`.
pub(crate) fn record_usage(
    plan: &PlanCtx,
    t: usize,
    usage: &crate::agent_output::Usage,
) -> Result<(), status::StatusError> {
    let Some(task) = plan.plan.tasks.get(t) else {
        return Ok(());
    };
    let id = task.id.as_str();
    plan.update(|doc| {
        if let Some(e) = doc.entry_mut(id) {
            e.orch_usage.get_or_insert_with(Default::default).add(usage);
        }
        Ok(())
    })
}

/// Records task `id` failed with `error` (a launch that failed, a second conflict, a refused or
/// failed commit).
pub(crate) fn record_failure(
    plan: &PlanCtx,
    id: &str,
    error: &str,
) -> Result<(), status::StatusError> {
    // A network connection refused before the failure is named in its cause.
    let error = match plan.status_path.parent().and_then(std::path::Path::parent) {
        Some(state_dir) => super::network::with_refusals(state_dir, plan.name(), id, error),
        None => error.to_string(),
    };
    let opts = TransitionOptions {
        force: true,
        error: Some(error),
        ..TransitionOptions::default()
    };
    plan.update_entry(id, |doc| {
        status::apply(doc, id, Transition::Fail, &opts, Utc::now()).map(|_| ())
    })
}

/// Why task `t` is not committed from the worktree `tree`: the facts
/// of the checks before a task's commit, in order, for the core's one verdict
/// ([`checks::refusal`]: the first cause or check that cannot run refuses, fail closed): the
/// worktree's git files put back (its HEAD on `branch`) and, in a task worktree, what the agent
/// committed on its task branch made uncommitted changes again (`git::uncommit_task_tree`: the
/// checks see all of the task's work, and orch's one commit takes it); no nested repository
/// (before any check that runs git on the tree); the plan's paths; its
/// submodule checkouts (uncommitted changes inside one: committing the superproject would lose
/// them); the protected paths. `None`: it may be committed. The one check of agent work before
/// its commit: an attempt's, a task's done outside an attempt, a plan agent's tasks, a commit a
/// restart finds waiting in a task worktree (`super::recover`).
/// `work`: the worktree, its branch and where its work started (the plan branch's tip when the
/// attempt started; a task branch's fork from the plan branch): what was committed since is
/// checked with what is not.
pub(super) fn commit_refused(
    plan: &PlanCtx,
    t: &crate::plan::Task,
    work @ (tree, branch, since): (&std::path::Path, &str, Option<&str>),
) -> Option<String> {
    let cannot = |what: &str, e: &dyn std::fmt::Display| {
        Err(format!(
            "cannot {what} `{}` before checking its work (nothing is committed unchecked): {e}",
            tree.display()
        ))
    };
    let put_back = || {
        git::pin_worktree(tree, branch)
            .map(|()| None)
            .or_else(|e| cannot("put back the git files of", &e))
    };
    // In the plan's worktree its commits stay: the checks compare with `since`.
    let uncommit = || match tree == plan.worktree.as_path() {
        true => Ok(None),
        false => git::uncommit_task_tree(tree, branch, plan.branch())
            .map(|()| None)
            .or_else(|e| cannot("make uncommitted again the commits made in", &e)),
    };
    // One status of the tree for the checks that read it (the first asks, after those that
    // must come before any git runs there).
    let dirt = git::Dirt::new(tree);
    checks::refusal(
        once_with(|| Found::of(put_back()))
            .chain(once_with(|| Found::of(uncommit())))
            // The agent's own commits by their objects' headers first, before any check
            // diffs them or runs git on the tree (a plumbing-made commit of a million paths).
            .chain(once_with(|| Found::of(committed_too_large(plan, t, work))))
            .chain(once_with(|| Found::of(nested_repositories(work))))
            .chain(once_with(|| Found::of(too_large(plan, t, work, &dirt))))
            .chain(once_with(|| {
                Found::of(outside_paths(tree, &plan.entry.paths, since))
            }))
            .chain(once_with(|| {
                Found::of(submodule_lines(plan, tree).map(|_| None))
            }))
            .chain(once_with(|| {
                Found::of(protected_changes_in(plan, t, work, &dirt))
            })),
    )
}

/// The cause that refuses the commit of the worktree `tree` when a file git would stage there is
/// larger than the plan's `max_file_size`, or all of them together than its `max_change_size`
/// (their apparent sizes, read by `lstat` before anything is hashed: a sparse 20 GiB file costs
/// nothing), or when `branch` committed such a file since `since` (the sizes in the object
/// headers). Such a file is left out of the attempt's saved work (it is never hashed), and said
/// so. `Err` when the tree's state cannot be read (fail closed).
pub(crate) fn too_large(
    plan: &PlanCtx,
    t: &crate::plan::Task,
    (tree, branch, since): (&std::path::Path, &str, Option<&str>),
    dirt: &git::Dirt<'_>,
) -> Result<Option<String>, String> {
    let limits = plan.entry.size_limits;
    let cannot = |e: &dyn std::fmt::Display| {
        format!(
            "cannot commit task `{}`: cannot read the sizes of the changed files in `{}` (nothing is committed unchecked): {e}",
            t.id,
            tree.display()
        )
    };
    // What is left in the worktree, then the agent's own commits.
    // The two together are the attempt's change (red team 7: an unconfined agent committed
    // half of it and left the other half, each within the limits).
    // The agent's own commits alone first, by their objects' headers: a commit of 100,000
    // files made with git's plumbing (never checked out) is refused before git compares the
    // worktree with it.
    let committed = match since {
        Some(_) => {
            git::large_blobs_after(tree, (since, branch), limits, (0, 0)).map_err(|e| cannot(&e))?
        }
        None => None,
    };
    let found = match committed {
        Some(found) => Some((found, false)),
        None => {
            match git::worktree_change(dirt, &plan.guarded.own, limits).map_err(|e| cannot(&e))? {
                Err(found) => Some((found, true)),
                Ok(left) if since.is_some() => {
                    git::large_blobs_after(tree, (since, branch), limits, left)
                        .map_err(|e| cannot(&e))?
                        .map(|found| (found, false))
                }
                Ok(_) => None,
            }
        }
    };
    Ok(found.map(|(f, left)| {
        let saved = match f {
            git::TooLarge::Files { .. } => {
                "; nothing was committed, and those files are not saved with the attempt's work (never hashed)"
            }
            // The save holds to the same limits (`git::SaveLimits`): it drops such a change.
            git::TooLarge::Change { .. } | git::TooLarge::Count { .. } if left => {
                "; nothing was committed, and the change is not saved with the attempt's work (never hashed)"
            }
            git::TooLarge::Change { .. } | git::TooLarge::Count { .. } => {
                "; nothing was committed"
            }
        };
        format!("{f}{saved}")
    }))
}

/// The cause that refuses the commit of an attempt whose agent's own commits on `branch` since
/// `since` are over the plan's limits by themselves (by their objects' headers, each path
/// counted whole, the walk stopped once they are over: [`git::large_blobs_after`]). Checked
/// before anything else reads those commits: a commit of a million paths that share one tree
/// (made with git's plumbing in a second) costs orch what it read of it before refusing.
pub(crate) fn committed_too_large(
    plan: &PlanCtx,
    t: &crate::plan::Task,
    (tree, branch, since): (&std::path::Path, &str, Option<&str>),
) -> Result<Option<String>, String> {
    let Some(since) = since else {
        return Ok(None);
    };
    let found = git::large_blobs_after(
        tree,
        (Some(since), branch),
        plan.entry.size_limits,
        (0, 0),
    )
    .map_err(|e| {
        format!(
            "cannot commit task `{}`: cannot read the sizes of the commits made in `{}` (nothing is committed unchecked): {e}",
            t.id,
            tree.display()
        )
    })?;
    Ok(found.map(|f| format!("{f}; nothing was committed")))
}

/// The cause that refuses the commit of the worktree `tree` when it holds a git repository of
/// its own (a `.git` below its root, at any depth, of any kind) or `branch` committed a gitlink
/// since `since`, that the main checkout does not declare as a submodule: git would read its
/// configuration and run what it names. Checked before any other check runs git on the tree;
/// `Err` when the tree cannot be walked (fail closed).
pub(crate) fn nested_repositories(
    (tree, branch, since): (&std::path::Path, &str, Option<&str>),
) -> Result<Option<String>, String> {
    let found = git::nested_in(tree, branch, since).map_err(|e| {
        format!(
            "cannot check `{}` for nested git repositories (nothing is committed unchecked): {e}",
            tree.display()
        )
    })?;
    let (special, found): (Vec<String>, Vec<String>) =
        found.into_iter().partition(|f| git::is_special_git_file(f));
    if !special.is_empty() {
        return Ok(Some(format!(
            "a FIFO, socket or device where git reads a file of its own: {} (git would block opening it; nothing was committed)",
            crate::diagnostic::path_list(&special, 5)
        )));
    }
    Ok((!found.is_empty()).then(|| {
        format!(
            "nested git repository: {} (a git repository inside the worktree that the main checkout does not declare as a submodule; git would run what its configuration names; nothing was committed)",
            crate::diagnostic::path_list(&found, 5)
        )
    }))
}

/// What the commit of the worktree `tree` says of its submodules (`submodule libs/x: abc1234 ->
/// def5678`, one line each, where an agent committed inside one), or the cause that refuses the
/// commit: uncommitted changes inside a submodule, or a state that cannot be read.
pub(super) fn submodule_lines(
    plan: &PlanCtx,
    tree: &std::path::Path,
) -> Result<Vec<String>, String> {
    let changes = git::submodule_changes(tree).map_err(|e| {
        format!(
            "cannot check the submodules of `{}` (nothing is committed unchecked): {e}",
            tree.display()
        )
    })?;
    // With `parallel` > 1 the plan worktree's other agents may be writing inside a submodule
    // for tasks of their own: their changes stay there (nothing resets that worktree).
    let shared = plan.entry.parallel > 1 && tree == plan.worktree.as_path();
    if changes.dirty.is_empty() || shared {
        return Ok(changes.moved);
    }
    let mut cause = format!(
        "uncommitted changes inside submodules (committing the superproject would lose them; commit them inside the submodule): {}",
        crate::diagnostic::path_list(&changes.dirty, 10)
    );
    if plan.sandbox.rules().is_some() {
        cause.push_str(
            " (a confined agent cannot commit inside a submodule: its git directory, the main repository's `.git/modules/<name>`, is not writable; add it to `sandbox_write` or run the agent unconfined)",
        );
    }
    Err(cause)
}

/// `message` with the submodule lines of its commit as a paragraph of its body.
fn with_submodule_lines(message: &str, lines: &[String]) -> String {
    if lines.is_empty() {
        return message.to_string();
    }
    format!("{}\n\n{}\n", message.trim_end(), lines.join("\n"))
}

/// Where task `id`'s work is (its task worktree, else the plan's), the branch orch commits it on
/// and where it started: a task branch's fork from the plan branch, else `base`.
fn work_of<'a>(
    plan: &'a PlanCtx,
    id: &str,
    base: Option<&'a str>,
) -> (std::path::PathBuf, String, Option<&'a str>) {
    match plan.task_worktree(id) {
        Some(tree) => (tree, git::task_branch(plan.name(), id), Some(plan.branch())),
        None => (plan.worktree.clone(), plan.branch().to_owned(), base),
    }
}

/// The one check of a sparse plan's work, whoever commits it (a task's settlement, a best-of-N
/// candidate, a plan agent's `done` through the supervisor or `orch task done` without one):
/// the cause that refuses the commit when the worktree `tree` has files outside `paths` (`wrote
/// outside the plan's paths: lib/x.rs (the plan's paths: svc/a)`); `Err`, naming the check and
/// git's error, when that cannot be checked (fail closed: nothing is committed unchecked).
pub(crate) fn outside_paths(
    tree: &std::path::Path,
    paths: &[String],
    since: Option<&str>,
) -> Result<Option<String>, String> {
    if paths.is_empty() {
        return Ok(None);
    }
    let files = git::outside_cone(tree, paths, 5, since).map_err(|e| {
        format!(
            "cannot check for writes outside the plan's paths in `{}` (nothing is committed unchecked): {e}",
            tree.display()
        )
    })?;
    Ok((!files.is_empty()).then(|| {
        format!(
            "wrote outside the plan's paths: {} (the plan's paths: {})",
            files.join(", "),
            paths.join(", ")
        )
    }))
}

/// The failure's cause when task `t`'s changes in the worktree `tree` (best of N: an attempt's
/// own) touch a protected path its plan's `allow_protected` does not allow: `changed protected
/// paths: tests/x.rs`; or put a symbolic link at one, or at a directory above one, whatever is
/// allowed: `a symbolic link at a protected path: plans.toml …`. Protected: what a later run
/// trusts, always ([`crate::manifest::Guarded`]: `plans.toml`, the plan files, the prompt
/// templates, `.gitmodules`, the clients' settings, and the program and script of every command
/// line, found in the plan's base or made by the task); and the plan's `protect` globs. The
/// other files a command line names (the data handed to it: `data/expected.txt` of
/// `sh ci/compare.sh data/expected.txt`) are the task's to change unless `protect` names them.
/// Only the manifest exempts a path (`allow_protected`, a person's word), never the task's
/// text: an agent wrote it or could have shaped it (a plan file it landed, a review round that
/// quotes its diff).
/// Its changes: those not committed and, with `since`, those
/// `branch` committed since it met `since` (an agent that commits its work itself).
///
/// `Err` (the cause, naming the check and git's error) when git cannot answer: nothing is
/// committed unchecked.
pub(super) fn protected_changes_in(
    plan: &PlanCtx,
    t: &crate::plan::Task,
    (_, branch, since): (&std::path::Path, &str, Option<&str>),
    dirt: &git::Dirt<'_>,
) -> Result<Option<String>, String> {
    let protection = Protection {
        guarded: &plan.guarded,
        protect: plan.entry.protect.as_ref(),
        allowed: plan.entry.allow_protected.as_ref(),
        base: &plan.base,
        repo_root: &plan.repo_root,
    };
    protected_changes(&protection, t, (dirt, branch, since))
}

/// What the protected-paths check of a task's work looks at: what a later run trusts
/// (`guarded`), the plan's `protect` globs, its `allow_protected` globs (what its tasks may
/// change all the same), the commit where the plan's work started (`base`; empty or
/// unreadable: the worktree's HEAD) and the repository's root.
pub(crate) struct Protection<'a> {
    pub(crate) guarded: &'a crate::manifest::Guarded,
    pub(crate) protect: Option<&'a crate::manifest::Protect>,
    pub(crate) allowed: Option<&'a crate::manifest::Protect>,
    pub(crate) base: &'a str,
    pub(crate) repo_root: &'a std::path::Path,
}

/// [`protected_changes_in`] for a caller without a run's plan context (`orch task done` of a
/// plan-mode agent that no supervisor answers): the same check, the same causes.
pub(crate) fn protected_changes(
    p: &Protection<'_>,
    t: &crate::plan::Task,
    (dirt, branch, since): (&git::Dirt<'_>, &str, Option<&str>),
) -> Result<Option<String>, String> {
    let tree = dirt.dir();
    let cannot = |e: &dyn std::fmt::Display| {
        format!(
            "cannot commit task `{}`: cannot check the protected paths in `{}` (nothing is committed unchecked): {e}",
            t.id,
            tree.display()
        )
    };
    // orch's own directories (its state, worktrees, logs; a file or link at `.orch`) and the
    // files it copied in: never committed, whatever is allowed or the ignore rules say.
    let own = git::own_changes_in(dirt, (branch, since), (&p.guarded.own, &p.guarded.copied))
        .map_err(|e| cannot(&e))?;
    if !own.is_empty() {
        return Ok(Some(format!(
            "changed orch's own directories or the files it copies into each worktree: {} (its state, worktrees and logs; `copy`, `warm`, `.worktreeinclude`; orch never commits a change there, whatever is allowed)",
            own.join(", ")
        )));
    }
    // A person's exemption in the manifest; nothing the task's text says.
    let allowed = |path: &str| p.allowed.is_some_and(|a| a.matches(path));
    let committed = match since {
        Some(since) => git::changed_files(tree, branch, since).map_err(|e| cannot(&e))?,
        None => Vec::new(),
    };
    // The exact paths: a status of those alone, whatever the tree's size.
    let found = git::protected_at(p.guarded, tree, p.base, p.repo_root).map_err(|e| cannot(&e))?;
    let links = git::new_links_at(dirt, p.base, &found.trusted).map_err(|e| cannot(&e))?;
    if !links.is_empty() {
        return Ok(Some(format!(
            "a symbolic link at a protected path: {} (orch never takes a link there, whatever `allow_protected` says)",
            links.join(", ")
        )));
    }
    let files = git::new_files_above(tree, p.base, &found.trusted).map_err(|e| cannot(&e))?;
    if !files.is_empty() {
        return Ok(Some(format!(
            "a file at a directory above a protected path: {} (orch never takes one there, whatever `allow_protected` says)",
            files.join(", ")
        )));
    }
    // The data a gate is handed (`tests/test_x.py` of `pytest tests/test_x.py`) is the task's
    // work: a task may extend the test a check runs. `protect` names what else is kept.
    let exact = &found.trusted;
    let mut hit: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut add = |found: &mut dyn Iterator<Item = String>| {
        for c in found.filter(|c| !allowed(c)) {
            if seen.insert(c.clone()) {
                hit.push(c);
            }
        }
    };
    // A file orch copied in (`.env` of `copy`) that the worktree shows changed is never staged:
    // no change of the work (what the branch committed there was refused above).
    let copied = |c: &String| !crate::manifest::own_path(&p.guarded.copied, c);
    let dirty = dirt.among(exact).map_err(|e| cannot(&e))?;
    let cover = git::Cover::new(exact);
    add(&mut dirty
        .into_iter()
        .filter(copied)
        .chain(committed.iter().filter(|c| cover.covers(c)).cloned()));
    // `protect`'s globs: every path of the status.
    if let Some(globs) = p.protect
        && !globs.patterns.is_empty()
    {
        let changed = dirt.paths().map_err(|e| cannot(&e))?;
        add(&mut changed
            .into_iter()
            .filter(copied)
            .chain(committed)
            .filter(|c| globs.matches(c)));
    }
    Ok((!hit.is_empty()).then(|| {
        let data: Vec<&str> = hit
            .iter()
            .filter(|h| found.unknown_grammar.contains(h))
            .map(String::as_str)
            .collect();
        let mut cause = format!("changed protected paths: {}", hit.join(", "));
        if !data.is_empty() {
            cause.push_str(&format!(
                " ({} {}: a gate's or hook's command line hands {} to a program whose grammar orch does not know, which may run it; if it is data, name it in the plan's `allow_protected`)",
                data.join(", "),
                if data.len() == 1 { "is protected" } else { "are protected" },
                if data.len() == 1 { "it" } else { "them" },
            ));
        }
        cause
    }))
}

/// Records a failed attempt; saves what it left in the worktree (one agent per worktree only:
/// with `parallel` > 1 the others' work is in the same tree) and resets the tree.
fn fail(
    plan: &PlanCtx,
    id: &str,
    (attempt, base): (u32, Option<&str>),
    error: &str,
    record: bool,
) -> Outcome {
    let saved = save_leftovers(plan, id, (attempt, base), "failed");
    if record {
        let _ = record_failure(plan, id, error);
    }
    Outcome::Failed {
        error: error.to_string(),
        saved,
    }
}

fn interrupted(
    plan: &PlanCtx,
    id: &str,
    (attempt, base): (u32, Option<&str>),
    note: &str,
) -> Outcome {
    save_leftovers(plan, id, (attempt, base), "interrupted");
    record_reset(plan, id, note.to_string());
    Outcome::Interrupted
}

/// Records task `id` put back to pending with `note` (best effort: a failed record leaves the
/// task as the next run's recovery finds it).
fn record_reset(plan: &PlanCtx, id: &str, note: String) {
    let opts = TransitionOptions {
        force: true,
        note: Some(note),
        ..TransitionOptions::default()
    };
    let _ = plan.update_entry(id, |doc| {
        status::apply(doc, id, Transition::Reset, &opts, Utc::now())
    });
}

/// Saves the worktree's uncommitted changes under `refs/orch/attempts/<plan>/<id>/<n>` and
/// cleans the tree, so the next attempt starts from the last commit and nothing is lost; with
/// `base` (the plan branch's tip when the attempt started), what the attempt committed on the
/// plan branch itself is taken off it and kept under the same ref.
///
/// A task that ran in a task worktree: what it left there is saved the same way, its pool slot
/// freed and its branch deleted (the next attempt starts from the plan branch's tip).
fn save_leftovers(
    plan: &PlanCtx,
    id: &str,
    (attempt, base): (u32, Option<&str>),
    why: &str,
) -> Option<String> {
    let refname = git::attempt_ref(plan.name(), id, attempt);
    let message = format!(
        "{} {id}: {why} attempt {attempt} (saved by orch)",
        plan.name()
    );
    if let Some(tree) = plan.task_worktree(id) {
        git::pin_worktree(&tree, &git::task_branch(plan.name(), id)).ok()?;
        return git::retire_task_tree(&plan.task_tree(id), Some((&refname, &message)))
            .ok()
            .flatten();
    }
    if plan.entry.parallel > 1 {
        return None;
    }
    let _git = plan.git_lock.lock().ok()?;
    git::pin_worktree(&plan.worktree, plan.branch()).ok()?;
    // Commits of the agent's own over the limits are taken off before anything is checked out
    // (red team 9: a plumbing-made commit of 100,000 files was written out by the reset below,
    // then removed, minutes of orch's own work and its whole size on disk).
    if let Some(base) = base {
        let limits = plan.entry.size_limits;
        match git::take_off_commits_over(&plan.worktree, (plan.branch(), base), &refname, limits) {
            Ok(true) => return Some(refname),
            Ok(false) => {}
            Err(_) => return None,
        }
    }
    let saved = git::save_and_reset_within(
        &plan.worktree,
        &refname,
        &message,
        git::SaveLimits::dropping(plan.entry.size_limits),
    )
    .ok()?;
    // What the attempt committed on the plan branch itself goes with it (kept under the same ref).
    let saved = match base {
        Some(base) => {
            git::undo_attempt_commits(&plan.worktree, (plan.branch(), base), &refname, saved)
                .ok()?
        }
        None => saved,
    };
    saved.map(|_| refname)
}

/// A plan-mode agent ended: commit the tasks the core named (`commit`), put back those it left
/// started (`reset`), end as the core decided (`end`).
fn settle_plan_agent(
    plan: &PlanCtx,
    (attempt, base): (u32, Option<&str>),
    (commit, reset): (&[usize], &[usize]),
    end: &PlanAgentEnd,
) -> Outcome {
    for t in commit.iter().filter_map(|&i| plan.plan.tasks.get(i)) {
        // Its work refused (the plan's paths, protected paths, submodules): nothing committed.
        let (tree, branch, since) = work_of(plan, &t.id, base);
        if let Some(cause) = commit_refused(plan, t, (&tree, &branch, since)) {
            let saved = save_leftovers(plan, "plan", (attempt, base), "failed");
            return Outcome::Failed {
                error: format!("task `{}`: {cause}", t.id),
                saved,
            };
        }
        if let Err(error) = commit_task(plan, &t.id, &t.description, true, Changes::Take) {
            return Outcome::Failed {
                error: error.to_string(),
                saved: None,
            };
        }
    }
    let running: Vec<&str> = reset
        .iter()
        .filter_map(|&t| plan.plan.tasks.get(t))
        .map(|t| t.id.as_str())
        .collect();
    if !running.is_empty() {
        let opts = TransitionOptions {
            force: true,
            ..TransitionOptions::default()
        };
        let _ = plan.update(|doc: &mut StatusDoc| {
            for id in &running {
                status::apply(doc, id, Transition::Reset, &opts, Utc::now())?;
            }
            Ok(())
        });
    }
    match end {
        PlanAgentEnd::Done => Outcome::Done { commit: None },
        PlanAgentEnd::Interrupted => Outcome::Interrupted,
        PlanAgentEnd::Failed(error) => Outcome::Failed {
            error: error.clone(),
            saved: save_leftovers(plan, "plan", (attempt, base), "failed"),
        },
    }
}
