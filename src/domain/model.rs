//! Models: which LLM provider and model turns run against, and the rules a model config
//! must follow. Exactly one model is the default while any exists (the store keeps that
//! invariant in its transactions).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Result, Timestamp, error::Violations, secret};

/// The wire format a provider speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenAI chat completions, as spoken by OpenAI, DeepSeek, Groq, Ollama, vLLM, ...
    OpenAiCompatible,
    /// Anthropic messages.
    Anthropic,
    /// The built-in deterministic model for tests, demos and benchmarks.
    Mock,
}

impl ProviderKind {
    /// The names the configuration file uses.
    pub fn parse_config_name(name: &str) -> Option<Self> {
        match name {
            "openai" | "openai-compatible" | "openai_compatible" => {
                Some(ProviderKind::OpenAiCompatible)
            }
            "anthropic" => Some(ProviderKind::Anthropic),
            "mock" => Some(ProviderKind::Mock),
            _ => None,
        }
    }
}

/// What a model can do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelCapabilities {
    pub tools: bool,
    pub vision: bool,
    pub reasoning: bool,
}

/// A stored model config.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// `models/{id}` in the API: a UUID or a slug.
    pub id: String,
    pub display_name: String,
    pub provider: ProviderKind,
    /// The provider's model id, e.g. `gpt-4.1-mini`.
    pub provider_model: String,
    /// Empty for the provider's default.
    pub base_url: String,
    /// The key itself, stored server-side and never returned.
    pub api_key: Option<String>,
    /// The environment variable holding the key (wins over `api_key`).
    pub api_key_env: Option<String>,
    pub capabilities: ModelCapabilities,
    /// 0 for unknown.
    pub context_window: u32,
    /// 0 for the provider's default.
    pub max_output_tokens: u32,
    pub is_default: bool,
    pub extra_headers: BTreeMap<String, String>,
    /// Provider-specific options (the mock's `reply`, `tokens`, `token_delay_ms`, ...).
    pub options: serde_json::Map<String, serde_json::Value>,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
    /// Bumped on every change; the etag.
    pub revision: i64,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("provider_model", &self.provider_model)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| secret::MASK))
            .field("api_key_env", &self.api_key_env)
            .field("is_default", &self.is_default)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

impl Model {
    /// A model with defaults for everything but the provider.
    pub fn new(id: impl Into<String>, provider: ProviderKind) -> Self {
        let now = Timestamp::now();
        Model {
            id: id.into(),
            display_name: String::new(),
            provider,
            provider_model: String::new(),
            base_url: String::new(),
            api_key: None,
            api_key_env: None,
            capabilities: ModelCapabilities::default(),
            context_window: 0,
            max_output_tokens: 0,
            is_default: false,
            extra_headers: BTreeMap::new(),
            options: serde_json::Map::new(),
            create_time: now,
            update_time: now,
            revision: 1,
        }
    }

    /// The masked hint reads return in place of the key; empty when there is no key.
    pub fn api_key_hint(&self) -> String {
        self.api_key
            .as_deref()
            .map(secret::mask)
            .unwrap_or_default()
    }

    /// Checks the fields a client sets. Field paths are relative to the model.
    pub fn validate(&self) -> Result<()> {
        let mut v = Violations::new();
        if self.display_name.chars().count() > 256 {
            v.add("display_name", "must be at most 256 characters");
        }
        if self.provider != ProviderKind::Mock && self.provider_model.trim().is_empty() {
            v.add(
                "provider_model",
                "is required: the provider's model id, e.g. gpt-4.1-mini",
            );
        }
        if self.provider_model.len() > 256 {
            v.add("provider_model", "must be at most 256 bytes");
        }
        if !self.base_url.is_empty() {
            match reqwest::Url::parse(&self.base_url) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
                _ => v.add(
                    "base_url",
                    format!(
                        "must be an http or https URL, got {:?}",
                        truncate(&self.base_url)
                    ),
                ),
            }
        }
        if let Some(key) = &self.api_key
            && secret::is_masked(key)
        {
            v.add(
                "api_key",
                "is a masked hint, not a key; send the key itself",
            );
        }
        if let Some(var) = &self.api_key_env
            && !is_env_var_name(var)
        {
            v.add(
                "api_key_env",
                format!(
                    "{:?} is not an environment variable name (A-Z, 0-9, _)",
                    truncate(var)
                ),
            );
        }
        for (name, value) in &self.extra_headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                v.add(
                    "extra_headers",
                    format!("{:?} is not a valid header name", truncate(name)),
                );
            } else if http::HeaderValue::from_str(value).is_err() {
                v.add(
                    "extra_headers",
                    format!("the value of {name:?} is not a valid header value"),
                );
            }
        }
        if self.extra_headers.len() > 32 {
            v.add("extra_headers", "at most 32 headers");
        }
        v.into_result()
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn is_env_var_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// The fields UpdateModel can change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelField {
    DisplayName,
    Provider,
    ProviderModel,
    BaseUrl,
    ApiKey,
    ApiKeyEnv,
    Capabilities,
    ContextWindow,
    MaxOutputTokens,
    IsDefault,
    ExtraHeaders,
    ProviderOptions,
}

impl super::UpdatableField for ModelField {
    const ALL: &'static [Self] = &ModelField::ALL;

    fn api_name(self) -> &'static str {
        ModelField::api_name(self)
    }
}

impl ModelField {
    pub const ALL: [ModelField; 12] = [
        ModelField::DisplayName,
        ModelField::Provider,
        ModelField::ProviderModel,
        ModelField::BaseUrl,
        ModelField::ApiKey,
        ModelField::ApiKeyEnv,
        ModelField::Capabilities,
        ModelField::ContextWindow,
        ModelField::MaxOutputTokens,
        ModelField::IsDefault,
        ModelField::ExtraHeaders,
        ModelField::ProviderOptions,
    ];

    /// The proto field name.
    pub fn api_name(self) -> &'static str {
        match self {
            ModelField::DisplayName => "display_name",
            ModelField::Provider => "provider",
            ModelField::ProviderModel => "provider_model",
            ModelField::BaseUrl => "base_url",
            ModelField::ApiKey => "api_key",
            ModelField::ApiKeyEnv => "api_key_env",
            ModelField::Capabilities => "capabilities",
            ModelField::ContextWindow => "context_window",
            ModelField::MaxOutputTokens => "max_output_tokens",
            ModelField::IsDefault => "is_default",
            ModelField::ExtraHeaders => "extra_headers",
            ModelField::ProviderOptions => "provider_options",
        }
    }

    /// Copies this field from `from` into `to`. A masked or empty key never overwrites a
    /// stored one.
    pub fn apply(self, from: &Model, to: &mut Model) {
        match self {
            ModelField::DisplayName => to.display_name = from.display_name.clone(),
            ModelField::Provider => to.provider = from.provider,
            ModelField::ProviderModel => to.provider_model = from.provider_model.clone(),
            ModelField::BaseUrl => to.base_url = from.base_url.clone(),
            ModelField::ApiKey => {
                if let Some(key) = from.api_key.as_deref().filter(|k| !secret::is_masked(k)) {
                    to.api_key = Some(key.to_owned());
                }
            }
            ModelField::ApiKeyEnv => to.api_key_env = from.api_key_env.clone(),
            ModelField::Capabilities => to.capabilities = from.capabilities,
            ModelField::ContextWindow => to.context_window = from.context_window,
            ModelField::MaxOutputTokens => to.max_output_tokens = from.max_output_tokens,
            ModelField::IsDefault => to.is_default = from.is_default,
            ModelField::ExtraHeaders => to.extra_headers = from.extra_headers.clone(),
            ModelField::ProviderOptions => to.options = from.options.clone(),
        }
    }
}

/// A built-in provider preset for ListProviders.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderPreset {
    pub id: &'static str,
    pub display_name: &'static str,
    pub kind: ProviderKind,
    pub base_url: &'static str,
    pub api_key_env: &'static str,
    pub suggested_models: &'static [&'static str],
    pub docs_url: &'static str,
}

/// The presets, in the order ListProviders returns them.
pub const PROVIDER_PRESETS: &[ProviderPreset] = &[
    ProviderPreset {
        id: "openai",
        display_name: "OpenAI",
        kind: ProviderKind::OpenAiCompatible,
        base_url: "https://api.openai.com/v1",
        api_key_env: "OPENAI_API_KEY",
        suggested_models: &["gpt-4.1", "gpt-4.1-mini", "o4-mini"],
        docs_url: "https://platform.openai.com/docs/api-reference/chat",
    },
    ProviderPreset {
        id: "anthropic",
        display_name: "Anthropic",
        kind: ProviderKind::Anthropic,
        base_url: "https://api.anthropic.com",
        api_key_env: "ANTHROPIC_API_KEY",
        suggested_models: &["claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5"],
        docs_url: "https://docs.anthropic.com/en/api/messages",
    },
    ProviderPreset {
        id: "deepseek",
        display_name: "DeepSeek",
        kind: ProviderKind::OpenAiCompatible,
        base_url: "https://api.deepseek.com/v1",
        api_key_env: "DEEPSEEK_API_KEY",
        suggested_models: &["deepseek-chat", "deepseek-reasoner"],
        docs_url: "https://api-docs.deepseek.com/",
    },
    ProviderPreset {
        id: "openrouter",
        display_name: "OpenRouter",
        kind: ProviderKind::OpenAiCompatible,
        base_url: "https://openrouter.ai/api/v1",
        api_key_env: "OPENROUTER_API_KEY",
        suggested_models: &["openai/gpt-4.1-mini", "anthropic/claude-sonnet-4.5"],
        docs_url: "https://openrouter.ai/docs/api-reference/overview",
    },
    ProviderPreset {
        id: "groq",
        display_name: "Groq",
        kind: ProviderKind::OpenAiCompatible,
        base_url: "https://api.groq.com/openai/v1",
        api_key_env: "GROQ_API_KEY",
        suggested_models: &["llama-3.3-70b-versatile", "openai/gpt-oss-120b"],
        docs_url: "https://console.groq.com/docs/openai",
    },
    ProviderPreset {
        id: "mistral",
        display_name: "Mistral",
        kind: ProviderKind::OpenAiCompatible,
        base_url: "https://api.mistral.ai/v1",
        api_key_env: "MISTRAL_API_KEY",
        suggested_models: &["mistral-large-latest", "codestral-latest"],
        docs_url: "https://docs.mistral.ai/api/",
    },
    ProviderPreset {
        id: "together",
        display_name: "Together AI",
        kind: ProviderKind::OpenAiCompatible,
        base_url: "https://api.together.xyz/v1",
        api_key_env: "TOGETHER_API_KEY",
        suggested_models: &["meta-llama/Llama-3.3-70B-Instruct-Turbo"],
        docs_url: "https://docs.together.ai/docs/openai-api-compatibility",
    },
    ProviderPreset {
        id: "fireworks",
        display_name: "Fireworks AI",
        kind: ProviderKind::OpenAiCompatible,
        base_url: "https://api.fireworks.ai/inference/v1",
        api_key_env: "FIREWORKS_API_KEY",
        suggested_models: &["accounts/fireworks/models/llama-v3p3-70b-instruct"],
        docs_url: "https://docs.fireworks.ai/tools-sdks/openai-compatibility",
    },
    ProviderPreset {
        id: "xai",
        display_name: "xAI",
        kind: ProviderKind::OpenAiCompatible,
        base_url: "https://api.x.ai/v1",
        api_key_env: "XAI_API_KEY",
        suggested_models: &["grok-4", "grok-3-mini"],
        docs_url: "https://docs.x.ai/docs/api-reference",
    },
    ProviderPreset {
        id: "ollama",
        display_name: "Ollama (local)",
        kind: ProviderKind::OpenAiCompatible,
        base_url: "http://localhost:11434/v1",
        api_key_env: "",
        suggested_models: &["llama3.2", "qwen2.5-coder"],
        docs_url: "https://github.com/ollama/ollama/blob/main/docs/openai.md",
    },
    ProviderPreset {
        id: "vllm",
        display_name: "vLLM (local)",
        kind: ProviderKind::OpenAiCompatible,
        base_url: "http://localhost:8000/v1",
        api_key_env: "",
        suggested_models: &[],
        docs_url: "https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html",
    },
    ProviderPreset {
        id: "lmstudio",
        display_name: "LM Studio (local)",
        kind: ProviderKind::OpenAiCompatible,
        base_url: "http://localhost:1234/v1",
        api_key_env: "",
        suggested_models: &[],
        docs_url: "https://lmstudio.ai/docs/app/api/endpoints/openai",
    },
    ProviderPreset {
        id: "litellm",
        display_name: "LiteLLM proxy",
        kind: ProviderKind::OpenAiCompatible,
        base_url: "http://localhost:4000/v1",
        api_key_env: "LITELLM_API_KEY",
        suggested_models: &[],
        docs_url: "https://docs.litellm.ai/docs/proxy/user_keys",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_each_bad_field() {
        let mut m = Model::new("x", ProviderKind::OpenAiCompatible);
        m.base_url = "ftp://nope".into();
        m.api_key = Some("sk-a****wxyz".into());
        m.api_key_env = Some("lower".into());
        m.extra_headers.insert("bad header".into(), "v".into());
        let Err(crate::domain::Error::InvalidArgument(violations)) = m.validate() else {
            panic!("expected violations");
        };
        let fields: Vec<_> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "provider_model",
                "base_url",
                "api_key",
                "api_key_env",
                "extra_headers"
            ]
        );
        assert!(Model::new("m", ProviderKind::Mock).validate().is_ok());
    }

    #[test]
    fn a_masked_key_never_overwrites_the_stored_one() {
        let mut stored = Model::new("x", ProviderKind::Mock);
        stored.api_key = Some("sk-secret-0123456789".into());
        let mut sent = stored.clone();
        sent.api_key = Some(stored.api_key_hint());
        ModelField::ApiKey.apply(&sent, &mut stored);
        assert_eq!(stored.api_key.as_deref(), Some("sk-secret-0123456789"));
        sent.api_key = None;
        ModelField::ApiKey.apply(&sent, &mut stored);
        assert_eq!(stored.api_key.as_deref(), Some("sk-secret-0123456789"));
        sent.api_key = Some("sk-new".into());
        ModelField::ApiKey.apply(&sent, &mut stored);
        assert_eq!(stored.api_key.as_deref(), Some("sk-new"));
        assert!(!format!("{stored:?}").contains("sk-new"));
    }

    #[test]
    fn presets_cover_the_documented_providers() {
        for id in [
            "openai",
            "anthropic",
            "deepseek",
            "openrouter",
            "groq",
            "mistral",
            "together",
            "fireworks",
            "xai",
            "ollama",
            "vllm",
            "lmstudio",
            "litellm",
        ] {
            assert!(PROVIDER_PRESETS.iter().any(|p| p.id == id), "{id}");
        }
    }
}
