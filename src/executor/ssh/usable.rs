//! Whether a `[[host]]` may run agents, decided when orch first probes it in a run (as
//! `orch hosts` probes it: orch's copy there says its Landlock ABI): a host without Landlock whose
//! table does not say `sandbox = "off"` is refused. The decision is orch's own record,
//! `<state_dir>/.ssh/.usable/<host>` (`ok`, or `refused` and why), made afresh at each start of
//! `orch up` for the hosts of its ssh plans; a host that did not answer then is probed by the
//! first attempt that reaches it. A refused host takes no attempt ([`super::slots::take`]).

use std::path::{Path, PathBuf};

use super::report::HostReport;
use crate::manifest::Host;

/// What the probe of a host decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It may run agents; `note`: said to the user (no Landlock, its agents unconfined).
    Usable { note: Option<String> },
    /// It answered and may not run agents: why, with the fix.
    Refused(String),
    /// It did not answer (or orch's copy there could not be made ready): why.
    NoAnswer(String),
}

fn path(state_dir: &Path, host: &str) -> PathBuf {
    crate::state_layout::ssh_own(state_dir, crate::state_layout::SSH_USABLE).join(host)
}

/// The verdict on `report`, the probe of `host`. A host whose `ssh` fails for a cause a person
/// must fix (a refused key, a host key that changed or is unknown, a missing key file) is
/// refused, as one that answers without git or without the Landlock its agents need; one that
/// does not answer (a refused connection, the network) may come back, and is tried again.
pub(crate) fn verdict(host: &Host, report: &HostReport) -> Verdict {
    use super::cause::Cause;
    let needs_a_person = matches!(
        report.cause,
        Some(
            Cause::KeyRefused
                | Cause::HostKeyChanged
                | Cause::HostKeyUnknown
                | Cause::KeyFileMissing
                | Cause::NoGit
                | Cause::NoLandlock
        )
    );
    if !report.answers && !needs_a_person {
        return Verdict::NoAnswer(
            report
                .error
                .clone()
                .unwrap_or_else(|| "no answer".to_string()),
        );
    }
    if report.usable {
        let note = (report.landlock_abi == Some(0)).then(|| {
            format!(
                "host `{}` has no Landlock: its agents run unconfined (its `[[host]]` at line {} says `sandbox = \"off\"`)",
                host.name, host.line
            )
        });
        return Verdict::Usable { note };
    }
    let cause = report.cause.unwrap_or(if report.landlock_abi == Some(0) {
        Cause::NoLandlock
    } else {
        Cause::Other
    });
    let said = match (cause, &report.error) {
        // What `ssh` said, after the cause.
        (
            Cause::KeyRefused
            | Cause::HostKeyChanged
            | Cause::HostKeyUnknown
            | Cause::KeyFileMissing,
            Some(e),
        ) => format!(" ({})", e.split_once("): ").map_or(e.as_str(), |(_, w)| w)),
        (Cause::Other, Some(e)) => format!(" ({e})"),
        _ => String::new(),
    };
    let fix = report.fix.clone().unwrap_or_else(|| cause.fix(host, ""));
    Verdict::Refused(format!(
        "host `{}` cannot run agents: {}{said}; no attempt runs there (fix: {fix})",
        host.name,
        cause.says()
    ))
}

/// `host `x` does not answer (…)` for `why`, what orch found (a [`super::conn::ConnError`]'s
/// words name the host already: said once).
pub(crate) fn does_not_answer(host: &str, why: &str) -> String {
    let named = format!("host `{host}` ");
    match why.strip_prefix(&named) {
        Some(rest) => match rest.strip_prefix("cannot be reached ") {
            Some(cause) if cause.starts_with('(') => format!("{named}does not answer {cause}"),
            _ => format!("{named}does not answer ({rest})"),
        },
        None => format!("{named}does not answer ({why})"),
    }
}

/// Records `verdict` for `host` (nothing is recorded for a host that did not answer).
pub(crate) fn record(state_dir: &Path, host: &str, verdict: &Verdict) {
    let p = path(state_dir, host);
    let text = match verdict {
        Verdict::Usable { .. } => "ok\n".to_string(),
        Verdict::Refused(why) => format!("refused {why}\n"),
        Verdict::NoAnswer(_) => {
            forget(state_dir, host);
            return;
        }
    };
    if let Some(d) = p.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    let _ = crate::links::write(&p, text.as_bytes());
}

/// Forgets the verdict on `host` (its next probe decides again).
pub(crate) fn forget(state_dir: &Path, host: &str) {
    let _ = std::fs::remove_file(path(state_dir, host));
}

/// The recorded verdict on `host`: `None` when it was not probed since the run started, else
/// `Some(None)` usable, `Some(Some(why))` refused.
pub(crate) fn recorded(state_dir: &Path, host: &str) -> Option<Option<String>> {
    let bytes =
        crate::untrusted::read::optional(&path(state_dir, host), crate::untrusted::read::REPORT)
            .ok()??;
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim_end();
    if text == "ok" {
        return Some(None);
    }
    text.strip_prefix("refused ")
        .map(|why| Some(why.chars().take(2000).collect()))
}

/// Whether `host` is recorded refused.
pub(crate) fn is_refused(state_dir: &Path, host: &str) -> bool {
    matches!(recorded(state_dir, host), Some(Some(_)))
}

/// Why an attempt has no host left: each of `hosts` refused.
pub(crate) fn none_left(state_dir: &Path, hosts: &[Host]) -> String {
    let whys: Vec<String> = hosts
        .iter()
        .filter_map(|h| recorded(state_dir, &h.name).flatten())
        .collect();
    format!(
        "no host of the plan can run its agents, so the attempt runs nowhere: {}",
        whys.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(confined: bool) -> Host {
        Host {
            name: "h1".into(),
            ssh: "h1".into(),
            port: None,
            slots: 1,
            dir: "/srv/orch".into(),
            confined,
            line: 7,
        }
    }

    fn report(abi: Option<u8>, confined: bool) -> HostReport {
        let usable = matches!(abi, Some(a) if a > 0 || !confined);
        HostReport {
            name: "h1".into(),
            answers: true,
            landlock_abi: abi,
            usable,
            cause: (!usable).then_some(super::super::cause::Cause::NoLandlock),
            ..HostReport::default()
        }
    }

    #[test]
    fn a_host_without_landlock_is_refused_unless_its_table_says_off_and_the_record_says_so() {
        let tmp = tempfile::tempdir().expect("tmp");
        let on = verdict(&host(true), &report(Some(0), true));
        assert!(
            matches!(&on, Verdict::Refused(w) if w.contains("`h1`") && w.contains("sandbox = \"off\"") && w.contains("line 7")),
            "{on:?}"
        );
        record(tmp.path(), "h1", &on);
        assert!(is_refused(tmp.path(), "h1"));
        let off = verdict(&host(false), &report(Some(0), false));
        assert!(
            matches!(&off, Verdict::Usable { note: Some(n) } if n.contains("unconfined")),
            "{off:?}"
        );
        record(tmp.path(), "h1", &off);
        assert_eq!(recorded(tmp.path(), "h1"), Some(None));
        let fine = verdict(&host(true), &report(Some(6), true));
        assert_eq!(fine, Verdict::Usable { note: None });
        let gone = HostReport {
            error: Some("down".into()),
            ..HostReport::default()
        };
        record(tmp.path(), "h1", &verdict(&host(true), &gone));
        assert_eq!(recorded(tmp.path(), "h1"), None);
        // What is not orch's record reads as no record.
        std::fs::write(path(tmp.path(), "h1"), "whatever").expect("write");
        assert_eq!(recorded(tmp.path(), "h1"), None);
    }

    #[test]
    fn a_host_that_does_not_answer_is_named_once() {
        let e = super::super::conn::ConnError::Unreachable {
            host: "x".into(),
            cause: super::super::cause::Cause::ConnectionRefused,
            why: "ssh: connect to host 127.0.0.1 port 9: Connection refused".into(),
        };
        let said = does_not_answer("x", &e.to_string());
        assert_eq!(said.matches("`x`").count(), 1, "{said}");
        assert!(said.starts_with("host `x` does not answer ("), "{said}");
        assert!(said.ends_with("Connection refused"), "{said}");
        let t = does_not_answer("x", "host `x` did not finish the probe within 60s");
        assert_eq!(
            t,
            "host `x` does not answer (did not finish the probe within 60s)"
        );
        let other = does_not_answer("x", "the connection ended before the attempt did");
        assert_eq!(
            other,
            "host `x` does not answer (the connection ended before the attempt did)"
        );
    }
}
