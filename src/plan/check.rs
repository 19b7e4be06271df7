//! A task's own check: `(check: cargo test -p auth)` in its description, the argv `orch up` runs
//! in the task's worktree after its agent is done (instead of the plan's or the default check).
//! Split at spaces; `"…"` keeps spaces inside one argument. Never given to a shell.

/// The argv of the first `(check: …)` clause of `description`; `Ok(None)` without one, `Err`
/// for a clause that is not closed or names no program.
pub(crate) fn check_clause(description: &str) -> Result<Option<Vec<String>>, String> {
    let Some(pos) = find_ci(description, "(check:") else {
        return Ok(None);
    };
    let start = pos + "(check:".len();
    let Some(end) = description[start..].find(')') else {
        return Err("`(check:` is not closed by `)`".to_string());
    };
    let argv = split_argv(&description[start..start + end]);
    if argv.is_empty() {
        return Err("`(check: …)` names no command".to_string());
    }
    Ok(Some(argv))
}

/// Where `needle` (ASCII, lowercase, starting with a byte that has no case) first occurs in
/// `hay`, ignoring ASCII case; no allocation.
pub(crate) fn find_ci(hay: &str, needle: &str) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let (&first, rest) = n.split_first()?;
    memchr::memchr_iter(first, h).find(|&at| {
        h.get(at + 1..at + n.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(rest))
    })
}

fn split_argv(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in s.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// A task description without its `(depends: …)`, `(est: …)` and `(pipeline-start: …)` annotations, spaces
/// collapsed: what a commit subject, a progress line, `orch status` and a resolver's prompt show.
pub(crate) fn plain_description(description: &str) -> String {
    let mut out = String::with_capacity(description.len());
    let mut rest = description;
    while let Some(open) = rest.find('(') {
        let after = &rest[open + 1..];
        let lower = after.trim_start().to_ascii_lowercase();
        let is_note = lower.starts_with("depends:")
            || lower.starts_with("est:")
            || lower.starts_with("pipeline-start:")
            || lower.starts_with("check:")
            || lower.starts_with("attempts:");
        match (is_note, after.find(')')) {
            (true, Some(close)) => {
                out.push_str(&rest[..open]);
                rest = &after[close + 1..];
            }
            _ => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out.split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::check_clause;

    #[test]
    fn find_ignoring_case() {
        use super::find_ci;
        assert_eq!(find_ci("x (Check: a)", "(check:"), Some(2));
        assert_eq!(find_ci("(ch (CHECK:", "(check:"), Some(4));
        assert_eq!(find_ci("x (check", "(check:"), None);
        assert_eq!(find_ci("é(est:1m)", "(est:"), Some(2));
        assert_eq!(find_ci("", "(est:"), None);
    }

    #[test]
    fn clauses() {
        assert_eq!(check_clause("Add login"), Ok(None));
        assert_eq!(
            check_clause("Add login (check: cargo test -p auth) (depends: 1.1)"),
            Ok(Some(vec![
                "cargo".into(),
                "test".into(),
                "-p".into(),
                "auth".into()
            ]))
        );
        assert_eq!(
            check_clause("x (Check: sh -c \"test -f a.txt\")"),
            Ok(Some(vec!["sh".into(), "-c".into(), "test -f a.txt".into()]))
        );
        assert!(check_clause("x (check: cargo test").is_err());
        assert!(check_clause("x (check:  )").is_err());
    }
}
