//! Task body text and the file paths a task names.

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

/// File paths a text names: backtick-quoted paths and bare `dir/file.ext` tokens.
pub(crate) fn extract_files(text: &str) -> Vec<String> {
    let mut files: Vec<String> = Vec::new();
    let mut push = |candidate: &str| {
        if let Some(path) = normalize_path_candidate(candidate)
            && !files.contains(&path)
        {
            files.push(path);
        }
    };
    let mut in_tick = false;
    for (i, part) in text.split('`').enumerate() {
        if i > 0 {
            in_tick = !in_tick;
        }
        if in_tick {
            if !part.contains(char::is_whitespace) {
                push(part);
            }
        } else {
            for token in part.split_whitespace() {
                // Most words name no file: skip them before trimming (trimming only removes
                // punctuation at the ends, so a kept token contains `/` or `src` already).
                if !token.contains('/') && !token.contains("src") {
                    continue;
                }
                let token = token.trim_matches(|c: char| ",;()[]{}\"'*<>".contains(c));
                if token.contains('/') || token.starts_with("src") {
                    push(token);
                }
            }
        }
    }
    files
}

fn normalize_path_candidate(s: &str) -> Option<String> {
    let s = s.trim_end_matches(['.', ',', ':', ';']);
    if s.is_empty() || s.contains("://") || s.starts_with('-') || s.starts_with('/') {
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
    if s.chars().any(|c| "(){}[]=<>|$*?!@#%^&\"'\\".contains(c)) {
        return None;
    }
    let name = s.rsplit('/').next().unwrap_or(s);
    let has_ext = name.rsplit_once('.').is_some_and(|(stem, ext)| {
        !stem.is_empty()
            && (1..=6).contains(&ext.len())
            && ext.chars().all(|c| c.is_ascii_alphanumeric())
            && !ext.chars().all(|c| c.is_ascii_digit())
    });
    let dir = s.contains('/') && s.split('/').all(|c| !c.is_empty() || s.ends_with('/'));
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
