//! `orch history`: the attempts orch learnt from (`<state_dir>/.history.jsonl`), a summary per
//! plan and agent, and with `--backtest` how calibrated the forecasts from them were.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::anyhow;
use serde_json::json;

use super::output::{eprintln_safe, print_json, println_safe};
use crate::error::{CliError, CliResult, exit};
use crate::forecast::estimate::fit;
use crate::forecast::history::shown;
use crate::forecast::{History, Outcome, backtest, secs};
use crate::workspace::{self, Selection};

/// The command line of `orch history`.
#[derive(Clone, Debug)]
pub(crate) struct HistoryArgs {
    pub(crate) json: bool,
    pub(crate) backtest: bool,
    /// Records listed in the text.
    pub(crate) last: usize,
    /// `--profile [RUN]`: the profile of every run of the events file, or of run RUN.
    pub(crate) profile: Option<Option<String>>,
}

/// Per plan and agent: attempts, failed ones, p50 and p90 of the successful ones' seconds.
#[derive(Default)]
struct Row {
    attempts: usize,
    failed: usize,
    durations: Vec<f64>,
}

pub(crate) fn run(sel: &Selection, args: &HistoryArgs) -> CliResult<u8> {
    let ws = workspace::load_without_files(sel)?;
    let Some(dir) = super::forecasts::state_dir(&ws) else {
        return Err(CliError::invalid(anyhow!(
            "`orch history` needs a plans.toml: the history is kept in its state directory"
        ))
        .with_hint("run it where `orch up` runs, or pass `--manifest PATH`"));
    };
    if let Some(run) = &args.profile {
        return profile(&dir, run.as_deref(), args.json);
    }
    let h = History::load(&dir);
    let mut rows: BTreeMap<(&str, &str), Row> = BTreeMap::new();
    for r in &h.records {
        let row = rows.entry((&r.plan, &r.agent)).or_default();
        row.attempts += 1;
        if r.outcome == Outcome::Failed {
            row.failed += 1;
        } else {
            row.durations.push(r.duration_s());
        }
    }
    // A failed task is retried in the replay as the manifest now says.
    let retries = |plan: &str| {
        ws.manifest
            .as_ref()
            .and_then(|m| m.plan(plan))
            .map(|e| e.retries)
    };
    let bt = args
        .backtest
        .then(|| backtest::backtest(&h.records, &retries));
    if args.json {
        let summary: Vec<_> = rows
            .iter()
            .map(|((plan, agent), row)| {
                let f = fit(row.durations.iter().copied());
                json!({
                    "plan": plan,
                    "agent": agent,
                    "attempts": row.attempts,
                    "failed": row.failed,
                    "duration_p50_s": f.map(|f| f.quantile(0.5).round()),
                    "duration_p90_s": f.map(|f| f.quantile(0.9).round()),
                })
            })
            .collect();
        let mut v = json!({
            "file": crate::forecast::History::path(&dir),
            "records": h.records,
            "skipped": h.skipped,
            "summary": summary,
        });
        if let Some(b) = &bt {
            v["backtest"] = b.json();
        }
        print_json(&v);
        return Ok(exit::OK);
    }
    for note in h.skipped.iter().take(5) {
        eprintln_safe(&format!(
            "note: {}: {}",
            crate::forecast::history::FILE,
            shown(note, 200)
        ));
    }
    if h.skipped.len() > 5 {
        eprintln_safe(&format!("note: {} more lines skipped", h.skipped.len() - 5));
    }
    let mut out = String::new();
    if h.records.is_empty() {
        let _ = writeln!(
            out,
            "no history yet: `orch up` records every settled attempt in {}",
            crate::forecast::History::path(&dir).display()
        );
    } else {
        let _ = writeln!(
            out,
            "{} attempts in {}; the newest {}:",
            h.records.len(),
            crate::forecast::History::path(&dir).display(),
            args.last.min(h.records.len())
        );
        let _ = writeln!(
            out,
            "{:<20} {:<12} {:<8} {:<12} {:>9} {:>8} {:<7} {:>3}  description",
            "settled", "plan", "task", "agent", "duration", "cost", "outcome", "try"
        );
        for r in &h.records[h.records.len().saturating_sub(args.last)..] {
            let _ = writeln!(
                out,
                "{:<20} {:<12} {:<8} {:<12} {:>9} {:>8} {:<7} {:>3}  {}",
                // To the second, as before: newer records keep milliseconds.
                r.end()
                    .map_or_else(|| shown(&r.at, 20), crate::forecast::rfc3339),
                shown(&r.plan, 12),
                shown(&r.task, 8),
                shown(&r.agent, 12),
                secs(r.duration_s()),
                r.cost_usd().map_or("-".to_string(), |c| format!("${c:.2}")),
                match r.outcome {
                    Outcome::Done => "done",
                    Outcome::Failed => "failed",
                },
                r.attempt,
                shown(&r.description, 60)
            );
        }
        let _ = writeln!(out, "\nper plan and agent:");
        for ((plan, agent), row) in &rows {
            let range = fit(row.durations.iter().copied())
                .map(|f| {
                    format!(
                        "p50 {}, p90 {}",
                        secs(f.quantile(0.5)),
                        secs(f.quantile(0.9))
                    )
                })
                .unwrap_or_else(|| "no successful attempt".into());
            let _ = writeln!(
                out,
                "  {} / {}: {} attempts, {} failed; {range}",
                shown(plan, 40),
                shown(agent, 40),
                row.attempts,
                row.failed
            );
        }
    }
    if let Some(b) = &bt {
        let _ = writeln!(out, "\nbacktest:\n{}", b.text().trim_end());
    }
    println_safe(out.trim_end());
    Ok(exit::OK)
}

/// `orch history --profile [RUN]`.
fn profile(dir: &std::path::Path, run: Option<&str>, json: bool) -> CliResult<u8> {
    use crate::state_layout::{EVENTS, EVENTS_ROTATED};
    let mut events = Vec::new();
    for file in [EVENTS_ROTATED.at(dir), EVENTS.at(dir)] {
        let bytes = crate::untrusted::read::optional(&file, crate::untrusted::read::STATE)
            .map_err(|e| CliError::invalid(anyhow!("{e}")))?
            .unwrap_or_default();
        for line in String::from_utf8_lossy(&bytes).lines() {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(line) {
                events.push(v);
            }
        }
    }
    let runs = super::profile::runs(&events);
    let chosen: Vec<usize> = match run {
        None => (1..=runs.len()).collect(),
        Some("last") if !runs.is_empty() => vec![runs.len()],
        Some(n) => match n.parse::<usize>() {
            Ok(n) if (1..=runs.len()).contains(&n) => vec![n],
            _ => {
                return Err(CliError::invalid(anyhow!(
                    "no run `{}` in `{}`: it holds {} run{}",
                    crate::untrusted::text::escaped(n),
                    EVENTS.at(dir).display(),
                    runs.len(),
                    if runs.len() == 1 { "" } else { "s" }
                ))
                .with_hint("RUN is 1 for the oldest run in the file, or `last`"));
            }
        },
    };
    let profiles: Vec<_> = chosen
        .iter()
        .filter_map(|n| super::profile::profile(*n, &runs[n - 1]))
        .collect();
    if json {
        print_json(&json!({ "file": EVENTS.at(dir), "runs": profiles }));
        return Ok(exit::OK);
    }
    let mut out = String::new();
    if profiles.is_empty() {
        let _ = writeln!(
            out,
            "no run yet: `orch up` writes its events to {}",
            EVENTS.at(dir).display()
        );
    }
    let line = |out: &mut String, name: &str, s: &super::profile::Split| {
        let pct = |ms: u64| {
            if s.wall_ms == 0 {
                0.0
            } else {
                ms as f64 * 100.0 / s.wall_ms as f64
            }
        };
        let _ = writeln!(
            out,
            "  {:<14} {:>9}  agent {:>4.1}%  check {:>4.1}%  orch {:>4.1}%  slot {:>4.1}%  limit {:>4.1}%  backoff {:>4.1}%  person {:>4.1}%",
            shown(name, 14),
            secs(s.wall_ms as f64 / 1000.0),
            pct(s.agent_ms),
            pct(s.check_ms),
            pct(s.orch_ms),
            pct(s.slot_ms),
            pct(s.limit_ms),
            pct(s.backoff_ms),
            pct(s.person_ms),
        );
    };
    for p in &profiles {
        let _ = writeln!(
            out,
            "run {} started {}{}: orchestration overhead {:.1}%",
            p.run,
            p.started,
            if p.finished.is_none() {
                " (not finished)"
            } else {
                ""
            },
            p.split.overhead_pct
        );
        line(&mut out, "run", &p.split);
        for (plan, s) in &p.plans {
            line(&mut out, &format!("plan {plan}"), s);
        }
        for (kind, k) in &p.kinds {
            let _ = writeln!(
                out,
                "  kind {:<9} {} attempts, agents {}, checks {} (summed)",
                shown(kind, 9),
                k.attempts,
                secs(k.agent_ms as f64 / 1000.0),
                secs(k.check_ms as f64 / 1000.0),
            );
        }
    }
    println_safe(out.trim_end());
    Ok(exit::OK)
}
