//! A real git repository in a temp dir, with its own HOME so no user config leaks in, and the
//! real `orch` binary run in it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::TIMEOUT;
use super::events::events;
use super::process::{code_out_err, wait_within};

/// How a [`Repo`] is made: [`Repo::builder`], then [`RepoBuilder::build`].
#[derive(Clone, Debug)]
pub struct RepoBuilder {
    empty: bool,
    shared_files: bool,
    canonical: bool,
    keep: bool,
    identity_in_config: bool,
    fixed_dates: bool,
    timeout: Duration,
    parent: Option<PathBuf>,
}

impl RepoBuilder {
    /// Makes the repository (not its HOME) in `dir` rather than the system's temp dir.
    pub fn under(mut self, dir: &Path) -> Self {
        self.parent = Some(dir.to_path_buf());
        self
    }

    /// Only `git init` on `main`: no first commit, no file.
    pub fn empty(mut self) -> Self {
        self.empty = true;
        self
    }

    /// Also `shared.txt` and a `.gitignore` ignoring `*.log` in the first commit.
    pub fn shared_files(mut self) -> Self {
        self.shared_files = true;
        self
    }

    /// [`Repo::root`] with symlinks resolved (orch reports canonical paths).
    pub fn canonical(mut self) -> Self {
        self.canonical = true;
        self
    }

    /// Keeps the repository and its HOME after the test (`keep` true), and says where.
    pub fn keep(mut self, keep: bool) -> Self {
        self.keep = keep;
        self
    }

    /// The committer identity in the repository's own config rather than in git's environment
    /// (for commands the tests run that commit with the git CLI outside the test's env), and
    /// fixed author and committer dates for the test's own git commands.
    pub fn identity_in_config(mut self) -> Self {
        self.identity_in_config = true;
        self.fixed_dates = true;
        self
    }

    /// The deadline of each git and orch process the repository runs.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// `git init` on `main`, then (unless [`RepoBuilder::empty`]) a first commit `initial` with
    /// `README.md` (and the shared files when asked).
    pub fn build(self) -> Repo {
        let dir = || {
            tempfile::Builder::new()
                .disable_cleanup(self.keep)
                .tempdir()
                .expect("tempdir")
        };
        let dir_ = match &self.parent {
            Some(parent) => tempfile::Builder::new()
                .disable_cleanup(self.keep)
                .tempdir_in(parent)
                .expect("tempdir"),
            None => dir(),
        };
        let root = if self.canonical {
            dir_.path().canonicalize().expect("canonical root")
        } else {
            dir_.path().to_path_buf()
        };
        let r = Repo {
            dir: dir_,
            home: dir(),
            root,
            timeout: self.timeout,
            identity_in_config: self.identity_in_config,
            fixed_dates: self.fixed_dates,
        };
        if self.keep {
            eprintln!("repository kept: {}", r.root().display());
        }
        r.git(&["init", "-q", "-b", "main"]);
        if self.identity_in_config {
            r.git(&["config", "user.name", "Test"]);
            r.git(&["config", "user.email", "test@example.com"]);
        }
        if self.empty {
            return r;
        }
        r.write("README.md", "# demo\n");
        if self.shared_files {
            r.write("shared.txt", "original\n");
            r.write(".gitignore", "*.log\n");
        }
        r.commit_all("initial");
        r
    }
}

pub struct Repo {
    dir: tempfile::TempDir,
    home: tempfile::TempDir,
    root: PathBuf,
    timeout: Duration,
    identity_in_config: bool,
    fixed_dates: bool,
}

impl Default for Repo {
    fn default() -> Self {
        Self::new()
    }
}

impl Repo {
    /// `main` with `README.md`, `shared.txt` and a `.gitignore` ignoring `*.log`.
    pub fn new() -> Self {
        Self::builder().shared_files().build()
    }

    /// `main` with `README.md` only.
    pub fn bare_minimum() -> Self {
        Self::builder().build()
    }

    /// A repository made to measure; [`Repo::bare_minimum`] unless told otherwise.
    pub fn builder() -> RepoBuilder {
        RepoBuilder {
            empty: false,
            shared_files: false,
            canonical: false,
            keep: false,
            identity_in_config: false,
            fixed_dates: false,
            timeout: TIMEOUT,
            parent: None,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The temp dir itself, as made (not canonicalized).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The repository's HOME.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The deadline of each process the repository runs.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A file outside the repository (journals, pid files).
    pub fn outside(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.root().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    /// The bytes of a file of the work tree (none when it does not exist).
    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.root().join(rel)).unwrap_or_default()
    }

    /// Runs git in `dir` (with the repository's deadline), whatever its outcome.
    pub fn git_in(&self, dir: &Path, args: &[&str]) -> Output {
        let mut c = Command::new("git");
        c.current_dir(dir)
            .args(args)
            .env("HOME", self.home.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if !self.identity_in_config {
            c.env("GIT_AUTHOR_NAME", "Test")
                .env("GIT_AUTHOR_EMAIL", "test@example.com")
                .env("GIT_COMMITTER_NAME", "Test")
                .env("GIT_COMMITTER_EMAIL", "test@example.com");
        }
        if self.fixed_dates {
            c.env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
                .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z");
        }
        wait_within(
            c.spawn().expect("git"),
            self.timeout,
            &format!("git {args:?}"),
        )
    }

    /// Runs git in `dir`; fails the test when it fails. Its stdout, trimmed.
    pub fn git_at(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.git_in(dir, args);
        assert!(
            out.status.success(),
            "git {args:?} in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Runs git at the root, whatever its outcome.
    pub fn git_out(&self, args: &[&str]) -> Output {
        self.git_in(self.root(), args)
    }

    /// Runs git at the root; fails the test when it fails. Its stdout, trimmed.
    pub fn git(&self, args: &[&str]) -> String {
        let out = self.git_out(args);
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn git_ok(&self, args: &[&str]) -> bool {
        self.git_out(args).status.success()
    }

    /// Commits plan `p` (`text`, at `docs/plans/p.md`) and a manifest running it with
    /// `command` (`extra_agent` and `defaults` lines as [`Repo::manifest`] takes them).
    pub fn commit_plan_p(&self, text: &str, command: &str, extra_agent: &str, defaults: &str) {
        self.write("docs/plans/p.md", text);
        self.manifest(command, extra_agent, defaults, &[("p", "")]);
        self.commit_all("plans");
    }

    pub fn commit_all(&self, msg: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", msg]);
    }

    pub fn rev(&self, rev: &str) -> String {
        self.git(&["rev-parse", rev])
    }

    /// `orch ARGS` at the root with a clean environment: only PATH, the repository's HOME and
    /// no system git config, `PWD` the root as a shell sets it; stdin closed, stdout and stderr
    /// piped. (A test that runs it elsewhere sets `PWD` with the directory: [`super::in_dir`].)
    pub fn orch(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_orch"));
        c.current_dir(self.root())
            .args(args)
            .env_clear()
            .env("PWD", self.root())
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            // The tests' temporary directory (CI's is a tmpfs) for orch and what it runs.
            .envs(std::env::var_os("TMPDIR").map(|t| ("TMPDIR", t)))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            // Agents here write journals outside their worktrees: unconfined unless a test
            // confines them (tests/sandbox.rs).
            .env("ORCH_SANDBOX", "off")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Runs a command to the end (with the repository's deadline): exit code (killed by a
    /// signal: 128 + its number), stdout, stderr.
    pub fn run_cmd(&self, cmd: &mut Command) -> (i32, String, String) {
        code_out_err(&wait_within(
            cmd.spawn().expect("spawn orch"),
            self.timeout,
            "orch",
        ))
    }

    /// Runs orch to the end (with the repository's deadline): exit code, stdout, stderr.
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        self.run_cmd(&mut self.orch(args))
    }

    /// Writes `plans.toml` and one plan file per `(name, agent command, plan text)`, commits
    /// them on main. Each plan has its own agent `<name>-agent`.
    pub fn plans(&self, plans: &[(&str, String, &str)]) {
        let mut toml = String::from("[defaults]\nmax_agents = 4\nretries = 0\n\n");
        for (name, command, text) in plans {
            self.write(&format!("docs/plans/{name}.md"), text);
            toml.push_str(&format!(
                "[agents.{name}-agent]\ncommand = {command}\n\n[[plan]]\nname = \"{name}\"\n\
                 file = \"docs/plans/{name}.md\"\nagent = \"{name}-agent\"\n\n"
            ));
        }
        self.write("plans.toml", &toml);
        self.commit_all("plans");
    }

    /// A manifest with one agent `a` (`extra_agent` lines added to its table), `defaults` lines
    /// added to `[defaults]`, and the plans given as `(name, extra lines)` with their files at
    /// `docs/plans/<name>.md`. Not committed.
    pub fn manifest(
        &self,
        command: &str,
        extra_agent: &str,
        defaults: &str,
        plans: &[(&str, &str)],
    ) {
        let mut text = format!(
            "[defaults]\nagent = \"a\"\n{defaults}\n\n[agents.a]\ncommand = {command}\n{extra_agent}\n"
        );
        for (name, extra) in plans {
            text.push_str(&format!(
                "\n[[plan]]\nname = \"{name}\"\nfile = \"docs/plans/{name}.md\"\n{extra}\n"
            ));
        }
        self.write("plans.toml", &text);
    }

    /// `orch up` (the named plans, or all) must complete.
    pub fn up(&self, plans: &[&str]) -> String {
        let mut args = vec!["up", "--json"];
        args.extend(plans);
        let (code, out, err) = self.run(&args);
        assert_eq!(code, 0, "orch up failed\nstdout:\n{out}\nstderr:\n{err}");
        out
    }

    /// `orch up --json ARGS`, expecting exit `code`; returns its events.
    pub fn up_events(&self, args: &[&str], code: i32) -> Vec<Value> {
        let mut all = vec!["up", "--json"];
        all.extend_from_slice(args);
        let (got, out, err) = self.run(&all);
        assert_eq!(
            got, code,
            "orch {all:?}: unexpected exit\nstdout:\n{out}\nstderr:\n{err}"
        );
        events(&out)
    }

    /// `orch status --plan NAME --json`: task id → status.
    pub fn statuses(&self, plan: &str) -> Vec<(String, String)> {
        let (code, out, err) = self.run(&["status", "--plan", plan, "--json"]);
        assert_eq!(code, 0, "status failed: {err}");
        let v: Value = serde_json::from_str(&out).expect("json");
        v["tasks"]
            .as_array()
            .expect("tasks")
            .iter()
            .map(|t| {
                (
                    t["id"].as_str().expect("id").to_string(),
                    t["status"].as_str().expect("status").to_string(),
                )
            })
            .collect()
    }

    /// Where a plan's status file is.
    pub fn status_path(&self, plan: &str) -> PathBuf {
        self.root().join(format!(".orch/state/{plan}/status.json"))
    }

    /// The raw status file of a plan.
    pub fn status_file(&self, plan: &str) -> Value {
        let text = std::fs::read_to_string(self.status_path(plan)).expect("status file");
        serde_json::from_str(&text).expect("status json")
    }

    /// The entry of task `id` in plan `plan`'s status file.
    pub fn task(&self, plan: &str, id: &str) -> Value {
        super::task_in(&self.status_file(plan), id).clone()
    }

    fn lines(&self, args: &[&str]) -> Vec<String> {
        self.git(args).lines().map(str::to_string).collect()
    }

    /// The commits on `branch` that are not on main, oldest first, without merges.
    pub fn commits(&self, branch: &str) -> Vec<String> {
        self.lines(&[
            "log",
            "--reverse",
            "--no-merges",
            "--format=%H",
            &format!("main..{branch}"),
        ])
    }

    /// Subjects of the commits on `branch` that are not on main, oldest first, without merges.
    pub fn subjects(&self, branch: &str) -> Vec<String> {
        self.lines(&[
            "log",
            "--reverse",
            "--no-merges",
            "--format=%s",
            &format!("main..{branch}"),
        ])
    }

    /// Subjects of the first-parent history of `rev`, newest first.
    pub fn first_parent_subjects(&self, rev: &str) -> Vec<String> {
        self.lines(&["log", "--first-parent", "--format=%s", rev])
    }

    /// Lines a commit adds and removes (`+line`, `-line`), every file together.
    pub fn changed_lines(&self, commit: &str) -> Vec<String> {
        self.git(&["show", "--format=", "--unified=0", commit])
            .lines()
            .filter(|l| {
                (l.starts_with('+') && !l.starts_with("+++"))
                    || (l.starts_with('-') && !l.starts_with("---"))
            })
            .map(str::to_string)
            .collect()
    }

    /// Paths a commit touches.
    pub fn changed_files(&self, commit: &str) -> Vec<String> {
        self.lines(&["show", "--format=", "--name-only", commit])
    }

    /// Every path in the tree of `rev`, sorted.
    pub fn tree_files(&self, rev: &str) -> Vec<String> {
        self.lines(&["ls-tree", "-r", "--name-only", rev])
    }

    /// Local branch names.
    pub fn branches(&self) -> Vec<String> {
        self.lines(&["branch", "--format=%(refname:short)"])
    }

    pub fn worktree(&self, plan: &str) -> PathBuf {
        self.root().join(".orch/worktrees").join(plan)
    }

    pub fn branch_exists(&self, branch: &str) -> bool {
        self.git_ok(&[
            "show-ref",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ])
    }

    /// Every ref with its value.
    pub fn refs(&self) -> String {
        self.git(&["for-each-ref", "--format=%(refname) %(objectname)"])
    }

    pub fn refs_under(&self, prefix: &str) -> Vec<String> {
        self.lines(&["for-each-ref", "--format=%(refname)", prefix])
    }

    /// Every file under `.git` (objects, refs, worktree entries, config) with its size: what a
    /// read-only command must leave exactly as it was.
    pub fn git_dir_listing(&self) -> BTreeSet<(String, u64)> {
        walk(&self.root().join(".git"))
            .into_iter()
            .filter(|(p, _)| !p.ends_with("index") && !p.ends_with(".lock"))
            .collect()
    }

    /// `git worktree list --porcelain` paths.
    pub fn worktrees(&self) -> Vec<String> {
        self.git(&["worktree", "list", "--porcelain"])
            .lines()
            .filter_map(|l| l.strip_prefix("worktree "))
            .map(str::to_string)
            .collect()
    }

    /// The worktree where `branch` is checked out (`git worktree list`), if any.
    pub fn worktree_of_branch(&self, branch: &str) -> Option<PathBuf> {
        let list = self.git(&["worktree", "list", "--porcelain"]);
        let mut path = None;
        for line in list.lines() {
            if let Some(p) = line.strip_prefix("worktree ") {
                path = Some(PathBuf::from(p));
            } else if line.strip_prefix("branch refs/heads/") == Some(branch) {
                return path;
            }
        }
        None
    }

    /// Commits reachable from the given revisions.
    pub fn reachable(&self, revs: &[String]) -> BTreeSet<String> {
        if revs.is_empty() {
            return BTreeSet::new();
        }
        let mut args = vec!["rev-list".to_string()];
        args.extend(revs.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.git(&args).lines().map(str::to_string).collect()
    }

    /// Commits kept safe: reachable from main, a backup ref or an archive tag.
    pub fn kept_safe(&self) -> BTreeSet<String> {
        let mut revs = vec!["main".to_string()];
        revs.extend(self.refs_under("refs/orch/backup"));
        revs.extend(self.refs_under("refs/tags/orch/archive"));
        self.reachable(&revs)
    }
}

fn walk(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let Ok(listing) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in listing.flatten() {
        let p = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push((p.display().to_string(), meta.len()));
        }
    }
    out
}
