//! `orch pr`: finished plans pushed to the remote and opened (or updated) as stacked pull
//! requests with the GitHub CLI. The work is [`crate::merge::pr::PrRun`]'s; this prints it.

use serde_json::{Value, json};

use super::output::{print_json, println_safe};
use crate::error::{CliResult, exit};
use crate::merge::pr::{PrRun, PrStep, shown};
use crate::workspace::Selection;

pub(crate) struct PrArgs {
    /// Plan names; empty = every finished plan that is not merged yet.
    pub(crate) plans: Vec<String>,
    pub(crate) dry_run: bool,
    pub(crate) json: bool,
    /// `--watch` (with `--once`, `--poll`): the review loop after the pull requests.
    pub(crate) watch: Option<crate::review::WatchArgs>,
}

pub(crate) fn run(sel: &Selection, args: PrArgs) -> CliResult<u8> {
    let (ws, manifest) = super::with_manifest(
        sel,
        true,
        "`orch pr` needs a plans.toml: it opens pull requests for the plans the manifest lists",
    )?;
    let names = super::plan_names(sel, &manifest, args.plans.clone(), "orch pr")?;
    let (ws, manifest) = if args.watch.is_some() {
        // A round a restart left in progress is finished first (until then its plan is not
        // finished), and the plans read again.
        if crate::review::watch::resume(sel, &mut |e| print_event(e, args.json))? {
            super::with_manifest(sel, true, "`orch pr` needs a plans.toml")?
        } else {
            (ws, manifest)
        }
    } else {
        (ws, manifest)
    };
    let run = PrRun::plan(&ws, &manifest, &names)?;
    if !args.json {
        if run.order.is_empty() && names.is_empty() {
            println_safe(&format!(
                "no finished plan to open a pull request for (every finished plan is merged into `{}`)",
                run.target
            ));
        } else if args.dry_run {
            println_safe(&format!(
                "dry run: pull requests against `{}` on remote `{}` (nothing is pushed or changed; `gh pr list` runs)",
                run.target, run.remote
            ));
        }
    }
    let steps = run.run(args.dry_run, |s| {
        if !args.json {
            print_step(s, args.dry_run);
        }
    })?;
    let all = json!({
        "remote": run.remote,
        "target": run.target,
        "dry_run": args.dry_run,
        "plans": steps.iter().map(step_json).collect::<Vec<_>>(),
    });
    if let Some(w) = &args.watch {
        if args.json {
            println_safe(&crate::untrusted::json_safe(all.to_string()));
        }
        let prs: Vec<(String, u64)> = steps
            .iter()
            .filter_map(|s| Some((s.plan.clone(), s.number?)))
            .collect();
        drop(run);
        return crate::review::watch(sel, &prs, w, &mut |e| print_event(e, args.json));
    }
    if args.json {
        print_json(&all);
    }
    Ok(exit::OK)
}

/// One event of the review loop: a JSON line, or a line of words.
fn print_event(e: &Value, json: bool) {
    if json {
        println_safe(&crate::untrusted::json_safe(e.to_string()));
        return;
    }
    let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default();
    let n = |k: &str| e.get(k).and_then(Value::as_u64).unwrap_or_default();
    let head = format!("{}: #{}", s("plan"), n("number"));
    let line = match s("event") {
        "review_round" => {
            let tasks = e
                .get("tasks")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let mut line = format!(
                "{head}: review round {}: {} task(s)",
                n("round"),
                tasks.len()
            );
            for t in &tasks {
                line.push_str(&format!(
                    "\n  {} {}",
                    t.get("task").and_then(Value::as_str).unwrap_or_default(),
                    t.get("about").and_then(Value::as_str).unwrap_or_default()
                ));
            }
            line
        }
        "review_pushed" => format!(
            "{head}: round {} pushed to `{}` ({})",
            n("round"),
            s("branch"),
            crate::merge::short(s("commit"))
        ),
        "review_synced" => format!(
            "{head}: `{}` merged into `{}` and pushed ({})",
            s("upstream"),
            s("branch"),
            crate::merge::short(s("commit"))
        ),
        "review_escalated" => format!(
            "{head}: handed to a person (label `{}`): {}",
            s("label"),
            s("reason")
        ),
        "review_approved" => format!(
            "{head}: approved with green checks after {} round(s)",
            n("round")
        ),
        "review_landed" => format!("{head}: landed on `{}`", s("target")),
        "review_closed" => format!("{head}: {}: no longer watched", s("state")),
        "review_waiting" => {
            let prs: Vec<String> = e
                .get("prs")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|p| {
                            format!(
                                "#{} ({})",
                                p.get("number").and_then(Value::as_u64).unwrap_or_default(),
                                p.get("plan").and_then(Value::as_str).unwrap_or_default()
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "waiting for review on {}; next look in {}s (said again when something changes, or in 5 minutes)",
                prs.join(", "),
                n("next_poll_s")
            )
        }
        other => format!("{head}: {other}: {}", s("error")),
    };
    println_safe(&line);
}

fn print_step(s: &PrStep, dry_run: bool) {
    if s.action == "skipped" {
        println_safe(&format!(
            "{}: skipped: {}",
            s.plan,
            s.reason.as_deref().unwrap_or_default()
        ));
        return;
    }
    let what = match s.action {
        "created" => format!("opened {}", s.url.as_deref().unwrap_or("a pull request")),
        "updated" | "would_update" => {
            let (did, moved) = match s.action {
                "updated" => ("updated", "moved"),
                _ => ("would update", "would move"),
            };
            let base = s.base_before.as_ref();
            let base = base.map(|b| format!(" (base {moved} from `{b}`)"));
            format!(
                "{did} #{}{}",
                s.number.unwrap_or_default(),
                base.unwrap_or_default()
            )
        }
        _ => "would open a pull request".to_string(),
    };
    println_safe(&format!(
        "{}: `{}` -> `{}`: {what}",
        s.plan, s.branch, s.base
    ));
    if let Some(note) = &s.reason {
        println_safe(&format!("  note: {note}"));
    }
    if dry_run {
        for argv in &s.commands {
            println_safe(&format!("  $ {}", shown(argv)));
        }
    }
}

fn step_json(s: &PrStep) -> Value {
    json!({
        "plan": s.plan,
        "branch": s.branch,
        "base": s.base,
        "action": s.action,
        "number": s.number,
        "url": s.url,
        "base_before": s.base_before,
        "reason": s.reason,
        "commands": s.commands,
        "body": s.body,
    })
}
