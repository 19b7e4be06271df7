//! `orch pr` end to end: plans finished by a real `orch up`, a real bare repository as the
//! remote, and a fake `gh` on `PATH` (tests/fixtures/gh/gh) that records each call and answers
//! `gh pr list` from the pull requests it was asked to open.

use crate::support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::{Repo, fixtures, toml_array};

const A: &str = "# Auth\n\n## Phase 1: Work\n- [ ] 1.1 Start a\n- [ ] 1.2 Finish a (depends: 1.1)\n\n**VERIFY Phase 1:**\n- a.txt has two lines\n";
const B: &str = "# Api\n\n## Phase 1: Work\n- [ ] 1.1 Do b\n";
const C: &str = "# Cli\n\n## Phase 1: Work\n- [ ] 1.1 Do c\n";

/// `a`, `b` depending on `a`, `c` on its own, all finished by `orch up`; `origin` is a bare
/// repository next to it.
fn finished() -> (Repo, PathBuf) {
    let repo = Repo::builder().identity_in_config().build();
    let ok = fixtures().join("ok.sh");
    let mut manifest = format!(
        "[defaults]\nagent = \"ok\"\nmax_agents = 3\nverify = [\"true\"]\n\n[agents.ok]\ncommand = {}\n",
        toml_array(&["sh", ok.to_str().expect("utf8"), "/dev/null"])
    );
    for (name, text, extra) in [
        ("a", A, ""),
        ("b", B, "depends_on = [\"a\"]\npriority = 10\n"),
        ("c", C, ""),
    ] {
        repo.write(&format!("docs/plans/{name}.md"), text);
        manifest.push_str(&format!(
            "\n[[plan]]\nname = \"{name}\"\nfile = \"docs/plans/{name}.md\"\n{extra}"
        ));
    }
    repo.write("plans.toml", &manifest);
    repo.commit_all("plans");
    let (code, out, err) = repo.run(&["up"]);
    assert_eq!(code, 0, "orch up failed\nstdout:\n{out}\nstderr:\n{err}");
    let remote = repo.outside("remote.git");
    repo.git(&["init", "-q", "--bare", remote.to_str().expect("utf8")]);
    repo.git(&["remote", "add", "origin", remote.to_str().expect("utf8")]);
    (repo, remote)
}

/// The fake gh's log and state.
struct Gh {
    log: PathBuf,
    state: PathBuf,
}

impl Gh {
    fn new(repo: &Repo) -> Self {
        Self {
            log: repo.outside("gh.log"),
            state: repo.outside("gh-state"),
        }
    }

    /// Every call so far, each as its argv.
    fn calls(&self) -> Vec<Vec<String>> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                l.trim_end_matches('\t')
                    .split('\t')
                    .map(str::to_string)
                    .collect()
            })
            .collect()
    }

    /// The calls of one `gh pr` subcommand.
    fn of(&self, sub: &str) -> Vec<Vec<String>> {
        self.calls().into_iter().filter(|c| c[1] == sub).collect()
    }

    /// `(number, base)` of the pull request whose head is `branch`.
    fn pr(&self, branch: &str) -> Option<(u64, String)> {
        let text =
            std::fs::read_to_string(self.state.join(format!("pr-{}", branch.replace('/', "_"))))
                .ok()?;
        let (n, base) = text.trim().split_once(' ')?;
        Some((n.parse().ok()?, base.to_string()))
    }
}

/// `orch pr ARGS` with the fake gh first on PATH: exit code, stdout, stderr.
fn pr(repo: &Repo, gh: &Gh, args: &[&str], fail: Option<&str>) -> (i32, String, String) {
    let mut all = vec!["pr"];
    all.extend_from_slice(args);
    let mut cmd = repo.orch(&all);
    let gh_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gh");
    let path = format!(
        "{}:{}",
        gh_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.env("PATH", path)
        .env("GH_LOG", &gh.log)
        .env("GH_STATE", &gh.state);
    if let Some(sub) = fail {
        cmd.env("GH_FAIL", sub);
    }
    repo.run_cmd(&mut cmd)
}

fn flag<'c>(call: &'c [String], name: &str) -> &'c str {
    let i = call
        .iter()
        .position(|a| a == name)
        .unwrap_or_else(|| panic!("no {name} in {call:?}"));
    &call[i + 1]
}

fn remote_tip(repo: &Repo, remote: &Path, branch: &str) -> Option<String> {
    let out = repo.git_in(
        remote,
        &[
            "rev-parse",
            "--verify",
            "-q",
            &format!("refs/heads/{branch}"),
        ],
    );
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn three_plans_become_a_stack_of_pull_requests_then_updates_then_a_moved_base() {
    let (repo, remote) = finished();
    let gh = Gh::new(&repo);

    // First run: three pushes, three creates, upstream first, `b` stacked on `a`.
    let (code, out, err) = pr(&repo, &gh, &["--json"], None);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    for plan in ["a", "b", "c"] {
        let branch = format!("plan/{plan}");
        assert_eq!(
            remote_tip(&repo, &remote, &branch),
            Some(repo.rev(&branch)),
            "{branch} pushed"
        );
    }
    let creates = gh.of("create");
    let heads: Vec<&str> = creates.iter().map(|c| flag(c, "--head")).collect();
    assert_eq!(heads.len(), 3, "{creates:?}");
    let pos = |b: &str| heads.iter().position(|h| *h == b).expect(b);
    assert!(pos("plan/a") < pos("plan/b"), "upstream first: {heads:?}");
    let base_of = |b: &str| flag(&creates[pos(b)], "--base").to_string();
    assert_eq!(base_of("plan/a"), "main");
    assert_eq!(base_of("plan/b"), "plan/a");
    assert_eq!(base_of("plan/c"), "main");
    assert_eq!(flag(&creates[pos("plan/b")], "--title"), "b: Api");
    assert!(gh.of("edit").is_empty());

    // The body: tasks with their short commit ids, the checks, the plans depended on.
    let (n_a, _) = gh.pr("plan/a").expect("a's pull request");
    let body = std::fs::read_to_string(gh.state.join(format!("body-{n_a}"))).expect("body");
    let v: Value = serde_json::from_str(&out).expect("json");
    let status: Value =
        serde_json::from_slice(&repo.read(".orch/state/a/status.json")).expect("status");
    for t in status["tasks"].as_array().expect("tasks") {
        let commit = t["commit"].as_str().expect("commit");
        let line = format!(
            "[x] {} {} ({})",
            t["id"].as_str().expect("id"),
            t["description"].as_str().expect("d"),
            &commit[..10]
        );
        assert!(body.contains(&line), "{line} in\n{body}");
    }
    assert!(body.contains("V1"), "{body}");
    assert!(body.contains("`true` runs on the merge result"), "{body}");
    let (n_b, _) = gh.pr("plan/b").expect("b's pull request");
    let body_b = std::fs::read_to_string(gh.state.join(format!("body-{n_b}"))).expect("body");
    assert!(
        body_b.contains("- `a`: not merged yet: this pull request's base is `plan/a`"),
        "{body_b}"
    );
    let b = v["plans"]
        .as_array()
        .expect("plans")
        .iter()
        .find(|p| p["plan"] == "b")
        .expect("b");
    assert_eq!(b["action"], "created");
    assert_eq!(b["url"], format!("https://github.com/o/r/pull/{n_b}"));

    // Second run: every pull request is edited, none created.
    let (code, out, err) = pr(&repo, &gh, &[], None);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(gh.of("create").len(), 3);
    let edits = gh.of("edit");
    assert_eq!(edits.len(), 3, "{edits:?}");
    assert!(
        edits
            .iter()
            .any(|e| e[2] == n_b.to_string() && flag(e, "--base") == "plan/a")
    );

    // `a` merged into main: it gets no update, `b`'s base moves to main.
    let (code, out, err) = repo.run(&["merge", "a"]);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    let (code, out, err) = pr(&repo, &gh, &[], None);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert_eq!(gh.pr("plan/b"), Some((n_b, "main".to_string())));
    assert!(out.contains("base moved from `plan/a`"), "{out}");
    let edits = gh.of("edit");
    assert_eq!(edits.len(), 5, "a is merged: not edited again: {edits:?}");
    assert_eq!(gh.pr("plan/a"), Some((n_a, "main".to_string())));
}

#[test]
fn dry_run_prints_the_commands_and_pushes_nothing() {
    let (repo, remote) = finished();
    let gh = Gh::new(&repo);
    let (code, out, err) = pr(&repo, &gh, &["--dry-run", "b"], None);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        out.contains("$ git push origin refs/heads/plan/a:refs/heads/plan/a"),
        "{out}"
    );
    assert!(
        out.contains("$ git push origin refs/heads/plan/b:refs/heads/plan/b"),
        "{out}"
    );
    assert!(
        out.contains("$ gh pr create --base plan/a --head plan/b --title 'b: Api' --body-file "),
        "{out}"
    );
    assert_eq!(remote_tip(&repo, &remote, "plan/a"), None);
    assert_eq!(remote_tip(&repo, &remote, "plan/b"), None);
    let calls = gh.calls();
    assert!(calls.iter().all(|c| c[1] == "list"), "{calls:?}");
}

#[test]
fn a_failing_command_names_the_plan_and_stops_before_the_next_plan() {
    let (repo, remote) = finished();
    let gh = Gh::new(&repo);
    // gh fails on create: the first plan (`b` has the higher priority but waits on `a`; `a`
    // goes first by name) stops the run.
    let (code, out, err) = pr(&repo, &gh, &[], Some("create"));
    assert_eq!(code, 1, "stdout:\n{out}\nstderr:\n{err}");
    assert!(
        err.contains("plan `a`: `gh pr create --base main --head plan/a"),
        "{err}"
    );
    assert!(err.contains("later plans were not handled"), "{err}");
    assert_eq!(gh.of("create").len(), 1);
    assert_eq!(
        remote_tip(&repo, &remote, "plan/b"),
        None,
        "b was not pushed"
    );

    // A remote that does not exist: git push fails, naming the plan and the command.
    repo.git(&["remote", "remove", "origin"]);
    let (code, _out, err) = pr(&repo, &gh, &["c"], None);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("plan `c`: `git push origin refs/heads/plan/c:refs/heads/plan/c` failed"),
        "{err}"
    );
    assert_eq!(gh.of("create").len(), 1, "no gh call after the failed push");
}

#[test]
fn an_unfinished_plan_is_refused_and_nothing_is_pushed() {
    let repo = Repo::builder().identity_in_config().build();
    repo.write("docs/plans/a.md", A);
    repo.write(
        "plans.toml",
        "[defaults]\nremote = \"upstream\"\n\n[[plan]]\nname = \"a\"\nfile = \"docs/plans/a.md\"\n",
    );
    repo.commit_all("plans");
    let gh = Gh::new(&repo);
    let (code, _out, err) = pr(&repo, &gh, &["a"], None);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("plan `a` is not finished"), "{err}");
    assert!(gh.calls().is_empty());
    let (code, _out, err) = pr(&repo, &gh, &["nope"], None);
    assert_eq!(code, 2, "{err}");
}
