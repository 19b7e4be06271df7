//! What GitHub reports of one pull request, as the GitHub CLI prints it: its review threads
//! (GraphQL), its reviews and head commit (`gh pr view --json`), the check runs of the head
//! commit (REST). Every string here was written by someone on GitHub: untrusted text, shown
//! escaped and given to an agent only fenced and quoted ([`super::text`]).

use serde_json::Value;

/// One comment of a review thread.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Comment {
    /// GitHub's number for it (`databaseId`): what a reply names, and how orch knows its own.
    pub(crate) id: u64,
    pub(crate) author: String,
    pub(crate) body: String,
    /// The code the comment is about (the diff hunk).
    pub(crate) hunk: String,
}

/// One review thread (comments on a line of a file).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Thread {
    pub(crate) id: String,
    pub(crate) resolved: bool,
    pub(crate) path: String,
    pub(crate) line: Option<u64>,
    pub(crate) comments: Vec<Comment>,
}

/// One review (`APPROVED`, `CHANGES_REQUESTED`, `COMMENTED`...).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Review {
    pub(crate) id: String,
    pub(crate) author: String,
    pub(crate) state: String,
    pub(crate) body: String,
}

/// One check run of the head commit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Check {
    pub(crate) id: u64,
    pub(crate) name: String,
    /// `queued`, `in_progress`, `completed`.
    pub(crate) status: String,
    /// `success`, `failure`, `neutral`, `cancelled`, `skipped`, `timed_out`, `action_required`.
    pub(crate) conclusion: String,
    /// Its output's title and summary.
    pub(crate) summary: String,
    /// The end of its log, when it could be read.
    pub(crate) log: String,
}

impl Check {
    pub(crate) fn done(&self) -> bool {
        self.status.eq_ignore_ascii_case("completed")
    }

    /// A completed check that did not pass.
    pub(crate) fn failed(&self) -> bool {
        self.done()
            && matches!(
                self.conclusion.to_ascii_lowercase().as_str(),
                "failure" | "timed_out" | "cancelled" | "action_required" | "startup_failure"
            )
    }
}

/// One pull request as one poll saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PrView {
    pub(crate) number: u64,
    /// `OPEN`, `CLOSED`, `MERGED`.
    pub(crate) state: String,
    /// The head commit GitHub has.
    pub(crate) head: String,
    /// `APPROVED`, `CHANGES_REQUESTED`, `REVIEW_REQUIRED` or empty.
    pub(crate) decision: String,
    pub(crate) reviews: Vec<Review>,
    pub(crate) threads: Vec<Thread>,
    pub(crate) checks: Vec<Check>,
}

fn s(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn login(v: &Value) -> String {
    v.get("author")
        .and_then(|a| a.get("login"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn nodes(v: Option<&Value>) -> &[Value] {
    v.and_then(|v| v.get("nodes"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// `gh pr view N --json number,state,headRefOid,reviewDecision,reviews` into `view`.
pub(crate) fn parse_view(out: &str, view: &mut PrView) -> Result<(), String> {
    let v: Value = serde_json::from_str(out.trim()).map_err(|e| e.to_string())?;
    if !v.is_object() {
        return Err("not a JSON object".into());
    }
    view.state = s(&v, "state");
    view.head = s(&v, "headRefOid");
    view.decision = s(&v, "reviewDecision");
    view.reviews = v
        .get("reviews")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
        .iter()
        .map(|r| Review {
            id: s(r, "id"),
            author: login(r),
            state: s(r, "state"),
            body: s(r, "body"),
        })
        .collect();
    Ok(())
}

/// The JSON documents of `gh api --paginate`'s output: one per page, one after another (one
/// document when there is one page). Empty output or anything that is not JSON is an error.
fn pages(out: &str) -> Result<Vec<Value>, String> {
    let docs = serde_json::Deserializer::from_str(out)
        .into_iter::<Value>()
        .collect::<Result<Vec<Value>, _>>()
        .map_err(|e| e.to_string())?;
    if docs.is_empty() {
        return Err("no answer".into());
    }
    Ok(docs)
}

fn comment(c: &Value) -> Option<Comment> {
    Some(Comment {
        id: c.get("databaseId").and_then(Value::as_u64)?,
        author: login(c),
        body: s(c, "body"),
        hunk: s(c, "diffHunk"),
    })
}

/// The review threads of the GraphQL answer to [`super::gh::THREADS_QUERY`], every page of it.
/// A thread's comments are its first (`head`: what a reply answers) and its last 100, in order.
pub(crate) fn parse_threads(out: &str) -> Result<Vec<Thread>, String> {
    let mut threads = Vec::new();
    for v in pages(out)? {
        let pr = v
            .pointer("/data/repository/pullRequest")
            .ok_or("no `data.repository.pullRequest`")?;
        for t in nodes(pr.get("reviewThreads")) {
            let mut comments: Vec<Comment> = nodes(t.get("head"))
                .iter()
                .chain(nodes(t.get("comments")))
                .filter_map(comment)
                .collect();
            comments.sort_by_key(|c| c.id);
            comments.dedup_by_key(|c| c.id);
            threads.push(Thread {
                id: s(t, "id"),
                resolved: t
                    .get("isResolved")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                path: s(t, "path"),
                line: t
                    .get("line")
                    .and_then(Value::as_u64)
                    .or_else(|| t.get("originalLine").and_then(Value::as_u64)),
                comments,
            });
        }
    }
    threads.retain(|t| !t.id.is_empty());
    Ok(threads)
}

/// The check runs of `GET repos/{owner}/{repo}/commits/{sha}/check-runs`, every page of it.
pub(crate) fn parse_checks(out: &str) -> Result<Vec<Check>, String> {
    let mut checks = Vec::new();
    for v in pages(out)? {
        let runs = v
            .get("check_runs")
            .and_then(Value::as_array)
            .ok_or("no `check_runs`")?;
        checks.extend(runs.iter().map(|c| {
            let output = c.get("output").cloned().unwrap_or_default();
            let summary = [
                s(&output, "title"),
                s(&output, "summary"),
                s(&output, "text"),
            ]
            .into_iter()
            .filter(|p| !p.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n\n");
            Check {
                id: c.get("id").and_then(Value::as_u64).unwrap_or_default(),
                name: s(c, "name"),
                status: s(c, "status"),
                conclusion: s(c, "conclusion"),
                summary,
                log: String::new(),
            }
        }));
    }
    Ok(checks)
}

/// The id of the comment a reply made (`{"id": N, …}`).
pub(crate) fn parse_id(out: &str) -> Option<u64> {
    let v: Value = serde_json::from_str(out.trim()).ok()?;
    v.get("id").and_then(Value::as_u64)
}

/// `{"permission": "write"}`: whether it grants write access.
pub(crate) fn parse_can_write(out: &str) -> bool {
    let Ok(v) = serde_json::from_str::<Value>(out.trim()) else {
        return false;
    };
    matches!(
        v.get("permission").and_then(Value::as_str),
        Some("admin" | "maintain" | "write")
    )
}

/// `gh label list --json name`: the names.
pub(crate) fn parse_labels(out: &str) -> Vec<String> {
    serde_json::from_str::<Value>(out.trim())
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .map(|l| s(l, "name"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threads_reviews_and_checks_are_read_and_bad_json_is_an_error() {
        let threads = r#"{"data":{"repository":{"pullRequest":{"reviewThreads":{"nodes":[
            {"id":"T1","isResolved":false,"path":"src/a.rs","line":null,"originalLine":4,
             "comments":{"nodes":[{"databaseId":11,"author":{"login":"ann"},"body":"x","diffHunk":"@@"},
                                  {"author":null,"body":"no id"}]}},
            {"id":"","isResolved":false}]}}}}}"#;
        let t = parse_threads(threads).expect("threads");
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].line, t[0].comments.len()), (Some(4), 1));
        assert_eq!(t[0].comments[0].author, "ann");
        assert!(parse_threads("[]").is_err());
        assert!(parse_threads("").is_err());
        // Pages one after another (`gh api --paginate`); a thread of more than 100 comments has
        // its first (`head`) and its last ones.
        let two = r#"{"data":{"repository":{"pullRequest":{"reviewThreads":{"nodes":[
            {"id":"T1","head":{"nodes":[{"databaseId":1,"author":{"login":"ann"},"body":"first"}]},
             "comments":{"nodes":[{"databaseId":150,"body":"late"},{"databaseId":151,"body":"later"}]}}]}}}}}
            {"data":{"repository":{"pullRequest":{"reviewThreads":{"nodes":[
            {"id":"T2","comments":{"nodes":[{"databaseId":7,"body":"b"}]}}]}}}}}"#;
        let t = parse_threads(two).expect("pages");
        let ids: Vec<Vec<u64>> = t
            .iter()
            .map(|t| t.comments.iter().map(|c| c.id).collect())
            .collect();
        assert_eq!(ids, [vec![1, 150, 151], vec![7]]);
        assert!(parse_threads(&format!("{two} {{")).is_err());
        assert!(parse_threads("{").is_err());

        let mut view = PrView::default();
        parse_view(
            r#"{"state":"OPEN","headRefOid":"abc","reviewDecision":"","reviews":[{"id":"R","author":{"login":"b"},"state":"CHANGES_REQUESTED","body":"fix"}]}"#,
            &mut view,
        )
        .expect("view");
        assert_eq!(
            (view.head.as_str(), view.reviews[0].state.as_str()),
            ("abc", "CHANGES_REQUESTED")
        );
        assert!(parse_view("[]", &mut view).is_err());

        let c = parse_checks(r#"{"check_runs":[{"id":5,"name":"ci","status":"completed","conclusion":"failure","output":{"title":"red","summary":"1 failed"}}]}"#).expect("checks");
        assert!(c[0].failed());
        assert_eq!(c[0].summary, "red\n\n1 failed");
        assert!(parse_checks("{}").is_err());
        let pages = r#"{"total_count":2,"check_runs":[{"id":1,"name":"a","conclusion":"success"}]}
{"total_count":2,"check_runs":[{"id":2,"name":"b","status":"completed","conclusion":"failure"}]}"#;
        let c = parse_checks(pages).expect("pages");
        assert_eq!(c.iter().map(|c| c.id).collect::<Vec<_>>(), [1, 2]);
        assert!(c[1].failed());
        assert!(parse_checks(&format!("{pages}\n{{}}")).is_err());
        assert!(parse_can_write(r#"{"permission":"write"}"#));
        assert!(!parse_can_write(r#"{"permission":"read"}"#));
        assert!(!parse_can_write("oops"));
        assert_eq!(parse_id(r#"{"id":42}"#), Some(42));
        assert_eq!(parse_labels(r#"[{"name":"a"},{"name":"b"}]"#), ["a", "b"]);
    }
}
