//! The GitHub CLI calls of the review loop, each run in the repository with no stdin, its
//! output read up to a bound (what is past it is read and dropped), its failure returned as
//! words. `{owner}` and `{repo}` in an endpoint or a field are `gh`'s placeholders for the
//! repository of the current directory.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::feedback::{self, Check, PrView};

/// The most of one answer read (a page of threads with their comments fits many times).
pub(crate) const MAX_OUTPUT: u64 = 16 * 1024 * 1024;
/// The lines of a failed check's log kept (its end).
pub(crate) const LOG_LINES: usize = 60;

/// The review threads of a pull request, 100 a page (`gh api graphql --paginate` follows
/// `endCursor`), each with its first comment (`head`: a reply answers it) and its last 100 (the
/// newest, whatever the thread's length).
pub(crate) const THREADS_QUERY: &str = "query($owner: String!, $name: String!, $number: Int!, $endCursor: String) { repository(owner: $owner, name: $name) { pullRequest(number: $number) { reviewThreads(first: 100, after: $endCursor) { pageInfo { hasNextPage endCursor } nodes { id isResolved path line originalLine head: comments(first: 1) { nodes { databaseId author { login } body diffHunk } } comments(last: 100) { nodes { databaseId author { login } body diffHunk } } } } } } }";

/// The GitHub CLI in one repository.
pub(crate) struct Gh {
    pub(crate) dir: PathBuf,
    /// Every call's argv, for `--json` and the tests of `--dry-run`-like output.
    pub(crate) program: String,
}

fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| (*s).to_string()).collect()
}

impl Gh {
    pub(crate) fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
            program: "gh".into(),
        }
    }

    /// Runs `gh ARGS`: its stdout (at most [`MAX_OUTPUT`]), or why it failed.
    pub(crate) fn run(&self, args: &[String]) -> Result<String, String> {
        let mut cmd = crate::agent_env::command(&self.program);
        crate::process::place(&mut cmd, &self.dir);
        cmd.args(args)
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let shown = || format!("gh {}", crate::merge::pr::shown(args));
        let mut child = cmd.spawn().map_err(|e| format!("cannot run `gh`: {e}"))?;
        let err = child.stderr.take().map(|mut e| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = (&mut e).take(64 * 1024).read_to_end(&mut buf);
                let _ = std::io::copy(&mut e, &mut std::io::sink());
                buf
            })
        });
        let mut out = Vec::new();
        if let Some(mut o) = child.stdout.take() {
            let _ = (&mut o).take(MAX_OUTPUT).read_to_end(&mut out);
            let _ = std::io::copy(&mut o, &mut std::io::sink());
        }
        let status = child.wait().map_err(|e| format!("`{}`: {e}", shown()))?;
        let stderr = err.and_then(|t| t.join().ok()).unwrap_or_default();
        if !status.success() {
            let code = status
                .code()
                .map_or_else(|| "killed by a signal".to_string(), |c| format!("exit {c}"));
            return Err(format!(
                "`{}` failed: {code}: {}",
                shown(),
                crate::untrusted::escaped(String::from_utf8_lossy(&stderr).trim())
            ));
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    }

    /// Everything one poll reads of pull request `number`.
    pub(crate) fn view(&self, number: u64) -> Result<PrView, String> {
        let n = number.to_string();
        let mut view = PrView {
            number,
            ..PrView::default()
        };
        let out = self.run(&argv(&[
            "pr",
            "view",
            &n,
            "--json",
            "number,state,headRefOid,reviewDecision,reviews",
        ]))?;
        feedback::parse_view(&out, &mut view)
            .map_err(|e| format!("`gh pr view {n}` printed what is not a pull request: {e}"))?;
        let out = self.run(&argv(&[
            "api",
            "graphql",
            "--paginate",
            "-F",
            "owner={owner}",
            "-F",
            "name={repo}",
            "-F",
            &format!("number={n}"),
            "-f",
            &format!("query={THREADS_QUERY}"),
        ]))?;
        view.threads = feedback::parse_threads(&out)
            .map_err(|e| format!("the review threads of #{n} are not what GitHub answers: {e}"))?;
        // The head commit goes into an endpoint: a commit id, or no checks are read.
        let is_commit =
            matches!(view.head.len(), 40 | 64) && view.head.chars().all(|c| c.is_ascii_hexdigit());
        if !view.head.is_empty() && !is_commit {
            return Err(format!(
                "`gh pr view {n}` gave a head commit that is no commit id: `{}`",
                crate::untrusted::escaped(&view.head)
            ));
        }
        if is_commit {
            let out = self.run(&argv(&[
                "api",
                "--paginate",
                &format!(
                    "repos/{{owner}}/{{repo}}/commits/{}/check-runs?per_page=100",
                    view.head
                ),
            ]))?;
            view.checks = feedback::parse_checks(&out)
                .map_err(|e| format!("the check runs of #{n} are not what GitHub answers: {e}"))?;
            for c in view.checks.iter_mut().filter(|c| c.failed()) {
                c.log = self.log_tail(c);
            }
        }
        Ok(view)
    }

    /// The end of a failed check's log (a GitHub Actions job: the check run's id), or nothing.
    fn log_tail(&self, c: &Check) -> String {
        let id = c.id.to_string();
        let Ok(log) = self.run(&argv(&["run", "view", "--job", &id, "--log-failed"])) else {
            return String::new();
        };
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_LINES)..].join("\n")
    }

    /// Whether `login` has write access to the repository, as GitHub reports it.
    pub(crate) fn can_write(&self, login: &str) -> bool {
        if !valid_login(login) {
            return false;
        }
        self.run(&argv(&[
            "api",
            &format!("repos/{{owner}}/{{repo}}/collaborators/{login}/permission"),
        ]))
        .is_ok_and(|out| feedback::parse_can_write(&out))
    }

    /// Whether `login` is an active member of team `org/team`.
    pub(crate) fn in_team(&self, org: &str, team: &str, login: &str) -> bool {
        if !valid_login(login) {
            return false;
        }
        self.run(&argv(&[
            "api",
            &format!("orgs/{org}/teams/{team}/memberships/{login}"),
        ]))
        .is_ok_and(|out| out.contains("\"active\""))
    }

    /// Replies `body` in the thread of comment `to` of pull request `number`: the reply's id.
    pub(crate) fn reply(&self, number: u64, to: u64, body: &str) -> Result<Option<u64>, String> {
        let out = self.run(&argv(&[
            "api",
            &format!("repos/{{owner}}/{{repo}}/pulls/{number}/comments/{to}/replies"),
            "--method",
            "POST",
            "-f",
            &format!("body={body}"),
        ]))?;
        Ok(feedback::parse_id(&out))
    }

    /// Labels pull request `number` with `label`, made first when the repository lacks it.
    pub(crate) fn label(&self, number: u64, label: &str) -> Result<(), String> {
        let out = self.run(&argv(&[
            "label", "list", "--search", label, "--json", "name", "--limit", "100",
        ]))?;
        if !feedback::parse_labels(&out).iter().any(|l| l == label) {
            self.run(&argv(&[
                "label",
                "create",
                label,
                "--color",
                "d93f0b",
                "--description",
                "orch handed this pull request to a person",
            ]))?;
        }
        self.run(&argv(&[
            "pr",
            "edit",
            &number.to_string(),
            "--add-label",
            label,
        ]))?;
        Ok(())
    }
}

/// A GitHub login: letters, digits and `-` (bots: `name[bot]`), what goes into an endpoint.
fn valid_login(login: &str) -> bool {
    !login.is_empty()
        && login.len() <= 64
        && login
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '[' | ']'))
}
