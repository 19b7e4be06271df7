//! One status for several questions ([`super::super::status::Dirt`]): what it answers for a set
//! of paths is what `git status` limited to them lists (git's own pathspecs), on a tree whose
//! names differ by case, by a suffix, by depth, with an untracked repository inside.

use super::*;
use crate::git::status::{Dirt, Submodules, status};

/// Changed and untracked files whose names are near one another's.
const FILES: &[&str] = &[
    "plans.toml",
    "PLANS.TOML",
    "plans.toml.bak",
    "plansXtoml",
    "orch/templates/task.md",
    "Orch/Templates/x.md",
    "orchard/a.txt",
    ".claude/settings.json",
    "docs/.claude/settings.json",
    "deep/er/.Claude/Settings.JSON",
    "docs/.claude-not/settings.json",
    "a/b/.ENV",
    ".env.local",
    "x.env",
    "build/foo.mk",
    "z/.mk",
    "foo.mkx",
    ".orch/state/s.json",
    "old.txt",
    "PLANS~1.TOM",
    "plans.toml.",
    "CLAUDE~1/settings.json",
];

/// Of [`FILES`], the spellings a Windows or macOS checkout takes for a path asked about, which
/// git's pathspecs do not match: named too.
const FOREIGN: &[&str] = &["PLANS~1.TOM", "plans.toml.", "CLAUDE~1/settings.json"];

/// The paths asked about: literal paths (files, directories above them) and patterns.
const SPECS: &[&str] = &[
    "plans.toml",
    "orch",
    "orch/templates",
    "orch/templates/task.md",
    "**/.claude",
    "**/.claude/settings.json",
    "**/.env",
    "**/*.mk",
    ".orch",
    "sub/inner.txt",
    "nothing/here",
];

#[test]
fn among_lists_what_gits_pathspecs_list() {
    let fx = Fixture::new();
    // The fixture ignores `.env`; an un-ignoring line lets `a/b/.ENV` (another case) show.
    fs::write(fx.root.join(".gitignore"), "*.log\n").unwrap();
    for f in FILES {
        let path = fx.root.join(f);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, format!("{f}\n")).unwrap();
    }
    // An untracked repository: listed as `sub/`.
    let sub = fx.root.join("sub");
    Repository::init(&sub).unwrap();
    fs::write(sub.join("inner.txt"), "x\n").unwrap();
    let dirt = Dirt::new(&fx.root);
    let all = dirt.paths().unwrap();
    assert!(all.iter().any(|p| p == "sub/"), "{all:?}");
    assert!(all.iter().any(|p| p == "old.txt"), "{all:?}");

    // Each spec alone, then all together.
    let mut sets: Vec<Vec<String>> = SPECS.iter().map(|s| vec![(*s).to_string()]).collect();
    sets.push(SPECS.iter().map(|s| (*s).to_string()).collect());
    for specs in sets {
        let mut by_git = status(&fx.root, Some(&specs), Submodules::Ignored)
            .unwrap()
            .paths();
        let mut ours = dirt.among(&specs).unwrap();
        by_git.sort();
        ours.sort();
        // What git lists, and more only where a checkout takes the name for one asked about,
        // or a directory listed (the untracked repository) may hold a pattern's place.
        for p in &by_git {
            assert!(
                ours.contains(p),
                "specs {specs:?}: git lists {p}, among does not"
            );
        }
        for p in ours.iter().filter(|p| !by_git.contains(p)) {
            assert!(
                FOREIGN.contains(&p.as_str()) || p.ends_with('/'),
                "specs {specs:?}: among lists {p}, git does not"
            );
        }
    }
    let every: Vec<String> = SPECS.iter().map(|s| (*s).to_string()).collect();
    let ours = dirt.among(&every).unwrap();
    for f in FOREIGN {
        assert!(ours.iter().any(|p| p == f), "{f} not among {ours:?}");
    }
    assert!(
        !ours
            .iter()
            .any(|p| p == "plansXtoml" || p == "orchard/a.txt")
    );
    assert!(dirt.among(&[]).unwrap().is_empty());
}

#[test]
fn a_dirt_reads_the_tree_once() {
    let fx = Fixture::new();
    fs::write(fx.root.join("one.txt"), "1\n").unwrap();
    let dirt = Dirt::new(&fx.root);
    assert_eq!(dirt.paths().unwrap(), vec!["one.txt".to_string()]);
    // Written after the first question: the same answer (one status for one check).
    fs::write(fx.root.join("two.txt"), "2\n").unwrap();
    assert_eq!(
        dirt.among(&["two.txt".to_string(), "one.txt".to_string()])
            .unwrap(),
        vec!["one.txt".to_string()]
    );
    // A new one reads it again.
    let mut again = Dirt::new(&fx.root).paths().unwrap();
    again.sort();
    assert_eq!(again, vec!["one.txt".to_string(), "two.txt".to_string()]);
}
