//! `orch status --disk`: what each plan's worktrees take on disk (the plan's worktree and its
//! task worktrees: their files and directories, each block counted once however many hard links
//! it has, symlinks not followed; the git objects, shared with the main repository, not counted).

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use crate::manifest::Manifest;

/// The directories of plan `name`'s worktrees that exist: its worktree, then its task worktrees
/// (`<worktree_root>/<name>+<id>`).
pub(crate) fn plan_trees(m: &Manifest, name: &str) -> Vec<PathBuf> {
    let main = m.worktree_path(name);
    let mut out: Vec<PathBuf> = vec![main.clone()];
    if let Some(root) = main.parent()
        && let Ok(dir) = std::fs::read_dir(root)
    {
        let prefix = format!("{name}+");
        let mut tasks: Vec<PathBuf> = dir
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(&prefix))
            })
            .map(|e| e.path())
            .collect();
        tasks.sort();
        out.extend(tasks);
    }
    out.retain(|p| p.is_dir());
    out
}

/// The bytes of the blocks under `dirs` (512-byte units, as `du` counts them), each inode once.
pub(crate) fn disk_bytes(dirs: &[PathBuf]) -> u64 {
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut total = 0;
    let mut stack: Vec<PathBuf> = Vec::new();
    for d in dirs {
        stack.push(d.clone());
        while let Some(dir) = stack.pop() {
            let Ok(read) = std::fs::read_dir(&dir) else {
                continue;
            };
            if let Ok(m) = std::fs::symlink_metadata(&dir)
                && seen.insert((m.dev(), m.ino()))
            {
                total += m.blocks() * 512;
            }
            for entry in read.flatten() {
                let Ok(m) = entry.metadata() else {
                    continue;
                };
                let ft = m.file_type();
                if ft.is_symlink() {
                    continue;
                }
                if ft.is_dir() {
                    stack.push(entry.path());
                } else if seen.insert((m.dev(), m.ino())) {
                    total += m.blocks() * 512;
                }
            }
        }
    }
    total
}

/// `bytes` for people: `512 B`, `4.0 KiB`, `161.3 MiB`, `1.20 GiB`.
pub(crate) fn human(bytes: u64) -> String {
    const KIB: f64 = 1024.0;
    let b = bytes as f64;
    if b < KIB {
        format!("{bytes} B")
    } else if b < KIB * KIB {
        format!("{:.1} KiB", b / KIB)
    } else if b < KIB * KIB * KIB {
        format!("{:.1} MiB", b / KIB / KIB)
    } else {
        format!("{:.2} GiB", b / KIB / KIB / KIB)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn blocks_are_counted_once_and_symlinks_not_followed() {
        let tmp = tempfile::TempDir::new().unwrap();
        let d = tmp.path().join("wt");
        std::fs::create_dir_all(d.join("sub")).unwrap();
        std::fs::write(d.join("a"), vec![1u8; 10_000]).unwrap();
        std::fs::hard_link(d.join("a"), d.join("sub/b")).unwrap();
        let big = tmp.path().join("big");
        std::fs::write(&big, vec![1u8; 1_000_000]).unwrap();
        std::os::unix::fs::symlink(&big, d.join("link")).unwrap();
        let n = disk_bytes(std::slice::from_ref(&d));
        assert!(n >= 10_000, "{n}");
        assert!(
            n < 100_000,
            "the hard link counts once, the symlink's target not at all: {n}"
        );
        assert_eq!(human(512), "512 B");
        assert_eq!(human(3 * 1024 * 1024 / 2), "1.5 MiB");
    }
}
