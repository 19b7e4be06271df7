//! A task's own best of N: `(attempts: 3)` in its description, the number of attempts of the
//! task `orch up` runs at once (instead of the plan's `attempts`).

use super::check::find_ci;

/// The most attempts one clause may ask for (the manifest's `max_agents` bounds it further).
pub(crate) const MAX_ATTEMPTS: u32 = 64;

/// The number of the first `(attempts: N)` clause of `description`; `Ok(None)` without one,
/// `Err` for a clause that is not closed, repeated, or not a number from 1 to [`MAX_ATTEMPTS`].
pub(crate) fn attempts_clause(description: &str) -> Result<Option<u32>, String> {
    let Some(pos) = find_ci(description, "(attempts:") else {
        return Ok(None);
    };
    let start = pos + "(attempts:".len();
    let Some(end) = description[start..].find(')') else {
        return Err("`(attempts:` is not closed by `)`".to_string());
    };
    if find_ci(&description[start + end..], "(attempts:").is_some() {
        return Err("more than one `(attempts: …)`".to_string());
    }
    let text = description[start..start + end].trim();
    match text.parse::<u32>() {
        Ok(n) if (1..=MAX_ATTEMPTS).contains(&n) => Ok(Some(n)),
        _ => Err(format!(
            "`(attempts: {text})` must be a whole number from 1 to {MAX_ATTEMPTS}"
        )),
    }
}

/// The `(attempts: N)` clauses of `plan` (at `rel_path`) that cannot run: above `max_agents`
/// (its attempts start together, so it would never start), or above 1 where best of N does not
/// run (`unsupported`: how the plan's agents run, `a plan-mode agent`): errors at the tasks'
/// lines.
pub(crate) fn attempts_problems(
    plan: &super::Plan,
    rel_path: &str,
    max_agents: usize,
    unsupported: Option<&str>,
) -> Vec<crate::diagnostic::Diagnostic> {
    let mut out = Vec::new();
    for task in &plan.tasks {
        let Ok(Some(n)) = attempts_clause(&task.description) else {
            continue;
        };
        let message = if n as usize > max_agents {
            format!(
                "task {} asks for `(attempts: {n})`, more than `max_agents` ({max_agents}): the attempts of a task start together",
                task.id
            )
        } else if let (true, Some(how)) = (n > 1, unsupported) {
            format!(
                "task {} asks for `(attempts: {n})`, but its plan runs {how}: best of N runs local task-mode agents",
                task.id
            )
        } else {
            continue;
        };
        out.push(
            crate::diagnostic::Diagnostic::error(std::path::Path::new(rel_path), task.line, message)
                .with_hint("`(attempts: N)` runs N attempts of the task at once, each in one of the `max_agents` slots"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::attempts_clause;

    #[test]
    fn the_clause_is_read_and_checked() {
        assert_eq!(attempts_clause("Add login"), Ok(None));
        assert_eq!(attempts_clause("Add login (attempts: 3)"), Ok(Some(3)));
        assert_eq!(
            attempts_clause("x (Attempts:2) (est: 1h) (check: cargo test)"),
            Ok(Some(2))
        );
        for bad in [
            "x (attempts: 0)",
            "x (attempts: -1)",
            "x (attempts: three)",
            "x (attempts: 99)",
            "x (attempts: 2",
            "x (attempts: 2) (attempts: 3)",
        ] {
            assert!(attempts_clause(bad).is_err(), "{bad}");
        }
    }
}
