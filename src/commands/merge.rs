//! `orch merge`: finished plans merged into the target, upstream plans first, each merge built in
//! memory and verified before the target moves; `--dry-run` predicts it all and changes nothing.
//! The work is [`crate::merge::MergeRun`]'s; this prints it.

use serde_json::{Value, json};

pub(crate) use super::merge_args::MergeArgs;
use super::output::{print_json, println_safe};
use crate::error::{CliError, CliResult, exit};
use crate::manifest::MergeStrategy;
use crate::merge::{self, MergeRun, Outcome, PlanInfo, Step, Unfinished, short};
use crate::workspace::Selection;

pub(crate) fn run(sel: &Selection, args: MergeArgs) -> CliResult<u8> {
    let (ws, manifest) = super::with_manifest(
        sel,
        true,
        "`orch merge` needs a plans.toml: it merges the plans the manifest lists",
    )?;
    let names = super::plan_names(sel, &manifest, args.plans.clone(), "orch merge")?;
    // Plans of several repositories land all together or not at all, group by group; the plans
    // of the home repository alone, as before.
    let (groups, left) = merge::together::groups(&manifest, &names);
    if groups.is_empty() {
        return home_only(&ws, &manifest, names, &args);
    }
    let left = if names.is_empty() {
        super::land::finished(&ws, left)?
    } else {
        left
    };
    // What the plans of the home repository alone change of what a later run trusts is
    // refused (exit 4) before any group moves a target, as the groups' own is.
    if !args.dry_run
        && !left.is_empty()
        && let Ok(run) = MergeRun::plan(&ws, &manifest, &left, args.strategy, false)
    {
        run.allowing_protected(args.allow_protected)
            .trusted_unchanged(&ws, &manifest)?;
    }
    let code = super::land::run(&ws, &manifest, &groups, &args)?;
    if left.is_empty() {
        return Ok(code);
    }
    let rest = home_only(&ws, &manifest, left, &args)?;
    Ok(code.max(rest))
}

/// `orch merge` of plans of the home repository.
fn home_only(
    ws: &crate::workspace::Workspace,
    manifest: &crate::manifest::Manifest,
    names: Vec<String>,
    args: &MergeArgs,
) -> CliResult<u8> {
    let manifest = manifest.clone();
    let json_out = args.json;
    // From the start, not only once the steps run: a Ctrl-C (or SIGTERM) while the branches are
    // examined, which can take seconds, is then seen by the first step, and nothing moves; and
    // a SIGINT its starter set to be ignored (a background job of a script) still counts (red
    // team 16: two were ignored, and the target moved).
    if !args.dry_run {
        merge::interrupt::install();
    }
    let run = MergeRun::plan(ws, &manifest, &names, args.strategy, args.stop_on_failure)?
        .allowing_protected(args.allow_protected)
        .with_resolver(crate::supervisor::resolver::resolver(
            std::sync::Arc::new(manifest.clone()),
            std::sync::Arc::new(move |note| {
                if !json_out {
                    println_safe(&format!("  {}", super::resolve::note_line(note)));
                }
            }),
        ));
    let header = Header {
        target: &run.target,
        strategy: run.strategy,
        verify: manifest.defaults.verify.as_deref(),
        dry_run: args.dry_run,
        unfinished: &run.unfinished,
    };

    if args.dry_run {
        let (steps, _) = run.simulate().map_err(CliError::coded)?;
        // What the real run would refuse before anything moves (exit 4 there): predicted.
        let refused = run.trusted_unchanged(ws, &manifest).err();
        if args.json {
            let mut v = header.json(&steps, None);
            if let Some(e) = &refused {
                v["refused"] = json!(e.error.to_string());
            }
            print_json(&v);
        } else {
            header.print_text(&run.order, &run.infos);
            for s in &steps {
                println_safe(&format!("  {}", step_line(s, true)));
            }
            if let Some(e) = &refused {
                println_safe(&format!(
                    "dry run: `orch merge` would refuse this run: {}",
                    e.error
                ));
            }
            println_safe("dry run: nothing was changed");
        }
        return Ok(match refused {
            Some(_) => exit::INCOMPLETE,
            None => exit_code(&steps, false),
        });
    }

    // Before anything moves.
    let prepared = run.prepare(ws, &manifest)?;

    if !args.json {
        header.print_text(&run.order, &run.infos);
    }
    let before = run.target_tip()?;
    let mut steps = Vec::new();
    let verify = prepared.verify.clone().map(|mut v| {
        if !args.json {
            v.announce = verify_lines();
        }
        v
    });
    let result = run.run(
        ws,
        verify.as_ref(),
        &mut steps,
        |s| {
            if !args.json {
                println_safe(&format!("  {}", step_line(s, false)));
            }
        },
        &mut |w| crate::commands::output::eprintln_safe(&format!("warning: {w}")),
    );
    let after = run.target_tip()?;
    let interrupted = matches!(result, Ok(true));
    if args.json {
        let mut v = header.json(&steps, Some((&before, &after)));
        if let Err(e) = &result {
            v["error"] = json!(e.to_string());
        }
        print_json(&v);
    } else if before != after {
        println_safe(&format!(
            "`{}`: {} -> {}",
            run.target,
            short(&before),
            short(&after)
        ));
    }
    match result {
        Err(e) => Err(CliError::coded(e)),
        Ok(_) => Ok(exit_code(&steps, interrupted)),
    }
}

/// A line when a verify starts and one when it ends, with its time; between them, on a terminal,
/// a spinner on stderr with the time so far (a real test suite takes minutes per plan).
fn verify_lines() -> merge::verify::Announce {
    use merge::verify::{Verdict, VerifyNote};
    let spinner: std::sync::Mutex<Option<indicatif::ProgressBar>> = std::sync::Mutex::new(None);
    merge::verify::Announce::to(move |note| {
        let mut shown = spinner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match note {
            VerifyNote::Started { plan, command, .. } => {
                println_safe(&format!(
                    "  {plan}: verifying `{command}` (its output: `orch logs {plan} merge-verify`)"
                ));
                if crate::color::is_terminal(crate::color::Stream::Stderr) {
                    let bar = indicatif::ProgressBar::new_spinner();
                    if let Ok(style) =
                        indicatif::ProgressStyle::with_template("  {spinner} {msg} {elapsed}")
                    {
                        bar.set_style(style);
                    }
                    bar.set_message(format!("{plan}: verifying"));
                    bar.enable_steady_tick(std::time::Duration::from_millis(200));
                    *shown = Some(bar);
                }
            }
            VerifyNote::Ended {
                plan,
                verdict,
                elapsed,
            } => {
                if let Some(bar) = shown.take() {
                    bar.finish_and_clear();
                }
                let took = crate::manifest::format_duration(elapsed);
                let how = match verdict {
                    Verdict::Passed => format!("passed in {took}"),
                    Verdict::Failed(_) => format!("failed after {took}"),
                    Verdict::Interrupted => format!("interrupted after {took}"),
                };
                println_safe(&format!("  {plan}: verify {how}"));
            }
        }
    })
}

fn exit_code(steps: &[Step], interrupted: bool) -> u8 {
    if interrupted {
        exit::INTERRUPTED
    } else if steps.iter().any(|s| s.result.is_failure()) {
        exit::INCOMPLETE
    } else {
        exit::OK
    }
}

/// A step in `--json`.
fn step_json(s: &Step) -> Value {
    json!({
        "plan": s.plan,
        "branch": s.branch,
        "result": s.result.as_str(),
        "commit": s.commit,
        "files": s.files,
        "reason": s.reason,
        "archive_tag": s.archive_tag,
    })
}

/// A step as a line of text.
fn step_line(s: &Step, dry_run: bool) -> String {
    let files = crate::diagnostic::path_list(&s.files, 8);
    let detail = match s.result {
        Outcome::Merged => format!(
            "merged as {}{}",
            short(s.commit.as_deref().unwrap_or_default()),
            s.archive_tag
                .as_ref()
                .map(|t| format!(" (tag {t})"))
                .unwrap_or_default()
        ),
        Outcome::WouldMerge => format!(
            "would merge cleanly ({} path{} changed)",
            s.changes,
            if s.changes == 1 { "" } else { "s" }
        ),
        Outcome::Conflict if dry_run => format!("would conflict in {files}"),
        Outcome::Conflict => format!("conflict in {files}; not merged"),
        Outcome::VerifyFailed => "verification failed; not merged".to_string(),
        Outcome::Skipped => "skipped".to_string(),
        Outcome::AlreadyMerged => "already merged".to_string(),
    };
    match &s.reason {
        Some(r) => format!("{}: {detail}: {r}", s.plan),
        None => format!("{}: {detail}", s.plan),
    }
}

/// The run's settings, printed before the steps (text) or around them (JSON).
struct Header<'a> {
    target: &'a str,
    strategy: MergeStrategy,
    verify: Option<&'a [String]>,
    dry_run: bool,
    unfinished: &'a [Unfinished],
}

impl Header<'_> {
    fn print_text(&self, order: &[usize], infos: &[PlanInfo]) {
        let names: Vec<&str> = order.iter().map(|&i| infos[i].name()).collect();
        let verify = match self.verify {
            Some(argv) if self.dry_run => {
                format!("; verify `{}` not run", merge::verify::shown(argv))
            }
            Some(argv) => format!("; verify `{}`", merge::verify::shown(argv)),
            None => String::new(),
        };
        let (target, strategy) = (self.target, self.strategy);
        if names.is_empty() {
            let why = if self.unfinished.is_empty() {
                ""
            } else {
                " (no plan is finished)"
            };
            println_safe(&format!("nothing to merge into `{target}`{why}"));
        } else {
            let merging = if self.dry_run {
                "dry run: merging"
            } else {
                "merging"
            };
            let order = names.join(" -> ");
            println_safe(&format!(
                "{merging} into `{target}` ({strategy}{verify}): {order}"
            ));
        }
        for (name, tasks) in self.unfinished {
            println_safe(&format!(
                "  {name}: not finished, left out: {}",
                tasks.join(", ")
            ));
        }
    }

    fn json(&self, steps: &[Step], tips: Option<(&str, &str)>) -> Value {
        let mut v = json!({
            "target": self.target,
            "strategy": self.strategy.as_str(),
            "dry_run": self.dry_run,
            "verify": self.verify,
            "steps": steps.iter().map(step_json).collect::<Vec<_>>(),
            "unfinished": self.unfinished.iter().map(|(plan, tasks)| json!({"plan": plan, "tasks": tasks})).collect::<Vec<_>>(),
        });
        if let Some((before, after)) = tips {
            v["target_before"] = json!(before);
            v["target_after"] = json!(after);
        }
        v
    }
}
