//! End-to-end tests of `orch status --watch`: the real binary watching a real state directory
//! while the real `orch task` changes it.

use crate::support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{orch_in, task_in, wait_status_until};

/// The deadline of each whole test.
const TIMEOUT: Duration = Duration::from_secs(30);

const MANIFEST: &str = r#"[[plan]]
name = "demo"
file = "docs/demo.md"
"#;

const PLAN: &str = "# Demo plan

## Phase 1: Setup
- [ ] 1.1 Create `src/a.rs`
- [ ] 1.2 Create `src/b.rs`
";

/// `orch ARGS` in `dir`, with no ORCH_* variable from an outer run.
fn orch(dir: &Path, args: &[&str]) -> Command {
    orch_in(
        dir,
        args,
        &["ORCH_PLAN", "ORCH_STATUS_FILE", "ORCH_MANIFEST"],
    )
}

/// A repository with `plans.toml` and one plan; no state directory yet.
fn repo() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    std::fs::write(tmp.path().join("plans.toml"), MANIFEST).expect("manifest");
    std::fs::create_dir_all(tmp.path().join("docs")).expect("docs");
    std::fs::write(tmp.path().join("docs/demo.md"), PLAN).expect("plan");
    tmp
}

/// Runs `orch task <args>` to completion (it must succeed).
fn task(dir: &Path, args: &[&str], deadline: Instant) {
    let mut full = vec!["task"];
    full.extend_from_slice(args);
    let mut child = orch(dir, &full).spawn().expect("spawn orch task");
    let status = wait_status_until(&mut child, deadline, "orch task");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert!(status.success(), "orch {full:?}: {err}");
}

/// A running `orch status --watch`, its stdout read line by line on a thread. Killed on drop.
struct Watch {
    child: Child,
    lines: Receiver<String>,
    deadline: Instant,
}

impl Watch {
    /// Starts `orch status --watch <args>`; the reader closes stdout after `keep` lines when
    /// given.
    fn spawn(dir: &Path, args: &[&str], keep: Option<usize>) -> Self {
        let deadline = Instant::now() + TIMEOUT;
        let mut full = vec!["status", "--watch"];
        full.extend_from_slice(args);
        let mut child = orch(dir, &full).spawn().expect("spawn orch status --watch");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut n = 0;
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let line = line.trim_end_matches('\n').to_string();
                n += 1;
                if keep.is_some_and(|k| n >= k) {
                    // Close the pipe before the test hears of the line.
                    drop(reader);
                    let _ = tx.send(line);
                    break;
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            lines,
            deadline,
        }
    }

    /// The next line of output; fails at the deadline.
    fn line(&self) -> String {
        let left = self.deadline.saturating_duration_since(Instant::now());
        self.lines
            .recv_timeout(left)
            .expect("orch status --watch printed a line in time")
    }

    /// Reads lines until one satisfies `want`; returns it.
    fn line_where(&self, want: impl Fn(&str) -> bool) -> String {
        loop {
            let line = self.line();
            if want(&line) {
                return line;
            }
        }
    }

    /// Waits for the process to end by itself.
    fn exit_status(&mut self) -> ExitStatus {
        wait_status_until(&mut self.child, self.deadline, "orch status --watch")
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits")
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn task_status(view: &Value, id: &str) -> String {
    task_in(&view["plans"][0], id)["status"]
        .as_str()
        .expect("status")
        .to_string()
}

fn state_file(dir: &Path) -> PathBuf {
    dir.join(".orch/state/demo/status.json")
}

#[test]
fn json_watch_prints_one_object_per_change() {
    let tmp = repo();
    let d = tmp.path();
    let watch = Watch::spawn(d, &["--json"], None);
    let first: Value = serde_json::from_str(&watch.line()).expect("one JSON object per line");
    assert_eq!(task_status(&first, "1.1"), "pending");
    assert_eq!(first["plans"][0]["summary"]["completed"], 0);
    assert!(
        d.join(".orch/state").is_dir(),
        "the state directory is made"
    );
    assert!(!state_file(d).exists(), "watching writes no status file");

    task(d, &["done", "1.1", "--plan", "demo"], watch.deadline);
    let line = watch.line_where(|l| {
        let v: Value = serde_json::from_str(l).expect("one JSON object per line");
        task_status(&v, "1.1") == "completed"
    });
    let v: Value = serde_json::from_str(&line).expect("json");
    assert_eq!(v["plans"][0]["summary"]["completed"], 1);
    assert_eq!(task_status(&v, "1.2"), "pending");

    // A second change to a file that now exists (replaced by rename) is seen too.
    task(
        d,
        &["fail", "1.2", "--plan", "demo", "--error", "no"],
        watch.deadline,
    );
    watch.line_where(|l| {
        let v: Value = serde_json::from_str(l).expect("json");
        task_status(&v, "1.2") == "failed"
    });
}

#[test]
fn text_watch_prints_each_new_view_after_a_time_line() {
    let tmp = repo();
    let d = tmp.path();
    let watch = Watch::spawn(d, &[], None);
    assert_eq!(watch.line(), "demo — Demo plan (docs/demo.md)");
    assert!(watch.line().contains("0/2 done, 0 running"));

    task(d, &["start", "1.2", "--plan", "demo"], watch.deadline);
    let sep = watch.line_where(|l| l.starts_with("--- "));
    let time = sep
        .strip_prefix("--- ")
        .and_then(|s| s.strip_suffix(" ---"))
        .expect("--- HH:MM:SS ---");
    assert!(
        chrono::NaiveTime::parse_from_str(time, "%H:%M:%S").is_ok(),
        "{sep}"
    );
    assert_eq!(watch.line(), "demo — Demo plan (docs/demo.md)");
    assert!(watch.line().contains("0/2 done, 1 running"));
    watch.line_where(|l| l.contains("in_progress 1.2 Create `src/b.rs`"));
}

#[test]
fn ctrl_c_ends_the_watch_with_exit_0() {
    let tmp = repo();
    let mut watch = Watch::spawn(tmp.path(), &["--json"], None);
    // The first view is printed after the signal handler is in place.
    watch.line();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(watch.pid()),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("send SIGINT");
    let status = watch.exit_status();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

#[test]
fn a_closed_stdout_ends_the_watch() {
    let tmp = repo();
    let d = tmp.path();
    let mut watch = Watch::spawn(d, &["--json"], Some(1));
    watch.line();
    // The reader has closed the pipe; the next view cannot be written.
    task(d, &["done", "1.1", "--plan", "demo"], watch.deadline);
    let status = watch.exit_status();
    assert_eq!(status.code(), Some(0), "{status:?}");
}
