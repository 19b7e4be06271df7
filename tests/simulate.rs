//! `orch simulate` end to end: the real binary on plan files in a temp dir (no git needed), the
//! repository's own plans and the shipped examples. Makespans are worked out by hand.

use crate::support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use support::file_snapshot;

fn orch(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_orch"))
        .args(args)
        .current_dir(dir)
        .env("PWD", dir)
        .env_remove("OLDPWD")
        .env("NO_COLOR", "1")
        .output()
        .expect("run orch")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> Value {
    assert_eq!(o.status.code(), Some(0), "stderr: {}", stderr(o));
    serde_json::from_slice(&o.stdout).expect("JSON on stdout")
}

/// a (10 s) → {b (20 s), c (30 s)} → d (5 s), and an unannotated e (default duration).
const DIAMOND: &str = "# Diamond\n\n## Phase 1: Work\n\
- [ ] 1.1 a (est: 10s)\n\
- [ ] 1.2 b (est: 20s) (depends: 1.1)\n\
- [ ] 1.3 c (est: 30s) (depends: 1.1)\n\
- [ ] 1.4 d (est: 5s) (depends: 1.2, 1.3)\n";

fn temp_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (rel, text) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    dir
}

fn run_of<'a>(v: &'a Value, policy: &str, slots: u64) -> &'a Value {
    v["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .find(|r| r["policy"] == policy && r["slots"] == slots)
        .unwrap_or_else(|| panic!("no run {policy}/{slots} in {v:#}"))
}

#[test]
fn plan_file_without_manifest_json_makespans() {
    let dir = temp_with(&[("diamond.md", DIAMOND)]);
    let before = file_snapshot(dir.path());
    let v = json(&orch(
        dir.path(),
        &[
            "simulate",
            "--plan",
            "diamond.md",
            "--slots",
            "1,2,4",
            "--json",
        ],
    ));
    assert_eq!(
        v["runs"].as_array().expect("runs").len(),
        9,
        "3 policies × 3 slot counts"
    );
    for policy in ["orch", "batched", "phase80"] {
        // 1 slot: the sum; 2 or more: a + max(b, c) + d.
        assert_eq!(run_of(&v, policy, 1)["makespan_s"], 65);
        assert_eq!(run_of(&v, policy, 2)["makespan_s"], 45);
        assert_eq!(run_of(&v, policy, 4)["makespan_s"], 45);
    }
    let r = run_of(&v, "orch", 2);
    assert_eq!(r["lower_bound_s"], 45);
    assert_eq!(r["critical_path_s"], 45);
    assert_eq!(r["work_s"], 65);
    assert_eq!(r["utilisation"], 0.722); // 65 / (2 × 45)
    assert_eq!(r["parallel_efficiency"], 0.308); // 1 − 45 / 65
    let schedule = r["schedule"].as_array().expect("schedule");
    let of = |id: &str| {
        schedule
            .iter()
            .find(|s| s["task"] == id)
            .map(|s| (s["start_s"].as_u64(), s["end_s"].as_u64()))
            .expect("task in schedule")
    };
    assert_eq!(of("1.1"), (Some(0), Some(10)));
    assert_eq!(of("1.3"), (Some(10), Some(40)));
    assert_eq!(of("1.2"), (Some(10), Some(30)));
    assert_eq!(of("1.4"), (Some(40), Some(45)));
    assert_eq!(v["tasks"], 4);
    assert_eq!(v["estimated_tasks"], 4);
    assert_eq!(file_snapshot(dir.path()), before, "simulate writes nothing");
}

#[test]
fn text_output_has_the_table_and_a_gantt_chart() {
    let dir = temp_with(&[("diamond.md", DIAMOND)]);
    let o = orch(
        dir.path(),
        &[
            "simulate",
            "--plan",
            "diamond.md",
            "--slots",
            "2",
            "--policy",
            "orch,batched",
            "--width",
            "60",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    let row = |policy: &str| {
        text.lines()
            .find(|l| l.starts_with(policy))
            .unwrap_or_else(|| panic!("no {policy} row in\n{text}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(row("orch")[..5], ["orch", "2", "45s", "45s", "1.00"]);
    assert_eq!(row("batched")[..3], ["batched", "2", "45s"]);
    assert!(!text.contains("phase80"), "{text}");
    // The Gantt chart: two slot rows, each at most 60 columns, c in slot 0 after a.
    let slots: Vec<&str> = text.lines().filter(|l| l.starts_with("slot ")).collect();
    assert_eq!(slots.len(), 2, "{text}");
    assert!(slots.iter().all(|l| l.chars().count() <= 60), "{text}");
    assert!(slots[0].starts_with("slot  0 |1.1"), "{text}");
    assert!(
        slots[0].contains("|1.3") && slots[1].contains("|1.2"),
        "{text}"
    );
    assert!(text.contains("orch with 2 slots: 45s"), "{text}");
}

#[test]
fn manifest_plans_with_a_phase_dependency_and_default_slots() {
    let manifest = "[defaults]\nmax_agents = 2\nagent = \"a\"\n\n[agents.a]\ncommand = [\"true\"]\n\n\
        [[plan]]\nname = \"a\"\nfile = \"a.md\"\n\n\
        [[plan]]\nname = \"b\"\nfile = \"b.md\"\ndepends_on = [\"a:1\"]\n";
    let a = "# A\n## Phase 1: One\n- [ ] 1.1 x (est: 10s)\n- [ ] 1.2 y (est: 20s)\n\
             ## Phase 2: Two\n- [ ] 2.1 z (est: 30s)\n";
    let b = "# B\n## Phase 1: One\n- [ ] 1.1 w (est: 15s)\n";
    let dir = temp_with(&[("plans.toml", manifest), ("a.md", a), ("b.md", b)]);
    let v = json(&orch(
        dir.path(),
        &["simulate", "--per-plan", "2", "--policy", "orch", "--json"],
    ));
    // max_agents = 2: x 0–10, y 0–20; a's phase 1 done at 20: z 20–50, w 20–35.
    let r = run_of(&v, "orch", 2);
    assert_eq!(r["makespan_s"], 50);
    assert_eq!(r["lower_bound_s"], 50);
    let w = r["schedule"]
        .as_array()
        .expect("schedule")
        .iter()
        .find(|s| s["plan"] == "b")
        .expect("b's task");
    assert_eq!(
        (w["start_s"].as_u64(), w["end_s"].as_u64()),
        (Some(20), Some(35))
    );
    // Only plan a: b counts as finished, so a alone: 20 + 30.
    let v = json(&orch(
        dir.path(),
        &[
            "simulate",
            "a",
            "--per-plan",
            "2",
            "--policy",
            "orch",
            "--json",
        ],
    ));
    assert_eq!(run_of(&v, "orch", 2)["makespan_s"], 50);
    assert_eq!(v["plans"], serde_json::json!(["a"]));
    assert_eq!(v["tasks"], 3);
    // One agent per plan: a's x and y no longer overlap: 10 + 20 + 30.
    let v = json(&orch(
        dir.path(),
        &["simulate", "--per-plan", "1", "--policy", "orch", "--json"],
    ));
    assert_eq!(run_of(&v, "orch", 2)["makespan_s"], 60);
    // Without `--per-plan`, as `orch up` would run them: the manifest's `parallel` (1 by
    // default), so the same 60 s; with `parallel_tasks = 2` on plan a, a's x and y overlap again.
    let v = json(&orch(
        dir.path(),
        &["simulate", "--policy", "orch", "--json"],
    ));
    assert_eq!(run_of(&v, "orch", 2)["makespan_s"], 60);
    assert_eq!(v["agents_per_plan"], serde_json::json!({"a": 1, "b": 1}));
    let two = manifest.replace("file = \"a.md\"\n", "file = \"a.md\"\nparallel_tasks = 2\n");
    std::fs::write(dir.path().join("plans.toml"), two).expect("manifest");
    let v = json(&orch(
        dir.path(),
        &["simulate", "--policy", "orch", "--json"],
    ));
    assert_eq!(run_of(&v, "orch", 2)["makespan_s"], 50);
    assert_eq!(v["agents_per_plan"], serde_json::json!({"a": 2, "b": 1}));
}

#[test]
fn slots_2_4_8_show_where_more_agents_stop_helping() {
    // Eight independent 10-minute tasks (the default duration).
    let plan: String = std::iter::once("# Wide\n## Phase 1: All\n".to_string())
        .chain((1..=8).map(|i| format!("- [ ] 1.{i} t{i}\n")))
        .collect();
    let dir = temp_with(&[("wide.md", &plan)]);
    let v = json(&orch(
        dir.path(),
        &[
            "simulate", "--plan", "wide.md", "--slots", "2,4,8", "--policy", "orch", "--json",
        ],
    ));
    let spans: Vec<u64> = [2, 4, 8]
        .iter()
        .map(|&n| {
            run_of(&v, "orch", n)["makespan_s"]
                .as_u64()
                .expect("number")
        })
        .collect();
    assert_eq!(spans, [2400, 1200, 600]);
    let v = json(&orch(
        dir.path(),
        &[
            "simulate",
            "--plan",
            "wide.md",
            "--slots",
            "4",
            "--policy",
            "orch",
            "--default-duration",
            "1m",
            "--json",
        ],
    ));
    assert_eq!(run_of(&v, "orch", 4)["makespan_s"], 120);
}

#[test]
fn seeded_runs_are_reproducible_and_batched_is_never_faster() {
    let plan: String = std::iter::once("# Mixed\n## Phase 1: All\n".to_string())
        .chain((1..=12).map(|i| format!("- [ ] 1.{i} t{i} (est: {}m)\n", 5 + i % 4 * 5)))
        .collect();
    let dir = temp_with(&[("mixed.md", &plan)]);
    let args = [
        "simulate", "--plan", "mixed.md", "--slots", "3", "--seed", "42", "--json",
    ];
    let a = json(&orch(dir.path(), &args));
    let b = json(&orch(dir.path(), &args));
    assert_eq!(a, b);
    assert_eq!(a["seed"], 42);
    let orch_run = run_of(&a, "orch", 3)["makespan_s"].as_u64().expect("n");
    let batched = run_of(&a, "batched", 3)["makespan_s"].as_u64().expect("n");
    let bound = run_of(&a, "orch", 3)["lower_bound_s"].as_u64().expect("n");
    assert!(
        bound <= orch_run && orch_run <= batched,
        "{bound} {orch_run} {batched}"
    );
    let other = json(&orch(
        dir.path(),
        &[
            "simulate", "--plan", "mixed.md", "--slots", "3", "--seed", "43", "--json",
        ],
    ));
    assert_ne!(
        run_of(&a, "orch", 3)["work_s"],
        run_of(&other, "orch", 3)["work_s"]
    );
}

#[test]
fn bad_input_exits_2_with_a_clear_message() {
    let bad_plan = "# Bad\n## Phase 1: A\n- [ ] 1.1 a (est: soon)\n";
    let dir = temp_with(&[("diamond.md", DIAMOND), ("bad.md", bad_plan)]);
    let before = file_snapshot(dir.path());
    let cases: &[(&[&str], &str)] = &[
        (&["--policy", "fastest"], "unknown policy `fastest`"),
        (&["--slots", "0"], "--slots"),
        (&["--slots", "two"], "invalid value"),
        (
            &["--default-duration", "10 minutes"],
            "--default-duration: invalid duration",
        ),
        (&["--per-plan", "0"], "--per-plan"),
    ];
    for (extra, fragment) in cases {
        let mut args = vec!["simulate", "--plan", "diamond.md"];
        args.extend_from_slice(extra);
        let o = orch(dir.path(), &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(fragment), "{args:?}: {}", stderr(&o));
        assert!(o.stdout.is_empty(), "{args:?}");
    }
    let o = orch(dir.path(), &["simulate", "--plan", "missing.md"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing.md"), "{}", stderr(&o));
    let o = orch(dir.path(), &["simulate", "--plan", "bad.md"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bad.md:3"), "{}", stderr(&o));
    assert!(stderr(&o).contains("(est: soon)"), "{}", stderr(&o));
    assert_eq!(
        file_snapshot(dir.path()),
        before,
        "bad input writes nothing"
    );
}

/// The repository's own manifest (its plans), the manifest `orch demo` writes, and the example
/// plan of `orch init`: simulate works on each, within the lower bound.
#[test]
fn works_on_the_repository_plans_and_the_shipped_examples() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let demo = temp_with(&[]);
    std::fs::copy(
        root.join("assets/demo/plans.toml"),
        demo.path().join("plans.toml"),
    )
    .expect("copy");
    std::fs::create_dir_all(demo.path().join("docs/plans")).expect("mkdir");
    for name in ["greeter.md", "docs.md", "polish.md"] {
        std::fs::copy(
            root.join("docs/plans").join(name),
            demo.path().join("docs/plans").join(name),
        )
        .expect("copy plan");
    }
    let runs: [(&Path, &[&str]); 4] = [
        (root, &[]),
        (demo.path(), &[]),
        (root, &["--plan", "assets/init/example.md"]),
        (root, &["--plan", "docs/plans/greeter.md"]),
    ];
    for (dir, extra) in runs {
        let mut args = vec!["simulate", "--slots", "1,2,4,8", "--seed", "1", "--json"];
        args.extend_from_slice(extra);
        let v = json(&orch(dir, &args));
        for slots in [1, 2, 4, 8] {
            let o = &run_of(&v, "orch", slots);
            let (m, lb) = (o["makespan_s"].as_u64(), o["lower_bound_s"].as_u64());
            assert!(m >= lb && m > Some(0), "{extra:?}: {o}");
            // One slot: everything in sequence.
            if slots == 1 {
                assert_eq!(o["makespan_s"], o["work_s"], "{extra:?}");
            }
        }
        let mut text_args = args.clone();
        text_args.retain(|a| *a != "--json");
        let o = orch(dir, &text_args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        assert!(stdout(&o).contains("orch with 8 slots"));
    }
}
