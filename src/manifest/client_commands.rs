//! What the agent clients' project settings ([`super::obeyed::CLIENT_PROJECT_FILES`]) name as
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

/// The most files of one settings directory ([`super::obeyed::SETTINGS_DIRS`]) read.
const MAX_DIR_FILES: usize = 64;

/// The words of the `*.json` files directly in each directory of `dirs` (relative to
/// `repo_root`), at most [`MAX_DIR_FILES`] of each in name order: none for a directory that is
/// not there or that is, or lies below, a link.
pub(crate) fn dir_words(repo_root: &Path, dirs: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for d in dirs {
        let mut at = repo_root.to_path_buf();
        let real = d.split('/').all(|c| {
            at.push(c);
            std::fs::symlink_metadata(&at).is_ok_and(|m| m.is_dir())
        });
        if !real {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(&at) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .flatten()
            .take(super::implicit_code::MAX_NAMES)
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".json"))
            .collect();
        names.sort();
        names.truncate(MAX_DIR_FILES);
        let files: Vec<String> = names.iter().map(|n| format!("{d}/{n}")).collect();
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        for w in words(repo_root, &files) {
            if !out.contains(&w) {
                out.push(w);
            }
        }
    }
    out
}

/// The words of every client settings file of the repository at `repo_root` (its main
/// checkout): [`super::obeyed::settings_read_as_words`] and the files of
/// [`super::obeyed::SETTINGS_DIRS`].
pub(crate) fn settings_words(repo_root: &Path) -> Vec<String> {
    let files: Vec<&str> = super::obeyed::settings_read_as_words().collect();
    let mut out = words(repo_root, &files);
    for w in dir_words(repo_root, &super::obeyed::SETTINGS_DIRS) {
        if !out.contains(&w) {
            out.push(w);
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

    /// Copilot CLI's hook files (`.github/hooks/*.json`) and the new settings files (Codex's
    /// hooks, Copilot CLI's repository settings) are read for the scripts they name; an
    /// editor's settings are not; a hooks directory that is a link, or below one, gives none.
    #[test]
    fn hook_files_and_the_new_settings_name_their_scripts() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        for (f, text) in [
            (
                ".github/hooks/audit.json",
                r#"{"version": 1, "hooks": {"preToolUse": [{"type": "command", "bash": "./scripts/audit.sh"}]}}"#,
            ),
            (".github/hooks/notes.txt", "sh scripts/not-json.sh"),
            (
                ".codex/hooks.json",
                r#"{"hooks": {"Stop": [{"command": "python3 tools/stop.py"}]}}"#,
            ),
            (
                ".github/copilot/settings.json",
                r#"{"hooks": {"sessionStart": [{"bash": "sh ci/start.sh"}]}}"#,
            ),
            (
                ".vscode/settings.json",
                r#"{"rust-analyzer.linkedProjects": ["Cargo.toml"]}"#,
            ),
        ] {
            std::fs::create_dir_all(root.join(f).parent().expect("parent")).expect("mkdir");
            std::fs::write(root.join(f), text).expect("write");
        }
        let w = settings_words(root);
        for want in ["./scripts/audit.sh", "tools/stop.py", "ci/start.sh"] {
            assert!(w.iter().any(|x| x == want), "{want} in {w:?}");
        }
        for not in ["scripts/not-json.sh", "Cargo.toml"] {
            assert!(!w.iter().any(|x| x == not), "{not} in {w:?}");
        }
        // Through a link: nothing.
        std::fs::rename(root.join(".github"), root.join("elsewhere")).expect("mv");
        std::os::unix::fs::symlink(root.join("elsewhere"), root.join(".github")).expect("link");
        assert!(dir_words(root, &[".github/hooks"]).is_empty());
        std::fs::remove_file(root.join(".github")).expect("rm");
        std::fs::create_dir_all(root.join(".github")).expect("mkdir");
        std::os::unix::fs::symlink(root.join("elsewhere/hooks"), root.join(".github/hooks"))
            .expect("link");
        assert!(dir_words(root, &[".github/hooks"]).is_empty());
    }
}
