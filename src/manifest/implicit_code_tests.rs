use super::*;

/// A tree in memory: files (with their text), directories implied by them.
struct Mem(Vec<(&'static str, &'static str)>);

impl View for Mem {
    fn kind(&self, rel: &str) -> Option<Kind> {
        if self.0.iter().any(|(p, _)| *p == rel) {
            return Some(Kind::File);
        }
        let dir = format!("{rel}/");
        self.0
            .iter()
            .any(|(p, _)| p.starts_with(&dir))
            .then_some(Kind::Dir)
    }
    fn names(&self, dir: &str) -> Vec<String> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut out: Vec<String> = Vec::new();
        for (p, _) in &self.0 {
            if let Some(r) = p.strip_prefix(&prefix) {
                let n = r.split('/').next().unwrap_or(r).to_string();
                if !out.contains(&n) {
                    out.push(n);
                }
            }
        }
        out
    }
    fn read(&self, rel: &str) -> Option<Vec<u8>> {
        self.0
            .iter()
            .find(|(p, _)| *p == rel)
            .map(|(_, t)| t.as_bytes().to_vec())
    }
}

fn paths(argv: &[&str], tree: &Mem, unconfined: bool) -> Vec<String> {
    let argv: Vec<String> = argv.iter().map(|s| (*s).to_string()).collect();
    let file_of = |w: &str| {
        let p = super::super::command_words::repo_path_of(w, &[])?;
        (tree.kind(&p) == Some(Kind::File)).then_some(p)
    };
    loaded(&argv, &file_of, tree, unconfined)
        .into_iter()
        .map(|l| l.path)
        .collect()
}

fn tree() -> Mem {
    Mem(vec![
        ("scripts/notify.py", "import json\nimport helpers\n"),
        ("scripts/helpers.py", ""),
        ("hooks/notify.js", "require('./lib.js')\n"),
        ("hooks/lib.js", ""),
        (
            "hooks/n.sh",
            ". ./lib.sh\nsource tools/env\n. \"$DIR/x.sh\"\n",
        ),
        ("lib.sh", ""),
        ("tools/env", ". ./tools/more\n"),
        ("tools/more", ""),
        ("ci/__init__.py", ""),
        ("ci/check.py", ""),
        (
            "Makefile",
            "include build/rules.mk\n-include $(HOME)/x.mk\n",
        ),
        ("build/rules.mk", "sinclude local.mk\n"),
        ("setup.py", ""),
        ("mypkg/__init__.py", ""),
        ("web/index.js", ""),
        ("src/main.rs", ""),
        ("README.md", ""),
        ("check.py", "import helpers\n"),
        ("tell", "#!/usr/bin/env python3\n"),
    ])
}

/// An interpreter's script: its directory and all below it; node's also `node_modules`.
#[test]
fn the_directory_of_a_script_is_code_it_loads() {
    let t = tree();
    for (argv, want) in [
        (&["python3", "scripts/notify.py"][..], &["scripts"][..]),
        (
            &["/usr/bin/python3.12", "-u", "scripts/notify.py"],
            &["scripts"],
        ),
        (
            &["env", "X=1", "python3", "scripts/notify.py"],
            &["scripts"],
        ),
        (&["node", "hooks/notify.js"], &["hooks", "node_modules"]),
        (
            &["sh", "-c", "python3 scripts/notify.py && true"],
            &["scripts"],
        ),
        (&["ruby", "scripts/notify.py"], &["scripts"]),
        (
            &["flock", "x", "python3", "scripts/notify.py"],
            &["scripts"],
        ),
    ] {
        let got = paths(argv, &t, false);
        for w in want {
            assert!(got.iter().any(|g| g == w), "{argv:?}: {got:?}");
        }
    }
}

/// A shell script: its directory, and each file it sources (relative to the working
/// directory, followed), a source orch cannot resolve giving the root's shell files.
#[test]
fn what_a_shell_script_sources_is_code() {
    let got = paths(&["bash", "hooks/n.sh"], &tree(), false);
    for want in ["hooks", "lib.sh", "tools/env", "tools/more"] {
        assert!(got.iter().any(|g| g == want), "{want}: {got:?}");
    }
    assert!(!got.iter().any(|g| g == "README.md"), "{got:?}");
}

/// `python -m`: the package and the module at the root; the root's code when the module is
/// the repository's; `-m pytest` (not the repository's) only what would shadow it, unless
/// a hook runs it.
#[test]
fn python_m_protects_the_package_and_what_shadows_it() {
    let t = tree();
    let got = paths(&["python3", "-m", "ci.check"], &t, false);
    for want in ["ci", "ci.py", "setup.py", "mypkg", "check.py"] {
        assert!(got.iter().any(|g| g == want), "{want}: {got:?}");
    }
    assert!(
        !got.iter().any(|g| g == "src" || g == "README.md"),
        "{got:?}"
    );
    let got = paths(&["python3", "-m", "pytest", "tests"], &t, false);
    assert_eq!(got, ["pytest", "pytest.py"]);
    for argv in [
        &["python3", "-um", "ci.check"][..],
        &["python3", "-I", "-m", "ci.check"],
        &["python3", "-W", "ignore", "-mci.check"],
        &["python3", "-B", "-O", "-m", "ci.check"],
    ] {
        let got = paths(argv, &t, false);
        assert!(got.iter().any(|g| g == "ci"), "{argv:?}: {got:?}");
    }
    for argv in [
        &["python3", "-O", "scripts/notify.py"][..],
        &["python3", "-X", "dev", "-I", "scripts/notify.py"],
    ] {
        let got = paths(argv, &t, false);
        assert!(got.iter().any(|g| g == "scripts"), "{argv:?}: {got:?}");
    }
    let got = paths(&["python3", "-Bc", "import x"], &t, false);
    assert!(got.iter().any(|g| g == "setup.py"), "{got:?}");
    let got = paths(&["python3", "-mpytest"], &t, true);
    assert!(got.iter().any(|g| g == "setup.py"), "{got:?}");
}

/// A script at the root: the root's files of its kind and its packages, nothing else.
#[test]
fn a_script_at_the_root_protects_the_roots_code_of_its_kind() {
    let t = tree();
    let got = paths(&["python3", "check.py"], &t, false);
    for want in ["check.py", "setup.py", "mypkg"] {
        assert!(got.iter().any(|g| g == want), "{want}: {got:?}");
    }
    for not in ["web", "src", "README.md", "lib.sh", "scripts"] {
        assert!(!got.iter().any(|g| g == not), "{not}: {got:?}");
    }
    // A program of the repository: its `#!` line says its kind.
    let got = paths(&["./tell"], &t, false);
    assert!(got.iter().any(|g| g == "setup.py"), "{got:?}");
    assert!(!got.iter().any(|g| g == "lib.sh"), "{got:?}");
    let got = paths(&["node", "-e", "require('./web')"], &t, false);
    assert!(got.iter().any(|g| g == "web"), "{got:?}");
}

/// `make`: the makefiles of its directory and what they include, an include orch cannot
/// resolve giving every `*.mk`; `-f` and `-C`.
#[test]
fn make_reads_its_makefiles_and_their_includes() {
    let t = tree();
    let got = paths(&["make", "test"], &t, false);
    for want in [
        "GNUmakefile",
        "makefile",
        "Makefile",
        "build/rules.mk",
        "local.mk",
        "**/*.mk",
    ] {
        assert!(got.iter().any(|g| g == want), "{want}: {got:?}");
    }
    let got = paths(&["make", "-C", "sub", "test"], &t, false);
    assert!(got.iter().any(|g| g == "sub/Makefile"), "{got:?}");
    let got = paths(&["make", "-f", "build/rules.mk"], &t, false);
    assert!(got.iter().any(|g| g == "local.mk"), "{got:?}");
    assert!(!got.iter().any(|g| g == "Makefile"), "{got:?}");
}

/// The package runners: their rc files at the root.
#[test]
fn package_runners_read_their_rc_files() {
    for runner in ["npm", "npx", "yarn", "pnpm", "bun"] {
        let got = paths(&[runner, "test"], &tree(), false);
        for want in [".npmrc", ".yarnrc", ".yarnrc.yml", ".pnpmfile.cjs"] {
            assert!(got.iter().any(|g| g == want), "{runner} {want}: {got:?}");
        }
    }
    assert!(paths(&["cargo", "test"], &tree(), false).is_empty());
    assert!(paths(&["cat", "hooks/lib.js"], &tree(), true).is_empty());
}

/// An unconfined hook: every file it names is a script of every kind.
#[test]
fn every_file_an_unconfined_hook_names_is_a_script() {
    let got = paths(&["go", "run", "hooks/lib.js"], &tree(), true);
    assert!(got.iter().any(|g| g == "hooks"), "{got:?}");
    assert!(paths(&["go", "run", "hooks/lib.js"], &tree(), false).is_empty());
}

/// Patterns at any depth: a path matches at its end or with a path below it; a link at the
/// place or at a directory above it is caught.
#[test]
fn patterns_match_at_any_depth() {
    let p = "**/.claude/settings.json";
    for path in [
        ".claude/settings.json",
        "docs/.claude/settings.json",
        "a/b/.claude/settings.json",
    ] {
        assert!(pattern_covers(p, path), "{path}");
    }
    for path in [
        "docs/.claude/x.json",
        "docs/claude/settings.json",
        "settings.json",
    ] {
        assert!(!pattern_covers(p, path), "{path}");
    }
    assert!(pattern_covers("**/.env", "sub/.gemini/.env"));
    assert!(pattern_covers("**/.env", ".env"));
    assert!(!pattern_covers("**/.env", "x.env"));
    assert!(pattern_covers("**/*.mk", "a/b.mk"));
    assert!(!pattern_covers("**/*.mk", ".mk"));
    assert!(pattern_at_or_above(p, "docs/.claude"));
    assert!(pattern_at_or_above(p, "docs/.claude/settings.json"));
    assert!(!pattern_at_or_above(p, "docs"));
    assert!(!pattern_at_or_above(p, "docs/.claude/other"));
    assert_eq!(anywhere_patterns().len(), anywhere().count());
}

/// The clients' directories and the toolchains' redirects are patterns too, at any depth (a
/// file in a directory of the list is covered); what a client reads as instructions, or a
/// version name alone, is not.
#[test]
fn client_directories_and_toolchain_files_are_protected_at_any_depth() {
    let patterns = anywhere_patterns();
    let covered = |path: &str| patterns.iter().any(|p| pattern_covers(p, path));
    for path in [
        ".claude/commands/deploy.md",
        "docs/.claude/agents/a.md",
        ".claude/hooks/fmt.sh",
        ".github/hooks/audit.json",
        "x/.opencode/command/d.md",
        ".codex/rules/default.rules",
        ".vscode/tasks.json",
        "rust-toolchain",
        "crates/x/rust-toolchain.toml",
        "a/b/.cargo/config.toml",
        ".cargo/config",
        ".config/mise/conf.d/x.toml",
        "web/.npmrc",
        ".yarn/releases/yarn-4.1.0.cjs",
    ] {
        assert!(covered(path), "{path}");
    }
    for path in [
        "CLAUDE.md",
        ".claude/rules/x.md",
        ".claude/output-styles/x.md",
        ".gemini/skills/x/SKILL.md",
        ".gemini/extensions/x/gemini-extension.json",
        ".github/copilot-instructions.md",
        ".github/workflows/ci.yml",
        ".cursor/rules/x.mdc",
        ".aider.model.metadata.json",
        ".python-version",
        "src/cargo/config.toml",
    ] {
        assert!(!covered(path), "{path}");
    }
}
