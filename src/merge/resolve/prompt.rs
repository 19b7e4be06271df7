//! The resolving agent's prompt: the conflicted files and their hunks, the two sides (the plan's
//! tasks and the commits on each side that touched those files) and what done means.

use std::fmt::Write as _;
use std::path::Path;

use super::gates::MAX_EXTRA;
use super::request::{ResolveRequest, Why};
use crate::git::{MergeRepo, Oid};

/// The most commits of one side the prompt lists.
pub(super) const MAX_COMMITS: usize = 20;

/// What the prompt says.
pub(super) struct PromptInput<'a> {
    /// The plan, its branch, the target, `verify`, and why the plan is handed to the agent.
    pub(crate) req: &'a ResolveRequest<'a>,
    pub(crate) workdir: &'a Path,
    pub(crate) notes: &'a Path,
    /// Each conflicted file with the lines of its markers (in the worktree as orch wrote it).
    pub(crate) files: Vec<(String, Vec<(usize, usize)>)>,
    /// The plan's tasks that name one of the files (`id: description`).
    pub(crate) tasks: Vec<String>,
    /// The commits of the plan branch (not on the target) that touched the files.
    pub(crate) ours: Vec<String>,
    /// The commits of the target (not on the plan branch) that touched the files.
    pub(crate) theirs: Vec<String>,
    pub(crate) check: Option<String>,
}

/// The prompt's text.
pub(super) fn render(p: &PromptInput) -> String {
    let mut s = String::new();
    let step = &p.req.step;
    let _ = writeln!(s, "# Resolve a merge for orch\n");
    match &p.req.why {
        Why::Conflict => {
            let _ = writeln!(
                s,
                "Merging {} into plan `{}`'s branch `{}` conflicts: both sides changed the same \
                 lines. Your working directory `{}` holds that merge, with git's conflict markers \
                 (`<<<<<<<`, `=======`, `>>>>>>>`) left in these files:\n",
                p.req.theirs_name(),
                step.plan,
                step.branch,
                p.workdir.display(),
            );
            for (f, spans) in &p.files {
                let at = hunks(spans);
                let _ = writeln!(s, "- `{f}`{at}");
            }
        }
        Why::Verify(output) => {
            let _ = writeln!(
                s,
                "Plan `{}` (branch `{}`) merges into {} without a textual conflict, but the \
                 verify command fails on the merge: the two sides do not work together. Your \
                 working directory `{}` holds that merge. The end of the verify output:\n\n```\n{}\n```\n",
                step.plan,
                step.branch,
                p.req.theirs_name(),
                p.workdir.display(),
                output.trim_end()
            );
        }
    }
    let list = |s: &mut String, title: &str, items: &[String]| {
        if items.is_empty() {
            return;
        }
        let _ = writeln!(s, "\n{title}\n");
        for i in items {
            let _ = writeln!(s, "- {i}");
        }
    };
    list(
        &mut s,
        &format!(
            "## The plan's side (`{}`): its tasks that name these files",
            step.branch
        ),
        &p.tasks,
    );
    list(
        &mut s,
        &format!("## Commits on `{}` that touched them", step.branch),
        &p.ours,
    );
    list(
        &mut s,
        &format!("## Commits on {} that touched them", p.req.theirs_name()),
        &p.theirs,
    );
    let _ = writeln!(s, "\n## What done means\n");
    let _ = writeln!(
        s,
        "- Edit the files so that the result keeps what both sides meant; remove every conflict \
         marker."
    );
    let _ = writeln!(
        s,
        "- Change no other file unless the resolution needs it. If it does, write the path of \
         each such file (an existing file of either side, at most {MAX_EXTRA}), one per line, \
         into `{}`. A change to any other file fails the resolution.",
        p.notes.display()
    );
    let _ = writeln!(
        s,
        "- Do not commit, do not run `git add`, `git merge`, `git checkout` or `git reset`: \
         orch reads your files and commits the merge itself."
    );
    let mut gates = vec![
        "no conflict marker is left".to_string(),
        "only those files changed".to_string(),
    ];
    if let Some(c) = &p.check {
        gates.push(format!("the check `{c}` passes"));
    }
    if let Some(v) = step.verify {
        let v = crate::merge::verify::shown(&v.argv);
        gates.push(format!(
            "`{v}` passes on the merge into {}",
            p.req.theirs_name()
        ));
    }
    let gates = match gates.split_last() {
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    };
    let _ = writeln!(
        s,
        "- Then exit. orch keeps your resolution only if {gates}; otherwise nothing of it lands."
    );
    s
}

/// ` (conflict markers at lines 3-9, 20-24)` from a file's hunks.
fn hunks(spans: &[(usize, usize)]) -> String {
    if spans.is_empty() {
        return String::new();
    }
    let spans: Vec<String> = spans.iter().map(|(a, b)| format!("{a}-{b}")).collect();
    format!(" (conflict markers at lines {})", spans.join(", "))
}

/// The hunks (first and last line) of each of `files` in `tree`, as git wrote them.
pub(super) fn marked_files(
    repo: &MergeRepo,
    tree: Oid,
    files: &[String],
) -> Vec<(String, Vec<(usize, usize)>)> {
    files
        .iter()
        .map(|f| {
            let spans = repo
                .file_at(tree, f)
                .map(|b| hunk_spans(&b))
                .unwrap_or_default();
            (f.clone(), spans)
        })
        .collect()
}

/// From each `<<<<<<<` line to the `>>>>>>>` line after it (1-based).
fn hunk_spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.starts_with(b"<<<<<<<") && start.is_none() {
            start = Some(i + 1);
        } else if line.starts_with(b">>>>>>>")
            && let Some(st) = start.take()
        {
            out.push((st, i + 1));
        }
    }
    out
}
