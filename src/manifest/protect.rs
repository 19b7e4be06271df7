//! `protect = ["tests/**", "ci/check.sh"]` (`[defaults]` and `[[plan]]`): paths no task may
//! change unless its own text names the file. Globs from the repository root (globset).

use std::path::{Component, Path};

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::raw::{At, Bad, Reporter};

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

/// orch's own configuration in the repository, protected from every task whose text does not
/// name it, whatever `protect` says: what orch reads or runs later, outside an attempt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Guarded {
    /// Paths relative to the repository root (`/`-separated): `plans.toml`, the prompt
    /// templates (`<templates>/task.md`, `plan.md`), and the agent clients' project settings
    /// ([`CLIENT_PROJECT_FILES`]).
    pub(crate) files: Vec<String>,
    /// Command lines whose files (tracked where the plan's branch started) are protected as
    /// the check's are: `verify`, `setup` (every plan's, `plan` first), each `[[notify]]` command,
    /// best of N's `select` (every plan's).
    pub(crate) commands: Vec<Vec<String>>,
}

/// The files of a repository that an agent client reads as its configuration when a person
/// runs it there (hooks, MCP servers, commands it may run without asking, plugins and tools it
/// loads as code: opencode's directories, whose every file is protected): a change an agent
/// made to one, once merged, would run in your next session of that client in the main
/// checkout, outside any sandbox.
pub(crate) const CLIENT_PROJECT_FILES: [&str; 15] = [
    ".claude/settings.json",
    ".claude/settings.local.json",
    ".mcp.json",
    ".gemini/settings.json",
    ".codex/config.toml",
    ".aider.conf.yml",
    "opencode.json",
    "opencode.jsonc",
    ".opencode/opencode.json",
    ".opencode/opencode.jsonc",
    ".opencode/plugin",
    ".opencode/plugins",
    ".opencode/tool",
    ".opencode/tools",
    ".qwen/settings.json",
];

impl super::Manifest {
    /// What [`Guarded`] protects for plan `plan` (`None`: for the whole manifest) of this
    /// manifest in the repository at `repo_root`.
    pub(crate) fn guarded(&self, repo_root: &Path, plan: Option<&super::PlanEntry>) -> Guarded {
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let root = abs(repo_root);
        let rel = |p: &Path| -> Option<String> {
            let p = abs(p);
            let r = p.strip_prefix(&root).ok()?;
            let s = r.to_str()?.to_string();
            (!s.is_empty()).then_some(s)
        };
        let dir = self.templates_dir();
        let files = [
            Some(self.path.as_path()),
            Some(dir.join("task.md").as_path()),
            Some(dir.join("plan.md").as_path()),
        ]
        .into_iter()
        .flatten()
        .filter_map(rel)
        .chain(CLIENT_PROJECT_FILES.iter().map(|f| (*f).to_string()))
        .collect();
        let mut commands: Vec<Vec<String>> = Vec::new();
        commands.extend(self.defaults.verify.iter().cloned());
        let setups = plan
            .into_iter()
            .chain(self.plans.iter())
            .filter_map(|p| p.setup.clone());
        for argv in setups.chain(self.notify.iter().filter_map(|n| n.command.clone())) {
            if !commands.contains(&argv) {
                commands.push(argv);
            }
        }
        // Best of N's `select` (every plan's): an attempt that edits the scorer in its
        // worktree would score itself.
        let selects = plan
            .into_iter()
            .chain(self.plans.iter())
            .filter_map(|p| p.best_of.select.clone())
            .chain(self.defaults.best_of.select.clone());
        for argv in selects {
            if !commands.contains(&argv) {
                commands.push(argv);
            }
        }
        Guarded { files, commands }
    }
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

    #[test]
    fn orchs_configuration_is_guarded_with_its_command_lines() {
        let text = "[defaults]\nverify = [\"sh\", \"ci/verify.sh\"]\nsetup = [\"sh\", \"ci/setup.sh\"]\n\n\
                    [[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\n\n\
                    [[notify]]\ncommand = [\"sh\", \"scripts/tell.sh\"]\n";
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path();
        std::fs::create_dir_all(repo.join("docs/plans")).expect("mkdir");
        std::fs::write(repo.join("docs/plans/p.md"), "# P\n").expect("plan");
        let m = crate::manifest::parse_str(&repo.join("plans.toml"), text).expect("manifest");
        let g = m.guarded(repo, m.plans.first());
        let mut want = vec![
            "plans.toml".to_string(),
            "orch/templates/task.md".to_string(),
            "orch/templates/plan.md".to_string(),
        ];
        want.extend(CLIENT_PROJECT_FILES.iter().map(|f| (*f).to_string()));
        assert_eq!(g.files, want);
        let argv = |a: &[&str]| a.iter().map(|s| (*s).to_string()).collect::<Vec<String>>();
        assert_eq!(
            g.commands,
            [
                argv(&["sh", "ci/verify.sh"]),
                argv(&["sh", "ci/setup.sh"]),
                argv(&["sh", "scripts/tell.sh"])
            ]
        );
        // A manifest outside the repository guards no file of it (the clients' files stay).
        assert_eq!(
            m.guarded(&repo.join("elsewhere"), None).files,
            CLIENT_PROJECT_FILES
        );
    }
}
