//! `orch init --from tasks.md`: a `plans.toml` for one Spec Kit `tasks.md`, or a clear refusal
//! (a file that is not Spec Kit's, a `plans.toml` already there, a file outside the directory).

use std::io::Write as _;
use std::path::{Component, Path};

use anyhow::{Context as _, anyhow};

use super::output::println_safe;
use crate::error::{CliError, CliResult, exit};
use crate::manifest::MANIFEST_NAME;

/// Writes `<dir>/plans.toml` naming `from` (relative to `dir`) as one Spec Kit plan.
pub(crate) fn run(dir: &Path, from: &Path) -> CliResult<u8> {
    let invalid = |msg: String| CliError::invalid(anyhow!(msg));
    // The plan file must be inside the manifest's directory, written relative to it.
    let rel = relative_inside(dir, from).ok_or_else(|| {
        invalid(format!(
            "`{}` is not inside `{}`: a plan file must be in the directory of its plans.toml",
            from.display(),
            dir.display()
        ))
    })?;
    let Some(rel_text) = rel.to_str().filter(|s| !s.contains(['"', '\\', '\n'])) else {
        return Err(invalid(format!(
            "`{}`: orch writes plan paths of plain characters only",
            rel.display()
        )));
    };
    let manifest = dir.join(MANIFEST_NAME);
    if manifest.symlink_metadata().is_ok() {
        return Err(CliError::new(
            exit::REFUSED,
            anyhow!(
                "refusing to overwrite `{}`; nothing was written",
                manifest.display()
            ),
        )
        .with_hint("add a [[plan]] with `format = \"speckit\"` to it by hand"));
    }
    // Bounded, not following a link, as every plan file is read.
    let plan = crate::plan::parse_file(&dir.join(&rel))
        .map_err(|e| CliError::invalid(anyhow!(e.to_string())))?;
    let speckit = plan.tasks.iter().any(|t| t.speckit.is_some());
    if !speckit {
        return Err(invalid(format!(
            "`{rel_text}` is not a Spec Kit tasks.md: it has no task line `- [ ] T001 …` outside code fences, or it has orch's own (`- [ ] 1.1 …`); nothing was written"
        )));
    }
    let name = plan_name(&rel);
    let text = format!(
        "# plans.toml for a Spec Kit tasks.md, written by `orch init --from {rel_text}`.\n\
         # Every key is described in orch's book (manifest.md); `orch init` in an empty directory\n\
         # writes a manifest that shows them all.\n\
         \n\
         [defaults]\n\
         # The agent: a preset (\"claude\", \"codex\", …) or an [agents.NAME] table.\n\
         agent = \"claude\"\n\
         \n\
         [[plan]]\n\
         name = \"{name}\"\n\
         file = \"{rel_text}\"\n\
         # Its T### ids are the task ids; [P] tasks run side by side, up to parallel_tasks.\n\
         format = \"speckit\"\n\
         parallel_tasks = 2\n"
    );
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&manifest)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("cannot write `{}`", manifest.display()))?;
    println_safe(&format!(
        "wrote {MANIFEST_NAME}: plan `{name}` ({rel_text}, {} tasks, {} done)",
        plan.tasks.len(),
        plan.tasks.iter().filter(|t| t.done).count()
    ));
    println_safe(
        "\nnext steps:\n  orch check    see what orch understood of it\n  orch up       run it",
    );
    Ok(exit::OK)
}

/// `from` relative to `dir` (both as given, made absolute), when it lies inside it with no `..`.
fn relative_inside(dir: &Path, from: &Path) -> Option<std::path::PathBuf> {
    let dir = std::path::absolute(dir).ok()?;
    let from = std::path::absolute(from).ok()?;
    let rel = from.strip_prefix(&dir).ok()?;
    rel.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| rel.to_path_buf())
        .filter(|r| !r.as_os_str().is_empty())
}

/// The plan's name: the directory the file is in (`specs/003-distribution/tasks.md` →
/// `003-distribution`), reduced to the characters a plan name may hold, else `tasks`.
fn plan_name(rel: &Path) -> String {
    let base = rel
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let kept: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_') {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    let kept = kept.trim_matches('-');
    if kept.is_empty() || !kept.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        "tasks".to_string()
    } else {
        kept.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert_eq!(
            plan_name(Path::new("specs/003-distribution/tasks.md")),
            "003-distribution"
        );
        assert_eq!(plan_name(Path::new("tasks.md")), "tasks");
        assert_eq!(plan_name(Path::new("a b/tasks.md")), "a-b");
        assert_eq!(plan_name(Path::new("_x/tasks.md")), "tasks");
        let d = Path::new("/r");
        assert_eq!(
            relative_inside(d, Path::new("/r/specs/t.md")),
            Some("specs/t.md".into())
        );
        assert_eq!(relative_inside(d, Path::new("/r/../etc/t.md")), None);
        assert_eq!(relative_inside(d, Path::new("/other/t.md")), None);
        assert_eq!(relative_inside(d, Path::new("/r")), None);
    }
}
