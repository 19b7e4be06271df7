//! Resuming an agent's session with a person's answer: after an attempt of the `claude` or
//! `codex` preset asked a question (`orch task ask`) and a person answered, the task's next
//! attempt resumes the client's session (Claude Code's `--resume ID`, Codex's `exec resume ID`)
//! with the answer as its prompt, instead of a fresh session whose prompt holds question and
//! answer.
//!
//! Where the session comes from, and why it is the task's own:
//! - Only a confined attempt resumes: its client keeps its sessions in the attempt's private
//!   state ([`super::client_state`]), which orch made for this task's attempt and seeded
//!   without any history. (Unconfined, the client keeps every session of every task in the
//!   user's HOME, where orch cannot tell one task's from another's.)
//! - The session id is the one the client announced in the first JSON event of the attempt's
//!   output (Claude Code's `system`/`init`, Codex's `thread.started`), which it prints before
//!   any tool runs; it must be a UUID (so never a path), else nothing is kept.
//! - When the attempt ends, orch moves that session's transcript (a regular file, bounded,
//!   found by the id in the client's own layout; never through a link) out of the private
//!   state, which is then removed, into `<state_dir>/.clients/.kept/<plan>/<task>.session/`, a
//!   directory of its own that no agent may write, with a record of what it kept (or why it
//!   kept nothing).
//! - The task's next launch takes that directory (whatever it does, it is gone afterwards):
//!   when a person answered since the attempt that kept it launched, and the same client runs
//!   again, the transcript is moved into the new attempt's private state and the client is
//!   resumed. Otherwise, the attempt is a fresh one with question and answer in its prompt,
//!   and its log says why it was not resumed.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::context::PlanCtx;
use crate::manifest::{
    CLAUDE_CONFINED, CLAUDE_CONFINED_STREAMING, CLAUDE_PRESET, CODEX_PRESET, KnownCli,
};
use crate::status::{StatusDoc, TaskEntry};

/// Codex resumed (confined: orch's rules are the sandbox, as the confined preset).
const CODEX_RESUME: &[&str] = &[
    "codex",
    "exec",
    "resume",
    "--json",
    "-c",
    "sandbox_mode=\"danger-full-access\"",
    "--",
    "{{ session }}",
    "{{ prompt }}",
];

/// The largest transcript kept: a session's record of a long task is a few MiB.
const MAX_TRANSCRIPT: u64 = 64 << 20;
/// The most of an attempt's log read for its first event.
const READ_LIMIT: u64 = 4 << 20;
/// The most entries looked at in one directory of the client's state.
const MAX_ENTRIES: usize = 4096;
/// The record's name in the kept directory.
const RECORD: &str = "session.json";

/// The client of `command` whose session orch resumes: the `claude` and `codex` presets' own
/// argv (an agent of your own is run as written).
pub(crate) fn resumable(command: &[String]) -> Option<KnownCli> {
    if CLAUDE_PRESET.iter().eq(command.iter()) {
        Some(KnownCli::Claude)
    } else if CODEX_PRESET.iter().eq(command.iter()) {
        Some(KnownCli::Codex)
    } else {
        None
    }
}

/// Where the session of task `task` of plan `plan` is kept between its attempts, under the
/// run's state directory `state_dir`: `.clients/.kept/<plan>/<task>.session`, beside the
/// plans' directories of private states (no plan's name begins with a `.`), never in one:
/// `.clients/<plan>/` is mounted read-write in the plan's container, and what is kept here is
/// no agent's to write.
pub(crate) fn kept_dir(state_dir: &Path, plan: &str, task: &str) -> PathBuf {
    state_dir
        .join(super::client_state::DIR)
        .join(super::client_state::KEPT)
        .join(plan)
        .join(format!("{task}.session"))
}

/// What the monitor of an attempt keeps when it ends.
#[derive(Clone, Debug)]
pub(crate) struct Keep {
    pub(crate) cli: KnownCli,
    /// [`kept_dir`] of the task.
    pub(crate) dir: PathBuf,
    /// The answers the task had when the attempt launched.
    pub(crate) answers: usize,
    /// The attempt's private state, when it ran confined.
    pub(crate) private: Option<PathBuf>,
}

/// The record of a kept session, written by orch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    client: String,
    /// The answers the task had when the attempt that kept it launched.
    answers: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session: Option<String>,
    /// The transcript, relative to the private state (and to the kept directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    transcript: Option<PathBuf>,
    /// Why no session was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    missing: Option<String>,
}

/// At the end of an attempt (its processes gone, its private state not yet removed): keeps
/// its session for the task's next attempt, as [`Keep`] says, from the attempt's output in
/// `log`. What cannot be kept is recorded with the reason.
pub(crate) fn keep(k: &Keep, log: &Path) {
    let mut record = Record {
        client: k.cli.name().to_string(),
        answers: k.answers,
        ..Record::default()
    };
    // Made anew, private (mode 0700: the transcript is the task's conversation); whatever was
    // there is removed, never followed.
    super::client_state::remove(&k.dir);
    if let Some(parent) = k.dir.parent() {
        let _ = fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent);
    }
    let _ = fs::DirBuilder::new().mode(0o700).create(&k.dir);
    let kept = match &k.private {
        None => Err(
            "the agent ran unconfined: its client keeps its sessions in your HOME, where orch \
             cannot tell one task's session from another's"
                .to_string(),
        ),
        Some(private) => first_session(k.cli, log).and_then(|id| {
            let rel = transcript(k.cli, private, &id)?;
            let to = k.dir.join(&rel);
            make_parents(&k.dir, &rel)
                .and_then(|()| fs::rename(private.join(&rel), &to))
                .map_err(|e| format!("cannot keep the session's transcript: {e}"))?;
            Ok((id, rel))
        }),
    };
    match kept {
        Ok((id, rel)) => {
            record.session = Some(id);
            record.transcript = Some(rel);
        }
        Err(why) => record.missing = Some(why),
    }
    if let Ok(json) = serde_json::to_vec(&record) {
        let _ = crate::links::write(&k.dir.join(RECORD), &json);
    }
}

/// The next attempt of a task, as its launch decided it.
#[derive(Debug)]
pub(crate) enum Next {
    /// Resume `session`: its transcript is to be moved into the new private state.
    Resume {
        cli: KnownCli,
        session: String,
        /// The kept transcript, and where it goes relative to the private state.
        from: PathBuf,
        rel: PathBuf,
    },
    /// A fresh attempt (with question and answer in its prompt), and why it was not resumed.
    Fresh(String),
}

/// What the launch of a task's next attempt does with its kept session, if one was kept and a
/// person answered since: `command` the agent it runs, `private` whether it has a private
/// state (runs confined, here). The kept directory is read and left as it is.
fn next(dir: &Path, command: &[String], private: bool, entry: Option<&TaskEntry>) -> Option<Next> {
    let bytes = crate::untrusted::read::head(&dir.join(RECORD), 64 * 1024).ok()?;
    let record: Record = serde_json::from_slice(&bytes).ok()?;
    let answers = entry.map_or(0, |e| e.orch_answers.len());
    if answers <= record.answers {
        // Nobody answered since: nothing to resume.
        return None;
    }
    let fresh = |why: &str| Some(Next::Fresh(why.to_string()));
    if let Some(why) = &record.missing {
        return fresh(why);
    }
    let Some(cli) = resumable(command) else {
        return fresh("this attempt's agent is not one whose session orch resumes");
    };
    if cli.name() != record.client {
        return fresh("the attempt that asked ran another client");
    }
    if !private {
        return fresh("this attempt runs unconfined, without a private state of its client");
    }
    let (Some(session), Some(rel)) = (record.session, record.transcript) else {
        return fresh("no session was kept");
    };
    if !is_session_id(&session) || !is_relative_plain(&rel) {
        return fresh("the kept session is not valid");
    }
    let from = dir.join(&rel);
    match fs::symlink_metadata(&from) {
        Ok(m) if m.is_file() && m.len() <= MAX_TRANSCRIPT => {}
        _ => return fresh("the kept session's transcript is gone"),
    }
    Some(Next::Resume {
        cli,
        session,
        from,
        rel,
    })
}

/// A task's launch and its kept session.
pub(crate) struct Launch {
    dir: PathBuf,
    next: Option<Next>,
}

impl Launch {
    /// What the launch of attempt `attempt` of task `id` of plan `pc`, run with `command`,
    /// does with the task's kept session (`None`: not a task's own attempt).
    pub(crate) fn decide(
        pc: &PlanCtx,
        member: bool,
        id: Option<&str>,
        command: &[String],
        attempt: u32,
        doc: &StatusDoc,
    ) -> Option<Launch> {
        let id = id.filter(|_| !member)?;
        let state_dir = pc.status_path.parent()?.parent()?;
        let dir = kept_dir(state_dir, pc.name(), id);
        let private = super::client_state::of_attempt_with(pc, command, id, attempt).is_some();
        let next = next(&dir, command, private, doc.entry(id));
        Some(Launch { dir, next })
    }

    /// The argv of a resumed attempt (its prompt, the answer, also written to `prompt_file`;
    /// `streaming`: given on stdin, not in the argv), or `None` for a fresh one.
    pub(crate) fn argv(
        &self,
        entry: Option<&TaskEntry>,
        id: &str,
        orch: &Path,
        prompt_file: &Path,
        streaming: bool,
    ) -> Result<Option<Vec<String>>, String> {
        let (Some(Next::Resume { cli, session, .. }), Some(entry)) = (&self.next, entry) else {
            return Ok(None);
        };
        let text = prompt(entry, id, &orch.display().to_string());
        crate::links::write(prompt_file, text.as_bytes())
            .map_err(|e| format!("cannot write `{}`: {e}", prompt_file.display()))?;
        Ok(Some(argv(*cli, session, &text, streaming)))
    }

    /// Moves the kept transcript into the attempt's private state `private` (the client's
    /// state directory), when it resumes; Claude Code's is also copied to the project
    /// directory of `workdir` (where the client looks for it) when the attempt runs in another
    /// directory than the one that asked (another worktree of the plan's pool).
    pub(crate) fn install(&self, private: &Path, workdir: &Path) -> Result<(), String> {
        let Some(Next::Resume { cli, from, rel, .. }) = &self.next else {
            return Ok(());
        };
        let why = |e: io::Error| {
            format!(
                "cannot move the kept session into `{}`: {e}",
                private.display()
            )
        };
        make_parents(private, rel)
            .and_then(|()| fs::rename(from, private.join(rel)))
            .map_err(why)?;
        if *cli == KnownCli::Claude
            && let (Some(name), Some(slug)) = (rel.file_name(), claude_project(workdir))
        {
            let here = Path::new("projects").join(slug).join(name);
            if here != *rel {
                make_parents(private, &here)
                    .and_then(|()| {
                        crate::links::no_follow()
                            .write(true)
                            .create_new(true)
                            .open(private.join(&here))
                    })
                    .and_then(|mut to| {
                        // The bounded reader: a regular file, no link followed.
                        let (text, _) = crate::untrusted::read::open(&private.join(rel))
                            .map_err(|e| io::Error::other(e.to_string()))?;
                        io::copy(&mut io::Read::take(text, MAX_TRANSCRIPT), &mut to)
                    })
                    .map_err(why)?;
            }
        }
        Ok(())
    }

    /// The attempt log's line about it, when a person answered since the last attempt.
    pub(crate) fn log_line(&self) -> Option<String> {
        match self.next.as_ref()? {
            Next::Resume { session, .. } => Some(format!(
                "=== orch: resumed the session {session} of the attempt that asked, with the answer as its prompt ==="
            )),
            Next::Fresh(why) => Some(format!(
                "=== orch: the session of the attempt that asked is not resumed ({why}): a fresh session, with the question and the answer in its prompt ==="
            )),
        }
    }

    /// The kept session is taken: removed, whatever the launch did with it.
    pub(crate) fn done(self) {
        super::client_state::remove(&self.dir);
    }
}

/// The argv of the resumed client: `session` and the answer's `prompt`.
pub(crate) fn argv(cli: KnownCli, session: &str, prompt: &str, streaming: bool) -> Vec<String> {
    // Claude Code: `claude --resume ID`, then the confined preset's own flags (every shell
    // command allowed; with streaming input, the answer on stdin).
    let template: Vec<&str> = match cli {
        KnownCli::Codex => CODEX_RESUME.to_vec(),
        _ => {
            let confined = if streaming {
                CLAUDE_CONFINED_STREAMING
            } else {
                CLAUDE_CONFINED
            };
            [&["claude", "--resume", "{{ session }}"][..], &confined[1..]].concat()
        }
    };
    template
        .iter()
        .map(|a| match *a {
            "{{ session }}" => session.to_string(),
            "{{ prompt }}" => prompt.to_string(),
            other => other.to_string(),
        })
        .collect()
}

/// The prompt of a resumed session: the person's answer, the messages kept for the task, and
/// how to go on.
pub(crate) fn prompt(entry: &TaskEntry, task: &str, orch: &str) -> String {
    let (question, answer) = entry
        .orch_answers
        .last()
        .map(|a| (a.question.as_str(), a.answer.as_str()))
        .unwrap_or_default();
    let mut text = format!(
        "orch: a person answered the question you asked.\n\nYour question: {question}\n\nThe answer: {answer}\n\n"
    );
    if !entry.orch_messages.is_empty() {
        text.push_str("Messages from the person who runs this plan (follow them):\n");
        for m in &entry.orch_messages {
            text.push_str(&format!("- {}\n", m.text));
        }
        text.push('\n');
    }
    text.push_str(&format!(
        "Go on with task {task} with this answer. Look at the working directory as it is now first: what you changed before you asked may have been set aside. When the task is finished, report it as before:\n\n    {orch} task done {task} --note \"what you changed, in one line\"\n"
    ));
    text
}

/// The session id the client announced in the first JSON event of the last attempt in `log`.
fn first_session(cli: KnownCli, log: &Path) -> Result<String, String> {
    let (_, bytes) = crate::untrusted::read::tail(log, 0, READ_LIMIT)
        .map_err(|e| format!("cannot read the attempt's log: {e}"))?;
    let text = String::from_utf8_lossy(&bytes);
    let start = crate::agent_output::last_attempt_start(&text)
        .ok_or("the attempt's output is not in its log")?;
    session_in(cli, &text[start..])
}

/// The session id of the first JSON event of `output` (one attempt's), if it is the client's
/// announcement of its session with a UUID.
fn session_in(cli: KnownCli, output: &str) -> Result<String, String> {
    let first = output
        .lines()
        .filter(|l| !l.starts_with("=== orch: "))
        .find_map(|l| serde_json::from_str::<serde_json::Value>(l.trim()).ok())
        .filter(serde_json::Value::is_object)
        .ok_or("the client announced no session")?;
    let id = match cli {
        KnownCli::Claude if first["type"] == "system" && first["subtype"] == "init" => {
            first["session_id"].as_str()
        }
        KnownCli::Codex if first["type"] == "thread.started" => first["thread_id"].as_str(),
        _ => None,
    }
    .ok_or("the client's first event announced no session")?;
    if !is_session_id(id) {
        return Err("the session id the client announced is not a UUID".to_string());
    }
    Ok(id.to_string())
}

/// The name of Claude Code's project directory for sessions started in `dir`: its path with
/// every character but an ASCII letter or digit made `-` (`None` for a path too long for the
/// name, which Claude Code shortens its own way).
fn claude_project(dir: &Path) -> Option<String> {
    let path = dir.to_str()?;
    let name: String = path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    (name.len() <= 200).then_some(name)
}

/// A UUID (`8-4-4-4-12` hexadecimal digits): what both clients name their sessions by, and
/// never a path.
fn is_session_id(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A relative path of plain names (no `..`, no root).
fn is_relative_plain(p: &Path) -> bool {
    p.components().count() > 0 && p.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Where the client keeps the transcript of session `id` in its state `dir`, relative to it:
/// Claude Code's `projects/<project>/<id>.jsonl`, Codex's
/// `sessions/<year>/<month>/<day>/rollout-<time>-<id>.jsonl`. Only real directories are looked
/// in and only a regular file is taken.
fn transcript(cli: KnownCli, dir: &Path, id: &str) -> Result<PathBuf, String> {
    let codex = cli == KnownCli::Codex;
    let (top, depth) = if codex {
        ("sessions", 3)
    } else {
        ("projects", 1)
    };
    let matches = |n: &str| {
        if codex {
            n.starts_with("rollout-") && n.ends_with(&format!("-{id}.jsonl"))
        } else {
            n == format!("{id}.jsonl")
        }
    };
    let mut level = vec![PathBuf::from(top)];
    for _ in 0..depth {
        let mut next = Vec::new();
        for rel in &level {
            next.extend(
                entries(&dir.join(rel), true)
                    .into_iter()
                    .map(|n| rel.join(n)),
            );
        }
        level = next;
    }
    for rel in &level {
        for name in entries(&dir.join(rel), false) {
            if name.to_str().is_some_and(&matches) {
                let found = rel.join(&name);
                return match fs::symlink_metadata(dir.join(&found)) {
                    Ok(m) if m.is_file() && m.len() <= MAX_TRANSCRIPT => Ok(found),
                    Ok(m) if m.is_file() => Err("the session's transcript is too large".into()),
                    _ => Err("the session's transcript is not a regular file".into()),
                };
            }
        }
    }
    Err("the client kept no transcript of the session it announced".to_string())
}

/// The names in directory `dir` (a real one, not a link): its directories (`dirs`) or its
/// other entries; at most [`MAX_ENTRIES`] looked at.
fn entries(dir: &Path, dirs: bool) -> Vec<std::ffi::OsString> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        _ => return Vec::new(),
    }
    let Ok(read) = fs::read_dir(dir) else {
        return Vec::new();
    };
    read.take(MAX_ENTRIES)
        .flatten()
        .filter(|e| {
            e.file_type()
                .is_ok_and(|t| t.is_dir() == dirs && !t.is_symlink())
        })
        .map(|e| e.file_name())
        .collect()
}

/// The directories of `rel` beneath `base` (orch's own, made now: mode 0700, none there).
fn make_parents(base: &Path, rel: &Path) -> io::Result<()> {
    let mut at = base.to_path_buf();
    if let Some(parent) = rel.parent() {
        for c in parent.components() {
            at.push(c);
            match fs::symlink_metadata(&at) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!("`{}` is not a directory", at.display()),
                    ));
                }
                Err(_) => fs::DirBuilder::new().mode(0o700).create(&at)?,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
