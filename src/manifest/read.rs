//! Reading the parsed document into [`RawManifest`] by serde, as cargo-nextest reads its
//! configuration: unknown keys collected by `serde_ignored` (all of them, each at its key with
//! a "did you mean"), a value of the wrong type reported alone (serde stops there) with its key
//! and the type expected. The document's spanned tree (`toml::de::DeTable`) names the places.

use std::ops::Range;

use serde_ignored::Path as IgnoredPath;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::raw::{RawManifest, RawNotify, RawSlurm, agent_keys, defaults_keys, plan_keys};
use super::spans::{Reporter, fields_of};

/// One step of a path into the document: a key, or an index in an array.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Reads `doc`; `None` when a value had the wrong type (reported in `r`).
pub(crate) fn read(doc: Spanned<DeTable<'_>>, r: &mut Reporter<'_>) -> Option<RawManifest> {
    let mut unknown: Vec<Vec<Step>> = Vec::new();
    let de = toml::de::Deserializer::from(doc.clone());
    let read = serde_ignored::deserialize(de, |path| unknown.push(steps(&path)));
    let mut raw: RawManifest = match read {
        Ok(raw) => raw,
        Err(e) => {
            wrong_type(doc.get_ref(), &e, r);
            return None;
        }
    };
    // `poll` is the run's: a plan's `slurm` table does not know it.
    for (i, plan) in raw.plan.iter_mut().enumerate() {
        if let Some(slurm) = plan.value.slurm.as_mut()
            && slurm.poll.take().is_some()
        {
            let key = |k: &str| Step::Key(k.to_string());
            unknown.push(vec![key("plan"), Step::Index(i), key("slurm"), key("poll")]);
        }
    }
    for path in unknown {
        unknown_key(doc.get_ref(), &path, r);
    }
    if let Some(DeValue::Table(agents)) = doc.get_ref().get("agents").map(|v| v.get_ref()) {
        for (key, _) in agents.iter() {
            if let Some(agent) = raw.agents.get_mut(key.get_ref().as_ref()) {
                agent.name.value = key.get_ref().to_string();
                agent.name.span = key.span();
            }
        }
    }
    Some(raw)
}

/// `serde_ignored`'s path as steps into the document (`Some` and newtypes are not steps).
fn steps(path: &IgnoredPath<'_>) -> Vec<Step> {
    let mut out = match path {
        IgnoredPath::Root => return Vec::new(),
        IgnoredPath::Seq { parent, .. }
        | IgnoredPath::Map { parent, .. }
        | IgnoredPath::Some { parent }
        | IgnoredPath::NewtypeStruct { parent }
        | IgnoredPath::NewtypeVariant { parent } => steps(parent),
    };
    match path {
        IgnoredPath::Seq { index, .. } => out.push(Step::Index(*index)),
        IgnoredPath::Map { key, .. } => out.push(Step::Key(key.clone())),
        _ => {}
    }
    out
}

/// Where `path` leads in the document: the keys of the tables it crosses and the span of its
/// last step (a key, or an element). A key the document does not have (the inner one of a
/// value read with its span) is passed over.
fn find(doc: &DeTable<'_>, path: &[Step]) -> Option<(Vec<String>, Range<usize>)> {
    let mut keys = Vec::new();
    let mut table = Some(doc);
    let mut items: &[Spanned<DeValue<'_>>] = &[];
    let mut at = None;
    for step in path {
        let value = match step {
            Step::Key(k) => match table?.get_key_value(k.as_str()) {
                Some((key, value)) => {
                    keys.push(k.clone());
                    at = Some(key.span());
                    value
                }
                None => continue,
            },
            Step::Index(i) => {
                let item = items.get(*i)?;
                at = Some(item.span());
                item
            }
        };
        let none: &[Spanned<DeValue<'_>>] = &[];
        (table, items) = match value.get_ref() {
            DeValue::Table(t) => (Some(t), none),
            DeValue::Array(a) => (None, &a[..]),
            _ => (None, none),
        };
    }
    Some((keys, at?))
}

/// Reports the unknown key at `path`, with the keys its table knows.
fn unknown_key(doc: &DeTable<'_>, path: &[Step], r: &mut Reporter<'_>) {
    // A key whose place the document cannot give is still reported, at the file's start.
    let (keys, span) = find(doc, path).unwrap_or_else(|| {
        let keys = path.iter().filter_map(|s| match s {
            Step::Key(k) => Some(k.clone()),
            Step::Index(_) => None,
        });
        (keys.collect(), 0..0)
    });
    let Some((name, table)) = keys.split_last() else {
        return;
    };
    let table: Vec<&str> = table.iter().map(String::as_str).collect();
    let (place, known) = match table[..] {
        [] => ("at the top level".to_string(), fields_of::<RawManifest>()),
        ["defaults"] => ("in `[defaults]`".into(), defaults_keys()),
        ["agents", agent] => (format!("in `[agents.{agent}]`"), agent_keys()),
        ["plan"] => ("in `[[plan]]`".into(), plan_keys()),
        ["plan", "slurm"] => ("in `plan.slurm`".into(), fields_of::<RawSlurm>()),
        ["slurm"] => ("in `slurm`".into(), fields_of::<RawSlurm>()),
        ["notify"] => ("in `[[notify]]`".into(), fields_of::<RawNotify>()),
        ["host"] => ("in `[[host]]`".into(), fields_of::<super::raw::RawHost>()),
        ["repo"] => ("in `[[repo]]`".into(), super::raw::repo_keys()),
        ["telemetry"] => (
            "in `[telemetry]`".into(),
            fields_of::<super::raw::RawTelemetry>(),
        ),
        ["service"] => (
            "in `[[service]]`".into(),
            fields_of::<super::raw::RawService>(),
        ),
        _ => (format!("in `{}`", table.join(".")), &[][..]),
    };
    let plan_slurm = table == ["plan", "slurm"];
    let known: Vec<&str> = known
        .iter()
        .copied()
        .filter(|k| !(plan_slurm && *k == "poll"))
        .collect();
    let hint = match closest(name, &known) {
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
    r.error_hint(&span, format!("unknown key `{name}` {place}"), hint);
}

/// Reports serde's error `e`: a value of the wrong type, named by its key, with the type
/// expected and the one found.
fn wrong_type(doc: &DeTable<'_>, e: &toml::de::Error, r: &mut Reporter<'_>) {
    let span = e.span().unwrap_or(0..0);
    let Some((keys, element, found)) = value_at(doc, &span, &mut Vec::new()) else {
        r.error(&span, e.message());
        return;
    };
    let key = keys.join(".");
    // serde's message: "invalid type: string \"4\", expected i64".
    let expected = match e
        .message()
        .rsplit_once(", expected ")
        .map_or("", |(_, x)| x)
    {
        "i64" => "an integer",
        "a boolean" => "true or false",
        "a sequence" if matches!(&keys[..], [k] if k == "plan" || k == "notify" || k == "host" || k == "repo" || k == "service") => {
            "an array of tables"
        }
        "a sequence" => "an array of strings",
        x if x.starts_with("struct ") || x == "a map" => "a table",
        "" => return r.error(&span, format!("`{key}`: {}", e.message())),
        x => x,
    };
    let found_name = type_name(found);
    let message = if element && expected == "a table" {
        format!("each `{key}` entry must be a table, found {found_name}")
    } else if element {
        format!("`{key}` must be an array of strings, but this element is {found_name}")
    } else if expected == "an integer" && found_name == "an integer" {
        format!("`{key}` is out of range")
    } else {
        format!("`{key}` must be {expected}, found {found_name}")
    };
    let hint = match &keys[..] {
        [k] if k == "plan" => Some("write each plan as a `[[plan]]` table".to_string()),
        [k] if k == "notify" => Some("write each hook as a `[[notify]]` table".to_string()),
        [k] if k == "host" => Some("write each host as a `[[host]]` table".to_string()),
        [k] if k == "repo" => Some("write each repository as a `[[repo]]` table".to_string()),
        [k] if k == "service" => Some("write each service as a `[[service]]` table".to_string()),
        [a, name] if a == "agents" => Some(format!(
            "write `[agents.{name}]` followed by `command = [...]`"
        )),
        [.., k] if k == "resolve" => Some(super::resolve::HINT.to_string()),
        _ => None,
    };
    match hint {
        Some(hint) => r.error_hint(&span, message, hint),
        None => r.error(&span, message),
    }
}

/// The value written at `span`: the keys leading to it, whether it is an element of an array,
/// and the value.
fn value_at<'d, 'i>(
    table: &'d DeTable<'i>,
    span: &Range<usize>,
    keys: &mut Vec<String>,
) -> Option<(Vec<String>, bool, &'d DeValue<'i>)> {
    for (key, value) in table.iter() {
        keys.push(key.get_ref().to_string());
        let elements = match value.get_ref() {
            DeValue::Array(items) => &items[..],
            _ => &[],
        };
        let candidates = std::iter::once((false, value)).chain(elements.iter().map(|e| (true, e)));
        for (element, v) in candidates {
            if v.span() == *span {
                return Some((keys.clone(), element, v.get_ref()));
            }
            if let DeValue::Table(t) = v.get_ref()
                && let Some(found) = value_at(t, span, keys)
            {
                return Some(found);
            }
        }
        keys.pop();
    }
    None
}

fn type_name(v: &DeValue<'_>) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_key() {
        assert_eq!(closest("nmae", plan_keys()), Some("name"));
        assert_eq!(closest("depends", plan_keys()), Some("depends_on"));
        assert_eq!(closest("zzzzzzzz", plan_keys()), None);
    }
}
