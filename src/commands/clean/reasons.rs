//! Why `orch clean` keeps a plan whose files no backup would hold: the files named, bounded.

use std::path::{Path, PathBuf};

use super::shown;
use crate::git;

/// Why a plan with files no save keeps is kept: the files (at most five), their sizes, the limit
/// and what to do.
pub(super) fn unsaveable_reason(
    files: &[(std::path::PathBuf, u64)],
    max_file: u64,
    repo_root: &Path,
) -> String {
    let named: Vec<String> = files
        .iter()
        .take(5)
        .map(|(p, size)| {
            format!(
                "`{}` ({})",
                shown(p, repo_root).escape_debug(),
                git::human_size(*size)
            )
        })
        .collect();
    format!(
        "{} uncommitted file{} larger than `max_file_size` ({}), which no backup holds: {}{}; \
         move {} out of the worktree (or delete {}), then run `orch clean` again",
        files.len(),
        if files.len() == 1 { "" } else { "s" },
        git::human_size(max_file),
        named.join(", "),
        if files.len() > 5 { ", …" } else { "" },
        if files.len() == 1 { "it" } else { "them" },
        if files.len() == 1 { "it" } else { "them" },
    )
}

/// Why a plan with places orch cannot read is kept: the places (at most five, each path
/// bounded), why, and what to do.
pub(super) fn unreadable_reason(found: &[git::Unreadable], repo_root: &Path) -> String {
    let named: Vec<String> = found
        .iter()
        .take(5)
        .map(|u| match u {
            git::Unreadable::Denied { path, why } => {
                format!("`{}` ({why})", bounded(path, repo_root))
            }
            git::Unreadable::TooDeep { path, depth } => format!(
                "`{}` ({depth} directories deep: git saves no path deeper than {} directories or longer \
                 than the system allows)",
                bounded(path, repo_root),
                git::GIT_MAX_DEPTH
            ),
        })
        .collect();
    let mut fixes = Vec::new();
    if found
        .iter()
        .any(|u| matches!(u, git::Unreadable::Denied { .. }))
    {
        fixes.push("make what it names readable (`chmod -R u+rwX <path>`)".to_string());
    }
    if let Some(top) = found.iter().find_map(|u| match u {
        git::Unreadable::TooDeep { path, depth } => Some(top_dir(path, *depth, repo_root)),
        git::Unreadable::Denied { .. } => None,
    }) {
        fixes.push(format!(
            "move the deep chain out or delete it yourself (`rm -rf {top}`)"
        ));
    }
    format!(
        "orch cannot read everything in its worktree{}, so no check or backup would hold it all: \
         {}{}; {} or move out what you want to keep, then run `orch clean` again",
        if found.len() == 1 { "" } else { "s" },
        named.join(", "),
        if found.len() > 5 { ", …" } else { "" },
        fixes.join(", or "),
    )
}

/// `path` from the repository's root, escaped, and shortened when long (a deep chain's path runs
/// to tens of kilobytes): its first components, `…`, its last.
fn bounded(path: &Path, repo_root: &Path) -> String {
    const MAX: usize = 160;
    let full = shown(path, repo_root);
    if full.len() <= MAX {
        return full.escape_debug().to_string();
    }
    let rel = path.strip_prefix(repo_root).unwrap_or(path);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let head: Vec<&str> = parts.iter().take(5).map(String::as_str).collect();
    let mut head = head.join("/");
    if head.len() > MAX {
        head = head.chars().take(MAX).collect();
    }
    let last: String = parts
        .last()
        .map(|l| l.chars().take(40).collect())
        .unwrap_or_default();
    format!(
        "{}/…/{} ({} path components)",
        head.escape_debug(),
        last.escape_debug(),
        parts.len()
    )
}

/// The directory a deep chain starts at: the worktree's child that `path` (`depth` directories
/// below the worktree's root) lies under, shown escaped and bounded.
fn top_dir(path: &Path, depth: usize, repo_root: &Path) -> String {
    let n = path.components().count();
    let keep = n.saturating_sub(depth.saturating_sub(1));
    let top: PathBuf = path.components().take(keep).collect();
    bounded(&top, repo_root)
}
