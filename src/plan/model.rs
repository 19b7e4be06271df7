//! The parsed form of a markdown plan. Pure data: no I/O, no scheduling.

use std::path::PathBuf;

use serde::Serialize;

use crate::diagnostic::Diagnostic;

/// Whether an entry is a task written in the plan or a phase's verification step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskKind {
    /// A `- [ ] N.M description` line.
    #[default]
    Task,
    /// The acceptance criteria of a `**VERIFY Phase N:**` block, run as one step with id `V<N>`.
    Verify,
}

/// Priority markers written in a task description.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Critical,
}

/// One task (or verification step) of a plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Task {
    /// `N.M` / `N.M.K` as written, or `V<N>` for a verification step.
    pub id: String,
    pub kind: TaskKind,
    /// The number of the phase this task belongs to.
    pub phase: u32,
    /// The task line after the id (for a verification step: its first criterion).
    pub description: String,
    /// The indented lines under the task (sub-bullets, continuation lines), dedented;
    /// for a verification step: the criteria, one per line.
    pub body: String,
    /// `[x]` / `[X]` in the file: the task was done before orch ran.
    pub done: bool,
    /// The ids written in `(depends: …)`, in written order; `None` when there is no such clause.
    pub depends: Option<Vec<String>>,
    pub priority: Priority,
    /// `(est: 20m)` in the description: the estimated duration in seconds; `None` when not
    /// written. Used to weigh the critical path (`orch up`) and by `orch simulate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimate_s: Option<u64>,
    /// File paths the task names (for conflict detection).
    pub files: Vec<String>,
    /// 1-based line of the task (or of the VERIFY marker).
    pub line: usize,
    /// Verification steps only: `false` for `(non-blocking)`, which does not hold up the next phase.
    pub blocking: bool,
    /// What a Spec Kit task line (`- [ ] T014 [P] [US1] …`) said besides its id; `None` for a
    /// task of orch's own grammar.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speckit: Option<Box<SpecKitTask>>,
}

/// The marks of a Spec Kit task line (`plan::parse::speckit`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SpecKitTask {
    /// `[P]`: may run beside the other `[P]` tasks next to it in its phase.
    pub parallel: bool,
    /// `[US1]`, `[US1] [US2]`, `[US3/US5]`: the user stories, in written order.
    pub stories: Vec<String>,
    /// The dependencies written for it ("depends on T012", "after T002", "**Prerequisite**:
    /// T015", a statement of the dependency section), in written order, without duplicates.
    /// `Task::depends` holds these and the order of the file.
    pub written: Vec<String>,
    /// The box as written: ` `, `x`, `X` or `~`.
    pub mark: char,
}

impl Task {
    /// The explicit dependencies, empty when none were written.
    pub fn dependencies(&self) -> &[String] {
        self.depends.as_deref().unwrap_or(&[])
    }
}

/// `**pipeline-start:** when 1.3 completes`: the phase opens when the trigger task completes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PipelineStart {
    pub trigger: String,
    pub(crate) line: usize,
}

/// A `## Phase N: title` section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Phase {
    pub number: u32,
    pub title: String,
    pub(crate) line: usize,
    pub pipeline_start: Option<PipelineStart>,
}

impl Phase {
    /// `Phase N: title`, the form the earlier system's status files use.
    pub(crate) fn label(&self) -> String {
        if self.title.is_empty() {
            format!("Phase {}", self.number)
        } else {
            format!("Phase {}: {}", self.number, self.title)
        }
    }
}

/// `**Execution Note:** Tasks 2.1-2.4 are [SEQUENTIAL] - reason`: these tasks never run together.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SequentialGroup {
    /// The task expression as written, e.g. `2.1-2.4` or `5.2 and 5.4`.
    pub label: String,
    /// Member task ids in file order.
    pub tasks: Vec<String>,
    pub reason: String,
    pub(crate) line: usize,
}

/// `**Execution Note:** Phases 2-3 are [PARALLEL] - reason`: these phases share one barrier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ParallelGroup {
    pub label: String,
    pub phases: Vec<u32>,
    pub reason: String,
    pub(crate) line: usize,
}

/// A parsed plan file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The file the plan was read from, as given.
    pub path: PathBuf,
    /// The first `# ` heading, or the file stem when there is none.
    pub title: String,
    /// Phases in file order.
    pub phases: Vec<Phase>,
    /// Tasks and verification steps in file order.
    pub tasks: Vec<Task>,
    pub sequential: Vec<SequentialGroup>,
    pub parallel: Vec<ParallelGroup>,
    /// Errors and warnings found while parsing and checking the plan.
    pub diagnostics: Vec<Diagnostic>,
}

impl Plan {
    pub(crate) fn task(&self, id: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }

    pub(crate) fn phase(&self, number: u32) -> Option<&Phase> {
        self.phases.iter().find(|p| p.number == number)
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    /// The sequential group a task belongs to, if any.
    pub(crate) fn sequential_group_of(&self, id: &str) -> Option<&SequentialGroup> {
        self.sequential
            .iter()
            .find(|g| g.tasks.iter().any(|t| t == id))
    }
}

/// The numeric parts of a task id (`2.10` → `[2, 10]`); `None` for ids that are not `N.M[.K]`.
pub(crate) fn id_parts(id: &str) -> Option<Vec<u32>> {
    let parts: Option<Vec<u32>> = id.split('.').map(|p| p.parse().ok()).collect();
    parts.filter(|p| (2..=3).contains(&p.len()))
}

/// Whether `id` has the form `N.M` or `N.M.K` (what [`id_parts`] accepts), without allocating.
pub(crate) fn is_task_id(id: &str) -> bool {
    // One pass over the bytes: each part an optional `+` and 1 to 9 digits (a part of more
    // digits may still fit a `u32`: those ids take the general path).
    let b = id.as_bytes();
    let (mut i, mut parts) = (0, 1);
    loop {
        if b.get(i) == Some(&b'+') {
            i += 1;
        }
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        match i - start {
            0 => return false,
            1..=9 => {}
            _ => return id_parts(id).is_some(),
        }
        match b.get(i) {
            None => return parts >= 2,
            Some(b'.') if parts < 3 => {
                i += 1;
                parts += 1;
            }
            Some(_) => return false,
        }
    }
}

/// The id of phase `n`'s verification step.
pub(crate) fn verify_id(phase: u32) -> String {
    format!("V{phase}")
}
