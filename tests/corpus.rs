//! Every plan of ../shared/corpus parses, and its task ids, phases and `depends:` lists match
//! an independent reading of the earlier system's grammar; the status files orch writes meet
//! ../shared/compat/plan-status.schema.json. Without ../shared these tests say so and pass,
//! unless `ORCH_REQUIRE_SHARED` is set (CI sets it): then they fail.

mod support;

use orch::plan::{TaskKind, parse_file};
use serde_json::Value;
use support::{corpus_dir, corpus_files, status_schema};

/// The earlier grammar, read naively: `- [ ] N.M text` lines at column 0 after the first
/// `## Phase N:` heading, outside fenced code blocks; (phase, id, depends).
fn oracle(text: &str) -> Vec<(u32, String, Vec<String>)> {
    let mut out = Vec::new();
    let mut phase: Option<u32> = None;
    let mut fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") || line.trim_start().starts_with("~~~") {
            fence = !fence;
            continue;
        }
        if fence {
            continue;
        }
        if let Some(rest) = line.strip_prefix("## Phase ") {
            let num: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if rest[num.len()..].trim_start().starts_with(':') {
                phase = num.parse().ok();
            }
            continue;
        }
        let Some(p) = phase else { continue };
        for prefix in ["- [ ] ", "- [x] ", "- [X] "] {
            if let Some(rest) = line.strip_prefix(prefix) {
                let id = rest.split_whitespace().next().unwrap_or("");
                let parts: Vec<&str> = id.split('.').collect();
                if (2..=3).contains(&parts.len())
                    && parts
                        .iter()
                        .all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
                {
                    let deps = rest
                        .find("(depends:")
                        .map(|i| {
                            let inner = &rest[i + 9..];
                            let end = inner.find(')').unwrap_or(inner.len());
                            inner[..end]
                                .split(',')
                                .map(|s| s.trim().to_string())
                                .filter(|s| !s.is_empty())
                                .collect()
                        })
                        .unwrap_or_default();
                    out.push((p, id.to_string(), deps));
                }
            }
        }
    }
    out
}

#[test]
fn every_corpus_plan_parses_like_the_earlier_grammar() {
    let Some(dir) = corpus_dir() else {
        return;
    };
    let files = corpus_files(&dir);
    assert_eq!(files.len(), 80, "the corpus holds 80 plans");
    let mut total = 0;
    for f in &files {
        let plan = parse_file(f).expect("corpus plan reads");
        let errors: Vec<String> = plan.errors().map(ToString::to_string).collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", f.display());
        let text = std::fs::read_to_string(f).expect("utf-8");
        let ours: Vec<(u32, String, Vec<String>)> = plan
            .tasks
            .iter()
            .filter(|t| t.kind == TaskKind::Task)
            .map(|t| (t.phase, t.id.clone(), t.dependencies().to_vec()))
            .collect();
        assert_eq!(ours, oracle(&text), "{}", f.display());
        total += ours.len();
    }
    assert!(total > 4000, "only {total} tasks in the corpus?");
}

/// Counts computed by hand (grep and reading) for a few plans.
#[test]
fn hand_counted_plans() {
    let Some(dir) = corpus_dir() else {
        return;
    };
    // (file, phases, tasks, verification steps, depends edges, sequential groups, done)
    let cases = [
        (
            "archive/parallel-execution-architecture.md",
            6,
            29,
            6,
            0,
            0,
            0,
        ),
        ("archive/test-dependency-patterns.md", 8, 37, 8, 40, 0, 0),
        (
            "archive/output-separation-implementation.md",
            6,
            25,
            6,
            0,
            0,
            17,
        ),
        ("archive/documentation-cleanup.md", 7, 47, 0, 0, 3, 0),
        ("fix-issues-implementation.md", 10, 36, 10, 0, 0, 0),
        ("dashboard-only-migration-analysis.md", 7, 28, 7, 0, 0, 0),
    ];
    for (file, phases, tasks, verify, deps, seq, done) in cases {
        let plan = parse_file(&dir.join(file)).expect("reads");
        let n_tasks = plan
            .tasks
            .iter()
            .filter(|t| t.kind == TaskKind::Task)
            .count();
        let n_verify = plan.tasks.len() - n_tasks;
        let n_deps: usize = plan.tasks.iter().map(|t| t.dependencies().len()).sum();
        let n_done = plan
            .tasks
            .iter()
            .filter(|t| t.done && t.kind == TaskKind::Task)
            .count();
        assert_eq!(
            (
                plan.phases.len(),
                n_tasks,
                n_verify,
                n_deps,
                plan.sequential.len(),
                n_done
            ),
            (phases, tasks, verify, deps, seq, done),
            "{file}"
        );
    }
}

/// Checks `v` against the JSON-schema node `schema`, with the keywords
/// `../shared/compat/plan-status.schema.json` uses; each violation with its JSON path. A keyword
/// this checker does not know fails the test, so a new one in the schema is not ignored.
fn violations(v: &Value, schema: &Value, at: &str, out: &mut Vec<String>) {
    const KNOWN: [&str; 12] = [
        "$schema",
        "title",
        "description",
        "type",
        "required",
        "properties",
        "items",
        "enum",
        "minLength",
        "minimum",
        "pattern",
        "format",
    ];
    let node = schema.as_object().expect("schema node is an object");
    for k in node.keys() {
        assert!(
            KNOWN.contains(&k.as_str()),
            "unknown schema keyword `{k}` at {at}"
        );
    }
    if let Some(t) = node.get("type").and_then(Value::as_str) {
        let ok = match t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "number" => v.is_number(),
            "integer" => v.is_i64() || v.is_u64(),
            "boolean" => v.is_boolean(),
            other => panic!("unknown schema type `{other}` at {at}"),
        };
        if !ok {
            out.push(format!("{at}: {v} is not of type {t}"));
            return;
        }
    }
    if let Some(req) = node.get("required").and_then(Value::as_array) {
        for k in req {
            let k = k.as_str().expect("required key");
            if v.get(k).is_none() {
                out.push(format!("{at}: `{k}` is missing"));
            }
        }
    }
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (k, s) in props {
            if let Some(x) = v.get(k) {
                violations(x, s, &format!("{at}.{k}"), out);
            }
        }
    }
    if let (Some(items), Some(list)) = (node.get("items"), v.as_array()) {
        for (i, x) in list.iter().enumerate() {
            violations(x, items, &format!("{at}[{i}]"), out);
        }
    }
    if let Some(allowed) = node.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        out.push(format!(
            "{at}: {v} is not one of {}",
            Value::from(allowed.clone())
        ));
    }
    if let (Some(min), Some(s)) = (node.get("minLength").and_then(Value::as_u64), v.as_str())
        && (s.chars().count() as u64) < min
    {
        out.push(format!("{at}: {s:?} is shorter than {min}"));
    }
    if let (Some(min), Some(n)) = (node.get("minimum").and_then(Value::as_f64), v.as_f64())
        && n < min
    {
        out.push(format!("{at}: {n} is below {min}"));
    }
    if let (Some(p), Some(s)) = (node.get("pattern").and_then(Value::as_str), v.as_str()) {
        // The schema's only pattern: task ids `N.N` or `N.N.N`.
        assert_eq!(p, r"^\d+\.\d+(\.\d+)?$", "unknown pattern at {at}");
        let parts: Vec<&str> = s.split('.').collect();
        let ok = (2..=3).contains(&parts.len())
            && parts
                .iter()
                .all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            out.push(format!("{at}: {s:?} does not match {p}"));
        }
    }
    if let (Some(f), Some(s)) = (node.get("format").and_then(Value::as_str), v.as_str()) {
        assert_eq!(f, "date-time", "unknown format at {at}");
        if chrono::DateTime::parse_from_rfc3339(s).is_err() {
            out.push(format!("{at}: {s:?} is not an RFC 3339 date-time"));
        }
    }
}

/// A status file orch writes (every task state, notes, an error, a skip reason, a VERIFY step)
/// meets the earlier system's schema: the status file stays the protocol.
#[test]
fn the_status_file_orch_writes_meets_the_shared_schema() {
    let Some(schema) = status_schema() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let d = tmp.path();
    support::write_file(
        d,
        "plan.md",
        "# Demo plan\n\n## Phase 1: Setup\n- [ ] 1.1 Create `src/a.rs`\n- [ ] 1.2 Create `src/b.rs`\n\
         - [ ] 1.3 Create `src/c.rs`\n- [ ] 1.4 Create `src/d.rs`\n\n**VERIFY Phase 1:**\n- Files exist\n\n\
         ## Phase 2: Build\n- [ ] 2.1 Wire a and b (depends: 1.1)\n- [ ] 2.1.1 Sub-task\n",
    );
    for args in [
        &["task", "start", "1.1"][..],
        &["task", "done", "1.1", "--note", "made a"],
        &["task", "fail", "1.2", "--error", "disk full"],
        &["task", "skip", "1.3", "--reason", "not needed"],
        &["task", "start", "1.4"],
    ] {
        let mut full = args.to_vec();
        full.extend(["--plan", "plan.md"]);
        let out = support::wait(
            support::orch_in(d, &full, &["ORCH_PLAN", "ORCH_STATUS_FILE"])
                .spawn()
                .expect("spawn orch"),
        );
        let (code, _, err) = support::code_out_err(&out);
        assert_eq!(code, 0, "orch {full:?}: {err}");
    }
    let text =
        std::fs::read_to_string(d.join(".orch/state/plan/status.json")).expect("status file");
    let doc: Value = serde_json::from_str(&text).expect("status file is JSON");
    let statuses: Vec<(&str, &str)> = doc["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| {
            (
                t["id"].as_str().expect("id"),
                t["status"].as_str().expect("status"),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("1.1", "completed"),
            ("1.2", "failed"),
            ("1.3", "skipped"),
            ("1.4", "in_progress"),
            ("2.1", "pending"),
            ("2.1.1", "pending")
        ]
    );
    let mut out = Vec::new();
    violations(&doc, &schema, "$", &mut out);
    assert!(
        out.is_empty(),
        "the status file breaks the schema:\n{}\n{text}",
        out.join("\n")
    );

    // The checker sees a broken document: a verify id in `tasks`, an unknown status, a missing
    // `planName`, a date that is not one.
    let mut bad = doc.clone();
    bad["tasks"][0]["id"] = "V1".into();
    bad["tasks"][1]["status"] = "done".into();
    bad["createdAt"] = "yesterday".into();
    bad.as_object_mut().expect("object").remove("planName");
    let mut out = Vec::new();
    violations(&bad, &schema, "$", &mut out);
    assert_eq!(
        out,
        [
            "$: `planName` is missing",
            "$.createdAt: \"yesterday\" is not an RFC 3339 date-time",
            "$.tasks[0].id: \"V1\" does not match ^\\d+\\.\\d+(\\.\\d+)?$",
            "$.tasks[1].status: \"done\" is not one of [\"pending\",\"in_progress\",\"completed\",\"failed\",\"skipped\"]",
        ]
    );
}
