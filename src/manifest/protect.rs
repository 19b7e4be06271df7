//! `protect = ["tests/**", "ci/check.sh"]` (`[defaults]` and `[[plan]]`): paths no task may
//! change unless its own text names the file. Globs from the repository root (globset). They add
//! to what a later run trusts ([`super::trusted`]), which is protected whatever they say.

use std::path::{Component, Path};

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::spans::{At, Bad, Reporter};

/// A plan's protected paths: its globs, matched against paths relative to the repository root.
#[derive(Clone, Debug, Default)]
pub(crate) struct Protect {
    pub(crate) patterns: Vec<String>,
    set: Option<GlobSet>,
}

impl PartialEq for Protect {
    fn eq(&self, other: &Self) -> bool {
        self.patterns == other.patterns
    }
}

impl Eq for Protect {}

impl Protect {
    /// Globs known to be valid (checked by [`globs`]).
    pub(crate) fn new(patterns: Vec<String>) -> Self {
        let mut b = GlobSetBuilder::new();
        for p in &patterns {
            if let Ok(g) = Glob::new(p) {
                b.add(g);
            }
        }
        Self {
            set: b.build().ok(),
            patterns,
        }
    }

    /// Whether `path` (relative to the repository root, `/`-separated) is protected.
    pub(crate) fn matches(&self, path: &str) -> bool {
        self.set.as_ref().is_some_and(|s| s.is_match(path))
    }
}

/// Reads a `protect` key: each entry a valid glob that stays inside the repository.
pub(super) fn globs(
    r: &mut Reporter<'_>,
    ctx: &str,
    at: Option<&At<Vec<At<String>>>>,
) -> Option<Vec<String>> {
    r.each(at, |v| {
        let p = Path::new(v);
        if v.is_empty()
            || p.is_absolute()
            || p.components().any(|c| matches!(c, Component::ParentDir))
        {
            return Err(Bad::new(format!("`{ctx}` entry `{v}` leaves the repository"))
                .hint("give a glob relative to the repository root, such as \"tests/**\""));
        }
        match Glob::new(v) {
            Ok(_) => Ok(v.clone()),
            Err(e) => Err(Bad::new(format!("`{ctx}` entry `{v}` is not a valid glob: {}", e.kind()))
                .hint("`*` matches within a directory, `**` across directories: \"tests/**\", \"ci/*.sh\"")),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_from_the_root() {
        let p = Protect::new(vec!["tests/**".into(), "ci/check.sh".into()]);
        assert!(p.matches("tests/x.rs"));
        assert!(p.matches("tests/a/b.rs"));
        assert!(p.matches("ci/check.sh"));
        assert!(!p.matches("src/tests.rs"));
        assert!(!p.matches("ci/other.sh"));
    }
}
