//! The git CLI, where orch runs git rather than libgit2 (a new worktree's checkout, a sparse
//! plan's cone, the task worktree pool's resets and landings, a commit's staging, `git
//! merge-tree`, `orch top`'s diff, the demo's graph; the book's benchmarks page says why): the one
//! place in orch that starts git (`tests/conventions.rs` checks it).
//!
//! Every run names its git directory and work tree from orch's own records (`--git-dir`,
//! `--work-tree`: [`super::locate`], never a worktree's `.git` file, which its agent writes),
//! with orch's own git variables removed, no terminal, git's messages in English, and settings
//! that keep git from running a program configured where an agent may have written: no hooks, no
//! fsmonitor, no submodule recursion (a status or diff that recurses runs a child git inside the
//! nested repository, which reads that repository's config; the one exception is the status of
//! the user's own work tree that has the target checked out, `super::status`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::error::CliFailure;

/// The program orch runs, found on `PATH` (by [`super::programs`] when git runs confined).
const GIT: &str = "git";

/// Settings given to every git run, over any config file.
const SAFE_CONFIG: [&str; 5] = [
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "submodule.recurse=false",
    "diff.ignoreSubmodules=all",
    "status.submoduleSummary=false",
];

/// What a git run works on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum GitTarget<'a> {
    /// A work tree orch knows (a worktree it made, or the repository's main work dir): its git
    /// directory is found by [`super::locate::locate`].
    WorkTree(&'a Path),
    /// A git directory (the common one, or a scratch repository), without a work tree.
    GitDir(&'a Path),
    /// A work tree and its git directory, both from orch's own records (a submodule's checkout
    /// in a worktree and its admin dir, `super::submodules`): nothing is looked up.
    Admin {
        git_dir: &'a Path,
        work_tree: &'a Path,
    },
}

/// `git` for `target`, with orch's settings (see the module's documentation), confined to
/// executing git's own programs ([`confined`]); the caller adds the subcommand and runs it.
/// Stdin is `/dev/null`.
pub(crate) fn command(target: GitTarget<'_>) -> Result<Command, String> {
    build(target, true)
}

/// [`command`] without the confinement of what git executes: for `orch pr`'s `git push` only,
/// which works on no work tree and runs your transport as you configured it (ssh and its
/// `ProxyCommand`, a credential helper).
pub(crate) fn transport_command(target: GitTarget<'_>) -> Result<Command, String> {
    build(target, false)
}

fn build(target: GitTarget<'_>, confine: bool) -> Result<Command, String> {
    let (git_dir, work_tree) = match target {
        GitTarget::WorkTree(dir) => {
            let loc = super::locate::locate(dir).map_err(|e| e.to_string())?;
            (loc.git_dir, Some(loc.work_tree))
        }
        GitTarget::GitDir(dir) => (dir.to_path_buf(), None),
        GitTarget::Admin { git_dir, work_tree } => {
            (git_dir.to_path_buf(), Some(work_tree.to_path_buf()))
        }
    };
    let mut cmd = match confine.then(|| confined(&git_dir)).transpose()?.flatten() {
        Some(cmd) => cmd,
        // Never a `git` an agent could have put where it may write (`sandbox_write` on PATH).
        None => crate::agent_env::command(crate::sandbox::program_on_path(GIT)?),
    };
    cmd.arg(git_dir_arg(&git_dir));
    match &work_tree {
        Some(w) => {
            cmd.arg(work_tree_arg(w));
            crate::process::place(&mut cmd, w);
        }
        None => crate::process::place(&mut cmd, &git_dir),
    }
    for setting in SAFE_CONFIG {
        cmd.args(["-c", setting]);
    }
    cmd.stdin(Stdio::null());
    scrub(&mut cmd);
    Ok(cmd)
}

/// orch's own git variables and `GIT_CONFIG*` of the environment removed, messages in English.
fn scrub(cmd: &mut Command) {
    for var in crate::agent_env::GIT_ENV {
        cmd.env_remove(var);
    }
    for var in ["GIT_CONFIG", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT"] {
        cmd.env_remove(var);
    }
    cmd.env("LC_ALL", "C").env_remove("LANGUAGE");
}

/// `git` at `git` (absolute) with the environment of [`command`], no settings, no confinement:
/// for what [`super::programs`] asks git (its exec path, the config), which starts nothing.
fn plain(git: &Path) -> Command {
    let mut cmd = crate::agent_env::command(git);
    cmd.stdin(Stdio::null());
    scrub(&mut cmd);
    cmd
}

/// The orch executable beside which the helper that confines git runs is (`orch-exec git-exec`,
/// else `orch git-exec`, [`crate::process::session::helper`]), once the binary said so
/// ([`confine_runs`]); a library used without it (its unit tests) runs git unconfined.
static ORCH_EXE: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Makes every git run of this process (but `orch pr`'s push) start through `orch-exec git-exec`,
/// confined to executing git's own programs ([`confined`]): called by the `orch` binary before
/// it runs a command.
pub fn confine_runs() {
    ORCH_EXE.get_or_init(|| std::env::current_exe().ok());
}

/// `orch-exec git-exec --exec P… -- <git>` for a git run on the git directory `git_dir`; `None`
/// when this process does not confine git ([`confine_runs`]), the kernel has no Landlock, or
/// your git configuration names a driver ([`super::programs::allowed`]): then nothing confines
/// what git executes, and what holds is that git reads no configuration of a work tree's
/// choosing ([`super::nested`]). An error when it should confine and cannot.
///
/// Confined or not, git started this way dies with the orch that waits for it (`--parent`): a
/// `kill -9` of orch mid-checkout does not leave git writing into a worktree the next orch
/// cleans up.
fn confined(git_dir: &Path) -> Result<Option<Command>, String> {
    let Some(Some(orch)) = ORCH_EXE.get() else {
        return Ok(None);
    };
    let helper = crate::process::session::helper(orch, crate::process::session::Helper::Git);
    let Some((program, verb)) = helper.split_first() else {
        return Ok(None);
    };
    let mut cmd = crate::agent_env::command(program);
    cmd.args(verb)
        .arg(format!("--parent={}", std::process::id()));
    if !crate::sandbox::exec_supported() {
        cmd.arg("--unconfined").arg("--").arg(GIT);
        return Ok(Some(cmd));
    }
    let install = super::programs::install(GIT, &plain)?;
    match super::programs::allowed(install, git_dir, &plain) {
        Some(allow) => {
            for p in allow.iter() {
                cmd.arg("--exec").arg(p);
            }
        }
        None => {
            cmd.arg("--unconfined");
        }
    }
    cmd.arg("--").arg(&install.git);
    Ok(Some(cmd))
}

fn git_dir_arg(dir: &Path) -> OsString {
    let mut arg = OsString::from("--git-dir=");
    arg.push(dir);
    arg
}

fn work_tree_arg(dir: &Path) -> OsString {
    let mut arg = OsString::from("--work-tree=");
    arg.push(dir);
    arg
}

/// Runs `git ARGS` in the work tree `dir`: its standard output, or what went wrong.
pub(super) fn run(dir: &Path, args: &[&str]) -> Result<Vec<u8>, CliFailure> {
    run_on(GitTarget::WorkTree(dir), args)
}

/// [`run`], its failure a [`GitError::Cli`](super::GitError::Cli) naming `dir`.
pub(super) fn run_in(dir: &Path, args: &[&str]) -> Result<Vec<u8>, super::GitError> {
    run(dir, args).map_err(|source| super::GitError::Cli {
        path: dir.to_path_buf(),
        source,
    })
}

/// [`run`] on `target`.
pub(super) fn run_on(target: GitTarget<'_>, args: &[&str]) -> Result<Vec<u8>, CliFailure> {
    let shown = args.join(" ");
    let out = command(target)
        .map_err(CliFailure::Locate)?
        .args(args)
        .output()
        .map_err(|source| CliFailure::Spawn {
            args: shown.clone(),
            source,
        })?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(CliFailure::Failed {
            args: shown,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Set once the run stops at once ([`stop_long_runs`]): the runs of [`run_stoppable`] end.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Ends the git runs that may take long (a commit's staging, [`run_stoppable`]) now and from
/// now on: `orch up` stopping at once (SIGTERM, a second Ctrl-C) does not wait for a `git add`
/// hashing an agent's files.
pub(crate) fn stop_long_runs() {
    STOPPING.store(true, Ordering::SeqCst);
}

/// Whether [`stop_long_runs`] was called.
pub(crate) fn stopping() -> bool {
    STOPPING.load(Ordering::SeqCst)
}

/// The most of a stoppable run's error output kept.
const STDERR_MAX: u64 = 64 * 1024;

/// [`run`] (its output dropped) that can be stopped: git runs in a process group of its own,
/// watched until it ends; once [`stop_long_runs`] is called, the group is killed and the run
/// fails with [`CliFailure::Stopped`]. Its error output is read as it comes (at most
/// [`STDERR_MAX`] kept), so git never blocks on a full pipe.
pub(super) fn run_stoppable(dir: &Path, args: &[&str]) -> Result<(), CliFailure> {
    use std::io::Read as _;
    use std::os::unix::process::CommandExt as _;
    let shown = args.join(" ");
    if stopping() {
        return Err(CliFailure::Stopped { args: shown });
    }
    let mut cmd = command(GitTarget::WorkTree(dir)).map_err(CliFailure::Locate)?;
    cmd.args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().map_err(|source| CliFailure::Spawn {
        args: shown.clone(),
        source,
    })?;
    let stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut kept = Vec::new();
        if let Some(mut s) = stderr {
            let _ = (&mut s).take(STDERR_MAX).read_to_end(&mut kept);
            let _ = std::io::copy(&mut s, &mut std::io::sink());
        }
        kept
    });
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if stopping() => {
                crate::process::signal_group(child.id(), nix::sys::signal::Signal::SIGKILL);
                let _ = child.kill();
                let _ = child.wait();
                break Err(CliFailure::Stopped {
                    args: shown.clone(),
                });
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(source) => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(CliFailure::Spawn {
                    args: shown.clone(),
                    source,
                });
            }
        }
    };
    let stderr = reader.join().unwrap_or_default();
    let status = status?;
    if status.success() {
        Ok(())
    } else {
        Err(CliFailure::Failed {
            args: shown,
            status,
            stderr: String::from_utf8_lossy(&stderr).trim().to_string(),
        })
    }
}
