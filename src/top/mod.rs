//! `orch top`: a full-screen view of the repository's run, and control of it. It attaches
//! through files only (the status files, the agents' logs, `<state_dir>/.events.jsonl`), so any
//! number of them can watch one run, a run's restart changes nothing for them, and with no run
//! going they show the last state. Keys call the same code as `orch pause|resume|retry|stop`.
//!
//! The files are polled every 300 ms (a `stat` each); the screen is drawn again only when one
//! changed, on a key or a resize, and once a second while agents run (their elapsed times).

pub(crate) mod forecast;
pub mod model;
pub(crate) mod view;

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use chrono::Utc;
use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::terminal::{
    EnterAlternateScreen, LeaveAlternateScreen, disable_raw_mode, enable_raw_mode,
};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use crate::control::{Request, apply};
use crate::error::{CliError, CliResult, exit};
use crate::git;
use crate::status::TaskStatus;
use crate::workspace::Workspace;
use model::{Snapshot, Source, TaskRow, tail};
use view::{Detail, Item, Ui, items};

/// How often the files are looked at.
const POLL: Duration = Duration::from_millis(300);
/// How often the detail pane's diff is computed again (a git process) while it is open.
const DIFF_EVERY: Duration = Duration::from_secs(2);

/// Runs the screen until `q`.
pub(crate) fn run(ws: Workspace) -> CliResult<u8> {
    if ws.manifest.is_none() {
        return Err(CliError::invalid(anyhow::anyhow!(
            "orch top needs a plans.toml (run it in a repository set up with `orch init`)"
        )));
    }
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(CliError::invalid(anyhow::anyhow!(
            "orch top needs a terminal; `orch status --watch` or `orch up --json` work without one"
        )));
    }
    let mut source = Source::new(ws);
    // `--color` and `NO_COLOR`, as for everything orch colours (crossterm would otherwise apply
    // NO_COLOR itself, over `--color always`).
    let color = crate::color::enabled(crate::color::Stream::Stdout);
    crossterm::style::force_color_output(color);
    let mut ui = Ui {
        no_color: !color,
        ..Ui::default()
    };
    install_panic_hook();
    enable_raw_mode().map_err(|e| anyhow::anyhow!("cannot set up the terminal: {e}"))?;
    let mut out = std::io::stdout();
    let _ = crossterm::execute!(out, EnterAlternateScreen, crossterm::cursor::Hide);
    let result = match Terminal::new(CrosstermBackend::new(std::io::stdout())) {
        Ok(mut t) => event_loop(&mut t, &mut source, &mut ui),
        Err(e) => Err(anyhow::anyhow!("cannot draw on the terminal: {e}").into()),
    };
    restore_terminal();
    result
}

/// Leaves the terminal as it was: raw mode off, the main screen back, the cursor shown.
fn restore_terminal() {
    let _ = disable_raw_mode();
    let mut out = std::io::stdout();
    let _ = crossterm::execute!(out, LeaveAlternateScreen, crossterm::cursor::Show);
    let _ = out.flush();
}

/// A panic restores the terminal before its message is printed.
fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
    }));
}

fn event_loop<B: ratatui::backend::Backend>(
    term: &mut Terminal<B>,
    source: &mut Source,
    ui: &mut Ui,
) -> CliResult<u8> {
    let mut snap = source.read(Utc::now());
    let mut dirty = true;
    let mut second = Utc::now().timestamp();
    let mut diff_at = Instant::now();
    loop {
        let n = items(&snap).len();
        if ui.selected >= n {
            ui.selected = n.saturating_sub(1);
        }
        if dirty {
            term.draw(|f| view::draw(f, &snap, ui, Utc::now()))
                .map_err(|e| anyhow::anyhow!("cannot draw: {e}"))?;
            dirty = false;
        }
        if event::poll(POLL).map_err(|e| anyhow::anyhow!("cannot read the terminal: {e}"))? {
            match event::read().map_err(|e| anyhow::anyhow!("cannot read the terminal: {e}"))? {
                Event::Key(k) if k.kind != KeyEventKind::Release => {
                    let ctrl_c =
                        k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
                    if k.code == KeyCode::Char('q') || ctrl_c {
                        return Ok(exit::OK);
                    }
                    if on_key(k.code, source, &snap, ui) {
                        snap = source.read(Utc::now());
                        refresh_detail(source, &snap, ui, true);
                        diff_at = Instant::now();
                    }
                    dirty = true;
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
        if source.changed() {
            snap = source.read(Utc::now());
            let diff = diff_at.elapsed() >= DIFF_EVERY;
            if diff {
                diff_at = Instant::now();
            }
            refresh_detail(source, &snap, ui, diff);
            dirty = true;
        }
        let now = Utc::now().timestamp();
        if now != second {
            second = now;
            dirty |= !snap.running.is_empty();
        }
    }
}

/// Acts on a key; returns whether the files should be read again (an action was taken).
fn on_key(code: KeyCode, source: &Source, snap: &Snapshot, ui: &mut Ui) -> bool {
    let its = items(snap);
    let sel = its.get(ui.selected).copied();
    ui.flash = None;
    match code {
        KeyCode::Char('?') => ui.help = !ui.help,
        KeyCode::Esc => {
            ui.help = false;
            ui.detail = None;
            ui.plan_detail = None;
        }
        KeyCode::Up | KeyCode::Char('k') => ui.selected = ui.selected.saturating_sub(1),
        KeyCode::Down | KeyCode::Char('j') if ui.selected + 1 < its.len() => ui.selected += 1,
        KeyCode::Enter => {
            if ui.detail.is_some() || ui.plan_detail.is_some() {
                ui.detail = None;
                ui.plan_detail = None;
            } else if let Some(t) = task_of(snap, sel) {
                ui.detail = Some(detail(source, t.clone(), true));
            } else if let Some(Item::Plan(i)) = sel
                && let Some(p) = snap.plans.get(i)
            {
                ui.plan_detail = Some((p.name.clone(), source.plan_lines(&p.name)));
            }
        }
        KeyCode::Char('p') => {
            let Some(plan) = plan_of(snap, sel) else {
                return false;
            };
            let paused = snap.plans.iter().any(|p| p.name == plan && p.paused);
            let req = if paused {
                Request::Resume { plan }
            } else {
                Request::Pause { plan }
            };
            return act(source, &req, ui);
        }
        KeyCode::Char(key @ ('r' | 'x')) => {
            let (wanted, hint) = match key {
                'r' => (TaskStatus::Failed, "select a failed task to retry it"),
                _ => (TaskStatus::InProgress, "select a running task to stop it"),
            };
            match task_of(snap, sel) {
                Some(t) if t.status == Some(wanted) => {
                    let (plan, id) = (t.plan.clone(), t.id.clone());
                    let req = match key {
                        'r' => Request::Retry { plan, id },
                        _ => Request::Stop { plan, id },
                    };
                    return act(source, &req, ui);
                }
                _ => ui.flash = Some(hint.into()),
            }
        }
        _ => {}
    }
    false
}

fn act(source: &Source, req: &Request, ui: &mut Ui) -> bool {
    ui.flash = Some(match apply(&source.ws, req) {
        Ok(done) => done.message.lines().next().unwrap_or("").to_string(),
        Err(e) => format!("refused: {}", e.error),
    });
    true
}

fn task_of(snap: &Snapshot, sel: Option<Item>) -> Option<&TaskRow> {
    match sel? {
        Item::Running(i) => snap.running.get(i),
        Item::Failed(i) => snap.failures.get(i),
        Item::Plan(_) => None,
    }
}

fn plan_of(snap: &Snapshot, sel: Option<Item>) -> Option<String> {
    match sel? {
        Item::Plan(i) => snap.plans.get(i).map(|p| p.name.clone()),
        other => task_of(snap, Some(other)).map(|t| t.plan.clone()),
    }
}

/// The detail pane's task as the files now say (it may have left the running list).
fn refresh_detail(source: &Source, snap: &Snapshot, ui: &mut Ui, diff: bool) {
    if let Some((name, lines)) = &mut ui.plan_detail {
        *lines = source.plan_lines(name);
    }
    let Some(d) = &ui.detail else { return };
    let (plan, id) = (d.task.plan.clone(), d.task.id.clone());
    let row = snap
        .running
        .iter()
        .chain(&snap.failures)
        .find(|t| t.plan == plan && t.id == id)
        .cloned()
        .or_else(|| source.row(&plan, &id))
        .unwrap_or_else(|| d.task.clone());
    let old = d.diff.clone();
    let mut new = detail(source, row, diff);
    if !diff {
        new.diff = old;
    }
    ui.detail = Some(new);
}

/// Reads the detail of task `t`: its log's tail, its prompt, and (when `diff`) its diff stat.
fn detail(source: &Source, t: TaskRow, diff: bool) -> Detail {
    let log = tail(&t.log, 64 * 1024, 200);
    let prompt = model::head(&t.prompt, 4096, 3);
    let diff = if diff {
        diff_stat(source, &t)
    } else {
        Vec::new()
    };
    Detail {
        task: t,
        log,
        diff,
        prompt,
    }
}

/// `git diff --stat` of the worktree while the task runs, of its commit once it has one.
fn diff_stat(source: &Source, t: &TaskRow) -> Vec<String> {
    let root = source
        .ws
        .manifest
        .as_ref()
        .map(|m| m.root.clone())
        .unwrap_or_default();
    let (target, args): (_, &[&str]) = match &t.commit {
        Some(c) if t.status != Some(TaskStatus::InProgress) => (
            git::GitTarget::WorkTree(&root),
            &[
                "show",
                "--no-ext-diff",
                "--no-textconv",
                "--stat",
                "--format=",
                c.as_str(),
            ],
        ),
        _ => {
            if !t.worktree.is_dir() {
                return Vec::new();
            }
            (
                git::GitTarget::WorkTree(&t.worktree),
                &["diff", "--no-ext-diff", "--no-textconv", "--stat", "HEAD"],
            )
        }
    };
    let Ok(mut cmd) = git::git_command(target) else {
        return Vec::new();
    };
    cmd.args(args).stderr(std::process::Stdio::null());
    match cmd.output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}
