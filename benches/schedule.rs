//! Parses and schedules a generated 10,000-task plan, and a generated 10,000-task manifest of 20
//! plans with cross-plan dependencies; prints the figures.
//! Run: `cargo bench --bench schedule`. Targets: parse + graph + `next` under 50 ms (one plan)
//! and under 100 ms (20 plans).

use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use orch::graph::{CrossDep, CrossTarget, Graph, NodeState, readiness, waves};
use orch::plan::parse;

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

/// 20 plans of 10 phases × 50 tasks (10,000 tasks), each plan after the first waiting for
/// phase 5 of the one before it (the `depends_on = ["prev:5"]` of a manifest).
fn generate_manifest() -> (Vec<String>, Vec<CrossDep>) {
    let texts = (0..20).map(|_| generate(10, 50)).collect();
    let cross = (1..20)
        .map(|i| CrossDep {
            from: i,
            to: i - 1,
            target: CrossTarget::Phase(5),
        })
        .collect();
    (texts, cross)
}

/// Parse + graph + ready set of the 20-plan manifest: (tasks, median).
fn manifest_figure(runs: usize) -> (usize, Duration) {
    let (texts, cross) = generate_manifest();
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
    let text = generate(100, 100);
    let runs = 15;
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
    let (tasks, t) = manifest_figure(runs);
    println!(
        "20 plans, {tasks} tasks and verification steps, cross-plan dependencies: \
         parse + graph + next {:>8.2} ms   (target < 100 ms)",
        t.as_secs_f64() * 1e3
    );
}
