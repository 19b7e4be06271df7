//! `orch merge` of plans of several repositories: the groups that land together, shown by
//! `--dry-run`, landed all together or not at all ([`crate::merge::together`]).

use std::collections::BTreeSet;

use serde_json::json;

use super::merge::MergeArgs;
use super::output::{print_json, println_safe};
use crate::error::{CliResult, exit};
use crate::manifest::Manifest;
use crate::merge::together::Group;
use crate::merge::together::land::{Ctx, Landed, recover};
use crate::workspace::{self, Workspace};

/// Shows (`--dry-run`) or lands each group; the exit code (5 when a group did not land).
pub(super) fn run(
    ws: &Workspace,
    manifest: &Manifest,
    groups: &[Group],
    args: &MergeArgs,
) -> CliResult<u8> {
    let home = workspace::repo_root(manifest)?;
    let ctx = Ctx {
        manifest,
        home: &home,
        strategy: args.strategy.unwrap_or(manifest.defaults.merge_strategy),
    };
    let unfinished = unfinished(ws)?;
    let mut code = exit::OK;
    let mut shown = Vec::new();
    if args.dry_run {
        for g in groups {
            let mut v = json!({ "group": g.name(), "plans": g.plans, "repos": g.repos });
            let lines = match ctx.build(g, true) {
                Ok(parts) => parts
                    .iter()
                    .map(|p| {
                        let what = if p.old == p.new {
                            "nothing to land".to_string()
                        } else {
                            format!(
                                "would move {} -> {}",
                                crate::merge::short(&p.old.to_string()),
                                crate::merge::short(&p.new.to_string())
                            )
                        };
                        format!("{} `{}`: {} — {what}", p.repo, p.target, p.plans.join(", "))
                    })
                    .collect(),
                Err(why) => {
                    code = exit::INCOMPLETE;
                    v["error"] = json!(why);
                    vec![format!("would not land: {why}")]
                }
            };
            v["steps"] = json!(lines);
            if !args.json {
                println_safe(&format!(
                    "land together: {} ({}), repositories in order: {}",
                    g.name(),
                    g.plans.join(", "),
                    g.repos.join(", ")
                ));
                for l in &lines {
                    println_safe(&format!("  {l}"));
                }
            }
            shown.push(v);
        }
        if args.json {
            print_json(&json!({ "groups": shown, "dry_run": true }));
        } else {
            println_safe("dry run: nothing was changed");
        }
        return Ok(code);
    }
    let state = home.join(&manifest.defaults.state_dir);
    let _lock = crate::merge::MergeLock::acquire(&state)?;
    for note in recover(manifest, &home) {
        crate::commands::output::eprintln_safe(&format!("warning: {note}"));
    }
    for g in groups {
        let waiting: Vec<&String> = g.plans.iter().filter(|p| unfinished.contains(*p)).collect();
        let landed = if waiting.is_empty() {
            let mut say = |line: String| {
                if !args.json {
                    println_safe(&format!("  {line}"));
                }
            };
            ctx.land(g, &mut say)
        } else {
            let names: Vec<String> = waiting.iter().map(|p| format!("`{p}`")).collect();
            Landed::Refused(format!("not finished: {}", names.join(", ")))
        };
        let mut v = json!({ "group": g.name(), "plans": g.plans, "repos": g.repos });
        match &landed {
            Landed::Moved(parts) => {
                v["result"] = json!("landed");
                v["moved"] = json!(
                    parts
                        .iter()
                        .map(|p| json!({
                            "repo": p.repo, "target": p.target,
                            "from": p.old.to_string(), "to": p.new.to_string(),
                        }))
                        .collect::<Vec<_>>()
                );
                if !args.json {
                    println_safe(&format!("landed together: {}", g.name()));
                    for p in parts {
                        println_safe(&format!(
                            "  {} `{}`: {} -> {}",
                            p.repo,
                            p.target,
                            crate::merge::short(&p.old.to_string()),
                            crate::merge::short(&p.new.to_string())
                        ));
                    }
                }
            }
            Landed::AlreadyIn => {
                v["result"] = json!("already-merged");
                if !args.json {
                    println_safe(&format!(
                        "{}: every plan is in its target already",
                        g.name()
                    ));
                }
            }
            Landed::Refused(why) | Landed::VerifyFailed(why) => {
                code = exit::INCOMPLETE;
                v["result"] = json!("not-landed");
                v["reason"] = json!(why);
                if !args.json {
                    println_safe(&format!("not landed: {}: {why}", g.name()));
                }
            }
        }
        shown.push(v);
    }
    if args.json {
        print_json(&json!({ "groups": shown }));
    }
    Ok(code)
}

fn unfinished(ws: &Workspace) -> CliResult<BTreeSet<String>> {
    crate::merge::together::now::unfinished(ws)
}

/// Of `names`, the plans whose every task is finished (what `orch merge` without names takes).
pub(super) fn finished(ws: &Workspace, names: Vec<String>) -> CliResult<Vec<String>> {
    let open = unfinished(ws)?;
    Ok(names.into_iter().filter(|n| !open.contains(n)).collect())
}
