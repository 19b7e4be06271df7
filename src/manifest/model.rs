//! The validated manifest: typed values, defaults applied, presets merged, names resolved.

use crate::diagnostic::Diagnostic;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::agents::AgentSpec;
use super::executor::{ExecutorKind, SlurmOptions};

/// The default of `log_max`: the most of one attempt's output its log keeps.
pub(crate) const LOG_MAX_DEFAULT: u64 = 32 * 1024 * 1024;

/// The size limits of one attempt's change (`max_file_size`, `max_change_size`), in bytes: a
/// change over them is refused before anything of it is hashed (`crate::git::too_large_in_worktree`),
/// and no landing takes a blob over `file` (`crate::merge::trusted`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SizeLimits {
    /// The most one file may hold (its apparent size: a sparse file counts whole).
    pub(crate) file: u64,
    /// The most all the changed files together may hold (with the directories' tree objects).
    pub(crate) change: u64,
    /// The most files one change may add, change or remove (`max_change_files`).
    pub(crate) files: u64,
}

impl Default for SizeLimits {
    /// 100 MiB a file (GitHub's own limit), 4 GiB a change, 100,000 files a change.
    fn default() -> Self {
        Self {
            file: 100 << 20,
            change: 4 << 30,
            files: 100_000,
        }
    }
}

impl SizeLimits {
    /// Only `file` bounded: the checks of one file's size.
    pub(crate) fn file_only(file: u64) -> Self {
        Self {
            file,
            change: u64::MAX,
            files: u64::MAX,
        }
    }
}

/// The `[defaults]` table, every value filled in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Defaults {
    /// The branch finished plans merge into (`"main"`).
    pub(crate) target: String,
    /// Agents running at once, all plans together (`4`, at least 1).
    pub(crate) max_agents: usize,
    /// The agent of plans that name none (`"claude"`).
    pub(crate) agent: String,
    /// Per task (`2h`).
    pub(crate) timeout: Duration,
    /// Retries of a failed task (`2`).
    pub(crate) retries: u32,
    /// The argv run on each merge result, if any.
    pub(crate) verify: Option<Vec<String>>,
    /// How `orch merge` lands a plan on the target (`merge`).
    pub(crate) merge_strategy: MergeStrategy,
    /// `orch up` merges each plan as soon as it and its upstream plans are done (`false`).
    pub(crate) auto_merge: bool,
    /// Relative to the manifest's directory (`.orch/worktrees`).
    pub(crate) worktree_root: PathBuf,
    /// Relative to the manifest's directory (`.orch/state`).
    pub(crate) state_dir: PathBuf,
    /// Prefix of plan branches without a `branch` override (`"plan/"`).
    pub(crate) branch_prefix: String,
    /// Agents running at once in one plan, sharing its worktree (`1`).
    pub(crate) parallel: usize,
    /// Tasks of one plan running at once, each in its own task worktree (`1`).
    pub(crate) parallel_tasks: usize,
    /// Kill an agent that wrote no output and changed no status for this long (off by default).
    pub(crate) stuck_after: Option<Duration>,
    /// Between SIGTERM and SIGKILL when an agent is stopped (`10s`).
    pub(crate) grace: Duration,
    /// First wait before a retry, doubled each further attempt (`5s`).
    pub(crate) backoff: Duration,
    /// Relative to the manifest's directory (`.orch/logs`): one log file per task.
    pub(crate) log_dir: PathBuf,
    /// The most of one attempt's output its log keeps, its beginning and its end (`32MiB`).
    pub(crate) log_max: u64,
    /// An argv run in a new worktree before its first agent (`["npm", "ci"]`).
    pub(crate) setup: Option<Vec<String>>,
    /// Files copied from the main work tree into a new worktree (`[".env"]`).
    pub(crate) copy: Vec<PathBuf>,
    /// Relative to the manifest's directory (`orch/templates`): `task.md` and `plan.md` found
    /// there replace the built-in prompt templates.
    pub(crate) templates: PathBuf,
    /// Where agents run (`local`); agents and plans may choose otherwise.
    pub(crate) executor: ExecutorKind,
    /// The container image of `executor = "container"`; agents and plans may name their own.
    pub(crate) image: Option<String>,
    /// The check run in a task's worktree after its agent is done, before the commit
    /// (`["cargo", "test"]`); plans and tasks may name their own.
    pub(crate) check: Option<Vec<String>>,
    /// The most the whole run may spend: no new task starts once it is reached.
    pub(crate) budget: super::budget::Budget,
    /// The git remote `orch pr` pushes plan branches to (`"origin"`).
    pub(crate) remote: String,
    /// The size of the block of ports each worktree gets, from `ORCH_PORT` on (`10`).
    pub(crate) ports: u16,
    /// How often, at most, `orch up` tests the combination of the plans (`integrate`); `None`:
    /// off. Default: 10 minutes with `verify`, off without.
    pub(crate) integrate: Option<Duration>,
    /// Whether a red integration test reaches the prompts of the plans it names.
    pub(crate) integrate_feedback: bool,
    /// `sandbox`, `sandbox_write`, `sandbox_deny_read` as written in `[defaults]`.
    pub(crate) sandbox: super::sandbox::SandboxKeys,
    /// `protect`: globs of paths no task may change (`None`: not set).
    pub(crate) protect: Option<Vec<String>>,
    /// `allow_protected`: globs of protected paths every plan's tasks may change all the same
    /// (a person's exemption; each plan's own adds to these).
    pub(crate) allow_protected: Vec<String>,
    /// Ignored directories copied from the main work tree into a new worktree (`["target"]`).
    pub(crate) warm: Vec<Warm>,
    /// Whether the worktrees orch makes get their submodules checked out (`true`).
    pub(crate) submodules: bool,
    /// Best of N: `attempts`, `agents`, `select`, `attempts_stop` (`attempts = 1`: off).
    pub(crate) best_of: super::best_of::BestOf,
    /// `resolve`: the agent that repairs a plan that cannot merge (`None`: a person does).
    pub(crate) resolve: Option<ResolveWith>,
    /// `resolve_verify`: a red `verify` after a clean merge is handed to the resolver too
    /// (`false`).
    pub(crate) resolve_verify: bool,
    /// `verify_all`: the argv run with every repository's candidate side by side (`None`: none).
    pub(crate) verify_all: Option<Vec<String>>,
    /// The review loop of `orch pr --watch`.
    pub(crate) review: super::review::Review,
    /// `max_file_size`, `max_change_size`.
    pub(crate) size_limits: SizeLimits,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            target: "main".into(),
            max_agents: 4,
            agent: "claude".into(),
            timeout: Duration::from_secs(2 * 3600),
            retries: 2,
            verify: None,
            merge_strategy: MergeStrategy::Merge,
            auto_merge: false,
            worktree_root: PathBuf::from(".orch/worktrees"),
            state_dir: PathBuf::from(".orch/state"),
            branch_prefix: "plan/".into(),
            parallel: 1,
            parallel_tasks: 1,
            stuck_after: None,
            grace: Duration::from_secs(10),
            backoff: Duration::from_secs(5),
            log_dir: PathBuf::from(".orch/logs"),
            log_max: LOG_MAX_DEFAULT,
            setup: None,
            copy: Vec::new(),
            templates: PathBuf::from("orch/templates"),
            executor: ExecutorKind::Local,
            image: None,
            check: None,
            budget: super::budget::Budget::default(),
            remote: "origin".into(),
            ports: 10,
            integrate: None,
            integrate_feedback: true,
            sandbox: Default::default(),
            protect: None,
            allow_protected: Vec::new(),
            warm: Vec::new(),
            submodules: true,
            best_of: Default::default(),
            resolve: None,
            resolve_verify: false,
            verify_all: None,
            review: Default::default(),
            size_limits: SizeLimits::default(),
        }
    }
}

/// How `orch merge` lands a finished plan on the target (`defaults.merge_strategy`, `--strategy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum MergeStrategy {
    /// A merge commit with two parents: the target tip and the plan branch tip.
    #[default]
    Merge,
    /// One new commit on the target with the plan's changes; the branch is not a parent.
    Squash,
    /// No new commit: the target moves to the branch tip, only when it is an ancestor of it.
    FfOnly,
}

impl super::spans::Spelled for MergeStrategy {}

impl MergeStrategy {
    /// The manifest spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Merge => "merge",
            Self::Squash => "squash",
            Self::FfOnly => "ff-only",
        }
    }
}

impl std::fmt::Display for MergeStrategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a dependency waits for in the other plan.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum DepTarget {
    /// `auth`: the whole plan finished.
    Plan,
    /// `auth:2`: its phase 2.
    Phase(u32),
    /// `auth:2.3`: its task 2.3 (the id as written, `N.M` or `N.M.K`; `T014` in a Spec Kit
    /// plan).
    Task(String),
    /// `specs:US1`: every task of a Spec Kit plan labelled with story `US1`.
    Story(String),
}

/// One `depends_on` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Dependency {
    pub(crate) plan: String,
    pub(crate) target: DepTarget,
    /// 1-based location of the entry's string in the manifest.
    pub(crate) line: usize,
    pub(crate) column: usize,
    /// The entry as written.
    pub(crate) raw: String,
}

/// A `warm` entry: a directory (relative to the repository root) copied from the main work
/// tree into each new worktree before `setup`, with where the manifest names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Warm {
    pub(crate) path: PathBuf,
    /// 1-based line and column of the entry in the manifest.
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// One `[[plan]]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PlanEntry {
    pub(crate) name: String,
    /// As written in the manifest, relative to its directory.
    pub(crate) file: PathBuf,
    /// `root.join(file)`.
    pub(crate) abs_file: PathBuf,
    pub(crate) priority: i64,
    /// Resolved: the plan's own agent or `defaults.agent`.
    pub(crate) agent: String,
    /// Resolved: the `branch` override or `branch_prefix` + name.
    pub(crate) branch: String,
    pub(crate) depends_on: Vec<Dependency>,
    /// Resolved: the plan's `parallel` or `defaults.parallel`.
    pub(crate) parallel: usize,
    /// Resolved: the plan's `parallel_tasks` or `defaults.parallel_tasks`.
    pub(crate) parallel_tasks: usize,
    /// Resolved per-task timeout.
    pub(crate) timeout: Duration,
    /// Resolved retries of a failed task.
    pub(crate) retries: u32,
    /// Resolved setup argv.
    pub(crate) setup: Option<Vec<String>>,
    /// Resolved files to copy (defaults and the plan's own).
    pub(crate) copy: Vec<PathBuf>,
    /// Resolved `warm` directories (defaults and the plan's own).
    pub(crate) warm: Vec<Warm>,
    /// Resolved: the plan's `submodules`, else `defaults.submodules`.
    pub(crate) submodules: bool,
    /// 1-based line of the entry's `name` key.
    pub(crate) line: usize,
    /// Resolved: the plan's `executor`, else its agent's, else `defaults.executor`.
    pub(crate) executor: ExecutorKind,
    /// Resolved: the plan's `image`, else its agent's, else `defaults.image` (used when
    /// `executor` is container; `None`: the repository's `.devcontainer/devcontainer.json`).
    pub(crate) image: Option<String>,
    /// Resolved: `[slurm]` with the plan's `slurm` table over it (used when `executor` is slurm).
    pub(crate) slurm: SlurmOptions,
    /// Resolved: the plan's `check` (`[]`: none), else `defaults.check`.
    pub(crate) check: Option<Vec<String>>,
    /// The plan's own `budget` (its recorded spending, all runs).
    pub(crate) budget: super::budget::Budget,
    /// `paths`: the directories of the plan's sparse checkout (normalized, relative to the
    /// repository root, `/`-separated); empty: the whole tree.
    pub(crate) paths: Vec<String>,
    /// Where each of `paths` was written in `plans.toml` (line, column; 1-based).
    pub(crate) paths_at: Vec<(usize, usize)>,
    /// Resolved: the plan's `protect`, else `defaults.protect`; `None`: neither is set. Added
    /// to [`super::Guarded`] (the data a gate is handed is protected only when named here).
    pub(crate) protect: Option<super::protect::Protect>,
    /// Resolved: `defaults.allow_protected` and the plan's own `allow_protected`; `None`:
    /// neither is set. The protected paths (what a later run trusts, `protect`'s) this plan's
    /// tasks may change, and its branch land with, all the same: a person's word in the
    /// manifest, the only exemption (a task's text never is one). A symbolic link there is
    /// refused whatever it says.
    pub(crate) allow_protected: Option<super::protect::Protect>,
    /// Resolved best of N: the plan's keys over `[defaults]`'.
    pub(crate) best_of: super::best_of::BestOf,
    /// Resolved: the agent that repairs the plan when it cannot merge (its `resolve`, else the
    /// defaults'; `true` is its own agent); `None`: a person does.
    pub(crate) resolve: Option<String>,
    /// Resolved `resolve_verify`.
    pub(crate) resolve_verify: bool,
    /// Resolved: the `[[host]]` names its attempts may run on (the plan's `hosts`, else its
    /// agent's, else every host); empty unless `executor` is ssh.
    pub(crate) hosts: Vec<String>,
    /// `repo`: the `[[repo]]` the plan changes; `None`: the home repository (plans.toml's).
    pub(crate) repo: Option<String>,
    /// `land_with`: plans that land together with this one, all or none.
    pub(crate) land_with: Vec<String>,
    /// Resolved review keys: the plan's over `[defaults]`'.
    pub(crate) review: super::review::Review,
    /// Resolved: the plan's `fallback`, else its agent's: the agents its pending tasks go to
    /// while its agent is at a usage limit, in order.
    pub(crate) fallback: Vec<String>,
    /// `format`: the grammar the manifest says the plan's file is written in, and the line
    /// of the key; `None`: recognised from the file.
    pub(crate) format: Option<(PlanFormat, usize)>,
    /// Resolved: the `[[service]]` names the plan gets (its `services`, else `[defaults]`'), in
    /// the order written; empty unless `executor` is container.
    pub(crate) services: Vec<String>,
    /// Resolved: its container's bounds (`memory`, `pids`: the plan's, else its agent's, else
    /// `[defaults]`'); used when `executor` is container.
    pub(crate) limits: super::limits::Limits,
    /// Resolved: the plan's `max_file_size` and `max_change_size`, else `[defaults]`'.
    pub(crate) size_limits: SizeLimits,
}

/// The grammar of a plan file (`format` of a `[[plan]]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PlanFormat {
    /// orch's own: `## Phase N: title`, `- [ ] N.M description`.
    Orch,
    /// Spec Kit's `tasks.md`: `- [ ] T014 [P] [US1] description`.
    SpecKit,
}

impl PlanFormat {
    pub(crate) fn name(self) -> &'static str {
        match self {
            PlanFormat::Orch => "orch",
            PlanFormat::SpecKit => "speckit",
        }
    }
}

/// A loaded, validated `plans.toml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The manifest file, as given to [`load`](super::load).
    pub(crate) path: PathBuf,
    /// The manifest's directory (absolute): relative paths resolve against it.
    pub(crate) root: PathBuf,
    pub(crate) defaults: Defaults,
    /// Defined agents with the presets merged in (a table overrides a preset of the same name).
    pub(crate) agents: BTreeMap<String, AgentSpec>,
    /// Plans in file order.
    pub(crate) plans: Vec<PlanEntry>,
    /// `[slurm] poll`: the longest wait between two queries of the job states (`5s`).
    pub(crate) slurm_poll: Duration,
    /// Advice about a valid manifest (an agent argv known not to work), shown by `orch check`.
    pub(crate) warnings: Vec<Diagnostic>,
    /// The `[[notify]]` hooks, in file order.
    pub(crate) notify: Vec<super::notify::NotifyHook>,
    /// The `[[host]]` machines, in file order.
    pub(crate) hosts: Vec<Host>,
    /// The `[[repo]]` tables: the other repositories plans change, in file order.
    pub(crate) repos: Vec<RepoEntry>,
    /// The `[[service]]` tables, in file order.
    pub(crate) services: Vec<super::services::Service>,
    /// `[telemetry]`: where `orch up` exports traces and metrics (the `OTEL_EXPORTER_OTLP_*`
    /// variables win).
    pub(crate) telemetry: super::telemetry::TelemetryTable,
}

/// The default of `[slurm] poll`.
pub(crate) const DEFAULT_SLURM_POLL: Duration = Duration::from_secs(5);

impl Manifest {
    /// The plan named `name`.
    pub(crate) fn plan(&self, name: &str) -> Option<&PlanEntry> {
        self.plans.iter().find(|p| p.name == name)
    }

    /// The services of `plan`, in its order ([`PlanEntry::services`]).
    pub(crate) fn services_of(&self, plan: &PlanEntry) -> Vec<&super::services::Service> {
        plan.services
            .iter()
            .filter_map(|n| self.services.iter().find(|s| &s.name == n))
            .collect()
    }

    /// The agent a plan runs with.
    pub(crate) fn agent_of(&self, plan: &PlanEntry) -> Option<&AgentSpec> {
        self.agents.get(&plan.agent)
    }

    /// Whether `orch up` runs each task of `plan` in a task worktree of its own:
    /// `parallel_tasks` above 1 with a task-mode agent.
    pub(crate) fn task_trees(&self, plan: &PlanEntry) -> bool {
        (plan.parallel_tasks > 1 || plan.best_of.attempts > 1)
            && self
                .agent_of(plan)
                .is_some_and(|a| a.mode == super::agents::AgentMode::Task)
    }

    /// How many agents of `plan` `orch up` runs at once: one plan-mode agent; in task mode,
    /// `parallel_tasks` with task worktrees, else `parallel`.
    pub(crate) fn agents_per_plan(&self, plan: &PlanEntry) -> usize {
        if self.task_trees(plan) {
            // The attempts of a best-of-N task run at once.
            plan.parallel_tasks.max(plan.best_of.attempts as usize)
        } else if self
            .agent_of(plan)
            .is_some_and(|a| a.mode == super::agents::AgentMode::Plan)
        {
            1
        } else {
            plan.parallel
        }
    }

    /// Whether any plan runs its agents through Slurm.
    #[cfg(test)]
    pub(crate) fn uses_slurm(&self) -> bool {
        self.plans.iter().any(|p| p.executor == ExecutorKind::Slurm)
    }

    /// The directory of the repository plan `plan_name` changes, as the manifest names it: its
    /// `[[repo]]`'s path, else the manifest's directory (the home repository).
    pub(crate) fn plan_root(&self, plan_name: &str) -> &Path {
        self.repo_of(plan_name)
            .map_or(self.root.as_path(), |r| r.abs_path.as_path())
    }

    /// The `[[repo]]` plan `plan_name` changes; `None`: the home repository.
    pub(crate) fn repo_of(&self, plan_name: &str) -> Option<&RepoEntry> {
        let name = self.plan(plan_name)?.repo.as_deref()?;
        self.repos.iter().find(|r| r.name == name)
    }

    /// The target branch of the repository `plan` changes.
    pub(crate) fn target_of(&self, plan: &PlanEntry) -> &str {
        self.repo_of(&plan.name)
            .map_or(self.defaults.target.as_str(), |r| r.target.as_str())
    }

    /// `<repository>/state_dir/<plan_name>/status.json`: in the repository the plan changes.
    pub(crate) fn state_path(&self, plan_name: &str) -> PathBuf {
        self.plan_root(plan_name)
            .join(&self.defaults.state_dir)
            .join(plan_name)
            .join("status.json")
    }

    /// `<repository>/log_dir/<plan_name>`: the plan's task logs.
    pub(crate) fn log_dir(&self, plan_name: &str) -> PathBuf {
        self.plan_root(plan_name)
            .join(&self.defaults.log_dir)
            .join(plan_name)
    }

    /// `root/templates`: where prompt template overrides are looked for.
    pub(crate) fn templates_dir(&self) -> PathBuf {
        self.root.join(&self.defaults.templates)
    }

    /// `<repository>/worktree_root/<plan_name>`.
    pub(crate) fn worktree_path(&self, plan_name: &str) -> PathBuf {
        self.plan_root(plan_name)
            .join(&self.defaults.worktree_root)
            .join(plan_name)
    }
}

/// Parses a `depends_on` entry: `plan`, `plan:N`, `plan:N.M[.K]`, or for a Spec Kit plan
/// `plan:T014` (a task) and `plan:US1` (every task of a story). Does not check that the plan
/// exists; returns the plan name and target.
pub(crate) fn parse_dependency(s: &str) -> Result<(String, DepTarget), String> {
    let bad = || {
        Err(format!(
            "dependency `{s}` is not `plan`, `plan:N` (a phase), `plan:N.M` or `plan:T014` (a task), `plan:US1` (a story)"
        ))
    };
    let (plan, target) = match s.split_once(':') {
        None => (s, DepTarget::Plan),
        Some((plan, rest)) if crate::plan::is_speckit_id(rest) => {
            (plan, DepTarget::Task(rest.to_string()))
        }
        Some((plan, rest)) if crate::plan::is_story(rest) => {
            (plan, DepTarget::Story(rest.to_string()))
        }
        Some((plan, rest)) => {
            let numbers: Vec<&str> = rest.split('.').collect();
            let numeric = |n: &&str| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit());
            if !numbers.iter().all(numeric) || numbers.len() > 3 {
                return bad();
            }
            if numbers.len() == 1 {
                match rest.parse::<u32>() {
                    Ok(n) => (plan, DepTarget::Phase(n)),
                    Err(_) => return bad(),
                }
            } else {
                (plan, DepTarget::Task(rest.to_string()))
            }
        }
    };
    if plan.is_empty() {
        return bad();
    }
    Ok((plan.to_string(), target))
}

/// `resolve` in `[defaults]`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ResolveWith {
    /// `true`: each plan's own agent.
    Own,
    /// That agent.
    Agent(String),
}

/// One `[[host]]`, validated.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Host {
    pub(crate) name: String,
    /// `ssh`'s destination, never beginning with `-`.
    pub(crate) ssh: String,
    /// `-p`, if written.
    pub(crate) port: Option<u16>,
    /// Agents at once on this host.
    pub(crate) slots: usize,
    /// orch's directory there: absolute, or `~/…` (the remote user's home).
    pub(crate) dir: String,
    /// Whether agents there must be confined by Landlock (`sandbox = "on"`, the default).
    pub(crate) confined: bool,
    /// 1-based line of the table.
    pub(crate) line: usize,
}

/// One validated `[[repo]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RepoEntry {
    pub(crate) name: String,
    /// `path` as written, relative to the manifest's directory (or absolute).
    pub(crate) path: PathBuf,
    /// `root.join(path)`, lexically normalized.
    pub(crate) abs_path: PathBuf,
    /// Its target branch: its own `target`, else `defaults.target`.
    pub(crate) target: String,
    /// The argv run on its merge result before a landing (its own `verify`, else none).
    pub(crate) verify: Option<Vec<String>>,
    /// 1-based line and column of its `path` (of its `name` when `path` is missing).
    pub(crate) line: usize,
    pub(crate) column: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_forms() {
        let good = [
            ("auth", "auth", DepTarget::Plan),
            ("auth:2", "auth", DepTarget::Phase(2)),
            ("auth:2.3", "auth", DepTarget::Task("2.3".into())),
            ("auth:2.3.1", "auth", DepTarget::Task("2.3.1".into())),
        ];
        for (text, plan, target) in good {
            assert_eq!(
                parse_dependency(text),
                Ok((plan.to_string(), target)),
                "{text}"
            );
        }
        for text in [
            "",
            ":2",
            "auth:",
            "auth:x",
            "auth:2.",
            "auth:.2",
            "auth:1.2.3.4",
            "auth:2:3",
            "auth:-1",
            "auth:99999999999",
        ] {
            let err = parse_dependency(text).expect_err(text);
            assert!(err.contains("is not `plan`, `plan:N`"), "{text}: {err}");
        }
    }
}
