//! Notifications of `orch up` (`[[notify]]` in plans.toml): each event a hook asks for is
//! handed to it as one JSON line, the line `--json` prints.
//!
//! Delivery never blocks the run: [`Notifier::send`] only queues the line. Each hook has a
//! thread of its own that delivers its queue in order: a command gets the line on stdin, a
//! webhook gets it POSTed. Each delivery has the hook's `timeout` (a command still running then
//! is killed with its process group); a webhook whose connection fails, or that answers 5xx or
//! 429, is tried again after 0.5 s and 1 s (a delivery that timed out is not). Each failure is
//! kept as a message naming the hook (the caller reports it as a `note` event) and counted. At
//! the end of the run, [`Notifier::finish`] waits at most the longest hook timeout (and 0.1 s) for the
//! queues; what is left is counted as not delivered.

use std::io::{Read as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::manifest::NotifyHook;

/// Waits between the attempts of a webhook delivery.
const WEBHOOK_BACKOFF: [Duration; 2] = [Duration::from_millis(500), Duration::from_secs(1)];

// How a hook's command runs confined ([`Confine`]): through `orch_bin sandbox-exec` under
// `rules` (the devices, the agents' `sandbox_write`, their `sandbox_deny_read`) with a private
// `TMPDIR` of its own added. A hook's program reads the repository as the agents' work left it (a script
// beside others, a module it imports, a makefile it includes: code no list of protected files
// can name in full), so it runs as the agents' code runs, confined, wherever the manifest
// confines an agent (`crate::merge::confine::decide`, as `verify`). Its network is not
// confined: a hook notifies.
use crate::sandbox::Confine;

/// What the hook threads share with the run.
#[derive(Default)]
struct Shared {
    /// Failure messages not yet taken by [`Notifier::take_notes`].
    notes: Mutex<Vec<String>>,
    /// Failed deliveries, all hooks together.
    failures: AtomicUsize,
    /// Set by [`Notifier::finish`] when its wait is over: deliver nothing more.
    abandon: AtomicBool,
}

impl Shared {
    fn fail(&self, message: String) {
        self.failures.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut notes) = self.notes.lock() {
            notes.push(message);
        }
    }
}

/// One hook's queue.
struct Queue {
    name: String,
    events: Vec<String>,
    tx: Option<Sender<(String, String)>>,
    /// Events queued, and events its thread is done with (delivered, failed or skipped).
    queued: Arc<AtomicUsize>,
    processed: Arc<AtomicUsize>,
}

/// The hooks of a run, each with its queue and delivery thread.
pub(crate) struct Notifier {
    queues: Mutex<Vec<Queue>>,
    /// Set by [`finish`](Self::finish): `send` does nothing more.
    closed: AtomicBool,
    shared: Arc<Shared>,
    /// Each thread says here when its queue is done.
    done: Mutex<Receiver<()>>,
    threads: usize,
    /// The longest hook timeout: how long [`finish`](Self::finish) waits.
    longest: Duration,
}

impl Notifier {
    /// Starts one delivery thread per hook (commands run in `cwd`, confined by `confine` when
    /// given); `None` without hooks.
    pub(crate) fn start(
        hooks: &[NotifyHook],
        cwd: &Path,
        confine: Option<&Confine>,
    ) -> Option<Self> {
        if hooks.is_empty() {
            return None;
        }
        let shared = Arc::new(Shared::default());
        let (done_tx, done_rx) = mpsc::channel();
        let mut queues = Vec::new();
        let mut threads = 0;
        for hook in hooks {
            let (tx, rx) = mpsc::channel::<(String, String)>();
            let processed = Arc::new(AtomicUsize::new(0));
            let hook_t = hook.clone();
            let shared_t = shared.clone();
            let done_t = done_tx.clone();
            let processed_t = processed.clone();
            let cwd = cwd.to_path_buf();
            let confine_t = confine.cloned();
            let spawned = std::thread::Builder::new()
                .name(format!("orch-notify-{}", hook.line))
                .spawn(move || {
                    let place = (cwd.as_path(), confine_t.as_ref());
                    deliver_all(&hook_t, place, &rx, &shared_t, &processed_t);
                    let _ = done_t.send(());
                });
            match spawned {
                Ok(_) => {
                    threads += 1;
                    queues.push(Queue {
                        name: hook.name.clone(),
                        events: hook.events.clone(),
                        tx: Some(tx),
                        queued: Arc::new(AtomicUsize::new(0)),
                        processed,
                    });
                }
                Err(e) => shared.fail(format!(
                    "{}: cannot start its delivery thread: {e}; it gets nothing",
                    hook.name
                )),
            }
        }
        let longest = hooks.iter().map(|h| h.timeout).max().unwrap_or_default();
        Some(Self {
            queues: Mutex::new(queues),
            closed: AtomicBool::new(false),
            shared,
            done: Mutex::new(done_rx),
            threads,
            longest,
        })
    }

    /// Queues `line` (the event `name` as `--json` prints it) for every hook that asked for
    /// `name`. Never blocks; after [`finish`](Self::finish) does nothing. The line is sent as
    /// `orch up --json` prints it: the characters JSON leaves raw (C1 controls such as `U+009B`,
    /// bidi overrides) escaped too, so that a hook which shows it (a chat message, a desktop
    /// notification, a terminal) shows an agent's words as text.
    pub(crate) fn send(&self, name: &str, line: &str) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        let line = crate::untrusted::json_safe(line.to_string());
        let line = line.as_str();
        let Ok(queues) = self.queues.lock() else {
            return;
        };
        for q in queues.iter() {
            if let Some(tx) = &q.tx
                && q.events.iter().any(|e| e == name)
                && tx.send((name.to_string(), line.to_string())).is_ok()
            {
                q.queued.fetch_add(1, Ordering::SeqCst);
            }
        }
    }

    /// The failure messages since the last call, each naming its hook.
    pub(crate) fn take_notes(&self) -> Vec<String> {
        self.shared
            .notes
            .lock()
            .map(|mut n| std::mem::take(&mut *n))
            .unwrap_or_default()
    }

    /// Failed deliveries so far.
    pub(crate) fn failures(&self) -> usize {
        self.shared.failures.load(Ordering::SeqCst)
    }

    /// Closes the queues and waits for them, at most the longest hook timeout (and a moment);
    /// events still queued then are not delivered, each counted as a failure. Returns the number
    /// of failed deliveries of the whole run.
    pub(crate) fn finish(&self) -> usize {
        self.closed.store(true, Ordering::SeqCst);
        if let Ok(mut queues) = self.queues.lock() {
            // Dropping the senders ends each thread once its queue is empty.
            for q in queues.iter_mut() {
                q.tx = None;
            }
        }
        let deadline = Instant::now() + self.longest + Duration::from_millis(100);
        if let Ok(done) = self.done.lock() {
            let mut finished = 0;
            while finished < self.threads
                && done
                    .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                    .is_ok()
            {
                finished += 1;
            }
        }
        self.shared.abandon.store(true, Ordering::SeqCst);
        // What a thread has not finished now is not delivered (its thread skips the rest).
        if let Ok(queues) = self.queues.lock() {
            for q in queues.iter() {
                let left = q
                    .queued
                    .load(Ordering::SeqCst)
                    .saturating_sub(q.processed.load(Ordering::SeqCst));
                if left > 0 {
                    self.shared.failures.fetch_add(left - 1, Ordering::SeqCst);
                    self.shared.fail(format!(
                        "{}: {left} event{} not delivered: the run ended first",
                        q.name,
                        if left == 1 { "" } else { "s" }
                    ));
                }
            }
        }
        self.failures()
    }
}

/// A hook's thread: delivers its queue in order until it is closed (or abandoned).
fn deliver_all(
    hook: &NotifyHook,
    (cwd, confine): (&Path, Option<&Confine>),
    rx: &Receiver<(String, String)>,
    shared: &Shared,
    processed: &AtomicUsize,
) {
    while let Ok((name, line)) = rx.recv() {
        // Given up by `finish`, which counted what is left.
        if shared.abandon.load(Ordering::SeqCst) {
            return;
        }
        let result = match (&hook.command, &hook.webhook) {
            (Some(argv), _) => run_confined(argv, (cwd, confine), &line, hook.timeout),
            (None, Some(url)) => post(url, &line, hook.timeout, &shared.abandon),
            (None, None) => Ok(()),
        };
        if shared.abandon.load(Ordering::SeqCst) {
            return;
        }
        if let Err(why) = result {
            shared.fail(format!("{}: `{name}` not delivered: {why}", hook.name));
        }
        processed.fetch_add(1, Ordering::SeqCst);
    }
}

/// [`run_command`], through `orch sandbox-exec` with a private `TMPDIR` (made empty, removed
/// after) when `confine` says so.
fn run_confined(
    argv: &[String],
    (cwd, confine): (&Path, Option<&Confine>),
    line: &str,
    timeout: Duration,
) -> Result<(), String> {
    let Some(c) = confine else {
        return run_command(argv, (argv, cwd, None), line, timeout);
    };
    static DELIVERY: AtomicUsize = AtomicUsize::new(0);
    let n = DELIVERY.fetch_add(1, Ordering::SeqCst);
    let tmp = crate::sandbox::tmp_root().join(format!("hook-{n}"));
    crate::links::fresh_dir(&tmp)
        .map_err(|e| format!("cannot make its TMPDIR `{}`: {e}", tmp.display()))?;
    let mut rules = c.rules.clone();
    rules.write.push(tmp.clone());
    let wrapped = crate::sandbox::wrap_here(&c.orch_bin, &rules, argv);
    let result = run_command(argv, (&wrapped, cwd, Some(&tmp)), line, timeout);
    let _ = crate::sandbox::remove_tmp(&tmp);
    result
}

/// Runs `run` (`argv` as it is, or wrapped) in its own process group with `line` on stdin
/// (`tmp` its `TMPDIR` when given); fails on a non-zero exit or when it outlives `timeout`
/// (then the group is killed). Messages name `argv`'s program.
fn run_command(
    argv: &[String],
    (run, cwd, tmp): (&[String], &Path, Option<&Path>),
    line: &str,
    timeout: Duration,
) -> Result<(), String> {
    let mut cmd = crate::agent_env::command(&run[0]);
    crate::process::place(&mut cmd, cwd);
    if let Some(tmp) = tmp {
        cmd.env("TMPDIR", tmp);
    }
    let mut child = cmd
        .args(&run[1..])
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{}`: {e}", argv[0]))?;
    let pgid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
    if let Some(mut stdin) = child.stdin.take() {
        // A command that does not read its input is fine; one that does not read a line longer
        // than the pipe holds (an agent's long cause) must not hold this thread past the
        // deadline: the line is written beside, and the write ends when the command does.
        let line = line.to_string();
        std::thread::spawn(move || {
            let _ = stdin.write_all(line.as_bytes());
            let _ = stdin.write_all(b"\n");
        });
    }
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = killpg(pgid, Signal::SIGKILL);
                let _ = child.wait();
                return Err(format!(
                    "`{}` still ran after {}; killed",
                    argv[0],
                    crate::manifest::format_duration(timeout)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("cannot wait for `{}`: {e}", argv[0])),
        }
    };
    // Whatever it left running in its group goes too.
    let _ = killpg(pgid, Signal::SIGKILL);
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(err) = child.stderr.take() {
        let _ = err.take(64 << 10).read_to_string(&mut stderr);
    }
    let tail = stderr
        .trim()
        .lines()
        .last()
        .map_or_else(String::new, |t| format!(": {t}"));
    Err(format!(
        "`{}` exited with {}{tail}",
        argv[0],
        status
            .code()
            .map_or_else(|| "a signal".to_string(), |c| format!("code {c}")),
    ))
}

/// POSTs `line` (JSON) to `url`; tried again after a failed connection, a 5xx or a 429.
fn post(url: &str, line: &str, timeout: Duration, abandon: &AtomicBool) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .user_agent(concat!("orch/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut last = String::new();
    for attempt in 0..=WEBHOOK_BACKOFF.len() {
        if attempt > 0 {
            if abandon.load(Ordering::SeqCst) {
                break;
            }
            std::thread::sleep(WEBHOOK_BACKOFF[attempt - 1]);
        }
        match agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(line)
        {
            Ok(resp) => {
                let code = resp.status().as_u16();
                if (200..300).contains(&code) {
                    return Ok(());
                }
                last = format!("HTTP {code}");
                if !(code >= 500 || code == 429) {
                    return Err(last);
                }
            }
            Err(ureq::Error::Timeout(_)) => {
                return Err(format!(
                    "no answer within {}",
                    crate::manifest::format_duration(timeout)
                ));
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!(
        "{last} (after {} attempts)",
        WEBHOOK_BACKOFF.len() + 1
    ))
}

/// The name of a `--json` event line (`"event"`), if it has one.
pub(crate) fn event_name(line: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(line)
        .ok()?
        .get("event")?
        .as_str()
        .map(str::to_string)
}
