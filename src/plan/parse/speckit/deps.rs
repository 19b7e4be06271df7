//! Dependency sentences of a Spec Kit file: "(depends on T012, T013)", "depends on T009-T014",
//! "after T002", "**Prerequisite**: T015" in a task, and "T007 depends on T006" in the
//! "Dependencies & Execution Order" section. Pure functions over one text.

use super::line::id_len;

/// A task named in a dependency: one id or a range of them (`T009-T014`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum IdRef {
    One(String),
    Range(String, String),
}

/// What a text says about dependencies.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Said {
    /// The tasks named after "depends on", "after" or "prerequisite", in written order.
    pub(super) ids: Vec<IdRef>,
    /// The text has a dependency word and names a task that none of those phrases took:
    /// a sentence orch could not read.
    pub(super) unread: bool,
}

/// The words that introduce the tasks a task waits for.
const LEADS: [&str; 5] = [
    "depends on",
    "depend on",
    "after",
    "prerequisites",
    "prerequisite",
];

/// Words that make a sentence about order (with a task id in it, a sentence to read).
const ORDER_WORDS: [&str; 7] = [
    "depend",
    "after",
    "before",
    "prerequisite",
    "requires",
    "blocked by",
    "wait",
];

/// The dependency phrases of a task's text (its description and body).
pub(super) fn in_task(text: &str) -> Said {
    let lower = text.to_ascii_lowercase();
    let mut said = Said::default();
    // Byte ranges of the ids the phrases took.
    let mut taken: Vec<(usize, usize)> = Vec::new();
    for lead in LEADS {
        let mut from = 0;
        while let Some(pos) = lower[from..].find(lead) {
            let start = from + pos;
            from = start + lead.len();
            let word_start = start == 0 || !lower.as_bytes()[start - 1].is_ascii_alphanumeric();
            let word_end = !lower
                .as_bytes()
                .get(from)
                .is_some_and(u8::is_ascii_alphanumeric);
            if !(word_start && word_end) {
                continue;
            }
            let at = skip_punct(text, from);
            let (ids, end) = id_list(text, at);
            if !ids.is_empty() {
                taken.push((at, end));
                said.ids.extend(ids);
            }
        }
    }
    said.unread = has_order_word(&lower)
        && mentions(text)
            .into_iter()
            .any(|p| !taken.iter().any(|&(s, e)| s <= p && p < e));
    said
}

/// One clause of the dependency section (a line split at `;`): `T007 depends on T006` (and an
/// explanation naming no other task) gives `Some((T007, [T006]))`; `Err(())` when the clause is
/// about order and names a task but is not of that form; `Ok(None)` when it says nothing to read.
pub(super) fn statement(clause: &str) -> Result<Option<(String, Vec<IdRef>)>, ()> {
    let c = clause.trim();
    let c = c
        .strip_prefix("- ")
        .or_else(|| c.strip_prefix("* "))
        .unwrap_or(c)
        .trim_start();
    let c = c.strip_prefix("**").unwrap_or(c);
    let about_order = has_order_word(&c.to_ascii_lowercase()) && !mentions(c).is_empty();
    let Some(len) = id_len(c) else {
        return if about_order { Err(()) } else { Ok(None) };
    };
    let subject = &c[..len];
    let rest = c[len..].strip_prefix("**").unwrap_or(&c[len..]);
    let rest_lower = rest.to_ascii_lowercase();
    let verb = ["depends on", "requires"]
        .into_iter()
        .find(|v| rest_lower.trim_start().starts_with(v));
    let Some(verb) = verb else {
        return if about_order { Err(()) } else { Ok(None) };
    };
    let at = rest.len() - rest.trim_start().len() + verb.len();
    let at = skip_punct(rest, at);
    let (ids, end) = id_list(rest, at);
    if ids.is_empty() || !mentions(&rest[end..]).is_empty() {
        return Err(());
    }
    Ok(Some((subject.to_string(), ids)))
}

fn has_order_word(lower: &str) -> bool {
    ORDER_WORDS.iter().any(|w| lower.contains(w))
}

/// Where each task id named in `text` starts (an id is a word of its own).
fn mentions(text: &str) -> Vec<usize> {
    let b = text.as_bytes();
    (0..b.len())
        .filter(|&i| {
            b[i] == b'T'
                && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
                && id_len(&text[i..]).is_some()
        })
        .collect()
}

/// `at`, moved over spaces, `:`, `*` and backticks.
fn skip_punct(text: &str, mut at: usize) -> usize {
    let b = text.as_bytes();
    while b
        .get(at)
        .is_some_and(|c| matches!(c, b' ' | b':' | b'*' | b'`'))
    {
        at += 1;
    }
    at
}

/// The ids listed from `at`: `T1`, `T1, T2`, `T1 and T2`, `T1+T2`, `T1/T2`, `T1 & T2`, ranges
/// `T1-T4` / `T1–T4`; and where the list ends.
fn id_list(text: &str, at: usize) -> (Vec<IdRef>, usize) {
    let mut ids = Vec::new();
    let mut pos = at;
    let mut end = at;
    while let Some((a, mut next)) = one_id(text, pos) {
        let range_to = [" - ", "-", "–", " – ", " to "]
            .into_iter()
            .find_map(|sep| text[next..].strip_prefix(sep).map(|_| next + sep.len()))
            .and_then(|p| one_id(text, p));
        match range_to {
            Some((b, after)) => {
                ids.push(IdRef::Range(a, b));
                next = after;
            }
            None => ids.push(IdRef::One(a)),
        }
        end = next;
        let sep = [
            ", and ", ", ", ",", " and ", " + ", "+", " / ", "/", " & ", "&",
        ]
        .into_iter()
        .find(|sep| text[next..].starts_with(sep));
        match sep {
            Some(sep) => pos = next + sep.len(),
            None => break,
        }
    }
    (ids, end)
}

/// A task id at `at` (in backticks or bold or not): the id and where it ends.
fn one_id(text: &str, at: usize) -> Option<(String, usize)> {
    let rest = text.get(at..)?;
    let open = rest.len() - rest.trim_start_matches(['`', '*']).len();
    let len = id_len(&rest[open..])?;
    let id = rest[open..open + len].to_string();
    let after = &rest[open + len..];
    let close = after.len() - after.trim_start_matches(['`', '*']).len();
    Some((id, at + open + len + close))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> IdRef {
        IdRef::One(s.into())
    }

    fn range(a: &str, b: &str) -> IdRef {
        IdRef::Range(a.into(), b.into())
    }

    #[test]
    fn phrases_in_a_task() {
        let cases: [(&str, Vec<IdRef>, bool); 9] = [
            (
                "Implement it (depends on T012, T013)",
                vec![one("T012"), one("T013")],
                false,
            ),
            (
                "Parse (depends on T009-T014 tests)",
                vec![range("T009", "T014")],
                false,
            ),
            (
                "Delete x (after T002 confirms it moved); run go build",
                vec![one("T002")],
                false,
            ),
            (
                "**Prerequisite**: T015 compilation-check 通過",
                vec![one("T015")],
                false,
            ),
            (
                "Tests (depends on T011+T012)",
                vec![one("T011"), one("T012")],
                false,
            ),
            (
                "Wire it (Depends on `T003` and **T004**)",
                vec![one("T003"), one("T004")],
                false,
            ),
            (
                "assert that after a simulated install it works",
                vec![],
                false,
            ),
            ("Run this before T016 and T017", vec![], true),
            ("Same file as T012, do it carefully", vec![], false),
        ];
        for (text, ids, unread) in cases {
            assert_eq!(in_task(text), Said { ids, unread }, "{text}");
        }
    }

    #[test]
    fn statements_of_the_dependency_section() {
        assert_eq!(
            statement("- T007 depends on T006"),
            Ok(Some(("T007".into(), vec![one("T006")])))
        );
        assert_eq!(
            statement(" T004 depends on T002"),
            Ok(Some(("T004".into(), vec![one("T002")])))
        );
        assert_eq!(
            statement("- **T017** depends on T011 and T012 (both needed)"),
            Ok(Some(("T017".into(), vec![one("T011"), one("T012")])))
        );
        assert_eq!(
            statement("- T013, T014 can all run in parallel with T011/T012"),
            Ok(None)
        );
        assert_eq!(
            statement("- **Polish (Phase 8)**: Depends on all user stories"),
            Ok(None)
        );
        assert_eq!(statement("- **US2 (P2)**: After T011 completes"), Err(()));
        assert_eq!(statement(" start after T011 completes"), Err(()));
        assert_eq!(
            statement("- T007 depends on T006 unless T005 is done"),
            Err(())
        );
    }
}
