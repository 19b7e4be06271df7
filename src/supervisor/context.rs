//! What every part of a run shares: the repository, the plans being run and their settings.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::git::TaskTreeRequest;
use crate::manifest::{AgentMode, AgentSpec, Dependency};
use crate::plan::Plan;
use crate::prompt::Templates;
use crate::status::{self, StatusDoc, StatusError, TaskStatus};

/// The run's fixed settings, shared by the dispatcher and every agent's task.
pub struct Ctx {
    pub repo_root: PathBuf,
    pub manifest_path: PathBuf,
    /// The orch executable agents call back (`ORCH_BIN`, `{{ orch }}`).
    pub orch_bin: PathBuf,
    pub max_agents: usize,
    pub grace: Duration,
    pub backoff: Duration,
    pub stuck_after: Option<Duration>,
    /// The merge train: merge each finished plan with `orch merge` (`--merge`, `auto_merge`).
    pub auto_merge: bool,
    pub templates: Templates,
    /// Every plan of the workspace, in its order; `None` for plans not part of this run.
    pub plans: Vec<Option<Arc<PlanCtx>>>,
    /// The batch jobs of plans run through a cluster scheduler (`None` when every plan runs
    /// locally).
    pub jobs: Option<Arc<crate::executor::JobTracker>>,
    /// `defaults.ports`: the size of each worktree's block of ports (`ORCH_PORT`).
    pub ports: u16,
}

/// One plan of the run.
pub struct PlanCtx {
    /// Index into the workspace's plans.
    pub index: usize,
    pub name: String,
    pub plan: Plan,
    pub rel_path: String,
    pub status_path: PathBuf,
    pub log_dir: PathBuf,
    pub worktree: PathBuf,
    pub branch: String,
    pub base: String,
    /// When orch made the worktree; tasks completed after it get a commit of their own.
    pub created_at: Option<DateTime<Utc>>,
    pub agent_name: String,
    pub agent: AgentSpec,
    pub parallel: usize,
    /// Tasks running at once, each in a task worktree of its own (task mode only).
    pub parallel_tasks: usize,
    /// The main repository's work dir.
    pub repo_root: PathBuf,
    /// Paths copied into new worktrees (the plan's and its tasks').
    pub copy: Vec<PathBuf>,
    pub timeout: Duration,
    pub retries: u32,
    pub setup: Option<Vec<String>>,
    pub depends_on: Vec<Dependency>,
    /// Serializes git work (commits, saves, merges) in the plan's worktree.
    pub git_lock: Mutex<()>,
    /// Where its agents run.
    pub executor: crate::executor::ExecutorKind,
    /// Its Slurm settings (with `executor` slurm).
    pub slurm: crate::executor::SlurmOptions,
}

impl PlanCtx {
    /// Reads, changes and writes the plan's status file under its lock.
    pub fn update<T>(
        &self,
        f: impl FnOnce(&mut StatusDoc) -> Result<T, StatusError>,
    ) -> Result<T, StatusError> {
        status::update(
            &self.status_path,
            &self.plan,
            &self.rel_path,
            &self.name,
            |doc, _| f(doc),
        )
        .map(|(v, _)| v)
    }

    /// The current status document (no lock, no write).
    pub fn view(&self) -> Result<StatusDoc, StatusError> {
        status::view(&self.status_path, &self.plan, &self.rel_path, &self.name).map(|(d, _)| d)
    }

    /// Whether task `id`, as recorded in `doc`, is done but its changes are not committed yet:
    /// completed after orch made the worktree, with no commit recorded.
    pub fn needs_commit(&self, doc: &StatusDoc, id: &str) -> bool {
        let Some(created) = self.created_at else {
            return false;
        };
        doc.entry(id).is_some_and(|e| {
            e.status == TaskStatus::Completed
                && e.commit.is_none()
                && e.completed_at
                    .as_deref()
                    .and_then(status::parse_timestamp)
                    .is_some_and(|t| t >= created)
        })
    }

    /// Whether each task runs in a task worktree of its own (`parallel_tasks` > 1, task mode).
    pub fn task_trees(&self) -> bool {
        self.parallel_tasks > 1 && self.agent.mode == AgentMode::Task
    }

    /// How many agents of the plan may run at once.
    pub fn slots(&self) -> usize {
        if self.task_trees() {
            self.parallel_tasks
        } else {
            self.parallel
        }
    }

    /// Task `id`'s worktree and branch (made next to the plan's worktree).
    pub fn task_tree<'a>(&'a self, id: &'a str) -> TaskTreeRequest<'a> {
        TaskTreeRequest {
            repo_root: &self.repo_root,
            plan: &self.name,
            plan_branch: &self.branch,
            id,
            worktree_root: self.worktree.parent().unwrap_or(&self.repo_root),
            copy: &self.copy,
        }
    }

    /// Task `id`'s worktree directory when the plan uses task worktrees and it exists.
    pub fn task_worktree(&self, id: &str) -> Option<PathBuf> {
        if !self.task_trees() {
            return None;
        }
        Some(self.task_tree(id).path()).filter(|p| p.is_dir())
    }

    /// The log of a task (`<log_dir>/<id>.log`), or of the plan agent (`plan.log`).
    pub fn log_path(&self, task: Option<&str>) -> PathBuf {
        self.log_dir.join(format!("{}.log", task.unwrap_or("plan")))
    }

    /// The commit message of a task: `<plan> <id>: <description>`, without the description's
    /// `(depends: …)` annotation.
    pub fn commit_message(&self, id: &str, description: &str) -> String {
        format!("{} {id}: {}", self.name, strip_annotations(description))
    }
}

/// A task description without its `(depends: …)`, `(est: …)` and `(pipeline-start: …)` annotations, spaces
/// collapsed: what a commit subject should say.
pub fn strip_annotations(description: &str) -> String {
    let mut out = String::with_capacity(description.len());
    let mut rest = description;
    while let Some(open) = rest.find('(') {
        let after = &rest[open + 1..];
        let lower = after.trim_start().to_ascii_lowercase();
        let is_note = lower.starts_with("depends:")
            || lower.starts_with("est:")
            || lower.starts_with("pipeline-start:");
        match (is_note, after.find(')')) {
            (true, Some(close)) => {
                out.push_str(&rest[..open]);
                rest = &after[close + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::strip_annotations;

    #[test]
    fn commit_subjects_drop_dependency_notes() {
        let cases = [
            ("Hash passwords (depends: 1.1)", "Hash passwords"),
            (
                "Add (HIGH) login (depends: 1.1, 2.3) form",
                "Add (HIGH) login form",
            ),
            ("Start (pipeline-start: when 1.3 completes)", "Start"),
            ("Keep (this) note", "Keep (this) note"),
            ("Write docs (est: 1h30m) (depends: 1.1)", "Write docs"),
            ("Unclosed (depends: 1.1", "Unclosed (depends: 1.1"),
        ];
        for (input, want) in cases {
            assert_eq!(strip_annotations(input), want, "{input}");
        }
    }
}
