//! What `orch top` shows, read from the repository's files: the status files, the agents' logs
//! and `<state_dir>/.events.jsonl`. [`Snapshot`] is plain data (the widgets render it, tests
//! build it by hand); [`Source`] reads it again when a file changed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::graph::{NodeState, readiness};
use crate::status::{self, FileStamp, StatusDoc, TaskStatus};
use crate::supervisor::event_log::MAX_BYTES as EVENTS_MAX_BYTES;
use crate::untrusted::read;
use crate::workspace::{Workspace, node_state};

/// One plan's line.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlanRow {
    pub name: String,
    pub(crate) done: usize,
    pub(crate) total: usize,
    pub(crate) running: usize,
    pub(crate) failed: usize,
    /// Pending tasks that wait for others.
    pub(crate) blocked: usize,
    /// Paused by a person (`orch pause`).
    pub(crate) paused: bool,
    /// Its agent waits out a usage limit (until, in words).
    pub(crate) agent_paused: Option<String>,
    /// Cost so far in US dollars, when the clients named one.
    pub(crate) cost_usd: Option<f64>,
    pub(crate) tokens: u64,
    /// `merged`, `conflict`, `verify_failed`, or empty.
    pub(crate) merge: String,
    /// Its forecast end (`ends 15:10–15:40`), empty without a history or when it is finished.
    pub forecast: String,
    /// Its pull request under review (`orch pr --watch`): `PR #7, round 2 of 3, …`, or empty.
    pub(crate) review: String,
    /// The `[[repo]]` it changes; `None`: the home repository.
    pub(crate) repo: Option<String>,
}

/// One task shown (running or failed).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaskRow {
    pub(crate) plan: String,
    pub id: String,
    /// A Spec Kit task's stories (`US1`, `US3/US5`), empty when it has none.
    pub(crate) story: String,
    pub(crate) description: String,
    pub(crate) status: Option<TaskStatus>,
    pub(crate) attempt: u32,
    pub(crate) started_at: Option<DateTime<Utc>>,
    /// The log's last change (the agent's last output).
    pub(crate) last_output: Option<DateTime<Utc>>,
    pub(crate) last_line: String,
    pub(crate) error: Option<String>,
    pub(crate) log: PathBuf,
    pub(crate) prompt: PathBuf,
    pub(crate) worktree: PathBuf,
    pub(crate) commit: Option<String>,
    /// Why it waits (pending tasks only).
    pub(crate) waits_for: Vec<String>,
    /// Its duration's range from the history (`2m–4m`), empty without one.
    pub forecast: String,
    /// It has run past the p90 of its kind (`task_slow`).
    pub slow: bool,
    /// The `[[host]]` its running attempt runs on (`executor = "ssh"`), from orch's record.
    pub(crate) host: Option<String>,
    /// Why that host is lost, when it is (orch's record: it did not answer, and nothing
    /// reached it since).
    pub(crate) host_lost: Option<String>,
}

impl TaskRow {
    /// [`Self::host_lost`] filled in from orch's record of the row's host.
    fn with_host_lost(mut self, lp: &crate::workspace::LoadedPlan) -> Self {
        let state = lp.status_path.parent().and_then(Path::parent);
        self.host_lost = match (&self.host, state) {
            (Some(h), Some(state)) => crate::executor::ssh::slots::lost(state, h).map(|l| l.cause),
            _ => None,
        };
        self
    }
}

/// Everything on screen but the keys' state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub plans: Vec<PlanRow>,
    pub running: Vec<TaskRow>,
    pub(crate) failures: Vec<TaskRow>,
    /// The last events of the event log, as lines.
    pub(crate) events: Vec<String>,
    /// The running `orch up` (pid), if any.
    pub(crate) supervisor: Option<u32>,
    /// Problems reading the files (a corrupt status file…).
    pub(crate) problems: Vec<String>,
    /// The last integration test (`<state_dir>/.integration.json`): whether it was red, and it in
    /// words.
    pub(crate) integration: Option<(bool, String)>,
    /// The last re-plan of the current run (`manifest_reloaded`, `manifest_invalid` in the event
    /// log): whether it was an invalid edit (not applied), and it in words.
    pub(crate) reload: Option<(bool, String)>,
    /// The run's forecast (`ends 15:10–15:40, $3.20–5.10 more`), empty without a history.
    pub forecast: String,
}

/// Reads the snapshot; remembers what it read to tell whether anything changed.
pub struct Source {
    pub(crate) ws: Workspace,
    state_dir: PathBuf,
    log_root: PathBuf,
    worktree_root: PathBuf,
    stamps: HashMap<PathBuf, Option<FileStamp>>,
    /// The events read so far (the last [`EVENTS_KEPT`]) and where reading stopped.
    events: Vec<String>,
    events_at: u64,
    /// The last re-plan of the run seen in the event log (see [`Snapshot::reload`]).
    reload: Option<(bool, String)>,
    supervisor: Option<u32>,
    /// Each task's status and, for a pending one that waits, why (as last read).
    tasks: Vec<Vec<(TaskStatus, Vec<String>)>>,
    /// The history the forecasts come from.
    learnt: super::forecast::Learnt,
}

/// Events kept for the screen.
pub(crate) const EVENTS_KEPT: usize = 50;

impl Source {
    pub fn new(ws: Workspace) -> Self {
        let (state_dir, log_root, worktree_root) = match &ws.manifest {
            Some(m) => (
                m.root.join(&m.defaults.state_dir),
                m.root.join(&m.defaults.log_dir),
                m.root.join(&m.defaults.worktree_root),
            ),
            None => Default::default(),
        };
        Source {
            learnt: super::forecast::Learnt::new(&state_dir),
            ws,
            state_dir,
            log_root,
            worktree_root,
            stamps: HashMap::new(),
            events: Vec::new(),
            events_at: 0,
            reload: None,
            supervisor: None,
            tasks: Vec::new(),
        }
    }

    /// Whether a file the screen depends on changed since the last [`Source::read`] (status
    /// files, the event log, the logs of the running tasks, the supervisor's lock).
    pub(crate) fn changed(&self) -> bool {
        self.stamps.iter().any(|(p, s)| FileStamp::of(p) != *s)
            || crate::supervisor::lock::running(&self.state_dir).map(|h| h.pid) != self.supervisor
    }

    /// Reads everything again.
    pub fn read(&mut self, now: DateTime<Utc>) -> Snapshot {
        let mut snap = Snapshot::default();
        let mut stamps = HashMap::new();
        let mut docs: Vec<Option<StatusDoc>> = Vec::new();
        for lp in &self.ws.plans {
            stamps.insert(lp.status_path.clone(), FileStamp::of(&lp.status_path));
            match lp.read_status() {
                Ok(d) => docs.push(Some(d)),
                Err(e) => {
                    snap.problems.push(e.to_string());
                    docs.push(None);
                }
            }
        }
        let live = crate::supervisor::lock::running(&self.state_dir).is_some();
        let status_of = |p: usize, t: usize| -> TaskStatus {
            let task = &self.ws.plans[p].plan.tasks[t];
            docs[p].as_ref().and_then(|d| d.entry(&task.id)).map_or(
                if task.done {
                    TaskStatus::Completed
                } else {
                    TaskStatus::Pending
                },
                // Checking (done by its agent, its check and commit to come while a run is
                // live) is running.
                |e| {
                    if live && task.kind == crate::plan::TaskKind::Task && status::checking(e) {
                        TaskStatus::InProgress
                    } else {
                        e.status
                    }
                },
            )
        };
        let mut blocked_by: HashMap<(usize, usize), Vec<String>> = HashMap::new();
        if let Some(g) = &self.ws.graph {
            let plans: Vec<&crate::plan::Plan> = self.ws.plans.iter().map(|p| &p.plan).collect();
            let r = readiness(g, &plans, &self.ws.priorities(), |p, t| {
                node_state(status_of(p, t))
            });
            for (n, why) in &r.blocked {
                if let Some((p, t)) = g.task_of(*n) {
                    let reasons = why.iter().map(|w| self.ws.describe_waiting(g, w)).collect();
                    blocked_by.insert((p, t), reasons);
                }
            }
        }
        let tasks = self
            .ws
            .plans
            .iter()
            .enumerate()
            .map(|(p, lp)| {
                (0..lp.plan.tasks.len())
                    .map(|t| {
                        (
                            status_of(p, t),
                            blocked_by.get(&(p, t)).cloned().unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .collect();
        for (p, lp) in self.ws.plans.iter().enumerate() {
            let doc = docs[p].as_ref();
            let mut row = PlanRow {
                name: lp.name.clone(),
                repo: lp.repo.clone(),
                total: lp.plan.tasks.len(),
                ..PlanRow::default()
            };
            let mut usage = crate::agent_output::Usage::default();
            for (t, task) in lp.plan.tasks.iter().enumerate() {
                let st = status_of(p, t);
                let entry = doc.and_then(|d| d.entry(&task.id));
                if let Some(u) = entry.and_then(|e| e.orch_usage.as_ref()) {
                    usage = usage.plus(&u.usage());
                }
                match node_state(st) {
                    NodeState::Done => row.done += 1,
                    NodeState::InProgress => row.running += 1,
                    NodeState::Failed => row.failed += 1,
                    NodeState::Pending => {
                        if blocked_by.contains_key(&(p, t)) {
                            row.blocked += 1;
                        }
                    }
                }
                if matches!(
                    st,
                    TaskStatus::InProgress | TaskStatus::Failed | TaskStatus::NeedsInput
                ) {
                    let log = self.log_dir(&lp.name).join(format!("{}.log", task.id));
                    stamps.insert(log.clone(), FileStamp::of(&log));
                    let mut tr = self.task_row(lp, task, entry, st, &log);
                    if st == TaskStatus::NeedsInput {
                        // Listed with the failures: a person's word is needed.
                        let q = entry
                            .and_then(|e| e.orch_question.clone())
                            .unwrap_or_default();
                        tr.error = Some(format!(
                            "needs input: {q} (`orch answer {} {} \"…\"` answers it)",
                            lp.name, task.id
                        ));
                    }
                    if st == TaskStatus::InProgress {
                        // Best of N: the attempts of its round side by side.
                        let rows = self.attempt_rows(&tr, &mut stamps);
                        if rows.is_empty() {
                            snap.running.push(tr);
                        } else {
                            snap.running.extend(rows);
                        }
                    } else {
                        snap.failures.push(tr);
                    }
                }
            }
            row.tokens = usage.tokens();
            row.cost_usd = usage.cost_usd();
            if let Some(d) = doc {
                row.paused = crate::status::is_paused(d);
                row.merge = d
                    .orch_merge
                    .as_ref()
                    .map(|m| match &m.resolved_by {
                        Some(agent) if m.state == "merged" => {
                            format!("merged (resolved by {agent})")
                        }
                        Some(agent) => format!("{} (resolver {agent} failed)", m.state),
                        None => m.state.clone(),
                    })
                    .unwrap_or_default();
                row.agent_paused = d
                    .extra
                    .get("orchPaused")
                    .and_then(|v| v.get("until"))
                    .and_then(Value::as_str)
                    .and_then(status::parse_timestamp)
                    .filter(|t| *t > Utc::now())
                    .map(|t| format!("limit until {}", t.format("%H:%M")));
            }
            let review = lp.status_path.with_file_name("review.json");
            stamps.insert(review.clone(), FileStamp::of(&review));
            if let Some((st, rounds)) = crate::review::state::of_plan(&self.ws, p) {
                row.review = format!("PR {}", st.summary(rounds));
            }
            snap.plans.push(row);
        }
        // The forecasts from the history, when there is one.
        let history = self.learnt.path().to_path_buf();
        stamps.insert(history.clone(), FileStamp::of(&history));
        if let Some(words) = self.learnt.words(&self.ws, &self.state_dir, &docs, now) {
            for (row, w) in snap.plans.iter_mut().zip(&words.plans) {
                row.forecast.clone_from(w);
            }
            for t in &mut snap.running {
                if let Some((w, slow)) = words.tasks.get(&(t.plan.clone(), t.id.clone())) {
                    t.forecast.clone_from(w);
                    t.slow = *slow;
                }
            }
            snap.forecast = words.run;
        }
        let events_path = crate::state_layout::EVENTS.at(&self.state_dir);
        stamps.insert(events_path.clone(), FileStamp::of(&events_path));
        self.read_events(&events_path);
        snap.events = self.events.clone();
        snap.reload = self.reload.clone();
        let integration_path = crate::state_layout::INTEGRATION_LAST.at(&self.state_dir);
        stamps.insert(integration_path.clone(), FileStamp::of(&integration_path));
        snap.integration =
            crate::merge::integrate::load_last(&self.state_dir).map(|r| match &r.failure {
                Some(f) => (
                    true,
                    format!("red: {} (culprit {})", f.summary(), f.culprit),
                ),
                None if r.tested.is_empty() => (false, "nothing to test".to_string()),
                None => (
                    false,
                    format!(
                        "green: {} plan{} on `{}`",
                        r.tested.len(),
                        if r.tested.len() == 1 { "" } else { "s" },
                        r.target
                    ),
                ),
            });
        self.supervisor = crate::supervisor::lock::running(&self.state_dir).map(|h| h.pid);
        snap.supervisor = self.supervisor;
        self.stamps = stamps;
        self.tasks = tasks;
        snap
    }

    /// The tasks of plan `name` not finished yet, as lines: id, status, description, and for a
    /// pending one what it waits for (`why`).
    pub(crate) fn plan_lines(&self, name: &str) -> Vec<String> {
        let Some(p) = self.ws.plans.iter().position(|lp| lp.name == name) else {
            return Vec::new();
        };
        let plan = &self.ws.plans[p].plan;
        let mut out = Vec::new();
        for (t, task) in plan.tasks.iter().enumerate() {
            let Some((st, why)) = self.tasks.get(p).and_then(|v| v.get(t)) else {
                continue;
            };
            if st.is_finished() {
                continue;
            }
            out.push(format!(
                "{:<8} {:<11} {}",
                task.id,
                st.to_string(),
                task.description
            ));
            for w in why {
                out.push(format!("{:<8} {:<11} {w}", "", ""));
            }
        }
        if out.is_empty() {
            out.push("every task is finished".to_string());
        }
        out
    }

    /// Where plan `plan`'s logs are: `<log_dir>/<plan>` of its repository.
    fn log_dir(&self, plan: &str) -> PathBuf {
        self.repo_dir(plan, &self.log_root, |d| &d.log_dir)
    }

    /// `<dir>/<plan>` in plan `plan`'s repository: `home` (the home repository's `dir`) for a
    /// plan of the home repository, else `of` of the defaults under its `[[repo]]`'s path.
    fn repo_dir(
        &self,
        plan: &str,
        home: &Path,
        of: impl Fn(&crate::manifest::Defaults) -> &PathBuf,
    ) -> PathBuf {
        let theirs = self.ws.manifest.as_ref().and_then(|m| {
            let r = m.repo_of(plan)?;
            let root = r
                .abs_path
                .canonicalize()
                .unwrap_or_else(|_| r.abs_path.clone());
            Some(root.join(of(&m.defaults)))
        });
        theirs.unwrap_or_else(|| home.to_path_buf()).join(plan)
    }

    /// Task `id` of plan `plan` as its status file says now (any status).
    pub(crate) fn row(&self, plan: &str, id: &str) -> Option<TaskRow> {
        let lp = self.ws.plans.iter().find(|p| p.name == plan)?;
        let task = lp.plan.task(id)?;
        let doc = lp.read_status().ok()?;
        let entry = doc.entry(id);
        let st = entry.map_or(TaskStatus::Pending, |e| e.status);
        let log = self.log_dir(&lp.name).join(format!("{id}.log"));
        Some(self.task_row(lp, task, entry, st, &log))
    }

    fn task_row(
        &self,
        lp: &crate::workspace::LoadedPlan,
        task: &crate::plan::Task,
        entry: Option<&status::TaskEntry>,
        st: TaskStatus,
        log: &Path,
    ) -> TaskRow {
        let last_output = std::fs::metadata(log)
            .and_then(|m| m.modified())
            .ok()
            .map(DateTime::<Utc>::from);
        TaskRow {
            plan: lp.name.clone(),
            id: task.id.clone(),
            story: task
                .speckit
                .as_deref()
                .map(|s| s.stories.join("/"))
                .unwrap_or_default(),
            description: task.description.clone(),
            status: Some(st),
            attempt: entry.map_or(0, |e| e.attempts),
            started_at: entry
                .and_then(|e| e.started_at.as_deref())
                .and_then(status::parse_timestamp),
            last_output,
            last_line: last_line(log),
            error: entry.and_then(|e| e.error.clone()),
            log: log.to_path_buf(),
            prompt: self
                .log_dir(&lp.name)
                .join(format!("{}.prompt.md", task.id)),
            worktree: self.repo_dir(&lp.name, &self.worktree_root, |d| &d.worktree_root),
            commit: entry.and_then(|e| e.commit.clone()),
            waits_for: Vec::new(),
            forecast: String::new(),
            slow: false,
            host: (st == TaskStatus::InProgress)
                .then(|| lp.status_path.parent().and_then(Path::parent))
                .flatten()
                .and_then(|state| {
                    use crate::executor::ssh::slots;
                    // An attempt run again after its host was lost has no host until a host
                    // takes it: while the plan's last host is lost, it waits for that one.
                    slots::latest_host(state, &lp.name, &task.id).or_else(|| {
                        slots::last_host(state, &lp.name)
                            .filter(|h| slots::lost(state, h).is_some())
                    })
                }),
            host_lost: None,
        }
        .with_host_lost(lp)
    }

    /// Best of N: one row per attempt of the running task `tr`'s current round (its attempts
    /// whose logs changed since the task's last start), running and finished; none when the
    /// task does not run as best of N.
    fn attempt_rows(
        &self,
        tr: &TaskRow,
        stamps: &mut HashMap<PathBuf, Option<FileStamp>>,
    ) -> Vec<TaskRow> {
        let dir = self.log_dir(&tr.plan);
        let since = tr.started_at.map(|s| s - chrono::Duration::seconds(5));
        crate::supervisor::attempt_logs::attempt_logs(&dir, &tr.id)
            .into_iter()
            .filter_map(|a| {
                let modified = std::fs::metadata(&a.log)
                    .and_then(|m| m.modified())
                    .ok()
                    .map(DateTime::<Utc>::from);
                if since.is_some_and(|s| modified.is_none_or(|m| m < s)) {
                    return None;
                }
                stamps.insert(a.log.clone(), FileStamp::of(&a.log));
                let last_line = match &a.ended {
                    Some(e) => format!("attempt {} ended: {e}", a.attempt),
                    None => last_line(&a.log),
                };
                Some(TaskRow {
                    attempt: a.attempt,
                    last_output: modified,
                    last_line,
                    log: a.log,
                    ..tr.clone()
                })
            })
            .collect()
    }

    /// Reads the event log from where it stopped (from the start after a rotation; at most
    /// the last 64 KiB the first time).
    fn read_events(&mut self, path: &Path) {
        let Ok(len) = std::fs::symlink_metadata(path).map(|m| m.len()) else {
            return;
        };
        if len < self.events_at {
            self.events_at = 0;
        }
        let first = self.events_at == 0;
        // At most the rotation's size at once: the log never holds more.
        let window = if first { 64 * 1024 } else { EVENTS_MAX_BYTES };
        let Ok((from, bytes)) = read::tail(path, self.events_at, window) else {
            return;
        };
        let Ok(text) = String::from_utf8(bytes) else {
            return;
        };
        // Only whole lines; a partial last line is read next time.
        let Some(end) = text.rfind('\n') else { return };
        self.events_at = from + end as u64 + 1;
        for line in text[..end].lines() {
            if let Ok(v) = serde_json::from_str::<Value>(line) {
                self.events.push(describe_event(&v));
                let root = self.ws.manifest.as_ref().map(|m| m.root.as_path());
                if let Some(reload) = reload_of(&v, root) {
                    self.reload = reload;
                }
            }
        }
        let over = self.events.len().saturating_sub(EVENTS_KEPT);
        self.events.drain(..over);
    }
}

/// The last non-empty line of a log (its last 4 KiB read).
pub(crate) fn last_line(path: &Path) -> String {
    tail(path, 4096, 1).pop().unwrap_or_default()
}

/// The last `lines` non-empty lines of a file, reading at most its last `bytes`.
pub(crate) fn tail(path: &Path, bytes: u64, lines: usize) -> Vec<String> {
    // A log is where an unconfined agent can put a link or a FIFO: read as untrusted.
    let Ok((from, buf)) = read::tail(path, 0, bytes) else {
        return Vec::new();
    };
    let text = String::from_utf8_lossy(&buf);
    let mut out: Vec<String> = text
        .lines()
        .skip(usize::from(from > 0))
        .map(|l| l.trim_end().replace('\t', "    "))
        .filter(|l| !l.trim().is_empty())
        .collect();
    let over = out.len().saturating_sub(lines);
    out.drain(..over);
    out
}

/// The first `lines` non-empty lines of a file, reading at most its first `bytes`.
pub(crate) fn head(path: &Path, bytes: u64, lines: usize) -> Vec<String> {
    let Ok(buf) = read::head(path, bytes) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&buf)
        .lines()
        .map(|l| l.trim_end().replace('\t', "    "))
        .filter(|l| !l.trim().is_empty())
        .take(lines)
        .collect()
}

/// What an event of the log does to the header's last re-plan: a run that starts has none
/// yet (`Some(None)`); `manifest_reloaded` is `reloaded 12:03:04: plan c: added; …`,
/// `manifest_invalid` `plans.toml invalid since 12:03:04: plans.toml:7:1: error: …` (its first
/// error's first line; the file relative to `root`); `None`: any other event leaves it.
pub(crate) fn reload_of(v: &Value, root: Option<&Path>) -> Option<Option<(bool, String)>> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    let strings = |k: &str| strings(v, k);
    match s("event") {
        "run_started" => Some(None),
        "manifest_reloaded" => {
            let changes = strings("changes");
            let mut text = format!("reloaded {}", local_time(s("at")));
            if !changes.is_empty() {
                text.push_str(": ");
                text.push_str(&changes.join("; "));
            }
            Some(Some((false, text)))
        }
        "manifest_invalid" => {
            let file = Path::new(s("file"));
            let shown = root
                .and_then(|r| file.strip_prefix(r).ok())
                .unwrap_or(file)
                .display();
            Some(Some((
                true,
                format!(
                    "{shown} invalid since {}: {}",
                    local_time(s("at")),
                    first_error(v)
                ),
            )))
        }
        _ => None,
    }
}

/// The strings of array `k` of event `v` (none when it has no such array).
pub(crate) fn strings<'v>(v: &'v Value, k: &str) -> Vec<&'v str> {
    v.get(k)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// The first line of the first of an event's `errors`.
fn first_error(v: &Value) -> String {
    let first = strings(v, "errors").first().and_then(|e| e.lines().next());
    first.unwrap_or("").to_string()
}

/// An event's `at` as local `HH:MM:SS` (empty when it does not parse).
fn local_time(at: &str) -> String {
    status::parse_timestamp(at)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%H:%M:%S")
                .to_string()
        })
        .unwrap_or_default()
}

/// One event of the log as a line: `HH:MM:SS event plan task detail`.
pub(crate) fn describe_event(v: &Value) -> String {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
    let at = local_time(s("at"));
    let detail = match s("event") {
        "manifest_invalid" => first_error(v),
        "manifest_reloaded" => strings(v, "changes").join("; "),
        "task_failed" => flat(s("error")),
        "note" | "plan_blocked" => s("message").to_string() + s("reason"),
        "host_lost" => format!("host {}: {}", s("host"), flat(s("cause"))),
        "host_back" => format!("host {}", s("host")),
        "attempt_finished" => format!(
            "attempt {} {}: {}",
            v.get("attempt").and_then(Value::as_u64).unwrap_or(0),
            if v.get("picked").and_then(Value::as_bool) == Some(true) {
                "picked"
            } else {
                "not picked"
            },
            flat(s("cause"))
        ),
        "task_started" | "task_stopped" | "task_retried" => v
            .get("attempt")
            .and_then(Value::as_u64)
            .map(|a| format!("attempt {a}"))
            .unwrap_or_default(),
        _ => String::new(),
    };
    let mut out = format!("{at} {}", s("event"));
    for part in [s("plan"), s("task"), detail.as_str()] {
        if !part.is_empty() {
            out.push(' ');
            out.push_str(part);
        }
    }
    out
}

#[cfg(test)]
mod tests;
/// A multi-line text (a cause with the end of an agent's output) on one line.
pub(crate) fn flat(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
