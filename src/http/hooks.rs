//! `POST /hooks/{trigger}`: inbound trigger calls, as plain HTTP. Not a transcoded RPC:
//! the signature covers the raw body bytes, which the JSON gateway would re-encode, and
//! the signature is the call's authentication, so the bearer-token check of the gRPC
//! services does not apply (the server's Host and Origin guard still does).
//!
//! This adapter bounds the body ([`MAX_BODY_BYTES`]: 413 beyond it, before anything is
//! looked up), collects the signature headers, hands the call to the runtime
//! (`runtime::triggers`, which verifies, records and starts the turn) and answers:
//! 202 with the delivery, or the error as `google.rpc.Status` JSON with its HTTP status
//! (400, 401, 404, 409, 429...).

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use tonic::body::Body;

use super::JsonGateway;
use crate::{
    domain::Error,
    runtime::{Triggers, triggers::Call},
    webhooks::verify::CallHeaders,
};

/// The path prefix of trigger calls.
pub const PREFIX: &str = "/hooks/";
/// The largest body a call may have.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

fn too_large() -> Error {
    Error::ResourceExhausted {
        reason: crate::domain::reason::PAYLOAD_TOO_LARGE,
        message: format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        retry_after: None,
    }
}

/// Answers one request under [`PREFIX`].
pub async fn serve(
    triggers: &Triggers,
    gateway: &JsonGateway,
    request: Request<Body>,
) -> Response<Body> {
    if request.method() != Method::POST {
        let mut response = gateway.status_response(&crate::api::error::to_status(Error::invalid(
            "method",
            "trigger calls are POST requests with a JSON body",
        )));
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let trigger = request.uri().path()[PREFIX.len()..].to_owned();
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return error_response(gateway, too_large());
    }
    let (parts, body) = request.into_parts();
    let body: Bytes = match http_body_util::Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            return error_response(gateway, too_large());
        }
        Err(err) => {
            tracing::debug!(error = %err, "trigger call: the body could not be read");
            return error_response(gateway, Error::invalid("body", "could not be read"));
        }
    };
    let call = Call {
        trigger,
        headers: call_headers(&parts.headers),
        body,
    };
    match triggers.fire(call).await {
        Ok(delivery) => {
            let delivery = crate::api::triggers::delivery_pb(&delivery);
            let body = serde_json::json!({
                "name": delivery.name,
                "messageId": delivery.message_id,
                "event": delivery.event,
                "status": "TRIGGER_DELIVERY_STATUS_STARTED",
                "session": delivery.session,
                "turn": delivery.turn,
            });
            let mut response = Response::new(Body::new(http_body_util::Full::new(Bytes::from(
                body.to_string(),
            ))));
            *response.status_mut() = StatusCode::ACCEPTED;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(err) => error_response(gateway, err),
    }
}

fn error_response(gateway: &JsonGateway, err: Error) -> Response<Body> {
    let payload_too_large = err.reason() == crate::domain::reason::PAYLOAD_TOO_LARGE;
    let mut response = gateway.status_response(&crate::api::error::to_status(err));
    if payload_too_large {
        *response.status_mut() = StatusCode::PAYLOAD_TOO_LARGE;
    }
    response
}

/// The headers a call is verified by (the first value of each).
fn call_headers(headers: &HeaderMap) -> CallHeaders {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    CallHeaders {
        webhook_id: get("webhook-id"),
        webhook_timestamp: get("webhook-timestamp"),
        webhook_signature: get("webhook-signature"),
        hub_signature: get("x-hub-signature-256"),
        github_delivery: get("x-github-delivery"),
        github_event: get("x-github-event"),
    }
}
