//! The size of a worktree's change: lines added and removed against its HEAD, untracked files
//! counted whole (best of N's tie-break: the smaller change wins). Read with libgit2, nothing
//! written.

use std::path::Path;

use git2::DiffOptions;

/// Lines added plus lines removed in `worktree` (tracked changes and untracked files that git
/// does not ignore) against its HEAD commit.
pub(crate) fn lines_changed(worktree: &Path) -> Result<u64, String> {
    let repo = super::open(worktree).map_err(|e| e.to_string())?;
    let head = repo
        .head()
        .and_then(|h| h.peel_to_tree())
        .map_err(|e| format!("cannot read HEAD of `{}`: {e}", worktree.display()))?;
    let mut opts = DiffOptions::new();
    opts.include_untracked(true)
        .recurse_untracked_dirs(true)
        .show_untracked_content(true)
        .include_typechange(true);
    let diff = repo
        .diff_tree_to_workdir_with_index(Some(&head), Some(&mut opts))
        .map_err(|e| format!("cannot diff `{}`: {e}", worktree.display()))?;
    let stats = diff
        .stats()
        .map_err(|e| format!("cannot count the changes of `{}`: {e}", worktree.display()))?;
    Ok((stats.insertions() + stats.deletions()) as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn tracked_and_untracked_lines_are_counted() {
        let dir = tempfile::tempdir().expect("tmp");
        let repo = git2::Repository::init(dir.path()).expect("init");
        std::fs::write(dir.path().join("a.txt"), "one\ntwo\n").expect("write");
        let mut index = repo.index().expect("index");
        index.add_path(std::path::Path::new("a.txt")).expect("add");
        index.write().expect("write the index");
        let tree = repo
            .find_tree(index.write_tree().expect("tree"))
            .expect("tree");
        let sig = git2::Signature::now("t", "t@example.com").expect("sig");
        repo.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
            .expect("commit");
        assert_eq!(super::lines_changed(dir.path()), Ok(0));
        std::fs::write(dir.path().join("a.txt"), "one\nTWO\n").expect("write");
        std::fs::write(dir.path().join("b.txt"), "x\ny\nz\n").expect("write");
        // One line removed and one added in a.txt, three added in b.txt.
        assert_eq!(super::lines_changed(dir.path()), Ok(5));
    }
}
