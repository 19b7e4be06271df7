//! The manifest as written: values with their byte spans, read from toml's spanned document tree.
//!
//! Walking [`toml::de::DeTable`] by hand (rather than `#[serde(deny_unknown_fields)]`) lets the
//! loader report every unknown key and every wrong type in one pass, each at its own span.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diagnostic::{Diagnostic, line_col};

/// A value and the byte range it was written at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct At<T> {
    pub(crate) value: T,
    pub(crate) span: Range<usize>,
}

#[derive(Debug, Default)]
pub(crate) struct RawDefaults {
    pub(crate) target: Option<At<String>>,
    pub(crate) max_agents: Option<At<i64>>,
    pub(crate) agent: Option<At<String>>,
    pub(crate) timeout: Option<At<String>>,
    pub(crate) retries: Option<At<i64>>,
    pub(crate) verify: Option<At<Vec<At<String>>>>,
    pub(crate) merge_strategy: Option<At<String>>,
    pub(crate) auto_merge: Option<At<bool>>,
    pub(crate) worktree_root: Option<At<String>>,
    pub(crate) state_dir: Option<At<String>>,
    pub(crate) branch_prefix: Option<At<String>>,
    pub(crate) parallel: Option<At<i64>>,
    pub(crate) parallel_tasks: Option<At<i64>>,
    pub(crate) stuck_after: Option<At<String>>,
    pub(crate) grace: Option<At<String>>,
    pub(crate) backoff: Option<At<String>>,
    pub(crate) log_dir: Option<At<String>>,
    pub(crate) setup: Option<At<Vec<At<String>>>>,
    pub(crate) copy: Option<At<Vec<At<String>>>>,
    pub(crate) templates: Option<At<String>>,
    pub(crate) executor: Option<At<String>>,
    pub(crate) check: Option<At<Vec<At<String>>>>,
    pub(crate) budget: Option<At<String>>,
    pub(crate) remote: Option<At<String>>,
    pub(crate) ports: Option<At<i64>>,
    // The integration preview (`orch integrate`).
    pub(crate) integrate: Option<At<String>>,
    pub(crate) integrate_feedback: Option<At<bool>>,
    // The sandbox (`super::sandbox`).
    pub(crate) sandbox: Option<At<String>>,
    pub(crate) sandbox_write: Option<At<Vec<At<String>>>>,
    pub(crate) sandbox_deny_read: Option<At<Vec<At<String>>>>,
    /// Agent-socket variables let through (`super::sandbox`).
    pub(crate) pass_env: Option<At<Vec<At<String>>>>,
    /// Protected paths (`super::protect`).
    pub(crate) protect: Option<At<Vec<At<String>>>>,
    pub(crate) warm: Option<At<Vec<At<String>>>>,
    /// Whether worktrees get their submodules checked out (`crate::git::sync_submodules`).
    pub(crate) submodules: Option<At<bool>>,
    /// Best of N (`super::best_of`).
    pub(crate) best_of: super::best_of::RawBestOf,
    /// Resolution by agent (`super::resolve`).
    pub(crate) resolve: Option<At<super::resolve::RawResolve>>,
    pub(crate) resolve_verify: Option<At<bool>>,
}

/// A `[slurm]` table, or a plan's `slurm = { … }`.
#[derive(Debug, Default)]
pub(crate) struct RawSlurm {
    pub(crate) partition: Option<At<String>>,
    pub(crate) account: Option<At<String>>,
    pub(crate) time_limit: Option<At<String>>,
    pub(crate) cpus: Option<At<i64>>,
    pub(crate) memory: Option<At<String>>,
    pub(crate) sbatch_args: Option<At<Vec<At<String>>>>,
    /// Only in `[slurm]`: the longest wait between two queries of the job states.
    pub(crate) poll: Option<At<String>>,
}

#[derive(Debug)]
pub(crate) struct RawAgent {
    pub(crate) name: At<String>,
    pub(crate) command: Option<At<Vec<At<String>>>>,
    pub(crate) mode: Option<At<String>>,
    pub(crate) executor: Option<At<String>>,
    pub(crate) report: Option<At<String>>,
    // The sandbox (`super::sandbox`).
    pub(crate) sandbox: Option<At<String>>,
    pub(crate) sandbox_write: Option<At<Vec<At<String>>>>,
    pub(crate) sandbox_deny_read: Option<At<Vec<At<String>>>>,
    pub(crate) pass_env: Option<At<Vec<At<String>>>>,
    pub(crate) stdin: Option<At<String>>,
    /// Every key written, even those whose value was rejected.
    pub(crate) keys: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct RawPlan {
    /// Where the entry is: its `[[plan]]` table.
    pub(crate) span: Range<usize>,
    pub(crate) name: Option<At<String>>,
    pub(crate) file: Option<At<String>>,
    pub(crate) priority: Option<At<i64>>,
    pub(crate) agent: Option<At<String>>,
    pub(crate) branch: Option<At<String>>,
    pub(crate) depends_on: Option<At<Vec<At<String>>>>,
    pub(crate) parallel: Option<At<i64>>,
    pub(crate) parallel_tasks: Option<At<i64>>,
    pub(crate) timeout: Option<At<String>>,
    pub(crate) retries: Option<At<i64>>,
    pub(crate) setup: Option<At<Vec<At<String>>>>,
    pub(crate) copy: Option<At<Vec<At<String>>>>,
    pub(crate) executor: Option<At<String>>,
    pub(crate) slurm: Option<RawSlurm>,
    pub(crate) check: Option<At<Vec<At<String>>>>,
    pub(crate) budget: Option<At<String>>,
    /// `paths`: the plan's sparse cone (directories).
    pub(crate) paths: Option<At<Vec<At<String>>>>,
    /// Protected paths (`super::protect`).
    pub(crate) protect: Option<At<Vec<At<String>>>>,
    pub(crate) warm: Option<At<Vec<At<String>>>>,
    pub(crate) submodules: Option<At<bool>>,
    /// Best of N (`super::best_of`).
    pub(crate) best_of: super::best_of::RawBestOf,
    /// Resolution by agent (`super::resolve`).
    pub(crate) resolve: Option<At<super::resolve::RawResolve>>,
    pub(crate) resolve_verify: Option<At<bool>>,
    /// Every key written, even those whose value was rejected (so it is not also "missing").
    pub(crate) keys: Vec<String>,
}

#[derive(Debug, Default)]
pub(crate) struct RawManifest {
    pub(crate) defaults: RawDefaults,
    pub(crate) agents: Vec<RawAgent>,
    pub(crate) plans: Vec<RawPlan>,
    pub(crate) slurm: RawSlurm,
    /// The `[[notify]]` tables, checked while read.
    pub(crate) notify: Vec<super::notify::NotifyHook>,
}

/// Collects diagnostics with locations for one manifest text.
pub(crate) struct Reporter<'a> {
    pub(crate) path: &'a Path,
    pub(crate) text: &'a str,
    pub(crate) diagnostics: Vec<Diagnostic>,
}

impl<'a> Reporter<'a> {
    pub(crate) fn new(path: &'a Path, text: &'a str) -> Self {
        Self {
            path,
            text,
            diagnostics: Vec::new(),
        }
    }

    pub(crate) fn line_col(&self, span: &Range<usize>) -> (usize, usize) {
        line_col(self.text, span.start)
    }

    pub(crate) fn diagnostic(&self, span: &Range<usize>, message: impl Into<String>) -> Diagnostic {
        let (line, col) = self.line_col(span);
        Diagnostic::error(self.path, line, message).with_column(col)
    }

    pub(crate) fn error(&mut self, span: &Range<usize>, message: impl Into<String>) {
        let d = self.diagnostic(span, message);
        self.diagnostics.push(d);
    }

    pub(crate) fn warning_hint(
        &mut self,
        span: &Range<usize>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let (line, col) = self.line_col(span);
        let d = Diagnostic::warning(self.path, line, message)
            .with_column(col)
            .with_hint(hint);
        self.diagnostics.push(d);
    }

    pub(crate) fn error_hint(
        &mut self,
        span: &Range<usize>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let d = self.diagnostic(span, message).with_hint(hint);
        self.diagnostics.push(d);
    }
}

/// The keys of each table, as known to the reader (`orch init` writes every one of them).
pub(crate) const TOP_KEYS: &[&str] = &["defaults", "agents", "plan", "slurm", "notify"];
pub const DEFAULTS_KEYS: &[&str] = &[
    "target",
    "max_agents",
    "agent",
    "timeout",
    "retries",
    "verify",
    "merge_strategy",
    "auto_merge",
    "worktree_root",
    "state_dir",
    "branch_prefix",
    "parallel",
    "parallel_tasks",
    "stuck_after",
    "grace",
    "backoff",
    "log_dir",
    "setup",
    "copy",
    "templates",
    "executor",
    "check",
    "budget",
    "remote",
    "ports",
    "integrate",
    "integrate_feedback",
    "sandbox",
    "sandbox_write",
    "sandbox_deny_read",
    "pass_env",
    "protect",
    "warm",
    "submodules",
    "attempts",
    "agents",
    "select",
    "attempts_stop",
    "resolve",
    "resolve_verify",
];
pub const AGENT_KEYS: &[&str] = &[
    "command",
    "mode",
    "executor",
    "report",
    "sandbox",
    "sandbox_write",
    "sandbox_deny_read",
    "pass_env",
    "stdin",
];
pub(crate) const SLURM_KEYS: &[&str] = &[
    "partition",
    "account",
    "time_limit",
    "cpus",
    "memory",
    "sbatch_args",
    "poll",
];
/// A plan's `slurm` table overrides these (the poll interval is the run's).
pub(crate) const PLAN_SLURM_KEYS: &[&str] = &[
    "partition",
    "account",
    "time_limit",
    "cpus",
    "memory",
    "sbatch_args",
];
pub const PLAN_KEYS: &[&str] = &[
    "name",
    "file",
    "priority",
    "agent",
    "branch",
    "depends_on",
    "parallel",
    "parallel_tasks",
    "timeout",
    "retries",
    "setup",
    "copy",
    "executor",
    "slurm",
    "check",
    "budget",
    "paths",
    "protect",
    "warm",
    "submodules",
    "attempts",
    "agents",
    "select",
    "attempts_stop",
    "resolve",
    "resolve_verify",
];

/// The hint given when an agent `command` is a string.
pub(crate) const ARGV_HINT: &str =
    "agents are argv arrays, never shell strings: command = [\"sh\", \"scripts/agent.sh\"]";

/// Reads the document tree into [`RawManifest`], reporting unknown keys and wrong types.
pub(crate) fn read(doc: &DeTable<'_>, r: &mut Reporter<'_>) -> RawManifest {
    let mut raw = RawManifest::default();
    for (key, value) in doc.iter() {
        match key.get_ref().as_ref() {
            "defaults" => {
                if let Some(table) = expect_table(r, "defaults", value) {
                    raw.defaults = read_defaults(table, r);
                }
            }
            "agents" => {
                if let Some(table) = expect_table(r, "agents", value) {
                    raw.agents = read_agents(table, r);
                }
            }
            "plan" => raw.plans = read_plans(value, r),
            "notify" => raw.notify = super::notify::read_notify(value, r),
            "slurm" => {
                if let Some(table) = expect_table(r, "slurm", value) {
                    raw.slurm = read_slurm(table, r, "slurm", SLURM_KEYS);
                }
            }
            other => unknown_key(r, key, other, "at the top level", TOP_KEYS),
        }
    }
    raw
}

fn read_defaults(table: &DeTable<'_>, r: &mut Reporter<'_>) -> RawDefaults {
    let mut d = RawDefaults::default();
    for (key, value) in table.iter() {
        let name = key.get_ref().as_ref();
        let ctx = format!("defaults.{name}");
        match name {
            "target" => d.target = string(r, &ctx, value),
            "max_agents" => d.max_agents = integer(r, &ctx, value),
            "agent" => d.agent = string(r, &ctx, value),
            "timeout" => d.timeout = string(r, &ctx, value),
            "retries" => d.retries = integer(r, &ctx, value),
            "verify" => d.verify = string_array(r, &ctx, value, None),
            "merge_strategy" => d.merge_strategy = string(r, &ctx, value),
            "auto_merge" => d.auto_merge = boolean(r, &ctx, value),
            "worktree_root" => d.worktree_root = string(r, &ctx, value),
            "state_dir" => d.state_dir = string(r, &ctx, value),
            "branch_prefix" => d.branch_prefix = string(r, &ctx, value),
            "parallel" => d.parallel = integer(r, &ctx, value),
            "parallel_tasks" => d.parallel_tasks = integer(r, &ctx, value),
            "stuck_after" => d.stuck_after = string(r, &ctx, value),
            "grace" => d.grace = string(r, &ctx, value),
            "backoff" => d.backoff = string(r, &ctx, value),
            "log_dir" => d.log_dir = string(r, &ctx, value),
            "setup" => d.setup = string_array(r, &ctx, value, Some(ARGV_HINT)),
            "copy" => d.copy = string_list(r, &ctx, value),
            "templates" => d.templates = string(r, &ctx, value),
            "executor" => d.executor = string(r, &ctx, value),
            "check" => d.check = string_array(r, &ctx, value, Some(ARGV_HINT)),
            "budget" => d.budget = string(r, &ctx, value),
            "remote" => d.remote = string(r, &ctx, value),
            "ports" => d.ports = integer(r, &ctx, value),
            "integrate" => d.integrate = string(r, &ctx, value),
            "integrate_feedback" => d.integrate_feedback = boolean(r, &ctx, value),
            "sandbox" => d.sandbox = string(r, &ctx, value),
            "sandbox_write" => d.sandbox_write = string_list(r, &ctx, value),
            "sandbox_deny_read" => d.sandbox_deny_read = string_list(r, &ctx, value),
            "pass_env" => d.pass_env = string_list(r, &ctx, value),
            "protect" => d.protect = string_list(r, &ctx, value),
            "warm" => d.warm = string_list(r, &ctx, value),
            "submodules" => d.submodules = boolean(r, &ctx, value),
            "attempts" => d.best_of.attempts = integer(r, &ctx, value),
            "agents" => d.best_of.agents = string_list(r, &ctx, value),
            "select" => d.best_of.select = string_list(r, &ctx, value),
            "attempts_stop" => d.best_of.stop = string(r, &ctx, value),
            "resolve" => d.resolve = super::resolve::read(r, &ctx, value),
            "resolve_verify" => d.resolve_verify = boolean(r, &ctx, value),
            other => unknown_key(r, key, other, "in `[defaults]`", DEFAULTS_KEYS),
        }
    }
    d
}

fn read_agents(table: &DeTable<'_>, r: &mut Reporter<'_>) -> Vec<RawAgent> {
    let mut agents = Vec::new();
    for (key, value) in table.iter() {
        let agent_name = key.get_ref().to_string();
        let ctx = format!("agents.{agent_name}");
        let DeValue::Table(t) = value.get_ref() else {
            r.error_hint(
                &value.span(),
                format!(
                    "`{ctx}` must be a table, found {}",
                    type_name(value.get_ref())
                ),
                format!("write `[agents.{agent_name}]` followed by `command = [...]`"),
            );
            continue;
        };
        let mut agent = RawAgent {
            name: At {
                value: agent_name,
                span: key.span(),
            },
            command: None,
            mode: None,
            executor: None,
            report: None,
            sandbox: None,
            sandbox_write: None,
            sandbox_deny_read: None,
            pass_env: None,
            stdin: None,
            keys: Vec::new(),
        };
        for (k, v) in t.iter() {
            let name = k.get_ref().as_ref();
            agent.keys.push(name.to_string());
            let key_ctx = format!("{ctx}.{name}");
            match name {
                "command" => agent.command = string_array(r, &key_ctx, v, Some(ARGV_HINT)),
                "mode" => agent.mode = string(r, &key_ctx, v),
                "executor" => agent.executor = string(r, &key_ctx, v),
                "report" => agent.report = string(r, &key_ctx, v),
                "sandbox" => agent.sandbox = string(r, &key_ctx, v),
                "sandbox_write" => agent.sandbox_write = string_list(r, &key_ctx, v),
                "sandbox_deny_read" => agent.sandbox_deny_read = string_list(r, &key_ctx, v),
                "pass_env" => agent.pass_env = string_list(r, &key_ctx, v),
                "stdin" => agent.stdin = string(r, &key_ctx, v),
                other => unknown_key(r, k, other, &format!("in `[{ctx}]`"), AGENT_KEYS),
            }
        }
        agents.push(agent);
    }
    agents
}

fn read_plans(value: &Spanned<DeValue<'_>>, r: &mut Reporter<'_>) -> Vec<RawPlan> {
    let DeValue::Array(items) = value.get_ref() else {
        r.error_hint(
            &value.span(),
            format!(
                "`plan` must be an array of tables, found {}",
                type_name(value.get_ref())
            ),
            "write each plan as a `[[plan]]` table",
        );
        return Vec::new();
    };
    let mut plans = Vec::new();
    for item in items.iter() {
        let DeValue::Table(t) = item.get_ref() else {
            r.error_hint(
                &item.span(),
                format!(
                    "each `plan` entry must be a table, found {}",
                    type_name(item.get_ref())
                ),
                "write each plan as a `[[plan]]` table",
            );
            continue;
        };
        let mut plan = RawPlan {
            span: item.span(),
            name: None,
            file: None,
            priority: None,
            agent: None,
            branch: None,
            depends_on: None,
            parallel: None,
            parallel_tasks: None,
            timeout: None,
            retries: None,
            setup: None,
            copy: None,
            executor: None,
            slurm: None,
            check: None,
            budget: None,
            paths: None,
            protect: None,
            warm: None,
            submodules: None,
            best_of: Default::default(),
            resolve: None,
            resolve_verify: None,
            keys: Vec::new(),
        };
        for (k, v) in t.iter() {
            let name = k.get_ref().as_ref();
            plan.keys.push(name.to_string());
            let ctx = format!("plan.{name}");
            match name {
                "name" => plan.name = string(r, &ctx, v),
                "file" => plan.file = string(r, &ctx, v),
                "priority" => plan.priority = integer(r, &ctx, v),
                "agent" => plan.agent = string(r, &ctx, v),
                "branch" => plan.branch = string(r, &ctx, v),
                "depends_on" => plan.depends_on = string_array(r, &ctx, v, None),
                "parallel" => plan.parallel = integer(r, &ctx, v),
                "parallel_tasks" => plan.parallel_tasks = integer(r, &ctx, v),
                "timeout" => plan.timeout = string(r, &ctx, v),
                "retries" => plan.retries = integer(r, &ctx, v),
                "setup" => plan.setup = string_array(r, &ctx, v, Some(ARGV_HINT)),
                "copy" => plan.copy = string_list(r, &ctx, v),
                "executor" => plan.executor = string(r, &ctx, v),
                "check" => plan.check = string_array(r, &ctx, v, Some(ARGV_HINT)),
                "budget" => plan.budget = string(r, &ctx, v),
                "paths" => plan.paths = string_array(r, &ctx, v, None),
                "protect" => plan.protect = string_list(r, &ctx, v),
                "warm" => plan.warm = string_list(r, &ctx, v),
                "submodules" => plan.submodules = boolean(r, &ctx, v),
                "attempts" => plan.best_of.attempts = integer(r, &ctx, v),
                "agents" => plan.best_of.agents = string_list(r, &ctx, v),
                "select" => plan.best_of.select = string_list(r, &ctx, v),
                "attempts_stop" => plan.best_of.stop = string(r, &ctx, v),
                "resolve" => plan.resolve = super::resolve::read(r, &ctx, v),
                "resolve_verify" => plan.resolve_verify = boolean(r, &ctx, v),
                "slurm" => {
                    if let Some(table) = expect_table(r, "plan.slurm", v) {
                        plan.slurm = Some(read_slurm(table, r, "plan.slurm", PLAN_SLURM_KEYS));
                    }
                }
                other => unknown_key(r, k, other, "in `[[plan]]`", PLAN_KEYS),
            }
        }
        plans.push(plan);
    }
    plans
}

fn read_slurm(table: &DeTable<'_>, r: &mut Reporter<'_>, ctx: &str, known: &[&str]) -> RawSlurm {
    let mut s = RawSlurm::default();
    for (key, value) in table.iter() {
        let name = key.get_ref().as_ref();
        let key_ctx = format!("{ctx}.{name}");
        match name {
            "partition" => s.partition = string(r, &key_ctx, value),
            "account" => s.account = string(r, &key_ctx, value),
            "time_limit" => s.time_limit = string(r, &key_ctx, value),
            "cpus" => s.cpus = integer(r, &key_ctx, value),
            "memory" => s.memory = string(r, &key_ctx, value),
            "sbatch_args" => s.sbatch_args = string_list(r, &key_ctx, value),
            "poll" if known.contains(&"poll") => s.poll = string(r, &key_ctx, value),
            other => unknown_key(r, key, other, &format!("in `{ctx}`"), known),
        }
    }
    s
}

pub(super) fn unknown_key(
    r: &mut Reporter<'_>,
    key: &Spanned<std::borrow::Cow<'_, str>>,
    name: &str,
    place: &str,
    known: &[&str],
) {
    let message = format!("unknown key `{name}` {place}");
    let hint = match closest(name, known) {
        Some(best) => format!("did you mean `{best}`?"),
        None => format!(
            "known keys: {}",
            known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    r.error_hint(&key.span(), message, hint);
}

/// The known key nearest to `name` by edit distance, if near enough to be a typo.
fn closest<'k>(name: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(name, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            let v = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            cur.push(v);
        }
        prev = cur;
    }
    prev[b.len()]
}

pub(crate) fn type_name(v: &DeValue<'_>) -> &'static str {
    match v {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

pub(super) fn expect_table<'v, 'i>(
    r: &mut Reporter<'_>,
    ctx: &str,
    value: &'v Spanned<DeValue<'i>>,
) -> Option<&'v DeTable<'i>> {
    match value.get_ref() {
        DeValue::Table(t) => Some(t),
        other => {
            r.error(
                &value.span(),
                format!("`{ctx}` must be a table, found {}", type_name(other)),
            );
            None
        }
    }
}

pub(super) fn string(
    r: &mut Reporter<'_>,
    ctx: &str,
    value: &Spanned<DeValue<'_>>,
) -> Option<At<String>> {
    match value.get_ref() {
        DeValue::String(s) => Some(At {
            value: s.to_string(),
            span: value.span(),
        }),
        other => {
            r.error(
                &value.span(),
                format!("`{ctx}` must be a string, found {}", type_name(other)),
            );
            None
        }
    }
}

fn boolean(r: &mut Reporter<'_>, ctx: &str, value: &Spanned<DeValue<'_>>) -> Option<At<bool>> {
    match value.get_ref() {
        DeValue::Boolean(b) => Some(At {
            value: *b,
            span: value.span(),
        }),
        other => {
            r.error(
                &value.span(),
                format!("`{ctx}` must be true or false, found {}", type_name(other)),
            );
            None
        }
    }
}

fn integer(r: &mut Reporter<'_>, ctx: &str, value: &Spanned<DeValue<'_>>) -> Option<At<i64>> {
    match value.get_ref() {
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => Some(At {
                value: n,
                span: value.span(),
            }),
            Err(_) => {
                r.error(&value.span(), format!("`{ctx}` is out of range"));
                None
            }
        },
        other => {
            r.error(
                &value.span(),
                format!("`{ctx}` must be an integer, found {}", type_name(other)),
            );
            None
        }
    }
}

/// An array of strings that may be empty (`copy = []`).
fn string_list(
    r: &mut Reporter<'_>,
    ctx: &str,
    value: &Spanned<DeValue<'_>>,
) -> Option<At<Vec<At<String>>>> {
    string_array(r, ctx, value, None)
}

/// A non-empty array of strings; `string_hint` is the hint given when a plain string was written.
pub(super) fn string_array(
    r: &mut Reporter<'_>,
    ctx: &str,
    value: &Spanned<DeValue<'_>>,
    string_hint: Option<&str>,
) -> Option<At<Vec<At<String>>>> {
    let items = match value.get_ref() {
        DeValue::Array(items) => items,
        other => {
            let message = format!(
                "`{ctx}` must be an array of strings, found {}",
                type_name(other)
            );
            match (other, string_hint) {
                (DeValue::String(_), Some(hint)) => r.error_hint(&value.span(), message, hint),
                _ => r.error(&value.span(), message),
            }
            return None;
        }
    };
    let mut out = Vec::new();
    let mut ok = true;
    for item in items.iter() {
        match item.get_ref() {
            DeValue::String(s) => out.push(At {
                value: s.to_string(),
                span: item.span(),
            }),
            other => {
                r.error(
                    &item.span(),
                    format!(
                        "`{ctx}` must be an array of strings, but this element is {}",
                        type_name(other)
                    ),
                );
                ok = false;
            }
        }
    }
    ok.then_some(At {
        value: out,
        span: value.span(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_key() {
        assert_eq!(closest("nmae", PLAN_KEYS), Some("name"));
        assert_eq!(closest("depends", PLAN_KEYS), Some("depends_on"));
        assert_eq!(closest("zzzzzzzz", PLAN_KEYS), None);
    }
}
