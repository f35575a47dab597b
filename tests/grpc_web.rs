//! gRPC-Web over plain HTTP/1.1 with hand-made frames, as a browser would send them,
//! including the CORS headers a cross-origin page (an allowed origin) depends on.

use crate::common;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use common::TestServer;
use octo::pb;
use prost::Message;

fn frame(message: &impl Message) -> Bytes {
    let body = message.encode_to_vec();
    let mut out = BytesMut::with_capacity(5 + body.len());
    out.put_u8(0);
    out.put_u32(body.len() as u32);
    out.put_slice(&body);
    out.freeze()
}

/// Splits a gRPC-Web response body into its messages and its trailer block.
fn unframe(mut body: Bytes) -> (Vec<Bytes>, String) {
    let mut messages = Vec::new();
    let mut trailers = String::new();
    while body.remaining() >= 5 {
        let flag = body.get_u8();
        let len = body.get_u32() as usize;
        let payload = body.split_to(len);
        if flag & 0x80 != 0 {
            trailers.push_str(&String::from_utf8_lossy(&payload));
        } else {
            messages.push(payload);
        }
    }
    (messages, trailers)
}

fn http1() -> reqwest::Client {
    reqwest::Client::builder()
        .http1_only()
        .build()
        .expect("client")
}

/// The origin of the page in these tests, allowed by the server.
const PAGE: &str = "http://page.example";

async fn server_allowing_the_page() -> TestServer {
    TestServer::start_with(|c| c.cors_allowed_origins = vec![PAGE.to_owned()]).await
}

#[tokio::test]
async fn unary_call_over_grpc_web_http1() {
    let server = server_allowing_the_page().await;
    let response = http1()
        .post(format!(
            "{}/octo.v1.SessionService/CreateSession",
            server.url()
        ))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("origin", PAGE)
        .body(frame(&pb::CreateSessionRequest {
            session: Some(common::session("from the browser")),
        }))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    let headers = response.headers().clone();
    assert_eq!(
        headers
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap_or("")),
        Some(PAGE)
    );
    let exposed = headers
        .get("access-control-expose-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    for header in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        assert!(exposed.contains(header), "{header} exposed: {exposed}");
    }
    let (messages, trailers) = unframe(response.bytes().await.expect("body"));
    assert!(trailers.contains("grpc-status:0"), "{trailers}");
    assert_eq!(messages.len(), 1);
    let session = pb::Session::decode(messages[0].clone()).expect("decodes");
    assert_eq!(session.display_name, "from the browser");
}

#[tokio::test]
async fn errors_carry_status_and_details_over_grpc_web() {
    let server = TestServer::start().await;
    let response = http1()
        .post(format!(
            "{}/octo.v1.SessionService/GetSession",
            server.url()
        ))
        .header("content-type", "application/grpc-web+proto")
        .body(frame(&pb::GetSessionRequest {
            name: "sessions/0190b5b4-0000-7000-8000-000000000000".into(),
        }))
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.status(),
        200,
        "gRPC-Web errors travel in grpc-status"
    );
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body");
    let (_, trailers) = unframe(body);
    // Trailers-only responses put the status in the headers; otherwise in the trailer frame.
    let status = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| trailers.clone());
    assert!(status.contains('5'), "NOT_FOUND: {status} / {trailers}");
    let details = headers
        .get("grpc-status-details-bin")
        .map(|v| v.as_bytes().to_vec())
        .or_else(|| {
            trailers
                .lines()
                .find_map(|l| l.strip_prefix("grpc-status-details-bin:"))
                .map(|v| v.trim().as_bytes().to_vec())
        })
        .expect("details present");
    // gRPC binary headers are base64 with or without padding.
    use base64::{Engine, engine};
    let lenient = engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(engine::DecodePaddingMode::Indifferent),
    );
    let raw = lenient.decode(&details).expect("base64");
    let status = tonic_types::pb::Status::decode(raw.as_slice()).expect("google.rpc.Status");
    assert_eq!(status.code, 5);
    assert!(
        status
            .details
            .iter()
            .any(|d| d.type_url.ends_with("google.rpc.ErrorInfo")),
        "{status:?}"
    );
}

#[tokio::test]
async fn cors_preflight_allows_grpc_web_headers() {
    let server = server_allowing_the_page().await;
    let response = http1()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/octo.v1.SessionService/ListSessions", server.url()),
        )
        .header("origin", PAGE)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "content-type,x-grpc-web,authorization",
        )
        .send()
        .await
        .expect("preflight");
    assert!(response.status().is_success(), "{}", response.status());
    let allowed = response
        .headers()
        .get("access-control-allow-headers")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    for header in ["content-type", "x-grpc-web", "authorization"] {
        assert!(allowed.contains(header), "{header} in {allowed}");
    }
}
