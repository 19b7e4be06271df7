//! The preparation of `orch up`'s run, in two steps. [`Checked::check`]: everything that can be
//! checked before anything is touched (templates, agents, each plan's worktree, each executor's
//! own checks: Slurm's shared paths and controller, the ssh plans' hosts), then the
//! supervisor lock and the exclusion of orch's directories from git. [`Checked::prepare`]: the
//! stale git locks of an interrupted run removed, each existing plan branch's worktree reused or
//! re-added with its start record (`orchWorktree`), and the run context ([`Ctx`]) the effect
//! runner works with. A new plan branch and its worktree are made during the run
//! ([`NewTree`], `prepare::ensure_tree`), concurrently, so that no plan waits for another's.

mod checks;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::anyhow;
use chrono::Utc;
use serde_json::json;

use super::context::{Ctx, NewTree, PlanCtx};
use super::{Event, LockError, PlanInfo, SupervisorLock};
use crate::error::{CliError, CliResult, exit};
use crate::executor::{Executor, PlanStart, RunStart};
use crate::git::{self, TreeAction, TreeRequest};
use crate::manifest::{Manifest, PlanEntry};
use crate::prompt::Templates;
use crate::status;
use crate::workspace::{self, LoadedPlan, Workspace};

/// What a run's settings take from the command line.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RunOptions {
    /// Overrides `defaults.max_agents`.
    pub(crate) max_agents: Option<usize>,
    /// The merge train, also when `defaults.auto_merge` is off.
    pub(crate) merge: bool,
}

/// A run checked, with the supervisor lock held: nothing made yet.
pub(crate) struct Checked<'w> {
    manifest: &'w Manifest,
    repo_root: PathBuf,
    state_dir: PathBuf,
    orch_bin: PathBuf,
    templates: Templates,
    /// The plans of the run, in the order they were selected.
    plans: Vec<Chosen<'w>>,
    /// Every plan of the workspace (their tasks' own checks are what a later run trusts).
    all_plans: &'w [LoadedPlan],
    /// Taken by [`Checked::check`]; `None` for a re-plan's check (the run holds it).
    lock: Option<SupervisorLock>,
    /// What the pre-flights tell the user (a client run confined, and why).
    notes: Vec<String>,
    /// The fallback agents whose pre-flight failed, with why.
    unusable: Vec<(String, String)>,
}

/// One plan of the run.
struct Chosen<'w> {
    index: usize,
    lp: &'w LoadedPlan,
    entry: &'w PlanEntry,
    /// What its worktree needs; `None`: the plan has nothing left to do, and no worktree.
    tree: Option<TreeAction>,
    /// Where its attempts run, made once here from its `executor`.
    executor: Arc<dyn Executor>,
    /// Whether its agents run confined.
    sandbox: super::sandbox::PlanSandbox,
    /// What its agents reach on the network.
    network: super::network::PlanNetwork,
    /// The network of each other agent its attempts may run (its fallbacks, its best-of-N
    /// agents), decided by that agent's own settings.
    agent_networks: Vec<(String, super::network::PlanNetwork)>,
}

/// A run ready for the effect runner ([`super::run`]). Holds the supervisor lock until dropped.
pub(crate) struct Prepared {
    pub(crate) ctx: Arc<Ctx>,
    _lock: Option<SupervisorLock>,
}

impl<'w> Checked<'w> {
    /// Checks the run of plans `selected` (indexes into `ws.plans`) of `manifest`, then takes the
    /// supervisor lock of the repository (exit 4 when another supervisor holds it).
    pub(crate) fn check(
        ws: &'w Workspace,
        manifest: &'w Manifest,
        selected: &[usize],
        orch_bin: PathBuf,
    ) -> CliResult<Self> {
        let mut checked = Self::check_reload(ws, manifest, selected, &[], orch_bin)?;
        checked.lock = Some(lock(&checked.state_dir)?);
        // The locks orch keeps for files that are gone (a repository removed, a plan cleaned).
        crate::sandbox::sweep_private_locks();
        // Every repository's own directories, before any agent is confined: the rules that
        // hide the worktree roots let a process read only what the directories above them
        // hold when it starts.
        for dir in manifest.orch_dirs_to_make() {
            std::fs::create_dir_all(&dir).map_err(|e| {
                CliError::from(anyhow::anyhow!("cannot create `{}`: {e}", dir.display()))
            })?;
        }
        // The worktrees, the state and the logs are not the repository's content, in the home
        // repository nor in any other whose plans run here (their status files are there).
        let excluded = crate::merge::orch_dirs(manifest, &checked.repo_root);
        git::ensure_excluded(&checked.repo_root, &excluded).map_err(CliError::coded)?;
        for root in workspace::repos::all_roots(manifest, &checked.repo_root)
            .iter()
            .skip(1)
        {
            let excluded = crate::merge::orch_dirs_in(manifest);
            git::ensure_excluded(root, &excluded).map_err(CliError::coded)?;
            // Watched from the start, with the home repository's.
            let state = root.join(&manifest.defaults.state_dir);
            std::fs::create_dir_all(&state).map_err(|e| {
                anyhow!("cannot make the state directory `{}`: {e}", state.display())
            })?;
        }
        Ok(checked)
    }

    /// What [`Checked::check`] checks of plans `selected` of an edited manifest during a run
    /// (live re-planning): the run holds the supervisor lock already, and the worktrees of the
    /// plans it runs (`running`, a subset of `selected`) are its own, agents at work in them: only
    /// a new plan's worktree is checked. [`Checked::check`] is this with none running, then
    /// the lock.
    pub(crate) fn check_reload(
        ws: &'w Workspace,
        manifest: &'w Manifest,
        selected: &[usize],
        running: &[usize],
        orch_bin: PathBuf,
    ) -> CliResult<Self> {
        let repo_root = workspace::repo_root(manifest)?;
        let invalid = |e: String| CliError::invalid(anyhow!("{e}"));
        let templates = Templates::load(&manifest.root, &manifest.defaults.templates)
            .map_err(|e| invalid(e.to_string()))?;
        templates.check().map_err(|e| invalid(e.to_string()))?;
        let mut plans = Vec::with_capacity(selected.len());
        // Asked once, and only when some agent may be confined.
        let landlock = std::cell::OnceCell::new();
        let confines = manifest
            .plans
            .iter()
            .filter_map(|e| manifest.agent_of(e))
            .any(|a| a.sandbox.mode != crate::manifest::SandboxMode::Off);
        let supported = confines && *landlock.get_or_init(crate::sandbox::supported);
        // Whether network namespaces can be made: asked once, when some plan needs one.
        let netns: std::cell::OnceCell<Result<(), String>> = std::cell::OnceCell::new();
        let landlock_tcp = std::cell::OnceCell::new();
        let mut preflights = checks::Preflights {
            checked: Default::default(),
            roots: crate::preflight::writable_roots(manifest, &repo_root, supported),
            landlock: supported,
            notes: Vec::new(),
        };
        for &index in selected {
            let lp = &ws.plans[index];
            let entry = workspace::entry_of(manifest, &lp.name)?;
            let executor = crate::executor::of_plan(manifest, entry);
            checks::agent(
                manifest,
                (entry, executor.as_ref()),
                &orch_bin,
                &templates,
                lp,
                &mut preflights,
            )?;
            let tree = if running.contains(&index) {
                None
            } else {
                let root = workspace::repos::root_of(manifest, entry, &repo_root);
                checks::tree_action(manifest, &root, lp, entry)?
            };
            let mut sandbox = match manifest.agent_of(entry) {
                Some(agent) => super::sandbox::decide(
                    &lp.name,
                    &entry.agent,
                    agent,
                    executor.confiner(),
                    agent.sandbox.mode != crate::manifest::SandboxMode::Off
                        && *landlock.get_or_init(crate::sandbox::supported),
                )?,
                None => super::sandbox::PlanSandbox::Off,
            };
            if let super::sandbox::PlanSandbox::Confined(rules) = &mut sandbox {
                let statuses: Vec<&Path> =
                    ws.plans.iter().map(|p| p.status_path.as_path()).collect();
                super::sandbox::deny_private_of_run(rules, &statuses).map_err(|e| {
                    CliError::new(exit::FAILURE, anyhow!("plan `{}`: {e}", lp.name))
                })?;
            }
            let network = match manifest.agent_of(entry) {
                Some(agent) => {
                    let probe = || {
                        netns
                            .get_or_init(|| crate::sandbox::net::probe(&orch_bin))
                            .clone()
                    };
                    let tcp = || *landlock_tcp.get_or_init(|| crate::sandbox::abi() >= 4);
                    let net = super::network::decide(
                        &lp.name,
                        &entry.agent,
                        agent,
                        executor.as_ref(),
                        &probe,
                        &tcp,
                    )?;
                    // Each other agent of the plan (a fallback, a best-of-N agent) by its own
                    // settings: refused here, naming it, where they cannot be enforced.
                    let mut others = Vec::new();
                    for name in super::network::other_agents(entry) {
                        if let Some(other) = manifest.agents.get(name) {
                            let n = super::network::decide(
                                &lp.name,
                                name,
                                other,
                                executor.as_ref(),
                                &probe,
                                &tcp,
                            )?;
                            others.push((name.clone(), n));
                        }
                    }
                    let fallbacks = entry.fallback.iter().filter_map(|n| manifest.agents.get(n));
                    (super::network::with_fallbacks(net, fallbacks), others)
                }
                None => (super::network::PlanNetwork::Open, Vec::new()),
            };
            let (network, agent_networks) = network;
            plans.push(Chosen {
                index,
                lp,
                entry,
                tree,
                executor,
                sandbox,
                network,
                agent_networks,
            });
        }
        // The fallbacks: one whose pre-flight fails is passed over at failover, and said now. A
        // plan whose agents' programs are checked where they run (a `[[host]]`'s probe) runs its
        // fallbacks there too.
        let unusable = checks::fallbacks(
            manifest,
            plans
                .iter()
                .filter(|c| c.executor.checks_agents_here())
                .map(|c| c.entry),
            &orch_bin,
            &mut preflights,
        );
        for (name, why) in &unusable {
            preflights.notes.push(format!(
                "fallback agent `{name}` cannot be used ({why}): failover passes over it"
            ));
        }
        let state_dir = manifest.root.join(&manifest.defaults.state_dir);
        let mut notes = preflights.notes;
        // Each executor's own checks, once for all the plans it runs (Slurm's shared paths and
        // its controller; the ssh plans' hosts probed, one that does not answer said at once).
        let run = RunStart {
            manifest,
            orch_bin: &orch_bin,
            state_dir: &state_dir,
        };
        let mut names: Vec<&str> = Vec::new();
        for c in &plans {
            let name = c.executor.name();
            if names.contains(&name) {
                continue;
            }
            names.push(name);
            let same: Vec<PlanStart<'_>> = plans
                .iter()
                .filter(|o| o.executor.name() == name)
                .map(|o| PlanStart {
                    name: o.lp.name.as_str(),
                    entry: o.entry,
                    // The program its agent runs, where it is looked for on `PATH`.
                    program: manifest
                        .agent_of(o.entry)
                        .and_then(|a| a.command.first())
                        .filter(|first| !first.contains(['/', '{']))
                        .cloned(),
                })
                .collect();
            notes.extend(c.executor.check_start(&run, &same)?);
        }
        Ok(Self {
            manifest,
            repo_root,
            state_dir,
            orch_bin,
            templates,
            plans,
            all_plans: &ws.plans,
            lock: None,
            notes,
            unusable,
        })
    }

    /// The main repository's work dir.
    pub(crate) fn repo_root(&self) -> &Path {
        &self.repo_root
    }

    /// `<state_dir>`: the status files, the event log.
    pub(crate) fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The Landlock ABI the run's confined agents get (`crate::sandbox::abi`), 0 when no agent
    /// is confined.
    pub(crate) fn sandbox_abi(&self) -> u8 {
        let confined = self
            .plans
            .iter()
            .any(|c| matches!(c.sandbox, super::sandbox::PlanSandbox::Confined(_)));
        if confined { crate::sandbox::abi() } else { 0 }
    }

    /// The run's sandbox in one word (`on`, `off`, `unavailable`) and the plans whose agents
    /// run unconfined because the kernel cannot confine them.
    pub(crate) fn sandbox(&self) -> (&'static str, Vec<&str>) {
        let state = super::sandbox::run_state(self.plans.iter().map(|c| &c.sandbox));
        let unavailable = self
            .plans
            .iter()
            .filter(|c| c.sandbox == super::sandbox::PlanSandbox::Unavailable)
            .map(|c| c.lp.name.as_str())
            .collect();
        (state, unavailable)
    }

    /// The `network:` line of the run's start.
    pub(crate) fn network_line(&self) -> String {
        super::network::start_line(self.plans.iter().map(|c| (c.lp.name.as_str(), &c.network)))
    }

    /// What the pre-flights found to say: a client program that lies where an agent may write,
    /// run confined.
    pub(crate) fn notes(&self) -> &[String] {
        &self.notes
    }

    /// One line per preset agent of the run: what it may run, confined or not.
    pub(crate) fn preset_rules(&self) -> Vec<String> {
        let mut lines = std::collections::BTreeSet::new();
        for c in &self.plans {
            let Some(agent) = self.manifest.agent_of(c.entry) else {
                continue;
            };
            if !crate::manifest::preset_with_rules(&agent.command) {
                continue;
            }
            let name = &c.entry.agent;
            lines.insert(match &c.sandbox {
                super::sandbox::PlanSandbox::Confined(_) => format!(
                    "agent `{name}`: confined by orch (Landlock), so it may run every shell command"
                ),
                _ => format!(
                    "agent `{name}`: not confined by orch, so its client's own narrow rules apply"
                ),
            });
        }
        lines.into_iter().collect()
    }

    /// Each plan of the run with its tasks and those already finished (for the progress).
    pub(crate) fn plan_infos(&self) -> Vec<PlanInfo> {
        self.plans
            .iter()
            .map(|c| PlanInfo {
                name: c.lp.name.clone(),
                total: c.lp.plan.tasks.len(),
                done: c.lp.read_status().ok().map_or(0, |d| {
                    d.entries().filter(|e| e.status.is_finished()).count()
                }),
            })
            .collect()
    }

    /// Makes the run: stale git locks removed, each plan's worktree and branch (a
    /// `plan_started` event each), the early warning of conflicting branches, the run context.
    pub(crate) fn prepare(
        self,
        ws: &Workspace,
        options: RunOptions,
        emit: &mut impl FnMut(&Event),
    ) -> CliResult<Prepared> {
        self.remove_stale_locks(emit)?;
        let mut plans: Vec<Option<Arc<PlanCtx>>> = vec![None; ws.plans.len()];
        // Plans whose branch already has work: checked against each other once all trees are made.
        let mut with_work: Vec<(String, String)> = Vec::new();
        for chosen in &self.plans {
            plans[chosen.index] = Some(Arc::new(self.plan_ctx(chosen, &mut with_work, emit)?));
        }
        checks::warn_conflicts(&self.repo_root, &with_work, emit);
        let (sandbox, sandbox_abi) = (self.sandbox().0, self.sandbox_abi());
        super::sandbox::record(
            &self.state_dir,
            (sandbox, sandbox_abi),
            &self
                .plans
                .iter()
                .map(|c| (c.lp.name.clone(), c.sandbox.as_str()))
                .collect::<Vec<_>>(),
        );
        let network = super::network::run_state(self.plans.iter().map(|c| &c.network));
        super::network::record(
            &self.state_dir,
            network,
            &self
                .plans
                .iter()
                .map(|c| (c.lp.name.clone(), c.network.as_str()))
                .collect::<Vec<_>>(),
        );
        // The proxy of the run: made whatever the plans' networks (a re-plan may confine one);
        // not being able to make it is an error only where a plan needs it now.
        let needs_proxy = self.plans.iter().any(|c| {
            matches!(
                c.network,
                super::network::PlanNetwork::Confined(_) | super::network::PlanNetwork::Ports(..)
            )
        });
        let net = match crate::sandbox::net::NetProxy::new(&self.state_dir) {
            Ok(net) => Some(net),
            Err(e) if needs_proxy => return Err(anyhow!("{e}").into()),
            Err(_) => None,
        };
        // The run's scheduler of batch jobs, when an executor of its plans hands attempts to one.
        let jobs = self
            .plans
            .iter()
            .find_map(|c| c.executor.tracker(&self.state_dir))
            .transpose()
            .map_err(|e| anyhow!("{e}"))?;
        let manifest = self.manifest;
        let d = &manifest.defaults;
        let integration = d
            .integrate
            .map(|interval| -> CliResult<_> {
                Ok(Arc::new(super::context::IntegrationCtx {
                    spec: crate::merge::integrate::IntegrationSpec::from_manifest(
                        manifest,
                        &self.repo_root,
                    )?,
                    interval,
                    feedback: d.integrate_feedback,
                    integrator: Default::default(),
                    failure: Default::default(),
                }))
            })
            .transpose()?;
        let ctx = Arc::new(Ctx {
            repo_root: self.repo_root,
            manifest_path: std::path::absolute(&manifest.path).unwrap_or(manifest.path.clone()),
            orch_bin: self.orch_bin,
            max_agents: options.max_agents.unwrap_or(d.max_agents).max(1),
            grace: d.grace,
            log_max: d.log_max,
            backoff: d.backoff,
            stuck_after: d.stuck_after,
            auto_merge: options.merge || d.auto_merge,
            budget: d.budget,
            limit_backoff: limit_backoff(),
            templates: self.templates,
            plans,
            jobs,
            ports: d.ports,
            integration,
            sandbox,
            sandbox_abi,
            network,
            net,
            hosts: manifest.hosts.clone(),
            unusable_fallbacks: self.unusable,
            tree_slots: super::context::TreeSlots::new(
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            ),
        });
        Ok(Prepared {
            ctx,
            _lock: self.lock,
        })
    }

    /// The contexts of the checked plans of a re-plan, by their index in the run (`at`, one
    /// per checked plan, in order): a plan the run has (`old`) keeps its worktree and what the
    /// run knows of it, with the new settings; a new plan gets its worktree as at the start
    /// (made now when its branch exists, else during the run).
    pub(crate) fn reload_ctxs(
        &self,
        at: &[(usize, Option<Arc<PlanCtx>>)],
        emit: &mut impl FnMut(&Event),
    ) -> CliResult<Vec<Arc<PlanCtx>>> {
        let mut with_work = Vec::new();
        let mut out = Vec::with_capacity(at.len());
        for (c, (index, old)) in self.plans.iter().zip(at) {
            let mut ctx = match old {
                Some(old) => old.renewed(self.settings_ctx(c)?),
                None => self.plan_ctx(c, &mut with_work, emit)?,
            };
            ctx.index = *index;
            out.push(Arc::new(ctx));
        }
        checks::warn_conflicts(&self.repo_root, &with_work, emit);
        Ok(out)
    }

    /// Lock files left by a git write killed with an earlier supervisor (its commit, or the
    /// creation of the plan branch) would fail this run's. This supervisor is the only one now;
    /// a plan with no live agent left has no other writer either.
    fn remove_stale_locks(&self, emit: &mut impl FnMut(&Event)) -> CliResult<()> {
        let removed = |lock: &Path| {
            format!(
                "removed `{}`, a stale git lock left by an interrupted run",
                lock.display()
            )
        };
        if let Some(lock) =
            git::remove_stale_config_lock(&self.repo_root).map_err(CliError::coded)?
        {
            emit(&Event::Note {
                plan: None,
                message: removed(&lock),
            });
        }
        for c in &self.plans {
            // Agents of a plan with task worktrees never write in the plan's worktree or branch:
            // only orch does (landing task commits), and no other orch runs now. Whether an
            // agent of the plan still runs is orch's record (its wrapper's pid and start time),
            // never what a process says of itself.
            if !self.manifest.task_trees(c.entry) && recorded_agent_alive(c.lp) {
                continue;
            }
            let root = workspace::repos::root_of(self.manifest, c.entry, &self.repo_root);
            for lock in git::remove_plan_locks(&root, &c.lp.name, &c.entry.branch)
                .map_err(CliError::coded)?
            {
                emit(&Event::Note {
                    plan: Some(c.lp.name.clone()),
                    message: removed(&lock),
                });
            }
        }
        Ok(())
    }

    /// Plan `c`'s worktree and branch, when it has work left, and its context.
    fn plan_ctx(
        &self,
        c: &Chosen<'_>,
        with_work: &mut Vec<(String, String)>,
        emit: &mut impl FnMut(&Event),
    ) -> CliResult<PlanCtx> {
        let (lp, entry, manifest) = (c.lp, c.entry, self.manifest);
        let mut ctx = self.settings_ctx(c)?;
        if matches!(
            c.tree,
            Some(TreeAction::Create { .. } | TreeAction::Readd { .. })
        ) {
            for w in &entry.warm {
                if std::fs::symlink_metadata(ctx.repo_root.join(&w.path)).is_err() {
                    emit(&Event::Note {
                        plan: Some(lp.name.clone()),
                        message: format!(
                            "`warm` directory `{}` does not exist in the main work tree yet: not copied",
                            w.path.display()
                        ),
                    });
                }
            }
        }
        (ctx.base, ctx.created_at, ctx.new_tree) = match &c.tree {
            None => (String::new(), None, None),
            // A new branch: its worktree is made in the plan's preparation, concurrently with
            // the other plans' and their agents (`prepare::make_tree`). Nothing of the run reads
            // it before then; `base` is the target's tip seen now.
            Some(TreeAction::Create { base }) => (
                base.clone(),
                Some(Utc::now()),
                Some(NewTree {
                    target: manifest.target_of(entry).to_string(),
                }),
            ),
            Some(_) => {
                let tree = git::ensure_plan_tree(&tree_request(
                    manifest,
                    &ctx.repo_root,
                    entry,
                    &ctx.worktree,
                    &ctx.copy,
                ))
                .map_err(CliError::coded)?;
                let created_at = record_tree(lp, &tree)?;
                if tree.head != tree.base {
                    with_work.push((lp.name.clone(), tree.branch.clone()));
                }
                emit(&Event::PlanStarted {
                    plan: lp.name.clone(),
                    branch: tree.branch.clone(),
                    worktree: tree.path.clone(),
                    base: tree.base.clone(),
                    created: tree.created,
                });
                for message in &tree.notes {
                    emit(&Event::Note {
                        plan: Some(lp.name.clone()),
                        message: message.clone(),
                    });
                }
                (tree.base, Some(created_at), None)
            }
        };
        Ok(ctx)
    }

    /// Plan `c`'s context as the manifest and the plan file set it, without its worktree
    /// (`base`, `created_at`, `new_tree` left empty).
    fn settings_ctx(&self, c: &Chosen<'_>) -> CliResult<PlanCtx> {
        let (lp, entry, manifest) = (c.lp, c.entry, self.manifest);
        // `warm` directories are copied into new worktrees after the `copy` paths.
        let mut copy = entry.copy.clone();
        copy.extend(entry.warm.iter().map(|w| w.path.clone()));
        let agent = manifest.agent_of(entry).cloned().ok_or_else(|| {
            CliError::invalid(anyhow!(
                "plan `{}` names agent `{}`, which `{}` does not define",
                lp.name,
                entry.agent,
                manifest.path.display()
            ))
        })?;
        let worktree = manifest.worktree_path(&lp.name);
        let upstreams = super::upstream_repos::of_plan(manifest, entry, &self.repo_root, &worktree);
        // Its read-only checkouts of the repositories it builds on lie in the worktree root,
        // which every agent has denied: its own are readable to it.
        let mut sandbox = c.sandbox.clone();
        if let super::sandbox::PlanSandbox::Confined(rules) = &mut sandbox {
            rules.read.extend(upstreams.iter().map(|u| u.path.clone()));
        }
        Ok(PlanCtx {
            upstreams,
            followed: Default::default(),
            index: c.index,
            entry: Arc::new(entry.clone()),
            plan: lp.plan.clone(),
            rel_path: lp.rel_path.clone(),
            digest: plan_digest(&entry.abs_file, &lp.plan),
            status_path: lp.status_path.clone(),
            run_state_dir: self.state_dir.clone(),
            log_dir: manifest.log_dir(&lp.name),
            worktree,
            base: String::new(),
            created_at: None,
            new_tree: None,
            made: Default::default(),
            agent,
            best_of_tasks: super::best_of::any_task_best_of(&lp.plan),
            repo_root: workspace::repos::root_of(manifest, entry, &self.repo_root),
            copy,
            git_lock: Default::default(),
            commits: Default::default(),
            port: Default::default(),
            unrecorded: Default::default(),
            own_finished: Default::default(),
            known: Default::default(),
            executor: c.executor.clone(),
            sandbox,
            network: c.network.clone(),
            agent_networks: c.agent_networks.clone(),
            guarded: std::iter::once(lp)
                .chain(self.all_plans)
                .fold(manifest.guarded(&self.repo_root, Some(entry)), |g, p| {
                    g.with_task_checks(&p.plan)
                }),
        })
    }
}

/// The worktree of plan `entry` at `path`, as git makes it.
fn tree_request<'a>(
    manifest: &'a Manifest,
    repo_root: &'a Path,
    entry: &'a PlanEntry,
    path: &'a Path,
    copy: &'a [PathBuf],
) -> TreeRequest<'a> {
    TreeRequest {
        repo_root,
        plan: &entry.name,
        branch: &entry.branch,
        path,
        target: manifest.target_of(entry),
        copy,
        sparse: &entry.paths,
        submodules: entry.submodules,
    }
}

/// One supervisor per repository.
fn lock(state_dir: &Path) -> CliResult<SupervisorLock> {
    SupervisorLock::acquire(state_dir).map_err(|e| {
        let hint = match &e {
            LockError::Held { .. } => {
                "wait for it to finish, or stop it (Ctrl-C in its terminal); `orch status --watch` follows its progress"
            }
            LockError::Open { .. } => "check the permissions of the state directory",
        };
        CliError::new(exit::REFUSED, e).with_hint(hint)
    })
}

/// Records the plan's worktree in its status file (`orchWorktree`); returns when orch made it.
fn record_tree(lp: &LoadedPlan, tree: &git::PlanTree) -> CliResult<chrono::DateTime<Utc>> {
    let mut created_at = Utc::now();
    lp.update_status(|doc| {
        tree_record(doc, tree, &mut created_at);
        Ok(())
    })
    .map_err(CliError::coded)?;
    Ok(created_at)
}

/// Writes `orchWorktree` of `tree` into `doc`; `created_at` is when orch made it (`now` for a
/// tree made by this call; for a reused one, the earlier record's time when there is one).
pub(super) fn tree_record(
    doc: &mut status::StatusDoc,
    tree: &git::PlanTree,
    created_at: &mut chrono::DateTime<Utc>,
) {
    let earlier = doc
        .extra
        .get("orchWorktree")
        .filter(|v| v.get("branch").and_then(|b| b.as_str()) == Some(tree.branch.as_str()))
        .and_then(|v| v.get("createdAt"))
        .and_then(|v| v.as_str())
        .and_then(status::parse_timestamp);
    if let (false, Some(t)) = (tree.created, earlier) {
        *created_at = t;
    }
    doc.extra.insert(
        "orchWorktree".to_string(),
        json!({
            "branch": tree.branch,
            "path": tree.path,
            "base": tree.base,
            "createdAt": status::timestamp(*created_at),
        }),
    );
}

/// The digest of plan file `path` (`orchPlanDigest`), when its bytes still parse to `plan`
/// (the file may have changed since it was read).
fn plan_digest(path: &Path, plan: &crate::plan::Plan) -> Option<String> {
    let bytes = crate::untrusted::read::whole(path, crate::untrusted::read::PLAN).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let mut parsed = crate::plan::parse(path, text);
    // The workspace names the file (and its diagnostics) as the user wrote it.
    parsed.path.clone_from(&plan.path);
    for d in &mut parsed.diagnostics {
        d.path.clone_from(&plan.path);
    }
    (parsed == *plan).then(|| status::plan_digest(&bytes))
}

/// The first pause of an agent at a usage limit whose client named no reset time (60 s; the
/// environment variable `ORCH_LIMIT_BACKOFF_MS` sets another, for tests).
fn limit_backoff() -> std::time::Duration {
    std::env::var(crate::agent_env::ORCH_LIMIT_BACKOFF_MS)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(
            std::time::Duration::from_secs(60),
            std::time::Duration::from_millis,
        )
}

/// Whether the status file of `lp` records an agent (a task's in progress, or the plan agent)
/// whose wrapper is alive: its pid with the start time recorded. A file that cannot be read
/// counts as one (its locks are then left alone).
fn recorded_agent_alive(lp: &workspace::LoadedPlan) -> bool {
    let Ok(doc) = lp.read_status() else {
        return true;
    };
    let plan_agent = doc
        .orch_plan_agent
        .as_ref()
        .map(|a| (a.pid, a.process_start_time.unwrap_or(0)));
    doc.entries()
        .filter(|e| e.status == crate::status::TaskStatus::InProgress)
        .filter_map(|e| e.orch_run.as_ref().map(|r| (r.pid, r.process_start_time)))
        .chain(plan_agent)
        .any(|(pid, start)| pid > 0 && crate::process::process_alive(pid, start))
}
