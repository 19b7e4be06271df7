//! Every plan of ../shared/corpus parses, and its task ids, phases and `depends:` lists match
//! an independent reading of the earlier system's grammar; the status files orch writes meet
//! ../shared/compat/plan-status.schema.json. Without ../shared these tests say so and pass,
//! unless `ORCH_REQUIRE_SHARED` is set (CI sets it): then they fail.

use crate::support;

use std::path::{Path, PathBuf};

use orch::plan::{TaskKind, parse_file};
use serde_json::Value;
use support::{
    TIMEOUT, code_out_err, corpus_dir, corpus_files, orch_in, status_schema, wait_within,
};

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

/// The reading commands parse plans without the tasks' files and fill in those they print
/// (`orch::plan::task_files`): on every corpus plan, that gives the plan the parser reads.
#[test]
fn files_filled_in_later_match_the_parser_on_every_corpus_plan() {
    let Some(dir) = corpus_dir() else {
        return;
    };
    for f in &corpus_files(&dir) {
        let text = std::fs::read_to_string(f).expect("utf-8");
        let full = orch::plan::parse(f, &text);
        let mut lazy = orch::plan::parse_with(f, &text, false);
        for t in &mut lazy.tasks {
            t.files = orch::plan::task_files(t);
        }
        assert!(lazy == full, "{}", f.display());
    }
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

/// `orch ARGS` in `dir`, without the agent variables of the caller: (code, stdout, stderr).
fn orch(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let child = orch_in(
        dir,
        args,
        &["ORCH_PLAN", "ORCH_STATUS_FILE", "ORCH_MANIFEST"],
    )
    .spawn()
    .expect("spawn orch");
    code_out_err(&wait_within(child, TIMEOUT, "orch"))
}

fn json(dir: &Path, args: &[&str]) -> Value {
    let (code, out, err) = orch(dir, args);
    assert_eq!(code, 0, "orch {args:?}: {err}");
    serde_json::from_str(&out).expect("JSON")
}

/// The corpus plans with the most tasks (and at least one phase barrier), copied into a temp
/// dir with the status of their first tasks recorded, so that some tasks are ready and many
/// wait for a phase.
fn large_real_plans(n: usize) -> Option<Vec<(tempfile::TempDir, String)>> {
    let dir = corpus_dir()?;
    let mut plans: Vec<(usize, PathBuf)> = corpus_files(&dir)
        .into_iter()
        .filter_map(|f| {
            let p = parse_file(&f).ok()?;
            (!p.has_errors() && p.phases.len() > 2).then_some((p.tasks.len(), f))
        })
        .collect();
    plans.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let out = plans
        .into_iter()
        .take(n)
        .map(|(_, f)| {
            let tmp = tempfile::tempdir().expect("tempdir");
            std::fs::copy(&f, tmp.path().join("plan.md")).expect("copy plan");
            (tmp, f.display().to_string())
        })
        .collect();
    Some(out)
}

/// `extra` and `--plan plan.md`.
fn args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = extra.to_vec();
    v.extend(["--plan", "plan.md"]);
    v
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_string())
        .collect()
}

#[test]
fn next_limits_counts_lists_and_explains_on_real_plans() {
    let Some(plans) = large_real_plans(3) else {
        eprintln!("../shared/corpus not present: skipped");
        return;
    };
    for (tmp, name) in &plans {
        let d = tmp.path();

        // --all: every pending task, ready or blocked, each once.
        let all = json(d, &args(&["next", "--json", "--all"]));
        let ready_total = all["ready_total"].as_u64().expect("ready_total") as usize;
        let blocked_total = all["blocked_total"].as_u64().expect("blocked_total") as usize;
        assert_eq!(ids(&all["tasks"]).len(), ready_total, "{name}");
        assert_eq!(ids(&all["blocked"]).len(), blocked_total, "{name}");
        assert!(
            ready_total > 0 && blocked_total > 2,
            "{name}: {ready_total} / {blocked_total}"
        );
        assert_eq!(all["truncated"], false);
        let by = &all["blocked_by"];
        let counted: u64 = ["phases", "dependencies", "failed", "plans", "sequential"]
            .iter()
            .map(|k| by[k].as_u64().expect("count"))
            .sum();
        assert_eq!(
            counted as usize, blocked_total,
            "{name}: each blocked task counted once"
        );
        for b in all["blocked"].as_array().expect("blocked") {
            let why = b["waiting_for"].as_array().expect("waiting_for");
            assert!(!why.is_empty(), "{name}: {b}");
        }

        // -n 2 limits both lists; the totals stay.
        let two = json(d, &args(&["next", "--json", "-n", "2"]));
        assert_eq!(ids(&two["tasks"]), ids(&all["tasks"])[..ready_total.min(2)]);
        assert_eq!(ids(&two["blocked"]), ids(&all["blocked"])[..2]);
        assert_eq!(two["blocked_total"], all["blocked_total"]);
        assert_eq!(two["truncated"], true);

        // Text: the ready tasks and one summary line; `-n 1` lists one.
        let (code, text, _) = orch(d, &args(&["next", "-n", "1"]));
        assert_eq!(code, 0);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{name}: {text}");
        assert!(lines[0].starts_with(&format!("ready   {}  ", ids(&all["tasks"])[0])));
        assert!(
            lines[1].contains(&format!("{blocked_total} blocked: "))
                && lines[1].contains("`orch next --why ID` explains one, `--all` lists them"),
            "{name}: {}",
            lines[1]
        );
        // --all in text: every blocked task once, grouped by reason.
        let (_, text, _) = orch(d, &args(&["next", "--all"]));
        let mut listed: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("waiting "))
            .flat_map(|l| {
                let names = l.split(": ").next().unwrap_or("");
                let names = names.split(" (").next().unwrap_or("");
                names
                    .split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        listed.sort();
        let mut expected = ids(&all["blocked"]);
        expected.sort();
        assert_eq!(listed, expected, "{name}");

        // --why: a ready task, and a blocked one with everything it waits for.
        let first = &ids(&all["tasks"])[0];
        let (_, why, _) = orch(d, &args(&["next", "--why", first]));
        assert_eq!(
            why.trim(),
            format!("{first}: ready (number 1 in start order)")
        );
        let blocked = &all["blocked"][0];
        let id = blocked["id"].as_str().expect("id");
        let (_, why, _) = orch(d, &args(&["next", "--why", id]));
        let mut lines = why.lines();
        assert_eq!(
            lines.next(),
            Some(format!("{id}: pending, waiting").as_str()),
            "{name}"
        );
        assert!(lines.next().is_some(), "{name}: a reason is given: {why}");
        let v = json(d, &args(&["next", "--why", id, "--json"]));
        assert_eq!(v["id"], id);
        assert_eq!(v["ready"], false);
        assert!(!v["waiting_for"].as_array().expect("reasons").is_empty());
        let (code, _, err) = orch(d, &args(&["next", "--why", "999.999"]));
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("no task `999.999`"), "{err}");

        // Recording the first ready task done moves it out of both lists.
        let (code, _, err) = orch(d, &args(&["task", "done", first]));
        assert_eq!(code, 0, "{err}");
        let after = json(d, &args(&["next", "--json", "--all"]));
        assert!(!ids(&after["tasks"]).contains(first));
        assert!(!ids(&after["blocked"]).contains(first));
    }
}

#[test]
fn status_summarizes_long_real_plans_and_lists_everything_with_all() {
    let Some(plans) = large_real_plans(1) else {
        eprintln!("../shared/corpus not present: skipped");
        return;
    };
    let (tmp, name) = &plans[0];
    let d = tmp.path();
    let v = json(d, &["status", "--plan", "plan.md", "--json"]);
    let phases = v["phases"].as_array().expect("phases").len();
    let (_, short, _) = orch(d, &["status", "--plan", "plan.md"]);
    let (_, long, _) = orch(d, &["status", "--plan", "plan.md", "--all"]);
    // --all: one line per phase after the two header lines.
    assert_eq!(long.lines().count(), 2 + phases, "{name}: {long}");
    if phases > 12 {
        assert!(short.lines().count() < long.lines().count(), "{name}");
        assert!(short.contains("more phases)"), "{short}");
        assert!(short.contains("`orch status --all`"), "{short}");
    } else {
        assert_eq!(short, long, "{name}: a short plan is shown whole");
    }
}
