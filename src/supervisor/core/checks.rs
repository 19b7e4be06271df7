//! The checks before a commit of agent work, decided in one place: whoever commits a task's
//! work (an attempt's settlement, a task done outside an attempt, a plan agent's tasks, a
//! best-of-N pick, a commit recovery finds waiting in a task worktree), the effects run the
//! checks in order (the work's git files put back and its own commits made uncommitted, the
//! plan's `paths`, the submodules, the protected paths) and report what each found; this
//! decides commit or refuse. Pure: no git, no file.

/// What one check before a commit found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// Nothing that refuses the commit.
    Clean,
    /// What refuses it (`wrote outside the plan's paths: …`, `changed protected paths: …`).
    Cause(String),
    /// The check could not run (its error, naming the check): nothing is committed unchecked.
    CannotRun(String),
}

impl Found {
    /// A check's answer as the effects have it: `Ok(None)` clean, `Ok(Some(cause))` a cause,
    /// `Err` the check could not run.
    pub(crate) fn of(answer: Result<Option<String>, String>) -> Self {
        match answer {
            Ok(None) => Found::Clean,
            Ok(Some(cause)) => Found::Cause(cause),
            Err(error) => Found::CannotRun(error),
        }
    }
}

/// The verdict on a commit from its checks, in the order they run: the first that found a
/// cause or could not run refuses the commit with its words (fail closed), and the checks after
/// it are not run (`checks` is lazy); `None`: every check ran clean, the work may be committed.
pub(crate) fn refusal(checks: impl IntoIterator<Item = Found>) -> Option<String> {
    checks.into_iter().find_map(|found| match found {
        Found::Clean => None,
        Found::Cause(words) | Found::CannotRun(words) => Some(words),
    })
}

#[cfg(test)]
mod tests {
    use super::{Found, refusal};
    use std::iter::once_with;

    /// Every branch: clean, a cause, a check that cannot run (git cannot answer: the commit is
    /// refused with the check's error), and no check run after the first refusal.
    #[test]
    fn the_first_check_that_finds_a_cause_or_cannot_run_refuses_the_commit() {
        assert_eq!(Found::of(Ok(None)), Found::Clean);
        assert_eq!(Found::of(Ok(Some("c".into()))), Found::Cause("c".into()));
        assert_eq!(Found::of(Err("e".into())), Found::CannotRun("e".into()));
        assert_eq!(refusal([Found::Clean, Found::Clean, Found::Clean]), None);
        assert_eq!(refusal(std::iter::empty()), None);
        let dir = tempfile::tempdir().expect("tempdir");
        // What git answers in a directory that is no repository any more.
        let err = crate::git::dirty_paths(dir.path()).expect_err("no repository");
        let cause = format!("cannot check the protected paths in `x`: {err}");
        assert_eq!(
            refusal([Found::Clean, Found::CannotRun(cause.clone())]),
            Some(cause)
        );
        let outside = crate::git::outside_cone(dir.path(), &["src".to_string()], 5, None)
            .expect_err("no repository")
            .to_string();
        // The checks after a refusal are not run.
        let after = once_with(|| -> Found { unreachable!("run after a refusal") });
        assert_eq!(
            refusal(once_with(|| Found::CannotRun(outside.clone())).chain(after)),
            Some(outside)
        );
        let after = once_with(|| -> Found { unreachable!("run after a refusal") });
        assert_eq!(
            refusal(once_with(|| Found::Cause("wrote outside".into())).chain(after)),
            Some("wrote outside".to_string())
        );
        assert_eq!(
            refusal([
                Found::Clean,
                Found::Clean,
                Found::Cause("changed protected paths: a".into())
            ]),
            Some("changed protected paths: a".to_string())
        );
        // A cause and a check that cannot run: the first in order gives its words.
        assert_eq!(
            refusal([Found::Cause("a".into()), Found::CannotRun("b".into())]),
            Some("a".to_string())
        );
    }
}
