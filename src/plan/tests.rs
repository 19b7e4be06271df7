//! Parser tests: the grammar, the improvements over the earlier parser, and every diagnostic
//! with its location.

use std::path::Path;

use super::*;
use crate::diagnostic::Severity;

fn p(text: &str) -> Plan {
    parse(Path::new("plan.md"), text)
}

fn ids(plan: &Plan) -> Vec<&str> {
    plan.tasks.iter().map(|t| t.id.as_str()).collect()
}

/// (severity, line, message fragment) of each diagnostic.
fn diags(plan: &Plan) -> Vec<(Severity, usize, String)> {
    plan.diagnostics
        .iter()
        .map(|d| (d.severity, d.line, d.message.clone()))
        .collect()
}

fn assert_diag(plan: &Plan, severity: Severity, line: usize, fragment: &str) {
    assert!(
        plan.diagnostics
            .iter()
            .any(|d| d.severity == severity && d.line == line && d.message.contains(fragment)),
        "expected {severity:?} at line {line} containing {fragment:?}, got {:#?}",
        diags(plan)
    );
}

const BASIC: &str = "\
# Auth plan

- [ ] 0.1 not a task: before the first phase

## Phase 1: Setup

- [ ] 1.1 Create `src/auth.rs` (HIGH)
  - sub bullet one
  - sub bullet two
- [x] 1.2 Already done
- [X] 1.3 Also done (depends: 1.1)

**VERIFY Phase 1:**
- [ ] Builds cleanly
- [x] Tests pass

## Phase 2: Build (pipeline-start: when 1.3 completes)

**Execution Note:** Tasks 2.1-2.3 are [SEQUENTIAL] - all modify `src/lib.rs`

- [ ] 2.1 First (CRITICAL)
- [ ] 2.2 Second
- [ ] 2.3 Third (depends: 1.1, 2.2)

**VERIFY Phase 2:** (non-blocking)
- Docs updated

```markdown
## Phase 9: Example inside a fence
- [ ] 9.1 never a task
```
";

#[test]
fn basic_grammar() {
    let plan = p(BASIC);
    assert_eq!(plan.title, "Auth plan");
    assert_eq!(
        ids(&plan),
        ["1.1", "1.2", "1.3", "V1", "2.1", "2.2", "2.3", "V2"]
    );
    assert_eq!(plan.phases.len(), 2);
    assert_eq!(plan.phases[1].title, "Build");
    assert_eq!(
        plan.phases[1]
            .pipeline_start
            .as_ref()
            .map(|p| p.trigger.as_str()),
        Some("1.3")
    );
    let t11 = plan.task("1.1").expect("1.1");
    assert_eq!(t11.body, "- sub bullet one\n- sub bullet two");
    assert_eq!(t11.priority, Priority::High);
    assert_eq!(t11.files, ["src/auth.rs"]);
    assert!(!t11.done);
    assert!(plan.task("1.2").expect("1.2").done);
    assert!(plan.task("1.3").expect("1.3").done, "[X] counts as done");
    assert_eq!(
        plan.task("2.3").expect("2.3").dependencies(),
        ["1.1", "2.2"]
    );
    assert_eq!(plan.task("2.1").expect("2.1").priority, Priority::Critical);
    let v1 = plan.task("V1").expect("V1");
    assert_eq!(v1.kind, TaskKind::Verify);
    assert!(v1.blocking);
    assert!(!v1.done, "one criterion is unchecked");
    assert_eq!(v1.body, "- [ ] Builds cleanly\n- [x] Tests pass");
    assert!(!plan.task("V2").expect("V2").blocking);
    assert_eq!(plan.sequential.len(), 1);
    assert_eq!(plan.sequential[0].tasks, ["2.1", "2.2", "2.3"]);
    assert_eq!(plan.sequential[0].reason, "all modify `src/lib.rs`");
    // The only diagnostic: the task line before the first phase.
    assert_eq!(plan.diagnostics.len(), 1, "{:#?}", diags(&plan));
    assert_diag(&plan, Severity::Warning, 3, "before the first");
}

#[test]
fn verify_variants_are_alike() {
    let plan = p(
        "## Phase 1: A\n- [ ] 1.1 x\n**VERIFY 1:** inline criterion\n\n## Phase 2: B\n- [ ] 2.1 y\n- [ ] **VERIFY 2**: checkbox form\n- [x] **VERIFY 2:** second\n",
    );
    assert_eq!(ids(&plan), ["1.1", "V1", "2.1", "V2"]);
    assert_eq!(plan.task("V1").expect("V1").description, "inline criterion");
    assert_eq!(
        plan.task("V2").expect("V2").body,
        "- [ ] checkbox form\n- [x] second"
    );
}

#[test]
fn verify_block_of_id_tasks_is_tasks() {
    let plan = p("## Phase 1: A\n- [ ] 1.1 x\n**VERIFY Phase 1:**\n- [ ] 1.2 Verify all agents\n");
    assert_eq!(ids(&plan), ["1.1", "1.2"]);
    assert!(plan.diagnostics.is_empty(), "{:#?}", diags(&plan));
}

#[test]
fn groups_with_and_and_commas() {
    let plan = p(
        "## Phase 5: A\n**Execution Note:** Tasks 5.2 and 5.4 are [SEQUENTIAL] - same file\n**Execution Note:** Tasks 5.1, 5.3 are [SEQUENTIAL] - other\n- [ ] 5.1 a\n- [ ] 5.2 b\n- [ ] 5.3 c\n- [ ] 5.4 d\n",
    );
    assert_eq!(plan.sequential[0].tasks, ["5.2", "5.4"]);
    assert_eq!(plan.sequential[1].tasks, ["5.1", "5.3"]);
}

#[test]
fn parallel_phases() {
    let plan = p(
        "## Phase 1: A\n- [ ] 1.1 a\n**Execution Note:** Phases 2-3 are [PARALLEL] - independent\n## Phase 2: B\n- [ ] 2.1 b\n## Phase 3: C\n- [ ] 3.1 c\n",
    );
    assert_eq!(plan.parallel.len(), 1);
    assert_eq!(plan.parallel[0].phases, [2, 3]);
}

#[test]
fn pipeline_start_line_before_heading() {
    let plan = p(
        "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b\n**pipeline-start:** when 1.1 completes\n## Phase 2: B\n- [ ] 2.1 c\n",
    );
    assert_eq!(
        plan.phases[1]
            .pipeline_start
            .as_ref()
            .map(|p| p.trigger.as_str()),
        Some("1.1")
    );
}

#[test]
fn fenced_code_inside_task_body_is_body() {
    let plan = p("## Phase 1: A\n- [ ] 1.1 a\n  ```sh\n- [ ] 1.9 inside\n  ```\n- [ ] 1.2 b\n");
    assert_eq!(ids(&plan), ["1.1", "1.2"]);
    assert!(plan.task("1.1").expect("1.1").body.contains("1.9 inside"));
}

#[test]
fn ids_sort_numerically_in_ranges() {
    let plan = p(
        "## Phase 2: A\n**Execution Note:** Tasks 2.9-2.10 are [SEQUENTIAL] - x\n- [ ] 2.9 a\n- [ ] 2.10 b\n- [ ] 2.2 c\n",
    );
    assert_eq!(plan.sequential[0].tasks, ["2.9", "2.10"]);
}

#[test]
fn diagnostic_duplicate_id() {
    let plan = p("## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.1 again\n");
    assert_diag(
        &plan,
        Severity::Error,
        3,
        "duplicate task id `1.1` (first defined at line 2)",
    );
}

#[test]
fn diagnostic_unknown_dependency() {
    let plan = p("## Phase 1: A\n- [ ] 1.1 a (depends: 1.9)\n");
    assert_diag(
        &plan,
        Severity::Error,
        2,
        "depends on `1.9`, which is not a task of this plan",
    );
}

#[test]
fn estimates_are_parsed_in_seconds() {
    let plan = p("## Phase 1: A\n\
- [ ] 1.1 a (est: 20m)\n\
- [ ] 1.2 b (EST: 1h30m) (depends: 1.1)\n\
- [ ] 1.3 c (est:45s)\n\
- [ ] 1.4 d (est: 2h) (HIGH)\n\
- [ ] 1.5 e\n");
    assert!(!plan.has_errors(), "{:#?}", diags(&plan));
    let est: Vec<Option<u64>> = plan.tasks.iter().map(|t| t.estimate_s).collect();
    assert_eq!(
        est,
        vec![Some(1_200), Some(5_400), Some(45), Some(7_200), None]
    );
    assert_eq!(plan.tasks[1].dependencies(), ["1.1"]);
    assert_eq!(plan.tasks[3].priority, Priority::High);
}

#[test]
fn diagnostic_bad_estimate() {
    let plan = p(
        "## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b (est: soon)\n- [ ] 1.3 c (est: 20m\n- [ ] 1.4 d (est: 1m) (est: 2m)\n",
    );
    assert_diag(
        &plan,
        Severity::Error,
        3,
        "task `1.2`: `(est: soon)`: invalid duration",
    );
    assert_diag(&plan, Severity::Error, 4, "`(est:` is not closed");
    assert_diag(&plan, Severity::Error, 5, "more than one `(est: …)`");
    assert_eq!(plan.tasks[3].estimate_s, Some(60));
}

#[test]
fn diagnostic_self_dependency() {
    let plan = p("## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b (depends: 1.2)\n");
    assert_diag(&plan, Severity::Error, 3, "task `1.2` depends on itself");
}

#[test]
fn diagnostic_bad_dependency_token() {
    let plan = p("## Phase 1: A\n- [ ] 1.1 a (depends: setup)\n");
    assert_diag(
        &plan,
        Severity::Error,
        2,
        "lists `setup`, which is not a task id",
    );
}

#[test]
fn diagnostic_execution_note_unknown_task() {
    let plan =
        p("## Phase 1: A\n- [ ] 1.1 a\n**Execution Note:** Tasks 1.1-1.5 are [SEQUENTIAL] - x\n");
    assert_diag(
        &plan,
        Severity::Error,
        3,
        "names task `1.5`, which does not exist",
    );
}

#[test]
fn diagnostic_execution_note_unknown_task_reported_once() {
    let plan = p(
        "## Phase 1: A\n- [ ] 1.1 a\n**Execution Note:** Tasks 1.1 and 1.8 are [SEQUENTIAL] - x\n",
    );
    assert_diag(
        &plan,
        Severity::Error,
        3,
        "names task `1.8`, which does not exist",
    );
    assert_eq!(plan.errors().count(), 1, "{:#?}", diags(&plan));
}

#[test]
fn diagnostic_execution_note_unknown_phase() {
    let plan = p("## Phase 1: A\n- [ ] 1.1 a\n**Execution Note:** Phases 1-4 are [PARALLEL] - x\n");
    assert_diag(
        &plan,
        Severity::Error,
        3,
        "names phase 4, which does not exist",
    );
}

#[test]
fn diagnostic_execution_note_without_tasks() {
    let plan = p("## Phase 1: A\n- [ ] 1.1 a\n**Execution Note:** these are [SEQUENTIAL]\n");
    assert_diag(&plan, Severity::Error, 3, "names no tasks");
}

#[test]
fn diagnostic_pipeline_unknown_trigger() {
    let plan = p(
        "## Phase 1: A\n- [ ] 1.1 a\n## Phase 2: B (pipeline-start: when 1.7 completes)\n- [ ] 2.1 b\n",
    );
    assert_diag(
        &plan,
        Severity::Error,
        3,
        "names task `1.7`, which does not exist",
    );
}

#[test]
fn warning_indented_task_outside_task() {
    let plan = p("## Phase 1: A\nSome prose.\n  - [ ] 1.2 indented\n");
    assert_diag(
        &plan,
        Severity::Warning,
        3,
        "indented `- [ ] 1.2` is not a task",
    );
    assert!(plan.tasks.is_empty());
}

#[test]
fn warning_three_hash_phase() {
    let plan = p("## Phase 1: A\n- [ ] 1.1 a\n### Phase 3: Deep\n- [ ] 3.1 b\n");
    assert_diag(&plan, Severity::Warning, 3, "has 3 `#`");
    assert_eq!(
        plan.task("3.1").expect("3.1").phase,
        1,
        "still phase 1, as before"
    );
}

#[test]
fn warning_bracket_depends() {
    let plan = p("## Phase 1: A\n- [ ] 1.1 a\n- [ ] 1.2 b [DEPENDS: 1.1]\n");
    assert_diag(
        &plan,
        Severity::Warning,
        3,
        "`[DEPENDS: …]` is not dependency syntax",
    );
    assert!(plan.task("1.2").expect("1.2").depends.is_none());
}

#[test]
fn warning_verify_without_criteria_and_unknown_phase() {
    let plan =
        p("## Phase 1: A\n- [ ] 1.1 a\n**VERIFY Phase 1:**\n\n- [ ] **VERIFY 4**: nothing\n");
    assert_diag(&plan, Severity::Warning, 3, "lists no criteria");
    assert_diag(
        &plan,
        Severity::Warning,
        5,
        "names phase 4, which does not exist",
    );
}

#[test]
fn unclosed_fence_is_reported() {
    let plan = p("## Phase 1: A\n- [ ] 1.1 a\n```\n- [ ] 1.2 b\n");
    assert_eq!(ids(&plan), ["1.1"]);
    assert_diag(&plan, Severity::Warning, 4, "never closed");
}

#[test]
fn file_extraction() {
    let files = super::parse::extract_files(
        "Edit `scripts/lib/x.js` and src/main.rs:10-20, see https://x.org/a.md, run `/plan:status`, `npm test`, e.g. `foo.bar()`",
    );
    assert_eq!(files, ["scripts/lib/x.js", "src/main.rs"]);
}

/// The file extraction as it was before it was made faster, to compare with.
mod reference {
    pub(super) fn reference_extract_files(text: &str) -> Vec<String> {
        let mut files: Vec<String> = Vec::new();
        let mut push = |candidate: &str| {
            if let Some(path) = reference_normalize(candidate)
                && !files.contains(&path)
            {
                files.push(path);
            }
        };
        let mut in_tick = false;
        for (i, part) in text.split('`').enumerate() {
            if i > 0 {
                in_tick = !in_tick;
            }
            if in_tick {
                if !part.contains(char::is_whitespace) {
                    push(part);
                }
            } else {
                for token in part.split_whitespace() {
                    // Most words name no file: skip them before trimming (trimming only removes
                    // punctuation at the ends, so a kept token contains `/` or `src` already).
                    if !token.contains('/') && !token.contains("src") {
                        continue;
                    }
                    let token = token.trim_matches(|c: char| ",;()[]{}\"'*<>".contains(c));
                    if token.contains('/') || token.starts_with("src") {
                        push(token);
                    }
                }
            }
        }
        files
    }

    fn reference_normalize(s: &str) -> Option<String> {
        let s = s.trim_end_matches(['.', ',', ':', ';']);
        if s.is_empty() || s.contains("://") || s.starts_with('-') || s.starts_with('/') {
            return None;
        }
        // Drop a `:80-88` / `:12` line suffix.
        let s = match s.split_once(':') {
            Some((path, suffix))
                if suffix
                    .chars()
                    .all(|c| c.is_ascii_digit() || c == '-' || c == ',') =>
            {
                path
            }
            Some(_) => return None,
            None => s,
        };
        if s.chars().any(|c| "(){}[]=<>|$*?!@#%^&\"'\\".contains(c)) {
            return None;
        }
        let name = s.rsplit('/').next().unwrap_or(s);
        let has_ext = name.rsplit_once('.').is_some_and(|(stem, ext)| {
            !stem.is_empty()
                && (1..=6).contains(&ext.len())
                && ext.chars().all(|c| c.is_ascii_alphanumeric())
                && !ext.chars().all(|c| c.is_ascii_digit())
        });
        let dir = s.contains('/') && s.split('/').all(|c| !c.is_empty() || s.ends_with('/'));
        if has_ext
            || (dir
                && s.chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_'))
        {
            Some(s.to_string())
        } else {
            None
        }
    }
}

proptest::proptest! {
    /// The faster file extraction finds what the earlier one found.
    #[test]
    fn file_extraction_is_what_it_was(text in "([a-z]{0,3}|src|[./:`,;()\\[\\]<>\"'* \\n\\t-]|//|://|[0-9]|\\.rs|é){0,30}") {
        proptest::prop_assert_eq!(super::parse::extract_files(&text), reference::reference_extract_files(&text));
    }

    /// `is_task_id` reads an id as parsing each part as a `u32` does.
    #[test]
    fn task_ids_are_numbers_as_rust_parses_them(id in "([0-9.+a]{0,14}|[0-9]{8,11}\\.[0-9]{1,11}(\\.[0-9]{9,11})?)") {
        let parsed = {
            let parts: Vec<&str> = id.split('.').collect();
            (2..=3).contains(&parts.len()) && parts.iter().all(|p| p.parse::<u32>().is_ok())
        };
        proptest::prop_assert_eq!(is_task_id(&id), parsed);
    }

    /// A description and a body are read for files as if joined by a newline (without joining
    /// them), whatever their backticks, slashes and whitespace.
    #[test]
    fn file_extraction_of_parts_is_that_of_the_joined_text(
        a in "[ `a/s.rcx\u{b}\u{a0}é]{0,24}",
        b in "[ `a/s.rcx\u{b}\n]{0,24}",
    ) {
        let joined = super::parse::extract_files(&format!("{a}\n{b}"));
        proptest::prop_assert_eq!(super::parse::extract_files_of(&[&a, &b]), joined);
    }
}

// Found by the property tests (tests/fuzz.rs), kept as regressions.

#[test]
fn verify_steps_with_no_task_between_keep_file_order() {
    let plan = p("\
## Phase 1: A

**VERIFY Phase 1:**
- [ ] a

## Phase 2: B

**VERIFY Phase 2:**
- [ ] b
");
    assert_eq!(ids(&plan), ["V1", "V2"]);
}

#[test]
fn verify_steps_first_between_and_last_are_placed_in_file_order() {
    let plan = p("\
## Phase 1: A

**VERIFY Phase 1:**
- [ ] a

- [ ] 1.1 one
- [ ] 1.2 two

## Phase 2: B

- [ ] 2.1 three

**VERIFY Phase 2:**
- [ ] b

**VERIFY Phase 3:**
- [ ] c

## Phase 3: C

- [ ] 3.1 four
- [ ] 3.2 five

**VERIFY Phase 4:**
- [ ] d

## Phase 4: D
");
    assert_eq!(
        ids(&plan),
        ["V1", "1.1", "1.2", "2.1", "V2", "V3", "3.1", "3.2", "V4"]
    );
    let v3 = plan.task("V3").expect("V3");
    assert_eq!((v3.phase, v3.body.as_str()), (3, "- [ ] c"));
    assert_eq!(plan.task("3.2").expect("3.2").description, "five");
}

#[test]
fn checkbox_verify_without_text_is_no_criterion() {
    let plan = p("## Phase 2: \n- [ ] **VERIFY 2**: \n```");
    assert!(plan.tasks.is_empty(), "{:#?}", plan.tasks);
    assert_diag(&plan, Severity::Warning, 2, "lists no criteria");
}

#[test]
fn renders_the_canonical_markdown() {
    let plan = p("\
# Demo
**Execution Note:** Tasks 1.1-1.2 are [SEQUENTIAL] - one file
## Phase 1: Setup
- [x] 1.1 Create `src/a.rs`
    - sub item

- [ ] 1.2 Wire it (depends: 1.1)
**VERIFY 1:** (non-blocking) it builds
- [x] tests pass
## Phase 2: Ship (pipeline-start: when 1.1 completes)
- [ ] 2.1 Release
");
    assert!(!plan.has_errors(), "{:#?}", diags(&plan));
    let md = plan.to_markdown();
    assert_eq!(
        md,
        "\
# Demo

**Execution Note:** Tasks 1.1-1.2 are [SEQUENTIAL] - one file

## Phase 1: Setup

- [x] 1.1 Create `src/a.rs`
  - sub item
- [ ] 1.2 Wire it (depends: 1.1)
**VERIFY Phase 1:** (non-blocking)
  - [ ] it builds
  - [x] tests pass

**pipeline-start:** when 1.1 completes
## Phase 2: Ship

- [ ] 2.1 Release
"
    );
    let again = p(&md);
    assert_eq!(again.tasks.len(), plan.tasks.len());
    for (a, b) in plan.tasks.iter().zip(&again.tasks) {
        assert_eq!(
            (
                &a.id,
                a.kind,
                &a.description,
                &a.body,
                a.done,
                &a.depends,
                a.blocking
            ),
            (
                &b.id,
                b.kind,
                &b.description,
                &b.body,
                b.done,
                &b.depends,
                b.blocking
            )
        );
    }
    assert_eq!(again.sequential, {
        let mut s = plan.sequential.clone();
        s[0].line = 3;
        s
    });
}

#[test]
fn renders_an_empty_title_as_a_bare_heading() {
    let plan = p("s\n#\t");
    assert_eq!(plan.title, "");
    assert_eq!(plan.to_markdown(), "#\n\n");
    assert_eq!(p(&plan.to_markdown()).title, "");
}

/// A plan read without the tasks' files, with [`task_files`] filling them in, is the plan read
/// with them.
#[test]
fn files_filled_in_later_are_those_the_parser_finds() {
    let text = "\
# T

## Phase 1: A
- [ ] 1.1 Edit `src/a.rs` and docs/b.md (depends: 1.2)
  - also `src/c.rs`
  ```
  src/in_fence.rs
  ```
- [x] 1.2 Quoted `across
  lines` then lib/d.py
- [ ] 1.3 nothing here

**VERIFY Phase 1:**
- [ ] `cargo test` passes, see tests/e.rs
";
    let full = p(text);
    let mut lazy = parse_with(Path::new("plan.md"), text, false);
    assert!(
        lazy.tasks
            .iter()
            .any(|t| t.files.is_empty() && t.kind == TaskKind::Task)
    );
    for t in &mut lazy.tasks {
        t.files = task_files(t);
    }
    assert_eq!(lazy, full);
    assert!(full.tasks.iter().all(|t| task_files(t) == t.files));
    assert!(full.tasks.iter().any(|t| !t.files.is_empty()));
}

#[test]
fn commit_subjects_drop_dependency_notes() {
    let cases = [
        ("Hash passwords (depends: 1.1)", "Hash passwords"),
        (
            "Add (HIGH) login (depends: 1.1, 2.3) form",
            "Add (HIGH) login form",
        ),
        ("Start (pipeline-start: when 1.3 completes)", "Start"),
        ("Keep (this) note", "Keep (this) note"),
        ("Write docs (est: 1h30m) (depends: 1.1)", "Write docs"),
        ("Add login (check: cargo test -p auth)", "Add login"),
        ("Unclosed (depends: 1.1", "Unclosed (depends: 1.1"),
    ];
    for (input, want) in cases {
        assert_eq!(super::plain_description(input), want, "{input}");
    }
}
