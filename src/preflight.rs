//! Pre-flight of an agent CLI orch knows (`orch up`, before anything is made): the program runs
//! (`--version`), and the version installed accepts every flag the agent's argv passes (they are
//! all listed by its `--help`). A mismatch is found here, with its fix, rather than as every task
//! failing the same way.
//!
//! A client program that lies where a confined agent of the manifest may write (its client's
//! state such as `~/.claude/local/claude`, `sandbox_write`, the worktrees, the state directory,
//! the git directory), or that is reached through a symlink or directory there, may have been
//! replaced by an agent: [`agent_writable`] finds that, and the pre-flight then runs it confined
//! (writing no more than the agent itself may), never unconfined ([`crate::sandbox::Confine`]).

pub(crate) mod probe;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::manifest::{AgentMode, KnownCli, Manifest, SandboxMode, expand_home};
use crate::sandbox::{DEVICES, Rules};

/// How long `--version` or `--help` may take.
pub(crate) const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an agent cannot be used, and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PreflightError {
    pub(crate) message: String,
    pub(crate) hint: String,
}

/// A path some confined agent of `manifest` may write beneath, and why (`the client state of
/// agent `claude``), for agents whose `sandbox` confines them (`auto` only when `landlock`):
/// an unconfined agent may write anywhere, and that is out of scope.
pub(crate) fn writable_roots(
    manifest: &Manifest,
    repo_root: &Path,
    landlock: bool,
) -> Vec<(PathBuf, String)> {
    let mut out: Vec<(PathBuf, String)> = Vec::new();
    let mut add = |p: PathBuf, why: String| {
        if !out.iter().any(|(q, _)| *q == p) {
            out.push((p, why));
        }
    };
    for entry in &manifest.plans {
        let Some(agent) = manifest.agent_of(entry) else {
            continue;
        };
        let confined = match agent.sandbox.mode {
            SandboxMode::Off => false,
            SandboxMode::On => true,
            SandboxMode::Auto => landlock,
        };
        if !confined {
            continue;
        }
        let name = &entry.agent;
        if let Some(cli) = KnownCli::of(&agent.command) {
            for p in client_state(cli) {
                add(
                    p,
                    format!("the {} state that agent `{name}` may write", cli.name()),
                );
            }
        }
        for p in &agent.sandbox.write {
            add(p.clone(), format!("`sandbox_write` of agent `{name}`"));
        }
        if agent.mode == AgentMode::Plan {
            add(
                repo_root.join(".git"),
                format!("the git directory, which plan agent `{name}` may write"),
            );
        }
        add(
            manifest.root.join(&manifest.defaults.worktree_root),
            "the worktrees, which agents write".to_string(),
        );
        add(
            manifest.root.join(&manifest.defaults.state_dir),
            "the state directory, which agents write".to_string(),
        );
    }
    out
}

/// The client's state on this machine (`~/.claude`, directories its environment names).
fn client_state(cli: KnownCli) -> impl Iterator<Item = PathBuf> {
    let named = cli.state_paths().iter().filter_map(|p| expand_home(p));
    named.chain(cli.state_dirs_from_env(|k| std::env::var_os(k)))
}

/// The first path on the way to `program` (as found on PATH: each symlink hop, then the real
/// file) that lies beneath one of `roots`: `(that path, the root, why)`.
pub(crate) fn agent_writable(
    program: &Path,
    roots: &[(PathBuf, String)],
) -> Option<(PathBuf, PathBuf, String)> {
    let real = |p: &Path| -> PathBuf {
        // The directory resolved, the last component kept: a symlink is judged where it lies.
        match (p.parent(), p.file_name()) {
            (Some(dir), Some(name)) => dir
                .canonicalize()
                .unwrap_or_else(|_| dir.to_path_buf())
                .join(name),
            _ => p.to_path_buf(),
        }
    };
    let roots: Vec<(PathBuf, &PathBuf, &String)> = roots
        .iter()
        .map(|(r, why)| (r.canonicalize().unwrap_or_else(|_| r.clone()), r, why))
        .collect();
    let mut hop = std::path::absolute(program).unwrap_or_else(|_| program.to_path_buf());
    for _ in 0..40 {
        let at = real(&hop);
        if let Some((_, root, why)) = roots
            .iter()
            .find(|(canon, raw, _)| at.starts_with(canon) || hop.starts_with(raw))
        {
            return Some((hop, (*root).clone(), (*why).clone()));
        }
        match std::fs::read_link(&at) {
            Ok(target) => {
                hop = match at.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                };
            }
            Err(_) => break,
        }
    }
    None
}

/// The rules of a confined pre-flight of agent `agent`'s client: it may write what the agent
/// may write outside its worktree (its client's state, `sandbox_write`) and nothing else.
pub(crate) fn preflight_rules(agent: &crate::manifest::AgentSpec) -> Rules {
    let mut write: Vec<PathBuf> = DEVICES.iter().map(PathBuf::from).collect();
    if let Some(cli) = KnownCli::of(&agent.command) {
        write.extend(client_state(cli));
    }
    write.extend(agent.sandbox.write.iter().cloned());
    // Landlock needs each path to exist; a client's state not made yet is not writable.
    write.retain(|p| p.exists());
    Rules {
        write,
        deny_read: agent.sandbox.deny_read.clone(),
        read: Vec::new(),
    }
}

/// Checks `command` (an agent argv, its program resolved to `program`) when its CLI is known;
/// returns the CLI's version line (`None` for a program orch does not know). `confined`: the
/// program may have been replaced by an agent, and runs confined.
pub(crate) fn check(
    agent: &str,
    program: &Path,
    command: &[String],
    dir: &Path,
    confined: Option<&crate::sandbox::Confine>,
) -> Result<Option<String>, PreflightError> {
    let Some(cli) = KnownCli::of(command) else {
        return Ok(None);
    };
    let shown = command.first().map(String::as_str).unwrap_or_default();
    let version = run(program, &["--version"], dir, confined).map_err(|why| PreflightError {
        message: format!("agent `{agent}`: `{shown} --version` {why}"),
        hint: format!(
            "check the {} installation (`{shown} --version` must work), or change `command` in `[agents.{agent}]`",
            cli.name()
        ),
    })?;
    let version = version
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .to_string();
    let help_args = cli.help_args(command);
    let help = run(program, &help_args, dir, confined).map_err(|why| PreflightError {
        message: format!("agent `{agent}`: `{shown} {}` {why}", help_args.join(" ")),
        hint: format!(
            "check the {} installation, or change `command` in `[agents.{agent}]`",
            cli.name()
        ),
    })?;
    let missing: Vec<&str> = KnownCli::flags(command)
        .into_iter()
        .filter(|f| !lists_flag(&help, f))
        .collect();
    if missing.is_empty() {
        return Ok(Some(version));
    }
    let problems = cli.problems(command);
    let known_fix = missing.iter().find_map(|f| {
        problems
            .iter()
            .find(|p| p.message.contains(&format!("`{f}`")))
            .map(|p| p.fix.clone())
    });
    let list = missing
        .iter()
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(", ");
    Err(PreflightError {
        message: format!(
            "agent `{agent}`: {} ({version}) does not accept {list}, which the agent's command passes (`{shown} {}` does not list {})",
            cli.name(),
            help_args.join(" "),
            if missing.len() == 1 { "it" } else { "them" },
        ),
        hint: known_fix.unwrap_or_else(|| {
            format!(
                "install the {} version the README's \"Agents\" section lists, or change `command` in `[agents.{agent}]`",
                cli.name()
            )
        }),
    })
}

/// Whether a help text lists `flag` as a whole word (`--add-dir` is not `--add-dirs`).
fn lists_flag(help: &str, flag: &str) -> bool {
    help.match_indices(flag).any(|(i, _)| {
        let before = help[..i].chars().next_back();
        let after = help[i + flag.len()..].chars().next();
        let word =
            |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        !word(before) && !word(after)
    })
}

/// Runs `program args` in `dir` with stdin closed (through `orch sandbox-exec` when `confined`);
/// its stdout and stderr when it exits 0 within [`PREFLIGHT_TIMEOUT`], else why not.
fn run(
    program: &Path,
    args: &[&str],
    dir: &Path,
    confined: Option<&crate::sandbox::Confine>,
) -> Result<String, String> {
    let mut argv: Vec<String> = vec![program.display().to_string()];
    argv.extend(args.iter().map(|a| (*a).to_string()));
    if let Some(c) = confined {
        argv = crate::sandbox::wrap_here(&c.orch_bin, &c.rules, &argv);
    }
    let mut cmd = crate::agent_env::command(&argv[0]);
    crate::process::place(&mut cmd, dir);
    let mut child = cmd
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not be started: {e}"))?;
    let readers = [drain(child.stdout.take()), drain(child.stderr.take())];
    let deadline = Instant::now() + PREFLIGHT_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "did not finish within {}s",
                    PREFLIGHT_TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(format!("could not be waited for: {e}")),
        }
    };
    let mut text = String::new();
    for r in readers {
        text.push_str(&String::from_utf8_lossy(&r.join().unwrap_or_default()));
    }
    if status.success() {
        Ok(text)
    } else {
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(3)..];
        let tail = if tail.is_empty() {
            String::new()
        } else {
            format!(": {}", tail.join(" / "))
        };
        Err(format!("failed ({status}){tail}"))
    }
}

/// A thread reading `r` (a child's pipe) to its end.
fn drain<R: std::io::Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        buf
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_reached_through_an_agent_writable_path_is_found() {
        let tmp = std::env::temp_dir().join(format!("orch-preflight-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let state = tmp.join("home/.claude");
        let bin = tmp.join("bin");
        let safe = tmp.join("usr/bin");
        for d in [state.join("local"), bin.clone(), safe.clone()] {
            std::fs::create_dir_all(d).expect("mkdir");
        }
        std::fs::write(state.join("local/claude"), "").expect("write");
        std::fs::write(safe.join("codex"), "").expect("write");
        std::os::unix::fs::symlink(state.join("local/claude"), bin.join("claude")).expect("link");
        // A link in an agent-writable place, to a safe file: the link can be retargeted.
        std::os::unix::fs::symlink(safe.join("codex"), state.join("codex")).expect("link");
        let roots = vec![(state.clone(), "the claude state".to_string())];
        // Through a symlink on PATH: the real file lies in the state.
        let (at, root, why) = agent_writable(&bin.join("claude"), &roots).expect("found");
        assert_eq!(at, state.join("local/claude"));
        assert_eq!((root, why.as_str()), (state.clone(), "the claude state"));
        // The link itself lies in the state.
        let (at, _, _) = agent_writable(&state.join("codex"), &roots).expect("found");
        assert_eq!(at, state.join("codex"));
        // Nothing on the way lies there.
        assert_eq!(agent_writable(&safe.join("codex"), &roots), None);
        std::fs::remove_dir_all(&tmp).expect("clean");
    }

    #[test]
    fn flags_are_matched_as_whole_words() {
        let help = "  --add-dir <DIR>\n  --json  Print\n  -s, --sandbox <MODE>";
        assert!(lists_flag(help, "--add-dir"));
        assert!(lists_flag(help, "--json"));
        assert!(lists_flag(help, "--sandbox"));
        assert!(!lists_flag(help, "--add"));
        assert!(!lists_flag(help, "--full-auto"));
        assert!(!lists_flag("--jsonl", "--json"));
    }
}
