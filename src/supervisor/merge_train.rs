//! The merge train (`orch up --merge`, `auto_merge`): each finished plan is merged into the
//! target by `orch merge`, in the order the core decides.

use super::core::MergeResult;

/// Runs `orch merge PLAN --json` (all of its checks, locks and verification) and reads its result.
pub async fn run_merge(
    bin: &std::path::Path,
    manifest: &std::path::Path,
    root: &std::path::Path,
    plan: &str,
) -> MergeResult {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.args(["merge", plan, "--json", "--manifest"])
        .arg(manifest)
        .current_dir(root)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for var in [
        "ORCH_PLAN",
        "ORCH_TASK",
        "ORCH_STATUS_FILE",
        "ORCH_MANIFEST",
        "ORCH_WORKTREE",
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
    ] {
        cmd.env_remove(var);
    }
    let out = match cmd.output().await {
        Ok(out) => out,
        Err(e) => {
            return MergeResult {
                result: "error".to_string(),
                commit: None,
                reason: format!("cannot run `orch merge`: {e}"),
            };
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first_error = stderr
        .lines()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or("")
        .to_string();
    let json: Option<serde_json::Value> = serde_json::from_slice(&out.stdout).ok();
    let step = json
        .as_ref()
        .and_then(|v| v.get("steps"))
        .and_then(serde_json::Value::as_array)
        .and_then(|steps| {
            steps
                .iter()
                .find(|s| s.get("plan").and_then(serde_json::Value::as_str) == Some(plan))
        });
    match step {
        Some(s) => {
            let field = |k: &str| {
                s.get(k)
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string)
            };
            let files = s
                .get("files")
                .and_then(serde_json::Value::as_array)
                .map(|f| {
                    f.iter()
                        .filter_map(serde_json::Value::as_str)
                        .map(|x| format!("`{x}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default();
            let mut reason = field("reason").unwrap_or_default();
            if !files.is_empty() {
                reason = if reason.is_empty() {
                    format!("conflicts in {files}")
                } else {
                    format!("{reason}: {files}")
                };
            }
            MergeResult {
                result: field("result").unwrap_or_else(|| "error".to_string()),
                commit: field("commit"),
                reason,
            }
        }
        None => MergeResult {
            result: if out.status.code() == Some(i32::from(crate::error::exit::REFUSED)) {
                "refused".to_string()
            } else {
                "error".to_string()
            },
            commit: None,
            reason: if first_error.is_empty() {
                format!("`orch merge {plan}` exited with {}", out.status)
            } else {
                first_error
            },
        },
    }
}
