//! Anthropic messages API, streamed.

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
        parameters_schema, snippet,
    },
    http::{Endpoint, SseEvent, WireParser, bad_json, cut_stream, headers, open_stream},
};
use crate::domain::{
    Message, Part, ReasoningEffort, Role, Usage,
    tool::{ToolCallRequest, ToolSpec},
};

pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
pub const API_VERSION: &str = "2023-06-01";
/// `max_tokens` when the model sets none (the API requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 8192;
const PROVIDER: &str = "Anthropic";

/// The thinking budget of a reasoning effort; `None` for no thinking.
pub fn thinking_budget(effort: ReasoningEffort) -> Option<u32> {
    match effort {
        ReasoningEffort::Low => Some(2048),
        ReasoningEffort::Medium => Some(8192),
        ReasoningEffort::High => Some(24576),
        ReasoningEffort::Default | ReasoningEffort::Off => None,
    }
}

/// Streams messages from the Anthropic API.
///
/// `options.extra_body` (an object) is merged into the request body.
pub struct AnthropicProvider {
    client: reqwest::Client,
    policy: ProviderPolicy,
    model: String,
    url: String,
    headers: Result<HeaderMap, ProviderError>,
    max_output_tokens: u32,
    extra_body: Option<Map<String, Value>>,
}

impl AnthropicProvider {
    pub fn new(spec: &ModelSpec, policy: &ProviderPolicy, client: reqwest::Client) -> Self {
        let base = if spec.base_url.trim().is_empty() {
            DEFAULT_BASE_URL
        } else {
            spec.base_url.trim()
        };
        let base = base.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base);
        let secret = spec
            .api_key
            .as_ref()
            .filter(|key| !key.is_empty())
            .map(|key| ("x-api-key", key.clone()));
        Self {
            client,
            policy: policy.clone(),
            model: spec.provider_model.clone(),
            url: format!("{base}/v1/messages"),
            headers: headers(
                &[
                    ("content-type", "application/json"),
                    ("anthropic-version", API_VERSION),
                ],
                secret,
                &spec.extra_headers,
            ),
            max_output_tokens: spec.max_output_tokens,
            extra_body: spec.options["extra_body"].as_object().cloned(),
        }
    }

    /// The JSON body of a request.
    pub fn request_body(&self, request: &ChatRequest) -> Value {
        let mut max_tokens = if self.max_output_tokens > 0 {
            self.max_output_tokens
        } else {
            DEFAULT_MAX_TOKENS
        };
        let mut system = request.system.clone();
        for message in request.messages.iter().filter(|m| m.role == Role::System) {
            let text = message.text();
            if !text.is_empty() {
                if !system.is_empty() {
                    system.push_str("\n\n");
                }
                system.push_str(&text);
            }
        }
        let mut body = Map::new();
        body.insert("model".into(), Value::String(self.model.clone()));
        body.insert("messages".into(), Value::Array(messages(request)));
        if !system.is_empty() {
            body.insert("system".into(), Value::String(system));
        }
        if !request.tools.is_empty() {
            body.insert(
                "tools".into(),
                request.tools.iter().map(tool).collect::<Vec<_>>().into(),
            );
        }
        // Thinking during a tool loop needs the signed thinking block of the last
        // assistant message, which the history does not keep: think on the next user
        // message instead.
        let in_tool_loop = request
            .messages
            .last()
            .is_some_and(|m| m.role == Role::Tool);
        if let Some(budget) = thinking_budget(request.reasoning_effort).filter(|_| !in_tool_loop) {
            if max_tokens <= budget {
                max_tokens = max_tokens.saturating_add(budget);
            }
            body.insert(
                "thinking".into(),
                json!({"type": "enabled", "budget_tokens": budget}),
            );
        }
        body.insert("max_tokens".into(), max_tokens.into());
        body.insert("stream".into(), Value::Bool(true));
        if let Some(extra) = &self.extra_body {
            body.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Value::Object(body)
    }
}

#[async_trait::async_trait]
impl Provider for AnthropicProvider {
    async fn stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError> {
        let headers = self.headers.clone()?;
        let body = serde_json::to_vec(&self.request_body(request)).map_err(|e| {
            ProviderError::new(
                ProviderErrorKind::InvalidRequest,
                format!("cannot encode the request: {e}"),
            )
        })?;
        tracing::debug!(model = %self.model, url = %self.url, "streaming Anthropic message");
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
        "name": spec.name,
        "description": spec.description,
        "input_schema": parameters_schema(&spec.parameters),
    })
}

fn tool_result_block(tool_call_id: &str, output: &str, is_error: bool) -> Value {
    let mut block = json!({"type": "tool_result", "tool_use_id": tool_call_id});
    if !output.is_empty() {
        block["content"] = output.into();
    }
    if is_error {
        block["is_error"] = true.into();
    }
    block
}

/// Appends content blocks as a message of `role`, merging with the previous message
/// when it has the same role (tool results and user text end up in one user message).
fn push(out: &mut Vec<Value>, role: &str, blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    if let Some(last) = out.last_mut()
        && last["role"] == role
        && let Some(content) = last["content"].as_array_mut()
    {
        content.extend(blocks);
        return;
    }
    out.push(json!({"role": role, "content": blocks}));
}

fn messages(request: &ChatRequest) -> Vec<Value> {
    let mut out = Vec::with_capacity(request.messages.len());
    let mut pending = PendingCalls::default();
    for message in &request.messages {
        let missing: Vec<Value> = pending
            .before(message)
            .iter()
            .map(|id| tool_result_block(id, MISSING_RESULT, true))
            .collect();
        push(&mut out, "user", missing);
        match message.role {
            Role::System => {}
            Role::User | Role::Tool => push(&mut out, "user", user_blocks(message)),
            Role::Assistant => {
                let blocks = assistant_blocks(message);
                if !blocks.is_empty() {
                    push(&mut out, "assistant", blocks);
                    pending.called(message);
                }
            }
        }
    }
    let missing: Vec<Value> = pending
        .finish()
        .iter()
        .map(|id| tool_result_block(id, MISSING_RESULT, true))
        .collect();
    push(&mut out, "user", missing);
    out
}

/// Blocks of a user or tool message; tool results first, as the API wants them.
fn user_blocks(message: &Message) -> Vec<Value> {
    let mut results = Vec::new();
    let mut blocks = Vec::new();
    for part in &message.parts {
        match part {
            Part::Text { text } if !text.trim().is_empty() => {
                blocks.push(json!({"type": "text", "text": text}));
            }
            Part::Attachment {
                mime_type,
                filename,
                data,
                uri,
            } => blocks.push(attachment(
                mime_type,
                filename,
                data.as_deref(),
                uri.as_deref(),
            )),
            Part::ToolResult {
                tool_call_id,
                output,
                is_error,
            } => results.push(tool_result_block(tool_call_id, output, *is_error)),
            _ => {}
        }
    }
    results.extend(blocks);
    results
}

fn attachment(mime_type: &str, filename: &str, data: Option<&[u8]>, uri: Option<&str>) -> Value {
    let source = match (data, uri) {
        (Some(bytes), _) => {
            json!({"type": "base64", "media_type": mime_type, "data": STANDARD.encode(bytes)})
        }
        (None, Some(uri)) if uri.starts_with("https://") || uri.starts_with("http://") => {
            json!({"type": "url", "url": uri})
        }
        _ => Value::Null,
    };
    match attachment_kind(mime_type) {
        AttachmentKind::Image if !source.is_null() => json!({"type": "image", "source": source}),
        AttachmentKind::Pdf if !source.is_null() => json!({"type": "document", "source": source}),
        _ => json!({"type": "text", "text": attachment_as_text(mime_type, filename, data, uri)}),
    }
}

fn assistant_blocks(message: &Message) -> Vec<Value> {
    let mut blocks = Vec::new();
    for part in &message.parts {
        match part {
            Part::Text { text } if !text.trim().is_empty() => {
                blocks.push(json!({"type": "text", "text": text}));
            }
            Part::ToolCall {
                id,
                tool,
                arguments_json,
            } => {
                let input = match serde_json::from_str::<Value>(arguments_json) {
                    Ok(Value::Object(map)) => Value::Object(map),
                    _ => {
                        tracing::debug!(tool_call_id = %id, "tool call arguments are not a JSON object; sending {{}}");
                        json!({})
                    }
                };
                blocks.push(json!({"type": "tool_use", "id": id, "name": tool, "input": input}));
            }
            // Thinking blocks need their signature, which the history does not keep.
            _ => {}
        }
    }
    blocks
}

/// A content block being streamed.
enum Block {
    Text,
    Thinking,
    ToolUse {
        id: String,
        name: String,
        input: Value,
        json: String,
    },
    Other,
}

/// The messages-stream parser.
#[derive(Default)]
struct Parser {
    started: bool,
    blocks: Vec<(u64, Block)>,
    usage: Usage,
    stop: Option<StopReason>,
}

fn stop_reason(reason: &str) -> StopReason {
    match reason {
        "end_turn" | "stop_sequence" => StopReason::EndTurn,
        "tool_use" => StopReason::ToolUse,
        "max_tokens" => StopReason::MaxTokens,
        other => StopReason::Other(other.to_owned()),
    }
}

/// Reads the usage fields present in `json` (message_start has them all, message_delta
/// the cumulative output and sometimes the input). Input tokens count cache reads and
/// writes too, so they mean the whole prompt as with other providers.
fn read_usage(usage: &mut Usage, json: &Value) {
    if json["input_tokens"].is_i64() {
        usage.input_tokens = json["input_tokens"].as_i64().unwrap_or(0)
            + json["cache_read_input_tokens"].as_i64().unwrap_or(0)
            + json["cache_creation_input_tokens"].as_i64().unwrap_or(0);
    }
    if let Some(cached) = json["cache_read_input_tokens"].as_i64() {
        usage.cached_input_tokens = cached;
    }
    if let Some(output) = json["output_tokens"].as_i64() {
        usage.output_tokens = output;
    }
}

fn stream_error(json: &Value) -> ProviderError {
    let error = &json["error"];
    let kind_text = error["type"].as_str().unwrap_or("error");
    let message = error["message"].as_str().unwrap_or("unknown error");
    let kind = match kind_text {
        "overloaded_error" | "api_error" => ProviderErrorKind::Unavailable,
        "rate_limit_error" => ProviderErrorKind::RateLimited,
        "authentication_error" | "permission_error" => ProviderErrorKind::Unauthenticated,
        "invalid_request_error" | "not_found_error" | "request_too_large" => {
            ProviderErrorKind::InvalidRequest
        }
        "timeout_error" => ProviderErrorKind::Timeout,
        _ => ProviderErrorKind::Unavailable,
    };
    ProviderError::new(
        kind,
        format!("{PROVIDER} reported an error: {message} ({kind_text})"),
    )
}

fn protocol(what: String) -> ProviderError {
    ProviderError::new(ProviderErrorKind::Protocol, format!("{PROVIDER}: {what}"))
}

impl Parser {
    fn block(&mut self, index: u64) -> Option<&mut Block> {
        self.blocks
            .iter_mut()
            .find(|(i, _)| *i == index)
            .map(|(_, block)| block)
    }
}

impl WireParser for Parser {
    fn on_event(
        &mut self,
        event: SseEvent,
        out: &mut VecDeque<StreamEvent>,
    ) -> Result<bool, ProviderError> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(false);
        }
        let json: Value = serde_json::from_str(data).map_err(|e| bad_json(PROVIDER, data, &e))?;
        let kind = json["type"].as_str().unwrap_or(event.event.as_str());
        match kind {
            "message_start" => {
                self.started = true;
                read_usage(&mut self.usage, &json["message"]["usage"]);
            }
            "content_block_start" => {
                let index = json["index"].as_u64().unwrap_or(self.blocks.len() as u64);
                let block = &json["content_block"];
                let block = match block["type"].as_str() {
                    Some("text") => {
                        if let Some(text) = block["text"].as_str().filter(|t| !t.is_empty()) {
                            out.push_back(StreamEvent::TextDelta(text.to_owned()));
                        }
                        Block::Text
                    }
                    Some("thinking") => {
                        if let Some(text) = block["thinking"].as_str().filter(|t| !t.is_empty()) {
                            out.push_back(StreamEvent::ReasoningDelta(text.to_owned()));
                        }
                        Block::Thinking
                    }
                    Some("tool_use") => Block::ToolUse {
                        id: block["id"].as_str().unwrap_or_default().to_owned(),
                        name: block["name"].as_str().unwrap_or_default().to_owned(),
                        input: block["input"].clone(),
                        json: String::new(),
                    },
                    _ => Block::Other,
                };
                self.blocks.push((index, block));
            }
            "content_block_delta" => {
                let index = json["index"].as_u64().unwrap_or(0);
                let delta = &json["delta"];
                let Some(block) = self.block(index) else {
                    return Err(protocol(format!(
                        "content_block_delta for block {index}, which was never started"
                    )));
                };
                match (delta["type"].as_str(), block) {
                    (Some("text_delta"), _) => {
                        if let Some(text) = delta["text"].as_str().filter(|t| !t.is_empty()) {
                            out.push_back(StreamEvent::TextDelta(text.to_owned()));
                        }
                    }
                    (Some("thinking_delta"), _) => {
                        if let Some(text) = delta["thinking"].as_str().filter(|t| !t.is_empty()) {
                            out.push_back(StreamEvent::ReasoningDelta(text.to_owned()));
                        }
                    }
                    (Some("input_json_delta"), Block::ToolUse { json, .. }) => {
                        json.push_str(delta["partial_json"].as_str().unwrap_or_default());
                    }
                    // signature_delta, citations_delta, and what comes later.
                    _ => {}
                }
            }
            "content_block_stop" => {
                let index = json["index"].as_u64().unwrap_or(0);
                let Some(position) = self.blocks.iter().position(|(i, _)| *i == index) else {
                    return Err(protocol(format!(
                        "content_block_stop for block {index}, which was never started"
                    )));
                };
                if let (
                    _,
                    Block::ToolUse {
                        id,
                        name,
                        input,
                        json,
                    },
                ) = self.blocks.swap_remove(position)
                {
                    let arguments_json = if !json.trim().is_empty() {
                        json
                    } else if input.as_object().is_some_and(|o| !o.is_empty()) {
                        input.to_string()
                    } else {
                        "{}".to_owned()
                    };
                    out.push_back(StreamEvent::ToolCall(ToolCallRequest {
                        id,
                        tool: name,
                        arguments_json,
                    }));
                }
            }
            "message_delta" => {
                if let Some(reason) = json["delta"]["stop_reason"].as_str() {
                    self.stop = Some(stop_reason(reason));
                }
                read_usage(&mut self.usage, &json["usage"]);
            }
            "message_stop" => {
                if !self.started {
                    return Err(protocol("message_stop before message_start".into()));
                }
                out.push_back(StreamEvent::Usage(self.usage));
                let stop = self.stop.take().unwrap_or(StopReason::EndTurn);
                out.push_back(StreamEvent::Finished(stop));
                return Ok(true);
            }
            "error" => return Err(stream_error(&json)),
            "ping" => {}
            other => {
                tracing::trace!(event = %snippet(other, 64), "ignoring unknown Anthropic event");
            }
        }
        Ok(false)
    }

    fn on_eof(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<(), ProviderError> {
        // After message_delta with a stop reason every block is complete.
        match self.stop.take() {
            Some(stop) if self.blocks.is_empty() => {
                out.push_back(StreamEvent::Usage(self.usage));
                out.push_back(StreamEvent::Finished(stop));
                Ok(())
            }
            _ => Err(cut_stream(PROVIDER)),
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
        fake::{FakeAnthropic, FakeResponse},
        testing::*,
    };

    fn provider(fake: &FakeAnthropic, policy: &ProviderPolicy) -> AnthropicProvider {
        let spec = spec(ProviderKind::Anthropic, &fake.base_url(), json!({}));
        let client = crate::providers::http_client(policy).expect("client");
        AnthropicProvider::new(&spec, policy, client)
    }

    async fn run(
        script: Vec<FakeResponse>,
        policy: ProviderPolicy,
    ) -> (FakeAnthropic, Vec<StreamEvent>, Option<ProviderError>) {
        let fake = FakeAnthropic::start(script).await.expect("fake");
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
        let sent = &fake.requests()[0];
        assert_eq!(sent.path, "/v1/messages");
        assert_eq!(sent.header("x-api-key"), Some("sk-test-key"));
        assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
        assert_eq!(sent.header("content-type"), Some("application/json"));
        assert_eq!(sent.header("authorization"), None);
        assert_eq!(
            sent.body,
            json!({
                "model": "test-model",
                "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                "max_tokens": 8192,
                "stream": true,
            })
        );
    }

    #[tokio::test]
    async fn streams_thinking_before_text() {
        let usage = Usage {
            input_tokens: 5,
            output_tokens: 9,
            ..Usage::default()
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
            "toolu_01",
            "shell",
            ["{\"comm", "and\": \"ls", " -la\"", "}"],
        )];
        let (_fake, events, error) = run(script, policy()).await;
        assert_eq!(error, None);
        assert_eq!(
            events,
            vec![
                StreamEvent::ToolCall(ToolCallRequest {
                    id: "toolu_01".into(),
                    tool: "shell".into(),
                    arguments_json: "{\"command\": \"ls -la\"}".into(),
                }),
                StreamEvent::Usage(Usage {
                    input_tokens: 10,
                    output_tokens: 4,
                    ..Usage::default()
                }),
                StreamEvent::Finished(StopReason::ToolUse),
            ]
        );
    }

    #[tokio::test]
    async fn a_tool_call_without_arguments_gets_an_empty_object() {
        let script = vec![FakeResponse::tool_call(
            "toolu_02",
            "list",
            Vec::<String>::new(),
        )];
        let (_fake, events, error) = run(script, policy()).await;
        assert_eq!(error, None);
        assert!(matches!(
            &events[0],
            StreamEvent::ToolCall(call) if call.arguments_json == "{}"
        ));
    }

    #[tokio::test]
    async fn retries_a_500_then_succeeds() {
        let script = vec![
            FakeResponse::status(
                500,
                r#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#,
            ),
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
                body: r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#.into(),
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
                r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
            ),
            FakeResponse::text(["never"]),
        ];
        let (fake, events, error) = run(script, policy()).await;
        let error = error.expect("error");
        assert!(events.is_empty());
        assert_eq!(error.kind, ProviderErrorKind::Unauthenticated);
        assert!(
            error.message.contains("invalid x-api-key"),
            "{}",
            error.message
        );
        assert!(!error.message.contains("sk-test-key"));
        assert_eq!(fake.request_count(), 1);
    }

    #[tokio::test]
    async fn garbage_json_is_a_protocol_error() {
        let (_fake, events, error) = run(vec![FakeResponse::Garbage], policy()).await;
        let error = error.expect("error");
        assert!(events.is_empty());
        assert_eq!(error.kind, ProviderErrorKind::Protocol);
        assert!(
            error.message.contains("not valid JSON"),
            "{}",
            error.message
        );
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
    async fn overloaded_is_retried_before_the_first_token_only() {
        let script = vec![
            FakeResponse::StreamError {
                chunks: Vec::new(),
                message: "Overloaded".into(),
            },
            FakeResponse::text(["fine"]),
        ];
        let (fake, events, error) = run(script, policy()).await;
        assert_eq!(error, None);
        assert_eq!(text_of(&events), "fine");
        assert_eq!(fake.request_count(), 2);

        let script = vec![FakeResponse::StreamError {
            chunks: vec!["half".into()],
            message: "Overloaded".into(),
        }];
        let (fake, events, error) = run(script, policy()).await;
        assert_eq!(text_of(&events), "half");
        let error = error.expect("error");
        assert_eq!(error.kind, ProviderErrorKind::Unavailable);
        assert!(error.message.contains("Overloaded"), "{}", error.message);
        assert!(
            error.message.contains("overloaded_error"),
            "{}",
            error.message
        );
        assert_eq!(fake.request_count(), 1);
    }

    #[tokio::test]
    async fn maps_history_tools_thinking_and_limits_into_the_body() {
        let fake = FakeAnthropic::start(vec![FakeResponse::text(["ok"])])
            .await
            .expect("fake");
        let mut spec = spec(ProviderKind::Anthropic, &fake.base_url(), json!({}));
        spec.max_output_tokens = 4000;
        let policy = policy();
        let provider = AnthropicProvider::new(
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
                    tool_call("toolu_1", "read_file", r#"{"path":"a.txt"}"#),
                    tool_call("toolu_2", "shell", ""),
                ],
            ),
            message(Role::Tool, vec![tool_result("toolu_1", "contents", false)]),
            message(
                Role::Tool,
                vec![tool_result("toolu_2", "no such command", true)],
            ),
            message(Role::Assistant, vec![text("Done.")]),
            user("thanks"),
        ]);
        request.system = "You are helpful.".into();
        request.reasoning_effort = ReasoningEffort::Medium;
        request.tools = vec![ToolSpec {
            name: "read_file".into(),
            description: "Reads a file".into(),
            parameters: json!({"type": "object", "properties": {"path": {"type": "string"}}}),
        }];
        let (events, error) = collect(&provider, &request).await;
        assert_eq!(error, None, "{events:?}");
        let body = &fake.requests()[0].body;
        assert_eq!(body["system"], "You are helpful.");
        assert_eq!(
            body["messages"],
            json!([
                {"role": "user", "content": [
                    {"type": "text", "text": "what is in this image?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AQID"}},
                ]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": "a.txt"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "shell", "input": {}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "contents"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "no such command", "is_error": true},
                ]},
                {"role": "assistant", "content": [{"type": "text", "text": "Done."}]},
                {"role": "user", "content": [{"type": "text", "text": "thanks"}]},
            ])
        );
        assert_eq!(
            body["tools"],
            json!([{
                "name": "read_file",
                "description": "Reads a file",
                "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}},
            }])
        );
        assert_eq!(
            body["thinking"],
            json!({"type": "enabled", "budget_tokens": 8192})
        );
        assert_eq!(
            body["max_tokens"],
            4000 + 8192,
            "max_tokens must exceed the budget"
        );
    }

    #[test]
    fn thinking_budgets_and_tool_loops() {
        let spec = spec(
            ProviderKind::Anthropic,
            "https://proxy.example/v1/",
            json!({}),
        );
        let provider = AnthropicProvider::new(&spec, &policy(), reqwest::Client::new());
        assert_eq!(provider.url, "https://proxy.example/v1/messages");
        let mut req = request(vec![user("hi")]);
        for (effort, budget, max) in [
            (ReasoningEffort::Low, 2048, 8192),
            (ReasoningEffort::High, 24576, 8192 + 24576),
        ] {
            req.reasoning_effort = effort;
            let body = provider.request_body(&req);
            assert_eq!(body["thinking"]["budget_tokens"], budget);
            assert_eq!(body["max_tokens"], max);
        }
        for effort in [ReasoningEffort::Off, ReasoningEffort::Default] {
            req.reasoning_effort = effort;
            assert!(provider.request_body(&req).get("thinking").is_none());
        }
        // Mid tool loop (no thinking signature kept): no thinking; a call without a
        // result gets one, merged with the user's text.
        req.reasoning_effort = ReasoningEffort::High;
        req.messages = vec![
            user("go"),
            message(
                Role::Assistant,
                vec![tool_call("t1", "a", "{}"), tool_call("t2", "b", "{}")],
            ),
            message(Role::Tool, vec![tool_result("t1", "", false)]),
        ];
        let body = provider.request_body(&req);
        assert!(body.get("thinking").is_none());
        assert_eq!(
            body["messages"][2]["content"],
            json!([
                {"type": "tool_result", "tool_use_id": "t1"},
                {"type": "tool_result", "tool_use_id": "t2", "content": MISSING_RESULT, "is_error": true},
            ])
        );
    }

    fn parse(events: &[(&str, &str)]) -> (Vec<StreamEvent>, Result<bool, ProviderError>) {
        let mut parser = Parser::default();
        let mut out = VecDeque::new();
        let mut result = Ok(false);
        for (event, data) in events {
            result = parser.on_event(
                SseEvent {
                    event: (*event).into(),
                    data: (*data).into(),
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
    fn parses_errors_and_max_tokens() {
        let (_, result) = parse(&[(
            "error",
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#,
        )]);
        assert_eq!(
            result.expect_err("error").kind,
            ProviderErrorKind::RateLimited
        );
        let (events, result) = parse(&[
            (
                "message_start",
                r#"{"type":"message_start","message":{"usage":{"input_tokens":7,"output_tokens":1}}}"#,
            ),
            (
                "content_block_start",
                r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":"Hi"}}"#,
            ),
            (
                "content_block_stop",
                r#"{"type":"content_block_stop","index":0}"#,
            ),
            (
                "message_delta",
                r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens"},"usage":{"output_tokens":3}}"#,
            ),
            ("message_stop", r#"{"type":"message_stop"}"#),
        ]);
        assert_eq!(result, Ok(true));
        assert_eq!(
            events,
            vec![
                StreamEvent::TextDelta("Hi".into()),
                StreamEvent::Usage(Usage {
                    input_tokens: 7,
                    output_tokens: 3,
                    ..Usage::default()
                }),
                StreamEvent::Finished(StopReason::MaxTokens),
            ]
        );
        let (_, result) = parse(&[(
            "content_block_delta",
            r#"{"type":"content_block_delta","index":3,"delta":{"type":"text_delta","text":"x"}}"#,
        )]);
        assert_eq!(result.expect_err("error").kind, ProviderErrorKind::Protocol);
    }
}
