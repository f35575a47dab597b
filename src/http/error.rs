//! Errors of the JSON/HTTP surface: the one gRPC code → HTTP status mapping, and
//! `google.rpc.Status` rendered as JSON (`{"code", "message", "details"}`), both for
//! errors the gateway finds itself (unknown route, bad JSON, bad query parameter) and for
//! errors the gRPC service answered with (decoded from `grpc-status-details-bin`).

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value};
use serde_json::json;
use tonic::Code;

/// The HTTP status for a gRPC code, as in Google's mapping
/// (`google/rpc/code.proto`, grpc-gateway `HTTPStatusFromCode`).
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        // 499 Client Closed Request is not in `http`'s constant table.
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument => StatusCode::BAD_REQUEST,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::FailedPrecondition => StatusCode::BAD_REQUEST,
        Code::Aborted => StatusCode::CONFLICT,
        Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The gRPC code for a non-gRPC HTTP answer (no `grpc-status` anywhere), per the gRPC
/// spec's "HTTP to gRPC status code mapping".
pub(crate) fn code_from_http(status: StatusCode) -> Code {
    match status.as_u16() {
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

pub(crate) const BAD_REQUEST_TYPE: &str = "type.googleapis.com/google.rpc.BadRequest";

/// Headers of the gRPC answer that the JSON answer repeats.
pub(crate) const PASSTHROUGH_HEADERS: [HeaderName; 2] =
    [header::RETRY_AFTER, header::WWW_AUTHENTICATE];

/// An error answered as `google.rpc.Status` JSON.
#[derive(Clone, Debug)]
pub struct ApiError {
    /// The HTTP status; normally `http_status(code)`, but 405/413/415 keep their own.
    pub http: StatusCode,
    pub code: Code,
    pub message: String,
    /// Rendered `google.protobuf.Any` details (each with `@type`).
    pub details: Vec<serde_json::Value>,
    /// Extra response headers (`retry-after`, `www-authenticate`, `allow`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            http: http_status(code),
            code,
            message: message.into(),
            details: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// INVALID_ARGUMENT with one `google.rpc.BadRequest` field violation.
    pub fn bad_field(field: impl Into<String>, description: impl Into<String>) -> Self {
        let field = field.into();
        let description = description.into();
        Self::new(Code::InvalidArgument, format!("{field}: {description}"))
            .with_detail(bad_request_detail(&field, &description))
    }

    pub fn not_found_route(method: &http::Method, path: &str) -> Self {
        Self::new(Code::NotFound, format!("no route for {method} {path}"))
    }

    pub fn method_not_allowed(method: &http::Method, path: &str, allowed: &[http::Method]) -> Self {
        let allow = allowed
            .iter()
            .map(http::Method::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        let mut error = Self::new(
            Code::Unimplemented,
            format!("method {method} is not allowed for {path} (allowed: {allow})"),
        )
        .with_http(StatusCode::METHOD_NOT_ALLOWED);
        if let Ok(value) = HeaderValue::from_str(&allow) {
            error.headers.push((header::ALLOW, value));
        }
        error
    }

    /// The first extra header named `name`.
    pub fn header(&self, name: &HeaderName) -> Option<&HeaderValue> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn with_http(mut self, http: StatusCode) -> Self {
        self.http = http;
        self
    }

    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.details.push(detail);
        self
    }

    /// The `google.rpc.Status` JSON. `details` is always present (possibly empty).
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "code": self.code as i32,
            "message": self.message,
            "details": self.details,
        })
    }

    /// The `google.rpc.Status` JSON, fields in proto order.
    pub fn to_json_bytes(&self) -> Bytes {
        #[derive(serde::Serialize)]
        struct Status<'a> {
            code: i32,
            message: &'a str,
            details: &'a [serde_json::Value],
        }
        let status = Status {
            code: self.code as i32,
            message: &self.message,
            details: &self.details,
        };
        // Serialising strings, integers and `serde_json::Value`s cannot fail.
        Bytes::from(serde_json::to_vec(&status).unwrap_or_default())
    }

    pub fn into_response(self) -> http::Response<tonic::body::Body> {
        let body = self.to_json_bytes();
        let mut response =
            http::Response::new(tonic::body::Body::new(http_body_util::Full::new(body)));
        *response.status_mut() = self.http;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in self.headers {
            headers.append(name, value);
        }
        response
    }
}

/// A rendered `google.rpc.BadRequest` with one field violation.
pub(crate) fn bad_request_detail(field: &str, description: &str) -> serde_json::Value {
    json!({
        "@type": BAD_REQUEST_TYPE,
        "fieldViolations": [{"field": field, "description": description}],
    })
}

/// Renders `google.rpc.Status.details` from `grpc-status-details-bin`, via the pool's
/// `google.rpc.Status`, so every `Any` gets its `@type` and its fields in JSON form.
#[derive(Clone, Debug)]
pub(crate) struct StatusRenderer {
    status: Option<MessageDescriptor>,
}

impl StatusRenderer {
    pub fn new(pool: &DescriptorPool) -> Self {
        let status = pool.get_message_by_name("google.rpc.Status");
        if status.is_none() {
            tracing::warn!(
                "google.rpc.Status is not in the descriptor set; JSON errors will carry no details"
            );
        }
        Self { status }
    }

    /// The details of an encoded `google.rpc.Status`; undecodable ones are logged and
    /// left out (the code and message still reach the client).
    pub fn details(&self, encoded: &[u8]) -> Vec<serde_json::Value> {
        if encoded.is_empty() {
            return Vec::new();
        }
        let Some(desc) = &self.status else {
            return Vec::new();
        };
        let status = match DynamicMessage::decode(desc.clone(), encoded) {
            Ok(status) => status,
            Err(err) => {
                tracing::warn!(%err, "undecodable grpc-status-details-bin");
                return Vec::new();
            }
        };
        let Some(details) = status.get_field_by_name("details") else {
            return Vec::new();
        };
        let Value::List(details) = details.as_ref() else {
            return Vec::new();
        };
        details.iter().filter_map(render_any).collect()
    }

    /// The error for a gRPC status answered by the service.
    pub fn error(
        &self,
        code: Code,
        message: &str,
        details: &[u8],
        headers: &HeaderMap,
    ) -> ApiError {
        let mut error = ApiError::new(code, message);
        error.details = self.details(details);
        for name in PASSTHROUGH_HEADERS {
            for value in headers.get_all(&name) {
                error.headers.push((name.clone(), value.clone()));
            }
        }
        error
    }
}

fn render_any(value: &Value) -> Option<serde_json::Value> {
    let Value::Message(any) = value else {
        return None;
    };
    match serde_json::to_value(any) {
        Ok(rendered) => Some(rendered),
        Err(err) => {
            // A type not in the pool: keep the type URL and the raw bytes (base64).
            tracing::debug!(%err, "status detail of a type not in the descriptor set");
            let type_url = any
                .get_field_by_name("type_url")
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let bytes = any
                .get_field_by_name("value")
                .and_then(|v| v.as_bytes().cloned())
                .unwrap_or_default();
            use base64::Engine as _;
            Some(json!({
                "@type": type_url,
                "value": base64::engine::general_purpose::STANDARD.encode(bytes),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    const ERROR_INFO_TYPE: &str = "type.googleapis.com/google.rpc.ErrorInfo";

    #[test]
    fn http_status_mapping_matches_google() {
        let table = [
            (Code::Ok, 200),
            (Code::Cancelled, 499),
            (Code::Unknown, 500),
            (Code::InvalidArgument, 400),
            (Code::DeadlineExceeded, 504),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::Unauthenticated, 401),
            (Code::ResourceExhausted, 429),
            (Code::FailedPrecondition, 400),
            (Code::Aborted, 409),
            (Code::OutOfRange, 400),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Unavailable, 503),
            (Code::DataLoss, 500),
        ];
        for (code, status) in table {
            assert_eq!(http_status(code).as_u16(), status, "{code:?}");
        }
    }

    #[test]
    fn status_json_always_has_details() {
        let error = ApiError::new(Code::NotFound, "no route");
        assert_eq!(
            error.to_json(),
            json!({"code": 5, "message": "no route", "details": []})
        );
        let error = ApiError::bad_field("page_size", "not an integer");
        assert_eq!(error.http, StatusCode::BAD_REQUEST);
        assert_eq!(error.to_json()["code"], 3);
        assert_eq!(
            error.to_json()["details"][0],
            json!({
                "@type": BAD_REQUEST_TYPE,
                "fieldViolations": [{"field": "page_size", "description": "not an integer"}],
            })
        );
    }

    #[test]
    fn method_not_allowed_sets_allow() {
        let error = ApiError::method_not_allowed(
            &http::Method::DELETE,
            "/v1/sessions",
            &[http::Method::GET, http::Method::POST],
        );
        assert_eq!(error.http, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(error.header(&header::ALLOW).expect("allow"), "GET, POST");
    }

    #[test]
    fn renders_status_details_with_type() {
        let pool = DescriptorPool::decode(crate::pb::FILE_DESCRIPTOR_SET).expect("pool");
        let renderer = StatusRenderer::new(&pool);
        // Encode google.rpc.Status{code: 5, details: [ErrorInfo{..}]} by hand with prost-types Any.
        let info = pool
            .get_message_by_name("google.rpc.ErrorInfo")
            .expect("ErrorInfo");
        let mut info_msg = DynamicMessage::new(info);
        info_msg.set_field_by_name("reason", Value::String("SESSION_NOT_FOUND".into()));
        info_msg.set_field_by_name("domain", Value::String("octo.dev".into()));
        let mut metadata = std::collections::HashMap::new();
        metadata.insert(
            prost_reflect::MapKey::String("name".into()),
            Value::String("sessions/x".into()),
        );
        info_msg.set_field_by_name("metadata", Value::Map(metadata));
        let any = prost_types::Any {
            type_url: ERROR_INFO_TYPE.into(),
            value: info_msg.encode_to_vec(),
        };
        #[derive(Clone, PartialEq, prost::Message)]
        struct RpcStatus {
            #[prost(int32, tag = "1")]
            code: i32,
            #[prost(string, tag = "2")]
            message: String,
            #[prost(message, repeated, tag = "3")]
            details: Vec<prost_types::Any>,
        }
        let encoded = RpcStatus {
            code: 5,
            message: "gone".into(),
            details: vec![any],
        }
        .encode_to_vec();
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, HeaderValue::from_static("3"));
        let error = renderer.error(
            Code::NotFound,
            "session sessions/x not found",
            &encoded,
            &headers,
        );
        assert_eq!(error.http, StatusCode::NOT_FOUND);
        assert_eq!(
            error.header(&header::RETRY_AFTER).expect("retry-after"),
            "3"
        );
        assert_eq!(
            error.to_json(),
            json!({
                "code": 5,
                "message": "session sessions/x not found",
                "details": [{
                    "@type": ERROR_INFO_TYPE,
                    "reason": "SESSION_NOT_FOUND",
                    "domain": "octo.dev",
                    "metadata": {"name": "sessions/x"},
                }],
            })
        );
        // Garbage details do not fail the error.
        assert!(renderer.details(b"\xff\xff\xff").is_empty());
    }
}
