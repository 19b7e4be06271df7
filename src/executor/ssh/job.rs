//! What the driver of a remote attempt hands orch's copy on the host (the [`Job`] frame), and
//! the names both sides derive from it. The host checks every name before it makes a path of it.

use serde::{Deserialize, Serialize};

/// One attempt to run on the host.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Job {
    /// The repository's cache on the host: `<dir>/repos/<repo>.git`.
    pub(crate) repo: String,
    /// The attempt's own directory on the host: `<dir>/attempts/<key>`.
    pub(crate) key: String,
    /// The commit the worktree is made at (orch's record of the plan branch's tip).
    pub(crate) base: String,
    /// `<plan>/<unit>.<attempt>`: the report directory's place under the attempt's state.
    pub(crate) report: String,
    pub(crate) argv: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    /// The prompt, written to the host's prompt file.
    pub(crate) prompt: String,
    /// Run the agent under Landlock (refused where the host has none).
    pub(crate) confine: bool,
    /// What of [`crate::agent_env::withheld`] the agent keeps of the host's environment
    /// (`pass_env`); the rest is removed there as here.
    #[serde(default)]
    pub(crate) pass_env: Vec<String>,
    /// The lead's paths in `argv` and `env`, each replaced by its place on the host.
    pub(crate) replace: Vec<(String, Place)>,
    /// The plan's `max_file_size`: a snapshot is not taken of a worktree holding a larger file
    /// than its base held there (the host would hash it, the lead refuse it).
    #[serde(default = "default_max_file_size")]
    pub(crate) max_file_size: u64,
    /// The plan's `max_change_size` and `max_change_files`: a snapshot is not taken of a
    /// worktree whose change is over them as far as the files' sizes tell (nothing hashed).
    #[serde(default = "default_max_change_size")]
    pub(crate) max_change_size: u64,
    #[serde(default = "default_max_change_files")]
    pub(crate) max_change_files: u64,
}

fn default_max_file_size() -> u64 {
    crate::manifest::SizeLimits::default().file
}

fn default_max_change_size() -> u64 {
    crate::manifest::SizeLimits::default().change
}

fn default_max_change_files() -> u64 {
    crate::manifest::SizeLimits::default().files
}

/// A place on the host that stands for one of the lead's paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Place {
    Worktree,
    ReportDir,
    PromptFile,
    Orch,
    StatusFile,
}

/// Whether `s` may name a directory of the host's `dir`: letters, digits, `.`, `_`, `-`, not
/// beginning with `.`, at most 200 bytes.
pub(crate) fn safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether `s` is a full commit id.
pub(crate) fn commit_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `s` made a [`safe_name`] (every other byte `_`).
pub(crate) fn name_of(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    out.trim_start_matches('.').chars().take(150).collect()
}

/// The ref in the host's cache that holds an attempt's snapshot.
pub(crate) fn snapshot_ref(key: &str) -> String {
    format!("refs/orch/snap/{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(safe_name("p-1.1-2-77"));
        for bad in ["", "..", ".x", "a/b", "a b", "x\n"] {
            assert!(!safe_name(bad), "{bad:?}");
        }
        assert!(safe_name(&name_of("plan/../x y")));
        assert!(commit_id(&"a".repeat(40)));
        assert!(!commit_id("HEAD"));
    }
}
