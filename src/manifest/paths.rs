//! Paths in the manifest: plan files and `copy` entries, which must stay inside the repository
//! (lexically and through symlinks).

use std::path::{Component, Path, PathBuf};

use super::spans::{At, Bad, Reporter};

/// A list of paths inside the repository (`copy`).
pub(super) fn rel_paths(
    r: &mut Reporter<'_>,
    root: &Path,
    ctx: &str,
    at: Option<&At<Vec<At<String>>>>,
) -> Option<Vec<PathBuf>> {
    r.each(at, |v| {
        inside_dir(Path::new(v))
            .filter(|p| !p.as_os_str().is_empty() && !leaves_via_symlink(root, p))
            .ok_or_else(|| {
                Bad::new(format!(
                    "`{ctx}` entry `{v}` is not a path inside the repository"
                ))
                .hint("give a relative path such as \".env\"")
            })
    })
}

pub(super) fn check_plan_file(
    value: &str,
    span: &std::ops::Range<usize>,
    root: &Path,
    r: &mut Reporter<'_>,
) {
    if value.is_empty() {
        r.error(span, "plan file must not be empty");
        return;
    }
    let Some(rel) = inside_root(Path::new(value), root) else {
        r.error_hint(
            span,
            format!("plan file `{value}` is outside the manifest's directory"),
            "plan files must live in the repository; give a path relative to plans.toml",
        );
        return;
    };
    let abs = root.join(&rel);
    let Ok(meta) = std::fs::symlink_metadata(&abs) else {
        r.error(span, format!("plan file `{value}` does not exist"));
        return;
    };
    // A plan file is configuration a later run trusts, and may have been landed from an
    // agent's branch: a link there is never followed (to `/etc/passwd`, to a file outside, or
    // to another plan), and a FIFO or device is never opened.
    if meta.file_type().is_symlink() {
        r.error_hint(
            span,
            format!("plan file `{value}` is a symbolic link, which orch does not follow"),
            "commit the plan file itself at that path, or name the file the link points to",
        );
        return;
    }
    if let Some(kind) = crate::untrusted::read::kind_of(&meta) {
        r.error(
            span,
            format!("plan file `{value}` is {kind}, not a regular file"),
        );
        return;
    }
    // A symlink must not lead out of the repository either.
    if let (Ok(real), Ok(real_root)) = (abs.canonicalize(), root.canonicalize())
        && !real.starts_with(&real_root)
    {
        r.error(
            span,
            format!("plan file `{value}` resolves to a path outside the manifest's directory"),
        );
    }
}

/// Whether `rel` (already inside `root` lexically) leads out of `root` through a symlink: its
/// deepest existing ancestor, resolved, is not inside `root` resolved. A root that cannot be
/// resolved (it does not exist) has nothing to follow.
pub(super) fn leaves_via_symlink(root: &Path, rel: &Path) -> bool {
    let Ok(real_root) = root.canonicalize() else {
        return false;
    };
    let full = root.join(rel);
    full.ancestors()
        .take_while(|a| a.starts_with(root))
        .find(|a| std::fs::symlink_metadata(a).is_ok())
        .and_then(|a| a.canonicalize().ok())
        .is_some_and(|real| !real.starts_with(&real_root))
}

/// `p` made relative to `root` and normalized, or `None` when it leads outside `root`.
pub(super) fn inside_root(p: &Path, root: &Path) -> Option<PathBuf> {
    if p.is_absolute() {
        let rel = p
            .strip_prefix(root)
            .ok()
            .map(Path::to_path_buf)
            .or_else(|| {
                let real_root = root.canonicalize().ok()?;
                p.strip_prefix(real_root).ok().map(Path::to_path_buf)
            })?;
        inside_dir(&rel)
    } else {
        inside_dir(p)
    }
}

/// A relative path normalized lexically (`.` dropped, `..` applied), or `None` when it is absolute
/// or climbs above its starting directory.
pub(crate) fn inside_dir(p: &Path) -> Option<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.iter().collect())
}

/// One directory of a plan's `paths` (its sparse cone), with where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PlanPath {
    /// Normalized, relative to the repository root, `/`-separated: `services/auth`.
    pub(crate) dir: String,
    /// Where it was written in `plans.toml` (1-based).
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// A plan's `paths`: relative directories that stay inside the repository (no `..`, not
/// absolute, not empty, not `.git`); each bad entry reported at its location.
pub(super) fn sparse_paths(
    r: &mut Reporter<'_>,
    at: Option<&At<Vec<At<String>>>>,
) -> Vec<PlanPath> {
    let Some(At { value, span }) = at else {
        return Vec::new();
    };
    if value.is_empty() {
        r.error_hint(
            span,
            "`plan.paths` must name at least one directory",
            "remove `paths` to check out the whole tree",
        );
    }
    let mut out: Vec<PlanPath> = Vec::new();
    for item in value {
        let p = Path::new(&item.value);
        let climbs = p.components().any(|c| c == Component::ParentDir);
        let normal = (!climbs && !p.is_absolute())
            .then(|| inside_dir(p))
            .flatten()
            .filter(|n| !n.as_os_str().is_empty())
            .and_then(|n| n.to_str().map(str::to_string))
            .filter(|n| n.split('/').next() != Some(".git"));
        let Some(dir) = normal else {
            r.error_hint(
                &item.span,
                format!(
                    "`plan.paths` entry `{}` is not a directory inside the repository (no `..`, not absolute)",
                    item.value
                ),
                "give directories relative to the repository root, such as \"services/auth\"",
            );
            continue;
        };
        if out.iter().any(|o| o.dir == dir) {
            continue;
        }
        let (line, column) = r.line_col(&item.span);
        out.push(PlanPath { dir, line, column });
    }
    out
}

/// Whether `file` (relative, `/`-separated) is in the cone of `dirs` (cone mode: the files of
/// the root, of each directory's ancestors, and everything under each directory). With no
/// `dirs`, every file is.
pub(crate) fn in_cone<S: AsRef<str>>(dirs: &[S], file: &str) -> bool {
    if dirs.is_empty() {
        return true;
    }
    let parent = file.rsplit_once('/').map_or("", |(d, _)| d);
    dirs.iter().any(|d| {
        let d = d.as_ref();
        let under = file.len() > d.len() && file.starts_with(d) && file.as_bytes()[d.len()] == b'/';
        let ancestor = parent.is_empty()
            || (d.len() > parent.len()
                && d.starts_with(parent)
                && d.as_bytes()[parent.len()] == b'/')
            || d == parent;
        under || ancestor
    })
}

/// The `warm` entries: plain relative paths, neither absolute nor climbing out with `..` (a
/// tracked one is refused later, by the workspace, which opens the repository).
pub(super) fn warm_paths(
    r: &mut Reporter<'_>,
    ctx: &str,
    at: Option<&At<Vec<At<String>>>>,
) -> Vec<super::Warm> {
    let mut out = Vec::new();
    for item in at.map_or(&[][..], |a| &a.value[..]) {
        let path = Path::new(&item.value);
        let why = if path.is_absolute() {
            Some("is an absolute path")
        } else if path.components().any(|c| c == Component::ParentDir) {
            Some("leads outside the repository (`..`)")
        } else if path.components().any(|c| c.as_os_str() == ".git") {
            Some("is inside `.git`")
        } else if inside_dir(path).is_none_or(|p| p.as_os_str().is_empty()) {
            Some("names the repository root")
        } else {
            None
        };
        match (why, inside_dir(path)) {
            (None, Some(p)) => {
                let (line, column) = r.line_col(&item.span);
                out.push(super::Warm { path: p, line, column });
            }
            (why, _) => r.error_hint(
                &item.span,
                format!(
                    "`{ctx}` entry `{}` {}",
                    item.value,
                    why.unwrap_or("is not a path inside the repository")
                ),
                "name an ignored directory of the main work tree, relative to the repository root: warm = [\"target\"]",
            ),
        }
    }
    out
}

#[cfg(test)]
mod cone_tests {
    use super::in_cone;

    #[test]
    fn the_cone_holds_its_directories_their_parents_files_and_the_root() {
        let dirs = ["services/auth", "libs/common"];
        for yes in [
            "README.md",
            "services/auth/main.rs",
            "services/auth/deep/x.rs",
            "services/top.txt",
            "libs/common/lib.rs",
        ] {
            assert!(in_cone(&dirs, yes), "{yes}");
        }
        for no in [
            "services/authz/x.rs",
            "services/billing/main.rs",
            "lib/x.rs",
            "libs/other/y.rs",
            "docs/a/b.md",
        ] {
            assert!(!in_cone(&dirs, no), "{no}");
        }
        assert!(in_cone::<&str>(&[], "anything/at/all"));
    }
}
