//! Parses and schedules a generated 10,000-task plan; prints the figures.
//! Run: `cargo bench --bench schedule`. Target: parse + graph + `next` under 50 ms.

use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use orch::graph::{Graph, NodeState, readiness, waves};
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
}
