//! Task lines: the task itself, its `(depends: …)`, `(est: …)`, `(check: …)` and `(attempts: …)`
//! clauses, its priority marker,
//! and the id checks over all tasks (duplicates, unknown or self dependencies).

use super::{Collect, Parser};
use crate::diagnostic::Diagnostic;
use crate::duration::parse_duration;
use crate::plan::check::find_ci;
use crate::plan::ids::IdIndex;
use crate::plan::model::{Priority, Task, TaskKind, is_task_id};

impl<'t> Parser<'t> {
    pub(super) fn task(&mut self, n: usize, done: bool, id: &str, desc: &str) {
        if let Collect::Verify = self.collect
            && let Some(v) = self.verifies.last_mut()
        {
            v.id_tasks += 1;
        }
        self.collect = Collect::Nothing;
        let Some(phase) = self.phases.last().map(|p| p.number) else {
            self.warn(
                n,
                format!(
                    "`- [ ] {id}` comes before the first `## Phase N:` heading and is not a task"
                ),
            );
            return;
        };
        let description = trim_fast(desc).to_string();
        if description.is_empty() {
            self.warn(n, format!("task `{id}` has no description"));
        }
        // Every clause (`(depends:`, `(est:`, `(check:`, `(HIGH)`…, and the `[depends:` that is
        // warned about) opens with `(` or `[`: one pass over those finds which are there (a
        // description with neither, most of them, has none), and only those are read.
        let found = clauses(&description);
        let depends = found
            .depends
            .then(|| self.depends(n, id, &description))
            .flatten();
        let estimate_s = found
            .estimate
            .then(|| self.estimate(n, id, &description))
            .flatten();
        if found.check
            && let Err(why) = crate::plan::check::check_clause(&description)
        {
            self.error(n, format!("task `{id}`: {why}"));
        }
        if find_ci(&description, "(attempts:").is_some()
            && let Err(why) = crate::plan::attempts_clause(&description)
        {
            self.error(n, format!("task `{id}`: {why}"));
        }
        self.tasks.push(Task {
            id: id.to_string(),
            kind: TaskKind::Task,
            phase,
            priority: found.priority,
            description,
            body: String::new(),
            done,
            depends,
            estimate_s,
            files: Vec::new(),
            line: n,
            blocking: true,
            speckit: None,
        });
        self.bodies.push(None);
        self.collect = Collect::TaskBody(self.tasks.len() - 1);
    }

    /// Extracts the ids of every `(depends: …)` clause of a description.
    fn depends(&mut self, n: usize, id: &str, desc: &str) -> Option<Vec<String>> {
        let mut found: Option<Vec<String>> = None;
        let mut from = 0;
        while let Some(pos) = find_ci(&desc[from..], "(depends:") {
            let start = from + pos + "(depends:".len();
            let Some(end) = desc[start..].find(')') else {
                self.error(n, format!("task `{id}`: `(depends:` is not closed by `)`"));
                break;
            };
            let list = &desc[start..start + end];
            let ids = found.get_or_insert_with(Vec::new);
            for token in split_list(list) {
                if is_task_id(token) || is_verify_id(token) {
                    if !ids.iter().any(|x| x == token) {
                        ids.push(token.to_string());
                    }
                } else {
                    self.error(
                        n,
                        format!(
                            "task `{id}`: `(depends: …)` lists `{token}`, which is not a task id"
                        ),
                    )
                    .hint = Some("list task ids separated by commas: `(depends: 1.1, 2.3)`".into());
                }
            }
            from = start + end;
        }
        if found.is_none() && find_ci(desc, "[depends:").is_some() {
            let hint = "write dependencies as `(depends: 1.1, 2.3)` in the task line";
            self.warn(
                n,
                format!("task `{id}`: `[DEPENDS: …]` is not dependency syntax and is ignored"),
            )
            .hint = Some(hint.into());
        }
        found
    }

    /// The `(est: 1h30m)` clause of a description, in seconds. A malformed or repeated clause
    /// is an error; the first valid one counts.
    fn estimate(&mut self, n: usize, id: &str, desc: &str) -> Option<u64> {
        find_ci(desc, "(est:")?;
        let lower = desc.to_ascii_lowercase();
        let mut found: Option<u64> = None;
        let mut from = 0;
        while let Some(pos) = lower[from..].find("(est:") {
            let start = from + pos + "(est:".len();
            let Some(end) = lower[start..].find(')') else {
                self.error(n, format!("task `{id}`: `(est:` is not closed by `)`"));
                break;
            };
            let text = lower[start..start + end].trim();
            match parse_duration(text) {
                Ok(_) if found.is_some() => {
                    self.error(n, format!("task `{id}`: more than one `(est: …)`"));
                }
                Ok(d) => found = Some(d.as_secs()),
                Err(why) => {
                    self.error(n, format!("task `{id}`: `(est: {text})`: {why}"))
                        .hint = Some(
                        "write the estimate as `(est: 20m)`, `(est: 1h30m)`, `(est: 45s)`".into(),
                    );
                }
            }
            from = start + end;
        }
        found
    }

    pub(super) fn check_ids(&mut self) {
        let tasks = &self.tasks;
        let id_of = |i: usize| tasks[i].id.as_str();
        let mut first = IdIndex::with_capacity(tasks.len());
        let mut found = Vec::new();
        for (i, t) in tasks.iter().enumerate() {
            if let Some(at) = first.insert_first(&t.id, i, id_of) {
                let line = tasks[at].line;
                found.push(
                    Diagnostic::error(
                        &self.path,
                        t.line,
                        format!(
                            "duplicate task id `{}` (first defined at line {line})",
                            t.id
                        ),
                    )
                    .with_hint("task ids must be unique within a plan; renumber one of them"),
                );
            }
        }
        for t in tasks {
            for dep in t.dependencies() {
                if dep == &t.id {
                    found.push(Diagnostic::error(
                        &self.path,
                        t.line,
                        format!("task `{}` depends on itself", t.id),
                    ));
                } else if first.get(dep, id_of).is_none() {
                    found.push(
                        Diagnostic::error(
                            &self.path,
                            t.line,
                            format!(
                                "task `{}` depends on `{dep}`, which is not a task of this plan",
                                t.id
                            ),
                        )
                        .with_hint("check the id in `(depends: …)`; ids are never renumbered"),
                    );
                }
            }
        }
        self.diagnostics.extend(found);
    }
}

pub(super) fn is_verify_id(s: &str) -> bool {
    s.strip_prefix('V')
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Which clauses a description has, from one pass over its `(` and `[`: what the readers of
/// each would find (a reader told of none finds nothing and reports nothing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Clauses {
    /// `(depends:` or `[depends:`, in any case.
    pub(crate) depends: bool,
    /// `(est:`, in any case.
    pub(crate) estimate: bool,
    /// `(check:`, in any case.
    pub(crate) check: bool,
    /// `(HIGH)` etc. (the first marker of this order that is there).
    pub(crate) priority: Priority,
}

pub(super) fn clauses(desc: &str) -> Clauses {
    let b = desc.as_bytes();
    let mut found = Clauses::default();
    // Markers by rank: `(LOW)` above none, `(CRITICAL)` above all.
    let mut rank = 0;
    let mut from = 0;
    while let Some(p) = super::lines::find2(&b[from..], b'(', b'[') {
        let at = from + p;
        from = at + 1;
        let rest = &b[at + 1..];
        let starts_ci = |word: &[u8]| {
            rest.get(..word.len())
                .is_some_and(|w| w.eq_ignore_ascii_case(word))
        };
        if b[at] == b'[' {
            found.depends |= starts_ci(b"depends:");
        } else if starts_ci(b"depends:") {
            found.depends = true;
        } else if starts_ci(b"est:") {
            found.estimate = true;
        } else if starts_ci(b"check:") {
            found.check = true;
        } else if rest.starts_with(b"CRITICAL)") {
            rank = 3;
        } else if rest.starts_with(b"HIGH)") {
            rank = rank.max(2);
        } else if rest.starts_with(b"LOW)") {
            rank = rank.max(1);
        }
    }
    found.priority = [
        Priority::Normal,
        Priority::Low,
        Priority::High,
        Priority::Critical,
    ][rank];
    found
}

/// Splits `1.1, 1.2 and 1.4` / `2.1-2.4` lists into items (ranges kept whole). An `and`
/// between items is a word of its own, dropped like the separators.
pub(super) fn split_list(list: &str) -> ListItems<'_> {
    if list.is_ascii() {
        ListItems::Ascii { list, at: 0 }
    } else {
        ListItems::Other(Box::new(
            list.split([',', ';', '&'])
                .flat_map(str::split_whitespace)
                .map(|s| s.trim_matches('`'))
                .filter(|s| !s.is_empty() && *s != "and"),
        ))
    }
}

/// The items of [`split_list`]: an ASCII list (nearly all) read byte by byte, any other through
/// the general split.
pub(super) enum ListItems<'a> {
    Ascii { list: &'a str, at: usize },
    Other(Box<dyn Iterator<Item = &'a str> + 'a>),
}

impl<'a> Iterator for ListItems<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let (list, at) = match self {
            ListItems::Ascii { list, at } => (*list, at),
            ListItems::Other(items) => return items.next(),
        };
        // The separators and the whitespace of `char::is_whitespace` (which has \x0b).
        let sep = |c: u8| {
            matches!(
                c,
                b',' | b';' | b'&' | b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'
            )
        };
        let b = list.as_bytes();
        loop {
            let start = *at + b.get(*at..)?.iter().take_while(|&&c| sep(c)).count();
            if start == b.len() {
                *at = start;
                return None;
            }
            let end = start + b[start..].iter().take_while(|&&c| !sep(c)).count();
            *at = end;
            let item = list[start..end].trim_matches('`');
            if !item.is_empty() && item != "and" {
                return Some(item);
            }
        }
    }
}

/// [`str::trim`], without decoding characters when both ends are plain ASCII (spaces or tabs,
/// then a visible character), as in nearly every line of a plan.
pub(super) fn trim_fast(s: &str) -> &str {
    let b = s.as_bytes();
    let start = b
        .iter()
        .position(|&c| c != b' ' && c != b'\t')
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|&c| c != b' ' && c != b'\t')
        .map_or(start, |i| i + 1);
    match (b.get(start), end.checked_sub(1).and_then(|i| b.get(i))) {
        (Some(f), Some(l)) if f.is_ascii_graphic() && l.is_ascii_graphic() => &s[start..end],
        _ => s.trim(),
    }
}

/// `2.1-2.4` → (`2.1`, `2.4`); `2.1` → (`2.1`, `2.1`).
pub(super) fn split_range(item: &str) -> (&str, &str) {
    for sep in ["-", "–", "—"] {
        if let Some((a, b)) = item.split_once(sep) {
            return (a.trim(), b.trim());
        }
    }
    (item, item)
}

#[cfg(test)]
mod tests {
    use super::{split_list, trim_fast};
    use crate::plan::model::Priority;

    /// The earlier way to a description's priority, a search per marker.
    fn priority_by_marker(desc: &str) -> Priority {
        let has = |marker: &str| {
            memchr::memchr_iter(b'(', desc.as_bytes()).any(|at| desc[at..].starts_with(marker))
        };
        if !desc.contains('(') {
            Priority::Normal
        } else if has("(CRITICAL)") {
            Priority::Critical
        } else if has("(HIGH)") {
            Priority::High
        } else if has("(LOW)") {
            Priority::Low
        } else {
            Priority::Normal
        }
    }

    /// The lists split as they did when ` and ` was a separator of its own.
    #[test]
    fn split_list_drops_and_like_the_separator_did() {
        let before = |list: &str| -> Vec<String> {
            list.split([',', ';', '&'])
                .flat_map(|part| part.split(" and "))
                .flat_map(str::split_whitespace)
                .map(|s| s.trim_matches('`'))
                .filter(|s| !s.is_empty() && *s != "and")
                .map(str::to_string)
                .collect()
        };
        for list in [
            "1.1, 1.2 and 1.4",
            "1.1 and 1.2 and 1.3",
            "x and and y",
            "1.1 and\t1.2",
            "1.1\u{a0}and 1.2",
            " and 1.1 and ",
            "and",
            "`and` 1.1",
            "1.1 `and 1.2`",
            "2.1-2.4; 3.1 & 3.2, and 4.1",
            "1.1 and1.2 andy sand and",
            "",
            "1.1,,1.2;;&1.3\u{b}1.4\u{c}1.5\r1.6\n1.7",
            "``1.1`` `` ` and`",
            "1.1\u{85}1.2 \u{3000}1.3",
        ] {
            let now: Vec<&str> = split_list(list).collect();
            assert_eq!(now, before(list), "{list:?}");
        }
    }

    /// A description without `(` or `[` skips the clause readers: what they would have read
    /// from it is nothing, with no diagnostics; with the brackets they still read the clauses.
    #[test]
    fn descriptions_without_brackets_have_no_clauses() {
        let words = "Do it depends: 1.2 est: 1h HIGH CRITICAL check: cargo test depends";
        let plan = crate::plan::parse(
            std::path::Path::new("p.md"),
            &format!("## Phase 1: A\n\n- [ ] 1.1 {words}\n- [ ] 1.2 Other\n"),
        );
        let t = &plan.tasks[0];
        assert_eq!(t.description, words);
        assert_eq!(
            (&t.depends, t.estimate_s, t.priority),
            (&None, None, Priority::Normal)
        );
        assert!(plan.diagnostics.is_empty(), "{:?}", plan.diagnostics);

        let plan = crate::plan::parse(
            std::path::Path::new("p.md"),
            "## Phase 1: A\n\n- [ ] 1.1 Do (depends: 1.2) (est: 1h) (HIGH) [depends: 1.2]\n- [ ] 1.2 Other\n",
        );
        let t = &plan.tasks[0];
        assert_eq!(t.depends.as_deref(), Some(&["1.2".to_string()][..]));
        assert_eq!((t.estimate_s, t.priority), (Some(3600), Priority::High));
    }

    /// The one pass finds what the earlier searches found: the priority marker, and each
    /// clause the readers look for (`find_ci` from `(` or `[`, case aside).
    #[test]
    fn one_pass_finds_the_clauses_the_searches_found() {
        use crate::plan::check::find_ci;
        let parts = [
            "(LOW)",
            "(HIGH)",
            "(CRITICAL)",
            "(HIGH",
            "(low)",
            "x",
            "((",
            "(CRITICAL",
            "",
            "(depends: 1.1)",
            "[DEPENDS: 1.2]",
            "(Est: 1h)",
            "(CHECK: x)",
            "(depends",
            "[(est:",
            "((check:",
            "(dépends:",
            "[depends",
        ];
        for a in parts {
            for b in parts {
                for c in parts {
                    let desc = format!("do {a} it {b}{c}");
                    let found = super::clauses(&desc);
                    let searched = super::Clauses {
                        depends: find_ci(&desc, "(depends:").is_some()
                            || find_ci(&desc, "[depends:").is_some(),
                        estimate: find_ci(&desc, "(est:").is_some(),
                        check: find_ci(&desc, "(check:").is_some(),
                        priority: priority_by_marker(&desc),
                    };
                    assert_eq!(found, searched, "{desc:?}");
                }
            }
        }
    }

    #[test]
    fn trim_fast_is_trim() {
        for s in [
            "",
            " ",
            "\t",
            "a",
            " a ",
            "\ta b\t",
            "  x",
            "x  ",
            " \u{a0}x",
            "x\u{a0} ",
            "\u{3000}",
            " \u{b}x",
            "x\u{c}",
            "é",
            " é ",
            "\r x \r",
            " (depends: 1.1)",
        ] {
            assert_eq!(trim_fast(s), s.trim(), "{s:?}");
        }
    }
}
