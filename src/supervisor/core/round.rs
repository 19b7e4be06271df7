//! Best of N: a round of sibling attempts of one task, what each became, and the pick. Pure:
//! the core keeps the rounds ([`super::state::RunState::rounds`]) and decides from the facts the
//! effects measured (the select command's score, the size of the change); nothing here does I/O.
//!
//! Each attempt of a round has a name of its own for what is per worktree ([`member_key`]: its
//! task worktree and branch, its log, its report directory); the task's status entry, its
//! commit and its refs are the task's.

use std::time::Instant;

use super::state::{Outcome, RunId, RunState, Stage, Unit};
use crate::agent_output::Usage;

/// What stands for attempt `attempt` of task `id` where a name per attempt is needed: its task
/// worktree and branch (`orch/task/<plan>/<id>.a<attempt>`), its log (`<id>.a<attempt>.log`).
/// Never a task id (task ids are numbers and dots, or `V<n>`).
pub(crate) fn member_key(id: &str, attempt: u32) -> String {
    format!("{id}.a{attempt}")
}

/// Best of N: how many attempts of `task` run at once: its `(attempts: N)`, else `attempts`
/// (its plan's); 1 for a VERIFY step, or when its plan's tasks do not run in rounds (`rounds`
/// false: no task worktrees, a plan-mode agent).
pub(crate) fn round_size(task: &crate::plan::Task, rounds: bool, attempts: u32) -> u32 {
    if !rounds || task.kind != crate::plan::TaskKind::Task {
        return 1;
    }
    crate::plan::attempts_clause(&task.description)
        .ok()
        .flatten()
        .unwrap_or(attempts)
        .max(1)
}

/// The live attempt (launching or running) of a round with number `attempt` of `unit`: the
/// only one whose report is taken from that attempt's report directory.
pub(crate) fn member_run(state: &RunState, unit: Unit, attempt: u32) -> Option<RunId> {
    let Unit::Task { plan, task } = unit else {
        return None;
    };
    let round = state.rounds.get(&(plan, task))?;
    let m = round
        .members
        .iter()
        .find(|m| m.attempt == attempt && m.state == MemberState::Running)?;
    state
        .runs
        .get(&m.run)
        .filter(|rr| rr.unit == unit && matches!(rr.stage, Stage::Launching | Stage::Running))
        .map(|_| m.run)
}

/// The longest score text read from a `select` command (a number needs far less).
pub(crate) const SCORE_MAX_BYTES: usize = 64;

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

/// A `select` command's output read as a score: the last non-empty line of at most
/// [`SCORE_MAX_BYTES`] bytes, a finite number. Anything else is not a score (the cause says
/// what was found, its control characters shown escaped and cut).
pub(crate) fn parse_score(stdout: &[u8]) -> Result<f64, String> {
    let text = String::from_utf8_lossy(stdout);
    let last = text.lines().map(str::trim).rfind(|l| !l.is_empty());
    let Some(line) = last else {
        return Err("its select command printed no score".to_string());
    };
    if line.len() <= SCORE_MAX_BYTES
        && let Ok(v) = line.parse::<f64>()
        && v.is_finite()
    {
        return Ok(v);
    }
    let shown: String = line
        .chars()
        .take(40)
        .flat_map(char::escape_default)
        .take(80)
        .collect();
    Err(format!(
        "its select command printed no number: `{shown}`{}",
        if line.chars().count() > 40 { "…" } else { "" }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(states: Vec<MemberState>) -> Round {
        Round {
            number: 1,
            members: states
                .into_iter()
                .enumerate()
                .map(|(i, s)| {
                    let mut m = Member::new(i as u64 + 1, i as u32 + 1);
                    m.state = s;
                    m
                })
                .collect(),
            decided: false,
            winner: None,
            why: String::new(),
            started: Instant::now(),
        }
    }

    fn cand(score: Option<f64>, lines: u64) -> MemberState {
        MemberState::Candidate { score, lines }
    }

    fn lost(c: &str) -> MemberState {
        MemberState::Lost { cause: c.into() }
    }

    #[test]
    fn the_highest_score_then_the_smaller_change_then_the_earliest_wins() {
        assert_eq!(
            round(vec![cand(Some(0.5), 1), cand(Some(0.9), 99), lost("x")]).best(),
            Some(1)
        );
        assert_eq!(
            round(vec![cand(Some(0.5), 30), cand(Some(0.5), 10)]).best(),
            Some(1)
        );
        assert_eq!(round(vec![cand(None, 10), cand(None, 10)]).best(), Some(0));
        assert_eq!(round(vec![lost("a"), lost("b")]).best(), None);
        assert_eq!(
            round(vec![cand(None, 1), cand(Some(0.1), 5)]).best(),
            Some(1)
        );
    }

    #[test]
    fn the_pick_says_why() {
        let r = round(vec![
            lost("failed its check: exit status 1"),
            cand(Some(0.93), 41),
            lost("stopped"),
        ]);
        assert_eq!(
            r.pick_words(1, true),
            "attempt 2 of 3: check passed, score 0.93, 41 lines; attempt 1: failed its check: exit status 1; attempt 3: stopped"
        );
        assert!(r.failure_words().contains("attempt 1: failed its check"));
    }

    #[test]
    fn a_score_is_a_bounded_finite_number() {
        assert_eq!(parse_score(b"tests: 3\n0.93\n"), Ok(0.93));
        assert_eq!(parse_score(b"  42  "), Ok(42.0));
        assert!(parse_score(b"").is_err());
        assert!(parse_score(b"NaN").is_err());
        assert!(parse_score(b"inf").is_err());
        let huge = "9".repeat(100_000);
        assert!(parse_score(huge.as_bytes()).is_err());
        let ansi = parse_score(b"\x1b[31m100\x1b[0m").expect_err("not a number");
        assert!(!ansi.contains('\x1b'), "{ansi}");
        assert!(ansi.contains("\\u{1b}"), "{ansi}");
    }
}
