//! `orch remote-run`: orch's copy on a `[[host]]` runs one attempt there for the lead's driver
//! ([`super::attempt`]), speaking [`super::frames`] on its stdin and stdout. It makes the
//! attempt's worktree from the host's bare cache at the exact base commit of the job, runs the
//! agent in it (confined by Landlock with the rules of a local attempt: its worktree, its
//! `TMPDIR`, its report directory, a private copy of its client's state, the devices; never the
//! cache, the worktree's git admin directory, orch's copy, or a file of another attempt), relays each `orch task` report with a snapshot of the worktree
//! taken first, and, when the agent ends, sends the last snapshot and its exit status. The
//! attempt's directory is removed only once the lead says its last snapshot is safe there; a
//! driver gone (end of stdin) stops the agent and keeps the directory and its snapshot ref.

use std::io::Read;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::frames;
use super::job::{Job, Place, commit_id, safe_name, snapshot_ref};
use crate::git::GitTarget;
use crate::status::report::{ANSWER_FILE, REPORT_FILE, TAKEN_FILE, read_nofollow, write_json};

type Out = Arc<Mutex<std::io::Stdout>>;

fn send(out: &Out, tag: u8, payload: &[u8]) -> std::io::Result<()> {
    let mut o = out.lock().map_err(|_| std::io::Error::other("poisoned"))?;
    frames::write(&mut *o, tag, payload)
}

/// What the host's wrapper may write of an agent's output: everything as it comes (the lead's
/// side caps the attempt's log).
const HOST_LOG_MAX: u64 = 1 << 62;

/// Between SIGTERM and SIGKILL for what a stopped attempt left running on the host.
const GRACE: Duration = Duration::from_secs(5);

/// Runs the job read from stdin; the exit code of `orch remote-run`.
pub(crate) fn run(dir: &Path) -> u8 {
    let out: Out = Arc::new(Mutex::new(std::io::stdout()));
    // Frames from the driver, on a thread: `None` is its end.
    let (tx, rx) = mpsc::channel::<Option<(u8, Vec<u8>)>>();
    std::thread::spawn(move || {
        let mut input = std::io::stdin().lock();
        loop {
            match frames::read(&mut input) {
                Ok(Some(f)) => {
                    if tx.send(Some(f)).is_err() {
                        return;
                    }
                }
                _ => {
                    let _ = tx.send(None);
                    return;
                }
            }
        }
    });
    let job = match rx.recv() {
        Ok(Some((frames::JOB, bytes))) => match serde_json::from_slice::<Job>(&bytes) {
            Ok(job) => job,
            Err(e) => return fail(&out, &format!("a job orch cannot read: {e}")),
        },
        _ => return fail(&out, "no job"),
    };
    // An error before [`frames::STARTED`] is orch's own preparation failing on the host, never
    // the agent's doing: the lead tells it from where it comes in the frames, not its words.
    match attempt(dir, &job, &out, &rx) {
        Ok(code) => code,
        Err(e) => fail(&out, &e),
    }
}

fn fail(out: &Out, message: &str) -> u8 {
    let _ = send(out, frames::ERROR, message.as_bytes());
    1
}

/// Runs git on the host, its stdout trimmed.
fn git(
    cmd: Result<Command, String>,
    args: &[&str],
    env: &[(&str, &Path)],
) -> Result<String, String> {
    let mut cmd = cmd?;
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd
        .output()
        .map_err(|e| format!("cannot run git {}: {e}", args.join(" ")))?;
    if !o.status.success() {
        return Err(format!(
            "git {} failed: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&o.stdout).trim().to_string())
}

/// The places of one attempt on the host.
struct Places {
    cache: PathBuf,
    attempt: PathBuf,
    worktree: PathBuf,
    admin: PathBuf,
    tmp: PathBuf,
    state: PathBuf,
    reports: PathBuf,
    prompt: PathBuf,
    /// The private copy of the client's state of a confined attempt.
    client: PathBuf,
}

/// Removes a directory when dropped: an attempt's private client state goes with the attempt
/// (a host's copy of the remote user's credentials is not left behind).
struct Removed(Option<PathBuf>);

impl Drop for Removed {
    fn drop(&mut self) {
        if let Some(d) = self.0.take() {
            crate::client_state::remove(&d);
        }
    }
}

fn attempt(
    dir: &Path,
    job: &Job,
    out: &Out,
    rx: &mpsc::Receiver<Option<(u8, Vec<u8>)>>,
) -> Result<u8, String> {
    let report_ok = job
        .report
        .split_once('/')
        .is_some_and(|(a, b)| safe_name(a) && safe_name(b));
    if !safe_name(&job.repo) || !safe_name(&job.key) || !commit_id(&job.base) || !report_ok {
        return Err("a job with names orch does not make".into());
    }
    if job.argv.is_empty() {
        return Err("a job without a program".into());
    }
    let abi = super::remote::landlock_abi();
    if job.confine && abi == 0 {
        return Err(
            "the host has no Landlock, and its agents must be confined (its `[[host]]` says `sandbox = \"on\"`)"
                .into(),
        );
    }
    let a = dir.join("attempts").join(&job.key);
    let p = Places {
        cache: dir.join("repos").join(format!("{}.git", job.repo)),
        worktree: a.join(&job.key),
        admin: dir
            .join("repos")
            .join(format!("{}.git", job.repo))
            .join("worktrees")
            .join(&job.key),
        tmp: a.join("tmp"),
        state: a.join("state"),
        reports: a.join("state").join("reports").join(&job.report),
        prompt: a.join("state").join("prompt.md"),
        client: a.join("client"),
        attempt: a,
    };
    if std::fs::symlink_metadata(&p.attempt).is_ok() {
        return Err(format!(
            "the attempt's directory `{}` is there already",
            p.attempt.display()
        ));
    }
    // From here on, an attempt that ends without the driver's word that its last snapshot is
    // safe (the connection lost at any step, an error) is left for the lead to collect.
    let mut leftover = Leftover {
        p: &p,
        job,
        collected: false,
    };
    for d in [&p.tmp, &p.reports] {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot make `{}`: {e}", d.display()))?;
    }
    std::fs::write(&p.prompt, &job.prompt).map_err(|e| format!("cannot write the prompt: {e}"))?;
    // Held for the run: the agent's `orch task` sees a supervisor and hands it its reports.
    let lock = std::fs::File::create(p.state.join("supervisor.lock"))
        .map_err(|e| format!("cannot make the attempt's lock: {e}"))?;
    lock.lock().map_err(|e| format!("cannot lock: {e}"))?;
    let wt = p.worktree.display().to_string();
    git(
        crate::git::git_command(GitTarget::GitDir(&p.cache)),
        &["worktree", "add", "--detach", "-q", &wt, &job.base],
        &[],
    )?;
    let me = std::env::current_exe().map_err(|e| format!("cannot find orch's copy: {e}"))?;
    let place = |which: Place| -> String {
        match which {
            Place::Worktree => wt.clone(),
            Place::ReportDir => p.reports.display().to_string(),
            Place::PromptFile => p.prompt.display().to_string(),
            Place::Orch => me.display().to_string(),
            Place::StatusFile => p.state.join("status.json").display().to_string(),
        }
    };
    // The longest of the lead's paths first: one that begins another is replaced after it.
    let mut replace = job.replace.clone();
    replace.sort_by_key(|(from, _)| std::cmp::Reverse(from.len()));
    let map = |s: &str| -> String {
        let mut s = s.to_string();
        for (from, to) in &replace {
            if !from.is_empty() {
                s = s.replace(from.as_str(), &place(*to));
            }
        }
        s
    };
    let mut argv: Vec<String> = job.argv.iter().map(|a| map(a)).collect();
    // A confined agent of a client orch knows: a private copy of the client's state, seeded
    // from the host user's (never written by the agent), removed when the attempt ends.
    let mut client_vars = Vec::new();
    let client = job
        .confine
        .then(|| crate::manifest::KnownCli::of(&job.argv))
        .flatten();
    let _client_dir = Removed(client.map(|_| p.client.clone()));
    if let Some(cli) = client {
        let prepared = crate::client_state::prepare(cli, &p.client, &|k| std::env::var_os(k))
            .map_err(|e| {
                format!(
                    "cannot make the private state of {} for the attempt (`{}`): {e}",
                    cli.name(),
                    p.client.display()
                )
            })?;
        if let Some(prepared) = prepared {
            client_vars = prepared.vars;
        }
    }
    if job.confine {
        // The attempt's own places, and nothing else of the attempts here (another attempt's
        // worktree, client state, snapshots): `attempts` is not readable, an attempt's own
        // places are granted.
        let mut rules = crate::sandbox::Rules {
            write: crate::sandbox::DEVICES.iter().map(PathBuf::from).collect(),
            deny_read: vec![dir.join("attempts")],
            read: Vec::new(),
        };
        rules
            .write
            .extend([p.worktree.clone(), p.tmp.clone(), p.state.clone()]);
        if !client_vars.is_empty() {
            rules.write.push(p.client.clone());
        }
        let mut wrapped = vec![me.display().to_string(), "sandbox-exec".to_string()];
        wrapped.extend(crate::sandbox::args(&rules));
        wrapped.push("--".to_string());
        wrapped.extend(argv);
        argv = wrapped;
    }
    // Under orch's wrapper, as a local agent: whatever the agent leaves running (a daemon of a
    // session of its own holding its output included) ends with it. The log is capped by the
    // lead's side, so nothing is held back here.
    let argv = crate::process::session::in_session(&me, (HOST_LOG_MAX, GRACE), argv);
    let (reader, writer) = std::io::pipe().map_err(|e| format!("cannot make a pipe: {e}"))?;
    let writer2 = writer
        .try_clone()
        .map_err(|e| format!("cannot make a pipe: {e}"))?;
    let mut cmd = crate::agent_env::command(&argv[0]);
    cmd.args(&argv[1..])
        .current_dir(&p.worktree)
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(writer2);
    for var in crate::agent_env::GIT_ENV {
        cmd.env_remove(var);
    }
    // The host's own agent sockets and GitHub tokens (its `~/.ssh/environment`, an sshd that
    // accepts them) are withheld as a local agent's are.
    for var in crate::agent_env::withheld() {
        if crate::agent_env::is_withheld(var, &job.pass_env) {
            cmd.env_remove(var);
        }
    }
    for (k, v) in &job.env {
        cmd.env(k, map(v));
    }
    cmd.env("TMPDIR", &p.tmp);
    for (var, d) in &client_vars {
        cmd.env(var, d);
    }
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    // orch's side is ready: from here on, what happens is the agent's attempt (a program that
    // cannot be started included, as for a local agent).
    send(out, frames::STARTED, b"").map_err(|e| e.to_string())?;
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            drop(cmd);
            let _ = send(
                out,
                frames::LOG,
                format!("=== orch: cannot start `{}`: {e} ===\n", job.argv[0]).as_bytes(),
            );
            snap_and_send(&p, job, out)?;
            send(out, frames::EXIT, b"127").map_err(|e| e.to_string())?;
            return finish(&mut leftover, rx);
        }
    };
    drop(cmd);
    let pgid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
    let log_out = out.clone();
    let logger = std::thread::spawn(move || {
        let mut r = reader;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if send(&log_out, frames::LOG, &buf[..n]).is_err() {
                        return;
                    }
                }
            }
        }
    });
    // The wrapper is told to stop (it ends everything below it, giving `GRACE`), then its group
    // is killed if it has not ended by then.
    let stop = |child: &mut std::process::Child| {
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + GRACE + Duration::from_secs(2);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = child.wait();
    };
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        // A report: the worktree's snapshot first, then the report; the answer back.
        if let Ok(Some(bytes)) = read_nofollow(&p.reports.join(REPORT_FILE)) {
            let _ = std::fs::rename(p.reports.join(REPORT_FILE), p.reports.join(TAKEN_FILE));
            snap_and_send(&p, job, out)?;
            send(out, frames::REPORT, &bytes).map_err(|e| e.to_string())?;
            match rx.recv() {
                Ok(Some((frames::ANSWER, answer))) => {
                    let v: serde_json::Value = serde_json::from_slice(&answer)
                        .map_err(|e| format!("an answer orch cannot read: {e}"))?;
                    write_json(&p.reports, ANSWER_FILE, &v)
                        .map_err(|e| format!("cannot hand the answer to the agent: {e}"))?;
                }
                _ => {
                    stop(&mut child);
                    let _ = snapshot(&p, job);
                    return Ok(1);
                }
            }
        }
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                // The driver is gone: the agent is stopped, its work kept as a snapshot (and
                // the worktree) for the lead to collect when it comes back ([`Leftover`]).
                stop(&mut child);
                let _ = snapshot(&p, job);
                return Ok(1);
            }
            _ => {}
        }
    };
    // What the agent left in its group ends with it.
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    let _ = logger.join();
    let code = agent_code(status.code().unwrap_or_else(|| {
        128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0)
    }));
    snap_and_send(&p, job, out)?;
    send(out, frames::EXIT, code.to_string().as_bytes()).map_err(|e| e.to_string())?;
    finish(&mut leftover, rx)
}

/// The agent's exit status as orch's copy sends it: 254 and 255, the statuses of orch's driver
/// for "no host" and "host lost", are given as 1 (an agent never chooses that its failure is
/// not counted).
pub(crate) fn agent_code(code: i32) -> i32 {
    if (0..254).contains(&code) { code } else { 1 }
}

/// An attempt on the host until the driver said its last snapshot is safe on the lead's
/// machine: dropped before that (the connection lost while the agent ran, while its work was
/// sent, before the driver's word came; an error), it is left for the next attempt that reaches
/// the host to collect ([`super::lost`]): marked `abandoned` (naming the base its snapshot is on
/// and the repository's cache)
/// when it has a snapshot, removed when it has none (nothing of the agent's is there).
struct Leftover<'a> {
    p: &'a Places,
    job: &'a Job,
    /// The driver said the last snapshot is safe: the attempt is removed.
    collected: bool,
}

impl Leftover<'_> {
    fn remove(&self) {
        let p = self.p;
        let _ = git(
            crate::git::git_command(GitTarget::GitDir(&p.cache)),
            &[
                "worktree",
                "remove",
                "--force",
                &p.worktree.display().to_string(),
            ],
            &[],
        );
        let _ = git(
            crate::git::git_command(GitTarget::GitDir(&p.cache)),
            &["update-ref", "-d", &snapshot_ref(&self.job.key)],
            &[],
        );
        let _ = crate::untrusted::remove::remove_path(&p.attempt);
    }
}

impl Drop for Leftover<'_> {
    fn drop(&mut self) {
        if self.collected {
            return;
        }
        let snap = git(
            crate::git::git_command(GitTarget::GitDir(&self.p.cache)),
            &[
                "rev-parse",
                "--verify",
                "-q",
                &format!("{}^{{commit}}", snapshot_ref(&self.job.key)),
            ],
            &[],
        );
        if snap.is_ok_and(|s| commit_id(&s)) {
            let _ = std::fs::write(
                self.p.attempt.join("abandoned"),
                format!("{} {}\n", self.job.base, self.job.repo),
            );
        } else {
            self.remove();
        }
    }
}

/// Waits for the driver's word that the last snapshot is safe, then removes the attempt; without
/// it (the connection lost), the attempt is left to collect ([`Leftover`]).
fn finish(
    leftover: &mut Leftover<'_>,
    rx: &mpsc::Receiver<Option<(u8, Vec<u8>)>>,
) -> Result<u8, String> {
    loop {
        match rx.recv() {
            Ok(Some((frames::DONE, _))) => {
                leftover.collected = true;
                leftover.remove();
                return Ok(0);
            }
            Ok(Some(_)) => {}
            _ => return Ok(0),
        }
    }
}

/// The worktree as a commit on the base (a private index: the agent's own is left alone), held
/// by the attempt's snapshot ref; its id.
fn snapshot(p: &Places, job: &Job) -> Result<String, String> {
    let index = p.attempt.join("snap.index");
    let _ = std::fs::remove_file(&index);
    let env: [(&str, &Path); 1] = [("GIT_INDEX_FILE", &index)];
    let admin = || {
        crate::git::git_command(GitTarget::Admin {
            git_dir: &p.admin,
            work_tree: &p.worktree,
        })
    };
    git(admin(), &["read-tree", &job.base], &env)?;
    // Nothing hashed of a file over the limit: the attempt ends here, naming it.
    if let Some(large) = large_files(p, job, admin)? {
        return Err(large.to_string());
    }
    git(admin(), &["add", "-A"], &env)?;
    let tree = git(admin(), &["write-tree"], &env)?;
    let mut cmd = crate::git::git_command(GitTarget::GitDir(&p.cache))?;
    for (k, v) in [
        ("GIT_AUTHOR_NAME", "orch"),
        ("GIT_AUTHOR_EMAIL", "orch@localhost"),
        ("GIT_COMMITTER_NAME", "orch"),
        ("GIT_COMMITTER_EMAIL", "orch@localhost"),
    ] {
        cmd.env(k, v);
    }
    let commit = git(
        Ok(cmd),
        &[
            "commit-tree",
            &tree,
            "-p",
            &job.base,
            "-m",
            "orch: snapshot of a remote attempt",
        ],
        &[],
    )?;
    git(
        crate::git::git_command(GitTarget::GitDir(&p.cache)),
        &["update-ref", &snapshot_ref(&job.key), &commit],
        &[],
    )?;
    Ok(commit)
}

/// The files of the worktree over the job's `max_file_size` (their apparent sizes, `lstat`;
/// nothing hashed) that its base does not hold at that size: tracked ones (`ls-files`, which
/// reads the names alone) and untracked ones git does not ignore; or, none such, the change over
/// the job's `max_change_size` or `max_change_files` as far as the sizes tell (the files not in
/// the base, deleted, or of another size than the base's: what it surely changes).
fn large_files(
    p: &Places,
    job: &Job,
    admin: impl Fn() -> Result<Command, String>,
) -> Result<Option<crate::git::TooLarge>, String> {
    let limits = crate::manifest::SizeLimits {
        file: job.max_file_size,
        change: job.max_change_size,
        files: job.max_change_files,
    };
    let limit = limits.file;
    let listed = |args: &[&str]| -> Result<Vec<u8>, String> {
        let mut cmd = admin()?;
        let o = cmd
            .args(args)
            .output()
            .map_err(|e| format!("cannot run git {}: {e}", args.join(" ")))?;
        if o.status.success() {
            Ok(o.stdout)
        } else {
            Err(format!(
                "git {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
    };
    // The base's blobs by path, with their sizes: one already there at its size is no change.
    let base = listed(&["ls-tree", "-r", "-z", "--long", &job.base])?;
    let in_base: std::collections::HashMap<&[u8], u64> = base
        .split(|&b| b == 0)
        .filter_map(|e| {
            let tab = e.iter().position(|&b| b == b'\t')?;
            let size = std::str::from_utf8(&e[..tab])
                .ok()?
                .split_whitespace()
                .nth(3)?
                .parse()
                .ok()?;
            Some((&e[tab + 1..], size))
        })
        .collect();
    let files = listed(&[
        "ls-files",
        "-z",
        "--cached",
        "--others",
        "--exclude-standard",
    ])?;
    let mut large = Vec::new();
    let (mut total, mut count) = (0_u64, 0_u64);
    for path in files.split(|&b| b == 0).filter(|p| !p.is_empty()) {
        let full = p.worktree.join(std::ffi::OsStr::from_bytes(path));
        let Ok(meta) = std::fs::symlink_metadata(&full) else {
            // Deleted: a change all the same.
            count += u64::from(in_base.contains_key(path));
            continue;
        };
        if meta.is_dir() || in_base.get(path) == Some(&meta.len()) {
            continue;
        }
        count += 1;
        if meta.len() > limit {
            large.push((String::from_utf8_lossy(path).into_owned(), meta.len()));
        } else {
            total = total.saturating_add(meta.len());
        }
    }
    Ok(crate::git::TooLarge::of_change(
        large,
        (total, count),
        limits,
    ))
}

/// Takes a snapshot and sends it: its id, then its bundle.
fn snap_and_send(p: &Places, job: &Job, out: &Out) -> Result<(), String> {
    let commit = snapshot(p, job)?;
    let bundle = p.attempt.join("snap.bundle");
    let _ = std::fs::remove_file(&bundle);
    git(
        crate::git::git_command(GitTarget::GitDir(&p.cache)),
        &[
            "bundle",
            "create",
            "-q",
            &bundle.display().to_string(),
            &snapshot_ref(&job.key),
            &format!("^{}", job.base),
        ],
        &[],
    )?;
    let mut payload = commit.into_bytes();
    let bytes = crate::untrusted::read::head(&bundle, frames::SNAPSHOT_MAX as u64 + 1)
        .map_err(|e| format!("cannot read the bundle: {e}"))?;
    payload.extend_from_slice(&bytes);
    if payload.len() > frames::SNAPSHOT_MAX {
        return Err(format!(
            "the worktree's snapshot is {} bytes, more than the {} orch takes back",
            payload.len(),
            frames::SNAPSHOT_MAX
        ));
    }
    send(out, frames::SNAPSHOT, &payload).map_err(|e| e.to_string())
}
