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
