//! The network of `verify` and of a resolving agent: the same confinement as an attempt's
//! ([`crate::sandbox::net`]), decided from the agents whose work they run (`verify`: the
//! strictest `network` of the manifest's plans, as [`super::confine`] decides its file
//! sandbox; a resolver: its plan's agent and its own), and served by a proxy of the command's
//! own ([`OwnProxy`], started the first time a process needs it), so that `orch merge`,
//! `orch resolve`, the integration preview and the merge train of `orch up` confine them alike.
//!
//! Strictest: `"none"` over `"confined"` (or no `network`, the default) over `"open"`; a
//! confined one reaches what any of those agents may (their clients' endpoints and their
//! `network_allow`). Where no namespace can be made, the agents' fallback: Landlock's TCP rules
//! where the kernel has them, else unconfined with a note; `"confined"` or `"none"` set
//! explicitly refuses (exit 6).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::anyhow;

use crate::error::{CliError, CliResult, exit};
use crate::manifest::{AgentSpec, Manifest, NetworkMode};
use crate::sandbox::net::allow::AllowList;
use crate::sandbox::net::{NetAttempt, OwnProxy};

/// What the processes get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Only these endpoints, through the proxy, in a namespace of their own.
    Confined(AllowList),
    /// No namespace can be made: Landlock limits TCP connections to the proxy and the allowed
    /// loopback endpoints' ports (why there is no namespace).
    Ports(AllowList, String),
    /// A namespace with loopback only.
    None,
    /// The machine's network (`"open"`).
    Open,
    /// Not confined although nothing said `open` (why).
    Unconfined(String),
}

/// The network of the processes of one kind (`verify`, a resolver), and the proxy that serves
/// them once one needs it.
#[derive(Clone, Debug)]
pub(crate) struct Network {
    pub(crate) mode: Mode,
    proxy: Arc<OnceLock<Result<OwnProxy, String>>>,
}

impl Default for Network {
    fn default() -> Self {
        Self::of(Mode::Open)
    }
}

impl PartialEq for Network {
    fn eq(&self, other: &Self) -> bool {
        self.mode == other.mode
    }
}

impl Eq for Network {}

impl Network {
    fn of(mode: Mode) -> Self {
        Self {
            mode,
            proxy: Arc::new(OnceLock::new()),
        }
    }

    /// `verify`'s: the strictest of the agents of `manifest`'s plans.
    pub(crate) fn of_verify(manifest: &Manifest) -> CliResult<Self> {
        let agents: Vec<(&str, &AgentSpec)> = manifest
            .plans
            .iter()
            .filter_map(|e| Some((e.agent.as_str(), manifest.agent_of(e)?)))
            .collect();
        decide("the verify command", &agents, &machine_probe, &|| {
            crate::sandbox::abi() >= 4
        })
    }

    /// A resolver's: the strictest of its plan's agent and its own (`agents`).
    pub(crate) fn of_resolver(agents: &[(&str, &AgentSpec)]) -> CliResult<Self> {
        decide("the resolving agent", agents, &machine_probe, &|| {
            crate::sandbox::abi() >= 4
        })
    }

    /// The note to show where it cannot be confined as the agents would be.
    pub(crate) fn note(&self, what: &str) -> Option<String> {
        match &self.mode {
            Mode::Unconfined(why) => Some(format!("{what}'s network is not confined: {why}")),
            Mode::Ports(_, why) => Some(format!(
                "{what}'s network is confined by ports only: {why}; Landlock lets it connect only to orch's proxy and the ports of its allowed loopback endpoints"
            )),
            _ => None,
        }
    }

    /// Whether a process must enter it through `orch sandbox-exec` (a namespace, or Landlock's
    /// ports).
    pub(crate) fn confines(&self) -> bool {
        matches!(self.mode, Mode::Confined(_) | Mode::Ports(..) | Mode::None)
    }

    /// The network of one process (`unit` of `plan`, logging its refusals to `log`): its
    /// variables added to `env` (the wrapper's, the proxy's), and the handle to tell when it
    /// has started ([`NetAttempt::started`]).
    pub(crate) fn attempt(
        &self,
        (plan, unit): (&str, &str),
        log: &Path,
        env: &mut Vec<(String, String)>,
    ) -> Result<Option<NetAttempt>, String> {
        self.attempt_in((plan, unit), log, env, None)
    }

    /// [`Network::attempt`] of a process that runs in a container (`container`: `Some`), whose
    /// namespace is its own: the proxy's sockets of a confined one opened there by orch's
    /// wrapper, which joins it; nothing for `none` (the container has only loopback).
    pub(crate) fn attempt_in(
        &self,
        (plan, unit): (&str, &str),
        log: &Path,
        env: &mut Vec<(String, String)>,
        container: Option<Option<crate::sandbox::net::Join>>,
    ) -> Result<Option<NetAttempt>, String> {
        let made = match (&self.mode, container) {
            (Mode::None, Some(_)) => None,
            (Mode::None, None) => Some(NetAttempt::none()),
            (Mode::Confined(allow), Some(join)) => {
                let join = join.ok_or("the container's network namespace is not known")?;
                Some(
                    self.proxy()?
                        .attempt(plan, unit, log, allow.clone())?
                        .joining(join)?,
                )
            }
            (Mode::Ports(..), Some(_)) => {
                return Err("a container's network cannot be limited to ports".into());
            }
            (Mode::Confined(allow), None) => {
                Some(self.proxy()?.attempt(plan, unit, log, allow.clone())?)
            }
            (Mode::Ports(allow, _), None) => {
                Some(
                    self.proxy()?
                        .attempt_ports(plan, unit, log, allow.clone())?,
                )
            }
            (Mode::Open | Mode::Unconfined(_), _) => None,
        };
        match &made {
            Some(a) => env.extend(a.env()),
            None => env.extend(crate::sandbox::net::open_env(container.is_none())),
        }
        Ok(made)
    }

    fn proxy(&self) -> Result<&OwnProxy, String> {
        self.proxy
            .get_or_init(OwnProxy::start)
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// `orch sandbox-exec --network-only -- ARGV`: `argv` in the network of [`SPEC_VAR`], its files
/// not confined (for a process that is not under Landlock's file rules).
pub(crate) fn network_only(orch_bin: &Path, argv: &[String]) -> Vec<String> {
    let mut out = vec![
        crate::sandbox::helper_or_orch(orch_bin),
        "sandbox-exec".to_string(),
        "--network-only".to_string(),
        "--".to_string(),
    ];
    out.extend(argv.iter().cloned());
    out
}

/// The orch executable (for `orch sandbox-exec`).
pub(crate) fn orch_bin() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find the orch executable: {e}"))
}

/// Whether this machine makes the namespace, asked of this orch executable once per process
/// (the merge train and the preview decide again for each merge and each trial).
fn machine_probe() -> Result<(), String> {
    static MADE: OnceLock<Result<(), String>> = OnceLock::new();
    MADE.get_or_init(|| crate::sandbox::net::probe(&orch_bin()?))
        .clone()
}

/// The strictest network of `agents` (`(name, spec)`) for `what`; `probe`: whether the
/// namespace can be made (asked only when needed); `landlock_tcp`: whether Landlock has TCP
/// rules. `"confined"` or `"none"` set explicitly that cannot be enforced is refused (exit 6).
pub(crate) fn decide(
    what: &str,
    agents: &[(&str, &AgentSpec)],
    probe: &dyn Fn() -> Result<(), String>,
    landlock_tcp: &dyn Fn() -> bool,
) -> CliResult<Network> {
    let mut none = None;
    let mut confined = false;
    let mut explicit: Option<(&str, NetworkMode)> = None;
    let mut allow = AllowList::default();
    for (name, agent) in agents {
        let mode = agent.sandbox.network.mode;
        match mode {
            Some(NetworkMode::Open) => continue,
            Some(NetworkMode::None) => none = none.or(Some(*name)),
            Some(NetworkMode::Confined) | None => confined = true,
        }
        if let Some(m) = mode
            && explicit.is_none_or(|(_, e)| e != NetworkMode::None)
        {
            explicit = Some((name, m));
        }
        agent.add_reachable(&mut allow);
    }
    if none.is_none() && !confined {
        return Ok(Network::of(Mode::Open));
    }
    let why = match probe() {
        Ok(()) if none.is_some() => return Ok(Network::of(Mode::None)),
        Ok(()) => return Ok(Network::of(Mode::Confined(allow))),
        Err(why) => format!("this machine cannot make a network namespace ({why})"),
    };
    if let Some((name, mode)) = explicit {
        return Err(CliError::new(
            exit::AGENT,
            anyhow!(
                "{what} runs the work of agent `{name}`, which must run with `network = \"{}\"`, but it cannot be enforced: {why}",
                mode.as_str()
            ),
        )
        .with_hint(
            "set `network = \"open\"` for that agent in plans.toml (or run where network namespaces can be made: a kernel with user namespaces enabled, `kernel.apparmor_restrict_unprivileged_userns = 0` on Ubuntu)",
        ));
    }
    if landlock_tcp() {
        return Ok(Network::of(Mode::Ports(allow, why)));
    }
    Ok(Network::of(Mode::Unconfined(why)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::net::allow::Endpoint;

    fn agent(command: &[&str], mode: Option<NetworkMode>, allow: &[&str]) -> AgentSpec {
        AgentSpec::for_network_tests(command, mode, allow)
    }

    fn e(s: &str) -> Endpoint {
        Endpoint::parse(s).expect("entry")
    }

    #[test]
    fn the_strictest_mode_of_the_agents_wins_and_confined_reaches_what_any_may() {
        let (ok, tcp) = (|| Ok(()), || true);
        let open = agent(&["./a"], Some(NetworkMode::Open), &["127.0.0.1:1"]);
        let default = agent(&["./b"], None, &["127.0.0.1:2"]);
        let confined = agent(&["./c"], Some(NetworkMode::Confined), &["127.0.0.1:3"]);
        let none = agent(&["./d"], Some(NetworkMode::None), &[]);
        let d = |agents: &[(&str, &AgentSpec)]| decide("v", agents, &ok, &tcp).expect("decide");
        assert_eq!(d(&[("a", &open)]).mode, Mode::Open);
        assert_eq!(d(&[]).mode, Mode::Open);
        assert_eq!(
            d(&[("a", &open), ("b", &default), ("c", &confined)]).mode,
            Mode::Confined(AllowList(vec![e("127.0.0.1:2"), e("127.0.0.1:3")]))
        );
        assert_eq!(
            d(&[("b", &default), ("d", &none), ("a", &open)]).mode,
            Mode::None
        );
        // A preset brings its client's endpoints.
        let claude = agent(&["claude", "-p"], None, &[]);
        let Mode::Confined(list) = d(&[("claude", &claude)]).mode else {
            panic!("not confined")
        };
        assert!(list.0.contains(&e("api.anthropic.com:443")), "{list:?}");
    }

    #[test]
    fn without_namespaces_explicit_modes_refuse_and_the_default_falls_back() {
        let no = || Err("no user namespaces".to_string());
        let (tcp, no_tcp) = (|| true, || false);
        let default = agent(&["./b"], None, &[]);
        let n = decide("v", &[("b", &default)], &no, &tcp).expect("ports");
        assert!(matches!(n.mode, Mode::Ports(..)), "{n:?}");
        assert!(n.note("verify").is_some_and(|t| t.contains("ports only")));
        let n = decide("v", &[("b", &default)], &no, &no_tcp).expect("unconfined");
        assert!(
            matches!(n.mode, Mode::Unconfined(ref w) if w.contains("no user namespaces")),
            "{n:?}"
        );
        assert!(!n.confines());
        for mode in [NetworkMode::Confined, NetworkMode::None] {
            let a = agent(&["./a"], Some(mode), &[]);
            let err = decide(
                "the verify command",
                &[("b", &default), ("x", &a)],
                &no,
                &tcp,
            )
            .expect_err("refused");
            assert_eq!(err.code, exit::AGENT);
            assert!(err.error.to_string().contains("agent `x`"), "{}", err.error);
        }
        // Open asks for no probe at all.
        let open = agent(&["./a"], Some(NetworkMode::Open), &[]);
        let panics = || -> Result<(), String> { panic!("probed") };
        assert_eq!(
            decide("v", &[("a", &open)], &panics, &tcp)
                .expect("open")
                .mode,
            Mode::Open
        );
    }
}
