//! The simulator and the scheduler it runs, on small graphs whose makespans are worked out by
//! hand in the comments.

use std::path::Path;

use super::*;
use crate::graph::{CrossDep, CrossTarget};
use crate::plan::parse;

fn plans(texts: &[&str]) -> Vec<Plan> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let p = parse(Path::new(&format!("p{i}.md")), t);
            assert!(!p.has_errors(), "{:#?}", p.diagnostics);
            p
        })
        .collect()
}

/// A simulation of `texts` joined by `cross`, every task its estimate (default 10 s).
struct Sim {
    plans: Vec<Plan>,
    graph: Graph,
    inputs: Inputs,
    priorities: Vec<i64>,
}

impl Sim {
    fn new(texts: &[&str], cross: &[CrossDep]) -> Sim {
        let plans = plans(texts);
        let names: Vec<String> = (0..plans.len()).map(|i| format!("p{i}")).collect();
        let graph = Graph::build(&plans, &names, cross).expect("acyclic");
        let model = DurationModel {
            default_s: 10,
            seed: None,
        };
        let all: Vec<usize> = (0..plans.len()).collect();
        let inputs = Inputs::new(&graph, &plans, model, &[], &all);
        Sim {
            priorities: vec![0; plans.len()],
            plans,
            graph,
            inputs,
        }
    }

    fn run(&self, policy: Policy, slots: usize) -> Outcome {
        let w = self
            .inputs
            .workload(&self.graph, &self.plans, &self.priorities);
        simulate(&w, policy, slots).expect("every task runs")
    }

    fn makespan(&self, policy: Policy, slots: usize) -> u64 {
        self.run(policy, slots).makespan
    }

    /// (task id, start, end) of plan 0's tasks, in start order.
    fn starts(&self, o: &Outcome) -> Vec<(String, u64, u64)> {
        o.spans
            .iter()
            .map(|s| {
                let (p, t) = self.graph.task_of(s.node).expect("task");
                (self.plans[p].tasks[t].id.clone(), s.start, s.end)
            })
            .collect()
    }
}

const CHAIN: &str = "## Phase 1: A\n\
- [ ] 1.1 a (est: 10s)\n\
- [ ] 1.2 b (est: 20s) (depends: 1.1)\n\
- [ ] 1.3 c (est: 30s) (depends: 1.2)\n";

#[test]
fn a_chain_takes_its_sum_at_any_slot_count() {
    let sim = Sim::new(&[CHAIN], &[]);
    for policy in Policy::ALL {
        for slots in [1, 2, 4, 8] {
            let o = sim.run(policy, slots);
            assert_eq!(o.makespan, 60, "{policy} with {slots} slots");
            assert_eq!(o.critical_path, 60);
            assert_eq!(o.work, 60);
            assert_eq!(o.lower_bound(), 60);
        }
    }
    let o = sim.run(Policy::Orch, 4);
    assert_eq!(
        sim.starts(&o),
        [
            ("1.1".into(), 0, 10),
            ("1.2".into(), 10, 30),
            ("1.3".into(), 30, 60)
        ]
    );
    // One agent busy out of four for the whole run; parallelism saves nothing.
    assert!((o.utilisation() - 0.25).abs() < 1e-9);
    assert!(o.parallel_efficiency().abs() < 1e-9);
}

const DIAMOND: &str = "## Phase 1: A\n\
- [ ] 1.1 a (est: 10s)\n\
- [ ] 1.2 b (est: 20s) (depends: 1.1)\n\
- [ ] 1.3 c (est: 30s) (depends: 1.1)\n\
- [ ] 1.4 d (est: 5s) (depends: 1.2, 1.3)\n";

#[test]
fn a_diamond_runs_its_middle_side_by_side() {
    let sim = Sim::new(&[DIAMOND], &[]);
    // 2 slots: a + max(b, c) + d = 10 + 30 + 5; 1 slot: the sum 10 + 20 + 30 + 5.
    assert_eq!(sim.makespan(Policy::Orch, 2), 45);
    assert_eq!(sim.makespan(Policy::Orch, 4), 45);
    assert_eq!(sim.makespan(Policy::Orch, 1), 65);
    let o = sim.run(Policy::Orch, 2);
    assert_eq!(o.lower_bound(), 45);
    // Busy 65 s of 2 × 45 s; saves 1 − 45/65 of the sequential time.
    assert!((o.utilisation() - 65.0 / 90.0).abs() < 1e-9);
    assert!((o.parallel_efficiency() - 20.0 / 65.0).abs() < 1e-9);
    // c (the longer branch) starts first, in slot 0.
    assert_eq!(o.spans[1].node, sim.graph.task_node[0][2]);
    assert_eq!(o.spans[1].slot, 0);
}

#[test]
fn a_plan_waiting_for_a_phase_of_another_starts_when_that_phase_ends() {
    let a = "## Phase 1: A\n- [ ] 1.1 x (est: 10s)\n- [ ] 1.2 y (est: 20s)\n\
             ## Phase 2: B\n- [ ] 2.1 z (est: 30s)\n";
    let b = "## Phase 1: A\n- [ ] 1.1 w (est: 15s)\n";
    // depends_on = ["p0:1"] for p1.
    let cross = [CrossDep {
        from: 1,
        to: 0,
        target: CrossTarget::Phase(1),
    }];
    let sim = Sim::new(&[a, b], &cross);
    // 2 slots: x 0–10, y 0–20; phase 1 done at 20: z 20–50 and w 20–35. 1 slot: 75.
    let o = sim.run(Policy::Orch, 2);
    assert_eq!(o.makespan, 50);
    assert_eq!(o.lower_bound(), 50);
    let w_node = sim.graph.task_node[1][0];
    let w = o.spans.iter().find(|s| s.node == w_node).expect("w ran");
    assert_eq!((w.start, w.end), (20, 35));
    assert_eq!(sim.makespan(Policy::Orch, 1), 75);
}

/// Three short independent tasks listed before a chain of three.
const CHAIN_LAST: &str = "## Phase 1: A\n\
- [ ] 1.1 x\n- [ ] 1.2 y\n- [ ] 1.3 z\n\
- [ ] 1.4 c1\n- [ ] 1.5 c2 (depends: 1.4)\n- [ ] 1.6 c3 (depends: 1.5)\n";

#[test]
fn critical_path_first_beats_file_order() {
    let sim = Sim::new(&[CHAIN_LAST], &[]);
    // Critical path first, 2 slots, 10 s each: the chain never waits: 3 × 10 s.
    assert_eq!(sim.makespan(Policy::Orch, 2), 30);
    // File order (no path lengths): x, y at 0; z, c1 at 10; c2 at 20; c3 at 30: 40 s.
    let flat = vec![0; sim.graph.nodes.len()];
    let w = Workload {
        tails: &flat,
        ..sim.inputs.workload(&sim.graph, &sim.plans, &sim.priorities)
    };
    let o = simulate(&w, Policy::Orch, 2).expect("runs");
    assert_eq!(o.makespan, 40);
}

#[test]
fn estimates_weigh_the_path_not_the_task_count() {
    // 1.1 alone takes 60 s; 1.2 → 1.3 is two tasks of 10 s. With 1 slot and task counts,
    // the two-task chain would go first; by estimated time 1.1 is the longer path.
    let text = "## Phase 1: A\n- [ ] 1.1 long (est: 1m)\n- [ ] 1.2 a (est: 10s)\n\
                - [ ] 1.3 b (est: 10s) (depends: 1.2)\n";
    let sim = Sim::new(&[text], &[]);
    let o = sim.run(Policy::Orch, 1);
    assert_eq!(sim.starts(&o)[0].0, "1.1");
    // Priority markers still come before the path: (HIGH) on the short chain wins.
    let marked = text.replace("1.2 a", "1.2 a (HIGH)");
    let sim = Sim::new(&[&marked], &[]);
    let o = sim.run(Policy::Orch, 1);
    assert_eq!(sim.starts(&o)[0].0, "1.2");
}

#[test]
fn batched_waits_for_the_whole_batch() {
    let text = "## Phase 1: A\n- [ ] 1.1 a (est: 30s)\n- [ ] 1.2 b\n- [ ] 1.3 c\n- [ ] 1.4 d\n";
    let sim = Sim::new(&[text], &[]);
    // orch, 2 slots: a 0–30 beside b 0–10, c 10–20, d 20–30: 30 s.
    assert_eq!(sim.makespan(Policy::Orch, 2), 30);
    // batched: {a, b} 0–30, then {c, d} 30–40: 40 s.
    let o = sim.run(Policy::Batched, 2);
    assert_eq!(o.makespan, 40);
    assert_eq!(
        sim.starts(&o),
        [
            ("1.1".into(), 0, 30),
            ("1.2".into(), 0, 10),
            ("1.3".into(), 30, 40),
            ("1.4".into(), 30, 40)
        ]
    );
}

#[test]
fn phase80_opens_a_phase_when_four_fifths_of_the_earlier_ones_are_done() {
    let text = "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n- [ ] 1.3 c\n- [ ] 1.4 d\n- [ ] 1.5 e\n\
                ## Phase 2: B\n- [ ] 2.1 f\n";
    let sim = Sim::new(&[text], &[]);
    // orch, 4 slots: 1.1–1.4 at 0, 1.5 at 10, 2.1 only after all of phase 1: 20–30.
    let o = sim.run(Policy::Orch, 4);
    assert_eq!(o.makespan, 30);
    assert_eq!(sim.starts(&o)[5], ("2.1".into(), 20, 30));
    // phase80: at 10, 4 of 5 phase-1 tasks are done (80 %): 2.1 starts beside 1.5.
    let o = sim.run(Policy::Phase80, 4);
    assert_eq!(o.makespan, 20);
    assert_eq!(
        sim.starts(&o)[4..],
        [("1.5".into(), 10, 20), ("2.1".into(), 10, 20)]
    );
    // With 3 of 5 done (60 %) the phase stays closed: 3 slots: 1.1–1.3 0–10, 1.4, 1.5 10–20,
    // then 2.1 at 20 (at 10 only 60 % were done).
    let o = sim.run(Policy::Phase80, 3);
    assert_eq!(sim.starts(&o)[5], ("2.1".into(), 20, 30));
}

#[test]
fn the_tight_bound_splits_the_work_at_phase_barriers() {
    // Phase 1: five tasks of 20 s; phase 2: one of 20 s; 4 slots. Simple bound:
    // max(critical path 40, work 120 ÷ 4) = 40. At the barrier: max(20, 100 ÷ 4) before it,
    // max(20, 20 ÷ 4) after it: 45. The real schedule: four tasks 0–20, the fifth 20–40, f 40–60.
    let text = "## Phase 1: A\n- [ ] 1.1 a (est: 20s)\n- [ ] 1.2 b (est: 20s)\n\
                - [ ] 1.3 c (est: 20s)\n- [ ] 1.4 d (est: 20s)\n- [ ] 1.5 e (est: 20s)\n\
                ## Phase 2: B\n- [ ] 2.1 f (est: 20s)\n";
    let sim = Sim::new(&[text], &[]);
    let o = sim.run(Policy::Orch, 4);
    assert_eq!(o.makespan, 60);
    assert_eq!(o.lower_bound(), 40);
    assert_eq!(o.tight_bound, 45);
    // phase80 breaks the phase rule: f starts at 20 beside e: 40 s, under the tight bound.
    assert_eq!(sim.makespan(Policy::Phase80, 4), 40);
}

#[test]
fn the_tight_bound_chains_sequential_phases() {
    // Every phase is one [SEQUENTIAL] group: nothing can overlap, the bound is the sum (90 s),
    // while the simple bound only sees the longest chain through the barriers (20 + 30 + 20).
    let text = "## Phase 1: A\n**Execution Note:** Tasks 1.1-1.2 are [SEQUENTIAL] - one file\n\
                - [ ] 1.1 a (est: 10s)\n- [ ] 1.2 b (est: 20s)\n\
                ## Phase 2: B\n**Execution Note:** Tasks 2.1-2.2 are [SEQUENTIAL] - one file\n\
                - [ ] 2.1 c (est: 30s)\n- [ ] 2.2 d (est: 10s)\n\
                ## Phase 3: C\n- [ ] 3.1 e (est: 20s)\n";
    let sim = Sim::new(&[text], &[]);
    let o = sim.run(Policy::Orch, 4);
    assert_eq!(o.makespan, 90);
    assert_eq!(o.lower_bound(), 70);
    assert_eq!(o.tight_bound, 90);
}

#[test]
fn tasks_already_done_take_no_time() {
    let text = CHAIN.replace("- [ ] 1.2", "- [x] 1.2");
    let sim = Sim::new(&[&text], &[]);
    // 1.3 waited only for 1.2, which is done: it runs beside 1.1 (10 s and 30 s).
    let o = sim.run(Policy::Orch, 2);
    assert_eq!(o.makespan, 30);
    assert_eq!(o.work, 40);
    assert_eq!(o.spans.len(), 2);
    assert_eq!(sim.makespan(Policy::Orch, 1), 40);
}

#[test]
fn sequential_groups_never_overlap_in_the_simulation() {
    let text = "## Phase 1: A\n**Execution Note:** Tasks 1.1-1.2 are [SEQUENTIAL] - same file\n\
                - [ ] 1.1 a\n- [ ] 1.2 b\n- [ ] 1.3 c\n";
    let sim = Sim::new(&[text], &[]);
    // 3 slots: 1.1 and 1.3 at 0, 1.2 only after 1.1: 20 s. The simple bound does not know
    // the group (max(10, 30 ÷ 3) = 10); the tight one does (the group's 20 s).
    let o = sim.run(Policy::Orch, 3);
    assert_eq!(o.makespan, 20);
    assert_eq!(o.lower_bound(), 10);
    assert_eq!(o.tight_bound, 20);
}

#[test]
fn plan_limits_cap_agents_per_plan() {
    let text = "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n- [ ] 1.3 c\n";
    let mut sim = Sim::new(&[text], &[]);
    sim.inputs.plan_limit = vec![1];
    assert_eq!(sim.makespan(Policy::Orch, 3), 30);
    sim.inputs.plan_limit = vec![2];
    assert_eq!(sim.makespan(Policy::Orch, 3), 20);
}

#[test]
fn pick_fills_free_slots_in_ready_order_within_plan_limits() {
    let ps = plans(&[
        "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n- [ ] 1.3 c\n",
        "## Phase 1: A\n- [ ] 1.1 d\n- [ ] 1.2 e\n",
    ]);
    let g = Graph::build(&ps, &[], &[]).expect("acyclic");
    let n = |p: usize, t: usize| g.task_node[p][t];
    let ready = [n(0, 0), n(0, 1), n(1, 0), n(0, 2), n(1, 1)];
    let slots = |running, per_plan: &'static [usize], limit: &'static [usize]| Slots {
        max_agents: 3,
        running,
        per_plan,
        plan_limit: limit,
    };
    // Plan 0 may run 2, plan 1 one: a, b, d.
    assert_eq!(
        pick(&g, &ready, slots(0, &[0, 0], &[2, 1]), |_| true),
        [n(0, 0), n(0, 1), n(1, 0)]
    );
    // One agent of plan 1 already runs: its tasks are passed over, 2 slots left.
    assert_eq!(
        pick(&g, &ready, slots(1, &[0, 1], &[2, 1]), |_| true),
        [n(0, 0), n(0, 1)]
    );
    // Plan 0 may not start (not prepared): only plan 1's first task.
    assert_eq!(
        pick(&g, &ready, slots(0, &[0, 0], &[5, 1]), |p| p == 1),
        [n(1, 0)]
    );
    // Every slot busy: nothing.
    assert!(pick(&g, &ready, slots(3, &[0, 0], &[5, 5]), |_| true).is_empty());
}

#[test]
fn seeded_durations_are_reproducible_and_near_the_estimate() {
    let text: String = std::iter::once("## Phase 1: A\n".to_string())
        .chain((1..=200).map(|i| format!("- [ ] 1.{i} t (est: 100s)\n")))
        .collect();
    let ps = plans(&[&text]);
    let g = Graph::of_plan(&ps[0]).expect("acyclic");
    let model = |seed| DurationModel {
        default_s: 10,
        seed,
    };
    let a = model(Some(7)).durations(&g, &ps);
    assert_eq!(a, model(Some(7)).durations(&g, &ps));
    assert_ne!(a, model(Some(8)).durations(&g, &ps));
    assert_eq!(model(None).durations(&g, &ps), vec![100; 200]);
    assert!(a.iter().all(|d| (25..=400).contains(d)), "{a:?}");
    let mut sorted = a.clone();
    sorted.sort_unstable();
    let median = sorted[100];
    assert!((70..=140).contains(&median), "median {median}");
}

#[test]
fn best_of_n_holds_n_slots_per_task_and_counts_every_attempt() {
    // Two independent tasks of 10 s, 3 slots. With 1.1 at 3 attempts it holds all three slots:
    // 1.2 waits for it (20 s), and the agents' time is 4 × 10 s.
    let mut sim = Sim::new(&["## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n"], &[]);
    assert_eq!(sim.makespan(Policy::Orch, 3), 10);
    let n = sim.graph.task_node[0][0];
    sim.inputs.attempts = vec![1; sim.graph.nodes.len()];
    sim.inputs.attempts[n] = 3;
    let o = sim.run(Policy::Orch, 3);
    assert_eq!(o.makespan, 20);
    assert_eq!(o.work, 40);
    let spans_11 = o.spans.iter().filter(|s| s.node == n).count();
    assert_eq!(spans_11, 3);
    // With 4 slots both run at once.
    assert_eq!(sim.makespan(Policy::Orch, 4), 10);
}
