//! Helpers of the provider tests.

use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use super::{
    ChatRequest, ModelSpec, Provider, ProviderError, ProviderKind, ProviderPolicy, StreamEvent,
};
use crate::domain::{Message, Part, ReasoningEffort, Role, Timestamp};

pub(crate) fn message(role: Role, parts: Vec<Part>) -> Message {
    Message {
        id: crate::domain::new_id(),
        session_id: "s".into(),
        turn_id: None,
        role,
        parts,
        create_time: Timestamp(0),
        incomplete: false,
        model: None,
        position: None,
    }
}

pub(crate) fn text(text: &str) -> Part {
    Part::Text { text: text.into() }
}

pub(crate) fn user(content: &str) -> Message {
    message(Role::User, vec![text(content)])
}

pub(crate) fn tool_call(id: &str, tool: &str, arguments_json: &str) -> Part {
    Part::ToolCall {
        id: id.into(),
        tool: tool.into(),
        arguments_json: arguments_json.into(),
    }
}

pub(crate) fn tool_result(tool_call_id: &str, output: &str, is_error: bool) -> Part {
    Part::ToolResult {
        tool_call_id: tool_call_id.into(),
        output: output.into(),
        is_error,
    }
}

pub(crate) fn request(messages: Vec<Message>) -> ChatRequest {
    ChatRequest {
        system: String::new(),
        messages,
        tools: Vec::new(),
        reasoning_effort: ReasoningEffort::Default,
    }
}

/// Fast retries, a generous idle timeout (the hang tests shorten it).
pub(crate) fn policy() -> ProviderPolicy {
    ProviderPolicy {
        connect_timeout: Duration::from_secs(5),
        idle_timeout: Duration::from_secs(20),
        max_attempts: 3,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_secs(2),
    }
}

pub(crate) fn spec(kind: ProviderKind, base_url: &str, options: Value) -> ModelSpec {
    ModelSpec {
        kind,
        provider_model: "test-model".into(),
        base_url: base_url.into(),
        api_key: Some("sk-test-key".into()),
        extra_headers: Default::default(),
        max_output_tokens: 0,
        options,
    }
}

/// Every event of a stream, and the error that ended it (from `stream()` or inside).
pub(crate) async fn collect(
    provider: &dyn Provider,
    request: &ChatRequest,
) -> (Vec<StreamEvent>, Option<ProviderError>) {
    let mut stream = match provider.stream(request).await {
        Ok(stream) => stream,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => events.push(event),
            Err(e) => {
                assert!(stream.next().await.is_none(), "an error ends the stream");
                return (events, Some(e));
            }
        }
    }
    (events, None)
}

/// The concatenated text deltas.
pub(crate) fn text_of(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

/// The concatenated reasoning deltas.
pub(crate) fn reasoning_of(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ReasoningDelta(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}
