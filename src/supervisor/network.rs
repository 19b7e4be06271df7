//! Which network each plan's agents get (`network` and `network_allow` in `[defaults]` and
//! `[agents.NAME]`, [`crate::sandbox::net`]): decided once per run, shown at start (the
//! `network:` line, `network` in `run_started`), and given to each process the plan starts (its
//! agents, checks and `setup`: the same network as the agents).

use std::path::Path;

use anyhow::anyhow;

use crate::diagnostic::Diagnostic;
use crate::error::CliError;
use crate::executor::{Executor, NetPlace};
use crate::exit;
use crate::manifest::{AgentSpec, Manifest, NetworkMode, PlanEntry};
use crate::sandbox::net::allow::AllowList;
use crate::sandbox::net::{NetAttempt, NetProxy};

/// How a plan's agents reach the network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PlanNetwork {
    /// Only these endpoints (the client's own and `network_allow`), through orch's proxy.
    Confined(AllowList),
    /// No namespace could be made: Landlock limits TCP connections to orch's proxy and the
    /// ports of the allowed loopback endpoints (why there is no namespace).
    Ports(AllowList, String),
    /// Nothing.
    None,
    /// Everything (`network = "open"`).
    Open,
    /// Not confined although nothing said `open`: why (a machine that cannot make network
    /// namespaces nor limit TCP ports; a container's network when orch is not root).
    Unconfined(String),
}

impl PlanNetwork {
    /// As `run_started` and `orch status --json` say it: `confined`, `none`, `open`,
    /// `unavailable`.
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Self::Confined(_) => "confined",
            Self::Ports(..) => "ports",
            Self::None => "none",
            Self::Open => "open",
            Self::Unconfined(_) => "unavailable",
        }
    }
}

/// Decides plan `plan`'s network, its attempts run by `executor`; `probe`: whether this machine makes the namespace (asked once,
/// only when needed; the error says why not); `landlock_tcp`: whether the kernel's Landlock has
/// TCP rules (ABI 4), the fallback of the default without a namespace. An explicit `confined`
/// or `none` that cannot be enforced is refused (exit 6) with the fix, and so is the default
/// where the plan's attempts run on another machine whose network orch does not confine (an ssh
/// host, a Slurm node: [`unconfined_elsewhere`]): only `network = "open"`, the lead's word, runs
/// them there.
pub(crate) fn decide(
    plan: &str,
    agent_name: &str,
    agent: &AgentSpec,
    executor: &dyn Executor,
    probe: &dyn Fn() -> Result<(), String>,
    landlock_tcp: &dyn Fn() -> bool,
) -> Result<PlanNetwork, CliError> {
    let mode = agent.sandbox.network.mode;
    if mode == Some(NetworkMode::Open) {
        return Ok(PlanNetwork::Open);
    }
    let cannot = |why: String| {
        let asked = mode.map_or("confined", NetworkMode::as_str);
        match mode {
            Some(_) => Err(CliError::new(
                exit::AGENT,
                anyhow!(
                    "agent `{agent_name}` of plan `{plan}` must run with `network = \"{asked}\"`, which cannot be enforced: {why}"
                ),
            )
            .with_hint(
                "set `network = \"open\"` for this agent in plans.toml (or run where network namespaces can be made: a kernel with user namespaces enabled, `kernel.apparmor_restrict_unprivileged_userns = 0` on Ubuntu)",
            )),
            None => Ok(PlanNetwork::Unconfined(why)),
        }
    };
    // On another machine only the lead's `open` runs: unset, or `confined` or `none` asked for.
    if let Some(why) = unconfined_elsewhere(executor) {
        return Err(refused_elsewhere(
            plan,
            agent_name,
            executor.name(),
            mode,
            &why,
        ));
    }
    if let Err(why) = executor.network() {
        return cannot(why);
    }
    let made = probe();
    if made.is_ok() && mode == Some(NetworkMode::None) {
        return Ok(PlanNetwork::None);
    }
    let mut allow = AllowList::default();
    agent.add_reachable(&mut allow);
    match made {
        Ok(()) => Ok(PlanNetwork::Confined(allow)),
        Err(why) => {
            let why = format!("this machine cannot make a network namespace ({why})");
            if mode.is_none() && landlock_tcp() {
                return Ok(PlanNetwork::Ports(allow, why));
            }
            cannot(why)
        }
    }
}

/// Why the network of `executor`'s attempts cannot be confined, when they run on another
/// machine (an ssh host, a Slurm node): there nothing but `network = "open"` runs them.
fn unconfined_elsewhere(executor: &dyn Executor) -> Option<String> {
    if executor.attempts_here() {
        return None;
    }
    executor.network().err()
}

/// The refusal of plan `plan`, whose agent `agent_name` runs by executor `executor` where its
/// network is not confined (`why`), its `network` `mode` (unset: nothing set `open`).
fn refused_elsewhere(
    plan: &str,
    agent_name: &str,
    executor: &str,
    mode: Option<NetworkMode>,
    why: &str,
) -> CliError {
    let what = match mode {
        None => format!(
            "plan `{plan}` runs its agent `{agent_name}` with `executor = \"{executor}\"`, where its network cannot be confined ({why}), and nothing set `network = \"open\"`"
        ),
        Some(m) => format!(
            "agent `{agent_name}` of plan `{plan}` must run with `network = \"{}\"`, which cannot be enforced with `executor = \"{executor}\"`: {why}",
            m.as_str()
        ),
    };
    CliError::new(exit::AGENT, anyhow!("{what}")).with_hint(format!(
        "set `network = \"open\"` in `[agents.{agent_name}]` (or in `[defaults]`) to run it there unconfined, or run the plan with `executor = \"local\"` or `\"container\"`"
    ))
}

/// `orch check`'s errors of the plans of `manifest` that `orch up` refuses for their network
/// (exit 6): an ssh or Slurm plan whose agent's `network` is not `"open"`, each at the line of
/// the plan's `name`; `executor_of`: a plan's executor (`executor::of_plan`, made by the
/// caller: the run makes it in one place).
pub(crate) fn check_diagnostics(
    manifest: &Manifest,
    executor_of: &dyn Fn(&PlanEntry) -> std::sync::Arc<dyn Executor>,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for entry in &manifest.plans {
        if manifest.agent_of(entry).is_none() {
            continue;
        }
        let executor = executor_of(entry);
        let Some(why) = unconfined_elsewhere(executor.as_ref()) else {
            continue;
        };
        // The plan's agent and each other agent its attempts may run (fallbacks, best of N).
        for name in std::iter::once(&entry.agent).chain(other_agents(entry)) {
            let Some(agent) = manifest.agents.get(name) else {
                continue;
            };
            let mode = agent.sandbox.network.mode;
            if mode == Some(NetworkMode::Open) {
                continue;
            }
            let e = refused_elsewhere(&entry.name, name, executor.name(), mode, &why);
            let mut d = Diagnostic::error(&manifest.path, entry.line, e.error.to_string());
            if let Some(hint) = e.hint {
                d = d.with_hint(hint);
            }
            out.push(d);
        }
    }
    out
}

/// Plan network `net` widened for the plan's fallback agents (`fallback`): a confined network
/// also allows each fallback client's own endpoints and its `network_allow`, so that a task
/// that fails over reaches its client's API. Any other network is as it was.
pub(crate) fn with_fallbacks<'a>(
    net: PlanNetwork,
    fallbacks: impl IntoIterator<Item = &'a AgentSpec>,
) -> PlanNetwork {
    let widen = |mut allow: AllowList| {
        for agent in fallbacks {
            agent.add_reachable(&mut allow);
        }
        allow
    };
    match net {
        PlanNetwork::Confined(allow) => PlanNetwork::Confined(widen(allow)),
        PlanNetwork::Ports(allow, why) => PlanNetwork::Ports(widen(allow), why),
        other => other,
    }
}

/// The agents other than its own that plan `entry`'s attempts may run (its fallbacks, its
/// best-of-N agents), each once.
pub(crate) fn other_agents(entry: &PlanEntry) -> Vec<&String> {
    let mut out: Vec<&String> = Vec::new();
    for name in entry.fallback.iter().chain(&entry.best_of.agents) {
        if *name != entry.agent && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// The network of an attempt of agent `agent` of a plan whose own agent's network is `plan`
/// and whose other agents' are `others`: that agent's own, never the plan agent's.
pub(crate) fn of_agent<'a>(
    plan: &'a PlanNetwork,
    others: &'a [(String, PlanNetwork)],
    agent: &str,
) -> &'a PlanNetwork {
    others
        .iter()
        .find(|(n, _)| n == agent)
        .map_or(plan, |(_, net)| net)
}

/// The run's network in one word: `unavailable` when some plan that would be confined cannot
/// be, else the plans' own word when they agree, else `mixed`.
pub(crate) fn run_state<'a>(plans: impl IntoIterator<Item = &'a PlanNetwork>) -> &'static str {
    let mut state: Option<&'static str> = None;
    for p in plans {
        let word = p.as_str();
        if word == "unavailable" {
            return word;
        }
        state = match state {
            None => Some(word),
            Some(s) if s == word => Some(s),
            Some(_) => Some("mixed"),
        };
    }
    state.unwrap_or("open")
}

/// The `network:` line `orch up` prints at start: each mode and its plans, with why a plan is
/// not confined.
pub(crate) fn start_line<'a>(
    plans: impl IntoIterator<Item = (&'a str, &'a PlanNetwork)>,
) -> String {
    let mut groups: Vec<(String, Vec<&str>)> = Vec::new();
    for (name, p) in plans {
        let what = match p {
            PlanNetwork::Confined(_) => {
                "confined (each agent reaches its client's endpoints and `network_allow`, through orch's proxy; the network of `[[notify]]` hooks is not confined)".to_string()
            }
            PlanNetwork::Ports(_, why) => format!(
                "ports only: {why}; Landlock lets each agent connect only to orch's proxy and the ports of its allowed loopback endpoints (on any address) and bind only its worktree's ports, and UDP (DNS included) is not confined before Landlock ABI 10: an agent may send to any UDP port and bind any one, another plan's included"
            ),
            PlanNetwork::None => "none (no network at all)".to_string(),
            PlanNetwork::Open => "open (`network = \"open\"`; on this machine with the sandbox on, an agent binds only its worktree's TCP ports, but any UDP port, another plan's included)".to_string(),
            PlanNetwork::Unconfined(why) => format!("not confined: {why}"),
        };
        match groups.iter_mut().find(|(w, _)| *w == what) {
            Some((_, names)) => names.push(name),
            None => groups.push((what, vec![name])),
        }
    }
    if groups.len() == 1 {
        return format!("network: {}", groups[0].0);
    }
    let parts: Vec<String> = groups
        .iter()
        .map(|(what, names)| format!("{} for {}", what, names.join(", ")))
        .collect();
    format!("network: {}", parts.join("; "))
}

/// Writes the run's record of each plan's network ([`crate::state_layout::NETWORK_PLANS`]).
pub(crate) fn record(state_dir: &Path, run: &str, plans: &[(String, &'static str)]) {
    let per_plan: serde_json::Map<String, serde_json::Value> = plans
        .iter()
        .map(|(n, s)| (n.clone(), serde_json::Value::from(*s)))
        .collect();
    let v = serde_json::json!({ "network": run, "plans": per_plan });
    let _ = crate::links::write(
        &crate::state_layout::NETWORK_PLANS.at(state_dir),
        format!("{v}\n").as_bytes(),
    );
}

/// What that record says, if anything.
fn read_record(state_dir: &Path) -> Option<serde_json::Value> {
    let bytes = crate::untrusted::read::optional(
        &crate::state_layout::NETWORK_PLANS.at(state_dir),
        crate::untrusted::read::STATE,
    )
    .ok()??;
    serde_json::from_slice(&bytes).ok()
}

/// `orch status --json` of all plans: the last run's `network`.
pub(crate) fn add_run_json(state_dir: &Path, v: &mut serde_json::Value) {
    if let Some(run) = read_record(state_dir).and_then(|r| r.get("network").cloned()) {
        v["network"] = run;
    }
}

/// `orch status --json` of plan `plan` (`v`): its `network` in the last run, and each task's
/// `network_refused` (connections refused in that run).
pub(crate) fn add_plan_json(state_dir: &Path, plan: &str, v: &mut serde_json::Value) {
    let Some(mode) = read_record(state_dir).and_then(|r| r.get("plans")?.get(plan).cloned()) else {
        return;
    };
    v["network"] = mode;
    let refused = crate::sandbox::net::refusals_of_plan(state_dir, plan);
    if let Some(tasks) = v.get_mut("tasks").and_then(serde_json::Value::as_array_mut) {
        for t in tasks {
            let Some(id) = t.get("id").and_then(serde_json::Value::as_str) else {
                continue;
            };
            let n = refused.get(id).map_or(0, |(n, _)| *n);
            t["network_refused"] = n.into();
        }
    }
}

/// The network of one process a plan starts (`unit`: its task, `plan`, `<id>.check`,
/// `setup`), logging to `log`, where its executor puts it (`place`): the handle to keep until
/// the process is started ([`NetAttempt::started`]), and its variables added to `env`. `None`
/// for an open network, or one its place gives it (the wrapper's variable then says so, empty:
/// a value orch's own environment had is not passed on).
pub(crate) fn attempt(
    net: Option<&std::sync::Arc<NetProxy>>,
    network: &PlanNetwork,
    place: NetPlace,
    (plan, unit): (&str, &str),
    log: &Path,
    env: &mut Vec<(String, String)>,
) -> Result<Option<NetAttempt>, String> {
    let network = match place {
        NetPlace::Own => &PlanNetwork::Open,
        _ => network,
    };
    let made = match (network, net) {
        (PlanNetwork::None, _) => Some(NetAttempt::none()),
        (PlanNetwork::Confined(allow), Some(net)) => {
            let a = net.attempt(plan, unit, log, allow.clone())?;
            Some(match place {
                NetPlace::Join(j) => a.joining(j)?,
                _ => a,
            })
        }
        (PlanNetwork::Ports(..), _) if matches!(place, NetPlace::Join(_)) => {
            return Err("its place's network cannot be limited to ports".into());
        }
        (PlanNetwork::Ports(allow, _), Some(net)) => {
            Some(net.attempt_ports(plan, unit, log, allow.clone())?)
        }
        (PlanNetwork::Confined(_) | PlanNetwork::Ports(..), None) => {
            return Err("the network proxy of the run is not running".into());
        }
        _ => None,
    };
    match &made {
        Some(a) => env.extend(a.env()),
        None => env.extend(crate::sandbox::net::open_env(matches!(
            place,
            NetPlace::Here
        ))),
    }
    Ok(made)
}

/// `cause` with the network refusals of `unit` of `plan` in the last run (the record in
/// `state_dir`), if any: what a lead needs to allow when the agent failed after one.
pub(crate) fn with_refusals(state_dir: &Path, plan: &str, unit: &str, cause: &str) -> String {
    match crate::sandbox::net::refusals_of(state_dir, plan, unit) {
        Some((n, last)) => format!(
            "{cause} (after {n} network connection{} refused by orch, the last to {last}: see the log; `network_allow` allows one)",
            if n == 1 { "" } else { "s" }
        ),
        None => cause.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::local::LocalExecutor;
    use crate::executor::slurm::SlurmExecutor;
    use crate::executor::ssh::SshExecutor;
    use crate::sandbox::net::allow::Endpoint;

    fn agent(command: &[&str], mode: Option<NetworkMode>, allow: &[&str]) -> AgentSpec {
        AgentSpec::for_network_tests(command, mode, allow)
    }

    #[test]
    fn a_preset_reaches_its_endpoints_a_custom_agent_only_its_list() {
        let (ok, tcp) = (|| Ok(()), || true);
        let claude = agent(&["claude", "-p"], None, &[]);
        let p = decide("a", "x", &claude, &LocalExecutor, &ok, &tcp).expect("decide");
        let PlanNetwork::Confined(list) = p else {
            panic!("{p:?}")
        };
        assert!(
            list.0
                .contains(&Endpoint::parse("api.anthropic.com:443").expect("e"))
        );
        let custom = agent(&["./agent.sh"], None, &["127.0.0.1:5432"]);
        let p = decide("a", "x", &custom, &LocalExecutor, &ok, &tcp).expect("decide");
        assert_eq!(
            p,
            PlanNetwork::Confined(AllowList(vec![
                Endpoint::parse("127.0.0.1:5432").expect("e")
            ]))
        );
    }

    #[test]
    fn a_fallback_clients_endpoints_are_added_to_a_confined_network() {
        let (ok, tcp) = (|| Ok(()), || true);
        let claude = agent(&["claude", "-p"], None, &[]);
        let codex = agent(&["codex", "exec"], None, &["127.0.0.1:9"]);
        let p = decide("a", "x", &claude, &LocalExecutor, &ok, &tcp).expect("decide");
        let PlanNetwork::Confined(list) = with_fallbacks(p, [&codex]) else {
            panic!("confined")
        };
        for e in ["api.anthropic.com:443", "api.openai.com:443", "127.0.0.1:9"] {
            assert!(
                list.0.contains(&Endpoint::parse(e).expect("e")),
                "{e}: {list:?}"
            );
        }
        // An open network stays open.
        assert_eq!(
            with_fallbacks(PlanNetwork::Open, [&codex]),
            PlanNetwork::Open
        );
    }

    #[test]
    fn what_cannot_be_enforced_is_refused_when_asked_for() {
        let no = || Err("no user namespaces".to_string());
        let ok = || Ok(());
        let (tcp, no_tcp) = (|| true, || false);
        let default = agent(&["./a"], None, &[]);
        let p = decide("a", "x", &default, &LocalExecutor, &no, &no_tcp).expect("default");
        assert!(
            matches!(p, PlanNetwork::Unconfined(ref w) if w.contains("no user namespaces")),
            "{p:?}"
        );
        let p = decide("a", "x", &default, &LocalExecutor, &no, &tcp).expect("default");
        assert!(
            matches!(p, PlanNetwork::Ports(_, ref w) if w.contains("no user namespaces")),
            "{p:?}"
        );
        for mode in [NetworkMode::Confined, NetworkMode::None] {
            let a = agent(&["./a"], Some(mode), &[]);
            let e = decide("a", "x", &a, &LocalExecutor, &no, &tcp).expect_err("refused");
            assert_eq!(e.code, exit::AGENT);
            let e =
                decide("a", "x", &a, &SlurmExecutor::default(), &ok, &tcp).expect_err("refused");
            assert_eq!(e.code, exit::AGENT);
        }
        let open = agent(&["./a"], Some(NetworkMode::Open), &[]);
        let p = decide("a", "x", &open, &SlurmExecutor::default(), &no, &tcp).expect("open");
        assert_eq!(p, PlanNetwork::Open);
    }

    #[test]
    fn on_another_machine_the_default_is_refused_and_only_open_runs() {
        let (ok, tcp) = (|| Ok(()), || true);
        let no = || Err("no user namespaces".to_string());
        let ssh = SshExecutor::new(
            vec!["h1".into()],
            crate::manifest::SizeLimits::file_only(1 << 20),
        );
        let slurm = SlurmExecutor::default();
        let default = agent(&["./a"], None, &[]);
        let open = agent(&["./a"], Some(NetworkMode::Open), &[]);
        for (executor, name) in [(&ssh as &dyn Executor, "ssh"), (&slurm, "slurm")] {
            for probe in [&ok as &dyn Fn() -> Result<(), String>, &no] {
                let e = decide("p1", "w", &default, executor, probe, &tcp).expect_err("refused");
                assert_eq!(e.code, exit::AGENT, "{name}");
                let text = e.error.to_string();
                for part in ["plan `p1`", "agent `w`", &format!("executor = \"{name}\"")] {
                    assert!(text.contains(part), "{part} in {text}");
                }
                let hint = e.hint.clone().unwrap_or_default();
                assert!(
                    hint.contains("`network = \"open\"` in `[agents.w]`"),
                    "{hint}"
                );
                let p = decide("p1", "w", &open, executor, probe, &tcp).expect("open");
                assert_eq!(p, PlanNetwork::Open, "{name}");
            }
        }
        // Here, the default is as it was: confined, else ports, else said at start.
        let p = decide("p1", "w", &default, &LocalExecutor, &no, &|| false).expect("local");
        assert!(matches!(p, PlanNetwork::Unconfined(_)), "{p:?}");
    }

    #[test]
    fn the_start_line_groups_plans() {
        let c = PlanNetwork::Confined(AllowList::default());
        let line = start_line([("a", &c), ("b", &c)]);
        assert!(line.starts_with("network: confined ("), "{line}");
        let line = start_line([("a", &c), ("b", &PlanNetwork::Open)]);
        assert!(
            line.contains("for a; open (`network = \"open\"`; ") && line.ends_with(") for b"),
            "{line}"
        );
        assert!(line.contains("any UDP port"), "{line}");
        assert_eq!(run_state([&c, &PlanNetwork::Open]), "mixed");
        assert_eq!(run_state([&c, &c]), "confined");
        assert_eq!(
            run_state([&c, &PlanNetwork::Unconfined("x".into())]),
            "unavailable"
        );
    }
}
