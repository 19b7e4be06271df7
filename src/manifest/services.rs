//! `[[service]]` tables: what runs beside a container plan's agents, in its network (a database,
//! a cache), and the `services = [...]` of a plan or of `[defaults]` (which of them it gets).
//! Every value is checked here, at its `line:col`; `crate::executor::container` starts them.

use std::time::Duration;

use super::executor::ExecutorKind;
use super::model::PlanEntry;
use super::network::NetworkMode;
use super::raw::{RawManifest, RawService};
use super::spans::{At, Bad, Reporter};
use super::values::{argv, duration, image};

/// The longest service name (it names a container and an environment variable).
const MAX_NAME_LEN: usize = 32;

/// How long a service has to get ready without `ready_timeout`.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The placeholder replaced by the service's port in its `env` values and `command`.
pub(crate) const PORT_PLACEHOLDER: &str = "${ORCH_SERVICE_PORT}";

/// The lowest and highest fixed `port`: above the well-known ports (where orch's confined
/// network catches connections) and below the blocks of `ORCH_PORT` ([`crate::ports`]).
const FIXED_PORTS: std::ops::RangeInclusive<u16> = 1024..=41_999;
/// The ports orch gives out in blocks (`crate::ports`, `FIRST_PORT` on), where a service without
/// `port` gets its own: above every fixed one.
const GIVEN_PORTS: std::ops::RangeInclusive<u16> = 42_000..=65_535;

/// What a service runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ServiceRun {
    /// A container of this image, its own entry point.
    Image(String),
    /// This argv, in a container of the plan's image.
    Command(Vec<String>),
}

/// One `[[service]]`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Service {
    /// A word of `[a-z0-9_-]`.
    pub(crate) name: String,
    pub(crate) run: ServiceRun,
    /// The port it listens on whatever it is told (an image that cannot be told one); `None`:
    /// the plan's own, `ORCH_PORT + 1 + k`.
    pub(crate) port: Option<u16>,
    /// Run in its container until it exits 0; `None`: a TCP connection to its port.
    pub(crate) ready: Option<Vec<String>>,
    pub(crate) ready_timeout: Duration,
    /// Its environment (`${ORCH_SERVICE_PORT}` in a value is its port), in name order.
    pub(crate) env: Vec<(String, String)>,
    /// 1-based line of its table.
    pub(crate) line: usize,
}

impl Service {
    /// `ORCH_SERVICE_<NAME>`: the name upper-cased, `-` as `_`.
    pub(crate) fn var_stem(&self) -> String {
        var_stem(&self.name)
    }
}

fn var_stem(name: &str) -> String {
    let up: String = name
        .chars()
        .map(|c| {
            if c == '-' {
                '_'
            } else {
                c.to_ascii_uppercase()
            }
        })
        .collect();
    format!("ORCH_SERVICE_{up}")
}

fn service_name(v: &str) -> Result<String, Bad> {
    let ok = !v.is_empty()
        && v.len() <= MAX_NAME_LEN
        && v.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && v.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(v.to_string())
    } else {
        Err(Bad::new(format!("service name `{}` is not allowed", v.escape_debug())).hint(
            format!(
                "a lowercase letter or digit, then lowercase letters, digits, `_`, `-`; at most {MAX_NAME_LEN} characters: name = \"db\""
            ),
        ))
    }
}

fn env_name(v: &str) -> bool {
    v.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks the `[[service]]` tables: the good ones, in file order.
pub(super) fn services(raw: &[At<RawService>], r: &mut Reporter<'_>) -> Vec<Service> {
    let mut out: Vec<Service> = Vec::new();
    for At { value: s, span } in raw {
        let (line, _) = r.line_col(span);
        let name = r.check(s.name.as_ref(), |v| service_name(v));
        let ctx = |key: &str| match &name {
            Some(n) => format!("service.{n}.{key}"),
            None => format!("service.{key}"),
        };
        let image = r.check(s.image.as_ref(), image(&ctx("image")));
        let command = argv(r, &ctx("command"), s.command.as_ref());
        let port = r.check(s.port.as_ref(), |&p| {
            u16::try_from(p)
                .ok()
                .filter(|p| FIXED_PORTS.contains(p))
                .ok_or_else(|| {
                    Bad::new(format!(
                        "`{}` must be {} to {}, found {p}",
                        ctx("port"),
                        FIXED_PORTS.start(),
                        FIXED_PORTS.end()
                    ))
                    .hint("leave `port` out and tell the service its port from its environment (`PORT`, or `${ORCH_SERVICE_PORT}` in `env`): orch gives it one of the plan's block")
                })
        });
        let ready = argv(r, &ctx("ready"), s.ready.as_ref());
        let timeout = r.check(
            s.ready_timeout.as_ref(),
            duration(&ctx("ready_timeout"), false),
        );
        let mut env = Vec::new();
        if let Some(at) = &s.env {
            for (k, v) in &at.value {
                if env_name(k) {
                    env.push((k.clone(), v.value.clone()));
                } else {
                    r.error_hint(
                        &v.span,
                        format!("`{}` names the variable `{}`", ctx("env"), k.escape_debug()),
                        "a variable's name is letters, digits and `_`, not starting with a digit",
                    );
                }
            }
        }
        let Some(name_at) = &s.name else {
            r.error_hint(span, "a `[[service]]` table needs `name`", "name = \"db\"");
            continue;
        };
        let run = match (image, command, &s.image, &s.command) {
            (_, _, Some(_), Some(c)) => {
                r.error_hint(
                    &c.span,
                    format!(
                        "service `{}` has both `image` and `command`",
                        name_at.value
                    ),
                    "`image` runs a container of that image as it is; `command` runs an argv in a container of the plan's image: keep one",
                );
                None
            }
            (_, _, None, None) => {
                r.error_hint(
                    &name_at.span,
                    format!("service `{}` has neither `image` nor `command`", name_at.value),
                    "image = \"docker.io/library/postgres:16\" (a container of that image), or command = [\"redis-server\", \"--port\", \"${ORCH_SERVICE_PORT}\"] (in a container of the plan's image)",
                );
                None
            }
            (Some(i), None, _, _) => Some(ServiceRun::Image(i)),
            (None, Some(c), _, _) => Some(ServiceRun::Command(c)),
            _ => None,
        };
        let Some(name) = name else { continue };
        if let Some(first) = out
            .iter()
            .find(|o| o.name == name || o.var_stem() == var_stem(&name))
        {
            r.error_hint(
                &name_at.span,
                format!("service `{name}` is defined twice"),
                format!(
                    "the first `[[service]]` of that name (its variables are `{}_*`) is at line {}",
                    first.var_stem(),
                    first.line
                ),
            );
            continue;
        }
        let Some(run) = run else { continue };
        out.push(Service {
            name,
            run,
            port,
            ready,
            ready_timeout: timeout.unwrap_or(READY_TIMEOUT),
            env,
            line,
        });
    }
    out
}

/// One `services = [...]` list: its names, each checked to name a `[[service]]` once.
fn names(
    r: &mut Reporter<'_>,
    ctx: &str,
    at: &At<Vec<At<String>>>,
    services: &[Service],
) -> Vec<String> {
    let known = services
        .iter()
        .map(|s| format!("`{}`", s.name))
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = Vec::new();
    for name in &at.value {
        if out.contains(&name.value) {
            r.error(
                &name.span,
                format!("`{ctx}` names service `{}` twice", name.value),
            );
        } else if services.iter().any(|s| s.name == name.value) {
            out.push(name.value.clone());
        } else {
            let hint = if known.is_empty() {
                "no `[[service]]` is defined: add one (`[[service]]`, `name = \"db\"`, `image = \"...\"`)".to_string()
            } else {
                format!("the services are {known}")
            };
            r.error_hint(
                &name.span,
                format!(
                    "`{ctx}` names unknown service `{}`",
                    name.value.escape_debug()
                ),
                hint,
            );
        }
    }
    out
}

/// Resolves each plan's services (its own `services`, else `[defaults]`') and checks that each
/// plan with services can have them: it runs in a container, its network is not podman's
/// open one, its block of ports holds them.
pub(super) fn plans(
    raw: &RawManifest,
    services: &[Service],
    ports: u16,
    agents: &std::collections::BTreeMap<String, super::agents::AgentSpec>,
    out: &mut [PlanEntry],
    r: &mut Reporter<'_>,
) {
    let defaults = raw
        .defaults
        .services
        .as_ref()
        .map(|at| (names(r, "defaults.services", at, services), at.span.clone()));
    for entry in out.iter_mut() {
        let own = raw
            .plan
            .iter()
            .find(|p| p.value.name.as_ref().is_some_and(|n| n.value == entry.name))
            .and_then(|p| p.value.services.as_ref());
        let (list, span) = match own {
            Some(at) => (names(r, "plan.services", at, services), at.span.clone()),
            None => match &defaults {
                Some((list, span)) => (list.clone(), span.clone()),
                None => continue,
            },
        };
        if list.is_empty() {
            continue;
        }
        let whose = if own.is_some() {
            String::new()
        } else {
            " (from `[defaults]`)".to_string()
        };
        let opt_out = if own.is_some() {
            String::new()
        } else {
            " or `services = []` on the plan".to_string()
        };
        if entry.executor != ExecutorKind::Container {
            r.error_hint(
                &span,
                format!(
                    "plan `{}` has services{whose} but runs with executor \"{}\": services are not yet available there, only in containers",
                    entry.name,
                    entry.executor.as_str()
                ),
                format!("run the plan in a container (`executor = \"container\"` and `image`){opt_out}"),
            );
            continue;
        }
        let network = agents.get(&entry.agent).map(|a| &a.sandbox.network);
        if network.and_then(|n| n.mode) == Some(NetworkMode::Open) {
            r.error_hint(
                &span,
                format!(
                    "plan `{}` has services{whose}, but its agent `{}` has `network = \"open\"`: not yet, its services would be reachable from every container on the engine's network",
                    entry.name, entry.agent
                ),
                format!("leave the agent's `network` confined (the default) or set it to \"none\"{opt_out}"),
            );
            continue;
        }
        let chosen: Vec<&Service> = list
            .iter()
            .filter_map(|n| services.iter().find(|s| &s.name == n))
            .collect();
        let need = 1 + chosen.iter().filter(|s| s.port.is_none()).count();
        if need > usize::from(ports) {
            r.error_hint(
                &span,
                format!(
                    "plan `{}` has {} services{whose} on its block of {ports} ports, which holds {}: `ORCH_PORT` is the agent's, each service takes the next",
                    entry.name,
                    chosen.len(),
                    usize::from(ports).saturating_sub(1)
                ),
                format!("set `ports = {need}` or more in `[defaults]`"),
            );
            continue;
        }
        // Fixed ports: each once, and none where orch's confined network listens in the
        // plan's namespace (its proxy, the allowed loopback endpoints).
        let direct: Vec<u16> = network
            .map(|n| {
                n.allow
                    .loopback_sockets()
                    .iter()
                    .map(|s| s.port())
                    .collect()
            })
            .unwrap_or_default();
        // The ports orch gives the services without `port` are of the plan's block, known
        // only when it runs: an allowed loopback endpoint where blocks are given out (orch
        // listens there, in the plan's namespace) could be one of them, and every attempt
        // would fail (the service cannot listen, or orch's socket cannot be opened).
        if let Some(s) = chosen.iter().find(|s| s.port.is_none())
            && network.and_then(|n| n.mode) != Some(NetworkMode::None)
            && let Some((port, at)) = given_port_allowed(raw, &entry.agent, &direct)
        {
            r.error_hint(
                &at,
                format!(
                    "plan `{}`'s service `{}` is given a port of the plan's block ({}…{}, known only when it runs), and port {port} there is an allowed endpoint of its agent `{}` (`network_allow`), where orch listens in the plan's network: the service and that endpoint could not both have it",
                    entry.name,
                    s.name,
                    GIVEN_PORTS.start(),
                    GIVEN_PORTS.end(),
                    entry.agent
                ),
                format!(
                    "allow a loopback port below {} (a dev server's), or give service `{}` a fixed `port` (line {})",
                    GIVEN_PORTS.start(),
                    s.name,
                    s.line
                ),
            );
            continue;
        }
        let mut proxy = crate::sandbox::net::PROXY_PORT;
        while direct.contains(&proxy) {
            proxy += 1;
        }
        let mut taken: Vec<(u16, &str)> = Vec::new();
        for s in &chosen {
            let Some(port) = s.port else { continue };
            let clash = if let Some((_, other)) = taken.iter().find(|(p, _)| *p == port) {
                Some(format!("service `{other}` listens on it too"))
            } else if port == proxy {
                Some("orch's proxy listens there in the plan's network".to_string())
            } else if direct.contains(&port) {
                Some(format!(
                    "agent `{}` may reach an allowed endpoint on it (`network_allow`)",
                    entry.agent
                ))
            } else {
                None
            };
            if let Some(why) = clash {
                r.error_hint(
                    &span,
                    format!(
                        "plan `{}` cannot have service `{}` on port {port}{whose}: {why}",
                        entry.name, s.name
                    ),
                    format!(
                        "give service `{}` another `port` (line {}), or none",
                        s.name, s.line
                    ),
                );
            }
            taken.push((port, &s.name));
        }
        entry.services = list;
    }
}

/// The first allowed loopback port of agent `agent` (its own `network_allow`, then
/// `[defaults]`') among `direct` that orch may give a service of a plan's block, and the span of
/// the entry naming it.
fn given_port_allowed(
    raw: &RawManifest,
    agent: &str,
    direct: &[u16],
) -> Option<(u16, std::ops::Range<usize>)> {
    let given = |p: u16| GIVEN_PORTS.contains(&p);
    if !direct.iter().any(|&p| given(p)) {
        return None;
    }
    let own = raw.agents.get(agent).and_then(|a| a.network_allow.as_ref());
    let defaults = raw.defaults.network_allow.as_ref();
    own.into_iter()
        .chain(defaults)
        .flat_map(|at| at.value.iter())
        .find_map(|e| {
            let parsed = crate::sandbox::net::allow::Endpoint::parse(&e.value).ok()?;
            let port = parsed
                .loopback_sockets()
                .iter()
                .map(std::net::SocketAddr::port)
                .find(|&p| given(p))?;
            Some((port, e.span.clone()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_words() {
        for bad in ["", "Db", "-db", "a b", "a.b", "a/b", &"x".repeat(40)] {
            assert!(service_name(bad).is_err(), "{bad:?}");
        }
        for good in ["db", "pg-16", "cache_2", "0db"] {
            assert!(service_name(good).is_ok(), "{good:?}");
        }
        assert_eq!(var_stem("pg-16"), "ORCH_SERVICE_PG_16");
        assert!(env_name("PGPORT") && env_name("_X1") && !env_name("1X") && !env_name("A-B"));
    }
}
