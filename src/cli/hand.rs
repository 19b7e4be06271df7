//! Reading a command line by hand, for the fast paths of the commands agents run most
//! (`orch next`, `orch task`): the two steps both take, each as clap reads the same line.

use std::ffi::OsString;

/// The long name of the flag `arg` writes and the value written in it: `--name`,
/// `--name=value`, and for the short names in `short` (letter, long name) `-x`, `-xvalue`,
/// `-x=value`. `None` for anything else (positionals, unknown or grouped short flags); an
/// unknown long name (or `--` alone, an empty one) is the caller's to refuse.
pub(super) fn split<'a>(
    arg: &'a str,
    short: &[(char, &'static str)],
) -> Option<(&'a str, Option<&'a str>)> {
    if let Some(long) = arg.strip_prefix("--") {
        return Some(match long.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (long, None),
        });
    }
    let mut chars = arg.strip_prefix('-')?.chars();
    let letter = chars.next()?;
    let &(_, name) = short.iter().find(|(l, _)| *l == letter)?;
    let tail = chars.as_str();
    Some((
        name,
        (!tail.is_empty()).then(|| tail.strip_prefix('=').unwrap_or(tail)),
    ))
}

/// A flag's value: the one written in it (`attached`), else the next argument. `None` when
/// there is none, or it is not UTF-8, empty or begins with `-`: clap then reads the line.
pub(super) fn value<'a>(
    attached: Option<&str>,
    rest: &mut impl Iterator<Item = &'a OsString>,
) -> Option<String> {
    let v = match attached {
        Some(v) => v,
        None => rest.next()?.to_str()?,
    };
    (!v.is_empty() && !v.starts_with('-')).then(|| v.to_string())
}
