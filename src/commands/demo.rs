//! `orch demo`: the 60-second tour. A fresh git repository with the three plans of orch's own
//! `plans.toml`, run by `orch up` with a built-in scripted agent (`orch demo-agent`, hidden),
//! then what each plan branch holds, `orch merge` of the three into `main` (shown as a short
//! `git log --graph`), the final status, and how to try `orch pr`.

use std::hash::{BuildHasher as _, Hasher as _};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, anyhow};

use super::output::println_safe;
use crate::agent_env;
use crate::error::{CliError, CliResult, exit};
use crate::manifest::{self, MANIFEST_NAME, Manifest, check_plan_name};
use crate::plan::TaskKind;

/// The demo's manifest: the plans of the top-level `plans.toml`, with the scripted agent.
pub(crate) const DEMO_MANIFEST: &str = include_str!("../../assets/demo/plans.toml");

/// The plan files, the same as in this repository's `docs/plans/`.
pub(crate) const DEMO_PLANS: [(&str, &str); 3] = [
    (
        "docs/plans/greeter.md",
        include_str!("../../docs/plans/greeter.md"),
    ),
    (
        "docs/plans/docs.md",
        include_str!("../../docs/plans/docs.md"),
    ),
    (
        "docs/plans/polish.md",
        include_str!("../../docs/plans/polish.md"),
    ),
];

const README: &str = "# orch demo\n\nA throwaway repository made by `orch demo`. The plans are in \
`docs/plans/`, the manifest is `plans.toml`; the scripted agent appends one line per task to \
`src/<plan>.txt` on the plan's branch.\n";

const AUTHOR: &str = "orch demo";
const EMAIL: &str = "demo@orch.invalid";

/// Runs the demo in `dir` (a new temporary directory when `None`); returns `orch up`'s exit code.
pub(crate) fn run(dir: Option<&Path>, merge: bool) -> CliResult<u8> {
    let dir = prepare_dir(dir)?;
    create_repo(&dir)?;
    println_safe(&format!("demo repository: {}", dir.display()));
    println_safe(
        "three plans (greeter; docs, which waits for greeter's phase 1; polish), run by\n\
         `orch up` with the built-in scripted agent, three agents at once\n",
    );
    let _ = std::io::stdout().flush();

    let exe = std::env::current_exe().context("cannot find the orch executable")?;
    // Ctrl-C reaches `orch up` too (same process group); it stops its agents gracefully. The demo
    // keeps running meanwhile so that it can show what was done.
    let guard = InterruptGuard::install();
    let code = run_orch(&exe, &dir, "up")?;

    println_safe("\n== what each plan branch holds (git log --oneline main..BRANCH)");
    let manifest = manifest::load(&dir.join(MANIFEST_NAME));
    match &manifest {
        Ok(m) => print_branches(m, &dir)?,
        Err(e) => println_safe(&format!("cannot read the demo manifest: {e}")),
    }
    // The merge: only after a run that finished every plan.
    let mut merged = None;
    if code == exit::OK && merge {
        println_safe("\n== orch merge: the plans into main, upstream first");
        let _ = std::io::stdout().flush();
        merged = Some(run_orch(&exe, &dir, "merge")?);
        println_safe("\n== main after the merges (git log --graph --oneline main)");
        print_graph(&dir);
    }
    println_safe("\n== orch status");
    let _ = std::io::stdout().flush();
    let _ = orch_child(&exe, &dir).arg("status").status();
    drop(guard);
    println_safe(&format!(
        "\nthe demo repository stays in {dir}; look around:\n  \
         cd {dir}\n  \
         orch status --plan greeter\n  \
         orch logs greeter\n  \
         git log --all --oneline --graph",
        dir = dir.display()
    ));
    if merged == Some(exit::OK) {
        println_safe(
            "\nto try `orch pr` (one stacked pull request per plan) against a local bare remote, make\n\
             a demo that stops before the merges:\n  \
             orch demo --no-merge /tmp/orch-pr-tour && cd /tmp/orch-pr-tour\n  \
             git init --bare ../orch-pr-remote.git && git remote add origin ../orch-pr-remote.git\n  \
             git push origin main\n  \
             orch pr --dry-run    # the git push and gh pr create commands, upstream plans first\n  \
             orch pr              # pushes the three branches; opening the pull requests needs\n                       \
             # the GitHub CLI (`gh`) and a GitHub remote",
        );
    } else if !merge && code == exit::OK {
        println_safe(
            "\nthe plans are not merged (--no-merge); to try `orch pr` against a local bare remote:\n  \
             git init --bare ../orch-pr-remote.git && git remote add origin ../orch-pr-remote.git\n  \
             git push origin main\n  \
             orch pr --dry-run\n  \
             orch pr",
        );
    }
    if code != exit::OK {
        eprintln!("`orch up` exited with code {code}");
        return Ok(code);
    }
    match merged {
        Some(m) if m != exit::OK => {
            eprintln!("`orch merge` exited with code {m}");
            Ok(m)
        }
        _ => Ok(code),
    }
}

/// `git log --graph --oneline` of main (at most 30 lines), from the git CLI; without one, the
/// first-parent line from libgit2.
fn print_graph(dir: &Path) {
    let out = crate::git::git_command(crate::git::GitTarget::WorkTree(dir)).map(|mut cmd| {
        cmd.args([
            "log",
            "--graph",
            "--oneline",
            "--decorate",
            "--no-color",
            "-n",
            "30",
            "main",
        ])
        .output()
    });
    match out {
        Ok(Ok(o)) if o.status.success() => {
            for line in String::from_utf8_lossy(&o.stdout).lines() {
                println_safe(&format!("  {line}"));
            }
        }
        _ => {
            let Ok(history) = crate::git::History::open(dir) else {
                return;
            };
            for line in history.first_parent_line("main", 30) {
                println_safe(&format!("  * {line}"));
            }
        }
    }
}

/// A new or empty directory; refuses anything else.
fn prepare_dir(dir: Option<&Path>) -> CliResult<PathBuf> {
    let refused = |why: String| {
        CliError::new(exit::REFUSED, anyhow!(why))
            .with_hint("give a new or empty directory, or none for a new temporary one")
    };
    let dir = match dir {
        Some(d) => {
            if d.exists() {
                if !d.is_dir() {
                    return Err(refused(format!(
                        "`{}` exists and is not a directory",
                        d.display()
                    )));
                }
                let mut entries = std::fs::read_dir(d)
                    .with_context(|| format!("cannot read `{}`", d.display()))?;
                if entries.next().is_some() {
                    return Err(refused(format!(
                        "`{}` is not empty; the demo makes a new repository",
                        d.display()
                    )));
                }
            } else {
                std::fs::create_dir_all(d)
                    .with_context(|| format!("cannot create `{}`", d.display()))?;
            }
            d.to_path_buf()
        }
        None => new_temp_dir()?,
    };
    Ok(dir.canonicalize().unwrap_or(dir))
}

/// `$TMPDIR/orch-demo-<time>-<pid>[-N]`, created (and kept: the user looks at it afterwards).
fn new_temp_dir() -> CliResult<PathBuf> {
    let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S");
    let base = std::env::temp_dir().join(format!("orch-demo-{stamp}-{}", std::process::id()));
    for n in 0..100 {
        let dir = if n == 0 {
            base.clone()
        } else {
            PathBuf::from(format!("{}-{n}", base.display()))
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => Err(e).with_context(|| format!("cannot create `{}`", dir.display()))?,
        }
    }
    Err(anyhow!("cannot find a free name for `{}`", base.display()).into())
}

/// `git init` on branch `main`, a README commit, then the plans and manifest in a second commit.
fn create_repo(dir: &Path) -> CliResult<()> {
    let git = |e: String| CliError::from(anyhow!(e));
    // Commits that `orch up` makes in the demo work without any user git configuration.
    crate::git::init_repo(dir, "main", AUTHOR, EMAIL).map_err(git)?;
    let write = |rel: &str, text: &str| -> CliResult<()> {
        let p = dir.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        std::fs::write(&p, text).with_context(|| format!("cannot write `{}`", p.display()))?;
        Ok(())
    };
    write("README.md", README)?;
    write(".gitignore", "/.orch/\n")?;
    let commit = |files: &[&str], message: &str| {
        crate::git::commit_files(dir, files, message, AUTHOR, EMAIL).map_err(git)
    };
    commit(&["README.md", ".gitignore"], "Start the demo repository")?;
    let mut files = vec![MANIFEST_NAME];
    write(MANIFEST_NAME, DEMO_MANIFEST)?;
    for (rel, text) in DEMO_PLANS {
        write(rel, text)?;
        files.push(rel);
    }
    commit(&files, "Add three plans and their manifest")?;
    Ok(())
}

/// Per plan: the commits on its branch that the target lacks, and its `src/<plan>.txt`.
fn print_branches(m: &Manifest, dir: &Path) -> CliResult<()> {
    let history = crate::git::History::open(dir).map_err(|e| anyhow!(e))?;
    let target = history.branch_tip(&m.defaults.target);
    for p in &m.plans {
        let Some(tip) = history.branch_tip(&p.branch) else {
            println_safe(&format!("{}: no branch (the plan did not start)", p.branch));
            continue;
        };
        let commits = history.ahead(tip, target).unwrap_or_default();
        println_safe(&format!(
            "{} ({} commit{} ahead of {}):",
            p.branch,
            commits.len(),
            if commits.len() == 1 { "" } else { "s" },
            m.defaults.target
        ));
        for line in &commits {
            println_safe(&format!("  {line}"));
        }
        let rel = format!("src/{}.txt", p.name);
        if let Some(text) = history.file_at(tip, &rel) {
            println_safe(&format!("  {rel}:"));
            for line in text.lines() {
                println_safe(&format!("    {line}"));
            }
        }
    }
    Ok(())
}

/// `orch` run in the demo repository, with nothing inherited that points elsewhere.
fn orch_child(exe: &Path, dir: &Path) -> Command {
    let mut c = crate::agent_env::command(exe);
    crate::process::place(&mut c, dir);
    // Nothing an outer `orch up` (or git) may have set: the demo's own run must not inherit it.
    for v in agent_env::fresh_run_removals() {
        c.env_remove(v);
    }
    c
}

/// `orch COMMAND` run in the demo repository; its exit code.
fn run_orch(exe: &Path, dir: &Path, command: &str) -> CliResult<u8> {
    let status = orch_child(exe, dir)
        .arg(command)
        .status()
        .with_context(|| format!("cannot run `{} {command}`", exe.display()))?;
    Ok(status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(exit::FAILURE))
}

/// While alive, SIGINT does not kill this process (the child still gets it and handles it).
/// A caught signal is reset to its default in a child at `exec`, so `orch up` is unaffected.
struct InterruptGuard {
    _runtime: Option<tokio::runtime::Runtime>,
    _signal: Option<tokio::signal::unix::Signal>,
}

impl InterruptGuard {
    fn install() -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok();
        let signal = runtime.as_ref().and_then(|rt| {
            let _entered = rt.enter();
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok()
        });
        Self {
            _runtime: runtime,
            _signal: signal,
        }
    }
}

/// `orch demo-agent`: the scripted agent of the demo. In its worktree it appends
/// `<task id>: <description>` to `src/<plan>.txt`; a verification step checks that file is not
/// empty. It exits 0 on success, which `orch up` counts as the task done.
pub(crate) fn run_agent() -> CliResult<u8> {
    let var = |k: &str| std::env::var(k).ok().filter(|s| !s.is_empty());
    let missing = |k: &str| {
        CliError::invalid(anyhow!(
            "`orch demo-agent` is the scripted agent of `orch demo`, and `{k}` is not set"
        ))
        .with_hint("it runs under `orch up`, which sets ORCH_PLAN, ORCH_TASK and ORCH_WORKTREE")
    };
    let plan = var(agent_env::ORCH_PLAN).ok_or_else(|| missing(agent_env::ORCH_PLAN))?;
    check_plan_name(&plan).map_err(|why| CliError::invalid(anyhow!(why)))?;
    let task = var(agent_env::ORCH_TASK).ok_or_else(|| missing(agent_env::ORCH_TASK))?;
    if !task.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
        return Err(CliError::invalid(anyhow!("`{task}` is not a task id")));
    }
    let dir = match std::env::var_os(agent_env::ORCH_WORKTREE).filter(|s| !s.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let (verify, description) = lookup(&dir, &plan, &task);
    // Look busy for a moment, like a real agent (behaviour, not synchronisation).
    std::thread::sleep(Duration::from_millis(100 + random() % 301));

    let rel = format!("src/{plan}.txt");
    let file = dir.join(&rel);
    if verify {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
        if lines == 0 {
            return Err(CliError::new(
                exit::FAILURE,
                anyhow!("demo-agent: {plan} {task}: `{rel}` is missing or empty"),
            ));
        }
        println_safe(&format!(
            "demo-agent: {plan} {task}: checked {rel}: {lines} line{} of work",
            if lines == 1 { "" } else { "s" }
        ));
    } else {
        let line = format!("{task}: {description}");
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create `{}`", parent.display()))?;
        }
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&file)
            .and_then(|mut f| writeln!(f, "{line}"))
            .with_context(|| format!("cannot write `{}`", file.display()))?;
        println_safe(&format!(
            "demo-agent: {plan} {task}: appended \"{line}\" to {rel}"
        ));
    }
    Ok(exit::OK)
}

/// Whether the task is a verification step, and its description, from the plan file; the id
/// alone when the plan cannot be read.
fn lookup(dir: &Path, plan: &str, task: &str) -> (bool, String) {
    let fallback = (task.starts_with('V'), format!("task {task}"));
    let path = std::env::var_os(agent_env::ORCH_MANIFEST)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| manifest::find_manifest(dir));
    let Some(m) = path.and_then(|p| manifest::load(&p).ok()) else {
        return fallback;
    };
    let Some(entry) = m.plan(plan) else {
        return fallback;
    };
    let Ok(parsed) = crate::plan::parse_file(&entry.abs_file) else {
        return fallback;
    };
    match parsed.task(task) {
        Some(t) => (t.kind == TaskKind::Verify, t.description.clone()),
        None => fallback,
    }
}

/// A random number from the standard library's hasher seeds (no dependency needed).
fn random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The demo runs the project's own plans: same names, files, priorities and dependencies.
    #[test]
    fn the_demo_manifest_mirrors_the_top_level_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (rel, text) in DEMO_PLANS {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, text).expect("write");
        }
        let top = include_str!("../../plans.toml");
        std::fs::write(dir.path().join("top.toml"), top).expect("write");
        std::fs::write(dir.path().join("demo.toml"), DEMO_MANIFEST).expect("write");
        let top = manifest::load(&dir.path().join("top.toml")).expect("top-level manifest");
        let demo = manifest::load(&dir.path().join("demo.toml")).expect("demo manifest");
        let shape = |m: &Manifest| -> Vec<(String, PathBuf, i64, Vec<String>)> {
            m.plans
                .iter()
                .map(|p| {
                    let deps = p.depends_on.iter().map(|d| d.raw.clone()).collect();
                    (p.name.clone(), p.file.clone(), p.priority, deps)
                })
                .collect()
        };
        assert_eq!(shape(&top), shape(&demo));
        assert_eq!(demo.defaults.agent, "demo");
        assert_eq!(demo.agents["demo"].command, ["{{ orch }}", "demo-agent"]);
        assert_eq!(demo.defaults.max_agents, 3);
        assert_eq!(demo.defaults.backoff, Duration::ZERO);
    }

    #[test]
    fn random_varies() {
        let draws: std::collections::HashSet<u64> = (0..8).map(|_| random() % 301).collect();
        assert!(draws.len() > 1, "{draws:?}");
    }
}
