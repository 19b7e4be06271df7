//! The lines the core takes from an attempt's output for its one-line notes: the last line that
//! says something, the driver's own last line of an ssh attempt, a cause's first line, and words
//! put on one escaped line.

use crate::agent_output::AgentOutput;

/// The last line of an ssh attempt's driver (`orch remote-attempt: …`, on a line of its own
/// after anything the host sent), escaped.
pub(super) fn driver_line(output: &AgentOutput) -> Option<String> {
    output.cause().and_then(|c| {
        last_line(&c)
            .strip_prefix("orch remote-attempt: ")
            .map(one_line)
    })
}

/// The last line of `s` that says something.
pub(super) fn last_line(s: &str) -> &str {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
}

/// `s` (an executor's words, with the end of a log) on one line, escaped: its lines trimmed,
/// joined by ` | `.
pub(super) fn one_line(s: &str) -> String {
    let mut out = String::new();
    for l in s.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.is_empty() {
            out.push_str(if out.ends_with(':') { " " } else { " | " });
        }
        out.push_str(l);
    }
    crate::untrusted::text::escaped(&out).into_owned()
}

/// The first line of a cause, for a one-line note.
pub(super) fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("").trim()
}
