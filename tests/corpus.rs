//! Every plan of ../shared/corpus (when present) parses, and its task ids, phases and
//! `depends:` lists match an independent reading of the earlier system's grammar.

mod support;

use std::path::{Path, PathBuf};

use orch::plan::{TaskKind, parse_file};
use serde_json::Value;
use support::{TIMEOUT, code_out_err, orch_in, wait_within};

fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    dir.is_dir().then_some(dir)
}

fn corpus_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read corpus dir") {
            let p = e.expect("dir entry").path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

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
        eprintln!("../shared/corpus not present: skipped");
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
