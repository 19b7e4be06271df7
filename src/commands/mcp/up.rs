//! The `up` tool: `orch up` started detached (its own process group, stdin closed, what it
//! prints in `<state_dir>/.mcp-up.log`), so that it runs on after the call and after the MCP
//! server. The call returns once the run has started, told by orch's own records: a
//! `run_started` event after the call's start and the supervisor's lock held by the process
//! this call started; or with `orch up`'s exit code and message if it ended first.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

use crate::commands::orch_child::{STDERR_MAX, orch_exe};
use crate::commands::run_events::{self as events, Filter, Log};
use crate::untrusted::read;

/// How long the call waits for the run to start (its checks, the agents' pre-flight).
const START_MAX: Duration = Duration::from_secs(300);

/// How the start went: the run's start (`Ok`), or orch's exit code and message.
pub(super) async fn start(state_dir: &Path, argv: &[String]) -> Result<Value, (i32, String)> {
    let failed = |e: std::io::Error| (1, format!("cannot start `orch up`: {e}"));
    std::fs::create_dir_all(state_dir).map_err(failed)?;
    let out_path = crate::state_layout::MCP_UP_LOG.at(state_dir);
    // A fresh file, never through a link someone left there.
    let _ = std::fs::remove_file(&out_path);
    let out = crate::links::no_follow()
        .create_new(true)
        .write(true)
        .open(&out_path)
        .map_err(failed)?;
    let err = out.try_clone().map_err(failed)?;
    let mut log = Log::open(state_dir, None);
    let mut child = crate::agent_env::orch_itself(orch_exe().map_err(failed)?)
        .args(argv)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err))
        .process_group(0)
        .spawn()
        .map_err(failed)?;
    let Some(pid) = child.id() else {
        return Err((1, "`orch up` ended before it could be watched".into()));
    };
    let started = Filter {
        kinds: vec!["run_started".into()],
        plan: None,
        task: None,
    };
    let deadline = tokio::time::Instant::now() + START_MAX;
    loop {
        tokio::select! {
            ev = events::wait(state_dir, &mut log, &started, START_MAX) => {
                let Some(ev) = ev else { break };
                // Another run's start is not this one's: the lock names who runs.
                let holder = crate::supervisor::lock::running(state_dir).map(|h| h.pid);
                if holder == Some(pid) {
                    reap(child);
                    return Ok(json!({"started": true, "pid": pid, "run": ev, "log": out_path}));
                }
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
            }
            status = child.wait() => {
                let code = status.ok().and_then(|s| s.code()).unwrap_or(1);
                let said = read::tail(&out_path, 0, STDERR_MAX as u64)
                    .map(|(_, b)| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                return Err((code, said));
            }
        }
    }
    reap(child);
    Ok(json!({
        "started": false,
        "pid": pid,
        "note": format!("`orch up` runs but has not started its run within {} s", START_MAX.as_secs()),
        "log": out_path,
    }))
}

/// The detached `orch up` is waited for in the background: no zombie is left while the
/// server runs.
fn reap(mut child: tokio::process::Child) {
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
}
