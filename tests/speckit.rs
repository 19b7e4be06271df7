//! Spec Kit's `tasks.md` read as a plan: every file of ../shared/corpus-speckit/ with its tasks,
//! ids, parallel marks, stories and written dependencies (the figures below were counted in the
//! files by hand and with grep, not taken from the parser), and `orch up` running one end to end.
//! Without ../shared the corpus test says so and passes, unless `ORCH_REQUIRE_SHARED` is set.

use crate::support;

use std::collections::BTreeMap;
use std::path::Path;

use orch::plan::{Plan, is_speckit, parse, parse_file, tick_speckit};
use support::{Repo, agent};

/// What a file of the corpus holds, counted in the file.
struct Expect {
    file: &'static str,
    tasks: usize,
    done: usize,
    parallel: usize,
    first: &'static str,
    last: &'static str,
    /// Ids with a letter (`T004a`), in file order.
    lettered: &'static [&'static str],
    phases: &'static [u32],
    /// (story, tasks labelled with it).
    stories: &'static [(&'static str, usize)],
    /// Every task with written dependencies, and those.
    written: &'static [(&'static str, &'static [&'static str])],
    /// The lines of the dependency sentences orch warns it could not read.
    unread: &'static [usize],
}

const CORPUS: [Expect; 9] = [
    Expect {
        file: "hindermath__TinyPl0__specs_002-vm-inc-compat_tasks.md",
        tasks: 14,
        done: 14,
        parallel: 3,
        first: "T001",
        last: "T014",
        lettered: &[],
        phases: &[1, 2, 3, 4, 5, 6],
        stories: &[("US1", 3), ("US2", 1), ("US3", 2)],
        written: &[],
        unread: &[],
    },
    Expect {
        file: "relateby__pattern-rs__specs_045-pato-help_tasks.md",
        tasks: 21,
        done: 21,
        parallel: 4,
        first: "T001",
        last: "T021",
        lettered: &[],
        phases: &[1, 2, 3, 4, 5, 6],
        stories: &[("US1", 2), ("US2", 5), ("US3", 4)],
        written: &[
            ("T004", &["T002", "T003"]),
            ("T007", &["T006"]),
            ("T008", &["T007"]),
            ("T009", &["T004", "T008"]),
            ("T010", &["T009"]),
            ("T011", &["T010"]),
            ("T012", &["T011"]),
            ("T014", &["T013"]),
            ("T015", &["T014"]),
            ("T016", &["T015"]),
        ],
        // "**US2 (P1)**: Depends on Foundational and US1 (T007 adds … that T008 builds on)".
        unread: &[114],
    },
    Expect {
        file: "jflowers__get-out__specs_003-distribution_tasks.md",
        tasks: 50,
        done: 3,
        parallel: 19,
        first: "T001",
        last: "T050",
        lettered: &[],
        phases: &[1, 2, 3, 4, 5, 6, 7, 8, 9],
        stories: &[("US1", 7), ("US2", 2), ("US3", 8), ("US4", 2), ("US5", 2)],
        // "(after T002 confirms …)" in T004; "T007 depends on T006; T004 depends on T002" in
        // the dependency section (line 377).
        written: &[("T004", &["T002"]), ("T007", &["T006"])],
        // "start after T011 completes" (a phase after a task), "**US2 (P2)**: After T011".
        unread: &[360, 369],
    },
    Expect {
        file: "elsa-workflows__elsa-core__specs_011-persistence-vnext_tasks.md",
        tasks: 54,
        done: 38,
        parallel: 0,
        first: "T001",
        last: "T054",
        lettered: &[],
        // `## S1 - …` to `## S8 - …`: phases all the same, numbered in order.
        phases: &[1, 2, 3, 4, 5, 6, 7, 8],
        stories: &[],
        written: &[],
        unread: &[],
    },
    Expect {
        file: "Shen-Ming-Hong__singular-blockly__specs_005-safe-dependency-updates_tasks.md",
        tasks: 82,
        done: 0,
        parallel: 19,
        first: "T001",
        last: "T080",
        lettered: &["T004a", "T063a"],
        phases: &[1, 2, 3, 4, 5, 6, 7],
        stories: &[("US1", 15), ("US2", 8), ("US3", 11), ("US4", 8)],
        // "**Prerequisite**: T015 compilation-check 通過" under T016 and T017.
        written: &[("T016", &["T015"]), ("T017", &["T015"])],
        unread: &[],
    },
    Expect {
        file: "21-DOT-DEV__subtree__specs_004-add-command_tasks.md",
        tasks: 89,
        done: 88,
        parallel: 42,
        first: "T001",
        last: "T089",
        lettered: &[],
        // Phase 2 has no task.
        phases: &[1, 3, 4, 5, 6, 7, 8],
        stories: &[
            ("US1", 39),
            ("US2", 11),
            ("US3", 6),
            ("US4", 7),
            ("US5", 10),
        ],
        written: &[
            ("T026", &["T009", "T010", "T011", "T012", "T013", "T014"]),
            ("T027", &["T015", "T016", "T017"]),
            ("T028", &["T018", "T019", "T020"]),
            ("T029", &["T019"]),
            ("T030", &["T020"]),
        ],
        // "All utility unit tests for US1 (T009-T020) can run in parallel AFTER Setup".
        unread: &[279],
    },
    Expect {
        file: "rolandzwaga__visual-reactivity__specs_006-timeline-view-horizontal_tasks.md",
        tasks: 131,
        done: 0,
        parallel: 61,
        first: "T001",
        last: "T131",
        lettered: &[],
        phases: &[1, 2, 3, 4, 5, 6, 7, 8, 9],
        stories: &[
            ("US1", 21),
            ("US2", 14),
            ("US3", 15),
            ("US4", 9),
            ("US5", 15),
            ("US6", 15),
        ],
        written: &[],
        unread: &[],
    },
    Expect {
        file: "m1chalz__AI-First__specs_005-animal-list_tasks.md",
        tasks: 208,
        done: 149,
        parallel: 69,
        first: "T001",
        last: "T195",
        lettered: &[
            "T011a", "T016a", "T058a", "T058b", "T061a", "T068a", "T071a", "T071b", "T074a",
            "T084a", "T084b", "T087a", "T093a",
        ],
        phases: &[1, 2, 3, 4, 5, 6],
        stories: &[("US1", 89), ("US2", 41), ("US3", 21)],
        written: &[],
        unread: &[],
    },
    Expect {
        file: "github__spec-kit__templates_tasks-template.md",
        tasks: 28,
        done: 0,
        parallel: 13,
        first: "T001",
        last: "T028",
        lettered: &[],
        phases: &[1, 2, 3, 4, 5],
        stories: &[("US1", 8), ("US2", 6), ("US3", 5)],
        written: &[("T014", &["T012", "T013"])],
        unread: &[],
    },
];

fn speckit_of(p: &Plan, id: &str) -> orch::plan::SpecKitTask {
    p.tasks
        .iter()
        .find(|t| t.id == id)
        .and_then(|t| t.speckit.as_deref().cloned())
        .unwrap_or_else(|| panic!("no Spec Kit task {id}"))
}

#[test]
fn every_file_of_the_corpus_is_read_whole() {
    let Some(dir) = support::require_shared("corpus-speckit") else {
        return;
    };
    for e in &CORPUS {
        let path = dir.join(e.file);
        let text = std::fs::read_to_string(&path).expect("corpus file");
        assert!(is_speckit(&text), "{}", e.file);
        let p = parse_file(&path).expect("parses");
        let f = e.file;
        assert!(!p.has_errors(), "{f}: {:?}", p.diagnostics);
        assert_eq!(p.tasks.len(), e.tasks, "{f}");
        assert_eq!(p.tasks.iter().filter(|t| t.done).count(), e.done, "{f}");
        let parallel = p
            .tasks
            .iter()
            .filter(|t| t.speckit.as_ref().is_some_and(|s| s.parallel))
            .count();
        assert_eq!(parallel, e.parallel, "{f}");
        assert_eq!(p.tasks.first().map(|t| t.id.as_str()), Some(e.first), "{f}");
        assert_eq!(p.tasks.last().map(|t| t.id.as_str()), Some(e.last), "{f}");
        let lettered: Vec<&str> = p
            .tasks
            .iter()
            .map(|t| t.id.as_str())
            .filter(|id| id.ends_with(|c: char| c.is_ascii_lowercase()))
            .collect();
        assert_eq!(lettered, e.lettered, "{f}");
        // Every id is `T` and digits (and a letter), each once.
        let mut ids: Vec<&str> = p.tasks.iter().map(|t| t.id.as_str()).collect();
        assert!(ids.iter().all(|id| id.starts_with('T')), "{f}");
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), e.tasks, "{f}: duplicate ids");
        let phases: Vec<u32> = p.phases.iter().map(|ph| ph.number).collect();
        assert_eq!(phases, e.phases, "{f}");
        let mut stories: BTreeMap<String, usize> = BTreeMap::new();
        for t in &p.tasks {
            for s in &speckit_of(&p, &t.id).stories {
                *stories.entry(s.clone()).or_default() += 1;
            }
        }
        let want: BTreeMap<String, usize> =
            e.stories.iter().map(|(s, n)| (s.to_string(), *n)).collect();
        assert_eq!(stories, want, "{f}");
        let written: Vec<(String, Vec<String>)> = p
            .tasks
            .iter()
            .map(|t| (t.id.clone(), speckit_of(&p, &t.id).written))
            .filter(|(_, w)| !w.is_empty())
            .collect();
        let want: Vec<(String, Vec<String>)> = e
            .written
            .iter()
            .map(|(id, w)| (id.to_string(), w.iter().map(|s| s.to_string()).collect()))
            .collect();
        assert_eq!(written, want, "{f}");
        // Every written dependency is an edge, and every task waits for something (the order
        // of the file) but those that open the file: the first task, and the `[P]` tasks
        // written right after it when it has `[P]` too.
        let mut opening = true;
        for (i, t) in p.tasks.iter().enumerate() {
            let deps = t.dependencies();
            let marks = speckit_of(&p, &t.id);
            for w in &marks.written {
                assert!(deps.contains(w), "{f}: {} lacks {w}", t.id);
            }
            opening = opening && (i == 0 || marks.parallel);
            assert_eq!(
                deps.is_empty(),
                opening && marks.written.is_empty(),
                "{f}: {}",
                t.id
            );
            opening = opening && marks.parallel;
        }
        // `path:line: warning: message`.
        let prefix = format!("{}:", path.display());
        let unread: Vec<usize> = p
            .diagnostics
            .iter()
            .map(|d| d.to_string())
            .filter(|d| d.contains("not read"))
            .filter_map(|d| d.strip_prefix(&prefix)?.split(':').next()?.parse().ok())
            .collect();
        assert_eq!(unread, e.unread, "{f}: {:?}", p.diagnostics);
        // Ticking every open box, one at a time, gives the same tasks, all done.
        let mut ticked = text.clone();
        for t in p.tasks.iter().filter(|t| !t.done) {
            ticked = tick_speckit(&ticked, t.line, &t.id).expect("ticks");
        }
        let again = parse(&path, &ticked);
        assert_eq!(again.tasks.len(), p.tasks.len(), "{f}");
        for (a, b) in p.tasks.iter().zip(&again.tasks) {
            assert_eq!(
                (&a.id, &a.depends, &a.description, &a.body, a.phase),
                (&b.id, &b.depends, &b.description, &b.body, b.phase),
                "{f}"
            );
            assert!(b.done, "{f}: {}", b.id);
        }
        let changed = text
            .lines()
            .zip(ticked.lines())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(changed, e.tasks - e.done, "{f}");
        assert_eq!(text.len(), ticked.len(), "{f}");
    }
}

/// The command prompt states the rules with example lines in prose and code: not a task file.
#[test]
fn the_command_prompt_is_not_a_task_file() {
    let Some(dir) = support::require_shared("corpus-speckit") else {
        return;
    };
    let text = std::fs::read_to_string(dir.join("github__spec-kit__templates_commands_tasks.md"))
        .expect("corpus file");
    assert!(!is_speckit(&text));
    let p = parse(Path::new("tasks.md"), &text);
    assert!(p.tasks.is_empty());
}

const PLAN: &str = "# Tasks: Demo

**Input**: design documents

## Phase 1: Setup

- [X] T001 Create the project
- [ ] T002 [P] [US1] Write the first file
- [ ] T003 [P] [US2] Write the second file
- [ ] T004 Join them

## Phase 2: User Story 1 — Ship (Priority: P1)

- [ ] T005 [US1] Finish (depends on T002)
  - a sub-bullet, part of the task
- [ ] Not a task: a check list item

```
- [ ] T099 inside a fence
```
";

/// `orch up` runs a Spec Kit plan: T001 is done already, T002 and T003 (`[P]`) side by side
/// (each waits for the other's start: they finish only if they overlap), T004 after both, T005
/// after T004; then ticking the finished tasks in the file gives the same tasks, all done.
#[test]
fn orch_up_runs_a_spec_kit_plan_in_its_order() {
    let repo = Repo::new();
    let journal = repo.root().join(".git/journal");
    let gate = |t: &str| format!("{}.{t}", journal.display());
    let args = [
        journal.display().to_string(),
        "own".to_string(),
        gate("T002"),
        gate("T003"),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    repo.write("specs/001-demo/tasks.md", PLAN);
    repo.write(
        "plans.toml",
        &format!(
            "[defaults]\nmax_agents = 4\nretries = 0\n\n[agents.a]\ncommand = {}\n\n\
             [[plan]]\nname = \"p\"\nfile = \"specs/001-demo/tasks.md\"\nagent = \"a\"\n\
             parallel_tasks = 2\nformat = \"speckit\"\n",
            agent("par_agent.sh", &args)
        ),
    );
    repo.commit_all("plans");
    let out = repo.up(&[]);

    let text = std::fs::read_to_string(&journal).unwrap_or_default();
    let at = |kind: &str, task: &str| -> u128 {
        text.lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (f.len() >= 4 && f[0] == kind && f[1] == task)
                    .then(|| f[3].parse().ok())
                    .flatten()
            })
            .unwrap_or_else(|| panic!("no {kind} of {task} in\n{text}\n{out}"))
    };
    assert!(!text.contains(" T001 "), "a done task is not run:\n{text}");
    assert!(
        at("start", "T002") < at("end", "T003") && at("start", "T003") < at("end", "T002"),
        "[P] tasks side by side:\n{text}"
    );
    assert!(
        at("start", "T004") > at("end", "T002").max(at("end", "T003")),
        "{text}"
    );
    assert!(at("start", "T005") > at("end", "T004"), "{text}");
    for id in ["T002", "T003", "T004", "T005"] {
        assert_eq!(repo.task("p", id)["status"], "completed", "{id}");
    }
    for (id, file) in [("T002", "T002.txt"), ("T005", "T005.txt")] {
        let shown = repo.git(&["show", &format!("plan/p:{file}")]);
        assert_eq!(shown.trim(), id);
    }
    // The file ticked in Spec Kit's spelling (`[X]`, as T001's) reads back as the same tasks.
    let plan = parse(Path::new("tasks.md"), PLAN);
    let mut ticked = PLAN.to_string();
    for t in plan.tasks.iter().filter(|t| !t.done) {
        assert_eq!(repo.task("p", &t.id)["status"], "completed");
        ticked = tick_speckit(&ticked, t.line, &t.id).expect("ticks");
    }
    assert_eq!(ticked.matches("- [X] T0").count(), 5, "{ticked}");
    assert!(ticked.contains("- [ ] Not a task") && ticked.contains("- [ ] T099"));
    let again = parse(Path::new("tasks.md"), &ticked);
    let ids = |p: &Plan| -> Vec<(String, Vec<String>)> {
        p.tasks
            .iter()
            .map(|t| (t.id.clone(), t.dependencies().to_vec()))
            .collect()
    };
    assert_eq!(ids(&again), ids(&plan));
    assert!(again.tasks.iter().all(|t| t.done));
}

/// `format` names the grammar; a file in another one, or a value orch does not know, is an
/// error naming plans.toml and the line, and `orch up` starts nothing.
#[test]
fn the_format_key_is_checked_against_the_file() {
    for (format, plan, want) in [
        (
            "speckit",
            "# P\n\n## Phase 1: A\n\n- [ ] 1.1 Do it\n",
            "says `format = \"speckit\"`",
        ),
        ("orch", PLAN, "says `format = \"orch\"`"),
        (
            "spec-kit",
            PLAN,
            "`plan.format` must be \"orch\" or \"speckit\"",
        ),
    ] {
        let repo = Repo::new();
        repo.write("docs/p.md", plan);
        repo.write(
            "plans.toml",
            &format!(
                "[agents.a]\ncommand = [\"true\"]\n\n[[plan]]\nname = \"p\"\nfile = \"docs/p.md\"\nagent = \"a\"\nformat = \"{format}\"\n"
            ),
        );
        repo.commit_all("plans");
        for cmd in ["check", "up"] {
            let (code, out, err) = repo.run(&[cmd]);
            assert_eq!(code, 2, "{cmd} {format}\n{out}\n{err}");
            assert!(err.contains(want), "{cmd} {format}: {err}");
            assert!(err.contains("plans.toml:8"), "{cmd} {format}: {err}");
        }
        assert!(!repo.root().join(".orch/state").exists(), "{format}");
    }
}

/// `orch check` says what it understood of a Spec Kit plan, and warns about a dependency
/// sentence it could not read, naming the file and the line.
#[test]
fn check_shows_what_it_understood() {
    let repo = Repo::new();
    let text = format!(
        "{PLAN}\n## Dependencies & Execution Order\n\n- T004 depends on T003\n- User Story 1 starts after T004 completes\n"
    );
    repo.write("specs/001-demo/tasks.md", &text);
    repo.write(
        "plans.toml",
        "[agents.a]\ncommand = [\"true\"]\n\n[[plan]]\nname = \"p\"\nfile = \"specs/001-demo/tasks.md\"\nagent = \"a\"\n",
    );
    repo.commit_all("plans");
    let (code, out, err) = repo.run(&["check"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let line = text
        .lines()
        .position(|l| l.contains("starts after"))
        .expect("line")
        + 1;
    assert!(
        err.contains(&format!("specs/001-demo/tasks.md:{line}"))
            && err.contains("dependency sentence not read")
            && err.contains("User Story 1 starts after T004 completes"),
        "{err}"
    );
    assert!(
        out.contains("plan `p` (specs/001-demo/tasks.md): 2 phases, 5 tasks"),
        "{out}"
    );
    assert!(out.contains("  [P]: T002 T003\n"), "{out}");
    assert!(out.contains("  stories: US1 (2), US2 (1)\n"), "{out}");
    assert!(
        out.contains("  written dependencies: T004 after T003, T005 after T002\n"),
        "{out}"
    );
    let (_, json, _) = repo.run(&["check", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(v["plans"][0]["format"], "speckit");
    assert_eq!(v["plans"][0]["speckit"][1]["id"], "T002");
    assert_eq!(v["plans"][0]["speckit"][1]["parallel"], true);
}
