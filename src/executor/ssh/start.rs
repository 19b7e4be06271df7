//! What a run of `executor = "ssh"` plans checks at its start, before anything is made: each
//! host of the plans probed at once ([`super::host::check_at_start`]), and each plan left with a
//! host that may run its agents.

use anyhow::anyhow;

use crate::error::{CliError, CliResult, exit};
use crate::executor::{PlanStart, RunStart};

/// Probes the hosts of `plans` (the run's ssh plans) and checks that each plan has one that
/// may run its agents: notes for the user (a host that does not answer, one that lacks a
/// plan's program), or why the run cannot start.
pub(super) fn check(run: &RunStart<'_>, plans: &[PlanStart<'_>]) -> CliResult<Vec<String>> {
    let used: Vec<crate::manifest::Host> = run
        .manifest
        .hosts
        .iter()
        .filter(|h| plans.iter().any(|p| p.entry.hosts.contains(&h.name)))
        .cloned()
        .collect();
    if used.is_empty() {
        return Ok(Vec::new());
    }
    // The program each plan's agent runs, where it is looked for on the host's PATH.
    let mut programs: Vec<String> = plans.iter().filter_map(|p| p.program.clone()).collect();
    programs.sort();
    programs.dedup();
    let found = super::host::check_at_start(run.state_dir, &used, run.orch_bin, &programs);
    let mut notes = found.notes;
    notes.extend(found.refused.iter().map(|(_, why)| why.clone()));
    let plans: Vec<(&str, &[String], Option<String>)> = plans
        .iter()
        .map(|p| (p.name, p.entry.hosts.as_slice(), p.program.clone()))
        .collect();
    notes.extend(hosts(&plans, &found.refused, &found.lacking)?);
    Ok(notes)
}

/// Each ssh plan of the run (`plans`: its name and hosts) needs a host that may run its agents:
/// a plan whose every host was refused when probed (`refused`: each host's name and why with its
/// fix: no git, no Landlock while its agents must be confined, a refused key, a host key that
/// changed or is unknown, a missing key file) stops the run before anything starts (exit 6),
/// naming the plan, its hosts, the causes and the fixes. A plan with another host goes on there.
fn hosts(
    plans: &[(&str, &[String], Option<String>)],
    refused: &[(String, String)],
    lacking: &[(String, String)],
) -> CliResult<Vec<String>> {
    let is_refused = |h: &String| refused.iter().any(|(r, _)| r == h);
    let lacks = |h: &String, program: &Option<String>| {
        program
            .as_ref()
            .is_some_and(|p| lacking.iter().any(|(lh, lp)| lh == h && lp == p))
    };
    let mut notes = Vec::new();
    let mut stuck: Vec<&(&str, &[String], Option<String>)> = Vec::new();
    for plan in plans {
        let (name, hosts, program) = plan;
        if hosts.is_empty() {
            continue;
        }
        if hosts.iter().all(|h| is_refused(h) || lacks(h, program)) {
            stuck.push(plan);
            continue;
        }
        for h in hosts.iter().filter(|h| lacks(h, program)) {
            notes.push(format!(
                "host `{h}` has no `{}` on its PATH: plan `{name}`'s attempts that go there fail (give the plan `hosts` that have it; `orch hosts` lists each host's clients)",
                program.as_deref().unwrap_or_default()
            ));
        }
    }
    if stuck.is_empty() {
        return Ok(notes);
    }
    let mut lines: Vec<String> = Vec::new();
    let mut named: Vec<&String> = Vec::new();
    for (plan, hosts, _) in &stuck {
        let names: Vec<String> = hosts.iter().map(|h| format!("`{h}`")).collect();
        lines.push(format!("plan `{plan}` (hosts {})", names.join(", ")));
        named.extend(hosts.iter());
    }
    let mut whys: Vec<String> = refused
        .iter()
        .filter(|(h, _)| named.contains(&h))
        .map(|(_, why)| why.clone())
        .collect();
    for (plan, hosts, program) in &stuck {
        for h in hosts.iter().filter(|h| lacks(h, program)) {
            whys.push(format!(
                "host `{h}` has no `{}` on its PATH, which plan `{plan}`'s agent runs",
                program.as_deref().unwrap_or_default()
            ));
        }
    }
    Err(CliError::new(
        exit::AGENT,
        anyhow!(
            "no host can run the agents of {}; nothing was started:\n  {}",
            lines.join(", "),
            whys.join("\n  ")
        ),
    )
    .with_hint(
        "fix what each line says (`orch hosts` checks each host again), or add a host that can run agents to the plan's `hosts`",
    ))
}
