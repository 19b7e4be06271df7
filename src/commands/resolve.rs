//! `orch resolve PLAN`: the plan's conflict with the target handed to its `resolve` agent by
//! hand, behind the gates of the merge (docs/src/resolve.md); `--dry-run` prints the prompt the
//! agent would get. The work is [`crate::merge::resolve`]'s; this prints it.

use std::sync::Arc;

use serde_json::json;

use super::output::{print_json, println_safe};
use crate::error::{CliResult, exit};
use crate::merge::resolve::{Resolution, ResolveNote, resolve_by_hand};
use crate::workspace::Selection;

pub(crate) struct ResolveArgs {
    pub(crate) plan: String,
    pub(crate) dry_run: bool,
    pub(crate) json: bool,
}

/// One line for a note of a resolution, as `orch merge` and `orch resolve` print it.
pub(crate) fn note_line(note: &ResolveNote) -> String {
    let files = |f: &[String]| {
        f.iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match note {
        ResolveNote::Started {
            plan,
            agent,
            files: f,
            why,
            attempt,
        } => {
            let what = if why == "verify_failed" {
                "a red verify".to_string()
            } else {
                format!("conflicts in {}", files(f))
            };
            format!("{plan}: resolving {what} with agent `{agent}` (attempt {attempt})")
        }
        ResolveNote::Resolved {
            plan,
            agent,
            commit,
            ..
        } => format!(
            "{plan}: resolved by agent `{agent}`: merge commit {} on the plan branch",
            crate::merge::short(commit)
        ),
        ResolveNote::Failed {
            plan, agent, cause, ..
        } => format!("{plan}: resolution by agent `{agent}` failed: {cause}"),
    }
}

/// What `orch resolve` (and its `--dry-run`) says of a plan that merges cleanly.
fn clean_line(plan: &str, target: &str) -> String {
    format!("{plan}: merges cleanly into `{target}`: nothing to resolve")
}

pub(crate) fn run(sel: &Selection, args: ResolveArgs) -> CliResult<u8> {
    let (ws, manifest) = super::with_manifest(
        sel,
        true,
        "`orch resolve` needs a plans.toml: it resolves a plan the manifest lists",
    )?;
    // A plan of another repository is resolved in that repository by its `resolve` agent;
    // without one, it is refused before anything is read or made (merged by hand there).
    if let Some(r) = manifest.repo_of(&args.plan)
        && manifest
            .plan(&args.plan)
            .is_some_and(|e| e.resolve.is_none())
    {
        return Err(crate::error::CliError::new(
            exit::REFUSED,
            anyhow::anyhow!(
                "plan `{}` changes repository `{}` and names no resolver (`resolve`)",
                args.plan,
                r.name
            ),
        )
        .with_hint(format!(
            "set `resolve` for it in {} (its agent works in that repository), or merge `{}` into its branch `{}` by hand in `{}`; then `orch merge` lands its group",
            manifest.path.display(),
            r.target,
            manifest.plan(&args.plan).map_or("", |e| e.branch.as_str()),
            r.path.display()
        )));
    }
    // The plan's repository's target (a plan of a `[[repo]]` is resolved in that repository,
    // against its target); an unknown plan is the resolution's error (exit 2).
    let target = manifest
        .plan(&args.plan)
        .map_or(manifest.defaults.target.clone(), |e| {
            manifest.target_of(e).to_string()
        });
    let home = crate::workspace::repo_root(&manifest)?;
    if args.dry_run {
        let onto = crate::merge::together::resolve::group_onto(&manifest, &home, &args.plan);
        match crate::merge::resolve::dry_run_prompt(&manifest.path, &args.plan, onto)? {
            Some(prompt) if args.json => {
                print_json(&json!({ "plan": args.plan, "prompt": prompt }));
            }
            Some(prompt) => println_safe(&prompt),
            None if args.json => print_json(&json!({ "plan": args.plan, "result": "clean" })),
            None => println_safe(&clean_line(&args.plan, &target)),
        }
        return Ok(exit::OK);
    }
    // Never beside `orch up`: its agents may work in the plan's worktree, which a resolution
    // moves (the merge train resolves by itself).
    let _lock = super::supervisor_lock(
        &manifest,
        "`orch up` is running in this repository; its merge train resolves a plan with `resolve` by itself, or run `orch resolve` when it is done",
    )?;
    crate::merge::interrupt::install();
    let json_out = args.json;
    // Whether a resolution's end was told: one that fails before its agent starts (its budget,
    // a protected file, plans of different images) has no note, and its cause is printed below.
    let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let told = Arc::clone(&ended);
    let resolver = crate::supervisor::resolver::resolver(
        Arc::new(manifest.clone()),
        Arc::new(move |note| {
            if !matches!(note, ResolveNote::Started { .. }) {
                told.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            if !json_out {
                println_safe(&note_line(note));
            }
        }),
    );
    // A plan that conflicts with an earlier plan of its group is resolved against the group's
    // candidate so far, as `orch merge` hands it to its resolver.
    let result = resolve_by_hand(&ws, &manifest, &args.plan, &resolver, || {
        crate::merge::together::resolve::group_onto(&manifest, &home, &args.plan)
    })?;
    let (code, value) = match &result {
        None => {
            if !args.json {
                println_safe(&clean_line(&args.plan, &target));
            }
            (exit::OK, json!({ "plan": args.plan, "result": "clean" }))
        }
        Some(Resolution::Resolved {
            commit,
            agent,
            files,
            ..
        }) => (
            exit::OK,
            json!({ "plan": args.plan, "result": "resolved", "agent": agent, "files": files, "commit": commit }),
        ),
        Some(Resolution::Failed {
            cause,
            agent,
            files,
            saved,
        }) => (
            if crate::merge::interrupt::interrupted() {
                exit::INTERRUPTED
            } else {
                exit::INCOMPLETE
            },
            json!({ "plan": args.plan, "result": "resolve_failed", "agent": agent, "files": files, "reason": cause, "saved": saved }),
        ),
    };
    if args.json {
        print_json(&value);
    } else if let Some(Resolution::Failed { cause, agent, .. }) = &result
        && !ended.load(std::sync::atomic::Ordering::Relaxed)
    {
        println_safe(&format!(
            "{}: resolution by agent `{agent}` failed: {cause}",
            args.plan
        ));
    }
    Ok(code)
}
