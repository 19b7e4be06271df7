//! `orch logs PLAN [TASK]`: the agent logs `orch up` writes, one file per task in
//! `<log_dir>/<plan>/` (`<task>.log`, plus `plan.log` for a plan-mode agent and `setup.log`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{Context as _, anyhow};
use serde_json::json;

use super::output::{print_json, println_safe};
use crate::error::{CliError, CliResult, exit};
use crate::manifest::{self, Manifest, PlanEntry};
use crate::untrusted::read;

/// The logs that are not a task's.
const PLAN_LOGS: [&str; 2] = ["plan", "setup"];

/// What the user asked for.
pub(crate) struct LogsArgs {
    pub(crate) manifest: Option<PathBuf>,
    pub(crate) plan: String,
    pub(crate) task: Option<String>,
    /// Print only the path.
    pub(crate) path: bool,
    pub(crate) json: bool,
    /// The bytes as written, control characters and all.
    pub(crate) raw: bool,
    /// Best of N: the log of this attempt of the task (`<task>.a<K>.log`).
    pub(crate) attempt: Option<u32>,
    /// Only the log's last N bytes.
    pub(crate) tail_bytes: Option<u64>,
}

/// One log file.
struct LogFile {
    /// The file name without `.log`: the task id, `plan` or `setup`.
    name: String,
    path: PathBuf,
    size: u64,
    modified: Option<SystemTime>,
}

pub(crate) fn run(args: &LogsArgs) -> CliResult<u8> {
    let m = load_manifest(args.manifest.as_deref())?;
    let entry = m.plan(&args.plan).ok_or_else(|| {
        let names: Vec<String> = m.plans.iter().map(|p| format!("`{}`", p.name)).collect();
        CliError::invalid(anyhow!("no plan `{}` in `{}`", args.plan, m.path.display()))
            .with_hint(format!("the manifest's plans are {}", names.join(", ")))
    })?;
    let dir = m.log_dir(&entry.name);
    match &args.task {
        None => list(args, entry, &dir),
        Some(task) => show(args, entry, &dir, task),
    }
}

fn load_manifest(given: Option<&Path>) -> CliResult<Manifest> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => {
            let cwd = std::env::current_dir().context("cannot read the current directory")?;
            manifest::find_manifest(&cwd).ok_or_else(|| {
                CliError::invalid(anyhow!(
                    "no `plans.toml` found in `{}` or any parent directory",
                    cwd.display()
                ))
                .with_hint("logs belong to the plans of a manifest; pass `--manifest PATH`")
            })?
        }
    };
    crate::workspace::load_manifest(&path)
}

/// Every `*.log` file in the plan's log directory, oldest first.
fn log_files(dir: &Path) -> CliResult<Vec<LogFile>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot read `{}`", dir.display()))?,
    };
    let mut files = Vec::new();
    for e in entries {
        let e = e.with_context(|| format!("cannot read `{}`", dir.display()))?;
        let Ok(meta) = e.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let file_name = e.file_name().to_string_lossy().into_owned();
        // Only logs: the prompt files (`<task>.prompt.md`) next to them are not listed.
        let Some(name) = file_name.strip_suffix(".log").map(str::to_string) else {
            continue;
        };
        files.push(LogFile {
            name,
            path: e.path(),
            size: meta.len(),
            modified: meta.modified().ok(),
        });
    }
    files.sort_by(|a, b| (a.modified, &a.name).cmp(&(b.modified, &b.name)));
    Ok(files)
}

fn list(args: &LogsArgs, entry: &PlanEntry, dir: &Path) -> CliResult<u8> {
    if args.path {
        println_safe(&dir.display().to_string());
        return Ok(exit::OK);
    }
    let files = log_files(dir)?;
    if args.json {
        let logs: Vec<_> = files
            .iter()
            .map(|f| {
                json!({
                    "name": f.name,
                    "path": f.path,
                    "size": f.size,
                    "modified": f.modified.map(rfc3339),
                })
            })
            .collect();
        print_json(&json!({ "plan": entry.name, "dir": dir, "logs": logs }));
        return Ok(exit::OK);
    }
    if files.is_empty() {
        return Err(CliError::invalid(anyhow!(
            "no logs yet for plan `{}` (looked in `{}`)",
            entry.name,
            dir.display()
        ))
        .with_hint("`orch up` writes one log per task there once the plan runs"));
    }
    println_safe(&format!(
        "logs of plan `{}` in {} (newest last):",
        entry.name,
        dir.display()
    ));
    let width = files.iter().map(|f| f.name.len()).max().unwrap_or(0);
    for f in &files {
        println_safe(&format!(
            "  {:<width$}  {:>9}  {}",
            f.name,
            human_size(f.size),
            f.modified.map(local_time).unwrap_or_else(|| "-".into()),
        ));
    }
    println_safe(&format!(
        "show one: orch logs {} {}",
        entry.name,
        files[files.len() - 1].name
    ));
    Ok(exit::OK)
}

fn show(args: &LogsArgs, entry: &PlanEntry, dir: &Path, task: &str) -> CliResult<u8> {
    let key;
    let task = match args.attempt {
        Some(k) => {
            key = attempt_key(
                args,
                entry,
                dir,
                task.strip_suffix(".log").unwrap_or(task),
                k,
            )?;
            key.as_str()
        }
        None => task,
    };
    let name = task.strip_suffix(".log").unwrap_or(task);
    let safe = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    let known = safe && (PLAN_LOGS.contains(&name) || plan_has_task(entry, name));
    let path = dir.join(format!("{name}.log"));
    // Anything there (a link or a FIFO too, which the read then refuses by name).
    let exists = safe && std::fs::symlink_metadata(&path).is_ok();
    if !known && !exists {
        let hint = match task_ids(entry) {
            Some(ids) if !ids.is_empty() => format!(
                "its tasks are {}; `plan` and `setup` name the plan-mode agent's and the setup log",
                ids.join(", ")
            ),
            _ => format!("`orch logs {}` lists the logs there are", entry.name),
        };
        return Err(
            CliError::invalid(anyhow!("plan `{}` has no task `{task}`", entry.name))
                .with_hint(hint),
        );
    }
    if args.path {
        // Known but not written yet is fine: `tail -F "$(orch logs auth 2.3 --path)"`.
        println_safe(&path.display().to_string());
        return Ok(exit::OK);
    }
    if !exists {
        // Best of N: the task's attempts wrote logs of their own.
        let attempts = attempt_logs(dir, name);
        if !attempts.is_empty() {
            return Err(CliError::invalid(anyhow!(
                "task `{name}` of plan `{}` ran as best of N: each attempt has its own log ({})",
                entry.name,
                attempts
                    .iter()
                    .map(|k| format!("attempt {k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .with_hint(format!(
                "orch logs {} {name} --attempt {}",
                entry.name, attempts[0]
            )));
        }
        return Err(CliError::invalid(anyhow!(
            "no log yet for `{name}` of plan `{}` (`{}` does not exist)",
            entry.name,
            path.display()
        ))
        .with_hint(format!(
            "it has not run yet; `orch status --plan {}` shows where the plan is, `orch logs {}` lists the logs there are",
            entry.name, entry.name
        )));
    }
    // An agent (unconfined) can put a link or a FIFO where its log goes: read as untrusted.
    let unreadable = |e: read::ReadError| CliError::new(exit::FAILURE, anyhow!(e));
    if args.json {
        let max = args.tail_bytes.unwrap_or(JSON_MAX).min(JSON_MAX);
        let (from, bytes) = read::tail(&path, 0, max).map_err(unreadable)?;
        let meta = std::fs::symlink_metadata(&path).ok();
        print_json(&json!({
            "plan": entry.name,
            "name": name,
            "path": path,
            "size": from + bytes.len() as u64,
            "modified": meta.and_then(|m| m.modified().ok()).map(rfc3339),
            "text": String::from_utf8_lossy(&bytes),
            "truncated": from > 0,
        }));
        return Ok(exit::OK);
    }
    let (mut file, size) = read::open(&path).map_err(unreadable)?;
    if let Some(n) = args.tail_bytes {
        use std::io::Seek as _;
        file.seek(std::io::SeekFrom::Start(size.saturating_sub(n)))
            .map_err(|e| {
                CliError::new(
                    exit::FAILURE,
                    anyhow!("cannot read `{}`: {e}", path.display()),
                )
            })?;
    }
    // A closed pipe (`orch logs auth 1.1 | head`) is not an error.
    let mut out = std::io::stdout().lock();
    let copied = if args.raw {
        std::io::copy(&mut &file, &mut out).map(drop)
    } else {
        copy_escaped(&file, &mut out)
    };
    match copied.and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::new(
            exit::FAILURE,
            anyhow!("cannot read `{}`: {e}", path.display()),
        )),
        _ => Ok(exit::OK),
    }
}

/// What `orch logs --json` puts in `text` at most: the log's last 64 MiB.
const JSON_MAX: u64 = 64 << 20;

/// Copies `from` to `out` as text with its control characters but newline and tab shown
/// escaped ([`crate::untrusted::escaped_lines`]; bytes that are not UTF-8 as `U+FFFD`), a
/// chunk at a time: any size of log in bounded memory, a character cut by a chunk's end kept
/// for the next.
fn copy_escaped(
    mut from: impl std::io::Read,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 << 10];
    let mut kept = 0;
    loop {
        let n = match from.read(&mut buf[kept..]) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        let end = kept + n;
        // At the end of the input, a cut character is shown as it is (lossy).
        let upto = if n == 0 {
            end
        } else {
            match std::str::from_utf8(&buf[..end]) {
                Ok(_) => end,
                Err(e) if e.error_len().is_none() => e.valid_up_to(),
                Err(_) => end,
            }
        };
        let text = String::from_utf8_lossy(&buf[..upto]);
        out.write_all(crate::untrusted::escaped_lines(&text).as_bytes())?;
        if n == 0 {
            return Ok(());
        }
        buf.copy_within(upto..end, 0);
        kept = end - upto;
    }
}

/// `orch logs PLAN TASK --attempt K`: the name of attempt `k`'s log of a best-of-N task.
fn attempt_key(
    args: &LogsArgs,
    entry: &PlanEntry,
    dir: &Path,
    task: &str,
    k: u32,
) -> CliResult<String> {
    if !plan_has_task(entry, task) {
        return Err(
            CliError::invalid(anyhow!("plan `{}` has no task `{task}`", entry.name)).with_hint(
                format!("`orch logs {}` lists the logs there are", entry.name),
            ),
        );
    }
    let key = crate::supervisor::round::member_key(task, k);
    let attempts = attempt_logs(dir, task);
    if !args.path && !attempts.contains(&k) {
        let hint = if attempts.is_empty() {
            format!(
                "task `{task}` ran no best-of-N attempts (yet): `orch logs {} {task}` shows its log",
                entry.name
            )
        } else {
            format!(
                "its attempts with a log: {}",
                attempts
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Err(CliError::invalid(anyhow!(
            "no log of attempt {k} of task `{task}` of plan `{}`",
            entry.name
        ))
        .with_hint(hint));
    }
    Ok(key)
}

/// The attempt numbers of task `task`'s best-of-N logs (`<task>.a<K>.log`) in `dir`, sorted.
fn attempt_logs(dir: &Path, task: &str) -> Vec<u32> {
    crate::supervisor::attempt_logs::attempt_logs(dir, task)
        .into_iter()
        .map(|a| a.attempt)
        .collect()
}

/// The plan's task ids, when its file can be read.
fn task_ids(entry: &PlanEntry) -> Option<Vec<String>> {
    let plan = crate::plan::parse_file(&entry.abs_file).ok()?;
    Some(plan.tasks.iter().map(|t| t.id.clone()).collect())
}

fn plan_has_task(entry: &PlanEntry, id: &str) -> bool {
    task_ids(entry).is_some_and(|ids| ids.iter().any(|t| t == id))
}

fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = UNITS[0];
    for u in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

fn local_time(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Local>::from(t)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Escape sequences, a carriage return, a backspace and a C1 CSI are shown escaped, even
    /// when a chunk's end cuts one of them or a multi-byte character in two; newlines, tabs and
    /// other text are kept.
    #[test]
    fn a_log_is_copied_with_its_control_characters_escaped() {
        let mut log = "ok\tcolumn\n\u{1b}[2J\u{1b}]52;c;eA==\u{7}done\rfailed\u{8}\u{9b}31m é\n"
            .repeat(5000)
            .into_bytes();
        log.extend_from_slice(b"\xff end");
        let mut out = Vec::new();
        copy_escaped(&log[..], &mut out).expect("copy");
        let out = String::from_utf8(out).expect("utf-8");
        let line = "ok\tcolumn\n\\u{1b}[2J\\u{1b}]52;c;eA==\\u{7}done\\rfailed\\u{8}\\u{9b}31m é\n";
        assert_eq!(out, format!("{}\u{fffd} end", line.repeat(5000)));
    }

    #[test]
    fn sizes_read_like_ls_h() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1024), "1.0 KiB");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 * 1024 * 1024), "5.0 MiB");
    }
}
