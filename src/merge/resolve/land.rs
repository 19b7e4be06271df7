//! The gates of one resolution and its landing: every check orch makes of what the resolver
//! left (from its own records), the merge commit orch builds, `check` and `verify` on it, the
//! plan branch's compare-and-swap; or the attempt saved.

use std::path::Path;

use git2::{Oid, Repository};

use super::gates::{self, Entry, MAX_EXTRA};
use super::run::{Conflicted, ResolveRequest};
use crate::git::train_objects::{build, signature, target_commit};
use crate::git::{self, GitTarget};
use crate::git::{Built, Moved, Subject, move_target};
use crate::manifest::{Manifest, PlanEntry};
use crate::merge::MergeError;
use crate::merge::interrupt;
use crate::merge::verify::{Verdict, Verify, run_verify};

/// What the gates look at.
pub(super) struct Gates<'a, 'r> {
    pub(super) repo: &'r Repository,
    pub(super) req: &'a ResolveRequest<'a>,
    pub(super) manifest: &'a Manifest,
    pub(super) entry: &'a PlanEntry,
    pub(super) c: &'a Conflicted<'r>,
    pub(super) workdir: &'a Path,
    pub(super) notes: &'a Path,
    pub(super) agent: &'a str,
    pub(super) attempt: u32,
    pub(super) is_protected: &'a dyn Fn(&str) -> bool,
}

impl Gates<'_, '_> {
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
                    let side = |t: &git2::Tree| {
                        t.get_path(Path::new(p))
                            .ok()
                            .and_then(|e| self.repo.find_blob(e.id()).ok())
                            .map(|b| b.content().to_vec())
                            .unwrap_or_default()
                    };
                    let (ours, theirs) = (side(&ours_tree), side(&theirs_tree));
                    if let Some(line) = gates::new_markers(bytes, &[&ours, &theirs]).first() {
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
pub(super) fn save_attempt(
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
