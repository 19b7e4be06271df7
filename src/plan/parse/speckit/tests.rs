use std::path::Path;

use super::{is_speckit, parse, tick, ticks};
use crate::plan::Plan;

fn read(text: &str) -> Plan {
    parse(Path::new("tasks.md"), text, true)
}

fn deps(p: &Plan, id: &str) -> Vec<String> {
    p.task(id)
        .and_then(|t| t.depends.clone())
        .unwrap_or_default()
}

fn written(p: &Plan, id: &str) -> Vec<String> {
    p.task(id)
        .and_then(|t| t.speckit.as_ref())
        .map(|s| s.written.clone())
        .unwrap_or_default()
}

const FILE: &str = "# Tasks: Demo

**Prerequisites**: plan.md

## Format: `[ID] [P?] [Story] Description`

- [ ] A checklist item without an id
| T099 | table row |

## Phase 1: Setup

- [x] T001 Create the project
- [ ] T002 [P] Configure the linter
- [ ] T003 [P] Configure the formatter
- [ ] T004 Write the README

## Phase 3: User Story 1 — Login (Priority: P1)

- [X] **T005** [P1] [US1] Model the user in src/user.py
    - keep it small
    **Prerequisite**: T001
- [~] T006 [US1] [US2] Service (depends on T005)
- [ ] T006a [P] [US3/US5] Docs (after T002)

```
- [ ] T100 inside a fence
```

## Dependencies & Execution Order

- T006a depends on T004; T003 depends on T002
- **US2**: after T006 completes
";

#[test]
fn a_file_is_read_with_its_tasks_phases_marks_and_edges() {
    assert!(is_speckit(FILE));
    let p = read(FILE);
    let ids: Vec<&str> = p.tasks.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(
        ids,
        ["T001", "T002", "T003", "T004", "T005", "T006", "T006a"]
    );
    let phases: Vec<(u32, &str)> = p
        .phases
        .iter()
        .map(|ph| (ph.number, ph.title.as_str()))
        .collect();
    assert_eq!(
        phases,
        [(1, "Setup"), (3, "User Story 1 — Login (Priority: P1)")]
    );
    assert_eq!(p.title, "Tasks: Demo");
    let done: Vec<&str> = p
        .tasks
        .iter()
        .filter(|t| t.done)
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(done, ["T001", "T005"], "[~] is not done");
    let parallel: Vec<&str> = p
        .tasks
        .iter()
        .filter(|t| t.speckit.as_ref().is_some_and(|s| s.parallel))
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(parallel, ["T002", "T003", "T006a"], "[P1] is a priority");
    let stories = |id: &str| {
        p.task(id)
            .and_then(|t| t.speckit.as_ref())
            .map(|s| s.stories.clone())
    };
    assert_eq!(stories("T006"), Some(vec!["US1".into(), "US2".into()]));
    assert_eq!(stories("T006a"), Some(vec!["US3".into(), "US5".into()]));
    assert_eq!(
        p.task("T005").map(|t| t.description.as_str()),
        Some("Model the user in src/user.py")
    );
    assert_eq!(
        p.task("T005").map(|t| t.body.as_str()),
        Some("- keep it small\n**Prerequisite**: T001")
    );
    // The order of the file: T001, then T002 and T003 side by side, then T004 after both.
    assert_eq!(deps(&p, "T001"), Vec::<String>::new());
    assert_eq!(deps(&p, "T002"), ["T001"]);
    assert_eq!(
        deps(&p, "T003"),
        ["T001", "T002"],
        "and the section's statement"
    );
    assert_eq!(deps(&p, "T004"), ["T002", "T003"]);
    // A new phase waits for the last one's end.
    assert_eq!(deps(&p, "T005"), ["T004", "T001"]);
    assert_eq!(deps(&p, "T006"), ["T005"]);
    assert_eq!(deps(&p, "T006a"), ["T006", "T002", "T004"]);
    // What was written, apart from the order of the file.
    assert_eq!(written(&p, "T005"), ["T001"]);
    assert_eq!(written(&p, "T006"), ["T005"]);
    assert_eq!(written(&p, "T006a"), ["T002", "T004"]);
    assert_eq!(written(&p, "T003"), ["T002"]);
    // The story sentence is not read, and says so with its line.
    let warnings: Vec<(usize, &str)> = p
        .diagnostics
        .iter()
        .map(|d| (d.line, d.message.as_str()))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].0, 32);
    assert!(
        warnings[0].1.contains("after T006 completes"),
        "{warnings:?}"
    );
}

#[test]
fn ranges_cover_the_tasks_between_and_unknown_ids_are_warned() {
    let p = read(
        "## Phase 1: A\n\n- [ ] T009 a\n- [ ] T010 b\n- [ ] T010a c\n- [ ] T012 d\n- [ ] T020 e (depends on T009-T010a)\n- [ ] T021 f (depends on T099)\n",
    );
    assert_eq!(written(&p, "T020"), ["T009", "T010", "T010a"]);
    assert_eq!(written(&p, "T021"), Vec::<String>::new());
    assert_eq!(p.diagnostics.len(), 1);
    assert_eq!(p.diagnostics[0].line, 8);
    assert!(p.diagnostics[0].message.contains("T099"));
}

#[test]
fn headings_that_are_not_phases_still_group_tasks() {
    let p = read("# T\n\n## S1 - Core\n\n- [x] T001 a\n\n## S2 - More\n\n- [ ] T002 b\n");
    let phases: Vec<(u32, &str)> = p
        .phases
        .iter()
        .map(|ph| (ph.number, ph.title.as_str()))
        .collect();
    assert_eq!(phases, [(1, "S1 - Core"), (2, "S2 - More")]);
    assert_eq!(deps(&p, "T002"), ["T001"]);
}

#[test]
fn an_orch_plan_is_not_speckit() {
    assert!(!is_speckit(
        "## Phase 1: A\n\n- [ ] 1.1 Do it\n- [ ] T001 odd\n"
    ));
    assert!(!is_speckit(
        "## Phase 1: A\n\n```\n- [ ] T001 in a fence\n```\n"
    ));
    assert!(is_speckit("-   [ ] **T001** 驗證\n"));
    // Through the plan parser: the dialect is chosen by the text.
    let p = crate::plan::parse(Path::new("t.md"), "## Phase 1: A\n\n- [ ] T001 Do it\n");
    assert_eq!(p.tasks.len(), 1);
    assert_eq!(p.tasks[0].id, "T001");
}

#[test]
fn a_duplicate_id_is_an_error() {
    let p = read("## Phase 1: A\n\n- [ ] T001 a\n- [ ] T001 b\n");
    assert!(p.has_errors());
    assert_eq!(p.errors().next().map(|d| d.line), Some(4));
}

#[test]
fn ticking_changes_one_box_in_the_files_spelling_and_round_trips() {
    let upper = "## Phase 1: A\n\n- [X] T001 a\n- [ ] T002 [P] b\r\n- [~] T003 c\n";
    let ticked = tick(upper, 4, "T002").expect("ticks");
    assert_eq!(ticked, upper.replacen("- [ ] T002", "- [X] T002", 1));
    let lower = "## Phase 1: A\n\n- [x] T001 a\n- [~] T003 c\n";
    assert_eq!(
        tick(lower, 4, "T003").as_deref(),
        Some("## Phase 1: A\n\n- [x] T001 a\n- [x] T003 c\n")
    );
    // Not that task's line, or ticked already: nothing.
    assert_eq!(tick(upper, 3, "T002"), None);
    assert_eq!(tick(upper, 3, "T001"), None);
    // Re-read: the same tasks, that one done.
    let (before, after) = (read(upper), read(&ticked));
    assert_eq!(before.tasks.len(), after.tasks.len());
    for (a, b) in before.tasks.iter().zip(&after.tasks) {
        assert_eq!(
            (&a.id, &a.depends, &a.description),
            (&b.id, &b.depends, &b.description)
        );
        assert_eq!(b.done, a.done || a.id == "T002", "{}", a.id);
    }
}

/// Several boxes at once: only the task lines named by their line and id, not ticked yet, each
/// one byte (`x` here: the file's ticked task uses it); a line that is no longer its task's (the
/// file changed since it was read) and a ticked box get none.
#[test]
fn ticks_are_one_byte_at_each_named_open_box() {
    let text = "## Phase 1: A\n\n- [ ] T001 One\n- [x] T002 Two\n-   [~] **T003** Three\n- [ ] T004 Four\n";
    let at = ticks(
        text,
        &[
            (3, "T001"),
            (4, "T002"),
            (5, "T003"),
            (6, "T009"),
            (2, "T004"),
        ],
    );
    assert_eq!(at.len(), 2, "{at:?}");
    let mut b = text.as_bytes().to_vec();
    for &(i, m) in &at {
        assert!(matches!(b[i], b' ' | b'~'));
        assert_eq!(b[i - 1], b'[');
        b[i] = m;
    }
    let out = String::from_utf8(b).expect("utf-8");
    assert_eq!(
        out,
        text.replacen("[ ] T001", "[x] T001", 1)
            .replacen("[~] **T003**", "[x] **T003**", 1)
    );
    let p = read(&out);
    let done: Vec<&str> = p
        .tasks
        .iter()
        .filter(|t| t.done)
        .map(|t| t.id.as_str())
        .collect();
    assert_eq!(done, ["T001", "T002", "T003"]);
}

/// orch's own ticks are told from any other change by the bytes alone: boxes of open task lines
/// going to `x`/`X`, nothing else.
#[test]
fn only_ticks_is_true_for_ticked_boxes_alone() {
    let before = "## Phase 1: A\n\n- [ ] T001 One\n- [~] T002 Two\n- [x] T003 Three\n- [ ] a checklist item\n\n```\n- [ ] T009 in a fence\n```\n";
    let tick = |from: &str, to: &str| before.replacen(from, to, 1);
    assert!(super::only_ticks(before, &tick("[ ] T001", "[X] T001")));
    assert!(super::only_ticks(
        before,
        &tick("[ ] T001", "[x] T001").replacen("[~] T002", "[X] T002", 1)
    ));
    for (what, after) in [
        ("nothing changed", before.to_string()),
        ("a word too", tick("[ ] T001 One", "[X] T001 Onf")),
        ("a fenced line", tick("[ ] T009", "[X] T009")),
        (
            "a checklist item",
            tick("[ ] a checklist", "[X] a checklist"),
        ),
        ("a ticked box respelled", tick("[x] T003", "[X] T003")),
        ("another mark", tick("[ ] T001", "[~] T001")),
        (
            "a longer file",
            format!("{}\n", tick("[ ] T001", "[X] T001")),
        ),
        ("a line added", tick("- [ ] T001 One\n", "- [X] T001 On\n")),
    ] {
        assert!(!super::only_ticks(before, &after), "{what}");
    }
}
