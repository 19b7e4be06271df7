//! A real git repository in a temp dir for end-to-end tests of `orch conflicts` and `orch clean`:
//! no user config, a fixed identity, plan branches made by the real `orch up` with the scripted
//! agents of `tests/fixtures/agents/`, and the snapshots those tests compare.

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const TIMEOUT: Duration = Duration::from_secs(90);

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/agents")
}

/// An agent `command` array (TOML) running a fixture script with arguments.
pub fn agent(script: &str, args: &[&str]) -> String {
    let mut argv = vec![
        "sh".to_string(),
        fixtures().join(script).display().to_string(),
    ];
    argv.extend(args.iter().map(|a| (*a).to_string()));
    let quoted: Vec<String> = argv.iter().map(|a| format!("{a:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

pub struct Repo {
    dir: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl Repo {
    /// `main` with `README.md`, `shared.txt` and a `.gitignore` ignoring `*.log`.
    pub fn new() -> Self {
        let r = Self {
            dir: tempfile::tempdir().expect("tempdir"),
            home: tempfile::tempdir().expect("home"),
        };
        r.git(&["init", "-q", "-b", "main"]);
        r.write("README.md", "# demo\n");
        r.write("shared.txt", "original\n");
        r.write(".gitignore", "*.log\n");
        r.commit_all("initial");
        r
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.root().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    pub fn git_in(&self, dir: &Path, args: &[&str]) -> Output {
        Command::new("git")
            .current_dir(dir)
            .args(args)
            .env("HOME", self.home.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .output()
            .expect("git")
    }

    pub fn git(&self, args: &[&str]) -> String {
        let out = self.git_in(self.root(), args);
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    pub fn git_ok(&self, args: &[&str]) -> bool {
        self.git_in(self.root(), args).status.success()
    }

    pub fn commit_all(&self, msg: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "-m", msg]);
    }

    pub fn orch(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_orch"));
        c.current_dir(self.root())
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Runs orch to the end (with the test deadline): exit code, stdout, stderr.
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = wait(self.orch(args).spawn().expect("spawn orch"));
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
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

    /// `orch up` (the named plans, or all) must complete.
    pub fn up(&self, plans: &[&str]) -> String {
        let mut args = vec!["up", "--json"];
        args.extend(plans);
        let (code, out, err) = self.run(&args);
        assert_eq!(code, 0, "orch up failed\nstdout:\n{out}\nstderr:\n{err}");
        out
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
        self.git(&["for-each-ref", "--format=%(refname)", prefix])
            .lines()
            .map(str::to_string)
            .collect()
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

pub fn wait(mut child: Child) -> Output {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "orch did not finish within {TIMEOUT:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One-task plan text: `# <title>` with task 1.1 `<description>`.
pub fn one_task(title: &str, description: &str) -> String {
    format!("# {title}\n\n## Phase 1: Work\n- [ ] 1.1 {description}\n")
}

/// Everything on disk under `dir`, `.git` included and nothing excluded: each path with its
/// kind and a hash of its bytes (or its symlink target). Two equal snapshots mean nothing was
/// written, created or removed.
pub fn disk_snapshot(dir: &Path) -> BTreeSet<(String, String)> {
    use std::hash::{Hash, Hasher};
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            let meta = std::fs::symlink_metadata(&p).expect("metadata");
            let rel = p.strip_prefix(dir).expect("inside").display().to_string();
            let what = if meta.file_type().is_symlink() {
                format!("link {}", std::fs::read_link(&p).expect("link").display())
            } else if meta.is_dir() {
                stack.push(p);
                "dir".to_string()
            } else {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                std::fs::read(&p).expect("read").hash(&mut h);
                format!("file {} {:x}", meta.len(), h.finish())
            };
            out.insert((rel, what));
        }
    }
    out
}
