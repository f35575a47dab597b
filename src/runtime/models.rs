//! Models: the stored model configs, which one a turn runs against (the request's, else
//! the session's, else the server default), and trying a model out (TestModel,
//! BenchmarkModels).
//!
//! The store is the source of truth; a snapshot of it is kept in memory so resolving a
//! turn's model costs no I/O. A miss re-reads the store once, so a model another server
//! added is found. In a cluster every change made here is announced to the other servers
//! (`changes`), which re-read the store, so a model changed or deleted elsewhere is not
//! used stale.

use std::{
    collections::BTreeMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use futures::{Stream, StreamExt, stream::FuturesUnordered};

use crate::{
    config::ModelConfig,
    domain::{
        Error, Message, Model, ProviderKind, ReasoningEffort, Resource, Result, Role, Timestamp,
        message::Part, model::ModelField,
    },
    providers::{self, ChatRequest, ModelSpec, ProviderPolicy, StreamEvent},
    store::{ModelDeletion, Store},
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

/// The model a turn runs with, and why it is not the one asked for, if it is not.
#[derive(Clone, Debug)]
pub struct Resolution {
    pub model: ResolvedModel,
    /// Set when the session's model was deleted and the default stands in for it.
    pub fallback_note: Option<String>,
}

/// The outcome of TestModel.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelTest {
    pub ok: bool,
    pub latency: Duration,
    pub error: String,
    pub reply_preview: String,
}

/// One model's BenchmarkModels result.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelBenchmark {
    pub model: String,
    pub ok: bool,
    pub time_to_first_token: Option<Duration>,
    pub total_time: Duration,
    pub error: String,
}

/// The prompt TestModel and BenchmarkModels send when given none.
pub const PROBE_PROMPT: &str = "Reply with the single word: ok";

const NO_MODEL_MESSAGE: &str = "no model is configured: add one with `octo models add` (or \
    CreateModel, or [models] in the config file; `octo init` writes an example), set \
    OPENAI_API_KEY or ANTHROPIC_API_KEY before the first start, or run `octo serve --demo` for \
    the built-in mock model";

/// Providers whose key in the environment adds a model on a first start.
const ENV_MODELS: [(&str, ProviderKind, &str, &str); 2] = [
    (
        "openai",
        ProviderKind::OpenAiCompatible,
        "gpt-4.1-mini",
        "OPENAI_API_KEY",
    ),
    (
        "anthropic",
        ProviderKind::Anthropic,
        "claude-sonnet-4-5",
        "ANTHROPIC_API_KEY",
    ),
];

pub struct Models {
    store: Arc<dyn Store>,
    /// The store's models in list order (default first).
    snapshot: RwLock<Arc<Vec<Model>>>,
    http: reqwest::Client,
    policy: ProviderPolicy,
    /// Told of every change made here (a cluster: see `changes`).
    relay: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<()>>,
}

impl Models {
    /// Loads the stored models, first adding the configured ones the store lacks (the
    /// configured default first, so a fresh store makes it the default). With no model
    /// at all, a provider key in the environment adds one that references the variable.
    pub async fn open(
        store: Arc<dyn Store>,
        configured: &BTreeMap<String, ModelConfig>,
        configured_default: Option<&str>,
        http: reqwest::Client,
        policy: ProviderPolicy,
    ) -> Result<Self> {
        let models = Self {
            store,
            snapshot: RwLock::new(Arc::default()),
            http,
            policy,
            relay: std::sync::OnceLock::new(),
        };
        let stored = models.reload().await?;
        let mut seeds: Vec<(&String, &ModelConfig)> = configured.iter().collect();
        seeds.sort_by_key(|(id, _)| Some(id.as_str()) != configured_default);
        for (id, config) in seeds {
            if stored.iter().any(|m| &m.id == id) {
                continue;
            }
            let model = from_config(id, config)?;
            tracing::info!(model = %id, "adding the configured model");
            models.store.create_model(&model).await?;
        }
        if models.reload().await?.is_empty() {
            for (id, provider, provider_model, var) in ENV_MODELS {
                if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
                    let mut model = Model::new(id, provider);
                    model.provider_model = provider_model.into();
                    model.api_key_env = Some(var.into());
                    model.capabilities.tools = true;
                    tracing::info!(model = %id, variable = var, "adding a model for the key in the environment");
                    models.store.create_model(&model).await?;
                }
            }
            models.reload().await?;
        }
        Ok(models)
    }

    /// Tells `relay` of every change made here from now on (a cluster; see `changes`).
    pub(crate) fn relay_to(&self, relay: tokio::sync::mpsc::UnboundedSender<()>) {
        let _ = self.relay.set(relay);
    }

    /// Re-reads the store after a change, and tells the other servers.
    async fn changed(&self) -> Result<Arc<Vec<Model>>> {
        if let Some(relay) = self.relay.get() {
            let _ = relay.send(());
        }
        self.reload().await
    }

    /// Re-reads the store: another server changed the models.
    pub(crate) async fn reload(&self) -> Result<Arc<Vec<Model>>> {
        let list = Arc::new(self.store.list_models().await?);
        if let Ok(mut snapshot) = self.snapshot.write() {
            *snapshot = list.clone();
        }
        Ok(list)
    }

    /// Every model, the default first, then by creation.
    pub fn list(&self) -> Arc<Vec<Model>> {
        self.snapshot.read().map(|s| s.clone()).unwrap_or_default()
    }

    fn cached(&self, id: &str) -> Option<Model> {
        self.list().iter().find(|m| m.id == id).cloned()
    }

    /// The model, re-reading the store on a miss.
    pub async fn get(&self, id: &str) -> Result<Model> {
        if let Some(model) = self.cached(id) {
            return Ok(model);
        }
        self.reload()
            .await?
            .iter()
            .find(|m| m.id == id)
            .cloned()
            .ok_or_else(|| Error::not_found(Resource::Model, format!("models/{id}")))
    }

    /// Whether the model exists.
    pub async fn exists(&self, id: &str) -> Result<bool> {
        match self.get(id).await {
            Ok(_) => Ok(true),
            Err(Error::NotFound { .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Stores a new model (id given or generated). The first model becomes the default.
    pub async fn create(&self, mut model: Model) -> Result<Model> {
        if model.id.is_empty() {
            model.id = crate::domain::new_id();
        } else if !crate::domain::is_valid_model_id(&model.id) {
            return Err(Error::invalid(
                "model_id",
                "must be 1-63 characters of a-z, 0-9 and -, starting with a letter and not \
                 ending with -",
            ));
        }
        model.validate().map_err(|e| e.within("model."))?;
        let now = Timestamp::now();
        model.create_time = now;
        model.update_time = now;
        model.revision = 1;
        let created = self.store.create_model(&model).await;
        self.changed().await?;
        created
    }

    /// Changes `fields` of a model to the values in `changes`; with `etag`, only if the
    /// model's revision still is that.
    pub async fn update(
        &self,
        id: &str,
        changes: &Model,
        fields: &[ModelField],
        expected_revision: Option<i64>,
    ) -> Result<Model> {
        let current = self.get(id).await?;
        if expected_revision.is_some_and(|r| r != current.revision) {
            return Err(etag_mismatch(id));
        }
        let mut updated = current.clone();
        for field in fields {
            field.apply(changes, &mut updated);
        }
        updated.validate().map_err(|e| e.within("model."))?;
        updated.update_time = Timestamp::now();
        updated.revision = current.revision + 1;
        let stored = self.store.update_model(&updated, current.revision).await;
        self.changed().await?;
        stored?.ok_or_else(|| etag_mismatch(id))
    }

    pub async fn delete(
        &self,
        id: &str,
        expected_revision: Option<i64>,
        force: bool,
    ) -> Result<ModelDeletion> {
        let deleted = self.store.delete_model(id, expected_revision, force).await;
        self.changed().await?;
        if let Ok(ModelDeletion {
            promoted: Some(successor),
        }) = &deleted
        {
            tracing::info!(deleted = %id, default = %successor, "the default model was deleted; promoted a successor");
        }
        deleted
    }

    /// The model a turn runs with: the request's, else the session's, else the default.
    /// A requested model must exist; a session's model that was deleted falls back to
    /// the default with a note saying so.
    pub async fn resolve(
        &self,
        requested: Option<&str>,
        session: Option<&str>,
    ) -> Result<Resolution> {
        if let Some(id) = requested {
            let model = self.get(id).await?;
            return Ok(Resolution {
                model: self.ready(&model)?,
                fallback_note: None,
            });
        }
        let mut fallback_note = None;
        if let Some(id) = session {
            match self.get(id).await {
                Ok(model) => {
                    return Ok(Resolution {
                        model: self.ready(&model)?,
                        fallback_note: None,
                    });
                }
                Err(Error::NotFound { .. }) => {
                    fallback_note = Some(format!("the session's model models/{id} was deleted"));
                }
                Err(err) => return Err(err),
            }
        }
        let default = match self.list().iter().find(|m| m.is_default).cloned() {
            Some(model) => model,
            None => self
                .reload()
                .await?
                .iter()
                .find(|m| m.is_default)
                .cloned()
                .ok_or_else(|| Error::FailedPrecondition {
                    reason: crate::domain::reason::NO_MODEL_CONFIGURED,
                    message: NO_MODEL_MESSAGE.into(),
                })?,
        };
        Ok(Resolution {
            fallback_note: fallback_note
                .map(|note| format!("{note}; using the default model models/{}", default.id)),
            model: self.ready(&default)?,
        })
    }

    /// A model's provider settings, with the key read from its variable.
    fn ready(&self, model: &Model) -> Result<ResolvedModel> {
        let api_key = match (&model.api_key_env, &model.api_key) {
            (Some(var), _) => Some(std::env::var(var).map_err(|_| Error::FailedPrecondition {
                reason: crate::domain::reason::MODEL_MISCONFIGURED,
                message: format!(
                    "models/{} reads its API key from ${var}, which is not set",
                    model.id
                ),
            })?),
            (None, key) => key.clone(),
        };
        Ok(ResolvedModel {
            id: model.id.clone(),
            spec: ModelSpec {
                kind: model.provider,
                provider_model: model.provider_model.clone(),
                base_url: model.base_url.clone(),
                api_key,
                extra_headers: model.extra_headers.clone(),
                max_output_tokens: model.max_output_tokens,
                options: serde_json::Value::Object(model.options.clone()),
            },
            context_window: model.context_window,
        })
    }

    /// Sends one minimal request to a model (stored or not) and reports how it went.
    pub async fn test(&self, model: &Model) -> ModelTest {
        let started = Instant::now();
        let outcome = match self.ready(model) {
            Ok(ready) => self.probe(&ready, PROBE_PROMPT, None).await,
            Err(err) => Err(err.to_string()),
        };
        let latency = started.elapsed();
        match outcome {
            Ok(probe) => ModelTest {
                ok: true,
                latency,
                error: String::new(),
                reply_preview: probe.reply.chars().take(200).collect(),
            },
            Err(error) => ModelTest {
                ok: false,
                latency,
                error,
                reply_preview: String::new(),
            },
        }
    }

    /// Measures the models in parallel, each bounded by `timeout`; results arrive as
    /// each model finishes.
    pub fn benchmark(
        self: &Arc<Self>,
        models: Vec<Model>,
        timeout: Duration,
        prompt: String,
    ) -> impl Stream<Item = ModelBenchmark> + Send + 'static {
        models
            .into_iter()
            .map(|model| self.clone().measure(model, timeout, prompt.clone()))
            .collect::<FuturesUnordered<_>>()
    }

    async fn measure(
        self: Arc<Self>,
        model: Model,
        timeout: Duration,
        prompt: String,
    ) -> ModelBenchmark {
        let started = Instant::now();
        let outcome = match self.ready(&model) {
            Ok(ready) => tokio::time::timeout(timeout, self.probe(&ready, &prompt, Some(started)))
                .await
                .unwrap_or_else(|_| Err(format!("timed out after {:.1} s", timeout.as_secs_f64()))),
            Err(err) => Err(err.to_string()),
        };
        let (ok, time_to_first_token, error) = match outcome {
            Ok(probe) => (true, probe.first_token, String::new()),
            Err(error) => (false, None, error),
        };
        ModelBenchmark {
            model: model.id,
            ok,
            time_to_first_token,
            total_time: started.elapsed(),
            error,
        }
    }

    /// One request with `prompt`, read to its end. The error is the provider's text.
    async fn probe(
        &self,
        model: &ResolvedModel,
        prompt: &str,
        started: Option<Instant>,
    ) -> std::result::Result<Probe, String> {
        let started = started.unwrap_or_else(Instant::now);
        // One attempt: a test reports the provider's first answer, not a retry's.
        let policy = ProviderPolicy {
            max_attempts: 1,
            ..self.policy.clone()
        };
        let provider = providers::build(&model.spec, &policy, self.http.clone());
        let request = ChatRequest {
            system: String::new(),
            messages: vec![Message {
                id: crate::domain::new_id(),
                session_id: String::new(),
                turn_id: None,
                role: Role::User,
                parts: vec![Part::Text {
                    text: prompt.to_owned(),
                }],
                create_time: Timestamp::now(),
                incomplete: false,
                model: None,
                position: Some(0),
            }],
            tools: Vec::new(),
            reasoning_effort: ReasoningEffort::default(),
        };
        let mut events = provider.stream(&request).await.map_err(|err| err.message)?;
        let mut probe = Probe::default();
        while let Some(event) = events.next().await {
            match event.map_err(|err| err.message)? {
                StreamEvent::TextDelta(text) | StreamEvent::ReasoningDelta(text) => {
                    probe.first_token.get_or_insert_with(|| started.elapsed());
                    if probe.reply.len() < 1024 {
                        probe.reply.push_str(&text);
                    }
                }
                StreamEvent::ToolCall(_) => {
                    probe.first_token.get_or_insert_with(|| started.elapsed());
                }
                StreamEvent::Usage(_) => {}
                StreamEvent::Finished(_) => return Ok(probe),
            }
        }
        Err("the response ended before the model finished".into())
    }
}

#[derive(Default)]
struct Probe {
    first_token: Option<Duration>,
    reply: String,
}

fn etag_mismatch(id: &str) -> Error {
    Error::EtagMismatch {
        resource: Resource::Model,
        name: format!("models/{id}"),
    }
}

/// A model from the configuration file's `[models.<id>]` table.
fn from_config(id: &str, config: &ModelConfig) -> Result<Model> {
    let provider = ProviderKind::parse_config_name(&config.provider).ok_or_else(|| {
        Error::invalid(
            format!("models.{id}.provider"),
            format!(
                "unknown provider {:?} (use openai, anthropic or mock)",
                config.provider
            ),
        )
    })?;
    let mut model = Model::new(id, provider);
    model.provider_model = config.model.clone();
    model.base_url = config.base_url.clone();
    model.api_key = config.api_key.clone();
    model.api_key_env = config.api_key_env.clone();
    model.context_window = config.context_window;
    model.max_output_tokens = config.max_output_tokens;
    model.options = config.options.clone().into_iter().collect();
    model.capabilities.tools = true;
    model
        .validate()
        .map_err(|e| e.within(&format!("models.{id}.")))?;
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    async fn models(configured: &[&str], default: Option<&str>) -> (tempfile::TempDir, Models) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("octo.db"))
            .await
            .expect("store");
        let configured = configured
            .iter()
            .map(|id| (id.to_string(), ModelConfig::mock()))
            .collect();
        let models = Models::open(
            Arc::new(store),
            &configured,
            default,
            reqwest::Client::new(),
            ProviderPolicy::default(),
        )
        .await
        .expect("open");
        (dir, models)
    }

    #[tokio::test]
    async fn request_beats_session_beats_default_and_a_deleted_session_model_falls_back() {
        let (_dir, m) = models(&["a", "b"], Some("b")).await;
        assert_eq!(m.list()[0].id, "b", "the configured default is the default");
        let r = |req: Option<&'static str>, ses: Option<&'static str>| {
            let m = &m;
            async move { m.resolve(req, ses).await }
        };
        assert_eq!(r(Some("a"), Some("b")).await.expect("ok").model.id, "a");
        assert_eq!(r(None, Some("a")).await.expect("ok").model.id, "a");
        assert_eq!(r(None, None).await.expect("ok").model.id, "b");
        assert!(matches!(
            r(Some("zz"), None).await,
            Err(Error::NotFound { .. })
        ));
        let fallback = r(None, Some("gone")).await.expect("falls back");
        assert_eq!(fallback.model.id, "b");
        assert!(
            fallback
                .fallback_note
                .as_deref()
                .is_some_and(|n| n.contains("models/gone") && n.contains("models/b")),
            "{fallback:?}"
        );
    }

    #[tokio::test]
    async fn exactly_one_default_through_create_update_and_delete() {
        let (_dir, m) = models(&[], None).await;
        assert!(matches!(
            m.resolve(None, None).await,
            Err(Error::FailedPrecondition {
                reason: crate::domain::reason::NO_MODEL_CONFIGURED,
                ..
            })
        ));
        let first = m
            .create(Model::new("first", ProviderKind::Mock))
            .await
            .expect("create");
        assert!(first.is_default, "the first model becomes the default");
        let second = m
            .create(Model::new("second", ProviderKind::Mock))
            .await
            .expect("create");
        assert!(!second.is_default);
        let mut change = second.clone();
        change.is_default = true;
        m.update("second", &change, &[ModelField::IsDefault], None)
            .await
            .expect("set default");
        let defaults: Vec<_> = m
            .list()
            .iter()
            .filter(|x| x.is_default)
            .map(|x| x.id.clone())
            .collect();
        assert_eq!(defaults, ["second"]);
        let deleted = m.delete("second", None, false).await.expect("delete");
        assert_eq!(deleted.promoted.as_deref(), Some("first"));
        assert!(m.get("first").await.expect("get").is_default);
        assert!(matches!(
            m.create(Model::new("first", ProviderKind::Mock)).await,
            Err(Error::AlreadyExists { .. })
        ));
    }
}
