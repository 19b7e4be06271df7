//! Waiting for a plan's services to get ready, in their order: each one's probe (its `ready`
//! in its container, else a connection to its port) run until it exits 0, within its
//! `ready_timeout`. For an attempt (or a check) by `orch service-wait` (hidden), the process
//! orch starts for it, before it becomes the attempt's `podman exec`: the supervisor's loop
//! never waits for a service. For `verify`'s container of its own, in the command that runs it.
//!
//! A service that does not get ready is its place failing, not the agent's fault:
//! `orch service-wait` records why (with the end of the service's log, escaped) where orch
//! looks for it ([`super::ContainerExecutor`]'s `lost`), in a directory of orch's that no
//! container mounts, removes the service's container (the next attempt makes it anew), and
//! exits [`NOT_READY_EXIT`]; the agent never runs.

use std::io::Read as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::podman;

/// The exit status of `orch service-wait` when a service did not get ready (recorded too: the
/// status alone, which an agent may exit with, decides nothing).
pub(crate) const NOT_READY_EXIT: u8 = 98;

/// The lines of a service's log shown when it did not get ready.
const LOG_LINES: usize = 20;

/// The most of a service's log read for them.
const LOG_BYTES: u64 = 16 * 1024;

/// One service to wait for.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct WaitFor {
    pub(crate) name: String,
    pub(crate) container: String,
    /// Run from this machine until it exits 0.
    pub(crate) probe: Vec<String>,
    /// How the probe is said (`` `pg_isready` ``, `a connection to 127.0.0.1:42001`).
    pub(crate) shown: String,
    pub(crate) within_ms: u64,
    /// Written once it is ready: orch does not wait for it again.
    pub(crate) mark: Option<PathBuf>,
}

/// What `orch service-wait --spec` is told.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Wait {
    pub(crate) plan: String,
    pub(crate) services: Vec<WaitFor>,
    /// Where to record why one did not get ready.
    pub(crate) record: Option<PathBuf>,
    /// How many of them orch has just started for this attempt (all at once), and in how many
    /// milliseconds: said in the attempt's log.
    #[serde(default)]
    pub(crate) started: Option<(usize, u64)>,
}

/// Waits for each of `services` of plan `plan`, in order: how long each took, or why one did
/// not get ready (its first line the summary, then the end of its log, escaped and indented).
pub(crate) fn wait(plan: &str, services: &[WaitFor]) -> Result<Vec<(String, Duration)>, String> {
    let mut took = Vec::new();
    for s in services {
        let started = Instant::now();
        let within = Duration::from_millis(s.within_ms);
        let deadline = started + within;
        let mut pause = Duration::from_millis(50);
        let stopped = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if probe_once(&s.probe, left.max(Duration::from_millis(100))) {
                break None;
            }
            if Instant::now() >= deadline {
                break Some(String::new());
            }
            if !podman::running_of(std::slice::from_ref(&s.container)).contains(&s.container) {
                break Some(format!("; its container stopped{}", exit_of(&s.container)));
            }
            std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
            pause = (pause * 2).min(Duration::from_secs(1));
        };
        if let Some(stopped) = stopped {
            let mut why = format!(
                "service `{}` of plan `{plan}` did not get ready within {} ({} never succeeded{stopped})",
                s.name,
                crate::duration::format_duration(within),
                s.shown
            );
            let tail = log_tail(&s.container);
            if tail.is_empty() {
                why.push_str("; its log is empty");
            } else {
                why.push_str("; the end of its log:");
                for line in tail {
                    why.push_str("\n    ");
                    why.push_str(&line);
                }
            }
            return Err(why);
        }
        if let Some(mark) = &s.mark {
            let _ = crate::links::write(mark, b"ready\n");
        }
        took.push((s.name.clone(), started.elapsed()));
    }
    Ok(took)
}

/// Runs `argv` once, at most `within`: whether it exited 0.
pub(super) fn probe_once(argv: &[String], within: Duration) -> bool {
    let Some((first, rest)) = argv.split_first() else {
        return false;
    };
    let Ok(mut child) = crate::agent_env::command(first)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return false;
    };
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_millis(5);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

/// ` with exit status N` of a stopped container, as podman has it.
pub(crate) fn exit_of(container: &str) -> String {
    podman::output(&[
        podman::program(),
        "inspect".into(),
        "--format".into(),
        "{{.State.ExitCode}}".into(),
        container.into(),
    ])
    .ok()
    .map(|c| format!(" with exit status {}", c.trim()))
    .unwrap_or_default()
}

/// The last lines of container `container`'s log (its output and errors together), escaped:
/// at most [`LOG_LINES`] of the last [`LOG_BYTES`].
pub(crate) fn log_tail(container: &str) -> Vec<String> {
    let Ok((reader, writer)) = std::io::pipe() else {
        return Vec::new();
    };
    let Ok(err) = writer.try_clone() else {
        return Vec::new();
    };
    let mut cmd = crate::agent_env::command(podman::program());
    cmd.args(["logs", "--tail", &LOG_LINES.to_string(), container])
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(err);
    let Ok(mut child) = cmd.spawn() else {
        return Vec::new();
    };
    // The write ends are the child's alone now: the read ends at its exit.
    drop(cmd);
    let mut bytes = Vec::new();
    let _ = reader.take(LOG_BYTES).read_to_end(&mut bytes);
    let _ = child.kill();
    let _ = child.wait();
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(LOG_LINES)..]
        .iter()
        .map(|l| crate::untrusted::text::escaped(l).into_owned())
        .collect()
}

/// `orch service-wait --connect ADDR --within-ms N`, in the plan's container: connects to
/// `addr` until it answers, at most `within`. Whether it did.
pub(crate) fn connect(addr: &str, within: Duration) -> bool {
    let Ok(addr) = addr.parse::<std::net::SocketAddr>() else {
        return false;
    };
    let deadline = Instant::now() + within;
    let mut pause = Duration::from_millis(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let each = left.clamp(Duration::from_millis(50), Duration::from_secs(1));
        if std::net::TcpStream::connect_timeout(&addr, each).is_ok() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}

/// `orch service-wait --spec JSON -- ARGV…`: waits for the services `spec` names (each
/// one's line said by `say`: into the attempt's log), then becomes `ARGV`; when one does not
/// get ready, records why, removes its container and exits [`NOT_READY_EXIT`]. An error of its
/// own (a bad spec, `ARGV` that cannot run) is the error returned.
pub(crate) fn service_wait(spec: &str, argv: &[String], say: &dyn Fn(&str)) -> Result<u8, String> {
    let w: Wait =
        serde_json::from_str(spec).map_err(|e| format!("orch service-wait: a bad spec: {e}"))?;
    if let Some((n, ms)) = w.started {
        say(&format!(
            "=== orch: {n} service(s) of plan `{}` started at once in {:.2}s ===",
            w.plan,
            Duration::from_millis(ms).as_secs_f64()
        ));
    }
    match wait(&w.plan, &w.services) {
        Ok(took) => {
            for (name, t) in took {
                say(&format!(
                    "=== orch: service `{name}` of plan `{}` ready after {:.2}s ===",
                    w.plan,
                    t.as_secs_f64()
                ));
            }
        }
        Err(why) => {
            say(&format!("=== orch: {why} ==="));
            if let Some(record) = &w.record {
                let _ = crate::links::write(record, why.as_bytes());
            }
            // The one that failed: made anew by the next attempt.
            for s in &w.services {
                if why.starts_with(&format!("service `{}` ", s.name)) {
                    let _ = podman::remove(&s.container);
                }
            }
            return Ok(NOT_READY_EXIT);
        }
    }
    let Some((first, rest)) = argv.split_first() else {
        return Ok(0);
    };
    use std::os::unix::process::CommandExt as _;
    let e = crate::agent_env::continuing(first).args(rest).exec();
    Err(format!("orch service-wait: cannot run `{first}`: {e}"))
}
