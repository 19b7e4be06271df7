//! Spec Kit's boxes ticked as its own `/implement` ticks them: at the end of `orch up`, each task
//! of a Spec Kit plan that the run's records say is completed gets `[X]` (or `[x]`, the file's
//! own spelling) in the plan file orch read, in the person's checkout. One byte per box is
//! written in place, nothing else of the file changes, and the file read again has the same tasks.
//!
//! The file may have been shaped by a landed branch, so it is written only as a regular file
//! reached beneath the repository without any link on the way
//! ([`crate::untrusted::read::beneath_for_update`]), and only at the boxes of task lines the
//! parser finds in what is there now (the file may have changed since the run read it).

use std::collections::HashSet;
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use super::context::PlanCtx;
use crate::status::TaskStatus;
use crate::untrusted::read;

/// Ticks the boxes of plan `pc`'s completed Spec Kit tasks in its file: how many were ticked
/// (0 for a plan that is not Spec Kit's, or with nothing to tick), or why none could be.
pub(crate) fn tick_completed(home: &Path, pc: &PlanCtx) -> Result<usize, String> {
    if !pc.plan.tasks.iter().any(|t| t.speckit.is_some()) {
        return Ok(0);
    }
    let doc = pc.view().map_err(|e| e.to_string())?;
    let completed: HashSet<&str> = doc
        .entries()
        .filter(|e| e.status == TaskStatus::Completed)
        .map(|e| e.id.as_str())
        .collect();
    if !pc
        .plan
        .tasks
        .iter()
        .any(|t| !t.done && completed.contains(t.id.as_str()))
    {
        return Ok(0);
    }
    let file = &pc.entry.abs_file;
    let (root, rel) = [home, pc.repo_root.as_path()]
        .into_iter()
        .find_map(|root| Some((root, file.strip_prefix(root).ok()?)))
        .ok_or_else(|| {
            format!(
                "`{}` is not in the repository `{}`",
                file.display(),
                home.display()
            )
        })?;
    let (handle, bytes) =
        read::beneath_for_update(root, rel, read::PLAN).map_err(|e| e.to_string())?;
    let text =
        String::from_utf8(bytes).map_err(|_| format!("`{}` is not UTF-8 text", rel.display()))?;
    // What the file holds now, not what the run read: only its task lines get a mark.
    let now = crate::plan::parse(rel, &text);
    let wanted: Vec<(usize, &str)> = now
        .tasks
        .iter()
        .filter(|t| t.speckit.is_some() && !t.done && completed.contains(t.id.as_str()))
        .map(|t| (t.line, t.id.as_str()))
        .collect();
    let marks = crate::plan::speckit_ticks(&text, &wanted);
    for &(at, mark) in &marks {
        handle
            .write_at(&[mark], at as u64)
            .map_err(|e| format!("cannot write `{}`: {e}", rel.display()))?;
    }
    if !marks.is_empty() {
        handle
            .sync_data()
            .map_err(|e| format!("cannot write `{}`: {e}", rel.display()))?;
    }
    Ok(marks.len())
}
