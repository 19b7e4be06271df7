//! A repository with a submodule that has a nested one, its sources gone and its URLs
//! unreachable (tests/submodules.rs, tests/untrusted/submodules.rs), and the plans run there by
//! `tests/fixtures/agents/submodule_agent.sh`.

use std::path::{Path, PathBuf};

use super::{Repo, agent};

/// A repository `main` whose `libs/sub` is a submodule with a nested submodule `libs/inner`,
/// checked out in the main work tree (`git submodule update --init --recursive`); the sources
/// are gone and the URLs unreachable. `tmp` holds the sources while they exist.
pub struct Fixture {
    pub repo: Repo,
    pub journal: PathBuf,
    /// The commit `main`'s gitlink `libs/sub` records.
    pub sub_commit: String,
    _tmp: tempfile::TempDir,
}

const UNREACHABLE: &str = "https://127.0.0.1:9/none.git";

fn init_source(repo: &Repo, dir: &Path, file: &str) {
    std::fs::create_dir_all(dir).expect("source dir");
    repo.git_at(dir, &["init", "-q", "-b", "main"]);
    std::fs::write(dir.join(file), format!("{file}\n")).expect("write");
    repo.git_at(dir, &["add", "-A"]);
    repo.git_at(dir, &["commit", "-q", "-m", file]);
}

pub fn fixture() -> Fixture {
    let repo = Repo::new();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (inner, sub) = (tmp.path().join("inner"), tmp.path().join("sub"));
    init_source(&repo, &inner, "inner.txt");
    init_source(&repo, &sub, "sub.txt");
    let allow = ["-c", "protocol.file.allow=always"];
    let add = |dir: &Path, url: &Path, path: &str| {
        let args = [
            &allow[..],
            &["submodule", "add", "-q", super::utf8(url), path],
        ]
        .concat();
        repo.git_at(dir, &args);
    };
    add(&sub, &inner, "libs/inner");
    repo.git_at(&sub, &["commit", "-q", "-m", "inner"]);
    add(repo.root(), &sub, "libs/sub");
    repo.git(
        &[
            &allow[..],
            &["submodule", "update", "--init", "--recursive"],
        ]
        .concat(),
    );
    repo.git(&["commit", "-q", "-m", "submodule"]);
    // Any fetch from now on fails: the sources are gone, the URLs lead nowhere.
    drop(std::fs::remove_dir_all(&inner));
    drop(std::fs::remove_dir_all(&sub));
    repo.git(&["config", "submodule.libs/sub.url", UNREACHABLE]);
    let modules = repo.root().join(".git/modules/libs/sub");
    repo.git_at(
        &modules,
        &["config", "submodule.libs/inner.url", UNREACHABLE],
    );
    let sub_commit = repo.git(&["rev-parse", "HEAD:libs/sub"]);
    Fixture {
        journal: repo.root().join(".git/journal"),
        repo,
        sub_commit,
        _tmp: tmp,
    }
}

/// Plans `p` (tasks 1.1, 1.2 after it; with `pool`, `parallel_tasks = 2`: pool worktrees) and,
/// with `two`, `q` (the same, in its plan worktree), run by the agent in `mode` (`extra` its
/// further arguments); `defaults` lines added.
pub fn plans(fx: &Fixture, (mode, extra): (&str, &[&str]), defaults: &str, pool: bool, two: bool) {
    let text = "# P\n\n## Phase 1: Work\n- [ ] 1.1 One\n- [ ] 1.2 Two (depends: 1.1)\n";
    let repo = &fx.repo;
    repo.write("docs/plans/p.md", text);
    repo.write("docs/plans/q.md", text);
    let mut args = vec![super::utf8(&fx.journal), mode];
    args.extend_from_slice(extra);
    // `retries = 0` unless `defaults` says otherwise.
    let retries = if defaults.contains("retries") {
        ""
    } else {
        "retries = 0\n"
    };
    let mut toml = format!(
        "[defaults]\nmax_agents = 2\n{retries}backoff = \"0s\"\n{defaults}\n\n[agents.a]\n\
         command = {}\n\n[[plan]]\nname = \"p\"\nfile = \"docs/plans/p.md\"\nagent = \"a\"\n\
         parallel_tasks = {}\n",
        agent("submodule_agent.sh", &args),
        if pool { 2 } else { 1 }
    );
    if two {
        toml.push_str("\n[[plan]]\nname = \"q\"\nfile = \"docs/plans/q.md\"\nagent = \"a\"\n");
    }
    repo.write("plans.toml", &toml);
    repo.commit_all("plans");
}

pub fn journal(fx: &Fixture) -> Vec<String> {
    std::fs::read_to_string(&fx.journal)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// `git ls-tree REV libs/sub`: mode and commit.
pub fn gitlink(repo: &Repo, rev: &str) -> String {
    let line = repo.git(&["ls-tree", rev, "libs/sub"]);
    let mut f = line.split_whitespace();
    format!(
        "{} {}",
        f.next().unwrap_or_default(),
        f.nth(1).unwrap_or_default()
    )
}
