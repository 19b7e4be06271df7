//! The screen rendered on ratatui's `TestBackend`, compared with snapshots (insta).

use chrono::{DateTime, Duration, TimeZone, Utc};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;

use super::*;
use crate::status::TaskStatus;
use crate::top::model::{PlanRow, Snapshot, TaskRow};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0)
        .single()
        .expect("time")
}

fn snapshot() -> Snapshot {
    let plan = |name: &str, done, total, running, failed, blocked| PlanRow {
        name: name.into(),
        done,
        total,
        running,
        failed,
        blocked,
        ..PlanRow::default()
    };
    let mut auth = plan("auth", 3, 5, 1, 0, 1);
    auth.cost_usd = Some(1.234);
    let mut api = plan("api", 1, 4, 0, 1, 2);
    api.paused = true;
    let mut docs = plan("docs", 3, 3, 0, 0, 0);
    docs.merge = "merged".into();
    let running = TaskRow {
        plan: "auth".into(),
        id: "2.1".into(),
        description: "Add the login endpoint".into(),
        status: Some(TaskStatus::InProgress),
        attempt: 1,
        started_at: Some(now() - Duration::seconds(125)),
        last_output: Some(now() - Duration::seconds(4)),
        last_line: "running cargo test --lib login".into(),
        log: "/r/.orch/logs/auth/2.1.log".into(),
        prompt: "/r/.orch/logs/auth/2.1.prompt.md".into(),
        ..TaskRow::default()
    };
    let failed = TaskRow {
        plan: "api".into(),
        id: "1.2".into(),
        description: "Routes".into(),
        status: Some(TaskStatus::Failed),
        attempt: 3,
        error: Some("exit status 3: agent: cannot do 1.2".into()),
        ..TaskRow::default()
    };
    Snapshot {
        plans: vec![auth, api, docs],
        running: vec![running],
        failures: vec![failed],
        events: vec![
            "09:59:01 task_started auth 2.1 attempt 1".into(),
            "09:59:30 task_failed api 1.2 exit status 3: agent: cannot do 1.2".into(),
            "09:59:31 plan_paused api".into(),
        ],
        supervisor: Some(4242),
        problems: Vec::new(),
        integration: None,
        reload: None,
        forecast: String::new(),
    }
}

fn render(s: &Snapshot, ui: &Ui, w: u16, h: u16) -> (String, Vec<Color>) {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| draw(f, s, ui, now())).expect("draw");
    let buf = t.backend().buffer().clone();
    let mut text = String::new();
    let mut colors = Vec::new();
    for y in 0..h {
        let mut line = String::new();
        for x in 0..w {
            let c = &buf[(x, y)];
            line.push_str(c.symbol());
            colors.push(c.fg);
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    (text, colors)
}

#[test]
fn the_main_screen_at_80x24() {
    let (text, colors) = render(&snapshot(), &Ui::default(), 80, 24);
    insta::assert_snapshot!("main_80x24", text);
    assert!(
        colors.iter().any(|c| *c != Color::Reset),
        "coloured by default"
    );
}

/// Plans of several repositories at 80 columns: each row's repository tag is whole, with the
/// plan's state after it; a long repository name is cut, never the tag's start.
#[test]
fn the_repository_of_a_plan_fits_at_80_columns() {
    let mut s = snapshot();
    s.plans[0].repo = Some("client".into());
    s.plans[1].repo = Some("payments-service-v2".into());
    s.plans[2].repo = Some("api".into());
    let (text, _) = render(&s, &Ui::default(), 80, 24);
    insta::assert_snapshot!("repos_80x24", text);
    let row = |plan: &str| {
        text.lines()
            .find(|l| l[1..].starts_with(plan))
            .unwrap_or_else(|| panic!("no {plan}: {text}"))
    };
    assert!(row("auth").ends_with("  @client"), "{text}");
    assert!(row("api").ends_with("  @payments… PAUSED"), "{text}");
    assert!(row("docs").ends_with("  @api merged"), "{text}");
}

#[test]
fn the_last_integration_test_has_a_row_under_the_plans() {
    let mut s = snapshot();
    s.integration = Some((
        true,
        "red: lib + app: verify exited with status 1 (culprit app)".into(),
    ));
    let (text, colors) = render(&s, &Ui::default(), 80, 24);
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(" INTEGRATION"))
        .unwrap_or_else(|| panic!("no row: {text}"));
    assert_eq!(
        lines[at],
        " INTEGRATION    red: lib + app: verify exited with status 1 (culprit app)"
    );
    assert!(lines[at - 1].contains("docs"), "under the plans: {text}");
    let row_colors = &colors[at * 80 + 16..at * 80 + 19];
    assert!(
        row_colors.iter().all(|c| *c == Color::Red),
        "{row_colors:?}"
    );
}

#[test]
fn no_color_draws_without_colours_and_still_marks_the_selection() {
    let ui = Ui {
        no_color: true,
        selected: 3,
        ..Ui::default()
    };
    let (text, colors) = render(&snapshot(), &ui, 80, 24);
    assert!(colors.iter().all(|c| *c == Color::Reset), "NO_COLOR");
    let selected = text.lines().find(|l| l.starts_with('>')).expect("marked");
    assert!(
        selected.contains("auth") && selected.contains("2.1"),
        "{selected}"
    );
}

#[test]
fn a_small_terminal_keeps_the_selection_visible() {
    let ui = Ui {
        selected: 4,
        ..Ui::default()
    };
    let (text, _) = render(&snapshot(), &ui, 50, 10);
    insta::assert_snapshot!("small_50x10", text);
    assert!(text.lines().any(|l| l.starts_with(">api")), "{text}");
}

#[test]
fn the_detail_pane_and_the_help() {
    let s = snapshot();
    let ui = Ui {
        detail: Some(Detail {
            task: s.running[0].clone(),
            log: (1..=30).map(|i| format!("line {i}")).collect(),
            diff: vec![
                " src/login.rs | 42 ++++++++++".into(),
                " 1 file changed, 42 insertions(+)".into(),
            ],
            prompt: vec!["# Task 2.1: Add the login endpoint".into()],
        }),
        ..Ui::default()
    };
    let (text, _) = render(&s, &ui, 80, 24);
    insta::assert_snapshot!("detail_80x24", text);
    assert!(text.contains("line 30"), "the log's end is shown");
    let ui = Ui {
        help: true,
        flash: Some("plan api paused: nothing new of it starts".into()),
        ..Ui::default()
    };
    let (text, _) = render(&s, &ui, 80, 24);
    insta::assert_snapshot!("help_80x24", text);
    for (k, _) in KEYS {
        assert!(text.contains(k), "{k}");
    }
}

#[test]
fn helpers() {
    assert_eq!(bar(1, 4, 8), "[##      ]");
    assert_eq!(bar(0, 0, 4), "[    ]");
    assert_eq!(ago(now() - Duration::seconds(3725), now()), "1h02m");
    assert_eq!(ago(now() - Duration::seconds(65), now()), "1m05s");
    assert_eq!(cut("abcdef", 4), "abc…");
}

#[test]
fn the_header_shows_the_last_reload_or_invalid_edit() {
    let mut s = snapshot();
    s.reload = Some((false, "reloaded 09:59:40: plan c: added".into()));
    let (text, _) = render(&s, &Ui::default(), 100, 24);
    assert_eq!(
        text.lines().next(),
        Some("orch top  orch up running (pid 4242)  reloaded 09:59:40: plan c: added")
    );
    s.reload = Some((
        true,
        "plans.toml invalid since 09:59:50: plans.toml:7:1: error: unknown key `nmae`".into(),
    ));
    let (text, colors) = render(&s, &Ui::default(), 120, 24);
    let head = text.lines().next().unwrap_or("");
    assert!(
        head.ends_with(
            "  plans.toml invalid since 09:59:50: plans.toml:7:1: error: unknown key `nmae`"
        ),
        "{head}"
    );
    let at = head.find("plans.toml").unwrap_or(0);
    assert_eq!(colors[at], Color::Red, "an invalid edit is red");
}

#[test]
fn the_forecast_is_in_the_header_the_plan_rows_and_a_slow_task_is_marked() {
    let mut s = snapshot();
    s.forecast = "ends 10:20–10:45, $1.10–2.30 more".into();
    s.plans[0].forecast = "ends 10:12–10:30".into();
    s.running[0].forecast = "1m50s–3m".into();
    s.running[0].slow = true;
    let (text, colors) = render(&s, &Ui::default(), 120, 24);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].contains("forecast: ends 10:20–10:45, $1.10–2.30 more"),
        "{text}"
    );
    let auth = lines
        .iter()
        .find(|l| l.contains("auth "))
        .expect("auth row");
    assert!(auth.ends_with("ends 10:12–10:30"), "{auth}");
    let at = lines
        .iter()
        .position(|l| l.contains("SLOW [1m50s–3m] running cargo test"))
        .unwrap_or_else(|| panic!("no slow mark: {text}"));
    assert_eq!(
        colors[at * 120 + 2],
        Color::Yellow,
        "a slow task stands out"
    );
}

/// An agent's words (a task's text, its last line, its failure's cause, an event, the lines of
/// its log in the detail pane) holding terminal controls are drawn as visible escapes, on the
/// main screen and in the detail pane: no cell holds a control, a bidi override or a line
/// separator, and what the words said is there to read.
#[test]
fn an_agents_control_characters_are_drawn_escaped() {
    let hostile = "\u{1b}[2J\u{1b}]52;c;eA==\u{7}\rX\u{8}\u{9b}31m\u{202e}txt";
    let shown = "\\u{1b}[2J\\u{1b}]52;c;eA==\\u{7}\\rX\\u{8}\\u{9b}31m\\u{202e}txt";
    let mut s = snapshot();
    s.running[0].description = format!("D{hostile}");
    s.running[0].last_line = format!("L{hostile}");
    s.failures[0].error = Some(format!("C{hostile}"));
    s.events.push(format!("10:00:00 note E{hostile}"));
    let cell_unsafe = |text: &str| {
        text.chars().any(|c| c.is_control() && c != '\n') || text.contains(['\u{202e}', '\u{2028}'])
    };

    let (text, _) = render(&s, &Ui::default(), 200, 30);
    assert!(!cell_unsafe(&text), "{text:?}");
    for prefix in ["L", "C", "E"] {
        assert!(
            text.contains(&format!("{prefix}{shown}")),
            "{prefix}: {text}"
        );
    }

    let ui = Ui {
        detail: Some(Detail {
            task: s.running[0].clone(),
            log: vec![format!("G{hostile}"), "plain line".into()],
            diff: vec![format!("F{hostile}")],
            prompt: vec![format!("P{hostile}")],
        }),
        ..Ui::default()
    };
    let (text, _) = render(&s, &ui, 200, 30);
    assert!(!cell_unsafe(&text), "{text:?}");
    for prefix in ["D", "G", "F"] {
        assert!(
            text.contains(&format!("{prefix}{shown}")),
            "{prefix}: {text}"
        );
    }
    assert!(text.contains("plain line"), "{text}");
}

#[test]
fn a_running_task_on_a_host_names_it_within_80_columns() {
    let mut s = snapshot();
    s.running[0].host = Some("build1".into());
    // A second one on a host whose name is long and odd: escaped, cut.
    let mut other = s.running[0].clone();
    other.id = "2.2".into();
    other.host = Some("a-very-long-host-name\u{1b}[31m".into());
    s.running.push(other);
    let (text, _) = render(&s, &Ui::default(), 80, 24);
    insta::assert_snapshot!("running_on_host_80x24", text);
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
    assert!(
        text.contains(" auth         2.1          1   2m05s     4s  @build1 running cargo test"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "{text}");
    let ui = Ui {
        detail: Some(Detail {
            task: s.running[0].clone(),
            ..Default::default()
        }),
        ..Ui::default()
    };
    let (detail, _) = render(&s, &ui, 80, 24);
    assert!(
        detail.contains("in_progress, attempt 1, started 2m05s ago, on host build1"),
        "{detail}"
    );
}

#[test]
fn a_running_task_on_a_lost_host_says_so_in_its_row_and_its_detail() {
    let mut s = snapshot();
    s.running[0].host = Some("build1".into());
    s.running[0].host_lost = Some("the connection ended\u{1b}[2J".into());
    let (text, _) = render(&s, &Ui::default(), 80, 24);
    assert!(text.contains("@build1 LOST running cargo test"), "{text}");
    let ui = Ui {
        detail: Some(Detail {
            task: s.running[0].clone(),
            ..Default::default()
        }),
        ..Ui::default()
    };
    let (detail, _) = render(&s, &ui, 200, 24);
    assert!(
        detail.contains("on host build1 (lost: the connection ended\\u{1b}[2J)"),
        "{detail}"
    );
    assert!(!detail.contains('\u{1b}'), "{detail}");
}

/// A Spec Kit task's stories: before its last output (running), its cause (failed), and after
/// its id in its details.
#[test]
fn a_spec_kit_task_shows_its_stories() {
    let mut s = snapshot();
    s.running[0].id = "T014".into();
    s.running[0].story = "US1".into();
    s.failures[0].id = "T049a".into();
    s.failures[0].story = "US3/US5".into();
    let (text, _) = render(&s, &Ui::default(), 80, 24);
    assert!(text.contains("[US1] running cargo test"), "{text}");
    assert!(text.contains("[US3/US5] exit status 3"), "{text}");
    let ui = Ui {
        detail: Some(Detail {
            task: s.running[0].clone(),
            log: Vec::new(),
            diff: Vec::new(),
            prompt: Vec::new(),
        }),
        ..Ui::default()
    };
    let (text, _) = render(&s, &ui, 80, 24);
    assert!(
        text.contains("auth T014 [US1] Add the login endpoint"),
        "{text}"
    );
}
