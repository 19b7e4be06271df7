//! `orch merge` of plans of several repositories: the groups that land together, shown by
//! `--dry-run`, landed all together or not at all ([`crate::merge::together`]).

use std::collections::BTreeSet;

use serde_json::json;

use super::merge_args::MergeArgs;
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
                    // A conflict the plan's `resolve` agent would be handed first.
                    let resolver = why.conflict().and_then(|c| {
                        let agent = manifest.plan(&c.plan)?.resolve.as_ref()?;
                        Some(format!(
                            "its resolver (`{}`) would be handed plan `{}` in repository `{}` first, then the group built and checked again",
                            agent, c.plan, c.repo
                        ))
                    });
                    code = exit::INCOMPLETE;
                    v["error"] = json!(why.to_string());
                    let mut lines = vec![format!("would not land as it is: {why}")];
                    if let Some(r) = resolver {
                        v["resolver"] = json!(r);
                        lines.push(r);
                    }
                    lines
                }
            };
            // What the real landing would refuse before anything moves (exit 4 there).
            let mut lines = lines;
            if !unfinished_in(manifest, g, &unfinished)
                && let Err(e) = ctx.trusted(g, ws, args.allow_protected)
            {
                code = exit::INCOMPLETE;
                v["refused"] = json!(e.error.to_string());
                lines.push(format!("`orch merge` would refuse this group: {}", e.error));
            }
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
    // Before anything moves: every finished group's plans checked against what a later run
    // trusts in their repositories (the landing checks it again, by itself): a refusal is the
    // whole command's, exit 4, as for a plan alone.
    for g in groups {
        if !unfinished_in(manifest, g, &unfinished) {
            ctx.trusted(g, ws, args.allow_protected)?;
        }
    }
    let state = home.join(&manifest.defaults.state_dir);
    let _lock = crate::merge::MergeLock::acquire(&state)?;
    // A plan of a group that conflicts goes to its `resolve` agent, in its own repository;
    // the group then lands all together or not at all.
    let json_out = args.json;
    let resolver = crate::supervisor::resolver::resolver(
        std::sync::Arc::new(manifest.clone()),
        std::sync::Arc::new(move |note| {
            if !json_out {
                println_safe(&format!("  {}", super::resolve::note_line(note)));
            }
        }),
    );
    crate::merge::interrupt::install();
    for note in recover(manifest, &home) {
        crate::commands::output::eprintln_safe(&format!("warning: {note}"));
    }
    for g in groups {
        let landed = match crate::merge::together::now::not_finished(manifest, g, &unfinished) {
            None => {
                let mut say = |line: String| {
                    if !args.json {
                        println_safe(&format!("  {line}"));
                    }
                };
                ctx.land(g, ws, args.allow_protected, Some(&resolver), &mut say)
            }
            Some(why) => Landed::Refused(why),
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
                code = code.max(exit::INCOMPLETE);
                v["result"] = json!("not-landed");
                v["reason"] = json!(why);
                if !args.json {
                    println_safe(&format!("not landed: {}: {why}", g.name()));
                }
            }
            Landed::Conflict(c) => {
                code = code.max(exit::INCOMPLETE);
                v["result"] = json!("not-landed");
                v["reason"] = json!(c.to_string());
                if let Some(c) = c.conflict() {
                    v["conflict"] = json!({ "plan": c.plan, "repo": c.repo, "files": c.files });
                    if let Some((_, plans)) = &c.after {
                        // The group's earlier plans merged before it: its conflict is with them.
                        v["conflict"]["with"] = json!(plans);
                    }
                }
                if !args.json {
                    println_safe(&format!("not landed: {}: {c}", g.name()));
                }
            }
            Landed::Protected(e) => {
                // Checked above before anything moved; a branch that moved since is refused
                // here, the same way.
                code = exit::REFUSED;
                v["result"] = json!("refused");
                v["reason"] = json!(e.error.to_string());
                if !args.json {
                    println_safe(&format!("not landed: {}: {}", g.name(), e.error));
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

/// Whether a plan of `g` is not finished.
fn unfinished_in(manifest: &Manifest, g: &Group, open: &BTreeSet<String>) -> bool {
    crate::merge::together::now::not_finished(manifest, g, open).is_some()
}

fn unfinished(ws: &Workspace) -> CliResult<BTreeSet<String>> {
    crate::merge::together::now::unfinished(ws)
}

/// Of `names`, the plans whose every task is finished (what `orch merge` without names takes).
pub(super) fn finished(ws: &Workspace, names: Vec<String>) -> CliResult<Vec<String>> {
    let open = unfinished(ws)?;
    Ok(names.into_iter().filter(|n| !open.contains(n)).collect())
}
