//! Property tests (proptest) for the plan parser and the state orch writes back (the manifest
//! loader's are in `tests/fuzz_manifest.rs`).
//!
//! - the plan parser never panics or hangs: arbitrary text and bytes, plan-like markdown from a
//!   grammar-aware generator, mutated corpus plans; the graph of every plan without errors builds
//!   (or reports a cycle), is acyclic, and readiness and waves terminate;
//! - round trips: `parse(plan.to_markdown())` gives back the plan, the status document survives
//!   JSON, and reconcile is idempotent.
//!
//! 256 cases per property by default; `PROPTEST_CASES=10000 cargo test --release --test fuzz --
//! --nocapture` for a long run (each property prints how many inputs it ran). The corpus
//! properties need `../shared/corpus` (see `support::shared`).

use crate::support;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use proptest::sample::Index;

use orch::graph::{Graph, NodeState, readiness, waves};
use orch::plan::{Plan, TaskKind, parse};
use orch::status::{StatusDoc, reconcile};
use support::prop::{run, within_deadline};

// ---------------------------------------------------------------------------------------------
// Plan checks

/// What must hold for any plan text. Returns the parsed plan.
fn check_plan_text(text: &str) -> Result<Plan, String> {
    let owned = text.to_string();
    within_deadline(text, move || check_plan(&owned))?
}

fn check_plan(text: &str) -> Result<Plan, String> {
    let plan = parse(Path::new("fuzz.md"), text);
    check_status(&plan)?;
    if !plan.has_errors() {
        check_graph(&plan)?;
        check_round_trip(&plan)?;
    }
    Ok(plan)
}

fn check_graph(plan: &Plan) -> Result<(), String> {
    let graph = match Graph::of_plan(plan) {
        Ok(g) => g,
        Err(e) => {
            let cycle = e.0.iter().any(|d| d.to_string().contains("cycle"));
            return if cycle {
                Ok(())
            } else {
                Err(format!(
                    "graph failed without a cycle diagnostic: {:?}",
                    e.0
                ))
            };
        }
    };
    let n = graph.nodes.len();
    if graph.topo.len() != n {
        return Err(format!("topo has {} of {n} nodes", graph.topo.len()));
    }
    let mut pos = vec![usize::MAX; n];
    for (i, &node) in graph.topo.iter().enumerate() {
        pos[node] = i;
    }
    for (i, node) in graph.nodes.iter().enumerate() {
        for &p in &node.preds {
            if pos[p] >= pos[i] {
                return Err(format!(
                    "edge {p} -> {i} goes backwards: the graph has a cycle"
                ));
            }
        }
    }
    let plans = std::slice::from_ref(plan);
    let all_pending = readiness(&graph, plans, &[0], |_, _| NodeState::Pending);
    let _ = readiness(&graph, plans, &[0], |_, t| match t % 4 {
        0 => NodeState::Done,
        1 => NodeState::Pending,
        2 => NodeState::InProgress,
        _ => NodeState::Failed,
    });
    let tasks = plan.tasks.len();
    if all_pending.ready.len() + all_pending.blocked.len() != tasks {
        return Err(format!(
            "readiness accounts for {} + {} of {tasks} pending tasks",
            all_pending.ready.len(),
            all_pending.blocked.len()
        ));
    }
    if tasks > 0 && all_pending.ready.is_empty() {
        return Err("an acyclic plan with pending tasks has nothing ready".into());
    }
    let w = waves(&graph);
    let scheduled: usize = w.waves.iter().map(Vec::len).sum();
    if scheduled != tasks {
        return Err(format!("waves place {scheduled} of {tasks} tasks"));
    }
    Ok(())
}

fn fixed_now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .expect("valid date")
}

/// The status document of any plan survives JSON, and reconcile is idempotent.
fn check_status(plan: &Plan) -> Result<(), String> {
    let doc = StatusDoc::new(plan, "docs/plans/fuzz.md", "fuzz", fixed_now());
    let json = serde_json::to_string_pretty(&doc).map_err(|e| format!("serialize: {e}"))?;
    let back: StatusDoc = serde_json::from_str(&json).map_err(|e| format!("read back: {e}"))?;
    if back != doc {
        return Err(format!("status document changed through JSON:\n{json}"));
    }
    let mut once = doc.clone();
    let first = reconcile(&mut once, plan);
    if !plan.has_errors() && first.changed {
        return Err(format!(
            "reconciling a fresh document changed it: {first:?}"
        ));
    }
    let mut twice = once.clone();
    let second = reconcile(&mut twice, plan);
    if second.changed || twice != once {
        return Err(format!("reconcile is not idempotent: {second:?}"));
    }
    Ok(())
}

/// The fields of a plan that its markdown defines (not lines, not diagnostics).
#[derive(Debug, PartialEq)]
struct Shape {
    phases: Vec<(u32, String, Option<String>)>,
    tasks: Vec<TaskShape>,
    sequential: Vec<(String, Vec<String>, String)>,
    parallel: Vec<(String, Vec<u32>, String)>,
}

type TaskShape = (
    String,
    TaskKind,
    u32,
    String,
    String,
    bool,
    Option<Vec<String>>,
    Option<u64>,
    bool,
    Vec<String>,
);

fn shape(plan: &Plan) -> Shape {
    Shape {
        phases: plan
            .phases
            .iter()
            .map(|p| {
                (
                    p.number,
                    p.title.clone(),
                    p.pipeline_start.as_ref().map(|s| s.trigger.clone()),
                )
            })
            .collect(),
        tasks: plan
            .tasks
            .iter()
            .map(|t| {
                (
                    t.id.clone(),
                    t.kind,
                    t.phase,
                    t.description.clone(),
                    t.body.clone(),
                    t.done,
                    t.depends.clone(),
                    t.estimate_s,
                    t.blocking,
                    t.files.clone(),
                )
            })
            .collect(),
        sequential: plan
            .sequential
            .iter()
            .map(|g| (g.label.clone(), g.tasks.clone(), g.reason.clone()))
            .collect(),
        parallel: plan
            .parallel
            .iter()
            .map(|g| (g.label.clone(), g.phases.clone(), g.reason.clone()))
            .collect(),
    }
}

/// `parse(render(plan))` is the plan, and rendering is a fixed point.
fn check_round_trip(plan: &Plan) -> Result<(), String> {
    let md = plan.to_markdown();
    let again = parse(&plan.path, &md);
    if again.has_errors() {
        let errors: Vec<String> = again.errors().map(ToString::to_string).collect();
        return Err(format!("rendered plan has errors {errors:#?}:\n{md}"));
    }
    let (a, b) = (shape(plan), shape(&again));
    if a != b {
        return Err(format!(
            "parse(render(plan)) differs:\nbefore: {a:#?}\nafter: {b:#?}\nrendered:\n{md}"
        ));
    }
    let md2 = again.to_markdown();
    if md2 != md {
        return Err(format!("rendering is not stable:\n{md}\n---\n{md2}"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Generators

fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => (1..5u32, 1..5u32).prop_map(|(a, b)| format!("{a}.{b}")),
        1 => (1..4u32, 1..4u32, 1..3u32).prop_map(|(a, b, c)| format!("{a}.{b}.{c}")),
        1 => (0..3u32).prop_map(|n| format!("V{n}")),
        1 => "[a-z0-9.]{0,5}",
    ]
}

fn words() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[A-Za-z ]{1,20}",
        Just("edit `src/main.rs` and docs/x.md".to_string()),
        Just("(CRITICAL) fix it".to_string()),
        Just("(HIGH)".to_string()),
        Just("(depends: ".to_string()),
        Just("**bold** text".to_string()),
        "[ -~]{0,24}",
    ]
}

fn depends() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => Just(String::new()),
        3 => prop::collection::vec(id(), 0..4)
            .prop_map(|ids| format!(" (depends: {})", ids.join(", "))),
        1 => prop::collection::vec(id(), 1..3)
            .prop_map(|ids| format!(" (Depends: {} and {})", ids.join(" "), ids[0])),
        1 => id().prop_map(|i| format!(" [DEPENDS: {i}]")),
        1 => Just(" (depends: 1.1".to_string()),
        1 => prop_oneof![Just("20m"), Just("1h30m"), Just("45s"), Just("2h"), Just("soon"), Just("")]
            .prop_map(|e| format!(" (est: {e})")),
    ]
}

/// One line of plan-like markdown.
fn plan_line() -> impl Strategy<Value = String> {
    let indent = prop_oneof![4 => Just(""), 1 => Just("  "), 1 => Just("    "), 1 => Just("\t")];
    let mark = prop_oneof![Just(" "), Just("x"), Just("X"), Just("-"), Just("")];
    prop_oneof![
        3 => (0..7u32, words()).prop_map(|(n, t)| format!("## Phase {n}: {t}")),
        1 => (0..7u32, id()).prop_map(|(n, i)| format!(
            "## Phase {n}: Later (pipeline-start: when {i} completes)"
        )),
        1 => (prop_oneof![Just("#"), Just("###"), Just("## Phase")], words())
            .prop_map(|(h, t)| format!("{h} {t}")),
        8 => (indent.clone(), mark, id(), words(), depends())
            .prop_map(|(ind, m, i, w, d)| format!("{ind}- [{m}] {i} {w}{d}")),
        3 => (indent.clone(), words()).prop_map(|(ind, w)| format!("{ind}  - {w}")),
        2 => Just(String::new()),
        2 => (id(), id(), words()).prop_map(|(a, b, r)| format!(
            "**Execution Note:** Tasks {a}-{b} are [SEQUENTIAL] - {r}"
        )),
        1 => (id(), id()).prop_map(|(a, b)| format!(
            "**Execution Note:** Tasks {a} and {b} are [SEQUENTIAL]"
        )),
        1 => (0..7u32, 0..7u32).prop_map(|(a, b)| format!(
            "**Execution Note:** Phases {a}-{b} are [PARALLEL] - side by side"
        )),
        1 => Just("**Execution Note:** are [SEQUENTIAL]".to_string()),
        2 => (0..7u32, prop::bool::ANY).prop_map(|(n, nb)| format!(
            "**VERIFY Phase {n}:**{}", if nb { " (non-blocking)" } else { "" }
        )),
        1 => (0..7u32, words()).prop_map(|(n, w)| format!("**VERIFY {n}:** {w}")),
        1 => (0..7u32, words()).prop_map(|(n, w)| format!("- [ ] **VERIFY {n}**: {w}")),
        2 => (prop_oneof![Just("- "), Just("* "), Just("1. "), Just("- [x] ")], words())
            .prop_map(|(b, w)| format!("{b}{w}")),
        1 => id().prop_map(|i| format!("**pipeline-start:** when {i} completes")),
        1 => Just("**pipeline-start:** soon".to_string()),
        1 => (indent, prop_oneof![Just("```"), Just("````rust"), Just("~~~")])
            .prop_map(|(ind, f)| format!("{ind}{f}")),
        2 => words(),
    ]
}

fn plan_like_text() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(plan_line(), 0..40),
        prop::bool::ANY,
        prop::bool::ANY,
    )
        .prop_map(|(lines, crlf, trailing)| {
            let sep = if crlf { "\r\n" } else { "\n" };
            let mut s = lines.join(sep);
            if trailing {
                s.push_str(sep);
            }
            s
        })
}

#[derive(Clone, Debug)]
struct TaskSpec {
    done: bool,
    deep: bool,
    desc: String,
    deps: Vec<Index>,
    body: Vec<String>,
}

#[derive(Clone, Debug)]
struct PhaseSpec {
    title: String,
    tasks: Vec<TaskSpec>,
    verify: Option<(bool, Vec<(bool, String)>)>,
    pipeline: Option<Index>,
    sequential: Option<(Index, Index)>,
}

fn body_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[A-Za-z ]{1,20}".prop_map(|w| format!("- {w}")),
        "[A-Za-z ]{1,20}".prop_map(|w| format!("  - [ ] {w}")),
        Just("```sh".to_string()),
        Just("cargo test".to_string()),
        Just("```".to_string()),
        Just("see `src/lib.rs`".to_string()),
    ]
}

fn task_spec() -> impl Strategy<Value = TaskSpec> {
    (
        prop::bool::ANY,
        prop::bool::weighted(0.2),
        "[A-Za-z][A-Za-z ]{0,20}",
        prop::collection::vec(any::<Index>(), 0..3),
        prop::collection::vec(body_line(), 0..4),
    )
        .prop_map(|(done, deep, desc, deps, body)| TaskSpec {
            done,
            deep,
            desc: desc.trim().to_string(),
            deps,
            body,
        })
}

fn phase_spec() -> impl Strategy<Value = PhaseSpec> {
    (
        "[A-Za-z][A-Za-z ]{0,15}",
        prop::collection::vec(task_spec(), 0..5),
        prop::option::weighted(
            0.4,
            (
                prop::bool::ANY,
                prop::collection::vec((prop::bool::ANY, "[A-Za-z][A-Za-z ]{0,15}"), 1..3),
            ),
        ),
        prop::option::weighted(0.2, any::<Index>()),
        prop::option::weighted(0.2, (any::<Index>(), any::<Index>())),
    )
        .prop_map(|(title, tasks, verify, pipeline, sequential)| PhaseSpec {
            title: title.trim().to_string(),
            tasks,
            verify,
            pipeline,
            sequential,
        })
}

/// A plan that should parse without errors (dependencies point backwards, so no cycles, unless
/// `cyclic` adds one backwards edge): the generator for round trips and graphs.
fn wellformed_plan() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(phase_spec(), 1..5),
        prop::option::weighted(0.3, any::<Index>()),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(phases, parallel, cyclic)| render_spec(&phases, parallel, cyclic))
}

fn render_spec(phases: &[PhaseSpec], parallel: Option<Index>, cyclic: bool) -> String {
    let mut out = String::from("# Generated plan\n\n");
    let mut ids: Vec<String> = Vec::new();
    let mut notes = String::new();
    if let Some(i) = parallel
        && phases.len() >= 2
    {
        let a = i.index(phases.len() - 1) + 1;
        notes.push_str(&format!(
            "**Execution Note:** Phases {a}-{} are [PARALLEL] - independent\n",
            a + 1
        ));
    }
    for (pi, phase) in phases.iter().enumerate() {
        let p = pi + 1;
        let earlier = ids.len();
        if let Some(i) = phase.pipeline
            && earlier > 0
        {
            out.push_str(&format!(
                "**pipeline-start:** when {} completes\n",
                ids[i.index(earlier)]
            ));
        }
        out.push_str(&format!("## Phase {p}: {}\n\n", phase.title));
        let first = ids.len();
        for (ti, t) in phase.tasks.iter().enumerate() {
            let id = if t.deep {
                format!("{p}.{}.1", ti + 1)
            } else {
                format!("{p}.{}", ti + 1)
            };
            let mut deps: Vec<String> = t
                .deps
                .iter()
                .filter(|_| !ids.is_empty())
                .map(|d| ids[d.index(ids.len())].clone())
                .collect();
            deps.dedup();
            let mark = if t.done { 'x' } else { ' ' };
            let deps = if deps.is_empty() {
                String::new()
            } else {
                format!(" (depends: {})", deps.join(", "))
            };
            out.push_str(&format!("- [{mark}] {id} {}{deps}\n", t.desc));
            let mut fence = false;
            for line in &t.body {
                if line.starts_with("```") {
                    fence = !fence || line.trim() != "```";
                }
                if line.is_empty() {
                    out.push('\n');
                } else {
                    out.push_str(&format!("  {line}\n"));
                }
            }
            if fence {
                out.push_str("  ```\n");
            }
            ids.push(id);
        }
        if let Some((a, b)) = phase.sequential
            && ids.len() > first
        {
            let n = ids.len() - first;
            let (x, y) = (a.index(n), b.index(n));
            let (x, y) = (x.min(y), x.max(y));
            notes.push_str(&format!(
                "**Execution Note:** Tasks {}-{} are [SEQUENTIAL] - shared file\n",
                ids[first + x],
                ids[first + y]
            ));
        }
        if let Some((blocking, criteria)) = &phase.verify {
            let nb = if *blocking { "" } else { " (non-blocking)" };
            out.push_str(&format!("\n**VERIFY Phase {p}:**{nb}\n"));
            for (done, c) in criteria {
                let m = if *done { 'x' } else { ' ' };
                out.push_str(&format!("- [{m}] {}\n", c.trim()));
            }
        }
        out.push('\n');
    }
    if cyclic && ids.len() >= 2 {
        // A first task that depends on the last one: a cycle through the phase barriers.
        out = out.replacen(
            &format!("] {} ", ids[0]),
            &format!("] {} (depends: {}) ", ids[0], ids[ids.len() - 1]),
            1,
        );
    }
    format!("{notes}\n{out}")
}

// ---------------------------------------------------------------------------------------------
// Corpus

/// The corpus plans, read once (empty when `../shared` is absent and not required).
fn corpus() -> &'static [(PathBuf, String)] {
    static CORPUS: OnceLock<Vec<(PathBuf, String)>> = OnceLock::new();
    CORPUS.get_or_init(support::corpus_plans)
}

#[derive(Clone, Debug)]
enum Mutation {
    Delete(Index),
    Duplicate(Index),
    Swap(Index, Index),
    /// Copy a line of another corpus plan in.
    Splice(Index, Index, Index),
    Indent(Index),
    Dedent(Index),
    Truncate(Index, Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<Index>().prop_map(Mutation::Delete),
        any::<Index>().prop_map(Mutation::Duplicate),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
        (any::<Index>(), any::<Index>(), any::<Index>())
            .prop_map(|(a, b, c)| Mutation::Splice(a, b, c)),
        any::<Index>().prop_map(Mutation::Indent),
        any::<Index>().prop_map(Mutation::Dedent),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::Truncate(a, b)),
    ]
}

fn mutate(text: &str, ops: &[Mutation]) -> String {
    let all = corpus();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for op in ops {
        if lines.is_empty() {
            lines.push(String::new());
        }
        let n = lines.len();
        match op {
            Mutation::Delete(i) => {
                lines.remove(i.index(n));
            }
            Mutation::Duplicate(i) => {
                let l = lines[i.index(n)].clone();
                lines.insert(i.index(n), l);
            }
            Mutation::Swap(a, b) => lines.swap(a.index(n), b.index(n)),
            Mutation::Splice(f, l, at) => {
                let other: Vec<&str> = all[f.index(all.len())].1.lines().collect();
                if !other.is_empty() {
                    lines.insert(at.index(n + 1), other[l.index(other.len())].to_string());
                }
            }
            Mutation::Indent(i) => lines[i.index(n)].insert_str(0, "  "),
            Mutation::Dedent(i) => {
                let l = &mut lines[i.index(n)];
                *l = l.trim_start().to_string();
            }
            Mutation::Truncate(i, at) => {
                let l = &mut lines[i.index(n)];
                let cut = at.index(l.len() + 1);
                let cut = (0..=cut)
                    .rev()
                    .find(|c| l.is_char_boundary(*c))
                    .unwrap_or(0);
                l.truncate(cut);
            }
        }
    }
    lines.join("\n")
}

// ---------------------------------------------------------------------------------------------
// Plan properties

#[test]
fn plan_parser_survives_arbitrary_strings() {
    run("plan/arbitrary-string", any::<String>(), |s| {
        check_plan_text(&s).map(drop)
    });
}

#[test]
fn plan_parser_survives_arbitrary_bytes() {
    run(
        "plan/arbitrary-bytes",
        prop::collection::vec(any::<u8>(), 0..2048),
        |b| check_plan_text(&String::from_utf8_lossy(&b)).map(drop),
    );
}

#[test]
fn plan_parser_survives_markdown_soup() {
    // Dense in the characters the grammar cares about.
    run(
        "plan/markdown-soup",
        "[-#*\\[\\]xX ():.,;&0-9VPhasTkEVRIFYSQUENTALP`~\n\r\t]{0,600}",
        |s| check_plan_text(&s).map(drop),
    );
}

#[test]
fn plan_parser_survives_plan_like_markdown() {
    run("plan/plan-like", plan_like_text(), |s| {
        check_plan_text(&s).map(drop)
    });
}

#[test]
fn wellformed_plans_parse_clean_and_round_trip() {
    run("plan/wellformed", wellformed_plan(), |s| {
        let plan = check_plan_text(&s)?;
        if plan.has_errors() {
            let errors: Vec<String> = plan.errors().map(ToString::to_string).collect();
            return Err(format!("generated plan has errors {errors:#?}:\n{s}"));
        }
        Ok(())
    });
}

#[test]
fn plan_parser_survives_mutated_corpus_plans() {
    if corpus().is_empty() {
        return;
    }
    let strategy = (any::<Index>(), prop::collection::vec(mutation(), 1..6));
    run("plan/corpus-mutations", strategy, |(file, ops)| {
        let (path, original) = &corpus()[file.index(corpus().len())];
        let text = mutate(original, &ops);
        let plan = check_plan_text(&text)?;
        // A document written for the original plan, reconciled with the edited one: idempotent.
        let old = parse(path, original);
        let mut doc = StatusDoc::new(&old, "docs/plans/x.md", "x", fixed_now());
        reconcile(&mut doc, &plan);
        let once = doc.clone();
        let second = reconcile(&mut doc, &plan);
        if second.changed || doc != once {
            return Err(format!(
                "reconcile after an edit is not idempotent: {second:?}"
            ));
        }
        Ok(())
    });
}

#[test]
fn every_corpus_plan_round_trips_through_markdown() {
    let all = corpus();
    if all.is_empty() {
        return;
    }
    for (path, text) in all {
        let plan = parse(path, text);
        assert!(!plan.has_errors(), "{}", path.display());
        if let Err(e) = check_plan(text) {
            panic!("{}: {e}", path.display());
        }
    }
}
