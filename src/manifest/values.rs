//! Checks of single manifest values shared by `[defaults]`, `[slurm]` and plans: executor, Slurm
//! options, counts, durations and argv arrays.

use std::time::Duration;

use super::executor::{ExecutorKind, SlurmOptions};
use super::raw::{At, RawSlurm, Reporter};
use crate::duration::parse_duration;

/// An `executor` key: `local` or `slurm`.
pub(super) fn executor(
    r: &mut Reporter<'_>,
    ctx: &str,
    at: Option<&At<String>>,
) -> Option<ExecutorKind> {
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
pub(super) fn slurm_options(
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
            if let Some(why) = super::executor::check_sbatch_arg(&arg.value) {
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
pub(super) const PARALLEL_HINT: &str = "`parallel` lets agents share the plan's worktree, `parallel_tasks` gives each task a worktree of its own: choose one";

pub(super) fn both_parallel(whose: &str, parallel: usize, parallel_tasks: usize) -> String {
    format!(
        "{whose} sets both `parallel` ({parallel}) and `parallel_tasks` ({parallel_tasks}) above 1"
    )
}

pub(super) fn at_least_one(r: &mut Reporter<'_>, ctx: &str, at: Option<&At<i64>>) -> Option<usize> {
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
pub(super) fn duration(
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
pub(super) fn argv(
    r: &mut Reporter<'_>,
    ctx: &str,
    at: Option<&At<Vec<At<String>>>>,
) -> Option<Vec<String>> {
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
