//! What the agent clients' project settings ([`super::trusted::CLIENT_PROJECT_FILES`]) name as
//! commands to run: a `.claude/settings.json` hook or `apiKeyHelper`, an `.mcp.json` server
//! and its arguments, Codex's `notify` and MCP servers, opencode's formatters, aider's
//! `test-cmd`. A client runs them in a person's next session in the main checkout, outside any
//! sandbox, so every file of the repository they name is protected as the settings are (a hook
//! script changed by an agent would run there).
//!
//! Fail closed: the settings are not read by their schema (each client has its own, and they
//! change), but as words: each file's text split at whitespace, quotes and the punctuation of
//! shells, JSON, TOML and YAML, and each string value of a JSON or TOML file whole (a path with
//! a space in it); a leading `$VAR/` or `${VAR}/` (`$CLAUDE_PROJECT_DIR/.claude/hooks/x.sh`)
//! taken off. Every word that names a file of the repository is then protected
//! ([`super::trusted::Guarded::paths`]), whatever key it is under. The settings are read from
//! the checkout orch protects them in (the lead's), each bounded, never through a link.

use std::path::Path;

use crate::untrusted::read;

/// The most of one client settings file read (a settings file is a few KiB).
const SETTINGS: read::Limit = read::Limit {
    bytes: 1 << 20,
    what: "client settings file",
};

/// The characters a word of a settings file ends at (quotes are taken out before: a shell's
/// `"$CLAUDE_PROJECT_DIR"/x.sh` is one word).
fn is_break(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            ',' | ':' | ';' | '[' | ']' | '{' | '}' | '(' | ')' | '=' | '&' | '|' | '<' | '>'
        )
}

/// `word` without a leading variable (`$CLAUDE_PROJECT_DIR/x` → `x`, `${HOME}/x` → `x`).
fn bare(word: &str) -> &str {
    let w = word;
    let rest = if let Some(r) = w.strip_prefix("${") {
        r.split_once('}').map(|(_, after)| after)
    } else if let Some(r) = w.strip_prefix('$') {
        r.find('/').map(|i| &r[i..])
    } else {
        None
    };
    match rest {
        Some(r) => r.trim_start_matches('/'),
        None => w,
    }
}

/// Every string value of a JSON value.
fn json_strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|x| json_strings(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| json_strings(x, out)),
        _ => {}
    }
}

/// Every string value of a TOML value.
fn toml_strings(v: &toml::Value, out: &mut Vec<String>) {
    match v {
        toml::Value::String(s) => out.push(s.clone()),
        toml::Value::Array(a) => a.iter().for_each(|x| toml_strings(x, out)),
        toml::Value::Table(t) => t.values().for_each(|x| toml_strings(x, out)),
        _ => {}
    }
}

/// The words of one settings file's `text` that may name a file.
pub(crate) fn words_of(text: &str) -> Vec<String> {
    let mut whole = Vec::new();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        json_strings(&v, &mut whole);
    } else if let Ok(t) = toml::from_str::<toml::Table>(text) {
        t.values().for_each(|v| toml_strings(v, &mut whole));
    }
    let mut out: Vec<String> = Vec::new();
    let mut push = |w: &str| {
        let w = bare(w);
        if !w.is_empty() && !out.iter().any(|o| o == w) {
            out.push(w.to_string());
        }
    };
    // Quotes (and the backslashes that escape them in JSON) taken out.
    let unquoted = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '"' | '\'' | '`' | '\\'))
            .collect()
    };
    for s in &whole {
        push(s);
        unquoted(s).split(is_break).for_each(&mut push);
    }
    unquoted(text).split(is_break).for_each(&mut push);
    out
}

/// The words of the client settings files `files` (paths relative to `repo_root`) that may name
/// a file; a file that is not there, not a regular file (a link, a directory) or past its bound
/// gives none (a link or an oversized file there is not what a client reads as its settings
/// either: a client follows a link, but orch protects the link itself and never reads through
/// one).
pub(crate) fn words(repo_root: &Path, files: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in files {
        let Ok(Some(bytes)) = read::optional(&repo_root.join(f), SETTINGS) else {
            continue;
        };
        for w in words_of(&String::from_utf8_lossy(&bytes)) {
            if !out.contains(&w) {
                out.push(w);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commands_of_every_clients_settings_are_words() {
        let claude = r#"{"hooks": {"PostToolUse": [{"matcher": "Edit", "hooks": [
            {"type": "command", "command": "\"$CLAUDE_PROJECT_DIR\"/.claude/hooks/fmt.sh --all"},
            {"type": "command", "command": "cd ${CLAUDE_PROJECT_DIR} && python3 tools/lint.py;make -f build/x.mk"}]}]},
            "apiKeyHelper": "sh ./bin/key.sh", "statusLine": {"type": "command", "command": "scripts/my status.sh"}}"#;
        let w = words_of(claude);
        for want in [
            ".claude/hooks/fmt.sh",
            "tools/lint.py",
            "build/x.mk",
            "./bin/key.sh",
            "scripts/my status.sh",
        ] {
            assert!(w.iter().any(|x| x == want), "{want} in {w:?}");
        }
        let mcp = r#"{"mcpServers": {"db": {"command": "node", "args": ["servers/db.js", "--cfg=conf/db.json"]}}}"#;
        let w = words_of(mcp);
        assert!(w.iter().any(|x| x == "servers/db.js"), "{w:?}");
        assert!(w.iter().any(|x| x == "conf/db.json"), "{w:?}");
        let codex = "notify = [\"python3\", \"hooks/notify.py\"]\n[mcp_servers.x]\ncommand = \"./mcp/x\"\nargs = [\"a b/c.py\"]\n";
        let w = words_of(codex);
        for want in ["hooks/notify.py", "./mcp/x", "a b/c.py"] {
            assert!(w.iter().any(|x| x == want), "{want} in {w:?}");
        }
        // YAML and JSON with comments (opencode.jsonc) are read as text.
        let aider = "test-cmd: pytest tests/run_all.py\nlint-cmd:\n  - 'python: scripts/lint.py'\n";
        let w = words_of(aider);
        assert!(w.iter().any(|x| x == "tests/run_all.py"), "{w:?}");
        assert!(w.iter().any(|x| x == "scripts/lint.py"), "{w:?}");
        let jsonc = "{\n // the formatter\n \"formatter\": {\"x\": {\"command\": [\"tools/fmt\", \"$FILE\"]}}}\n";
        assert!(words_of(jsonc).iter().any(|x| x == "tools/fmt"));
    }

    #[test]
    fn a_settings_file_is_read_bounded_and_never_through_a_link() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        std::fs::create_dir_all(root.join(".claude")).expect("mkdir");
        std::fs::write(
            root.join("elsewhere.json"),
            r#"{"hooks": {"x": [{"command": "sh secret/hook.sh"}]}}"#,
        )
        .expect("write");
        std::os::unix::fs::symlink(
            root.join("elsewhere.json"),
            root.join(".claude/settings.json"),
        )
        .expect("link");
        std::fs::write(root.join(".mcp.json"), "x".repeat(2 << 20)).expect("big");
        assert!(words(root, &[".claude/settings.json", ".mcp.json"]).is_empty());
        std::fs::remove_file(root.join(".claude/settings.json")).expect("rm");
        std::fs::copy(
            root.join("elsewhere.json"),
            root.join(".claude/settings.json"),
        )
        .expect("copy");
        assert!(
            words(root, &[".claude/settings.json"])
                .iter()
                .any(|w| w == "secret/hook.sh")
        );
    }
}
