//! Rules for names that become paths and git refs: plan names and branch names.

/// The longest plan name accepted.
pub(crate) const MAX_PLAN_NAME_LEN: usize = 64;

/// Checks that `s` is safe as a plan name, which becomes both a path component (the worktree and
/// state directories) and part of a branch name.
///
/// The rules: `^[A-Za-z0-9][A-Za-z0-9._-]*$`, at most 64 characters, no `..`, not ending in `.lock`
/// or `.`. The error names the rule broken.
pub(crate) fn check_plan_name(s: &str) -> Result<(), String> {
    let not_allowed = |why: &str| Err(format!("plan name `{s}` is not allowed: {why}"));
    if s.is_empty() {
        return not_allowed("names must not be empty");
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return not_allowed("names may contain only letters, digits, `.`, `_` and `-`");
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return not_allowed("names must begin with a letter or a digit");
    }
    if s.len() > MAX_PLAN_NAME_LEN {
        return not_allowed(&format!(
            "names may be at most {MAX_PLAN_NAME_LEN} characters long"
        ));
    }
    if s.contains("..") {
        return not_allowed("names must not contain `..`");
    }
    if s.ends_with(".lock") {
        return not_allowed("names must not end in `.lock`");
    }
    if s.ends_with('.') {
        return not_allowed("names must not end in `.`");
    }
    Ok(())
}

/// Checks `s` as a branch name against the rules of `git check-ref-format --branch`, implemented by
/// hand; the error names the rule broken.
pub(crate) fn check_ref_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("a ref name must not be empty".into());
    }
    if s == "@" {
        return Err("a ref name must not be the single character `@`".into());
    }
    if s.starts_with('-') {
        return Err("a ref name must not begin with `-`".into());
    }
    if s.starts_with('/') || s.ends_with('/') {
        return Err("a ref name must not begin or end with `/`".into());
    }
    if s.contains("//") {
        return Err("a ref name must not contain `//`".into());
    }
    if s.contains("..") {
        return Err("a ref name must not contain `..`".into());
    }
    if s.contains("@{") {
        return Err("a ref name must not contain `@{`".into());
    }
    if let Some(c) = s.chars().find(|&c| {
        c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\')
    }) {
        let shown = if c.is_ascii_control() {
            format!("control character {:#04x}", c as u32)
        } else {
            format!("`{c}`")
        };
        return Err(format!(
            "a ref name must not contain {shown} (nor spaces, control characters or any of `~^:?*[\\`)"
        ));
    }
    if s.ends_with('.') {
        return Err("a ref name must not end with `.`".into());
    }
    for component in s.split('/') {
        if component.starts_with('.') {
            return Err("no `/`-separated component of a ref name may begin with `.`".into());
        }
        if component.ends_with(".lock") {
            return Err("no `/`-separated component of a ref name may end with `.lock`".into());
        }
    }
    Ok(())
}

/// Whether `git check-ref-format --branch` would accept `s`.
#[cfg(test)]
pub(crate) fn is_valid_ref_name(s: &str) -> bool {
    check_ref_name(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_name_rules() {
        let good = [
            "main",
            "plan/auth",
            "feature/auth-2",
            "a.b",
            "a/b/c",
            "v1.0",
            "x@y",
            "under_score",
        ];
        for name in good {
            assert!(is_valid_ref_name(name), "{name} should be valid");
        }
        let bad = [
            ("", "empty"),
            ("a..b", "`..`"),
            ("a b", "` `"),
            ("-x", "`-`"),
            ("a/.b", "begin with `.`"),
            (".a", "begin with `.`"),
            ("x.lock", "`.lock`"),
            ("a/x.lock/b", "`.lock`"),
            ("a//b", "`//`"),
            ("a@{b", "`@{`"),
            ("@", "`@`"),
            ("a.", "end with `.`"),
            ("/a", "begin or end with `/`"),
            ("a/", "begin or end with `/`"),
            ("a~1", "`~`"),
            ("a^", "`^`"),
            ("a:b", "`:`"),
            ("a?", "`?`"),
            ("a*", "`*`"),
            ("a[b", "`[`"),
            ("a\\b", "`\\`"),
            ("a\tb", "control character"),
            ("a\u{7f}b", "control character"),
        ];
        for (name, fragment) in bad {
            let err = check_ref_name(name).expect_err(name);
            assert!(err.contains(fragment), "{name:?}: {err}");
            assert!(!is_valid_ref_name(name));
        }
    }

    #[test]
    fn plan_name_rules() {
        for name in ["auth", "a", "A-1", "api_v2", "x.y", "9lives"] {
            assert_eq!(check_plan_name(name), Ok(()), "{name}");
        }
        let long = "a".repeat(65);
        let bad = [
            ("../x", "only letters, digits"),
            ("a/b", "only letters, digits"),
            ("a b", "only letters, digits"),
            ("-x", "begin with a letter or a digit"),
            (".x", "begin with a letter or a digit"),
            ("_x", "begin with a letter or a digit"),
            ("x.lock", "`.lock`"),
            ("x.", "end in `.`"),
            ("a..b", "`..`"),
            ("", "empty"),
            ("é", "only letters, digits"),
            (long.as_str(), "at most 64"),
        ];
        for (name, fragment) in bad {
            let err = check_plan_name(name).expect_err(name);
            assert!(err.contains(fragment), "{name:?}: {err}");
            assert!(err.contains(&format!("plan name `{name}` is not allowed")));
        }
        assert_eq!(check_plan_name(&"a".repeat(64)), Ok(()));
    }

    /// No plan can be named like an entry orch keeps for itself in a state directory (nor its
    /// log directory's), old names aside: a plan named `net` or `events.jsonl` keeps its status.
    #[test]
    fn no_plan_name_meets_orchs_own_names() {
        use crate::state_layout as own;
        for e in own::ALL {
            assert!(check_plan_name(e.name).is_err(), "{}", e.name);
        }
        for n in own::LOCKS
            .into_iter()
            .chain([own::INTEGRATION_LOG, own::REMOTE_BUNDLES])
            .chain(own::SSH_OWN)
        {
            assert!(check_plan_name(n).is_err(), "{n}");
        }
    }
}
