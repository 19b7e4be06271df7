//! One group's landing: each repository's merge built on its target's tip, the candidates
//! checked out side by side (`<worktree_root>/.land-<group>/<repo>`), each repository's `verify`
//! run in its own and `verify_all` in the directory of all (each named by `ORCH_REPO_<NAME>`),
//! output to `<log_dir>/.land-<group>/merge-verify.log`; then the targets moved in order, each by
//! compare-and-swap ([`git::move_target`]) after a backup ref (`refs/orch/landing/<target>`) and a
//! journal (`<state_dir>/.landing.json`) are written; a target that cannot move puts back those
//! moved. [`recover`] puts back what a landing stopped half way (kill -9) left moved.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::Group;
pub(crate) use super::parts::{Conflict, Ctx, Landed, Part, Unbuilt};
use super::resolve::Handed;
use crate::error::CliError;
use crate::git::{self, Built, MergeRepo, Moved, Oid, Subject, landing};
use crate::manifest::Manifest;
use crate::merge::resolve::Resolver;
use crate::merge::trusted::Landing;
use crate::merge::verify::{Verdict, Verify};
use crate::workspace::Workspace;

/// The journal of a landing under way, in the home repository's state directory.
pub(crate) const JOURNAL: &str = crate::state_layout::LANDING_JOURNAL.name;

impl Ctx<'_> {
    fn state_dir(&self) -> PathBuf {
        self.home.join(&self.manifest.defaults.state_dir)
    }

    /// The work dir of repository `repo` (`home`: the manifest's).
    pub(crate) fn root_of(&self, repo: &str) -> PathBuf {
        match self.manifest.repos.iter().find(|r| r.name == repo) {
            Some(r) => r
                .abs_path
                .canonicalize()
                .unwrap_or_else(|_| r.abs_path.clone()),
            None => self.home.to_path_buf(),
        }
    }

    /// The target branch of repository `repo` (`home`: `defaults.target`).
    pub(crate) fn target_of(&self, repo: &str) -> String {
        match self.manifest.repos.iter().find(|r| r.name == repo) {
            Some(r) => r.target.clone(),
            None => self.manifest.defaults.target.clone(),
        }
    }

    fn verify_of(&self, repo: &str) -> Option<Vec<String>> {
        match self.manifest.repos.iter().find(|r| r.name == repo) {
            Some(r) => r.verify.clone(),
            None => self.manifest.defaults.verify.clone(),
        }
    }

    /// Each repository's merge of the group's plans on its target's tip, in the landing's order
    /// (`in_memory`: nothing written to disk, for the dry run).
    pub(crate) fn build(&self, group: &Group, in_memory: bool) -> Result<Vec<Part>, Unbuilt> {
        let mut parts = Vec::new();
        for repo in &group.repos {
            let root = self.root_of(repo);
            let target = self.target_of(repo);
            let mr = MergeRepo::open_with(&root, in_memory).map_err(|e| e.to_string())?;
            let old = mr.target_tip(&target).map_err(|e| e.to_string())?;
            let mut tip = old;
            // The group's plans merged into `tip` so far.
            let mut merged: Vec<String> = Vec::new();
            let mut plans = Vec::new();
            let mut tips = Vec::new();
            for p in group.plans_of(self.manifest, repo) {
                let Some(branch_tip) = mr.branch_tip(&p.branch).map_err(|e| e.to_string())? else {
                    return Err(Unbuilt::Other(format!(
                        "plan `{}` has no branch `{}` in repository `{repo}`",
                        p.name, p.branch
                    )));
                };
                let subject = Subject {
                    plan: &p.name,
                    branch: &p.branch,
                    target: &target,
                    base: None,
                    strategy: self.strategy,
                };
                match mr
                    .build(tip, branch_tip, &subject)
                    .map_err(|e| e.to_string())?
                {
                    Built::AlreadyMerged => {}
                    Built::Ready(c) => {
                        tip = c;
                        merged.push(p.name.clone());
                    }
                    Built::Conflict(files) => {
                        return Err(Unbuilt::Conflict(Box::new(Conflict {
                            plan: p.name.clone(),
                            repo: repo.clone(),
                            root: root.clone(),
                            target: target.clone(),
                            branch: p.branch.clone(),
                            files,
                            unresolved: None,
                            after: (tip != old).then(|| (tip, merged.clone())),
                            has_resolver: p.resolve.is_some(),
                            checked_out: crate::git::checked_out_at(&root, &p.branch)
                                .ok()
                                .flatten(),
                        })));
                    }
                    Built::FfImpossible => {
                        return Err(Unbuilt::Other(format!(
                            "plan `{}` cannot be fast-forwarded onto `{target}` of repository `{repo}`",
                            p.name
                        )));
                    }
                }
                plans.push(format!("{} ({})", p.name, p.branch));
                tips.push((p.name.clone(), branch_tip));
            }
            parts.push(Part {
                repo: repo.clone(),
                root,
                target,
                old,
                new: tip,
                plans,
                verify: self.verify_of(repo),
                tips,
                resolved: Vec::new(),
                archived: Vec::new(),
            });
        }
        Ok(parts)
    }

    /// Lands `group` all together or not at all (see the module's comment): first of all,
    /// each plan's branch is checked in its own repository against what a later run trusts
    /// there ([`Ctx::trusted`]; `allow_protected`: a person reviewed the changes, never a
    /// link); the outcome is recorded in each plan's status file (`orchMerge`,
    /// [`super::record`]). A plan that conflicts in its repository is handed to its
    /// `resolve` agent when `resolver` is given ([`super::resolve`]), once per landing; the
    /// group is then checked and built again from the start.
    pub(crate) fn land(
        &self,
        group: &Group,
        ws: &Workspace,
        allow_protected: bool,
        resolver: Option<&Resolver>,
        say: &mut dyn FnMut(String),
    ) -> Landed {
        let landed = self.land_checked(group, ws, allow_protected, resolver, say);
        super::record::outcome(self, group, ws, &landed, say);
        landed
    }

    fn land_checked(
        &self,
        group: &Group,
        ws: &Workspace,
        allow_protected: bool,
        resolver: Option<&Resolver>,
        say: &mut dyn FnMut(String),
    ) -> Landed {
        let mut resolved: Vec<(String, String)> = Vec::new();
        let mut parts = loop {
            if let Err(e) = self.trusted(group, ws, allow_protected) {
                return Landed::Protected(e);
            }
            match self.build(group, false) {
                Ok(p) => break p,
                Err(Unbuilt::Conflict(mut c)) => {
                    match self.hand_to_resolver(group, ws, &c, resolver, &resolved) {
                        Handed::No => return Landed::Conflict(Unbuilt::Conflict(c)),
                        Handed::Resolved { agent } => resolved.push((c.plan.clone(), agent)),
                        Handed::Failed { agent, why } => {
                            c.unresolved = Some((agent, why));
                            return Landed::Conflict(Unbuilt::Conflict(c));
                        }
                        Handed::Stop(why) => return Landed::Refused(why),
                    }
                }
                Err(Unbuilt::Other(why)) => return Landed::Refused(why),
            }
        };
        for part in &mut parts {
            part.resolved = resolved
                .iter()
                .filter(|(plan, _)| part.tips.iter().any(|(p, _)| p == plan))
                .cloned()
                .collect();
        }
        if parts.iter().all(|p| p.old == p.new) {
            return Landed::AlreadyIn;
        }
        if let Err(why) = self.verify("land", group, &parts, say) {
            return Landed::VerifyFailed(why);
        }
        self.move_all(group, parts)
    }

    /// Refuses (exit 4) a group one of whose plans' branches changes what a later run trusts in
    /// its own repository that its plan's `allow_protected` key does not allow (unless
    /// `allow_protected`: `--allow-protected`), or
    /// puts a symbolic link there (always), naming plan, repository and file
    /// ([`crate::merge::trusted::refusal_of`]).
    pub(crate) fn trusted(
        &self,
        group: &Group,
        ws: &Workspace,
        allow_protected: bool,
    ) -> Result<(), CliError> {
        let repos: Vec<(&String, PathBuf, String)> = group
            .repos
            .iter()
            .map(|r| (r, self.root_of(r), self.target_of(r)))
            .collect();
        let mut landings = Vec::new();
        for (repo, root, target) in &repos {
            for p in group.plans_of(self.manifest, repo) {
                landings.push(Landing {
                    entry: p,
                    repo: Some(repo.as_str()),
                    root,
                    target,
                });
            }
        }
        crate::merge::trusted::refusal_of(&landings, ws, self.manifest, allow_protected)
    }

    /// Where a landing of `group` keeps the output of its verify commands.
    pub(crate) fn verify_log(&self, group: &Group) -> PathBuf {
        self.home
            .join(&self.manifest.defaults.log_dir)
            .join(format!(
                "{}{}",
                crate::state_layout::LAND_LOG_PREFIX,
                group.name()
            ))
            .join("merge-verify.log")
    }

    /// Where the verify commands of `group` run ([`crate::executor::container::Images::of`]):
    /// in a container of the image of its plans that run in one (`Some`), on this machine when
    /// none does (`None`), nowhere when they name different images (why, naming them).
    pub(crate) fn verify_image(&self, group: &Group) -> Result<Option<String>, String> {
        let place = crate::executor::container::images(self.manifest).of(&group.plans)?;
        Ok(place.map(|p| p.image))
    }

    /// Each repository's `verify` in its candidate, then `verify_all` in the directory of all
    /// of them; the first red one is the error, naming the combination and the log. The code
    /// of a plan that runs in a container runs in a container of its image, with the candidates'
    /// directory the only one of this machine mounted read-write, never here; a group whose
    /// container plans name different images is refused before anything is checked out
    /// ([`Self::verify_image`]). `kind`
    /// names where the candidates go (`<worktree_root>/.<kind>-<group>`) and the log
    /// (`<log_dir>/<kind>-<group>/merge-verify.log`): `land` for a landing, `integration` for
    /// the preview, so that the two never share a directory.
    pub(crate) fn verify(
        &self,
        kind: &str,
        group: &Group,
        parts: &[Part],
        say: &mut dyn FnMut(String),
    ) -> Result<(), String> {
        let d = &self.manifest.defaults;
        if d.verify_all.is_none() && parts.iter().all(|p| p.verify.is_none()) {
            return Ok(());
        }
        let after = if kind == "land" {
            "; nothing was landed"
        } else {
            ""
        };
        self.verify_image(group)
            .map_err(|why| format!("its verify is not run: {why}{after}"))?;
        let dir = self
            .home
            .join(&d.worktree_root)
            .join(format!(".{kind}-{}", group.name()));
        git::remove_export(&dir);
        let mut env = Vec::new();
        for p in parts {
            let at = dir.join(&p.repo);
            git::export_commit(&p.root, &p.new.to_string(), &at, false)
                .map_err(|e| format!("cannot check out the candidate of `{}`: {e}", p.repo))?;
            env.push((
                crate::manifest::repo_env_var(&p.repo),
                at.display().to_string(),
            ));
        }
        let verify = Verify {
            argv: Vec::new(),
            timeout: d.timeout,
            grace: d.grace,
            log_max: d.log_max,
            staging_dir: self.home.join(&d.worktree_root),
            log_dir: self.home.join(&d.log_dir),
            sandbox: crate::merge::confine::decide(self.manifest, crate::sandbox::supported)
                .map_err(|e| e.to_string())?,
            network: crate::merge::network::Network::of_verify(self.manifest)
                .map_err(|e| e.to_string())?,
            announce: Default::default(),
            images: crate::executor::container::images(self.manifest),
        };
        let name = format!("{kind}-{}", group.name());
        // A dot name in the log directory (`.land-<group>/`, [`Self::verify_log`]): never a
        // plan's log directory.
        let log = verify.log_path(&format!(".{name}"));
        let combination: Vec<String> = parts
            .iter()
            .map(|p| {
                format!(
                    "{} `{}` at {}",
                    p.repo,
                    p.target,
                    crate::merge::short(&p.new.to_string()).to_owned()
                )
            })
            .collect();
        let combination = combination.join(", ");
        let mut runs: Vec<(String, Vec<String>, PathBuf, Oid)> = parts
            .iter()
            .filter_map(|p| {
                let argv = p.verify.clone()?;
                Some((
                    format!("verify of `{}`", p.repo),
                    argv,
                    dir.join(&p.repo),
                    p.new,
                ))
            })
            .collect();
        if let (Some(all), Some(first)) = (&d.verify_all, parts.first()) {
            runs.push((
                "verify_all".to_string(),
                all.clone(),
                dir.clone(),
                first.new,
            ));
        }
        let mut result = Ok(());
        for (what, argv, cwd, commit) in runs {
            say(format!(
                "{}: {what} `{}` on {combination} (its output: {})",
                group.name(),
                crate::merge::verify::shown(&argv),
                log.display()
            ));
            let v = Verify {
                argv,
                ..verify.clone()
            };
            let target = parts.first().map_or("", |p| p.target.as_str());
            let under = crate::merge::verify::Under {
                name: &name,
                plans: &group.plans,
                mount: Some(&dir),
            };
            match crate::merge::verify::run_with(&v, &cwd, &log, &under, (target, commit), &env) {
                Verdict::Passed => {}
                Verdict::Failed(why) => {
                    result = Err(format!(
                        "{what} failed on the combination {combination}: {why}{after}"
                    ));
                    break;
                }
                Verdict::Interrupted => {
                    result = Err(format!("{what} was interrupted{after}"));
                    break;
                }
            }
        }
        git::remove_export(&dir);
        result
    }

    /// The targets moved in order, after the journal and the backup refs are written; any that
    /// cannot move puts back those moved.
    fn move_all(&self, group: &Group, parts: Vec<Part>) -> Landed {
        let moving: Vec<&Part> = parts.iter().filter(|p| p.old != p.new).collect();
        let journal = json!({
            "group": group.name(),
            "parts": moving.iter().map(|p| json!({
                "repo": p.repo,
                "root": p.root,
                "target": p.target,
                "old": p.old.to_string(),
                "new": p.new.to_string(),
            })).collect::<Vec<_>>(),
        });
        let state = self.state_dir();
        if let Err(e) = std::fs::create_dir_all(&state)
            .and_then(|()| crate::status::report::write_json(&state, JOURNAL, &journal))
        {
            return Landed::Refused(format!("cannot write the landing's journal: {e}"));
        }
        for p in &moving {
            if let Err(e) = landing::set_backup(&p.root, &p.target, &p.old.to_string()) {
                self.finish(&moving);
                return Landed::Refused(format!(
                    "cannot write the backup ref of `{}`: {e}",
                    p.repo
                ));
            }
        }
        let mut moved: Vec<&Part> = Vec::new();
        for p in &moving {
            let log = format!("orch: land {} ({})", group.name(), p.plans.join(", "));
            let own = self.manifest.own_dirs(&p.root);
            let why = match git::move_target(&p.root, &p.target, (p.old, p.new), &own, &log) {
                Ok(Moved::Done) => {
                    moved.push(p);
                    pause_for_tests(&state, moved.len());
                    continue;
                }
                Ok(Moved::TargetMoved) => format!(
                    "`{}` of repository `{}` moved while the group landed",
                    p.target, p.repo
                ),
                Err(e) => format!("`{}` of repository `{}` cannot move: {e}", p.target, p.repo),
            };
            let back = put_back(&moved);
            self.finish(&moving);
            return Landed::Refused(format!("{why}; {back}"));
        }
        self.finish(&moving);
        let mut landed: Vec<Part> = moving.into_iter().cloned().collect();
        for p in &mut landed {
            p.archived = archive(p);
        }
        Landed::Moved(landed)
    }

    /// The backup refs and the journal removed: the landing is over.
    fn finish(&self, parts: &[&Part]) {
        for p in parts {
            let _ = landing::drop_backup(&p.root, &p.target);
        }
        let _ = std::fs::remove_file(crate::state_layout::LANDING_JOURNAL.at(&self.state_dir()));
    }
}

/// Tags each plan's branch tip that `p` landed, as a plan landed alone is tagged
/// ([`crate::merge::step::archive`]), so that its commits outlive the branch: (plan, tag) of
/// each tag made (one that cannot be is left out: the target moved either way).
fn archive(p: &Part) -> Vec<(String, String)> {
    let Ok(repo) = MergeRepo::open(&p.root) else {
        return Vec::new();
    };
    p.tips
        .iter()
        .filter_map(|(plan, tip)| {
            let tag = crate::merge::step::archive(&repo, plan, *tip).ok()?;
            Some((plan.clone(), tag))
        })
        .collect()
}

/// The targets of `moved` moved back, last first; what was done, in words.
fn put_back(moved: &[&Part]) -> String {
    if moved.is_empty() {
        return "nothing had moved".to_string();
    }
    let mut said = Vec::new();
    for p in moved.iter().rev() {
        // Back to what the landing changed, no more: it changed nothing of orch's own
        // directories (refused before it moved).
        let back = git::move_target(
            &p.root,
            &p.target,
            (p.new, p.old),
            &[],
            "orch: put back a landing",
        );
        said.push(match back {
            Ok(Moved::Done) => format!("`{}` of `{}` put back", p.target, p.repo),
            Ok(Moved::TargetMoved) => format!(
                "`{}` of `{}` moved again since: left as it is",
                p.target, p.repo
            ),
            Err(e) => format!("`{}` of `{}` not put back: {e}", p.target, p.repo),
        });
    }
    said.join(", ")
}

/// A hook for the crash tests: with `ORCH_TEST_LAND_PAUSE_AFTER=N`, the landing stops after its
/// N-th target moved, says so in `<state_dir>/.landing.paused` and waits (up to a minute) to be
/// killed.
fn pause_for_tests(state: &Path, moved: usize) {
    let Ok(n) = std::env::var("ORCH_TEST_LAND_PAUSE_AFTER") else {
        return;
    };
    if n.parse::<usize>().ok() != Some(moved) {
        return;
    }
    let _ = std::fs::write(
        crate::state_layout::LANDING_PAUSED.path(state),
        moved.to_string(),
    );
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A landing stopped half way (its journal is there): every target it moved is put back from its
/// backup ref, by compare-and-swap; the journal and the refs removed. What was done, in words;
/// nothing when no landing was under way.
pub(crate) fn recover(manifest: &Manifest, home: &Path) -> Vec<String> {
    let state = home.join(&manifest.defaults.state_dir);
    let path = crate::state_layout::LANDING_JOURNAL.at(&state);
    let Ok(text) = crate::untrusted::read::small_text(&path) else {
        return Vec::new();
    };
    let Ok(journal) = serde_json::from_str::<Value>(&text) else {
        return vec![format!(
            "the landing journal `{}` cannot be read: left for you to look at",
            path.display()
        )];
    };
    let group = journal["group"].as_str().unwrap_or("?");
    let mut said = Vec::new();
    for part in journal["parts"].as_array().into_iter().flatten() {
        let s = |k: &str| part[k].as_str().unwrap_or("").to_string();
        let (repo, target) = (s("repo"), s("target"));
        let root = PathBuf::from(s("root"));
        // Where the repository comes from: the manifest's record of it, never the journal's
        // alone (a root the manifest does not name is left as it is).
        let known = root == home
            || manifest.repos.iter().any(|r| {
                r.abs_path
                    .canonicalize()
                    .unwrap_or_else(|_| r.abs_path.clone())
                    == root
            });
        if !known {
            said.push(format!(
                "repository `{repo}` is no longer in the manifest: left as it is"
            ));
            continue;
        }
        let backup = landing::backup_of(&root, &target).ok().flatten();
        let old = backup.unwrap_or_else(|| s("old"));
        let (Ok(old_id), Ok(new_id)) = (Oid::from_str(&old), Oid::from_str(&s("new"))) else {
            continue;
        };
        let now = git::branch_tip(&root, &target).ok().flatten();
        if now.as_deref() == Some(s("new").as_str()) {
            let back = git::move_target(
                &root,
                &target,
                (new_id, old_id),
                &manifest.own_dirs(&root),
                "orch: put back a landing stopped half way",
            );
            said.push(match back {
                Ok(Moved::Done) => format!(
                    "`{target}` of `{repo}` put back to {}",
                    crate::merge::short(&old)
                ),
                Ok(Moved::TargetMoved) => {
                    format!("`{target}` of `{repo}` moved meanwhile: left as it is")
                }
                Err(e) => format!("`{target}` of `{repo}` not put back: {e}"),
            });
        }
        let _ = landing::drop_backup(&root, &target);
    }
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(crate::state_layout::LANDING_PAUSED.at(&state));
    if said.is_empty() {
        said.push("nothing had moved".to_string());
    }
    vec![format!(
        "the landing of group `{group}` was stopped half way: {}",
        said.join(", ")
    )]
}
