//! The network keys (`network`, `network_allow` in `[defaults]` and `[agents.NAME]`): read,
//! checked and resolved per agent. An agent's `network` replaces the default's; its
//! `network_allow` adds to it. Applying them is `crate::sandbox::net`'s.

use super::spans::{At, Bad, Reporter, Spelled};
use crate::sandbox::net::allow::{AllowList, Endpoint};

/// `network = "confined" | "open" | "none"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum NetworkMode {
    /// Only the client's own endpoints and `network_allow`, through orch's proxy.
    Confined,
    /// Whatever the machine reaches.
    Open,
    /// Nothing but the agent's own loopback.
    None,
}

impl Spelled for NetworkMode {}

impl NetworkMode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Confined => "confined",
            Self::Open => "open",
            Self::None => "none",
        }
    }
}

/// The network settings of `[defaults]` or of one agent (`None`: not written there).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct NetworkKeys {
    pub(crate) mode: Option<NetworkMode>,
    pub(crate) allow: Vec<Endpoint>,
}

/// What an agent's processes may reach, `[defaults]` and its own table combined.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Network {
    /// `None`: not written anywhere: `confined` where the machine can confine, else `open`.
    pub(crate) mode: Option<NetworkMode>,
    /// `network_allow` of `[defaults]`, then the agent's own.
    pub(crate) allow: AllowList,
}

impl NetworkKeys {
    /// An agent's settings over `defaults`.
    pub(crate) fn resolve(&self, defaults: &NetworkKeys) -> Network {
        let mut allow = AllowList::default();
        for e in defaults.allow.iter().chain(&self.allow) {
            allow.add(e.clone());
        }
        Network {
            mode: self.mode.or(defaults.mode),
            allow,
        }
    }
}

/// The hint of a bad `network` value.
const MODE_HINT: &str = "\"confined\" lets the agent reach only its client's endpoints and `network_allow`, \"open\" everything, \"none\" nothing";

/// The keys of `[defaults]`; `ORCH_NETWORK` stands in for its `network` where the manifest
/// gives none (a value orch does not know is an error, as the key's would be).
pub(super) fn defaults_keys(r: &mut Reporter<'_>, d: &super::raw::RawDefaults) -> NetworkKeys {
    let mut keys = keys(r, "defaults", d.network.as_ref(), d.network_allow.as_ref());
    if keys.mode.is_none()
        && let Some(v) = std::env::var_os(crate::agent_env::ORCH_NETWORK)
    {
        let v = v.to_string_lossy();
        keys.mode = NetworkMode::parse(&v);
        if keys.mode.is_none() {
            r.diagnostics.push(
                crate::diagnostic::Diagnostic::error(
                    r.path,
                    1,
                    format!(
                        "the environment variable `{}` must be \"confined\", \"open\" or \"none\", found \"{v}\"",
                        crate::agent_env::ORCH_NETWORK
                    ),
                )
                .with_hint("unset it, or set `network` in [defaults] (which it stands in for)"),
            );
        }
    }
    keys
}

/// Reads the two keys of one table (`ctx`: `defaults` or `agents.NAME`).
pub(super) fn keys(
    r: &mut Reporter<'_>,
    ctx: &str,
    mode: Option<&At<String>>,
    allow: Option<&At<Vec<At<String>>>>,
) -> NetworkKeys {
    let mode = r.check(mode, |v| {
        NetworkMode::parse(v).ok_or_else(|| {
            Bad::new(format!(
                "`{ctx}.network` must be \"confined\", \"open\" or \"none\", found \"{v}\""
            ))
            .hint(MODE_HINT)
        })
    });
    let allow = r.each(allow, |v| {
        Endpoint::parse(v).map_err(|why| {
            Bad::new(format!("`{ctx}.network_allow` entry `{v}`: {why}")).hint(
                "entries are `host:port`: a name (\"github.com:443\"), `*.` and a suffix (\"*.pypi.org:443\"), an IPv4 address (\"127.0.0.1:5432\") or a bracketed IPv6 one (\"[::1]:11434\")",
            )
        })
    });
    NetworkKeys {
        mode,
        allow: allow.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_agent_replaces_the_mode_and_adds_to_the_list() {
        let e = |s: &str| Endpoint::parse(s).expect(s);
        let defaults = NetworkKeys {
            mode: Some(NetworkMode::None),
            allow: vec![e("github.com:443")],
        };
        let own = NetworkKeys {
            mode: Some(NetworkMode::Confined),
            allow: vec![e("github.com:443"), e("*.pypi.org:443")],
        };
        let n = own.resolve(&defaults);
        assert_eq!(n.mode, Some(NetworkMode::Confined));
        assert_eq!(n.allow.0, vec![e("github.com:443"), e("*.pypi.org:443")]);
        let n = NetworkKeys::default().resolve(&defaults);
        assert_eq!(n.mode, Some(NetworkMode::None));
        assert_eq!(
            NetworkKeys::default().resolve(&NetworkKeys::default()).mode,
            None
        );
    }
}
