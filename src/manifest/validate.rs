//! Semantic checks: from [`RawManifest`] to [`Manifest`], reporting every problem found.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::agents::{AgentMode, AgentSpec, ReportMode, StdinMode, parse_template, presets};
use super::executor::SlurmOptions;
use super::model::{Defaults, Dependency, Manifest, MergeStrategy, PlanEntry, parse_dependency};
use super::names::{check_plan_name, check_ref_name};
use super::paths::{check_plan_file, inside_dir, inside_root, leaves_via_symlink, rel_paths};
use super::raw::{At, RawManifest, RawPlan, Reporter};
use super::values::{
    PARALLEL_HINT, argv, at_least_one, both_parallel, duration, executor, slurm_options,
};
use crate::duration::parse_duration;

/// Builds the manifest from its raw form; problems go to `r`. The result is only meaningful when
/// `r` collected no errors.
pub(crate) fn validate(raw: RawManifest, root: &Path, r: &mut Reporter<'_>) -> Manifest {
    let mut agents = agents(&raw, r);
    let mut defaults = defaults(&raw, root, &agents, r);
    sandbox(&raw, &mut defaults, &mut agents, r);
    defaults.protect = super::protect::globs(r, "defaults.protect", raw.defaults.protect.as_ref());
    let slurm = slurm_options(r, "slurm", &raw.slurm, &SlurmOptions::default());
    let slurm_poll = duration(r, "slurm.poll", raw.slurm.poll.as_ref(), false)
        .unwrap_or(super::model::DEFAULT_SLURM_POLL);
    defaults.best_of = super::best_of::resolve(
        r,
        "defaults",
        &raw.defaults.best_of,
        &Default::default(),
        &agents,
        defaults.max_agents,
    );
    super::resolve::defaults(
        raw.defaults.resolve.as_ref(),
        raw.defaults.resolve_verify.as_ref(),
        &mut defaults,
        &agents,
        r,
    );
    let mut plans = plans(&raw.plans, root, &defaults, &agents, &slurm, r);
    super::resolve::plans(&raw.plans, &mut plans, &defaults, &agents, r);
    Manifest {
        path: r.path.to_path_buf(),
        root: root.to_path_buf(),
        defaults,
        agents,
        plans,
        slurm_poll,
        warnings: Vec::new(),
        notify: raw.notify,
    }
}

fn defaults(
    raw: &RawManifest,
    root: &Path,
    agents: &BTreeMap<String, AgentSpec>,
    r: &mut Reporter<'_>,
) -> Defaults {
    let d = &raw.defaults;
    let mut out = Defaults::default();
    if let Some(At { value, span }) = &d.target {
        match check_ref_name(value) {
            Ok(()) => out.target = value.clone(),
            Err(why) => r.error(
                span,
                format!("`defaults.target` `{value}` is not a valid branch name: {why}"),
            ),
        }
    }
    if let Some(At { value, span }) = &d.max_agents {
        match usize::try_from(*value) {
            Ok(n) if n >= 1 => out.max_agents = n,
            _ => r.error(
                span,
                format!("`defaults.max_agents` must be at least 1, found {value}"),
            ),
        }
    }
    if let Some(At { value, span }) = &d.agent {
        if agents.contains_key(value) {
            out.agent = value.clone();
        } else {
            r.error_hint(
                span,
                format!("`defaults.agent` names unknown agent `{value}`"),
                known_agents_hint(agents),
            );
        }
    }
    if let Some(At { value, span }) = &d.timeout {
        match parse_duration(value) {
            Ok(t) if t > Duration::ZERO => out.timeout = t,
            Ok(_) => r.error(span, "`defaults.timeout` must be greater than zero"),
            Err(why) => r.error(span, format!("`defaults.timeout`: {why}")),
        }
    }
    if let Some(At { value, span }) = &d.retries {
        match u32::try_from(*value) {
            Ok(n) => out.retries = n,
            Err(_) => r.error(
                span,
                format!("`defaults.retries` must be a non-negative integer, found {value}"),
            ),
        }
    }
    if let Some(At { value, span }) = &d.verify {
        if value.is_empty() {
            r.error_hint(
                span,
                "`defaults.verify` must not be empty",
                "remove the key to skip verification, or give an argv such as [\"cargo\", \"test\"]",
            );
        } else if value[0].value.is_empty() {
            r.error(
                &value[0].span,
                "the program of `defaults.verify` must not be empty",
            );
        } else {
            out.verify = Some(value.iter().map(|a| a.value.clone()).collect());
        }
    }
    if let Some(At { value, .. }) = &d.auto_merge {
        out.auto_merge = *value;
    }
    if let Some(At { value, span }) = &d.merge_strategy {
        match MergeStrategy::parse(value) {
            Some(s) => out.merge_strategy = s,
            None => r.error_hint(
                span,
                format!("`defaults.merge_strategy` must be one of \"merge\", \"squash\" or \"ff-only\", found \"{value}\""),
                "\"merge\" makes a merge commit, \"squash\" one commit with the plan's changes, \"ff-only\" only fast-forwards",
            ),
        }
    }
    if let Some(n) = at_least_one(r, "defaults.parallel", d.parallel.as_ref()) {
        out.parallel = n;
    }
    if let Some(n) = at_least_one(r, "defaults.parallel_tasks", d.parallel_tasks.as_ref()) {
        out.parallel_tasks = n;
    }
    if out.parallel > 1
        && out.parallel_tasks > 1
        && let Some(At { span, .. }) = &d.parallel_tasks
    {
        r.error_hint(
            span,
            both_parallel("`[defaults]`", out.parallel, out.parallel_tasks),
            PARALLEL_HINT,
        );
    }
    if let Some(t) = duration(r, "defaults.stuck_after", d.stuck_after.as_ref(), false) {
        out.stuck_after = Some(t);
    }
    if let Some(t) = duration(r, "defaults.grace", d.grace.as_ref(), true) {
        out.grace = t;
    }
    if let Some(t) = duration(r, "defaults.backoff", d.backoff.as_ref(), true) {
        out.backoff = t;
    }
    if let Some(argv) = argv(r, "defaults.setup", d.setup.as_ref()) {
        out.setup = Some(argv);
    }
    if let Some(paths) = rel_paths(r, root, "defaults.copy", d.copy.as_ref()) {
        out.copy = paths;
    }
    out.warm = super::paths::warm_paths(r, "defaults.warm", d.warm.as_ref());
    for (key, field, slot) in [
        ("worktree_root", &d.worktree_root, &mut out.worktree_root),
        ("state_dir", &d.state_dir, &mut out.state_dir),
        ("log_dir", &d.log_dir, &mut out.log_dir),
        ("templates", &d.templates, &mut out.templates),
    ] {
        if let Some(At { value, span }) = field {
            match inside_dir(Path::new(value)).filter(|p| !leaves_via_symlink(root, p)) {
                Some(p) if p.as_os_str().is_empty() => r.error(
                    span,
                    format!("`defaults.{key}` must name a directory inside the repository, not the repository itself"),
                ),
                Some(p) => *slot = p,
                None => r.error_hint(
                    span,
                    format!("`defaults.{key}` `{value}` escapes the repository"),
                    "use a relative path inside the repository, such as \".orch/state\"",
                ),
            }
        }
    }
    if let Some(e) = executor(r, "defaults.executor", d.executor.as_ref()) {
        out.executor = e;
    }
    out.check = argv(r, "defaults.check", d.check.as_ref());
    if let Some(b) = budget(r, "defaults.budget", d.budget.as_ref()) {
        out.budget = b;
    }
    if let Some(At { value, span }) = &d.remote {
        // A remote's name is a ref component: `refs/remotes/<name>/…`.
        match check_ref_name(value) {
            Ok(()) if !value.contains('/') => out.remote = value.clone(),
            _ => r.error_hint(
                span,
                format!("`defaults.remote` `{value}` is not a git remote name"),
                "name a remote of the repository, such as \"origin\" (`git remote -v` lists them)",
            ),
        }
    }
    if let Some(At { value, span }) = &d.ports {
        match u16::try_from(*value) {
            Ok(n) if (1..=1000).contains(&n) => out.ports = n,
            _ => r.error(
                span,
                format!("`defaults.ports` must be between 1 and 1000, found {value}"),
            ),
        }
    }
    if let Some(At { value, span }) = &d.branch_prefix {
        // The prefix is checked with a stand-in name; every full branch is checked again later.
        if value.is_empty() {
            out.branch_prefix = String::new();
        } else {
            match check_ref_name(&format!("{value}x")) {
                Ok(()) => out.branch_prefix = value.clone(),
                Err(why) => r.error(
                    span,
                    format!("`defaults.branch_prefix` `{value}` cannot begin a branch name: {why}"),
                ),
            }
        }
    }
    // The integration preview: a duration or "off"; by default 10 minutes with `verify`.
    out.integrate = out.verify.as_ref().map(|_| Duration::from_secs(600));
    if let Some(at @ At { value, .. }) = &d.integrate {
        out.integrate = if value.trim() == "off" {
            None
        } else {
            duration(r, "defaults.integrate", Some(at), true)
        };
    }
    if let Some(At { value, .. }) = &d.submodules {
        out.submodules = *value;
    }
    if let Some(At { value, .. }) = &d.integrate_feedback {
        out.integrate_feedback = *value;
    }
    out
}

fn known_agents_hint(agents: &BTreeMap<String, AgentSpec>) -> String {
    format!(
        "define it in an `[agents.NAME]` table, or use one of: {}",
        agents
            .keys()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn agents(raw: &RawManifest, r: &mut Reporter<'_>) -> BTreeMap<String, AgentSpec> {
    let mut agents = presets();
    for agent in &raw.agents {
        let name = &agent.name.value;
        let preset = agents.get(name).cloned();
        let mut ok = true;
        if name.is_empty() {
            r.error(&agent.name.span, "agent names must not be empty");
            ok = false;
        }
        let mode = match &agent.mode {
            None => preset.as_ref().map_or(AgentMode::Task, |p| p.mode),
            Some(At { value, span }) => {
                match AgentMode::parse(value) {
                    Some(m) => m,
                    None => {
                        r.error(
                        span,
                        format!("`agents.{name}.mode` must be \"task\" or \"plan\", found \"{value}\""),
                    );
                        ok = false;
                        AgentMode::Task
                    }
                }
            }
        };
        let command = match &agent.command {
            Some(At { value, span }) => {
                if value.is_empty() {
                    r.error_hint(
                        span,
                        format!("`agents.{name}.command` must not be empty"),
                        super::raw::ARGV_HINT,
                    );
                    ok = false;
                } else if value[0].value.trim().is_empty() {
                    r.error(
                        &value[0].span,
                        format!("the program of `agents.{name}.command` must not be empty"),
                    );
                    ok = false;
                }
                for arg in value {
                    if let Err(why) = parse_template(&arg.value) {
                        r.error(&arg.span, why);
                        ok = false;
                    }
                }
                let argv: Vec<String> = value.iter().map(|a| a.value.clone()).collect();
                // An argv known not to work with today's CLI: a warning with the fix.
                if let Some(cli) = super::agents::KnownCli::of(&argv) {
                    for p in cli.problems(&argv) {
                        r.warning_hint(
                            span,
                            format!("`agents.{name}.command` ({}): {}", cli.name(), p.message),
                            p.fix,
                        );
                    }
                }
                argv
            }
            None => match &preset {
                Some(p) => p.command.clone(),
                None if agent.keys.iter().any(|k| k == "command") => {
                    ok = false;
                    Vec::new()
                }
                None => {
                    r.error_hint(
                        &agent.name.span,
                        format!("agent `{name}` has no `command`"),
                        super::raw::ARGV_HINT,
                    );
                    ok = false;
                    Vec::new()
                }
            },
        };
        if ok {
            let executor = executor(
                r,
                &format!("agents.{name}.executor"),
                agent.executor.as_ref(),
            )
            .or(preset.as_ref().and_then(|p| p.executor));
            let report = match &agent.report {
                None => preset.as_ref().map_or(ReportMode::Exit, |p| p.report),
                Some(At { value, span }) => ReportMode::parse(value).unwrap_or_else(|| {
                    r.error_hint(
                        span,
                        format!("`agents.{name}.report` must be \"orch\" or \"exit\", found \"{value}\""),
                        "\"orch\": done only when the agent runs `orch task done`; \"exit\": exit status 0 counts as done too",
                    );
                    ReportMode::Exit
                }),
            };
            let stdin = match &agent.stdin {
                None => preset.as_ref().map_or(StdinMode::Null, |p| p.stdin),
                Some(At { value, span }) => StdinMode::parse(value).unwrap_or_else(|| {
                    r.error_hint(
                        span,
                        format!("`agents.{name}.stdin` must be \"null\" or \"prompt\", found \"{value}\""),
                        "\"prompt\": the prompt on the agent's standard input; \"null\": nothing (/dev/null)",
                    );
                    StdinMode::Null
                }),
            };
            agents.insert(
                name.clone(),
                AgentSpec {
                    command,
                    mode,
                    executor,
                    report,
                    sandbox: Default::default(),
                    stdin,
                },
            );
        } else {
            // Keep the name known so that plans naming it are not reported a second time.
            agents.insert(
                name.clone(),
                AgentSpec {
                    command: Vec::new(),
                    mode,
                    executor: None,
                    report: ReportMode::Exit,
                    sandbox: Default::default(),
                    stdin: StdinMode::Null,
                },
            );
        }
    }
    agents
}

fn plans(
    raw: &[RawPlan],
    root: &Path,
    defaults: &Defaults,
    agents: &BTreeMap<String, AgentSpec>,
    slurm: &SlurmOptions,
    r: &mut Reporter<'_>,
) -> Vec<PlanEntry> {
    let mut out: Vec<PlanEntry> = Vec::new();
    // name -> line of its first definition
    let mut seen: HashMap<String, usize> = HashMap::new();
    // branch -> (plan, line)
    let mut branches: HashMap<String, (String, usize)> = HashMap::new();
    // The depends_on spans, kept for the checks that need all plan names.
    let mut pending: Vec<(usize, Vec<At<String>>)> = Vec::new();

    for plan in raw {
        let Some(name) = &plan.name else {
            if plan.keys.iter().any(|k| k == "name") {
                continue;
            }
            r.error_hint(
                &plan.span,
                "this `[[plan]]` has no `name`",
                "add name = \"...\"",
            );
            continue;
        };
        let (line, _) = r.line_col(&name.span);
        let mut name_ok = true;
        if let Err(why) = check_plan_name(&name.value) {
            r.error(&name.span, why);
            name_ok = false;
        }
        if let Some(first) = seen.get(&name.value) {
            r.error(
                &name.span,
                format!(
                    "duplicate plan name `{}` (first defined at line {first})",
                    name.value
                ),
            );
            name_ok = false;
        } else {
            seen.insert(name.value.clone(), line);
        }

        let (file, abs_file) = match &plan.file {
            None => {
                if !plan.keys.iter().any(|k| k == "file") {
                    r.error(&name.span, format!("plan `{}` has no `file`", name.value));
                }
                (PathBuf::new(), PathBuf::new())
            }
            Some(At { value, span }) => {
                check_plan_file(value, span, root, r);
                let rel = inside_root(Path::new(value), root).unwrap_or_default();
                (PathBuf::from(value), root.join(rel))
            }
        };

        let priority = plan.priority.as_ref().map_or(0, |p| p.value);
        let parallel =
            at_least_one(r, "plan.parallel", plan.parallel.as_ref()).unwrap_or(defaults.parallel);
        let parallel_tasks = at_least_one(r, "plan.parallel_tasks", plan.parallel_tasks.as_ref())
            .unwrap_or(defaults.parallel_tasks);
        // Where both come from `[defaults]`, the error was reported there.
        if parallel > 1
            && parallel_tasks > 1
            && let Some(At { span, .. }) = plan.parallel_tasks.as_ref().or(plan.parallel.as_ref())
        {
            r.error_hint(
                span,
                both_parallel(&format!("plan `{}`", name.value), parallel, parallel_tasks),
                PARALLEL_HINT,
            );
        }
        let timeout =
            duration(r, "plan.timeout", plan.timeout.as_ref(), false).unwrap_or(defaults.timeout);
        let retries = match &plan.retries {
            None => defaults.retries,
            Some(At { value, span }) => u32::try_from(*value).unwrap_or_else(|_| {
                r.error(
                    span,
                    format!("`plan.retries` must be a non-negative integer, found {value}"),
                );
                defaults.retries
            }),
        };
        let setup = argv(r, "plan.setup", plan.setup.as_ref()).or_else(|| defaults.setup.clone());
        // `check = []` turns the default check off for the plan.
        let check = match &plan.check {
            Some(At { value, .. }) if value.is_empty() => None,
            Some(_) => argv(r, "plan.check", plan.check.as_ref()),
            None => defaults.check.clone(),
        };
        let plan_budget = budget(r, "plan.budget", plan.budget.as_ref()).unwrap_or_default();
        let sparse = super::paths::sparse_paths(r, plan.paths.as_ref());
        let mut warm = defaults.warm.clone();
        for w in super::paths::warm_paths(r, "plan.warm", plan.warm.as_ref()) {
            if !warm.iter().any(|d| d.path == w.path) {
                warm.push(w);
            }
        }
        let mut copy = defaults.copy.clone();
        for p in rel_paths(r, root, "plan.copy", plan.copy.as_ref()).unwrap_or_default() {
            if !copy.contains(&p) {
                copy.push(p);
            }
        }

        let agent = match &plan.agent {
            None => defaults.agent.clone(),
            Some(At { value, span }) => {
                if !agents.contains_key(value) {
                    r.error_hint(
                        span,
                        format!("plan `{}` names unknown agent `{value}`", name.value),
                        known_agents_hint(agents),
                    );
                }
                value.clone()
            }
        };

        let executor = executor(r, "plan.executor", plan.executor.as_ref())
            .or_else(|| agents.get(&agent).and_then(|a| a.executor))
            .unwrap_or(defaults.executor);
        let slurm = match &plan.slurm {
            Some(own) => slurm_options(r, "plan.slurm", own, slurm),
            None => slurm.clone(),
        };

        let (branch, branch_span) = match &plan.branch {
            Some(At { value, span }) => {
                if let Err(why) = check_ref_name(value) {
                    r.error(
                        span,
                        format!(
                            "branch `{value}` of plan `{}` is not valid: {why}",
                            name.value
                        ),
                    );
                }
                (value.clone(), span.clone())
            }
            None => {
                let full = format!("{}{}", defaults.branch_prefix, name.value);
                // An invalid name was reported already; its branch would only repeat that.
                if name_ok && let Err(why) = check_ref_name(&full) {
                    r.error(
                        &name.span,
                        format!(
                            "branch `{full}` of plan `{}` is not valid: {why}",
                            name.value
                        ),
                    );
                }
                (full, name.span.clone())
            }
        };
        if branch == defaults.target {
            r.error(
                &branch_span,
                format!(
                    "plan `{}` would run on branch `{branch}`, which is the target branch",
                    name.value
                ),
            );
        } else if let Some((other, other_line)) = branches.get(&branch) {
            if name_ok {
                r.error(
                    &branch_span,
                    format!(
                        "branch `{branch}` of plan `{}` is also the branch of plan `{other}` (line {other_line})",
                        name.value
                    ),
                );
            }
        } else {
            branches.insert(branch.clone(), (name.value.clone(), line));
        }

        let best_of = super::best_of::resolve(
            r,
            "plan",
            &plan.best_of,
            &defaults.best_of,
            agents,
            defaults.max_agents,
        );
        let attempts_span = plan
            .best_of
            .attempts
            .as_ref()
            .map_or(name.span.clone(), |a| a.span.clone());
        let agents_span = plan
            .best_of
            .agents
            .as_ref()
            .map_or(attempts_span.clone(), |a| a.span.clone());
        super::best_of::check_plan(
            r,
            &name.value,
            &best_of,
            (&agent, agents.get(&agent)),
            agents,
            executor,
            &attempts_span,
            &agents_span,
        );
        pending.push((
            out.len(),
            plan.depends_on
                .as_ref()
                .map(|d| d.value.clone())
                .unwrap_or_default(),
        ));
        out.push(PlanEntry {
            name: name.value.clone(),
            file,
            abs_file,
            priority,
            agent,
            branch,
            depends_on: Vec::new(),
            parallel,
            parallel_tasks,
            timeout,
            retries,
            setup,
            copy,
            warm,
            submodules: plan
                .submodules
                .as_ref()
                .map_or(defaults.submodules, |s| s.value),
            line,
            executor,
            slurm,
            check,
            budget: plan_budget,
            paths: sparse.iter().map(|p| p.dir.clone()).collect(),
            paths_at: sparse.iter().map(|p| (p.line, p.column)).collect(),
            protect: super::protect::globs(r, "plan.protect", plan.protect.as_ref())
                .or_else(|| defaults.protect.clone())
                .map(super::protect::Protect::new),
            best_of,
            resolve: None,
            resolve_verify: false,
        });
    }

    for (index, deps) in pending {
        let own = out[index].name.clone();
        let mut parsed = Vec::new();
        for dep in deps {
            let (line, column) = r.line_col(&dep.span);
            match parse_dependency(&dep.value) {
                Err(why) => r.error(&dep.span, why),
                Ok((plan, _)) if plan == own => {
                    r.error(&dep.span, format!("plan `{own}` depends on itself"));
                }
                Ok((plan, _)) if !seen.contains_key(&plan) => {
                    r.error(
                        &dep.span,
                        format!("plan `{own}` depends on unknown plan `{plan}`"),
                    );
                }
                Ok((plan, target)) => parsed.push(Dependency {
                    plan,
                    target,
                    line,
                    column,
                    raw: dep.value.clone(),
                }),
            }
        }
        out[index].depends_on = parsed;
    }
    out
}

/// The sandbox keys of `[defaults]` and of each agent, resolved into each agent's `sandbox`.
fn sandbox(
    raw: &RawManifest,
    defaults: &mut Defaults,
    agents: &mut BTreeMap<String, AgentSpec>,
    r: &mut Reporter<'_>,
) {
    let d = &raw.defaults;
    defaults.sandbox = super::sandbox::keys(
        r,
        "defaults",
        d.sandbox.as_ref(),
        d.sandbox_write.as_ref(),
        d.sandbox_deny_read.as_ref(),
        d.pass_env.as_ref(),
    );
    // `ORCH_SANDBOX` stands in for `[defaults] sandbox` where the manifest gives none; a value
    // orch does not know is an error, as the key's would be.
    if defaults.sandbox.mode.is_none()
        && let Some(v) = std::env::var_os(crate::agent_env::ORCH_SANDBOX)
    {
        let v = v.to_string_lossy();
        defaults.sandbox.mode = super::sandbox::SandboxMode::parse(&v);
        if defaults.sandbox.mode.is_none() {
            r.diagnostics.push(
                crate::diagnostic::Diagnostic::error(
                    r.path,
                    1,
                    format!(
                        "the environment variable `{}` must be \"auto\", \"on\" or \"off\", found \"{v}\"",
                        crate::agent_env::ORCH_SANDBOX
                    ),
                )
                .with_hint("unset it, or set `sandbox` in [defaults] (which it stands in for)"),
            );
        }
    }
    let mut own = BTreeMap::new();
    for a in &raw.agents {
        let ctx = format!("agents.{}", a.name.value);
        let keys = super::sandbox::keys(
            r,
            &ctx,
            a.sandbox.as_ref(),
            a.sandbox_write.as_ref(),
            a.sandbox_deny_read.as_ref(),
            a.pass_env.as_ref(),
        );
        own.insert(a.name.value.clone(), keys);
    }
    for (name, spec) in agents.iter_mut() {
        spec.sandbox = own
            .get(name)
            .cloned()
            .unwrap_or_default()
            .resolve(&defaults.sandbox);
    }
}

/// A `budget` key.
fn budget(
    r: &mut Reporter<'_>,
    ctx: &str,
    at: Option<&At<String>>,
) -> Option<super::budget::Budget> {
    let At { value, span } = at?;
    match super::budget::parse_budget(value) {
        Ok(b) => Some(b),
        Err(why) => {
            r.error(span, format!("`{ctx}`: {why}"));
            None
        }
    }
}
