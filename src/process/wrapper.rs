//! The wrapper every local agent, check and resolver runs under (`orch session-exec`), and the
//! keeper of a `setup` command (`orch session-exec --keep`): a process orch starts and records,
//! which stays the agent's parent for the whole attempt.
//!
//! It leaves orch's session for one of its own (`setsid`: no controlling terminal), becomes a
//! child subreaper, and starts `ARGV` as its child in a process group of its own, its stdout
//! and stderr a pipe that the wrapper copies into its own stderr (the attempt's log, opened by
//! orch) up to `log_max` bytes ([`Capped`]). Every process the agent starts, however it
//! detaches (a double fork, `setsid`), stays a descendant of the wrapper: when its parent dies
//! it is re-parented to the wrapper, not to orch or init. Confined, `ARGV` is
//! `orch sandbox-exec RULES -- …`: the Landlock rules apply to the agent's process only, so
//! under ABI 6 the agent cannot signal its wrapper (it is outside the agent's domain).
//!
//! When the agent exits, the wrapper kills every descendant left (kill and reap until it has
//! no child, also against a fork loop), writes what the log cap held back, and exits with the
//! agent's status (a death by a signal is passed on as the same signal). SIGTERM, SIGINT or
//! SIGHUP to the wrapper (orch stopping the attempt) is passed to every descendant; after
//! `grace` the ones left are killed. Who belongs to the attempt is decided by where the
//! process is (below the wrapper), never by what it says about itself.
//!
//! A keeper (`--keep`) runs a `setup` command the same way, but when the command succeeds it
//! reports its status on stdout and stays, with the processes the setup left running (a
//! database), until its stdin, a pipe from orch, reaches end of file (orch ended the run, or
//! died) or it is told to stop: then it ends them as above. A setup that fails has what it left
//! killed at once.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// The most of a setup's output a keeper hands orch as the cause of its failure.
const CAUSE_BYTES: usize = 8 * 1024;

/// What the wrapper is told by its command line.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    /// The most of the child's output written to the log (its beginning and its end).
    pub(crate) log_max: u64,
    /// How long descendants have between SIGTERM and SIGKILL when the wrapper is stopped.
    pub(crate) grace: Duration,
    /// A keeper: stays after its child succeeded, until stdin's end of file.
    pub(crate) keep: bool,
    /// Starts the child only once a byte comes on stdin (orch has recorded the wrapper); at
    /// stdin's end of file first (orch died before it recorded it) runs nothing. The child's
    /// stdin is then `stdin_file` (opened without following a link), else /dev/null.
    pub(crate) gate: bool,
    pub(crate) stdin_file: Option<std::path::PathBuf>,
    /// With `gate`: the child's stdin is the wrapper's own once the go-ahead byte is read, the
    /// pipe orch writes a person's messages into (`input = "lines"`); `stdin_file` is unused.
    pub(crate) input: bool,
    /// With `gate` and `stdin_file`: the child's stdin is a pipe the wrapper feeds, the prompt
    /// (`stdin_file`) first as one user message of the stream-json input format, then orch's
    /// messages, until orch closes its pipe (`input = "stream-json"`,
    /// [`super::stream_input`]).
    pub(crate) stream_json: bool,
    /// Where the end of the child's first turn (a stream-json `result` event in its output) is
    /// recorded, for orch to close its pipe ([`super::stream_input::TurnWatch`]).
    pub(crate) turn_ended: Option<std::path::PathBuf>,
    /// Where the child's ending is written once it ended (`exit N`, `signal N`): orch's record
    /// of an attempt that ended while no orch ran, read when a restarted `orch up` finds the
    /// wrapper gone.
    pub(crate) ended: Option<std::path::PathBuf>,
}

/// Why a gated wrapper ran nothing: orch ended before it recorded the attempt.
pub(crate) const NOT_RECORDED: u8 = 0;

/// How the wrapper's child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ended {
    Code(i32),
    Signal(i32),
}

impl Ended {
    /// As a keeper reports it on its first line ([`parse_report`]).
    fn word(self) -> String {
        match self {
            Ended::Code(c) => format!("exit {c}"),
            Ended::Signal(s) => format!("signal {s}"),
        }
    }
}

/// A keeper's report: its child's end and the last bytes of its output, as orch reads it from
/// the keeper's stdout: `exit N` or `signal N`, a line with the byte count, then the bytes.
pub(crate) fn report(ended: Ended, tail: &[u8]) -> Vec<u8> {
    let mut out = format!("{}\n{}\n", ended.word(), tail.len()).into_bytes();
    out.extend_from_slice(tail);
    out
}

/// Reads a keeper's report ([`report`]): `None` when it is not one (the keeper died first).
pub(crate) fn parse_report(bytes: &[u8]) -> Option<(Ended, Vec<u8>)> {
    let first = bytes.iter().position(|&b| b == b'\n')?;
    let rest = &bytes[first + 1..];
    let second = rest.iter().position(|&b| b == b'\n')?;
    let head = std::str::from_utf8(&bytes[..first]).ok()?;
    let len: usize = std::str::from_utf8(&rest[..second]).ok()?.parse().ok()?;
    let tail = rest.get(second + 1..second + 1 + len)?.to_vec();
    let ended = match head.split_once(' ')? {
        ("exit", n) => Ended::Code(n.parse().ok()?),
        ("signal", n) => Ended::Signal(n.parse().ok()?),
        _ => return None,
    };
    Some((ended, tail))
}

/// Output written to `out` up to `max` bytes: the first half as it comes (so `orch top` and
/// `tail -F` follow it live), then only the last half is kept, in memory, and written with one line
/// saying how much was dropped when the output ends ([`Capped::finish`]).
pub(crate) struct Capped<W: Write> {
    out: W,
    /// Bytes that may still be written as they come.
    head_left: u64,
    /// The most kept of the end.
    tail_max: usize,
    tail: VecDeque<u8>,
    dropped: u64,
    /// Whether the last byte written was a line break (or nothing was written).
    at_line_start: bool,
    max: u64,
    /// The last bytes seen, whatever was written ([`CAUSE_BYTES`]): a failed setup's cause.
    recent: VecDeque<u8>,
    /// When output was last held back (the log's time is touched then, at most once a second:
    /// a chatty agent past the cap is not "stuck").
    touched: Option<Instant>,
}

impl<W: Write> Capped<W> {
    pub(crate) fn new(out: W, max: u64) -> Self {
        let tail_max = usize::try_from(max / 2).unwrap_or(usize::MAX);
        Self {
            out,
            head_left: max - max / 2,
            tail_max,
            tail: VecDeque::new(),
            dropped: 0,
            at_line_start: true,
            max,
            recent: VecDeque::new(),
            touched: None,
        }
    }

    /// Takes `bytes` of output. Returns whether some were held back (not written now).
    pub(crate) fn write(&mut self, mut bytes: &[u8]) -> bool {
        keep_last(&mut self.recent, bytes, CAUSE_BYTES);
        if self.head_left > 0 {
            let n = usize::try_from(self.head_left)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            self.put(&bytes[..n]);
            self.head_left -= n as u64;
            bytes = &bytes[n..];
            if self.head_left == 0 && !bytes.is_empty() {
                let line = format!(
                    "=== orch: this output passed {} bytes (log_max = {}): only its last {} bytes are kept, written when it ends ===\n",
                    self.max - self.max / 2,
                    self.max,
                    self.tail_max
                );
                self.line(&line);
            }
        }
        if bytes.is_empty() {
            return false;
        }
        let before = self.tail.len() + bytes.len();
        keep_last(&mut self.tail, bytes, self.tail_max);
        self.dropped += (before - self.tail.len()) as u64;
        true
    }

    /// Whether the log's time should be touched now (output held back, not in the last second).
    pub(crate) fn touch_due(&mut self) -> bool {
        let due = self
            .touched
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
        if due {
            self.touched = Some(Instant::now());
        }
        due
    }

    /// Writes what was held back, after one line saying how much was dropped.
    pub(crate) fn finish(&mut self) {
        if self.tail.is_empty() && self.dropped == 0 {
            return;
        }
        if self.dropped > 0 {
            let line = format!(
                "=== orch: {} bytes of output dropped here (log_max = {}: the log keeps the first {} and the last {} bytes) ===\n",
                self.dropped,
                self.max,
                self.max - self.max / 2,
                self.tail_max
            );
            self.line(&line);
        }
        let tail: Vec<u8> = self.tail.drain(..).collect();
        self.put(&tail);
        let _ = self.out.flush();
    }

    /// The last bytes seen ([`CAUSE_BYTES`]).
    pub(crate) fn recent(&self) -> Vec<u8> {
        self.recent.iter().copied().collect()
    }

    pub(crate) fn into_inner(self) -> W {
        self.out
    }

    /// One line of orch's own, on a line of its own.
    fn line(&mut self, text: &str) {
        if !self.at_line_start {
            self.put(b"\n");
        }
        self.put(text.as_bytes());
    }

    fn put(&mut self, bytes: &[u8]) {
        if let Some(&last) = bytes.last() {
            // A log that cannot be written loses the output, not the attempt.
            let _ = self.out.write_all(bytes);
            self.at_line_start = last == b'\n';
        }
    }
}

/// Appends `bytes` to `buf`, keeping its last `max` bytes.
fn keep_last(buf: &mut VecDeque<u8>, bytes: &[u8], max: usize) {
    let bytes = &bytes[bytes.len().saturating_sub(max)..];
    let over = (buf.len() + bytes.len()).saturating_sub(max);
    buf.drain(..over.min(buf.len()));
    buf.extend(bytes);
}

/// Every descendant of `root` in `parents` (pid → parent pid), nearest first.
pub(crate) fn descendants_in(parents: &BTreeMap<u32, u32>, root: u32) -> Vec<u32> {
    let mut children: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for (&pid, &ppid) in parents {
        children.entry(ppid).or_default().push(pid);
    }
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([root]);
    while let Some(p) = queue.pop_front() {
        for &c in children.get(&p).map_or(&[][..], Vec::as_slice) {
            if c != root && seen.insert(c) {
                out.push(c);
                queue.push_back(c);
            }
        }
    }
    out
}

/// The live (not zombie) descendants of this process, from `/proc`.
fn descendants() -> Vec<u32> {
    let parents: BTreeMap<u32, u32> = super::all_pids()
        .filter_map(|pid| {
            let st = super::stat_of(pid)?;
            (st.state != 'Z').then_some((pid, st.ppid))
        })
        .collect();
    descendants_in(&parents, std::process::id())
}

/// Sends `sig` to every descendant.
fn signal_all(sig: Signal) {
    for pid in descendants() {
        if let Ok(raw) = i32::try_from(pid) {
            let _ = kill(Pid::from_raw(raw), sig);
        }
    }
}

/// Kills every descendant and reaps until no child is left: each round kills every descendant
/// seen, then waits for one child to end (a killed process's children are re-parented here, and
/// killed in the next round; a fork loop cannot outrun it, its forking processes die first).
/// `main`: the child whose status is wanted, set when it is reaped here.
fn kill_all(main: u32, status: &mut Option<Ended>) {
    loop {
        signal_all(Signal::SIGKILL);
        match waitpid(None::<Pid>, None) {
            Ok(ws) => note_status(ws, main, status),
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return,
        }
    }
}

/// Reaps every child that has ended, without waiting. Returns false when no child is left.
fn reap(main: u32, status: &mut Option<Ended>) -> bool {
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => return true,
            Ok(ws) => note_status(ws, main, status),
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return false,
        }
    }
}

fn note_status(ws: WaitStatus, main: u32, status: &mut Option<Ended>) {
    let Some(pid) = ws.pid() else { return };
    if u32::try_from(pid.as_raw()).ok() != Some(main) {
        return;
    }
    match ws {
        WaitStatus::Exited(_, code) => *status = Some(Ended::Code(code)),
        WaitStatus::Signaled(_, sig, _) => *status = Some(Ended::Signal(sig as i32)),
        _ => {}
    }
}

/// Where the wrapper is in its life.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The child runs.
    Running,
    /// A keeper whose setup succeeded: it keeps what the setup left.
    Keeping,
    /// Told to stop: descendants had SIGTERM, they are killed at the deadline.
    Stopping(Instant),
}

/// Runs the wrapper: see the module documentation. Returns how the child ended (a keeper whose
/// child succeeded: `Code(0)` once it is told to stop).
pub(crate) fn run(opts: &Options, argv: &[String]) -> io::Result<Ended> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty argv"))?;
    new_session();
    nix::sys::prctl::set_child_subreaper(true).map_err(io::Error::from)?;
    if opts.gate {
        let mut go = [0u8; 1];
        if !matches!(io::stdin().lock().read(&mut go), Ok(1)) {
            return Ok(Ended::Code(i32::from(NOT_RECORDED)));
        }
    }
    // The attempt's network namespace (when orch asked for one): entered here, while this
    // process has one thread, so that the child and all it starts are in it; the child is not
    // asked to enter one again.
    crate::sandbox::net::enter_from_env().map_err(io::Error::other)?;
    let (mut output, writer) = io::pipe()?;
    let mut cmd = crate::agent_env::command(program);
    cmd.env_remove(crate::sandbox::net::SPEC_VAR);
    cmd.args(args)
        .process_group(0)
        .stdout(writer.try_clone()?)
        .stderr(writer);
    let mut feed_to = None;
    if opts.gate && opts.stream_json && !opts.keep {
        // The prompt, then orch's messages, through a pipe the wrapper feeds (below).
        let (r, w) = io::pipe()?;
        cmd.stdin(r);
        feed_to = Some(w);
    } else if opts.gate && opts.input && !opts.keep {
        // The rest of orch's pipe, after the go-ahead byte, is the child's: orch's messages.
        cmd.stdin(Stdio::inherit());
    } else if opts.keep || opts.gate {
        // The keeper's stdin is orch's lifeline, a gated wrapper's its go-ahead: not the
        // child's.
        cmd.stdin(match &opts.stdin_file {
            Some(p) => Stdio::from(
                crate::links::no_follow()
                    .read(true)
                    .open(p)
                    .map_err(|e| crate::links::refused(p, e))?,
            ),
            None => Stdio::null(),
        });
    }
    // The child is started from a thread of its own, made before this one blocks the signals
    // it takes from a signal fd: a child inherits the blocked signals of the thread that starts
    // it, and the agent must start with none blocked. A SIGCHLD that thread swallows is made
    // up for: children are reaped before the first wait.
    let spawner = std::thread::spawn(move || {
        let child = cmd.spawn();
        // The pipe's write end lives only in the child (and what it starts) from here.
        drop(cmd);
        child.map(|c| c.id())
    });
    let mut mask = SigSet::empty();
    for sig in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGCHLD,
    ] {
        mask.add(sig);
    }
    mask.thread_block().map_err(io::Error::from)?;
    let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(io::Error::from)?;
    let main = spawner
        .join()
        .map_err(|_| io::Error::other("the thread that starts the child panicked"))??;
    // Started with the signals blocked, as this thread has them: they are read from the fd.
    if let Some(to) = feed_to {
        let prompt = opts.stdin_file.as_deref().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "--stream-json needs --stdin")
        })?;
        super::stream_input::feed(prompt, io::stdin(), to)?;
    }
    let mut turns = opts
        .turn_ended
        .clone()
        .map(super::stream_input::TurnWatch::new);
    let mut log = Capped::new(io::stderr().lock(), opts.log_max);
    let mut status: Option<Ended> = None;
    let mut phase = Phase::Running;
    let mut output_open = true;
    let mut lifeline_open = opts.keep;
    // A keeper has reported its setup's success.
    let mut reported = false;
    let mut buf = vec![0u8; 64 * 1024];
    let stdin = io::stdin();
    loop {
        let any_child = reap(main, &mut status);
        match (phase, status) {
            // The agent (or a failed setup) ended: everything it left goes now.
            (Phase::Running, Some(ended)) if !opts.keep || ended != Ended::Code(0) => {
                kill_all(main, &mut status);
                break;
            }
            (Phase::Running, Some(ended)) => {
                let mut out = io::stdout().lock();
                let _ = out.write_all(&report(ended, &log.recent()));
                let _ = out.flush();
                phase = Phase::Keeping;
                reported = true;
            }
            (Phase::Stopping(deadline), _) if !any_child || Instant::now() >= deadline => {
                kill_all(main, &mut status);
                break;
            }
            _ => {}
        }
        let timeout = match phase {
            Phase::Stopping(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)
            }
            _ => PollTimeout::NONE,
        };
        let (sig_ready, out_ready, life_ready) = {
            let mut fds = vec![PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
            if output_open {
                fds.push(PollFd::new(output.as_fd(), PollFlags::POLLIN));
            }
            if lifeline_open {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, timeout) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(io::Error::from(e)),
            }
            let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            let out_i = usize::from(output_open);
            (
                ready(&fds[0]),
                output_open && ready(&fds[out_i]),
                lifeline_open && ready(&fds[out_i + 1]),
            )
        };
        if out_ready {
            match output.read(&mut buf) {
                Ok(0) => output_open = false,
                Ok(n) => {
                    if let Some(t) = &mut turns {
                        t.take(&buf[..n]);
                    }
                    if log.write(&buf[..n]) && log.touch_due() {
                        touch(&io::stderr());
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => output_open = false,
            }
        }
        if life_ready {
            let mut b = [0u8; 64];
            match stdin.lock().read(&mut b) {
                Ok(0) | Err(_) => {
                    lifeline_open = false;
                    phase = stop(phase, opts.grace);
                }
                Ok(_) => {}
            }
        }
        if sig_ready {
            while let Ok(Some(info)) = signals.read_signal() {
                if info.ssi_signo != Signal::SIGCHLD as u32 {
                    phase = stop(phase, opts.grace);
                }
            }
        }
    }
    // Every writer of the pipe is gone (unless one handed it outside): what is left in it.
    drain(&mut output, &mut log, &mut buf);
    log.finish();
    let recent = log.recent();
    drop(log.into_inner());
    if reported {
        return Ok(Ended::Code(0));
    }
    // A keeper stopped before its setup ended reports that, as a killed setup.
    let ended = status.unwrap_or(Ended::Signal(Signal::SIGKILL as i32));
    if let (Some(path), Some(_)) = (&opts.ended, status) {
        write_ended(path, ended);
    }
    if opts.keep {
        let mut out = io::stdout().lock();
        let _ = out.write_all(&report(ended, &recent));
        let _ = out.flush();
    }
    Ok(ended)
}

/// Writes `ended` to `path` (made anew, never through a link): the record a restarted orch
/// reads of an attempt that ended while none ran ([`read_ended`]).
fn write_ended(path: &std::path::Path, ended: Ended) {
    let _ = std::fs::remove_file(path);
    if let Ok(mut f) = crate::links::no_follow()
        .write(true)
        .create_new(true)
        .open(path)
    {
        let _ = f.write_all(format!("{}\n", ended.word()).as_bytes());
    }
}

/// The exit code recorded at `path` by a wrapper whose child exited (`exit N`); `None` when
/// nothing is recorded there, or the child died by a signal.
pub(crate) fn read_ended(path: &std::path::Path) -> Option<i32> {
    let bytes = crate::untrusted::read::optional(path, crate::untrusted::read::STATE).ok()??;
    let text = String::from_utf8(bytes).ok()?;
    text.trim().strip_prefix("exit ")?.parse().ok()
}

/// The next phase once the wrapper is told to stop: every descendant gets SIGTERM (once).
fn stop(phase: Phase, grace: Duration) -> Phase {
    match phase {
        Phase::Stopping(_) => phase,
        _ => {
            signal_all(Signal::SIGTERM);
            Phase::Stopping(Instant::now() + grace)
        }
    }
}

/// Reads what is left in the output pipe without waiting for more.
fn drain<W: Write>(output: &mut io::PipeReader, log: &mut Capped<W>, buf: &mut [u8]) {
    loop {
        let mut fds = [PollFd::new(output.as_fd(), PollFlags::POLLIN)];
        if !matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0) {
            return;
        }
        match output.read(buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                log.write(&buf[..n]);
            }
        }
    }
}

/// Touches the modification time of the log (`fd`): a sign of life while output is held back.
fn touch(fd: &impl AsFd) {
    use nix::sys::time::TimeSpec;
    let _ = nix::sys::stat::futimens(fd, &TimeSpec::UTIME_OMIT, &TimeSpec::UTIME_NOW);
}

/// Leaves orch's session for a new one, unless this process already leads a session or a
/// process group.
fn new_session() {
    let me = nix::unistd::getpid();
    if nix::unistd::getsid(None).is_ok_and(|sid| sid == me) || nix::unistd::getpgrp() == me {
        return;
    }
    let _ = nix::unistd::setsid();
}

/// Ends this process as the child ended: with its exit code, or by the same signal (no core
/// file written). Returns the exit code to use when the signal did not end it.
pub(crate) fn pass_on(ended: Ended) -> u8 {
    match ended {
        Ended::Code(c) => u8::try_from(c).unwrap_or(1),
        Ended::Signal(s) => {
            if let Ok(sig) = Signal::try_from(s) {
                let none = nix::sys::resource::Resource::RLIMIT_CORE;
                let _ = nix::sys::resource::setrlimit(none, 0, 0);
                let mut set = SigSet::empty();
                set.add(sig);
                let _ = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&set), None);
                let _ = nix::sys::signal::raise(sig);
            }
            u8::try_from(128 + s).unwrap_or(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capped(max: u64, chunks: &[&[u8]]) -> String {
        let mut c = Capped::new(Vec::new(), max);
        for chunk in chunks {
            c.write(chunk);
        }
        c.finish();
        String::from_utf8(c.into_inner()).expect("utf-8")
    }

    #[test]
    fn output_under_the_cap_is_written_whole() {
        assert_eq!(capped(100, &[b"one\n", b"two\n"]), "one\ntwo\n");
        assert_eq!(capped(8, &[b"1234"]), "1234");
        // Past half the cap, the rest is held back (a line says so) and written at the end,
        // whole while nothing had to be dropped.
        let out = capped(8, &[b"12345678"]);
        assert!(
            out.starts_with("1234\n=== orch: this output passed 4 bytes"),
            "{out}"
        );
        assert!(
            out.ends_with("===\n5678") && !out.contains("dropped"),
            "{out}"
        );
    }

    #[test]
    fn output_over_the_cap_keeps_its_beginning_and_its_end_with_what_was_dropped() {
        let body: String = (0..100).map(|i| format!("line {i:03}\n")).collect();
        let out = capped(200, &[body.as_bytes()]);
        assert!(out.starts_with("line 000\nline 001\n"), "{out}");
        assert!(out.ends_with("line 098\nline 099\n"), "{out}");
        assert!(
            out.contains("=== orch: 700 bytes of output dropped here (log_max = 200"),
            "{out}"
        );
        // The kept bytes are the cap; orch's two lines come on top.
        let kept: usize = out
            .lines()
            .filter(|l| !l.starts_with("=== orch"))
            .map(|l| l.len() + 1)
            .sum();
        assert!(kept <= 200 + 2, "{kept}: {out}");
        // In small pieces, the same.
        let pieces: Vec<&[u8]> = body.as_bytes().chunks(7).collect();
        assert_eq!(capped(200, &pieces), out);
    }

    #[test]
    fn the_recent_bytes_are_the_last_ones_whatever_was_written() {
        let mut c = Capped::new(Vec::new(), 10);
        c.write(&vec![b'a'; CAUSE_BYTES]);
        c.write(b"the end");
        let recent = c.recent();
        assert_eq!(recent.len(), CAUSE_BYTES);
        assert!(recent.ends_with(b"aaathe end"));
    }

    #[test]
    fn a_keepers_report_reads_back() {
        for (ended, tail) in [
            (Ended::Code(0), &b""[..]),
            (Ended::Code(3), &b"cannot install\nthe deps\n"[..]),
            (Ended::Signal(9), &b"\n\n"[..]),
        ] {
            let bytes = report(ended, tail);
            assert_eq!(parse_report(&bytes), Some((ended, tail.to_vec())));
        }
        assert_eq!(parse_report(b""), None);
        assert_eq!(parse_report(b"exit 3\n10\nshort"), None);
        assert_eq!(parse_report(b"done 3\n0\n"), None);
    }

    #[test]
    fn descendants_are_found_however_deep_and_only_below_the_root() {
        // 10 → 11 → 12 → 13; 10 → 14; 20 → 21 (another tree); a loop 30 ↔ 31 is not followed.
        let parents: BTreeMap<u32, u32> = [
            (11, 10),
            (12, 11),
            (13, 12),
            (14, 10),
            (21, 20),
            (30, 31),
            (31, 30),
        ]
        .into();
        assert_eq!(descendants_in(&parents, 10), [11, 14, 12, 13]);
        assert_eq!(descendants_in(&parents, 12), [13]);
        assert_eq!(descendants_in(&parents, 13), Vec::<u32>::new());
        assert_eq!(descendants_in(&parents, 30), [31]);
    }
}
