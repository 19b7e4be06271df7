//! `[[host]]` tables: the lead's other machines that run agents over SSH (`executor = "ssh"`),
//! and the `hosts = [...]` of a plan or an agent (which of them it may use). Every value is
//! checked here, at its `line:col`; `crate::executor::ssh` uses them.

use std::collections::BTreeMap;

use super::executor::ExecutorKind;
use super::model::{Host, PlanEntry};
use super::raw::{RawHost, RawManifest};
use super::spans::{At, Bad, Reporter};
use super::values::at_least_one;

/// Where orch keeps its cache and worktrees on a host without `dir`.
pub(crate) const DEFAULT_HOST_DIR: &str = "~/.cache/orch";

/// The longest host name (it names a control socket under the state directory).
const MAX_HOST_NAME_LEN: usize = 32;

/// The checks of one value of a `[[host]]`: a name, an `ssh` destination, a `dir`.
fn host_name(v: &String) -> Result<String, Bad> {
    let ok = !v.is_empty()
        && v.len() <= MAX_HOST_NAME_LEN
        && v.starts_with(|c: char| c.is_ascii_alphanumeric())
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(v.clone())
    } else {
        Err(Bad::new(format!("host name `{v}` is not allowed")).hint(format!(
            "a letter or digit, then letters, digits, `.`, `_`, `-`; at most {MAX_HOST_NAME_LEN} characters"
        )))
    }
}

fn destination(v: &str) -> Result<String, Bad> {
    if v.is_empty() || v.starts_with('-') || v.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Bad::new(format!(
            "`host.ssh` `{}` is not an ssh destination",
            v.escape_debug()
        ))
        .hint("what `ssh` takes: \"user@build1.example.com\" or an alias of ~/.ssh/config; never an option"));
    }
    Ok(v.to_string())
}

fn remote_dir(v: &str) -> Result<String, Bad> {
    let shaped = v.starts_with('/') || v.starts_with("~/");
    let clean =
        !v.chars().any(|c| c.is_control()) && !v.split('/').any(|c| c == "..") && v.len() <= 1024;
    if shaped && clean {
        Ok(v.trim_end_matches('/').to_string())
    } else {
        Err(
            Bad::new(format!("`host.dir` `{}` is not allowed", v.escape_debug()))
                .hint("an absolute path on the host, or one under its home: \"~/.cache/orch\""),
        )
    }
}

/// Checks the `[[host]]` tables: the good ones, in file order.
pub(super) fn hosts(raw: &[At<RawHost>], r: &mut Reporter<'_>) -> Vec<Host> {
    let mut out: Vec<Host> = Vec::new();
    for At { value: h, span } in raw {
        let (line, _) = r.line_col(span);
        let name = r.check(h.name.as_ref(), host_name);
        let ssh = r.check(h.ssh.as_ref(), |v| destination(v));
        let port = r.check(h.port.as_ref(), |&p| {
            u16::try_from(p)
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| Bad::new(format!("`host.port` must be 1 to 65535, found {p}")))
        });
        let slots = r.check(h.slots.as_ref(), at_least_one("host.slots"));
        let dir = r.check(h.dir.as_ref(), |v| remote_dir(v));
        let confined = r.check(h.sandbox.as_ref(), |v| match v.as_str() {
            "on" => Ok(true),
            "off" => Ok(false),
            _ => Err(Bad::new(format!("`host.sandbox` must be \"on\" or \"off\", found \"{v}\""))
                .hint("\"on\" (the default) refuses a host without Landlock; \"off\" runs its agents unconfined")),
        });
        if h.name.is_none() {
            r.error_hint(span, "a `[[host]]` table needs `name`", "name = \"build1\"");
        }
        if h.ssh.is_none() {
            r.error_hint(
                span,
                "a `[[host]]` table needs `ssh`",
                "ssh = \"user@build1.example.com\" (what `ssh` takes: an alias of ~/.ssh/config works)",
            );
        }
        if let (Some(name), Some(at)) = (&name, &h.name)
            && let Some(first) = out.iter().find(|o| &o.name == name)
        {
            r.error_hint(
                &at.span,
                format!("host `{name}` is defined twice"),
                format!(
                    "the first `[[host]]` of that name is at line {}",
                    first.line
                ),
            );
            continue;
        }
        let (Some(name), Some(ssh)) = (name, ssh) else {
            continue;
        };
        out.push(Host {
            name,
            ssh,
            port,
            slots: slots.unwrap_or(1),
            dir: dir.unwrap_or_else(|| DEFAULT_HOST_DIR.to_string()),
            confined: confined.unwrap_or(true),
            line,
        });
    }
    out
}

/// One `hosts = [...]` list: its names, each checked to name a `[[host]]`.
fn names(r: &mut Reporter<'_>, ctx: &str, at: &At<Vec<At<String>>>, hosts: &[Host]) -> Vec<String> {
    if at.value.is_empty() {
        r.error_hint(
            &at.span,
            format!("`{ctx}` must not be empty"),
            "remove the key to use every `[[host]]`",
        );
    }
    let known = hosts
        .iter()
        .map(|h| format!("`{}`", h.name))
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = Vec::new();
    for name in &at.value {
        if !hosts.iter().any(|h| h.name == name.value) {
            let hint = if known.is_empty() {
                "no `[[host]]` is defined: add one".to_string()
            } else {
                format!("the hosts are {known}")
            };
            r.error_hint(
                &name.span,
                format!("`{ctx}` names unknown host `{}`", name.value),
                hint,
            );
        } else if !out.contains(&name.value) {
            out.push(name.value.clone());
        }
    }
    out
}

/// Resolves each plan's hosts (its own `hosts`, else its agent's, else every `[[host]]`) and
/// checks every `hosts` list and every `executor = "ssh"` against the `[[host]]` tables.
pub(super) fn plans(
    raw: &RawManifest,
    hosts: &[Host],
    out: &mut [PlanEntry],
    r: &mut Reporter<'_>,
) {
    // `executor = "ssh"` wherever written needs a host.
    if hosts.is_empty() {
        let written = std::iter::once(raw.defaults.executor.as_ref())
            .chain(raw.agents.values().map(|a| a.executor.as_ref()))
            .chain(raw.plan.iter().map(|p| p.value.executor.as_ref()))
            .flatten()
            .filter(|e| e.value == ExecutorKind::Ssh.as_str());
        let spans: Vec<_> = written.map(|e| e.span.clone()).collect();
        for span in spans {
            r.error_hint(
                &span,
                "`executor = \"ssh\"` needs at least one `[[host]]`",
                "[[host]]\nname = \"build1\"\nssh = \"user@build1.example.com\"",
            );
        }
    }
    let mut of_agent: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, agent) in &raw.agents {
        if let Some(at) = &agent.hosts {
            let list = names(r, &format!("agents.{name}.hosts"), at, hosts);
            of_agent.insert(name.as_str(), list);
        }
    }
    for entry in out.iter_mut() {
        let own = raw
            .plan
            .iter()
            .find(|p| p.value.name.as_ref().is_some_and(|n| n.value == entry.name))
            .and_then(|p| p.value.hosts.as_ref());
        let chosen = match own {
            Some(at) => {
                let list = names(r, "plan.hosts", at, hosts);
                if entry.executor != ExecutorKind::Ssh {
                    r.error_hint(
                        &at.span,
                        format!(
                            "plan `{}` has `hosts` but runs with executor \"{}\"",
                            entry.name,
                            entry.executor.as_str()
                        ),
                        "`hosts` chooses among the `[[host]]` machines of executor = \"ssh\"",
                    );
                }
                Some(list)
            }
            None => of_agent.get(entry.agent.as_str()).cloned(),
        };
        entry.hosts = match chosen {
            Some(list) => list,
            None if entry.executor == ExecutorKind::Ssh => {
                hosts.iter().map(|h| h.name.clone()).collect()
            }
            None => Vec::new(),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// orch's own entries among the hosts' control sockets are names no host can take.
    #[test]
    fn no_host_name_meets_orchs_own_names() {
        for n in crate::state_layout::SSH_OWN {
            assert!(host_name(&n.to_string()).is_err(), "{n}");
        }
        assert!(host_name(&"usable".to_string()).is_ok());
    }

    #[test]
    fn values_are_checked() {
        for bad in ["", "-oProxyCommand=x", "a b", "a\nb"] {
            assert!(destination(bad).is_err(), "{bad:?}");
        }
        assert!(destination("ci@build1").is_ok());
        for bad in ["rel/dir", "/a/../b", "~user/x", "/a\n"] {
            assert!(remote_dir(bad).is_err(), "{bad:?}");
        }
        assert_eq!(remote_dir("/srv/orch/").ok().as_deref(), Some("/srv/orch"));
        assert!(remote_dir("~/.cache/orch").is_ok());
        for bad in ["", "-a", "a/b", ".a", &"x".repeat(40)] {
            assert!(host_name(&bad.to_string()).is_err(), "{bad:?}");
        }
    }
}
