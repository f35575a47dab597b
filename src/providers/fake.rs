//! Fake OpenAI-compatible and Anthropic servers for tests and benchmarks. They listen on
//! 127.0.0.1 (ephemeral port), speak the real streaming wire formats byte for byte,
//! answer from a script of responses consumed in order (the last one repeats), and
//! record the requests they receive.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use octo::providers::fake::{FakeOpenAi, FakeResponse};
//! let fake = FakeOpenAi::start(vec![FakeResponse::text(["Hello", " world"])]).await?;
//! // point a model's base_url at fake.base_url(), then inspect fake.requests()
//! # Ok(()) }
//! ```

use std::{
    collections::{BTreeMap, VecDeque},
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicUsize, Ordering},
    },
};

use bytes::Bytes;
use futures::{StreamExt, stream::BoxStream};
use http_body_util::{BodyExt, StreamBody};
use hyper::{
    Request, Response, StatusCode,
    body::{Frame, Incoming},
    service::service_fn,
};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use serde_json::{Value, json};
use tokio::{net::TcpListener, task::JoinSet};

use crate::domain::Usage;

/// Requests kept for inspection (the oldest are dropped beyond this; the count goes on).
const MAX_RECORDED: usize = 1024;

/// One scripted response.
#[derive(Clone, Debug, PartialEq)]
pub enum FakeResponse {
    /// A streamed answer: reasoning chunks, then text chunks, then usage.
    Text {
        chunks: Vec<String>,
        reasoning: Vec<String>,
        usage: Usage,
    },
    /// A streamed tool call whose arguments arrive in fragments.
    ToolCall {
        id: String,
        name: String,
        argument_fragments: Vec<String>,
    },
    /// A non-2xx answer with a JSON (or any) body.
    Status {
        code: u16,
        body: String,
        retry_after: Option<u64>,
    },
    /// Some text chunks, then the provider's in-stream error event (OpenAI `error`
    /// object; Anthropic `overloaded_error`), then the body ends.
    StreamError {
        chunks: Vec<String>,
        message: String,
    },
    /// A stream whose first data line is not JSON.
    Garbage,
    /// Text chunks, then the body ends before the model finished.
    CutAfter { chunks: Vec<String> },
    /// Response headers, then silence forever.
    Hang,
}

impl FakeResponse {
    /// Text chunks with usage input 10, output = number of chunks.
    pub fn text<S: Into<String>>(chunks: impl IntoIterator<Item = S>) -> Self {
        let chunks: Vec<String> = chunks.into_iter().map(Into::into).collect();
        let usage = Usage {
            input_tokens: 10,
            output_tokens: chunks.len() as i64,
            ..Usage::default()
        };
        FakeResponse::Text {
            chunks,
            reasoning: Vec::new(),
            usage,
        }
    }

    pub fn tool_call<S: Into<String>>(
        id: &str,
        name: &str,
        argument_fragments: impl IntoIterator<Item = S>,
    ) -> Self {
        FakeResponse::ToolCall {
            id: id.into(),
            name: name.into(),
            argument_fragments: argument_fragments.into_iter().map(Into::into).collect(),
        }
    }

    pub fn status(code: u16, body: impl Into<String>) -> Self {
        FakeResponse::Status {
            code,
            body: body.into(),
            retry_after: None,
        }
    }
}

/// A request the fake received.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: BTreeMap<String, String>,
    /// The parsed JSON body (`Null` when it was not JSON).
    pub body: Value,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    OpenAi,
    Anthropic,
}

struct State {
    dialect: Dialect,
    script: Vec<FakeResponse>,
    next: AtomicUsize,
    count: AtomicUsize,
    recorded: Mutex<VecDeque<RecordedRequest>>,
}

impl State {
    fn recorded(&self) -> MutexGuard<'_, VecDeque<RecordedRequest>> {
        self.recorded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The server both fakes run.
struct FakeServer {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeServer {
    async fn start(dialect: Dialect, script: Vec<FakeResponse>) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            dialect,
            script,
            next: AtomicUsize::new(0),
            count: AtomicUsize::new(0),
            recorded: Mutex::new(VecDeque::new()),
        });
        let task = tokio::spawn(serve(listener, state.clone()));
        Ok(Self { addr, state, task })
    }

    fn requests(&self) -> Vec<RecordedRequest> {
        self.state.recorded().iter().cloned().collect()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection.
        self.task.abort();
    }
}

macro_rules! fake_server {
    ($name:ident, $dialect:expr, $base_path:expr, $doc:literal) => {
        #[doc = $doc]
        pub struct $name {
            server: FakeServer,
        }

        impl $name {
            /// Starts the server on 127.0.0.1 with an ephemeral port.
            pub async fn start(script: Vec<FakeResponse>) -> std::io::Result<Self> {
                Ok(Self {
                    server: FakeServer::start($dialect, script).await?,
                })
            }

            /// The base URL to configure as the model's `base_url`.
            pub fn base_url(&self) -> String {
                format!("http://{}{}", self.server.addr, $base_path)
            }

            pub fn addr(&self) -> SocketAddr {
                self.server.addr
            }

            /// The requests received so far (the latest 1024), oldest first.
            pub fn requests(&self) -> Vec<RecordedRequest> {
                self.server.requests()
            }

            /// How many requests arrived (to the right path or not).
            pub fn request_count(&self) -> usize {
                self.server.state.count.load(Ordering::SeqCst)
            }
        }
    };
}

fake_server!(
    FakeOpenAi,
    Dialect::OpenAi,
    "/v1",
    "A fake OpenAI-compatible server: `POST /v1/chat/completions`, streamed."
);
fake_server!(
    FakeAnthropic,
    Dialect::Anthropic,
    "",
    "A fake Anthropic server: `POST /v1/messages`, streamed."
);

type Body = StreamBody<BoxStream<'static, Result<Frame<Bytes>, Infallible>>>;

async fn serve(listener: TcpListener, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::debug!(error = %e, "fake provider: accept failed");
                    continue;
                }
            },
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        connections.spawn(async move {
            let service = service_fn(move |request| handle(state.clone(), request));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = request.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    let expected = match state.dialect {
        Dialect::OpenAi => "/v1/chat/completions",
        Dialect::Anthropic => "/v1/messages",
    };
    let right_path = recorded.method == "POST" && recorded.path == expected;
    let model = recorded.body["model"].as_str().unwrap_or("fake").to_owned();
    let include_usage = recorded.body["stream_options"]["include_usage"] == true;
    state.count.fetch_add(1, Ordering::SeqCst);
    {
        let mut log = state.recorded();
        if log.len() == MAX_RECORDED {
            log.pop_front();
        }
        log.push_back(recorded);
    }
    if !right_path {
        return Ok(status_response(
            404,
            &json!({"error": {"message": format!("no route; the fake serves POST {expected}"), "type": "not_found_error"}})
                .to_string(),
            None,
        ));
    }
    let index = state.next.fetch_add(1, Ordering::SeqCst);
    let Some(response) = state
        .script
        .get(index.min(state.script.len().saturating_sub(1)))
    else {
        return Ok(status_response(
            500,
            r#"{"error":{"message":"the fake server has an empty script"}}"#,
            None,
        ));
    };
    Ok(match state.dialect {
        Dialect::OpenAi => openai::respond(response, &model, include_usage),
        Dialect::Anthropic => anthropic::respond(response, &model),
    })
}

fn status_response(code: u16, body: &str, retry_after: Option<u64>) -> Response<Body> {
    let chunk = Frame::data(Bytes::from(body.to_owned()));
    let mut response = Response::new(StreamBody::new(futures::stream::iter([Ok(chunk)]).boxed()));
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    if let Some(seconds) = retry_after {
        headers.insert(hyper::header::RETRY_AFTER, seconds.into());
    }
    response
}

/// A 200 event stream of `frames`, ending there or hanging forever.
fn sse_response(frames: Vec<String>, hang: bool) -> Response<Body> {
    let frames = futures::stream::iter(
        frames
            .into_iter()
            .map(|frame| Ok(Frame::data(Bytes::from(frame)))),
    );
    let body = if hang {
        frames.chain(futures::stream::pending()).boxed()
    } else {
        frames.boxed()
    };
    let mut response = Response::new(StreamBody::new(body));
    let headers = response.headers_mut();
    headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-cache"),
    );
    response
}

mod openai {
    use super::*;

    const CREATED: u64 = 1_700_000_000;

    fn data(json: &Value) -> String {
        format!("data: {json}\n\n")
    }

    /// A chunk with one choice; `usage: null` as OpenAI sends when usage is requested.
    fn chunk(model: &str, include_usage: bool, delta: Value, finish: Option<&str>) -> String {
        let mut json = json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if include_usage {
            json["usage"] = Value::Null;
        }
        data(&json)
    }

    fn usage_chunk(model: &str, usage: &Usage) -> String {
        data(&json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [],
            "usage": {
                "prompt_tokens": usage.input_tokens,
                "completion_tokens": usage.output_tokens,
                "total_tokens": usage.input_tokens + usage.output_tokens,
                "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens, "audio_tokens": 0},
            },
        }))
    }

    const DONE: &str = "data: [DONE]\n\n";

    pub(super) fn respond(response: &FakeResponse, model: &str, usage: bool) -> Response<Body> {
        let role = || {
            chunk(
                model,
                usage,
                json!({"role": "assistant", "content": "", "refusal": null}),
                None,
            )
        };
        let content = |text: &str| chunk(model, usage, json!({"content": text}), None);
        match response {
            FakeResponse::Text {
                chunks,
                reasoning,
                usage: counts,
            } => {
                let mut frames = vec![role()];
                frames.extend(
                    reasoning
                        .iter()
                        .map(|r| chunk(model, usage, json!({"reasoning_content": r}), None)),
                );
                frames.extend(chunks.iter().map(|c| content(c)));
                frames.push(chunk(model, usage, json!({}), Some("stop")));
                if usage {
                    frames.push(usage_chunk(model, counts));
                }
                frames.push(DONE.to_owned());
                sse_response(frames, false)
            }
            FakeResponse::ToolCall {
                id,
                name,
                argument_fragments,
            } => {
                let mut frames = vec![chunk(
                    model,
                    usage,
                    json!({"role": "assistant", "content": null, "tool_calls": [{
                        "index": 0, "id": id, "type": "function",
                        "function": {"name": name, "arguments": ""},
                    }]}),
                    None,
                )];
                frames.extend(argument_fragments.iter().map(|fragment| {
                    chunk(
                        model,
                        usage,
                        json!({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}),
                        None,
                    )
                }));
                frames.push(chunk(model, usage, json!({}), Some("tool_calls")));
                if usage {
                    let counts = Usage {
                        input_tokens: 10,
                        output_tokens: argument_fragments.len() as i64,
                        ..Usage::default()
                    };
                    frames.push(usage_chunk(model, &counts));
                }
                frames.push(DONE.to_owned());
                sse_response(frames, false)
            }
            FakeResponse::Status {
                code,
                body,
                retry_after,
            } => status_response(*code, body, *retry_after),
            FakeResponse::StreamError { chunks, message } => {
                let mut frames = vec![role()];
                frames.extend(chunks.iter().map(|c| content(c)));
                frames.push(data(&json!({"error": {
                    "message": message, "type": "server_error", "param": null, "code": null,
                }})));
                sse_response(frames, false)
            }
            FakeResponse::Garbage => sse_response(
                vec![
                    role(),
                    "data: {\"id\":\"chatcmpl-fake\",\"choices\":[{oops\n\n".to_owned(),
                ],
                false,
            ),
            FakeResponse::CutAfter { chunks } => {
                let mut frames = vec![role()];
                frames.extend(chunks.iter().map(|c| content(c)));
                sse_response(frames, false)
            }
            FakeResponse::Hang => sse_response(Vec::new(), true),
        }
    }
}

mod anthropic {
    use super::*;

    fn event(name: &str, json: &Value) -> String {
        format!("event: {name}\ndata: {json}\n\n")
    }

    fn message_start(model: &str, usage: &Usage) -> String {
        let cached = usage.cached_input_tokens;
        event(
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {
                    "input_tokens": usage.input_tokens - cached,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": cached,
                    "output_tokens": 1,
                },
            }}),
        )
    }

    fn ping() -> String {
        event("ping", &json!({"type": "ping"}))
    }

    fn block_start(index: usize, block: Value) -> String {
        event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        )
    }

    fn block_delta(index: usize, delta: Value) -> String {
        event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": index, "delta": delta}),
        )
    }

    fn block_stop(index: usize) -> String {
        event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        )
    }

    fn end(stop_reason: &str, output_tokens: i64) -> [String; 2] {
        [
            event(
                "message_delta",
                &json!({"type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                    "usage": {"output_tokens": output_tokens}}),
            ),
            event("message_stop", &json!({"type": "message_stop"})),
        ]
    }

    fn text_block(frames: &mut Vec<String>, index: usize, chunks: &[String]) {
        frames.push(block_start(index, json!({"type": "text", "text": ""})));
        frames.extend(
            chunks
                .iter()
                .map(|c| block_delta(index, json!({"type": "text_delta", "text": c}))),
        );
    }

    pub(super) fn respond(response: &FakeResponse, model: &str) -> Response<Body> {
        let default_usage = Usage {
            input_tokens: 10,
            ..Usage::default()
        };
        match response {
            FakeResponse::Text {
                chunks,
                reasoning,
                usage,
            } => {
                let mut frames = vec![message_start(model, usage), ping()];
                let mut index = 0;
                if !reasoning.is_empty() {
                    frames.push(block_start(
                        0,
                        json!({"type": "thinking", "thinking": "", "signature": ""}),
                    ));
                    frames.extend(
                        reasoning.iter().map(|r| {
                            block_delta(0, json!({"type": "thinking_delta", "thinking": r}))
                        }),
                    );
                    frames.push(block_delta(
                        0,
                        json!({"type": "signature_delta", "signature": "ZmFrZS1zaWduYXR1cmU="}),
                    ));
                    frames.push(block_stop(0));
                    index = 1;
                }
                text_block(&mut frames, index, chunks);
                frames.push(block_stop(index));
                frames.extend(end("end_turn", usage.output_tokens));
                sse_response(frames, false)
            }
            FakeResponse::ToolCall {
                id,
                name,
                argument_fragments,
            } => {
                let mut frames = vec![
                    message_start(model, &default_usage),
                    block_start(
                        0,
                        json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    ),
                    block_delta(0, json!({"type": "input_json_delta", "partial_json": ""})),
                    ping(),
                ];
                frames.extend(argument_fragments.iter().map(|fragment| {
                    block_delta(
                        0,
                        json!({"type": "input_json_delta", "partial_json": fragment}),
                    )
                }));
                frames.push(block_stop(0));
                frames.extend(end("tool_use", argument_fragments.len() as i64));
                sse_response(frames, false)
            }
            FakeResponse::Status {
                code,
                body,
                retry_after,
            } => status_response(*code, body, *retry_after),
            FakeResponse::StreamError { chunks, message } => {
                let mut frames = vec![message_start(model, &default_usage)];
                if !chunks.is_empty() {
                    text_block(&mut frames, 0, chunks);
                }
                frames.push(event(
                    "error",
                    &json!({"type": "error", "error": {"type": "overloaded_error", "message": message}}),
                ));
                sse_response(frames, false)
            }
            FakeResponse::Garbage => sse_response(
                vec!["event: message_start\ndata: {\"type\":\"message_start\",oops\n\n".to_owned()],
                false,
            ),
            FakeResponse::CutAfter { chunks } => {
                let mut frames = vec![message_start(model, &default_usage)];
                text_block(&mut frames, 0, chunks);
                sse_response(frames, false)
            }
            FakeResponse::Hang => sse_response(Vec::new(), true),
        }
    }
}
