//! OpenAI-compatible chat completions, streamed (OpenAI, DeepSeek, OpenRouter, Groq,
//! Ollama, vLLM, LM Studio, LiteLLM).

use std::collections::VecDeque;

use base64::{Engine, engine::general_purpose::STANDARD};
use bytes::Bytes;
use reqwest::header::HeaderMap;
use serde_json::{Map, Value, json};

use super::{
    ChatRequest, EventStream, ModelSpec, Provider, ProviderError, ProviderErrorKind,
    ProviderPolicy, StopReason, StreamEvent,
    history::{
        AttachmentKind, MISSING_RESULT, PendingCalls, attachment_as_text, attachment_kind,
        parameters_schema,
    },
    http::{Endpoint, SseEvent, WireParser, bad_json, cut_stream, headers, open_stream},
};
use crate::domain::{
    Message, Part, ReasoningEffort, Role, Usage,
    tool::{ToolCallRequest, ToolSpec},
};

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
const PROVIDER: &str = "the OpenAI-compatible provider";

/// Streams chat completions from an OpenAI-compatible server.
///
/// `options.extra_body` (an object) is merged into the request body, for provider
/// settings Octo does not model (e.g. OpenRouter's `provider`, or `max_tokens` for
/// servers without `max_completion_tokens`).
pub struct OpenAiProvider {
    client: reqwest::Client,
    policy: ProviderPolicy,
    model: String,
    url: String,
    headers: Result<HeaderMap, ProviderError>,
    max_output_tokens: u32,
    extra_body: Option<Map<String, Value>>,
}

impl OpenAiProvider {
    pub fn new(spec: &ModelSpec, policy: &ProviderPolicy, client: reqwest::Client) -> Self {
        let base = if spec.base_url.trim().is_empty() {
            DEFAULT_BASE_URL
        } else {
            spec.base_url.trim()
        };
        let secret = spec
            .api_key
            .as_ref()
            .filter(|key| !key.is_empty())
            .map(|key| ("authorization", format!("Bearer {key}")));
        Self {
            client,
            policy: policy.clone(),
            model: spec.provider_model.clone(),
            url: format!("{}/chat/completions", base.trim_end_matches('/')),
            headers: headers(
                &[("content-type", "application/json")],
                secret,
                &spec.extra_headers,
            ),
            max_output_tokens: spec.max_output_tokens,
            extra_body: spec.options["extra_body"].as_object().cloned(),
        }
    }

    /// The JSON body of a request.
    pub fn request_body(&self, request: &ChatRequest) -> Value {
        let mut body = Map::new();
        body.insert("model".into(), Value::String(self.model.clone()));
        body.insert("messages".into(), Value::Array(messages(request)));
        body.insert("stream".into(), Value::Bool(true));
        body.insert("stream_options".into(), json!({"include_usage": true}));
        if !request.tools.is_empty() {
            body.insert(
                "tools".into(),
                request.tools.iter().map(tool).collect::<Vec<_>>().into(),
            );
        }
        let effort = match request.reasoning_effort {
            ReasoningEffort::Low => Some("low"),
            ReasoningEffort::Medium => Some("medium"),
            ReasoningEffort::High => Some("high"),
            ReasoningEffort::Default | ReasoningEffort::Off => None,
        };
        if let Some(effort) = effort {
            body.insert("reasoning_effort".into(), effort.into());
        }
        if self.max_output_tokens > 0 {
            body.insert(
                "max_completion_tokens".into(),
                self.max_output_tokens.into(),
            );
        }
        if let Some(extra) = &self.extra_body {
            body.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Value::Object(body)
    }
}

#[async_trait::async_trait]
impl Provider for OpenAiProvider {
    async fn stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError> {
        let headers = self.headers.clone()?;
        let body = serde_json::to_vec(&self.request_body(request)).map_err(|e| {
            ProviderError::new(
                ProviderErrorKind::InvalidRequest,
                format!("cannot encode the request: {e}"),
            )
        })?;
        tracing::debug!(model = %self.model, url = %self.url, "streaming chat completion");
        let endpoint = Endpoint {
            provider: PROVIDER,
            url: self.url.clone(),
            headers,
        };
        open_stream(
            &self.client,
            &self.policy,
            &endpoint,
            Bytes::from(body),
            Parser::default,
        )
        .await
    }
}

fn tool(spec: &ToolSpec) -> Value {
    json!({
        "type": "function",
        "function": {
            "name": spec.name,
            "description": spec.description,
            "parameters": parameters_schema(&spec.parameters),
        }
    })
}

fn tool_message(tool_call_id: &str, output: &str, is_error: bool) -> Value {
    let content = if is_error {
        format!("Error: {output}")
    } else {
        output.to_owned()
    };
    json!({"role": "tool", "tool_call_id": tool_call_id, "content": content})
}

/// The history as chat-completion messages, system prompt first.
fn messages(request: &ChatRequest) -> Vec<Value> {
    let mut out = Vec::with_capacity(request.messages.len() + 1);
    if !request.system.is_empty() {
        out.push(json!({"role": "system", "content": request.system}));
    }
    let mut pending = PendingCalls::default();
    for message in &request.messages {
        for id in pending.before(message) {
            out.push(tool_message(&id, MISSING_RESULT, true));
        }
        match message.role {
            Role::System => {
                let text = message.text();
                if !text.is_empty() {
                    out.push(json!({"role": "system", "content": text}));
                }
            }
            Role::User => {
                push_tool_results(message, &mut out);
                if let Some(user) = user_message(message) {
                    out.push(user);
                }
            }
            Role::Assistant => {
                if let Some(assistant) = assistant_message(message) {
                    out.push(assistant);
                    pending.called(message);
                }
            }
            Role::Tool => push_tool_results(message, &mut out),
        }
    }
    for id in pending.finish() {
        out.push(tool_message(&id, MISSING_RESULT, true));
    }
    out
}

fn push_tool_results(message: &Message, out: &mut Vec<Value>) {
    for part in &message.parts {
        if let Part::ToolResult {
            tool_call_id,
            output,
            is_error,
        } = part
        {
            out.push(tool_message(tool_call_id, output, *is_error));
        }
    }
}

fn user_message(message: &Message) -> Option<Value> {
    let mut content = Vec::new();
    for part in &message.parts {
        match part {
            Part::Text { text } if !text.is_empty() => {
                content.push(json!({"type": "text", "text": text}));
            }
            Part::Attachment {
                mime_type,
                filename,
                data,
                uri,
            } => {
                let kind = attachment_kind(mime_type);
                let url = match (data, uri) {
                    (Some(bytes), _) => Some(format!(
                        "data:{mime_type};base64,{}",
                        STANDARD.encode(bytes)
                    )),
                    (None, Some(uri)) => Some(uri.clone()),
                    (None, None) => None,
                };
                match (kind, url) {
                    (AttachmentKind::Image, Some(url)) => {
                        content.push(json!({"type": "image_url", "image_url": {"url": url}}));
                    }
                    (AttachmentKind::Pdf, Some(url)) if data.is_some() => {
                        let name = if filename.is_empty() {
                            "document.pdf"
                        } else {
                            filename
                        };
                        content.push(
                            json!({"type": "file", "file": {"filename": name, "file_data": url}}),
                        );
                    }
                    _ => content.push(json!({
                        "type": "text",
                        "text": attachment_as_text(mime_type, filename, data.as_deref(), uri.as_deref()),
                    })),
                }
            }
            _ => {}
        }
    }
    match content.as_slice() {
        [] => None,
        [only] if only["type"] == "text" => {
            Some(json!({"role": "user", "content": only["text"].clone()}))
        }
        _ => Some(json!({"role": "user", "content": content})),
    }
}

fn assistant_message(message: &Message) -> Option<Value> {
    let mut text = String::new();
    let mut calls = Vec::new();
    for part in &message.parts {
        match part {
            Part::Text { text: t } if !t.is_empty() => {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(t);
            }
            Part::ToolCall {
                id,
                tool,
                arguments_json,
            } => calls.push(json!({
                "id": id,
                "type": "function",
                "function": {
                    "name": tool,
                    "arguments": if arguments_json.trim().is_empty() { "{}" } else { arguments_json },
                },
            })),
            // Reasoning is not sent back (DeepSeek rejects it in the input).
            _ => {}
        }
    }
    if text.is_empty() && calls.is_empty() {
        return None;
    }
    let mut out = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { text.into() }});
    if !calls.is_empty() {
        out["tool_calls"] = calls.into();
    }
    Some(out)
}

/// A tool call being assembled from its fragments.
#[derive(Default)]
struct PartialCall {
    index: Option<u64>,
    id: String,
    name: String,
    arguments: String,
}

/// The chat-completion chunk parser.
#[derive(Default)]
struct Parser {
    calls: Vec<PartialCall>,
    usage: Option<Usage>,
    stop: Option<StopReason>,
}

impl Parser {
    fn tool_call_delta(&mut self, delta: &Value) {
        let index = delta["index"].as_u64();
        let id = delta["id"].as_str().filter(|id| !id.is_empty());
        let position = match index {
            Some(index) => self.calls.iter().position(|c| c.index == Some(index)),
            // Without an index a new id starts a new call; otherwise it continues the
            // last one.
            None => match (id, self.calls.last()) {
                (Some(id), Some(last)) if last.id != id => None,
                (_, Some(_)) => Some(self.calls.len() - 1),
                (_, None) => None,
            },
        };
        let position = position.unwrap_or_else(|| {
            self.calls.push(PartialCall {
                index,
                ..PartialCall::default()
            });
            self.calls.len() - 1
        });
        let call = &mut self.calls[position];
        if let Some(id) = id
            && call.id.is_empty()
        {
            call.id = id.to_owned();
        }
        let function = &delta["function"];
        if let Some(name) = function["name"].as_str()
            && call.name != name
        {
            call.name.push_str(name);
        }
        if let Some(arguments) = function["arguments"].as_str() {
            call.arguments.push_str(arguments);
        }
    }

    /// The assembled tool calls, in index order.
    fn flush_calls(&mut self, out: &mut VecDeque<StreamEvent>) {
        self.calls.sort_by_key(|c| c.index);
        for call in self.calls.drain(..) {
            let id = if call.id.is_empty() {
                format!("call_{}", crate::domain::new_id())
            } else {
                call.id
            };
            let arguments_json = if call.arguments.trim().is_empty() {
                "{}".to_owned()
            } else {
                call.arguments
            };
            out.push_back(StreamEvent::ToolCall(ToolCallRequest {
                id,
                tool: call.name,
                arguments_json,
            }));
        }
    }

    fn finish(&mut self, out: &mut VecDeque<StreamEvent>) {
        let had_calls = !self.calls.is_empty();
        self.flush_calls(out);
        if let Some(usage) = self.usage.take() {
            out.push_back(StreamEvent::Usage(usage));
        }
        let stop = match self.stop.take() {
            Some(StopReason::EndTurn) | None if had_calls => StopReason::ToolUse,
            Some(stop) => stop,
            None => StopReason::EndTurn,
        };
        out.push_back(StreamEvent::Finished(stop));
    }
}

fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "stop" | "end_turn" | "eos" => StopReason::EndTurn,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "length" | "max_tokens" => StopReason::MaxTokens,
        other => StopReason::Other(other.to_owned()),
    }
}

fn usage(json: &Value) -> Usage {
    let int = |v: &Value| v.as_i64().unwrap_or(0);
    let cached = json["prompt_tokens_details"]["cached_tokens"]
        .as_i64()
        // DeepSeek
        .or_else(|| json["prompt_cache_hit_tokens"].as_i64())
        .unwrap_or(0);
    Usage {
        input_tokens: int(&json["prompt_tokens"]),
        output_tokens: int(&json["completion_tokens"]),
        reasoning_tokens: int(&json["completion_tokens_details"]["reasoning_tokens"]),
        cached_input_tokens: cached,
    }
}

/// An error object inside the stream (OpenAI, OpenRouter, vLLM, LiteLLM).
fn stream_error(error: &Value) -> ProviderError {
    let message = error["message"]
        .as_str()
        .or_else(|| error.as_str())
        .unwrap_or("unknown error");
    let code = error["code"]
        .as_u64()
        .or_else(|| error["code"].as_str().and_then(|c| c.parse().ok()));
    let kind_text = error["type"]
        .as_str()
        .or_else(|| error["code"].as_str())
        .unwrap_or_default();
    let kind = match code {
        Some(401 | 403) => ProviderErrorKind::Unauthenticated,
        Some(429) => ProviderErrorKind::RateLimited,
        Some(408) => ProviderErrorKind::Timeout,
        Some(400..=499) => ProviderErrorKind::InvalidRequest,
        _ if kind_text.contains("rate_limit") => ProviderErrorKind::RateLimited,
        _ if kind_text.contains("invalid_request") => ProviderErrorKind::InvalidRequest,
        _ => ProviderErrorKind::Unavailable,
    };
    ProviderError {
        kind,
        message: format!("{PROVIDER} reported an error: {message}"),
        status: code.and_then(|c| u16::try_from(c).ok()),
        retry_after: None,
    }
}

/// The common chunk (text or reasoning of choice 0, maybe a finish reason), parsed
/// without building a `Value` tree: strings are borrowed from the event where they need
/// no unescaping, unknown fields are skipped. Anything else (usage, errors, tool calls)
/// is left to the general path.
#[derive(serde::Deserialize)]
struct FastChunk<'a> {
    #[serde(default, borrow)]
    choices: Vec<FastChoice<'a>>,
    #[serde(default)]
    usage: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    error: Option<serde::de::IgnoredAny>,
    #[serde(default)]
    x_groq: Option<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
struct FastChoice<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default, borrow)]
    delta: Option<FastDelta<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<std::borrow::Cow<'a, str>>,
}

#[derive(serde::Deserialize)]
struct FastDelta<'a> {
    #[serde(default, borrow)]
    content: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<serde::de::IgnoredAny>,
}

impl Parser {
    /// The common chunk's events; `None` when the chunk needs the general path.
    fn fast_path(&mut self, data: &str, out: &mut VecDeque<StreamEvent>) -> Option<()> {
        if !data.starts_with('{') {
            return None;
        }
        let chunk: FastChunk<'_> = serde_json::from_str(data).ok()?;
        if chunk.usage.is_some() || chunk.error.is_some() || chunk.x_groq.is_some() {
            return None;
        }
        let Some(choice) = chunk
            .choices
            .into_iter()
            .find(|c| c.index.unwrap_or(0) == 0)
        else {
            return Some(());
        };
        if let Some(delta) = &choice.delta {
            if delta.tool_calls.is_some() {
                return None;
            }
            let reasoning = delta
                .reasoning_content
                .as_deref()
                .or(delta.reasoning.as_deref());
            if let Some(reasoning) = reasoning.filter(|r| !r.is_empty()) {
                out.push_back(StreamEvent::ReasoningDelta(reasoning.to_owned()));
            }
            if let Some(text) = delta.content.as_deref().filter(|t| !t.is_empty()) {
                out.push_back(StreamEvent::TextDelta(text.to_owned()));
            }
        }
        if let Some(reason) = choice.finish_reason.as_deref() {
            let had_calls = !self.calls.is_empty();
            self.flush_calls(out);
            let stop = stop_reason(reason);
            self.stop = Some(if had_calls && stop == StopReason::EndTurn {
                StopReason::ToolUse
            } else {
                stop
            });
        }
        Some(())
    }
}

impl WireParser for Parser {
    fn on_event(
        &mut self,
        event: SseEvent,
        out: &mut VecDeque<StreamEvent>,
    ) -> Result<bool, ProviderError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.finish(out);
            return Ok(true);
        }
        if data.is_empty() {
            return Ok(false);
        }
        if self.fast_path(data, out).is_some() {
            return Ok(false);
        }
        let chunk: Value = serde_json::from_str(data).map_err(|e| bad_json(PROVIDER, data, &e))?;
        if !chunk.is_object() {
            return Err(ProviderError::new(
                ProviderErrorKind::Protocol,
                format!(
                    "{PROVIDER} sent an event that is not a JSON object: {}",
                    super::history::snippet(data, 200)
                ),
            ));
        }
        if !chunk["error"].is_null() {
            return Err(stream_error(&chunk["error"]));
        }
        let usage_json = if chunk["usage"].is_object() {
            &chunk["usage"]
        } else {
            // Groq
            &chunk["x_groq"]["usage"]
        };
        if usage_json.is_object() {
            self.usage = Some(usage(usage_json));
        }
        let Some(choice) = chunk["choices"].as_array().and_then(|choices| {
            choices
                .iter()
                .find(|c| c["index"].as_u64().unwrap_or(0) == 0)
        }) else {
            return Ok(false);
        };
        let delta = &choice["delta"];
        let reasoning = delta["reasoning_content"]
            .as_str()
            .or_else(|| delta["reasoning"].as_str());
        if let Some(reasoning) = reasoning.filter(|r| !r.is_empty()) {
            out.push_back(StreamEvent::ReasoningDelta(reasoning.to_owned()));
        }
        if let Some(text) = delta["content"].as_str().filter(|t| !t.is_empty()) {
            out.push_back(StreamEvent::TextDelta(text.to_owned()));
        }
        if let Some(calls) = delta["tool_calls"].as_array() {
            for call in calls {
                self.tool_call_delta(call);
            }
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            // The calls are complete; usage and [DONE] may follow.
            let had_calls = !self.calls.is_empty();
            self.flush_calls(out);
            let stop = stop_reason(reason);
            self.stop = Some(if had_calls && stop == StopReason::EndTurn {
                StopReason::ToolUse
            } else {
                stop
            });
        }
        Ok(false)
    }

    fn on_eof(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<(), ProviderError> {
        // A finished choice without [DONE] is complete enough.
        if self.stop.is_some() {
            self.finish(out);
            Ok(())
        } else {
            Err(cut_stream(PROVIDER))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::json;

    use super::*;
    use crate::providers::{
        ProviderKind,
        fake::{FakeOpenAi, FakeResponse},
        testing::*,
    };

    fn provider(fake: &FakeOpenAi, policy: &ProviderPolicy) -> OpenAiProvider {
        let spec = spec(ProviderKind::OpenAiCompatible, &fake.base_url(), json!({}));
        let client = crate::providers::http_client(policy).expect("client");
        OpenAiProvider::new(&spec, policy, client)
    }

    async fn run(
        script: Vec<FakeResponse>,
        policy: ProviderPolicy,
    ) -> (FakeOpenAi, Vec<StreamEvent>, Option<ProviderError>) {
        let fake = FakeOpenAi::start(script).await.expect("fake");
        let provider = provider(&fake, &policy);
        let (events, error) = collect(&provider, &request(vec![user("hi")])).await;
        (fake, events, error)
    }

    #[tokio::test]
    async fn streams_text_exactly_with_usage() {
        let usage = Usage {
            input_tokens: 12,
            output_tokens: 4,
            reasoning_tokens: 0,
            cached_input_tokens: 3,
        };
        let chunks = ["Hel", "lo, ", "wörld", "!\n"];
        let script = vec![FakeResponse::Text {
            chunks: chunks.iter().map(|c| c.to_string()).collect(),
            reasoning: Vec::new(),
            usage,
        }];
        let (fake, events, error) = run(script, policy()).await;
        assert_eq!(error, None);
        assert_eq!(text_of(&events), "Hello, wörld!\n");
        assert_eq!(
            &events[4..],
            &[
                StreamEvent::Usage(usage),
                StreamEvent::Finished(StopReason::EndTurn)
            ]
        );
        let requests = fake.requests();
        assert_eq!(requests.len(), 1);
        let sent = &requests[0];
        assert_eq!(sent.path, "/v1/chat/completions");
        assert_eq!(sent.header("authorization"), Some("Bearer sk-test-key"));
        assert_eq!(sent.header("content-type"), Some("application/json"));
        assert_eq!(sent.body["model"], "test-model");
        assert_eq!(sent.body["stream"], true);
        assert_eq!(sent.body["stream_options"], json!({"include_usage": true}));
        assert_eq!(
            sent.body["messages"],
            json!([{"role": "user", "content": "hi"}])
        );
        for absent in ["tools", "reasoning_effort", "max_completion_tokens"] {
            assert!(sent.body.get(absent).is_none(), "{absent} must be omitted");
        }
    }

    #[tokio::test]
    async fn streams_reasoning_before_text() {
        let usage = Usage {
            input_tokens: 5,
            output_tokens: 9,
            reasoning_tokens: 7,
            cached_input_tokens: 0,
        };
        let script = vec![FakeResponse::Text {
            chunks: vec!["42".into()],
            reasoning: vec!["Let me ".into(), "think.".into()],
            usage,
        }];
        let (_fake, events, error) = run(script, policy()).await;
        assert_eq!(error, None);
        assert_eq!(
            events,
            vec![
                StreamEvent::ReasoningDelta("Let me ".into()),
                StreamEvent::ReasoningDelta("think.".into()),
                StreamEvent::TextDelta("42".into()),
                StreamEvent::Usage(usage),
                StreamEvent::Finished(StopReason::EndTurn),
            ]
        );
    }

    #[tokio::test]
    async fn assembles_a_tool_call_from_fragments() {
        let script = vec![FakeResponse::tool_call(
            "call_abc",
            "shell",
            ["{\"comm", "and\": \"ls", " -la\"", "}"],
        )];
        let (_fake, events, error) = run(script, policy()).await;
        assert_eq!(error, None);
        assert_eq!(
            events[0],
            StreamEvent::ToolCall(ToolCallRequest {
                id: "call_abc".into(),
                tool: "shell".into(),
                arguments_json: "{\"command\": \"ls -la\"}".into(),
            })
        );
        assert!(matches!(events[1], StreamEvent::Usage(_)));
        assert_eq!(events[2], StreamEvent::Finished(StopReason::ToolUse));
        assert_eq!(events.len(), 3);
    }

    #[tokio::test]
    async fn retries_a_500_then_succeeds() {
        let script = vec![
            FakeResponse::status(500, r#"{"error":{"message":"boom"}}"#),
            FakeResponse::text(["ok"]),
        ];
        let (fake, events, error) = run(script, policy()).await;
        assert_eq!(error, None);
        assert_eq!(text_of(&events), "ok");
        assert_eq!(fake.request_count(), 2);
    }

    #[tokio::test]
    async fn honours_retry_after_on_429() {
        let script = vec![
            FakeResponse::Status {
                code: 429,
                body: r#"{"error":{"message":"slow down","type":"rate_limit_exceeded"}}"#.into(),
                retry_after: Some(1),
            },
            FakeResponse::text(["ok"]),
        ];
        let started = Instant::now();
        let (fake, events, error) = run(script, policy()).await;
        assert_eq!(error, None);
        assert_eq!(text_of(&events), "ok");
        assert_eq!(fake.request_count(), 2);
        assert!(started.elapsed() >= Duration::from_millis(900));
    }

    #[tokio::test]
    async fn does_not_retry_401() {
        let script = vec![
            FakeResponse::status(
                401,
                r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#,
            ),
            FakeResponse::text(["never"]),
        ];
        let (fake, events, error) = run(script, policy()).await;
        let error = error.expect("error");
        assert!(events.is_empty());
        assert_eq!(error.kind, ProviderErrorKind::Unauthenticated);
        assert_eq!(error.status, Some(401));
        assert!(
            error.message.contains("Incorrect API key provided"),
            "{}",
            error.message
        );
        assert!(!error.message.contains("sk-test-key"));
        assert_eq!(fake.request_count(), 1);
    }

    #[tokio::test]
    async fn does_not_retry_400_and_gives_up_on_persistent_503() {
        let (fake, _, error) = run(vec![FakeResponse::status(400, "bad model")], policy()).await;
        let error = error.expect("error");
        assert_eq!(error.kind, ProviderErrorKind::InvalidRequest);
        assert!(error.message.contains("bad model"));
        assert_eq!(fake.request_count(), 1);

        let (fake, _, error) = run(
            vec![FakeResponse::status(503, r#"{"error":{"message":"down"}}"#)],
            policy(),
        )
        .await;
        let error = error.expect("error");
        assert_eq!(error.kind, ProviderErrorKind::Unavailable);
        assert!(error.message.contains("down"), "{}", error.message);
        assert!(
            error.message.contains("after 3 attempts"),
            "{}",
            error.message
        );
        assert_eq!(fake.request_count(), 3);
    }

    #[tokio::test]
    async fn a_json_answer_instead_of_a_stream_is_a_protocol_error() {
        let script = vec![FakeResponse::status(
            200,
            r#"{"error":{"message":"model is loading"}}"#,
        )];
        let (fake, _, error) = run(script, policy()).await;
        let error = error.expect("error");
        assert_eq!(error.kind, ProviderErrorKind::Protocol);
        assert!(
            error.message.contains("model is loading"),
            "{}",
            error.message
        );
        assert_eq!(fake.request_count(), 1);
    }

    #[tokio::test]
    async fn garbage_json_is_a_protocol_error() {
        let (fake, events, error) = run(vec![FakeResponse::Garbage], policy()).await;
        let error = error.expect("error");
        assert!(events.is_empty());
        assert_eq!(error.kind, ProviderErrorKind::Protocol);
        assert!(
            error.message.contains("not valid JSON"),
            "{}",
            error.message
        );
        assert_eq!(fake.request_count(), 1);
    }

    #[tokio::test]
    async fn a_cut_stream_is_a_protocol_error_after_its_text() {
        let script = vec![FakeResponse::CutAfter {
            chunks: vec!["partial ".into(), "answer".into()],
        }];
        let (_fake, events, error) = run(script, policy()).await;
        assert_eq!(text_of(&events), "partial answer");
        let error = error.expect("error");
        assert_eq!(error.kind, ProviderErrorKind::Protocol);
        assert!(
            error
                .message
                .contains("stream ended before the model finished"),
            "{}",
            error.message
        );
    }

    #[tokio::test]
    async fn a_silent_stream_times_out() {
        let policy = ProviderPolicy {
            idle_timeout: Duration::from_millis(300),
            ..policy()
        };
        let (fake, events, error) = run(vec![FakeResponse::Hang], policy).await;
        assert!(events.is_empty());
        assert_eq!(error.expect("error").kind, ProviderErrorKind::Timeout);
        assert_eq!(fake.request_count(), 1);
    }

    #[tokio::test]
    async fn an_error_event_is_retried_before_the_first_token_only() {
        let script = vec![
            FakeResponse::StreamError {
                chunks: Vec::new(),
                message: "upstream hiccup".into(),
            },
            FakeResponse::text(["fine"]),
        ];
        let (fake, events, error) = run(script, policy()).await;
        assert_eq!(error, None);
        assert_eq!(text_of(&events), "fine");
        assert_eq!(fake.request_count(), 2);

        let script = vec![FakeResponse::StreamError {
            chunks: vec!["half".into()],
            message: "upstream died".into(),
        }];
        let (fake, events, error) = run(script, policy()).await;
        assert_eq!(text_of(&events), "half");
        let error = error.expect("error");
        assert_eq!(error.kind, ProviderErrorKind::Unavailable);
        assert!(error.message.contains("upstream died"), "{}", error.message);
        assert_eq!(fake.request_count(), 1);
    }

    #[tokio::test]
    async fn connect_errors_are_retried_then_reported() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        let policy = policy();
        let spec = spec(
            ProviderKind::OpenAiCompatible,
            &format!("http://127.0.0.1:{port}/v1"),
            json!({}),
        );
        let provider = OpenAiProvider::new(
            &spec,
            &policy,
            crate::providers::http_client(&policy).expect("client"),
        );
        let (_, error) = collect(&provider, &request(vec![user("hi")])).await;
        let error = error.expect("error");
        assert_eq!(error.kind, ProviderErrorKind::Unavailable);
        assert!(error.message.contains("cannot reach"), "{}", error.message);
        assert!(
            error.message.contains("after 3 attempts"),
            "{}",
            error.message
        );
    }

    #[tokio::test]
    async fn maps_history_tools_effort_and_limits_into_the_body() {
        let fake = FakeOpenAi::start(vec![FakeResponse::text(["ok"])])
            .await
            .expect("fake");
        let mut spec = spec(ProviderKind::OpenAiCompatible, &fake.base_url(), json!({}));
        spec.max_output_tokens = 1000;
        spec.api_key = None;
        spec.extra_headers
            .insert("HTTP-Referer".into(), "https://octo.example".into());
        let policy = policy();
        let provider = OpenAiProvider::new(
            &spec,
            &policy,
            crate::providers::http_client(&policy).expect("client"),
        );
        let mut request = request(vec![
            message(
                Role::User,
                vec![
                    text("what is in this image?"),
                    Part::Attachment {
                        mime_type: "image/png".into(),
                        filename: "a.png".into(),
                        data: Some(vec![1, 2, 3]),
                        uri: None,
                    },
                ],
            ),
            message(
                Role::Assistant,
                vec![
                    Part::Reasoning { text: "hmm".into() },
                    text("Let me look."),
                    tool_call("call_1", "read_file", r#"{"path":"a.txt"}"#),
                    tool_call("call_2", "shell", ""),
                ],
            ),
            message(Role::Tool, vec![tool_result("call_1", "contents", false)]),
            message(
                Role::Tool,
                vec![tool_result("call_2", "no such command", true)],
            ),
            message(Role::Assistant, vec![text("Done.")]),
            user("thanks"),
        ]);
        request.system = "You are helpful.".into();
        request.reasoning_effort = ReasoningEffort::High;
        request.tools = vec![ToolSpec {
            name: "read_file".into(),
            description: "Reads a file".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        }];
        let (events, error) = collect(&provider, &request).await;
        assert_eq!(error, None, "{events:?}");
        let body = &fake.requests()[0].body;
        assert_eq!(
            body["messages"],
            json!([
                {"role": "system", "content": "You are helpful."},
                {"role": "user", "content": [
                    {"type": "text", "text": "what is in this image?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AQID"}},
                ]},
                {"role": "assistant", "content": "Let me look.", "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "read_file", "arguments": "{\"path\":\"a.txt\"}"}},
                    {"id": "call_2", "type": "function",
                     "function": {"name": "shell", "arguments": "{}"}},
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "contents"},
                {"role": "tool", "tool_call_id": "call_2", "content": "Error: no such command"},
                {"role": "assistant", "content": "Done."},
                {"role": "user", "content": "thanks"},
            ])
        );
        assert_eq!(
            body["tools"],
            json!([{"type": "function", "function": {
                "name": "read_file",
                "description": "Reads a file",
                "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
            }}])
        );
        assert_eq!(body["reasoning_effort"], "high");
        assert_eq!(body["max_completion_tokens"], 1000);
        let sent = &fake.requests()[0];
        assert_eq!(sent.header("authorization"), None);
        assert_eq!(sent.header("http-referer"), Some("https://octo.example"));
    }

    #[test]
    fn unanswered_tool_calls_get_an_error_result() {
        let spec = spec(
            ProviderKind::OpenAiCompatible,
            "",
            json!({"extra_body": {"seed": 7}}),
        );
        let provider = OpenAiProvider::new(&spec, &policy(), reqwest::Client::new());
        let body = provider.request_body(&request(vec![
            user("go"),
            message(Role::Assistant, vec![tool_call("c1", "shell", "{}")]),
            user("what happened?"),
        ]));
        assert_eq!(body["messages"][2]["role"], "tool");
        assert_eq!(body["messages"][2]["tool_call_id"], "c1");
        assert_eq!(body["messages"][3]["content"], "what happened?");
        assert_eq!(body["seed"], 7);
        assert_eq!(provider.url, "https://api.openai.com/v1/chat/completions");
    }

    fn parse(lines: &[&str]) -> (Vec<StreamEvent>, Result<bool, ProviderError>) {
        let mut parser = Parser::default();
        let mut out = VecDeque::new();
        let mut result = Ok(false);
        for line in lines {
            result = parser.on_event(
                SseEvent {
                    event: String::new(),
                    data: (*line).into(),
                },
                &mut out,
            );
            if !matches!(result, Ok(false)) {
                break;
            }
        }
        if matches!(result, Ok(false)) {
            result = parser.on_eof(&mut out).map(|()| true);
        }
        (out.into_iter().collect(), result)
    }

    #[test]
    fn parses_interleaved_tool_calls_and_reasoning_variants() {
        let (events, result) = parse(&[
            r#"{"choices":[{"index":0,"delta":{"reasoning":"openrouter "}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"reasoning_content":"deepseek","reasoning":"dup"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"b","function":{"name":"two","arguments":"{\"y\""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"a","function":{"name":"one","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":":2}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"prompt_cache_hit_tokens":1}}"#,
            "[DONE]",
        ]);
        assert_eq!(result, Ok(true));
        assert_eq!(reasoning_of(&events), "openrouter deepseek");
        let call = |id: &str, tool: &str, args: &str| {
            StreamEvent::ToolCall(ToolCallRequest {
                id: id.into(),
                tool: tool.into(),
                arguments_json: args.into(),
            })
        };
        assert_eq!(
            &events[2..],
            &[
                call("a", "one", "{}"),
                call("b", "two", "{\"y\":2}"),
                StreamEvent::Usage(Usage {
                    input_tokens: 3,
                    output_tokens: 2,
                    reasoning_tokens: 0,
                    cached_input_tokens: 1,
                }),
                StreamEvent::Finished(StopReason::ToolUse),
            ]
        );
    }

    #[test]
    fn parses_length_stops_missing_done_and_stream_errors() {
        let (events, result) = parse(&[
            r#"{"choices":[{"index":0,"delta":{"content":"cut"},"finish_reason":"length"}]}"#,
        ]);
        assert_eq!(
            result,
            Ok(true),
            "a finished choice without [DONE] is complete"
        );
        assert_eq!(
            events,
            vec![
                StreamEvent::TextDelta("cut".into()),
                StreamEvent::Finished(StopReason::MaxTokens)
            ]
        );
        let (_, result) = parse(&[r#"{"error":{"code":429,"message":"Rate limit exceeded"}}"#]);
        let error = result.expect_err("error");
        assert_eq!(error.kind, ProviderErrorKind::RateLimited);
        assert!(error.message.contains("Rate limit exceeded"));
        let (_, result) = parse(&["[1,2]"]);
        assert_eq!(result.expect_err("error").kind, ProviderErrorKind::Protocol);
    }
}
