//! Where a plan's attempts run, behind one interface: [`Executor`], made once per plan by
//! [`of_plan`] (`choose.rs`, the one place that reads which executor a plan names). The
//! supervisor asks it everything that differs by place, and names no executor: how an attempt is
//! wrapped and started (a process orch spawns here, or a job a scheduler runs), which sandbox
//! and network it can have, whether its prompt, input and client state are orch's to give here,
//! how an attempt lost with its place is recognised and what it leaves behind, the checks at the
//! start of a run, its hosts.
//!
//! Each executor has a room of its own: [`local`] (a process group per attempt on this machine,
//! see [`crate::process`]), [`slurm`] (a batch job per attempt, followed by the run's
//! [`JobTracker`] over the [`batch::BatchScheduler`] calls), [`ssh`] (the `[[host]]` machines, each
//! attempt driven from here by `orch remote-attempt`), [`container`] (a podman container per
//! plan, each attempt a `podman exec` in it). A new executor is a room implementing
//! [`Executor`], an arm of [`of_plan`], the manifest's parsing of its keys, and the book.

mod batch;
mod choose;
pub(crate) mod container;
pub(crate) mod local;
pub(crate) mod slurm;
pub(crate) mod ssh;
mod tracker;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::CliError;
use crate::manifest::{Host, Manifest, PlanEntry, SandboxMode};
use crate::sandbox::Rules;

pub(crate) use crate::manifest::ExecutorKind;
pub(crate) use batch::{JobEnd, JobSpec, JobState, ListedJob, NOT_SHARED_EXIT, parse_tag};
pub(crate) use choose::of_plan;
pub(crate) use tracker::JobTracker;

/// Where a plan's attempts run: everything of an attempt's life that differs by place. One
/// value per plan, made by [`of_plan`]; the supervisor holds it as `Arc<dyn Executor>`.
///
/// An attempt is started (a process here, under orch's session wrapper, or a job handed to the
/// run's scheduler), runs, and either reports (its exit, its reports) or is lost with its place
/// (a host that stops answering: [`Executor::lost`]); then it is settled, and what it left
/// outside the plan's worktree is cleared ([`Executor::settled`]; after a kill, at the next
/// start: [`Executor::leftovers`]).
pub(crate) trait Executor: Send + Sync + std::fmt::Debug {
    /// `local`, `slurm`, `ssh`, as the manifest spells it: for messages and `orchRun.executor`.
    fn name(&self) -> &'static str;

    /// Who confines its attempts' files (the plan's `sandbox`).
    fn confiner(&self) -> Confiner;

    /// Whether orch's network namespace and allowlisting proxy can confine its attempts; why
    /// not, when they cannot (the plan's network is then unconfined, or refused when asked for).
    fn network(&self) -> Result<(), String>;

    /// Whether a preset agent of the plan runs its confined argv (orch's rules replace the
    /// client's own sandbox, which cannot start inside Landlock). `confined_here`: the plan's
    /// sandbox applies on this machine; `mode`: the agent's `sandbox`; `run_hosts`: the run's
    /// `[[host]]` machines.
    fn runs_confined(&self, confined_here: bool, mode: SandboxMode, run_hosts: &[Host]) -> bool;

    /// Whether its attempts are processes of this machine that orch feeds and keeps: the prompt
    /// on stdin, a person's messages while it runs, a private copy of its client's state made
    /// here, the client's session kept for the task's next attempt.
    fn attempts_here(&self) -> bool;

    /// The argv of the process orch starts for attempt `attempt` of the agent `argv` (with
    /// `env`): the agent's own, or a driver of it elsewhere (`ssh`: `orch remote-attempt`, its
    /// spec written now).
    fn wrap(
        &self,
        attempt: &Attempt<'_>,
        argv: Vec<String>,
        env: &[(String, String)],
    ) -> Result<Vec<String>, String> {
        let _ = (attempt, env);
        Ok(argv)
    }

    /// `argv` confined by `rules` (the attempt's worktree, `TMPDIR` `tmp`, report directory and
    /// the plan's rules; `mode`: the agent's `sandbox`) through `orch sandbox-exec`, as it runs
    /// where [`Executor::confiner`] confines it. `rules` ends as what the attempt may write.
    fn confine(
        &self,
        orch_bin: &Path,
        rules: &mut Rules,
        tmp: &Path,
        mode: SandboxMode,
        argv: Vec<String>,
    ) -> Vec<String> {
        let _ = (tmp, mode);
        crate::sandbox::wrap_here(orch_bin, rules, &argv)
    }

    /// The argv that runs the attempt's (wrapped, confined) `argv` where its executor runs it,
    /// started here under orch's session wrapper: the argv itself, or its entry into the
    /// place (`container`: `podman exec` in the plan's container). `env`: the attempt's
    /// variables so far; `tmp`: the `TMPDIR` orch made for it here.
    fn enter(
        &self,
        attempt: &Attempt<'_>,
        argv: Vec<String>,
        env: &[(String, String)],
        tmp: &Path,
    ) -> Result<Vec<String>, String> {
        let _ = (attempt, env, tmp);
        Ok(argv)
    }

    /// Whether a plan's own commands on an attempt's work (a task's `check`, best of N's
    /// `select`) run where its attempts run, through [`Executor::wrap`], [`Executor::confine`],
    /// [`Executor::enter`] and [`Executor::network_place`] as an attempt does, then
    /// [`Executor::settled`]; else here, as they are (on the lead's copy of the work).
    fn commands_in_place(&self) -> bool {
        false
    }

    /// The job that runs attempt `job` when its executor hands attempts to a scheduler (the run's
    /// [`JobTracker`] follows it); `None`: a process started here ([`Executor::wrap`]).
    fn job(&self, job: &JobAttempt<'_>) -> Option<JobSpec> {
        let _ = job;
        None
    }

    /// The run's scheduler of such jobs, made once at its start (the job script written into
    /// `state_dir`); `None` for an executor without jobs.
    fn tracker(&self, state_dir: &Path) -> Option<Result<Arc<JobTracker>, String>> {
        let _ = state_dir;
        None
    }

    /// Where the attempt `attempt` of `unit` (a task id, or `plan`) of plan `plan` says which
    /// machine it runs on now, when it moves between machines (`state_dir`: the run's).
    fn place_record(
        &self,
        state_dir: &Path,
        plan: &str,
        unit: &str,
        attempt: u32,
    ) -> Option<PlaceRecord> {
        let _ = (state_dir, plan, unit, attempt);
        None
    }

    /// Whether an attempt that ended with `code` was lost with its place rather than ended by
    /// its agent: such an attempt is not the agent's fault.
    fn lost(&self, code: i32) -> Option<Lost> {
        let _ = code;
        None
    }

    /// Why the place of the attempt [`Executor::lost`] last found lost was lost, in words for
    /// the console (taken: told once); `None`: nothing more than that its host stopped
    /// answering.
    fn lost_why(&self) -> Option<String> {
        None
    }

    /// Why a plan's own command run in place ([`Executor::commands_in_place`]: a task's
    /// `check`), as `unit`'s attempt `attempt`, that ended with `code` never ran: its place
    /// failed before it (a container's service that did not get ready), as orch itself recorded
    /// it (taken; the status alone, which the command may exit with, decides nothing). Asked
    /// before [`Executor::settled`].
    fn place_failed(&self, unit: &str, attempt: u32, code: i32) -> Option<String> {
        let _ = (unit, attempt, code);
        None
    }

    /// What the executor saw of its place while the attempts ran that the console should say
    /// (a container's service that stopped under an attempt), found by [`Executor::ended`];
    /// taken: told once.
    fn place_news(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether an attempt that outlived the orch that started it is a process of this machine,
    /// adopted by the next orch from its record (the wrapper's pid and start time); else only a
    /// job its scheduler lists is adopted.
    fn adopts_processes(&self) -> bool;

    /// Attempt `attempt` of `unit` has ended (or was stopped): what it left running where orch's
    /// wrapper here does not reach (inside a container) is killed now, before its work is taken,
    /// so that nothing of it writes into the worktree after.
    fn ended(&self, unit: &str, attempt: u32) {
        let _ = (unit, attempt);
    }

    /// What an attempt settled (its work on the plan branch, or saved) leaves to clear outside
    /// the plan's worktree (`repo_root`: the plan's repository; `at`: its name and branch):
    /// cleared now, with a note for the run when that fails.
    fn settled(
        &self,
        repo_root: &Path,
        at: (&str, &str),
        unit: &str,
        attempt: u32,
    ) -> Option<String> {
        let _ = (repo_root, at, unit, attempt);
        None
    }

    /// What earlier runs of the plan left outside its worktree (a killed `orch up`'s), cleared at
    /// the start of a run once its work is safe, but for the attempts `running` (unit,
    /// attempt) still coming; one note each.
    fn leftovers(
        &self,
        repo_root: &Path,
        at: (&str, &str),
        running: &[(String, u32)],
    ) -> Vec<String> {
        let _ = (repo_root, at, running);
        Vec::new()
    }

    /// The machines its attempts may run on (`[[host]]` names), watched lost and back.
    fn hosts(&self) -> &[String] {
        &[]
    }

    /// Why `host` does not answer, as orch's own record has it (`Some("")`: no cause recorded;
    /// `None`: it answers). `state_dir`: where the plan's records are.
    fn host_lost(&self, state_dir: &Path, host: &str) -> Option<String> {
        let _ = (state_dir, host);
        None
    }

    /// What the attempts' drivers left to say on the console about `host` (orch's records of
    /// its lost attempts it removed), each said once. `state_dir`: where the plan's records are.
    fn host_notes(&self, state_dir: &Path, host: &str) -> Vec<String> {
        let _ = (state_dir, host);
        Vec::new()
    }

    /// Where the network namespace of an attempt's process is, once [`Executor::enter`] made
    /// its place: made by the wrapper here ([`NetPlace::Here`]), the place's own network
    /// ([`NetPlace::Own`]: a container's `none` or `open`, the process here keeping this
    /// machine's), or the place's namespace, which the wrapper here joins to open the attempt's
    /// proxy sockets in ([`NetPlace::Join`]: a confined container). An error starts nothing.
    fn network_place(&self) -> Result<NetPlace, String> {
        Ok(NetPlace::Here)
    }

    /// Whether its agents' programs are checked on this machine at the start (`--version`,
    /// their flags); otherwise the place checks them (a host's probe).
    fn checks_agents_here(&self) -> bool;

    /// What it checks at the start of a run, once for all the run's plans it runs
    /// (`plans`), before anything is made: notes for the user, or why the run cannot start.
    fn check_start(
        &self,
        run: &RunStart<'_>,
        plans: &[PlanStart<'_>],
    ) -> Result<Vec<String>, CliError> {
        let _ = (run, plans);
        Ok(Vec::new())
    }
}

/// Where an attempt's network namespace is ([`Executor::network_place`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NetPlace {
    /// Made by orch's wrapper here, for the attempt.
    Here,
    /// The place's own: nothing of orch's.
    Own,
    /// The place's, joined by orch's wrapper here to open the attempt's sockets in.
    Join(crate::sandbox::net::Join),
}

/// Who confines a plan's attempts' files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Confiner {
    /// orch's wrapper on this machine, under this kernel's Landlock; the plan's checks and
    /// setup are confined here the same way.
    Here,
    /// The same wrapper on the node that runs the attempt, whose kernel decides there
    /// (`--if-supported` under `sandbox = "auto"`); its `TMPDIR` is the node's.
    OnNode,
    /// The place itself (orch's copy on a host, with the same rules): nothing here.
    There,
}

/// How an attempt was lost with its place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lost {
    /// Its place stopped answering: it runs again, not counted (up to a limit).
    Place,
    /// No place of the plan could take it: not counted, the plan is blocked.
    Nowhere,
}

/// One attempt as [`Executor::wrap`] sees it: where orch put its files.
pub(crate) struct Attempt<'a> {
    pub(crate) plan: &'a str,
    /// A task id, or `plan`.
    pub(crate) unit: &'a str,
    pub(crate) attempt: u32,
    /// The plan's repository.
    pub(crate) repo_root: &'a Path,
    /// The state directory of the plan's records.
    pub(crate) state_dir: &'a Path,
    pub(crate) status_file: &'a Path,
    pub(crate) workdir: &'a Path,
    pub(crate) branch: &'a str,
    pub(crate) report_dir: &'a Path,
    pub(crate) prompt_file: &'a Path,
    pub(crate) orch_bin: &'a Path,
    /// The agent's `sandbox`.
    pub(crate) sandbox: SandboxMode,
    /// The run's `[[host]]` machines.
    pub(crate) run_hosts: &'a [Host],
    /// What of [`crate::agent_env::withheld`] the agent keeps (`pass_env`), wherever it runs.
    pub(crate) pass_env: &'a [String],
}

/// One attempt as [`Executor::job`] sees it.
pub(crate) struct JobAttempt<'a> {
    pub(crate) argv: &'a [String],
    pub(crate) env: &'a [(String, String)],
    pub(crate) workdir: &'a Path,
    /// What of [`crate::agent_env::withheld`] the job keeps (`pass_env`).
    pub(crate) pass_env: &'a [String],
    pub(crate) log: &'a Path,
    pub(crate) plan: &'a str,
    /// The task's id; `None` for a plan agent.
    pub(crate) task: Option<&'a str>,
    pub(crate) status_file: &'a Path,
    pub(crate) attempt: u32,
    /// The attempt's own time budget and orch's grace period after it.
    pub(crate) budget: Duration,
    pub(crate) grace: Duration,
}

/// Where an attempt says which machine it runs on now: a record its driver keeps, read by
/// orch's watch of the attempt.
pub(crate) struct PlaceRecord {
    pub(crate) path: PathBuf,
    pub(crate) read: fn(&Path) -> Option<String>,
}

impl PlaceRecord {
    /// The machine the record names now.
    pub(crate) fn now(&self) -> Option<String> {
        (self.read)(&self.path)
    }
}

/// What every executor's start-time checks share: the run.
pub(crate) struct RunStart<'a> {
    pub(crate) manifest: &'a Manifest,
    pub(crate) orch_bin: &'a Path,
    pub(crate) state_dir: &'a Path,
}

/// One plan of the run, as [`Executor::check_start`] sees it.
pub(crate) struct PlanStart<'a> {
    pub(crate) name: &'a str,
    pub(crate) entry: &'a PlanEntry,
    /// The program its agent runs, when it is looked for on `PATH` (a bare name).
    pub(crate) program: Option<String>,
}

/// Why an executor's attempts get no network confinement: they run where orch's namespace and
/// proxy are not.
fn unconfined_network(name: &str) -> String {
    format!("its agents run as {name} jobs, whose network orch does not confine")
}
