//! The sandbox keys (`sandbox`, `sandbox_write`, `sandbox_deny_read`, `pass_env` in
//! `[defaults]` and `[agents.NAME]`): read, checked and resolved per agent. Applying them is
//! `crate::sandbox`'s (and `crate::process`'s for `pass_env`).

use std::path::{Path, PathBuf};

use super::spans::{At, Bad, Reporter, Spelled};

/// `sandbox = "auto" | "on" | "off"`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SandboxMode {
    /// Confined where the kernel supports it, else unconfined with a warning (the default).
    #[default]
    Auto,
    /// Confined, or the run refuses to start the agent (exit 6).
    On,
    /// Never confined.
    Off,
}

impl super::spans::Spelled for SandboxMode {}

/// The sandbox settings of `[defaults]` or of one agent (`None`: not written there).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SandboxKeys {
    pub(crate) mode: Option<SandboxMode>,
    /// Extra writable paths (absolute, `~` expanded; they exist).
    pub(crate) write: Vec<PathBuf>,
    /// Paths not readable; `None`: [`DEFAULT_DENY_READ`].
    pub(crate) deny_read: Option<Vec<PathBuf>>,
    /// Withheld variables ([`crate::agent_env::withheld`]: agent sockets, GitHub tokens) passed to the agent;
    /// `None`: not written here.
    pub(crate) pass_env: Option<Vec<String>>,
    /// `network`, `network_allow` (`super::network`).
    pub(crate) network: super::network::NetworkKeys,
}

/// What an agent's attempts run under, `[defaults]` and its own table combined.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sandbox {
    pub(crate) mode: SandboxMode,
    pub(crate) write: Vec<PathBuf>,
    pub(crate) deny_read: Vec<PathBuf>,
    /// The withheld variables (agent sockets, GitHub tokens) its processes keep (confined or not): the agent's
    /// `pass_env`, else `[defaults]`'s, else none.
    pub(crate) pass_env: Vec<String>,
    /// What its processes may reach on the network.
    pub(crate) network: super::network::Network,
}

impl Sandbox {
    /// The rules of code this agent wrote when orch runs it outside an attempt (`verify`,
    /// `setup`), before its own worktree and `TMPDIR` are added: the devices and
    /// `sandbox_write`, read as the agent reads. Not the state directory, the client's state
    /// or any git directory: that code reports nothing and commits nothing.
    pub(crate) fn code_rules(&self) -> crate::sandbox::Rules {
        let mut write: Vec<PathBuf> = crate::sandbox::DEVICES.iter().map(PathBuf::from).collect();
        write.extend(self.write.iter().cloned());
        crate::sandbox::Rules {
            write,
            deny_read: self.deny_read.clone(),
            read: Vec::new(),
        }
    }
}

/// The paths of `HOME` no confined agent reads unless `sandbox_deny_read` says otherwise: keys
/// and logins, and the web browsers' profiles (their cookies log in to every site, and their
/// history holds the addresses a person opened, `orch serve`'s token among them: red team 16).
pub(crate) const DEFAULT_DENY_READ: [&str; 13] = [
    "~/.ssh",
    "~/.aws",
    "~/.gnupg",
    "~/.config/gh",
    "~/.netrc",
    "~/.docker",
    "~/.kube",
    "~/.git-credentials",
    "~/.config/chromium",
    "~/.config/google-chrome",
    "~/.config/BraveSoftware",
    "~/.mozilla",
    "~/snap/chromium",
];

impl SandboxKeys {
    /// An agent's settings over `defaults`.
    pub(crate) fn resolve(&self, defaults: &SandboxKeys) -> Sandbox {
        let mut write = defaults.write.clone();
        for p in &self.write {
            if !write.contains(p) {
                write.push(p.clone());
            }
        }
        // orch runs no program of its own choosing from where its agents may write.
        crate::sandbox::note_agent_writable(&write);
        let deny_read = self
            .deny_read
            .clone()
            .or_else(|| defaults.deny_read.clone())
            .unwrap_or_else(|| DEFAULT_DENY_READ.iter().filter_map(|p| expand(p)).collect());
        // A collector's client key stays orch's whatever `sandbox_deny_read` says (its variable is
        // withheld from every command; red team 11 read the file it named).
        let mut deny_read = deny_read;
        for key in collector_key_files() {
            if !deny_read.contains(&key) {
                deny_read.push(key);
            }
        }
        Sandbox {
            mode: self.mode.or(defaults.mode).unwrap_or_default(),
            write,
            deny_read,
            pass_env: self
                .pass_env
                .clone()
                .or_else(|| defaults.pass_env.clone())
                .unwrap_or_default(),
            network: self.network.resolve(&defaults.network),
        }
    }
}

/// The files orch's environment names as a collector's client key
/// (`OTEL_EXPORTER_OTLP_CLIENT_KEY` and each signal's, in any case): relative ones from orch's
/// working directory, as an exporter reads them.
pub(crate) fn collector_key_files() -> Vec<PathBuf> {
    let cwd = std::env::current_dir().ok();
    std::env::vars_os()
        .filter(|(k, _)| {
            k.to_str().is_some_and(|k| {
                let up = k.to_ascii_uppercase();
                up.starts_with("OTEL_EXPORTER_OTLP_") && up.ends_with("CLIENT_KEY")
            })
        })
        .filter(|(_, v)| !v.is_empty())
        .filter_map(|(_, v)| {
            let p = PathBuf::from(v);
            if p.is_absolute() {
                Some(p)
            } else {
                cwd.as_ref().map(|c| c.join(p))
            }
        })
        .collect()
}

/// `~` and `~/x` with `HOME`; an absolute path as it is; anything else `None`.
pub(crate) fn expand(p: &str) -> Option<PathBuf> {
    let home = || std::env::var_os("HOME").map(PathBuf::from);
    if p == "~" {
        home()
    } else if let Some(rest) = p.strip_prefix("~/") {
        home().map(|h| h.join(rest))
    } else if Path::new(p).is_absolute() {
        Some(PathBuf::from(p))
    } else {
        None
    }
}

/// Reads the four keys of one table (`ctx`: `defaults` or `agents.NAME`).
pub(super) fn keys(
    r: &mut Reporter<'_>,
    ctx: &str,
    mode: Option<&At<String>>,
    write: Option<&At<Vec<At<String>>>>,
    deny_read: Option<&At<Vec<At<String>>>>,
    pass_env: Option<&At<Vec<At<String>>>>,
) -> SandboxKeys {
    let mode = r.check(mode, |v| {
        SandboxMode::parse(v).ok_or_else(|| {
            Bad::new(format!("`{ctx}.sandbox` must be \"auto\", \"on\" or \"off\", found \"{v}\""))
                .hint("\"auto\" confines agents where the kernel supports it (Landlock), \"on\" refuses to run them unconfined, \"off\" never confines")
        })
    });
    let mut paths = |key: &str, at: Option<&At<Vec<At<String>>>>, must_exist: bool| {
        r.each(at, |v| match expand(v) {
            None => Err(
                Bad::new(format!("`{ctx}.{key}` entry `{v}` is not an absolute path")).hint(
                    "give an absolute path (\"/opt/cache\") or one in your home (\"~/.cache/pip\")",
                ),
            ),
            Some(p) if must_exist && !p.exists() => Err(Bad::new(format!(
                "`{ctx}.{key}` entry `{v}` does not exist"
            ))
            .hint("create it first, or remove the entry")),
            Some(p) => Ok(p),
        })
    };
    let write = paths("sandbox_write", write, true).unwrap_or_default();
    let deny_read = paths("sandbox_deny_read", deny_read, false);
    let sockets: Vec<&str> = crate::agent_env::withheld().collect();
    let pass = r.each(pass_env, |v| {
        if sockets.contains(&v.as_str()) {
            return Ok(v.clone());
        }
        Err(Bad::new(format!(
            "`{ctx}.pass_env` entry `{v}` is not one of the variables orch withholds from agents"
        ))
        .hint(format!(
            "every other variable is passed anyway; `pass_env` lets through: {}",
            sockets.join(", ")
        )))
    });
    let pass = pass.map(|vars| {
        vars.into_iter().fold(Vec::new(), |mut out, v| {
            if !out.contains(&v) {
                out.push(v);
            }
            out
        })
    });
    SandboxKeys {
        mode,
        write,
        deny_read,
        pass_env: pass,
        network: Default::default(),
    }
}

/// The sandbox keys of `[defaults]` and of each agent, resolved into each agent's `sandbox`.
pub(super) fn resolve_all(
    raw: &super::raw::RawManifest,
    defaults: &mut super::Defaults,
    agents: &mut std::collections::BTreeMap<String, super::AgentSpec>,
    r: &mut Reporter<'_>,
) {
    let d = &raw.defaults;
    defaults.sandbox = keys(
        r,
        "defaults",
        d.sandbox.as_ref(),
        d.sandbox_write.as_ref(),
        d.sandbox_deny_read.as_ref(),
        d.pass_env.as_ref(),
    );
    defaults.sandbox.network = super::network::defaults_keys(r, d);
    // `ORCH_SANDBOX` stands in for `[defaults] sandbox` where the manifest gives none; a value
    // orch does not know is an error, as the key's would be.
    if defaults.sandbox.mode.is_none()
        && let Some(v) = std::env::var_os(crate::agent_env::ORCH_SANDBOX)
    {
        let v = v.to_string_lossy();
        defaults.sandbox.mode = SandboxMode::parse(&v);
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
    let mut own = std::collections::BTreeMap::new();
    for a in raw.agents.values() {
        let ctx = format!("agents.{}", a.name.value);
        let keys = keys(
            r,
            &ctx,
            a.sandbox.as_ref(),
            a.sandbox_write.as_ref(),
            a.sandbox_deny_read.as_ref(),
            a.pass_env.as_ref(),
        );
        let keys = super::SandboxKeys {
            network: super::network::keys(r, &ctx, a.network.as_ref(), a.network_allow.as_ref()),
            ..keys
        };
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
