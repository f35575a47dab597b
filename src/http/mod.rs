//! The JSON/HTTP surface, derived from the `google.api.http` annotations in the
//! descriptor set: a generic transcoder that turns a JSON request into the RPC's protobuf
//! request, calls the same gRPC service in-process (so auth, validation and errors are
//! identical on every protocol), and turns the answer back into JSON or, for
//! server-streaming RPCs, `text/event-stream`. An RPC answering `google.api.HttpBody`
//! (unary or a stream of chunks) is answered as a raw body instead (`body`).
//!
//! - `route`: path templates, compiled once in [`JsonGateway::new`].
//! - `transcode`: body, path variables and query parameters → request message; JSON out.
//! - `grpc`: the in-process call's framing, response reading and status.
//! - `sse`: server-streaming responses as server-sent events.
//! - `body`: `google.api.HttpBody` responses as raw bodies (downloads).
//! - [`error`]: the gRPC code → HTTP status mapping and `google.rpc.Status` JSON.
//! - [`ui`]: the embedded web UI at `/` (its files only; other paths come here).
//! - [`hooks`]: `POST /hooks/{trigger}`, inbound trigger calls (raw body, no gateway).
//! - `openapi`: `GET /openapi.json`, the OpenAPI 3.1 document of these routes.

mod body;
pub mod error;
mod grpc;
pub mod hooks;
mod openapi;
mod route;
mod sse;
mod transcode;
pub mod ui;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt as _;
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, ExtensionDescriptor, FieldDescriptor, Kind, MessageDescriptor,
    MethodDescriptor, Value,
};
use tonic::Code;
use tower::ServiceExt as _;

use self::error::{ApiError, StatusRenderer};
use self::grpc::{GrpcStatus, GrpcStream, Item};
use self::route::{PathTemplate, SplitPath};
use self::sse::EventSource;
use self::transcode::BodyRule;

pub use self::error::http_status;

/// The gRPC service the gateway calls in-process: every Octo service behind auth.
pub type GrpcService = tower::util::BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    Infallible,
>;

/// How long an event stream may stay silent before a `: keepalive` comment.
pub const DEFAULT_SSE_KEEPALIVE: Duration = Duration::from_secs(15);

/// How long a streaming call may take to produce its first message before the SSE
/// response starts anyway; within it, an error is still answered as plain JSON. Zero
/// means one poll: an error a handler returns before its stream starts is a
/// trailers-only response, already complete, so waiting longer would only delay the
/// headers of every quiet stream.
const FIRST_MESSAGE_GRACE: Duration = Duration::ZERO;

/// Request headers forwarded to the in-process call (W3C trace context too: the call's
/// span joins the caller's trace).
const FORWARDED_HEADERS: [&str; 4] = ["authorization", "x-request-id", "traceparent", "tracestate"];

/// The generic JSON/HTTP → gRPC transcoder.
#[derive(Clone)]
pub struct JsonGateway {
    inner: Arc<Inner>,
    grpc: GrpcService,
    keepalive: Duration,
}

struct Inner {
    routes: Vec<Route>,
    renderer: StatusRenderer,
    max_body_bytes: usize,
    /// The descriptors `routes` came from, for the OpenAPI document.
    pool: DescriptorPool,
    /// The OpenAPI document of `routes`, as served: built on first request, not at start
    /// (it is ~140 KB of JSON that most servers are never asked for).
    openapi: std::sync::OnceLock<Bytes>,
}

/// One HTTP binding of an RPC.
struct Route {
    method: Method,
    template: PathTemplate,
    /// The fields of `template.variables`, in order.
    bindings: Vec<Vec<FieldDescriptor>>,
    body: BodyRule,
    response_body: Option<FieldDescriptor>,
    rpc: Arc<Rpc>,
}

/// How an RPC's answer goes out over HTTP.
enum Answer {
    /// The one response message as JSON.
    Json,
    /// Server-streaming: each message as a server-sent event.
    Events(EventSource),
    /// `google.api.HttpBody` (unary or streamed): the raw bytes, typed by the first
    /// message's `content_type`.
    Body,
}

impl Answer {
    /// The `access_token` query parameter is accepted only for event streams, which an
    /// `EventSource` cannot give headers.
    fn takes_token_param(&self) -> bool {
        matches!(self, Answer::Events(_))
    }
}

/// What the gateway knows about one RPC.
struct Rpc {
    method: MethodDescriptor,
    /// `octo.v1.SessionService.GetSession`, for logs.
    full_name: String,
    /// `/octo.v1.SessionService/GetSession`.
    uri: http::Uri,
    input: MessageDescriptor,
    output: MessageDescriptor,
    /// How the answer is rendered.
    answer: Answer,
    /// A top-level integer `after_sequence` field, set from `Last-Event-ID`.
    after_sequence: Option<FieldDescriptor>,
}

impl JsonGateway {
    /// Builds the route table from the `google.api.http` rules (and their
    /// `additional_bindings`) of every method in `descriptor_set`.
    pub fn new(
        descriptor_set: &[u8],
        grpc: GrpcService,
        max_body_bytes: usize,
    ) -> Result<Self, String> {
        let pool = DescriptorPool::decode(descriptor_set)
            .map_err(|err| format!("invalid descriptor set: {err}"))?;
        let renderer = StatusRenderer::new(&pool);
        let mut routes = Vec::new();
        match pool.get_extension_by_name("google.api.http") {
            Some(extension) => {
                for service in pool.services() {
                    for method in service.methods() {
                        add_method_routes(&method, &extension, &renderer, &mut routes)?;
                    }
                }
            }
            None => tracing::warn!("google.api.http is not in the descriptor set"),
        }
        if routes.is_empty() {
            tracing::warn!(
                "the descriptor set has no google.api.http rules: every JSON/HTTP request will be \
                 a 404 (was it encoded through prost_types, which drops extension options?)"
            );
        } else {
            tracing::debug!(routes = routes.len(), "JSON/HTTP gateway routes compiled");
        }
        Ok(Self {
            inner: Arc::new(Inner {
                routes,
                renderer,
                max_body_bytes,
                pool,
                openapi: std::sync::OnceLock::new(),
            }),
            grpc,
            keepalive: DEFAULT_SSE_KEEPALIVE,
        })
    }

    /// Sets how long an event stream may stay silent before a `: keepalive` comment
    /// (default [`DEFAULT_SSE_KEEPALIVE`]).
    pub fn with_sse_keepalive(mut self, interval: Duration) -> Self {
        self.keepalive = interval;
        self
    }

    /// The compiled routes, as `(HTTP method, template, gRPC method)`.
    pub fn routes(&self) -> impl Iterator<Item = (&Method, String, &str)> + '_ {
        self.inner
            .routes
            .iter()
            .map(|r| (&r.method, r.template.to_string(), r.rpc.full_name.as_str()))
    }

    /// `GET /openapi.json`: the OpenAPI 3.1 document of the routes.
    pub fn openapi_response(&self) -> http::Response<tonic::body::Body> {
        let inner = &self.inner;
        let document = inner.openapi.get_or_init(|| {
            // A serde_json::Value always encodes.
            serde_json::to_vec(&openapi::document(&inner.pool, &inner.routes))
                .unwrap_or_default()
                .into()
        });
        let mut response = json_response(StatusCode::OK, document.clone());
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }

    /// A status answered before any route is looked up (a refused Host or Origin), as
    /// `google.rpc.Status` JSON with its details and the code's HTTP status.
    pub fn status_response(&self, status: &tonic::Status) -> http::Response<tonic::body::Body> {
        self.inner
            .renderer
            .error(
                status.code(),
                status.message(),
                status.details(),
                &HeaderMap::new(),
            )
            .into_response()
    }

    /// Serves one JSON/HTTP request. Never fails: errors are `google.rpc.Status` JSON.
    pub async fn handle(
        &self,
        req: http::Request<tonic::body::Body>,
    ) -> http::Response<tonic::body::Body> {
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        match self.serve(req).await {
            Ok(response) => response,
            Err(error) => {
                // The gRPC service logs its own failures; the gateway's are logged where
                // they happen.
                tracing::debug!(%method, %path, code = ?error.code, message = %error.message, "JSON/HTTP error");
                error.into_response()
            }
        }
    }

    async fn serve(
        &self,
        req: http::Request<tonic::body::Body>,
    ) -> Result<http::Response<tonic::body::Body>, ApiError> {
        let inner = &*self.inner;
        let (route, captures) = inner.find(req.method(), req.uri().path())?;
        let rpc = &route.rpc;
        tracing::debug!(method = %req.method(), path = req.uri().path(), rpc = %rpc.full_name, "JSON/HTTP request");

        let (parts, body) = req.into_parts();
        let body = read_body(&parts.headers, body, inner.max_body_bytes).await?;
        if !body.trim_ascii().is_empty() && !matches!(route.body, BodyRule::None) {
            check_json_content_type(&parts.headers)?;
        }

        // The request message: body, then path variables, then query parameters.
        let mut message = transcode::decode_body(&rpc.input, &route.body, &body)?;
        transcode::apply_path(&mut message, &route.bindings, &captures)?;
        let params = transcode::parse_query(parts.uri.query().unwrap_or(""))?;
        let allow_token = parts.method == Method::GET && rpc.answer.takes_token_param();
        let token = transcode::apply_query(
            &mut message,
            &route.body,
            &route.bindings,
            &params,
            allow_token,
        )?;
        if let Some(field) = &rpc.after_sequence
            && let Some(value) = last_event_id(&parts.headers, field)
        {
            message
                .try_set_field(field, value)
                .map_err(|err| ApiError::new(Code::Internal, err.to_string()))?;
        }

        let grpc_request = build_grpc_request(rpc, &message, parts, token)?;
        let response = match self.grpc.clone().oneshot(grpc_request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let mut stream = GrpcStream::new(response);
        match &rpc.answer {
            Answer::Json => self.unary(route, &mut stream).await,
            Answer::Events(events) => self.streaming(events, stream).await,
            Answer::Body => self.raw_body(stream).await,
        }
    }

    async fn unary(
        &self,
        route: &Route,
        stream: &mut GrpcStream,
    ) -> Result<http::Response<tonic::body::Body>, ApiError> {
        let message = match stream.next().await {
            Item::Message(message) => message,
            Item::End(status) => {
                return Err(self.status_error(&status, stream.headers(), "no response message"));
            }
        };
        let trailers = match stream.next().await {
            Item::End(status) if status.code == Code::Ok => status.headers,
            Item::End(status) => return Err(self.status_error(&status, stream.headers(), "")),
            Item::Message(_) => {
                return Err(ApiError::new(
                    Code::Internal,
                    "a unary RPC answered more than one message",
                ));
            }
        };
        let decoded = DynamicMessage::decode(route.rpc.output.clone(), message).map_err(|err| {
            tracing::warn!(%err, rpc = %route.rpc.full_name, "undecodable gRPC response");
            ApiError::new(
                Code::Internal,
                format!("undecodable response message: {err}"),
            )
        })?;
        let json = match &route.response_body {
            Some(field) => transcode::field_json(&decoded, field)?,
            None => transcode::message_json(&decoded)?,
        };
        let mut response = json_response(StatusCode::OK, Bytes::from(json));
        for name in error::PASSTHROUGH_HEADERS {
            for value in stream
                .headers()
                .get_all(&name)
                .iter()
                .chain(trailers.get_all(&name))
            {
                response.headers_mut().append(name.clone(), value.clone());
            }
        }
        Ok(response)
    }

    async fn streaming(
        &self,
        events: &EventSource,
        mut stream: GrpcStream,
    ) -> Result<http::Response<tonic::body::Body>, ApiError> {
        let grace = FIRST_MESSAGE_GRACE.min(self.keepalive);
        let first = match tokio::time::timeout(grace, stream.next()).await {
            // Nothing yet: start the event stream and let keepalives flow.
            Err(_) => None,
            Ok(Item::Message(message)) => Some(message),
            Ok(Item::End(status)) if status.code != Code::Ok => {
                return Err(self.status_error(&status, stream.headers(), ""));
            }
            // OK with no messages: an empty event stream.
            Ok(Item::End(_)) => None,
        };
        Ok(sse::response(events.clone(), first, stream, self.keepalive))
    }

    /// A `google.api.HttpBody` answer as a raw body; an error before its first message
    /// is answered as JSON, one after it aborts the body (see `body`).
    async fn raw_body(
        &self,
        mut stream: GrpcStream,
    ) -> Result<http::Response<tonic::body::Body>, ApiError> {
        let first = match stream.next().await {
            Item::Message(message) => message,
            Item::End(status) => {
                return Err(self.status_error(&status, stream.headers(), "no response message"));
            }
        };
        body::response(&first, stream).map_err(|message| {
            tracing::warn!(%message, "undecodable HttpBody response");
            ApiError::new(Code::Internal, message)
        })
    }

    /// The JSON error for a gRPC status (an OK status here means a missing message).
    fn status_error(&self, status: &GrpcStatus, headers: &HeaderMap, if_ok: &str) -> ApiError {
        if status.code == Code::Ok {
            return ApiError::new(Code::Internal, if_ok);
        }
        let mut all = headers.clone();
        for (name, value) in &status.headers {
            all.append(name, value.clone());
        }
        self.inner
            .renderer
            .error(status.code, &status.message, &status.details, &all)
    }
}

impl Inner {
    /// The route for `method` and `path`, with its captured variables.
    fn find(&self, method: &Method, path: &str) -> Result<(&Route, Vec<String>), ApiError> {
        let split = SplitPath::new(path)
            .map_err(|err| ApiError::new(Code::InvalidArgument, format!("bad path: {err}")))?;
        // A ':' in the last segment first tries the templates with a verb, then (if no
        // such template matches the path for any method) the ones without.
        let mut phases: Vec<(Option<&str>, &[String])> = Vec::with_capacity(2);
        if let Some((segments, verb)) = &split.with_verb {
            phases.push((Some(verb), segments));
        }
        phases.push((None, &split.segments));
        for (verb, segments) in phases {
            let mut best: Option<(&Route, Vec<String>)> = None;
            let mut allowed: Vec<Method> = Vec::new();
            for route in &self.routes {
                // `matches` also requires the template's verb to be exactly `verb`.
                let Some(captures) = route.template.matches(segments, verb) else {
                    continue;
                };
                if route.method != *method {
                    if !allowed.contains(&route.method) {
                        allowed.push(route.method.clone());
                    }
                    continue;
                }
                let better = best
                    .as_ref()
                    .is_none_or(|(b, _)| route.template.specificity() > b.template.specificity());
                if better {
                    best = Some((route, captures));
                }
            }
            if let Some(found) = best {
                return Ok(found);
            }
            if !allowed.is_empty() {
                return Err(ApiError::method_not_allowed(method, path, &allowed));
            }
        }
        Err(ApiError::not_found_route(method, path))
    }
}

fn add_method_routes(
    method: &MethodDescriptor,
    extension: &ExtensionDescriptor,
    renderer: &StatusRenderer,
    routes: &mut Vec<Route>,
) -> Result<(), String> {
    let options = method.options();
    if !options.has_extension(extension) {
        return Ok(());
    }
    let Value::Message(rule) = options.get_extension(extension).into_owned() else {
        return Ok(());
    };
    if method.is_client_streaming() {
        tracing::warn!(
            method = method.full_name(),
            "client-streaming RPCs are not served as JSON/HTTP"
        );
        return Ok(());
    }
    let service = method.parent_service();
    let uri: http::Uri = format!("/{}/{}", service.full_name(), method.name())
        .parse()
        .map_err(|err| format!("{}: bad gRPC path: {err}", method.full_name()))?;
    let output = method.output();
    let input = method.input();
    let after_sequence = input.get_field_by_name("after_sequence").filter(|f| {
        !f.is_list()
            && matches!(
                f.kind(),
                Kind::Int64
                    | Kind::Uint64
                    | Kind::Int32
                    | Kind::Uint32
                    | Kind::Sint64
                    | Kind::Sint32
                    | Kind::Fixed64
                    | Kind::Sfixed64
            )
    });
    let answer = if output.full_name() == body::HTTP_BODY {
        Answer::Body
    } else if method.is_server_streaming() {
        Answer::Events(EventSource::new(output.clone(), renderer.clone()))
    } else {
        Answer::Json
    };
    let rpc = Arc::new(Rpc {
        method: method.clone(),
        full_name: method.full_name().to_owned(),
        uri,
        answer,
        input,
        output,
        after_sequence,
    });

    let mut rules = vec![rule.clone()];
    if let Some(value) = rule.get_field_by_name("additional_bindings")
        && let Value::List(more) = value.as_ref()
    {
        rules.extend(more.iter().filter_map(|v| v.as_message().cloned()));
    }
    for rule in rules {
        let route = compile_rule(&rpc, &rule).map_err(|err| format!("{}: {err}", rpc.full_name))?;
        if routes
            .iter()
            .any(|r| r.method == route.method && r.template == route.template)
        {
            tracing::warn!(rpc = %rpc.full_name, template = %route.template, method = %route.method, "duplicate HTTP binding ignored");
            continue;
        }
        routes.push(route);
    }
    Ok(())
}

fn string_field(message: &DynamicMessage, name: &str) -> Option<String> {
    message
        .get_field_by_name(name)
        .and_then(|v| v.as_str().map(str::to_owned))
}

fn compile_rule(rpc: &Arc<Rpc>, rule: &DynamicMessage) -> Result<Route, String> {
    let mut pattern = None;
    for (name, method) in [
        ("get", Method::GET),
        ("put", Method::PUT),
        ("post", Method::POST),
        ("delete", Method::DELETE),
        ("patch", Method::PATCH),
    ] {
        if rule.has_field_by_name(name) {
            pattern = Some((method, string_field(rule, name).unwrap_or_default()));
        }
    }
    if rule.has_field_by_name("custom")
        && let Some(custom) = rule.get_field_by_name("custom")
        && let Some(custom) = custom.as_message()
    {
        let kind = string_field(custom, "kind").unwrap_or_default();
        let method = Method::from_bytes(kind.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("bad custom HTTP method {kind:?}"))?;
        pattern = Some((method, string_field(custom, "path").unwrap_or_default()));
    }
    let (method, template) = pattern.ok_or("an HTTP rule without a pattern")?;
    let template = PathTemplate::parse(&template)?;
    let bindings = template
        .variables
        .iter()
        .map(|v| {
            let fields = transcode::resolve_field_path(&rpc.input, &v.field_path, false)?;
            match fields.last() {
                Some(leaf) if !leaf.is_list() && !matches!(leaf.kind(), Kind::Message(_)) => {
                    Ok(fields)
                }
                _ => Err(format!(
                    "path variable {} must be a singular scalar field",
                    v.field_path.join(".")
                )),
            }
        })
        .collect::<Result<Vec<_>, String>>()?;
    let body = match string_field(rule, "body").unwrap_or_default().as_str() {
        "" => BodyRule::None,
        "*" => BodyRule::Whole,
        name => BodyRule::Field(
            rpc.input
                .get_field_by_name(name)
                .ok_or_else(|| format!("body field {name:?} not in {}", rpc.input.full_name()))?,
        ),
    };
    let response_body = match string_field(rule, "response_body")
        .unwrap_or_default()
        .as_str()
    {
        "" => None,
        name => Some(rpc.output.get_field_by_name(name).ok_or_else(|| {
            format!(
                "response_body field {name:?} not in {}",
                rpc.output.full_name()
            )
        })?),
    };
    Ok(Route {
        method,
        template,
        bindings,
        body,
        response_body,
        rpc: rpc.clone(),
    })
}

/// The request body, at most `max` bytes (413 beyond).
async fn read_body(
    headers: &HeaderMap,
    body: tonic::body::Body,
    max: usize,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            Code::ResourceExhausted,
            format!("the request body is larger than {max} bytes"),
        )
        .with_http(StatusCode::PAYLOAD_TOO_LARGE)
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(too_large());
    }
    match http_body_util::Limited::new(body, max).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(err) => Err(ApiError::new(
            Code::InvalidArgument,
            format!("failed to read the request body: {err}"),
        )),
    }
}

/// Bodies must be `application/json` (parameters such as `charset` allowed): 415.
fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        return Ok(());
    }
    let shown = if content_type.is_empty() {
        "none"
    } else {
        content_type
    };
    Err(ApiError::new(
        Code::InvalidArgument,
        format!("the request body must be application/json (Content-Type: {shown})"),
    )
    .with_http(StatusCode::UNSUPPORTED_MEDIA_TYPE))
}

/// `Last-Event-ID`, when present and numeric, as a value for `field`.
fn last_event_id(headers: &HeaderMap, field: &FieldDescriptor) -> Option<Value> {
    let raw = headers.get("last-event-id")?.to_str().ok()?.trim();
    if raw.is_empty() {
        return None;
    }
    transcode::parse_value(field, raw).ok()
}

fn build_grpc_request(
    rpc: &Rpc,
    message: &DynamicMessage,
    parts: http::request::Parts,
    token: Option<String>,
) -> Result<http::Request<tonic::body::Body>, ApiError> {
    let frame = grpc::encode_frame(&message.encode_to_vec())
        .map_err(|err| ApiError::new(Code::InvalidArgument, err))?;
    let mut request = http::Request::new(tonic::body::Body::new(http_body_util::Full::new(frame)));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = rpc.uri.clone();
    *request.version_mut() = http::Version::HTTP_2;
    // The extensions carry what the transport knew (the peer address auth uses).
    *request.extensions_mut() = parts.extensions;
    let headers = request.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    for name in FORWARDED_HEADERS {
        for value in parts.headers.get_all(name) {
            headers.append(name, value.clone());
        }
    }
    if let Some(token) = token
        && !headers.contains_key(header::AUTHORIZATION)
    {
        let value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| ApiError::bad_field(transcode::ACCESS_TOKEN_PARAM, "not a valid token"))?;
        headers.insert(header::AUTHORIZATION, value);
    }
    Ok(request)
}

fn json_response(status: StatusCode, body: Bytes) -> http::Response<tonic::body::Body> {
    let mut response = http::Response::new(tonic::body::Body::new(http_body_util::Full::new(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests;
