//! The endpoints each client orch knows calls: its default API hosts, and those the user
//! pointed it at (the variables it reads, Codex's and opencode's provider settings). A confined
//! agent of the client reaches them with nothing in `network_allow`. Read from `orch up`'s own
//! environment and the user's own settings, never from an attempt's copy or the worktree (an
//! agent must not be able to add an endpoint).

use std::path::{Path, PathBuf};

use super::{AgentSpec, KnownCli};
use crate::sandbox::net::allow::{AllowList, Endpoint};

impl AgentSpec {
    /// Adds to `allow` what this agent reaches under a confined network: its client's own
    /// endpoints ([`KnownCli::endpoints`], from orch's own environment and the user's own
    /// settings) and its `network_allow`.
    pub(crate) fn add_reachable(&self, allow: &mut AllowList) {
        if let Some(cli) = KnownCli::of(&self.command) {
            let env = |k: &str| std::env::var(k).ok();
            for e in cli.endpoints(&env) {
                allow.add(e);
            }
        }
        for e in &self.sandbox.network.allow.0 {
            allow.add(e.clone());
        }
    }

    /// For tests of the network's decisions: the `claude` preset running `command`, with
    /// `network = mode` and `network_allow = allow`.
    #[cfg(test)]
    pub(crate) fn for_network_tests(
        command: &[&str],
        mode: Option<super::super::NetworkMode>,
        allow: &[&str],
    ) -> AgentSpec {
        let mut a = crate::manifest::presets()
            .get("claude")
            .cloned()
            .expect("preset");
        a.command = command.iter().map(|s| (*s).to_string()).collect();
        a.sandbox.network.mode = mode;
        a.sandbox.network.allow = AllowList(
            allow
                .iter()
                .map(|e| Endpoint::parse(e).expect("entry"))
                .collect(),
        );
        a
    }
}

/// The most of a settings file read for its endpoints.
const SETTINGS_MAX: u64 = 1 << 20;

impl KnownCli {
    /// The hosts the client calls by default (its model API, its login's token refresh).
    pub(crate) fn default_endpoints(self) -> &'static [&'static str] {
        match self {
            Self::Claude => &["api.anthropic.com:443", "console.anthropic.com:443"],
            Self::Codex => &[
                "api.openai.com:443",
                "chatgpt.com:443",
                "auth.openai.com:443",
            ],
            Self::Gemini => &[
                "generativelanguage.googleapis.com:443",
                "cloudcode-pa.googleapis.com:443",
                "oauth2.googleapis.com:443",
            ],
            Self::Aider => &["api.openai.com:443", "api.anthropic.com:443"],
            Self::Opencode => &[
                "api.anthropic.com:443",
                "api.openai.com:443",
                "models.dev:443",
                "opencode.ai:443",
            ],
            Self::Qwen => &[
                "dashscope.aliyuncs.com:443",
                "dashscope-intl.aliyuncs.com:443",
                "chat.qwen.ai:443",
            ],
            Self::Copilot => &[
                "api.githubcopilot.com:443",
                "api.individual.githubcopilot.com:443",
                "api.business.githubcopilot.com:443",
                "api.enterprise.githubcopilot.com:443",
                "github.com:443",
                "api.github.com:443",
            ],
        }
    }

    /// The variables that point the client at another endpoint (a URL each).
    pub(crate) fn endpoint_vars(self) -> &'static [&'static str] {
        match self {
            Self::Claude => &[
                "ANTHROPIC_BASE_URL",
                "ANTHROPIC_BEDROCK_BASE_URL",
                "ANTHROPIC_VERTEX_BASE_URL",
            ],
            Self::Codex => &["OPENAI_BASE_URL"],
            Self::Gemini => &[
                "GOOGLE_GEMINI_BASE_URL",
                "GOOGLE_VERTEX_BASE_URL",
                "CODE_ASSIST_ENDPOINT",
            ],
            Self::Aider => &[
                "OPENAI_API_BASE",
                "OPENAI_BASE_URL",
                "ANTHROPIC_BASE_URL",
                "ANTHROPIC_API_BASE",
                "OLLAMA_API_BASE",
                "OPENROUTER_API_BASE",
                "AZURE_API_BASE",
            ],
            Self::Opencode => &["ANTHROPIC_BASE_URL", "OPENAI_BASE_URL"],
            Self::Qwen => &["OPENAI_BASE_URL"],
            Self::Copilot => &["COPILOT_PROVIDER_BASE_URL"],
        }
    }

    /// Every endpoint of the client: its defaults, the variables of `env` (orch's own
    /// environment), and the base URLs of the user's own settings (Codex's `config.toml`
    /// `model_providers`, opencode's `provider.*.options.baseURL`).
    pub(crate) fn endpoints(self, env: &dyn Fn(&str) -> Option<String>) -> Vec<Endpoint> {
        let mut out: Vec<Endpoint> = Vec::new();
        let mut add = |e: Endpoint| {
            if !out.contains(&e) {
                out.push(e);
            }
        };
        for e in self.default_endpoints() {
            if let Ok(e) = Endpoint::parse(e) {
                add(e);
            }
        }
        for var in self.endpoint_vars() {
            if let Some(e) = env(var).as_deref().and_then(Endpoint::of_url) {
                add(e);
            }
        }
        for url in self.settings_urls(env) {
            if let Some(e) = Endpoint::of_url(&url) {
                add(e);
            }
        }
        out
    }

    /// The base URLs in the user's settings of the client.
    fn settings_urls(self, env: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
        let dir = |var: &str, default: &str| -> Option<PathBuf> {
            match env(var).filter(|v| !v.is_empty()) {
                Some(v) => Some(PathBuf::from(v)),
                None => crate::manifest::expand_home(default),
            }
        };
        match self {
            Self::Codex => {
                let Some(text) =
                    dir("CODEX_HOME", "~/.codex").and_then(|d| read(&d.join("config.toml")))
                else {
                    return Vec::new();
                };
                let Ok(doc) = text.parse::<toml::Table>() else {
                    return Vec::new();
                };
                let providers = doc.get("model_providers").and_then(toml::Value::as_table);
                let mut urls: Vec<String> = providers
                    .into_iter()
                    .flat_map(|t| t.values())
                    .filter_map(|p| p.get("base_url")?.as_str().map(str::to_string))
                    .collect();
                if let Some(u) = doc.get("openai_base_url").and_then(toml::Value::as_str) {
                    urls.push(u.to_string());
                }
                urls
            }
            Self::Opencode => {
                let Some(d) = dir("XDG_CONFIG_HOME", "~/.config") else {
                    return Vec::new();
                };
                let mut urls = Vec::new();
                for name in ["opencode.json", "opencode.jsonc", "config.json"] {
                    let Some(text) = read(&d.join("opencode").join(name)) else {
                        continue;
                    };
                    let Some(doc) = crate::untrusted::jsonc::parse(&text) else {
                        continue;
                    };
                    let providers = doc.get("provider").and_then(serde_json::Value::as_object);
                    urls.extend(
                        providers
                            .into_iter()
                            .flat_map(|m| m.values())
                            .filter_map(|p| {
                                p.get("options")?
                                    .get("baseURL")?
                                    .as_str()
                                    .map(str::to_string)
                            }),
                    );
                }
                urls
            }
            _ => Vec::new(),
        }
    }
}

/// A settings file's text (at most [`SETTINGS_MAX`] bytes). The user's own file (a link to
/// their dotfiles is theirs too).
fn read(path: &Path) -> Option<String> {
    let bytes = crate::untrusted::read::head_of_yours(path, SETTINGS_MAX).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_client_has_default_endpoints_that_parse() {
        use KnownCli::*;
        for cli in [Claude, Codex, Gemini, Aider, Opencode, Qwen, Copilot] {
            assert!(!cli.default_endpoints().is_empty(), "{cli:?}");
            for e in cli.default_endpoints() {
                assert!(Endpoint::parse(e).is_ok(), "{cli:?}: {e}");
            }
            assert!(!cli.endpoint_vars().is_empty(), "{cli:?}");
        }
        assert!(Gemini.default_endpoints()[0].starts_with("generativelanguage"));
        assert!(Qwen.default_endpoints()[0].starts_with("dashscope"));
    }

    #[test]
    fn the_users_variables_and_settings_add_endpoints() {
        let dir = tempfile::tempdir().expect("tempdir");
        let codex = dir.path().join("codex");
        std::fs::create_dir_all(&codex).expect("mkdir");
        std::fs::write(
            codex.join("config.toml"),
            "model_provider = \"fake\"\n[model_providers.fake]\nbase_url = \"http://127.0.0.1:4000/v1\"\n",
        )
        .expect("write");
        let oc = dir.path().join("config/opencode");
        std::fs::create_dir_all(&oc).expect("mkdir");
        std::fs::write(
            oc.join("opencode.jsonc"),
            "{\n // mine\n \"provider\": {\"x\": {\"options\": {\"baseURL\": \"http://[::1]:5000/v1\",},},},\n}\n",
        )
        .expect("write");
        let (codex_s, config_s) = (
            codex.display().to_string(),
            dir.path().join("config").display().to_string(),
        );
        let env = move |k: &str| match k {
            "CODEX_HOME" => Some(codex_s.clone()),
            "XDG_CONFIG_HOME" => Some(config_s.clone()),
            "ANTHROPIC_BASE_URL" => Some("http://127.0.0.1:3999".to_string()),
            _ => None,
        };
        let shown = |cli: KnownCli| -> Vec<String> {
            cli.endpoints(&env)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert!(shown(KnownCli::Claude).contains(&"127.0.0.1:3999".to_string()));
        assert!(shown(KnownCli::Claude).contains(&"api.anthropic.com:443".to_string()));
        assert!(shown(KnownCli::Codex).contains(&"127.0.0.1:4000".to_string()));
        assert!(shown(KnownCli::Opencode).contains(&"[::1]:5000".to_string()));
        assert!(
            !shown(KnownCli::Copilot)
                .iter()
                .any(|e| e.starts_with("127."))
        );
    }
}
