//! `orch integrate`: one integration test by hand (the preview `orch up` runs with `integrate`).
//! The work is [`crate::merge::integrate`]'s; this prints it.

use serde_json::json;

use super::output::{print_json, println_safe};
use crate::error::{CliError, CliResult, exit};
use crate::merge::integrate::{IntegrationReport, IntegrationSpec, Integrator};
use crate::merge::{short, verify::shown};
use crate::workspace::{self, Selection};

pub(crate) fn run(sel: &Selection, json_out: bool) -> CliResult<u8> {
    let (_, manifest) = super::with_manifest(
        sel,
        true,
        "`orch integrate` needs a plans.toml: it tests the plans the manifest lists",
    )?;
    let repo_root = workspace::repo_root(&manifest)?;
    let spec = IntegrationSpec::from_manifest(&manifest, &repo_root)?;
    // Ctrl-C stops a running verify command and removes the staging worktree.
    crate::merge::interrupt::install();
    let report = Integrator::new().test(&spec).map_err(CliError::coded)?;
    if json_out {
        print_json(&report_json(&report));
    } else {
        println_safe(&render(
            &report,
            spec.verify.as_ref().map(|v| shown(&v.argv)),
        ));
    }
    Ok(if report.is_green() {
        exit::OK
    } else {
        exit::INCOMPLETE
    })
}

/// `green`, `red` or `nothing_to_test`.
pub(crate) fn result_word(report: &IntegrationReport) -> &'static str {
    match (&report.failure, report.tested.is_empty()) {
        (Some(_), _) => "red",
        (None, true) => "nothing_to_test",
        (None, false) => "green",
    }
}

pub(crate) fn report_json(report: &IntegrationReport) -> serde_json::Value {
    let mut v = serde_json::to_value(report).unwrap_or_else(|_| json!({}));
    v["result"] = json!(result_word(report));
    v
}

fn render(report: &IntegrationReport, verify: Option<String>) -> String {
    let mut out = Vec::new();
    let n = report.tested.len();
    let plans = report
        .tested
        .iter()
        .filter_map(|t| t.plan.as_deref())
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let checked = match (&verify, &report.verify_skipped) {
        (Some(_), Some(why)) if !report.verified => format!("textual conflicts only: {why}"),
        (Some(cmd), Some(why)) => format!("verified with `{cmd}`; {why}"),
        (Some(cmd), None) => format!("verified with `{cmd}`"),
        (None, _) => "no `verify` set: textual conflicts only".to_string(),
    };
    match &report.failure {
        None if n == 0 => out.push(format!(
            "integration: nothing to test: no plan branch has commits that `{}` lacks",
            report.target
        )),
        None => out.push(format!(
            "integration: green: {n} plan{} ({plans}) merged into `{}` at {} ({checked})",
            if n == 1 { "" } else { "s" },
            report.target,
            short(&report.target_commit)
        )),
        Some(f) => {
            let named: Vec<String> = f.plans.iter().map(|p| format!("`{p}`")).collect();
            let fail = if named.len() == 1 {
                "fails"
            } else {
                "break together"
            };
            out.push(format!(
                "integration: red: {} {fail} (culprit `{}`; tested {plans} on `{}`, {checked})",
                named.join(" + "),
                f.culprit,
                report.target,
            ));
            if let Some(files) = &f.conflict {
                out.push(format!("  conflict in {}", files.join(", ")));
            }
            if let Some(v) = &f.verify {
                out.push(match v.exit_code {
                    Some(code) => format!("  verify exited with status {code}; its last lines:"),
                    None => "  verify did not finish; its last lines:".to_string(),
                });
                for l in &v.last_lines {
                    out.push(format!("  | {l}"));
                }
            }
            let commits: Vec<String> = f
                .commits
                .iter()
                .map(|c| format!("{} {}", c.branch, short(&c.commit)))
                .collect();
            out.push(format!("  commits tried: {}", commits.join(", ")));
        }
    }
    if report.trials > 0 {
        out.push(format!(
            "{} trial{} built",
            report.trials,
            if report.trials == 1 { "" } else { "s" }
        ));
    }
    out.join("\n")
}
