//! The output of opencode, Qwen Code and GitHub Copilot CLI, where it differs from the formats
//! [`super::parse`] reads for the first clients:
//!
//! - opencode, `run --format json`: `step_start`, `tool_use`, `text` (`part.text`: the model's
//!   words, the last its final word), `step_finish` with each step's `part.tokens` (`input`,
//!   `output`, `reasoning`, `cache.read`, `cache.write`) and `part.cost` in US dollars (summed),
//!   and `{"type":"error","error":{"name":…,"data":{"message":…,"statusCode":…}}}`.
//! - Qwen Code, `--output-format stream-json`: Claude Code's format (`system`, `assistant`,
//!   `user`, `stream_event`, a last `result` with `usage`), its error in `error.message`; no cost.
//! - GitHub Copilot CLI, `--output-format json`: dotted event names (`session.*`,
//!   `assistant.message` with `data.content`, `tool.*`, `model.*`), `session.error` with
//!   `data.message` and `data.statusCode`, a last `result` with `exitCode`; no tokens there:
//!   they are in the file `--usage-output-file` writes (`modelMetrics.<model>.usage`:
//!   `inputTokens`, `outputTokens`, `cacheReadTokens`, `cacheWriteTokens`), which the agent
//!   could write too, so it is read as what it is: a bounded, untrusted file.

use std::path::Path;

use serde_json::Value;

use super::{Usage, usd_to_micro};

/// The most of a usage file read: a real one is a few KiB.
const USAGE_FILE_LIMIT: u64 = 1 << 20;

/// One opencode step's tokens and cost (`step_finish`'s `part`).
pub(super) fn opencode_step(part: &Value) -> Usage {
    let n = |p: &str| part.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    Usage {
        input_tokens: n("/tokens/input"),
        // Reasoning tokens are paid as output.
        output_tokens: n("/tokens/output").saturating_add(n("/tokens/reasoning")),
        cache_read_tokens: n("/tokens/cache/read"),
        cache_write_tokens: n("/tokens/cache/write"),
        cost_micro_usd: part
            .get("cost")
            .and_then(Value::as_f64)
            .filter(|c| c.is_finite() && *c >= 0.0)
            .map(usd_to_micro),
    }
}

/// opencode's error event: its message and the HTTP status of the failed call, if any.
pub(super) fn opencode_error(v: &Value) -> Option<(String, Option<u64>)> {
    let e = v.get("error")?;
    let message = e
        .pointer("/data/message")
        .and_then(Value::as_str)
        .or_else(|| e.get("message").and_then(Value::as_str))
        .or_else(|| e.get("name").and_then(Value::as_str))?;
    let status = e.pointer("/data/statusCode").and_then(Value::as_u64);
    Some((message.to_string(), status))
}

/// Whether `ty` is one of GitHub Copilot CLI's event names.
pub(super) fn is_copilot_event(ty: &str) -> bool {
    [
        "session.",
        "assistant.",
        "tool.",
        "model.",
        "user.",
        "subagent.",
        "skill.",
        "hook.",
    ]
    .iter()
    .any(|p| ty.starts_with(p))
}

/// Copilot CLI's `session.error`: its message and the HTTP status, if any.
pub(super) fn copilot_error(v: &Value) -> (String, Option<u64>) {
    let message = v
        .pointer("/data/message")
        .and_then(Value::as_str)
        .unwrap_or("the client ended with an error")
        .to_string();
    (
        message,
        v.pointer("/data/statusCode").and_then(Value::as_u64),
    )
}

/// The tokens a client wrote to its usage file (Copilot CLI's `--usage-output-file`), summed
/// over its models; `None` when the file is missing, empty, a link, a FIFO or another special
/// file, too big or not such a file.
pub fn read_usage_file(path: &Path) -> Option<Usage> {
    let bytes = crate::untrusted::read::head(path, USAGE_FILE_LIMIT).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let models = v.get("modelMetrics")?.as_object()?;
    let mut total: Option<Usage> = None;
    for m in models.values() {
        let keys = [
            "inputTokens",
            "outputTokens",
            "cacheReadTokens",
            "cacheWriteTokens",
        ];
        let u = m
            .get("usage")
            .map(|u| Usage::of_fields(u, keys))
            .unwrap_or_default();
        total = Some(total.unwrap_or_default().plus(&u));
    }
    total
}
