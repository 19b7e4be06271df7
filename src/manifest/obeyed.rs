//! The files of a repository that a person's agent clients and toolchains obey as code when the
//! person runs them there: hooks, MCP and language servers, commands a client may run without
//! asking, plugins and scripts it loads, the program a toolchain runs instead of its own. A
//! change an agent made to one, once merged, runs in the person's next session in the main
//! checkout, outside any sandbox; so each is protected, at any depth of the repository
//! ([`super::implicit_code::anywhere_patterns`]: a client or toolchain run in a directory below
//! the root obeys the files there, and rustup, cargo and mise read every directory above it).
//!
//! An entry is a file, or a directory whose every file is protected. Each was confirmed against
//! the client pinned in the book (`docs/src/agents.md`): its code read for the path and what the
//! file may hold, and the client run once in a directory holding every candidate, under
//! `strace`, to see it open the file; the editors (VS Code, Cursor), which are not installed
//! here, on their documented behaviour. Instructions a client reads as text (`CLAUDE.md`,
//! `AGENTS.md`, `GEMINI.md`, rules, output styles, skills that hold only text) are not here:
//! they are the work.

/// The agent clients' (and editors') project configuration, as [`CLIENT_PROJECT_FILES`] names
/// it: each file's words are read for the files it names ([`super::client_commands`]), unless
/// [`NOT_READ_AS_WORDS`] holds it.
pub(crate) const CLIENT_PROJECT_FILES: [&str; 48] = [
    // Claude Code: hooks, permissions, MCP servers.
    ".claude/settings.json",
    ".claude/settings.local.json",
    ".mcp.json",
    // Claude Code: a slash command runs its `!` lines with the `allowed-tools` and `hooks` of
    // its front matter; a subagent carries `hooks`, `mcpServers` and a `permissionMode`; a
    // skill `hooks` and `allowed-tools` (Claude Code's own sandbox denies writes to
    // `.claude/skills` and `.claude/hooks`); a workflow is a script `/NAME` runs; `.claude/hooks`
    // is where the settings' hooks keep their scripts, wherever the settings are.
    ".claude/commands",
    ".claude/agents",
    ".claude/skills",
    ".claude/workflows",
    ".claude/hooks",
    // Gemini CLI: its settings (hooks, MCP servers, allowed tools); a command's `!{…}` lines run
    // in a shell when it is typed; a subagent's `mcp_servers` start commands.
    ".gemini/settings.json",
    ".gemini/commands",
    ".gemini/agents",
    // Codex: its configuration layer (`notify`, MCP servers, sandbox and approvals), hooks,
    // execution-policy rules (`prefix_rule(…, decision = "allow")`: commands run without
    // asking), and agent roles (each a configuration layer of its own).
    ".codex/config.toml",
    ".codex/hooks.json",
    ".codex/rules",
    ".codex/agents",
    // aider: `test-cmd`, `lint-cmd`, …; a model's `extra_params` (`api_base`, `extra_headers`)
    // go with every request: your code and your key to the host they name.
    ".aider.conf.yml",
    ".aider.model.settings.yml",
    // opencode: its configuration, and the directories of code it loads into its process
    // (plugins, tools), commands whose `` !`…` `` lines run in a shell, agents and modes with
    // their permission rules; and the dependencies it installs in `.opencode/node_modules`,
    // which its plugins load.
    "opencode.json",
    "opencode.jsonc",
    ".opencode/opencode.json",
    ".opencode/opencode.jsonc",
    ".opencode/plugin",
    ".opencode/plugins",
    ".opencode/tool",
    ".opencode/tools",
    ".opencode/command",
    ".opencode/commands",
    ".opencode/agent",
    ".opencode/agents",
    ".opencode/mode",
    ".opencode/modes",
    ".opencode/package.json",
    // Qwen Code: its settings (hooks); commands (`!{…}`); subagents (`hooks`, `mcpServers`,
    // `permissionMode`); skills (`hooks`, `allowedTools`).
    ".qwen/settings.json",
    ".qwen/commands",
    ".qwen/agents",
    ".qwen/skills",
    // Skills Copilot CLI and Qwen Code read from here with their `allowed-tools`.
    ".agents/skills",
    // GitHub Copilot CLI: the repository's settings (`hooks`), hooks (`*.json`), MCP and
    // language servers, skills (`allowed-tools`, applied when one is invoked).
    ".github/copilot/settings.json",
    ".github/copilot/settings.local.json",
    ".github/hooks",
    ".github/mcp.json",
    ".github/lsp.json",
    ".github/skills",
    // VS Code (documented, not installed here): a task with `runOn: folderOpen` runs when the
    // folder opens; MCP servers; settings naming the programs it runs (interpreters, language
    // servers, the terminal's environment).
    ".vscode/tasks.json",
    ".vscode/mcp.json",
    ".vscode/settings.json",
    // Cursor (documented, not installed here): MCP servers, hooks.
    ".cursor/mcp.json",
    ".cursor/hooks.json",
];

/// Of [`CLIENT_PROJECT_FILES`], the files whose words are not read: an editor's settings name
/// files of every kind (`rust-analyzer.linkedProjects = ["Cargo.toml"]`), most of them the
/// work; the file itself stays protected.
pub(crate) const NOT_READ_AS_WORDS: [&str; 1] = [".vscode/settings.json"];

/// Of [`CLIENT_PROJECT_FILES`], the directories whose files directly in them are settings read
/// as words (Copilot CLI's `.github/hooks/*.json`, each a hook naming its command).
pub(crate) const SETTINGS_DIRS: [&str; 1] = [".github/hooks"];

/// The files by which a toolchain a person runs in the repository (or a directory below it)
/// runs a program the file names instead of its own, or loads code it names:
/// - rustup: `rust-toolchain` and `rust-toolchain.toml` (a toolchain `path`: `cargo` and
///   `rustc` are the repository's binaries), found in the working directory or above;
/// - cargo: `.cargo/config.toml` and `.cargo/config` (`target.<triple>.runner`: a gate's
///   `cargo test` passes with `runner = "true"`; `build.rustc-wrapper`, `[env]`), read in
///   every directory from the working directory up;
/// - asdf and mise: `.tool-versions` (a `path:` version: the shims run that directory's
///   programs); mise's configuration (`[env]`, `_.source`, `_.path`, `[hooks]`, `path:`
///   tools), obeyed as it changes once a person trusted it (mise trusts a path, not content);
/// - npm, Yarn, pnpm, Bun: `.npmrc` (`script-shell`, `node-options`), `.yarnrc` (`yarn-path`),
///   `.yarnrc.yml` (`yarnPath`, `plugins`) and the release and plugins it names by convention,
///   `.pnpmfile.cjs` (hooks pnpm runs on install), `bunfig.toml` (`preload`),
///   `pnpm-workspace.yaml` (where pnpm 10 and later keep `scriptShell`, `nodeOptions`);
/// - git's hook managers, whose hooks run at a person's next `git commit` once installed (husky
///   sets `core.hooksPath`): `.husky`, `.githooks`, `.pre-commit-config.yaml` (a `local` hook
///   runs any command), `lefthook.yml`, `.lefthook.yml`, `lefthook-local.yml`; git LFS's
///   `.lfsconfig` (`lfs.url`: where a person's pushes of large files go);
/// - Python run from the repository (`python -m pip` puts the working directory first on its
///   path): modules that stand for the tools a person runs there (`pip.py`, `venv.py`,
///   `ensurepip.py`, `pytest.py`, `setuptools.py`) and those Python imports at every start
///   (`sitecustomize.py`, `usercustomize.py`); a virtual environment (`.venv`: uv, Poetry and
///   the editors run its `bin/python`) and `uv.toml` (the package index);
/// - the editors' workspace and container files: `*.code-workspace` (its `tasks`, `runOn:
///   folderOpen`, and `settings`), `.devcontainer` (`initializeCommand` runs on the host); the
///   MCP servers and hooks of editor agents by their documentation: Continue's `.continue`,
///   Cline's `.clinerules/hooks`, Roo's `.roo/mcp.json`, Kilo's `.kilocode/mcp.json`, Kiro's
///   `.kiro/settings/mcp.json` and `.kiro/hooks`, Amazon Q's `.amazonq/mcp.json`, Junie's
///   `.junie/mcp`, Crush's `.crush.json` and `crush.json`, Zed's `.zed/settings.json` and
///   `.zed/tasks.json`.
///
/// A version name alone (`.python-version`, `.nvmrc`, `.ruby-version`) is not here: the tool
/// picks an installed version by it, never a path of the repository.
pub(crate) const TOOLCHAIN_FILES: [&str; 53] = [
    "rust-toolchain",
    "rust-toolchain.toml",
    ".cargo/config.toml",
    ".cargo/config",
    ".tool-versions",
    "mise.toml",
    ".mise.toml",
    "mise.local.toml",
    ".mise.local.toml",
    ".mise/config.toml",
    ".config/mise",
    ".config/mise.toml",
    ".npmrc",
    ".yarnrc",
    ".yarnrc.yml",
    ".yarn/releases",
    ".yarn/plugins",
    ".pnpmfile.cjs",
    "bunfig.toml",
    "pnpm-workspace.yaml",
    ".husky",
    ".githooks",
    ".pre-commit-config.yaml",
    "lefthook.yml",
    ".lefthook.yml",
    "lefthook-local.yml",
    ".lfsconfig",
    "pip.py",
    "venv.py",
    "ensurepip.py",
    "pytest.py",
    "setuptools.py",
    "sitecustomize.py",
    "usercustomize.py",
    ".venv",
    "uv.toml",
    "*.code-workspace",
    ".devcontainer",
    // The Dev Container spec's other place (VS Code and the devcontainer CLI read it; its
    // `initializeCommand` runs on the person's machine).
    ".devcontainer.json",
    ".continue",
    ".clinerules/hooks",
    ".roo/mcp.json",
    ".kilocode/mcp.json",
    ".kiro/settings/mcp.json",
    ".kiro/hooks",
    ".amazonq/mcp.json",
    ".junie/mcp",
    ".crush.json",
    "crush.json",
    ".zed/settings.json",
    ".zed/tasks.json",
    "mise/config.toml",
    ".rtx.toml",
];

/// The files of [`CLIENT_PROJECT_FILES`] read as words, with [`SETTINGS_DIRS`].
pub(crate) fn settings_read_as_words() -> impl Iterator<Item = &'static str> {
    CLIENT_PROJECT_FILES
        .iter()
        .copied()
        .filter(|f| !NOT_READ_AS_WORDS.contains(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No entry twice, none of the two lists in the other, every entry a relative path of
    /// plain components, and the word lists drawn from the client list.
    #[test]
    fn the_lists_are_well_formed() {
        let all: Vec<&str> = CLIENT_PROJECT_FILES
            .iter()
            .chain(TOOLCHAIN_FILES.iter())
            .copied()
            .collect();
        for (i, a) in all.iter().enumerate() {
            assert!(!all[..i].contains(a), "{a} twice");
            assert!(
                !a.starts_with('/')
                    && !a.ends_with('/')
                    && a.split('/').all(|c| !c.is_empty() && c != "." && c != ".."),
                "{a}"
            );
        }
        for f in NOT_READ_AS_WORDS.iter().chain(SETTINGS_DIRS.iter()) {
            assert!(CLIENT_PROJECT_FILES.contains(f), "{f}");
        }
        assert!(!settings_read_as_words().any(|f| f == ".vscode/settings.json"));
        assert!(settings_read_as_words().any(|f| f == ".github/copilot/settings.json"));
    }
}
