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

/// The code points macOS's HFS+ leaves out of a name (git's `is_hfs_dotgit` list): `.claude`
/// with a ZERO WIDTH NON-JOINER inside is `.claude` there.
fn hfs_ignored(c: char) -> bool {
    matches!(
        c,
        '\u{200C}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{206A}'..='\u{206F}' | '\u{FEFF}'
    )
}

/// One component of a path as a Windows or macOS checkout names the file it writes: without
/// the code points HFS+ ignores, without an NTFS stream (`tasks.json::$DATA` is
/// `tasks.json`), without the trailing dots and spaces Windows drops (`plans.toml.` is
/// `plans.toml`). Borrowed when nothing changes.
pub(crate) fn as_stored(c: &str) -> Cow<'_, str> {
    let plain = !c.contains(':') && !c.ends_with(['.', ' ']) && !c.chars().any(hfs_ignored);
    if plain || c == "." || c == ".." {
        return Cow::Borrowed(c);
    }
    let mut out: String = c.chars().filter(|&ch| !hfs_ignored(ch)).collect();
    if let Some(i) = out.find(':') {
        out.truncate(i);
    }
    let kept = out.trim_end_matches(['.', ' ']).len();
    if kept > 0 {
        out.truncate(kept);
    }
    Cow::Owned(out)
}

/// `path` with each component [`as_stored`].
pub(crate) fn stored_path(path: &str) -> Cow<'_, str> {
    if path
        .split('/')
        .all(|c| matches!(as_stored(c), Cow::Borrowed(_)))
    {
        return Cow::Borrowed(path);
    }
    Cow::Owned(path.split('/').map(as_stored).collect::<Vec<_>>().join("/"))
}

/// Whether the path component `c` names the file or directory `name` on some filesystem a
/// checkout may land on: the same once folded and [`as_stored`], or `c` a Windows short name
/// (`CLAUDE~1`, `SETTIN~1.JSO`, `CL1A2B~1`) that `name` may be given there ([`short_for`]).
pub(crate) fn names(name: &str, c: &str) -> bool {
    if name == c {
        return true;
    }
    let (n, c) = (
        fold(&as_stored(name)).into_owned(),
        fold(&as_stored(c)).into_owned(),
    );
    n == c || short_for(&n, &c)
}

/// Whether `short` (folded) has the form of a Windows 8.3 short name that NTFS may give the
/// long name `long` (folded): its base before `~N` the start of `long`'s base (leading dots,
/// spaces and inner dots dropped; two characters and a hash when many names share a start),
/// its extension the start of `long`'s. Fails closed: a short name that may be `long`'s is.
fn short_for(long: &str, short: &str) -> bool {
    let (s_name, s_ext) = match short.rsplit_once('.') {
        Some((n, e)) => (n, e),
        None => (short, ""),
    };
    let Some((s_base, digits)) = s_name.rsplit_once('~') else {
        return false;
    };
    if s_base.is_empty()
        || s_base.chars().count() > 6
        || digits.is_empty()
        || digits.len() > 6
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || s_ext.chars().count() > 3
    {
        return false;
    }
    let long = long.trim_start_matches('.');
    let (l_base, l_ext) = match long.rsplit_once('.') {
        Some((b, e)) if !b.is_empty() => (b, e),
        _ => (long, ""),
    };
    let l_base: String = l_base.chars().filter(|c| !matches!(c, '.' | ' ')).collect();
    let l_ext: String = l_ext.chars().filter(|c| *c != ' ').collect();
    if !l_ext.starts_with(s_ext) || (s_ext.is_empty() && !l_ext.is_empty()) {
        return false;
    }
    if l_base.starts_with(s_base) {
        return true;
    }
    // The hashed form: the first two characters, then four hexadecimal digits.
    let head: String = s_base.chars().take(2).collect();
    s_base.chars().count() == 6
        && l_base.starts_with(&head)
        && s_base.chars().skip(2).all(|c| c.is_ascii_hexdigit())
}

/// Whether the repository path `path` is `at` or lies beneath it, component by component as
/// [`names`] compares them.
pub(crate) fn at_or_below(at: &str, path: &str) -> bool {
    let (a, p): (Vec<&str>, Vec<&str>) = (at.split('/').collect(), path.split('/').collect());
    p.len() >= a.len() && a.iter().zip(&p).all(|(a, p)| names(a, p))
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
    fn a_component_names_a_file_in_every_spelling_a_checkout_gives_it() {
        for (name, c) in [
            (".claude", ".claude\u{200C}"),
            (".claude", "\u{FEFF}.Claude"),
            ("plans.toml", "plans.toml."),
            ("plans.toml", "plans.toml. . "),
            (".claude", ".claude "),
            ("tasks.json", "tasks.json::$DATA"),
            ("tasks.json", "TASKS.JSON:stream:$DATA"),
            (".claude", "CLAUDE~1"),
            (".claude", "claude~12"),
            (".claude", "CL1A2B~1"),
            ("settings.json", "SETTIN~1.JSO"),
            ("settings.json", "SETTIN~1.JS"),
            ("plans.toml", "PLANS~1.TOM"),
            (".github", "GITHUB~1"),
            ("workflows", "WORKFL~1"),
            (".pre-commit-config.yaml", "PRE-CO~1.YAM"),
        ] {
            assert!(names(name, c), "{name} {c}");
        }
        for (name, c) in [
            (".claude", ".claudex"),
            (".claude", "CLOUDE~1"),
            ("settings.json", "SETTIN~1"),
            ("settings.json", "SETTIN~1.TXT"),
            (".claude", "CLAUDE~"),
            (".claude", "CLAUDE~X"),
            (".claude", "CLAUDEXY~1"),
            ("plans.toml", "plans"),
        ] {
            assert!(!names(name, c), "{name} {c}");
        }
        assert!(at_or_below(".claude", "CLAUDE~1/settings.json"));
        assert!(at_or_below(
            ".claude/settings.json",
            ".claude\u{200C}/SETTIN~1.JSO"
        ));
        assert!(!at_or_below(".claude/settings.json", ".claude"));
        assert_eq!(stored_path("a./b\u{200D}c/d::$DATA"), "a/bc/d");
        assert!(matches!(stored_path("a/b.c"), Cow::Borrowed(_)));
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
