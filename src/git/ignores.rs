//! The `.gitignore` files that decide whether orch's own paths and the files it copies into each
//! worktree stay out of git, for a person: a landed change to one that could stop ignoring such
//! a path is a protected change, left to a person (`orch merge --allow-protected`).
//!
//! orch keeps its directories out of git with `.git/info/exclude`, and the files it copies into
//! worktrees (a `.env`) are ignored by the repository's own rules; a tracked `.gitignore`
//! overrides both. Red team 13 landed `!/.orch/`, `!/.orch/**` and `!.env` in the root
//! `.gitignore` with a plain `orch merge`: the person's next `git add -A` staged orch's state,
//! every agent's logs and prompts, the worktrees, and their own `.env`. A change to the root
//! `.gitignore`, or one in a directory above an own or copied path, lands without a person only
//! when it keeps every line it had, in order, and adds only lines that are not negations (`!…`):
//! such a change can only ignore more. orch's own directory also ignores itself
//! ([`super::repo::ignore_own_dir`]).

use std::collections::BTreeSet;
use std::path::Path;

use git2::{Repository, Tree};

/// The most of a `.gitignore` orch reads to judge a change: a larger one is a protected change.
const MAX_IGNORE_FILE: usize = 1 << 20;

/// The `.gitignore` files whose rules apply to `paths` (relative to the repository root,
/// `/`-separated): the root's, and that of each directory above a path.
pub(super) fn ignore_files_over(paths: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::from([".gitignore".to_string()]);
    for p in paths {
        for dir in crate::manifest::ancestors(p.trim_end_matches('/')) {
            if !dir.is_empty() {
                out.insert(format!("{dir}/.gitignore"));
            }
        }
    }
    out
}

/// Whether a `.gitignore` going from `old` to `new` only ignores more: every line of `old` kept,
/// in order, and every line added a plain pattern ([`plain`]).
pub(super) fn only_ignores_more(old: &[u8], new: &[u8]) -> bool {
    let old: Vec<&[u8]> = lines(old);
    let mut old = old.into_iter().peekable();
    for line in lines(new) {
        if old.peek() == Some(&line) {
            old.next();
        } else if !plain(line) {
            return false;
        }
    }
    old.next().is_none()
}

/// Whether an added line can only ignore: printable ASCII (a tab, a carriage return at its end),
/// no `!` anywhere (a negation, however git may come to read it: red team 14 hid one behind a
/// byte-order mark, which git skips and a byte compare does not). Anything else is left to a
/// person.
fn plain(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.iter()
        .all(|b| ((b' '..=b'~').contains(b) && *b != b'!') || *b == b'\t')
}

/// The lines of a `.gitignore` as git reads them (a UTF-8 byte-order mark at its start skipped),
/// the empty ones aside (they mean nothing).
fn lines(text: &[u8]) -> Vec<&[u8]> {
    let text = text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text);
    text.split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .collect()
}

/// Of `files`, those whose content differs between `base` and `tip` other than by only
/// ignoring more ([`only_ignores_more`]): a file added, removed, changed or replaced by
/// something else counts, as does one too large to judge.
pub(super) fn unignoring_changes(
    repo: &Repository,
    base: &Tree<'_>,
    tip: &Tree<'_>,
    files: &BTreeSet<String>,
) -> Result<Vec<String>, git2::Error> {
    let mut out = Vec::new();
    for f in files {
        let at = |t: &Tree<'_>| {
            t.get_path(Path::new(f))
                .ok()
                .map(|e| (e.id(), e.filemode()))
        };
        let (was, now) = (at(base), at(tip));
        if was == now {
            continue;
        }
        let content = |e: Option<(git2::Oid, i32)>| -> Result<Option<Vec<u8>>, git2::Error> {
            let Some((id, mode)) = e else {
                return Ok(Some(Vec::new()));
            };
            // A link, a directory or a submodule at the name: not a file orch judges.
            if mode != 0o100_644 && mode != 0o100_755 {
                return Ok(None);
            }
            let odb = repo.odb()?;
            let (size, _) = odb.read_header(id)?;
            if size > MAX_IGNORE_FILE {
                return Ok(None);
            }
            Ok(Some(odb.read(id)?.data().to_vec()))
        };
        let ok = match (content(was)?, content(now)?) {
            (Some(old), Some(new)) => only_ignores_more(&old, &new),
            _ => false,
        };
        if !ok {
            out.push(f.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_that_only_ignores_more_and_those_that_could_un_ignore() {
        let old = b"target/\n.env\n/.orch/\n";
        for (new, more) in [
            (&b"target/\n.env\n/.orch/\nnode_modules/\n"[..], true),
            (b"dist/\ntarget/\n\n.env\n*.log\n/.orch/\n", true),
            (b"target/\n.env\n/.orch/\n!/.orch/\n", false),
            (b"target/\n/.orch/\n", false),
            (b"/.orch/\ntarget/\n.env\n", false),
            (b"target/\n.env\n/.orch/\n!.env\n", false),
            (b"", false),
        ] {
            assert_eq!(
                only_ignores_more(old, new),
                more,
                "{}",
                String::from_utf8_lossy(new)
            );
        }
        assert!(only_ignores_more(b"", b"node_modules/\n"));
        assert!(!only_ignores_more(b"", b"!/.orch/**\n"));
        // Red team 14: a negation behind a byte-order mark, before the old lines or alone; one
        // with a carriage return; a `!` elsewhere, a byte outside printable ASCII.
        for new in [
            &b"\xEF\xBB\xBF!.env\ntarget/\n.env\n/.orch/\n"[..],
            b"\xEF\xBB\xBF!/.orch/\n",
            b"target/\n.env\n/.orch/\n!.env\r\n",
            b"target/\n.env\n/.orch/\n\\!.env\n",
            b"target/\n.env\n/.orch/\n\xC2\xA0!.env\n",
            b"target/\n.env\n/.orch/\nr\xC3\xA9sum\xC3\xA9\n",
        ] {
            assert!(!only_ignores_more(old, new), "{new:?}");
        }
        // A mark added or dropped changes nothing git reads.
        assert!(only_ignores_more(
            old,
            b"\xEF\xBB\xBFtarget/\n.env\n/.orch/\n"
        ));
        assert!(only_ignores_more(
            b"\xEF\xBB\xBFtarget/\n.env\n/.orch/\n",
            b"target/\n.env\n/.orch/\n\tdist/\r\n"
        ));
    }

    #[test]
    fn the_files_over_own_and_copied_paths() {
        let got = ignore_files_over(&[
            ".orch/state".to_string(),
            "config/app/.env".to_string(),
            ".env".to_string(),
        ]);
        let want: BTreeSet<String> = [
            ".gitignore",
            ".orch/.gitignore",
            "config/.gitignore",
            "config/app/.gitignore",
        ]
        .map(str::to_string)
        .into();
        assert_eq!(got, want);
    }
}
