//! `orch hosts`: each `[[host]]` of the manifest reached over SSH, made ready (orch's copy in its
//! `dir`) and asked what it offers. The work is [`crate::executor::ssh`]'s; this prints it.

use std::path::Path;

use anyhow::anyhow;
use serde_json::json;

use super::output::{print_json, println_safe};
use crate::error::{CliResult, exit};
use crate::executor::ssh::cause::Cause;
use crate::executor::ssh::{Conn, HostReport, probe};
use crate::untrusted::text::escaped;
use crate::workspace::Selection;

pub(crate) fn run(sel: &Selection, json_out: bool) -> CliResult<u8> {
    let (_, manifest) = super::with_manifest(
        sel,
        true,
        "`orch hosts` needs a plans.toml: it checks the `[[host]]` machines the manifest lists",
    )?;
    let orch_bin =
        std::env::current_exe().map_err(|e| anyhow!("cannot find the orch executable: {e}"))?;
    let state_dir = manifest.root.join(&manifest.defaults.state_dir);
    let clients = preset_clients();
    // Every host at once: one that does not answer costs its connect timeout, not the others'.
    let reports: Vec<HostReport> = std::thread::scope(|s| {
        let handles: Vec<_> = manifest
            .hosts
            .iter()
            .map(|h| {
                let (bin, state, clients) = (&orch_bin, &state_dir, &clients);
                s.spawn(move || one(h, state, bin, clients))
            })
            .collect();
        handles
            .into_iter()
            .zip(&manifest.hosts)
            .map(|(t, h)| {
                t.join().unwrap_or_else(|_| HostReport {
                    name: h.name.clone(),
                    error: Some("the check of the host panicked".into()),
                    ..HostReport::default()
                })
            })
            .collect()
    });
    crate::executor::ssh::conn::end_own();
    if json_out {
        print_json(&json!({ "hosts": reports }));
    } else if reports.is_empty() {
        println_safe("no `[[host]]` in plans.toml");
    } else {
        for r in &reports {
            println_safe(&line(r));
        }
    }
    Ok(if reports.iter().all(|r| r.usable) {
        exit::OK
    } else {
        exit::INCOMPLETE
    })
}

fn one(
    host: &crate::manifest::Host,
    state_dir: &Path,
    orch_bin: &Path,
    clients: &[String],
) -> HostReport {
    let conn = match Conn::new(host, state_dir) {
        Ok(c) => c,
        Err(e) => {
            return HostReport {
                name: host.name.clone(),
                error: Some(format!("cannot make the control socket's directory: {e}")),
                ..HostReport::default()
            };
        }
    };
    // A one-off command: the shared connection ends with it (and its control directory with
    // the command, `end_own`).
    let report = probe(&conn, orch_bin, clients, None);
    conn.close();
    report
}

/// The program of each preset (`claude`, `codex`, …), once each.
fn preset_clients() -> Vec<String> {
    let mut out: Vec<String> = crate::manifest::presets()
        .values()
        .filter_map(|a| a.command.first().cloned())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// One host as a line: `build1  ready  Landlock ABI 6  git 2.39.5  40.1 GiB free  clients: …`;
/// a host that cannot run agents says why (its cause, what `ssh` or the host said, escaped) and
/// the fix.
fn line(r: &HostReport) -> String {
    let mut parts = vec![r.name.clone()];
    if r.answers {
        parts.push(if r.usable { "ready" } else { "refused" }.to_string());
        if let Some(abi) = r.landlock_abi {
            parts.push(if abi == 0 {
                "no Landlock".to_string()
            } else {
                format!("Landlock ABI {abi}")
            });
        }
        if r.landlock_abi.is_some() {
            parts.push(escaped(r.git.as_deref().unwrap_or("no git")).into_owned());
        }
        if let Some(free) = r.free_bytes {
            parts.push(format!(
                "{:.1} GiB free",
                free as f64 / f64::from(1u32 << 30)
            ));
        }
        if r.landlock_abi.is_some() {
            parts.push(if r.clients.is_empty() {
                "no preset's client".to_string()
            } else {
                format!("clients: {}", r.clients.join(", "))
            });
        }
        if r.copied {
            parts.push("orch copied".into());
        }
    } else {
        parts.push("cannot connect".into());
    }
    match (&r.cause, &r.error) {
        (Some(c), Some(e)) if !r.answers => {
            // The cause first, then what `ssh` said (after the error's own opening).
            let said = e.split_once("): ").map_or(e.as_str(), |(_, w)| w);
            parts.push(format!("{}: {}", c.says(), escaped(said)));
        }
        (Some(c), _) if *c != Cause::Other => parts.push(format!("cause: {}", c.says())),
        (_, Some(e)) => parts.push(escaped(e).into_owned()),
        _ => {}
    }
    if let Some(fix) = &r.fix
        && !r.usable
    {
        parts.push(format!("fix: {}", escaped(fix)));
    }
    parts.join("  ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_host_says_is_shown_escaped() {
        let r = HostReport {
            name: "h1".into(),
            answers: true,
            usable: true,
            landlock_abi: Some(6),
            git: Some("git version 2.39\u{1b}[2J\r\nh2  ready".into()),
            free_bytes: Some(3 << 30),
            clients: vec!["claude".into()],
            ..HostReport::default()
        };
        let shown = line(&r);
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\n') && !shown.contains('\r'),
            "{shown}"
        );
        assert!(
            shown.starts_with("h1  ready  Landlock ABI 6  git version 2.39"),
            "{shown}"
        );
        assert!(
            shown.contains("3.0 GiB free") && shown.contains("clients: claude"),
            "{shown}"
        );
        let down = HostReport {
            name: "h2".into(),
            error: Some(
                "host `h2` cannot be reached (ssh failed): \u{1b}]0;pwned\u{7}\r\nmore".into(),
            ),
            cause: Some(Cause::Other),
            fix: Some("`ssh h2 true` shows what ssh says".into()),
            ..HostReport::default()
        };
        let shown = line(&down);
        assert!(
            shown.starts_with("h2  cannot connect  ssh failed: ")
                && shown.contains("fix: `ssh h2 true`"),
            "{shown}"
        );
        assert!(!shown.contains('\r') && !shown.contains('\n'), "{shown}");
        assert!(
            !shown.contains('\u{1b}') && !shown.contains('\u{7}'),
            "{shown}"
        );
    }

    #[test]
    fn the_presets_clients_are_named_once_each() {
        let c = preset_clients();
        assert!(
            c.iter().any(|p| p == "claude") && c.iter().any(|p| p == "codex"),
            "{c:?}"
        );
        let mut d = c.clone();
        d.dedup();
        assert_eq!(c, d);
    }
}
