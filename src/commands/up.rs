//! `orch up`: check everything, make a worktree and branch per plan (the supervisor's
//! [`Checked`]), then hand over to the supervisor until every plan is finished, failed or
//! blocked; print its events and end with the run's exit code.

use std::sync::Mutex;

use anyhow::anyhow;

use crate::error::{CliResult, exit};
use crate::merge::MergeResult;
use crate::notify::Notifier;
use crate::supervisor::event_log::EventLog;
use crate::supervisor::start::{Checked, RunOptions};
use crate::supervisor::{Event, PlanResult, Progress, ProgressMode, RunSummary};
use crate::workspace::Selection;

pub(crate) struct UpArgs {
    /// Plan names; empty = every plan of the manifest (or the one `--plan`).
    pub(crate) plans: Vec<String>,
    pub(crate) json: bool,
    /// Overrides `defaults.max_agents`.
    pub(crate) max_agents: Option<usize>,
    /// The merge train, also when `defaults.auto_merge` is off.
    pub(crate) merge: bool,
    /// `--pr`: `orch pr --watch` after a run that ended with every plan done.
    pub(crate) pr: bool,
}

pub(crate) fn run(sel: &Selection, args: UpArgs) -> CliResult<u8> {
    let (plans, json, pr) = (args.plans.clone(), args.json, args.pr);
    // The run ends (its lock released) before the review loop, which runs `orch up PLAN` for
    // each round.
    let code = run_once(sel, args)?;
    if !pr || code != exit::OK {
        return Ok(code);
    }
    super::pr::run(
        sel,
        super::pr::PrArgs {
            plans,
            dry_run: false,
            json,
            watch: Some(crate::review::WatchArgs {
                once: false,
                poll: None,
            }),
        },
    )
}

fn run_once(sel: &Selection, args: UpArgs) -> CliResult<u8> {
    // The shared SSH connections this run starts end with it, whichever way it ends.
    let _ssh = EndConnections;
    let (ws, manifest) = super::with_manifest(
        sel,
        true,
        "`orch up` needs a plans.toml: it runs the plans the manifest lists",
    )?;
    let selected = ws.select(&args.plans)?;
    // OpenTelemetry export: the `OTEL_EXPORTER_OTLP_*` variables, else `[telemetry]`.
    let telemetry = crate::telemetry::Config::of(|k| std::env::var(k).ok(), &manifest.telemetry)
        .map_err(|e| {
            crate::error::CliError::invalid(anyhow!("{e}"))
                .with_hint("unset it, or see docs/src/telemetry.md for the values orch reads")
        })?;
    let orch_bin =
        std::env::current_exe().map_err(|e| anyhow!("cannot find the orch executable: {e}"))?;
    let checked = Checked::check(&ws, &manifest, &selected, orch_bin)?;
    let state_dir = checked.state_dir().to_path_buf();
    for line in checked.preset_rules() {
        crate::commands::output::eprintln_safe(&line);
    }
    for note in checked.notes() {
        crate::commands::output::eprintln_safe(&format!("note: {note}"));
    }
    let (_, unconfined) = checked.sandbox();
    if !unconfined.is_empty() {
        crate::commands::output::eprintln_safe(&format!(
            "warning: this kernel cannot confine agents (no Landlock): the agents of {} run unconfined (`sandbox = \"on\"` refuses to run them so)",
            unconfined.join(", ")
        ));
    }
    let abi = checked.sandbox_abi();
    let left_out = crate::sandbox::uncontrolled(abi);
    if !left_out.is_empty() {
        crate::commands::output::eprintln_safe(&format!(
            "note: this kernel's Landlock is ABI {abi} (orch uses up to {}): confined agents can still {}",
            crate::sandbox::ABI_NEWEST,
            left_out.join(", ")
        ));
    }
    crate::commands::output::eprintln_safe(&checked.network_line());
    let out = Output::start(&checked, &manifest, args.json, &ws, telemetry);
    // The forecast at the start, from the history, told against the end at the end.
    let start_forecast = super::forecasts::at_start(&ws, args.max_agents);
    let mut emit = |e: &Event| out.event(e);
    let options = RunOptions {
        max_agents: args.max_agents,
        merge: args.merge,
    };
    let run = checked.prepare(&ws, options, &mut emit)?;
    // Descendants left by an agent whose wrapper died first are re-parented to orch, which ends
    // them with their attempt (`process::end_session`) and at the end of the run.
    if let Err(e) = crate::process::become_subreaper() {
        crate::commands::output::eprintln_safe(&format!(
            "warning: cannot make orch up a subreaper ({e}): what agents leave running in the background is not ended with them"
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| anyhow!("cannot start the async runtime: {e}"))?;
    // Attempts past the p90 of their kind (`task_slow`), looked for every second.
    let (stop_watch, stopped) = std::sync::mpsc::channel::<()>();
    let mut summary = std::thread::scope(|s| {
        let out = &out;
        s.spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                stopped.recv_timeout(std::time::Duration::from_secs(1))
            {
                out.look_for_slow();
            }
        });
        let summary = runtime.block_on(crate::supervisor::run(run.ctx.clone(), ws, &mut emit));
        drop(stop_watch);
        summary
    });
    if let Some(f) = start_forecast {
        out.event(&f.against(&summary));
    }
    out.refusal_notes(&state_dir, &summary);
    // The setups' background processes (their keepers) end with the run, then whatever was
    // re-parented to orch.
    runtime.block_on(async {
        crate::process::end_keepers().await;
        crate::process::sweep_orphans().await;
    });
    out.finish(&mut summary);
    // Agents' tasks are done; do not wait for stray blocking work.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(exit_code(&summary))
}

/// Ends the SSH masters of this process when dropped ([`crate::executor::ssh::conn::end_own`]).
struct EndConnections;

impl Drop for EndConnections {
    fn drop(&mut self) {
        crate::executor::ssh::conn::end_own();
    }
}

/// The exit code of a run that ended with `summary`.
fn exit_code(summary: &RunSummary) -> u8 {
    if summary.interrupted {
        exit::INTERRUPTED
    } else if !summary.agents_stopped.is_empty() {
        exit::AGENT
    } else if summary.plans.iter().all(|p| {
        matches!(p.outcome, PlanResult::Completed | PlanResult::Removed)
            && p.merge.is_none_or(|m| m == MergeResult::Merged)
    }) {
        exit::OK
    } else {
        exit::INCOMPLETE
    }
}

/// Where the run's events go: the progress (bars, lines or `--json`), `<state_dir>/.events.jsonl`
/// (what `orch top` attaches to) and the `[[notify]]` hooks' queues (never waited for here; their
/// failed deliveries come back as notes).
struct Output {
    progress: Mutex<Progress>,
    log: Mutex<EventLog>,
    notifier: Option<Notifier>,
    /// The history written and the slow attempts watched.
    watch: Mutex<crate::forecast::run::RunWatch>,
    /// The OpenTelemetry exporter, when the run exports.
    telemetry: Mutex<Option<crate::telemetry::Sink>>,
}

impl Output {
    fn start(
        checked: &Checked<'_>,
        manifest: &crate::manifest::Manifest,
        json: bool,
        ws: &crate::workspace::Workspace,
        telemetry: Option<crate::telemetry::Config>,
    ) -> Self {
        let mode = ProgressMode::detect(json);
        let telemetry = telemetry.and_then(|c| {
            let plans = manifest
                .plans
                .iter()
                .map(|p| {
                    let model = manifest
                        .agents
                        .get(&p.agent)
                        .map(|a| crate::telemetry::model_of(&a.command))
                        .unwrap_or_default();
                    let info = crate::telemetry::PlanInfo {
                        agent: p.agent.clone(),
                        model,
                        executor: p.executor.as_str().to_string(),
                    };
                    (p.name.clone(), info)
                })
                .collect();
            crate::telemetry::start(c, plans)
        });
        Self {
            progress: Mutex::new(Progress::new(mode, &checked.plan_infos())),
            notifier: Notifier::start(
                &manifest.notify,
                checked.repo_root(),
                crate::merge::confine::hooks(manifest).as_ref(),
            ),
            log: Mutex::new(EventLog::open(checked.state_dir())),
            watch: Mutex::new(crate::forecast::run::RunWatch::new(ws, checked.state_dir())),
            telemetry: Mutex::new(telemetry),
        }
    }

    /// Sends `task_slow` for the attempts now past the p90 of their kind.
    fn look_for_slow(&self) {
        let due = match self.watch.lock() {
            Ok(mut w) => w.due(std::time::Instant::now()),
            Err(_) => return,
        };
        for e in due {
            self.event(&e);
        }
    }

    fn event(&self, e: &Event) {
        let Ok(mut p) = self.progress.lock() else {
            return;
        };
        let mut said = Vec::new();
        if let Ok(t) = self.telemetry.lock()
            && let Some(sink) = t.as_ref()
            && let Ok(line) = serde_json::to_value(crate::supervisor::Stamped::now(e))
        {
            sink.event(line);
        }
        if let Ok(mut l) = self.log.lock() {
            let failed = l.failed.is_some();
            l.append(e);
            if let (false, Some(why)) = (failed, &l.failed) {
                said.push(format!("no event log: {why}"));
            }
        }
        if let Ok(mut w) = self.watch.lock() {
            w.event(e);
            said.extend(w.take_notes());
        }
        p.event(e);
        if let Some(n) = &self.notifier {
            notify_event(n, e);
            said.extend(n.take_notes());
        }
        self.notes(&mut p, said);
    }

    /// A note for each task (or its check, or a setup) of the run whose network connections
    /// orch's proxy refused and that did not fail (a failed task's cause names them already):
    /// work that passed may still lack what it could not reach.
    fn refusal_notes(&self, state_dir: &std::path::Path, summary: &RunSummary) {
        let mut messages = Vec::new();
        for plan in &summary.plans {
            for (unit, (n, last)) in crate::sandbox::net::refusals_of_plan(state_dir, &plan.plan) {
                if plan.failed_tasks.contains(&unit) {
                    continue;
                }
                messages.push(format!(
                    "{} {}: {n} network connection{} refused by orch in this run, the last to {}; it did not fail, but see its log (`orch logs {} {}`); `network_allow` allows one",
                    plan.plan,
                    crate::untrusted::text::escaped(&unit),
                    if n == 1 { "" } else { "s" },
                    crate::untrusted::text::escaped(&last),
                    plan.plan,
                    crate::untrusted::text::escaped(&unit),
                ));
            }
        }
        if messages.is_empty() {
            return;
        }
        if let Ok(mut p) = self.progress.lock() {
            self.notes(&mut p, messages);
        }
    }

    /// `messages` as notes, logged and shown.
    fn notes(&self, p: &mut Progress, messages: Vec<String>) {
        for message in messages {
            let note = Event::Note {
                plan: None,
                message,
            };
            if let Ok(mut l) = self.log.lock() {
                l.append(&note);
            }
            p.event(&note);
        }
    }

    /// The hooks get `run_finished` first; then their queues are waited for (at most the
    /// longest hook timeout) and the failures counted in the summary. Then `run_finished`
    /// everywhere, and the final table.
    fn finish(&self, summary: &mut RunSummary) {
        if let Some(n) = &self.notifier {
            notify_event(
                n,
                &Event::RunFinished {
                    summary: summary.clone(),
                },
            );
            summary.notify_failures = n.finish();
            if let Ok(mut p) = self.progress.lock() {
                self.notes(&mut p, n.take_notes());
            }
        }
        self.event(&Event::RunFinished {
            summary: summary.clone(),
        });
        self.finish_telemetry();
        if let Ok(mut p) = self.progress.lock() {
            p.finish(summary);
        }
    }

    /// Waits (at most [`crate::telemetry::FINISH_WITHIN`]) for the last export; what went
    /// wrong is said on stderr, not as an event (the run's events are the same whether it
    /// exports or not).
    fn finish_telemetry(&self) {
        let Some(sink) = self.telemetry.lock().ok().and_then(|mut t| t.take()) else {
            return;
        };
        let o = sink.finish(crate::telemetry::FINISH_WITHIN);
        let mut said = Vec::new();
        if let Some(f) = &o.failure {
            said.push(format!(
                "telemetry: an export failed ({f}); the run is not affected"
            ));
        }
        if o.unfinished {
            said.push(format!(
                "telemetry: the last export had not ended after {}; it was abandoned",
                crate::manifest::format_duration(crate::telemetry::FINISH_WITHIN)
            ));
        }
        if o.events_dropped > 0 {
            said.push(format!(
                "telemetry: {} events dropped (the exporter's queue was full)",
                o.events_dropped
            ));
        }
        for line in said {
            crate::commands::output::eprintln_safe(&format!("note: {line}"));
        }
    }
}

/// Queues `e` for the `[[notify]]` hooks, as the line `--json` prints.
fn notify_event(n: &Notifier, e: &Event) {
    let stamped = crate::supervisor::Stamped {
        at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        event: e,
    };
    if let Ok(line) = serde_json::to_string(&stamped)
        && let Some(name) = crate::notify::event_name(&line)
    {
        n.send(&name, &line);
    }
}
