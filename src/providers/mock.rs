//! The built-in deterministic `mock` model, for tests, demos and benchmarks. No network.
//!
//! What it does depends on the last message of the request:
//! - a tool result: `Tool <name> returned: <first 200 chars of the output>`;
//! - `/tool <name> <json args>`: one tool call `call_<history length>`;
//! - `/ask <question> [| <choice> | <choice> ...]`: an `ask_user` call (`call_<history
//!   length>`) with that question and choices (the answer comes back as a tool result,
//!   quoted as above);
//! - `/tools`: `Tools: <name>, <name>, ...`, the tools the request offers, in order;
//! - `/error <text>`: `stream()` fails with InvalidRequest;
//! - `/fail-after <n> <text>`: n tokens `tok0 `, `tok1 `, ..., then an Unavailable error;
//! - `/sleep <ms>`: waits before the first token, then replies as usual;
//! - `/context`: `Context: <n> messages; system: <system prompt>` (what it was sent);
//! - a compaction's summary request (`SUMMARY_INSTRUCTION`): `Summary of <n> messages:
//!   <the first words of each user message, joined by " / ">`;
//! - otherwise the option `reply`, else `Echo: <user text>`; with the option `tokens`
//!   (N) the reply is `tok0 tok1 ... tok{N-1}` instead.
//!
//! Options: `reply`, `tokens`, `token_delay_ms` (between tokens), `reasoning` (streamed
//! as reasoning tokens first). Text streams one whitespace-separated word per delta,
//! each keeping the whitespace that follows it. A Usage (input: history chars / 4,
//! rounded up; output: tokens streamed, a tool call counting as one) precedes Finished.

use std::{
    fmt::Write as _,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use futures::{Stream, StreamExt};
use tokio::time::{Instant, Sleep};

use super::{
    ChatRequest, EventStream, ModelSpec, Provider, ProviderError, ProviderErrorKind, StopReason,
    StreamEvent,
};
use crate::domain::{Message, Part, Role, Usage, tool::ToolCallRequest};

/// Characters of a tool's output quoted in the reply to a tool result.
const QUOTED_OUTPUT_CHARS: usize = 200;

/// The `mock` provider.
#[derive(Clone, Debug, Default)]
pub struct MockProvider {
    reply: Option<String>,
    tokens: Option<u64>,
    token_delay: Duration,
    reasoning: Option<String>,
}

impl MockProvider {
    pub fn new(spec: &ModelSpec) -> Self {
        let options = &spec.options;
        Self {
            reply: options["reply"].as_str().map(str::to_owned),
            tokens: options["tokens"].as_u64(),
            token_delay: Duration::from_millis(options["token_delay_ms"].as_u64().unwrap_or(0)),
            reasoning: options["reasoning"]
                .as_str()
                .filter(|r| !r.is_empty())
                .map(str::to_owned),
        }
    }

    /// The stream for `request` (what [`Provider::stream`] returns, without boxing).
    fn plan(&self, request: &ChatRequest) -> Result<MockStream, ProviderError> {
        let mut stream = MockStream {
            reasoning: self.reasoning.clone().map(Tokens::words),
            text: None,
            tool_call: None,
            failure: None,
            stop: StopReason::EndTurn,
            first_delay: None,
            token_delay: self.token_delay,
            timer: None,
            armed: false,
            waited: false,
            emitted_tokens: false,
            input_tokens: input_tokens(request),
            output_tokens: 0,
            reasoning_tokens: 0,
            stage: Stage::Start,
        };
        let Some(last) = request.messages.last() else {
            stream.text = Some(self.reply(String::new()));
            return Ok(stream);
        };
        if last.role == Role::Tool {
            stream.text = Some(Tokens::words(tool_reply(&request.messages, last)));
            return Ok(stream);
        }
        let text = last.text();
        let command = text.trim_start();
        if command.trim_end() == "/tools" {
            let names: Vec<&str> = request.tools.iter().map(|t| t.name.as_str()).collect();
            stream.text = Some(Tokens::words(format!("Tools: {}", names.join(", "))));
        } else if let Some(rest) = command.strip_prefix("/ask ") {
            let mut pieces = rest.split('|').map(str::trim);
            let question = pieces.next().unwrap_or_default();
            let choices: Vec<&str> = pieces.filter(|c| !c.is_empty()).collect();
            let mut arguments = serde_json::json!({ "question": question });
            if !choices.is_empty() {
                arguments["choices"] = serde_json::json!(choices);
            }
            stream.tool_call = Some(ToolCallRequest {
                id: format!("call_{}", request.messages.len()),
                // The built-in question tool (`tools::ask_user`).
                tool: "ask_user".to_owned(),
                arguments_json: arguments.to_string(),
            });
            stream.stop = StopReason::ToolUse;
        } else if let Some(rest) = command.strip_prefix("/tool ") {
            let rest = rest.trim_start();
            let (name, args) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let args = args.trim();
            stream.tool_call = Some(ToolCallRequest {
                id: format!("call_{}", request.messages.len()),
                tool: name.to_owned(),
                arguments_json: if args.is_empty() {
                    "{}".to_owned()
                } else {
                    args.to_owned()
                },
            });
            stream.stop = StopReason::ToolUse;
        } else if let Some(message) = command
            .strip_prefix("/error")
            .filter(|r| r.is_empty() || r.starts_with(char::is_whitespace))
        {
            return Err(ProviderError::new(
                ProviderErrorKind::InvalidRequest,
                message.trim(),
            ));
        } else if let Some(rest) = command.strip_prefix("/fail-after ") {
            let rest = rest.trim_start();
            let (count, message) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let count = count.parse::<u64>().map_err(|_| {
                ProviderError::new(
                    ProviderErrorKind::InvalidRequest,
                    format!("mock: /fail-after wants a token count, got {count:?}"),
                )
            })?;
            stream.text = Some(Tokens::numbered(count, true));
            stream.failure = Some(ProviderError::new(
                ProviderErrorKind::Unavailable,
                message.trim(),
            ));
        } else if command == super::SUMMARY_INSTRUCTION {
            stream.text = Some(Tokens::words(summary_reply(request)));
        } else if command == "/context" {
            stream.text = Some(Tokens::words(format!(
                "Context: {} messages; system: {}",
                request.messages.len(),
                request.system
            )));
        } else if let Some(rest) = command.strip_prefix("/sleep ") {
            let ms = rest.split_whitespace().next().unwrap_or_default();
            let ms = ms.parse::<u64>().map_err(|_| {
                ProviderError::new(
                    ProviderErrorKind::InvalidRequest,
                    format!("mock: /sleep wants milliseconds, got {ms:?}"),
                )
            })?;
            stream.first_delay = Some(Duration::from_millis(ms));
            stream.text = Some(self.reply(text));
        } else {
            stream.text = Some(self.reply(text));
        }
        Ok(stream)
    }

    fn reply(&self, user_text: String) -> Tokens {
        if let Some(n) = self.tokens {
            Tokens::numbered(n, false)
        } else if let Some(reply) = &self.reply {
            Tokens::words(reply.clone())
        } else {
            let mut text = user_text;
            text.insert_str(0, "Echo: ");
            Tokens::words(text)
        }
    }
}

#[async_trait::async_trait]
impl Provider for MockProvider {
    async fn stream(&self, request: &ChatRequest) -> Result<EventStream, ProviderError> {
        Ok(self.plan(request)?.boxed())
    }
}

/// Total characters of the history (and system prompt) / 4, rounded up.
fn input_tokens(request: &ChatRequest) -> i64 {
    let mut chars = request.system.chars().count();
    for message in &request.messages {
        for part in &message.parts {
            chars += match part {
                Part::Text { text } | Part::Reasoning { text } => text.chars().count(),
                Part::ToolCall {
                    tool,
                    arguments_json,
                    ..
                } => tool.chars().count() + arguments_json.chars().count(),
                Part::ToolResult { output, .. } => output.chars().count(),
                Part::Attachment { .. } => 0,
            };
        }
    }
    i64::try_from(chars.div_ceil(4)).unwrap_or(i64::MAX)
}

/// The mock's summary: which messages it was given, by the first words of each user
/// message (so tests can tell what a compaction replaced).
fn summary_reply(request: &ChatRequest) -> String {
    let summarised = &request.messages[..request.messages.len().saturating_sub(1)];
    let users: Vec<String> = summarised
        .iter()
        .filter(|m| m.role == Role::User)
        .map(|m| {
            m.text()
                .split_whitespace()
                .take(6)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    format!(
        "Summary of {} messages: {}",
        summarised.len(),
        users.join(" / ")
    )
}

/// `Tool <name> returned: <output>` for each result of the last message.
fn tool_reply(history: &[Message], last: &Message) -> String {
    let mut reply = String::new();
    for part in &last.parts {
        let Part::ToolResult {
            tool_call_id,
            output,
            ..
        } = part
        else {
            continue;
        };
        let name = history
            .iter()
            .rev()
            .flat_map(|m| m.parts.iter())
            .find_map(|p| match p {
                Part::ToolCall { id, tool, .. } if id == tool_call_id => Some(tool.as_str()),
                _ => None,
            })
            .unwrap_or("unknown");
        if !reply.is_empty() {
            reply.push('\n');
        }
        let quoted = match output.char_indices().nth(QUOTED_OUTPUT_CHARS) {
            Some((end, _)) => &output[..end],
            None => output,
        };
        let _ = write!(reply, "Tool {name} returned: {quoted}");
    }
    reply
}

/// A source of tokens.
enum Tokens {
    /// Words of `text` from byte `pos`, each with its trailing whitespace.
    Words { text: String, pos: usize },
    /// `tok{next}` ... `tok{total-1}`, space-separated (`trailing`: a space after the
    /// last one too).
    Numbered {
        next: u64,
        total: u64,
        trailing: bool,
    },
}

impl Tokens {
    fn words(text: String) -> Self {
        Tokens::Words { text, pos: 0 }
    }

    fn numbered(total: u64, trailing: bool) -> Self {
        Tokens::Numbered {
            next: 0,
            total,
            trailing,
        }
    }

    fn has_more(&self) -> bool {
        match self {
            Tokens::Words { text, pos } => *pos < text.len(),
            Tokens::Numbered { next, total, .. } => next < total,
        }
    }

    fn next_token(&mut self) -> Option<String> {
        match self {
            Tokens::Words { text, pos } => {
                let rest = &text[*pos..];
                if rest.is_empty() {
                    return None;
                }
                let bytes = rest.as_bytes();
                let mut end = 0;
                // Leading whitespace (only at the very start) goes with the first word.
                while end < bytes.len() && is_space(rest, &mut end, true) {}
                while end < bytes.len() && !is_space(rest, &mut end, false) {}
                while end < bytes.len() && is_space(rest, &mut end, true) {}
                let token = rest[..end].to_owned();
                *pos += end;
                Some(token)
            }
            Tokens::Numbered {
                next,
                total,
                trailing,
            } => {
                if *next >= *total {
                    return None;
                }
                let mut token = String::with_capacity(24);
                let _ = write!(token, "tok{next}");
                *next += 1;
                if *next < *total || *trailing {
                    token.push(' ');
                }
                Some(token)
            }
        }
    }
}

/// Whether the char at `*at` is whitespace; advances `*at` past it when it is (and
/// `consume_space`) or when it is not (and `!consume_space`).
fn is_space(text: &str, at: &mut usize, consume_space: bool) -> bool {
    let byte = text.as_bytes()[*at];
    let (space, len) = if byte.is_ascii() {
        (byte.is_ascii_whitespace(), 1)
    } else {
        match text[*at..].chars().next() {
            Some(c) => (c.is_whitespace(), c.len_utf8()),
            None => (false, 1),
        }
    };
    if space == consume_space {
        *at += len;
    }
    space
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Start,
    Reasoning,
    Text,
    ToolCall,
    End,
    Finish,
    Done,
}

/// The mock's event stream: a small state machine, no allocation per token beyond the
/// token's string.
struct MockStream {
    reasoning: Option<Tokens>,
    text: Option<Tokens>,
    tool_call: Option<ToolCallRequest>,
    /// Ends the stream instead of Usage + Finished.
    failure: Option<ProviderError>,
    stop: StopReason,
    first_delay: Option<Duration>,
    token_delay: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    /// The timer is set for the current wait.
    armed: bool,
    /// The current wait is over (reset when a token is sent).
    waited: bool,
    emitted_tokens: bool,
    input_tokens: i64,
    output_tokens: i64,
    reasoning_tokens: i64,
    stage: Stage,
}

impl MockStream {
    /// Waits `delay` (arming the reused timer on first poll). Ready once it has passed.
    fn wait(&mut self, cx: &mut Context<'_>, delay: Duration) -> Poll<()> {
        if self.waited {
            return Poll::Ready(());
        }
        if !self.armed {
            let deadline = Instant::now() + delay;
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(deadline),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.armed = true;
        }
        let Some(timer) = &mut self.timer else {
            return Poll::Ready(());
        };
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.armed = false;
                self.waited = true;
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// Waits before a token when a token delay is set and a token was already sent.
    fn pace(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.emitted_tokens && !self.token_delay.is_zero() {
            let delay = self.token_delay;
            self.wait(cx, delay)
        } else {
            Poll::Ready(())
        }
    }

    fn sent_token(&mut self) {
        self.emitted_tokens = true;
        self.waited = false;
        self.output_tokens += 1;
    }
}

impl Stream for MockStream {
    type Item = Result<StreamEvent, ProviderError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.stage {
                Stage::Start => {
                    if let Some(delay) = this.first_delay {
                        if this.wait(cx, delay).is_pending() {
                            return Poll::Pending;
                        }
                        this.waited = false;
                    }
                    this.stage = Stage::Reasoning;
                }
                Stage::Reasoning | Stage::Text => {
                    let reasoning = this.stage == Stage::Reasoning;
                    let tokens = if reasoning {
                        &this.reasoning
                    } else {
                        &this.text
                    };
                    if !tokens.as_ref().is_some_and(Tokens::has_more) {
                        this.stage = if reasoning {
                            Stage::Text
                        } else {
                            Stage::ToolCall
                        };
                        continue;
                    }
                    // Pacing waits only when there is a token to send.
                    if this.pace(cx).is_pending() {
                        return Poll::Pending;
                    }
                    let tokens = if reasoning {
                        &mut this.reasoning
                    } else {
                        &mut this.text
                    };
                    if let Some(token) = tokens.as_mut().and_then(Tokens::next_token) {
                        this.sent_token();
                        return Poll::Ready(Some(Ok(if reasoning {
                            this.reasoning_tokens += 1;
                            StreamEvent::ReasoningDelta(token)
                        } else {
                            StreamEvent::TextDelta(token)
                        })));
                    }
                }
                Stage::ToolCall => {
                    this.stage = Stage::End;
                    if let Some(call) = this.tool_call.take() {
                        this.output_tokens += 1;
                        return Poll::Ready(Some(Ok(StreamEvent::ToolCall(call))));
                    }
                }
                Stage::End => {
                    if let Some(error) = this.failure.take() {
                        this.stage = Stage::Done;
                        return Poll::Ready(Some(Err(error)));
                    }
                    this.stage = Stage::Finish;
                    return Poll::Ready(Some(Ok(StreamEvent::Usage(Usage {
                        input_tokens: this.input_tokens,
                        output_tokens: this.output_tokens,
                        reasoning_tokens: this.reasoning_tokens,
                        cached_input_tokens: 0,
                    }))));
                }
                Stage::Finish => {
                    this.stage = Stage::Done;
                    let stop = std::mem::replace(&mut this.stop, StopReason::EndTurn);
                    return Poll::Ready(Some(Ok(StreamEvent::Finished(stop))));
                }
                Stage::Done => return Poll::Ready(None),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use futures::StreamExt;
    use serde_json::{Value, json};

    use super::*;
    use crate::providers::{ProviderKind, ProviderPolicy, testing::*};

    fn mock(options: Value) -> std::sync::Arc<dyn Provider> {
        let spec = spec(ProviderKind::Mock, "", options);
        crate::providers::build(&spec, &ProviderPolicy::default(), reqwest::Client::new())
    }

    fn texts(events: &[StreamEvent]) -> Vec<&str> {
        events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::TextDelta(t) => Some(t.as_str()),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn echoes_word_by_word_with_usage() {
        let req = request(vec![user("hello  big\nworld ")]);
        let (events, error) = collect(mock(json!({})).as_ref(), &req).await;
        assert_eq!(error, None);
        assert_eq!(texts(&events), vec!["Echo: ", "hello  ", "big\n", "world "]);
        assert_eq!(text_of(&events), "Echo: hello  big\nworld ");
        let n = events.len();
        assert_eq!(
            events[n - 2],
            StreamEvent::Usage(Usage {
                // 17 chars of history / 4, rounded up.
                input_tokens: 5,
                output_tokens: 4,
                reasoning_tokens: 0,
                cached_input_tokens: 0,
            })
        );
        assert_eq!(events[n - 1], StreamEvent::Finished(StopReason::EndTurn));
    }

    #[tokio::test]
    async fn replies_with_the_configured_reply_and_reasoning() {
        let req = request(vec![user("anything")]);
        let options = json!({"reply": " Fixed  reply ", "reasoning": "I think so"});
        let (events, error) = collect(mock(options).as_ref(), &req).await;
        assert_eq!(error, None);
        assert_eq!(reasoning_of(&events), "I think so");
        assert!(matches!(events[0], StreamEvent::ReasoningDelta(_)));
        assert_eq!(texts(&events), vec![" Fixed  ", "reply "]);
        assert!(events.contains(&StreamEvent::Usage(Usage {
            input_tokens: 2,
            output_tokens: 5,
            reasoning_tokens: 3,
            cached_input_tokens: 0,
        })));
    }

    #[tokio::test]
    async fn streams_numbered_tokens() {
        let req = request(vec![user("go")]);
        let (events, _) = collect(mock(json!({"tokens": 3})).as_ref(), &req).await;
        assert_eq!(texts(&events), vec!["tok0 ", "tok1 ", "tok2"]);
        let (events, _) = collect(mock(json!({"tokens": 0})).as_ref(), &req).await;
        assert_eq!(
            events,
            vec![
                StreamEvent::Usage(Usage {
                    input_tokens: 1,
                    ..Usage::default()
                }),
                StreamEvent::Finished(StopReason::EndTurn)
            ]
        );
    }

    #[tokio::test]
    async fn calls_a_tool_on_request() {
        let req = request(vec![
            user("first"),
            message(Role::Assistant, vec![text("ok")]),
            user(r#"/tool shell {"command": "ls -la"}"#),
        ]);
        let (events, error) = collect(mock(json!({})).as_ref(), &req).await;
        assert_eq!(error, None);
        assert_eq!(
            events[0],
            StreamEvent::ToolCall(ToolCallRequest {
                id: "call_3".into(),
                tool: "shell".into(),
                arguments_json: r#"{"command": "ls -la"}"#.into(),
            })
        );
        assert!(matches!(events[1], StreamEvent::Usage(u) if u.output_tokens == 1));
        assert_eq!(events[2], StreamEvent::Finished(StopReason::ToolUse));

        let req = request(vec![user("/tool list_files")]);
        let (events, _) = collect(mock(json!({})).as_ref(), &req).await;
        assert!(matches!(
            &events[0],
            StreamEvent::ToolCall(call) if call.id == "call_1" && call.tool == "list_files" && call.arguments_json == "{}"
        ));
    }

    #[tokio::test]
    async fn asks_the_user_and_lists_the_offered_tools() {
        let req = request(vec![user("/ask Which one? | Rust | Go ")]);
        let (events, error) = collect(mock(json!({})).as_ref(), &req).await;
        assert_eq!(error, None);
        let StreamEvent::ToolCall(call) = &events[0] else {
            panic!("a tool call first: {events:?}");
        };
        assert_eq!(call.tool, "ask_user");
        assert_eq!(
            serde_json::from_str::<Value>(&call.arguments_json).expect("json"),
            json!({"question": "Which one?", "choices": ["Rust", "Go"]})
        );
        let req = request(vec![user("/ask Your name?")]);
        let (events, _) = collect(mock(json!({})).as_ref(), &req).await;
        assert!(matches!(
            &events[0],
            StreamEvent::ToolCall(call) if call.arguments_json == r#"{"question":"Your name?"}"#
        ));

        let mut req = request(vec![user("/tools")]);
        req.tools = ["read_file", "ask_user"]
            .into_iter()
            .map(|name| crate::domain::tool::ToolSpec {
                name: name.into(),
                description: String::new(),
                parameters: json!({}),
            })
            .collect();
        let (events, _) = collect(mock(json!({})).as_ref(), &req).await;
        assert_eq!(text_of(&events), "Tools: read_file, ask_user");
    }

    #[tokio::test]
    async fn reports_tool_results() {
        let long = "x".repeat(300);
        let req = request(vec![
            user("/tool read_file {}"),
            message(
                Role::Assistant,
                vec![tool_call("call_1", "read_file", "{}")],
            ),
            message(Role::Tool, vec![tool_result("call_1", &long, false)]),
        ]);
        let (events, error) = collect(mock(json!({"reply": "ignored"})).as_ref(), &req).await;
        assert_eq!(error, None);
        assert_eq!(
            text_of(&events),
            format!("Tool read_file returned: {}", "x".repeat(200))
        );
        assert_eq!(
            events.last(),
            Some(&StreamEvent::Finished(StopReason::EndTurn))
        );
    }

    #[tokio::test]
    async fn fails_on_request() {
        let req = request(vec![user("/error the model is gone")]);
        let error = match mock(json!({})).stream(&req).await {
            Ok(_) => panic!("expected an error"),
            Err(e) => e,
        };
        assert_eq!(
            error,
            ProviderError::new(ProviderErrorKind::InvalidRequest, "the model is gone")
        );

        let req = request(vec![user("/fail-after 2 connection reset")]);
        let (events, error) = collect(mock(json!({})).as_ref(), &req).await;
        assert_eq!(texts(&events), vec!["tok0 ", "tok1 "]);
        assert_eq!(events.len(), 2);
        assert_eq!(
            error,
            Some(ProviderError::new(
                ProviderErrorKind::Unavailable,
                "connection reset"
            ))
        );
    }

    #[tokio::test]
    async fn sleeps_before_the_first_token() {
        let req = request(vec![user("/sleep 60000")]);
        let mut stream = mock(json!({})).stream(&req).await.expect("stream");
        assert!(
            tokio::time::timeout(Duration::from_millis(20), stream.next())
                .await
                .is_err(),
            "nothing before the sleep is over"
        );
        drop(stream);

        let req = request(vec![user("/sleep 50")]);
        let started = Instant::now();
        let (events, error) = collect(mock(json!({})).as_ref(), &req).await;
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert_eq!(error, None);
        assert_eq!(text_of(&events), "Echo: /sleep 50");
    }

    #[tokio::test]
    async fn paces_tokens_with_the_delay() {
        let req = request(vec![user("a b c")]);
        let started = Instant::now();
        let (events, _) = collect(
            mock(json!({"token_delay_ms": 10, "reasoning": "r"})).as_ref(),
            &req,
        )
        .await;
        // 1 reasoning + 4 text tokens: 4 delays between them.
        assert!(started.elapsed() >= Duration::from_millis(40));
        assert_eq!(text_of(&events), "Echo: a b c");
    }

    #[tokio::test]
    async fn handles_an_empty_history() {
        let (events, error) = collect(mock(json!({})).as_ref(), &request(Vec::new())).await;
        assert_eq!(error, None);
        assert_eq!(text_of(&events), "Echo: ");
    }
}
