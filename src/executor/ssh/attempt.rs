//! `orch remote-attempt`: the local process that stands for an attempt of an `executor = "ssh"`
//! plan. `orch up` starts it as it starts a local agent (in a session of its own, under the
//! wrapper that logs, gates and ends it), so stopping, adopting and recovering it work as for a
//! local attempt. It takes a slot of one of the plan's hosts, makes the host ready (orch's copy,
//! the objects of the base commit its cache lacks, sent as a git bundle over the connection),
//! runs the attempt there through `orch remote-run` ([`super::remote_run`]) and brings back what
//! the agent did: each snapshot of the remote worktree comes as a bundle, fetched into the lead's
//! repository with git's object checks on, and taken only when it is one commit whose parent is
//! the base orch recorded; its tree is then checked out in the plan's local worktree, where the
//! supervisor's commit path checks it as any agent's work before the plan branch moves. Each
//! `orch task` report of the agent is handed to the supervisor through the attempt's own report
//! directory, after the snapshot taken with it, and the answer goes back.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::conn::{Conn, ConnError};
use super::frames;
use super::job::{Job, Place, commit_id, name_of, snapshot_ref};
use super::lead::{fetch_bundle, git_bytes, say};
use super::records::host_record;
use super::records::local_ref;
use super::slots;
use crate::git::GitTarget;
use crate::manifest::Host;
use crate::status::report::{
    ANSWER_FILE, REPORT_FILE, Report, TAKEN_FILE, read_nofollow, write_json,
};

/// The exit status of `orch remote-attempt` when its host stopped answering (ssh's own).
pub(crate) const HOST_LOST: u8 = 255;

/// What `orch up` hands the driver (a file in the state directory, `--spec`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Spec {
    /// The hosts it may use, in the order they are preferred.
    pub(crate) hosts: Vec<Host>,
    pub(crate) state_dir: PathBuf,
    pub(crate) repo_root: PathBuf,
    /// The plan's local worktree, at `base`.
    pub(crate) worktree: PathBuf,
    pub(crate) base: String,
    pub(crate) plan: String,
    pub(crate) unit: String,
    pub(crate) attempt: u32,
    pub(crate) argv: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) report_dir: PathBuf,
    pub(crate) prompt_file: PathBuf,
    pub(crate) status_file: PathBuf,
    pub(crate) orch_bin: PathBuf,
    pub(crate) confine: bool,
    /// What of [`crate::agent_env::withheld`] the agent keeps (`pass_env`): the rest is
    /// removed from its environment on the host too.
    #[serde(default)]
    pub(crate) pass_env: Vec<String>,
    /// `orch up`'s control directory as this process reaches it (`/proc/<pid>/fd/<n>`): the
    /// shared connections `orch up` keeps ([`super::control`]); `None`: none, each `ssh`
    /// connects on its own.
    #[serde(default)]
    pub(crate) control: Option<PathBuf>,
    /// The plan's `max_file_size`: a snapshot that brings a larger blob is refused before it
    /// is checked out in the local worktree.
    #[serde(default = "default_max_file_size")]
    pub(crate) max_file_size: u64,
    /// The plan's `max_change_size`: a snapshot whose change is larger is refused the same way.
    #[serde(default = "default_max_change_size")]
    pub(crate) max_change_size: u64,
    /// The plan's `max_change_files`: a snapshot that changes more files is refused the same way.
    #[serde(default = "default_max_change_files")]
    pub(crate) max_change_files: u64,
}

fn default_max_file_size() -> u64 {
    crate::manifest::SizeLimits::default().file
}

fn default_max_change_size() -> u64 {
    crate::manifest::SizeLimits::default().change
}

fn default_max_change_files() -> u64 {
    crate::manifest::SizeLimits::default().files
}

impl Spec {
    /// The plan's size limits, as the spec carries them.
    pub(crate) fn limits(&self) -> crate::manifest::SizeLimits {
        crate::manifest::SizeLimits {
            file: self.max_file_size,
            change: self.max_change_size,
            files: self.max_change_files,
        }
    }
}

/// The exit status of `orch remote-attempt` when no host of the plan can run agents (each was
/// refused when probed, [`super::usable`]); an agent's own status 254 is given as 1.
pub(crate) const NO_HOST: u8 = 254;

/// Runs the attempt of `spec_path`; the exit status (the agent's, or 1, or [`HOST_LOST`], or
/// [`NO_HOST`]).
pub(crate) fn run(spec_path: &Path) -> u8 {
    let spec = match crate::untrusted::read::optional(spec_path, crate::untrusted::read::REPORT)
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice::<Spec>(&b).ok())
    {
        Some(s) => s,
        None => {
            say(&format!(
                "cannot read the attempt's spec `{}`",
                spec_path.display()
            ));
            return 1;
        }
    };
    let mut in_flight = None;
    let ended = drive(&spec, &mut in_flight);
    // orch's record that the attempt may be lost stays only when it was: an attempt that ended
    // otherwise (its exit status, a snapshot refused, an error) leaves nothing of it to take back.
    if let Some(record) = in_flight.take()
        && !matches!(ended, Err(Failure::Lost(_)))
    {
        record.remove();
    }
    // A master this driver started (none when `orch up` keeps them) ends with it.
    super::conn::end_own();
    match ended {
        Ok(code) => code,
        Err(Failure::Lost(why)) => {
            say(&format!("host lost: {why}"));
            // orch's own last line (the console gives it): an agent's text before it is
            // never taken for it.
            refused(&format!("host lost: {why}"));
            HOST_LOST
        }
        // Lost as one whose host was: not counted, run again (a bounded number of times in a
        // row, as any attempt lost with its place).
        Err(Failure::NotTaken(why)) => {
            refused(&why);
            HOST_LOST
        }
        Err(Failure::NoHost(why)) => {
            refused(&why);
            NO_HOST
        }
        Err(Failure::Other(why) | Failure::Refused(why)) => {
            refused(&why);
            1
        }
    }
}

enum Failure {
    Lost(String),
    /// The host could not take the attempt: orch's own side failed there before the agent
    /// started (the message names the host and the cause). Nothing of the attempt is left to
    /// collect.
    NotTaken(String),
    /// The host may not run agents ([`super::usable`]): another is taken.
    Refused(String),
    /// No host of the plan may run agents: why.
    NoHost(String),
    Other(String),
}

/// The host's first probe in this run, when `orch up` could not probe it at its start (it did
/// not answer then): a host refused then takes no attempt.
fn first_probe(conn: &Conn, spec: &Spec) -> Result<(), Failure> {
    use super::usable::Verdict;
    if super::usable::recorded(&spec.state_dir, &conn.host.name).is_some() {
        return Ok(());
    }
    match super::host::probe_and_record(conn, &spec.state_dir, &spec.orch_bin) {
        Verdict::Usable { note } => {
            if let Some(n) = note {
                say(&n);
            }
            Ok(())
        }
        Verdict::Refused(why) => Err(Failure::Refused(why)),
        Verdict::NoAnswer(why) => Err(Failure::Lost(why)),
    }
}

/// orch's copy made ready on the host (after its first probe): a host whose sessions have no
/// `git` (any more) is recorded refused and takes no attempt.
fn ready_copy(conn: &Conn, spec: &Spec, id: &str) -> Result<(), Failure> {
    match super::host::install(conn, &spec.orch_bin, id)? {
        super::host::Installed::NoGit => {
            let v = super::usable::verdict(&conn.host, &super::host::no_git(&conn.host));
            super::usable::record(&spec.state_dir, &conn.host.name, &v);
            match v {
                super::usable::Verdict::Refused(why) => Err(Failure::Refused(why)),
                _ => Err(Failure::Other("no git on the host".into())),
            }
        }
        _ => Ok(()),
    }
}

impl From<String> for Failure {
    fn from(s: String) -> Self {
        Failure::Other(s)
    }
}

impl From<ConnError> for Failure {
    fn from(e: ConnError) -> Self {
        match e {
            ConnError::Unreachable { .. } | ConnError::Timeout { .. } => {
                Failure::Lost(e.to_string())
            }
            _ => Failure::Other(e.to_string()),
        }
    }
}

/// Why orch ended the attempt, as the last line of its log: a plain line (not one of orch's
/// `=== orch: … ===` lines), so that the task's status gives it as the attempt's last words,
/// after anything the host sent.
fn refused(why: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "\norch remote-attempt: {}", why.escape_debug());
    let _ = o.flush();
}

/// Runs the lead's git on `target`; stdout trimmed.
fn git(target: GitTarget<'_>, args: &[&str]) -> Result<String, String> {
    git_bytes(target, args).map(|o| String::from_utf8_lossy(&o).trim().to_string())
}

const DIR: &str = r#"d=$1; case $d in "~/"*) d="$HOME/${d#"~/"}";; esac
"#;

/// Whether the host's cache has the base commit; if not, the tips it has.
/// The cache is made whole or not at all (initialised aside, then renamed into place): attempts
/// that start at once on a new host never see it half made.
const HAVE: &str = r#"c="$d/repos/$2.git"
if [ ! -d "$c" ]; then
  mkdir -p "$d/repos" && t="$c.init.$$" && git init -q --bare "$t" || exit 3
  mv -T "$t" "$c" 2>/dev/null || rm -rf "$t"
  [ -d "$c" ] || exit 3
fi
if git --git-dir="$c" cat-file -e "$3^{commit}" 2>/dev/null; then echo have; exit 0; fi
echo need
git --git-dir="$c" for-each-ref --sort=-committerdate --count=20 --format='%(objectname)' refs/orch/have
"#;

/// A bundle on stdin fetched into the cache, its ref `$4` kept as `refs/orch/have/<base>`; tried
/// again a few times when it fails (two attempts of the same base at once: one holds the ref's
/// lock, then the ref is up to date for the other).
const RECEIVE: &str = r#"set -e
c="$d/repos/$2.git"
t="$c/incoming.$$.bundle"
trap 'rm -f "$t"' EXIT
cat > "$t"
for n in 1 2 3 4 5; do
  if git --git-dir="$c" -c core.hooksPath=/dev/null fetch -q "$t" "+$4:refs/orch/have/$3"; then exit 0; fi
  sleep 0.$n
done
exit 1
"#;

/// Runs orch's copy's `remote-run` for one attempt. Not `exec`: what ends the session is this
/// shell's own status, 1 for any of orch's copy's that ssh would give as its own 255 (orch's
/// copy killed by a signal ends with 128 + the signal), so that ssh's 255 comes only from the
/// connection (or this shell killed, which a confined agent cannot signal).
const RUN: &str = r#""$d/bin/orch-$2" remote-run --dir "$d"
s=$?
[ "$s" -lt 254 ] || s=1
exit "$s"
"#;

/// Drives the attempt; `in_flight` is set to orch's record of it as one that may be lost
/// ([`super::lost::record`]), written before its job goes to the host: a driver killed or
/// stopped keeps it, so the host's last snapshot comes back (checked) when it answers again.
fn drive(spec: &Spec, in_flight: &mut Option<super::lost::Record>) -> Result<u8, Failure> {
    if !commit_id(&spec.base) {
        return Err(format!("the base `{}` is not a commit id", spec.base.escape_debug()).into());
    }
    let head = git(GitTarget::WorkTree(&spec.worktree), &["rev-parse", "HEAD"])?;
    if head != spec.base {
        return Err(format!(
            "the worktree `{}` is at {head}, not at the attempt's base {}",
            spec.worktree.display(),
            spec.base
        )
        .into());
    }
    if spec.hosts.is_empty() {
        return Err("the plan has no host".to_string().into());
    }
    let id = super::host::orch_id(&spec.orch_bin, Some(&spec.state_dir))
        .map_err(|e| format!("cannot read orch's executable: {e}"))?;
    // The repository's own cache on the host, and a key that names it too: two repositories
    // at one path never share a cache nor an attempt's directory there.
    let identity = super::records::identity(&spec.state_dir)?;
    let repo = super::records::cache_name(&spec.repo_root, &identity);
    let legacy = super::records::legacy_cache(&spec.repo_root);
    let key = format!(
        "{}-{}",
        name_of(&format!(
            "{}-{}-{}-{}",
            spec.plan,
            spec.unit,
            spec.attempt,
            std::process::id()
        )),
        &identity[..12]
    );
    // A slot of a host that answers and has the base: a host that does not answer is marked
    // down and another taken; none free: the attempt waits.
    let prefer = slots::last_host(&spec.state_dir, &spec.plan);
    let (slot, conn) = loop {
        let Some(slot) = slots::take(&spec.state_dir, &spec.hosts, prefer.as_deref(), |why| {
            say(why)
        }) else {
            return Err(Failure::NoHost(super::usable::none_left(
                &spec.state_dir,
                &spec.hosts,
            )));
        };
        let host = slot.host.clone();
        let record = host_record(&spec.state_dir, &spec.plan, &spec.unit, spec.attempt);
        let conn = match &spec.control {
            Some(via) => Conn::through(&host, via),
            None => Conn::new(&host, &spec.state_dir)
                .map_err(|e| format!("cannot make the control socket's directory: {e}"))?,
        };
        let ready = first_probe(&conn, spec)
            .and_then(|()| ready_copy(&conn, spec, &id))
            .and_then(|_| send_objects(&conn, spec, &repo, &key));
        match ready {
            Ok(()) => {
                // The attempt runs there: orch's record of it (`orch status`, `orch up`, `orch top`).
                if let Some(d) = record.parent() {
                    let _ = std::fs::create_dir_all(d);
                }
                let _ = crate::links::write(&record, host.name.as_bytes());
                say(&format!("on host `{}`", host.name));
                super::lost::collect(
                    &conn,
                    (&spec.state_dir, &spec.repo_root),
                    (&repo, &legacy),
                    spec.limits(),
                );
                slots::mark_up(&spec.state_dir, &host.name);
                slots::set_last_host(&spec.state_dir, &spec.plan, &host.name);
                break (slot, conn);
            }
            Err(Failure::Refused(why)) => say(&why),
            Err(Failure::Lost(why)) => {
                let backoff = slots::mark_down(&spec.state_dir, &host.name, &why);
                say(&format!(
                    "{}; marked down for {}s, another host is tried",
                    super::usable::does_not_answer(&host.name, &why),
                    backoff.as_secs()
                ));
            }
            // Nothing of the agent's ran yet: not its failure. The attempt ends as one lost
            // with its host (run again, not counted, a bounded number of times).
            Err(Failure::Other(why) | Failure::NotTaken(why)) => {
                return Err(Failure::NotTaken(format!(
                    "the attempt could not be prepared on host `{}` (the agent did not start): {why}",
                    host.name
                )));
            }
            Err(e) => return Err(e),
        }
    };
    let host = &slot.host;
    let job = Job {
        repo: repo.clone(),
        key: key.clone(),
        base: spec.base.clone(),
        report: format!(
            "{}/{}",
            name_of(&spec.plan),
            name_of(&format!("{}.{}", spec.unit, spec.attempt))
        ),
        argv: spec.argv.clone(),
        env: spec.env.clone(),
        prompt: crate::untrusted::read::optional(&spec.prompt_file, crate::untrusted::read::REPORT)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default(),
        confine: spec.confine && host.confined,
        pass_env: spec.pass_env.clone(),
        replace: vec![
            (spec.worktree.display().to_string(), Place::Worktree),
            (spec.report_dir.display().to_string(), Place::ReportDir),
            (spec.prompt_file.display().to_string(), Place::PromptFile),
            (spec.orch_bin.display().to_string(), Place::Orch),
            (spec.status_file.display().to_string(), Place::StatusFile),
        ],
        max_file_size: spec.max_file_size,
        max_change_size: spec.max_change_size,
        max_change_files: spec.max_change_files,
    };
    let job_bytes = serde_json::to_vec(&job).map_err(|e| e.to_string())?;
    *in_flight = super::lost::record(&spec.state_dir, &host.name, (&key, &spec.base), &repo);
    let mut child = conn
        .spawn(&format!("{DIR}{RUN}"), &[host.dir.as_str(), id.as_str()])
        .map_err(|e| format!("cannot run `ssh`: {e}"))?;
    let mut input = child
        .stdin
        .take()
        .ok_or_else(|| Failure::Other("no stdin".into()))?;
    let output = child
        .stdout
        .take()
        .ok_or_else(|| Failure::Other("no stdout".into()))?;
    frames::write(&mut input, frames::JOB, &job_bytes)
        .map_err(|e| Failure::Lost(format!("cannot send the job: {e}")))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = std::io::BufReader::new(output);
        loop {
            let f = frames::read(&mut r);
            let end = !matches!(f, Ok(Some(_)));
            if tx.send(f).is_err() || end {
                return;
            }
        }
    });
    let mut applied = spec.base.clone();
    // orch's copy sends a snapshot before each report and before the exit status, and nothing
    // else between them: a report or an end without its snapshot, or a snapshot not followed
    // by one of them, is refused (the host's word is taken only for what orch's copy sends).
    let mut snapshot_pending = false;
    // orch's copy said it handed the attempt to the agent ([`frames::STARTED`]): until then,
    // whatever ends the attempt (other than the connection) is orch's own side failing on the
    // host, which could not take the attempt: not the agent's failure.
    let mut started = false;
    let not_taken = |why: &str| {
        Failure::NotTaken(format!(
            "host `{}` could not take the attempt (the agent did not start): {why}",
            conn.host.name
        ))
    };
    // The stream ended early: ssh's own exit says whether the host was lost (255: the
    // connection, or its keep-alives unanswered) or orch's copy there ended.
    let lost = |child: &mut std::process::Child, why: String| -> Failure {
        let status = wait_bounded(child, Duration::from_secs(30)).and_then(|s| s.code());
        match status {
            Some(255) => {
                slots::mark_down(&spec.state_dir, &conn.host.name, &why);
                Failure::Lost(format!(
                    "{why} (ssh exited 255: the connection to host `{}` failed)",
                    conn.host.name
                ))
            }
            Some(c) => Failure::Other(format!("{why} (ssh exit {c})")),
            None => Failure::Other(format!("{why} (ssh killed)")),
        }
    };
    loop {
        let frame = match rx.recv() {
            Ok(Ok(Some(f))) => f,
            Ok(Ok(None)) | Err(_) => {
                let why = "the connection ended before the attempt did";
                return Err(match lost(&mut child, why.into()) {
                    Failure::Other(why) if !started => not_taken(&why),
                    f => f,
                });
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(lost(
                    &mut child,
                    "the connection ended inside a frame".into(),
                ));
            }
            Ok(Err(e)) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Failure::Other(format!(
                    "the host sent what orch does not take: {e}"
                )));
            }
        };
        let first = !started;
        if frame.0 != frames::ERROR {
            started = true;
        }
        match frame {
            (frames::STARTED, _) if first => {}
            (frames::ERROR, bytes) if !started => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(not_taken(&String::from_utf8_lossy(
                    &bytes[..bytes.len().min(4096)],
                )));
            }
            // orch's copy sends nothing else before its word that the agent started: a host
            // that does is taken at its word that it did (what follows is checked as any
            // attempt's, and counts).
            (frames::STARTED, _) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Failure::Other(
                    "the host said twice that the agent started".into(),
                ));
            }
            (frames::LOG, bytes) => {
                let mut o = std::io::stdout().lock();
                let _ = o.write_all(&bytes);
                let _ = o.flush();
            }
            (frames::SNAPSHOT, bytes) => {
                let taken = if snapshot_pending {
                    Err(Failure::Other(
                        "the host sent two snapshots without a report or an end between them"
                            .into(),
                    ))
                } else {
                    take_snapshot(spec, &key, &bytes, &applied)
                };
                match taken {
                    Ok(id) => applied = id,
                    Err(e) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(e);
                    }
                }
                snapshot_pending = true;
            }
            (frames::REPORT | frames::EXIT, _) if !snapshot_pending => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Failure::Other(
                    "the host sent a report or the attempt's end without its snapshot".into(),
                ));
            }
            (frames::REPORT, bytes) => {
                snapshot_pending = false;
                let answer = relay_report(spec, &bytes)?;
                frames::write(&mut input, frames::ANSWER, &answer).map_err(|e| {
                    Failure::Lost(format!(
                        "cannot send the answer to host `{}`: {e}",
                        host.name
                    ))
                })?;
            }
            (frames::EXIT, bytes) => {
                let code = std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                    .map_or(1, |c| u8::try_from(c.clamp(0, 255)).unwrap_or(1));
                // An agent's status never reads as orch's own word that no host was left, or
                // that its host was lost: whatever the host sends, 254 and 255 are 1.
                let code = if code >= NO_HOST { 1 } else { code };
                // The last snapshot is in the lead's repository: the host may remove the attempt.
                let _ = frames::write(&mut input, frames::DONE, b"");
                drop(input);
                let _ = wait_bounded(&mut child, Duration::from_secs(30));
                return Ok(code);
            }
            (frames::ERROR, bytes) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "on host `{}`: {}",
                    host.name,
                    String::from_utf8_lossy(&bytes[..bytes.len().min(4096)])
                )
                .into());
            }
            (tag, _) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Failure::Other(format!(
                    "the host sent a frame `{}` out of place",
                    char::from(tag).escape_debug()
                )));
            }
        }
    }
}

fn wait_bounded(
    child: &mut std::process::Child,
    limit: Duration,
) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            return child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends the host's cache the objects of the base it lacks, as one git bundle.
fn send_objects(conn: &Conn, spec: &Spec, repo: &str, key: &str) -> Result<(), Failure> {
    let dir = conn.host.dir.as_str();
    let out = conn.run(
        "the check of the repository's cache",
        &format!("{DIR}{HAVE}"),
        &[dir, repo, &spec.base],
        None,
        Duration::from_secs(120),
    )?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut lines = text.lines();
    if lines.next() == Some("have") {
        return Ok(());
    }
    let root = GitTarget::WorkTree(&spec.repo_root);
    // The host's tips that this repository has: what the bundle need not carry.
    let haves: Vec<String> = lines
        .filter(|l| commit_id(l))
        .filter(|l| git(root, &["cat-file", "-e", &format!("{l}^{{commit}}")]).is_ok())
        .map(|l| format!("^{l}"))
        .collect();
    // Another attempt of the same base may have sent it between the host's two answers (its
    // `need`, then its tips): a tip that holds the base means the host has it, and git would
    // refuse to make the empty bundle.
    let mut rest = vec!["rev-list", "--max-count=1", spec.base.as_str()];
    rest.extend(haves.iter().map(String::as_str));
    if git(root, &rest)?.is_empty() {
        return Ok(());
    }
    let send_ref = format!("refs/orch/send/{key}");
    git(root, &["update-ref", &send_ref, &spec.base])?;
    let bundle = crate::state_layout::remote_bundle(&spec.state_dir, &format!("{key}.send.bundle"));
    if let Some(d) = bundle.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    let mut args = vec![
        "bundle".to_string(),
        "create".to_string(),
        "-q".to_string(),
        bundle.display().to_string(),
        send_ref.clone(),
    ];
    args.extend(haves);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let made = git(root, &args);
    let _ = git(root, &["update-ref", "-d", &send_ref]);
    made?;
    let sent = conn.run(
        "the transfer of the repository's objects",
        &format!("{DIR}{RECEIVE}"),
        &[dir, repo, &spec.base, &send_ref],
        Some(&bundle),
        Duration::from_secs(3600),
    );
    let _ = std::fs::remove_file(&bundle);
    sent?;
    Ok(())
}

/// Takes one snapshot frame: fetched into the lead's repository (git's object checks on) under
/// a ref of its own, taken only when it is a commit whose one parent is the base, then checked
/// out in the local worktree over the last one taken (`applied`), where the supervisor's checks
/// see it as files, as any agent's work: a change the worktree cannot show (a path outside its
/// sparse checkout, the plan's `paths`) is refused. Only a snapshot taken is kept, under
/// [`local_ref`]; a refused one is under no ref. Returns the snapshot's id.
fn take_snapshot(spec: &Spec, key: &str, bytes: &[u8], applied: &str) -> Result<String, Failure> {
    let refuse = |why: String| Failure::Other(format!("the host's snapshot is refused: {why}"));
    if bytes.len() < 40 {
        return Err(refuse("it is cut short".into()));
    }
    let (id, bundle) = bytes.split_at(40);
    let id = std::str::from_utf8(id)
        .ok()
        .filter(|s| commit_id(s))
        .ok_or_else(|| refuse("no commit id".into()))?;
    let file = crate::state_layout::remote_bundle(&spec.state_dir, &format!("{key}.snap.bundle"));
    if let Some(d) = file.parent() {
        let _ = std::fs::create_dir_all(d);
    }
    crate::links::write(&file, bundle).map_err(|e| refuse(e.to_string()))?;
    let root = GitTarget::WorkTree(&spec.repo_root);
    let incoming = format!("refs/orch/incoming/{key}");
    let fetched = fetch_bundle(&spec.repo_root, &file, &snapshot_ref(key), &incoming);
    let _ = std::fs::remove_file(&file);
    let checked = fetched
        .and_then(|_| check_snapshot(spec, &incoming, id))
        .and_then(|()| no_large_blob(spec, id));
    let _ = git(root, &["update-ref", "-d", &incoming]);
    checked.map_err(refuse)?;
    let wt = GitTarget::WorkTree(&spec.worktree);
    // The paths it changes that the worktree's checkout leaves out (`S`: skip-worktree), before
    // and after it is read in: such a change would reach the commit without being on disk.
    let changed = git(wt, &["diff", "--name-only", "--no-renames", applied, id])?;
    let hidden = |listing: &str| -> Vec<String> {
        listing
            .lines()
            .filter_map(|l| l.strip_prefix("S "))
            .filter(|p| changed.lines().any(|c| c == *p))
            .map(str::to_string)
            .collect()
    };
    let mut outside = hidden(&git(wt, &["ls-files", "-v"])?);
    if outside.is_empty() {
        git(wt, &["read-tree", "-m", "-u", applied, id]).map_err(|e| {
            Failure::Other(format!(
                "cannot check out the host's work in the worktree: {e}"
            ))
        })?;
        outside = hidden(&git(wt, &["ls-files", "-v"])?);
        if !outside.is_empty() {
            let _ = git(wt, &["read-tree", "-m", "-u", id, applied]);
        }
    }
    if !outside.is_empty() {
        outside.truncate(5);
        return Err(refuse(format!(
            "it changes what the worktree's checkout leaves out (outside the plan's paths): {}",
            outside.join(", ")
        )));
    }
    git(
        root,
        &[
            "update-ref",
            &local_ref(&spec.plan, &spec.unit, spec.attempt),
            id,
        ],
    )?;
    Ok(id.to_string())
}

/// Refuses the snapshot `id` when it brings a blob over the plan's `max_file_size`, or a change
/// over its `max_change_size` or `max_change_files` (the sizes read from the object headers):
/// it is never checked out in the local worktree (a sparse
/// 20 GiB file on the host would be written whole here), nor taken as the task's work.
fn no_large_blob(spec: &Spec, id: &str) -> Result<(), String> {
    match crate::git::large_blobs_between(&spec.repo_root, Some(&spec.base), id, spec.limits())? {
        Some(large) => Err(format!("{large}; nothing of it was taken")),
        None => Ok(()),
    }
}

/// Whether the snapshot fetched under `incoming` is the commit `id` the frame names, with the
/// attempt's base as its one parent.
fn check_snapshot(spec: &Spec, incoming: &str, id: &str) -> Result<(), String> {
    let root = GitTarget::WorkTree(&spec.repo_root);
    let tip = git(
        root,
        &["rev-parse", "--verify", &format!("{incoming}^{{commit}}")],
    )?;
    if tip != id {
        return Err(format!("its ref is at {tip}, not at {id}"));
    }
    let parents = git(root, &["rev-list", "--parents", "-n", "1", id])?;
    if parents.split(' ').skip(1).collect::<Vec<_>>() != [spec.base.as_str()] {
        return Err(format!(
            "its parents are not the attempt's base {}",
            spec.base
        ));
    }
    Ok(())
}

/// Hands the agent's report to the supervisor through the attempt's report directory and waits
/// for its answer; the answer's bytes.
fn relay_report(spec: &Spec, bytes: &[u8]) -> Result<Vec<u8>, Failure> {
    let report: Report = serde_json::from_slice(bytes)
        .map_err(|e| format!("the host sent a report orch cannot read: {e}"))?;
    let dir = &spec.report_dir;
    let answer_path = dir.join(ANSWER_FILE);
    let _ = std::fs::remove_file(&answer_path);
    write_json(dir, REPORT_FILE, &report)
        .map_err(|e| format!("cannot hand the report to the supervisor: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(3600);
    let mut pause = Duration::from_millis(2);
    loop {
        if let Ok(Some(answer)) = read_nofollow(&answer_path)
            && serde_json::from_slice::<serde_json::Value>(&answer)
                .is_ok_and(|v| v["seq"].as_str() == Some(report.seq.as_str()))
        {
            let _ = std::fs::remove_file(&answer_path);
            let _ = std::fs::remove_file(dir.join(TAKEN_FILE));
            return Ok(answer);
        }
        if Instant::now() >= deadline {
            return Err("the supervisor did not answer the report"
                .to_string()
                .into());
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
