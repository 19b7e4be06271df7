//! The screen of `orch top`, drawn from a [`Snapshot`] and the keys' state ([`Ui`]): no I/O,
//! so tests render it on ratatui's `TestBackend`.

use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};

use super::model::{PlanRow, Snapshot, TaskRow, flat};

/// A paragraph of `text` with every span shown escaped on its line
/// ([`crate::untrusted::escaped`]): the one way text reaches the frame, so that an agent's
/// words (a cause, a log line, a task's text, a prompt) never move the cursor or reorder the
/// screen (ratatui drops control characters, which hides them; bidi overrides it renders).
fn paragraph(text: impl Into<Text<'static>>) -> Paragraph<'static> {
    let mut text: Text<'static> = text.into();
    for line in &mut text.lines {
        for span in &mut line.spans {
            if let std::borrow::Cow::Owned(shown) = crate::untrusted::escaped(&span.content) {
                span.content = shown.into();
            }
        }
    }
    Paragraph::new(text)
}

/// What the detail pane shows of the selected task.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Detail {
    pub(crate) task: TaskRow,
    /// The log's last lines (followed while it runs).
    pub(crate) log: Vec<String>,
    /// `git diff --stat` of the worktree (running) or of its commit.
    pub(crate) diff: Vec<String>,
    /// The prompt file's first lines.
    pub(crate) prompt: Vec<String>,
}

/// The state of the keys: what is selected, which pane is open, the last message.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Ui {
    /// Index into [`items`].
    pub(crate) selected: usize,
    pub(crate) detail: Option<Detail>,
    pub(crate) help: bool,
    /// The answer to the last key (a confirmation or an error).
    pub(crate) flash: Option<String>,
    /// A plan's unfinished tasks and what they wait for (`enter` on a plan): its name, lines.
    pub(crate) plan_detail: Option<(String, Vec<String>)>,
    /// Draw without colours (`NO_COLOR`).
    pub(crate) no_color: bool,
}

/// A selectable line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    Plan(usize),
    Running(usize),
    Failed(usize),
}

/// The selectable lines in screen order: plans, running agents, failures.
pub(crate) fn items(s: &Snapshot) -> Vec<Item> {
    (0..s.plans.len())
        .map(Item::Plan)
        .chain((0..s.running.len()).map(Item::Running))
        .chain((0..s.failures.len()).map(Item::Failed))
        .collect()
}

/// The keys, as listed by `?` (and in the book, docs/src/commands/top.md).
pub(crate) const KEYS: &[(&str, &str)] = &[
    ("↑/↓, j/k", "select a plan or a task"),
    ("p", "pause / resume the selected plan"),
    ("r", "retry the selected failed task"),
    ("x", "stop the selected running task"),
    ("enter", "details: task log/diff/prompt, plan waits"),
    ("esc", "close the details or this help"),
    ("?", "this help"),
    ("q", "quit"),
];

struct Theme {
    color: bool,
}

impl Theme {
    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    fn bold(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
}

/// Draws the whole screen.
pub(crate) fn draw(f: &mut Frame<'_>, s: &Snapshot, ui: &Ui, now: DateTime<Utc>) {
    let th = Theme {
        color: !ui.no_color,
    };
    let area = f.area();
    let its = items(s);
    let sel = its.get(ui.selected).copied();
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    f.render_widget(paragraph(header(s, &th)), head);
    f.render_widget(paragraph(footer(ui, &th)), foot);
    if let Some(d) = &ui.detail {
        draw_detail(f, body, d, now, &th);
    } else if let Some((name, lines)) = &ui.plan_detail {
        let body_lines: Vec<Line<'static>> = lines.iter().map(|l| Line::raw(l.clone())).collect();
        f.render_widget(
            paragraph(body_lines).block(Block::default().borders(Borders::TOP).title(format!(
                " {name}: tasks not finished, and what they wait for "
            ))),
            body,
        );
    } else {
        draw_lists(f, body, s, sel, now, &th);
    }
    if ui.help {
        draw_help(f, area, &th);
    }
}

fn header(s: &Snapshot, th: &Theme) -> Line<'static> {
    let run = match s.supervisor {
        Some(pid) => Span::styled(format!("orch up running (pid {pid})"), th.fg(Color::Green)),
        None => Span::styled("no run going: last state".to_string(), th.fg(Color::Yellow)),
    };
    let mut spans = vec![Span::styled("orch top", th.bold()), Span::raw("  "), run];
    // The last re-plan of the run: an edit not applied stands out until a good one follows.
    if let Some((invalid, text)) = &s.reload {
        let color = if *invalid { Color::Red } else { Color::Cyan };
        spans.push(Span::styled(format!("  {text}"), th.fg(color)));
    }
    if let Some(p) = s.problems.first() {
        spans.push(Span::styled(format!("  {p}"), th.fg(Color::Red)));
    }
    // The run's forecast from the history.
    if !s.forecast.is_empty() {
        spans.push(Span::styled(
            format!("  forecast: {}", s.forecast),
            th.fg(Color::Cyan),
        ));
    }
    Line::from(spans)
}

fn footer(ui: &Ui, th: &Theme) -> Line<'static> {
    match &ui.flash {
        Some(m) => Line::from(Span::styled(m.clone(), th.bold())),
        None => Line::from(Span::styled(
            "↑↓ select  p pause/resume  r retry  x stop  enter details  ? keys  q quit".to_string(),
            th.fg(Color::DarkGray),
        )),
    }
}

fn draw_lists(
    f: &mut Frame<'_>,
    area: Rect,
    s: &Snapshot,
    sel: Option<Item>,
    now: DateTime<Utc>,
    th: &Theme,
) {
    let w = area.width as usize;
    let mut lines: Vec<Line<'static>> = Vec::new();
    // Which screen line the selection is on, to keep it visible.
    let mut sel_line = 0;
    lines.push(Line::from(Span::styled(
        format!(
            " {:<14} {:<12} {:>7} {:>4} {:>4} {:>4}  {:>7}  {}",
            "PLAN", "PROGRESS", "DONE", "RUN", "FAIL", "WAIT", "COST", "STATE"
        ),
        th.bold(),
    )));
    for (i, p) in s.plans.iter().enumerate() {
        let selected = sel == Some(Item::Plan(i));
        if selected {
            sel_line = lines.len();
        }
        lines.push(plan_line(p, selected, w, th));
    }
    if let Some((red, text)) = &s.integration {
        let color = if *red { Color::Red } else { Color::Green };
        lines.push(Line::from(vec![
            Span::styled(format!(" {:<14} ", "INTEGRATION"), th.bold()),
            Span::styled(cut(text, w.saturating_sub(16)), th.fg(color)),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::from(Span::styled(
        format!(
            " {:<12} {:<10} {:>3} {:>7} {:>6}  LAST OUTPUT",
            format!("RUNNING ({})", s.running.len()),
            "TASK",
            "#",
            "ELAPSED",
            "QUIET"
        ),
        th.bold(),
    )));
    for (i, t) in s.running.iter().enumerate() {
        let selected = sel == Some(Item::Running(i));
        if selected {
            sel_line = lines.len();
        }
        let elapsed = t.started_at.map(|a| ago(a, now)).unwrap_or_default();
        let quiet = t.last_output.map(|a| ago(a, now)).unwrap_or_default();
        // Its range from the history, `SLOW` past the p90 of its kind.
        let range = match (t.forecast.is_empty(), t.slow) {
            (true, _) => String::new(),
            (false, false) => format!("[{}] ", t.forecast),
            (false, true) => format!("SLOW [{}] ", t.forecast),
        };
        let text = format!(
            "{:<12} {:<10} {:>3} {:>7} {:>6}  {}{}{range}{}",
            cut(&t.plan, 12),
            cut(&t.id, 10),
            t.attempt,
            elapsed,
            quiet,
            story(t),
            on_host(t.host.as_deref(), t.host_lost.is_some()),
            t.last_line
        );
        let color = if t.slow { Color::Yellow } else { Color::Cyan };
        lines.push(row(text, selected, w, th.fg(color), th));
    }
    if !s.failures.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::from(Span::styled(
            format!(
                " {:<12} {:<10} {:>3}  CAUSE",
                format!("FAILED ({})", s.failures.len()),
                "TASK",
                "#"
            ),
            th.bold(),
        )));
        for (i, t) in s.failures.iter().enumerate() {
            let selected = sel == Some(Item::Failed(i));
            if selected {
                sel_line = lines.len();
            }
            let cause = t.error.as_deref().unwrap_or("no cause recorded");
            let text = format!(
                "{:<12} {:<10} {:>3}  {}{}",
                cut(&t.plan, 12),
                cut(&t.id, 10),
                t.attempt,
                story(t),
                flat(cause)
            );
            lines.push(row(text, selected, w, th.fg(Color::Red), th));
        }
    }
    let height = area.height as usize;
    // The events fill what is left.
    let left = height.saturating_sub(lines.len() + 2);
    if left > 0 && !s.events.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::from(Span::styled("EVENTS", th.bold())));
        let from = s.events.len().saturating_sub(left);
        for e in &s.events[from..] {
            lines.push(Line::from(Span::styled(cut(e, w), th.fg(Color::DarkGray))));
        }
    }
    let scroll = sel_line.saturating_sub(height.saturating_sub(1));
    let scroll = u16::try_from(scroll).unwrap_or(0);
    f.render_widget(paragraph(lines).scroll((scroll, 0)), area);
}

/// The most characters of a repository's name a plan's row shows (`@<name>`).
const REPO_TAG: usize = 9;

fn plan_line(p: &PlanRow, selected: bool, w: usize, th: &Theme) -> Line<'static> {
    let mut state: Vec<String> = Vec::new();
    if let Some(r) = &p.repo {
        // First and short (`@api`), so that it fits whole at 80 columns with the plan's
        // state after it.
        state.push(format!("@{}", cut(r, REPO_TAG)));
    }
    if p.paused {
        state.push("PAUSED".into());
    }
    if let Some(a) = &p.agent_paused {
        state.push(format!("agent {a}"));
    }
    if !p.merge.is_empty() {
        state.push(p.merge.clone());
    } else if p.total > 0 && p.done == p.total {
        state.push("done".into());
    }
    if !p.forecast.is_empty() {
        state.push(p.forecast.clone());
    }
    if !p.review.is_empty() {
        state.push(p.review.clone());
    }
    let cost = match p.cost_usd {
        Some(c) => format!("${c:.2}"),
        None if p.tokens > 0 => format!("{}k tok", p.tokens / 1000),
        None => "-".into(),
    };
    let text = format!(
        "{:<14} {:<12} {:>7} {:>4} {:>4} {:>4}  {:>7}  {}",
        cut(&p.name, 14),
        bar(p.done, p.total, 10),
        format!("{}/{}", p.done, p.total),
        p.running,
        p.failed,
        p.blocked,
        cost,
        state.join(" ")
    );
    let base = if p.paused {
        th.fg(Color::Yellow)
    } else if p.failed > 0 {
        th.fg(Color::Red)
    } else if p.total > 0 && p.done == p.total {
        th.fg(Color::Green)
    } else {
        Style::default()
    };
    row(text, selected, w, base, th)
}

/// `[US1] ` before the rest of a Spec Kit task's row, when it has a story.
fn story(t: &TaskRow) -> String {
    if t.story.is_empty() {
        String::new()
    } else {
        format!("[{}] ", t.story)
    }
}

fn row(text: String, selected: bool, w: usize, base: Style, th: &Theme) -> Line<'static> {
    let text = cut(&text, w.saturating_sub(1));
    if selected {
        // Marked without colour too: reversed, and a `>` in front.
        Line::from(Span::styled(format!(">{text}"), th.selected()))
    } else {
        Line::from(Span::styled(format!(" {text}"), base))
    }
}

fn draw_detail(f: &mut Frame<'_>, area: Rect, d: &Detail, now: DateTime<Utc>, th: &Theme) {
    let t = &d.task;
    let mut head = vec![Line::from(vec![
        Span::styled(format!("{} {}", t.plan, t.id), th.bold()),
        Span::raw(format!(" {}", story(t)).trim_end().to_string()),
        Span::raw(format!(
            " {}",
            crate::plan::plain_description(&t.description)
        )),
    ])];
    let state = t.status.map(|s| s.to_string()).unwrap_or_default();
    let mut facts = format!("{state}, attempt {}", t.attempt);
    if let Some(a) = t.started_at {
        facts.push_str(&format!(", started {} ago", ago(a, now)));
    }
    if let Some(h) = &t.host {
        facts.push_str(&format!(", on host {}", h.escape_debug()));
        if let Some(cause) = &t.host_lost {
            facts.push_str(&format!(
                " (lost: {})",
                crate::untrusted::text::escaped(cause)
            ));
        }
    }
    if let Some(c) = &t.commit {
        facts.push_str(&format!(", commit {}", cut(c, 10)));
    }
    if let Some(e) = &t.error {
        facts.push_str(&format!(", cause: {}", flat(e)));
    }
    head.push(Line::raw(facts));
    for why in &t.waits_for {
        head.push(Line::raw(format!("waits: {why}")));
    }
    let diff_h = u16::try_from(d.diff.len().min(6) + 2).unwrap_or(8);
    let prompt_h = if d.prompt.is_empty() { 0 } else { 5 };
    let [h, log, diff, prompt] = Layout::vertical([
        Constraint::Length(u16::try_from(head.len()).unwrap_or(2)),
        Constraint::Min(3),
        Constraint::Length(diff_h),
        Constraint::Length(prompt_h),
    ])
    .areas(area);
    f.render_widget(paragraph(head), h);
    let log_lines = usize::from(log.height.saturating_sub(2));
    let from = d.log.len().saturating_sub(log_lines);
    let body: Vec<Line<'static>> = d.log[from..].iter().map(|l| Line::raw(l.clone())).collect();
    f.render_widget(
        paragraph(body).block(
            Block::default()
                .borders(Borders::TOP | Borders::BOTTOM)
                .title(format!(" log {} ", t.log.display())),
        ),
        log,
    );
    let diff_title = match &t.commit {
        Some(c) if t.status != Some(crate::status::TaskStatus::InProgress) => {
            format!(" diff --stat (its commit {}) ", cut(c, 10))
        }
        _ => " diff --stat (worktree) ".to_string(),
    };
    let body: Vec<Line<'static>> = if d.diff.is_empty() {
        vec![Line::raw("(no changes)")]
    } else {
        d.diff.iter().map(|l| Line::raw(l.clone())).collect()
    };
    f.render_widget(
        paragraph(body).block(Block::default().borders(Borders::BOTTOM).title(diff_title)),
        diff,
    );
    if prompt_h > 0 {
        let body: Vec<Line<'static>> = d.prompt.iter().map(|l| Line::raw(l.clone())).collect();
        f.render_widget(
            paragraph(body)
                .wrap(Wrap { trim: false })
                .block(Block::default().title(format!(" prompt {} ", t.prompt.display()))),
            prompt,
        );
    }
}

fn draw_help(f: &mut Frame<'_>, area: Rect, th: &Theme) {
    let h = u16::try_from(KEYS.len() + 2).unwrap_or(10).min(area.height);
    let w = 60.min(area.width);
    let r = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    };
    let lines: Vec<Line<'static>> = KEYS
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!("{k:<10}"), th.bold()),
                Span::raw((*what).to_string()),
            ])
        })
        .collect();
    f.render_widget(Clear, r);
    f.render_widget(
        paragraph(lines).block(Block::default().borders(Borders::ALL).title(" keys ")),
        r,
    );
}

/// `[#####     ]`.
pub(crate) fn bar(done: usize, total: usize, width: usize) -> String {
    format!("[{}]", bar_of(done, total, width, "#", " "))
}

/// A bar of `width` cells, `done` of `total` in `full` cells, the rest `empty`.
pub(crate) fn bar_of(done: usize, total: usize, width: usize, full: &str, empty: &str) -> String {
    let filled = (done * width).checked_div(total).unwrap_or(0);
    full.repeat(filled) + &empty.repeat(width - filled.min(width))
}

/// Time since `t`: `45s`, `3m05s`, `2h03m`.
pub(crate) fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let s = (now - t).num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The host a running task's attempt runs on, at the head of its LAST OUTPUT (`@build1 `, `@build1
/// LOST ` while orch has it lost), escaped and cut to 16 characters; nothing for a local attempt.
fn on_host(host: Option<&str>, lost: bool) -> String {
    host.map(|h| {
        format!(
            "@{}{} ",
            cut(&h.escape_debug().to_string(), 16),
            if lost { " LOST" } else { "" }
        )
    })
    .unwrap_or_default()
}

/// At most `n` characters.
pub(crate) fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests;
