//! Before a plan's first agent: make its worktree when it is new (as many at once as the machine
//! has cores, while other plans' agents run), merge the upstream work it waits on into its
//! branch, and run its setup command once.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;
use tokio::sync::watch;

use super::attempt::Stop;
use super::context::{Ctx, NewTree, PlanCtx};
use super::event::Event;
use super::setup::SetupEnd;
use super::state::Unprepared;
use crate::agent_env;
use crate::git::{self, MergeOutcome};
use crate::manifest::{DepTarget, format_duration};
use crate::process;
use crate::status::{self, StatusDoc, TaskStatus};

/// The commit of `upstream` that holds the work `target` names: the latest commit among the
/// tasks of that phase (or plan, or the one task). `None` when no task there has a commit (its
/// work was done before orch, so the target branch has it).
pub(crate) fn upstream_commit(
    repo_root: &std::path::Path,
    upstream: &crate::plan::Plan,
    doc: &StatusDoc,
    target: &DepTarget,
) -> Result<Option<String>, String> {
    let commits: Vec<String> = upstream
        .tasks
        .iter()
        .filter(|t| match target {
            DepTarget::Plan => true,
            DepTarget::Phase(n) => t.phase == *n,
            DepTarget::Task(id) => &t.id == id,
            DepTarget::Story(s) => t.speckit.as_ref().is_some_and(|k| k.stories.contains(s)),
        })
        .filter_map(|t| doc.entry(&t.id))
        .filter(|e| e.status == TaskStatus::Completed)
        .filter_map(|e| e.commit.clone())
        .collect();
    git::latest_of(repo_root, &commits).map_err(|e| e.to_string())
}

/// Makes the plan's worktree when it is new, merges every upstream the plan waits on and runs
/// its setup (once). `upstreams` holds, per `depends_on` entry: the upstream plan's name, plan,
/// status document, target and the entry as written. Returns the events to report, or what
/// left the plan unready (the core blocks it).
pub(crate) async fn prepare(
    ctx: Arc<Ctx>,
    plan: Arc<PlanCtx>,
    upstreams: Vec<(String, crate::plan::Plan, StatusDoc, DepTarget, String)>,
    mut stop: watch::Receiver<Stop>,
    told: TreeTold,
) -> Result<Vec<Event>, Unprepared> {
    let mut events = Vec::new();
    ensure_tree(ctx.clone(), plan.clone(), told).await?;
    // The plans of other repositories it waits for: their checkouts, before its first agent.
    if !plan.upstreams.is_empty() {
        let p = plan.clone();
        let notes = tokio::task::spawn_blocking(move || {
            super::upstream_repos::follow(&p.upstreams, &p.followed)
        })
        .await
        .map_err(|e| format!("checkout task failed: {e}"))??;
        events.extend(notes.into_iter().map(|message| Event::Note {
            plan: Some(plan.name().to_owned()),
            message,
        }));
    }
    for (up_name, up_plan, up_doc, target, raw) in upstreams {
        let c = ctx.clone();
        let p = plan.clone();
        let merged = tokio::task::spawn_blocking(move || {
            merge_upstream(&c, &p, &up_name, &up_plan, &up_doc, &target, &raw)
        })
        .await
        .map_err(|e| format!("merge task failed: {e}"))??;
        if let Some(ev) = merged {
            events.push(ev);
        }
    }
    if let Some(argv) = plan.entry.setup.clone() {
        let done_before = plan
            .view()
            .ok()
            .and_then(|d| d.extra.get("orchSetup").cloned())
            .is_some_and(|v| set_up(&v, plan.created_at));
        if !done_before {
            let log = plan.log_dir.join("setup.log");
            run_setup(&ctx, &plan, &argv, &log, &mut stop).await?;
            events.push(Event::SetupFinished {
                plan: plan.name().to_owned(),
                ok: true,
                log,
            });
        }
    }
    Ok(events)
}

/// Called once with the outcome of making a plan's new worktree, before anyone waiting for it
/// goes on (the effect runner tells the core: `Input::TreeMade`).
pub(crate) type TreeTold = Box<dyn FnOnce(&Result<Vec<Event>, String>) + Send>;

/// Plan `plan`'s new worktree ([`PlanCtx::new_tree`]), made once: by the run's start, which
/// asks for every new plan's, or by the plan's preparation, whichever comes first; the other
/// waits for it. The first alone, then at most one per core at a time (`Ctx::tree_slots`). `told` is
/// called by the one that makes it.
pub(crate) async fn ensure_tree(
    ctx: Arc<Ctx>,
    plan: Arc<PlanCtx>,
    told: TreeTold,
) -> Result<(), String> {
    let Some(new) = plan.new_tree.clone() else {
        return Ok(());
    };
    let made = plan
        .made
        .get_or_init(|| async {
            let result = match ctx.tree_slots.acquire().await {
                Ok(_slot) => {
                    let p = plan.clone();
                    let made = tokio::task::spawn_blocking(move || make_tree(&p, &new))
                        .await
                        .unwrap_or_else(|e| Err(format!("worktree task failed: {e}")));
                    ctx.tree_slots.one_made();
                    made
                }
                Err(e) => Err(format!(
                    "cannot make the worktree of plan `{}`: {e}",
                    plan.name()
                )),
            };
            told(&result);
            result
        })
        .await;
    made.as_ref().map(|_| ()).map_err(Clone::clone)
}

/// Makes the plan's new branch and worktree (with its `copy` and `warm` paths) and records it
/// (`orchWorktree`, made at the plan's `created_at`); the `plan_started` event.
fn make_tree(plan: &PlanCtx, new: &NewTree) -> Result<Vec<Event>, String> {
    let req = git::TreeRequest {
        repo_root: &plan.repo_root,
        plan: plan.name(),
        branch: plan.branch(),
        path: &plan.worktree,
        target: &new.target,
        copy: &plan.copy,
        sparse: &plan.entry.paths,
        submodules: plan.entry.submodules,
    };
    let tree = git::ensure_plan_tree(&req)
        .map_err(|e| format!("cannot make the worktree of plan `{}`: {e}", plan.name()))?;
    let mut created_at = plan.created_at.unwrap_or_else(Utc::now);
    plan.update(|doc| {
        super::start::tree_record(doc, &tree, &mut created_at);
        Ok(())
    })
    .map_err(|e| format!("cannot record the worktree of plan `{}`: {e}", plan.name()))?;
    let notes = tree.notes.iter().map(|message| Event::Note {
        plan: Some(plan.name().to_owned()),
        message: message.clone(),
    });
    Ok(std::iter::once(Event::PlanStarted {
        plan: plan.name().to_owned(),
        branch: tree.branch.clone(),
        worktree: tree.path.clone(),
        base: tree.base.clone(),
        created: tree.created,
    })
    .chain(notes)
    .collect())
}

fn merge_upstream(
    ctx: &Ctx,
    plan: &PlanCtx,
    up_name: &str,
    up_plan: &crate::plan::Plan,
    up_doc: &StatusDoc,
    target: &DepTarget,
    raw: &str,
) -> Result<Option<Event>, Unprepared> {
    let Some(commit) = upstream_commit(&ctx.repo_root, up_plan, up_doc, target)? else {
        return Ok(None);
    };
    let _git = plan
        .git_lock
        .lock()
        .map_err(|_| "the plan's git lock is poisoned".to_string())?;
    let short = &commit[..commit.len().min(10)];
    let message = format!(
        "{}: merge `{raw}` ({up_name} at {short}) before its first task",
        plan.name()
    );
    let outcome =
        git::merge_into(&plan.worktree, plan.branch(), &commit, &message).map_err(|e| {
            format!(
                "cannot merge `{raw}` ({up_name} at {short}) into `{}`: {e}",
                plan.branch()
            )
        })?;
    let merge_commit = match outcome {
        MergeOutcome::AlreadyContained => None,
        MergeOutcome::Merged { commit } => Some(commit),
        MergeOutcome::Conflict { paths } => {
            return Err(Unprepared::Conflict(format!(
                "merging `{raw}` ({up_name} at {short}) into `{}` conflicts in {}; resolve it in `{}` (git merge {short}), commit, and run `orch up` again",
                plan.branch(),
                super::state::quoted(&paths),
                plan.worktree.display()
            )));
        }
    };
    if let Some(mc) = &merge_commit {
        let record = json!({
            "from": raw,
            "upstreamCommit": commit,
            "mergeCommit": mc,
            "at": status::timestamp(Utc::now()),
        });
        let _ = plan.update(|doc| {
            let list = doc
                .extra
                .entry("orchMerges".to_string())
                .or_insert_with(|| json!([]));
            if let Some(a) = list.as_array_mut() {
                a.push(record);
            }
            Ok(())
        });
    }
    Ok(Some(Event::UpstreamMerged {
        plan: plan.name().to_owned(),
        from: raw.to_string(),
        upstream_commit: commit,
        commit: merge_commit,
    }))
}

/// Whether a recorded setup run (`orchSetup`) succeeded in the plan's current worktree, the one
/// made at `worktree_made`: a worktree made again (its directory was deleted) is set up again.
fn set_up(record: &serde_json::Value, worktree_made: Option<DateTime<Utc>>) -> bool {
    let ok = record
        .get("ok")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    let Some(made) = worktree_made else {
        return ok;
    };
    let same_tree = record
        .get("worktreeCreatedAt")
        .and_then(serde_json::Value::as_str)
        == Some(status::timestamp(made).as_str());
    let after = record
        .get("at")
        .and_then(serde_json::Value::as_str)
        .and_then(status::parse_timestamp)
        .is_some_and(|at| at >= made);
    ok && (same_tree || after)
}

async fn run_setup(
    ctx: &Ctx,
    plan: &Arc<PlanCtx>,
    argv: &[String],
    log: &std::path::Path,
    stop: &mut watch::Receiver<Stop>,
) -> Result<(), String> {
    process::log_line(
        log,
        &format!(
            "=== orch: setup `{}` started at {} ===",
            argv.join(" "),
            status::timestamp(Utc::now())
        ),
    );
    let port = super::context::worktree_port(ctx, plan, &plan.worktree)?;
    let mut env = vec![
        (agent_env::ORCH_PLAN.to_string(), plan.name().to_owned()),
        (
            agent_env::ORCH_WORKTREE.to_string(),
            plan.worktree.display().to_string(),
        ),
        (agent_env::ORCH_PORT.to_string(), port.to_string()),
        (agent_env::ORCH_PORTS.to_string(), ctx.ports.to_string()),
    ];
    // Where the plan's commands run where its attempts do (a container): the setup too, with
    // the plan's services up, as a task's check runs there.
    if plan.executor.commands_in_place() {
        return setup_in_place(ctx, plan, argv, log, stop, port).await;
    }
    // The setup script is the repository's, which agents edit: confined as the plan's agents
    // are, to the plan's worktree and a TMPDIR of its own (no git directory, no state directory).
    let tmp = plan
        .confined_here()
        .map(|_| super::sandbox::tmp_dir(plan.name(), "setup", 0));
    let confined = match &tmp {
        Some(tmp) => {
            crate::links::fresh_dir(tmp).map_err(|e| {
                format!(
                    "cannot start the setup command of plan `{}`: cannot make `{}`: {e}",
                    plan.name(),
                    tmp.display()
                )
            })?;
            env.push(("TMPDIR".to_string(), tmp.display().to_string()));
            let rules =
                crate::sandbox::code_rules(&plan.agent.sandbox.code_rules(), &plan.worktree, tmp);
            crate::sandbox::wrap(&ctx.orch_bin, &rules, argv)
        }
        None => argv.to_vec(),
    };
    // Its network is its agents': the keeper (a wrapper) enters the namespace.
    let net = super::network::attempt(
        ctx.net.as_ref(),
        &plan.network,
        crate::executor::NetPlace::Here,
        (plan.name(), "setup"),
        log,
        &mut env,
    )?;
    let ran = super::setup::run(
        ctx,
        super::setup::SetupRun {
            argv: &confined,
            workdir: &plan.worktree,
            env: &env,
            log,
            tmpdir: tmp,
            net,
            timeout: plan.entry.timeout,
        },
        stop,
    )
    .await
    .map_err(|e| {
        format!(
            "cannot start the setup command `{}` of plan `{}`: {e}",
            argv.join(" "),
            plan.name()
        )
    })?;
    let result = match ran {
        SetupEnd::Exited(code, _) => code,
        SetupEnd::TimedOut => {
            return Err(format!(
                "the setup command of plan `{}` timed out after {}",
                plan.name(),
                format_duration(plan.entry.timeout)
            ));
        }
        SetupEnd::Stopped => {
            return Err(format!(
                "the setup command of plan `{}` was stopped",
                plan.name()
            ));
        }
    };
    let ok = result == Some(0);
    let record = json!({
        "ok": ok,
        "exitCode": result,
        "at": status::timestamp(Utc::now()),
        "worktreeCreatedAt": plan.created_at.map(status::timestamp),
    });
    let _ = plan.update(|doc| {
        doc.extra.insert("orchSetup".to_string(), record);
        Ok(())
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the setup command `{}` of plan `{}` failed ({}); see {}",
            argv.join(" "),
            plan.name(),
            result.map_or("killed by a signal".to_string(), |c| format!(
                "exit status {c}"
            )),
            log.display()
        ))
    }
}

/// The plan's `setup` where its attempts run (in its container: the container and its services
/// made now if they are not, the services waited for first), as a task's check runs there
/// (`check::run_confined`), recorded as [`run_setup`] records it. What it leaves running there
/// is ended with it: a service belongs in a `[[service]]`.
async fn setup_in_place(
    ctx: &Ctx,
    plan: &Arc<PlanCtx>,
    argv: &[String],
    log: &std::path::Path,
    stop: &mut watch::Receiver<Stop>,
    port: u16,
) -> Result<(), String> {
    let c = super::check::Confined {
        what: "setup",
        id: "",
        workdir: &plan.worktree,
        log: log.to_path_buf(),
        tmp: super::check::confined_tmp(plan, "setup"),
        env: vec![
            (agent_env::ORCH_PORT.to_string(), port.to_string()),
            (agent_env::ORCH_PORTS.to_string(), ctx.ports.to_string()),
        ],
        agent: None,
    };
    let (outcome, _) = super::check::run_confined(plan, argv.to_vec(), &c, ctx, stop.clone()).await;
    let failed = match outcome {
        super::state::CheckOutcome::Passed => None,
        super::state::CheckOutcome::Stopped => {
            return Err(format!(
                "the setup command of plan `{}` was stopped",
                plan.name()
            ));
        }
        super::state::CheckOutcome::Failed(why) | super::state::CheckOutcome::Lost(why) => {
            Some(why)
        }
    };
    let record = json!({
        "ok": failed.is_none(),
        "exitCode": if failed.is_none() { Some(0) } else { None },
        "at": status::timestamp(Utc::now()),
        "worktreeCreatedAt": plan.created_at.map(status::timestamp),
    });
    let _ = plan.update(|doc| {
        doc.extra.insert("orchSetup".to_string(), record);
        Ok(())
    });
    match failed {
        None => Ok(()),
        Some(why) => Err(format!(
            "the setup command of plan `{}` failed in its container: {}; see {}",
            plan.name(),
            why.lines().next().unwrap_or_default(),
            log.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::set_up;
    use crate::status::{parse_timestamp, timestamp};
    use serde_json::json;

    #[test]
    fn setup_counts_only_for_the_worktree_it_ran_in() {
        let made = parse_timestamp("2026-01-02T03:04:05.678Z").expect("time");
        let made_again = parse_timestamp("2026-01-02T05:00:00.000Z").expect("time");
        let ran = json!({ "ok": true, "at": "2026-01-02T03:04:06.000Z",
                          "worktreeCreatedAt": timestamp(made) });
        let failed = json!({ "ok": false, "at": "2026-01-02T03:04:06.000Z",
                             "worktreeCreatedAt": timestamp(made) });
        // Written before `worktreeCreatedAt` was recorded.
        let older = json!({ "ok": true, "at": "2026-01-02T03:04:06.000Z" });
        // Same millisecond as the worktree: only the recorded worktree tells.
        let same_ms =
            json!({ "ok": true, "at": timestamp(made), "worktreeCreatedAt": timestamp(made) });
        let cases = [
            (&ran, Some(made), true),
            (&ran, Some(made_again), false),
            (&ran, None, true),
            (&failed, Some(made), false),
            (&failed, None, false),
            (&older, Some(made), true),
            (&older, Some(made_again), false),
            (&same_ms, Some(made), true),
        ];
        for (i, (record, worktree, want)) in cases.into_iter().enumerate() {
            assert_eq!(set_up(record, worktree), want, "case {i}: {record}");
        }
    }
}
