//! Best of N's rounds as the run's state holds them: a round of sibling attempts of one task
//! ([`Round`]), each attempt ([`Member`]) and where it stands ([`MemberState`]). The decisions
//! on them are `round.rs`'s and `best_of.rs`'s.

use std::time::Instant;

use super::ended::{Outcome, RunId};
use crate::agent_output::Usage;

/// What an attempt's agent reported through the report channel (its own report directory).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reported {
    Done,
    Failed(Option<String>),
    Skipped,
}

/// Where one attempt of a round stands.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum MemberState {
    /// Its agent runs (or is being launched).
    Running,
    /// Its agent reported done; its check runs.
    Checking,
    /// Done and checked: its change is measured and its `select` runs.
    Measuring,
    /// Done, checked, measured: it may win.
    Candidate { score: Option<f64>, lines: u64 },
    /// Not a candidate (or stopped once another was picked): why.
    Lost { cause: String },
}

/// One attempt of a round.
#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub(crate) run: RunId,
    /// Its `ORCH_ATTEMPT`.
    pub(crate) attempt: u32,
    pub(crate) reported: Option<Reported>,
    pub(crate) state: MemberState,
    /// Its process has ended.
    pub(crate) ended: bool,
    pub(crate) usage: Option<Usage>,
    /// Its settling's outcome (committed for the pick, saved for the others).
    pub(crate) settled: Option<Outcome>,
    /// Its settling was asked for.
    pub(crate) settling: bool,
}

impl Member {
    pub(crate) fn new(run: RunId, attempt: u32) -> Self {
        Member {
            run,
            attempt,
            reported: None,
            state: MemberState::Running,
            ended: false,
            usage: None,
            settled: None,
            settling: false,
        }
    }

    /// Its result is known (a candidate or not).
    pub(crate) fn resolved(&self) -> bool {
        matches!(
            self.state,
            MemberState::Candidate { .. } | MemberState::Lost { .. }
        )
    }
}

/// A round: N attempts of a task started at once.
#[derive(Clone, Debug)]
pub(crate) struct Round {
    /// 1 for the task's first round in this run.
    pub(crate) number: u32,
    pub(crate) members: Vec<Member>,
    /// The pick is made (`winner` `None`: no attempt is a candidate).
    pub(crate) decided: bool,
    /// Index into `members`.
    pub(crate) winner: Option<usize>,
    /// Why the winner won, in words (the commit message's and `task_finished`'s).
    pub(crate) why: String,
    pub(crate) started: Instant,
}

impl Round {
    pub(crate) fn member_mut(&mut self, run: RunId) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.run == run)
    }

    /// Every attempt's tokens and cost, losers too.
    pub(crate) fn usage(&self) -> Option<Usage> {
        self.members
            .iter()
            .filter_map(|m| m.usage)
            .reduce(|a, b| a.plus(&b))
    }

    /// The best candidate: the highest score (when scored), then the smaller change, then the
    /// earliest attempt.
    pub(crate) fn best(&self) -> Option<usize> {
        let mut best: Option<(usize, Option<f64>, u64)> = None;
        for (i, m) in self.members.iter().enumerate() {
            let MemberState::Candidate { score, lines } = m.state else {
                continue;
            };
            let better = match best {
                None => true,
                Some((_, bs, bl)) => match (score, bs) {
                    (Some(a), Some(b)) if a > b => true,
                    (Some(a), Some(b)) if a < b => false,
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    _ => lines < bl,
                },
            };
            if better {
                best = Some((i, score, lines));
            }
        }
        best.map(|(i, _, _)| i)
    }

    /// The pick in words: `attempt 2 of 3: check passed, score 0.93, 41 lines; 1 failed its
    /// check, 3 stopped`.
    pub(crate) fn pick_words(&self, winner: usize, checked: bool) -> String {
        let n = self.members.len();
        let w = &self.members[winner];
        // Attempts are numbered on from earlier rounds (and runs): the place in this round too.
        let place = winner + 1;
        let mut head = if w.attempt as usize == place {
            format!("attempt {} of {n}: ", w.attempt)
        } else {
            format!("attempt {} ({place} of {n}): ", w.attempt)
        };
        let mut facts = vec![if checked { "check passed" } else { "done" }.to_string()];
        if let MemberState::Candidate { score, lines } = w.state {
            if let Some(s) = score {
                facts.push(format!("score {s}"));
            }
            facts.push(format!("{lines} line{}", if lines == 1 { "" } else { "s" }));
        }
        head.push_str(&facts.join(", "));
        let others: Vec<String> = self
            .members
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != winner)
            .map(|(_, m)| format!("attempt {}: {}", m.attempt, short_cause(m)))
            .collect();
        if !others.is_empty() {
            head.push_str("; ");
            head.push_str(&others.join("; "));
        }
        head
    }

    /// Why no attempt is a candidate: each attempt's cause.
    pub(crate) fn failure_words(&self) -> String {
        let n = self.members.len();
        let causes: Vec<String> = self
            .members
            .iter()
            .map(|m| {
                let cause = match &m.state {
                    MemberState::Lost { cause } => shown(cause),
                    _ => "did not finish".to_string(),
                };
                format!("attempt {}: {cause}", m.attempt)
            })
            .collect();
        format!(
            "none of the {n} attempts is a candidate (reported done and passed its checks): {}",
            causes.join("; ")
        )
    }
}

/// `text` with its control characters (an agent's words may hold terminal escapes) shown
/// escaped: what the pick's words, the events and the commit message carry.
pub(crate) fn shown(text: &str) -> String {
    crate::untrusted::escaped_lines(text).into_owned()
}

/// What became of a losing attempt, briefly (`failed its check`, `stopped`, `lost: score 0.2`).
fn short_cause(m: &Member) -> String {
    match &m.state {
        MemberState::Candidate { score, lines } => match score {
            Some(s) => format!("lost (score {s}, {lines} lines)"),
            None => format!("lost ({lines} lines)"),
        },
        MemberState::Lost { cause } => {
            let cause = shown(cause);
            let first = cause.lines().next().unwrap_or("").trim();
            let cut: String = first.chars().take(80).collect();
            if cut.len() < first.len() {
                format!("{cut}…")
            } else {
                cut
            }
        }
        _ => "did not finish".to_string(),
    }
}
