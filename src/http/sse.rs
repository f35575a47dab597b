//! Server-streaming RPCs as `text/event-stream`: one event per gRPC message
//! (`id:` from a top-level `sequence` field when non-zero, `data:` the compact JSON), a
//! final `event: error` when the call ends with a non-OK status, and a `: keepalive`
//! comment after every interval of silence.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, header};
use http_body::Frame;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, Value};
use tonic::Code;

use super::error::StatusRenderer;
use super::grpc::{GrpcStatus, GrpcStream, Item};
use super::transcode::message_json;

/// The comment sent after `keepalive` of silence.
pub const KEEPALIVE: &[u8] = b": keepalive\n\n";

/// One SSE event. `data` is split on newlines into several `data:` lines, so any text
/// round-trips (compact JSON has none, but a status message might).
pub fn format_event(id: Option<&str>, event: Option<&str>, data: &str) -> Bytes {
    let mut out = String::with_capacity(data.len() + 32);
    if let Some(event) = event {
        out.push_str("event: ");
        out.push_str(event);
        out.push('\n');
    }
    if let Some(id) = id {
        out.push_str("id: ");
        out.push_str(id);
        out.push('\n');
    }
    for line in data.split('\n') {
        out.push_str("data: ");
        out.push_str(line.strip_suffix('\r').unwrap_or(line));
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

/// How to render the messages of one streaming RPC.
#[derive(Clone, Debug)]
pub struct EventSource {
    pub output: MessageDescriptor,
    /// A top-level int64/uint64 `sequence` field, when the message has one.
    pub sequence: Option<FieldDescriptor>,
    pub renderer: StatusRenderer,
}

impl EventSource {
    pub fn new(output: MessageDescriptor, renderer: StatusRenderer) -> Self {
        let sequence = output.get_field_by_name("sequence").filter(|f| {
            !f.is_list()
                && matches!(
                    f.kind(),
                    Kind::Int64 | Kind::Uint64 | Kind::Sint64 | Kind::Fixed64 | Kind::Sfixed64
                )
        });
        Self {
            output,
            sequence,
            renderer,
        }
    }

    /// The event for one encoded message; the error is an INTERNAL status message.
    pub fn message_event(&self, encoded: &[u8]) -> Result<Bytes, String> {
        let message = DynamicMessage::decode(self.output.clone(), encoded)
            .map_err(|err| format!("undecodable response message: {err}"))?;
        let id = self
            .sequence
            .as_ref()
            .and_then(|f| match message.get_field(f).as_ref() {
                Value::I64(n) if *n != 0 => Some(n.to_string()),
                Value::U64(n) if *n != 0 => Some(n.to_string()),
                _ => None,
            });
        let json = message_json(&message).map_err(|err| err.message)?;
        let json = String::from_utf8_lossy(&json);
        Ok(format_event(id.as_deref(), None, &json))
    }

    /// The final `event: error` for a non-OK status.
    pub fn error_event(&self, status: &GrpcStatus) -> Bytes {
        let error = self.renderer.error(
            status.code,
            &status.message,
            &status.details,
            &status.headers,
        );
        let json = error.to_json_bytes();
        format_event(None, Some("error"), &String::from_utf8_lossy(&json))
    }
}

struct State {
    source: EventSource,
    grpc: GrpcStream,
    first: Option<Bytes>,
    keepalive: Duration,
    done: bool,
}

/// The SSE response: `first` (a message already read) then the rest of `grpc`. Dropping
/// the response body drops `grpc`, which drops the in-process call.
pub fn response(
    source: EventSource,
    first: Option<Bytes>,
    grpc: GrpcStream,
    keepalive: Duration,
) -> http::Response<tonic::body::Body> {
    let state = State {
        source,
        grpc,
        first,
        keepalive,
        done: false,
    };
    let events = futures::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        let item = match state.first.take() {
            Some(first) => Item::Message(first),
            None => match tokio::time::timeout(state.keepalive, state.grpc.next()).await {
                Ok(item) => item,
                Err(_) => {
                    let frame = Frame::data(Bytes::from_static(KEEPALIVE));
                    return Some((Ok::<_, std::convert::Infallible>(frame), state));
                }
            },
        };
        let bytes = match item {
            Item::Message(encoded) => match state.source.message_event(&encoded) {
                Ok(event) => event,
                Err(message) => {
                    tracing::warn!(%message, "ending event stream");
                    state.done = true;
                    state
                        .source
                        .error_event(&GrpcStatus::new(Code::Internal, message))
                }
            },
            Item::End(status) => {
                state.done = true;
                if status.code == Code::Ok {
                    return None;
                }
                tracing::debug!(code = ?status.code, "event stream ended with an error");
                state.source.error_event(&status)
            }
        };
        Some((Ok(Frame::data(bytes)), state))
    });
    let mut response = http::Response::new(tonic::body::Body::new(
        http_body_util::StreamBody::new(events),
    ));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tell nginx-style proxies not to buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;
    use prost_reflect::DescriptorPool;

    fn source(name: &str) -> EventSource {
        let pool = DescriptorPool::decode(crate::pb::FILE_DESCRIPTOR_SET).expect("pool");
        EventSource::new(
            pool.get_message_by_name(name).expect("message"),
            StatusRenderer::new(&pool),
        )
    }

    #[test]
    fn event_framing() {
        assert_eq!(
            &format_event(Some("7"), None, r#"{"a":1}"#)[..],
            b"id: 7\ndata: {\"a\":1}\n\n"
        );
        assert_eq!(
            &format_event(None, Some("error"), "x\ny")[..],
            b"event: error\ndata: x\ndata: y\n\n"
        );
    }

    #[test]
    fn message_event_has_id_only_for_nonzero_sequence() {
        let source = source("octo.v1.SessionEvent");
        assert!(source.sequence.is_some());
        let event = crate::pb::SessionEvent {
            sequence: 42,
            session: "sessions/s1".into(),
            ..Default::default()
        };
        let bytes = source.message_event(&event.encode_to_vec()).expect("event");
        assert_eq!(
            std::str::from_utf8(&bytes).expect("utf8"),
            "id: 42\ndata: {\"sequence\":\"42\",\"session\":\"sessions/s1\"}\n\n"
        );
        let event = crate::pb::SessionEvent {
            session: "sessions/s1".into(),
            ..Default::default()
        };
        let bytes = source.message_event(&event.encode_to_vec()).expect("event");
        assert_eq!(
            std::str::from_utf8(&bytes).expect("utf8"),
            "data: {\"session\":\"sessions/s1\"}\n\n"
        );
        // A type without `sequence` never gets an id.
        let watch = source_without_sequence();
        assert!(watch.sequence.is_none());
    }

    fn source_without_sequence() -> EventSource {
        source("octo.v1.WatchSessionsResponse")
    }

    #[test]
    fn error_event_is_status_json() {
        let source = source("octo.v1.SessionEvent");
        let bytes = source.error_event(&GrpcStatus::new(Code::Unavailable, "shutting down"));
        assert_eq!(
            std::str::from_utf8(&bytes).expect("utf8"),
            "event: error\ndata: {\"code\":14,\"message\":\"shutting down\",\"details\":[]}\n\n"
        );
    }
}
