//! A host made ready and asked what it offers: orch's copy in `<dir>/bin/orch-<blob id>`
//! (copied over the connection when missing or different, checked by its git blob id there
//! before it is moved into place), then that copy's `orch host-probe`; what it found judged and
//! recorded ([`super::usable`]) at the start of `orch up` ([`check_at_start`]) or by the first
//! attempt that reaches a host not probed then ([`probe_and_record`]).

use std::path::Path;
use std::time::Duration;

use super::cause::Cause;
use super::conn::{Conn, ConnError};
use super::report::HostReport;

/// The deadline of a short remote command.
const SHORT: Duration = Duration::from_secs(60);
/// The deadline of the copy of orch's executable.
const COPY: Duration = Duration::from_secs(600);

/// The opening of every script: `$d`, the host's `dir` (`~/…` under the remote user's home).
pub(super) const DIR: &str = r#"d=$1; case $d in "~/"*) d="$HOME/${d#"~/"}";; esac
"#;

/// Whether `<dir>/bin/orch-<id>` is there with that id (`present` or `missing`); `dir` and its
/// `bin` made, writable by the remote user only (what runs from there is orch's). `no-git`
/// first when the session's `PATH` has no `git` (orch's copy is checked, and its work done,
/// with it). The copy is hashed once per content of the file, not by every attempt: once its id
/// is checked, its identity (`stat`: size, inode, modification and change times; the change
/// time cannot be set back) is kept beside it in `orch-<id>.checked`, and a copy whose identity
/// is that one is present without hashing it again (a `stat` without `-c`: hashed each time).
const INSTALLED: &str = r#"command -v git >/dev/null 2>&1 || { echo no-git; exit 0; }
mkdir -p "$d/bin" && chmod go-w "$d" "$d/bin"
f="$d/bin/orch-$2"
[ -f "$f" ] || { echo missing; exit 0; }
s=$(stat -c '%s %i %Y %Z' -- "$f" 2>/dev/null) || s=
if [ -n "$s" ] && [ "$(cat -- "$f.checked" 2>/dev/null)" = "$s" ]; then echo present; exit 0; fi
if [ "$(git hash-object -- "$f" 2>/dev/null)" = "$2" ]; then
    [ -z "$s" ] || { printf '%s\n' "$s" > "$f.checked.$$" && mv -f "$f.checked.$$" "$f.checked"; } 2>/dev/null
    echo present
else
    echo missing
fi
"#;

/// stdin to `<dir>/bin/orch-<id>`, through a temporary name, moved in once its id is checked.
const UPLOAD: &str = r#"set -e
mkdir -p "$d/bin"
t="$d/bin/.orch-$2.$$"
trap 'rm -f "$t"' EXIT
cat > "$t"
chmod 755 "$t"
if [ "$(git hash-object -- "$t")" != "$2" ]; then echo "the copy's git blob id differs from $2" >&2; exit 3; fi
mv -f "$t" "$d/bin/orch-$2"
"#;

/// git's version line, then the copy's `host-probe` JSON line.
const PROBE: &str = r#"id=$2; shift 2
printf 'git %s\n' "$(git --version 2>/dev/null)"
exec "$d/bin/orch-$id" host-probe --dir "$d" "$@"
"#;

fn script(body: &str) -> String {
    format!("{DIR}{body}")
}

/// What [`install`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Installed {
    /// orch's copy was there.
    Present,
    /// orch's copy was sent now.
    Copied,
    /// The host's sessions have no `git`: nothing was sent, the host cannot run agents.
    NoGit,
}

/// Makes sure orch's executable `orch_bin` is on the host.
pub(crate) fn install(conn: &Conn, orch_bin: &Path, id: &str) -> Result<Installed, ConnError> {
    let dir = conn.host.dir.as_str();
    let out = conn.run(
        "the check of orch's copy",
        &script(INSTALLED),
        &[dir, id],
        None,
        SHORT,
    )?;
    if out.stdout.starts_with(b"no-git") {
        return Ok(Installed::NoGit);
    }
    if out.stdout.starts_with(b"present") {
        return Ok(Installed::Present);
    }
    conn.run(
        "the copy of orch",
        &script(UPLOAD),
        &[dir, id],
        Some(orch_bin),
        COPY,
    )?;
    Ok(Installed::Copied)
}

/// The report on a host whose sessions have no `git` (it answered; it cannot run agents).
pub(crate) fn no_git(host: &crate::manifest::Host) -> HostReport {
    let cause = Cause::NoGit;
    HostReport {
        name: host.name.clone(),
        answers: true,
        error: Some(format!("host `{}`: {}", host.name, cause.says())),
        cause: Some(cause),
        fix: Some(cause.fix(host, "")),
        ..HostReport::default()
    }
}

/// `report` with the error `e` of its connection, its cause and fix.
fn failed(mut report: HostReport, host: &crate::manifest::Host, e: &ConnError) -> HostReport {
    let (cause, detail) = match e {
        ConnError::Unreachable { cause, why, .. } => (*cause, why.as_str()),
        ConnError::Timeout { .. } => (Cause::Network, ""),
        _ => (Cause::Other, ""),
    };
    report.error = Some(e.to_string());
    report.cause = Some(cause);
    report.fix = Some(cause.fix(host, detail));
    report
}

/// The file in orch's state directory that remembers the git blob id of orch's executable
/// ([`orch_id`]).
const ORCH_ID_FILE: &str = "orch-executable-id";

/// What identifies one content of a file without reading it: its device and inode, size, and
/// modification and change times (a write, a replacement or a `touch` alters one of them; the
/// change time cannot be set back).
fn file_key(path: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok(format!(
        "{} {} {} {}.{} {}.{}",
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec()
    ))
}

/// The git blob id of orch's executable `orch_bin` (the name of its copy on a host), hashed once
/// per content of the file rather than by every probe and every attempt's driver (a hash of the
/// whole executable each time): remembered in this process, and with `state_dir` (orch's own)
/// in [`ORCH_ID_FILE`] there, each keyed by the file's identity ([`file_key`]), read again
/// before and after hashing so that a file replaced meanwhile is never given the other's id.
pub(crate) fn orch_id(orch_bin: &Path, state_dir: Option<&Path>) -> std::io::Result<String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock, PoisonError};
    static SEEN: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    // Held while hashing: the run's probes of several hosts at once hash once.
    let mut seen = SEEN
        .get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let key = format!("{} {}", orch_bin.display(), file_key(orch_bin)?);
    if let Some(id) = seen.get(&key) {
        return Ok(id.clone());
    }
    let file = state_dir.map(|d| d.join(ORCH_ID_FILE));
    let recorded = file.as_deref().and_then(|f| {
        let bytes = crate::untrusted::read::head(f, 4096).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (k, id) = text.trim_end().rsplit_once(' ')?;
        (k == key && id.len() == 40 && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| id.to_string())
    });
    let id = match recorded {
        Some(id) => id,
        None => {
            let id = crate::git::blob_id_of_file(orch_bin)?;
            if file_key(orch_bin).map(|k| format!("{} {k}", orch_bin.display()))? != key {
                return Err(std::io::Error::other(
                    "orch's executable changed while its id was computed",
                ));
            }
            if let (Some(f), Some(dir)) = (file.as_deref(), state_dir) {
                // Written aside and renamed into place: a reader sees a whole line or none.
                let tmp = dir.join(format!(".{ORCH_ID_FILE}.{}", std::process::id()));
                let written = crate::links::write(&tmp, format!("{key} {id}\n").as_bytes())
                    .and_then(|()| std::fs::rename(&tmp, f));
                if written.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
            }
            id
        }
    };
    seen.insert(key, id.clone());
    Ok(id)
}

/// Makes the host ready and asks it what it offers; `clients` are the program names to look for;
/// `state_dir`: orch's, where the id of its executable is remembered ([`orch_id`]).
pub(crate) fn probe(
    conn: &Conn,
    orch_bin: &Path,
    clients: &[String],
    state_dir: Option<&Path>,
) -> HostReport {
    let mut report = HostReport {
        name: conn.host.name.clone(),
        ..HostReport::default()
    };
    let id = match orch_id(orch_bin, state_dir) {
        Ok(id) => id,
        Err(e) => {
            report.error = Some(format!(
                "cannot read orch's executable `{}`: {e}",
                orch_bin.display()
            ));
            return report;
        }
    };
    let asked = install(conn, orch_bin, &id).and_then(|installed| {
        if installed == Installed::NoGit {
            return Ok(None);
        }
        report.copied = installed == Installed::Copied;
        let mut args = vec![conn.host.dir.as_str(), id.as_str()];
        for c in clients {
            args.extend(["--client", c.as_str()]);
        }
        conn.run("orch host-probe", &script(PROBE), &args, None, SHORT)
            .map(Some)
    });
    let out = match asked {
        Ok(Some(out)) => out,
        Ok(None) => return no_git(&conn.host),
        Err(e) => return failed(report, &conn.host, &e),
    };
    report.answers = true;
    let text = String::from_utf8_lossy(&out.stdout);
    // The git line, then the copy's JSON.
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let v = first
        .strip_prefix("git ")
        .map(str::trim)
        .unwrap_or_default();
    report.git = (!v.is_empty()).then(|| v.chars().take(200).collect());
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(rest) {
        report.landlock_abi = v["landlock_abi"]
            .as_u64()
            .and_then(|a| u8::try_from(a).ok());
        report.free_bytes = v["free_bytes"].as_u64();
        report.clients = v["clients"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str())
            .filter(|c| clients.iter().any(|k| k == c))
            .map(str::to_string)
            .collect();
    }
    let cause = match report.landlock_abi {
        None => {
            report.error = Some("orch's copy on the host gave no answer".into());
            Cause::Other
        }
        Some(0) if conn.host.confined => {
            report.error = Some(
                "the host has no Landlock, and its agents must be confined (`sandbox = \"on\"`)"
                    .into(),
            );
            Cause::NoLandlock
        }
        Some(_) => {
            report.usable = true;
            return report;
        }
    };
    report.cause = Some(cause);
    report.fix = Some(cause.fix(&conn.host, ""));
    report
}

/// Probes `conn`'s host (orch's copy made ready there first) and records the verdict.
pub(crate) fn probe_and_record(
    conn: &Conn,
    state_dir: &Path,
    orch_bin: &Path,
) -> super::usable::Verdict {
    probe_record_and_find(conn, state_dir, orch_bin, &[]).0
}

/// [`probe_and_record`], and which of `programs` (names looked for on `PATH`) the host's
/// sessions lack (none when it is not usable).
fn probe_record_and_find(
    conn: &Conn,
    state_dir: &Path,
    orch_bin: &Path,
    programs: &[String],
) -> (super::usable::Verdict, Vec<String>) {
    let report = probe(conn, orch_bin, programs, Some(state_dir));
    let v = super::usable::verdict(&conn.host, &report);
    super::usable::record(state_dir, &conn.host.name, &v);
    let lacking = match v {
        super::usable::Verdict::Usable { .. } => programs
            .iter()
            .filter(|p| !report.clients.contains(p))
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    (v, lacking)
}

/// What [`check_at_start`] found.
#[derive(Debug, Default)]
pub(crate) struct AtStart {
    /// What to tell the user: a host that does not answer, one refused, one without Landlock
    /// whose agents run unconfined.
    pub(crate) notes: Vec<String>,
    /// The hosts refused ([`super::usable`]), each with why.
    pub(crate) refused: Vec<(String, String)>,
    /// `(host, program)`: a program asked for that a usable host's `PATH` does not have.
    pub(crate) lacking: Vec<(String, String)>,
}

/// Probes each of `hosts` at once as `orch hosts` does (orch's copy `orch_bin` made ready there,
/// over its shared connection, which stays open for the attempts) and records whether it may run
/// agents ([`super::usable`]). A host that does not answer is marked down (tried again after a
/// back-off, [`super::slots`]) and probed by the first attempt that reaches it; a host that
/// answers is no longer marked down.
/// `programs`: the programs the run's agents need on their hosts (names looked for on `PATH`),
/// each host's lack of them found too ([`AtStart::lacking`]).
pub(crate) fn check_at_start(
    state_dir: &Path,
    hosts: &[crate::manifest::Host],
    orch_bin: &Path,
    programs: &[String],
) -> AtStart {
    use super::usable::Verdict;
    // The run's shared connections (`orch up`'s own): the probes use them once they are up.
    super::conn::keep_masters(hosts, orch_bin);
    let asked: Vec<_> = hosts
        .iter()
        .map(|h| {
            let (h, state_dir, orch_bin, programs) = (
                h.clone(),
                state_dir.to_path_buf(),
                orch_bin.to_path_buf(),
                programs.to_vec(),
            );
            std::thread::spawn(move || {
                let (verdict, lacking) = match Conn::in_run(&h) {
                    Ok(c) => probe_record_and_find(&c, &state_dir, &orch_bin, &programs),
                    Err(e) => {
                        super::usable::forget(&state_dir, &h.name);
                        (Verdict::NoAnswer(e.to_string()), Vec::new())
                    }
                };
                let lacking: Vec<(String, String)> =
                    lacking.into_iter().map(|p| (h.name.clone(), p)).collect();
                match &verdict {
                    Verdict::NoAnswer(why) => {
                        let backoff = super::slots::mark_down(&state_dir, &h.name, why);
                        let note = format!(
                            "{}: marked down, tried again in {}s and then with a growing back-off; the attempts run on the plan's other hosts meanwhile, never here",
                            super::usable::does_not_answer(&h.name, why),
                            backoff.as_secs()
                        );
                        (None, Some(note), lacking)
                    }
                    Verdict::Refused(why) => {
                        super::slots::mark_up(&state_dir, &h.name);
                        (Some((h.name.clone(), why.clone())), None, lacking)
                    }
                    Verdict::Usable { note } => {
                        super::slots::mark_up(&state_dir, &h.name);
                        (None, note.clone(), lacking)
                    }
                }
            })
        })
        .collect();
    let mut out = AtStart::default();
    for t in asked {
        if let Ok((refused, note, lacking)) = t.join() {
            out.refused.extend(refused);
            out.notes.extend(note);
            out.lacking.extend(lacking);
        }
    }
    out
}
