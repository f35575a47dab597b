//! RPCs answering `google.api.HttpBody` (unary, or a server stream of chunks) as a raw
//! HTTP body: status 200, `Content-Type` from the first message's `content_type`
//! (`application/octet-stream` when empty), then every message's `data` in order, as it
//! arrives. A download, not an event stream.
//!
//! Errors: one before the first message is answered as `google.rpc.Status` JSON by the
//! caller; once the body has started its status line is sent, so a later failure aborts
//! the body (the connection or h2 stream is reset, never a clean end), and a client sees
//! a broken download rather than a short file taken for a whole one.
//!
//! The bytes come from wherever the RPC reads them (a session's files, which a model may
//! have written), so they are never run as this origin's page: `Content-Security-Policy:
//! sandbox` gives an HTML body an opaque origin without scripts' reach into the API, and
//! `X-Content-Type-Options: nosniff` keeps browsers to the declared type.

use bytes::Bytes;
use http::{HeaderValue, header};
use http_body::Frame;
use prost::Message as _;

use super::grpc::{GrpcStream, Item};
use crate::pb::google_api::HttpBody;

/// The message type answered as a raw body.
pub const HTTP_BODY: &str = "google.api.HttpBody";

const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// A body that ended with an error after it had started.
#[derive(Debug, thiserror::Error)]
#[error("the response body failed: {0}")]
struct BodyFailed(String);

/// The response for the encoded first message `first` and the rest of `grpc`; the error
/// is the message of an undecodable first message.
pub fn response(
    first: &[u8],
    grpc: GrpcStream,
) -> Result<http::Response<tonic::body::Body>, String> {
    let first =
        HttpBody::decode(first).map_err(|err| format!("undecodable HttpBody message: {err}"))?;
    let content_type = if first.content_type.is_empty() {
        HeaderValue::from_static(DEFAULT_CONTENT_TYPE)
    } else {
        HeaderValue::from_str(&first.content_type)
            .map_err(|_| format!("invalid content_type {:?}", first.content_type))?
    };
    // (data not yet sent, the call; None once it failed, so the body ends there).
    let state = (Some(first.data), Some(grpc));
    let chunks = futures::stream::unfold(state, |(pending, grpc)| async move {
        let mut grpc = grpc?;
        if let Some(data) = pending {
            return Some((Ok(Frame::data(data)), (None, Some(grpc))));
        }
        match grpc.next().await {
            Item::Message(encoded) => match HttpBody::decode(encoded) {
                Ok(chunk) => Some((Ok(Frame::data(chunk.data)), (None, Some(grpc)))),
                Err(err) => {
                    let why = format!("undecodable HttpBody message: {err}");
                    Some((Err(BodyFailed(why)), (None, None)))
                }
            },
            Item::End(status) if status.code == tonic::Code::Ok => None,
            Item::End(status) => {
                tracing::debug!(code = ?status.code, message = %status.message, "raw body ended with an error");
                Some((Err(BodyFailed(status.message)), (None, None)))
            }
        }
    });
    // Empty chunks carry nothing (the first message often holds only the type).
    let chunks = futures::StreamExt::filter(chunks, |frame| {
        let keep = !matches!(frame, Ok(frame) if frame.data_ref().is_some_and(Bytes::is_empty));
        std::future::ready(keep)
    });
    let mut response = http::Response::new(tonic::body::Body::new(
        http_body_util::StreamBody::new(chunks),
    ));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}
