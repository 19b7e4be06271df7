//! The supervisor's side of the report channel ([`crate::status::report`]): the reports of its
//! attempts, plan-mode agents and persons read from their directories, each checked against
//! orch's own record of who reports (an attempt only its own task, a plan-mode agent only its
//! plan's tasks, a VERIFY step done only once orch ran the check and saw it pass, a person any
//! task, but a `done` of a task without a
//! check only where the plan's agents are confined), applied through orch's own transition and answered. A plan-mode
//! agent's `done` is committed here, by the supervisor, in the plan's worktree (the agent has
//! no write access to git). Refusals are `report_refused` events and lines in the attempt's log.
//!
//! An attempt's directory is used only through a handle of the very directory orch made
//! ([`ReportDir`]; which directory it is,
//! [`DirId`](crate::status::report::dir::DirId), recorded at the launch, or at the adoption
//! of an attempt of an earlier supervisor): an agent that puts a link (to another
//! plan's directory, to any directory of this machine) or another directory in its place has
//! its reports refused, with one note, and nothing there is read, renamed, written or removed. A person's reports are
//! taken only from the persons' directories (`.reports/.people/<plan>/`), which no agent's
//! mount or write set reaches; a `person-*` entry an agent makes in its plan's directory is
//! nobody's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;

use super::Event;
use super::context::PlanCtx;
use super::core::Core;
use super::runner::{Effects, Reporter};
use super::state::{AgentRun, CheckOutcome, TaskRun, Unit};
use crate::exit;
use crate::plan::TaskKind;
use crate::process;
use crate::status::report::dir::{ReportDir, remove_beneath};
use crate::status::report::{
    ANSWER_FILE, Answer, PEOPLE_DIR, PERSON_PREFIX, REPORT_FILE, REPORTS_DIR, Report, TAKEN_FILE,
    attempt_dir, attempt_name,
};
use crate::status::{self, StatusError, Transition, TransitionOptions, TransitionOutcome};

/// The most refusals of one attempt's reports said, each as a `report_refused` event and a
/// line in its log: an attempt that keeps writing bad reports is answered every time, but
/// cannot fill the run's event log (and push the other plans' events out of it) nor its own
/// log; past this, one note says that its further refusals are not said.
pub(crate) const REFUSALS_SAID: u32 = 50;

/// Who a report came from.
enum From {
    Attempt(Reporter),
    Person,
}

/// Where the report directories of plan `pc`'s attempts are (`<state_dir>/.reports/<plan>/`):
/// the run's state directory, where `orch up` holds the supervisor lock, for a plan of any
/// repository. An agent's `orch task` finds its supervisor from the directory orch handed it
/// (`ORCH_REPORT_DIR`: the lock three levels up, `crate::commands::task_report`), and a
/// person's `orch task` reports beside it (the manifest's state directory): both meet the
/// supervisor that runs the plan, never a state directory of another repository, where no
/// supervisor runs.
pub(crate) fn reports_state_dir(pc: &PlanCtx) -> &Path {
    &pc.run_state_dir
}

/// The plan's state directory: the parent of the plan's own (`<state_dir>/<plan>/status.json`),
/// in the plan's repository.
pub(crate) fn state_dir_of(pc: &PlanCtx) -> PathBuf {
    pc.status_path
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Where the wrapper of `unit`'s (a task id, or `plan`) attempt `attempt` of plan `pc` records
/// how its agent ended ([`crate::process::wrapper::read_ended`]): in orch's state directory.
pub(crate) fn ended_path(pc: &PlanCtx, unit: &str, attempt: u32) -> PathBuf {
    state_dir_of(pc)
        .join("ended")
        .join(pc.name())
        .join(format!("{unit}-{attempt}"))
}

/// Where the wrapper of `unit`'s attempt `attempt` of plan `pc`, launched with streaming
/// input, records the end of its agent's first turn ([`crate::process::stream_input`]): in
/// orch's state directory.
pub(crate) fn turn_path(pc: &PlanCtx, unit: &str, attempt: u32) -> PathBuf {
    state_dir_of(pc)
        .join("turns")
        .join(pc.name())
        .join(format!("{unit}-{attempt}"))
}

impl Effects<'_> {
    /// The report directory of `unit`'s attempt `attempt` (its path, its name in its plan's
    /// directory), and the attempt's log.
    fn report_place(&self, unit: Unit, attempt: u32) -> Option<(PathBuf, String, PathBuf)> {
        let pc = self.plan(unit.plan())?;
        let id = unit.task().map(|t| pc.plan.tasks[t].id.clone());
        let unit_name = id.as_deref().unwrap_or("plan");
        let dir = attempt_dir(reports_state_dir(&pc), pc.name(), unit_name, attempt);
        Some((
            dir,
            attempt_name(unit_name, attempt),
            pc.log_path(id.as_deref()),
        ))
    }

    /// Records who writes in the report directory of `unit`'s attempt `attempt` (launched, or
    /// adopted from an earlier supervisor); its path. Nothing is taken from it until the
    /// directory itself is recorded ([`Self::make_report_dir`], [`Self::adopt_report_dir`]).
    pub(crate) fn register_reporter(&mut self, unit: Unit, attempt: u32) -> Option<PathBuf> {
        let (dir, _, log) = self.report_place(unit, attempt)?;
        self.reporters.insert(
            dir.clone(),
            Reporter {
                unit,
                attempt,
                log,
                asked: false,
                refused: 0,
                made: None,
                swapped_said: false,
            },
        );
        Some(dir)
    }

    /// Makes the report directory of `unit`'s attempt `attempt` afresh (whatever is at its
    /// place removed first, a link itself, never followed), records which directory it is
    /// (its handle held), and returns its path: `ORCH_REPORT_DIR`.
    pub(crate) fn make_report_dir(&mut self, unit: Unit, attempt: u32) -> Result<PathBuf, String> {
        let (Some(pc), Some((path, name, _))) =
            (self.plan(unit.plan()), self.report_place(unit, attempt))
        else {
            return Err("its plan is not part of the run".to_string());
        };
        let (id, dir) = ReportDir::make(reports_state_dir(&pc), &[REPORTS_DIR, pc.name()], &name)
            .and_then(|d| Ok((d.id()?, d)))
            .map_err(|e| format!("cannot make the report directory `{}`: {e}", path.display()))?;
        if let Some(r) = self.reporters.get_mut(&path) {
            r.made = Some((dir, id));
        }
        Ok(path)
    }

    /// Start-up: the report directory of `unit`'s attempt `attempt`, adopted from an earlier
    /// supervisor, recorded (a directory of its own at its place, reached without a link; else
    /// none, and the attempt's reports are refused), and a report that supervisor took but did
    /// not answer put back ([`put_back_taken`]).
    pub(crate) fn adopt_report_dir(&mut self, unit: Unit, attempt: u32) {
        let (Some(pc), Some((path, name, _))) =
            (self.plan(unit.plan()), self.report_place(unit, attempt))
        else {
            return;
        };
        self.register_reporter(unit, attempt);
        let found = ReportDir::open(reports_state_dir(&pc), &[REPORTS_DIR, pc.name()], &name)
            .and_then(|d| Ok((d.id()?, d)));
        if let (Ok((id, dir)), Some(r)) = (found, self.reporters.get_mut(&path)) {
            put_back_taken(&dir);
            r.made = Some((dir, id));
        }
    }

    /// The attempt `attempt` of `unit` is over: its report directory is removed (the one orch
    /// made; what an agent put at its place is not followed: a link is removed itself, another
    /// directory left) and no report is taken from it any more.
    pub(crate) fn forget_reporter(&mut self, unit: Unit, attempt: u32) {
        let (Some(pc), Some((path, name, _))) =
            (self.plan(unit.plan()), self.report_place(unit, attempt))
        else {
            return;
        };
        if let Some(r) = self.reporters.remove(&path) {
            let made = r.made.map(|(_, id)| id);
            let _ = remove_beneath(
                reports_state_dir(&pc),
                &[REPORTS_DIR, pc.name()],
                &name,
                made,
            );
        }
    }

    /// The report directory of the attempt registered at `path`, when what is there now is the
    /// very directory orch made (reached without a link); otherwise `None`, and said once.
    fn attempt_report_dir(&mut self, pc: &PlanCtx, path: &Path) -> Option<ReportDir> {
        let r = self.reporters.get(path)?;
        let name = path.file_name().and_then(|n| n.to_str())?;
        let found = ReportDir::open(reports_state_dir(pc), &[REPORTS_DIR, pc.name()], name);
        let why = match (&r.made, found) {
            (Some((_, made)), Ok(dir)) if dir.id().ok() == Some(*made) => return Some(dir),
            (None, _) => "orch has no directory of its own on record for it".to_string(),
            (Some(_), Ok(_)) => "another directory is at its place".to_string(),
            (Some(_), Err(e)) => e.to_string(),
        };
        if r.swapped_said {
            return None;
        }
        let who = match r.unit {
            Unit::Task { task, .. } => {
                format!("attempt {} of task {}", r.attempt, pc.plan.tasks[task].id)
            }
            Unit::PlanAgent { .. } => format!("plan agent (attempt {})", r.attempt),
        };
        let log = r.log.clone();
        if let Some(r) = self.reporters.get_mut(path) {
            r.swapped_said = true;
        }
        let message = format!(
            "{who}: its report directory `{}` is not the one orch made ({why}): its reports are \
             refused, and nothing there is read or written",
            path.display()
        );
        process::log_line(&log, &format!("=== orch: {message} ==="));
        self.note(Some(pc.name().to_string()), message);
        None
    }

    /// Takes the reports waiting in the report directories of the run's attempts and of
    /// persons, and answers each.
    pub(super) fn take_reports(&mut self, core: &mut Core) {
        for p in 0..self.views.len() {
            let Some(pc) = self.plan(p) else { continue };
            let mut attempts: Vec<PathBuf> = self
                .reporters
                .iter()
                .filter(|(_, r)| r.unit.plan() == p)
                .map(|(path, _)| path.clone())
                .collect();
            attempts.sort();
            for path in attempts {
                let Some(dir) = self.attempt_report_dir(&pc, &path) else {
                    continue;
                };
                let Some(r) = self.reporters.get(&path) else {
                    continue;
                };
                let from = From::Attempt(r.clone());
                self.take_from(core, &pc, &path, &dir, from);
            }
            // A person's: only from the persons' directories, each a directory of its own
            // (no link followed on the way).
            let Ok(people) = ReportDir::open(
                reports_state_dir(&pc),
                &[REPORTS_DIR, PEOPLE_DIR],
                pc.name(),
            ) else {
                continue;
            };
            let mut names = people.names().unwrap_or_default();
            names.sort();
            for name in names.iter().filter(|n| n.starts_with(PERSON_PREFIX)) {
                if let Ok(dir) = people.child(name) {
                    let path = dir.path().to_path_buf();
                    self.take_from(core, &pc, &path, &dir, From::Person);
                }
            }
        }
    }

    /// Takes the report waiting in `dir` (registered at `path`), from `from`, and answers it.
    fn take_from(
        &mut self,
        core: &mut Core,
        pc: &Arc<PlanCtx>,
        path: &Path,
        dir: &ReportDir,
        from: From,
    ) {
        let bytes = match dir.read(REPORT_FILE, crate::untrusted::read::REPORT) {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(e) => {
                // Not a regular file (a link, a FIFO), or larger than a report can be:
                // removed, never read (nor waited on), and said.
                let _ = dir.remove_file(REPORT_FILE);
                let say = match from {
                    From::Attempt(_) => self.refusal_said(pc, path, "an attempt"),
                    From::Person => true,
                };
                if say {
                    self.note(
                        Some(pc.name().to_string()),
                        format!("a report was not read and is removed: {e}"),
                    );
                }
                return;
            }
        };
        // Taken once: a report that cannot be moved aside is not applied. Moved, not
        // removed: a supervisor stopped before its answer leaves it for the next one.
        if dir.rename(REPORT_FILE, TAKEN_FILE).is_err() {
            return;
        }
        let Ok(report) = serde_json::from_slice::<Report>(&bytes) else {
            let _ = dir.remove_file(TAKEN_FILE);
            return;
        };
        if let Some(answer) = self.take_one(core, pc, path, dir, from, report) {
            answer_in(dir, &answer);
        }
    }

    /// Decides on and applies one report; its answer (`None`: answered later, by the commit).
    fn take_one(
        &mut self,
        core: &Core,
        pc: &Arc<PlanCtx>,
        path: &Path,
        dir: &ReportDir,
        from: From,
        report: Report,
    ) -> Option<Answer> {
        let p = pc.index;
        let who = match &from {
            From::Attempt(r) => match r.unit {
                Unit::Task { task, .. } => {
                    format!("attempt {} of task {}", r.attempt, pc.plan.tasks[task].id)
                }
                Unit::PlanAgent { .. } => format!("plan agent (attempt {})", r.attempt),
            },
            From::Person => "a person's `orch task` during `orch up`".to_string(),
        };
        let refuse = |fx: &mut Self, reason: String| {
            let say = match &from {
                From::Attempt(_) => fx.refusal_said(pc, path, &who),
                From::Person => true,
            };
            if say {
                fx.refused(pc, &report.id, &who, &reason, log_of(&from));
            }
            let why = format!(
                "`orch up` refused the report of task `{}` of plan `{}`: {reason}",
                report.id,
                pc.name()
            );
            Some(answer_of(pc, &report, exit::REFUSED, None, Some(why)))
        };
        let Some(transition) = report.transition() else {
            return refuse(self, format!("unknown transition `{}`", report.transition));
        };
        let Some(t) = pc.plan.tasks.iter().position(|x| x.id == report.id) else {
            let why = format!(
                "task `{}` does not exist in plan `{}`",
                report.id,
                pc.name()
            );
            return Some(answer_of(pc, &report, exit::INVALID, None, Some(why)));
        };
        let state = core.state();
        let rec = &state.tasks[p][t];
        let task_live = matches!(rec.run, TaskRun::Attempt(_));
        if transition == Transition::Ask
            && let Some(reason) = super::ask::refused_ask(&from_kind(&from, rec), &report)
        {
            return refuse(self, reason);
        }
        if let From::Attempt(r) = &from
            && r.asked
        {
            return refuse(
                self,
                format!(
                    "attempt {} asked a question and waits for a person's answer; it reports \
                     nothing more",
                    r.attempt
                ),
            );
        }
        match &from {
            From::Attempt(r) => match r.unit {
                Unit::Task { task, .. } => {
                    if task != t {
                        return refuse(
                            self,
                            format!(
                                "an attempt reports only its own task (`{}`)",
                                pc.plan.tasks[task].id
                            ),
                        );
                    }
                    // Best of N: an attempt of a round reports for itself only; the task's
                    // record is the round's.
                    if rec.run == TaskRun::Round {
                        let member = super::round::member_run(state, r.unit, r.attempt);
                        let Some(run) = member else {
                            return refuse(self, format!("attempt {} is over", r.attempt));
                        };
                        return Some(self.take_member_report(pc, run, transition, &report));
                    }
                    let live = matches!(rec.run, TaskRun::Attempt(run) if state.runs.get(&run)
                        .is_some_and(|rr| rr.attempt == r.attempt && rr.unit == r.unit));
                    if !live {
                        return refuse(self, format!("attempt {} is over", r.attempt));
                    }
                }
                Unit::PlanAgent { .. } => {
                    let live = matches!(state.plans[p].agent, AgentRun::Attempt(run)
                        if state.runs.get(&run).is_some_and(|rr| rr.attempt == r.attempt));
                    if !live {
                        return refuse(self, format!("plan agent attempt {} is over", r.attempt));
                    }
                    // A VERIFY step is not passed on the agent's word: it is done only when
                    // orch has run the plan's check and seen it pass (without a check, never),
                    // and never skipped. Its start, failure or reset change nothing of that.
                    let verify = pc.plan.tasks[t].kind == TaskKind::Verify;
                    let passes = matches!(transition, Transition::Done | Transition::Skip);
                    if verify
                        && passes
                        && (transition == Transition::Skip || pc.check_of(t).is_none())
                    {
                        return refuse(
                            self,
                            "a plan-mode agent does not pass or skip a VERIFY step (its `done` \
                             is taken only where orch can run the check itself)"
                                .to_string(),
                        );
                    }
                    if transition == Transition::Done {
                        let (pc, dir, report) = (pc.clone(), dir.clone(), report.clone());
                        let checked = verify.then(|| (self.ctx.clone(), self.stop_all.subscribe()));
                        tokio::spawn(async move {
                            if let Some((ctx, stop)) = checked {
                                let result =
                                    super::check::run_check(&pc, t, (None, None), &ctx, stop).await;
                                if result != CheckOutcome::Passed {
                                    let why = match result {
                                        CheckOutcome::Failed(e) | CheckOutcome::Lost(e) => e,
                                        _ => "stopped by orch".to_string(),
                                    };
                                    let answer = answer_of(
                                        &pc,
                                        &report,
                                        exit::FAILURE,
                                        None,
                                        Some(format!(
                                            "the check of VERIFY step `{}` failed; it is not \
                                             marked done:\n{why}",
                                            report.id
                                        )),
                                    );
                                    answer_in(&dir, &answer);
                                    return;
                                }
                            }
                            let _ = tokio::task::spawn_blocking(move || {
                                pc.finished_by_orch(&report.id);
                                let answer = commit_and_record(&pc, &report);
                                answer_in(&dir, &answer);
                            })
                            .await;
                        });
                        return None;
                    }
                }
            },
            From::Person => {
                // A task without a check is committed on a person's word only where no agent
                // could have written that word: a confined agent cannot write a person's
                // report directory, an unconfined one can.
                let confined = pc.confined_here().is_some();
                if transition == Transition::Done
                    && !task_live
                    && !rec.facts.status.is_finished()
                    && pc.check_of(t).is_none()
                    && !confined
                {
                    return refuse(
                        self,
                        "the task has no check and the plan's agents are not confined (an \
                         agent could have sent this report): `orch up` commits no work that \
                         nothing checked; give the plan a `check`, let the task's agent run, \
                         or stop `orch up` first"
                            .to_string(),
                    );
                }
            }
        }
        if matches!(transition, Transition::Done | Transition::Skip) {
            pc.finished_by_orch(&report.id);
        }
        let opts = report.options();
        let attempt = matches!(from, From::Attempt(_));
        let applied = pc.update_entry(&report.id, |doc| {
            // An attempt that asked a question ends there: nothing more of it is taken (not
            // even forced), whatever it reports; the answer is a person's.
            if attempt
                && let Some(e) = doc.entry(&report.id)
                && e.status == status::TaskStatus::NeedsInput
            {
                return Err(StatusError::Refused {
                    id: report.id.clone(),
                    status: e.status,
                    message: format!(
                        "task `{}` asked a question and waits for a person's answer; its \
                         attempt reports nothing more",
                        report.id
                    ),
                });
            }
            status::apply(doc, &report.id, transition, &opts, Utc::now())
        });
        if applied.is_ok()
            && transition == Transition::Ask
            && let Some(r) = self.reporters.get_mut(path)
        {
            r.asked = true;
        }
        Some(match applied {
            Ok(outcome) => answer_of(pc, &report, exit::OK, Some(outcome), None),
            Err(e) => answer_of(pc, &report, code_of(&e), None, Some(e.to_string())),
        })
    }

    /// Best of N: the report of attempt `run` of a round, kept for that attempt alone (the
    /// core hears [`super::core::Input::Reported`]); the task's status entry is not changed.
    /// The transition is tried on a copy of the entry, so the agent hears what `orch task`
    /// would have said.
    fn take_member_report(
        &mut self,
        pc: &Arc<PlanCtx>,
        run: super::state::RunId,
        transition: Transition,
        report: &Report,
    ) -> Answer {
        let tried = pc.view().map_err(|e| e.to_string()).and_then(|doc| {
            let mut doc = Arc::unwrap_or_clone(doc);
            // The copy as the attempt sees its own task: started.
            if let Some(e) = doc.entry_mut(&report.id)
                && !e.status.is_finished()
            {
                e.status = status::TaskStatus::InProgress;
            }
            status::apply(
                &mut doc,
                &report.id,
                transition,
                &TransitionOptions {
                    force: true,
                    ..report.options()
                },
                Utc::now(),
            )
            .map_err(|e| e.to_string())
        });
        let outcome = match tried {
            Ok(o) => o,
            Err(e) => return answer_of(pc, report, exit::FAILURE, None, Some(e)),
        };
        let reported = match transition {
            Transition::Done => Some(super::round::Reported::Done),
            Transition::Fail => Some(super::round::Reported::Failed(report.error.clone())),
            Transition::Skip => Some(super::round::Reported::Skipped),
            Transition::Start | Transition::Reset | Transition::Ask => None,
        };
        if let Some(reported) = reported {
            self.queue.push_back(super::msg::Msg {
                reload: None,
                input: super::core::Input::Reported { run, reported },
            });
        }
        answer_of(pc, report, exit::OK, Some(outcome), None)
    }

    /// One more report of the attempt whose report directory is `dir` refused: whether it is
    /// said (the first [`REFUSALS_SAID`]); the first past them says, once, that no more are.
    fn refusal_said(&mut self, pc: &PlanCtx, dir: &Path, who: &str) -> bool {
        let Some(r) = self.reporters.get_mut(dir) else {
            return true;
        };
        r.refused = r.refused.saturating_add(1);
        let n = r.refused;
        if n == REFUSALS_SAID + 1 {
            self.note(
                Some(pc.name().to_string()),
                format!(
                    "{who}: {REFUSALS_SAID} of its reports were refused; its further refusals are answered but no longer said"
                ),
            );
        }
        n <= REFUSALS_SAID
    }

    /// Says that a report (or a change of the status file) about task `id` of plan `pc` from
    /// `who` was refused, and why: an event, and a line in the reporter's log.
    pub(super) fn refused(
        &mut self,
        pc: &PlanCtx,
        id: &str,
        who: &str,
        reason: &str,
        log: Option<PathBuf>,
    ) {
        if let Some(log) = log {
            process::log_line(
                &log,
                &format!("=== orch: report of task {id} refused: {reason} ==="),
            );
        }
        (self.emit)(&Event::ReportRefused {
            plan: pc.name().to_owned(),
            task: id.to_string(),
            reporter: who.to_string(),
            reason: reason.to_string(),
        });
    }
}

/// Who sent a report, as [`super::ask::refused_ask`] needs it.
fn from_kind(from: &From, rec: &super::state::TaskRec) -> super::ask::Asker {
    match from {
        From::Person => super::ask::Asker::Person,
        From::Attempt(r) => match r.unit {
            Unit::PlanAgent { .. } => super::ask::Asker::PlanAgent,
            Unit::Task { .. } if rec.run == TaskRun::Round => super::ask::Asker::RoundMember,
            Unit::Task { .. } => super::ask::Asker::Attempt,
        },
    }
}

/// Answers the report taken in `dir`: the answer written, then the taken report removed.
fn answer_in(dir: &ReportDir, answer: &Answer) {
    if dir.write_json(ANSWER_FILE, answer).is_ok() {
        let _ = dir.remove_file(TAKEN_FILE);
    }
}

/// Start-up, for the report directory `dir` of an attempt adopted from an earlier supervisor:
/// a report that supervisor took but stopped before answering is put back, to be taken again
/// (applying it twice changes nothing the first did not: a transition to where the task
/// already is leaves it unchanged). Not when an answer waits to be read, nor when a newer
/// report is there.
fn put_back_taken(dir: &ReportDir) {
    if !dir.has(TAKEN_FILE) {
        return;
    }
    let answered = dir.has(ANSWER_FILE);
    let newer = dir.has(REPORT_FILE);
    if answered || newer || dir.rename(TAKEN_FILE, REPORT_FILE).is_err() {
        let _ = dir.remove_file(TAKEN_FILE);
    }
}

/// The log of the reporter, if it is an attempt.
fn log_of(from: &From) -> Option<PathBuf> {
    match from {
        From::Attempt(r) => Some(r.log.clone()),
        From::Person => None,
    }
}

fn answer_of(
    pc: &PlanCtx,
    report: &Report,
    code: u8,
    outcome: Option<TransitionOutcome>,
    error: Option<String>,
) -> Answer {
    Answer {
        seq: report.seq.clone(),
        plan: pc.name().to_owned(),
        status_file: pc.status_path.clone(),
        code,
        outcome,
        error,
        hint: None,
    }
}

fn code_of(e: &StatusError) -> u8 {
    crate::exit::Coded::exit_code(e)
}

/// A plan-mode agent's `done`: its work in the plan's worktree committed as `<plan> <id>:
/// <description>` (unless the task is completed already), then recorded with the commit.
fn commit_and_record(pc: &PlanCtx, report: &Report) -> Answer {
    let id = report.id.as_str();
    let fail = |code: u8, msg: String| answer_of(pc, report, code, None, Some(msg));
    let already = pc
        .view()
        .ok()
        .and_then(|d| {
            d.entry(id)
                .map(|e| e.status == status::TaskStatus::Completed)
        })
        .unwrap_or(false);
    let mut opts = report.options();
    if !already {
        let Some(task) = pc.plan.tasks.iter().find(|t| t.id == id) else {
            return fail(
                exit::INVALID,
                format!("plan `{}` has no task `{id}`", pc.name()),
            );
        };
        let Ok(_git) = pc.git_lock.lock() else {
            return fail(exit::FAILURE, "the plan's git lock is poisoned".to_string());
        };
        // The checks of a task-mode commit (its git files put back first: committed on the plan
        // branch, orch's record, whatever the agent did to HEAD).
        let work = (pc.worktree.as_path(), pc.branch(), None);
        if let Some(cause) = super::settle::commit_refused(pc, task, work) {
            return fail(
                exit::FAILURE,
                format!(
                    "task `{id}` of plan `{}`: {cause}; the task is not marked done",
                    pc.name()
                ),
            );
        }
        let message = pc.commit_message(id, &task.description);
        match pc.commits.commit_all_on(
            &pc.worktree,
            pc.branch(),
            &message,
            (&pc.guarded.own, pc.entry.size_limits),
        ) {
            Ok(info) => opts.commit = Some(info.oid),
            Err(e) => {
                return fail(
                    exit::FAILURE,
                    format!("cannot commit task `{id}`: {e}; the task is not marked done"),
                );
            }
        }
    }
    match pc.update_entry(id, |doc| {
        status::apply(doc, id, Transition::Done, &opts, Utc::now())
    }) {
        Ok(outcome) => answer_of(pc, report, exit::OK, Some(outcome), None),
        Err(e) => fail(code_of(&e), e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An agent writes its own report directory: a `report.taken.json` it plants as a link (to a
    /// file of orch's) is put back as a link, which the taking refuses (no-follow), and the file
    /// it points at is neither read as a report nor changed.
    #[test]
    fn a_taken_report_planted_as_a_link_is_never_followed() {
        let tmp = tempfile::tempdir().expect("tmp");
        let made = ReportDir::make(tmp.path(), &[REPORTS_DIR, "p"], "1.1.1").expect("dir");
        let dir = made.path().to_path_buf();
        let secret = tmp.path().join("status.json");
        std::fs::write(&secret, r#"{"seq":"x","transition":"done","id":"1.1"}"#).expect("write");
        std::os::unix::fs::symlink(&secret, dir.join(TAKEN_FILE)).expect("link");
        put_back_taken(&made);
        let put_back = dir.join(REPORT_FILE);
        assert!(
            std::fs::symlink_metadata(&put_back).is_ok_and(|m| m.file_type().is_symlink()),
            "the link itself was moved"
        );
        assert!(
            made.read(REPORT_FILE, crate::untrusted::read::REPORT)
                .is_err(),
            "a link is not read"
        );
        assert_eq!(
            std::fs::read_to_string(&secret).expect("read"),
            r#"{"seq":"x","transition":"done","id":"1.1"}"#
        );
        // With an answer waiting, a taken report is dropped, not put back.
        std::fs::remove_file(&put_back).expect("rm");
        std::fs::write(dir.join(TAKEN_FILE), "{}").expect("write");
        std::fs::write(dir.join(ANSWER_FILE), "{}").expect("write");
        put_back_taken(&made);
        assert!(!dir.join(TAKEN_FILE).exists() && !put_back.exists());
    }
}
