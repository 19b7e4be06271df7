//! Pre-flight of an agent CLI orch knows (`orch up`, before anything is made): the program runs
//! (`--version`), and the version installed accepts every flag the agent's argv passes (they are
//! all listed by its `--help`). A mismatch is found here, with its fix, rather than as every task
//! failing the same way.

use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::manifest::KnownCli;

/// How long `--version` or `--help` may take.
pub const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an agent cannot be used, and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreflightError {
    pub message: String,
    pub hint: String,
}

/// Checks `command` (an agent argv, its program resolved to `program`) when its CLI is known;
/// returns the CLI's version line (`None` for a program orch does not know).
pub fn check(
    agent: &str,
    program: &Path,
    command: &[String],
    dir: &Path,
) -> Result<Option<String>, PreflightError> {
    let Some(cli) = KnownCli::of(command) else {
        return Ok(None);
    };
    let shown = command.first().map(String::as_str).unwrap_or_default();
    let version = run(program, &["--version"], dir).map_err(|why| PreflightError {
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
    let help = run(program, &help_args, dir).map_err(|why| PreflightError {
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

/// Runs `program args` in `dir` with stdin closed; its stdout and stderr when it exits 0 within
/// [`PREFLIGHT_TIMEOUT`], else why not.
fn run(program: &Path, args: &[&str], dir: &Path) -> Result<String, String> {
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not be started: {e}"))?;
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|mut r| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    })
    .collect();
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
        let tail: Vec<&str> = text.lines().rev().take(3).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(format!(
            "failed ({status}){}",
            if tail.is_empty() {
                String::new()
            } else {
                format!(": {}", tail.join(" / "))
            }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
