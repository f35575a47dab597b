//! Which model a turn runs against: the request's, else the session's, else the server
//! default. Models come from the configuration until the models service lands; with none
//! configured, an OPENAI_API_KEY or ANTHROPIC_API_KEY in the environment provides one.

use std::collections::BTreeMap;

use crate::{
    config::ModelConfig,
    domain::{Error, Resource, Result},
    providers::{ModelSpec, ProviderKind},
};

/// A model ready to use.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedModel {
    /// The model's id (`models/{id}` in the API).
    pub id: String,
    pub spec: ModelSpec,
    /// 0 when unknown.
    pub context_window: u32,
}

pub struct ModelResolver {
    models: BTreeMap<String, ModelConfig>,
    default: Option<String>,
}

impl ModelResolver {
    pub fn new(models: BTreeMap<String, ModelConfig>, default: Option<String>) -> Self {
        let mut models = models;
        let mut default = default;
        if models.is_empty() {
            // First start with a key in the environment: reference the variable, never copy the key.
            for (id, provider, model, env) in [
                ("openai", "openai", "gpt-4.1-mini", "OPENAI_API_KEY"),
                (
                    "anthropic",
                    "anthropic",
                    "claude-sonnet-4-5",
                    "ANTHROPIC_API_KEY",
                ),
            ] {
                if std::env::var_os(env).is_some_and(|v| !v.is_empty()) {
                    models.insert(
                        id.to_owned(),
                        ModelConfig {
                            provider: provider.into(),
                            model: model.into(),
                            api_key_env: Some(env.into()),
                            ..ModelConfig::mock()
                        },
                    );
                    default.get_or_insert_with(|| id.to_owned());
                }
            }
        }
        if default.is_none() && models.len() == 1 {
            default = models.keys().next().cloned();
        }
        Self { models, default }
    }

    /// Whether a model with this id exists.
    pub fn contains(&self, id: &str) -> bool {
        self.models.contains_key(id)
    }

    /// Resolves request > session > default.
    pub fn resolve(&self, requested: Option<&str>, session: Option<&str>) -> Result<ResolvedModel> {
        let id = match requested.or(session).or(self.default.as_deref()) {
            Some(id) => id,
            None => {
                return Err(Error::FailedPrecondition {
                    reason: "NO_MODEL_CONFIGURED",
                    message: "no model is configured: add one under [models] in the config file \
                              (`octo init` writes an example), set OPENAI_API_KEY or \
                              ANTHROPIC_API_KEY, or run `octo serve --demo` for the built-in mock model"
                        .into(),
                });
            }
        };
        let config = self
            .models
            .get(id)
            .ok_or_else(|| Error::not_found(Resource::Model, format!("models/{id}")))?;
        let kind = match config.provider.as_str() {
            "openai" | "openai-compatible" => ProviderKind::OpenAiCompatible,
            "anthropic" => ProviderKind::Anthropic,
            "mock" => ProviderKind::Mock,
            other => {
                return Err(Error::FailedPrecondition {
                    reason: "MODEL_MISCONFIGURED",
                    message: format!(
                        "models/{id} has unknown provider {other:?} (use openai, anthropic or mock)"
                    ),
                });
            }
        };
        let api_key = match (&config.api_key_env, &config.api_key) {
            (Some(var), _) => Some(std::env::var(var).map_err(|_| Error::FailedPrecondition {
                reason: "MODEL_MISCONFIGURED",
                message: format!("models/{id} reads its API key from ${var}, which is not set"),
            })?),
            (None, key) => key.clone(),
        };
        Ok(ResolvedModel {
            id: id.to_owned(),
            spec: ModelSpec {
                kind,
                provider_model: config.model.clone(),
                base_url: config.base_url.clone(),
                api_key,
                extra_headers: BTreeMap::new(),
                max_output_tokens: config.max_output_tokens,
                options: serde_json::Value::Object(config.options.clone().into_iter().collect()),
            },
            context_window: config.context_window,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver() -> ModelResolver {
        let mut models = BTreeMap::new();
        models.insert("a".to_owned(), ModelConfig::mock());
        models.insert("b".to_owned(), ModelConfig::mock());
        ModelResolver::new(models, Some("a".into()))
    }

    #[test]
    fn request_beats_session_beats_default() {
        let r = resolver();
        assert_eq!(r.resolve(Some("b"), Some("a")).expect("ok").id, "b");
        assert_eq!(r.resolve(None, Some("b")).expect("ok").id, "b");
        assert_eq!(r.resolve(None, None).expect("ok").id, "a");
        assert!(matches!(
            r.resolve(Some("zz"), None),
            Err(Error::NotFound { .. })
        ));
    }
}
