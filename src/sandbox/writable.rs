//! What the confined agents of this process's manifest may write besides their own places
//! (`sandbox_write`, noted when the manifest resolves each agent's sandbox): orch never runs a
//! program of its own choosing from there (`git`, `ssh` found on `PATH`), since an agent could
//! have put it there.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

static ROOTS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Notes `paths` as writable by agents (each also as it resolves through links).
pub(crate) fn note(paths: &[PathBuf]) {
    let mut roots = ROOTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for p in paths {
        for q in [Some(p.clone()), p.canonicalize().ok()]
            .into_iter()
            .flatten()
        {
            if !roots.contains(&q) {
                roots.push(q);
            }
        }
    }
}

/// Whether `path` (as named, or as it resolves through links) lies beneath a path agents may
/// write.
pub(crate) fn agent_writable(path: &Path) -> bool {
    let roots = ROOTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // As it resolves through links (its directory's, when it does not exist).
    let real = path.canonicalize().ok().or_else(|| {
        let dir = path.parent()?.canonicalize().ok()?;
        Some(dir.join(path.file_name()?))
    });
    roots
        .iter()
        .any(|r| path.starts_with(r) || real.as_ref().is_some_and(|p| p.starts_with(r)))
}

/// The program `name` on `PATH` (its first executable), passing over every one that lies where
/// agents may write ([`agent_writable`]); `Err` names what was passed over when nothing else is
/// found.
pub(crate) fn program_on_path(name: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    let mut passed = Vec::new();
    for dir in std::env::split_paths(&path).filter(|d| d.is_absolute()) {
        let p = dir.join(name);
        let runnable =
            std::fs::metadata(&p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if !runnable {
            continue;
        }
        if agent_writable(&p) {
            passed.push(p.display().to_string());
            continue;
        }
        return Ok(p);
    }
    Err(if passed.is_empty() {
        format!("cannot find `{name}` on PATH")
    } else {
        format!(
            "`{name}` is found on PATH only where agents may write ({}: `sandbox_write`), and orch does not run it from there: put a `{name}` of yours earlier on PATH",
            passed.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_where_agents_write_is_passed_over() {
        let tmp = tempfile::tempdir().expect("tmp");
        let planted = tmp.path().join("planted");
        std::fs::create_dir_all(&planted).expect("dir");
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&planted, &link).expect("link");
        note(std::slice::from_ref(&planted));
        assert!(agent_writable(&planted.join("git")));
        assert!(agent_writable(&link.join("git")), "through a link");
        assert!(!agent_writable(&tmp.path().join("other/git")));
    }
}
