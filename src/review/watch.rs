//! The review loop's effects: each poll reads every watched pull request ([`Gh::view`]), asks
//! [`decide`] what to make of it, and carries it out: a round's tasks appended to the plan file
//! as a phase (the path live re-planning reads), run by `orch up PLAN` as any task (the plan's
//! agent, its check gate, one commit each; a running `orch up` takes the edit itself and orch
//! waits for the tasks), the branch pushed, each thread answered naming the commit; a round
//! past `review_rounds` or a failed round task labels the pull request for a person; an
//! approval with green checks ends the loop (and with `auto_merge`, `orch merge` lands it).
//!
//! Every step is recorded in `<state_dir>/<plan>/review.json` before the next: a restart goes on
//! with a round in progress and takes nothing twice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use serde_json::{Value, json};

use super::decide::{self, Decision, Item};
use super::gh::Gh;
use super::state::{self, Pending, PrState};
use crate::error::{CliError, CliResult, exit};
use crate::manifest::Manifest;
use crate::status::TaskStatus;
use crate::workspace::{self, Selection};

/// How `orch pr --watch` runs.
pub(crate) struct WatchArgs {
    /// One poll, its rounds run, then exit (`--once`).
    pub(crate) once: bool,
    /// `--poll`: instead of each plan's `review_poll`.
    pub(crate) poll: Option<Duration>,
}

/// One watched pull request.
struct Watched {
    plan: String,
    branch: String,
    /// Where the plan is in the merge order.
    order: usize,
    number: u64,
}

/// The loop's context.
struct Loop<'a> {
    sel: &'a Selection,
    manifest: Manifest,
    state_dir: PathBuf,
    repo_root: PathBuf,
    gh: Gh,
    /// Whose comments count, by login (asked once per run).
    counted: HashMap<String, bool>,
    emit: &'a mut dyn FnMut(&Value),
    errors: usize,
    /// The `[[notify]]` hooks.
    notifier: Option<crate::notify::Notifier>,
}

impl Drop for Loop<'_> {
    fn drop(&mut self) {
        if let Some(n) = &self.notifier {
            n.finish();
        }
    }
}

/// How often `review_waiting` is said again while nothing changes.
const WAITING_AGAIN: Duration = Duration::from_secs(300);

/// Watches the pull requests `prs` (plan, number) opened or updated by `orch pr` until each is
/// approved, escalated or closed (with `once`: one poll). `emit` gets every event (`{"event":
/// "review_round", …}`), also appended to `<state_dir>/.events.jsonl`. Exit 0, or 5 when a pull
/// request was handed to a person, 1 when a poll failed (with `once`).
pub(crate) fn watch(
    sel: &Selection,
    prs: &[(String, u64)],
    args: &WatchArgs,
    emit: &mut dyn FnMut(&Value),
) -> CliResult<u8> {
    let mut lp = Loop::new(sel, emit)?;
    let mut watched = Vec::new();
    for (i, (plan, number)) in prs.iter().enumerate() {
        let Some(entry) = lp.manifest.plans.iter().find(|p| p.name == *plan) else {
            continue;
        };
        if let Some(repo) = &entry.repo {
            // The loop reads and pushes in the home repository: a pull request of another
            // repository is never followed there (it would be another repository's number).
            lp.errors += 1;
            lp.event(json!({"event": "review_error", "plan": plan, "number": number,
                "error": format!("plan `{plan}` changes repository `{repo}`: the review loop follows pull requests of the home repository only")}));
            continue;
        }
        let path = state::path(&lp.state_dir, plan);
        let mut st = state::load(&path).map_err(|e| CliError::new(exit::STATE, anyhow!(e)))?;
        let st = st.get_or_insert_with(PrState::default);
        if st.number != *number {
            // A new pull request for the plan (the old one closed): a loop of its own.
            *st = PrState {
                number: *number,
                ..PrState::default()
            };
            state::save(&path, st).map_err(|e| CliError::new(exit::FAILURE, anyhow!(e)))?;
        }
        watched.push(Watched {
            plan: plan.clone(),
            branch: entry.branch.clone(),
            order: i,
            number: *number,
        });
    }
    // What the last `review_waiting` said, and when: said again when it changes, or after
    // WAITING_AGAIN.
    let mut said: Option<(Vec<(String, u64)>, std::time::Instant)> = None;
    loop {
        let mut open = 0;
        let mut waiting = Vec::new();
        let mut approved = Vec::new();
        for w in &watched {
            match lp.poll(w) {
                Ok(Some(Decision::Approved)) => approved.push(w),
                Ok(Some(_)) => {
                    open += 1;
                    waiting.push((w.plan.clone(), w.number));
                }
                Ok(None) => {}
                Err(e) => {
                    lp.errors += 1;
                    lp.event(json!({"event": "review_error", "plan": w.plan, "number": w.number, "error": e}));
                    open += 1;
                    waiting.push((w.plan.clone(), w.number));
                }
            }
        }
        approved.sort_by_key(|w| w.order);
        for w in approved {
            if lp.manifest.defaults.auto_merge {
                lp.land(w);
            }
        }
        if args.once || open == 0 {
            break;
        }
        let poll = args.poll.unwrap_or_else(|| {
            watched
                .iter()
                .filter_map(|w| lp.manifest.plans.iter().find(|p| p.name == w.plan))
                .map(|p| p.review.poll)
                .min()
                .unwrap_or(Duration::from_secs(30))
        });
        let again = said
            .as_ref()
            .is_none_or(|(prs, at)| *prs != waiting || at.elapsed() >= WAITING_AGAIN);
        if again && !waiting.is_empty() {
            let prs: Vec<Value> = waiting
                .iter()
                .map(|(plan, number)| json!({"plan": plan, "number": number}))
                .collect();
            lp.event(json!({"event": "review_waiting", "prs": prs, "next_poll_s": poll.as_secs()}));
            said = Some((waiting, std::time::Instant::now()));
        }
        std::thread::sleep(poll);
        let (_ws, manifest) = load(lp.sel)?;
        lp.manifest = manifest;
    }
    let escalated = watched.iter().any(|w| {
        state::load(&state::path(&lp.state_dir, &w.plan))
            .ok()
            .flatten()
            .is_some_and(|s| s.outcome.as_deref() == Some("escalated"))
    });
    Ok(if lp.errors > 0 && args.once {
        exit::FAILURE
    } else if escalated {
        exit::INCOMPLETE
    } else {
        exit::OK
    })
}

fn load(sel: &Selection) -> CliResult<(workspace::Workspace, Manifest)> {
    let ws = workspace::load(sel)?;
    let manifest = ws
        .manifest
        .clone()
        .ok_or_else(|| CliError::invalid(anyhow!("`orch pr --watch` needs a plans.toml")))?;
    Ok((ws, manifest))
}

/// Finishes the rounds a restart left in progress (their tasks run, pushed, replied): whether
/// there was one.
pub(crate) fn resume(sel: &Selection, emit: &mut dyn FnMut(&Value)) -> CliResult<bool> {
    let mut lp = Loop::new(sel, emit)?;
    let mut any = false;
    let plans: Vec<(String, String)> = lp
        .manifest
        .plans
        .iter()
        .filter(|p| p.repo.is_none())
        .map(|p| (p.name.clone(), p.branch.clone()))
        .collect();
    for (order, (plan, branch)) in plans.into_iter().enumerate() {
        let path = state::path(&lp.state_dir, &plan);
        let st = state::load(&path).map_err(|e| CliError::new(exit::STATE, anyhow!(e)))?;
        let Some(st) = st.filter(|s| s.pending.is_some() && s.outcome.is_none()) else {
            continue;
        };
        any = true;
        let w = Watched {
            plan,
            branch,
            order,
            number: st.number,
        };
        if let Err(e) = lp.poll(&w) {
            lp.event(
                json!({"event": "review_error", "plan": w.plan, "number": w.number, "error": e}),
            );
        }
    }
    Ok(any)
}

impl<'a> Loop<'a> {
    fn new(sel: &'a Selection, emit: &'a mut dyn FnMut(&Value)) -> CliResult<Self> {
        let (_ws, manifest) = load(sel)?;
        let repo_root = workspace::repo_root(&manifest)?;
        let state_dir = manifest.root.join(&manifest.defaults.state_dir);
        let hooks = crate::merge::confine::hooks(&manifest);
        let notifier =
            crate::notify::Notifier::start(&manifest.notify, &manifest.root, hooks.as_ref());
        Ok(Loop {
            sel,
            gh: Gh::new(&repo_root),
            repo_root,
            state_dir,
            manifest,
            counted: HashMap::new(),
            emit,
            errors: 0,
            notifier,
        })
    }
}

impl Loop<'_> {
    fn event(&mut self, v: Value) {
        let line = append_event(&self.state_dir, &v);
        if let (Some(n), Some(name)) = (&self.notifier, v.get("event").and_then(Value::as_str)) {
            n.send(name, &line);
        }
        (self.emit)(&v);
    }

    fn review(&self, plan: &str) -> crate::manifest::review::Review {
        self.manifest
            .plans
            .iter()
            .find(|p| p.name == plan)
            .map_or_else(
                || self.manifest.defaults.review.clone(),
                |p| p.review.clone(),
            )
    }

    /// One poll of one pull request: `None` when its loop is over, else what was decided.
    fn poll(&mut self, w: &Watched) -> Result<Option<Decision>, String> {
        let path = state::path(&self.state_dir, &w.plan);
        let mut st = state::load(&path)?.unwrap_or_default();
        if st.outcome.is_some() {
            return Ok(None);
        }
        if let Some(p) = st.pending.clone() {
            self.run_round(w, &mut st, &path, p)?;
            return Ok(Some(Decision::Wait));
        }
        let view = self.gh.view(w.number)?;
        let review = self.review(&w.plan);
        let mut authors: Vec<String> = view
            .threads
            .iter()
            .flat_map(|t| t.comments.iter().map(|c| c.author.clone()))
            .chain(view.reviews.iter().map(|r| r.author.clone()))
            .collect();
        authors.sort();
        authors.dedup();
        for a in authors {
            if !self.counted.contains_key(&a) {
                let counts = self.counts(&a, review.from.as_deref());
                self.counted.insert(a, counts);
            }
        }
        let counted = &self.counted;
        let counts = |login: &str| counted.get(login).copied().unwrap_or(false);
        let decision = decide::decide(&view, &st, review.rounds, &counts);
        st.open_threads = view.threads.iter().filter(|t| !t.resolved).count();
        st.last_checks = view
            .checks
            .iter()
            .map(|c| {
                let how = if c.done() { &c.conclusion } else { &c.status };
                format!("{}: {}", crate::untrusted::escaped(&c.name), how)
            })
            .collect();
        match &decision {
            Decision::Wait => state::save(&path, &st)?,
            Decision::Closed(how) => {
                st.outcome = Some("closed".into());
                st.reason = Some(format!("the pull request is {how}"));
                state::save(&path, &st)?;
                self.event(json!({"event": "review_closed", "plan": w.plan, "number": w.number, "state": how}));
            }
            Decision::Approved => {
                st.outcome = Some("approved".into());
                state::save(&path, &st)?;
                self.event(json!({"event": "review_approved", "plan": w.plan, "number": w.number, "round": st.round}));
            }
            Decision::Escalate(reason) => {
                self.escalate(w, &mut st, &path, reason.clone(), &review.label)?;
            }
            Decision::Round(items) => {
                self.start_round(w, &mut st, &path, items)?;
            }
        }
        Ok(Some(decision))
    }

    /// Whether `login`'s comments count: in `review_from` (a login, or a member of an
    /// `@org/team` in it), or, without it, a user with write access.
    fn counts(&self, login: &str, from: Option<&[String]>) -> bool {
        match from {
            None => self.gh.can_write(login),
            Some(list) => list.iter().any(|f| match f.strip_prefix('@') {
                Some(team) => team
                    .split_once('/')
                    .is_some_and(|(org, t)| self.gh.in_team(org, t, login)),
                None => f.eq_ignore_ascii_case(login),
            }),
        }
    }

    /// A round: its tasks appended to the plan as a phase, recorded, then run.
    fn start_round(
        &mut self,
        w: &Watched,
        st: &mut PrState,
        path: &Path,
        items: &[Item],
    ) -> Result<(), String> {
        let entry = self
            .manifest
            .plans
            .iter()
            .find(|p| p.name == w.plan)
            .ok_or_else(|| format!("plan `{}` is not in the manifest", w.plan))?;
        let file = entry.abs_file.clone();
        let plan = crate::plan::parse_file(&file).map_err(|e| e.to_string())?;
        let round = st.round + 1;
        let (text, tasks) =
            super::text::phase(super::text::next_phase(&plan), round, w.number, items);
        decide::take(st, items);
        st.pending = Some(Pending {
            round,
            tasks: tasks.clone(),
        });
        state::save(path, st)?;
        let clean = self.git_ok(&["diff", "--quiet", "HEAD", "--"], &file);
        append_plan(&file, &text)?;
        // The phase committed on the main work tree's branch (the plan file alone), so that
        // `orch merge` finds no uncommitted change there; a plan file with edits of yours is
        // left uncommitted.
        let msg = format!(
            "orch: review round {} of plan `{}`, pull request #{}",
            st.round + 1,
            w.plan,
            w.number
        );
        if clean
            && !self.git_ok(
                &["commit", "-q", "--no-verify", "-m", &msg, "--only", "--"],
                &file,
            )
        {
            self.event(json!({"event": "review_note", "plan": w.plan, "number": w.number, "error": format!("the new phase of `{}` could not be committed: it is left in the work tree", file.display())}));
        }
        self.event(json!({
            "event": "review_round",
            "plan": w.plan,
            "number": w.number,
            "round": round,
            "tasks": tasks.iter().map(|t| json!({"task": t.task, "kind": t.kind, "about": t.about})).collect::<Vec<_>>(),
        }));
        let pending = st.pending.clone().unwrap_or_default();
        self.run_round(w, st, path, pending)
    }

    /// Runs (or waits for) the tasks of round `p`, then pushes and replies.
    fn run_round(
        &mut self,
        w: &Watched,
        st: &mut PrState,
        path: &Path,
        mut p: Pending,
    ) -> Result<(), String> {
        self.run_tasks(&w.plan, &p)?;
        let (ws, _) = load(self.sel).map_err(|e| e.to_string())?;
        let i = ws
            .plans
            .iter()
            .position(|lp| lp.name == w.plan)
            .ok_or_else(|| format!("plan `{}` is gone", w.plan))?;
        let doc = ws.plans[i].read_status().map_err(|e| e.to_string())?;
        let mut commits = HashMap::new();
        for t in &p.tasks {
            let entry = doc.tasks.iter().find(|e| e.id == t.task);
            match entry {
                Some(e) if e.status == TaskStatus::Completed => {
                    commits.insert(t.task.clone(), e.commit.clone().unwrap_or_default());
                }
                _ => {
                    let how = entry.map_or("missing".to_string(), |e| e.status.to_string());
                    st.pending = None;
                    st.round = p.round;
                    let reason = format!(
                        "task {} of review round {} did not complete ({how})",
                        t.task, p.round
                    );
                    let label = self.review(&w.plan).label;
                    return self.escalate(w, st, path, reason, &label);
                }
            }
        }
        self.push(&w.branch)?;
        let tip = crate::git::branch_tip(&self.repo_root, &w.branch)
            .ok()
            .flatten()
            .unwrap_or_default();
        for k in 0..p.tasks.len() {
            let t = p.tasks[k].clone();
            let Some(to) = t.reply_to.filter(|_| !t.replied) else {
                continue;
            };
            let commit = commits.get(&t.task).cloned().unwrap_or_default();
            let body = format!(
                "Addressed in {} (orch: review round {}, task {} of plan `{}`).",
                crate::merge::short(&commit),
                p.round,
                t.task,
                w.plan
            );
            match self.gh.reply(w.number, to, &body) {
                Ok(id) => {
                    if let Some(id) = id {
                        st.own.insert(id);
                    }
                    p.tasks[k].replied = true;
                    st.pending = Some(p.clone());
                    state::save(path, st)?;
                }
                Err(e) => {
                    self.errors += 1;
                    self.event(json!({"event": "review_error", "plan": w.plan, "number": w.number, "error": e}));
                }
            }
        }
        st.round = p.round;
        st.pending = None;
        state::save(path, st)?;
        self.sync_dependants(&w.plan);
        self.event(json!({
            "event": "review_pushed",
            "plan": w.plan,
            "number": w.number,
            "round": p.round,
            "branch": w.branch,
            "commit": tip,
            "tasks": p.tasks.iter().map(|t| json!({"task": t.task, "commit": commits.get(&t.task)})).collect::<Vec<_>>(),
        }));
        Ok(())
    }

    /// The round's tasks run: by `orch up PLAN`, or, when an `orch up` runs in the repository
    /// (it takes the plan's edit through live re-planning), waited for until each settled.
    fn run_tasks(&self, plan: &str, p: &Pending) -> Result<(), String> {
        if crate::supervisor::lock::running(&self.state_dir).is_none() {
            let ran = self.orch_child(plan, &["up", plan]);
            if ran.is_ok() || crate::supervisor::lock::running(&self.state_dir).is_none() {
                // A failed task is the status file's to tell.
                return Ok(());
            }
        }
        // An `orch up` runs: its live re-planning takes the new phase; wait for the tasks.
        let start = Instant::now();
        loop {
            let (ws, _) = load(self.sel).map_err(|e| e.to_string())?;
            let doc = ws
                .plans
                .iter()
                .find(|lp| lp.name == plan)
                .map(|lp| lp.read_status().map_err(|e| e.to_string()))
                .transpose()?;
            let settled = doc.is_some_and(|d| {
                p.tasks.iter().all(|t| {
                    d.tasks.iter().any(|e| {
                        e.id == t.task
                            && matches!(
                                e.status,
                                TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Skipped
                            )
                    })
                })
            });
            if settled || crate::supervisor::lock::running(&self.state_dir).is_none() {
                return Ok(());
            }
            if start.elapsed() > Duration::from_secs(24 * 3600) {
                return Err(format!(
                    "the tasks of review round {} did not settle in a day",
                    p.round
                ));
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Stacked pull requests: each plan that depends on `plan` and whose pull request is
    /// watched gets `plan`'s fix merged in (`orch sync DEP`, as the upstream re-syncs do) and its
    /// branch pushed again.
    fn sync_dependants(&mut self, plan: &str) {
        let deps: Vec<(String, String)> = self
            .manifest
            .plans
            .iter()
            .filter(|p| p.depends_on.iter().any(|d| d.plan == plan))
            .map(|p| (p.name.clone(), p.branch.clone()))
            .collect();
        for (dep, branch) in deps {
            let Ok(Some(st)) = state::load(&state::path(&self.state_dir, &dep)) else {
                continue;
            };
            if st.outcome.is_some() || st.number == 0 {
                continue;
            }
            let synced = self
                .orch_child(&dep, &["sync", &dep])
                .and_then(|()| self.push(&branch));
            let tip = crate::git::branch_tip(&self.repo_root, &branch)
                .ok()
                .flatten()
                .unwrap_or_default();
            match synced {
                Ok(()) => self.event(json!({"event": "review_synced", "plan": dep, "number": st.number, "upstream": plan, "branch": branch, "commit": tip})),
                Err(e) => {
                    self.errors += 1;
                    self.event(json!({"event": "review_error", "plan": dep, "number": st.number, "error": format!("{plan}'s fix not merged into `{branch}`: {e}")}));
                }
            }
        }
    }

    /// `orch ARGS` run to its end, its output in `plan`'s `review.log`.
    fn orch_child(&self, plan: &str, args: &[&str]) -> Result<(), String> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find orch itself: {e}"))?;
        let mut cmd = crate::agent_env::command(exe);
        cmd.args(args);
        if let Some(m) = &self.sel.manifest {
            cmd.arg("--manifest").arg(m);
        }
        crate::process::place_here(&mut cmd);
        let (out, err) = self.child_log(plan)?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        match cmd.status() {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!(
                "`orch {}` ended with {s} (its output: `{}`)",
                args.join(" "),
                self.state_dir.join(plan).join("review.log").display()
            )),
            Err(e) => Err(format!("cannot run `orch {}`: {e}", args.join(" "))),
        }
    }

    /// Where the output of the `orch up` and `orch merge` the loop runs for `plan` goes:
    /// `<state_dir>/<plan>/review.log`, appended.
    fn child_log(&self, plan: &str) -> Result<(Stdio, Stdio), String> {
        let path = self.state_dir.join(plan).join("review.log");
        let f = crate::links::open_append(&path)
            .map_err(|e| format!("cannot open `{}`: {e}", path.display()))?;
        let g = f
            .try_clone()
            .map_err(|e| format!("cannot open `{}`: {e}", path.display()))?;
        Ok((Stdio::from(f), Stdio::from(g)))
    }

    /// Whether `git ARGS FILE` succeeds in the main work tree.
    fn git_ok(&self, args: &[&str], file: &Path) -> bool {
        let Ok(mut cmd) = crate::git::git_command(crate::git::GitTarget::WorkTree(&self.repo_root))
        else {
            return false;
        };
        cmd.args(args)
            .arg(file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn push(&self, branch: &str) -> Result<(), String> {
        let remote = &self.manifest.defaults.remote;
        let refspec = format!("refs/heads/{branch}:refs/heads/{branch}");
        let mut cmd =
            crate::git::git_transport_command(crate::git::GitTarget::WorkTree(&self.repo_root))?;
        let out = cmd
            .args(["push", remote, &refspec])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run `git push`: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`git push {remote} {refspec}` failed: {}",
                crate::untrusted::escaped(String::from_utf8_lossy(&out.stderr).trim())
            ))
        }
    }

    /// Hands the pull request to a person: its label (made when missing), the record, the event.
    fn escalate(
        &mut self,
        w: &Watched,
        st: &mut PrState,
        path: &Path,
        reason: String,
        label: &str,
    ) -> Result<(), String> {
        let labelled = self.gh.label(w.number, label);
        st.outcome = Some("escalated".into());
        st.reason = Some(reason.clone());
        state::save(path, st)?;
        let mut e = json!({
            "event": "review_escalated",
            "plan": w.plan,
            "number": w.number,
            "round": st.round,
            "reason": reason,
            "label": label,
        });
        if let Err(why) = labelled {
            self.errors += 1;
            e["label_error"] = json!(why);
        }
        self.event(e);
        Ok(())
    }

    /// `auto_merge`: the approved plan landed by `orch merge PLAN` (its gates, its order).
    fn land(&mut self, w: &Watched) {
        let path = state::path(&self.state_dir, &w.plan);
        match self.orch_child(&w.plan, &["merge", &w.plan]) {
            Ok(()) => {
                if let Ok(Some(mut st)) = state::load(&path) {
                    st.outcome = Some("landed".into());
                    let _ = state::save(&path, &st);
                }
                let target = self.manifest.defaults.target.clone();
                self.event(json!({"event": "review_landed", "plan": w.plan, "number": w.number, "target": target}));
            }
            Err(why) => {
                self.errors += 1;
                self.event(json!({"event": "review_merge_failed", "plan": w.plan, "number": w.number, "error": why}));
            }
        }
    }
}

/// Appends `text` to the plan file (never through a link).
fn append_plan(file: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut f = crate::links::no_follow()
        .append(true)
        .open(file)
        .map_err(|e| format!("cannot append to `{}`: {e}", file.display()))?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("cannot append to `{}`: {e}", file.display()))
}

/// `v` with its time, as one line of `<state_dir>/.events.jsonl` (the file of `orch up`'s events);
/// a write that fails is dropped. The line written.
fn append_event(state_dir: &Path, v: &Value) -> String {
    let mut line =
        json!({"at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)});
    if let (Some(o), Some(e)) = (line.as_object_mut(), v.as_object()) {
        o.extend(e.clone());
    }
    let line = crate::untrusted::json_safe(line.to_string());
    let _ = crate::links::append_line(&crate::state_layout::EVENTS.at(state_dir), &line);
    line
}
