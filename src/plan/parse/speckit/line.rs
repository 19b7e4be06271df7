//! One Spec Kit task line: `- [ ] T014 [P] [US1] Implement the user model in src/models/user.py`.
//! Pure functions over one line's text.

/// What a task line says.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct TaskLine<'a> {
    /// The box: ` `, `x`, `X` or `~`.
    pub(super) mark: char,
    /// `T014`, `T049a` (without the `**` of a bold id).
    pub(super) id: &'a str,
    /// `[P]` or a `[P:1.1]` batch among the tags.
    pub(super) parallel: bool,
    /// `[US1]`, `[US1] [US2]`, `[US3/US5]`.
    pub(super) stories: Vec<String>,
    /// The text after the id and the tags.
    pub(super) description: &'a str,
}

/// `line` as a Spec Kit task line: a `-` at column 0, spaces, a box (`[ ]`, `[x]`, `[X]`, `[~]`),
/// spaces, an id `T` + digits (+ one lower-case letter), bold or not, then the end or a space.
pub(super) fn task_line(line: &str) -> Option<TaskLine<'_>> {
    let rest = line.strip_prefix('-')?;
    let after_dash = rest.trim_start_matches([' ', '\t']);
    if after_dash.len() == rest.len() {
        return None;
    }
    let (mark, rest) = checkbox(after_dash)?;
    let (id, rest) = task_id(rest)?;
    let (parallel, stories, description) = tags(rest);
    Some(TaskLine {
        mark,
        id,
        parallel,
        stories,
        description: description.trim(),
    })
}

/// `[ ] rest`: the mark and what follows the box and its spaces (at least one).
fn checkbox(s: &str) -> Option<(char, &str)> {
    let mut chars = s.strip_prefix('[')?.chars();
    let mark = chars
        .next()
        .filter(|c| matches!(c, ' ' | 'x' | 'X' | '~'))?;
    let after = chars.as_str().strip_prefix(']')?;
    let rest = after.trim_start_matches([' ', '\t']);
    (rest.len() < after.len()).then_some((mark, rest))
}

/// `T014 rest`, `**T014** rest`, `T049a rest`: the id and the rest.
fn task_id(s: &str) -> Option<(&str, &str)> {
    let (bold, s) = match s.strip_prefix("**") {
        Some(r) => (true, r),
        None => (false, s),
    };
    let len = id_len(s)?;
    let (id, mut rest) = s.split_at(len);
    if bold {
        rest = rest.strip_prefix("**")?;
    }
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    Some((id, rest))
}

/// The length of the task id `s` starts with (`T`, 1 to 6 digits, at most one lower-case
/// letter), when it is followed by no other letter or digit.
pub(super) fn id_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    if b.first() != Some(&b'T') {
        return None;
    }
    let digits = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    if !(1..=6).contains(&digits) {
        return None;
    }
    let mut len = 1 + digits;
    if b.get(len).is_some_and(u8::is_ascii_lowercase) {
        len += 1;
    }
    match b.get(len) {
        Some(c) if c.is_ascii_alphanumeric() || *c == b'_' => None,
        _ => Some(len),
    }
}

/// The numeric part of a task id (`T049a` → 49).
pub(super) fn id_number(id: &str) -> Option<u32> {
    let digits: &str = id
        .get(1..)?
        .trim_end_matches(|c: char| c.is_ascii_lowercase());
    digits.parse().ok()
}

/// The tags after the id: `[P]` (and a `[P:…]` batch) marks the task parallel, `[P1]`… is a
/// priority (read, not kept), `[US1]` / `[US3/US5]` are stories. The first other text ends them.
fn tags(mut s: &str) -> (bool, Vec<String>, &str) {
    let (mut parallel, mut stories) = (false, Vec::new());
    loop {
        let t = s.trim_start();
        let Some(inner) = t.strip_prefix('[') else {
            return (parallel, stories, t);
        };
        let Some(end) = inner.find(']') else {
            return (parallel, stories, t);
        };
        let tag = &inner[..end];
        if tag == "P" || tag.starts_with("P:") {
            parallel = true;
        } else if tag
            .strip_prefix('P')
            .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()))
        {
            // `[P1]`: a priority, not a parallel mark.
        } else if let Some(list) = story_list(tag) {
            for s in list {
                if !stories.contains(&s) {
                    stories.push(s);
                }
            }
        } else {
            return (parallel, stories, t);
        }
        s = &inner[end + 1..];
    }
}

/// `US1`, `US3/US5`, `US1, US2`: the stories, or `None` when `tag` is not only stories.
fn story_list(tag: &str) -> Option<Vec<String>> {
    tag.split(['/', ','])
        .map(|part| {
            let part = part.trim();
            let digits = part.strip_prefix("US")?;
            (!digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit()))
                .then(|| part.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(s: &str) -> Option<(char, &str, bool, Vec<String>, &str)> {
        task_line(s).map(|t| (t.mark, t.id, t.parallel, t.stories, t.description))
    }

    fn stories(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_forms_of_a_task_line() {
        assert_eq!(
            line("- [ ] T014 [P] [US1] Implement it in src/a.py"),
            Some((
                ' ',
                "T014",
                true,
                stories(&["US1"]),
                "Implement it in src/a.py"
            ))
        );
        assert_eq!(
            line("- [X] T001 Create the project"),
            Some(('X', "T001", false, vec![], "Create the project"))
        );
        assert_eq!(
            line("-   [ ] **T004a** 執行完整測試套件建立功能基準  "),
            Some((' ', "T004a", false, vec![], "執行完整測試套件建立功能基準"))
        );
        assert_eq!(
            line("- [x] T021 [P1] [US1] [P] Check"),
            Some(('x', "T021", true, stories(&["US1"]), "Check"))
        );
        assert_eq!(
            line("- [ ] T013 [P1] [US1] Upgrade"),
            Some((' ', "T013", false, stories(&["US1"]), "Upgrade"))
        );
        assert_eq!(
            line("- [x] T050 [US3/US5] Wire [US1] [US2] up"),
            Some((
                'x',
                "T050",
                false,
                stories(&["US3", "US5"]),
                "Wire [US1] [US2] up"
            ))
        );
        assert_eq!(
            line("- [ ] T060 [US1] [US2] Both"),
            Some((' ', "T060", false, stories(&["US1", "US2"]), "Both"))
        );
        assert_eq!(
            line("- [~] T007 [P:1.1] Batch"),
            Some(('~', "T007", true, vec![], "Batch"))
        );
        assert_eq!(
            line("- [ ] T014 [US1] Implement [Service] in x.py"),
            Some((
                ' ',
                "T014",
                false,
                stories(&["US1"]),
                "Implement [Service] in x.py"
            ))
        );
    }

    #[test]
    fn look_alikes_are_not_task_lines() {
        for s in [
            "- [ ] Run the tests",
            "- [ ] 1.2 An orch task",
            "  - [ ] T001 indented",
            "| T001 | [P] | table row |",
            "## T001 heading",
            "- [P] tasks = different files",
            "- [ ]T001 no space",
            "- [ ] T001x2 not an id",
            "- [ ] TODO: later",
            "- [ ] **T001 unclosed bold",
            "- [?] T001 odd box",
            "-[ ] T001 no space after the dash",
        ] {
            assert_eq!(line(s), None, "{s}");
        }
    }

    #[test]
    fn id_numbers() {
        assert_eq!(id_number("T049a"), Some(49));
        assert_eq!(id_number("T001"), Some(1));
        assert_eq!(id_len("T12, T13"), Some(3));
        assert_eq!(id_len("Task"), None);
    }
}
