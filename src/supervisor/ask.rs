//! Questions of agents and a person's words to a task: who may ask (`orch task ask`, through
//! the report channel), and the bounds of what is asked and answered. The core decides what
//! a question does to the run (`core/control.rs`); the status file keeps the question
//! (`orchQuestion`) and the answers (`orchAnswers`), which only orch and a person write.

use crate::status::report::Report;

/// The longest question, answer or message orch takes, in bytes: a prompt holds them, and a
/// terminal shows them.
pub(crate) const MAX_TEXT: usize = 8 * 1024;

/// Who sent an `ask` report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Asker {
    /// A task's own attempt (checked against orch's record of the launch afterwards).
    Attempt,
    /// A plan-mode agent: it works through the plan's tasks and has no attempt per task.
    PlanAgent,
    /// An attempt of a best-of-N round: the task's record is the round's.
    RoundMember,
    /// A person's `orch task ask` during `orch up`.
    Person,
}

/// Why an `ask` report from `who` is refused, if it is: only a task's own agent asks, and
/// only a question that is not empty and not longer than [`MAX_TEXT`].
pub(crate) fn refused_ask(who: &Asker, report: &Report) -> Option<String> {
    match who {
        Asker::Attempt => {}
        Asker::Person => {
            return Some(
                "only a task's own agent asks a question; a person answers one with `orch \
                 answer`"
                    .to_string(),
            );
        }
        Asker::PlanAgent => {
            return Some(
                "a plan-mode agent does not ask: it would stop the plan's other tasks; fail the \
                 task with the question as its error, or run the plan in task mode"
                    .to_string(),
            );
        }
        Asker::RoundMember => {
            return Some(
                "an attempt of a best-of-N round does not ask: its siblings go on without it"
                    .to_string(),
            );
        }
    }
    text_refused("question", report.question.as_deref().unwrap_or(""))
}

/// Why `text` (a question, an answer, a message: `what`) is refused, if it is: empty, or
/// longer than [`MAX_TEXT`].
pub(crate) fn text_refused(what: &str, text: &str) -> Option<String> {
    if text.trim().is_empty() {
        return Some(format!("the {what} is empty"));
    }
    if text.len() > MAX_TEXT {
        return Some(format!(
            "the {what} is {} bytes long; at most {MAX_TEXT} are taken",
            text.len()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(q: &str) -> Report {
        Report {
            transition: "ask".into(),
            id: "1.1".into(),
            question: Some(q.into()),
            ..Report::default()
        }
    }

    #[test]
    fn only_a_tasks_own_attempt_asks_and_only_a_bounded_question() {
        assert_eq!(refused_ask(&Asker::Attempt, &ask("which db?")), None);
        for who in [Asker::Person, Asker::PlanAgent, Asker::RoundMember] {
            assert!(refused_ask(&who, &ask("which db?")).is_some(), "{who:?}");
        }
        assert!(refused_ask(&Asker::Attempt, &ask("  ")).is_some());
        assert!(refused_ask(&Asker::Attempt, &ask(&"x".repeat(MAX_TEXT + 1))).is_some());
        assert_eq!(
            refused_ask(&Asker::Attempt, &ask(&"x".repeat(MAX_TEXT))),
            None
        );
    }
}
