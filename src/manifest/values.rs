//! Checks of single manifest values shared by `[defaults]`, `[slurm]` and plans: executor, Slurm
//! options, counts, durations, budgets, argv arrays, an agent's name the manifest does not know.
//! Most are functions from the value as written to the typed value or what is wrong with it
//! ([`Bad`]), for [`Reporter::check`].

use std::collections::BTreeMap;
use std::time::Duration;

use super::agents::AgentSpec;
use super::budget::{Budget, parse_budget};
use super::executor::{ExecutorKind, SlurmOptions};
use super::raw::RawSlurm;
use super::spans::{ARGV_HINT, Argv, At, Bad, Reporter, Spelled};
use crate::duration::parse_duration;

/// An `executor` key: `local` or `slurm`.
pub(super) fn executor(ctx: &str) -> impl Fn(&String) -> Result<ExecutorKind, Bad> {
    move |v| {
        ExecutorKind::parse(v).ok_or_else(|| {
            Bad::new(format!("`{ctx}` must be \"local\", \"slurm\", \"ssh\" or \"container\", found \"{v}\""))
                .hint("\"local\" runs agents as processes of `orch up`, \"slurm\" as Slurm batch jobs (see `[slurm]`), \"ssh\" on the `[[host]]` machines, \"container\" in a podman (or docker) container per plan (`image`)")
        })
    }
}

/// An `image` key: a container image reference, as podman takes it (`docker.io/library/rust:1`,
/// `localhost/dev:latest`): one word of at most 512 characters, not an option.
pub(super) fn image(ctx: &str) -> impl Fn(&String) -> Result<String, Bad> {
    move |v| {
        let ok = !v.is_empty()
            && v.len() <= 512
            && !v.starts_with('-')
            && v.chars().all(|c| c.is_ascii_graphic());
        if ok {
            Ok(v.clone())
        } else {
            Err(Bad::new(format!("`{ctx}` \"{v}\" is not an image reference"))
                .hint("name an image as podman or docker does: image = \"docker.io/library/debian:12\" (one word, no spaces, not starting with `-`)"))
        }
    }
}

/// A plan's `format` key.
pub(super) fn plan_format(v: &String) -> Result<super::model::PlanFormat, Bad> {
    use super::model::PlanFormat;
    match v.as_str() {
        "orch" => Ok(PlanFormat::Orch),
        "speckit" => Ok(PlanFormat::SpecKit),
        _ => Err(Bad::new(format!(
            "`plan.format` must be \"orch\" or \"speckit\", found \"{v}\""
        ))
        .hint("\"orch\" is orch's own plan grammar (`- [ ] 1.2 …`), \"speckit\" a Spec Kit `tasks.md` (`- [ ] T001 …`); without the key orch recognises the file")),
    }
}

/// A `budget` key.
pub(super) fn budget(ctx: &str) -> impl Fn(&String) -> Result<Budget, Bad> {
    move |v| parse_budget(v).map_err(|why| Bad::new(format!("`{ctx}`: {why}")))
}

/// A count that must be at least 1.
pub(super) fn at_least_one(ctx: &str) -> impl Fn(&i64) -> Result<usize, Bad> {
    move |&v| match usize::try_from(v) {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(Bad::new(format!("`{ctx}` must be at least 1, found {v}"))),
    }
}

/// A count that may be zero (`retries`).
pub(super) fn non_negative(ctx: &str) -> impl Fn(&i64) -> Result<u32, Bad> {
    move |&v| {
        u32::try_from(v)
            .map_err(|_| Bad::new(format!("`{ctx}` must be a non-negative integer, found {v}")))
    }
}

/// The smallest `log_max`: room for a beginning and an end worth reading.
pub(super) const LOG_MAX_MIN: u64 = 64 * 1024;

/// A size key (`"32MiB"`, `"512KiB"`, `"1GiB"`, `"100000"` bytes), at least `min` bytes.
pub(super) fn size(ctx: &str, min: u64) -> impl Fn(&String) -> Result<u64, Bad> {
    move |v| match parse_size(v) {
        Some(n) if n >= min => Ok(n),
        Some(_) => Err(Bad::new(format!(
            "`{ctx}` must be at least {}KiB, found \"{v}\"",
            min / 1024
        ))),
        None => Err(Bad::new(format!("`{ctx}` \"{v}\" is not a size"))
            .hint("write a number of bytes with a unit: \"32MiB\", \"512KiB\", \"1GiB\"")),
    }
}

/// The keys `max_file_size`, `max_change_size` and `max_change_files` of a table, as written.
pub(super) type SizeKeys<'a> = (
    &'a Option<At<String>>,
    &'a Option<At<String>>,
    &'a Option<At<i64>>,
);

/// `max_file_size`, `max_change_size` and `max_change_files` of `ctx` (`defaults`, `plan`) over `base`; a bad value
/// is reported at its line.
pub(super) fn size_limits(
    r: &mut super::spans::Reporter<'_>,
    ctx: &str,
    (file, change, files): SizeKeys<'_>,
    base: super::SizeLimits,
) -> super::SizeLimits {
    super::SizeLimits {
        file: r
            .check(file.as_ref(), size_limit(&format!("{ctx}.max_file_size")))
            .unwrap_or(base.file),
        change: r
            .check(
                change.as_ref(),
                size_limit(&format!("{ctx}.max_change_size")),
            )
            .unwrap_or(base.change),
        files: r
            .check(
                files.as_ref(),
                at_least_one(&format!("{ctx}.max_change_files")),
            )
            .map_or(base.files, |n| n as u64),
    }
}

/// A size limit (`max_file_size`, `max_change_size`): a size of at least one byte.
fn size_limit(ctx: &str) -> impl Fn(&String) -> Result<u64, Bad> {
    move |v| match parse_size(v) {
        Some(n) if n > 0 => Ok(n),
        Some(_) => Err(Bad::new(format!(
            "`{ctx}` must be more than zero, found \"{v}\""
        ))),
        None => Err(Bad::new(format!("`{ctx}` \"{v}\" is not a size"))
            .hint("write a number of bytes with a unit: \"100MiB\", \"500M\", \"4GiB\"")),
    }
}

/// `"32MiB"` as bytes: a whole number followed by `B`, `KiB`, `MiB`, `GiB` (or `K`, `M`, `G`,
/// the same), or by nothing (bytes). `None` when it is not one, or too large.
pub(crate) fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(digits);
    let n: u64 = number.parse().ok()?;
    let shift = match unit.trim() {
        "" | "B" => 0,
        "K" | "KiB" => 10,
        "M" | "MiB" => 20,
        "G" | "GiB" => 30,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

/// A duration key (`"90s"`, `"2h"`); zero only where `zero_ok`.
pub(super) fn duration(ctx: &str, zero_ok: bool) -> impl Fn(&String) -> Result<Duration, Bad> {
    move |v| match parse_duration(v) {
        Ok(t) if t > Duration::ZERO || zero_ok => Ok(t),
        Ok(_) => Err(Bad::new(format!("`{ctx}` must be greater than zero"))),
        Err(why) => Err(Bad::new(format!("`{ctx}`: {why}"))),
    }
}

/// A `[slurm]` table (`ctx` = `slurm`) or a plan's `slurm` table over `base`.
pub(super) fn slurm_options(
    r: &mut Reporter<'_>,
    ctx: &str,
    raw: &RawSlurm,
    base: &SlurmOptions,
) -> SlurmOptions {
    let mut out = base.clone();
    for (key, at, slot) in [
        ("partition", &raw.partition, &mut out.partition),
        ("account", &raw.account, &mut out.account),
    ] {
        r.set(slot, at.as_ref(), |v| {
            let name_like = v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ','));
            if v.is_empty() || !name_like {
                return Err(Bad::new(format!("`{ctx}.{key}` \"{v}\" is not a Slurm {key} name (letters, digits, `_`, `-`, `.`, `,`)")));
            }
            Ok(Some(v.clone()))
        });
    }
    r.set(
        &mut out.time_limit,
        raw.time_limit.as_ref(),
        |v| match parse_duration(v) {
            Ok(t) if t >= Duration::from_secs(60) => Ok(Some(t)),
            Ok(_) => Err(
                Bad::new(format!("`{ctx}.time_limit` \"{v}\" is under a minute")).hint(
                    "Slurm time limits are whole minutes: write \"1m\" or more (it is rounded up)",
                ),
            ),
            Err(why) => Err(Bad::new(format!("`{ctx}.time_limit`: {why}"))),
        },
    );
    r.set(&mut out.cpus, raw.cpus.as_ref(), |&v| {
        match u32::try_from(v) {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(Bad::new(format!(
                "`{ctx}.cpus` must be at least 1, found {v}"
            ))),
        }
    });
    r.set(&mut out.memory, raw.memory.as_ref(), |v| {
        let digits = v.trim_end_matches(['K', 'M', 'G', 'T']);
        let one_suffix = v.len() - digits.len() <= 1;
        if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) && one_suffix {
            return Ok(Some(v.clone()));
        }
        Err(Bad::new(format!("`{ctx}.memory` \"{v}\" is not a Slurm memory size"))
            .hint("write a number with an optional K, M, G or T suffix, such as \"8G\" (megabytes without one)"))
    });
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

/// Said when `parallel` and `parallel_tasks` are both above 1.
pub(super) const PARALLEL_HINT: &str = "`parallel` lets agents share the plan's worktree, `parallel_tasks` gives each task a worktree of its own: choose one";

pub(super) fn both_parallel(whose: &str, parallel: usize, parallel_tasks: usize) -> String {
    format!(
        "{whose} sets both `parallel` ({parallel}) and `parallel_tasks` ({parallel_tasks}) above 1"
    )
}

/// An argv key (`setup`): a non-empty array whose program is not empty.
pub(super) fn argv(r: &mut Reporter<'_>, ctx: &str, at: Option<&At<Argv>>) -> Option<Vec<String>> {
    let at = at?;
    let items = r.argv(ctx, at)?;
    match items.first() {
        None => {
            r.error_hint(&at.span, format!("`{ctx}` must not be empty"), ARGV_HINT);
            None
        }
        Some(first) if first.value.trim().is_empty() => {
            r.error(
                &first.span,
                format!("the program of `{ctx}` must not be empty"),
            );
            None
        }
        Some(_) => Some(items.iter().map(|a| a.value.clone()).collect()),
    }
}

/// `what` names an agent the manifest does not know; `or` is one more way out, for the hint.
pub(super) fn unknown_agent(agents: &BTreeMap<String, AgentSpec>, what: String, or: &str) -> Bad {
    let known: Vec<String> = agents.keys().map(|k| format!("`{k}`")).collect();
    Bad::new(what).hint(format!(
        "define it in an `[agents.NAME]` table, {or}or use one of: {}",
        known.join(", ")
    ))
}
