//! What a later run trusts: the files of the repository that orch reads as its configuration
//! or runs as a gate, and the files the agent clients obey when a person runs them there. One
//! definition, protected by default from every kind of attempt (a task, a best-of-N candidate,
//! a resolver, a plan-mode agent), checked again before the merge train or `orch merge` lands a
//! branch; `protect` adds to it, never removes from it.

use std::path::Path;

use crate::plan::Plan;

/// orch's own configuration in the repository, protected from every task whatever `protect`
/// says (only a plan's `allow_protected`, a person's word, exempts a path): what orch reads or
/// runs later, outside an attempt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Guarded {
    /// Paths relative to the repository root (`/`-separated), each a file or a directory whose
    /// every file is protected: `plans.toml`, every plan file it names, the prompt templates
    /// (`<templates>/task.md`, `plan.md`), `.gitmodules`, `.worktreeinclude`, and the agent
    /// clients' project settings ([`CLIENT_PROJECT_FILES`]).
    pub(crate) files: Vec<String>,
    /// The command lines orch runs as gates or hooks, whose program and script
    /// ([`program_words`]) are protected where they are files of the repository: `check`
    /// (every plan's, and a task's own `(check: …)` with [`Guarded::with_task_checks`]),
    /// `verify`, `select`, `setup`, each `[[notify]]` command. The other words that name files
    /// (data handed to the program: an expected output) are the tasks' work unless `protect`
    /// names them ([`files_of`]).
    pub(crate) commands: Vec<Vec<String>>,
    /// Each agent's command (a resolver's included): its program and script are protected; the
    /// files it is handed are the agent's work, never protected for it.
    pub(crate) agents: Vec<Vec<String>>,
    /// Of `commands`, those orch runs unconfined (each `[[notify]]` command): every file the
    /// line names is protected, its data too, whatever the program (`go run hooks/n.go`,
    /// `pytest hooks/t.py` run those files outside any sandbox).
    pub(crate) unconfined: Vec<Vec<String>>,
    /// orch's own paths in the repository ([`super::own`]: `state_dir`, `worktree_root`,
    /// `log_dir`, and the files it copies into each worktree from the main checkout, `copy`,
    /// `warm` and `.worktreeinclude`; `/`-separated, relative to its root, the last component
    /// possibly a wildcard): no commit orch makes and no landing takes a tree that changes an
    /// entry at or below one, or that puts a file or a link at a directory above one (`.orch`),
    /// whatever a task names, `protect` or `--allow-protected` say ([`super::own_path`]).
    pub(crate) own: Vec<String>,
    /// Of `own`, the files orch copies into each worktree ([`super::Manifest::copied`]): a
    /// worktree may show them changed, and no commit holds them.
    pub(crate) copied: Vec<String>,
    /// The words of the agent clients' project settings ([`CLIENT_PROJECT_FILES`]) as the
    /// repository holds them ([`super::client_commands`]): each that names a file of the
    /// repository is protected, a command a client runs in a person's next session.
    pub(crate) client_words: Vec<String>,
}

pub(crate) use super::obeyed::CLIENT_PROJECT_FILES;

/// The file that decides which submodules a checkout has (and from where).
pub(crate) const GITMODULES: &str = ".gitmodules";

/// The file at the repository root listing what orch copies from the main checkout into each
/// new worktree (beside `copy`): what an agent there may then read, `sandbox_deny_read` or not.
pub(crate) const WORKTREE_INCLUDE: &str = ".worktreeinclude";

impl Guarded {
    fn add(&mut self, argv: &[String]) {
        if !argv.is_empty() && !self.commands.iter().any(|c| c == argv) {
            self.commands.push(argv.to_vec());
        }
    }

    /// With the `(check: …)` command lines of `plan`'s tasks (the plan file names them: they
    /// run as the gate of a later run of it).
    pub(crate) fn with_task_checks(mut self, plan: &Plan) -> Self {
        for t in &plan.tasks {
            if let Ok(Some(argv)) = crate::plan::check_clause(&t.description) {
                self.add(&argv);
            }
        }
        self
    }

    /// The protected paths themselves: [`Guarded::files`], and the program and script of each
    /// command line where `file_of` (a word of a command line to the repository path of the
    /// file it names, `None` when it names none) finds one.
    pub(crate) fn paths(&self, file_of: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
        let mut out = self.files.clone();
        self.client_files(file_of, &mut out);
        let agents = self.agents.iter().map(|a| (a, true));
        for (argv, agent) in self.commands.iter().map(|c| (c, false)).chain(agents) {
            let is_file = |w: &str| file_of(w).is_some();
            // An agent's inline code names the files it works on (`sh -c "touch done.txt"`):
            // its work; only the words of its own command line are code.
            let mut words: Vec<String> = program_words(argv, &is_file)
                .into_iter()
                .filter(|w| !agent || argv.contains(w))
                .collect();
            if !agent && self.unconfined.contains(argv) {
                words.extend(file_words(argv, &is_file));
            }
            for w in words {
                if let Some(f) = file_of(&w)
                    && !out.contains(&f)
                {
                    out.push(f);
                }
            }
        }
        out
    }
}

impl Guarded {
    /// The files of the repository that the clients' project settings name
    /// ([`Guarded::client_words`]), added to `out`.
    fn client_files(&self, file_of: &dyn Fn(&str) -> Option<String>, out: &mut Vec<String>) {
        for w in &self.client_words {
            if let Some(f) = file_of(w)
                && !out.contains(&f)
            {
                out.push(f);
            }
        }
    }

    /// Of [`Guarded::paths`], those protected only because orch does not know the grammar of
    /// the program a command line hands them to ([`super::unknown_grammar_words`]): they may be
    /// data (`tests/cases.txt` of `["ci/run-tests", "tests/cases.txt"]`), which a plan's
    /// `allow_protected` lets its tasks change. None that is code by another rule (a script, a
    /// trusted file).
    pub(crate) fn unknown_grammar_paths(
        &self,
        file_of: &dyn Fn(&str) -> Option<String>,
    ) -> Vec<String> {
        let mut sure = self.files.clone();
        self.client_files(file_of, &mut sure);
        let mut maybe: Vec<String> = Vec::new();
        let agents = self.agents.iter().map(|a| (a, true));
        for (argv, agent) in self.commands.iter().map(|c| (c, false)).chain(agents) {
            let is_file = |w: &str| file_of(w).is_some();
            let (mut code, mut guessed) = classify(argv, &is_file);
            if !agent && self.unconfined.contains(argv) {
                // An unconfined hook's files are code for that alone, grammar or not.
                let all = file_words(argv, &is_file);
                guessed.retain(|g| !all.contains(g));
                code.extend(all);
            }
            for w in code.iter().filter(|w| !agent || argv.contains(w)) {
                if let Some(f) = file_of(w) {
                    let to = if guessed.contains(w) {
                        &mut maybe
                    } else {
                        &mut sure
                    };
                    if !to.contains(&f) {
                        to.push(f);
                    }
                }
            }
        }
        maybe.retain(|m| !sure.contains(m));
        maybe
    }
}

impl Guarded {
    /// The code the gates' and hooks' command lines ([`Guarded::commands`]) load without
    /// naming it ([`super::implicit_code`]): `file_of` as for [`Guarded::paths`], `view` the
    /// tree (the one the work started from with the work's own). Each path once, with the first
    /// reason found. Agents' commands: their program and script alone ([`Guarded::paths`]).
    pub(crate) fn loaded(
        &self,
        file_of: &dyn Fn(&str) -> Option<String>,
        view: &dyn super::View,
    ) -> Vec<super::Loaded> {
        let mut out: Vec<super::Loaded> = Vec::new();
        for argv in &self.commands {
            let unconfined = self.unconfined.contains(argv);
            for l in super::implicit_code::loaded(argv, file_of, view, unconfined) {
                if !out.iter().any(|o| o.path == l.path) {
                    out.push(l);
                }
            }
        }
        out
    }
}

/// The directories above `path` (`a/b/c` → `a`, `a/b`): a link at one of them would move the
/// protected file elsewhere.
pub(crate) fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

pub(crate) use super::command_words::program_words;
use super::command_words::{classify, file_words};

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
        let mut files: Vec<String> = Vec::new();
        let own = [
            self.path.clone(),
            // The prompt templates' file names (`prompt::TASK_FILE`, `PLAN_FILE`: a layer above).
            dir.join("task.md"),
            dir.join("plan.md"),
        ];
        for f in own
            .iter()
            .chain(self.plans.iter().map(|p| &p.abs_file))
            .filter_map(|p| rel(p))
            .chain([GITMODULES, WORKTREE_INCLUDE].map(str::to_string))
            .chain(CLIENT_PROJECT_FILES.iter().map(|f| (*f).to_string()))
        {
            if !files.contains(&f) {
                files.push(f);
            }
        }
        let mut g = Guarded {
            files,
            commands: Vec::new(),
            agents: Vec::new(),
            unconfined: Vec::new(),
            own: self.own_dirs(repo_root),
            copied: self.copied(repo_root),
            client_words: super::client_commands::settings_words(repo_root),
        };
        // The plan's own first, then every plan's: a task of one plan that edits another's
        // gate changes what a later run of that plan trusts.
        let entries = plan.into_iter().chain(self.plans.iter());
        for e in entries {
            for argv in [&e.check, &e.setup, &e.best_of.select]
                .into_iter()
                .flatten()
            {
                g.add(argv);
            }
        }
        for argv in [
            &self.defaults.check,
            &self.defaults.verify,
            &self.defaults.best_of.select,
            &self.defaults.verify_all,
        ]
        .into_iter()
        .chain(self.repos.iter().map(|r| &r.verify))
        .flatten()
        {
            g.add(argv);
        }
        for n in &self.notify {
            if let Some(argv) = &n.command {
                g.add(argv);
                if !g.unconfined.contains(argv) {
                    g.unconfined.push(argv.clone());
                }
            }
        }
        // Every agent's program (a resolver's too): run by the next `orch up` or `orch merge`.
        for spec in self.agents.values() {
            if !spec.command.is_empty() && !g.agents.contains(&spec.command) {
                g.agents.push(spec.command.clone());
            }
        }
        g
    }
}

/// A command line orch runs as a gate or hook, as `orch check` lists it with the files it
/// protects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Gate {
    /// The key that sets it: `check`, `setup`, `select`, `verify`, `notify`, or `check of task
    /// 1.2` (a task's own `(check: …)`).
    pub(crate) key: String,
    /// The plans it is a gate of (empty: the run's: `verify`, `[[notify]]`).
    pub(crate) plans: Vec<String>,
    pub(crate) argv: Vec<String>,
}

/// The files a gate's command line names, split: those it runs (its program and script,
/// protected from every task whatever `protect` says) and the data handed to it (the tasks'
/// work, unless `protect` names it). `file_of`: a word to the repository path of the file it
/// names, `None` when it names none.
pub(crate) fn files_of(
    argv: &[String],
    file_of: &dyn Fn(&str) -> Option<String>,
) -> (Vec<String>, Vec<String>) {
    let is_file = |w: &str| file_of(w).is_some();
    let mut code: Vec<String> = Vec::new();
    for f in program_words(argv, &is_file)
        .iter()
        .filter_map(|w| file_of(w))
    {
        if !code.contains(&f) {
            code.push(f);
        }
    }
    let mut data: Vec<String> = Vec::new();
    for f in argv
        .iter()
        .filter(|w| !w.starts_with('-'))
        .filter_map(|w| file_of(w))
    {
        if !code.contains(&f) && !data.contains(&f) {
            data.push(f);
        }
    }
    (code, data)
}

impl super::Manifest {
    /// Every gate and hook command line of this manifest and of the plans `plans` (a plan's
    /// name and its parsed file, for the tasks' own `(check: …)`), the same command line of
    /// the same key once with every plan it serves.
    pub(crate) fn gates<'a>(
        &self,
        plans: impl IntoIterator<Item = (&'a str, &'a Plan)>,
    ) -> Vec<Gate> {
        let mut out: Vec<Gate> = Vec::new();
        let mut add = |key: &str, plan: Option<&str>, argv: &[String]| {
            if argv.is_empty() {
                return;
            }
            if let Some(g) = out.iter_mut().find(|g| g.key == key && g.argv == argv) {
                if let Some(p) = plan
                    && !g.plans.iter().any(|q| q == p)
                {
                    g.plans.push(p.to_owned());
                }
                return;
            }
            out.push(Gate {
                key: key.to_owned(),
                plans: plan.map(str::to_owned).into_iter().collect(),
                argv: argv.to_vec(),
            });
        };
        let parsed: Vec<(&str, &Plan)> = plans.into_iter().collect();
        for e in &self.plans {
            for (key, argv) in [
                ("check", &e.check),
                ("setup", &e.setup),
                ("select", &e.best_of.select),
            ] {
                if let Some(argv) = argv {
                    add(key, Some(&e.name), argv);
                }
            }
            for (_, plan) in parsed.iter().filter(|(n, _)| *n == e.name) {
                for t in &plan.tasks {
                    if let Ok(Some(argv)) = crate::plan::check_clause(&t.description) {
                        add(&format!("check of task {}", t.id), Some(&e.name), &argv);
                    }
                }
            }
        }
        if let Some(argv) = &self.defaults.verify {
            add("verify", None, argv);
        }
        for n in &self.notify {
            if let Some(argv) = &n.command {
                add("notify", None, argv);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(argv: &[&str], files: &[&str]) -> Vec<String> {
        let argv: Vec<String> = argv.iter().map(|s| (*s).to_string()).collect();
        let is_file = |w: &str| files.contains(&w);
        program_words(&argv, &is_file)
    }

    /// Table: the program and the script an interpreter runs are code; the data handed to
    /// them, inline code and modules are not.
    #[test]
    fn the_program_and_its_script_are_told_from_the_data() {
        let files = [
            "ci/check.sh",
            "ci/check",
            "data/expected.txt",
            "tests/test_x.py",
            "scripts/score.py",
            "x.ts",
        ];
        let cases: [(&[&str], &[&str]); 15] = [
            (&["sh", "ci/check.sh"], &["sh", "ci/check.sh"]),
            (
                &["sh", "ci/check.sh", "data/expected.txt"],
                &["sh", "ci/check.sh"],
            ),
            // A program of the repository: orch knows not its grammar, every file is code.
            (
                &["./ci/check", "data/expected.txt"],
                &["./ci/check", "data/expected.txt"],
            ),
            (&["pytest", "tests/test_x.py"], &["pytest"]),
            (
                &["python3", "-m", "pytest", "tests/test_x.py"],
                &["python3"],
            ),
            (
                &["/usr/bin/python3.12", "scripts/score.py"],
                &["/usr/bin/python3.12", "scripts/score.py"],
            ),
            (
                &["bash", "-o", "pipefail", "ci/check.sh"],
                &["bash", "ci/check.sh"],
            ),
            (&["sh", "-ec", "sh ci/check.sh"], &["sh", "ci/check.sh"]),
            (&["sh", "-e", "ci/check.sh"], &["sh", "ci/check.sh"]),
            (
                &["env", "FOO=1", "sh", "ci/check.sh"],
                &["sh", "ci/check.sh"],
            ),
            (
                &["timeout", "-s", "KILL", "60", "./ci/check"],
                &["./ci/check"],
            ),
            (&["deno", "run", "x.ts"], &["deno", "x.ts"]),
            (&["node", "-e", "1", "x.ts"], &["node"]),
            (&["cargo", "test"], &["cargo"]),
            (&["bun", "test", "x.ts"], &["bun"]),
        ];
        for (argv, want) in cases {
            assert_eq!(words(argv, &files), want, "{argv:?}");
        }
        assert!(words(&[], &files).is_empty());
    }

    #[test]
    fn ancestors_of_a_path() {
        assert_eq!(ancestors("a/b/c").collect::<Vec<_>>(), ["a", "a/b"]);
        assert!(ancestors("plans.toml").next().is_none());
    }

    #[test]
    fn the_gates_of_a_landing_across_repositories_are_guarded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path();
        std::fs::create_dir_all(repo.join("api")).expect("mkdir");
        std::fs::write(repo.join("p.md"), "# P\n").expect("plan");
        let text = "[defaults]\nverify_all = [\"sh\", \"ci/all.sh\"]\n\
                    [[repo]]\nname = \"api\"\npath = \"api\"\nverify = [\"sh\", \"ci/api.sh\"]\n\
                    [[plan]]\nname = \"p\"\nfile = \"p.md\"\nrepo = \"api\"\n";
        let m = crate::manifest::parse_str(&repo.join("plans.toml"), text).expect("manifest");
        let g = m.guarded(repo, m.plans.first());
        let file_of = |w: &str| w.ends_with(".sh").then(|| w.to_string());
        let paths = g.paths(&file_of);
        for f in ["ci/all.sh", "ci/api.sh"] {
            assert!(paths.contains(&f.to_string()), "{f}: {paths:?}");
        }
    }

    /// A `[[notify]]` hook runs unconfined: every file its line names is protected, whatever
    /// the program (a test runner's or `go run`'s arguments are code run outside any sandbox);
    /// a confined gate's data stays the tasks'.
    #[test]
    fn every_file_an_unconfined_hook_names_is_protected() {
        let text = "[defaults]\ncheck = [\"pytest\", \"tests/t.py\"]\n\n\
                    [[plan]]\nname = \"p\"\nfile = \"p.md\"\n\n\
                    [[notify]]\ncommand = [\"go\", \"run\", \"hooks/n.go\"]\n\n\
                    [[notify]]\ncommand = [\"pytest\", \"hooks/t.py\", \"--x=hooks/v.py\"]\n\n\
                    [[notify]]\ncommand = [\"cat\", \"hooks/c.txt\"]\n\n\
                    [[notify]]\ncommand = [\"hooks/tell\", \"hooks/d.txt\"]\n";
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path();
        std::fs::write(repo.join("p.md"), "# P\n").expect("plan");
        let m = crate::manifest::parse_str(&repo.join("plans.toml"), text).expect("manifest");
        let g = m.guarded(repo, m.plans.first());
        let file_of =
            |w: &str| (w.starts_with("hooks/") || w.starts_with("tests/")).then(|| w.to_string());
        let paths = g.paths(&file_of);
        for f in [
            "hooks/n.go",
            "hooks/t.py",
            "hooks/v.py",
            "hooks/c.txt",
            "hooks/tell",
            "hooks/d.txt",
        ] {
            assert!(paths.contains(&f.to_string()), "{f}: {paths:?}");
        }
        assert!(!paths.contains(&"tests/t.py".to_string()), "{paths:?}");
        assert_eq!(g.unknown_grammar_paths(&file_of), Vec::<String>::new());
    }

    #[test]
    fn orchs_configuration_is_guarded_with_its_command_lines() {
        let text = "[defaults]\nverify = [\"sh\", \"ci/verify.sh\"]\nsetup = [\"sh\", \"ci/setup.sh\"]\n\
                    check = [\"sh\", \"ci/check.sh\", \"data/x.txt\"]\n\n\
                    [agents.fixer]\ncommand = [\"sh\", \"ci/fix.sh\", \"shared.txt\"]\n\n\
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
            "docs/plans/p.md".to_string(),
            ".gitmodules".to_string(),
            ".worktreeinclude".to_string(),
        ];
        want.extend(CLIENT_PROJECT_FILES.iter().map(|f| (*f).to_string()));
        assert_eq!(g.files, want);
        let tracked = [
            "ci/verify.sh",
            "ci/setup.sh",
            "ci/check.sh",
            "data/x.txt",
            "ci/fix.sh",
            "scripts/tell.sh",
            "shared.txt",
        ];
        let file_of = |w: &str| tracked.contains(&w).then(|| w.to_string());
        let paths = g.paths(&file_of);
        for f in [
            "ci/verify.sh",
            "ci/setup.sh",
            "ci/check.sh",
            "ci/fix.sh",
            "scripts/tell.sh",
        ] {
            assert!(paths.contains(&f.to_string()), "{f}: {paths:?}");
        }
        assert!(!paths.contains(&"data/x.txt".to_string()), "{paths:?}");
        // The data a gate is handed is told apart from what it runs.
        let with_data = g
            .commands
            .iter()
            .find(|c| c.iter().any(|w| w == "data/x.txt"))
            .expect("a command handed data/x.txt");
        let (code, data) = files_of(with_data, &file_of);
        assert!(!code.contains(&"data/x.txt".to_string()), "{code:?}");
        assert!(data.contains(&"data/x.txt".to_string()), "{data:?}");
        // What an agent is handed is its work.
        assert!(!paths.contains(&"shared.txt".to_string()), "{paths:?}");
        // A manifest outside the repository guards no file of it (the rest stays).
        let outside = m.guarded(&repo.join("elsewhere"), None).files;
        assert_eq!(outside[..2], [".gitmodules", ".worktreeinclude"]);
        assert_eq!(&outside[2..], CLIENT_PROJECT_FILES);
    }
}
