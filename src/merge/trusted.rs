//! Before a plan lands: what its branch changes of what a later run trusts
//! ([`crate::manifest::Guarded`]: `plans.toml`, the plan files, the prompt templates,
//! `.gitmodules`, the clients' settings, the program and script of every command line). A change
//! the plan's `allow_protected` does not allow is left to a person (`orch merge
//! --allow-protected` after a review, or the path added to `allow_protected`): only a person's
//! word exempts a path, never a task's text (an agent wrote it or could have shaped it); a
//! symbolic link at one of those paths, or at a directory above one, is never landed;
//! nor is anything at or below orch's own directories (`Guarded::own`: its state, worktrees and
//! logs, or a file or link at `.orch`), whoever allows it.
//!
//! One rule for every landing: a plan alone ([`refusal_of`] of its landing, from `orch merge`'s run) and a group of
//! plans of several repositories ([`refusal_of`], from
//! [`crate::merge::together::land::Ctx::land`]) are both checked here, each plan's branch in its
//! own repository against what a later run trusts there ([`Landing`]).

use std::path::{Path, PathBuf};

use crate::error::{CliError, CliResult};
use crate::manifest::{Guarded, Manifest, PlanEntry};
use crate::workspace::Workspace;

/// One plan branch about to land: the plan, and the repository and target it lands in.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Landing<'a> {
    pub(crate) entry: &'a PlanEntry,
    /// The repository's name in messages (`None`: a landing of the home repository alone,
    /// which names none, as it always did).
    pub(crate) repo: Option<&'a str>,
    /// The repository's work dir.
    pub(crate) root: &'a Path,
    pub(crate) target: &'a str,
}

/// What one plan's branch changes of what a later run trusts, and that its `allow_protected`
/// does not allow.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Unallowed {
    pub(crate) plan: String,
    pub(crate) branch: String,
    /// Its repository, when the landing names one.
    pub(crate) repo: Option<String>,
    pub(crate) root: PathBuf,
    pub(crate) target: String,
    /// Changed protected paths the plan's `allow_protected` does not allow.
    pub(crate) files: Vec<String>,
    /// Links at a protected path or above one: refused whatever is allowed.
    pub(crate) links: Vec<String>,
    /// Paths at or below orch's own directories, or a file or link at a directory above one
    /// ([`Guarded::own`]): refused whatever a person allows.
    pub(crate) own: Vec<String>,
}

impl Unallowed {
    /// `plan `p`` or `plan `p` of repository `api``.
    fn who(&self) -> String {
        match &self.repo {
            Some(r) => format!("plan `{}` of repository `{r}`", self.plan),
            None => format!("plan `{}`", self.plan),
        }
    }
}

/// What a later run trusts in the repository of `l`: the manifest's [`Guarded`] resolved
/// there (its own files where they lie in that repository, `.gitmodules` and the clients'
/// settings in every one, every command line's program and script), every plan's tasks' own
/// checks (this plan's first), and `verify_all` as it runs in the directory of every candidate
/// (`<dir>/<repo>/…`: its word `<repo>/x` names `x` of repository `<repo>`).
fn guarded_for(l: &Landing<'_>, ws: &Workspace, manifest: &Manifest) -> Guarded {
    let plan = ws
        .plans
        .iter()
        .find(|lp| lp.name == l.entry.name)
        .map(|lp| &lp.plan);
    let g = plan
        .into_iter()
        .chain(ws.plans.iter().map(|lp| &lp.plan))
        .fold(manifest.guarded(l.root, Some(l.entry)), |g, p| {
            g.with_task_checks(p)
        });
    with_verify_all(g, manifest, l.repo.unwrap_or(crate::manifest::HOME_REPO))
}

/// `g` with `verify_all` as it runs in the directory of every candidate, seen from repository
/// `repo` (`<dir>/<repo>/…`: its word `<repo>/x` names `x` of that repository).
pub(crate) fn with_verify_all(mut g: Guarded, manifest: &Manifest, repo: &str) -> Guarded {
    if let Some(all) = &manifest.defaults.verify_all {
        let prefix = format!("{repo}/");
        let here: Vec<String> = all
            .iter()
            .map(|w| {
                w.strip_prefix(&prefix)
                    .map_or_else(|| w.clone(), str::to_string)
            })
            .collect();
        if !g.commands.contains(&here) {
            g.commands.push(here);
        }
    }
    g
}

/// [`Unallowed`] of each of `landings` whose branch changes what a later run trusts in its
/// repository where its plan's `allow_protected` does not allow it, or puts a link there;
/// `Err` (naming the plan, its repository and git's error) when that cannot be read: nothing is
/// landed unchecked.
pub(crate) fn unallowed_in(
    landings: &[Landing<'_>],
    ws: &Workspace,
    manifest: &Manifest,
) -> Result<Vec<Unallowed>, String> {
    let mut out = Vec::new();
    for l in landings {
        let guarded = guarded_for(l, ws, manifest);
        let where_ = l
            .repo
            .map_or_else(String::new, |r| format!(" of repository `{r}`"));
        let changes = crate::git::changed_since_fork(l.root, l.target, &l.entry.branch, &guarded)
            .map_err(|why| {
            format!(
                "cannot check whether plan `{}`{where_} changes what a later run trusts: {why}",
                l.entry.name
            )
        })?;
        // A person's exemption in the manifest; nothing a task's text says.
        let allowed = |f: &str| {
            l.entry
                .allow_protected
                .as_ref()
                .is_some_and(|a| a.matches(f))
        };
        let files: Vec<String> = changes
            .changed
            .into_iter()
            .filter(|f| !allowed(f) && !changes.links.contains(f))
            .collect();
        if !files.is_empty() || !changes.links.is_empty() || !changes.own.is_empty() {
            out.push(Unallowed {
                plan: l.entry.name.clone(),
                branch: l.entry.branch.clone(),
                repo: l.repo.map(str::to_string),
                root: l.root.to_path_buf(),
                target: l.target.to_string(),
                files,
                links: changes.links,
                own: changes.own,
            });
        }
    }
    Ok(out)
}

/// Refuses (exit 4, before anything moves) landings where a plan's branch changes what a later
/// run trusts that its `allow_protected` does not allow (unless `allow_protected`: a person
/// reviewed it, `orch merge --allow-protected`), or puts a symbolic link there (always): each of
/// `landings` checked in its own repository, the refusal naming plan (and repository) and file;
/// the hint says how to review it.
pub(crate) fn refusal_of(
    landings: &[Landing<'_>],
    ws: &Workspace,
    manifest: &Manifest,
    allow_protected: bool,
) -> CliResult<()> {
    long_history_refused(landings)?;
    large_files_refused(landings)?;
    git_dirs_refused(landings)?;
    foreign_history_refused(landings, manifest)?;
    let found = unallowed_in(landings, ws, manifest)
        .map_err(|why| CliError::new(crate::exit::REFUSED, anyhow::anyhow!("{why}")))?;
    let file = manifest
        .path
        .file_name()
        .map_or_else(|| "plans.toml".into(), |f| f.to_string_lossy());
    refuse(&found, allow_protected, &file)
}

/// Refuses (exit 4, before anything moves, and before the checks that read each commit)
/// landings where a plan's branch has more commits the target lacks than a landing examines
/// ([`crate::git::LANDING_COMMITS`]): counted up to one more, so the refusal costs what that
/// many commits cost, however long the history.
fn long_history_refused(landings: &[Landing<'_>]) -> CliResult<()> {
    let cap = crate::git::LANDING_COMMITS;
    let found = found_in(
        landings,
        |who| format!("cannot count the commits {who} lands"),
        |l| {
            crate::git::commits_past(l.root, l.target, &l.entry.branch, cap).map(|over| {
                over.map(|_| {
                    format!(
                        "more than {cap} commits that `{}` lacks, more than a landing examines",
                        l.target
                    )
                })
            })
        },
    )?;
    refused_if(found, "", "; nothing was merged").map_err(|e| {
        e.with_hint(
            "squash the branch's commits (`git reset --soft` to where it left the target, then one commit), then merge again",
        )
    })
}

/// Refuses (exit 4, before anything moves) landings where a plan's branch brings a blob larger
/// than its `max_file_size` (in any of its commits since it left the target: a merge lands their
/// history too), whoever made it: an agent, a plan-mode agent's commits, a person. The sizes
/// are read from the object headers, never the contents; `Err` when they cannot be read.
fn large_files_refused(landings: &[Landing<'_>]) -> CliResult<()> {
    let found = found_in(
        landings,
        |who| format!("cannot read the sizes of what {who} lands"),
        |l| {
            crate::git::large_blobs_since_fork(
                l.root,
                l.target,
                &l.entry.branch,
                l.entry.size_limits.file,
            )
            .map(|large| large.map(|large| large.to_string()))
        },
    )?;
    refused_if(found, "", "; nothing was merged").map_err(|e| {
        e.with_hint(
            "take the file off the plan branch's history (or raise the plan's `max_file_size` in plans.toml if it belongs there), then merge again",
        )
    })
}

/// Refuses (exit 4, before anything moves) landings where a plan's branch brings a git
/// directory under any name (a bare repository: `HEAD`, `objects/`, `refs/`; or `HEAD` and
/// `commondir`) that its fork point did not have: landed, any git run inside it (a person's, their
/// shell prompt's) would read its config and run what it names, unconfined. Whoever allows it:
/// `--allow-protected` does not. From the trees' names alone; `Err` when they cannot be read.
fn git_dirs_refused(landings: &[Landing<'_>]) -> CliResult<()> {
    let found = found_in(
        landings,
        |who| format!("cannot check what {who} lands for nested git repositories"),
        |l| {
            crate::git::git_dirs_since_fork(l.root, l.target, &l.entry.branch)
                .map(|dirs| (!dirs.is_empty()).then(|| crate::diagnostic::path_list(&dirs, 5)))
        },
    )?;
    refused_if(
        found,
        "nested git repository: ",
        " (a git directory under another name than `.git`; any git run inside it would run what its configuration names); nothing was merged",
    )
    .map_err(|e| {
        e.with_hint(
            "take the directory off the plan branch (`git rm -r --cached DIR` in its worktree, then commit), then merge again",
        )
    })
}

/// Refuses (exit 4, before anything moves) landings where a plan's branch holds commits of
/// another plan's branch that the target does not ([`crate::git::carries_unlanded`]: a `git merge
/// -s ours` of it): landed, they would be in the target's history without their changes, and
/// that plan would look merged, its branch and worktree then removed by `orch clean` (red team
/// 14). Not refused: a plan's upstream (`depends_on`, direct or not: orch's own sync brings its
/// work), and a plan that lands before it in the same landing. Whoever allows it:
/// `--allow-protected` does not.
fn foreign_history_refused(landings: &[Landing<'_>], manifest: &Manifest) -> CliResult<()> {
    let upstream = |name: &str| -> std::collections::BTreeSet<String> {
        let mut seen = std::collections::BTreeSet::new();
        let mut todo = vec![name.to_string()];
        while let Some(p) = todo.pop() {
            if let Some(e) = manifest.plans.iter().find(|e| e.name == p) {
                for d in &e.depends_on {
                    if seen.insert(d.plan.clone()) {
                        todo.push(d.plan.clone());
                    }
                }
            }
        }
        seen
    };
    let mut found = Vec::new();
    for (i, l) in landings.iter().enumerate() {
        let before: Vec<&str> = landings[..i]
            .iter()
            .map(|b| b.entry.name.as_str())
            .collect();
        let ups = upstream(&l.entry.name);
        for other in manifest.plans.iter().filter(|o| {
            o.name != l.entry.name
                && o.repo == l.entry.repo
                && !ups.contains(&o.name)
                && !before.contains(&o.name.as_str())
        }) {
            let carries = crate::git::carries_unlanded(
                l.root,
                l.target,
                (&l.entry.branch, &other.branch),
            )
            .map_err(|e| {
                CliError::new(
                    crate::exit::REFUSED,
                    anyhow::anyhow!(
                        "cannot tell whether plan `{}`'s branch holds commits of plan `{}`: {e}",
                        l.entry.name,
                        other.name
                    ),
                )
            })?;
            if carries {
                found.push(format!(
                    "plan `{}` (branch `{}`) holds commits of plan `{}` (branch `{}`) that `{}` does not",
                    l.entry.name, l.entry.branch, other.name, other.branch, l.target
                ));
            }
        }
    }
    refused_if(
        found,
        "",
        " (a merge of another plan's branch: landed, its commits would be in the target without their changes, and that plan would look merged); nothing was merged",
    )
    .map_err(|e| {
        e.with_hint(
            "land the other plan first (`orch merge OTHER`), or declare it in the plan's `depends_on`, or take the merge off the plan branch; then merge again",
        )
    })
}

/// What `check` finds in each of `landings` (`None`: nothing), each as `<plan> (branch `…`):
/// <found>`; a landing it cannot check refuses all (exit 4), `cannot(who)` saying so.
fn found_in(
    landings: &[Landing<'_>],
    cannot: impl Fn(&str) -> String,
    check: impl Fn(&Landing<'_>) -> Result<Option<String>, String>,
) -> CliResult<Vec<String>> {
    let mut found = Vec::new();
    for l in landings {
        let who = match l.repo {
            Some(r) => format!("plan `{}` of repository `{r}`", l.entry.name),
            None => format!("plan `{}`", l.entry.name),
        };
        let seen = check(l).map_err(|why| {
            CliError::new(
                crate::exit::REFUSED,
                anyhow::anyhow!("{}: {why}", cannot(&who)),
            )
        })?;
        if let Some(seen) = seen {
            found.push(format!("{who} (branch `{}`): {seen}", l.entry.branch));
        }
    }
    Ok(found)
}

/// The refusal (exit 4) of `found`, between `before` and `after`; none when it is empty.
fn refused_if(found: Vec<String>, before: &str, after: &str) -> CliResult<()> {
    if found.is_empty() {
        return Ok(());
    }
    Err(CliError::new(
        crate::exit::REFUSED,
        anyhow::anyhow!("{before}{}{after}", found.join("; ")),
    ))
}

/// The refusal of `found` (`file`: the manifest's name, where `allow_protected` is written).
fn refuse(found: &[Unallowed], allow_protected: bool, file: &str) -> CliResult<()> {
    let own: Vec<String> = found
        .iter()
        .filter(|u| !u.own.is_empty())
        .map(|u| format!("{} changes {}", u.who(), u.own.join(", ")))
        .collect();
    if !own.is_empty() {
        return Err(CliError::new(
            crate::exit::REFUSED,
            anyhow::anyhow!(
                "{}, inside orch's own directories (its state, worktrees and logs) or over the files it copies into each worktree (`copy`, `warm`, `.worktreeinclude`), which orch never lands, whatever `allow_protected` or `--allow-protected` says; nothing was merged",
                own.join("; ")
            ),
        )
        .with_hint(
            "take those files off the plan branch (`git rm -r --cached` in its worktree, then commit), or move them out of orch's directories",
        ));
    }
    let links: Vec<String> = found
        .iter()
        .filter(|u| !u.links.is_empty())
        .map(|u| format!("{}: {}", u.who(), u.links.join(", ")))
        .collect();
    if !links.is_empty() {
        return Err(CliError::new(
            crate::exit::REFUSED,
            anyhow::anyhow!(
                "a symbolic link at a protected path, or a file at a directory above one, which orch never lands: {}; nothing was merged",
                links.join("; ")
            ),
        )
        .with_hint(
            "replace the link on the plan branch with the file itself, or merge it with git yourself after a review",
        ));
    }
    let files: Vec<&Unallowed> = found.iter().filter(|u| !u.files.is_empty()).collect();
    if files.is_empty() || allow_protected {
        return Ok(());
    }
    let what = files
        .iter()
        .map(|u| format!("{} changes {}", u.who(), u.files.join(", ")))
        .collect::<Vec<_>>()
        .join("; ");
    let review = files
        .iter()
        .map(|u| {
            let at = match &u.repo {
                Some(_) => format!("-C {} ", u.root.display()),
                None => String::new(),
            };
            format!(
                "`git {at}diff {}...{} -- {}`",
                u.target,
                u.branch,
                u.files.join(" ")
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let plans = files
        .iter()
        .map(|u| u.plan.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    // Where a person says it for good: the plan's key in the manifest.
    let allow = files
        .iter()
        .map(|u| format!("`allow_protected` of plan `{}`", u.plan))
        .collect::<Vec<_>>()
        .join(", ");
    Err(CliError::new(
        crate::exit::REFUSED,
        anyhow::anyhow!(
            "{what}, which a later run trusts: it is left to a person (`orch merge {plans} --allow-protected` after a review, or add it to {allow} in {file}); nothing was merged"
        ),
    )
    .with_hint(format!(
        "review the change ({review}), then `orch merge {plans} --allow-protected`, or add it to {allow} in {file}"
    )))
}
