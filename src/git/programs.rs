//! The programs orch's git may start (`orch git-exec`, [`super::cli`]): git's own (its binary
//! and its exec path, `git --exec-path`), the programs your git configuration names (global,
//! system, and the repository's own `.git/config`: a filter driver such as git-lfs, a diff
//! textconv, a merge driver, a signing program, ssh, a credential helper), each resolved
//! through `PATH` and symlinks, and the interpreters those need to start (an ELF program's
//! loader, a script's `#!` interpreter). Nothing a work tree holds adds to the list.
//!
//! git starts a configured command through `/bin/sh -c` when it holds a character special to
//! the shell (a space included: any argument); `/bin/sh` is then allowed, and only then.
//!
//! Found once per git directory and process (git's own, once per process): a run of `git
//! config --list` that starts nothing, found again when the repository's config file changes.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The characters for which git runs a configured command through the shell (git's
/// `run-command.c`).
const SHELL_CHARS: &[char] = &[
    '|', '&', ';', '<', '>', '(', ')', '$', '`', '\\', '"', '\'', ' ', '\t', '\n', '*', '?', '[',
    '#', '~', '=', '%',
];

/// The configuration keys whose values git runs as programs (section, then key suffix; names
/// as `git config --list` prints them, lowercase).
fn runs_program(key: &str) -> bool {
    let ends = |s: &str| key.ends_with(s);
    match key.split('.').next().unwrap_or_default() {
        "filter" => ends(".clean") || ends(".smudge") || ends(".process"),
        "diff" => ends(".textconv") || ends(".command") || key == "diff.external",
        "merge" => ends(".driver"),
        "core" => matches!(
            key,
            "core.sshcommand" | "core.askpass" | "core.gitproxy" | "core.alternaterefscommand"
        ),
        "gpg" => ends(".program"),
        _ => false,
    }
}

/// git itself: its binary (as found on `PATH`) and what it may start of its own.
#[derive(Debug)]
pub(super) struct Install {
    /// The git binary orch runs, absolute.
    pub(super) git: PathBuf,
    /// Its binary, exec path and their interpreters, resolved.
    allow: Vec<PathBuf>,
}

/// [`Install`] of the git on `PATH`, found once per process.
pub(super) fn install() -> Result<&'static Install, String> {
    static INSTALL: OnceLock<Result<Install, String>> = OnceLock::new();
    INSTALL
        .get_or_init(|| {
            let git = on_path("git").ok_or("cannot find `git` on PATH")?;
            let out = super::cli::plain(&git)
                .arg("--exec-path")
                .output()
                .map_err(|e| format!("cannot run `{} --exec-path`: {e}", git.display()))?;
            let exec_path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            let mut allow = Vec::new();
            add_program(&git, &mut allow);
            if let Ok(dir) = exec_path.canonicalize() {
                allow.push(dir);
            }
            Ok(Install { git, allow })
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// What the configuration of the git directory `git_dir` (and the global and system ones)
/// lets git start, with git's own: the paths for `orch git-exec --exec`.
pub(super) fn allowed(install: &Install, git_dir: &Path) -> Arc<Vec<PathBuf>> {
    type Cache = Mutex<HashMap<PathBuf, (Option<Stamp>, Arc<Vec<PathBuf>>)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let common = common_dir(git_dir);
    let stamp = stamp(&common.join("config"));
    let cache = CACHE.get_or_init(Cache::default);
    if let Ok(map) = cache.lock()
        && let Some((s, found)) = map.get(&common)
        && *s == stamp
    {
        return Arc::clone(found);
    }
    let mut allow = install.allow.clone();
    configured(install, &common, &mut allow);
    allow.sort();
    allow.dedup();
    let found = Arc::new(allow);
    if let Ok(mut map) = cache.lock() {
        map.insert(common, (stamp, Arc::clone(&found)));
    }
    found
}

/// When, and how long, a config file was last written.
type Stamp = (std::time::SystemTime, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
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

/// Adds the programs the configuration of `common` (and the global and system ones, and the
/// environment git reads them from) names to `allow`.
fn configured(install: &Install, common: &Path, allow: &mut Vec<PathBuf>) {
    let mut values: Vec<(String, String)> = Vec::new();
    let out = super::cli::plain(&install.git)
        .arg(super::cli::git_dir_arg(common))
        .args(["config", "--list", "-z", "--includes"])
        .current_dir(common)
        .output();
    if let Ok(out) = out {
        for item in out.stdout.split(|b| *b == 0) {
            let item = String::from_utf8_lossy(item);
            if let Some((key, value)) = item.split_once('\n') {
                values.push((key.to_string(), value.to_string()));
            }
        }
    }
    for var in ["GIT_SSH_COMMAND", "GIT_SSH", "GIT_ASKPASS", "SSH_ASKPASS", "GIT_EXTERNAL_DIFF"] {
        if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            values.push(("env".to_string(), v.to_string_lossy().into_owned()));
        }
    }
    let mut shell = false;
    for (key, value) in &values {
        if key == "env" || runs_program(key) {
            shell |= value.contains(SHELL_CHARS);
            add_words(value, allow);
        } else if key == "credential.helper"
            || (key.starts_with("credential.") && key.ends_with(".helper"))
        {
            // `!cmd`, an absolute path, or `git credential-<name>`: what they start is allowed.
            // git runs each through the shell, which is not allowed for them alone: only a
            // transport asks for credentials, and `orch pr`'s push runs unconfined.
            match value.strip_prefix('!') {
                Some(cmd) => add_words(cmd, allow),
                None if value.starts_with('/') => add_words(value, allow),
                None => {
                    let name = value.split_whitespace().next().unwrap_or_default();
                    if let Some(p) = on_path(&format!("git-credential-{name}")) {
                        add_program(&p, allow);
                    }
                }
            }
        }
    }
    // The default transport program (git-lfs, for one, runs it).
    if let Some(ssh) = on_path("ssh") {
        add_program(&ssh, allow);
    }
    if shell && let Some(sh) = on_path_or_abs("/bin/sh") {
        add_program(&sh, allow);
    }
}

/// Every word of the command line `cmd` that names a program (on `PATH`, or a path to an
/// executable file), with its interpreters.
fn add_words(cmd: &str, allow: &mut Vec<PathBuf>) {
    let words = cmd
        .split(|c: char| c.is_whitespace() || "|&;<>()".contains(c))
        .map(|w| w.trim_matches(|c| c == '"' || c == '\''))
        .filter(|w| !w.is_empty() && !w.starts_with(['-', '$', '%']));
    for w in words {
        if let Some(p) = on_path_or_abs(w) {
            add_program(&p, allow);
        }
    }
}

/// `name` when it holds a `/` (an executable file), else the first executable file of that
/// name on `PATH`.
fn on_path_or_abs(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return executable(&p).then_some(p);
    }
    on_path(name)
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
    std::env::split_paths(&path)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(name))
        .find(|p| executable(p))
}

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
            && let Some(named) = arg.as_deref().and_then(on_path_or_abs)
        {
            add_program(&named, allow);
        }
    }
}

/// The interpreter named by the `#!` line of the script `path`, and its first argument.
fn shebang(path: &Path) -> Option<(PathBuf, Option<String>)> {
    let mut head = [0u8; 256];
    let n = std::fs::File::open(path).ok()?.read(&mut head).ok()?;
    let line = head[..n].strip_prefix(b"#!")?;
    let line = String::from_utf8_lossy(line.split(|b| *b == b'\n').next()?).into_owned();
    let mut words = line.split_whitespace();
    let interp = PathBuf::from(words.next()?);
    Some((interp, words.next().map(str::to_string)))
}

/// The loader (`PT_INTERP`) an ELF program at `path` names; `None` for a static program, a
/// script or an unreadable file. Reads at most a few KiB.
fn elf_interpreter(path: &Path) -> Option<PathBuf> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut head = vec![0u8; 4096];
    let n = f.read(&mut head).ok()?;
    head.truncate(n);
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
    fn program_keys() {
        for k in [
            "filter.lfs.process",
            "filter.x.clean",
            "diff.pdf.textconv",
            "diff.external",
            "merge.ours.driver",
            "core.sshcommand",
            "gpg.program",
            "gpg.ssh.program",
        ] {
            assert!(runs_program(k), "{k}");
        }
        for k in ["filter.lfs.required", "core.fsmonitor", "user.name", "merge.x.name"] {
            assert!(!runs_program(k), "{k}");
        }
    }

    #[test]
    fn a_programs_loader_and_a_scripts_interpreter() {
        let sh = on_path("sh").expect("sh on PATH");
        let mut allow = Vec::new();
        add_program(&sh, &mut allow);
        assert!(allow.len() >= 2, "{allow:?}");
        assert!(
            allow.iter().any(|p| p.to_string_lossy().contains("ld-")),
            "{allow:?}"
        );
        let tmp = tempfile::tempdir().expect("tmp");
        let script = tmp.path().join("s");
        std::fs::write(&script, "#!/usr/bin/env sh\necho\n").expect("script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut allow = Vec::new();
        add_words(&format!("{} --flag %f", script.display()), &mut allow);
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
