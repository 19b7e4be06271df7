//! The review loop's test bench: the fake GitHub CLI of tests/fixtures/gh (its files, the
//! threads and check runs it answers with, the replies it records), a plan finished by a real
//! `orch up` with a bare repository as its remote, and `orch` run with that gh first on PATH.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{Repo, toml_array};

pub const A: &str = "# Auth\n\n## Phase 1: Work\n- [ ] 1.1 Start a\n";

/// A comment: `(id, author, body)`.
pub type C<'a> = (u64, &'a str, &'a str);
/// A thread: `(id, resolved, path, line, comments)`.
pub type T<'a> = (&'a str, bool, &'a str, u64, Vec<C<'a>>);

/// The fake gh's files and the remote.
pub struct Gh {
    pub log: PathBuf,
    pub state: PathBuf,
    pub remote: PathBuf,
}

impl Gh {
    /// The fake gh's files beside `repo`, `remote.git` its remote (not made).
    pub fn at(repo: &Repo) -> Self {
        Self {
            log: repo.outside("gh.log"),
            state: repo.outside("gh-state"),
            remote: repo.outside("remote.git"),
        }
    }

    /// [`Gh::at`], with `remote.git` made bare and added to `repo` as `origin`.
    pub fn with_remote(repo: &Repo) -> Self {
        let gh = Self::at(repo);
        let remote = gh.remote.to_str().expect("utf8");
        repo.git(&["init", "-q", "--bare", remote]);
        repo.git(&["remote", "add", "origin", remote]);
        gh
    }

    pub fn write(&self, name: &str, text: &str) {
        std::fs::create_dir_all(&self.state).expect("gh state");
        std::fs::write(self.state.join(name), text).expect("write gh state");
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.state.join(name)).unwrap_or_default()
    }

    /// `(comment id, body)` of each reply orch posted.
    pub fn replies(&self) -> Vec<(u64, String)> {
        self.read("replies")
            .lines()
            .map(|l| {
                let (to, body) = l.split_once('\t').expect("tab");
                (to.parse().expect("id"), body.to_string())
            })
            .collect()
    }

    /// The GraphQL answer with these threads: `(id, resolved, path, line, [(comment id,
    /// author, body)])`.
    pub fn threads(&self, number: u64, threads: &[T<'_>]) {
        let nodes: Vec<Value> = threads
            .iter()
            .map(|(id, resolved, path, line, comments)| {
                json!({
                    "id": id, "isResolved": resolved, "path": path, "line": line,
                    "comments": {"nodes": comments.iter().map(|(cid, author, body)| json!({
                        "databaseId": cid, "author": {"login": author}, "body": body,
                        "diffHunk": format!("@@ -1,2 +1,3 @@\n a line of {path}\n+an added line")
                    })).collect::<Vec<_>>()}
                })
            })
            .collect();
        // One page per thread, one after another, as `gh api graphql --paginate` prints them:
        // every test of threads reads several pages.
        let page = |nodes: &[Value]| {
            json!({"data": {"repository": {"pullRequest": {"reviewThreads": {"nodes": nodes}}}}})
                .to_string()
        };
        let pages: Vec<String> = if nodes.is_empty() {
            vec![page(&[])]
        } else {
            nodes.chunks(1).map(page).collect()
        };
        self.write(&format!("threads-{number}.json"), &pages.join("\n"));
    }
}

/// Plan `a` (with `manifest_extra` in `[defaults]`, agent `agent` as argv) finished by `orch
/// up`, `origin` a bare repository; the fake gh's files beside it.
pub fn finished(agent: &[&str], defaults_extra: &str) -> (Repo, Gh) {
    finished_with(agent, defaults_extra, None)
}

/// [`finished`] with `PATH` set to `path` for its `orch up` (an ssh lab's `ssh` first).
pub fn finished_with(agent: &[&str], defaults_extra: &str, path: Option<&str>) -> (Repo, Gh) {
    let repo = Repo::builder().identity_in_config().build();
    repo.write("docs/plans/a.md", A);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nagent = \"ok\"\nretries = 0\n{defaults_extra}\n[agents.ok]\ncommand = {}\n\n[[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\n",
            toml_array(agent)
        ),
    );
    repo.commit_all("plans");
    let mut up = repo.orch(&["up"]);
    if let Some(path) = path {
        up.env("PATH", path);
    }
    let (code, out, err) = repo.run_cmd(&mut up);
    assert_eq!(code, 0, "orch up failed\nstdout:\n{out}\nstderr:\n{err}");
    let gh = Gh::with_remote(&repo);
    (repo, gh)
}

pub fn ok_agent() -> Vec<String> {
    let ok = super::fixtures().join("ok.sh");
    vec!["sh".into(), ok.display().to_string(), "/dev/null".into()]
}

/// `orch ARGS` with the fake gh first on PATH: exit code, stdout, stderr.
pub fn orch(repo: &Repo, gh: &Gh, args: &[&str]) -> (i32, String, String) {
    repo.run_cmd(&mut orch_cmd(repo, gh, args))
}

/// `orch ARGS` with the fake gh first on PATH, to spawn.
pub fn orch_cmd(repo: &Repo, gh: &Gh, args: &[&str]) -> std::process::Command {
    orch_cmd_with(repo, gh, args, &std::env::var("PATH").unwrap_or_default())
}

/// [`orch_cmd`] with the fake gh first on `path`.
pub fn orch_cmd_with(repo: &Repo, gh: &Gh, args: &[&str], path: &str) -> std::process::Command {
    let mut cmd = repo.orch(args);
    let gh_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gh");
    let path = format!("{}:{path}", gh_dir.display());
    cmd.env("PATH", path)
        .env("GH_LOG", &gh.log)
        .env("GH_STATE", &gh.state)
        .env("GH_REMOTE", &gh.remote);
    cmd
}

/// The `{"event": …}` lines of `--json` output.
pub fn events(out: &str) -> Vec<Value> {
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("event").is_some())
        .collect()
}

pub fn named<'e>(events: &'e [Value], name: &str) -> Vec<&'e Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

pub fn remote_tip(repo: &Repo, gh: &Gh, branch: &str) -> String {
    repo.git_at(&gh.remote, &["rev-parse", &format!("refs/heads/{branch}")])
}

pub fn plan_text(repo: &Repo) -> String {
    String::from_utf8(repo.read("docs/plans/a.md")).expect("utf8")
}

/// A check run answer: one check `name` with `conclusion`.
pub fn check(id: u64, name: &str, conclusion: &str) -> String {
    json!({"check_runs": [{
        "id": id, "name": name, "status": "completed", "conclusion": conclusion,
        "output": {"title": format!("{name}: {conclusion}"), "summary": "1 test failed: auth::login"}
    }]})
    .to_string()
}
