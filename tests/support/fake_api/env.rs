//! The environment that points each real client at the fake model API, with homes of its own:
//! shared by the end-to-end tests (`tests/support/clis.rs`) and the client start benchmark
//! (`benches/clients.rs`).

use std::path::Path;
use std::process::Command;

use super::FakeApi;

/// The environment that points a CLI at the fake API, with its own homes under `home`.
pub fn client_env(cmd: &mut Command, clis: &Path, api: &FakeApi, home: &Path) {
    let path = std::env::join_paths(std::iter::once(clis.join("bin")).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("PATH");
    let codex_home = home.join("codex-home");
    std::fs::create_dir_all(&codex_home).expect("codex home");
    std::fs::write(codex_home.join("config.toml"), codex_config(api)).expect("codex config");
    // Gemini CLI: the API-key login a user would have chosen (with GOOGLE_GEMINI_BASE_URL set
    // and no choice saved, it picks a "gateway" login that headless mode rejects), no usage
    // statistics.
    let gemini_dir = home.join(".gemini");
    std::fs::create_dir_all(&gemini_dir).expect("gemini home");
    std::fs::write(
        gemini_dir.join("settings.json"),
        r#"{"security": {"auth": {"selectedType": "gemini-api-key"}}, "privacy": {"usageStatisticsEnabled": false}}"#,
    )
    .expect("gemini settings");
    // opencode: the fake API as an OpenAI-compatible provider in the user's configuration.
    let opencode_dir = home.join(".config/opencode");
    std::fs::create_dir_all(&opencode_dir).expect("opencode config dir");
    std::fs::write(opencode_dir.join("opencode.json"), opencode_config(api))
        .expect("opencode config");
    // Qwen Code: its own retries of a 429 off (they wait a minute each), as a user who wants
    // a limit reported at once sets it.
    let qwen_dir = home.join(".qwen");
    std::fs::create_dir_all(&qwen_dir).expect("qwen dir");
    std::fs::write(qwen_dir.join("settings.json"), QWEN_SETTINGS).expect("qwen settings");
    chat_clients_env(cmd, api);
    cmd.env("PATH", path)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("ANTHROPIC_BASE_URL", api.base_url())
        .env("ANTHROPIC_API_KEY", "sk-ant-fake")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("CODEX_HOME", &codex_home)
        .env("FAKE_OPENAI_KEY", "sk-fake")
        .env("GEMINI_API_KEY", "fake-gemini-key")
        .env("GOOGLE_GEMINI_BASE_URL", api.base_url())
        // aider: an OpenAI-compatible provider (litellm's `openai/` prefix) at the fake API,
        // and litellm's model list from its package, not the network.
        .env("OPENAI_API_BASE", format!("{}/v1", api.base_url()))
        .env("OPENAI_API_KEY", "sk-fake")
        .env("AIDER_MODEL", "openai/fake-model")
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True");
}

/// Qwen Code's settings in the tests' HOME: no retries of its own.
pub const QWEN_SETTINGS: &str = r#"{"model": {"generationConfig": {"maxRetries": 0}}}"#;

/// opencode's configuration: the fake API as an OpenAI-compatible provider, its model the
/// default.
pub fn opencode_config(api: &FakeApi) -> String {
    serde_json::json!({
        "provider": {"fake": {"npm": "@ai-sdk/openai-compatible", "name": "Fake",
            "options": {"baseURL": format!("{}/v1", api.base_url()), "apiKey": "sk-fake"},
            "models": {"fake-model": {"name": "Fake model",
                "cost": {"input": 3.0, "output": 15.0}}}}},
        "model": "fake/fake-model"
    })
    .to_string()
}

/// The variables that point Qwen Code and Copilot CLI at the fake API (what a user sets).
pub fn chat_clients_env(cmd: &mut Command, api: &FakeApi) {
    cmd.env("OPENAI_BASE_URL", format!("{}/v1", api.base_url()))
        .env("OPENAI_MODEL", "fake-model")
        .env(
            "COPILOT_PROVIDER_BASE_URL",
            format!("{}/v1", api.base_url()),
        )
        .env("COPILOT_PROVIDER_TYPE", "openai")
        .env("COPILOT_PROVIDER_API_KEY", "sk-fake")
        .env("COPILOT_MODEL", "fake-model")
        .env("COPILOT_OFFLINE", "true");
}

/// Codex's configuration: the fake API as its model provider (Responses API), and the sandbox
/// without its default write access to /tmp and $TMPDIR, where the test's repository lives:
/// else the sandbox would let `orch task done` write the status file whatever the preset says.
pub fn codex_config(api: &FakeApi) -> String {
    format!(
        "model = \"gpt-5.1-codex\"\nmodel_provider = \"fake\"\n\n\
         [model_providers.fake]\nname = \"fake\"\nbase_url = \"{}/v1\"\n\
         env_key = \"FAKE_OPENAI_KEY\"\nwire_api = \"responses\"\n\
         request_max_retries = 0\nstream_max_retries = 0\n\n\
         [sandbox_workspace_write]\nexclude_slash_tmp = true\nexclude_tmpdir_env_var = true\n",
        api.base_url()
    )
}
