//! The manifest as written: one `#[derive(Deserialize)]` struct per table, whose fields are its
//! keys, each spelled once, here. Values are read with their byte spans ([`At`]) and are typed
//! broadly (integers as `i64`, durations and names as strings) so that a bad value is a problem
//! for `super::validate` to report alongside every other, not serde's stop; `super::read` reads
//! the document into these structs.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};

use super::resolve::RawResolve;
use crate::diagnostic::{Diagnostic, line_col};

/// A value and the byte range it was written at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct At<T> {
    pub(crate) value: T,
    pub(crate) span: Range<usize>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for At<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = toml::Spanned::<T>::deserialize(d)?;
        Ok(At {
            span: spanned.span(),
            value: spanned.into_inner(),
        })
    }
}

/// An argv array (`command`, `setup`, `check`, `select`). A plain string is read too (`None`),
/// so that it is reported with every other problem, with [`ARGV_HINT`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Argv(pub(crate) Option<Vec<At<String>>>);

impl<'de> Deserialize<'de> for Argv {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ArgvVisitor;
        impl<'de> Visitor<'de> for ArgvVisitor {
            type Value = Argv;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of strings")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Argv, E> {
                Ok(Argv(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Argv, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Argv(Some(items)))
            }
        }
        d.deserialize_any(ArgvVisitor)
    }
}

/// An enum the manifest spells by its serde name (`"task"`, `"ff-only"`).
pub(crate) trait Spelled: serde::de::DeserializeOwned {
    /// The variant spelled `s`, if any.
    fn parse(s: &str) -> Option<Self> {
        Self::deserialize(de::value::StrDeserializer::<de::value::Error>::new(s)).ok()
    }
}

/// The hint given when an argv key (an agent's `command`, `setup`, `check`...) is a string.
pub(crate) const ARGV_HINT: &str =
    "agents are argv arrays, never shell strings: command = [\"sh\", \"scripts/agent.sh\"]";

pub(crate) type Strings = Option<At<Vec<At<String>>>>;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawManifest {
    pub(crate) defaults: RawDefaults,
    pub(crate) agents: BTreeMap<String, RawAgent>,
    pub(crate) plan: Vec<At<RawPlan>>,
    pub(crate) slurm: RawSlurm,
    pub(crate) notify: Vec<At<RawNotify>>,
    /// The `[[host]]` machines of `executor = "ssh"` (`super::hosts`).
    pub(crate) host: Vec<At<super::hosts::RawHost>>,
    /// `[[repo]]`: the other repositories plans change (`super::repos`).
    pub(crate) repo: Vec<At<super::repos::RawRepo>>,
}

/// `[defaults]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawDefaults {
    pub(crate) target: Option<At<String>>,
    pub(crate) max_agents: Option<At<i64>>,
    pub(crate) agent: Option<At<String>>,
    pub(crate) timeout: Option<At<String>>,
    pub(crate) retries: Option<At<i64>>,
    pub(crate) verify: Strings,
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
    /// The most of one attempt's output its log keeps (`"32MiB"`).
    pub(crate) log_max: Option<At<String>>,
    pub(crate) setup: Option<At<Argv>>,
    pub(crate) copy: Strings,
    pub(crate) templates: Option<At<String>>,
    pub(crate) executor: Option<At<String>>,
    pub(crate) check: Option<At<Argv>>,
    pub(crate) budget: Option<At<String>>,
    pub(crate) remote: Option<At<String>>,
    pub(crate) ports: Option<At<i64>>,
    // The integration preview (`orch integrate`).
    pub(crate) integrate: Option<At<String>>,
    pub(crate) integrate_feedback: Option<At<bool>>,
    // The sandbox (`super::sandbox`).
    pub(crate) sandbox: Option<At<String>>,
    pub(crate) sandbox_write: Strings,
    pub(crate) sandbox_deny_read: Strings,
    /// Agent-socket variables let through (`super::sandbox`).
    pub(crate) pass_env: Strings,
    // The network (`super::network`).
    pub(crate) network: Option<At<String>>,
    pub(crate) network_allow: Strings,
    /// Protected paths (`super::protect`).
    pub(crate) protect: Strings,
    pub(crate) warm: Strings,
    /// Whether worktrees get their submodules checked out (`crate::git::sync_submodules`).
    pub(crate) submodules: Option<At<bool>>,
    // Best of N (`super::best_of`).
    pub(crate) attempts: Option<At<i64>>,
    pub(crate) agents: Strings,
    pub(crate) select: Option<At<Argv>>,
    pub(crate) attempts_stop: Option<At<String>>,
    // Resolution by agent (`super::resolve`).
    pub(crate) resolve: Option<At<RawResolve>>,
    pub(crate) resolve_verify: Option<At<bool>>,
    /// Run with every repository's candidate side by side (`super::repos`).
    pub(crate) verify_all: Strings,
    // The review loop of `orch pr --watch` (`super::review`).
    pub(crate) review_poll: Option<At<String>>,
    pub(crate) review_rounds: Option<At<i64>>,
    pub(crate) review_from: Strings,
    pub(crate) review_label: Option<At<String>>,
}

/// `[slurm]`, or a plan's `slurm = { … }` (where `poll`, the run's, is an unknown key).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawSlurm {
    pub(crate) partition: Option<At<String>>,
    pub(crate) account: Option<At<String>>,
    pub(crate) time_limit: Option<At<String>>,
    pub(crate) cpus: Option<At<i64>>,
    pub(crate) memory: Option<At<String>>,
    pub(crate) sbatch_args: Strings,
    /// Only in `[slurm]`: the longest wait between two queries of the job states.
    pub(crate) poll: Option<At<String>>,
}

/// `[agents.NAME]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawAgent {
    /// The table's name, where its key is (`super::read` sets it).
    #[serde(skip)]
    pub(crate) name: At<String>,
    pub(crate) command: Option<At<Argv>>,
    pub(crate) mode: Option<At<String>>,
    pub(crate) executor: Option<At<String>>,
    pub(crate) report: Option<At<String>>,
    // The sandbox (`super::sandbox`).
    pub(crate) sandbox: Option<At<String>>,
    pub(crate) sandbox_write: Strings,
    pub(crate) sandbox_deny_read: Strings,
    pub(crate) pass_env: Strings,
    // The network (`super::network`).
    pub(crate) network: Option<At<String>>,
    pub(crate) network_allow: Strings,
    pub(crate) stdin: Option<At<String>>,
    /// What it reads on stdin while it runs: `orch say`'s messages as lines (`"lines"`).
    pub(crate) input: Option<At<String>>,
    /// The agents its plans' pending tasks go to while it is at a usage limit.
    pub(crate) fallback: Strings,
    /// The `[[host]]` names its plans may use (`super::hosts`).
    pub(crate) hosts: Strings,
}

/// One `[[plan]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawPlan {
    pub(crate) name: Option<At<String>>,
    pub(crate) file: Option<At<String>>,
    pub(crate) priority: Option<At<i64>>,
    pub(crate) agent: Option<At<String>>,
    pub(crate) branch: Option<At<String>>,
    pub(crate) depends_on: Strings,
    pub(crate) parallel: Option<At<i64>>,
    pub(crate) parallel_tasks: Option<At<i64>>,
    pub(crate) timeout: Option<At<String>>,
    pub(crate) retries: Option<At<i64>>,
    pub(crate) setup: Option<At<Argv>>,
    pub(crate) copy: Strings,
    pub(crate) executor: Option<At<String>>,
    pub(crate) slurm: Option<RawSlurm>,
    pub(crate) check: Option<At<Argv>>,
    pub(crate) budget: Option<At<String>>,
    /// `paths`: the plan's sparse cone (directories).
    pub(crate) paths: Strings,
    /// Protected paths (`super::protect`).
    pub(crate) protect: Strings,
    pub(crate) warm: Strings,
    pub(crate) submodules: Option<At<bool>>,
    // Best of N (`super::best_of`).
    pub(crate) attempts: Option<At<i64>>,
    pub(crate) agents: Strings,
    pub(crate) select: Option<At<Argv>>,
    pub(crate) attempts_stop: Option<At<String>>,
    // Resolution by agent (`super::resolve`).
    pub(crate) resolve: Option<At<RawResolve>>,
    pub(crate) resolve_verify: Option<At<bool>>,
    /// The `[[host]]` names it may use (`super::hosts`).
    pub(crate) hosts: Strings,
    // Several repositories (`super::repos`).
    pub(crate) repo: Option<At<String>>,
    pub(crate) land_with: Strings,
    // The review loop of `orch pr --watch` (`super::review`).
    pub(crate) review_poll: Option<At<String>>,
    pub(crate) review_rounds: Option<At<i64>>,
    pub(crate) review_from: Strings,
    pub(crate) review_label: Option<At<String>>,
    /// Its own fallback agents (else its agent's `fallback`).
    pub(crate) fallback: Strings,
}

/// One `[[notify]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RawNotify {
    pub(crate) events: Strings,
    pub(crate) command: Option<At<Argv>>,
    pub(crate) webhook: Option<At<String>>,
    pub(crate) timeout: Option<At<String>>,
}

/// The best-of-N keys of `[defaults]` or of a plan (`super::best_of`).
pub(crate) struct RawBestOf<'a> {
    pub(crate) attempts: Option<&'a At<i64>>,
    pub(crate) agents: Option<&'a At<Vec<At<String>>>>,
    pub(crate) select: Option<&'a At<Argv>>,
    pub(crate) stop: Option<&'a At<String>>,
}

macro_rules! review_keys {
    ($($table:ty),*) => {$(
        impl $table {
            pub(crate) fn review(&self) -> super::review::RawReview<'_> {
                super::review::RawReview {
                    poll: self.review_poll.as_ref(),
                    rounds: self.review_rounds.as_ref(),
                    from: self.review_from.as_ref(),
                    label: self.review_label.as_ref(),
                }
            }
        }
    )*};
}

review_keys!(RawDefaults, RawPlan);

macro_rules! best_of {
    ($($table:ty),*) => {$(
        impl $table {
            pub(crate) fn best_of(&self) -> RawBestOf<'_> {
                RawBestOf {
                    attempts: self.attempts.as_ref(),
                    agents: self.agents.as_ref(),
                    select: self.select.as_ref(),
                    stop: self.attempts_stop.as_ref(),
                }
            }
        }
    )*};
}
best_of!(RawDefaults, RawPlan);

/// The keys of table `T`: its fields, as serde's derive names them.
pub(crate) fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    /// A deserializer that only asks for a struct's field names, carried back as the error.
    struct Fields;
    #[derive(Debug)]
    struct Names(&'static [&'static str]);
    impl fmt::Display for Names {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{:?}", self.0)
        }
    }
    impl std::error::Error for Names {}
    impl de::Error for Names {
        fn custom<M: fmt::Display>(_: M) -> Self {
            Names(&[])
        }
    }
    impl<'de> Deserializer<'de> for Fields {
        type Error = Names;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Names> {
            Err(Names(&[]))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Names> {
            Err(Names(fields))
        }
        forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    match T::deserialize(Fields) {
        Err(Names(fields)) => fields,
        Ok(_) => &[],
    }
}

/// The keys of `[defaults]`, `[agents.NAME]` and `[[plan]]` (`orch init` writes every one).
pub fn defaults_keys() -> &'static [&'static str] {
    fields_of::<RawDefaults>()
}

pub fn agent_keys() -> &'static [&'static str] {
    fields_of::<RawAgent>()
}

pub fn plan_keys() -> &'static [&'static str] {
    fields_of::<RawPlan>()
}

/// What is wrong with a value: a message, and a hint or none.
pub(crate) struct Bad {
    message: String,
    hint: Option<String>,
}

impl Bad {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            hint: None,
        }
    }

    pub(crate) fn hint(self, hint: impl Into<String>) -> Self {
        Self {
            hint: Some(hint.into()),
            ..self
        }
    }
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

    /// `check`'s reading of the value at `at`, if any; what is wrong with it is reported at
    /// the value.
    pub(crate) fn check<V, T>(
        &mut self,
        at: Option<&At<V>>,
        check: impl FnOnce(&V) -> Result<T, Bad>,
    ) -> Option<T> {
        let at = at?;
        check(&at.value).map_err(|bad| self.bad(&at.span, bad)).ok()
    }

    /// `check` over each entry of the list at `at`, if any: the good entries; what is wrong
    /// with another is reported at it.
    pub(crate) fn each<T>(
        &mut self,
        at: Option<&At<Vec<At<String>>>>,
        mut check: impl FnMut(&String) -> Result<T, Bad>,
    ) -> Option<Vec<T>> {
        let items = &at?.value;
        let good = items
            .iter()
            .filter_map(|item| self.check(Some(item), &mut check));
        Some(good.collect())
    }

    /// Reports what is wrong with the value at `span`.
    pub(crate) fn bad(&mut self, span: &Range<usize>, Bad { message, hint }: Bad) {
        let d = self.diagnostic(span, message);
        self.diagnostics.push(match hint {
            Some(hint) => d.with_hint(hint),
            None => d,
        });
    }

    /// [`Self::check`] into `slot`, which keeps its value where there is none or it is bad.
    pub(crate) fn set<V, T>(
        &mut self,
        slot: &mut T,
        at: Option<&At<V>>,
        check: impl FnOnce(&V) -> Result<T, Bad>,
    ) {
        if let Some(value) = self.check(at, check) {
            *slot = value;
        }
    }

    /// An argv key's items; a plain string is reported here, with [`ARGV_HINT`].
    pub(crate) fn argv<'v>(&mut self, ctx: &str, at: &'v At<Argv>) -> Option<&'v [At<String>]> {
        if at.value.0.is_none() {
            self.error_hint(
                &at.span,
                format!("`{ctx}` must be an array of strings, found a string"),
                ARGV_HINT,
            );
        }
        at.value.0.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_are_the_fields() {
        assert_eq!(
            fields_of::<RawNotify>(),
            ["events", "command", "webhook", "timeout"]
        );
        assert!(plan_keys().contains(&"depends_on"));
        assert!(defaults_keys().contains(&"resolve_verify"));
        assert!(agent_keys().contains(&"stdin"));
        assert!(
            !agent_keys().contains(&"name"),
            "set by the reader, not a key"
        );
    }
}
