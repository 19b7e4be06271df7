//! `protect = ["tests/**", "ci/check.sh"]` (`[defaults]` and `[[plan]]`): paths no task may
//! change. Globs from the repository root (globset). They add to what a later run trusts
//! ([`super::trusted`]), which is protected whatever they say.
//!
//! `allow_protected = ["plans.toml"]` (`[defaults]` and `[[plan]]`, the plan's adding to the
//! defaults'): the protected paths a plan's tasks may change all the same, in the same glob
//! syntax. A person's word in the manifest is the only exemption: never a task's text, which
//! an agent wrote or could have shaped (a plan file it landed, a review thread quoting its
//! diff, its commit messages).

use std::path::{Component, Path};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

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
        // Case-insensitive (Unicode's simple folding): on a filesystem that folds case,
        // `Tests/x.rs` is `tests/x.rs`.
        let mut b = GlobSetBuilder::new();
        for p in &patterns {
            if let Ok(g) = GlobBuilder::new(p).case_insensitive(true).build() {
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
        // As a checkout names it too (`plans.toml.`, an NTFS stream, HFS+'s ignored code
        // points): a protected file in another spelling is the protected file there.
        self.set
            .as_ref()
            .is_some_and(|s| s.is_match(path) || s.is_match(&*super::stored_path(path)))
    }
}

/// A plan's `allow_protected`: the defaults' globs and its own (`None`: neither is set, or a
/// bad entry was reported).
pub(super) fn allowed(defaults: &[String], own: Option<Vec<String>>) -> Option<Protect> {
    let mut all = defaults.to_vec();
    for g in own.unwrap_or_default() {
        if !all.contains(&g) {
            all.push(g);
        }
    }
    (!all.is_empty()).then(|| Protect::new(all))
}

/// Reads a `protect` (or `allow_protected`) key: each entry a valid glob that stays inside the repository.
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

    /// A plan's `allow_protected` adds to the defaults' (each glob once); neither set: none.
    #[test]
    fn allowed_adds_the_plans_globs_to_the_defaults() {
        assert_eq!(allowed(&[], None), None);
        assert_eq!(allowed(&[], Some(Vec::new())), None);
        let d = vec!["plans.toml".to_string()];
        let a = allowed(&d, None).expect("the defaults'");
        assert_eq!(a.patterns, ["plans.toml"]);
        let a = allowed(
            &d,
            Some(vec!["docs/plans/*.md".into(), "plans.toml".into()]),
        )
        .expect("both");
        assert_eq!(a.patterns, ["plans.toml", "docs/plans/*.md"]);
        assert!(a.matches("docs/plans/p.md") && a.matches("plans.toml"));
        assert!(!a.matches(".gitmodules"));
        let own = allowed(&[], Some(vec![".gitmodules".into()])).expect("its own");
        assert!(own.matches(".gitmodules") && !own.matches("plans.toml"));
    }
}
