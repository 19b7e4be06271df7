//! The gates of a resolution, decided by orch from its own records: the files of the resolution
//! worktree read as bytes (never through a link), git's conflict markers in them, the files the
//! explanation names. What changed against the conflicted tree, and the tree of the result built
//! from those bytes, are `git::MergeRepo`'s (`changed_from`, `tree_with`).

use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::git::WorkFile;

/// The most files beyond the conflicted ones a resolution may change (each named in the
/// agent's explanation and already on one side).
pub(crate) const MAX_EXTRA: usize = 8;

/// The largest file of a resolution orch reads (a conflicted source file is far smaller).
const MAX_FILE: u64 = 16 << 20;

/// The largest explanation read.
const MAX_EXPLANATION: u64 = 64 << 10;

/// A line that is one of git's conflict markers.
fn is_marker(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    for m in [b"<<<<<<<", b">>>>>>>", b"|||||||"] {
        if line.starts_with(m) && line.get(7).is_none_or(|c| *c == b' ') {
            return true;
        }
    }
    line == b"======="
}

/// The 1-based lines of `bytes` that are conflict markers and not content of either side: a
/// marker-like line that one side's version of the file has too (a `=======` heading
/// underline, a document about git) is the file's own.
pub(super) fn new_markers(bytes: &[u8], sides: &[&[u8]]) -> Vec<usize> {
    let trim = |l: &[u8]| -> Vec<u8> { l.strip_suffix(b"\r").unwrap_or(l).to_vec() };
    let own: std::collections::HashSet<Vec<u8>> = sides
        .iter()
        .flat_map(|s| s.split(|b| *b == b'\n'))
        .filter(|l| is_marker(l))
        .map(trim)
        .collect();
    marker_lines(bytes)
        .into_iter()
        .filter(|&n| {
            bytes
                .split(|b| *b == b'\n')
                .nth(n - 1)
                .is_some_and(|l| !own.contains(&trim(l)))
        })
        .collect()
}

/// The 1-based lines of `bytes` that are conflict markers.
pub(super) fn marker_lines(bytes: &[u8]) -> Vec<usize> {
    bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, l)| is_marker(l))
        .map(|(i, _)| i + 1)
        .collect()
}

/// Reads `rel` beneath `root` as bytes: a link at the path or on the way to it is reported, not
/// followed; a FIFO is not opened.
pub(super) fn read_entry(root: &Path, rel: &str) -> Result<WorkFile, String> {
    let path = root.join(rel);
    if let Some(link) = crate::links::symlinked_parent(root, Path::new(rel)) {
        let target = std::fs::read_link(&link).unwrap_or_default();
        return Ok(WorkFile::Link(target.into_os_string().into_encoded_bytes()));
    }
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(WorkFile::Absent),
        Err(e) => return Err(format!("cannot read `{rel}`: {e}")),
    };
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(&path).unwrap_or_default();
        return Ok(WorkFile::Link(target.into_os_string().into_encoded_bytes()));
    }
    if !meta.is_file() {
        return Ok(WorkFile::Other);
    }
    if meta.len() > MAX_FILE {
        return Err(format!("`{rel}` is larger than {} MiB", MAX_FILE >> 20));
    }
    let (mut f, _) = crate::untrusted::read::open(&path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    f.by_ref()
        .take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read `{rel}`: {e}"))?;
    Ok(WorkFile::File {
        bytes,
        executable: meta.permissions().mode() & 0o111 != 0,
    })
}

/// The explanation the agent left (`<notes dir>/explanation.md`), read without following a
/// link, at most 64 KiB; empty when there is none.
pub(super) fn explanation(notes_dir: &Path) -> String {
    let path = notes_dir.join(super::EXPLANATION);
    match crate::untrusted::read::head(&path, MAX_EXPLANATION) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    }
}

/// Whether the explanation names `path`: as a word of its own (between whitespace, quotes,
/// backticks or list punctuation).
pub(super) fn names(explanation: &str, path: &str) -> bool {
    explanation
        .split(|c: char| c.is_whitespace() || "`'\",;()[]<>".contains(c))
        .map(|w| w.trim_start_matches("./").trim_end_matches([':', '.']))
        .any(|w| w == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_as_git_writes_them() {
        let text = b"a\n<<<<<<< HEAD\nours\n||||||| base\nb\n=======\ntheirs\n>>>>>>> main\nz\n";
        assert_eq!(marker_lines(text), vec![2, 4, 6, 8]);
        // Lines that only begin like a marker are not one.
        assert!(marker_lines(b"<<<<<<<<\n========\n== x\n<<<<<<<x\n").is_empty());
        assert_eq!(marker_lines(b"x\r\n=======\r\n"), vec![2]);
        // A line one side has too is the file's own.
        let side: &[u8] = b"Title\n=======\n";
        assert!(new_markers(b"Title\n=======\nmore\n", &[side]).is_empty());
        assert_eq!(
            new_markers(b"Title\n=======\n<<<<<<< HEAD\n", &[side]),
            vec![3]
        );
    }

    #[test]
    fn an_explanation_names_a_path_as_a_word() {
        let e = "I also changed `src/lib.rs` and ./docs/a.md.\n- tests/x.rs: a caller\n";
        assert!(names(e, "src/lib.rs"));
        assert!(names(e, "docs/a.md"));
        assert!(names(e, "tests/x.rs"));
        assert!(!names(e, "lib.rs"));
        assert!(!names(e, "src"));
    }
}
