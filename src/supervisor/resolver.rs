//! The resolving agent of `resolve`, run as any attempt is: its argv rendered from
//! the agent's command, confined by the plan's rules (its resolution worktree, never its git
//! admin directory; a private `TMPDIR`; the directory of its explanation; a private copy of its
//! client's state, [`super::client_state`]), under its wrapper in a session of its own (`orch
//! session-exec`, [`crate::process::wrapper`]), its output to `<log_dir>/<plan>/resolve.log`, read by
//! [`crate::agent_output`] for usage and the failure's cause. Blocking (it waits for the agent
//! with the plan's `timeout`): `orch merge`, `orch resolve` and the merge train's blocking
//! thread call it. The resolver of a plan that runs in a container ([`AgentJob::container`])
//! runs in a one-shot container of its image ([`crate::merge::resolve::Container`]), its
//! directories mounted at the same paths, confined inside by the same rules, entered by `podman
//! exec` under the same wrapper here; the container goes when it ends.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::thread::sleep;
use std::time::{Duration, Instant};

use chrono::Utc;
use nix::sys::signal::Signal;

use super::{client_state, sandbox};
use crate::agent_env::{self, GIT_ENV};
use crate::executor::Confiner;
use crate::manifest::{KnownCli, Manifest, StdinMode, render_template};
use crate::merge::interrupt;
use crate::merge::resolve::{AgentJob, AgentRun, EXPLANATION, ResolveNote, Resolver, RunAgent};
use crate::process;

/// Runs resolving agents with this orch executable (for `orch sandbox-exec`/`session-exec`).
#[derive(Clone, Debug)]
pub(crate) struct AgentRunner {
    pub(crate) orch_bin: PathBuf,
}

/// The resolver of `manifest`'s plans, its notes told to `notify`.
pub(crate) fn resolver(
    manifest: Arc<Manifest>,
    notify: Arc<dyn Fn(&ResolveNote) + Send + Sync>,
) -> Resolver {
    Resolver {
        runner: Arc::new(AgentRunner::current()),
        manifest,
        notify,
    }
}

impl RunAgent for AgentRunner {
    fn run(&self, job: &AgentJob) -> AgentRun {
        let mut cleanup = Vec::new();
        let run = self.start_and_wait(job, &mut cleanup);
        for dir in cleanup {
            // A TMPDIR whose directory an unconfined agent swapped for a link is left alone.
            if !crate::sandbox::remove_tmp(&dir) {
                client_state::remove(&dir);
            }
        }
        run
    }
}

fn failed(why: impl Into<String>) -> AgentRun {
    AgentRun {
        failure: Some(why.into()),
        ..AgentRun::default()
    }
}

impl AgentRunner {
    /// The runner of this process's executable.
    pub(crate) fn current() -> Self {
        Self {
            orch_bin: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("orch")),
        }
    }

    fn start_and_wait(&self, job: &AgentJob, cleanup: &mut Vec<PathBuf>) -> AgentRun {
        let confine = match sandbox::decide(
            &job.plan,
            &job.agent_name,
            &job.agent,
            // The resolver runs here, whatever runs the plan's agents.
            Confiner::Here,
            crate::sandbox::supported(),
        ) {
            Ok(s) => s,
            Err(e) => return failed(e.error.to_string()),
        };
        let confined = confine.rules().is_some();
        let mut confined_line = None;
        let prompt_file = job.log.with_file_name("resolve.prompt.md");
        if let Err(e) = crate::links::write(&prompt_file, job.prompt.as_bytes()) {
            return failed(format!("cannot write `{}`: {e}", prompt_file.display()));
        }
        let usage_file = crate::agent_output::usage_file(&job.log);
        let names_usage = job.agent.command.iter().any(|a| {
            crate::manifest::parse_template(a).is_ok_and(|parts| {
                parts.contains(&crate::manifest::TemplatePart::Var("usage_file"))
            })
        });
        let usage_dir = usage_file.parent().map(Path::to_path_buf);
        if let Some(dir) = &usage_dir {
            let made = if names_usage {
                crate::links::fresh_dir(dir)
            } else {
                client_state::remove(dir);
                Ok(())
            };
            if let Err(e) = made {
                return failed(format!("cannot make `{}` afresh: {e}", dir.display()));
            }
        }
        let orch = self.orch_bin.display().to_string();
        let worktree = job.workdir.display().to_string();
        let notes = job.notes_dir.join(EXPLANATION).display().to_string();
        let lookup = |var: &str| -> String {
            match var {
                "prompt" => job.prompt.clone(),
                "prompt_file" => prompt_file.display().to_string(),
                "plan" => job.plan.clone(),
                "task" => "resolve".to_string(),
                "worktree" => worktree.clone(),
                "status_dir" => job.notes_dir.display().to_string(),
                _ => super::launch::common_var(var, &self.orch_bin, &usage_file),
            }
        };
        let command: Vec<String> =
            match crate::manifest::confined_variant(&job.agent.command).filter(|_| confined) {
                Some(v) => v.iter().map(|a| (*a).to_string()).collect(),
                None => job.agent.command.clone(),
            };
        let mut argv = match command
            .iter()
            .map(|a| render_template(a, lookup))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(a) => a,
            Err(e) => return failed(format!("cannot render the agent's command: {e}")),
        };
        let mut env: Vec<(String, String)> = vec![
            (agent_env::ORCH_PLAN.into(), job.plan.clone()),
            (agent_env::ORCH_TASK.into(), "resolve".into()),
            (agent_env::ORCH_WORKTREE.into(), worktree.clone()),
            (agent_env::ORCH_BIN.into(), orch.clone()),
            (
                agent_env::ORCH_MANIFEST.into(),
                job.manifest_path.display().to_string(),
            ),
            (agent_env::ORCH_ATTEMPT.into(), job.attempt.to_string()),
            (
                agent_env::ORCH_PROMPT_FILE.into(),
                prompt_file.display().to_string(),
            ),
            (agent_env::ORCH_RESOLVE_NOTES.into(), notes),
        ];
        if let Some(cli) = KnownCli::of(&argv) {
            let rules = crate::manifest::preset_with_rules(&job.agent.command).then_some(confined);
            env.extend(cli.env(rules, &orch, |k| {
                std::env::var_os(k).map(|v| v.to_string_lossy().into_owned())
            }));
        }
        let program = argv.first().cloned().unwrap_or_default();
        // In a container: its program found on the container's PATH (or this machine's client
        // mounted, as for an attempt); here: on this machine's.
        let mut client = None;
        if let Some(place) = &job.container {
            client = match crate::merge::resolve::container_client(
                &job.plan,
                &place.image,
                &program,
                &job.workdir,
            ) {
                Ok(c) => c,
                Err(e) => return failed(format!("cannot start the resolver: {e}")),
            };
            argv.insert(0, "/usr/bin/env".to_string());
        } else {
            if let Some(first) = argv.first_mut()
                && !first.contains('/')
                && let Some(found) = process::resolve_program(first, &job.workdir)
            {
                *first = found.display().to_string();
            }
            let program = argv.first().cloned().unwrap_or_default();
            if let Err(e) = process::runnable(&program, &job.workdir) {
                return failed(format!(
                    "cannot start agent `{}` (`{program}`): {e}",
                    job.agent_name
                ));
            }
        }
        // What a container of the plan's image mounts besides the resolution worktree and the
        // TMPDIR: the agent's own directories, its prompt, its client.
        let mut mounts = crate::merge::resolve::ContainerMounts {
            write: vec![job.notes_dir.clone()],
            read: vec![prompt_file.clone()],
            client: client.clone(),
        };
        if names_usage {
            mounts.write.extend(usage_dir.iter().cloned());
        }
        let mut tmp_dir = None;
        if let Some(base) = confine.rules() {
            let tmp = sandbox::tmp_dir(&job.plan, "resolve", job.attempt);
            if let Err(e) = crate::links::fresh_dir(&tmp) {
                return failed(format!("cannot make the TMPDIR `{}`: {e}", tmp.display()));
            }
            cleanup.push(tmp.clone());
            tmp_dir = Some(tmp.clone());
            env.push(("TMPDIR".into(), tmp.display().to_string()));
            let mut rules = sandbox::attempt_rules(base, &job.workdir, &tmp);
            if let Err(e) = sandbox::deny_private(&mut rules, &[&job.state_dir]) {
                return failed(e);
            }
            rules.write.push(job.notes_dir.clone());
            if names_usage {
                rules.write.extend(usage_dir.iter().cloned());
            }
            if let Some(cli) = KnownCli::of(&job.agent.command)
                && cli.private_state().is_some()
            {
                let dir = client_state::dir(&job.state_dir, &job.plan, "resolve", job.attempt);
                cleanup.push(dir.clone());
                match client_state::prepare(cli, &dir, &|k| std::env::var_os(k)) {
                    Ok(Some(p)) => {
                        for (var, d) in &p.vars {
                            env.push(((*var).to_string(), d.display().to_string()));
                        }
                        mounts.write.push(p.dir.clone());
                        rules.write.push(p.dir);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        return failed(format!(
                            "cannot make the private state of {} (`{}`): {e}",
                            cli.name(),
                            dir.display()
                        ));
                    }
                }
            }
            confined_line = Some(crate::agent_output::confined_line(&rules.write));
            argv = sandbox::wrap(&self.orch_bin, &rules, argv);
        }
        // Its network: its plan's agents' (the strictest of theirs and its own), entered by
        // its wrapper, served by a proxy of this run of it.
        let mut agents = vec![(job.agent_name.as_str(), &job.agent)];
        if let Some((name, spec)) = &job.plan_agent {
            agents.push((name.as_str(), spec));
        }
        let network = match crate::merge::network::Network::of_resolver(&agents) {
            Ok(n) => n,
            Err(e) => return failed(e.error.to_string()),
        };
        // The plan's code never runs here when the plan runs in a container: the agent runs in
        // a container of its own of the plan's image, removed when this returns (a killed
        // orch's: by the next one-shot container's sweep of dead runs).
        let container = match &job.container {
            Some(place) => match crate::merge::resolve::Container::start_with(
                place,
                &job.plan,
                (&job.workdir, tmp_dir.as_deref()),
                &self.orch_bin,
                !network.confines(),
                &mounts,
            ) {
                Ok(c) => Some(c),
                Err(e) => return failed(format!("cannot start the resolver's container: {e}")),
            },
            None => None,
        };
        let unit = (job.plan.as_str(), "resolve");
        let net = match &container {
            Some(c) => network.attempt_in(unit, &job.log, &mut env, Some(c.netns())),
            None => network.attempt(unit, &job.log, &mut env),
        };
        let mut net = match net {
            Ok(n) => n,
            Err(e) => return failed(format!("cannot confine the resolver's network: {e}")),
        };
        if let Some(c) = &container {
            if let Some(client) = &client {
                argv = client.in_argv(argv);
            }
            // Passed by name: their values are those `podman exec` is started with.
            argv = c.enter(&job.workdir, argv, &env);
        }
        // Gated: the wrapper starts the agent only once orch has recorded it (below); the agent's
        // stdin is the prompt file (opened by the wrapper, never through a link) or /dev/null.
        let stdin_file = (job.agent.stdin == StdinMode::Prompt).then_some(prompt_file.as_path());
        let argv = process::session::in_session_gated(
            &self.orch_bin,
            (job.log_max, job.grace),
            (stdin_file, None),
            argv,
        );
        process::log_line(
            &job.log,
            &format!(
                "=== orch: attempt {} started at {}: resolve with agent `{}` in {} ===",
                job.attempt,
                crate::status::timestamp(Utc::now()),
                job.agent_name,
                job.workdir.display()
            ),
        );
        if let Some(line) = &confined_line {
            process::log_line(&job.log, line);
        }
        if let Some(place) = &job.container {
            process::log_line(
                &job.log,
                &format!(
                    "=== orch: the resolver runs in a container of the plan's image `{}` ===",
                    crate::untrusted::text::escaped(&place.image)
                ),
            );
        }
        if let Some(note) = network.note("the resolving agent") {
            process::log_line(&job.log, &format!("=== orch: {note} ==="));
        }
        let out = match process::open_log(&job.log).and_then(|f| Ok((f.try_clone()?, f))) {
            Ok(pair) => pair,
            Err(e) => return failed(format!("cannot open `{}`: {e}", job.log.display())),
        };
        let Some((program, args)) = argv.split_first() else {
            return failed("the agent's command is empty");
        };
        // A resolver of this plan that a killed orch left (in a session of its own) goes
        // first, with all it left: it would write into the worktree made afresh for this
        // attempt. Found by orch's record of its wrapper, never by what a process says.
        let record = wrapper_record(job);
        process::recorded::stop(&record, job.grace);
        let mut cmd = crate::agent_env::command(program);
        process::place(&mut cmd, &job.workdir);
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(out.0))
            .stderr(Stdio::from(out.1));
        for name in agent_env::withheld() {
            if agent_env::is_withheld(name, &job.agent.sandbox.pass_env) {
                cmd.env_remove(name);
            }
        }
        for name in GIT_ENV {
            cmd.env_remove(name);
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        let mut child = match process::spawn_std(&mut cmd) {
            Ok(c) => c,
            Err(e) => {
                return failed(format!(
                    "cannot start agent `{}` (`{program}`): {e}",
                    job.agent_name
                ));
            }
        };
        if let Some(net) = net.take() {
            net.started(child.id());
        }
        // Recorded, then let go: a wrapper orch could not record runs nothing (its gate
        // closes unreleased).
        let gate = child.stdin.take();
        if !process::recorded::write(&record, child.id()) {
            drop(gate);
            let _ = child.wait();
            return failed(format!(
                "cannot record the resolver's wrapper at `{}`",
                record.display()
            ));
        }
        if let Some(mut gate) = gate {
            // One byte into an empty pipe: never blocks.
            let _ = std::io::Write::write_all(&mut gate, b"g");
        }
        // `orch session-exec` calls setsid: the wrapper's session and group are its pid.
        let pgid = child.id();
        let deadline = Instant::now() + job.timeout;
        let mut pause = Duration::from_millis(5);
        let mut interrupted = false;
        let ended = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) => {}
                Err(e) => break Err(format!("cannot wait for the agent: {e}")),
            }
            if interrupt::interrupted() {
                interrupted = true;
                process::stop_wrapper_blocking(pgid, job.grace, &mut child);
                break Err("interrupted".to_string());
            }
            if Instant::now() >= deadline {
                process::stop_wrapper_blocking(pgid, job.grace, &mut child);
                break Err(format!(
                    "timed out after {}",
                    crate::manifest::format_duration(job.timeout)
                ));
            }
            sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        };
        // The wrapper ended what the agent left; its session goes too, should it have died
        // first.
        process::signal_group(pgid, Signal::SIGKILL);
        process::forget(pgid);
        process::recorded::forget(&record);
        let output = crate::agent_output::read_attempt(&job.log, Utc::now());
        let failure = match ended {
            Ok(s) if s.success() => None,
            Ok(s) => Some(format!(
                "agent `{}` exited with {s}{}",
                job.agent_name,
                output
                    .cause()
                    .map(|c| format!(": {}", c.lines().last().unwrap_or("")))
                    .unwrap_or_default()
            )),
            Err(e) => Some(e),
        };
        process::log_line(
            &job.log,
            &format!(
                "=== orch: resolver {} ===",
                failure.as_deref().unwrap_or("exited 0")
            ),
        );
        // Everything the agent left in its container goes with it.
        drop(container);
        AgentRun {
            failure,
            usage: output.usage,
            interrupted,
        }
    }
}

/// Where orch records the wrapper of plan `job`'s resolver while it runs
/// (`<state_dir>/.resolve/<plan>.wrapper`, beside the attempts' notes directories, where the
/// resolver cannot write): the next resolution of the plan stops the one a killed orch left.
fn wrapper_record(job: &AgentJob) -> PathBuf {
    let dir = job.notes_dir.parent().unwrap_or(&job.notes_dir);
    dir.join(format!("{}.wrapper", job.plan))
}
