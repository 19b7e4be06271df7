//! The manifest, `plans.toml` (BRIEF §2): finding it, loading it, and validating every value with
//! `file:line:col` diagnostics.

mod agents;
mod best_of;
mod budget;
mod executor;
mod load;
mod model;
mod names;
mod notify;
mod paths;
mod protect;
mod raw;
mod resolve;
mod sandbox;
mod targets;
mod validate;
mod values;

#[cfg(test)]
mod tests;

pub use crate::duration::{format_duration, parse_duration};
pub use agents::{
    AgentMode, AgentSpec, ArgvProblem, CLAUDE_CONFINED, CLAUDE_PRESET, CODEX_CONFINED,
    CODEX_PRESET, GEMINI_CONFINED, KnownCli, PrivateState, ReportMode, StateHome, StdinMode,
    TEMPLATE_VARS, TemplatePart, confined_variant, parse_template, preset_with_rules, presets,
    render_template,
};
pub use best_of::{AttemptsStop, BestOf};
pub use budget::{Budget, parse_budget};
pub use executor::{ExecutorKind, SlurmOptions, check_sbatch_arg};
pub use load::{MANIFEST_NAME, ManifestError, find_manifest, load, parse_str};
pub use model::{
    Defaults, DepTarget, Dependency, Manifest, MergeStrategy, PlanEntry, Warm, parse_dependency,
};
pub use names::{MAX_PLAN_NAME_LEN, check_plan_name, check_ref_name, is_valid_ref_name};
pub use notify::{CHATTY_EVENTS, DEFAULT_NOTIFY_TIMEOUT, NOTIFY_EVENTS, NOTIFY_KEYS, NotifyHook};
pub use paths::{PlanPath, in_cone};
pub use protect::{Guarded, Protect};
pub use raw::{AGENT_KEYS, DEFAULTS_KEYS, PLAN_KEYS, TOP_KEYS};
pub use resolve::ResolveWith;
pub use sandbox::{DEFAULT_DENY_READ, Sandbox, SandboxKeys, SandboxMode, expand as expand_home};
pub use targets::{PlanShape, check_cycles, check_targets};
