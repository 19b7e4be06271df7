//! A value of the manifest with the byte span it was written at ([`At`]), the broad types the
//! tables as written are made of (an argv array, a list of strings, an enum spelled by its serde
//! name, a table's keys), and how a problem with a value is told at its place ([`Bad`],
//! [`Reporter`]). Below every table and every check: it knows none of them.

use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};

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
