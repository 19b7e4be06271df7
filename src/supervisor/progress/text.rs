//! The words of `orch up`'s output: one line per event ([`describe`]) and the table at the end
//! of a run ([`summary_table`]), shared by the plain, bar and summary outputs.

use std::path::Path;

use super::super::event::{Event, PlanOutcome, RunSummary};
use crate::merge::resolve::ResolveNote;

/// One event as a line of text (without the time); `None` for `RunFinished` (the summary).
pub(crate) fn describe(e: &Event, cwd: Option<&Path>) -> Option<String> {
    let text = match e {
        Event::RunStarted {
            plans, max_agents, ..
        } => format!(
            "run started: {} ({}), at most {max_agents} agent{} at a time",
            count(plans.len(), "plan"),
            plans.join(", "),
            plural(*max_agents)
        ),
        Event::PlanStarted {
            plan,
            branch,
            worktree,
            base,
            created,
        } => format!(
            "{plan} worktree {} at {} on branch {branch} (base {})",
            if *created { "created" } else { "reused" },
            show(worktree, cwd),
            short(base)
        ),
        Event::UpstreamMerged {
            plan,
            from,
            upstream_commit,
            commit,
        } => match commit {
            Some(c) => format!(
                "{plan} merged {from} ({}) into its branch (commit {})",
                short(upstream_commit),
                short(c)
            ),
            None => format!(
                "{plan} already contains {from} ({})",
                short(upstream_commit)
            ),
        },
        Event::SetupFinished { plan, ok, log } => format!(
            "{plan} setup {}; log {}",
            if *ok { "done" } else { "failed" },
            show(log, cwd)
        ),
        Event::TaskStarted {
            plan,
            task,
            description,
            attempt,
            pid,
            job_id,
            ..
        } => format!(
            "{} started (attempt {attempt}, {}): {}",
            subject(plan, task),
            runner(*pid, job_id.as_deref()),
            crate::plan::plain_description(description)
        ),
        Event::TaskOnHost {
            plan,
            task,
            attempt,
            host,
        } => format!(
            "{} runs on host {} (attempt {attempt})",
            subject(plan, task),
            host.escape_debug()
        ),
        Event::HostLost { host, cause } => format!(
            "host {} lost: {}; its attempts run again from the plan branch when it answers, at no retry's cost",
            host.escape_debug(),
            crate::untrusted::text::Shown(cause)
        ),
        Event::HostBack { host } => format!("host {} back: it answers again", host.escape_debug()),
        Event::TaskAdopted {
            plan,
            task,
            pid,
            job_id,
        } => format!(
            "{} adopted ({}, still running from an earlier run)",
            subject(plan, task),
            runner(*pid, job_id.as_deref())
        ),
        Event::TaskFinished {
            plan,
            task,
            commit,
            duration_ms,
            usage,
            pick,
        } => format!(
            "{} done in {} ({}{}){}",
            subject(plan, task),
            human_duration(*duration_ms),
            commit.as_deref().map_or_else(
                || "nothing to commit".into(),
                |c| format!("commit {}", short(c))
            ),
            usage
                .map(|u| format!(", {}", u.describe()))
                .unwrap_or_default(),
            pick.as_deref()
                .map(|p| format!(": best of N, {p}"))
                .unwrap_or_default()
        ),
        Event::TaskChecking {
            plan,
            task,
            attempt,
        } => format!("{} checking (attempt {attempt})", subject(plan, task)),
        Event::TaskStuck {
            plan,
            task,
            attempt,
            quiet_ms,
        } => format!(
            "{} stuck (attempt {attempt}): no output and no status change for {}; stopping it",
            subject(plan, task),
            human_duration(*quiet_ms)
        ),
        Event::AgentPaused {
            agent,
            reason,
            resume_in_ms,
            plan: None,
        } => format!(
            "agent {agent} paused at a usage limit ({}); no task of it starts for {}",
            reason.lines().next().unwrap_or("").trim(),
            human_duration(*resume_in_ms)
        ),
        Event::AgentPaused {
            agent,
            reason,
            resume_in_ms,
            plan: Some(plan),
        } => format!(
            "agent {agent} paused for plan {plan}, whose attempt claims a usage limit ({}); no task of plan {plan} starts with it for {}",
            reason.lines().next().unwrap_or("").trim(),
            human_duration(*resume_in_ms)
        ),
        Event::AgentResumed { agent, plan: None } => format!("agent {agent} resumed"),
        Event::AgentResumed {
            agent,
            plan: Some(plan),
        } => format!("agent {agent} resumed for plan {plan}"),
        Event::AgentFailover {
            from,
            to,
            plans,
            resume_in_ms,
            skipped,
            ..
        } => {
            let skipped = if skipped.is_empty() {
                String::new()
            } else {
                format!(" (skipped: {})", skipped.join("; "))
            };
            format!(
                "agent {from} at a usage limit for {}: pending tasks of {} go to {to}{skipped}",
                human_duration(*resume_in_ms),
                plans.join(", ")
            )
        }
        Event::AgentRestored { agent, plans } => format!(
            "agent {agent}'s limit reset: new tasks of {} go to it again",
            plans.join(", ")
        ),
        Event::PlanPaused { plan } => {
            format!("plan {plan} paused: nothing new of it starts until `orch resume {plan}`")
        }
        Event::PlanResumed { plan } => format!("plan {plan} resumed"),
        Event::TaskRetried {
            plan,
            task,
            attempt,
        } => format!(
            "{} retried: it runs again (attempt {attempt}) with a fresh set of retries",
            subject(plan, task)
        ),
        Event::TaskNeedsInput {
            plan,
            task,
            question,
            ..
        } => format!(
            "{} needs input: {}",
            subject(plan, task),
            crate::untrusted::text::escaped(question)
        ),
        Event::TaskStopped {
            plan,
            task,
            attempt,
        } => format!(
            "{} stopped (attempt {attempt}); `orch retry {plan} {task}` runs it again",
            subject(plan, task)
        ),
        Event::AgentStopped {
            agent,
            class,
            cause,
            fix,
            plan: None,
        } => format!(
            "agent {agent} cannot work ({}): {cause}; fix: {fix}",
            class.replace('_', " ")
        ),
        Event::AgentStopped {
            agent,
            class,
            cause,
            fix,
            plan: Some(plan),
        } => format!(
            "agent {agent} stopped for plan {plan}, whose attempt claims it cannot work ({}): {cause}; fix: {fix}",
            class.replace('_', " ")
        ),
        Event::BudgetReached { plan, reason, .. } => format!(
            "budget of {} reached: {reason}; no new task starts",
            plan.as_deref()
                .map_or_else(|| "the run".to_string(), |p| format!("plan {p}"))
        ),
        Event::TaskFailed {
            plan,
            task,
            attempt,
            error,
            retry_in_ms,
            saved,
            log,
            usage,
        } => {
            let mut parts = vec![format!(
                "{} failed (attempt {attempt}): {error}",
                subject(plan, task)
            )];
            parts.extend(usage.map(|u| u.describe()));
            parts.push(retry_in_ms.map_or("no retry".into(), |ms| {
                format!("retry in {}", human_duration(ms))
            }));
            parts.extend(saved.as_ref().map(|s| format!("changes saved in {s}")));
            parts.push(format!("log {}", show(log, cwd)));
            parts.join("; ")
        }
        Event::PlanFinished { plan, completed } => {
            format!("{plan} finished: {} completed", count(*completed, "task"))
        }
        Event::PlanBlocked { plan, reason } => format!("{plan} blocked: {reason}"),
        Event::PlanMerged {
            plan,
            target,
            commit,
        } => match commit {
            Some(c) => format!("{plan} merged into {target} ({})", short(c)),
            None => format!("{plan} was already merged into {target}"),
        },
        Event::PlanMergeFailed {
            plan,
            result,
            reason,
        } => format!("{plan} not merged ({result}): {reason}"),
        Event::IntegrationFailed {
            plans,
            culprit,
            conflict,
            verify,
            ..
        } => {
            let what = match (conflict, verify) {
                (Some(files), _) => format!("conflict in {}", files.join(", ")),
                (None, Some(v)) => match v.exit_code {
                    Some(code) => format!("verify exited with status {code}"),
                    None => "verify did not finish".to_string(),
                },
                (None, None) => "failed".to_string(),
            };
            format!(
                "integration failed: {} (culprit {culprit}): {what}",
                plans.join(" + ")
            )
        }
        Event::IntegrationFixed { plans, .. } => {
            format!("integration fixed: {} fit again", plans.join(" + "))
        }
        Event::Interrupted { immediate: false } => {
            "interrupted: letting running tasks finish (Ctrl-C again to stop them now)".into()
        }
        Event::Interrupted { immediate: true } => {
            "interrupted again: stopping running agents now".into()
        }
        Event::ReportRefused {
            plan,
            task,
            reporter,
            reason,
        } => format!("{plan}: report of task {task} by {reporter} refused: {reason}"),
        Event::ManifestInvalid { file, errors } => format!(
            "{} is invalid, not applied (the last good configuration stays): {}",
            show(file, cwd),
            // An error's hint is on an indented line of its own.
            errors
                .iter()
                .flat_map(|e| e.lines())
                .map(str::trim)
                .collect::<Vec<_>>()
                .join("; ")
        ),
        Event::ManifestReloaded { files, changes } => {
            let files: Vec<String> = files.iter().map(|f| show(f, cwd)).collect();
            let what = if changes.is_empty() {
                "nothing the run uses changed".to_string()
            } else {
                changes.join("; ")
            };
            format!("plans reloaded ({}): {what}", files.join(", "))
        }
        Event::Note { plan, message } => match plan {
            Some(plan) => format!("{plan}: {message}"),
            None => format!("note: {message}"),
        },
        Event::RunFinished { .. } => return None,
        Event::AttemptFinished {
            plan,
            task,
            attempt,
            of,
            picked,
            cause,
            saved,
            ..
        } => format!(
            "{} attempt {attempt} of {of} {}: {cause}{}",
            subject(plan, task),
            if *picked { "picked" } else { "not picked" },
            saved
                .as_deref()
                .map(|r| format!(" (saved as {r})"))
                .unwrap_or_default()
        ),
        Event::Resolve(ResolveNote::Started {
            plan,
            agent,
            files,
            why,
            attempt,
        }) => {
            let what = if why == "verify_failed" {
                "its red verify".to_string()
            } else {
                format!("its conflict in {}", files.join(", "))
            };
            format!("{plan} hands {what} to resolver {agent} (attempt {attempt})")
        }
        Event::Resolve(ResolveNote::Resolved {
            plan,
            agent,
            commit,
            ..
        }) => format!(
            "{plan} resolved by {agent}: merge commit {} on its branch",
            short(commit)
        ),
        Event::Resolve(ResolveNote::Failed {
            plan, agent, cause, ..
        }) => format!("{plan} not resolved by {agent}: {cause}"),
        Event::TaskSlow {
            plan,
            task,
            attempt,
            elapsed_ms,
            p90_ms,
            samples,
        } => format!(
            "{} slow (attempt {attempt}): running {}, longer than the p90 of its kind ({}, {samples} attempts); it goes on",
            subject(plan, task),
            human_duration(*elapsed_ms),
            human_duration(*p90_ms)
        ),
        Event::RunForecast {
            eta_p50,
            eta_p90,
            cost_p50_micro_usd,
            cost_p90_micro_usd,
            ended_at,
            cost_micro_usd,
        } => {
            let usd = |m: u64| m as f64 / 1e6;
            let costs = match (cost_p50_micro_usd, cost_p90_micro_usd) {
                (Some(a), Some(b)) => format!(", ${:.2}–{:.2}", usd(*a), usd(*b)),
                _ => String::new(),
            };
            let spent = cost_micro_usd
                .map(|c| format!(", ${:.2} spent", usd(c)))
                .unwrap_or_default();
            // Times of day (local, as the lines' own) when they parse.
            let time = |t: &str| {
                chrono::DateTime::parse_from_rfc3339(t)
                    .map(|d| {
                        d.with_timezone(&chrono::Local)
                            .format("%H:%M:%S")
                            .to_string()
                    })
                    .unwrap_or_else(|_| t.to_string())
            };
            let (eta_p50, eta_p90, ended_at) = (time(eta_p50), time(eta_p90), time(ended_at));
            format!(
                "forecast at the start: ends {eta_p50}–{eta_p90}{costs}; ended {ended_at}{spent}"
            )
        }
    };
    Some(one_line(&text))
}

/// The end-of-run table: every plan's outcome, tasks, failed tasks, log directory and reason.
pub(crate) fn summary_table(summary: &RunSummary, cwd: Option<&Path>) -> String {
    let header = ["plan", "outcome", "tasks", "failed", "logs", "reason"];
    let row = |p: &PlanOutcome| -> [String; 6] {
        [
            p.plan.clone(),
            p.outcome.to_string(),
            format!("{}/{}", p.completed, p.total),
            if p.failed_tasks.is_empty() {
                "-".into()
            } else {
                p.failed_tasks.join(", ")
            },
            show(&p.log_dir, cwd),
            p.reason.as_deref().map(one_line).unwrap_or_default(),
        ]
    };
    let rows: Vec<[String; 6]> = summary.plans.iter().map(row).collect();
    // The reason column only when some plan has one.
    let columns = 5 + usize::from(rows.iter().any(|r| !r[5].is_empty()));
    let mut widths = [0usize; 6];
    for r in std::iter::once(&header.map(String::from)).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let how = if summary.interrupted {
        "interrupted"
    } else {
        "finished"
    };
    let mut out = format!("run {how} after {}\n", human_duration(summary.elapsed_ms));
    let mut push_row = |cells: &[String]| {
        let line: Vec<String> = cells[..columns]
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    };
    push_row(&header.map(String::from));
    for r in &rows {
        push_row(r);
    }
    // Why each failed task failed, in the client's words (a few lines each).
    for p in &summary.plans {
        for (id, cause) in &p.causes {
            let lines: Vec<&str> = cause.lines().filter(|l| !l.trim().is_empty()).collect();
            let shown = lines.len().min(6);
            out.push_str(&format!(
                "{} {id} failed: {}\n",
                p.plan,
                lines.first().unwrap_or(&"")
            ));
            for l in &lines[1.min(shown)..shown] {
                out.push_str(&format!("    {l}\n"));
            }
        }
    }
    for a in &summary.agents_stopped {
        out.push_str(&format!(
            "agent {} cannot work: {}\n    fix: {}\n",
            a.agent,
            a.cause.lines().next().unwrap_or("").trim(),
            a.fix
        ));
    }
    if let Some(why) = &summary.budget_reached {
        out.push_str(&format!("budget of the run reached: {why}\n"));
    }
    let spent =
        |u: &crate::agent_output::Usage| u.tokens() > 0 || u.cost_micro_usd.unwrap_or(0) > 0;
    if spent(&summary.usage) {
        let per_plan: Vec<String> = summary
            .plans
            .iter()
            .filter(|p| spent(&p.usage))
            .map(|p| format!("{} {}", p.plan, p.usage.describe()))
            .collect();
        out.push_str(&format!(
            "used in this run: {} (plans, all runs: {})\n",
            summary.usage.describe(),
            per_plan.join("; ")
        ));
    }
    if summary.resolved_by_agent > 0 || summary.left_for_a_person > 0 {
        out.push_str(&format!(
            "conflicts: {} resolved by an agent, {} left for a person\n",
            summary.resolved_by_agent, summary.left_for_a_person
        ));
    }
    let failed = summary.notify_failures;
    if failed > 0 {
        let what = if failed == 1 {
            "delivery"
        } else {
            "deliveries"
        };
        out.push_str(&format!(
            "notifications: {failed} {what} failed (see the notes above)\n"
        ));
    }
    out
}

/// `pid 4242`, or `job 17` for a batch job.
pub(super) fn runner(pid: u32, job: Option<&str>) -> String {
    match job {
        Some(job) => format!("job {job}"),
        None => format!("pid {pid}"),
    }
}

/// `plan task`, or just `plan` in plan mode (no task id).
pub(super) fn subject(plan: &str, task: &str) -> String {
    if task.is_empty() {
        plan.to_string()
    } else {
        format!("{plan} {task}")
    }
}

/// The first 7 characters of a commit id.
pub(super) fn short(commit: &str) -> &str {
    commit.get(..7).unwrap_or(commit)
}

pub(super) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub(super) fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", plural(n))
}

/// A path relative to `cwd` when it is inside it.
pub(super) fn show(path: &Path, cwd: Option<&Path>) -> String {
    cwd.and_then(|c| path.strip_prefix(c).ok())
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Newlines become `; ` so that every event stays one line.
pub(super) fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// `850ms`, `3.2s`, `4m05s`, `1h02m`.
pub(crate) fn human_duration(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{}.{}s", ms / 1_000, ms % 1_000 / 100)
    } else if ms < 3_600_000 {
        let s = ms / 1_000;
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        let m = ms / 60_000;
        format!("{}h{:02}m", m / 60, m % 60)
    }
}
