//! The manifest, `plans.toml` (BRIEF §2): finding it, loading it, and validating every value with
//! `file:line:col` diagnostics.

mod agents;
mod best_of;
mod budget;
mod casefold;
mod client_commands;
mod command_words;
mod executor;
mod fallback;
mod hosts;
mod implicit_code;
mod limits;
mod load;
mod model;
mod names;
mod network;
mod notify;
mod obeyed;
mod own;
mod paths;
mod protect;
mod raw;
mod read;
mod repos;
mod resolve;
pub(crate) mod review;
mod sandbox;
mod services;
mod spans;
mod targets;
mod telemetry;
mod trusted;
mod validate;
mod values;

#[cfg(test)]
mod tests;

pub(crate) use crate::duration::{format_duration, parse_duration};
pub use agents::KnownCli;
pub use agents::ReportMode;
#[cfg(test)]
pub(crate) use agents::TEMPLATE_VARS;
pub use agents::presets;
pub use agents::render_template;
pub(crate) use agents::{
    AgentMode, AgentSpec, StateHome, TemplatePart, confined_variant, parse_template,
    preset_with_rules, streaming_variant,
};
pub(crate) use agents::{CLAUDE_CONFINED, CLAUDE_CONFINED_STREAMING, CLAUDE_PRESET, CODEX_PRESET};
pub use agents::{InputMode, StdinMode};
pub(crate) use best_of::{AttemptsStop, BestOf};
pub(crate) use budget::Budget;
pub(crate) use casefold::{
    at_or_below, fold, names as names_component, same as same_name, stored_path,
    strip_prefix as strip_prefix_folded,
};
pub(crate) use command_words::{repo_path_of, unknown_grammar_words};
pub(crate) use executor::{ExecutorKind, SlurmOptions};
#[cfg(test)]
pub(crate) use hosts::DEFAULT_HOST_DIR;
pub(crate) use implicit_code::{
    Kind, Loaded, MAX_NAMES, MAX_READ, View, anywhere_patterns, is_pattern, loaded as loaded_by,
    pattern_at_or_above, pattern_covers,
};
pub(crate) use limits::{Limits, shown as shown_size};
pub use load::parse_str;
pub(crate) use load::{MANIFEST_NAME, ManifestError, find_manifest, load};
pub(crate) use model::Host;
pub(crate) use model::ResolveWith;
pub(crate) use model::{
    Defaults, DepTarget, Dependency, LOG_MAX_DEFAULT, Manifest, MergeStrategy, PlanEntry,
    PlanFormat, SizeLimits, Warm,
};
#[cfg(test)]
pub(crate) use names::is_valid_ref_name;
pub(crate) use names::{check_plan_name, check_ref_name};
pub(crate) use network::NetworkMode;
pub(crate) use notify::NotifyHook;
pub(crate) use own::{
    OWN_IGNORE, OWN_TOP_SLASH, own_dirs_of, own_path, wildcard_match, worktree_include,
};
pub(crate) use paths::in_cone;
pub(crate) use protect::Protect;
pub use raw::{agent_keys, defaults_keys, plan_keys};
pub(crate) use repos::{HOME as HOME_REPO, env_var as repo_env_var, repo_name};
pub(crate) use sandbox::{SandboxKeys, SandboxMode, expand as expand_home};
pub(crate) use services::{PORT_PLACEHOLDER, Service, ServiceRun};
pub(crate) use spans::Spelled;
pub(crate) use targets::{PlanShape, check_targets};
pub(crate) use telemetry::{OtlpProtocol, TelemetryTable, check_endpoint, check_header};
pub(crate) use trusted::{Gate, Guarded, WORKTREE_INCLUDE, ancestors, files_of};
