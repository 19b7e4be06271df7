//! Dependencies point down only: every `crate::<module>` a file of `src/` names (tests aside)
//! is a module below its own in [`LAYERS`], the order docs/ARCHITECTURE.md draws.

use std::path::{Path, PathBuf};

/// orch's top-level modules, top to bottom: each may use only the modules after it. The same
/// order as the diagram under "The layers" in docs/ARCHITECTURE.md (checked below).
const LAYERS: &[&str] = &[
    "cli",
    "commands",
    "top",
    "forecast",
    "control",
    "review",
    "supervisor",
    "merge",
    "executor",
    "simulate",
    "notify",
    "telemetry",
    "workspace",
    "error",
    "watch",
    "preflight",
    "prompt",
    "git",
    "ports",
    "client_state",
    "process",
    "status",
    "graph",
    "manifest",
    "plan",
    "agent_output",
    "agent_env",
    "sandbox",
    "state_layout",
    "color",
    "diagnostic",
    "duration",
    "links",
    "untrusted",
    "exit",
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level modules of `src/` (a `name.rs` or a `name/` directory), `lib.rs`, `main.rs` and
/// `bin/` (the other executables' `main`s, which call the library as `main.rs` does) aside.
fn modules() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(src())
        .expect("src/")
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let name = name
                .strip_suffix(".rs")
                .map_or(name.clone(), str::to_string);
            (name != "lib" && name != "main" && name != "bin").then_some(name)
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Whether `path` holds only tests (`tests.rs`, `*_tests.rs`, `test_support.rs`, a `tests/`
/// directory).
fn test_only(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name == "tests.rs"
        || name.ends_with("_tests.rs")
        || name == "test_support.rs"
        || path.components().any(|c| c.as_os_str() == "tests")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The lines of `text` that are code: comments cut off, and each item under `#[cfg(test)]`
/// (a `mod tests { … }`, a `mod x;`, a `use`) left out.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let code = line.split("//").next().unwrap_or("");
        if code.trim() == "#[cfg(test)]" {
            // Skip the next item: to its `;`, or to the `}` closing its first `{`.
            let mut depth = 0i32;
            for (_, l) in lines.by_ref() {
                let l = l.split("//").next().unwrap_or("");
                depth += l.matches('{').count() as i32 - l.matches('}').count() as i32;
                let opened = l.contains('{') || depth > 0;
                if (!opened && l.trim_end().ends_with(';')) || (opened && depth <= 0) {
                    break;
                }
            }
            continue;
        }
        out.push((i + 1, code.to_string()));
    }
    out
}

/// The top-level modules named by `crate::` paths in `code`: `crate::a::b`, `crate::{a, b::c}`
/// (a group may span lines: `code` is the whole file's code).
fn named_modules(code: &str) -> Vec<(usize, String)> {
    names_after(code, "crate::")
}

/// The first names of the paths that begin with `prefix` in `code` (see [`named_modules`]).
fn names_after(code: &str, prefix: &str) -> Vec<(usize, String)> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find(prefix) {
        let start = from + at;
        from = start + prefix.len();
        // `crate::` itself, not the end of `orch_crate::` or the like.
        if start > 0 && (bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_') {
            continue;
        }
        let line = code[..start].matches('\n').count() + 1;
        if bytes.get(from) == Some(&b'{') {
            // Each top-level name of the group: after `{` or a `,` at depth 1.
            let mut depth = 0;
            let mut expect = true;
            for (k, c) in code[from..].char_indices() {
                match c {
                    '{' => {
                        depth += 1;
                        expect = depth == 1;
                    }
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => expect = true,
                    c if expect && (c.is_alphabetic() || c == '_') => {
                        let rest = &code[from + k..];
                        let end = rest
                            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                            .unwrap_or(rest.len());
                        out.push((line, rest[..end].to_string()));
                        expect = false;
                    }
                    _ => {}
                }
            }
        } else {
            let rest = &code[from..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out.push((line, rest[..end].to_string()));
        }
    }
    out
}

#[test]
fn every_module_of_src_is_placed_in_the_layers() {
    let found = modules();
    let missing: Vec<&String> = found
        .iter()
        .filter(|m| !LAYERS.contains(&m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "modules of src/ not in LAYERS (tests/layers.rs) nor in docs/ARCHITECTURE.md: {missing:?}"
    );
    let gone: Vec<&&str> = LAYERS
        .iter()
        .filter(|m| !found.iter().any(|f| f == *m))
        .collect();
    assert!(
        gone.is_empty(),
        "LAYERS lists modules src/ no longer has: {gone:?}; remove them here and from the diagram in docs/ARCHITECTURE.md"
    );
}

#[test]
fn the_architecture_page_draws_the_same_layers() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ARCHITECTURE.md"))
            .expect("docs/ARCHITECTURE.md");
    let section = doc
        .split("## The layers")
        .nth(1)
        .expect("a section `## The layers`");
    let block = section
        .split("```")
        .nth(1)
        .expect("a code block in `## The layers`");
    let drawn: Vec<&str> = block
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .collect();
    assert_eq!(
        drawn, LAYERS,
        "the diagram of docs/ARCHITECTURE.md and LAYERS of tests/layers.rs differ"
    );
}

#[test]
fn dependencies_point_down_only() {
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut upward = Vec::new();
    for path in files.iter().filter(|p| !test_only(p)) {
        let rel = path.strip_prefix(src()).expect("under src/");
        let own = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .map(|s| s.strip_suffix(".rs").unwrap_or(s).to_string())
            .expect("a module");
        let Some(own_rank) = rank(&own) else {
            continue; // lib.rs, main.rs
        };
        let text = std::fs::read_to_string(path).expect("read");
        let lines = code_lines(&text);
        let code: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
        for (k, name) in named_modules(&code) {
            if let Some(r) = rank(&name)
                && r < own_rank
            {
                upward.push(format!(
                    "src/{}:{}: `{own}` uses `crate::{name}`, a layer above it",
                    rel.display(),
                    lines[k - 1].0
                ));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "dependencies must point down only (LAYERS in tests/layers.rs):\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_scanner_sees_paths_groups_and_skips_tests_and_comments() {
    let text = "use crate::a::x;\nuse crate::{\n    b::{c, d},\n    e,\n};\n// crate::f\nlet v = crate::g::h(); // crate::i\n#[cfg(test)]\nmod tests {\n    use crate::j;\n}\n#[cfg(test)]\nmod more;\nuse crate::k;\n";
    let lines = code_lines(text);
    let code: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    let names: Vec<(usize, String)> = named_modules(&code)
        .into_iter()
        .map(|(k, n)| (lines[k - 1].0, n))
        .collect();
    let expect: Vec<(usize, String)> = [(1, "a"), (2, "b"), (2, "e"), (7, "g"), (14, "k")]
        .iter()
        .map(|(l, n)| (*l, n.to_string()))
        .collect();
    assert_eq!(names, expect);
}

/// Whether the line `code` names the crate `git2` as a word (`git2::`, `use git2`), not as the
/// end of another word (`libgit2`), or takes libgit2's objects from `src/git/` (`git::open`,
/// which hands out a `git2::Repository`, the in-memory merge's index).
fn names_git2(code: &str) -> bool {
    if ["git::open(", "git::merge_commits", "git::TreeMerge"]
        .iter()
        .any(|h| code.contains(h))
    {
        return true;
    }
    let bytes = code.as_bytes();
    code.match_indices("git2").any(|(at, _)| {
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(at + 4).copied();
        let word = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
        !word(before) && !word(after)
    })
}

/// libgit2 is used inside `src/git/` only (one git boundary): a file of `src/` outside
/// it that names `git2` in its code (tests, comments and `#[cfg(test)]` items aside) fails here.
/// Spawning git is checked by `tests/conventions.rs` (`git_is_spawned_only_by_the_git_runner`:
/// `src/git/cli.rs` only).
#[test]
fn git2_is_named_only_inside_src_git() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    let mut offenders = Vec::new();
    for path in files.iter().filter(|p| !test_only(p)) {
        let rel = path.strip_prefix(src()).expect("under src/");
        if rel.starts_with("git") && rel.components().count() > 1 {
            continue;
        }
        let rel_s = rel.to_string_lossy().replace('\\', "/");
        let text = std::fs::read_to_string(path).expect("read");
        offenders.extend(
            code_lines(&text)
                .into_iter()
                .filter(|(_, l)| names_git2(l))
                .map(|(n, l)| format!("src/{rel_s}:{n}: {}", l.trim())),
        );
    }
    assert!(
        offenders.is_empty(),
        "`git2` named outside src/git/ (put the libgit2 work in a function of src/git/):\n{}",
        offenders.join("\n")
    );
}

#[test]
fn the_git2_scanner_sees_words_only() {
    assert!(names_git2("use git2::Oid;"));
    assert!(names_git2("let r = git2::Repository::open(p);"));
    assert!(!names_git2("\"libgit2's merge\""));
    assert!(!names_git2("let git2x = 1;"));
    assert!(names_git2("let repo = git::open(root)?;"));
    assert!(!names_git2("let repo = MergeRepo::open(root)?;"));
}

/// The modules of `src/git/` (a `name.rs` or a `name/` directory) and, for each, the modules of
/// `src/git/` its code names: by path (`super::cli::run`, `crate::git::locate`) or by an item
/// `git/mod.rs` re-exports (`super::GitError` is `error`'s).
fn git_module_deps() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    folder_deps("git", &[" git::", "(git::"])
}

type Deps = std::collections::BTreeMap<String, std::collections::BTreeSet<String>>;

/// The rooms of `src/<folder>/` (each file or subfolder directly in it; a subfolder's files are
/// its room's) and which others each names: through `super::` (`super::super::` from a
/// subfolder), `crate::<folder>::`, `extra` prefixes, or a name the folder's `mod.rs`
/// re-exports.
fn folder_deps(folder: &str, extra: &[&str]) -> Deps {
    let git = src().join(folder);
    let modules: Vec<String> = std::fs::read_dir(&git)
        .expect("src/<folder>/")
        .flatten()
        .map(|e| {
            e.file_name()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_string()
        })
        .filter(|m| m != "mod" && m != "tests")
        .collect();
    // What the folder's `mod.rs` re-exports: each name (or its alias) to its module.
    let facade_code: String =
        code_lines(&std::fs::read_to_string(git.join("mod.rs")).expect("read"))
            .into_iter()
            .map(|(_, l)| l + "\n")
            .collect();
    let mut facade = std::collections::HashMap::new();
    for stmt in facade_code.split(';') {
        let Some(at) = stmt.find("use ") else {
            continue;
        };
        let used = stmt[at + 4..].trim();
        let used = used.strip_prefix("self::").unwrap_or(used);
        let Some((module, items)) = used.split_once("::") else {
            continue;
        };
        for item in items.trim_matches(|c| "{} \n".contains(c)).split(',') {
            if let Some(name) = item
                .split_whitespace()
                .last()
                .map(|n| n.rsplit("::").next().unwrap_or(n))
            {
                facade.insert(name.to_string(), module.to_string());
            }
        }
    }
    let mut files = Vec::new();
    rust_files(&git, &mut files);
    let mut deps: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> = modules
        .iter()
        .map(|m| (m.clone(), Default::default()))
        .collect();
    for path in files.iter().filter(|p| !test_only(p)) {
        let rel = path.strip_prefix(&git).expect("under src/<folder>/");
        let own = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .unwrap_or("");
        let own = own.trim_end_matches(".rs").to_string();
        if own == "mod" {
            continue;
        }
        let nested = rel.components().count() > 1;
        let code: String = code_lines(&std::fs::read_to_string(path).expect("read"))
            .into_iter()
            .map(|(_, l)| l + "\n")
            .collect();
        let up = if nested { "super::super::" } else { "super::" };
        let own_path = format!("crate::{folder}::");
        for (_, name) in [up, own_path.as_str()]
            .iter()
            .chain(extra)
            .flat_map(|p| names_after(&code, p))
        {
            let target = if modules.contains(&name) {
                Some(&name)
            } else {
                facade.get(&name)
            };
            if let Some(t) = target.filter(|t| **t != own) {
                deps.entry(own.clone()).or_default().insert(t.clone());
            }
        }
    }
    deps
}

/// No import circle inside `src/git/`: its modules depend on each other one way, the
/// git runner (`cli`) on `locate`, `error` and `programs` (what git may execute) only, `locate`
/// on `error` and `retry` (a read again when a file was replaced under it) only, `programs` and
/// `retry` on none.
#[test]
fn git_modules_depend_on_each_other_one_way() {
    let deps = git_module_deps();
    let of = |m: &str| deps.get(m).cloned().unwrap_or_default();
    assert_eq!(
        of("error"),
        Default::default(),
        "git/error.rs names other modules of git/"
    );
    assert_eq!(
        of("locate"),
        ["error".to_string(), "retry".to_string()].into(),
        "git/locate.rs"
    );
    assert_eq!(of("retry"), Default::default(), "git/retry.rs");
    assert_eq!(
        of("cli"),
        [
            "error".to_string(),
            "locate".to_string(),
            "programs".to_string()
        ]
        .into(),
        "git/cli.rs"
    );
    assert_eq!(of("programs"), Default::default(), "git/programs.rs");
    if let Some(circle) = first_circle(&deps) {
        panic!("an import circle inside src/git/: {}", circle.join(" -> "));
    }
}

/// A circle of `deps`, if there is one: a depth-first walk from each room, meeting a room on the
/// current path.
fn first_circle(deps: &Deps) -> Option<Vec<String>> {
    fn walk(
        m: &str,
        deps: &Deps,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(k) = path.iter().position(|p| p == m) {
            let mut circle = path[k..].to_vec();
            circle.push(m.to_string());
            return Some(circle);
        }
        if !done.insert(m.to_string()) {
            return None;
        }
        path.push(m.to_string());
        for d in deps.get(m).into_iter().flatten() {
            if let Some(c) = walk(d, deps, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = Default::default();
    deps.keys()
        .find_map(|m| walk(m, deps, &mut Vec::new(), &mut done))
}

/// The supervisor's rooms (a file of `src/supervisor/`, or a subfolder with its files) depend on
/// each other one way: no import circle but inside one room. Its pure core (`core/`: the
/// decisions, the run state, the events, best of N's rounds; state + input → actions, no I/O)
/// names none of the other rooms, the effects that do I/O; the workers name the loop's state
/// (`runner.rs`) and messages (`msg.rs`), never the loop (`effects.rs`).
#[test]
fn the_supervisors_rooms_have_no_circle_and_its_core_reaches_no_effect() {
    let deps = folder_deps("supervisor", &[]);
    assert!(deps.len() > 20, "the supervisor's rooms: {:?}", deps.keys());
    if let Some(circle) = first_circle(&deps) {
        panic!(
            "an import circle across rooms of src/supervisor/: {} (every room's: {deps:?})",
            circle.join(" -> ")
        );
    }
    let reached: Vec<&String> = deps.get("core").into_iter().flatten().collect();
    assert!(
        reached.is_empty(),
        "the supervisor's core names effects: {reached:?}"
    );
    // The messages of the workers lie below them and name only the core.
    let msg: Vec<&String> = deps.get("msg").into_iter().flatten().collect();
    assert_eq!(msg, ["core"], "supervisor/msg.rs");
    let loop_users: Vec<&String> = deps
        .iter()
        .filter(|(room, d)| room.as_str() != "effects" && d.contains("effects"))
        .map(|(room, _)| room)
        .collect();
    assert!(
        loop_users.is_empty(),
        "rooms that name the loop (effects.rs) instead of runner.rs / msg.rs: {loop_users:?}"
    );
}

#[test]
fn the_circle_finder_finds_circles_and_passes_a_one_way_house() {
    let deps = |pairs: &[(&str, &str)]| {
        let mut d = Deps::new();
        for (a, b) in pairs {
            d.entry(a.to_string()).or_default().insert(b.to_string());
        }
        d
    };
    assert_eq!(
        first_circle(&deps(&[("a", "b"), ("b", "c"), ("a", "c")])),
        None
    );
    let c = first_circle(&deps(&[("a", "b"), ("b", "c"), ("c", "a")])).expect("a circle");
    assert_eq!(c.first(), c.last());
    assert_eq!(c.len(), 4);
}

/// What a file's `code` names of the executors: `ExecutorKind` (which executor a plan names) as a
/// word, and each path into an executor's own room (`executor::ssh::…`; `rooms`: the folders of
/// `src/executor/`), with their lines.
fn executor_names(code: &str, rooms: &[String]) -> Vec<(usize, String)> {
    let bytes = code.as_bytes();
    let word = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    let mut out: Vec<(usize, String)> = code
        .match_indices("ExecutorKind")
        .filter(|(at, s)| {
            !word(at.checked_sub(1).and_then(|i| bytes.get(i))) && !word(bytes.get(at + s.len()))
        })
        .map(|(at, s)| (code[..at].matches('\n').count() + 1, s.to_string()))
        .collect();
    out.extend(
        names_after(code, "executor::")
            .into_iter()
            .filter(|(_, name)| rooms.contains(name))
            .map(|(line, name)| (line, format!("executor::{name}"))),
    );
    out.sort();
    out
}

/// One executor seam: everything that differs by where an attempt runs (here, a Slurm job, an
/// ssh host) is asked of the plan's `crate::executor::Executor`, made once per plan where the
/// run is checked (`executor::of_plan`, the one place that reads the plan's `executor`). A file
/// of `src/supervisor/` whose code (tests aside) names `ExecutorKind` or an executor's own room
/// (`executor::ssh::…`, `executor::slurm::…`, `executor::local::…`), or a second place that
/// makes a plan's executor, fails here.
#[test]
fn the_supervisor_names_no_executor_kind() {
    let executor = src().join("executor");
    let mut rooms: Vec<String> = std::fs::read_dir(&executor)
        .expect("src/executor/")
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    rooms.sort();
    assert!(
        ["local", "slurm", "ssh"]
            .iter()
            .all(|k| rooms.iter().any(|r| r == k)),
        "the executors' rooms of src/executor/: {rooms:?}"
    );
    let supervisor = src().join("supervisor");
    let mut files = Vec::new();
    rust_files(&supervisor, &mut files);
    files.sort();
    let mut named = Vec::new();
    let mut made = Vec::new();
    for path in files.iter().filter(|p| !test_only(p)) {
        let rel = path.strip_prefix(src()).expect("under src/");
        let lines = code_lines(&std::fs::read_to_string(path).expect("read"));
        let code: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
        for (k, name) in executor_names(&code, &rooms) {
            named.push(format!("src/{}:{}: {name}", rel.display(), lines[k - 1].0));
        }
        for (at, _) in code.match_indices("executor::of_plan(") {
            let k = code[..at].matches('\n').count() + 1;
            made.push(format!("src/{}:{}", rel.display(), lines[k - 1].0));
        }
    }
    assert!(
        named.is_empty(),
        "the supervisor names an executor kind (ask the plan's `crate::executor::Executor`, add to it in the executor's room):\n{}",
        named.join("\n")
    );
    assert_eq!(
        made.len(),
        1,
        "a plan's executor is made in one place of the supervisor (`executor::of_plan`): {made:?}"
    );
}

#[test]
fn the_executor_scanner_sees_kinds_and_rooms_only() {
    let rooms = ["local".to_string(), "slurm".to_string(), "ssh".to_string()];
    let code = "use crate::executor::{Executor, ssh::Conn};\nif e == ExecutorKind::Ssh {}\nlet k = crate::executor::slurm::Slurm::new();\nlet n = MyExecutorKind;\nlet j = crate::executor::JobState::Queued;\n";
    assert_eq!(
        executor_names(code, &rooms),
        vec![
            (1, "executor::ssh".to_string()),
            (2, "ExecutorKind".to_string()),
            (3, "executor::slurm".to_string()),
        ]
    );
}
