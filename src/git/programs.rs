//! What orch's git may start (`orch git-exec`, [`super::cli`]): git's own programs (its binary
//! as found on `PATH`, its exec path `git --exec-path`, resolved through links, and the ELF
//! loader they need), and nothing else, when your git configuration names no driver; when it
//! names one (a filter such as git-lfs, a diff textconv, a merge driver), git runs
//! unconfined ([`allowed`] says why). Nothing a work tree holds changes either.
//!
//! Found once per process (git's own) and per git directory (whether its configuration names
//! a driver: a `git config --list`, which starts nothing, run again when the bytes of the
//! repository's config file change; a change of the global or system config, or of a file one
//! includes, is seen by the next process).

use std::collections::HashMap;
use std::ffi::OsString;
#[cfg(test)]
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

/// The configuration keys whose values name a program git starts on a work tree's files
/// (names as `git config --list` prints them, lowercase). Transport and signing programs
/// (`core.sshCommand`, `gpg.program`, a credential helper) are not among them: no git run of
/// orch's but `orch pr`'s push (unconfined) starts one.
fn runs_program(key: &str) -> bool {
    let ends = |s: &str| key.ends_with(s);
    match key.split('.').next().unwrap_or_default() {
        "filter" => ends(".clean") || ends(".smudge") || ends(".process"),
        "diff" => ends(".textconv") || ends(".command") || key == "diff.external",
        "merge" => ends(".driver"),
        _ => false,
    }
}

/// git itself: its binary (as found on `PATH`) and what it may start of its own.
#[derive(Debug)]
pub(super) struct Install {
    /// The git binary orch runs, absolute.
    pub(super) git: PathBuf,
    /// Its binary, exec path and their interpreters, resolved.
    allow: Arc<Vec<PathBuf>>,
}

/// [`Install`] of the program `name` (git) on `PATH`, found once per process; `query` is git
/// at a path with the runner's environment ([`super::cli`]), which this asks its exec path.
pub(super) fn install(
    name: &str,
    query: &dyn Fn(&Path) -> Command,
) -> Result<&'static Install, String> {
    static INSTALL: OnceLock<Result<Install, String>> = OnceLock::new();
    INSTALL
        .get_or_init(|| {
            // Never one an agent could have put where it may write (`sandbox_write` on PATH).
            let git = crate::sandbox::program_on_path(name)?;
            let out = query(&git)
                .arg("--exec-path")
                .output()
                .map_err(|e| format!("cannot run `{} --exec-path`: {e}", git.display()))?;
            let exec_path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            let mut allow = Vec::new();
            add_program(&git, &mut allow);
            if let Ok(dir) = exec_path.canonicalize() {
                allow.push(dir);
            }
            allow.sort();
            allow.dedup();
            Ok(Install {
                git,
                allow: Arc::new(allow),
            })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The paths for `orch git-exec --exec` of a git run on the git directory `git_dir`: git's
/// own, when neither its configuration (the repository's own `.git/config`, the global and
/// system ones) nor the environment names a program git would start on a work tree's files (a
/// filter, diff or merge driver); `None` when one does: git then runs unconfined.
///
/// Not the named programs with git's: a driver is a program that starts others (a script's
/// `tr`, git-lfs's `git`), which the list cannot know, and an interpreter or a shell among the
/// allowed programs (git starts any driver with an argument through `/bin/sh`) would run any
/// program, through the ELF loader that every program needs (`ld.so /path/prog`), for a config
/// that named it with the file's bytes on its standard input. What holds then is that orch's
/// git reads no configuration of a work tree's choosing ([`super::nested`]).
pub(super) fn allowed(
    install: &Install,
    git_dir: &Path,
    query: &dyn Fn(&Path) -> Command,
) -> Option<Arc<Vec<PathBuf>>> {
    type Cache = Mutex<HashMap<PathBuf, (Option<Stamp>, bool)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let common = common_dir(git_dir);
    let stamp = stamp(&common.join("config"));
    let cache = CACHE.get_or_init(Cache::default);
    let known = cache.lock().ok().and_then(|map| {
        map.get(&common)
            .filter(|(s, _)| s.is_some() && *s == stamp)
            .map(|e| e.1)
    });
    let drivers = known.unwrap_or_else(|| {
        let found = names_drivers(install, &common, query);
        if let Ok(mut map) = cache.lock() {
            map.insert(common, (stamp, found));
        }
        found
    });
    (!drivers).then(|| Arc::clone(&install.allow))
}

/// What of a config file can name a driver, as a hash: its lines that hold a driver's key
/// (`clean`, `smudge`, `process`, `textconv`, `command`, `external`, `driver`), a section that
/// has them (`filter`, `diff`, `merge`) or an include (`include`, `path`), case folded. orch
/// rewrites the repository's config at every task (its marks on the branches it makes, which
/// hold none of these): that is not asked about again. A file past 1 MiB, or one that cannot
/// be read, has none: it is asked about at every run.
type Stamp = u64;

fn stamp(path: &Path) -> Option<Stamp> {
    use std::hash::{Hash as _, Hasher as _};
    const WORDS: [&str; 12] = [
        "clean", "smudge", "process", "textconv", "command", "external", "driver", "filter",
        "diff", "merge", "include", "path",
    ];
    let bytes = crate::untrusted::read::head_of_yours(path, 1 << 20).ok()?;
    if bytes.len() >= 1 << 20 {
        return None;
    }
    let text = String::from_utf8_lossy(&bytes).to_lowercase();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for line in text.lines().filter(|l| WORDS.iter().any(|w| l.contains(w))) {
        line.hash(&mut h);
    }
    Some(h.finish())
}

/// The common git directory of `git_dir`: a linked worktree's admin directory is
/// `<common>/worktrees/<name>` (orch's records: [`super::locate`]); anything else is its own.
fn common_dir(git_dir: &Path) -> PathBuf {
    match git_dir.parent() {
        Some(p) if p.file_name().is_some_and(|n| n == "worktrees") => {
            p.parent().unwrap_or(git_dir).to_path_buf()
        }
        _ => git_dir.to_path_buf(),
    }
}

/// Whether the configuration of `common` (with the global and system ones) or the
/// environment names a driver git would start on a work tree's files. A config that cannot
/// be read counts as naming one (git then runs as it did, unconfined).
fn names_drivers(install: &Install, common: &Path, query: &dyn Fn(&Path) -> Command) -> bool {
    if std::env::var_os("GIT_EXTERNAL_DIFF").is_some_and(|v| !v.is_empty()) {
        return true;
    }
    let mut git_dir = OsString::from("--git-dir=");
    git_dir.push(common);
    let out = query(&install.git)
        .arg(git_dir)
        .args(["config", "--list", "-z", "--includes", "--name-only"])
        .current_dir(common)
        .output();
    match out {
        Ok(out) if out.status.success() => out
            .stdout
            .split(|b| *b == 0)
            .any(|key| runs_program(&String::from_utf8_lossy(key))),
        _ => true,
    }
}

#[cfg(test)]
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
    std::env::split_paths(&path)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(name))
        .find(|p| executable(p))
}

#[cfg(test)]
fn executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Adds `program` (resolved through links) and what starting it executes: an ELF program's
/// loader, a script's interpreter (and, for `#!/usr/bin/env NAME`, NAME on `PATH`).
fn add_program(program: &Path, allow: &mut Vec<PathBuf>) {
    let Ok(real) = program.canonicalize() else {
        return;
    };
    if allow.contains(&real) {
        return;
    }
    allow.push(real.clone());
    if let Some(interp) = elf_interpreter(&real) {
        if let Ok(i) = interp.canonicalize()
            && !allow.contains(&i)
        {
            allow.push(i);
        }
        return;
    }
    if let Some((interp, arg)) = shebang(&real) {
        let via_env = interp.file_name().is_some_and(|n| n == "env");
        add_program(&interp, allow);
        if via_env
            && let Some(named) = arg
                .as_deref()
                .and_then(|n| crate::sandbox::program_on_path(n).ok())
        {
            add_program(&named, allow);
        }
    }
}

/// The interpreter named by the `#!` line of the script `path`, and its first argument.
fn shebang(path: &Path) -> Option<(PathBuf, Option<String>)> {
    let head = crate::untrusted::read::head_of_yours(path, 256).ok()?;
    let line = head.strip_prefix(b"#!")?;
    let line = String::from_utf8_lossy(line.split(|b| *b == b'\n').next()?).into_owned();
    let mut words = line.split_whitespace();
    let interp = PathBuf::from(words.next()?);
    Some((interp, words.next().map(str::to_string)))
}

/// The loader (`PT_INTERP`) an ELF program at `path` names; `None` for a static program, a
/// script or an unreadable file. Reads at most a few KiB.
fn elf_interpreter(path: &Path) -> Option<PathBuf> {
    let head = crate::untrusted::read::head_of_yours(path, 4096).ok()?;
    if head.get(..4)? != b"\x7fELF" {
        return None;
    }
    let wide = *head.get(4)? == 2;
    let little = *head.get(5)? == 1;
    let num = |at: usize, len: usize| -> Option<u64> {
        let b = head.get(at..at + len)?;
        let mut v: u64 = 0;
        for i in 0..len {
            let byte = if little { b[len - 1 - i] } else { b[i] };
            v = (v << 8) | u64::from(byte);
        }
        Some(v)
    };
    let (phoff, phentsize, phnum) = if wide {
        (num(0x20, 8)?, num(0x36, 2)?, num(0x38, 2)?)
    } else {
        (num(0x1c, 4)?, num(0x2a, 2)?, num(0x2c, 2)?)
    };
    for i in 0..phnum {
        let at = usize::try_from(phoff + i * phentsize).ok()?;
        if num(at, 4)? != 3 {
            continue;
        }
        let (offset, size) = if wide {
            (num(at + 8, 8)?, num(at + 32, 8)?)
        } else {
            (num(at + 4, 4)?, num(at + 16, 4)?)
        };
        let (offset, size) = (usize::try_from(offset).ok()?, usize::try_from(size).ok()?);
        let name = head.get(offset..offset + size)?;
        let name = name.strip_suffix(b"\0").unwrap_or(name);
        return Some(PathBuf::from(String::from_utf8_lossy(name).into_owned()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_keys() {
        for k in [
            "filter.lfs.process",
            "filter.x.clean",
            "filter.x.smudge",
            "diff.pdf.textconv",
            "diff.x.command",
            "diff.external",
            "merge.ours.driver",
        ] {
            assert!(runs_program(k), "{k}");
        }
        for k in [
            "filter.lfs.required",
            "core.fsmonitor",
            "core.sshcommand",
            "gpg.program",
            "credential.helper",
            "user.name",
            "merge.x.name",
        ] {
            assert!(!runs_program(k), "{k}");
        }
    }

    #[test]
    fn a_programs_loader_and_a_scripts_interpreter() {
        let sh = on_path("sh").expect("sh on PATH");
        let mut allow = Vec::new();
        add_program(&sh, &mut allow);
        assert!(
            allow.iter().any(|p| p.to_string_lossy().contains("ld-")),
            "{allow:?}"
        );
        let tmp = tempfile::tempdir().expect("tmp");
        let script = tmp.path().join("s");
        std::fs::write(&script, "#!/usr/bin/env sh\necho\n").expect("script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut allow = Vec::new();
        add_program(&script, &mut allow);
        assert!(allow.iter().any(|p| p.ends_with("env")), "{allow:?}");
        assert!(allow.contains(&sh.canonicalize().expect("sh")), "{allow:?}");
    }

    #[test]
    fn common_dir_of_a_linked_worktree() {
        assert_eq!(
            common_dir(Path::new("/r/.git/worktrees/a")),
            PathBuf::from("/r/.git")
        );
        assert_eq!(common_dir(Path::new("/r/.git")), PathBuf::from("/r/.git"));
    }
}
