//! Names as a case-insensitive filesystem sees them. A branch that lands is checked out by
//! people whose filesystems fold case (macOS's APFS and HFS+ by default, Windows, ext4 and
//! tmpfs directories with `casefold`): there `.ENV` is `.env`, `.Claude/settings.json` is
//! `.claude/settings.json`, and `.claude/ſettings.json` (U+017F, which Unicode folds to `s`)
//! may be too. So every name orch protects (a file a later run trusts, orch's own directories,
//! `protect` and `allow_protected`) is compared folded: a change to any spelling of it is a
//! change to it. On a filesystem that does not fold, a file spelled like a protected one is
//! refused all the same: orch fails closed.

use std::borrow::Cow;

/// `name` folded for comparison: lower case (Unicode's), and the characters Unicode's case
/// folding takes to ASCII letters spelled as those letters (`K` KELVIN SIGN is `k`, `ſ` is
/// `s`, `ß` and `ẞ` are `ss`, the ligatures `ﬀ` … `ﬆ` their letters), `ς` as `σ`. Borrowed
/// when nothing changes (an all-lower-case ASCII name).
pub(crate) fn fold(name: &str) -> Cow<'_, str> {
    if !name
        .bytes()
        .any(|b| b.is_ascii_uppercase() || !b.is_ascii())
    {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            'A'..='Z' => out.push(c.to_ascii_lowercase()),
            c if c.is_ascii() => out.push(c),
            '\u{212A}' => out.push('k'),
            '\u{212B}' => out.push('å'),
            '\u{017F}' => out.push('s'),
            '\u{00DF}' | '\u{1E9E}' => out.push_str("ss"),
            '\u{FB00}' => out.push_str("ff"),
            '\u{FB01}' => out.push_str("fi"),
            '\u{FB02}' => out.push_str("fl"),
            '\u{FB03}' => out.push_str("ffi"),
            '\u{FB04}' => out.push_str("ffl"),
            '\u{FB05}' | '\u{FB06}' => out.push_str("st"),
            '\u{03C2}' => out.push('σ'),
            c => out.extend(c.to_lowercase()),
        }
    }
    Cow::Owned(out)
}

/// Whether `a` and `b` are one name on a filesystem that folds case.
pub(crate) fn same(a: &str, b: &str) -> bool {
    a == b || fold(a) == fold(b)
}

/// `path` without the prefix `prefix` (compared folded), as the rest of `path`; `None` when
/// `path` does not start with it.
pub(crate) fn strip_prefix<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    if let Some(rest) = path.strip_prefix(prefix) {
        return Some(rest);
    }
    // Folding may change lengths (`ß` is `ss`): walk `path` character by character until its
    // folded head is the folded prefix.
    let want = fold(prefix);
    let mut head = String::new();
    for (i, c) in path.char_indices() {
        if head.len() >= want.len() {
            return (head == want.as_ref()).then(|| &path[i..]);
        }
        let mut buf = [0u8; 4];
        head.push_str(&fold(c.encode_utf8(&mut buf)));
        if !want.starts_with(head.as_str()) {
            return None;
        }
    }
    (head == want.as_ref()).then_some("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_name_on_a_folding_filesystem_are_the_same() {
        for (a, b) in [
            (".ENV", ".env"),
            (".Claude/Settings.json", ".claude/settings.json"),
            (".claude/\u{17F}ettings.json", ".claude/settings.json"),
            ("lefthoo\u{212A}.yml", "lefthook.yml"),
            ("mise/con\u{FB01}g.toml", "mise/config.toml"),
            ("PLANS.TOML", "plans.toml"),
            ("docs/Überblick.md", "docs/überblick.md"),
        ] {
            assert!(same(a, b), "{a} {b}");
        }
        for (a, b) in [
            (".env", ".env2"),
            ("plans.toml", "plans.tom"),
            ("a/b", "a_b"),
        ] {
            assert!(!same(a, b), "{a} {b}");
        }
        assert!(matches!(fold("plans.toml"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_prefix_is_stripped_whatever_its_spelling() {
        assert_eq!(strip_prefix(".Claude/x", ".claude"), Some("/x"));
        assert_eq!(strip_prefix(".claude/x", ".claude"), Some("/x"));
        assert_eq!(strip_prefix("Stra\u{DF}e/x", "strasse"), Some("/x"));
        assert_eq!(strip_prefix("Strasse/x", "stra\u{DF}e"), Some("/x"));
        assert_eq!(strip_prefix(".claud", ".claude"), None);
        assert_eq!(strip_prefix(".cloude/x", ".claude"), None);
        assert_eq!(strip_prefix(".CLAUDE", ".claude"), Some(""));
    }
}
