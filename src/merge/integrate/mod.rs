//! The integration preview (`orch integrate`, and `orch up` with `integrate`): the target's tip
//! with every plan branch that has commits of its own merged in, in the order `orch merge` uses,
//! built as the merge train builds a step ([`trial`]) and verified in a staging worktree; on a
//! failure, the plans that break together ([`blame`]). Trials are cached by the commits they
//! involve, in memory and in `<state_dir>/integration-cache.json`. Nothing here moves a ref or
//! touches a worktree an agent uses.

pub(crate) mod blame;
pub(crate) mod groups;
pub(crate) mod trial;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub(crate) use trial::TrialOutcome;

use super::order::{OrderItem, merge_order};
use super::{MergeError, Verify};
use crate::error::CliResult;
use crate::git::{MergeRepo, Oid};
use crate::manifest::Manifest;
use crate::untrusted::read;

/// What a test needs, read from the manifest once; sendable to a blocking thread.
#[derive(Clone, Debug)]
pub(crate) struct IntegrationSpec {
    pub(crate) repo_root: PathBuf,
    pub(crate) target: String,
    /// `orch merge`'s verify command, confined alike; the output of the latest trial goes to
    /// `<log_dir>/integration-verify.log`.
    pub(crate) verify: Option<Verify>,
    /// `<state_dir>`: the lock, the cache, the last result.
    pub(crate) state_dir: PathBuf,
    /// The manifest's plans to order, and each one's branch: shared by the clones of a spec and
    /// replaced when `orch up` applies an edit of the manifest ([`Self::set_plans`]), so that a
    /// plan added during the run is in the next test.
    plans: std::sync::Arc<std::sync::Mutex<Vec<(OrderItem, String)>>>,
    /// The manifest, for the groups of plans of several repositories ([`groups`]); replaced
    /// with `plans`.
    manifest: std::sync::Arc<std::sync::Mutex<Manifest>>,
}

/// Each plan of the home repository of `manifest` to order, and its branch (a plan of another
/// repository is tested with its group: [`groups`]).
fn plans_of(manifest: &Manifest) -> Vec<(OrderItem, String)> {
    manifest
        .plans
        .iter()
        .filter(|p| p.repo.is_none())
        .map(|p| {
            let item = OrderItem {
                name: p.name.clone(),
                priority: p.priority,
                depends_on: super::plan_info::upstream_plans(p),
            };
            (item, p.branch.clone())
        })
        .collect()
}

/// A plan branch with commits of its own, at the tip tested.
#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    pub(crate) name: String,
    pub(crate) branch: String,
    pub(crate) tip: Oid,
}

/// A commit a test tried: a plan's branch tip, or the target's (`plan` absent).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TriedCommit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) plan: Option<String>,
    pub(crate) branch: String,
    pub(crate) commit: String,
    /// The `[[repo]]` of a plan of another repository (absent: the home repository).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) repo: Option<String>,
}

/// How verify failed on the combination.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct VerifyFailure {
    pub(crate) exit_code: Option<i32>,
    pub(crate) last_lines: Vec<String>,
    /// The image of the container it ran in (a plan tested runs in one); absent: on this
    /// machine. Output that did not run in a container never reaches the prompt of a plan
    /// that runs in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) image: Option<String>,
}

/// A red test: the plans that break together and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IntegrationFailure {
    /// In merge order, the culprit last.
    pub(crate) plans: Vec<String>,
    pub(crate) culprit: String,
    /// The conflicting paths (a textual conflict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) conflict: Option<Vec<String>>,
    /// The verify command's failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) verify: Option<VerifyFailure>,
    /// The target's tip, then the tips of `plans` (for a group of several repositories: each
    /// repository's target, then the plans' tips).
    pub(crate) commits: Vec<TriedCommit>,
    /// What failed, in words, for a group of several repositories (the combination tested and
    /// the log of its `verify` or `verify_all`, or the conflict).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<String>,
}

impl IntegrationFailure {
    /// One line: `lib + app: conflict in a.rs` / `lib + app: verify exited with status 1`.
    pub(crate) fn summary(&self) -> String {
        if let Some(why) = &self.reason {
            return format!("{}: {why}", self.plans.join(" + "));
        }
        let what = match (&self.conflict, &self.verify) {
            (Some(files), _) => format!("conflict in {}", files.join(", ")),
            (None, Some(v)) => match v.exit_code {
                Some(code) => format!("verify exited with status {code}"),
                None => "verify did not finish".to_string(),
            },
            (None, None) => "failed".to_string(),
        };
        format!("{}: {what}", self.plans.join(" + "))
    }
}

/// The result of one test.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IntegrationReport {
    pub(crate) target: String,
    pub(crate) target_commit: String,
    /// The plans tested, in merge order, at their tips.
    pub(crate) tested: Vec<TriedCommit>,
    /// Whether the verify command ran (else only textual conflicts were checked).
    pub(crate) verified: bool,
    /// Why the verify command did not run on a combination that has one (its plans run in
    /// containers of different images): only textual conflicts were checked there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) verify_skipped: Option<String>,
    /// Trials built and run (not found in the cache).
    pub(crate) trials: usize,
    /// `None`: green (or nothing to test).
    pub(crate) failure: Option<IntegrationFailure>,
}

impl IntegrationReport {
    pub(crate) fn is_green(&self) -> bool {
        self.failure.is_none()
    }
}

impl IntegrationSpec {
    /// The preview of the manifest's plans; `verify` as `orch merge` runs it (confined alike:
    /// exit 6 when it must be and cannot), with its output in
    /// `<log_dir>/integration-verify.log`.
    pub(crate) fn from_manifest(manifest: &Manifest, repo_root: &Path) -> CliResult<Self> {
        let d = &manifest.defaults;
        Ok(Self {
            repo_root: repo_root.to_path_buf(),
            target: d.target.clone(),
            verify: Verify::of(manifest)?,
            state_dir: manifest.root.join(&d.state_dir),
            plans: std::sync::Arc::new(std::sync::Mutex::new(plans_of(manifest))),
            manifest: std::sync::Arc::new(std::sync::Mutex::new(manifest.clone())),
        })
    }

    /// The plans of `manifest` from now on (a live edit of the manifest during `orch up`).
    pub(crate) fn set_plans(&self, manifest: &Manifest) {
        *self
            .plans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = plans_of(manifest);
        *self
            .manifest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = manifest.clone();
    }

    /// `verify`, with the images of the plans that run in containers of the manifest as it is
    /// now (a plan added during the run included).
    fn verify_now(&self) -> Option<Verify> {
        let mut verify = self.verify.clone()?;
        verify.images = crate::executor::container::images(
            &self
                .manifest
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        Some(verify)
    }

    /// Whether plan `plan` runs in a container (the manifest as it is now): the output of a
    /// verify that ran on this machine never reaches its prompt.
    pub(crate) fn runs_in_container(&self, plan: &str) -> bool {
        let now = crate::executor::container::images(
            &self
                .manifest
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .contains(plan);
        now || self
            .verify
            .as_ref()
            .is_some_and(|v| v.images.contains(plan))
    }

    /// The target's tip and, in merge order, every plan whose branch exists and has commits the
    /// target lacks.
    pub(crate) fn candidates(&self) -> Result<(Oid, Vec<Candidate>), MergeError> {
        let repo = MergeRepo::open(&self.repo_root)?;
        let target_tip = repo.target_tip(&self.target)?;
        let plans = self
            .plans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let own = self
            .manifest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .own_dirs(&self.repo_root);
        let items: Vec<OrderItem> = plans.iter().map(|(p, _)| p.clone()).collect();
        let mut out = Vec::new();
        for i in merge_order(&items) {
            let (p, branch) = &plans[i];
            let Some(tip) = repo.branch_tip(branch)? else {
                continue;
            };
            // A branch that changes orch's own directories never lands: not tried either.
            let own_changed =
                crate::git::own_changes_since_fork(&self.repo_root, &self.target, branch, &own);
            if !own_changed.is_ok_and(|c| c.is_empty()) {
                continue;
            }
            if !repo.contains(target_tip, tip, &format!("the history of `{branch}`"))? {
                out.push(Candidate {
                    name: p.name.clone(),
                    branch: branch.clone(),
                    tip,
                });
            }
        }
        Ok((target_tip, out))
    }
}

/// The cache key of a trial: the verify command, the target's tip, the plans' names and tips,
/// and the image verify runs in (none: on this machine).
fn key(target_tip: Oid, plans: &[&Candidate], verify: Option<&Verify>) -> String {
    let mut k = target_tip.to_string();
    for p in plans {
        k.push_str(&format!(" {}={}", p.name, p.tip));
    }
    if let Some(v) = verify {
        k.push_str(&format!(" verify={:?}", v.argv));
        let names: Vec<&str> = plans.iter().map(|p| p.name.as_str()).collect();
        match v.images.of(&names) {
            Ok(None) => {}
            Ok(Some(place)) => {
                let services: Vec<&str> = place.services.iter().map(|s| s.name.as_str()).collect();
                k.push_str(&format!(" image={} services={services:?}", place.image));
            }
            Err(_) => k.push_str(" image=none"),
        }
    }
    k
}

/// `` `a`, `b` `` of plans `names`.
fn plans_named(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    format!(
        "plan{} {}",
        if names.len() == 1 { "" } else { "s" },
        quoted.join(", ")
    )
}

/// Entries kept in the on-disk cache.
const CACHE_KEEP: usize = 256;

/// Runs tests, keeping the trials' outcomes by the commits involved.
///
/// The staging worktree is kept between trials (each one checks out only what differs) and
/// removed when the `Integrator` is dropped.
#[derive(Debug, Default)]
pub(crate) struct Integrator {
    cache: HashMap<String, TrialOutcome>,
    loaded: bool,
    staging: Option<crate::git::Staging>,
    /// The trials of groups of several repositories: a failure (or `None`) by the commits.
    groups: HashMap<String, Option<String>>,
}

#[derive(Serialize, Deserialize)]
struct CacheEntry {
    key: String,
    outcome: TrialOutcome,
}

impl Integrator {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// One test: the whole combination, and on a failure the blame. One test per repository at a
    /// time (a lock standing for `<state_dir>/integration.lock`, in orch's private root); the report is saved as `<state_dir>/.integration.json`.
    pub(crate) fn test(&mut self, spec: &IntegrationSpec) -> Result<IntegrationReport, MergeError> {
        let lock_err = |e: std::io::Error| MergeError::Staging {
            path: spec.state_dir.join("integration.lock"),
            reason: e.to_string(),
        };
        fs::create_dir_all(&spec.state_dir).map_err(lock_err)?;
        let lock_path = spec.state_dir.join("integration.lock");
        // In orch's private root: an agent that may read the state directory could hold a lock
        // there, and with it the supervisor.
        let lock = crate::sandbox::private_lock(&lock_path).map_err(lock_err)?;
        if !self.loaded {
            self.load(&spec.state_dir);
        }
        let report = self.test_locked(spec);
        if let Ok(r) = &report {
            self.save(&spec.state_dir);
            save_last(&spec.state_dir, r);
        }
        drop(lock);
        report
    }

    fn test_locked(&mut self, spec: &IntegrationSpec) -> Result<IntegrationReport, MergeError> {
        let mut report = self.test_home(spec)?;
        // Then every group of plans of several repositories, as its landing would verify it.
        let manifest = spec
            .manifest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let tried = groups::test(&manifest, &spec.repo_root, &mut self.groups);
        let skipped = report.verify_skipped.iter().chain(&tried.skipped);
        report.verify_skipped =
            Some(skipped.cloned().collect::<Vec<_>>().join("; ")).filter(|s| !s.is_empty());
        let home: Vec<TriedCommit> = std::mem::take(&mut report.tested);
        let mut tested: Vec<TriedCommit> = home
            .into_iter()
            .filter(|t| !tried.tested.iter().any(|g| g.plan == t.plan))
            .collect();
        tested.extend(tried.tested);
        report.tested = tested;
        report.trials += tried.trials;
        if report.failure.is_none() {
            report.failure = tried.failure;
        }
        Ok(report)
    }

    /// The home repository's plans: the whole combination, and on a failure the blame.
    fn test_home(&mut self, spec: &IntegrationSpec) -> Result<IntegrationReport, MergeError> {
        let (target_tip, cands) = spec.candidates()?;
        let names: Vec<String> = cands.iter().map(|c| c.name.clone()).collect();
        let verify_now = spec.verify_now();
        // A combination whose plans run in containers of different images is not verified
        // anywhere: textual conflicts only, and a note.
        let skipped = verify_now
            .as_ref()
            .and_then(|v| v.images.of(&names).err())
            .map(|why| format!("verify not run on {}: {why}", plans_named(&names)));
        let verify = verify_now.as_ref().filter(|_| skipped.is_none());
        let mut trials = 0usize;
        let report = |trials, failure| IntegrationReport {
            target: spec.target.clone(),
            target_commit: target_tip.to_string(),
            tested: cands.iter().map(tried).collect(),
            verified: verify.is_some(),
            verify_skipped: skipped.clone(),
            trials,
            failure,
        };
        if cands.is_empty() {
            // Nothing to test: the target alone is `orch merge`'s business.
            return Ok(report(0, None));
        }
        let repo = MergeRepo::open_with(&spec.repo_root, verify.is_none())?;
        let staging = &mut self.staging;
        let cache = &mut self.cache;
        let mut trial = |set: &[usize]| -> Result<TrialOutcome, MergeError> {
            let plans: Vec<&Candidate> = set.iter().map(|&i| &cands[i]).collect();
            let k = key(target_tip, &plans, verify);
            if let Some(hit) = cache.get(&k) {
                return Ok(hit.clone());
            }
            trials += 1;
            let out = trial::run(
                &repo,
                &spec.repo_root,
                &spec.target,
                target_tip,
                &plans,
                verify,
                staging,
            )?;
            tracing::debug!(key = %k, failed = out.failed(), "integration trial");
            cache.insert(k, out.clone());
            Ok(out)
        };
        let all: Vec<usize> = (0..cands.len()).collect();
        let whole = trial(&all)?;
        let failure = if whole.failed() {
            let named = blame::blame(cands.len(), |set| {
                Ok::<bool, MergeError>(trial(set)?.failed())
            })?;
            let outcome = match trial(&named)? {
                o if o.failed() => o,
                _ => whole,
            };
            Some(failure_of(
                &spec.target,
                target_tip,
                &named.iter().map(|&i| &cands[i]).collect::<Vec<_>>(),
                outcome,
            ))
        } else {
            None
        };
        Ok(report(trials, failure))
    }

    fn load(&mut self, state_dir: &Path) {
        self.loaded = true;
        let Ok(bytes) = read::whole(
            &crate::state_layout::INTEGRATION_CACHE.at(state_dir),
            read::STATE,
        ) else {
            return;
        };
        // A cache that cannot be read is only a cache.
        if let Ok(entries) = serde_json::from_slice::<Vec<CacheEntry>>(&bytes) {
            for e in entries {
                self.cache.entry(e.key).or_insert(e.outcome);
            }
        }
    }

    fn save(&self, state_dir: &Path) {
        let mut entries: Vec<CacheEntry> = self
            .cache
            .iter()
            .map(|(k, v)| CacheEntry {
                key: k.clone(),
                outcome: v.clone(),
            })
            .collect();
        entries.sort_by(|a, b| a.key.cmp(&b.key));
        if entries.len() > CACHE_KEEP {
            entries.drain(..entries.len() - CACHE_KEEP);
        }
        if let Ok(text) = serde_json::to_vec(&entries) {
            let _ = write_atomic(&crate::state_layout::INTEGRATION_CACHE.at(state_dir), &text);
        }
    }
}

fn tried(c: &Candidate) -> TriedCommit {
    TriedCommit {
        plan: Some(c.name.clone()),
        branch: c.branch.clone(),
        commit: c.tip.to_string(),
        repo: None,
    }
}

fn failure_of(
    target: &str,
    target_tip: Oid,
    named: &[&Candidate],
    outcome: TrialOutcome,
) -> IntegrationFailure {
    let mut commits = vec![TriedCommit {
        plan: None,
        branch: target.to_string(),
        commit: target_tip.to_string(),
        repo: None,
    }];
    commits.extend(named.iter().map(|c| tried(c)));
    let (conflict, verify) = match outcome {
        TrialOutcome::Conflict { files, .. } => (Some(files), None),
        TrialOutcome::VerifyFailed {
            exit_code,
            last_lines,
            image,
            ..
        } => (
            None,
            Some(VerifyFailure {
                exit_code,
                last_lines,
                image,
            }),
        ),
        TrialOutcome::Passed { .. } => (None, None),
    };
    IntegrationFailure {
        plans: named.iter().map(|c| c.name.clone()).collect(),
        culprit: named.last().map(|c| c.name.clone()).unwrap_or_default(),
        conflict,
        verify,
        commits,
        reason: None,
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    crate::links::write(&tmp, bytes)?;
    fs::rename(&tmp, path)
}

/// Saves the last report as `<state_dir>/.integration.json` (best effort: it is for `orch status`).
pub(crate) fn save_last(state_dir: &Path, report: &IntegrationReport) {
    if let Ok(text) = serde_json::to_vec_pretty(report) {
        let _ = write_atomic(&crate::state_layout::INTEGRATION_LAST.at(state_dir), &text);
    }
}

/// Whether an integration test runs now under `state_dir` (another process holds its lock,
/// [`Integrator::test`]), seen without waiting for it or making anything: a shared lock tried
/// on the lock's file, when there is one, and let go at once.
pub(crate) fn running(state_dir: &Path) -> bool {
    let Ok(path) = crate::sandbox::private_lock_path(&state_dir.join("integration.lock")) else {
        return false;
    };
    let Ok((file, _)) = read::open(&path) else {
        return false;
    };
    matches!(
        file.try_lock_shared(),
        Err(std::fs::TryLockError::WouldBlock)
    )
}

/// The last report saved under `state_dir`, if any.
pub(crate) fn load_last(state_dir: &Path) -> Option<IntegrationReport> {
    let bytes = read::whole(
        &crate::state_layout::INTEGRATION_LAST.at(state_dir),
        read::STATE,
    )
    .ok()?;
    serde_json::from_slice(&bytes).ok()
}
