//! Which words of a gate's or hook's command line are code it runs (protected from every task)
//! and which are data handed to it (the tasks' work), and which repository file a word names.
//!
//! orch cannot know every program's grammar, so it fails closed: a word is data only where
//! orch knows the program's grammar. After the wrappers it knows (`env`, `timeout`, `nice`, …,
//! each with its own options), the program is code; when it is a known interpreter (a shell,
//! `python`, `node`, `awk`, `sed`, `make`, …) its script and every file given to an option that
//! loads code (`-r`, `--require`, `--import`, `--rcfile`, `-f` of awk, sed, make, …) are code,
//! and so is every file named in inline code (`sh -c "sh ci/x.sh"`, split on whitespace), the
//! rest data; when it is a known test runner or build tool whose arguments are data (`pytest`,
//! `cargo`, `go`, …), its words are data but for the files of its code-loading options; when
//! it only reads the files it is handed (`cat`, `test`, `diff`, `grep`, …), all of them; for
//! every other program (a wrapper orch does not know, `flock`, `sudo`, `xargs`, `busybox`,
//! `uv run`, a program of the repository), every word that names a file is code (and
//! [`unknown_grammar_words`] says which were taken so: the lead's `allow_protected` lets a
//! plan's tasks change one that is data). A file the wrappers' words name is code too (`./env`,
//! `env BASH_ENV=x.sh`). `npm`,
//! `yarn`, `pnpm`, `npx` and `bun run` run what `package.json` says: it is code.

use std::path::{Component, Path};

/// Wrappers orch knows: each runs the command line after its options, its variables
/// (`NAME=value`, `env` only) and its `positional` leading words (`timeout`'s duration).
struct Wrapper {
    name: &'static str,
    /// Options without a value.
    flags: &'static [&'static str],
    /// Options whose value is the next word (or `--opt=value`), data.
    with_value: &'static [&'static str],
    positional: usize,
}

const WRAPPERS: [Wrapper; 9] = [
    Wrapper {
        name: "env",
        flags: &[
            "-i",
            "--ignore-environment",
            "-0",
            "--null",
            "-",
            "-v",
            "--debug",
        ],
        with_value: &["-u", "--unset", "-C", "--chdir"],
        positional: 0,
    },
    Wrapper {
        name: "timeout",
        flags: &["--preserve-status", "--foreground", "-v", "--verbose"],
        with_value: &["-s", "--signal", "-k", "--kill-after"],
        positional: 1,
    },
    Wrapper {
        name: "nice",
        flags: &[],
        with_value: &["-n", "--adjustment"],
        positional: 0,
    },
    Wrapper {
        name: "nohup",
        flags: &[],
        with_value: &[],
        positional: 0,
    },
    Wrapper {
        name: "setsid",
        flags: &["-c", "--ctty", "-f", "--fork", "-w", "--wait"],
        with_value: &[],
        positional: 0,
    },
    Wrapper {
        name: "stdbuf",
        flags: &[],
        with_value: &["-i", "-o", "-e", "--input", "--output", "--error"],
        positional: 0,
    },
    Wrapper {
        name: "time",
        flags: &["-p", "-v", "--verbose", "-a", "--append", "-q", "--quiet"],
        with_value: &["-f", "--format", "-o", "--output"],
        positional: 0,
    },
    Wrapper {
        name: "command",
        flags: &["-p"],
        with_value: &[],
        positional: 0,
    },
    Wrapper {
        name: "exec",
        flags: &["-c", "-l", "-cl", "-lc"],
        with_value: &["-a"],
        positional: 0,
    },
];

/// Interpreters: the first word after their options that is a file is the script they run,
/// the words after it data. Each with the options that give them code inline instead (no
/// script then; the files that code names are code too).
pub(super) const INTERPRETERS: [(&str, &[&str]); 26] = [
    ("sh", &["-c"]),
    ("bash", &["-c"]),
    ("dash", &["-c"]),
    ("zsh", &["-c"]),
    ("ksh", &["-c"]),
    ("mksh", &["-c"]),
    ("ash", &["-c"]),
    ("fish", &["-c", "--command"]),
    ("python", &["-c", "-m"]),
    ("pypy", &["-c", "-m"]),
    ("node", &["-e", "--eval", "-p", "--print"]),
    ("nodejs", &["-e", "--eval", "-p", "--print"]),
    ("deno", &["eval"]),
    ("bun", &["-e", "--eval", "-p", "--print"]),
    ("tsx", &["-e", "--eval", "-p", "--print"]),
    ("ts-node", &["-e", "--eval", "-p", "--print"]),
    ("perl", &["-e", "-E"]),
    ("ruby", &["-e"]),
    ("php", &["-r"]),
    ("lua", &["-e"]),
    ("rscript", &["-e"]),
    ("julia", &["-e", "--eval"]),
    ("awk", &["-e", "--source"]),
    ("gawk", &["-e", "--source"]),
    ("sed", &["-e", "--expression"]),
    ("make", &[]),
];

/// Options whose value is code the program loads (a module, an init file, a program file):
/// protected as its script is.
pub(super) const CODE_OPTIONS: [&str; 17] = [
    "-r",
    "--require",
    "--import",
    "--loader",
    "--experimental-loader",
    "--preload",
    "--rcfile",
    "--init-file",
    "-f",
    "--file",
    "--makefile",
    "-c",
    "--config",
    "--config-file",
    "-p",
    "--rootdir",
    "--confcutdir",
];

/// Options of interpreters that take the next word as their value, data (not a script).
pub(super) const OPTIONS_WITH_VALUE: [&str; 6] = ["-o", "-O", "-W", "-X", "-I", "-C"];

/// Test runners and build tools whose arguments are data (the tests they run, targets): the
/// tasks' work, but for the files of [`CODE_OPTIONS`].
pub(super) const DATA_TOOLS: [&str; 11] = [
    "pytest", "py.test", "cargo", "go", "jest", "vitest", "mocha", "tox", "nox", "ctest", "ninja",
];

/// Programs that only read the files they are handed (compare, print, test them) and have no
/// option that runs or loads code: every argument is data, their options included (`test -f
/// x`, `grep -f patterns`, `diff -r a b`: none of these `-f`, `-r` loads code).
pub(super) const READERS: [&str; 12] = [
    "cat", "test", "[", "true", "false", "diff", "cmp", "grep", "head", "tail", "wc", "md5sum",
];

/// Programs that run what `package.json` says (`npm run x`, `npm test`).
pub(super) const PACKAGE_RUNNERS: [&str; 4] = ["npm", "yarn", "pnpm", "npx"];

/// The file those read their scripts from.
pub(crate) const PACKAGE_JSON: &str = "package.json";

/// A program's name as the tables above spell it: its file name, lowercase, without a version
/// (`/usr/bin/python3.12` → `python`).
pub(super) fn program_name(word: &str) -> String {
    let base = word.rsplit('/').next().unwrap_or(word).to_ascii_lowercase();
    base.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.')
        .to_string()
}

/// The words of a string of inline code or of `env -S`, split on whitespace, quotes and shell
/// punctuation trimmed (`sh -c "sh ci/x.sh; ./y"` → `sh`, `ci/x.sh`, `./y`).
pub(super) fn split_words(s: &str) -> Vec<String> {
    s.split(|c: char| c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | ')' | '`'))
        .map(|w| w.trim_matches(|c: char| matches!(c, '\'' | '"' | '\\' | '<' | '>' | '{' | '}')))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Every word of `words` naming a file, and the value of each `--opt=value`.
fn every_file(words: &[String], is_file: &dyn Fn(&str) -> bool, out: &mut Vec<String>) {
    for w in words {
        let value = w.split_once('=').map(|(_, v)| v);
        for c in std::iter::once(w.as_str()).chain(value) {
            if is_file(c) && !out.iter().any(|o| o == c) {
                out.push(c.to_string());
            }
        }
    }
}

/// Every word of `argv` that names a file (for which `is_file` holds), and the value of each
/// `--opt=value` that does: what an unconfined hook is handed, all of it code.
pub(crate) fn file_words(argv: &[String], is_file: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    every_file(argv, is_file, &mut out);
    out
}

/// Where the wrappers of `argv` end (the index of the program), with the command line an
/// `env -S` string splits into in its place; `None` when a wrapper has an option orch does not
/// know (then it cannot tell the program: every file word is code).
pub(super) fn after_wrappers(argv: &[String]) -> Option<(usize, Option<Vec<String>>)> {
    let mut i = 0;
    while let Some(w) = argv.get(i) {
        let name = program_name(w);
        let Some(wrapper) = WRAPPERS.iter().find(|x| x.name == name) else {
            return Some((i, None));
        };
        i += 1;
        let mut positional = wrapper.positional;
        while let Some(a) = argv.get(i) {
            if a == "--" {
                i += 1;
                break;
            }
            if wrapper.name == "env" && (a == "-S" || a == "--split-string") {
                // `env -S "sh x.sh" rest`: the string's words take its place.
                let mut line: Vec<String> = argv[..i].to_vec();
                line.extend(split_words(argv.get(i + 1)?));
                line.extend(argv.get(i + 2..).unwrap_or_default().iter().cloned());
                return after_wrappers(&line).map(|(j, l)| (j, Some(l.unwrap_or(line))));
            }
            if wrapper.name == "env"
                && let Some(s) = a
                    .strip_prefix("--split-string=")
                    .or_else(|| a.strip_prefix("-S"))
            {
                let mut line: Vec<String> = argv[..i].to_vec();
                line.extend(split_words(s));
                line.extend(argv.get(i + 1..).unwrap_or_default().iter().cloned());
                return after_wrappers(&line).map(|(j, l)| (j, Some(l.unwrap_or(line))));
            }
            if a.starts_with('-') && a.len() > 1 {
                let key = a.split_once('=').map_or(a.as_str(), |(k, _)| k);
                if wrapper.with_value.contains(&a.as_str()) {
                    i += 2;
                } else if wrapper.flags.contains(&a.as_str())
                    || (a.contains('=') && wrapper.with_value.contains(&key))
                    // `nice -10`, `stdbuf -oL`.
                    || (wrapper.name == "nice" && a[1..].chars().all(|c| c.is_ascii_digit()))
                    || (wrapper.name == "stdbuf"
                        && wrapper.with_value.iter().any(|o| a.len() > 2 && a.starts_with(o)))
                {
                    i += 1;
                } else {
                    return None;
                }
                continue;
            }
            if wrapper.name == "env" && a == "-" {
                i += 1;
                continue;
            }
            if wrapper.name == "env" && a.contains('=') {
                i += 1;
                continue;
            }
            if positional > 0 {
                positional -= 1;
                i += 1;
                continue;
            }
            break;
        }
    }
    Some((i, None))
}

/// The words of the command line `argv` that are code it runs, by the rule of this module:
/// the program, and where orch knows its grammar its script and the files of its code-loading
/// options and inline code, where it does not every word for which `is_file` holds (and the
/// value of each `--opt=value` that is one). Words are as `argv` spells them (or as an `env -S`
/// string or inline code splits into), [`PACKAGE_JSON`] for the package runners.
pub(crate) fn program_words(argv: &[String], is_file: &dyn Fn(&str) -> bool) -> Vec<String> {
    classify(argv, is_file).0
}

/// Of the [`program_words`] of `argv`, those that are code only because orch does not know the
/// grammar of the program (or of a wrapper's option) they are handed to: it fails closed, they
/// may be data (`tests/cases.txt` of `["ci/run-tests", "tests/cases.txt"]`). Never the program
/// itself (the word after the wrappers orch knows), nor `package.json`. A person's
/// `allow_protected` is how a plan's tasks may change one all the same.
pub(crate) fn unknown_grammar_words(
    argv: &[String],
    is_file: &dyn Fn(&str) -> bool,
) -> Vec<String> {
    classify(argv, is_file).1
}

/// [`program_words`] and [`unknown_grammar_words`] of `argv`.
pub(crate) fn classify(
    argv: &[String],
    is_file: &dyn Fn(&str) -> bool,
) -> (Vec<String>, Vec<String>) {
    classify_at(argv, is_file, 0)
}

/// How deep shells' inline code is read command by command (`sh -c "sh -c '…'"`); deeper,
/// every file it names is code.
const INLINE_DEPTH: usize = 4;

/// Words that open a shell's compound commands, taken off the front of a simple command
/// (`if test -f x`, `! grep`).
pub(super) const SHELL_KEYWORDS: [&str; 12] = [
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}",
];

/// The simple commands of a shell's inline code, each as its words: the code split at `;`,
/// `&`, `|`, newlines, parentheses and backticks (`$(…)`'s command is one of them), the words
/// of each split as [`split_words`] splits them, the compound commands' keywords taken off the
/// front. `None` when orch does not read it command by command (a `for`, a `case`, a
/// function): every file it names is then code.
pub(super) fn shell_commands(code: &str) -> Option<Vec<Vec<String>>> {
    let mut out = Vec::new();
    for seg in code.split([';', '&', '|', '(', ')', '`', '\n']) {
        let words = split_words(seg);
        let start = words
            .iter()
            .position(|w| !SHELL_KEYWORDS.contains(&w.as_str()))
            .unwrap_or(words.len());
        let words = &words[start..];
        match words.first().map(String::as_str) {
            None => continue,
            Some("for" | "case" | "select" | "function" | "in" | "esac") => return None,
            Some(w) if w.ends_with("()") || w == "$" => return None,
            Some(_) => out.push(words.to_vec()),
        }
    }
    Some(out)
}

fn classify_at(
    argv: &[String],
    is_file: &dyn Fn(&str) -> bool,
    depth: usize,
) -> (Vec<String>, Vec<String>) {
    let mut out: Vec<String> = Vec::new();
    let mut guessed: Vec<String> = Vec::new();
    let Some((i, line)) = after_wrappers(argv) else {
        // A wrapper with an option orch does not know: it cannot tell the program.
        wrapper_files(argv, is_file, &mut out, &mut guessed);
        return (out, guessed);
    };
    let argv = line.as_deref().unwrap_or(argv);
    // The wrappers' own words: a wrapper that is a file of the repository (`./env`) is code,
    // and so may be a file their values name (`env BASH_ENV=x.sh bash y.sh` sources x.sh).
    wrapper_files(&argv[..i.min(argv.len())], is_file, &mut out, &mut guessed);
    let Some(program) = argv.get(i) else {
        return (out, guessed);
    };
    if !out.contains(program) {
        out.push(program.clone());
    }
    let name = program_name(program);
    let rest = &argv[i + 1..];
    if READERS.contains(&name.as_str()) {
        return (out, guessed);
    }
    if DATA_TOOLS.contains(&name.as_str()) {
        code_options(rest, is_file, &mut out);
        return (out, guessed);
    }
    let Some((_, inline)) = INTERPRETERS.iter().find(|(n, _)| *n == name) else {
        // A program orch does not know the grammar of: every file it is handed may be code.
        if PACKAGE_RUNNERS.contains(&name.as_str()) {
            out.push(PACKAGE_JSON.to_string());
        }
        let mut files: Vec<String> = Vec::new();
        every_file(rest, is_file, &mut files);
        for f in files {
            if !out.contains(&f) {
                out.push(f.clone());
                guessed.push(f);
            }
        }
        return (out, guessed);
    };
    let is_shell = inline.len() == 1 && inline[0] == "-c";
    // awk's, sed's and make's program given by `-f`: the words after are data (input files,
    // targets), no script.
    let by_file = matches!(name.as_str(), "awk" | "gawk" | "sed" | "make");
    let mut has_program = false;
    let mut k = 0;
    while let Some(w) = rest.get(k) {
        k += 1;
        let inline_code = inline.contains(&w.as_str())
            || (is_shell && w.starts_with('-') && !w.starts_with("--") && w.contains('c'));
        if inline_code {
            // A shell's inline code is read command by command, by the same rules (`sh -c
            // "sh ci/x.sh && test -f out.txt"`: `ci/x.sh` is code, `out.txt` data); every file
            // another interpreter's inline code names is code. What follows it is data.
            let Some(code) = rest.get(k) else {
                return (out, guessed);
            };
            let commands = if is_shell && depth < INLINE_DEPTH {
                shell_commands(code)
            } else {
                None
            };
            match commands {
                Some(commands) => {
                    for mut words in commands {
                        // `NAME=value cmd`: the value may be sourced (`BASH_ENV=x.sh`).
                        let assigned = words
                            .iter()
                            .take_while(|w| {
                                w.split_once('=').is_some_and(|(n, _)| !n.contains('/'))
                            })
                            .count();
                        every_file(&words[..assigned], is_file, &mut out);
                        words.drain(..assigned);
                        let (code_words, maybe) = classify_at(&words, is_file, depth + 1);
                        for w in code_words {
                            if !out.contains(&w) {
                                out.push(w);
                            }
                        }
                        for w in maybe {
                            if !guessed.contains(&w) {
                                guessed.push(w);
                            }
                        }
                    }
                }
                None => every_file(&split_words(code), is_file, &mut out),
            }
            return (out, guessed);
        }
        if CODE_OPTIONS.contains(&w.as_str()) && !(is_shell && w == "-c") {
            if let Some(v) = rest.get(k) {
                every_file(std::slice::from_ref(v), is_file, &mut out);
            }
            has_program |= by_file && matches!(w.as_str(), "-f" | "--file" | "--makefile");
            k += 1;
            continue;
        }
        if OPTIONS_WITH_VALUE.contains(&w.as_str()) {
            k += 1;
            continue;
        }
        if w.starts_with('-') || w.starts_with('+') {
            // `--require=x`, `--rcfile=x`: its value too.
            every_file(std::slice::from_ref(w), &|v| v != w && is_file(v), &mut out);
            continue;
        }
        if has_program {
            break;
        }
        if is_file(w) {
            if !out.contains(w) {
                out.push(w.clone());
            }
            break;
        }
        // `deno run x.ts`, `bun run x` (a file, or a script of package.json): the script
        // follows; after any other word that is no file (`bun test`), what follows is data.
        if w != "run" {
            break;
        }
        if name == "bun" && !out.iter().any(|o| o == PACKAGE_JSON) {
            out.push(PACKAGE_JSON.to_string());
        }
    }
    (out, guessed)
}

/// The files `words` (wrappers and their options, or a whole line orch cannot read) name, each
/// code: into `definite` a word that is itself a wrapper orch knows (`./env`: a file of the
/// repository run as the wrapper), into `definite` and `guessed` every other one.
fn wrapper_files(
    words: &[String],
    is_file: &dyn Fn(&str) -> bool,
    definite: &mut Vec<String>,
    guessed: &mut Vec<String>,
) {
    let mut files: Vec<String> = Vec::new();
    every_file(words, is_file, &mut files);
    for f in files {
        if definite.contains(&f) {
            continue;
        }
        let runs = words.contains(&f) && WRAPPERS.iter().any(|x| x.name == program_name(&f));
        if !runs {
            guessed.push(f.clone());
        }
        definite.push(f);
    }
}

/// The files given to a code-loading option in `words` (`--require x`, `--require=x`).
fn code_options(words: &[String], is_file: &dyn Fn(&str) -> bool, out: &mut Vec<String>) {
    let mut it = words.iter();
    while let Some(w) = it.next() {
        if CODE_OPTIONS.contains(&w.as_str()) {
            if let Some(v) = it.next() {
                every_file(std::slice::from_ref(v), is_file, out);
            }
        } else if let Some((k, v)) = w.split_once('=')
            && CODE_OPTIONS.contains(&k)
            && is_file(v)
            && !out.iter().any(|o| o == v)
        {
            out.push(v.to_string());
        }
    }
}

/// The repository path (`/`-separated, relative to its root) that the word `word` of a command
/// line names, spelled as git spells it: normalised lexically (`hooks//x.sh`, `./hooks/x.sh`,
/// `h/./x`, `docs/../hooks/x.sh` are `hooks/x.sh`); absolute when below one of `roots` (the
/// directory the command runs in, the repository's root). `None` for an option, an empty
/// word, or a path that leaves the repository (it names no file of it).
pub(crate) fn repo_path_of(word: &str, roots: &[&Path]) -> Option<String> {
    if word.starts_with('-') || word.is_empty() {
        return None;
    }
    let p = Path::new(word);
    let rel = if p.is_absolute() {
        let p = normalise(p.components())?;
        roots
            .iter()
            .filter_map(|r| normalise(r.components()))
            .find_map(|r| p.strip_prefix(&r).ok().map(Path::to_path_buf))?
    } else {
        p.to_path_buf()
    };
    let parts = normalise(rel.components())?;
    let s: Vec<&str> = parts
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect::<Option<_>>()?;
    let s = s.join("/");
    (!s.is_empty() && !s.starts_with('/')).then_some(s)
}

/// `components` without `.` and with each `..` taking the name before it away; `None` when a
/// `..` would leave where they start.
fn normalise<'a>(components: impl Iterator<Item = Component<'a>>) -> Option<std::path::PathBuf> {
    let mut out = std::path::PathBuf::new();
    for c in components {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !matches!(out.components().next_back(), Some(Component::Normal(_))) {
                    return None;
                }
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests;
