//! [`Cover`]: the protected-paths list compiled once answers as [`Protected::covers`] and
//! [`Protected::above`] do, for every spelling a checkout may give a path.

use super::*;

/// The paths a later run trusts in a typical repository, the patterns at any depth among them.
fn protected() -> Vec<String> {
    let mut p: Vec<String> = [
        "plans.toml",
        "docs/plans/p.md",
        "hooks",
        "ci/check.sh",
        ".claude/settings.json",
        "**/*.mk",
        "Stra\u{DF}e/x.sh",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    p.extend(crate::manifest::anywhere_patterns());
    p
}

#[test]
fn the_compiled_list_answers_as_the_list_for_every_spelling() {
    let paths = protected();
    let cover = Cover::new(&paths);
    let spellings = [
        "plans.toml",
        "PLANS.TOML",
        "plans.toml.",
        "PLANS~1.TOM",
        "plans.toml::$DATA",
        "plans.tom",
        "docs",
        "docs/plans",
        "DOCS/Plans/P.md",
        "docs/plans/p.md/x",
        "docs/plans/q.md",
        "hooks/pre-commit",
        "HOOKS/x/y",
        "hooks\u{200C}/x",
        "hook/x",
        "ci",
        "ci/check.sh",
        "CI~1/CHECK~1.SH",
        ".claude",
        ".Claude/Settings.json",
        ".claude/\u{17F}ettings.json",
        "CLAUDE~1/SETTIN~1.JSO",
        "x/.claude/settings.json",
        "a/b/.env",
        ".ENV",
        "sub/.env/x",
        "x.env",
        "a/b.mk",
        "A/B.MK",
        ".mk",
        "strasse/x.sh",
        "STRASSE/X.SH",
        "d/file-with-a-rather-long-name-0000001",
        "d",
        "src/main.rs",
        "",
        "a//b",
    ];
    for path in spellings {
        assert_eq!(
            cover.covers(path),
            Protected::covers(&paths, path),
            "covers {path:?}"
        );
        assert_eq!(
            cover.above(path),
            Protected::above(&paths, path),
            "above {path:?}"
        );
    }
    // The check does find what it must (the comparison above is not vacuous).
    for path in [".Claude/Settings.json", "a/b/.env", "HOOKS/x/y", "A/B.MK"] {
        assert!(cover.covers(path), "{path}");
    }
    for path in [".claude", "docs/plans", "CLAUDE~1"] {
        assert!(cover.above(path), "{path}");
    }
    for path in [
        "d/file-with-a-rather-long-name-0000001",
        "src/main.rs",
        "x.env",
    ] {
        assert!(!cover.covers(path) && !cover.above(path), "{path}");
    }
}
