//! A container plan's bounds (`memory`, `pids` on the plan, its agent or `[defaults]`): the most
//! memory and the most processes (threads included) its container, and each of its services',
//! may use, so that one plan's attempt cannot exhaust the machine for the other plans and for
//! orch itself. Set by podman (`--memory`, `--memory-swap` the same: no swap beyond it,
//! `--pids-limit`), enforced by the kernel's control groups.

use super::model::PlanEntry;
use super::raw::RawManifest;
use super::spans::{At, Bad, Reporter};
use super::values::parse_size;

/// The smallest `memory`: room for orch's own processes in the container and a shell.
const MIN_MEMORY: u64 = 64 << 20;
/// The fewest `pids`: orch's keeper, its wrappers and a shell.
const MIN_PIDS: i64 = 16;
/// The most `pids` the kernel numbers (`pid_max`'s ceiling).
const MAX_PIDS: i64 = 1 << 22;
/// `pids` when nothing sets it.
pub(crate) const DEFAULT_PIDS: u32 = 4096;

/// A plan's bounds as the manifest resolves them (the plan's key, else its agent's, else
/// `[defaults]`'); `None`: the default ([`Limits::memory`], [`Limits::pids`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Bytes.
    pub(crate) memory: Option<u64>,
    pub(crate) pids: Option<u32>,
}

impl Limits {
    /// The memory bound in bytes: as set, else half of this machine's memory (at least
    /// [`MIN_MEMORY`]).
    pub(crate) fn memory(&self) -> u64 {
        self.memory.unwrap_or_else(default_memory)
    }

    /// The process bound: as set, else [`DEFAULT_PIDS`].
    pub(crate) fn pids(&self) -> u32 {
        self.pids.unwrap_or(DEFAULT_PIDS)
    }
}

/// Half of this machine's memory, in whole MiB (at least [`MIN_MEMORY`]); 4 GiB when the kernel
/// does not say.
pub(crate) fn default_memory() -> u64 {
    let total = nix::sys::sysinfo::sysinfo().map_or(8 << 30, |i| i.ram_total());
    ((total / 2) & !((1 << 20) - 1)).max(MIN_MEMORY)
}

/// `1.5GiB`-like words for a size in bytes (the console's and the book's).
pub(crate) fn shown(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    if bytes >= 1 << 30 && bytes.is_multiple_of(1 << 30) {
        format!("{}GiB", bytes >> 30)
    } else if bytes >= MIB {
        format!("{}MiB", bytes / MIB)
    } else {
        format!("{bytes}B")
    }
}

fn memory(ctx: &str) -> impl Fn(&String) -> Result<u64, Bad> {
    move |v| {
        match parse_size(v) {
        Some(n) if n >= MIN_MEMORY => Ok(n),
        Some(_) => Err(Bad::new(format!(
            "`{ctx}` must be at least 64MiB, found \"{v}\""
        ))
        .hint("orch's own processes in the container need some: write \"512MiB\", \"4GiB\" or more")),
        None => Err(Bad::new(format!("`{ctx}` \"{v}\" is not a size"))
            .hint("write a whole number with a unit: memory = \"4GiB\" (or \"512MiB\", \"4G\")")),
    }
    }
}

fn pids(ctx: &str) -> impl Fn(&i64) -> Result<u32, Bad> {
    move |&v| {
        if (MIN_PIDS..=MAX_PIDS).contains(&v) {
            return u32::try_from(v).map_err(|_| Bad::new(format!("`{ctx}` is too large")));
        }
        Err(Bad::new(format!(
            "`{ctx}` must be between {MIN_PIDS} and {MAX_PIDS}, found {v}"
        ))
        .hint("the most processes and threads the plan's container may have at once: pids = 4096"))
    }
}

/// One table's keys, checked (each bad one reported at its line).
fn of(
    r: &mut Reporter<'_>,
    ctx: &str,
    memory_at: Option<&At<String>>,
    pids_at: Option<&At<i64>>,
) -> Limits {
    Limits {
        memory: r.check(memory_at, memory(&format!("{ctx}.memory"))),
        pids: r.check(pids_at, pids(&format!("{ctx}.pids"))),
    }
}

/// Resolves the bounds of each plan of `out`: the plan's keys, else its agent's, else
/// `[defaults]`'. A plan that sets them itself but does not run in a container is refused at
/// the key (nothing would bound it).
pub(super) fn plans(raw: &RawManifest, out: &mut [PlanEntry], r: &mut Reporter<'_>) {
    let d = &raw.defaults;
    let defaults = of(r, "defaults", d.memory.as_ref(), d.pids.as_ref());
    let agents: std::collections::BTreeMap<&str, Limits> = raw
        .agents
        .values()
        .map(|a| {
            let name = a.name.value.as_str();
            let ctx = format!("agents.{name}");
            (name, of(r, &ctx, a.memory.as_ref(), a.pids.as_ref()))
        })
        .collect();
    for plan in &raw.plan {
        let Some(name) = &plan.value.name else {
            continue;
        };
        let own = of(
            r,
            "plan",
            plan.value.memory.as_ref(),
            plan.value.pids.as_ref(),
        );
        let Some(entry) = out.iter_mut().find(|e| e.name == name.value) else {
            continue;
        };
        if entry.executor != super::executor::ExecutorKind::Container {
            let keys = [
                plan.value.memory.as_ref().map(|a| ("memory", &a.span)),
                plan.value.pids.as_ref().map(|a| ("pids", &a.span)),
            ];
            for (key, span) in keys.into_iter().flatten() {
                r.error_hint(
                    span,
                    format!(
                        "`plan.{key}` of plan `{}` bounds its container, but the plan runs with executor = \"{}\"",
                        entry.name, entry.executor
                    ),
                    "set executor = \"container\" on the plan, or remove the key",
                );
            }
            continue;
        }
        let agent = agents
            .get(entry.agent.as_str())
            .copied()
            .unwrap_or_default();
        entry.limits = Limits {
            memory: own.memory.or(agent.memory).or(defaults.memory),
            pids: own.pids.or(agent.pids).or(defaults.pids),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_counts_are_checked() {
        assert_eq!(memory("m")(&"4G".to_string()).ok(), Some(4 << 30));
        assert_eq!(memory("m")(&"512MiB".to_string()).ok(), Some(512 << 20));
        for bad in [
            "",
            "4",
            "1M",
            "4 gigs",
            "-1G",
            "4T",
            "99999999999999999999G",
        ] {
            assert!(memory("m")(&bad.to_string()).is_err(), "{bad}");
        }
        assert_eq!(pids("p")(&4096).ok(), Some(4096));
        for bad in [0, -1, 15, MAX_PIDS + 1] {
            assert!(pids("p")(&bad).is_err(), "{bad}");
        }
        assert!(default_memory() >= MIN_MEMORY);
        assert_eq!(shown(4 << 30), "4GiB");
        assert_eq!(shown(512 << 20), "512MiB");
    }
}
