//! One resolution, end to end: the conflicted merge written by orch, the resolution worktree,
//! the agent, the gates, the merge commit on the plan branch (or the attempt saved).

use std::path::{Path, PathBuf};

use git2::{Commit, Oid, Repository, Tree};

use super::gates::{self, Entry, MAX_EXTRA};
use super::prompt::{self, PromptInput, Reason};
use super::{AgentJob, EXPLANATION, RESOLVE_PREFIX, ResolveNote, Resolver};
use crate::error::{CliError, exit};
use crate::git::{self, Check, GitTarget, TreeMerge};
use crate::manifest::{Manifest, MergeStrategy, PlanEntry};
use crate::merge::MergeError;
use crate::merge::build::{Built, Subject, branch_commit, build, signature, target_commit};
use crate::merge::interrupt;
use crate::merge::staging::Staging;
use crate::merge::target::{Moved, move_target};
use crate::merge::verify::{Verdict, Verify, run_verify};

/// Why a plan is handed to its resolver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Why {
    /// A textual conflict with the target.
    Conflict,
    /// `verify` failed on a clean merge (`resolve_verify`): the end of its output.
    Verify(String),
}

impl Why {
    fn as_str(&self) -> &'static str {
        match self {
            Self::Conflict => "conflict",
            Self::Verify(_) => "verify_failed",
        }
    }
}

/// What to resolve.
pub(crate) struct ResolveRequest<'a> {
    pub repo_root: &'a Path,
    pub target: &'a str,
    pub plan: &'a str,
    pub branch: &'a str,
    pub base: Option<&'a str>,
    pub strategy: MergeStrategy,
    pub verify: Option<&'a Verify>,
    pub why: Why,
    /// The plan's tasks: (`id: description`, description and body), to name those that name a
    /// conflicted file.
    pub tasks: Vec<(String, String)>,
    /// The plan's status file: what its tasks spent, against its `budget`.
    pub status_path: Option<PathBuf>,
}

/// How a resolution ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// The merge commit is on the plan branch.
    Resolved {
        commit: String,
        agent: String,
        files: Vec<String>,
        /// The tree of the merge into the target that `verify` passed on (none without verify).
        verified_tree: Option<String>,
    },
    /// Nothing moved; `saved` names the attempt's ref when the agent left something.
    Failed {
        cause: String,
        agent: String,
        files: Vec<String>,
        saved: Option<String>,
    },
}

/// The conflicted state orch writes for the resolver.
struct Conflicted<'r> {
    ours: Commit<'r>,
    theirs: Commit<'r>,
    /// The merge with git's markers (conflict), or the clean merge (verify).
    tree: Tree<'r>,
    files: Vec<String>,
}

fn conflicted<'r>(
    repo: &'r Repository,
    req: &ResolveRequest,
) -> Result<Result<Conflicted<'r>, String>, MergeError> {
    let ours = branch_commit(repo, req.branch)?.ok_or_else(|| MergeError::BranchMissing {
        branch: req.branch.to_string(),
    })?;
    let theirs = target_commit(repo, req.target)?;
    let read = |what: &str| {
        let what = what.to_string();
        move |source| MergeError::Read { what, source }
    };
    let (tree, files) = match &req.why {
        Why::Conflict => match git::marked_conflict(repo, ours.id(), theirs.id())
            .map_err(read("the conflicted merge"))?
        {
            Some(m) => (m.tree, m.paths),
            None => {
                return Ok(Err(format!(
                    "git could not write the conflicted merge of `{}` into `{}` (git 2.38 or later is needed), or it merges cleanly now",
                    req.target, req.branch
                )));
            }
        },
        Why::Verify(_) => {
            match git::merge_commits(repo, &ours, &theirs, Check::Always)
                .map_err(read("the merge"))?
            {
                TreeMerge::Clean(mut index) => (
                    index.write_tree_to(repo).map_err(read("the merged tree"))?,
                    Vec::new(),
                ),
                TreeMerge::Conflict(paths) => {
                    return Ok(Err(format!(
                        "`{}` now conflicts with `{}` in {}",
                        req.branch,
                        req.target,
                        paths.join(", ")
                    )));
                }
            }
        }
    };
    let tree = repo.find_tree(tree).map_err(read("the merged tree"))?;
    Ok(Ok(Conflicted {
        ours,
        theirs,
        tree,
        files,
    }))
}

/// Why plan `entry`'s `budget` is reached by what its tasks spent (their `orchUsage` in the
/// status file at `status_path`), if it is.
fn budget_reached(entry: &PlanEntry, status_path: Option<&Path>) -> Option<String> {
    let doc = crate::status::load(status_path?).ok().flatten()?;
    let used = doc
        .entries()
        .filter_map(|e| e.orch_usage.as_ref())
        .fold(crate::agent_output::Usage::default(), |a, u| {
            a.plus(&u.usage())
        });
    entry
        .budget
        .reached(used.cost_micro_usd.unwrap_or(0), used.tokens())
}

/// The files no resolution may change: orch's own configuration ([`crate::manifest::Guarded`],
/// the files its command lines name in the plan's tree) and the plan's `protect`.
fn protected(
    manifest: &Manifest,
    entry: &PlanEntry,
    repo_root: &Path,
    tree: &Tree,
) -> impl Fn(&str) -> bool {
    let guarded = manifest.guarded(repo_root, Some(entry));
    let mut files = guarded.files;
    for argv in &guarded.commands {
        files.extend(git::files_named(argv, tree, repo_root, repo_root));
    }
    let protect = entry.protect.clone();
    move |p: &str| files.iter().any(|f| f == p) || protect.as_ref().is_some_and(|g| g.matches(p))
}

/// The next attempt number of plan `plan`'s resolutions: one past the highest saved, or left
/// by a resolution that was killed (its notes directory, `<state_dir>/.resolve/<plan>-<n>`).
fn next_attempt(repo: &Repository, manifest: &Manifest, plan: &str) -> u32 {
    let prefix = git::attempt_ref(plan, "resolve", 0);
    let prefix = prefix.trim_end_matches('0');
    let mut n = 0;
    if let Ok(refs) = repo.references_glob(&format!("{prefix}*")) {
        for r in refs.flatten() {
            if let Some(k) = r
                .name()
                .ok()
                .and_then(|name| name.strip_prefix(prefix))
                .and_then(|k| k.parse::<u32>().ok())
            {
                n = n.max(k);
            }
        }
    }
    let notes = notes_dir(manifest, plan, 0);
    if let (Some(dir), Some(name)) = (notes.parent(), notes.file_name().and_then(|f| f.to_str()))
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        let stem = name.trim_end_matches('0');
        for e in entries.flatten() {
            if let Some(k) = e
                .file_name()
                .to_str()
                .and_then(|f| f.strip_prefix(stem))
                .and_then(|k| k.parse::<u32>().ok())
            {
                n = n.max(k);
            }
        }
    }
    n + 1
}

/// Where the agent's explanation goes: `<state_dir>/.resolve/<plan>-<n>`.
fn notes_dir(manifest: &Manifest, plan: &str, attempt: u32) -> PathBuf {
    manifest
        .root
        .join(&manifest.defaults.state_dir)
        .join(".resolve")
        .join(format!("{plan}-{attempt}"))
}

/// The prompt for `req` with the conflicted state `c`.
fn prompt_for(
    repo: &Repository,
    manifest: &Manifest,
    entry: &PlanEntry,
    req: &ResolveRequest,
    c: &Conflicted,
    notes: &Path,
) -> String {
    let workdir = manifest
        .root
        .join(&manifest.defaults.worktree_root)
        .join(format!("{RESOLVE_PREFIX}{}", req.plan));
    let names_file = |text: &str| c.files.iter().any(|f| text.contains(f.as_str()));
    let reason = match &req.why {
        Why::Conflict => Reason::Conflict,
        Why::Verify(out) => Reason::Verify(out),
    };
    prompt::render(&PromptInput {
        plan: req.plan,
        branch: req.branch,
        target: req.target,
        workdir: &workdir,
        notes: &notes.join(EXPLANATION),
        reason,
        files: prompt::marked_files(repo, &c.tree, &c.files),
        tasks: req
            .tasks
            .iter()
            .filter(|(_, text)| names_file(text))
            .map(|(line, _)| line.clone())
            .collect(),
        ours: prompt::side_commits(repo, c.ours.id(), c.theirs.id(), &c.files),
        theirs: prompt::side_commits(repo, c.theirs.id(), c.ours.id(), &c.files),
        check: entry.check.as_ref().map(|a| crate::merge::verify::shown(a)),
        verify: req.verify.map(|v| crate::merge::verify::shown(&v.argv)),
    })
}

/// Hands the plan of `req` to its resolver and lands the result on the plan branch when every
/// gate passes. Blocking. An error is orch's own (git); the agent's failures are
/// [`Resolution::Failed`].
pub(crate) fn resolve(res: &Resolver, req: &ResolveRequest) -> Result<Resolution, MergeError> {
    let manifest = &*res.manifest;
    let failed = |agent: &str, files: &[String], cause: String| Resolution::Failed {
        cause,
        agent: agent.to_string(),
        files: files.to_vec(),
        saved: None,
    };
    let Some(entry) = manifest.plan(req.plan) else {
        return Ok(failed(
            "",
            &[],
            format!("plan `{}` is not in the manifest", req.plan),
        ));
    };
    let Some(agent_name) = entry.resolve.clone() else {
        return Ok(failed(
            "",
            &[],
            format!("plan `{}` has no `resolve` agent", req.plan),
        ));
    };
    let Some(agent) = manifest.agents.get(&agent_name).cloned() else {
        return Ok(failed(
            &agent_name,
            &[],
            format!("agent `{agent_name}` is not defined"),
        ));
    };
    if let Some(why) = budget_reached(entry, req.status_path.as_deref()) {
        return Ok(failed(
            &agent_name,
            &[],
            format!("the plan's budget is reached ({why}): its conflict is left to a person"),
        ));
    }
    let repo = git::open(req.repo_root)?;
    let c = match conflicted(&repo, req)? {
        Ok(c) => c,
        Err(cause) => return Ok(failed(&agent_name, &[], cause)),
    };
    let ours_tree = c.ours.tree().map_err(|source| MergeError::Read {
        what: format!("the tree of `{}`", req.branch),
        source,
    })?;
    let is_protected = protected(manifest, entry, req.repo_root, &ours_tree);
    if let Some(p) = c.files.iter().find(|f| is_protected(f)) {
        return Ok(failed(
            &agent_name,
            &c.files,
            format!(
                "`{p}` is protected (orch's configuration or `protect`): its conflict is left to a person"
            ),
        ));
    }
    let write = |source| MergeError::WriteCommit {
        branch: req.branch.to_string(),
        source,
    };
    let sig = signature(&repo).map_err(write)?;
    let c0 = repo
        .commit(
            None,
            &sig,
            &sig,
            &format!(
                "orch: `{}` merged into `{}`, conflict markers left for the resolver",
                req.target, req.branch
            ),
            &c.tree,
            &[&c.ours, &c.theirs],
        )
        .map_err(write)?;
    let attempt = next_attempt(&repo, manifest, req.plan);
    let notes = notes_dir(manifest, req.plan, attempt);
    let prompt = prompt_for(&repo, manifest, entry, req, &c, &notes);
    let log_dir = manifest
        .root
        .join(&manifest.defaults.log_dir)
        .join(req.plan);
    let log = log_dir.join("resolve.log");
    let _ = std::fs::create_dir_all(&log_dir)
        .and_then(|()| crate::links::write(&log_dir.join("resolve.prompt.md"), prompt.as_bytes()));
    crate::links::fresh_dir(&notes).map_err(|e| MergeError::Staging {
        path: notes.clone(),
        reason: e.to_string(),
    })?;
    let worktree_root = manifest.root.join(&manifest.defaults.worktree_root);
    let wt = Staging::create_named(
        req.repo_root,
        &worktree_root,
        &format!("{RESOLVE_PREFIX}{}", req.plan),
        &format!("orch-resolve/{}", req.plan),
        c0,
    )?;
    (res.notify)(&ResolveNote::Started {
        plan: req.plan.to_string(),
        agent: agent_name.clone(),
        files: c.files.clone(),
        why: req.why.as_str().to_string(),
        attempt,
    });
    let job = AgentJob {
        plan: req.plan.to_string(),
        agent_name: agent_name.clone(),
        agent,
        workdir: wt.path().to_path_buf(),
        prompt,
        notes_dir: notes.clone(),
        log,
        timeout: entry.timeout,
        grace: manifest.defaults.grace,
        attempt,
        state_dir: manifest.root.join(&manifest.defaults.state_dir),
        manifest_path: manifest.path.clone(),
    };
    let run = res.runner.run(&job);
    let landed = Gates {
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
                plan: req.plan.to_string(),
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
            let saved = save_attempt(&repo, wt.path(), &c, c0, req.plan, attempt);
            (res.notify)(&ResolveNote::Failed {
                plan: req.plan.to_string(),
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

/// What the gates look at.
struct Gates<'a, 'r> {
    repo: &'r Repository,
    req: &'a ResolveRequest<'a>,
    manifest: &'a Manifest,
    entry: &'a PlanEntry,
    c: &'a Conflicted<'r>,
    workdir: &'a Path,
    notes: &'a Path,
    agent: &'a str,
    attempt: u32,
    is_protected: &'a dyn Fn(&str) -> bool,
}

impl Gates<'_, '_> {
    /// Every gate, then the merge commit on the plan branch: its id (and the tree `verify`
    /// passed on), or the cause.
    fn land(&self, run: &super::AgentRun) -> Result<(String, Option<String>), String> {
        if run.interrupted || interrupt::interrupted() {
            return Err("interrupted; nothing of it was merged".into());
        }
        if let Some(f) = &run.failure {
            return Err(format!("the resolver failed: {f}"));
        }
        let entries = self.files()?;
        let commit = self.commit(&entries)?;
        self.check(commit)?;
        let verified_tree = self.verify(commit)?;
        if interrupt::interrupted() {
            return Err("interrupted; nothing of it was merged".into());
        }
        let log = format!(
            "orch resolve: `{}` merged into `{}`, resolved by agent `{}`",
            self.req.target, self.req.branch, self.agent
        );
        match move_target(
            self.req.repo_root,
            self.req.branch,
            self.c.ours.id(),
            commit,
            &log,
        ) {
            Ok(Moved::Done) => Ok((commit.to_string(), verified_tree.map(|t| t.to_string()))),
            Ok(Moved::TargetMoved) => Err(format!(
                "`{}` moved during the resolution; run it again",
                self.req.branch
            )),
            Err(e) => Err(format!("cannot move `{}`: {e}", self.req.branch)),
        }
    }

    /// The changed files, checked: within the bound, none protected, no marker, no link, no
    /// unmerged entry. Returns what each changed path holds.
    fn files(&self) -> Result<Vec<(String, Entry)>, String> {
        let wrepo = git::open(self.workdir)
            .map_err(|e| format!("cannot open the resolution worktree: {e}"))?;
        let unmerged = wrepo
            .index()
            .map(|i| i.has_conflicts())
            .map_err(|e| format!("cannot read the resolution worktree's index: {e}"))?;
        if unmerged {
            return Err("the resolver left unmerged index entries".into());
        }
        let changed = gates::changed(&wrepo, &self.c.tree)
            .map_err(|e| format!("cannot compare the resolution worktree: {e}"))?;
        let explanation = gates::explanation(self.notes);
        let theirs_tree = self
            .c
            .theirs
            .tree()
            .map_err(|e| format!("cannot read `{}`: {e}", self.req.target))?;
        let ours_tree = self
            .c
            .ours
            .tree()
            .map_err(|e| format!("cannot read `{}`: {e}", self.req.branch))?;
        let mut extras = 0;
        for p in &changed {
            if (self.is_protected)(p) {
                return Err(format!(
                    "the resolver changed `{p}`, which is protected (orch's configuration or `protect`)"
                ));
            }
            if self.c.files.contains(p) {
                continue;
            }
            if !gates::names(&explanation, p) {
                return Err(format!(
                    "the resolver changed `{p}`, which is neither a conflicted file nor named in its explanation"
                ));
            }
            if !gates::in_tree(&ours_tree, p) && !gates::in_tree(&theirs_tree, p) {
                return Err(format!(
                    "the resolver created `{p}`, which is on neither side"
                ));
            }
            extras += 1;
        }
        if extras > MAX_EXTRA {
            return Err(format!(
                "the resolver changed {extras} files beyond the conflicted ones (at most {MAX_EXTRA})"
            ));
        }
        let mut out = Vec::new();
        let mut look: Vec<&String> = self.c.files.iter().chain(changed.iter()).collect();
        look.sort();
        look.dedup();
        for p in look {
            let entry = gates::read_entry(self.workdir, p)?;
            match &entry {
                Entry::Link(_) => {
                    return Err(format!("the resolver left a symbolic link at `{p}`"));
                }
                Entry::Other => {
                    return Err(format!(
                        "the resolver left something other than a file at `{p}`"
                    ));
                }
                Entry::File { bytes, .. } => {
                    if let Some(line) = gates::marker_lines(bytes).first() {
                        return Err(format!(
                            "the resolver left a conflict marker in `{p}` (line {line})"
                        ));
                    }
                }
                Entry::Absent => {
                    if self.c.files.contains(p)
                        && gates::in_tree(&ours_tree, p)
                        && gates::in_tree(&theirs_tree, p)
                    {
                        return Err(format!("the resolver removed `{p}`, which both sides have"));
                    }
                }
            }
            if changed.contains(p) {
                out.push((p.clone(), entry));
            }
        }
        Ok(out)
    }

    /// The merge commit (no ref names it yet): the conflicted tree with the changed files.
    fn commit(&self, entries: &[(String, Entry)]) -> Result<Oid, String> {
        let why = |e: git2::Error| format!("cannot write the merge commit: {e}");
        let tree = gates::tree_with(self.repo, &self.c.tree, entries).map_err(why)?;
        let tree = self.repo.find_tree(tree).map_err(why)?;
        let sig = signature(self.repo).map_err(why)?;
        let files = if self.c.files.is_empty() {
            "a red verify".to_string()
        } else {
            self.c
                .files
                .iter()
                .map(|f| format!("`{f}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let message = format!(
            "Merge `{target}` into `{branch}`, resolved by agent `{agent}`\n\n\
             orch handed {files} to agent `{agent}` (resolution attempt {attempt}); no marker \
             was left, the changed files stayed within the bound{gates}.\n\n\
             Resolved-by: {agent}\nResolve-attempt: {attempt}\n",
            target = self.req.target,
            branch = self.req.branch,
            agent = self.agent,
            attempt = self.attempt,
            gates = match (&self.entry.check, self.req.verify) {
                (Some(_), Some(_)) => ", check and verify passed",
                (Some(_), None) => ", check passed",
                (None, Some(_)) => ", verify passed",
                (None, None) => "",
            }
        );
        self.repo
            .commit(
                None,
                &sig,
                &sig,
                &message,
                &tree,
                &[&self.c.ours, &self.c.theirs],
            )
            .map_err(why)
    }

    /// The plan's `check` on the result, in the resolution worktree reset to it by orch,
    /// confined as `verify` is.
    fn check(&self, commit: Oid) -> Result<(), String> {
        let Some(argv) = &self.entry.check else {
            return Ok(());
        };
        let reset = git::git_command(GitTarget::WorkTree(self.workdir)).and_then(|mut cmd| {
            cmd.args(["reset", "-q", "--hard"])
                .arg(commit.to_string())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .map_err(|e| e.to_string())
        });
        match reset {
            Ok(s) if s.success() => {}
            Ok(s) => {
                return Err(format!(
                    "cannot check out the result for its check: git {s}"
                ));
            }
            Err(e) => return Err(format!("cannot check out the result for its check: {e}")),
        }
        // Nothing the agent left beside the result (ignored files aside) stays.
        let sandbox = match self.req.verify {
            Some(v) => v.sandbox.clone(),
            None => crate::merge::confine::decide(self.manifest, crate::sandbox::supported)
                .map_err(|e| format!("cannot confine the check: {}", e.error))?,
        };
        let spec = Verify {
            argv: argv.clone(),
            timeout: self.entry.timeout,
            grace: self.manifest.defaults.grace,
            staging_dir: self
                .manifest
                .root
                .join(&self.manifest.defaults.worktree_root),
            log_dir: self.manifest.root.join(&self.manifest.defaults.log_dir),
            sandbox,
        };
        let log = spec.log_dir.join(self.req.plan).join("resolve-check.log");
        match crate::merge::verify::run(
            &spec,
            self.workdir,
            &log,
            self.req.plan,
            self.req.target,
            commit,
        ) {
            Verdict::Passed => Ok(()),
            Verdict::Failed(why) => Err(format!("the result fails the check: {why}")),
            Verdict::Interrupted => Err("interrupted; nothing of it was merged".into()),
        }
    }

    /// `verify` on the merge that would land: the result merged into the target's tip now.
    /// Returns the tree it passed on.
    fn verify(&self, commit: Oid) -> Result<Option<Oid>, String> {
        let Some(v) = self.req.verify else {
            return Ok(None);
        };
        let why = |e: MergeError| format!("cannot build the merge to verify: {e}");
        let tip = target_commit(self.repo, self.req.target).map_err(why)?;
        let result = self
            .repo
            .find_commit(commit)
            .map_err(|e| format!("cannot read the merge commit: {e}"))?;
        let subject = Subject {
            plan: self.req.plan,
            branch: self.req.branch,
            target: self.req.target,
            base: self.req.base,
            strategy: self.req.strategy,
        };
        let candidate = match build(self.repo, &tip, &result, &subject).map_err(why)? {
            Built::Ready(c) => c,
            Built::AlreadyMerged | Built::FfImpossible => return Ok(None),
            Built::Conflict(files) => {
                return Err(format!(
                    "`{}` moved meanwhile and the result conflicts with it in {}",
                    self.req.target,
                    files.join(", ")
                ));
            }
        };
        match run_verify(
            v,
            self.req.repo_root,
            self.req.plan,
            self.req.target,
            candidate,
        )
        .map_err(why)?
        {
            Verdict::Passed => Ok(self.repo.find_commit(candidate).ok().map(|c| c.tree_id())),
            Verdict::Failed(why) => Err(format!("verify fails on the merge: {why}")),
            Verdict::Interrupted => Err("interrupted; nothing of it was merged".into()),
        }
    }
}

/// Saves what the resolver left in the worktree (every changed path as it is: files as blobs,
/// links as links, never followed) as a commit on the conflicted merge, under
/// `refs/orch/attempts/<plan>/resolve/<n>`. `None` when there is nothing to save or it cannot be.
fn save_attempt(
    repo: &Repository,
    workdir: &Path,
    c: &Conflicted,
    c0: Oid,
    plan: &str,
    attempt: u32,
) -> Option<String> {
    let wrepo = git::open(workdir).ok()?;
    let changed = gates::changed(&wrepo, &c.tree).ok()?;
    let entries: Vec<(String, Entry)> = changed
        .into_iter()
        .map(|p| {
            let e = gates::read_entry(workdir, &p).unwrap_or(Entry::Other);
            (p, e)
        })
        .filter(|(_, e)| !matches!(e, Entry::Other))
        .collect();
    let tree = gates::tree_with(repo, &c.tree, &entries).ok()?;
    let tree = repo.find_tree(tree).ok()?;
    let parent = repo.find_commit(c0).ok()?;
    let sig = signature(repo).ok()?;
    let refname = git::attempt_ref(plan, "resolve", attempt);
    let commit = repo
        .commit(
            None,
            &sig,
            &sig,
            &format!(
                "orch: resolution attempt {attempt} of plan `{plan}` (not merged; saved by orch)"
            ),
            &tree,
            &[&parent],
        )
        .ok()?;
    git::retry_locked(|| repo.reference(&refname, commit, true, "orch: resolution attempt saved"))
        .ok()?;
    Some(refname)
}

/// The prompt the plan's resolver would get now (`orch resolve PLAN --dry-run`).
pub(super) fn prompt_now(manifest_path: &Path, plan: &str) -> Result<String, CliError> {
    let sel = crate::workspace::Selection {
        manifest: Some(manifest_path.to_path_buf()),
        plan: None,
    };
    let ws = crate::workspace::load(&sel)?;
    ws.require_valid()?;
    let Some(manifest) = ws.manifest.as_ref() else {
        return Err(CliError::invalid(anyhow::anyhow!(
            "`orch resolve` needs a plans.toml"
        )));
    };
    let entry = manifest.plan(plan).ok_or_else(|| {
        CliError::invalid(anyhow::anyhow!(
            "no plan named `{plan}` in {}",
            manifest.path.display()
        ))
    })?;
    let repo_root = crate::workspace::repo_root(manifest)?;
    let verify = crate::merge::checks::verify_spec(manifest, &repo_root)?;
    let req = request(
        &ws,
        manifest,
        entry,
        &repo_root,
        verify.as_ref(),
        Why::Conflict,
    );
    let repo = git::open(&repo_root).map_err(CliError::coded)?;
    let c = match conflicted(&repo, &req).map_err(CliError::coded)? {
        Ok(c) => c,
        Err(cause) => {
            return Err(CliError::new(
                exit::REFUSED,
                anyhow::anyhow!("nothing to resolve: {cause}"),
            ));
        }
    };
    let notes = notes_dir(manifest, plan, next_attempt(&repo, manifest, plan));
    Ok(prompt_for(&repo, manifest, entry, &req, &c, &notes))
}

/// The request for plan `entry` of the workspace.
pub(crate) fn request<'a>(
    ws: &crate::workspace::Workspace,
    manifest: &'a Manifest,
    entry: &'a PlanEntry,
    repo_root: &'a Path,
    verify: Option<&'a Verify>,
    why: Why,
) -> ResolveRequest<'a> {
    ResolveRequest {
        repo_root,
        target: &manifest.defaults.target,
        plan: &entry.name,
        branch: &entry.branch,
        base: None,
        strategy: manifest.defaults.merge_strategy,
        verify,
        why,
        tasks: ws
            .plans
            .iter()
            .find(|p| p.name == entry.name)
            .map(|lp| tasks_of(&lp.plan))
            .unwrap_or_default(),
        status_path: ws
            .plans
            .iter()
            .find(|p| p.name == entry.name)
            .map(|lp| lp.status_path.clone()),
    }
}

/// A plan's tasks as the prompt lists them: (`id: description`, description and body).
pub(crate) fn tasks_of(plan: &crate::plan::Plan) -> Vec<(String, String)> {
    plan.tasks
        .iter()
        .map(|t| {
            (
                format!("{}: {}", t.id, t.description),
                format!("{}\n{}", t.description, t.body),
            )
        })
        .collect()
}

/// `orch resolve PLAN`: the plan's conflict with the target handed to its resolver now, the
/// result (when every gate passes) committed on the plan branch; the target does not move.
/// `Ok(None)`: the plan merges cleanly, nothing to resolve. Holds the repository's merge lock.
pub fn resolve_by_hand(
    ws: &crate::workspace::Workspace,
    manifest: &Manifest,
    plan: &str,
    resolver: &Resolver,
) -> Result<Option<Resolution>, CliError> {
    let entry = manifest.plan(plan).ok_or_else(|| {
        CliError::invalid(anyhow::anyhow!(
            "no plan named `{plan}` in {}",
            manifest.path.display()
        ))
    })?;
    if entry.resolve.is_none() {
        return Err(CliError::invalid(anyhow::anyhow!(
            "plan `{plan}` names no resolver"
        ))
        .with_hint(format!(
            "set `resolve = \"claude\"` (a preset or an [agents.NAME]) or `resolve = true` in its [[plan]] or in [defaults] of {}",
            manifest.path.display()
        )));
    }
    let repo_root = crate::workspace::repo_root(manifest)?;
    let state_dir = manifest.root.join(&manifest.defaults.state_dir);
    let _lock = crate::merge::checks::MergeLock::acquire(&state_dir)?;
    let verify = crate::merge::checks::verify_spec(manifest, &repo_root)?;
    let repo = git::open(&repo_root).map_err(CliError::coded)?;
    let ours = branch_commit(&repo, &entry.branch)
        .map_err(CliError::coded)?
        .ok_or_else(|| {
            CliError::coded(MergeError::BranchMissing {
                branch: entry.branch.clone(),
            })
        })?;
    let theirs = target_commit(&repo, &manifest.defaults.target).map_err(CliError::coded)?;
    let conflicts = matches!(
        git::merge_commits(&repo, &ours, &theirs, Check::OnConflict),
        Ok(TreeMerge::Conflict(_))
    );
    if !conflicts {
        return Ok(None);
    }
    let req = request(
        ws,
        manifest,
        entry,
        &repo_root,
        verify.as_ref(),
        Why::Conflict,
    );
    resolve(resolver, &req).map(Some).map_err(CliError::coded)
}

/// `orch sync` with a resolver: plan `p` synced with its upstream plans as
/// [`crate::merge::sync::sync_and_record`] does, and a conflict with an upstream plan's tip
/// handed to the plan's resolver (no `verify`: a sync lands nothing on the target; the plan's
/// `check` runs), then the sync goes on. Returns the sync and, when a resolution failed, why.
pub fn sync_resolving(
    ws: &crate::workspace::Workspace,
    repo_root: &Path,
    infos: &[crate::merge::PlanInfo],
    p: &crate::merge::PlanInfo,
    worktree: &Path,
    resolver: Option<&Resolver>,
) -> Result<(crate::merge::sync::Synced, Option<String>), crate::git::GitError> {
    use crate::merge::sync::{SyncResult, sync_and_record};
    let resolvable = resolver.and_then(|r| {
        r.manifest
            .plan(&p.name)
            .filter(|e| e.resolve.is_some())
            .map(|e| (r, e))
    });
    // One resolution per upstream at most, then the sync's own answer stands.
    for _ in 0..=p.upstreams.len() {
        let synced = sync_and_record(ws, repo_root, infos, p, worktree)?;
        let (SyncResult::Conflict { branch, .. }, Some((res, entry))) =
            (&synced.result, resolvable)
        else {
            return Ok((synced, None));
        };
        let mut req = request(ws, &res.manifest, entry, repo_root, None, Why::Conflict);
        req.target = branch;
        let resolved = match resolve(res, &req) {
            Ok(r) => r,
            Err(e) => return Ok((synced, Some(format!("the resolution could not run: {e}")))),
        };
        match resolved {
            Resolution::Resolved { .. } => continue,
            Resolution::Failed {
                cause,
                agent,
                saved,
                ..
            } => {
                let why = format!(
                    "resolution by agent `{agent}` failed: {cause}{}",
                    saved
                        .map(|s| format!(" (its attempt is saved under `{s}`)"))
                        .unwrap_or_default()
                );
                return Ok((synced, Some(why)));
            }
        }
    }
    Ok((sync_and_record(ws, repo_root, infos, p, worktree)?, None))
}
