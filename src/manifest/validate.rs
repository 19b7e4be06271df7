//! Semantic checks: from [`RawManifest`] to [`Manifest`], reporting every problem found.

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::agents::{AgentMode, AgentSpec, parse_template, presets};
use super::duration::parse_duration;
use super::model::{Defaults, Dependency, Manifest, MergeStrategy, PlanEntry, parse_dependency};
use super::names::{check_plan_name, check_ref_name};
use super::raw::{At, RawManifest, RawPlan, RawSlurm, Reporter};
use crate::executor::{ExecutorKind, SlurmOptions};

/// Builds the manifest from its raw form; problems go to `r`. The result is only meaningful when
/// `r` collected no errors.
pub fn validate(raw: RawManifest, root: &Path, r: &mut Reporter<'_>) -> Manifest {
    let agents = agents(&raw, r);
    let defaults = defaults(&raw, root, &agents, r);
    let slurm = slurm_options(r, "slurm", &raw.slurm, &SlurmOptions::default());
    let slurm_poll = duration(r, "slurm.poll", raw.slurm.poll.as_ref(), false)
        .unwrap_or(super::model::DEFAULT_SLURM_POLL);
    let plans = plans(&raw.plans, root, &defaults, &agents, &slurm, r);
    Manifest {
        path: r.path.to_path_buf(),
        root: root.to_path_buf(),
        defaults,
        agents,
        plans,
        slurm_poll,
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
    out
}

/// An `executor` key: `local` or `slurm`.
fn executor(r: &mut Reporter<'_>, ctx: &str, at: Option<&At<String>>) -> Option<ExecutorKind> {
    let At { value, span } = at?;
    let parsed = ExecutorKind::parse(value);
    if parsed.is_none() {
        r.error_hint(
            span,
            format!("`{ctx}` must be \"local\" or \"slurm\", found \"{value}\""),
            "\"local\" runs agents as processes of `orch up`, \"slurm\" as Slurm batch jobs (see `[slurm]`)",
        );
    }
    parsed
}

/// A `[slurm]` table (`ctx` = `slurm`) or a plan's `slurm` table over `base`.
fn slurm_options(
    r: &mut Reporter<'_>,
    ctx: &str,
    raw: &RawSlurm,
    base: &SlurmOptions,
) -> SlurmOptions {
    let mut out = base.clone();
    let name_like = |v: &str| {
        !v.is_empty()
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ','))
    };
    for (key, at, slot) in [
        ("partition", &raw.partition, &mut out.partition),
        ("account", &raw.account, &mut out.account),
    ] {
        if let Some(At { value, span }) = at {
            if name_like(value) {
                *slot = Some(value.clone());
            } else {
                r.error(
                    span,
                    format!("`{ctx}.{key}` \"{value}\" is not a Slurm {key} name (letters, digits, `_`, `-`, `.`, `,`)"),
                );
            }
        }
    }
    if let Some(At { value, span }) = &raw.time_limit {
        match parse_duration(value) {
            Ok(t) if t >= Duration::from_secs(60) => out.time_limit = Some(t),
            Ok(_) => r.error_hint(
                span,
                format!("`{ctx}.time_limit` \"{value}\" is under a minute"),
                "Slurm time limits are whole minutes: write \"1m\" or more (it is rounded up)",
            ),
            Err(why) => r.error(span, format!("`{ctx}.time_limit`: {why}")),
        }
    }
    if let Some(At { value, span }) = &raw.cpus {
        match u32::try_from(*value) {
            Ok(n) if n >= 1 => out.cpus = Some(n),
            _ => r.error(
                span,
                format!("`{ctx}.cpus` must be at least 1, found {value}"),
            ),
        }
    }
    if let Some(At { value, span }) = &raw.memory {
        let digits = value.trim_end_matches(['K', 'M', 'G', 'T']);
        let one_suffix = value.len() - digits.len() <= 1;
        if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) && one_suffix {
            out.memory = Some(value.clone());
        } else {
            r.error_hint(
                span,
                format!("`{ctx}.memory` \"{value}\" is not a Slurm memory size"),
                "write a number with an optional K, M, G or T suffix, such as \"8G\" (megabytes without one)",
            );
        }
    }
    if let Some(At { value, .. }) = &raw.sbatch_args {
        let mut ok = true;
        if let Some(first) = value.first()
            && !first.value.starts_with('-')
        {
            r.error_hint(
                &first.span,
                format!(
                    "`{ctx}.sbatch_args` must begin with an option, found \"{}\"",
                    first.value
                ),
                "sbatch_args is an argv of options: [\"--qos=high\", \"--constraint=avx2\"]",
            );
            ok = false;
        }
        for arg in value {
            if let Some(why) = crate::executor::check_sbatch_arg(&arg.value) {
                r.error(
                    &arg.span,
                    format!(
                        "`{ctx}.sbatch_args` element \"{}\" {why}",
                        arg.value.escape_debug()
                    ),
                );
                ok = false;
            }
        }
        if ok {
            out.sbatch_args = value.iter().map(|a| a.value.clone()).collect();
        }
    }
    out
}

/// An integer key that must be at least 1.
const PARALLEL_HINT: &str = "`parallel` lets agents share the plan's worktree, `parallel_tasks` gives each task a worktree of its own: choose one";

fn both_parallel(whose: &str, parallel: usize, parallel_tasks: usize) -> String {
    format!(
        "{whose} sets both `parallel` ({parallel}) and `parallel_tasks` ({parallel_tasks}) above 1"
    )
}

fn at_least_one(r: &mut Reporter<'_>, ctx: &str, at: Option<&At<i64>>) -> Option<usize> {
    let At { value, span } = at?;
    match usize::try_from(*value) {
        Ok(n) if n >= 1 => Some(n),
        _ => {
            r.error(span, format!("`{ctx}` must be at least 1, found {value}"));
            None
        }
    }
}

/// A duration key (`"90s"`, `"2h"`); zero only where `zero_ok`.
fn duration(
    r: &mut Reporter<'_>,
    ctx: &str,
    at: Option<&At<String>>,
    zero_ok: bool,
) -> Option<Duration> {
    let At { value, span } = at?;
    match parse_duration(value) {
        Ok(t) if t > Duration::ZERO || zero_ok => Some(t),
        Ok(_) => {
            r.error(span, format!("`{ctx}` must be greater than zero"));
            None
        }
        Err(why) => {
            r.error(span, format!("`{ctx}`: {why}"));
            None
        }
    }
}

/// An argv key (`setup`): a non-empty array whose program is not empty.
fn argv(r: &mut Reporter<'_>, ctx: &str, at: Option<&At<Vec<At<String>>>>) -> Option<Vec<String>> {
    let At { value, span } = at?;
    match value.first() {
        None => {
            r.error_hint(
                span,
                format!("`{ctx}` must not be empty"),
                super::raw::ARGV_HINT,
            );
            None
        }
        Some(first) if first.value.trim().is_empty() => {
            r.error(
                &first.span,
                format!("the program of `{ctx}` must not be empty"),
            );
            None
        }
        Some(_) => Some(value.iter().map(|a| a.value.clone()).collect()),
    }
}

/// A list of paths inside the repository (`copy`).
fn rel_paths(
    r: &mut Reporter<'_>,
    root: &Path,
    ctx: &str,
    at: Option<&At<Vec<At<String>>>>,
) -> Option<Vec<PathBuf>> {
    let At { value, .. } = at?;
    let mut out = Vec::new();
    let mut ok = true;
    for item in value {
        match inside_dir(Path::new(&item.value)) {
            Some(p) if !p.as_os_str().is_empty() && !leaves_via_symlink(root, &p) => out.push(p),
            _ => {
                r.error_hint(
                    &item.span,
                    format!(
                        "`{ctx}` entry `{}` is not a path inside the repository",
                        item.value
                    ),
                    "give a relative path such as \".env\"",
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
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
                value.iter().map(|a| a.value.clone()).collect()
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
            agents.insert(
                name.clone(),
                AgentSpec {
                    command,
                    mode,
                    executor,
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
            line,
            executor,
            slurm,
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

fn check_plan_file(value: &str, span: &std::ops::Range<usize>, root: &Path, r: &mut Reporter<'_>) {
    if value.is_empty() {
        r.error(span, "plan file must not be empty");
        return;
    }
    let Some(rel) = inside_root(Path::new(value), root) else {
        r.error_hint(
            span,
            format!("plan file `{value}` is outside the manifest's directory"),
            "plan files must live in the repository; give a path relative to plans.toml",
        );
        return;
    };
    let abs = root.join(&rel);
    if !abs.exists() {
        r.error(span, format!("plan file `{value}` does not exist"));
        return;
    }
    if !abs.is_file() {
        r.error(span, format!("plan file `{value}` is not a file"));
        return;
    }
    // A symlink must not lead out of the repository either.
    if let (Ok(real), Ok(real_root)) = (abs.canonicalize(), root.canonicalize())
        && !real.starts_with(&real_root)
    {
        r.error(
            span,
            format!("plan file `{value}` resolves to a path outside the manifest's directory"),
        );
    }
}

/// Whether `rel` (already inside `root` lexically) leads out of `root` through a symlink: its
/// deepest existing ancestor, resolved, is not inside `root` resolved. A root that cannot be
/// resolved (it does not exist) has nothing to follow.
fn leaves_via_symlink(root: &Path, rel: &Path) -> bool {
    let Ok(real_root) = root.canonicalize() else {
        return false;
    };
    let full = root.join(rel);
    full.ancestors()
        .take_while(|a| a.starts_with(root))
        .find(|a| std::fs::symlink_metadata(a).is_ok())
        .and_then(|a| a.canonicalize().ok())
        .is_some_and(|real| !real.starts_with(&real_root))
}

/// `p` made relative to `root` and normalized, or `None` when it leads outside `root`.
fn inside_root(p: &Path, root: &Path) -> Option<PathBuf> {
    if p.is_absolute() {
        let rel = p
            .strip_prefix(root)
            .ok()
            .map(Path::to_path_buf)
            .or_else(|| {
                let real_root = root.canonicalize().ok()?;
                p.strip_prefix(real_root).ok().map(Path::to_path_buf)
            })?;
        inside_dir(&rel)
    } else {
        inside_dir(p)
    }
}

/// A relative path normalized lexically (`.` dropped, `..` applied), or `None` when it is absolute
/// or climbs above its starting directory.
pub fn inside_dir(p: &Path) -> Option<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(s) => parts.push(s),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.iter().collect())
}
