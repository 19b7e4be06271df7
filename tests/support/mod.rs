//! What the end-to-end tests share: a real git repository in a temp dir with its own HOME
//! ([`Repo`]), the real `orch` binary run in it or in any directory with a deadline, the scripted
//! agents of `tests/fixtures/agents/`, the agents' journal, `--json` events, the process table
//! and disk snapshots, and what `../shared` holds (the plan corpus, the status schema). Each test binary uses a subset (`mod support;`).

#![allow(dead_code, unused_imports)]

pub mod clis;
pub mod events;
pub mod fake_api;
pub mod journal;
pub mod merge;
pub mod net_probe;
pub mod otlp;
pub mod podman;
pub mod process;
pub mod prop;
pub mod repo;
pub mod review;
pub mod shared;
pub mod sink;
pub mod slurm;
pub mod sshd;
pub mod status;
pub mod submodules;
pub mod three;
pub mod webdriver;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

pub use events::{events, named, outcome, read_lines, wait_line};
pub use journal::{Mark, journal, journal_whole_lines, max_overlap, spans};
pub use process::{
    agents_of, code_out_err, exit_code, kill, pids_with_env, process_alive, wait, wait_for,
    wait_status_until, wait_until, wait_within,
};
pub use repo::{Repo, RepoBuilder};
pub use shared::{corpus_dir, corpus_files, corpus_plans, require_shared, status_schema};
pub use status::{json, read_status, task_in, try_task_in};

/// The default deadline of one process (and of a wait for an event or a condition).
pub const TIMEOUT: Duration = Duration::from_secs(90);

/// Whether this kernel confines with Landlock; a test that needs it says so when it skips (CI's
/// kernel has it: `ORCH_REQUIRE_LANDLOCK=1` makes a missing one fail instead).
pub fn landlock() -> bool {
    let ok = orch::sandbox::supported();
    if !ok {
        assert!(
            std::env::var_os("ORCH_REQUIRE_LANDLOCK").is_none(),
            "ORCH_REQUIRE_LANDLOCK is set, but this kernel does not support Landlock"
        );
        eprintln!("skipped the confined variant: this kernel does not support Landlock");
    }
    ok
}

/// The first port of the block orch gave the worktree `worktree` (relative to the repository,
/// `.orch/worktrees/<plan>`), from the repository's registry (`.orch/state/.ports.json`): other
/// runs of the machine (the tests beside) hold blocks of their own, so the first block is not
/// always the first one free.
pub fn block_of(root: &std::path::Path, worktree: &str) -> u32 {
    let text = std::fs::read_to_string(root.join(".orch/state/.ports.json")).expect("the registry");
    let blocks: serde_json::Value = serde_json::from_str(&text).expect("json");
    let key = root.join(worktree);
    blocks[key.display().to_string()]["start"]
        .as_u64()
        .and_then(|p| u32::try_from(p).ok())
        .unwrap_or_else(|| panic!("no block of {} in {text}", key.display()))
}

/// The sandbox settings to try a test with: `off` always, `on` where Landlock confines.
pub fn sandboxes() -> Vec<&'static str> {
    if landlock() {
        vec!["off", "on"]
    } else {
        vec!["off"]
    }
}

/// `tests/fixtures/agents`.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agents")
}

/// A TOML array of strings.
pub fn toml_array<S: AsRef<str>>(argv: &[S]) -> String {
    let quoted: Vec<String> = argv.iter().map(|a| toml_string(a.as_ref())).collect();
    format!("[{}]", quoted.join(", "))
}

/// A TOML basic string holding `s` exactly (Rust's `{:?}` writes `\u{200c}`, which TOML
/// does not read).
pub fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || (!c.is_ascii() && !c.is_alphanumeric()) => {
                out.push_str(&format!("\\U{:08X}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An agent `command` array (TOML) running a fixture script with arguments.
pub fn agent(script: &str, args: &[&str]) -> String {
    let mut argv = vec![
        "sh".to_string(),
        fixtures().join(script).display().to_string(),
    ];
    argv.extend(args.iter().map(|a| (*a).to_string()));
    toml_array(&argv)
}

/// [`agent`] with paths for arguments.
pub fn agent_at(script: &str, args: &[&Path]) -> String {
    let args: Vec<String> = args.iter().map(|a| a.display().to_string()).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    agent(script, &args)
}

/// A path as UTF-8 (every temp path of these tests is).
pub fn utf8(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// One-task plan text: `# <title>` with task 1.1 `<description>`.
pub fn one_task(title: &str, description: &str) -> String {
    format!("# {title}\n\n## Phase 1: Work\n- [ ] 1.1 {description}\n")
}

/// `orch ARGS` in `dir` with the caller's environment less the variables named in `remove`;
/// stdin closed, stdout and stderr piped.
pub fn orch_in(dir: &Path, args: &[&str], remove: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_orch"));
    in_dir(&mut c, dir)
        .args(args)
        .env("ORCH_SANDBOX", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for v in remove {
        c.env_remove(v);
    }
    c
}

/// `cmd` run in `dir` as a shell runs a program there: `PWD` names `dir`, no `OLDPWD` (a
/// program that takes its directory from `PWD`, as opencode does, then agrees with its working
/// directory).
pub fn in_dir<'a>(cmd: &'a mut Command, dir: &Path) -> &'a mut Command {
    let abs = std::path::absolute(dir).expect("absolute");
    cmd.current_dir(dir).env("PWD", abs).env_remove("OLDPWD")
}

/// Writes `text` to `dir/rel`, making its directories; the path written.
pub fn write_file(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(&p, text).expect("write");
    p
}

/// Every file under `dir` with its bytes, sorted, to prove a command changed nothing.
pub fn file_snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

/// Everything on disk under `dir`, `.git` included and nothing excluded: each path with its
/// kind and a hash of its bytes (or its symlink target). Two equal snapshots mean nothing was
/// written, created or removed.
pub fn disk_snapshot(dir: &Path) -> BTreeSet<(String, String)> {
    use std::hash::{Hash, Hasher};
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            let meta = std::fs::symlink_metadata(&p).expect("metadata");
            let rel = p.strip_prefix(dir).expect("inside").display().to_string();
            let what = if meta.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&p).expect("link").display())
            } else if meta.is_dir() {
                stack.push(p);
                "dir".to_string()
            } else {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                std::fs::read(&p).expect("read").hash(&mut h);
                format!("file {} {:x}", meta.len(), h.finish())
            };
            out.insert((rel, what));
        }
    }
    out
}

/// Runs the shell line `line` in `dir` as an unconfined agent would there (committing as `a`),
/// with the tests' deadline; it must succeed.
pub fn shell_in(dir: &Path, line: &str) {
    let child = Command::new("sh")
        .args(["-c", line])
        .current_dir(dir)
        .env("PWD", dir)
        .env("GIT_AUTHOR_NAME", "a")
        .env("GIT_AUTHOR_EMAIL", "a@a")
        .env("GIT_COMMITTER_NAME", "a")
        .env("GIT_COMMITTER_EMAIL", "a@a")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sh");
    let out = wait_within(child, TIMEOUT, "sh");
    assert!(out.status.success(), "{line}: {out:?}");
}
