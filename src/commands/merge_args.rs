//! What `orch merge` is asked: read by the merge of the home repository's plans ([`super::merge`])
//! and by the landing of plans of several repositories together ([`super::land`]).

use crate::manifest::MergeStrategy;

pub(crate) struct MergeArgs {
    /// Plan names; empty = every finished plan that is not merged yet.
    pub(crate) plans: Vec<String>,
    pub(crate) dry_run: bool,
    pub(crate) json: bool,
    /// Overrides `defaults.merge_strategy`.
    pub(crate) strategy: Option<MergeStrategy>,
    pub(crate) stop_on_failure: bool,
    /// Lands a plan that changes what a later run trusts where its `allow_protected` does not
    /// allow it.
    pub(crate) allow_protected: bool,
}
