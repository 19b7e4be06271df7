//! Best of N: a round of sibling attempts of one task, what each became, and the pick. Pure:
//! the core keeps the rounds ([`super::state::RunState::rounds`]) and decides from the facts the
//! effects measured (the select command's score, the size of the change); nothing here does I/O.
//!
//! Each attempt of a round has a name of its own for what is per worktree ([`member_key`]: its
//! task worktree and branch, its log, its report directory); the task's status entry, its
//! commit and its refs are the task's.

pub(crate) use super::members::{Member, MemberState, Reported, Round, shown};
use super::state::{RunId, RunState, Stage, Unit};

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
    use std::time::Instant;

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
