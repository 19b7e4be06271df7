//! JSON with comments and trailing commas, as clients and dev containers write their settings
//! (a file of the repository or of the user: untrusted, read bounded by the caller). One pass
//! to drop the comments, one to drop the trailing commas.

/// JSON, or JSON with `//` and `/* */` comments and trailing commas (opencode's `.jsonc`, a
/// dev container's `devcontainer.json`), outside strings; `None` when it is neither.
pub(crate) fn parse(text: &str) -> Option<serde_json::Value> {
    if let Ok(v) = serde_json::from_str(text) {
        return Some(v);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                for n in chars.by_ref() {
                    if n == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                chars.next();
                let mut prev = ' ';
                for n in chars.by_ref() {
                    if prev == '*' && n == '/' {
                        break;
                    }
                    prev = n;
                }
            }
            _ => out.push(c),
        }
    }
    // Trailing commas before `}` or `]`.
    let mut cleaned = String::with_capacity(out.len());
    let bytes: Vec<char> = out.chars().collect();
    for (i, c) in bytes.iter().enumerate() {
        if *c == ',' {
            let next = bytes[i + 1..].iter().find(|n| !n.is_whitespace());
            if matches!(next, Some('}') | Some(']')) {
                continue;
            }
        }
        cleaned.push(*c);
    }
    serde_json::from_str(&cleaned).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_and_trailing_commas_outside_strings_are_dropped() {
        let v = parse(
            "{\n  // a comment\n  \"name\": \"x // not a comment\",\n  /* block */ \"image\": \"a:1\",\n  \"list\": [1, 2,],\n}\n",
        )
        .expect("jsonc");
        assert_eq!(v["name"], "x // not a comment");
        assert_eq!(v["image"], "a:1");
        assert_eq!(v["list"], serde_json::json!([1, 2]));
        assert!(parse("{\"a\": }").is_none());
    }
}
