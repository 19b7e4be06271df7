//! An agent's argv and environment: its command with the template variables filled (the task's
//! or the plan's prompt rendered and written to its file), and orch's variables.

use super::*;
use crate::sandbox::net::allow::Endpoint;

/// The argv (template variables filled) and environment of an agent, and the endpoints its
/// network must reach beyond its plan's (the run's collector, when its client exports to it).
pub(super) fn prepare_argv(
    ctx: &crate::supervisor::context::Ctx,
    templates: &crate::prompt::Templates,
    pc: &PlanCtx,
    doc: &StatusDoc,
    (task, attempt): (Option<usize>, u32),
    (workdir, branch): (&Path, &str),
    (report_dir, log, file_id, agent_command): (&Path, &Path, &str, &[String]),
) -> Result<(Vec<String>, Env, Vec<Endpoint>), String> {
    let orch = ctx.orch_bin.display().to_string();
    let worktree = workdir.display().to_string();
    let status_file = pc.status_path.display().to_string();
    let plan_file = ctx.repo_root.join(&pc.rel_path).display().to_string();
    let (prompt, id) = match task {
        Some(t) => {
            let tk = &pc.plan.tasks[t];
            let phase = pc.plan.phase(tk.phase);
            let prompt = TaskPrompt {
                plan: pc.name().to_owned(),
                plan_title: pc.plan.title.clone(),
                plan_file: pc.rel_path.clone(),
                phase_number: tk.phase,
                phase_title: phase.map(|ph| ph.title.clone()).unwrap_or_default(),
                task_id: tk.id.clone(),
                kind: kind_str(tk.kind),
                description: tk.description.clone(),
                body: tk.body.clone(),
                dependencies: tk
                    .dependencies()
                    .iter()
                    .map(|d| DepInfo {
                        id: d.clone(),
                        description: pc
                            .plan
                            .task(d)
                            .map(|x| x.description.clone())
                            .unwrap_or_default(),
                        commit: doc.entry(d).and_then(|e| e.commit.clone()),
                    })
                    .collect(),
                worktree: worktree.clone(),
                branch: branch.to_string(),
                orch: orch.clone(),
                status_file: status_file.clone(),
                attempt,
                previous_error: doc.entry(&tk.id).and_then(|e| e.last_error.clone()),
                integration: ctx
                    .integration
                    .as_ref()
                    .and_then(|i| i.feedback_for(pc.name())),
                check: pc.check_of(t).map(|c| c.join(" ")).unwrap_or_default(),
                report_by_exit: pc.agent.report == crate::manifest::ReportMode::Exit,
                question: None,
                answer: None,
                answers: Vec::new(),
                messages: Vec::new(),
            }
            .with_entry(doc.entry(&tk.id));
            (
                templates.render_task(&prompt).map_err(|e| e.to_string())?,
                tk.id.clone(),
            )
        }
        None => {
            let prompt = PlanPrompt {
                plan: pc.name().to_owned(),
                plan_title: pc.plan.title.clone(),
                plan_file: pc.rel_path.clone(),
                worktree: worktree.clone(),
                branch: pc.branch().to_owned(),
                orch: orch.clone(),
                status_file: status_file.clone(),
                tasks_total: doc.entries().count(),
                tasks_remaining: doc.entries().filter(|e| !e.status.is_finished()).count(),
                integration: ctx
                    .integration
                    .as_ref()
                    .and_then(|i| i.feedback_for(pc.name())),
            };
            (
                templates.render_plan(&prompt).map_err(|e| e.to_string())?,
                String::new(),
            )
        }
    };
    // The plans of other repositories it builds on: where their checkouts are.
    let prompt = match crate::supervisor::upstream_repos::prompt_section(&pc.upstreams) {
        Some(section) => format!("{prompt}{section}"),
        None => prompt,
    };
    let prompt_file = prompt_file_of(pc, file_id);
    std::fs::create_dir_all(&pc.log_dir)
        .and_then(|()| crate::links::write(&prompt_file, prompt.as_bytes()))
        .map_err(|e| format!("cannot write `{}`: {e}", prompt_file.display()))?;
    let prompt_file = prompt_file.display().to_string();
    let usage_file = crate::agent_output::usage_file(log);
    let lookup = |var: &str| -> String {
        match var {
            "prompt" => prompt.clone(),
            "prompt_file" => prompt_file.clone(),
            "plan" => pc.name().to_owned(),
            "plan_file" => plan_file.clone(),
            "task" => id.clone(),
            "worktree" => worktree.clone(),
            "status_file" => status_file.clone(),
            // What the agent must be able to write for `orch task`: its report directory.
            "status_dir" => report_dir.display().to_string(),
            _ => common_var(var, &ctx.orch_bin, &usage_file),
        }
    };
    // Confined, a preset runs every shell command (orch's rules are the sandbox).
    let confined = runs_confined(ctx, pc);
    let command: Vec<String> =
        match crate::manifest::confined_variant(agent_command).filter(|_| confined) {
            Some(v) => v.iter().map(|a| (*a).to_string()).collect(),
            None => agent_command.to_vec(),
        };
    let mut argv = command
        .iter()
        .map(|a| render_template(a, lookup))
        .collect::<Result<Vec<_>, _>>()?;
    let orch_path = orch.clone();
    let mut env = vec![
        (agent_env::ORCH_PLAN.to_string(), pc.name().to_owned()),
        (agent_env::ORCH_TASK.to_string(), id.clone()),
        (agent_env::ORCH_WORKTREE.to_string(), worktree),
        (agent_env::ORCH_STATUS_FILE.to_string(), status_file),
        (agent_env::ORCH_BIN.to_string(), orch),
        (
            agent_env::ORCH_MANIFEST.to_string(),
            ctx.manifest_path.display().to_string(),
        ),
        (agent_env::ORCH_ATTEMPT.to_string(), attempt.to_string()),
        (agent_env::ORCH_PROMPT_FILE.to_string(), prompt_file),
    ];
    env.push((
        agent_env::ORCH_PORT.to_string(),
        crate::supervisor::context::worktree_port(ctx, pc, workdir)?.to_string(),
    ));
    env.push((agent_env::ORCH_PORTS.to_string(), ctx.ports.to_string()));
    env.extend(crate::supervisor::upstream_repos::env(&pc.upstreams));
    // When the run exports: the attempt's span as its trace context (derived, `telemetry::ids`).
    env.extend(crate::telemetry::attempt_env(pc.name(), &id, attempt));
    // What orch sets for the client it knows (opencode's permission rules, Claude Code's
    // retries off).
    let mut reach = Vec::new();
    if let Some(cli) = crate::manifest::KnownCli::of(&argv) {
        let user = |k: &str| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned());
        let rules = crate::manifest::preset_with_rules(agent_command).then_some(confined);
        env.extend(cli.env(rules, &orch_path, user));
        // When the run exports: the client's own telemetry to the same collector, whose
        // `host:port` its network then reaches (`telemetry::clients`).
        if let Some(export) = crate::telemetry::client_export(cli, &argv, user) {
            env.extend(export.env);
            let at = argv.len().min(2);
            argv.splice(at..at, export.args);
            // One that is no allowlist entry (none is, of a checked address) is left out: the
            // client's export is then refused, never widened to more.
            reach = export
                .reach
                .iter()
                .filter_map(|hp| Endpoint::parse(hp).ok())
                .collect();
        }
    }
    Ok((argv, env, reach))
}

/// The network of a plan for one of its attempts, which must also reach `reach` (the run's
/// collector, for a client that exports to it): a confined plan's list gains exactly those
/// endpoints; any other network is the plan's.
pub(super) fn network_reaching(
    network: &crate::supervisor::network::PlanNetwork,
    reach: &[Endpoint],
) -> crate::supervisor::network::PlanNetwork {
    use crate::supervisor::network::PlanNetwork;
    let widen = |allow: &crate::sandbox::net::allow::AllowList| {
        let mut allow = allow.clone();
        for e in reach {
            allow.add(e.clone());
        }
        allow
    };
    match network {
        PlanNetwork::Confined(allow) => PlanNetwork::Confined(widen(allow)),
        PlanNetwork::Ports(allow, why) => PlanNetwork::Ports(widen(allow), why.clone()),
        other => other.clone(),
    }
}
