//! Running the verify command on a merge candidate, in a staging worktree: an argv (no shell),
//! its own process group, output appended to a log, a time limit.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use chrono::Utc;
use nix::sys::signal::Signal;

use super::MergeError;
use super::interrupt;
use crate::agent_env;
use crate::agent_env::GIT_ENV;
use crate::git::{Oid, Staging};
use crate::process::{group_alive, log_line, open_log, signal_group};

/// The verify command and where it runs.
#[derive(Clone, Debug)]
pub(crate) struct Verify {
    /// The argv (`defaults.verify`), e.g. `["cargo", "test"]`.
    pub(crate) argv: Vec<String>,
    /// The time limit (`defaults.timeout`).
    pub(crate) timeout: Duration,
    /// Between SIGTERM and SIGKILL when it is stopped (`defaults.grace`).
    pub(crate) grace: Duration,
    /// The most of its output its log keeps (`defaults.log_max`).
    pub(crate) log_max: u64,
    /// Where staging worktrees go (`<worktree_root>`).
    pub(crate) staging_dir: PathBuf,
    /// The directory of per-plan logs (`<log_dir>`); the log is `<log_dir>/<plan>/merge-verify.log`.
    pub(crate) log_dir: PathBuf,
    /// Confined ([`super::confine`]), and the note when it cannot be.
    pub(crate) sandbox: super::confine::VerifySandbox,
    /// Its network ([`super::network`]): the strictest of the plans' agents'.
    pub(crate) network: super::network::Network,
    /// Told when each run of [`run_verify`] starts and ends (`orch merge`'s lines); nobody by
    /// default.
    pub(crate) announce: Announce,
    /// The image of each plan that runs in a container, where a verify of its work runs too
    /// (a container of its own: [`crate::executor::container::OneShot`]), alone or with other
    /// plans' ([`Under::plans`]).
    pub(crate) images: crate::executor::container::Images,
}

/// What a run of a verify command tests, and the name it goes by.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Under<'a> {
    /// The name its container, its network's log lines, its `TMPDIR` and its `ORCH_PLAN` go
    /// by: the plan's, or the combination's (`_integration`, `.land-<group>`).
    pub(crate) name: &'a str,
    /// The plans whose work is in the tree it runs on: where one of them runs in a container,
    /// the command runs in a container of that image, never on this machine; where they name
    /// different images, it does not run ([`crate::executor::container::Images::of`]).
    pub(crate) plans: &'a [String],
    /// The directory a container mounts read-write: the one the command runs in (`None`), or
    /// one above it (a group's candidates side by side, each named by `ORCH_REPO_<NAME>`).
    pub(crate) mount: Option<&'a Path>,
}

/// The variables of [`verify_command`], passed into a container by name.
const MERGE_VARS: [&str; 4] = [
    agent_env::ORCH_PLAN,
    agent_env::ORCH_TARGET,
    agent_env::ORCH_MERGE_COMMIT,
    agent_env::ORCH_WORKTREE,
];

/// What [`Announce`] is told of a run of the verify command.
pub(crate) enum VerifyNote<'a> {
    /// It starts for `plan`.
    Started { plan: &'a str, command: &'a str },
    /// It ended for `plan` after `elapsed`.
    Ended {
        plan: &'a str,
        verdict: &'a Verdict,
        elapsed: Duration,
    },
}

/// Whom to tell when a verify starts and ends: `orch merge` prints a line for each (a verify with
/// a real test suite takes minutes), the integration preview and the merge train of `orch up`
/// have their own progress.
#[derive(Clone, Default)]
pub(crate) struct Announce(Option<std::sync::Arc<Listener>>);

/// What [`Announce`] calls.
type Listener = dyn Fn(VerifyNote<'_>) + Send + Sync;

impl Announce {
    pub(crate) fn to(f: impl Fn(VerifyNote<'_>) + Send + Sync + 'static) -> Self {
        Self(Some(std::sync::Arc::new(f)))
    }

    fn tell(&self, note: VerifyNote<'_>) {
        if let Some(f) = &self.0 {
            f(note);
        }
    }
}

impl std::fmt::Debug for Announce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Announce(..)"
        } else {
            "Announce(none)"
        })
    }
}

impl Verify {
    /// The manifest's `verify`, if any, confined as [`super::confine::decide`] says (exit 6 when
    /// it must be and cannot).
    pub(crate) fn of(
        manifest: &crate::manifest::Manifest,
    ) -> crate::error::CliResult<Option<Self>> {
        let d = &manifest.defaults;
        let Some(argv) = &d.verify else {
            return Ok(None);
        };
        Ok(Some(Verify {
            argv: argv.clone(),
            timeout: d.timeout,
            grace: d.grace,
            log_max: d.log_max,
            staging_dir: manifest.root.join(&d.worktree_root),
            log_dir: manifest.root.join(&d.log_dir),
            sandbox: super::confine::decide(manifest, crate::sandbox::supported)?,
            network: super::network::Network::of_verify(manifest)?,
            announce: Announce::default(),
            images: crate::executor::container::images(manifest),
        }))
    }

    /// `argv` (the verify command, or another of its kind: `verify_all`, a resolver's check)
    /// as it is started on the work of `under` in `cwd`, its refusals logged to `log`, `env`
    /// added to its environment: confined as [`super::confine`] says, in its network, with the
    /// variables that go with them; in a container of the image of the plans of `under` that
    /// run in one. An error (nothing started) when it cannot be: their images differ, the
    /// container does not start.
    pub(crate) fn prepare(
        &self,
        argv: &[String],
        cwd: &Path,
        under: &Under<'_>,
        log: &Path,
        env: &[(String, String)],
    ) -> Result<Prepared, String> {
        let confine = self.sandbox.confine.as_ref();
        let image = self.images.of(under.plans)?;
        // In a container of the plan's image, its program found on the container's PATH.
        let argv: Vec<String> = match image {
            Some(_) => std::iter::once("/usr/bin/env".to_string())
                .chain(argv.iter().cloned())
                .collect(),
            None => argv.to_vec(),
        };
        let (mut argv, tmp) = super::confine::verify_argv(confine, &argv, cwd, under.name)?;
        let mut env = env.to_vec();
        if let Some(t) = &tmp {
            env.push(("TMPDIR".to_string(), t.path().display().to_string()));
        }
        let orch = super::network::orch_bin()?;
        let container = match &image {
            Some(image) => Some(crate::executor::container::OneShot::start(
                image,
                under.name,
                (
                    under.mount.unwrap_or(cwd),
                    tmp.as_ref().map(super::confine::TmpDir::path),
                ),
                &orch,
                !self.network.confines(),
            )?),
            None => None,
        };
        let net = self.network.attempt_in(
            (under.name, "verify"),
            log,
            &mut env,
            container
                .as_ref()
                .map(crate::executor::container::OneShot::netns),
        )?;
        match &container {
            Some(c) => {
                // Passed by name: their values are those `podman exec` is started with.
                let mut passed = env.clone();
                passed.extend(MERGE_VARS.map(|k| (k.to_string(), String::new())));
                argv = c.enter(cwd, argv, &passed);
            }
            // `orch sandbox-exec` enters the network before its file rules; without them, it
            // is run for the network alone.
            None if confine.is_none() && self.network.confines() => {
                argv = super::network::network_only(&orch, &argv);
            }
            None => {}
        }
        // Under the wrapper: whatever the command leaves running (the branch's code is the
        // agent's) ends with it, and its output is capped.
        let argv = crate::process::session::in_session(&orch, (self.log_max, self.grace), argv);
        Ok(Prepared {
            argv,
            env,
            image: image.map(|p| p.image),
            _tmp: tmp,
            net,
            _container: container,
        })
    }

    /// `<log_dir>/<plan>/merge-verify.log`.
    pub(crate) fn log_path(&self, plan: &str) -> PathBuf {
        self.log_dir.join(plan).join("merge-verify.log")
    }
}

/// A verify command ready to start ([`Verify::prepare`]): kept until it has ended.
pub(crate) struct Prepared {
    pub(crate) argv: Vec<String>,
    /// For its environment: the caller's, `TMPDIR`, the network's.
    pub(crate) env: Vec<(String, String)>,
    /// The image of the container it runs in; `None`: on this machine.
    pub(crate) image: Option<String>,
    _tmp: Option<super::confine::TmpDir>,
    net: Option<crate::sandbox::net::NetAttempt>,
    /// The container it runs in, removed once it has ended.
    _container: Option<crate::executor::container::OneShot>,
}

impl Prepared {
    /// It was started as `pid`: its network is served from now on, until it ends.
    pub(crate) fn started(&mut self, pid: u32) {
        if let Some(net) = self.net.take() {
            net.started(pid);
        }
    }
}

/// How the verify command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Passed,
    /// It failed: why, in words.
    Failed(String),
    /// Ctrl-C or SIGTERM: it was stopped.
    Interrupted,
}

/// Makes the staging worktree at `candidate`, runs the verify command there and removes the
/// worktree again, whatever happened. `with`: the plans whose work is in `candidate` besides
/// `plan`'s (a resolution against a group's candidate), none for a merge of one plan.
pub(crate) fn run_verify(
    verify: &Verify,
    repo_root: &Path,
    (plan, with): (&str, &[String]),
    target: &str,
    candidate: Oid,
) -> Result<Verdict, MergeError> {
    let staging = Staging::create(repo_root, &verify.staging_dir, plan, candidate)?;
    let log = verify.log_path(plan);
    let command = shown(&verify.argv);
    log_line(
        &log,
        &format!(
            "=== orch: verify `{command}` on {candidate} (plan `{plan}` into `{target}`) in {} at {} ===",
            staging.path().display(),
            crate::status::timestamp(Utc::now())
        ),
    );
    verify.announce.tell(VerifyNote::Started {
        plan,
        command: &command,
    });
    let started = Instant::now();
    let verdict = run(
        verify,
        staging.path(),
        &log,
        (plan, with),
        target,
        candidate,
    );
    verify.announce.tell(VerifyNote::Ended {
        plan,
        verdict: &verdict,
        elapsed: started.elapsed(),
    });
    let footer = match &verdict {
        Verdict::Passed => "passed".to_string(),
        Verdict::Failed(why) => format!("failed: {why}"),
        Verdict::Interrupted => "interrupted".to_string(),
    };
    log_line(&log, &format!("=== orch: verify {footer} ==="));
    drop(staging);
    Ok(verdict)
}

/// The `verify` command `program args` in `cwd` (the merge's staging worktree), in a process
/// group of its own, its output to the log's two handles `out`, with the merge's `ORCH_*`
/// variables and without orch's git variables: for `orch merge` and the integration preview.
pub(super) fn verify_command(
    program: &str,
    args: &[String],
    cwd: &Path,
    out: (std::fs::File, std::fs::File),
    plan: &str,
    target: &str,
    commit: Oid,
) -> Command {
    let mut cmd = crate::agent_env::command(program);
    crate::process::place(&mut cmd, cwd);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out.0))
        .stderr(Stdio::from(out.1))
        .process_group(0)
        .env(agent_env::ORCH_PLAN, plan)
        .env(agent_env::ORCH_TARGET, target)
        .env(agent_env::ORCH_MERGE_COMMIT, commit.to_string())
        .env(agent_env::ORCH_WORKTREE, cwd);
    // It runs the agents' code: never with orch's GitHub tokens.
    for var in GIT_ENV.iter().chain(agent_env::ORCH_CREDENTIALS.iter()) {
        cmd.env_remove(var);
    }
    cmd
}

/// The verify command on the work of `plan` (and of the plans `with` it, whose work is in the
/// tree too) in `cwd`.
pub(super) fn run(
    verify: &Verify,
    cwd: &Path,
    log: &Path,
    (plan, with): (&str, &[String]),
    target: &str,
    candidate: Oid,
) -> Verdict {
    let plans: Vec<String> = std::iter::once(plan.to_string())
        .chain(with.iter().cloned())
        .collect();
    let under = Under {
        name: plan,
        plans: &plans,
        mount: None,
    };
    run_with(verify, cwd, log, &under, (target, candidate), &[])
}

/// [`run`] of the work of `under`, with more variables in the command's environment (a landing
/// across repositories: `ORCH_REPO_<NAME>` of each candidate).
pub(super) fn run_with(
    verify: &Verify,
    cwd: &Path,
    log: &Path,
    under: &Under<'_>,
    (target, candidate): (&str, Oid),
    env: &[(String, String)],
) -> Verdict {
    let command = shown(&verify.argv);
    let mut prepared = match verify.prepare(&verify.argv, cwd, under, log, env) {
        Ok(p) => p,
        Err(why) => return Verdict::Failed(format!("cannot start `{command}`: {why}")),
    };
    let Some((program, args)) = prepared.argv.split_first() else {
        return Verdict::Failed("the verify command is empty".into());
    };
    let out = match open_log(log).and_then(|f| Ok((f.try_clone()?, f))) {
        Ok(pair) => pair,
        Err(e) => return Verdict::Failed(format!("cannot open `{}`: {e}", log.display())),
    };
    let mut cmd = verify_command(program, args, cwd, out, under.name, target, candidate);
    cmd.envs(prepared.env.iter().map(|(k, v)| (k, v)));
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Verdict::Failed(format!("cannot start `{command}`: {e}")),
    };
    prepared.started(child.id());
    interrupt::set_running_group(child.id());
    let verdict = match wait_group(&mut child, verify.timeout, verify.grace) {
        Waited::Exited(status) => match status.code() {
            Some(0) => Verdict::Passed,
            Some(code) => Verdict::Failed(format!(
                "`{command}` exited with status {code}; its output is in {}",
                log.display()
            )),
            // Killed by `interrupt::stop_now` (a second Ctrl-C of the supervisor).
            None if interrupt::interrupted() => Verdict::Interrupted,
            None => Verdict::Failed(format!(
                "`{command}` was killed by a signal; its output is in {}",
                log.display()
            )),
        },
        Waited::Failed(e) => Verdict::Failed(format!("cannot wait for `{command}`: {e}")),
        Waited::Interrupted => Verdict::Interrupted,
        Waited::TimedOut => Verdict::Failed(format!(
            "`{command}` timed out after {}; its output is in {}",
            crate::manifest::format_duration(verify.timeout),
            log.display()
        )),
    };
    interrupt::set_running_group(0);
    verdict
}

/// How waiting for a verify command ended.
pub(crate) enum Waited {
    Exited(std::process::ExitStatus),
    /// `try_wait` failed.
    Failed(std::io::Error),
    /// Stopped: Ctrl-C or SIGTERM ([`interrupt`]).
    Interrupted,
    /// Stopped: past its time limit.
    TimedOut,
}

/// Waits for `child`, the leader of its own process group, up to `timeout`; stopped
/// ([`stop_group`]) when interrupted or past its time. Whatever the leader left running in its
/// group goes too.
pub(crate) fn wait_group(
    child: &mut std::process::Child,
    timeout: Duration,
    grace: Duration,
) -> Waited {
    let pgid = child.id();
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    let waited = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Waited::Exited(status),
            Ok(None) => {}
            Err(e) => break Waited::Failed(e),
        }
        if interrupt::interrupted() {
            stop_group(pgid, grace, child);
            break Waited::Interrupted;
        }
        if Instant::now() >= deadline {
            stop_group(pgid, grace, child);
            break Waited::TimedOut;
        }
        sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    };
    signal_group(pgid, Signal::SIGKILL);
    waited
}

/// SIGTERM to the group, up to `grace` for it to go, then SIGKILL; the leader is reaped.
pub(crate) fn stop_group(pgid: u32, grace: Duration, child: &mut std::process::Child) {
    signal_group(pgid, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    loop {
        let _ = child.try_wait();
        if !group_alive(pgid) || Instant::now() >= deadline {
            break;
        }
        sleep(Duration::from_millis(20));
    }
    signal_group(pgid, Signal::SIGKILL);
    let _ = child.wait();
}

/// An argv as a reader would type it: arguments with spaces or quotes in single quotes.
pub(crate) fn shown(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty() && !a.contains(|c: char| c.is_whitespace() || "'\"\\$`".contains(c)) {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_is_shown_as_typed() {
        let argv: Vec<String> = ["sh", "-c", "test -f a.txt", "it's", "", "$HOME"]
            .iter()
            .map(|s| (*s).to_string())
            .collect();
        assert_eq!(
            shown(&argv),
            r#"sh -c 'test -f a.txt' 'it'\''s' '' '$HOME'"#
        );
    }
}
