//! The journal the fixture agents write (`start|end plan task pid nanoseconds`, one line each),
//! and the spans of time it shows.

use std::path::Path;

/// One line of an agent journal: start|end, plan, task, pid, nanoseconds.
#[derive(Debug)]
pub struct Mark {
    pub start: bool,
    pub plan: String,
    pub task: String,
    pub pid: u32,
    pub at: u128,
}

/// Every mark of the journal at `path` (none when it does not exist).
pub fn journal(path: &Path) -> Vec<Mark> {
    read(path, false)
}

/// As [`journal`], failing the test on a line without exactly five fields (torn by a kill).
pub fn journal_whole_lines(path: &Path) -> Vec<Mark> {
    read(path, true)
}

fn read(path: &Path, whole_lines: bool) -> Vec<Mark> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if whole_lines {
                assert_eq!(f.len(), 5, "torn journal line: {l:?}");
            }
            Mark {
                start: f[0] == "start",
                plan: f[1].to_string(),
                task: f[2].to_string(),
                pid: f[3].parse().expect("pid"),
                at: f[4].parse().expect("ns"),
            }
        })
        .collect()
}

/// Each agent's span (start, end) from a journal, with its plan and task.
pub fn spans(marks: &[Mark]) -> Vec<(String, String, u128, u128)> {
    marks
        .iter()
        .filter(|m| m.start)
        .map(|s| {
            let end = marks
                .iter()
                .find(|e| !e.start && e.pid == s.pid)
                .unwrap_or_else(|| panic!("agent {s:?} never ended"))
                .at;
            (s.plan.clone(), s.task.clone(), s.at, end)
        })
        .collect()
}

/// The largest number of spans running at one instant.
pub fn max_overlap(spans: &[(u128, u128)]) -> usize {
    spans
        .iter()
        .map(|&(start, _)| {
            spans
                .iter()
                .filter(|&&(s, e)| s <= start && start < e)
                .count()
        })
        .max()
        .unwrap_or(0)
}
