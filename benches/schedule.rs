//! Parses and schedules a generated 10,000-task plan, and a generated 10,000-task manifest of 20
//! plans with cross-plan dependencies; prints the figures.
//! Run: `cargo bench --bench schedule` (`cargo test` runs a tiny size and checks it). Targets: parse + graph + `next` under 50 ms (one plan)
//! and under 100 ms (20 plans).

use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use orch::graph::{CrossDep, CrossTarget, Graph, NodeState, readiness, waves};
use orch::plan::parse;

mod support;
use support::full_size;

/// 100 phases × 100 tasks; every fifth task depends on a task of the previous phase, one
/// [SEQUENTIAL] group and one VERIFY block per phase.
fn generate(phases: usize, per_phase: usize) -> String {
    let mut s = String::from("# Generated plan\n\n");
    for p in 1..=phases {
        let _ = writeln!(s, "## Phase {p}: Phase {p}\n");
        let _ = writeln!(
            s,
            "**Execution Note:** Tasks {p}.1-{p}.3 are [SEQUENTIAL] - same file\n"
        );
        for t in 1..=per_phase {
            if p > 1 && t % 5 == 0 {
                let _ = writeln!(
                    s,
                    "- [ ] {p}.{t} Edit `src/m{t}.rs` (depends: {}.{t})",
                    p - 1
                );
            } else {
                let _ = writeln!(s, "- [ ] {p}.{t} Edit `src/m{t}.rs`\n  - detail line");
            }
        }
        let _ = writeln!(s, "\n**VERIFY Phase {p}:**\n- builds\n");
    }
    s
}

/// `plans` plans of `phases` × `per_phase` tasks (the bench: 20 × 10 × 50, 10,000 tasks), each
/// plan after the first waiting for
/// phase 5 of the one before it (the `depends_on = ["prev:5"]` of a manifest).
fn generate_manifest(
    plans: usize,
    phases: usize,
    per_phase: usize,
) -> (Vec<String>, Vec<CrossDep>) {
    let texts = (0..plans).map(|_| generate(phases, per_phase)).collect();
    let cross = (1..plans)
        .map(|i| CrossDep {
            from: i,
            to: i - 1,
            target: CrossTarget::Phase(5),
        })
        .collect();
    (texts, cross)
}

/// Parse + graph + ready set of the 20-plan manifest: (tasks, median).
fn manifest_figure(runs: usize, size: (usize, usize, usize)) -> (usize, Duration) {
    let (texts, cross) = generate_manifest(size.0, size.1, size.2);
    let names: Vec<String> = (0..texts.len()).map(|i| format!("plan{i}")).collect();
    let mut times = Vec::new();
    let mut tasks = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let plans: Vec<_> = texts
            .iter()
            .zip(&names)
            .map(|(t, n)| parse(Path::new(&format!("{n}.md")), t))
            .collect();
        let graph = Graph::build(&plans, &names, &cross).expect("acyclic");
        let priorities = vec![0; plans.len()];
        let r = readiness(&graph, &plans, &priorities, |_, _| NodeState::Pending);
        times.push(start.elapsed());
        assert!(!r.ready.is_empty());
        tasks = plans.iter().map(|p| p.tasks.len()).sum();
    }
    (tasks, median(times))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // The full sizes under `cargo bench`; under `cargo test`, a tiny plan and manifest whose
    // counts and readiness are checked.
    let full = full_size();
    let (phases, per_phase, runs) = if full { (100, 100, 15) } else { (4, 6, 2) };
    let manifest_size = if full { (20, 10, 50) } else { (3, 6, 5) };
    let text = generate(phases, per_phase);
    let (mut t_parse, mut t_graph, mut t_next, mut t_waves, mut t_total) =
        (vec![], vec![], vec![], vec![], vec![]);
    let mut tasks = 0;
    for _ in 0..runs {
        let start = Instant::now();
        let plan = parse(Path::new("generated.md"), &text);
        let parsed = Instant::now();
        let graph = Graph::of_plan(&plan).expect("generated plan is acyclic");
        let built = Instant::now();
        let r = readiness(&graph, std::slice::from_ref(&plan), &[0], |_, _| {
            NodeState::Pending
        });
        let nexted = Instant::now();
        let w = waves(&graph);
        let waved = Instant::now();
        assert!(!r.ready.is_empty() && !w.critical_path.is_empty());
        assert!(!plan.has_errors(), "{:#?}", plan.diagnostics);
        // Every task and one VERIFY step per phase; phase 1 is all ready but its
        // [SEQUENTIAL] group, of which only the first task is.
        assert_eq!(plan.tasks.len(), phases * (per_phase + 1));
        assert_eq!(r.ready.len(), per_phase - 2, "ready in phase 1");
        tasks = plan.tasks.len();
        t_parse.push(parsed - start);
        t_graph.push(built - parsed);
        t_next.push(nexted - built);
        t_waves.push(waved - nexted);
        t_total.push(nexted - start);
    }
    println!(
        "plan: {tasks} tasks and verification steps, {} KiB of markdown, median of {runs} runs",
        text.len() / 1024
    );
    println!(
        "parse                 {:>8.2} ms",
        median(t_parse).as_secs_f64() * 1e3
    );
    println!(
        "graph                 {:>8.2} ms",
        median(t_graph).as_secs_f64() * 1e3
    );
    println!(
        "next (ready set)      {:>8.2} ms",
        median(t_next).as_secs_f64() * 1e3
    );
    println!(
        "parse + graph + next  {:>8.2} ms   (target < 50 ms)",
        median(t_total).as_secs_f64() * 1e3
    );
    println!(
        "waves + critical path {:>8.2} ms",
        median(t_waves).as_secs_f64() * 1e3
    );
    let (tasks, t) = manifest_figure(runs, manifest_size);
    let (n, ph, per) = manifest_size;
    assert_eq!(tasks, n * ph * (per + 1), "tasks of the manifest");
    println!(
        "{n} plans, {tasks} tasks and verification steps, cross-plan dependencies: \
         parse + graph + next {:>8.2} ms   (target < 100 ms)",
        t.as_secs_f64() * 1e3
    );
}
