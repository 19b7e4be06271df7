//! `orch sync`: each plan brought up to date with the plans it depends on (their branch tips
//! merged into its branch); a conflict changes nothing. The work is
//! [`crate::merge::sync::sync_plan`]'s; this chooses the plans, records and prints.

use serde_json::{Value, json};

use super::output::{print_json, println_safe};
use crate::error::{CliResult, Coded, exit};
use crate::merge::sync::{SyncResult, Synced, UpstreamMerge, skip_reason};
use crate::merge::{PlanInfo, plan_infos, short};
use crate::workspace::{self, Selection};

/// What happened to one plan.
#[derive(Default)]
struct Report {
    plan: String,
    branch: String,
    /// `synced`, `up_to_date`, `conflict`, `skipped` or `error`.
    outcome: &'static str,
    merged: Vec<UpstreamMerge>,
    conflict: Option<Value>,
    reason: Option<String>,
    code: u8,
}

/// Syncs the plans named (empty: every started plan that depends on another and is not merged).
pub(crate) fn run(sel: &Selection, plans: Vec<String>, json_out: bool) -> CliResult<u8> {
    let (ws, manifest) = super::with_manifest(
        sel,
        true,
        "`orch sync` needs a plans.toml: it follows the manifest's `depends_on`",
    )?;
    let names = super::plan_names(sel, &manifest, plans, "orch sync")?;
    let chosen = ws.select(&names)?;
    let repo_root = workspace::repo_root(&manifest)?;
    let infos = plan_infos(&ws, &manifest, &repo_root)?;

    // Never beside `orch up`: its agents work in these worktrees (it re-syncs by itself).
    let _lock = super::supervisor_lock(
        &manifest,
        "`orch up` is running in this repository and keeps its plans current by itself; run `orch sync` when it is done",
    )?;

    // A conflict of a plan with `resolve` goes to its resolver (docs/src/resolve.md).
    let resolver = crate::supervisor::resolver::resolver(
        std::sync::Arc::new(manifest.clone()),
        std::sync::Arc::new(move |note| {
            if !json_out {
                println_safe(&super::resolve::note_line(note));
            }
        }),
    );
    crate::merge::interrupt::install();
    let mut reports = Vec::new();
    for i in crate::merge::in_merge_order(&infos, &chosen) {
        let p = &infos[i];
        let mut report = Report {
            plan: p.name().to_owned(),
            branch: p.branch().to_owned(),
            outcome: "skipped",
            ..Report::default()
        };
        let worktree = manifest.worktree_path(p.name());
        match skip_reason(p, &infos, &worktree, &manifest.defaults.target) {
            Some(reason) => report.reason = Some(reason),
            None => sync_one(
                &ws,
                &repo_root,
                &infos,
                p,
                &worktree,
                &resolver,
                &mut report,
            ),
        }
        if !json_out {
            print_report(&report);
        }
        reports.push(report);
    }
    if json_out {
        print_json(&json!({
            "plans": reports.iter().map(report_json).collect::<Vec<_>>(),
        }));
    } else if reports.is_empty() {
        println_safe("nothing to sync: no plan depends on another");
    }
    // An error first (refused, failed), then a conflict.
    let worst = reports
        .iter()
        .map(|r| r.code)
        .find(|c| *c != exit::OK && *c != exit::INCOMPLETE);
    Ok(worst.unwrap_or_else(|| {
        if reports.iter().any(|r| r.code == exit::INCOMPLETE) {
            exit::INCOMPLETE
        } else {
            exit::OK
        }
    }))
}

/// Syncs plan `p` and tells `report` what happened.
fn sync_one(
    ws: &crate::workspace::Workspace,
    repo_root: &std::path::Path,
    infos: &[PlanInfo],
    p: &PlanInfo,
    worktree: &std::path::Path,
    resolver: &crate::merge::resolve::Resolver,
    report: &mut Report,
) {
    let synced =
        crate::merge::resolve::sync_resolving(ws, repo_root, infos, p, worktree, Some(resolver));
    let unresolved = synced.as_ref().ok().and_then(|(_, why)| why.clone());
    match synced.map(|(s, _)| s) {
        Ok(Synced {
            result: SyncResult::Done(merged),
            unrecorded,
        }) => {
            report.outcome = if merged.iter().any(|m| m.commit.is_some()) {
                "synced"
            } else {
                "up_to_date"
            };
            if let Some(e) = unrecorded {
                report.reason = Some(format!(
                    "merged, but the status file could not record it: {e}"
                ));
                report.code = exit::FAILURE;
            }
            report.merged = merged;
        }
        Ok(Synced {
            result:
                SyncResult::Conflict {
                    upstream,
                    branch,
                    upstream_commit,
                    files,
                },
            ..
        }) => {
            report.outcome = "conflict";
            report.code = exit::INCOMPLETE;
            report.reason = Some(format!(
                "merging `{upstream}` ({branch} at {}) conflicts in {}; nothing was changed{}",
                short(&upstream_commit),
                crate::diagnostic::path_list(&files, 8),
                unresolved.map(|w| format!(" ({w})")).unwrap_or_default()
            ));
            report.conflict = Some(json!({
                "upstream": upstream,
                "branch": branch,
                "upstream_commit": upstream_commit,
                "files": files,
            }));
        }
        Err(e) => {
            report.outcome = "error";
            report.code = e.exit_code();
            report.reason = Some(match e.hint() {
                Some(h) => format!("{e} (hint: {h})"),
                None => e.to_string(),
            });
        }
    }
}

fn print_report(r: &Report) {
    match r.outcome {
        "synced" | "up_to_date" => {
            for m in &r.merged {
                let (did, as_commit) = match &m.commit {
                    Some(c) => ("upstream_merged", format!(" as {}", short(c))),
                    None => ("already contains", String::new()),
                };
                println_safe(&format!(
                    "{}: {did} `{}` ({} at {}){as_commit}",
                    r.plan,
                    m.upstream,
                    m.branch,
                    short(&m.upstream_commit)
                ));
            }
            if let Some(reason) = &r.reason {
                println_safe(&format!("{}: {reason}", r.plan));
            }
        }
        _ => println_safe(&format!(
            "{}: {}: {}",
            r.plan,
            r.outcome.replace('_', " "),
            r.reason.as_deref().unwrap_or_default()
        )),
    }
}

fn report_json(r: &Report) -> Value {
    json!({
        "plan": r.plan,
        "branch": r.branch,
        "outcome": r.outcome,
        "merged": r.merged.iter().map(|m| json!({
            "event": "upstream_merged",
            "plan": r.plan,
            "from": m.upstream,
            "branch": m.branch,
            "upstream_commit": m.upstream_commit,
            "commit": m.commit,
        })).collect::<Vec<_>>(),
        "conflict": r.conflict,
        "reason": r.reason,
    })
}
