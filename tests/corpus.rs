//! Every plan of ../shared/corpus (when present) parses, and its task ids, phases and
//! `depends:` lists match an independent reading of the earlier system's grammar.

use std::path::{Path, PathBuf};

use orch::plan::{TaskKind, parse_file};

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
