//! A person's messages to a running attempt ([`Action::Tell`](crate::supervisor::core::Action)):
//! each written as one line on the stdin of an agent that reads them (`input = "lines"`: the
//! text escaped to one line; `"stream-json"`: one user message of Claude Code's streaming
//! input), through the pipe orch kept when it started the agent, never blocking the loop; what
//! was delivered and what was kept is recorded on each message (`delivery`, `attempt`), which
//! `orch say` waits for.

use std::io::Write as _;
use std::ops::Range;

use super::{Effects, process_note};
use crate::manifest::InputMode;
use crate::process::Spawned;
use crate::supervisor::state::RunId;

/// The longest line written to an agent's stdin, its newline included: what a pipe takes in
/// one write or not at all (`PIPE_BUF`), so that an agent never reads half a message. A longer
/// message is kept for the next attempt.
pub(crate) const LINE_MAX: usize = 4096;

/// `text` on one line: a backslash doubled, a newline `\n`, a tab `\t`, every other control
/// and invisible character escaped as orch shows untrusted text.
pub(crate) fn one_line(text: &str) -> String {
    let doubled = text.replace('\\', "\\\\");
    crate::untrusted::text::escaped(&doubled).into_owned()
}

/// How a message reaches an agent with streaming input: said to be the person's.
pub(crate) fn streamed(text: &str) -> String {
    crate::process::stream_input::user_message(&format!(
        "A message from the person who runs this plan, sent while you work (follow it):\n\n{text}"
    ))
}

/// Writes message `text` as one line into `pipe` (non-blocking), as `mode` says: whether all
/// of it went in.
fn write_message(pipe: &mut std::fs::File, mode: InputMode, text: &str) -> bool {
    match mode {
        InputMode::None => false,
        InputMode::Lines => write_line(pipe, text),
        InputMode::StreamJson => write_whole(pipe, &streamed(text)),
    }
}

/// Writes `text` as one line into `pipe` (non-blocking): whether all of it went in.
fn write_line(pipe: &mut std::fs::File, text: &str) -> bool {
    let mut line = one_line(text);
    line.push('\n');
    write_whole(pipe, &line)
}

/// Writes `line` (its newline included) into `pipe`, whole or not at all.
fn write_whole(pipe: &mut std::fs::File, line: &str) -> bool {
    if line.len() > LINE_MAX {
        return false;
    }
    // At most PIPE_BUF bytes: written whole or not at all (a full pipe: `WouldBlock`).
    matches!(pipe.write(line.as_bytes()), Ok(n) if n == line.len())
}

impl Effects<'_> {
    /// Lets attempt `run`'s gated wrapper start its agent; with an `input` mode, orch's end of
    /// the agent's stdin is kept for the messages to come.
    pub(crate) fn release(&mut self, run: RunId, spawned: &mut Spawned, input: InputMode) {
        if input == InputMode::None {
            spawned.release();
            return;
        }
        if let Some(pipe) = spawned.release_keeping() {
            self.inputs.insert(run, (pipe, input));
        }
    }

    /// Messages `range` of task `t` of plan `p`: written on the stdin of its running attempt
    /// `run` where there is one that reads them, else kept; recorded either way.
    pub(super) fn tell(
        &mut self,
        p: usize,
        t: usize,
        run: Option<(RunId, u32)>,
        range: Range<usize>,
    ) {
        let Some(pc) = self.plan(p) else { return };
        let Some(id) = self.ws.plans[p].plan.tasks.get(t).map(|t| t.id.clone()) else {
            return;
        };
        let texts: Vec<String> = self.views[p]
            .doc
            .as_ref()
            .and_then(|d| d.entry(&id))
            .map(|e| {
                e.orch_messages
                    .get(range.clone())
                    .unwrap_or_default()
                    .iter()
                    .map(|m| m.text.clone())
                    .collect()
            })
            .unwrap_or_default();
        let pipe = run.and_then(|(r, _)| self.inputs.get_mut(&r));
        let delivered: Vec<bool> = match pipe {
            Some((pipe, mode)) => texts
                .iter()
                .map(|text| write_message(pipe, *mode, text))
                .collect(),
            None => vec![false; texts.len()],
        };
        let attempt = run.map(|(_, a)| a);
        for (i, &ok) in delivered.iter().enumerate() {
            let how = if ok {
                format!("delivered to attempt {}", attempt.unwrap_or_default())
            } else {
                "kept for the next attempt".to_string()
            };
            tracing::debug!(plan = %pc.name(), task = %id, message = range.start + i, "{how}");
        }
        let start = range.start;
        tokio::task::spawn_blocking(move || {
            let r = pc.update_entry(&id, |doc| {
                if let Some(e) = doc.entry_mut(&id) {
                    for (i, &ok) in delivered.iter().enumerate() {
                        if let Some(m) = e.orch_messages.get_mut(start + i)
                            && m.delivery.is_none()
                        {
                            m.delivery = Some(if ok { "delivered" } else { "kept" }.to_string());
                            m.attempt = if ok { attempt } else { None };
                        }
                    }
                }
                Ok(())
            });
            if let Err(e) = r {
                process_note(&pc, &format!("cannot record a message's delivery: {e}"));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// orch's end of a pipe, non-blocking (as [`Spawned::release_keeping`] makes it), and the
    /// agent's end.
    fn pipe() -> (std::fs::File, std::io::PipeReader) {
        let (r, w) = std::io::pipe().expect("pipe");
        let w = std::fs::File::from(std::os::fd::OwnedFd::from(w));
        let flags = nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_GETFL).expect("flags");
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_SETFL(flags)).expect("set");
        (w, r)
    }

    #[test]
    fn a_message_is_one_escaped_line_written_whole_or_not_at_all() {
        assert_eq!(one_line("a\nb\\c\u{1b}[2J\t"), "a\\nb\\\\c\\u{1b}[2J\\t");
        let (mut w, mut r) = pipe();
        assert!(write_line(&mut w, "hello\nworld"));
        // An agent that never reads: once its pipe is full, messages are kept, nothing blocks,
        // and no line is cut.
        let line = "x".repeat(LINE_MAX - 1);
        let mut written = 1;
        while write_line(&mut w, &line) {
            written += 1;
            assert!(written < 10_000, "the pipe never filled");
        }
        assert!(!write_line(&mut w, &"y".repeat(LINE_MAX)), "too long");
        drop(w);
        let mut all = String::new();
        std::io::Read::read_to_string(&mut r, &mut all).expect("read");
        let lines: Vec<&str> = all.lines().collect();
        assert_eq!(lines[0], "hello\\nworld");
        assert_eq!(lines.len(), written);
        assert!(lines[1..].iter().all(|l| *l == line), "whole lines only");
    }
}
