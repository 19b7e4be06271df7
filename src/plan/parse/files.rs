//! Task body text and the file paths a task names.

use crate::plan::model::{Task, TaskKind};

/// Removes trailing blank lines and the common indentation of the non-blank lines.
pub(super) fn dedent(lines: &[&str]) -> String {
    let end = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(0, |i| i + 1);
    let lines = &lines[..end];
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for (i, l) in lines.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(if l.len() >= indent {
            &l[indent..]
        } else {
            l.trim_start()
        });
    }
    out
}

/// The files a task names: those of its description and body (a verification step: of its
/// criteria). What the parser fills in as the task's `files`.
pub fn task_files(task: &Task) -> Vec<String> {
    if task.kind == TaskKind::Verify {
        extract_files(&task.body)
    } else if task.body.is_empty() {
        extract_files(&task.description)
    } else {
        extract_files_of(&[&task.description, &task.body])
    }
}

/// File paths a text names: backtick-quoted paths and bare `dir/file.ext` tokens.
pub(crate) fn extract_files(text: &str) -> Vec<String> {
    extract_files_of(&[text])
}

/// [`extract_files`] of `texts` joined by newlines, without joining them.
pub(crate) fn extract_files_of(texts: &[&str]) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    let mut push = |candidate: &str| {
        if let Some(path) = normalize_path_candidate(candidate)
            && !files.contains(&path)
        {
            files.push(path);
        }
    };
    let mut in_tick = false;
    for (k, text) in texts.iter().enumerate() {
        let mut parts = text.split('`').enumerate().peekable();
        while let Some((i, part)) = parts.next() {
            if i > 0 {
                in_tick = !in_tick;
            }
            if in_tick {
                // A quoted part running over the end of a text holds the joining newline: it
                // has whitespace, so it names no file.
                let last = parts.peek().is_none();
                let joined = (i == 0 && k > 0) || (last && k + 1 < texts.len());
                if !joined && !part.contains(char::is_whitespace) {
                    push(part);
                }
            } else if may_name_file(part) {
                for token in part.split_whitespace() {
                    // Most words name no file: skip them before trimming (trimming only removes
                    // punctuation at the ends, so a kept token contains `/` or `src` already).
                    if !may_name_file(token) {
                        continue;
                    }
                    let token =
                        token.trim_matches(|c: char| c.is_ascii() && in_set(TRIMMED, c as u8));
                    if token.contains('/') || token.starts_with("src") {
                        push(token);
                    }
                }
            }
        }
    }
    files
}

/// A set of ASCII bytes as a bit mask: membership without a search.
const fn ascii_set(chars: &[u8]) -> u128 {
    let mut mask = 0;
    let mut i = 0;
    while i < chars.len() {
        mask |= 1 << chars[i];
        i += 1;
    }
    mask
}

fn in_set(set: u128, b: u8) -> bool {
    b < 128 && (set >> b) & 1 == 1
}

/// Characters that never appear in a path orch takes from a text.
const NOT_IN_PATHS: u128 = ascii_set(b"(){}[]=<>|$*?!@#%^&\"'\\");

/// Punctuation trimmed off the ends of a bare token.
const TRIMMED: u128 = ascii_set(b",;()[]{}\"'*<>");

/// Whether `s` contains `/` or `src`: only such text can hold a path outside backticks.
fn may_name_file(s: &str) -> bool {
    let b = s.as_bytes();
    b.iter()
        .enumerate()
        .any(|(i, &c)| c == b'/' || (c == b's' && b[i + 1..].starts_with(b"rc")))
}

fn normalize_path_candidate(s: &str) -> Option<String> {
    let s = s.trim_end_matches(['.', ',', ':', ';']);
    if s.is_empty()
        || (s.contains(':') && s.contains("://"))
        || s.starts_with('-')
        || s.starts_with('/')
    {
        return None;
    }
    // Drop a `:80-88` / `:12` line suffix.
    let s = match s.split_once(':') {
        Some((path, suffix))
            if suffix
                .chars()
                .all(|c| c.is_ascii_digit() || c == '-' || c == ',') =>
        {
            path
        }
        Some(_) => return None,
        None => s,
    };
    if s.bytes().any(|b| in_set(NOT_IN_PATHS, b)) {
        return None;
    }
    let name = s.rfind('/').map_or(s, |i| &s[i + 1..]);
    let has_ext = name
        .rfind('.')
        .map(|i| (&name[..i], &name[i + 1..]))
        .is_some_and(|(stem, ext)| {
            !stem.is_empty()
                && (1..=6).contains(&ext.len())
                && ext.chars().all(|c| c.is_ascii_alphanumeric())
                && !ext.chars().all(|c| c.is_ascii_digit())
        });
    // Every component non-empty (`s` does not start with `/`), unless it ends with `/`.
    let dir = s.contains('/') && (s.ends_with('/') || !s.as_bytes().windows(2).any(|w| w == b"//"));
    if has_ext
        || (dir
            && s.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_'))
    {
        Some(s.to_string())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_sets_are_the_character_lists() {
        for b in 0..=255u8 {
            let c = char::from(b);
            assert_eq!(
                in_set(NOT_IN_PATHS, b),
                b < 128 && "(){}[]=<>|$*?!@#%^&\"'\\".contains(c),
                "{b}"
            );
            assert_eq!(
                in_set(TRIMMED, b),
                b < 128 && ",;()[]{}\"'*<>".contains(c),
                "{b}"
            );
        }
    }
}
