//! The gates of one resolution and its landing: every check orch makes of what the resolver
//! left (from its own records), the merge commit orch builds, `check` and `verify` on it, the
//! plan branch's compare-and-swap; or the attempt saved.

use std::path::Path;

use super::gates::{self, MAX_EXTRA};
use super::request::{Conflicted, ResolveRequest};
use crate::git::{self, GitTarget, MergeRepo, Oid, WorkFile};
use crate::git::{Built, Moved, move_target};
use crate::manifest::{Manifest, PlanEntry};
use crate::merge::MergeError;
use crate::merge::interrupt;
use crate::merge::verify::{Verdict, Verify, run_verify};

/// What the gates look at.
pub(super) struct Gates<'a> {
    pub(super) repo: &'a MergeRepo,
    pub(super) req: &'a ResolveRequest<'a>,
    pub(super) manifest: &'a Manifest,
    pub(super) entry: &'a PlanEntry,
    pub(super) c: &'a Conflicted,
    pub(super) workdir: &'a Path,
    pub(super) notes: &'a Path,
    pub(super) agent: &'a str,
    pub(super) attempt: u32,
    pub(super) is_protected: &'a dyn Fn(&str) -> bool,
}

impl Gates<'_> {
    /// Every gate, then the merge commit on the plan branch: its id (and the tree `verify`
    /// passed on), or the cause.
    pub(super) fn land(&self, run: &super::AgentRun) -> Result<(String, Option<String>), String> {
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
            "orch resolve: {} merged into `{}`, resolved by agent `{}`",
            self.req.theirs_name(),
            self.req.step.branch,
            self.agent
        );
        match move_target(
            self.req.step.repo_root,
            self.req.step.branch,
            (self.c.ours, commit),
            self.req.step.own,
            &log,
        ) {
            Ok(Moved::Done) => Ok((commit.to_string(), verified_tree.map(|t| t.to_string()))),
            Ok(Moved::TargetMoved) => Err(format!(
                "`{}` moved during the resolution; run it again",
                self.req.step.branch
            )),
            Err(e) => Err(format!("cannot move `{}`: {e}", self.req.step.branch)),
        }
    }

    /// The changed files, checked: no nested repository, within the bound, none protected, no
    /// marker, no link, no unmerged entry. Returns what each changed path holds.
    fn files(&self) -> Result<Vec<(String, WorkFile)>, String> {
        // A repository of its own in the worktree: refused before anything reads it.
        git::check_nested(self.workdir).map_err(|e| match e {
            git::GitError::Nested { .. } => format!("the resolver left a {e}"),
            e => format!("cannot check the resolution worktree for nested repositories: {e}"),
        })?;
        let wrepo = MergeRepo::open(self.workdir)
            .map_err(|e| format!("cannot open the resolution worktree: {e}"))?;
        let unmerged = wrepo
            .has_unmerged()
            .map_err(|e| format!("cannot read the resolution worktree's index: {e}"))?;
        if unmerged {
            return Err("the resolver left unmerged index entries".into());
        }
        let changed = wrepo
            .changed_from(self.c.tree)
            .map_err(|e| format!("cannot compare the resolution worktree: {e}"))?;
        let explanation = gates::explanation(self.notes);
        let tree_of = |commit, name: &str| {
            self.repo
                .commit_tree(commit, name)
                .map_err(|e| e.to_string())
        };
        let theirs_tree = tree_of(self.c.theirs, &self.req.theirs_name())?;
        let ours_tree = tree_of(self.c.ours, &format!("`{}`", self.req.step.branch))?;
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
            if !self.repo.has_path(ours_tree, p) && !self.repo.has_path(theirs_tree, p) {
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
                WorkFile::Link(_) => {
                    return Err(format!("the resolver left a symbolic link at `{p}`"));
                }
                WorkFile::Other => {
                    return Err(format!(
                        "the resolver left something other than a file at `{p}`"
                    ));
                }
                WorkFile::File { bytes, .. } => {
                    let side = |t| self.repo.file_at(t, p).unwrap_or_default();
                    let (ours, theirs) = (side(ours_tree), side(theirs_tree));
                    if let Some(line) = gates::new_markers(bytes, &[&ours, &theirs]).first() {
                        return Err(format!(
                            "the resolver left a conflict marker in `{p}` (line {line})"
                        ));
                    }
                }
                WorkFile::Absent => {
                    if self.c.files.contains(p)
                        && self.repo.has_path(ours_tree, p)
                        && self.repo.has_path(theirs_tree, p)
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
    fn commit(&self, entries: &[(String, WorkFile)]) -> Result<Oid, String> {
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
            "Merge {target} into `{branch}`, resolved by agent `{agent}`\n\n\
             orch handed {files} to agent `{agent}` (resolution attempt {attempt}); no marker \
             was left, the changed files stayed within the bound{gates}.\n\n\
             Resolved-by: {agent}\nResolve-attempt: {attempt}\n",
            target = self.req.theirs_name(),
            branch = self.req.step.branch,
            agent = self.agent,
            attempt = self.attempt,
            gates = match (&self.entry.check, self.req.step.verify) {
                (Some(_), Some(_)) => ", check and verify passed",
                (Some(_), None) => ", check passed",
                (None, Some(_)) => ", verify passed",
                (None, None) => "",
            }
        );
        self.repo
            .tree_with(self.c.tree, entries)
            .and_then(|tree| {
                self.repo
                    .write_commit(tree, &[self.c.ours, self.c.theirs], &message)
            })
            .map_err(|e| format!("cannot write the merge commit: {e}"))
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
        let (sandbox, network) = match self.req.step.verify {
            Some(v) => (v.sandbox.clone(), v.network.clone()),
            None => (
                crate::merge::confine::decide(self.manifest, crate::sandbox::supported)
                    .map_err(|e| format!("cannot confine the check: {}", e.error))?,
                crate::merge::network::Network::of_verify(self.manifest)
                    .map_err(|e| format!("cannot confine the check's network: {}", e.error))?,
            ),
        };
        let base = super::request::plan_base(self.manifest, self.req.step.plan);
        let spec = Verify {
            argv: argv.clone(),
            timeout: self.entry.timeout,
            grace: self.manifest.defaults.grace,
            log_max: self.manifest.defaults.log_max,
            staging_dir: base.join(&self.manifest.defaults.worktree_root),
            log_dir: base.join(&self.manifest.defaults.log_dir),
            sandbox,
            network,
            announce: Default::default(),
            images: crate::executor::container::images(self.manifest),
        };
        let log = spec
            .log_dir
            .join(self.req.step.plan)
            .join("resolve-check.log");
        match crate::merge::verify::run(
            &spec,
            self.workdir,
            &log,
            (self.req.step.plan, self.req.theirs_plans()),
            self.req.step.target,
            commit,
        ) {
            Verdict::Passed => Ok(()),
            Verdict::Failed(why) => Err(format!("the result fails the check: {why}")),
            Verdict::Interrupted => Err("interrupted; nothing of it was merged".into()),
        }
    }

    /// `verify` on the merge that would land: the result merged into the target's tip now (or
    /// into the group's candidate it was resolved against). Returns the tree it passed on.
    fn verify(&self, commit: Oid) -> Result<Option<Oid>, String> {
        let Some(v) = self.req.step.verify else {
            return Ok(None);
        };
        let why = |e: MergeError| format!("cannot build the merge to verify: {e}");
        let tip = self.req.theirs_tip(self.repo).map_err(why)?;
        let subject = self.req.step.subject();
        let candidate = match self.repo.build(tip, commit, &subject).map_err(why)? {
            Built::Ready(c) => c,
            Built::AlreadyMerged | Built::FfImpossible => return Ok(None),
            Built::Conflict(files) => {
                return Err(format!(
                    "{} moved meanwhile and the result conflicts with it in {}",
                    self.req.theirs_name(),
                    files.join(", ")
                ));
            }
        };
        match run_verify(
            v,
            self.req.step.repo_root,
            (self.req.step.plan, self.req.theirs_plans()),
            self.req.step.target,
            candidate,
        )
        .map_err(why)?
        {
            Verdict::Passed => Ok(self.repo.tree_of(candidate)),
            Verdict::Failed(why) => Err(format!("verify fails on the merge: {why}")),
            Verdict::Interrupted => Err("interrupted; nothing of it was merged".into()),
        }
    }
}

/// Saves what the resolver left in the worktree (every changed path as it is: files as blobs,
/// links as links, never followed) as a commit on the conflicted merge, under
/// `refs/orch/attempts/<plan>/resolve/<n>`. `None` when there is nothing to save or it cannot be.
pub(super) fn save_attempt(
    repo: &MergeRepo,
    workdir: &Path,
    c: &Conflicted,
    c0: Oid,
    plan: &str,
    attempt: u32,
) -> Option<String> {
    let changed = MergeRepo::open(workdir).ok()?.changed_from(c.tree).ok()?;
    let entries: Vec<(String, WorkFile)> = changed
        .into_iter()
        .map(|p| {
            let e = gates::read_entry(workdir, &p).unwrap_or(WorkFile::Other);
            (p, e)
        })
        .filter(|(_, e)| !matches!(e, WorkFile::Other))
        .collect();
    let tree = repo.tree_with(c.tree, &entries).ok()?;
    let message =
        format!("orch: resolution attempt {attempt} of plan `{plan}` (not merged; saved by orch)");
    let commit = repo.write_commit(tree, &[c0], &message).ok()?;
    let refname = git::attempt_ref(plan, "resolve", attempt);
    repo.set_ref(&refname, commit, "orch: resolution attempt saved")
        .ok()?;
    Some(refname)
}
