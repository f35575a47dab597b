//! OpenTelemetry traces from a real `octo serve` to a real OTLP receiver: a trace sink
//! written here with the collector's own proto (`opentelemetry-proto`), over gRPC (the
//! default) and over HTTP/protobuf. One tool turn sent with a client's `traceparent`
//! gives the span tree RPC > turn > model requests and tool call, in the client's
//! trace; JSON/HTTP and gRPC-Web calls join their caller's trace too, and so does a
//! send forwarded to the session's owner in a cluster. The spans arrive through the
//! flush at shutdown (the batch delay is set far beyond the test); with traces disabled
//! nothing reaches the sink.

use crate::common;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use octo::pb;
use opentelemetry_proto::tonic::{
    collector::trace::v1::{
        ExportTraceServiceRequest, ExportTraceServiceResponse,
        trace_service_server::{TraceService, TraceServiceServer},
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
    trace::v1::{Span, span::SpanKind},
};
use prost::Message as _;

/// The client's trace and span, as its `traceparent` names them.
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";
/// Another client's trace, for the JSON/HTTP call.
const JSON_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const JSON_SPAN: &str = "b7ad6b7169203331";
/// And a browser's, for the gRPC-Web call.
const WEB_TRACE: &str = "5b8aa5a2d2c872e8321cf37308d69df2";
const WEB_SPAN: &str = "051581bf3cb55c13";

/// A span as received, with the `service.name` of the resource it came with.
#[derive(Clone, Debug)]
struct Received {
    service: String,
    span: Span,
}

/// Everything the sink received.
#[derive(Clone, Default)]
struct Sink {
    spans: Arc<Mutex<Vec<Received>>>,
}

impl Sink {
    fn take(&self, request: ExportTraceServiceRequest) {
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|r| string_attribute(&r.attributes, "service.name"))
                .unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    spans.push(Received {
                        service: service.clone(),
                        span,
                    });
                }
            }
        }
    }

    fn spans(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
    }
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.take(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// An OTLP/gRPC trace receiver on an ephemeral loopback port.
async fn grpc_sink() -> (Sink, SocketAddr) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let sink = Sink::default();
    let service = TraceServiceServer::new(sink.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
            .await
    });
    (sink, address)
}

/// An OTLP/HTTP (protobuf) trace receiver: `POST /v1/traces`.
async fn http_sink() -> (Sink, SocketAddr) {
    use http_body_util::BodyExt as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let sink = Sink::default();
    let receiver = sink.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let sink = receiver.clone();
            let service = hyper::service::service_fn(move |request: http::Request<_>| {
                let sink = sink.clone();
                async move {
                    let path_ok = request.uri().path() == "/v1/traces";
                    let content_type = request
                        .headers()
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned();
                    let body: hyper::body::Incoming = request.into_body();
                    let bytes = body.collect().await?.to_bytes();
                    let status = if !path_ok || content_type != "application/x-protobuf" {
                        http::StatusCode::NOT_FOUND
                    } else if let Ok(decoded) = ExportTraceServiceRequest::decode(bytes) {
                        sink.take(decoded);
                        http::StatusCode::OK
                    } else {
                        http::StatusCode::BAD_REQUEST
                    };
                    let answer = ExportTraceServiceResponse::default().encode_to_vec();
                    let mut response =
                        http::Response::new(http_body_util::Full::new(bytes::Bytes::from(answer)));
                    *response.status_mut() = status;
                    response.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/x-protobuf"),
                    );
                    Ok::<_, hyper::Error>(response)
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    (sink, address)
}

/// `octo serve --demo` with `env` (and no OpenTelemetry variable of the developer's).
async fn serve(home: &std::path::Path, env: &[(&str, String)]) -> (tokio::process::Child, String) {
    serve_with(home, env, &[]).await
}

/// [`serve`] with more flags.
async fn serve_with(
    home: &std::path::Path,
    env: &[(&str, String)],
    flags: &[&str],
) -> (tokio::process::Child, String) {
    let mut command = common::octo_command();
    for (name, value) in env {
        command.env(name, value);
    }
    // Only the flush at shutdown can deliver within the test.
    command.env("OTEL_BSP_SCHEDULE_DELAY", "600000");
    let mut args = vec!["--demo"];
    args.extend_from_slice(flags);
    common::spawn_serve_with(command, home, &args).await
}

/// SIGTERM, then the clean exit (which flushes the traces first).
async fn stop(mut child: tokio::process::Child) {
    let pid = child.id().expect("pid");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM");
    let exit = tokio::time::timeout(common::TIMEOUT, child.wait())
        .await
        .expect("exits in time (safety net)")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
}

fn traceparent(trace: &str, span: &str) -> String {
    format!("00-{trace}-{span}-01")
}

/// One turn in which the mock model calls `list_dir`, sent with the client's
/// `traceparent`; then a JSON/HTTP GetSession with another. Returns the session name.
async fn tool_turn(address: &str) -> String {
    let channel = common::connect(address).await;
    let mut sessions = pb::session_service_client::SessionServiceClient::new(channel.clone());
    let mut chat = pb::chat_service_client::ChatServiceClient::new(channel);
    let session =
        common::create_in_mode(&mut sessions, "traced", pb::PermissionMode::AutoApprove).await;
    let mut request = tonic::Request::new(pb::SendMessageRequest {
        session: session.name.clone(),
        parts: vec![common::text(r#"/tool list_dir {"path": "."}"#)],
        ..Default::default()
    });
    request.metadata_mut().insert(
        "traceparent",
        traceparent(CLIENT_TRACE, CLIENT_SPAN)
            .parse()
            .expect("ascii"),
    );
    let turn = chat
        .send_message(request)
        .await
        .expect("SendMessage")
        .into_inner()
        .turn
        .expect("turn");
    let ended = common::eventually("the turn to end", async || {
        let turn = common::get_turn(&mut chat, &turn.name).await;
        (turn.status() != pb::TurnStatus::Queued && turn.status() != pb::TurnStatus::Running)
            .then_some(turn)
    })
    .await;
    assert_eq!(ended.status(), pb::TurnStatus::Succeeded, "{ended:?}");
    assert_eq!(ended.tool_calls.len(), 1, "{ended:?}");

    let got = reqwest::Client::new()
        .get(format!("http://{address}/v1/{}", session.name))
        .header("traceparent", traceparent(JSON_TRACE, JSON_SPAN))
        .send()
        .await
        .expect("GET session");
    assert_eq!(got.status(), 200);

    let get = pb::GetSessionRequest {
        name: session.name.clone(),
    }
    .encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(get.len() as u32).to_be_bytes());
    framed.extend_from_slice(&get);
    let web = reqwest::Client::builder()
        .http1_only()
        .build()
        .expect("client")
        .post(format!(
            "http://{address}/octo.v1.SessionService/GetSession"
        ))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("traceparent", traceparent(WEB_TRACE, WEB_SPAN))
        .body(framed)
        .send()
        .await
        .expect("gRPC-Web GetSession");
    assert_eq!(web.status(), 200);
    session.name
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v: &AnyValue| v.value.as_ref())
}

fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attribute(attributes, key)? {
        Value::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn int_attribute(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match attribute(attributes, key)? {
        Value::IntValue(n) => Some(*n),
        _ => None,
    }
}

/// The spans of `trace` as an indented tree of names, children in start order: the
/// shape a trace viewer shows.
fn tree(spans: &[Span], trace: &str) -> String {
    let spans: Vec<&Span> = spans.iter().filter(|s| hex(&s.trace_id) == trace).collect();
    let ids: Vec<String> = spans.iter().map(|s| hex(&s.span_id)).collect();
    let mut children: HashMap<String, Vec<&Span>> = HashMap::new();
    for span in &spans {
        let parent = hex(&span.parent_span_id);
        let key = if ids.contains(&parent) {
            parent
        } else {
            String::new()
        };
        children.entry(key).or_default().push(span);
    }
    for list in children.values_mut() {
        list.sort_by_key(|s| s.start_time_unix_nano);
    }
    fn render(
        out: &mut String,
        children: &HashMap<String, Vec<&Span>>,
        parent: &str,
        depth: usize,
    ) {
        for span in children.get(parent).into_iter().flatten() {
            out.push_str(&format!("{}{}\n", "  ".repeat(depth), span.name));
            render(out, children, &hex(&span.span_id), depth + 1);
        }
    }
    let mut out = String::new();
    render(&mut out, &children, "", 0);
    out
}

fn named<'a>(spans: &'a [Span], trace: &str, name: &str) -> Vec<&'a Span> {
    let mut found: Vec<&Span> = spans
        .iter()
        .filter(|s| hex(&s.trace_id) == trace && s.name == name)
        .collect();
    found.sort_by_key(|s| s.start_time_unix_nano);
    found
}

/// The span tree of the tool turn, and what each span says.
fn check_tool_turn(received: &[Received], session: &str) {
    assert!(
        received.iter().all(|r| r.service == "octo-under-test"),
        "OTEL_SERVICE_NAME names the service: {:?}",
        received.iter().map(|r| &r.service).collect::<Vec<_>>()
    );
    let spans: Vec<Span> = received.iter().map(|r| r.span.clone()).collect();
    let shape = tree(&spans, CLIENT_TRACE);
    assert_eq!(
        shape,
        "octo.v1.ChatService/SendMessage\n\
         \x20 invoke_agent octo\n\
         \x20   chat mock\n\
         \x20   execute_tool list_dir\n\
         \x20   chat mock\n",
        "the span tree of the client's trace:\n{shape}"
    );

    let rpc = named(&spans, CLIENT_TRACE, "octo.v1.ChatService/SendMessage")[0];
    assert_eq!(
        hex(&rpc.parent_span_id),
        CLIENT_SPAN,
        "the RPC span's parent is the client's span"
    );
    assert_eq!(rpc.kind, SpanKind::Server as i32);
    assert_eq!(
        string_attribute(&rpc.attributes, "rpc.system").as_deref(),
        Some("grpc")
    );
    assert_eq!(
        string_attribute(&rpc.attributes, "rpc.method").as_deref(),
        Some("SendMessage")
    );
    assert_eq!(
        int_attribute(&rpc.attributes, "rpc.grpc.status_code"),
        Some(0)
    );

    let turn = named(&spans, CLIENT_TRACE, "invoke_agent octo")[0];
    assert_eq!(turn.parent_span_id, rpc.span_id, "turn < RPC");
    assert_eq!(
        string_attribute(&turn.attributes, "gen_ai.conversation.id").as_deref(),
        session.strip_prefix("sessions/")
    );
    assert_eq!(
        string_attribute(&turn.attributes, "octo.turn.status").as_deref(),
        Some("succeeded")
    );
    assert_eq!(int_attribute(&turn.attributes, "octo.turn.steps"), Some(2));

    let chats = named(&spans, CLIENT_TRACE, "chat mock");
    for chat in &chats {
        assert_eq!(chat.parent_span_id, turn.span_id, "model request < turn");
        assert_eq!(chat.kind, SpanKind::Client as i32);
        let attributes = &chat.attributes;
        assert_eq!(
            string_attribute(attributes, "gen_ai.operation.name").as_deref(),
            Some("chat")
        );
        assert_eq!(
            string_attribute(attributes, "gen_ai.request.model").as_deref(),
            Some("mock")
        );
        assert_eq!(
            string_attribute(attributes, "gen_ai.provider.name").as_deref(),
            Some("octo.mock")
        );
        assert!(
            int_attribute(attributes, "gen_ai.usage.input_tokens").is_some_and(|n| n > 0),
            "{attributes:?}"
        );
        assert!(
            int_attribute(attributes, "gen_ai.usage.output_tokens").is_some_and(|n| n > 0),
            "{attributes:?}"
        );
        assert!(
            matches!(
                attribute(attributes, "gen_ai.response.time_to_first_chunk"),
                Some(Value::DoubleValue(s)) if *s >= 0.0
            ),
            "{attributes:?}"
        );
    }

    let tool = named(&spans, CLIENT_TRACE, "execute_tool list_dir")[0];
    assert_eq!(tool.parent_span_id, turn.span_id, "tool call < turn");
    assert_eq!(
        string_attribute(&tool.attributes, "gen_ai.tool.name").as_deref(),
        Some("list_dir")
    );
    assert_eq!(
        string_attribute(&tool.attributes, "octo.tool.status").as_deref(),
        Some("succeeded")
    );
    // In order: the model asks, the tool runs, the model answers.
    assert!(chats[0].end_time_unix_nano <= tool.start_time_unix_nano);
    assert!(tool.end_time_unix_nano <= chats[1].start_time_unix_nano);
    // The RPC answered before the turn ended; the turn holds its steps.
    assert!(rpc.end_time_unix_nano <= turn.end_time_unix_nano);
    assert!(turn.start_time_unix_nano <= chats[0].start_time_unix_nano);
    assert!(chats[1].end_time_unix_nano <= turn.end_time_unix_nano);

    for (trace, parent, protocol) in [
        (JSON_TRACE, JSON_SPAN, "JSON/HTTP"),
        (WEB_TRACE, WEB_SPAN, "gRPC-Web"),
    ] {
        let call = named(&spans, trace, "octo.v1.SessionService/GetSession");
        assert_eq!(call.len(), 1, "{protocol}: {}", tree(&spans, trace));
        assert_eq!(
            hex(&call[0].parent_span_id),
            parent,
            "a {protocol} call joins its caller's trace"
        );
        assert_eq!(
            int_attribute(&call[0].attributes, "rpc.grpc.status_code"),
            Some(0),
            "{protocol}"
        );
    }
}

#[tokio::test]
async fn a_tool_turn_is_traced_over_otlp_grpc() {
    let (sink, sink_address) = grpc_sink().await;
    let home = tempfile::tempdir().expect("tempdir");
    let (child, address) = serve(
        home.path(),
        &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://{sink_address}"),
            ),
            ("OTEL_SERVICE_NAME", "octo-under-test".to_owned()),
        ],
    )
    .await;
    let session = tool_turn(&address).await;
    assert!(
        sink.spans().is_empty(),
        "nothing is sent before the batch is due or the server stops"
    );
    stop(child).await;
    check_tool_turn(&sink.spans(), &session);
}

#[tokio::test]
async fn a_tool_turn_is_traced_over_otlp_http_protobuf() {
    let (sink, sink_address) = http_sink().await;
    let home = tempfile::tempdir().expect("tempdir");
    let (child, address) = serve(
        home.path(),
        &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://{sink_address}"),
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
            ("OTEL_SERVICE_NAME", "octo-under-test".to_owned()),
        ],
    )
    .await;
    let session = tool_turn(&address).await;
    stop(child).await;
    check_tool_turn(&sink.spans(), &session);
}

#[tokio::test]
async fn nothing_is_exported_when_traces_are_off() {
    let (sink, sink_address) = grpc_sink().await;
    let home = tempfile::tempdir().expect("tempdir");
    // The endpoint is there, but the SDK is disabled; a server without the endpoint
    // variable builds no exporter at all (the unit tests of `telemetry` show it).
    let (child, address) = serve(
        home.path(),
        &[
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://{sink_address}"),
            ),
            ("OTEL_SDK_DISABLED", "true".to_owned()),
        ],
    )
    .await;
    tool_turn(&address).await;
    stop(child).await;
    // The server has exited after its shutdown: any export would have been sent.
    assert!(
        sink.spans().is_empty(),
        "{} spans exported",
        sink.spans().len()
    );
}

/// Waits until the turn `name` ends, through `chat`; returns it.
async fn ended(
    chat: &mut pb::chat_service_client::ChatServiceClient<tonic::transport::Channel>,
    name: &str,
) -> pb::Turn {
    common::eventually("the turn to end", async || {
        let turn = common::get_turn(chat, name).await;
        (turn.status() != pb::TurnStatus::Queued && turn.status() != pb::TurnStatus::Running)
            .then_some(turn)
    })
    .await
}

#[tokio::test]
async fn a_send_forwarded_to_the_owner_stays_in_the_callers_trace() {
    let (sink, sink_address) = grpc_sink().await;
    let database = common::postgres::database().await;
    let mut servers = Vec::new();
    for name in ["octo-a", "octo-b"] {
        let home = tempfile::tempdir().expect("tempdir");
        let env = [
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://{sink_address}"),
            ),
            ("OTEL_SERVICE_NAME", name.to_owned()),
            (
                "OCTO_CLUSTER_TOKEN",
                crate::cluster::CLUSTER_TOKEN.to_owned(),
            ),
        ];
        let (child, address) = serve_with(home.path(), &env, &["--database", &database]).await;
        servers.push((home, child, address));
    }
    let a = common::connect(&servers[0].2).await;
    let b = common::connect(&servers[1].2).await;
    let session = common::create_in_mode(
        &mut pb::session_service_client::SessionServiceClient::new(a.clone()),
        "forwarded",
        pb::PermissionMode::AutoApprove,
    )
    .await;
    // A sends first, so A owns the session.
    let mut chat_a = pb::chat_service_client::ChatServiceClient::new(a);
    let first = common::send_text(&mut chat_a, &session.name, "hello", pb::BusyPolicy::Enqueue)
        .await
        .expect("send through A");
    ended(&mut chat_a, &common::sent_turn(&first).name).await;
    // B forwards the client's send to A.
    let mut chat_b = pb::chat_service_client::ChatServiceClient::new(b);
    let mut request = tonic::Request::new(pb::SendMessageRequest {
        session: session.name.clone(),
        parts: vec![common::text("again")],
        ..Default::default()
    });
    request.metadata_mut().insert(
        "traceparent",
        traceparent(CLIENT_TRACE, CLIENT_SPAN)
            .parse()
            .expect("ascii"),
    );
    let turn = chat_b
        .send_message(request)
        .await
        .expect("send through B")
        .into_inner()
        .turn
        .expect("turn");
    let turn = ended(&mut chat_a, &turn.name).await;
    assert_eq!(turn.status(), pb::TurnStatus::Succeeded, "{turn:?}");
    for (_, child, _) in servers {
        stop(child).await;
    }

    let received = sink.spans();
    let spans: Vec<Span> = received.iter().map(|r| r.span.clone()).collect();
    let shape = tree(&spans, CLIENT_TRACE);
    assert_eq!(
        shape,
        "octo.v1.ChatService/SendMessage\n\
         \x20 octo.peer.v1.PeerService/SendMessage\n\
         \x20   invoke_agent octo\n\
         \x20     chat mock\n",
        "the client's trace across the two servers:\n{shape}"
    );
    let service_of = |name: &str| {
        received
            .iter()
            .find(|r| hex(&r.span.trace_id) == CLIENT_TRACE && r.span.name == name)
            .map(|r| r.service.as_str())
    };
    assert_eq!(
        service_of("octo.v1.ChatService/SendMessage"),
        Some("octo-b")
    );
    assert_eq!(
        service_of("octo.peer.v1.PeerService/SendMessage"),
        Some("octo-a")
    );
    assert_eq!(service_of("invoke_agent octo"), Some("octo-a"));
}
