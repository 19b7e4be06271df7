//! The code a gate's or hook's command loads without its command line naming it: what its
//! interpreter imports, requires or sources beside its script, the package a `python -m` runs,
//! the makefiles `make` reads, the rc files of the package runners. Protected as the script is
//! ([`super::Guarded::loaded`]), for confined gates and unconfined hooks alike.
//!
//! The rule (fail closed where orch cannot tell):
//! - an interpreter (a shell, `python`, `pypy`, `node`, `nodejs`, `bun`, `deno`, `tsx`,
//!   `ts-node`, `ruby`, `perl`, `php`, `lua`) running a script, a file given to one of its
//!   code-loading options, or a program of the repository (run by its `#!` line): the directory
//!   of that file and everything below it (imports, requires and sources resolve there first);
//! - such a file at the repository root, whose directory is the whole repository: the root's
//!   files of the interpreter's own kinds ([`Family::extensions`]: `*.py`, `*.js`, `*.sh`, …;
//!   every kind for a program whose `#!` line orch cannot tell) and the directories at the root
//!   that are its packages (holding `__init__.py`; `package.json` or `index.js`, and
//!   `node_modules`, for node's kind): the root rule;
//! - the interpreters that load from their working directory (the repository root: shells, `php`,
//!   `lua`): the root rule too; a shell script's `.` and `source` lines are read (bounded, never
//!   through a link, four files deep) and each file they name is protected, a name orch cannot
//!   resolve (`. "$DIR/x"`) giving the root rule;
//! - `python -m a.b.c`: `a/` and `a.py` at the root, and the root rule when `a` is the
//!   repository's (or the command is a hook: it runs unconfined) — `python -m pytest` is
//!   `pytest`, whose tests are data; `python -c`, `node -e`: the root rule;
//! - `make` without `-f` (`-C DIR` its directory): `GNUmakefile`, `makefile`, `Makefile` there;
//!   with `-f` the files it names; and every file their `include`, `-include` and `sinclude`
//!   lines name, read the same way; an include orch cannot resolve (`$(…)`, a wildcard)
//!   protects every `*.mk` of the repository;
//! - `npm`, `npx`, `yarn`, `pnpm`, `bun`: their rc files at the root ([`RUNNER_FILES`]) and
//!   `node_modules`;
//! - an unconfined hook: every file its line names, whatever the program, as a script of every
//!   kind.
//!
//! Beside these, [`anywhere`]: files protected at any depth (the clients' configuration, the
//! toolchains' redirects, `.env`), as patterns `**/NAME` ([`pattern_covers`]).

use super::command_words::{
    DATA_TOOLS, INTERPRETERS, PACKAGE_RUNNERS, READERS, after_wrappers, program_name,
    shell_commands, split_words,
};

/// What a path of a tree is, read without following a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Link,
}

/// What orch reads of a tree (the one the work started from with the work's own, or the main
/// checkout) to find the code a command loads.
pub(crate) trait View {
    /// What is at `rel` (`/`-separated, relative to the root), a link not followed.
    fn kind(&self, rel: &str) -> Option<Kind>;
    /// The names in the directory `dir` (`""`: the root), at most [`MAX_NAMES`].
    fn names(&self, dir: &str) -> Vec<String>;
    /// The bytes of the regular file `rel` (never through a link), at most [`MAX_READ`];
    /// `None` otherwise.
    fn read(&self, rel: &str) -> Option<Vec<u8>>;
}

/// The most names of one directory looked at.
pub(crate) const MAX_NAMES: usize = 10_000;
/// The most of one script or makefile read.
pub(crate) const MAX_READ: u64 = 1 << 20;
/// How many files deep sources and includes are followed, and how many are read in all.
const DEPTH: usize = 4;
const MAX_FILES: usize = 64;

/// One path a command loads (a file, a directory and all below it, or a pattern `**/…`), and
/// why, as `orch check` says it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Loaded {
    pub(crate) path: String,
    pub(crate) why: String,
}

/// The kinds of interpreter, by where their code loads code from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    Python,
    Node,
    Ruby,
    Perl,
    Php,
    Lua,
    Shell,
}

const FAMILIES: [Family; 7] = [
    Family::Python,
    Family::Node,
    Family::Ruby,
    Family::Perl,
    Family::Php,
    Family::Lua,
    Family::Shell,
];

impl Family {
    fn of(name: &str) -> Option<Self> {
        Some(match name {
            "python" | "pypy" => Self::Python,
            "node" | "nodejs" | "bun" | "deno" | "tsx" | "ts-node" => Self::Node,
            "ruby" => Self::Ruby,
            "perl" => Self::Perl,
            "php" => Self::Php,
            "lua" | "luajit" => Self::Lua,
            "sh" | "bash" | "dash" | "zsh" | "ksh" | "mksh" | "ash" | "fish" => Self::Shell,
            _ => return None,
        })
    }

    /// The files of its code (what an import, require or source of it finds).
    pub(crate) fn extensions(self) -> &'static [&'static str] {
        match self {
            Self::Python => &[".py", ".pyc", ".pyw", ".so", ".pth"],
            Self::Node => &[
                ".js", ".mjs", ".cjs", ".ts", ".mts", ".cts", ".jsx", ".tsx", ".json", ".node",
            ],
            Self::Ruby => &[".rb", ".so"],
            Self::Perl => &[".pl", ".pm", ".so"],
            Self::Php => &[".php", ".inc", ".phtml"],
            Self::Lua => &[".lua", ".so"],
            Self::Shell => &[".sh", ".bash", ".zsh", ".ksh", ".fish"],
        }
    }

    /// A file whose presence makes a directory at the root one of its packages.
    fn package_markers(self) -> &'static [&'static str] {
        match self {
            Self::Python => &["__init__.py", "__init__.pyc", "__main__.py"],
            Self::Node => &[
                "package.json",
                "index.js",
                "index.mjs",
                "index.cjs",
                "index.ts",
                "index.json",
                "index.node",
            ],
            _ => &[],
        }
    }

    /// Whether its loads resolve against the working directory (the repository root) whatever
    /// the script's.
    fn loads_from_cwd(self) -> bool {
        matches!(self, Self::Shell | Self::Php | Self::Lua)
    }

    fn name(self) -> &'static str {
        match self {
            Self::Python => "python",
            Self::Node => "node",
            Self::Ruby => "ruby",
            Self::Perl => "perl",
            Self::Php => "php",
            Self::Lua => "lua",
            Self::Shell => "a shell",
        }
    }
}

/// The rc files a package runner reads at the root of the project (its working directory)
/// and the code they make it load: `.npmrc` (`script-shell`, `node-options`), `.yarnrc(.yml)`
/// (`yarnPath`, plugins), `.pnpmfile.cjs` (hooks it runs), Yarn's releases and plugins and its
/// Plug'n'Play loaders, `bunfig.toml` (`preload`), and `node_modules` (`node_modules/.bin` is
/// on their `PATH`).
pub(crate) const RUNNER_FILES: [&str; 11] = [
    ".npmrc",
    ".yarnrc",
    ".yarnrc.yml",
    ".pnpmfile.cjs",
    "pnpm-workspace.yaml",
    ".yarn/releases",
    ".yarn/plugins",
    ".pnp.cjs",
    ".pnp.loader.mjs",
    "bunfig.toml",
    "node_modules",
];

/// The makefiles GNU make reads without `-f`, in its order.
const MAKEFILES: [&str; 3] = ["GNUmakefile", "makefile", "Makefile"];

/// Files protected at any depth of the repository: the agent clients' project configuration
/// ([`super::obeyed::CLIENT_PROJECT_FILES`]: a client run by a person in a directory below the
/// root obeys the files there), the toolchains' redirects ([`super::obeyed::TOOLCHAIN_FILES`]:
/// rustup, cargo and mise read every directory from the working directory up) and `.env` files
/// (aider reads `AIDER_*` from `.env`; Gemini CLI and Qwen Code `.env`, `.gemini/.env`).
fn anywhere() -> impl Iterator<Item = &'static str> {
    super::obeyed::CLIENT_PROJECT_FILES
        .iter()
        .chain(super::obeyed::TOOLCHAIN_FILES.iter())
        .copied()
        .chain([".env"])
}

/// [`anywhere`] as patterns (`**/.env`).
pub(crate) fn anywhere_patterns() -> Vec<String> {
    anywhere().map(|n| format!("**/{n}")).collect()
}

/// Whether the component `c` of a path matches the component `m` of a pattern (`*.mk`: a name
/// ending `.mk`).
fn component_matches(m: &str, c: &str) -> bool {
    // Compared as a checkout names them: case folded ([`super::fold`]), a short name, a
    // trailing dot ([`super::names_component`]).
    match m.strip_prefix('*') {
        Some(ext) => {
            let (ext, c) = (
                super::fold(ext),
                super::fold(&super::stored_path(c)).into_owned(),
            );
            c.len() > ext.len() && c.ends_with(ext.as_ref())
        }
        None => super::names_component(m, c),
    }
}

/// The components of a pattern `**/NAME`; `None` for a path that is no pattern.
fn pattern_parts(pattern: &str) -> Option<Vec<&str>> {
    pattern
        .strip_prefix("**/")
        .map(|n| n.split('/').collect::<Vec<_>>())
}

/// Whether `path` is the pattern `pattern`'s (`**/NAME`: `NAME` at any depth, or a path below
/// it).
pub(crate) fn pattern_covers(pattern: &str, path: &str) -> bool {
    let Some(m) = pattern_parts(pattern) else {
        return false;
    };
    let c: Vec<&str> = path.split('/').collect();
    (0..c.len()).any(|j| {
        c.len() - j >= m.len() && m.iter().zip(&c[j..]).all(|(m, c)| component_matches(m, c))
    })
}

/// Whether `path` is where the pattern `pattern` matches or a directory above such a place
/// (`docs/.claude` of `**/.claude/settings.json`): a link there makes the protected file
/// another one.
pub(crate) fn pattern_at_or_above(pattern: &str, path: &str) -> bool {
    let Some(m) = pattern_parts(pattern) else {
        return false;
    };
    let c: Vec<&str> = path.split('/').collect();
    (0..c.len()).any(|j| {
        let tail = &c[j..];
        tail.len() <= m.len() && m.iter().zip(tail).all(|(m, c)| component_matches(m, c))
    })
}

/// Whether `p` is a pattern (`**/…`) rather than a path.
pub(crate) fn is_pattern(p: &str) -> bool {
    p.starts_with("**/")
}

/// What reading a command line finds, without duplicates.
struct Found<'a> {
    out: Vec<Loaded>,
    view: &'a dyn View,
    file_of: &'a dyn Fn(&str) -> Option<String>,
    files_read: usize,
}

impl Found<'_> {
    fn push(&mut self, path: &str, why: impl FnOnce() -> String) {
        if !path.is_empty() && !self.out.iter().any(|l| l.path == path) {
            self.out.push(Loaded {
                path: path.to_string(),
                why: why(),
            });
        }
    }

    /// The bytes of `rel` when it is a regular file, within the bounds of reading.
    fn read(&mut self, rel: &str) -> Option<String> {
        if self.files_read >= MAX_FILES || self.view.kind(rel) != Some(Kind::File) {
            return None;
        }
        self.files_read += 1;
        self.view
            .read(rel)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// The root rule for `families`: what a script at the root loads.
    fn root(&mut self, families: &[Family], cause: &str) {
        let mut names = self.view.names("");
        names.sort();
        for name in names {
            for f in families {
                let kind = self.view.kind(&name);
                let code = matches!(kind, Some(Kind::File | Kind::Link))
                    && f.extensions()
                        .iter()
                        .any(|e| component_matches(&format!("*{e}"), &name));
                let package = kind == Some(Kind::Dir)
                    && f.package_markers()
                        .iter()
                        .any(|m| self.view.kind(&format!("{name}/{m}")).is_some());
                if code || package {
                    self.push(&name, || {
                        format!(
                            "{} at the repository root, which {} loads from ({cause})",
                            if package { "a package" } else { "code" },
                            f.name()
                        )
                    });
                }
            }
        }
        if families.contains(&Family::Node) {
            self.push("node_modules", || {
                format!("node's modules at the repository root ({cause})")
            });
        }
    }

    /// What loading the file `rel` (a script, a program of the repository) of `families`
    /// brings in.
    fn script(&mut self, rel: &str, families: &[Family], depth: usize) {
        let (dir, _) = rel.rsplit_once('/').unwrap_or(("", rel));
        if dir.is_empty() {
            self.root(families, &format!("{rel} lies there"));
        } else {
            self.push(dir, || {
                format!("beside {rel}: every file there may be code it loads")
            });
            if families.contains(&Family::Node) {
                self.push("node_modules", || {
                    format!("node's modules, where {rel}'s bare requires resolve")
                });
            }
        }
        let from_cwd: Vec<Family> = families
            .iter()
            .copied()
            .filter(|f| f.loads_from_cwd())
            .collect();
        // Shells: what the script sources; php and lua: the root's files.
        let others: Vec<Family> = from_cwd
            .iter()
            .copied()
            .filter(|f| *f != Family::Shell)
            .collect();
        if !others.is_empty() && !dir.is_empty() {
            self.root(&others, &format!("{rel} loads from the working directory"));
        }
        if from_cwd.contains(&Family::Shell) {
            self.sourced(rel, depth);
        }
    }

    /// The files a shell script `rel` sources (`. x`, `source x`), relative to the working
    /// directory (the root), followed `DEPTH` deep.
    fn sourced(&mut self, rel: &str, depth: usize) {
        if depth >= DEPTH {
            return;
        }
        let Some(text) = self.read(rel) else {
            return;
        };
        for line in text.lines() {
            for seg in line.split([';', '&', '|', '(', ')', '`']) {
                let words = split_words(seg.split('#').next().unwrap_or(""));
                let start = words
                    .iter()
                    .position(|w| !super::command_words::SHELL_KEYWORDS.contains(&w.as_str()))
                    .unwrap_or(words.len());
                let words = &words[start..];
                if !matches!(words.first().map(String::as_str), Some("." | "source")) {
                    continue;
                }
                let Some(target) = words.get(1) else {
                    continue;
                };
                if target.contains('$') || target.contains('*') {
                    self.root(
                        &[Family::Shell],
                        &format!("{rel} sources `{target}`, which orch cannot resolve"),
                    );
                    continue;
                }
                if let Some(path) = (self.file_of)(target)
                    .or_else(|| super::command_words::repo_path_of(target, &[]))
                {
                    self.push(&path, || format!("sourced by {rel}"));
                    self.sourced(&path, depth + 1);
                }
            }
        }
    }

    /// `make`'s makefiles (`files`, relative to the root) and what they include, which make
    /// looks for in its directory `dir` (relative to the root), whichever makefile names them.
    fn makefiles(&mut self, files: &[String], dir: &str, depth: usize) {
        if depth >= DEPTH {
            return;
        }
        for f in files {
            let Some(text) = self.read(f) else {
                continue;
            };
            for line in text.lines() {
                let line = line.trim_start();
                let Some(rest) = ["include ", "-include ", "sinclude "]
                    .iter()
                    .find_map(|p| line.strip_prefix(p))
                else {
                    continue;
                };
                let mut next: Vec<String> = Vec::new();
                for w in rest.split('#').next().unwrap_or("").split_whitespace() {
                    if w.contains(['$', '*', '?', '[']) {
                        self.push("**/*.mk", || {
                            format!("{f} includes `{w}`, which orch cannot resolve: every *.mk")
                        });
                        continue;
                    }
                    let at = if dir.is_empty() || w.starts_with('/') {
                        w.to_string()
                    } else {
                        format!("{dir}/{w}")
                    };
                    if let Some(p) = super::command_words::repo_path_of(&at, &[]) {
                        self.push(&p, || format!("included by {f}"));
                        next.push(p);
                    }
                }
                self.makefiles(&next, dir, depth + 1);
            }
        }
    }
}

/// The family of the program of the repository `rel` by its `#!` line (`#!/usr/bin/env
/// python3`); `None` when orch cannot tell (no such line, a binary).
fn shebang(found: &mut Found<'_>, rel: &str) -> Option<Family> {
    let text = found.read(rel)?;
    let first = text.lines().next()?.strip_prefix("#!")?;
    let mut words = first.split_whitespace();
    let mut prog = words.next()?;
    if program_name(prog) == "env" {
        prog = words.find(|w| !w.starts_with('-') && !w.contains('='))?;
    }
    Family::of(&program_name(prog))
}

/// The code the command line `argv` loads without naming it, by the rule of this module:
/// `file_of` gives the repository path of a word that names a file of the tree (`None`
/// otherwise), `view` reads the tree, `unconfined` says it is a `[[notify]]` hook.
pub(crate) fn loaded(
    argv: &[String],
    file_of: &dyn Fn(&str) -> Option<String>,
    view: &dyn View,
    unconfined: bool,
) -> Vec<Loaded> {
    let mut found = Found {
        out: Vec::new(),
        view,
        file_of,
        files_read: 0,
    };
    line(&mut found, argv, unconfined, 0);
    found.out
}

fn line(found: &mut Found<'_>, argv: &[String], unconfined: bool, depth: usize) {
    let Some((i, spelled)) = after_wrappers(argv) else {
        // A wrapper orch does not know: every file is a script of every kind.
        every_file_a_script(found, argv, depth);
        return;
    };
    let argv = spelled.as_deref().unwrap_or(argv);
    let Some(program) = argv.get(i) else {
        return;
    };
    let rest = &argv[i + 1..];
    let name = program_name(program);
    if let Some(p) = (found.file_of)(program) {
        let families = shebang(found, &p).map_or(FAMILIES.to_vec(), |f| vec![f]);
        found.script(&p, &families, depth);
    }
    let family = Family::of(&name);
    if unconfined && family.is_none() && !READERS.contains(&name.as_str()) {
        // A hook runs unconfined: whatever the program, what it is handed may be code.
        every_file_a_script(found, rest, depth);
    }
    if matches!(name.as_str(), "make" | "gmake") {
        make(found, rest);
        return;
    }
    if PACKAGE_RUNNERS.contains(&name.as_str()) || name == "bun" {
        for f in RUNNER_FILES {
            found.push(f, || format!("read by {name} at the repository root"));
        }
    }
    if DATA_TOOLS.contains(&name.as_str()) {
        return;
    }
    let Some(family) = family else {
        // A program orch does not know (`flock F`, `sudo`, `xargs`, `uv run`, a program of
        // the repository): the command line from the first interpreter, `make` or package
        // runner among its words, as it may run it.
        let known = |w: &String| {
            let n = program_name(w);
            Family::of(&n).is_some()
                || matches!(n.as_str(), "make" | "gmake" | "bun")
                || PACKAGE_RUNNERS.contains(&n.as_str())
        };
        if !READERS.contains(&name.as_str())
            && depth < DEPTH
            && let Some(j) = rest.iter().position(known)
        {
            line(found, &rest[j..], unconfined, depth + 1);
        }
        return;
    };
    let inline = INTERPRETERS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(&[][..], |(_, i)| *i);
    let is_shell = family == Family::Shell;
    let mut k = 0;
    while let Some(w) = rest.get(k) {
        k += 1;
        if family == Family::Python && w.starts_with('-') && !w.starts_with("--") {
            // A cluster of python's short options (`-um`, `-Bc`, `-O`, `-I`): the first of
            // `m`, `c`, `W`, `X` takes the rest of the word, or the next word, as its value.
            let flags = &w[1..];
            match flags.find(['m', 'c', 'W', 'X']) {
                Some(at) => {
                    let value = &flags[at + 1..];
                    let value = if value.is_empty() {
                        k += 1;
                        rest.get(k - 1).map(String::as_str)
                    } else {
                        Some(value)
                    };
                    match flags.as_bytes()[at] {
                        b'm' => {
                            if let Some(m) = value {
                                python_module(found, m, unconfined);
                            }
                            return;
                        }
                        b'c' => {
                            found.root(&[family], &format!("{program} {w} runs code inline"));
                            if let Some(code) = value {
                                every_file_a_script(found, &split_words(code), depth);
                            }
                            return;
                        }
                        _ => continue,
                    }
                }
                None => continue,
            }
        }
        let inline_code = inline.contains(&w.as_str())
            || (is_shell && w.starts_with('-') && !w.starts_with("--") && w.contains('c'));
        if inline_code {
            let Some(code) = rest.get(k) else {
                return;
            };
            if !is_shell {
                found.root(&[family], &format!("{program} {w} runs code inline"));
            }
            match shell_commands(code).filter(|_| is_shell && depth < DEPTH) {
                Some(commands) => {
                    for c in commands {
                        line(found, &c, unconfined, depth + 1);
                    }
                }
                None => every_file_a_script(found, &split_words(code), depth),
            }
            return;
        }
        if super::command_words::CODE_OPTIONS.contains(&w.as_str()) && !(is_shell && w == "-c") {
            if let Some(p) = rest.get(k).and_then(|v| (found.file_of)(v)) {
                found.script(&p, &[family], depth);
            }
            k += 1;
            continue;
        }
        if super::command_words::OPTIONS_WITH_VALUE.contains(&w.as_str()) {
            k += 1;
            continue;
        }
        if w.starts_with('-') {
            if let Some((_, v)) = w.split_once('=')
                && let Some(p) = (found.file_of)(v)
            {
                found.script(&p, &[family], depth);
            }
            continue;
        }
        if let Some(p) = (found.file_of)(w) {
            found.script(&p, &[family], depth);
            return;
        }
        if w != "run" {
            return;
        }
    }
}

/// Every word of `words` that names a file, as a script of every kind.
fn every_file_a_script(found: &mut Found<'_>, words: &[String], depth: usize) {
    for w in words {
        let value = w.split_once('=').map(|(_, v)| v);
        for c in std::iter::once(w.as_str()).chain(value) {
            if let Some(p) = (found.file_of)(c) {
                found.script(&p, &FAMILIES, depth);
            }
        }
    }
}

/// `python -m MODULE`: its package (`a/` of `a.b.c`) and `a.py` at the root (the working
/// directory is first on `sys.path`), and the root rule when the module is the repository's
/// or the command unconfined.
fn python_module(found: &mut Found<'_>, module: &str, unconfined: bool) {
    let top = module.split('.').next().unwrap_or(module);
    if top.is_empty() || top.contains('/') {
        return;
    }
    let file = format!("{top}.py");
    let ours = found.view.kind(top).is_some() || found.view.kind(&file).is_some();
    found.push(top, || format!("the package of `-m {module}`"));
    found.push(&file, || format!("the module of `-m {module}`"));
    if ours || unconfined {
        found.root(
            &[Family::Python],
            &format!("`-m {module}` puts the working directory first on its path"),
        );
    }
}

/// `make`: the makefiles it reads (`-f`'s, or those of its directory, `-C DIR`) and what they
/// include.
fn make(found: &mut Found<'_>, rest: &[String]) {
    let mut named: Vec<String> = Vec::new();
    let mut dir = String::new();
    let mut k = 0;
    while let Some(w) = rest.get(k) {
        k += 1;
        let value = |k: usize| rest.get(k).cloned().unwrap_or_default();
        match w.as_str() {
            "-f" | "--file" | "--makefile" => {
                named.push(value(k));
                k += 1;
            }
            "-C" | "--directory" => {
                dir = value(k);
                k += 1;
            }
            _ => {
                if let Some(v) = ["--file=", "--makefile=", "-f"]
                    .iter()
                    .find_map(|p| w.strip_prefix(p))
                    .filter(|v| !v.is_empty())
                {
                    named.push(v.to_string());
                } else if let Some(v) = w
                    .strip_prefix("--directory=")
                    .or_else(|| w.strip_prefix("-C"))
                    .filter(|v| !v.is_empty())
                {
                    dir = v.to_string();
                }
            }
        }
    }
    let dir = dir.trim_end_matches('/');
    let at = |f: &str| {
        let p = if dir.is_empty() || f.starts_with('/') {
            f.to_string()
        } else {
            format!("{dir}/{f}")
        };
        super::command_words::repo_path_of(&p, &[])
    };
    let files: Vec<String> = if named.is_empty() {
        MAKEFILES.iter().filter_map(|f| at(f)).collect()
    } else {
        named.iter().filter_map(|f| at(f)).collect()
    };
    for f in &files {
        found.push(f, || "a makefile make reads".to_string());
    }
    found.makefiles(&files, dir, 0);
}

#[cfg(test)]
#[path = "implicit_code_tests.rs"]
mod tests;
