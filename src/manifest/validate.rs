//! Semantic checks: from [`RawManifest`] to [`Manifest`], reporting every problem found.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::agents::{AgentMode, AgentSpec, ReportMode, StdinMode, parse_template, presets};
use super::executor::SlurmOptions;
use super::model::{Defaults, Dependency, Manifest, MergeStrategy, PlanEntry, parse_dependency};
use super::names::{check_plan_name, check_ref_name};
use super::paths::{check_plan_file, inside_dir, inside_root, leaves_via_symlink, rel_paths};
use super::raw::{RawManifest, RawPlan};
use super::spans::{At, Bad, Reporter, Spelled};
use super::values::{
    LOG_MAX_MIN, PARALLEL_HINT, argv, at_least_one, both_parallel, budget, duration, executor,
    image, non_negative, size, size_limits, slurm_options, unknown_agent,
};

/// Builds the manifest from its raw form; problems go to `r`. The result is only meaningful when
/// `r` collected no errors.
pub(crate) fn validate(raw: RawManifest, root: &Path, r: &mut Reporter<'_>) -> Manifest {
    let mut agents = agents(&raw, r);
    super::fallback::agents(&raw, &mut agents, r);
    let mut defaults = defaults(&raw, root, &agents, r);
    super::sandbox::resolve_all(&raw, &mut defaults, &mut agents, r);
    defaults.protect = super::protect::globs(r, "defaults.protect", raw.defaults.protect.as_ref());
    defaults.allow_protected = super::protect::globs(
        r,
        "defaults.allow_protected",
        raw.defaults.allow_protected.as_ref(),
    )
    .unwrap_or_default();
    let slurm = slurm_options(r, "slurm", &raw.slurm, &SlurmOptions::default());
    let slurm_poll = r.check(raw.slurm.poll.as_ref(), duration("slurm.poll", false));
    let slurm_poll = slurm_poll.unwrap_or(super::model::DEFAULT_SLURM_POLL);
    defaults.best_of = super::best_of::resolve(
        r,
        "defaults",
        &raw.defaults.best_of(),
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
    defaults.verify_all = super::repos::verify_all(r, &raw.defaults.verify_all);
    let repos = super::repos::repos(&raw, root, &defaults.target, r);
    let known = Repos {
        good: &repos,
        written: super::repos::raw_names(&raw),
    };
    defaults.review =
        super::review::resolve(r, "defaults", &raw.defaults.review(), &Default::default());
    let mut plans = plans(&raw.plan, root, &defaults, &agents, &slurm, &known, r);
    super::resolve::plans(&raw.plan, &mut plans, &defaults, &agents, r);
    super::fallback::plans(&raw.plan, &mut plans, &agents, r);
    super::repos::check_plans(&raw.plan, &mut plans, r);
    let notify = super::notify::hooks(&raw.notify, r);
    let hosts = super::hosts::hosts(&raw.host, r);
    super::hosts::plans(&raw, &hosts, &mut plans, r);
    let services = super::services::services(&raw.service, r);
    let telemetry = super::telemetry::table(&raw.telemetry, r);
    super::services::plans(&raw, &services, defaults.ports, &agents, &mut plans, r);
    super::limits::plans(&raw, &mut plans, r);
    let mut manifest = Manifest {
        path: r.path.to_path_buf(),
        root: root.to_path_buf(),
        defaults,
        agents,
        plans,
        slurm_poll,
        warnings: Vec::new(),
        notify,
        hosts,
        repos,
        services,
        telemetry,
    };
    // What no confined process reads, whatever `sandbox_deny_read` says: every run of an
    // agent's code (an attempt, a check, `setup`, `verify`, a hook, a resolver) is confined by
    // its agent's `sandbox`.
    let hidden = manifest.hidden_from_agents();
    for spec in manifest.agents.values_mut() {
        for p in &hidden {
            if !spec.sandbox.deny_read.contains(p) {
                spec.sandbox.deny_read.push(p.clone());
            }
        }
    }
    manifest
}

/// The `[[repo]]` tables: those that are valid, and every name written (a plan naming a bad one
/// is not reported again).
struct Repos<'a> {
    good: &'a [super::model::RepoEntry],
    written: std::collections::BTreeSet<String>,
}

fn defaults(
    raw: &RawManifest,
    root: &Path,
    agents: &BTreeMap<String, AgentSpec>,
    r: &mut Reporter<'_>,
) -> Defaults {
    let d = &raw.defaults;
    let mut out = Defaults::default();
    r.set(&mut out.target, d.target.as_ref(), |v| {
        check_ref_name(v).map(|()| v.clone()).map_err(|why| {
            Bad::new(format!(
                "`defaults.target` `{v}` is not a valid branch name: {why}"
            ))
        })
    });
    let max_agents = at_least_one("defaults.max_agents");
    r.set(&mut out.max_agents, d.max_agents.as_ref(), max_agents);
    r.set(&mut out.agent, d.agent.as_ref(), |v| {
        if agents.contains_key(v) {
            return Ok(v.clone());
        }
        let what = format!("`defaults.agent` names unknown agent `{v}`");
        Err(unknown_agent(agents, what, ""))
    });
    let timeout = duration("defaults.timeout", false);
    r.set(&mut out.timeout, d.timeout.as_ref(), timeout);
    r.set(
        &mut out.retries,
        d.retries.as_ref(),
        non_negative("defaults.retries"),
    );
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
    out.auto_merge = d.auto_merge.as_ref().map_or(out.auto_merge, |a| a.value);
    r.set(&mut out.merge_strategy, d.merge_strategy.as_ref(), |v| {
        MergeStrategy::parse(v).ok_or_else(|| {
            Bad::new(format!("`defaults.merge_strategy` must be one of \"merge\", \"squash\" or \"ff-only\", found \"{v}\""))
                .hint("\"merge\" makes a merge commit, \"squash\" one commit with the plan's changes, \"ff-only\" only fast-forwards")
        })
    });
    r.set(
        &mut out.parallel,
        d.parallel.as_ref(),
        at_least_one("defaults.parallel"),
    );
    let parallel_tasks = at_least_one("defaults.parallel_tasks");
    r.set(
        &mut out.parallel_tasks,
        d.parallel_tasks.as_ref(),
        parallel_tasks,
    );
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
    let stuck_after = duration("defaults.stuck_after", false);
    out.stuck_after = r.check(d.stuck_after.as_ref(), stuck_after);
    r.set(
        &mut out.grace,
        d.grace.as_ref(),
        duration("defaults.grace", true),
    );
    r.set(
        &mut out.backoff,
        d.backoff.as_ref(),
        duration("defaults.backoff", true),
    );
    r.set(
        &mut out.log_max,
        d.log_max.as_ref(),
        size("defaults.log_max", LOG_MAX_MIN),
    );
    out.size_limits = size_limits(
        r,
        "defaults",
        (&d.max_file_size, &d.max_change_size, &d.max_change_files),
        out.size_limits,
    );
    out.setup = argv(r, "defaults.setup", d.setup.as_ref());
    out.copy = rel_paths(r, root, "defaults.copy", d.copy.as_ref()).unwrap_or_default();
    out.warm = super::paths::warm_paths(r, "defaults.warm", d.warm.as_ref());
    for (key, field, slot) in [
        ("worktree_root", &d.worktree_root, &mut out.worktree_root),
        ("state_dir", &d.state_dir, &mut out.state_dir),
        ("log_dir", &d.log_dir, &mut out.log_dir),
        ("templates", &d.templates, &mut out.templates),
    ] {
        r.set(slot, field.as_ref(), |v| {
            match inside_dir(Path::new(v)).filter(|p| !leaves_via_symlink(root, p)) {
                Some(p) if p.as_os_str().is_empty() => Err(Bad::new(format!(
                    "`defaults.{key}` must name a directory inside the repository, not the repository itself"
                ))),
                Some(p) => Ok(p),
                None => Err(Bad::new(format!("`defaults.{key}` `{v}` escapes the repository"))
                    .hint("use a relative path inside the repository, such as \".orch/state\"")),
            }
        });
    }
    r.set(
        &mut out.executor,
        d.executor.as_ref(),
        executor("defaults.executor"),
    );
    out.image = r.check(d.image.as_ref(), image("defaults.image"));
    out.check = argv(r, "defaults.check", d.check.as_ref());
    r.set(
        &mut out.budget,
        d.budget.as_ref(),
        budget("defaults.budget"),
    );
    r.set(&mut out.remote, d.remote.as_ref(), |v| {
        // A remote's name is a ref component: `refs/remotes/<name>/…`.
        match check_ref_name(v) {
            Ok(()) if !v.contains('/') => Ok(v.clone()),
            _ => Err(Bad::new(format!("`defaults.remote` `{v}` is not a git remote name"))
                .hint("name a remote of the repository, such as \"origin\" (`git remote -v` lists them)")),
        }
    });
    r.set(&mut out.ports, d.ports.as_ref(), |&v| {
        match u16::try_from(v) {
            Ok(n) if (1..=1000).contains(&n) => Ok(n),
            _ => Err(Bad::new(format!(
                "`defaults.ports` must be between 1 and 1000, found {v}"
            ))),
        }
    });
    // The prefix is checked with a stand-in name; every full branch is checked again later.
    r.set(&mut out.branch_prefix, d.branch_prefix.as_ref(), |v| {
        check_ref_name(&format!("{v}x"))
            .map(|()| v.clone())
            .map_err(|why| {
                Bad::new(format!(
                    "`defaults.branch_prefix` `{v}` cannot begin a branch name: {why}"
                ))
            })
    });
    // The integration preview: a duration or "off"; by default 10 minutes with `verify`.
    out.integrate = out.verify.as_ref().map(|_| Duration::from_secs(600));
    let integrate = duration("defaults.integrate", true);
    r.set(&mut out.integrate, d.integrate.as_ref(), |v| {
        match v.trim() {
            "off" => Ok(None),
            _ => integrate(v).map(Some),
        }
    });
    out.submodules = d.submodules.as_ref().map_or(out.submodules, |a| a.value);
    let feedback = d.integrate_feedback.as_ref();
    out.integrate_feedback = feedback.map_or(out.integrate_feedback, |a| a.value);
    out
}

fn agents(raw: &RawManifest, r: &mut Reporter<'_>) -> BTreeMap<String, AgentSpec> {
    let mut agents = presets();
    for agent in raw.agents.values() {
        let name = &agent.name.value;
        let preset = agents.get(name).cloned();
        let mut ok = true;
        if name.is_empty() {
            r.error(&agent.name.span, "agent names must not be empty");
            ok = false;
        }
        let mode = r.check(agent.mode.as_ref(), |v| {
            AgentMode::parse(v).ok_or_else(|| {
                Bad::new(format!(
                    "`agents.{name}.mode` must be \"task\" or \"plan\", found \"{v}\""
                ))
            })
        });
        let mode = match mode {
            Some(m) => m,
            None if agent.mode.is_some() => {
                ok = false;
                AgentMode::Task
            }
            None => preset.as_ref().map_or(AgentMode::Task, |p| p.mode),
        };
        let command = match &agent.command {
            Some(at) => {
                let ctx = format!("agents.{name}.command");
                let checked = argv(r, &ctx, Some(at));
                for arg in at.value.0.iter().flatten() {
                    if let Err(why) = parse_template(&arg.value) {
                        r.error(&arg.span, why);
                        ok = false;
                    }
                }
                let argv = checked.unwrap_or_else(|| {
                    ok = false;
                    Vec::new()
                });
                // An argv known not to work with today's CLI: a warning with the fix.
                if let Some(cli) = super::agents::KnownCli::of(&argv) {
                    for p in cli.problems(&argv) {
                        r.warning_hint(
                            &at.span,
                            format!("`{ctx}` ({}): {}", cli.name(), p.message),
                            p.fix,
                        );
                    }
                }
                argv
            }
            None => match &preset {
                Some(p) => p.command.clone(),
                None => {
                    r.error_hint(
                        &agent.name.span,
                        format!("agent `{name}` has no `command`"),
                        super::spans::ARGV_HINT,
                    );
                    ok = false;
                    Vec::new()
                }
            },
        };
        // Not valid: the name stays known, so that plans naming it are not reported again.
        let mut spec = AgentSpec {
            command: Vec::new(),
            mode,
            executor: None,
            image: None,
            report: ReportMode::Exit,
            sandbox: Default::default(),
            stdin: StdinMode::Null,
            input: Default::default(),
            fallback: Vec::new(),
        };
        if ok {
            let ctx = format!("agents.{name}.executor");
            let executor = r.check(agent.executor.as_ref(), executor(&ctx));
            spec.executor = executor.or(preset.as_ref().and_then(|p| p.executor));
            spec.image = r.check(agent.image.as_ref(), image(&format!("agents.{name}.image")));
            spec.report = preset.as_ref().map_or(ReportMode::Exit, |p| p.report);
            r.set(&mut spec.report, agent.report.as_ref(), |v| {
                ReportMode::parse(v).ok_or_else(|| {
                    Bad::new(format!("`agents.{name}.report` must be \"orch\" or \"exit\", found \"{v}\""))
                        .hint("\"orch\": done only when the agent runs `orch task done`; \"exit\": exit status 0 counts as done too")
                })
            });
            spec.stdin = preset.as_ref().map_or(StdinMode::Null, |p| p.stdin);
            r.set(&mut spec.stdin, agent.stdin.as_ref(), |v| {
                StdinMode::parse(v).ok_or_else(|| {
                    Bad::new(format!("`agents.{name}.stdin` must be \"null\" or \"prompt\", found \"{v}\""))
                        .hint("\"prompt\": the prompt on the agent's standard input; \"null\": nothing (/dev/null)")
                })
            });
            spec.command = command;
        }
        agents.insert(name.clone(), spec);
    }
    agents
}

fn plans(
    raw: &[At<RawPlan>],
    root: &Path,
    defaults: &Defaults,
    agents: &BTreeMap<String, AgentSpec>,
    slurm: &SlurmOptions,
    repos: &Repos<'_>,
    r: &mut Reporter<'_>,
) -> Vec<PlanEntry> {
    let mut out: Vec<PlanEntry> = Vec::new();
    // name -> line of its first definition
    let mut seen: HashMap<String, usize> = HashMap::new();
    // (repository, branch) -> (plan, line)
    let mut branches: HashMap<(Option<String>, String), (String, usize)> = HashMap::new();
    // The depends_on spans, kept for the checks that need all plan names.
    let mut pending: Vec<(usize, Vec<At<String>>)> = Vec::new();

    for At {
        value: plan,
        span: plan_span,
    } in raw
    {
        let Some(name) = &plan.name else {
            r.error_hint(
                plan_span,
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
                r.error(&name.span, format!("plan `{}` has no `file`", name.value));
                (PathBuf::new(), PathBuf::new())
            }
            Some(At { value, span }) => {
                check_plan_file(value, span, root, r);
                let rel = inside_root(Path::new(value), root).unwrap_or_default();
                (PathBuf::from(value), root.join(rel))
            }
        };

        let format = plan.format.as_ref().and_then(|f| {
            let line = r.line_col(&f.span).0;
            r.check(Some(f), super::values::plan_format)
                .map(|v| (v, line))
        });
        let priority = plan.priority.as_ref().map_or(0, |p| p.value);
        let parallel = r.check(plan.parallel.as_ref(), at_least_one("plan.parallel"));
        let parallel = parallel.unwrap_or(defaults.parallel);
        let parallel_tasks = at_least_one("plan.parallel_tasks");
        let parallel_tasks = r.check(plan.parallel_tasks.as_ref(), parallel_tasks);
        let parallel_tasks = parallel_tasks.unwrap_or(defaults.parallel_tasks);
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
        let timeout = r.check(plan.timeout.as_ref(), duration("plan.timeout", false));
        let timeout = timeout.unwrap_or(defaults.timeout);
        let retries = r.check(plan.retries.as_ref(), non_negative("plan.retries"));
        let retries = retries.unwrap_or(defaults.retries);
        let setup = argv(r, "plan.setup", plan.setup.as_ref()).or_else(|| defaults.setup.clone());
        // `check = []` turns the default check off for the plan.
        let check = match &plan.check {
            Some(At { value, .. }) if value.0.as_ref().is_some_and(Vec::is_empty) => None,
            Some(_) => argv(r, "plan.check", plan.check.as_ref()),
            None => defaults.check.clone(),
        };
        let plan_budget = r.check(plan.budget.as_ref(), budget("plan.budget"));
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
                    let what = format!("plan `{}` names unknown agent `{value}`", name.value);
                    r.bad(span, unknown_agent(agents, what, ""));
                }
                value.clone()
            }
        };

        let executor = r
            .check(plan.executor.as_ref(), executor("plan.executor"))
            .or_else(|| agents.get(&agent).and_then(|a| a.executor))
            .unwrap_or(defaults.executor);
        let image = r
            .check(plan.image.as_ref(), image("plan.image"))
            .or_else(|| agents.get(&agent).and_then(|a| a.image.clone()))
            .or_else(|| defaults.image.clone());
        let slurm = match &plan.slurm {
            Some(own) => slurm_options(r, "plan.slurm", own, slurm),
            None => slurm.clone(),
        };

        let repo = super::repos::plan_repo(
            r,
            &name.value,
            plan.repo.as_ref(),
            repos.good,
            &repos.written,
        );
        let target = repo
            .as_ref()
            .and_then(|n| repos.good.iter().find(|x| &x.name == n))
            .map_or(defaults.target.as_str(), |x| x.target.as_str());
        // Of a branch named after an invalid plan name, that name was reported already.
        let (branch, branch_span, checked) = match &plan.branch {
            Some(At { value, span }) => (value.clone(), span.clone(), true),
            None => {
                let full = format!("{}{}", defaults.branch_prefix, name.value);
                (full, name.span.clone(), name_ok)
            }
        };
        if checked && let Err(why) = check_ref_name(&branch) {
            let what = format!(
                "branch `{branch}` of plan `{}` is not valid: {why}",
                name.value
            );
            r.error(&branch_span, what);
        }
        if branch == target {
            r.error(
                &branch_span,
                format!(
                    "plan `{}` would run on branch `{branch}`, which is the target branch",
                    name.value
                ),
            );
        } else if let Some((other, other_line)) = branches.get(&(repo.clone(), branch.clone())) {
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
            branches.insert((repo.clone(), branch.clone()), (name.value.clone(), line));
        }

        let best_of = super::best_of::resolve(
            r,
            "plan",
            &plan.best_of(),
            &defaults.best_of,
            agents,
            defaults.max_agents,
        );
        let attempts_span = plan
            .attempts
            .as_ref()
            .map_or(name.span.clone(), |a| a.span.clone());
        let agents_span = plan
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
        // A container plan's tasks run in its one container, side by side in it at most
        // (`parallel`): task worktrees (`parallel_tasks` above 1) would be made, and the plan's
        // `setup` run in them, on this machine, over the agent's committed code.
        if executor == super::executor::ExecutorKind::Container && parallel_tasks > 1 {
            let span = plan
                .parallel_tasks
                .as_ref()
                .map_or(name.span.clone(), |p| p.span.clone());
            r.error_hint(
                &span,
                format!(
                    "plan `{}` runs in a container (`executor = \"container\"`) with `parallel_tasks = {parallel_tasks}`, but a container plan's tasks run in its one container: task worktrees would be made, and its `setup` run in them, on this machine",
                    name.value
                ),
                "set `parallel_tasks = 1` for this plan (`parallel` runs tasks side by side in its container)",
            );
        }
        // A plan-mode agent runs only here or in a Slurm job: where else it cannot follow its plan.
        let plan_mode_elsewhere = match executor {
            super::executor::ExecutorKind::Ssh => Some(
                "on a `[[host]]` (`executor = \"ssh\"`), but a plan-mode agent runs only here or in a Slurm job: on a host, `orch next` does not see the tasks it reported",
            ),
            super::executor::ExecutorKind::Container => Some(
                "in a container (`executor = \"container\"`), but a plan-mode agent runs only here or in a Slurm job: in a container, `orch next` cannot read the plans (plans.toml and the plan files are not mounted)",
            ),
            _ => None,
        };
        if let Some(why) = plan_mode_elsewhere
            && agents
                .get(&agent)
                .is_some_and(|a| a.mode == AgentMode::Plan)
        {
            let span = plan
                .executor
                .as_ref()
                .map_or(name.span.clone(), |e| e.span.clone());
            r.error_hint(
                &span,
                format!(
                    "plan `{}` runs its plan-mode agent `{agent}` {why}",
                    name.value
                ),
                "give this plan a task-mode agent (`mode = \"task\"`), or run it with `executor = \"local\"` or `\"slurm\"`",
            );
        }
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
            image,
            slurm,
            check,
            budget: plan_budget.unwrap_or_default(),
            paths: sparse.iter().map(|p| p.dir.clone()).collect(),
            paths_at: sparse.iter().map(|p| (p.line, p.column)).collect(),
            protect: super::protect::globs(r, "plan.protect", plan.protect.as_ref())
                .or_else(|| defaults.protect.clone())
                .map(super::protect::Protect::new),
            allow_protected: super::protect::allowed(
                &defaults.allow_protected,
                super::protect::globs(r, "plan.allow_protected", plan.allow_protected.as_ref()),
            ),
            best_of,
            resolve: None,
            resolve_verify: false,
            hosts: Vec::new(),
            repo,
            land_with: Vec::new(),
            review: super::review::resolve(r, "plan", &plan.review(), &defaults.review),
            fallback: Vec::new(),
            format,
            services: Vec::new(),
            limits: Default::default(),
            size_limits: size_limits(
                r,
                "plan",
                (
                    &plan.max_file_size,
                    &plan.max_change_size,
                    &plan.max_change_files,
                ),
                defaults.size_limits,
            ),
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
                // A container plan's work is merged into the plans that build on it: one that
                // runs anywhere but in a container would run that code outside one (its check,
                // its setup, its agent).
                Ok((plan, _))
                    if out[index].executor != super::executor::ExecutorKind::Container
                        && out.iter().any(|p| {
                            p.name == plan && p.executor == super::executor::ExecutorKind::Container
                        }) =>
                {
                    r.error_hint(
                        &dep.span,
                        format!(
                            "plan `{own}` depends on `{plan}`, which runs in a container, but `{own}` runs {}: `{plan}`'s work is merged into `{own}`'s worktree, and its code would run outside a container (in `{own}`'s check, setup and agent)",
                            match out[index].executor {
                                super::executor::ExecutorKind::Ssh => "on a `[[host]]`",
                                super::executor::ExecutorKind::Slurm => "in a Slurm job",
                                _ => "on this machine",
                            }
                        ),
                        format!("run `{own}` in a container too (`executor = \"container\"`), or `{plan}` outside one"),
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
