//! How close the scheduler of `orch up` gets to the lower bound, and how much faster it is than
//! the earlier system's batches, on generated workloads and on the plans in `../shared/corpus/`
//! (skipped with a message when that directory is absent).
//! Run: `cargo bench --bench simulate` (`cargo test` runs a tiny size and checks it). Targets: orch ÷ lower bound ≤ 1.05 on average;
//! batched ÷ orch ≥ 1.3 at 4 slots. The lower bound is max(critical path, work ÷ slots); the
//! tight bound also splits the work at phase barriers and counts [SEQUENTIAL] groups (see
//! `orch::simulate::tight_bound`).
//!
//! Durations: generated tasks carry `(est: …)` estimates of 5–60 min; corpus tasks have none
//! and get the 10 min default. Each task really takes its estimate times a seeded log-normal
//! factor (median 1, σ 0.5); the scheduler only sees the estimates. Five seeds per workload.

use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use orch::graph::{CrossDep, CrossTarget, Graph};
use orch::plan::{Plan, parse};
use orch::simulate::{DurationModel, Inputs, Policy, SplitMix64, simulate};

mod support;
use support::full_size;

const SLOTS: [usize; 3] = [2, 4, 8];
const SEEDS: [u64; 5] = [1, 2, 3, 4, 5];

struct Workload {
    name: String,
    plans: Vec<Plan>,
    cross: Vec<CrossDep>,
}

/// `(est: Nm)` with N from 5 to 60 in steps of 5.
fn est(rng: &mut SplitMix64) -> String {
    format!("(est: {}m)", 5 + rng.next_u64() % 12 * 5)
}

fn plan(name: &str, text: &str) -> Plan {
    let p = parse(Path::new(&format!("{name}.md")), text);
    assert!(!p.has_errors(), "{name}: {:#?}", p.diagnostics);
    p
}

fn one(name: &str, text: String) -> Workload {
    Workload {
        name: name.into(),
        plans: vec![plan(name, &text)],
        cross: Vec::new(),
    }
}

/// `k` independent chains of `len` tasks in one phase.
fn chains(rng: &mut SplitMix64, k: usize, len: usize) -> Workload {
    let mut s = String::from("# Chains\n## Phase 1: All\n");
    for c in 0..k {
        for i in 1..=len {
            let id = c * len + i;
            let dep = if i > 1 {
                format!(" (depends: 1.{})", id - 1)
            } else {
                String::new()
            };
            let _ = writeln!(s, "- [ ] 1.{id} t {}{dep}", est(rng));
        }
    }
    one(&format!("chains {k}×{len}"), s)
}

/// One task, `n` tasks after it, one task after them; `rounds` times in a row.
fn fan(rng: &mut SplitMix64, n: usize, rounds: usize) -> Workload {
    let mut s = String::from("# Fan\n");
    for r in 1..=rounds {
        let _ = writeln!(s, "## Phase {r}: Round {r}");
        let _ = writeln!(s, "- [ ] {r}.1 split {}", est(rng));
        for i in 2..=n + 1 {
            let _ = writeln!(s, "- [ ] {r}.{i} work {} (depends: {r}.1)", est(rng));
        }
        let all: Vec<String> = (2..=n + 1).map(|i| format!("{r}.{i}")).collect();
        let _ = writeln!(
            s,
            "- [ ] {r}.{} join {} (depends: {})",
            n + 2,
            est(rng),
            all.join(", ")
        );
    }
    one(&format!("fan-out/in {n}×{rounds}"), s)
}

/// `k` diamonds a → {b, c} → d side by side, each `depth` diamonds deep.
fn diamonds(rng: &mut SplitMix64, k: usize, depth: usize) -> Workload {
    let mut s = String::from("# Diamonds\n## Phase 1: All\n");
    let mut id = 0;
    for _ in 0..k {
        let mut prev: Option<usize> = None;
        for _ in 0..depth {
            let dep = prev
                .map(|p| format!(" (depends: 1.{p})"))
                .unwrap_or_default();
            let a = id + 1;
            let _ = writeln!(s, "- [ ] 1.{a} a {}{dep}", est(rng));
            let _ = writeln!(s, "- [ ] 1.{} b {} (depends: 1.{a})", a + 1, est(rng));
            let _ = writeln!(s, "- [ ] 1.{} c {} (depends: 1.{a})", a + 2, est(rng));
            let _ = writeln!(
                s,
                "- [ ] 1.{} d {} (depends: 1.{}, 1.{})",
                a + 3,
                est(rng),
                a + 1,
                a + 2
            );
            prev = Some(a + 3);
            id += 4;
        }
    }
    one(&format!("diamonds {k}×{depth}"), s)
}

/// `phases` phases of `per_phase` independent tasks, a blocking VERIFY after each.
fn wide(rng: &mut SplitMix64, phases: usize, per_phase: usize) -> Workload {
    let mut s = String::from("# Wide\n");
    for p in 1..=phases {
        let _ = writeln!(s, "## Phase {p}: P{p}");
        for t in 1..=per_phase {
            let _ = writeln!(s, "- [ ] {p}.{t} task {}", est(rng));
        }
        let _ = writeln!(s, "\n**VERIFY Phase {p}:**\n- builds\n");
    }
    one(&format!("wide {phases}×{per_phase}"), s)
}

/// 10 plans × 50 tasks (5 phases × 10, some `depends:` inside a phase); plan i > 0 waits for
/// phase 1–3 of an earlier plan.
fn many_plans(rng: &mut SplitMix64) -> Workload {
    let mut plans = Vec::new();
    let mut cross = Vec::new();
    for i in 0..10 {
        let mut s = format!("# Plan {i}\n");
        for p in 1..=5 {
            let _ = writeln!(s, "## Phase {p}: P{p}");
            for t in 1..=10 {
                let dep = if t > 1 && rng.next_u64().is_multiple_of(3) {
                    format!(" (depends: {p}.{})", 1 + rng.next_u64() % (t as u64 - 1))
                } else {
                    String::new()
                };
                let _ = writeln!(s, "- [ ] {p}.{t} task {}{dep}", est(rng));
            }
        }
        plans.push(plan(&format!("p{i}"), &s));
        if i > 0 {
            cross.push(CrossDep {
                from: i,
                to: (rng.next_u64() % i as u64) as usize,
                target: CrossTarget::Phase(1 + (rng.next_u64() % 3) as u32),
            });
        }
    }
    Workload {
        name: "10 plans × 50 tasks".into(),
        plans,
        cross,
    }
}

/// The first `most` corpus plans with open tasks, as workloads; `None` when `../shared/corpus`
/// is absent (a failure when `ORCH_REQUIRE_SHARED` is set, as for the tests).
fn corpus(most: usize) -> Option<Vec<Workload>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    if !dir.is_dir() {
        assert!(
            !std::env::var("ORCH_REQUIRE_SHARED").is_ok_and(|v| !v.is_empty() && v != "0"),
            "ORCH_REQUIRE_SHARED is set but `{}` does not exist",
            dir.display()
        );
        return None;
    }
    let mut files: Vec<PathBuf> = Vec::new();
    let mut stack = vec![dir];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for f in files {
        if out.len() == most {
            break;
        }
        let Ok(text) = std::fs::read_to_string(&f) else {
            skipped.push(f);
            continue;
        };
        let p = parse(&f, &text);
        let open = p.tasks.iter().filter(|t| !t.done).count();
        if p.has_errors() || open == 0 {
            skipped.push(f);
            continue;
        }
        out.push(Workload {
            name: f
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            plans: vec![p],
            cross: Vec::new(),
        });
    }
    println!(
        "corpus: {} plans with open tasks simulated, {} skipped (errors or nothing left to do)",
        out.len(),
        skipped.len()
    );
    Some(out)
}

#[derive(Default)]
struct Stats {
    /// orch ÷ lower bound, per slot count.
    vs_bound: [Vec<f64>; 3],
    /// orch ÷ the tight bound (phase barriers, sequential groups), per slot count.
    vs_tight: [Vec<f64>; 3],
    /// batched ÷ orch, per slot count.
    vs_batched: [Vec<f64>; 3],
    phase80: [Vec<f64>; 3],
}

/// Runs every workload with each seed of `seeds` (`None`: every task takes its estimate).
fn run(workloads: &[Workload], seeds: &[Option<u64>], stats: &mut Stats, verbose: bool) {
    for w in workloads {
        let names: Vec<String> = (0..w.plans.len()).map(|i| format!("p{i}")).collect();
        let graph = Graph::build(&w.plans, &names, &w.cross).expect("acyclic");
        let priorities = vec![0; w.plans.len()];
        let all: Vec<usize> = (0..w.plans.len()).collect();
        let mut line = format!("  {:<24}", w.name);
        for (k, &slots) in SLOTS.iter().enumerate() {
            let (mut sum_bound, mut sum_batched) = (0.0, 0.0);
            for &seed in seeds {
                let model = DurationModel {
                    default_s: 600,
                    seed,
                };
                let inputs = Inputs::new(&graph, &w.plans, model, &[], &all);
                let wl = inputs.workload(&graph, &w.plans, &priorities);
                let o = simulate(&wl, Policy::Orch, slots).expect("runs");
                let b = simulate(&wl, Policy::Batched, slots).expect("runs");
                let p = simulate(&wl, Policy::Phase80, slots).expect("runs");
                // Sane: no schedule beats a lower bound, and every policy ends.
                assert!(
                    o.makespan >= o.lower_bound() && o.makespan >= o.tight_bound,
                    "{}: orch's makespan {} under a bound ({} / {})",
                    w.name,
                    o.makespan,
                    o.lower_bound(),
                    o.tight_bound
                );
                assert!(b.makespan > 0 && p.makespan > 0, "{}", w.name);
                let vs_bound = o.makespan as f64 / o.lower_bound().max(1) as f64;
                let vs_batched = b.makespan as f64 / o.makespan.max(1) as f64;
                stats.vs_bound[k].push(vs_bound);
                stats.vs_tight[k].push(o.makespan as f64 / o.tight_bound.max(1) as f64);
                stats.vs_batched[k].push(vs_batched);
                stats.phase80[k].push(p.makespan as f64 / o.makespan.max(1) as f64);
                sum_bound += vs_bound;
                sum_batched += vs_batched;
            }
            let n = seeds.len() as f64;
            let _ = write!(
                line,
                "  {slots} slots: {:.3} / {:.2}×",
                sum_bound / n,
                sum_batched / n
            );
        }
        if verbose {
            println!("{line}");
        }
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::min)
}

fn report(title: &str, s: &Stats) {
    println!("\n{title}");
    println!(
        "  {:<6} {:>11} {:>10} {:>11} {:>10} {:>13} {:>12} {:>13}",
        "slots",
        "orch÷bound",
        "(worst)",
        "orch÷tight",
        "(worst)",
        "batched÷orch",
        "(least)",
        "phase80÷orch"
    );
    for (k, slots) in SLOTS.iter().enumerate() {
        println!(
            "  {:<6} {:>11.3} {:>10.3} {:>11.3} {:>10.3} {:>12.2}× {:>11.2}× {:>12.2}×",
            slots,
            mean(&s.vs_bound[k]),
            max(&s.vs_bound[k]),
            mean(&s.vs_tight[k]),
            max(&s.vs_tight[k]),
            mean(&s.vs_batched[k]),
            min(&s.vs_batched[k]),
            mean(&s.phase80[k]),
        );
    }
}

fn main() {
    let started = Instant::now();
    let full = full_size();
    let mut rng = SplitMix64(2026);
    let generated = if full {
        vec![
            chains(&mut rng, 4, 10),
            chains(&mut rng, 8, 6),
            fan(&mut rng, 12, 3),
            fan(&mut rng, 30, 1),
            diamonds(&mut rng, 3, 5),
            diamonds(&mut rng, 6, 3),
            wide(&mut rng, 1, 40),
            wide(&mut rng, 5, 12),
            many_plans(&mut rng),
        ]
    } else {
        println!("tiny run (`cargo bench --bench simulate` runs the full one)");
        vec![
            chains(&mut rng, 2, 3),
            fan(&mut rng, 4, 2),
            diamonds(&mut rng, 2, 2),
            wide(&mut rng, 2, 3),
        ]
    };
    let seeds: Vec<Option<u64>> = SEEDS[..if full { SEEDS.len() } else { 2 }]
        .iter()
        .copied()
        .map(Some)
        .collect();
    println!(
        "per workload, mean of {} seeds: orch ÷ lower bound / batched ÷ orch",
        seeds.len()
    );
    let mut gen_stats = Stats::default();
    run(&generated, &seeds, &mut gen_stats, true);
    report("generated workloads, seeded random durations", &gen_stats);
    let mut exact = Stats::default();
    run(&generated, &[None], &mut exact, false);
    report(
        "generated workloads, durations = estimates (the scheduler knows them)",
        &exact,
    );
    match corpus(if full { usize::MAX } else { 5 }) {
        Some(plans) => {
            let mut corpus_stats = Stats::default();
            run(&plans, &seeds, &mut corpus_stats, false);
            report(
                "corpus plans (../shared/corpus), seeded random durations",
                &corpus_stats,
            );
        }
        None => println!("\n../shared/corpus not found: corpus figures skipped"),
    }
    println!("\n{:.1} s in all", started.elapsed().as_secs_f64());
}
