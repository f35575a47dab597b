//! Unit tests of the gateway against a fake in-process gRPC service.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt as _;
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, Value};
use serde_json::json;
use tonic::body::Body;

use super::grpc::{FrameDecoder, encode_frame};
use super::*;
use crate::pb;

// ---------------------------------------------------------------------------------------
// The descriptor set with the HTTP rules.

/// The real descriptor set, as the server loads it.
fn descriptor_set() -> Vec<u8> {
    pb::FILE_DESCRIPTOR_SET.to_vec()
}

#[test]
fn real_descriptor_set_carries_http_rules() {
    let pool = DescriptorPool::decode(pb::FILE_DESCRIPTOR_SET).expect("pool");
    let ext = pool
        .get_extension_by_name("google.api.http")
        .expect("google.api.http in the set");
    let methods: Vec<_> = pool
        .services()
        .flat_map(|s| s.methods().collect::<Vec<_>>())
        .collect();
    let octo: Vec<_> = methods
        .iter()
        .filter(|m| m.parent_service().package_name() == "octo.v1")
        .collect();
    assert!(octo.len() > 30);
    for method in octo {
        assert!(
            method.options().has_extension(&ext),
            "{} has an HTTP rule",
            method.full_name()
        );
    }
}

/// Sets the `google.api.http` option of the named methods, through the pool's own
/// `google.protobuf.FileDescriptorSet` descriptor (so the extension is kept): for
/// testing templates the real protos do not use.
fn inject_rules(set: &[u8], rules: &HashMap<String, Vec<(String, String)>>) -> Vec<u8> {
    let pool = DescriptorPool::decode(set).expect("pool");
    let ext = pool
        .get_extension_by_name("google.api.http")
        .expect("google.api.http");
    let rule_desc = pool
        .get_message_by_name("google.api.HttpRule")
        .expect("HttpRule");
    let set_desc = pool
        .get_message_by_name("google.protobuf.FileDescriptorSet")
        .expect("descriptor.proto in the set");
    let mut fds = DynamicMessage::decode(set_desc, set).expect("decode set");
    let mut injected = 0;
    let Some(Value::List(files)) = fds.get_field_by_name_mut("file") else {
        panic!("no files");
    };
    for file in files.iter_mut().filter_map(Value::as_message_mut) {
        let package = file
            .get_field_by_name("package")
            .and_then(|p| p.as_str().map(str::to_owned))
            .unwrap_or_default();
        let Some(Value::List(services)) = file.get_field_by_name_mut("service") else {
            continue;
        };
        for service in services.iter_mut().filter_map(Value::as_message_mut) {
            let name = service
                .get_field_by_name("name")
                .and_then(|p| p.as_str().map(str::to_owned))
                .unwrap_or_default();
            let Some(Value::List(methods)) = service.get_field_by_name_mut("method") else {
                continue;
            };
            for method in methods.iter_mut().filter_map(Value::as_message_mut) {
                let method_name = method
                    .get_field_by_name("name")
                    .and_then(|p| p.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let Some(rule) = rules.get(&format!("{package}.{name}.{method_name}")) else {
                    continue;
                };
                let mut http_rule = DynamicMessage::new(rule_desc.clone());
                for (key, value) in rule {
                    http_rule.set_field_by_name(key, Value::String(value.clone()));
                }
                let Some(Value::Message(options)) = method.get_field_by_name_mut("options") else {
                    panic!("no options field");
                };
                options.set_extension(&ext, Value::Message(http_rule));
                injected += 1;
            }
        }
    }
    assert_eq!(injected, rules.len(), "every rule found its method");
    fds.encode_to_vec()
}

// ---------------------------------------------------------------------------------------
// A fake gRPC service.

/// What the fake service saw.
#[derive(Clone, Debug)]
struct Call {
    path: String,
    headers: HeaderMap,
    peer: Option<&'static str>,
    message: Bytes,
}

/// An extension standing for the transport's connect info.
#[derive(Clone, Debug)]
struct Peer(&'static str);

type Handler = Arc<dyn Fn(&Call) -> Response<Body> + Send + Sync>;

struct Fake {
    calls: Arc<Mutex<Vec<Call>>>,
    service: GrpcService,
}

fn fake(handler: impl Fn(&Call) -> Response<Body> + Send + Sync + 'static) -> Fake {
    let handler: Handler = Arc::new(handler);
    let calls = Arc::new(Mutex::new(Vec::new()));
    let recorded = calls.clone();
    let service = tower::service_fn(move |req: Request<Body>| {
        let handler = handler.clone();
        let recorded = recorded.clone();
        async move {
            let (parts, body) = req.into_parts();
            assert_eq!(parts.method, Method::POST);
            let bytes = body.collect().await.expect("body").to_bytes();
            let mut decoder = FrameDecoder::default();
            decoder.push(&bytes);
            let message = decoder
                .next_message()
                .expect("frame")
                .expect("one whole frame");
            assert!(
                decoder.next_message().expect("frame").is_none(),
                "exactly one frame"
            );
            assert!(!decoder.has_partial());
            let call = Call {
                path: parts.uri.path().to_owned(),
                headers: parts.headers,
                peer: parts.extensions.get::<Peer>().map(|p| p.0),
                message,
            };
            recorded.lock().expect("lock").push(call.clone());
            Ok::<_, Infallible>(handler(&call))
        }
    });
    Fake {
        calls,
        service: GrpcService::new(service),
    }
}

fn gateway(fake: &Fake) -> JsonGateway {
    JsonGateway::new(&descriptor_set(), fake.service.clone(), 1024).expect("gateway")
}

fn grpc_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/grpc".parse().expect("header"));
    headers
}

fn status_headers(code: tonic::Code, message: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        "grpc-status",
        (code as i32).to_string().parse().expect("header"),
    );
    let encoded: String = message
        .bytes()
        .map(|b| match b {
            b' '..=b'~' if b != b'%' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect();
    headers.insert("grpc-message", encoded.parse().expect("header"));
    headers
}

/// A response streaming `frames` (then nothing more when `pending`, i.e. never ending),
/// which fires `on_drop` when dropped.
fn streamed(
    headers: HeaderMap,
    frames: Vec<Frame<Bytes>>,
    pending: bool,
    on_drop: Option<tokio::sync::oneshot::Sender<()>>,
) -> Response<Body> {
    use futures::StreamExt as _;
    let head = futures::stream::iter(frames.into_iter().map(Ok::<_, Infallible>));
    let tail = if pending {
        futures::stream::pending().boxed()
    } else {
        futures::stream::empty().boxed()
    };
    let stream = head.chain(tail).map(move |frame| {
        let _guard = &on_drop;
        frame
    });
    let mut response = Response::new(Body::new(http_body_util::StreamBody::new(stream)));
    *response.headers_mut() = headers;
    response
}

fn unary_ok(message: &impl prost::Message) -> Response<Body> {
    let frame = encode_frame(&message.encode_to_vec()).expect("frame");
    streamed(
        grpc_headers(),
        vec![
            Frame::data(frame),
            Frame::trailers(status_headers(tonic::Code::Ok, "")),
        ],
        false,
        None,
    )
}

fn trailers_only(headers: HeaderMap) -> Response<Body> {
    let mut all = grpc_headers();
    all.extend(headers);
    streamed(all, vec![], false, None)
}

fn request(method: Method, uri: &str, body: &str) -> Request<Body> {
    let mut req = Request::new(Body::new(http_body_util::Full::new(Bytes::from(
        body.to_owned(),
    ))));
    *req.method_mut() = method;
    *req.uri_mut() = uri.parse().expect("uri");
    if !body.is_empty() {
        req.headers_mut().insert(
            "content-type",
            "application/json; charset=utf-8".parse().expect("header"),
        );
    }
    req
}

async fn body_json(response: Response<Body>) -> (StatusCode, HeaderMap, serde_json::Value) {
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|err| panic!("not JSON ({err}): {}", String::from_utf8_lossy(&bytes)));
    (status, headers, json)
}

fn session(name: &str) -> pb::Session {
    pb::Session {
        name: name.to_owned(),
        display_name: "Demo".into(),
        pinned: true,
        ..Default::default()
    }
}

fn only_call(fake: &Fake) -> Call {
    let calls = fake.calls.lock().expect("lock");
    assert_eq!(calls.len(), 1, "{calls:?}");
    calls[0].clone()
}

// ---------------------------------------------------------------------------------------
// Tests.

#[test]
fn route_table_covers_every_annotated_rpc() {
    let fake = fake(|_| unreachable!());
    let gateway = gateway(&fake);
    let routes: Vec<_> = gateway
        .routes()
        .map(|(m, t, rpc)| (m.clone(), t, rpc.to_owned()))
        .collect();
    let pool = DescriptorPool::decode(pb::FILE_DESCRIPTOR_SET).expect("pool");
    let octo_rpcs = pool
        .services()
        .filter(|s| s.package_name() == "octo.v1")
        .map(|s| s.methods().len())
        .sum::<usize>();
    assert_eq!(routes.len(), octo_rpcs);
    assert!(routes.contains(&(
        Method::PATCH,
        "/v1/{session.name=sessions/*}".to_owned(),
        "octo.v1.SessionService.UpdateSession".to_owned()
    )));
    assert!(routes.contains(&(
        Method::GET,
        "/v1/sessions:watch".to_owned(),
        "octo.v1.SessionService.WatchSessions".to_owned()
    )));
}

#[test]
fn bad_rules_fail_at_startup() {
    let mut rules = HashMap::new();
    rules.insert(
        "octo.v1.SessionService.GetSession".to_owned(),
        vec![("get".to_owned(), "/v1/{nope=sessions/*}".to_owned())],
    );
    let set = inject_rules(pb::FILE_DESCRIPTOR_SET, &rules);
    let err = match JsonGateway::new(&set, fake(|_| unreachable!()).service, 1024) {
        Ok(_) => panic!("accepted a template naming a missing field"),
        Err(err) => err,
    };
    assert!(err.contains("GetSession") && err.contains("nope"), "{err}");
}

#[tokio::test]
async fn unary_get_calls_grpc_in_process_and_answers_json() {
    let fake = fake(|call| {
        let req = pb::GetSessionRequest::decode(call.message.clone()).expect("request");
        unary_ok(&session(&req.name))
    });
    let gateway = gateway(&fake);
    let mut req = request(Method::GET, "/v1/sessions/abc", "");
    req.headers_mut()
        .insert("authorization", "Bearer secret".parse().expect("header"));
    req.headers_mut()
        .insert("x-request-id", "r-1".parse().expect("header"));
    req.headers_mut()
        .insert("cookie", "not=forwarded".parse().expect("header"));
    req.extensions_mut().insert(Peer("10.0.0.7:5555"));
    let (status, headers, json) = body_json(gateway.handle(req).await).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        json,
        json!({"name": "sessions/abc", "displayName": "Demo", "pinned": true})
    );

    let call = only_call(&fake);
    assert_eq!(call.path, "/octo.v1.SessionService/GetSession");
    assert_eq!(call.headers["content-type"], "application/grpc");
    assert_eq!(call.headers["te"], "trailers");
    assert_eq!(call.headers["authorization"], "Bearer secret");
    assert_eq!(call.headers["x-request-id"], "r-1");
    assert!(call.headers.get("cookie").is_none());
    assert_eq!(call.peer, Some("10.0.0.7:5555"), "extensions are forwarded");
}

#[tokio::test]
async fn verbs_and_nested_path_variables() {
    let fake = fake(|call| match call.path.as_str() {
        "/octo.v1.ChatService/CancelTurn" => {
            let req = pb::CancelTurnRequest::decode(call.message.clone()).expect("request");
            unary_ok(&pb::Turn {
                name: req.name,
                status: pb::TurnStatus::Cancelled as i32,
                ..Default::default()
            })
        }
        "/octo.v1.SessionService/UpdateSession" => {
            let req = pb::UpdateSessionRequest::decode(call.message.clone()).expect("request");
            let mut s = req.session.expect("session");
            s.etag = req.update_mask.expect("mask").paths.join("+");
            unary_ok(&s)
        }
        other => panic!("unexpected {other}"),
    });
    let gateway = gateway(&fake);

    let (status, _, json) = body_json(
        gateway
            .handle(request(Method::POST, "/v1/sessions/s1/turns/t1:cancel", ""))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        json,
        json!({"name": "sessions/s1/turns/t1", "status": "TURN_STATUS_CANCELLED"})
    );

    let (status, _, json) = body_json(
        gateway
            .handle(request(
                Method::PATCH,
                "/v1/sessions/s2?update_mask=display_name,pinned",
                r#"{"displayName":"Renamed","pinned":false}"#,
            ))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    assert_eq!(
        json,
        json!({"name": "sessions/s2", "displayName": "Renamed", "etag": "display_name+pinned"})
    );
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_json_errors() {
    let fake = fake(|_| unreachable!("no gRPC call for routing errors"));
    let gateway = gateway(&fake);

    let (status, _, json) = body_json(
        gateway
            .handle(request(Method::GET, "/v1/nothing/here", ""))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json["code"], 5);
    assert_eq!(json["details"], json!([]));

    let (status, headers, json) = body_json(
        gateway
            .handle(request(Method::PUT, "/v1/sessions/abc", ""))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(json["code"], 12);
    let allow = headers["allow"].to_str().expect("allow");
    for method in ["GET", "PATCH", "DELETE"] {
        assert!(allow.contains(method), "{allow}");
    }

    // A verb path with the wrong method is a 405, not GetSession of "abc:fork".
    let (status, headers, _) = body_json(
        gateway
            .handle(request(Method::GET, "/v1/sessions/abc:fork", ""))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "POST");

    assert!(fake.calls.lock().expect("lock").is_empty());
}

#[tokio::test]
async fn request_body_checks() {
    let fake = fake(|call| {
        let req = pb::CreateSessionRequest::decode(call.message.clone()).expect("request");
        unary_ok(&req.session.expect("session"))
    });
    let gateway = gateway(&fake);

    // Wrong content type: 415 with INVALID_ARGUMENT.
    let mut req = request(Method::POST, "/v1/sessions", r#"{"displayName":"x"}"#);
    req.headers_mut()
        .insert("content-type", "text/plain".parse().expect("header"));
    let (status, _, json) = body_json(gateway.handle(req).await).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(json["code"], 3);

    // Too large: 413 with RESOURCE_EXHAUSTED (limit 1024), with and without Content-Length.
    let big = format!(r#"{{"displayName":"{}"}}"#, "x".repeat(2000));
    let (status, _, json) = body_json(
        gateway
            .handle(request(Method::POST, "/v1/sessions", &big))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(json["code"], 8);
    let mut req = request(Method::POST, "/v1/sessions", "");
    req.headers_mut()
        .insert("content-length", "5000".parse().expect("header"));
    let (status, _, _) = body_json(gateway.handle(req).await).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // Malformed JSON and unknown fields: 400.
    let (status, _, json) = body_json(
        gateway
            .handle(request(Method::POST, "/v1/sessions", "{nope"))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json["code"], 3);
    let (status, _, json) = body_json(
        gateway
            .handle(request(Method::POST, "/v1/sessions", r#"{"colour":"red"}"#))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        json["message"]
            .as_str()
            .expect("message")
            .contains("colour")
    );
    assert_eq!(json["details"][0]["fieldViolations"][0]["field"], "colour");
    assert!(fake.calls.lock().expect("lock").is_empty());

    // An empty body (no content type) means {}.
    let (status, _, json) = body_json(
        gateway
            .handle(request(Method::POST, "/v1/sessions", ""))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json, json!({}));
    // The original proto field names are accepted too.
    let (status, _, json) = body_json(
        gateway
            .handle(request(
                Method::POST,
                "/v1/sessions",
                r#"{"display_name":"Snake"}"#,
            ))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json, json!({"displayName": "Snake"}));
}

#[tokio::test]
async fn query_parameters_reach_the_request() {
    let fake = fake(|call| {
        let req = pb::ListSessionsRequest::decode(call.message.clone()).expect("request");
        unary_ok(&pb::ListSessionsResponse {
            sessions: vec![],
            next_page_token: format!(
                "{}|{}|{}|{:?}",
                req.page_size, req.query, req.source, req.pinned
            ),
        })
    });
    let gateway = gateway(&fake);
    let (status, _, json) = body_json(
        gateway
            .handle(request(
                Method::GET,
                "/v1/sessions?pageSize=5&query=hello+world&source=SESSION_SOURCE_API&pinned=true",
                "",
            ))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json, json!({"nextPageToken": "5|hello world|3|Some(true)"}));

    let (status, _, json) = body_json(
        gateway
            .handle(request(Method::GET, "/v1/sessions?page_size=lots", ""))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        json["details"][0]["fieldViolations"][0]["field"],
        "page_size"
    );

    // access_token is only for streaming GETs.
    let (status, _, json) = body_json(
        gateway
            .handle(request(Method::GET, "/v1/sessions?access_token=t", ""))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        json["details"][0]["fieldViolations"][0]["field"],
        "access_token"
    );
    assert_eq!(fake.calls.lock().expect("lock").len(), 1);
}

#[tokio::test]
async fn grpc_errors_become_status_json_with_details_and_headers() {
    let fake = fake(|call| match call.path.as_str() {
        // Trailers-only, with details and retry-after.
        "/octo.v1.SessionService/GetSession" => {
            let info = pb_error_info();
            let mut headers = status_headers(tonic::Code::NotFound, "session sessions/x not found");
            use base64::Engine as _;
            let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(info);
            headers.insert("grpc-status-details-bin", encoded.parse().expect("header"));
            headers.insert("retry-after", "7".parse().expect("header"));
            trailers_only(headers)
        }
        // Headers, then the error in the trailers.
        "/octo.v1.SessionService/DeleteSession" => {
            let mut trailers = status_headers(tonic::Code::Unauthenticated, "bad token: ünïcode");
            trailers.insert("www-authenticate", "Bearer".parse().expect("header"));
            streamed(grpc_headers(), vec![Frame::trailers(trailers)], false, None)
        }
        other => panic!("unexpected {other}"),
    });
    let gateway = gateway(&fake);

    let (status, headers, json) = body_json(
        gateway
            .handle(request(Method::GET, "/v1/sessions/x", ""))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["retry-after"], "7");
    assert_eq!(
        json,
        json!({
            "code": 5,
            "message": "session sessions/x not found",
            "details": [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "SESSION_NOT_FOUND",
                "domain": "octo",
                "metadata": {"session": "sessions/x"},
            }],
        })
    );

    let (status, headers, json) = body_json(
        gateway
            .handle(request(Method::DELETE, "/v1/sessions/x", ""))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers["www-authenticate"], "Bearer");
    assert_eq!(
        json,
        json!({"code": 16, "message": "bad token: ünïcode", "details": []})
    );
}

/// An encoded google.rpc.Status{code: 5, details: [ErrorInfo]}.
fn pb_error_info() -> Vec<u8> {
    let pool = DescriptorPool::decode(pb::FILE_DESCRIPTOR_SET).expect("pool");
    let mut info = DynamicMessage::new(
        pool.get_message_by_name("google.rpc.ErrorInfo")
            .expect("ErrorInfo"),
    );
    info.set_field_by_name("reason", Value::String("SESSION_NOT_FOUND".into()));
    info.set_field_by_name("domain", Value::String("octo".into()));
    info.set_field_by_name(
        "metadata",
        Value::Map(HashMap::from([(
            prost_reflect::MapKey::String("session".into()),
            Value::String("sessions/x".into()),
        )])),
    );
    let mut any = DynamicMessage::new(
        pool.get_message_by_name("google.protobuf.Any")
            .expect("Any"),
    );
    any.set_field_by_name(
        "type_url",
        Value::String("type.googleapis.com/google.rpc.ErrorInfo".into()),
    );
    any.set_field_by_name("value", Value::Bytes(info.encode_to_vec().into()));
    let mut status = DynamicMessage::new(
        pool.get_message_by_name("google.rpc.Status")
            .expect("Status"),
    );
    status.set_field_by_name("code", Value::I32(5));
    status.set_field_by_name("details", Value::List(vec![Value::Message(any)]));
    status.encode_to_vec()
}

#[tokio::test]
async fn empty_response_is_an_empty_object() {
    let fake = fake(|_| unary_ok(&()));
    let gateway = gateway(&fake);
    let (status, _, json) = body_json(
        gateway
            .handle(request(Method::DELETE, "/v1/models/m1?force=true", ""))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json, json!({}));
    let req = pb::DeleteModelRequest::decode(only_call(&fake).message).expect("request");
    assert_eq!(req.name, "models/m1");
    assert!(req.force);
}

fn event(sequence: i64, text: &str) -> Bytes {
    let message = pb::SessionEvent {
        sequence,
        session: "sessions/s1".into(),
        kind: Some(pb::session_event::Kind::TextDelta(pb::TextDelta {
            text: text.into(),
            ..Default::default()
        })),
        ..Default::default()
    };
    encode_frame(&message.encode_to_vec()).expect("frame")
}

async fn read_all(response: Response<Body>) -> String {
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf8")
}

#[tokio::test]
async fn server_streaming_is_sse_with_ids_and_final_error() {
    let fake = fake(|_| {
        // Two events, chunked awkwardly: the first split, the second packed with nothing.
        let mut both = bytes::BytesMut::new();
        both.extend_from_slice(&event(1, "Hel"));
        both.extend_from_slice(&event(0, "lo"));
        let both = both.freeze();
        streamed(
            grpc_headers(),
            vec![
                Frame::data(both.slice(..3)),
                Frame::data(both.slice(3..20)),
                Frame::data(both.slice(20..)),
                Frame::trailers(status_headers(
                    tonic::Code::Unavailable,
                    "server shutting down",
                )),
            ],
            false,
            None,
        )
    });
    let gateway = gateway(&fake);
    let mut req = request(
        Method::GET,
        "/v1/sessions/s1/events?after_sequence=2&access_token=tok%2B1",
        "",
    );
    req.headers_mut()
        .insert("last-event-id", "41".parse().expect("header"));
    let response = gateway.handle(req).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let text = read_all(response).await;
    assert_eq!(
        text,
        "id: 1\n\
         data: {\"sequence\":\"1\",\"session\":\"sessions/s1\",\"textDelta\":{\"text\":\"Hel\"}}\n\n\
         data: {\"session\":\"sessions/s1\",\"textDelta\":{\"text\":\"lo\"}}\n\n\
         event: error\n\
         data: {\"code\":14,\"message\":\"server shutting down\",\"details\":[]}\n\n"
    );

    let call = only_call(&fake);
    assert_eq!(call.path, "/octo.v1.ChatService/StreamEvents");
    assert_eq!(call.headers["authorization"], "Bearer tok+1");
    let req = pb::StreamEventsRequest::decode(call.message).expect("request");
    assert_eq!(req.session, "sessions/s1");
    assert_eq!(req.after_sequence, 41, "Last-Event-ID overrides the query");
}

#[tokio::test]
async fn access_token_does_not_override_authorization() {
    let fake = fake(|_| {
        streamed(
            grpc_headers(),
            vec![Frame::trailers(status_headers(tonic::Code::Ok, ""))],
            false,
            None,
        )
    });
    let gateway = gateway(&fake);
    let mut req = request(Method::GET, "/v1/sessions:watch?access_token=query", "");
    req.headers_mut()
        .insert("authorization", "Bearer header".parse().expect("header"));
    let response = gateway.handle(req).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        read_all(response).await,
        "",
        "OK with no messages: an empty stream"
    );
    assert_eq!(only_call(&fake).headers["authorization"], "Bearer header");
}

#[tokio::test]
async fn streaming_error_before_any_message_is_plain_json() {
    let fake = fake(|_| trailers_only(status_headers(tonic::Code::NotFound, "no such session")));
    let gateway = gateway(&fake);
    let (status, headers, json) = body_json(
        gateway
            .handle(request(Method::GET, "/v1/sessions/zz/events", ""))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        json,
        json!({"code": 5, "message": "no such session", "details": []})
    );

    // The same when the error follows the response headers.
    let fake = fake_error_after_headers();
    let gateway = self::gateway(&fake);
    let (status, _, _) = body_json(
        gateway
            .handle(request(
                Method::POST,
                "/v1/sessions/zz:chat",
                r#"{"parts":[{"text":"hi"}]}"#,
            ))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let req = pb::ChatRequest::decode(only_call(&fake).message).expect("request");
    assert_eq!(req.session, "sessions/zz");
    assert_eq!(req.parts.len(), 1);
}

fn fake_error_after_headers() -> Fake {
    fake(|_| {
        streamed(
            grpc_headers(),
            vec![Frame::trailers(status_headers(
                tonic::Code::FailedPrecondition,
                "busy",
            ))],
            false,
            None,
        )
    })
}

#[tokio::test]
async fn keepalive_comments_during_silence() {
    let fake = fake(|_| streamed(grpc_headers(), vec![], true, None));
    let gateway = gateway(&fake).with_sse_keepalive(Duration::from_millis(30));
    let response = gateway
        .handle(request(Method::GET, "/v1/sessions:watch", ""))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    for _ in 0..2 {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
            .await
            .expect("a keepalive in time")
            .expect("a frame")
            .expect("ok");
        assert_eq!(frame.into_data().expect("data"), ": keepalive\n\n");
    }
}

#[tokio::test]
async fn dropping_the_response_drops_the_grpc_call() {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let tx = Mutex::new(Some(tx));
    let fake = fake(move |_| {
        let guard = tx.lock().expect("lock").take();
        streamed(
            grpc_headers(),
            vec![Frame::data(event(5, "x"))],
            true,
            guard,
        )
    });
    let gateway = gateway(&fake);
    let response = gateway
        .handle(request(Method::GET, "/v1/sessions/s1/events", ""))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let frame = body.frame().await.expect("frame").expect("ok");
    let data = frame.into_data().expect("data");
    assert!(data.starts_with(b"id: 5\ndata: "), "{data:?}");
    let mut rx = rx;
    assert!(
        matches!(
            rx.try_recv(),
            Err(tokio::sync::oneshot::error::TryRecvError::Empty)
        ),
        "still open"
    );
    drop(body);
    let closed = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .expect("in time");
    assert!(closed.is_err(), "the gRPC response stream was dropped");
}

#[tokio::test]
async fn most_literal_template_wins_and_double_star_captures_the_rest() {
    let rule = |method: &str, path: &str| vec![(method.to_owned(), path.to_owned())];
    let mut rules = HashMap::new();
    rules.insert(
        "octo.v1.SessionService.GetSession".to_owned(),
        rule("get", "/v1/{name=sessions/*}"),
    );
    rules.insert(
        "octo.v1.SessionService.ExportSession".to_owned(),
        rule("get", "/v1/sessions/latest"),
    );
    rules.insert(
        "octo.v1.ChatService.GetMessage".to_owned(),
        rule("get", "/v1/{name=files/**}"),
    );
    let set = inject_rules(pb::FILE_DESCRIPTOR_SET, &rules);
    let fake = fake(|call| match call.path.as_str() {
        "/octo.v1.ChatService/GetMessage" => {
            let req = pb::GetMessageRequest::decode(call.message.clone()).expect("request");
            unary_ok(&pb::Message {
                name: req.name,
                ..Default::default()
            })
        }
        // An empty message decodes as any type.
        _ => unary_ok(&()),
    });
    // With the real descriptor set, other rules stay; only the injected ones matter here.
    let gateway = JsonGateway::new(&set, fake.service.clone(), 1024).expect("gateway");

    for (path, rpc) in [
        (
            "/v1/sessions/latest",
            "/octo.v1.SessionService/ExportSession",
        ),
        ("/v1/sessions/other", "/octo.v1.SessionService/GetSession"),
    ] {
        let (status, _, _) = body_json(gateway.handle(request(Method::GET, path, "")).await).await;
        assert_eq!(status, StatusCode::OK);
        let call = fake.calls.lock().expect("lock").pop().expect("a call");
        assert_eq!(call.path, rpc, "{path}");
    }

    let (status, _, json) = body_json(
        gateway
            .handle(request(Method::GET, "/v1/files/a/b%20c/d.txt", ""))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json, json!({"name": "files/a/b c/d.txt"}));
}

#[tokio::test]
async fn access_token_is_rejected_on_post_streams() {
    let fake = fake(|_| unreachable!("rejected before the call"));
    let gateway = gateway(&fake);
    let (status, _, json) = body_json(
        gateway
            .handle(request(
                Method::POST,
                "/v1/sessions/s1:chat?access_token=t",
                "{}",
            ))
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        json["details"][0]["fieldViolations"][0]["field"],
        "access_token"
    );
}

/// `google.api.HttpBody` answers as raw bodies.
mod body;
