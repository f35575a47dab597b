//! LLM provider adapters behind one trait: OpenAI-compatible chat completions,
//! Anthropic messages, and the deterministic `mock` model. The runtime builds a
//! provider-neutral [`ChatRequest`] and consumes a stream of [`StreamEvent`]s; dropping
//! the stream aborts the HTTP request.

use std::{collections::BTreeMap, fmt, sync::Arc, time::Duration};

use futures::stream::BoxStream;

use crate::domain::{
    Message, ReasoningEffort, Usage,
    tool::{ToolCallRequest, ToolSpec},
};

pub mod anthropic;
pub mod fake;
mod history;
pub mod http;
pub mod mock;
pub mod openai;
#[cfg(test)]
mod testing;

pub use anthropic::AnthropicProvider;
pub use http::http_client;
pub use mock::MockProvider;
pub use openai::OpenAiProvider;

pub use crate::domain::ProviderKind;

/// Everything needed to talk to one model. Its `Debug` output masks the API key.
#[derive(Clone, PartialEq)]
pub struct ModelSpec {
    pub kind: ProviderKind,
    /// The provider's model id, e.g. `gpt-4.1-mini`.
    pub provider_model: String,
    /// Empty for the provider's default.
    pub base_url: String,
    /// The resolved key (never logged).
    pub api_key: Option<String>,
    pub extra_headers: BTreeMap<String, String>,
    /// 0 for the provider's default.
    pub max_output_tokens: u32,
    /// Provider-specific options (the mock's reply, token delay, ...).
    pub options: serde_json::Value,
}

impl fmt::Debug for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelSpec")
            .field("kind", &self.kind)
            .field("provider_model", &self.provider_model)
            .field("base_url", &self.base_url)
            .field(
                "api_key",
                &self.api_key.as_ref().map(|_| crate::domain::secret::MASK),
            )
            .field(
                "extra_headers",
                &self.extra_headers.keys().collect::<Vec<_>>(),
            )
            .field("max_output_tokens", &self.max_output_tokens)
            .field("options", &self.options)
            .finish()
    }
}

/// Timeouts and retries of provider requests.
#[derive(Clone, Debug, PartialEq)]
pub struct ProviderPolicy {
    pub connect_timeout: Duration,
    /// Longest silence on an open stream before it is abandoned.
    pub idle_timeout: Duration,
    /// Attempts before the first token (1 = no retry).
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for ProviderPolicy {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            max_attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
        }
    }
}

/// The last message of a compaction's request: what the model is asked to do with the
/// messages before it (the system prompt says how). The mock model recognises it.
pub const SUMMARY_INSTRUCTION: &str = "Summarise the conversation above as the system prompt describes. Answer with the summary only.";

/// One model request, provider-neutral.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatRequest {
    pub system: String,
    /// History, oldest first: user, assistant (text, reasoning, tool calls) and tool
    /// (tool results) messages.
    pub messages: Vec<Message>,
    /// Tools the model may call; empty for none.
    pub tools: Vec<ToolSpec>,
    pub reasoning_effort: ReasoningEffort,
}

/// Why the model stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    EndTurn,
    ToolUse,
    MaxTokens,
    Other(String),
}

/// What a streaming model response yields, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    TextDelta(String),
    ReasoningDelta(String),
    /// A tool call with complete arguments (fragments are assembled by the adapter).
    ToolCall(ToolCallRequest),
    /// Token counts; may come more than once (the last one wins per field).
    Usage(Usage),
    /// The last event of a successful stream.
    Finished(StopReason),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderErrorKind {
    /// Connect failure, 5xx, overloaded: retried before the first token.
    Unavailable,
    /// 429: retried before the first token, honouring Retry-After.
    RateLimited,
    /// 401/403: the key is wrong.
    Unauthenticated,
    /// 400/404/422: the request or model id is wrong.
    InvalidRequest,
    /// Connect or idle timeout.
    Timeout,
    /// The response did not follow the wire format (garbage JSON, cut stream).
    Protocol,
}

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ProviderError {
    pub kind: ProviderErrorKind,
    /// Human-readable, including the provider's own error text where there is one.
    pub message: String,
    pub status: Option<u16>,
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    pub fn new(kind: ProviderErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            status: None,
            retry_after: None,
        }
    }

    /// Whether the request may be sent again (only done before the first event).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ProviderErrorKind::Unavailable | ProviderErrorKind::RateLimited
        )
    }
}

pub type EventStream = BoxStream<'static, Result<StreamEvent, ProviderError>>;

#[async_trait::async_trait]
pub trait Provider: Send + Sync {
    /// Sends the request and returns its event stream once the response has started.
    /// Retries (connect errors, 429, 5xx) happen inside, before the first event.
    async fn stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError>;
}

/// The provider for one model. Cheap (no I/O): the runtime may build one per turn. All
/// HTTP providers share `http`, which should come from [`http_client`] so the policy's
/// connect timeout applies.
pub fn build(
    spec: &ModelSpec,
    policy: &ProviderPolicy,
    http: reqwest::Client,
) -> Arc<dyn Provider> {
    match spec.kind {
        ProviderKind::OpenAiCompatible => Arc::new(OpenAiProvider::new(spec, policy, http)),
        ProviderKind::Anthropic => Arc::new(AnthropicProvider::new(spec, policy, http)),
        ProviderKind::Mock => Arc::new(MockProvider::new(spec)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_spec_debug_masks_the_key() {
        let spec = ModelSpec {
            kind: ProviderKind::OpenAiCompatible,
            provider_model: "m".into(),
            base_url: String::new(),
            api_key: Some("sk-very-secret-key-123".into()),
            extra_headers: BTreeMap::from([("x-token".into(), "hidden-value".into())]),
            max_output_tokens: 0,
            options: serde_json::Value::Null,
        };
        let debug = format!("{spec:?}");
        assert!(!debug.contains("sk-very-secret"), "{debug}");
        assert!(!debug.contains("hidden-value"), "{debug}");
        assert!(debug.contains("x-token"), "{debug}");
    }
}
