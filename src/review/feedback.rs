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

/// The review threads of the GraphQL answer to [`super::gh::THREADS_QUERY`].
pub(crate) fn parse_threads(out: &str) -> Result<Vec<Thread>, String> {
    let v: Value = serde_json::from_str(out.trim()).map_err(|e| e.to_string())?;
    let pr = v
        .pointer("/data/repository/pullRequest")
        .ok_or("no `data.repository.pullRequest`")?;
    Ok(nodes(pr.get("reviewThreads"))
        .iter()
        .map(|t| Thread {
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
            comments: nodes(t.get("comments"))
                .iter()
                .filter_map(|c| {
                    Some(Comment {
                        id: c.get("databaseId").and_then(Value::as_u64)?,
                        author: login(c),
                        body: s(c, "body"),
                        hunk: s(c, "diffHunk"),
                    })
                })
                .collect(),
        })
        .filter(|t| !t.id.is_empty())
        .collect())
}

/// The check runs of `GET repos/{owner}/{repo}/commits/{sha}/check-runs`.
pub(crate) fn parse_checks(out: &str) -> Result<Vec<Check>, String> {
    let v: Value = serde_json::from_str(out.trim()).map_err(|e| e.to_string())?;
    let runs = v
        .get("check_runs")
        .and_then(Value::as_array)
        .ok_or("no `check_runs`")?;
    Ok(runs
        .iter()
        .map(|c| {
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
        })
        .collect())
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
        assert!(parse_can_write(r#"{"permission":"write"}"#));
        assert!(!parse_can_write(r#"{"permission":"read"}"#));
        assert!(!parse_can_write("oops"));
        assert_eq!(parse_id(r#"{"id":42}"#), Some(42));
        assert_eq!(parse_labels(r#"[{"name":"a"},{"name":"b"}]"#), ["a", "b"]);
    }
}
