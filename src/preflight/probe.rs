//! orch's own check of an attempt's claim that its agent is at a usage limit or cannot log in
//! ([`crate::supervisor::core`]'s claims): the agent's client, run once by orch with a one-line
//! prompt, in a directory of its own outside every worktree, with stdin closed (or the prompt,
//! as the agent reads it), confined as the agent's attempts are when its sandbox is on, for at
//! most [`PROBE_TIMEOUT`]; its own output is classified. Only a client orch knows is probed
//! ([`probe_able`]): an agent of one's own may do anything with a prompt.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::agent_output::Class;
use crate::manifest::{AgentSpec, KnownCli, SandboxMode, StdinMode, render_template};

/// How long a probe may take.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(90);

/// The prompt of a probe.
pub(crate) const PROBE_PROMPT: &str = "Reply with the single word: ok";

/// The most of a probe's output read (each of stdout and stderr).
const OUTPUT_LIMIT: u64 = 256 * 1024;

/// Whether orch can probe agent `spec`'s client: a client orch knows.
pub(crate) fn probe_able(spec: &AgentSpec) -> bool {
    KnownCli::of(&spec.command).is_some()
}

/// Runs agent `name`'s client once as a probe; what its output shows (`Ordinary`: no limit
/// and no failure a person must fix, or no answer within [`PROBE_TIMEOUT`]) and a line of what
/// it said. `landlock`: the kernel can confine it.
pub(crate) fn probe(
    name: &str,
    spec: &AgentSpec,
    orch_bin: &Path,
    landlock: bool,
) -> (Class, String) {
    probe_within(name, spec, (orch_bin, landlock), PROBE_TIMEOUT)
}

/// [`probe`], given at most `timeout`.
fn probe_within(
    name: &str,
    spec: &AgentSpec,
    (orch_bin, landlock): (&Path, bool),
    timeout: Duration,
) -> (Class, String) {
    let dir = match fresh_dir(name) {
        Ok(d) => d,
        Err(e) => return (Class::Ordinary, format!("no probe: {e}")),
    };
    let result = run(spec, orch_bin, landlock, &dir, timeout);
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok((code, text)) => {
            let out = crate::agent_output::parse(&text, chrono::Utc::now());
            let class = if code == Some(0) && out.error.is_none() {
                Class::Ordinary
            } else {
                out.class
            };
            let said = out.cause().or_else(|| out.last_words()).unwrap_or_default();
            (class, said.lines().next().unwrap_or("").trim().to_string())
        }
        Err(e) => (Class::Ordinary, format!("no answer: {e}")),
    }
}

/// A directory made for this probe alone (never one that existed).
fn fresh_dir(name: &str) -> std::io::Result<PathBuf> {
    let base = std::env::temp_dir();
    let safe: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(40)
        .collect();
    for i in 0..100u32 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = base.join(format!(
            "orch-probe-{safe}-{}-{nanos}-{i}",
            std::process::id()
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no fresh directory"))
}

/// The probe's argv: the agent's command, its variables filled for a run in `dir`.
fn argv(spec: &AgentSpec, orch_bin: &Path, dir: &Path) -> Result<Vec<String>, String> {
    let prompt_file = dir.join("prompt.md");
    std::fs::write(&prompt_file, PROBE_PROMPT).map_err(|e| e.to_string())?;
    let orch = orch_bin.display().to_string();
    let orch_dir = orch_bin
        .parent()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let lookup = |v: &str| -> String {
        match v {
            "prompt" => PROBE_PROMPT.to_string(),
            "prompt_file" => prompt_file.display().to_string(),
            "plan" | "task" => "probe".to_string(),
            "plan_file" => dir.join("plan.md").display().to_string(),
            "worktree" | "status_dir" => dir.display().to_string(),
            "status_file" => dir.join("status.json").display().to_string(),
            "usage_file" => dir.join("usage.json").display().to_string(),
            "orch" => orch.clone(),
            "orch_dir" => orch_dir.clone(),
            _ => String::new(),
        }
    };
    spec.command
        .iter()
        .map(|a| render_template(a, lookup))
        .collect()
}

/// Runs the probe in `dir`: its exit code (`None`: killed) and output.
fn run(
    spec: &AgentSpec,
    orch_bin: &Path,
    landlock: bool,
    dir: &Path,
    timeout: Duration,
) -> Result<(Option<i32>, String), String> {
    let mut argv = argv(spec, orch_bin, dir)?;
    let first = argv.first().cloned().unwrap_or_default();
    let program = crate::process::resolve_program(&first, dir)
        .ok_or_else(|| format!("program `{first}` not found"))?;
    argv[0] = program.display().to_string();
    let confined = match spec.sandbox.mode {
        SandboxMode::Off => false,
        SandboxMode::On => true,
        SandboxMode::Auto => landlock,
    };
    if confined {
        let mut rules = super::preflight_rules(spec);
        rules.write.push(dir.to_path_buf());
        argv = crate::sandbox::wrap_here(orch_bin, &rules, &argv);
    }
    let mut cmd = crate::agent_env::command(&argv[0]);
    crate::process::place(&mut cmd, dir);
    let stdin = match spec.stdin {
        StdinMode::Prompt => Stdio::piped(),
        StdinMode::Null => Stdio::null(),
    };
    let mut child = cmd
        .args(&argv[1..])
        .env("TMPDIR", dir)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("could not be started: {e}"))?;
    if let Some(mut input) = child.stdin.take() {
        let _ = input.write_all(PROBE_PROMPT.as_bytes());
    }
    let readers = [drain(child.stdout.take()), drain(child.stderr.take())];
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(None) | Err(_) => {
                kill_group(&child);
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "it did not finish within {}",
                    crate::duration::format_duration(timeout)
                ));
            }
        }
    };
    // Whatever it left behind in its group goes with it.
    kill_group(&child);
    let mut text = String::new();
    for r in readers {
        text.push_str(&String::from_utf8_lossy(&r.join().unwrap_or_default()));
        text.push('\n');
    }
    Ok((status.code(), text))
}

/// Kills the process group the probe leads.
fn kill_group(child: &std::process::Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// A thread reading at most [`OUTPUT_LIMIT`] bytes of `r` (a child's pipe), the rest drained.
fn drain<R: Read + Send + 'static>(r: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.by_ref().take(OUTPUT_LIMIT).read_to_end(&mut buf);
            let _ = std::io::copy(&mut r, &mut std::io::sink());
        }
        buf
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::SandboxMode;

    /// An agent whose command is `sh -c SCRIPT probe {{ prompt }}`, unconfined.
    fn agent(script: &str) -> AgentSpec {
        let mut spec = crate::manifest::presets()
            .remove("claude")
            .expect("the claude preset");
        spec.command = ["sh", "-c", script, "probe", "{{ prompt }}"]
            .iter()
            .map(|a| (*a).to_string())
            .collect();
        spec.sandbox.mode = SandboxMode::Off;
        spec.stdin = StdinMode::Null;
        spec
    }

    fn run_probe(script: &str, timeout: Duration) -> (Class, String) {
        probe_within(
            "x",
            &agent(script),
            (Path::new("/bin/true"), false),
            timeout,
        )
    }

    #[test]
    fn a_probe_classifies_the_clients_own_output() {
        let t = Duration::from_secs(20);
        let (class, said) = run_probe(
            "echo \"Claude AI usage limit reached|$(($(date +%s) + 600))\"; exit 1",
            t,
        );
        assert!(matches!(class, Class::Limit(Some(_))), "{class:?}");
        assert!(said.contains("usage limit"), "{said}");
        let (class, _) = run_probe("echo 'API Error: 429 Too Many Requests' >&2; exit 1", t);
        assert_eq!(class, Class::Limit(None));
        let (class, _) = run_probe("echo 'Invalid API key'; exit 1", t);
        assert_eq!(class, Class::Fatal(crate::agent_output::Fatal::Auth));
        // It answers: no limit, whatever the prompt was.
        let (class, said) = run_probe("echo ok; exit 0", t);
        assert_eq!(class, Class::Ordinary);
        assert_eq!(said, "ok");
        // The prompt is the probe's one line.
        let (_, said) = run_probe("echo \"$1\"", t);
        assert_eq!(said, PROBE_PROMPT);
    }

    #[test]
    fn a_probe_runs_in_a_fresh_directory_it_does_not_outlive_and_within_its_time() {
        let t = Duration::from_secs(20);
        let (_, said) = run_probe("pwd; exit 1", t);
        let dir = PathBuf::from(said.trim());
        assert!(
            dir.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("orch-probe-x-")),
            "{said}"
        );
        assert!(!dir.exists(), "the probe's directory is removed");
        // A client that does not answer in time shows nothing: no claim is confirmed by it;
        // what it left running in its group is killed.
        let started = Instant::now();
        let (class, said) = run_probe("sleep 30 & sleep 30", Duration::from_millis(300));
        assert_eq!(class, Class::Ordinary);
        assert!(said.starts_with("no answer"), "{said}");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        // Its output is read up to a bound.
        let (class, _) = run_probe(
            "head -c 2000000 /dev/zero | tr '\\0' a; echo; echo 'usage limit'; exit 1",
            t,
        );
        assert_eq!(
            class,
            Class::Ordinary,
            "the words past the bound are not read"
        );
    }
}
