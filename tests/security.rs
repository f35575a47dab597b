//! The server's defaults against a hostile web page and a hostile network, over real
//! sockets: the Host check (DNS rebinding) over HTTP/1.1 and h2, the Origin check and
//! CORS on JSON, gRPC-Web and SSE, private file modes, TLS on the port and in the CLI
//! (never a silent plaintext fallback), and provider redirects not followed.
//! The same attacks from a real browser are in clients/typescript/test/security.test.mjs.

use crate::common;

use std::{net::SocketAddr, path::Path};

use common::{TIMEOUT, TestServer};
use octo::pb;
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};
use tonic::Code;

const EVIL: &str = "http://evil.example";
const PAGE: &str = "http://page.example:8080";

/// One HTTP/1.1 request written by hand (so Host and Origin are exactly what a browser
/// would send); returns the status, the header block (lower case) and the body.
async fn raw_http(addr: SocketAddr, request: &str) -> (u16, String, String) {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.expect("read");
        String::from_utf8_lossy(&response).into_owned()
    };
    let response = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .expect("answer in time");
    let (head, body) = response.split_once("\r\n\r\n").expect("a header block");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// `METHOD path` with `Connection: close` and the given extra header lines.
fn request(method: &str, path: &str, host: &str, headers: &[&str], body: &str) -> String {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for header in headers {
        text.push_str(header);
        text.push_str("\r\n");
    }
    text.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    text
}

fn error_reason(body: &str) -> String {
    let json: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    json["details"]
        .as_array()
        .and_then(|details| {
            details
                .iter()
                .find_map(|d| d["reason"].as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| panic!("no ErrorInfo reason in {body}"))
}

async fn session_count(server: &TestServer) -> usize {
    server
        .sessions()
        .await
        .list_sessions(pb::ListSessionsRequest::default())
        .await
        .expect("list")
        .into_inner()
        .sessions
        .len()
}

const CREATE_AUTO: &str = r#"{"permissionMode":"PERMISSION_MODE_AUTO_APPROVE"}"#;

#[tokio::test]
async fn a_rebound_host_name_is_refused_over_http1_and_h2() {
    let server = TestServer::start_with(|c| c.allowed_hosts = vec!["octo.lan".into()]).await;
    let port = server.addr.port();

    // HTTP/1.1: the drive-by's first step, from a page on a rebound name.
    let (status, _, body) = raw_http(
        server.addr,
        &request(
            "POST",
            "/v1/sessions",
            &format!("attacker.example:{port}"),
            &["Content-Type: application/json"],
            CREATE_AUTO,
        ),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(error_reason(&body), "HOST_NOT_ALLOWED");
    assert!(body.contains("allowed_hosts"), "says how to allow: {body}");
    assert_eq!(session_count(&server).await, 0, "nothing was created");

    // The loopback names and a configured one are served.
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        format!("octo.lan:{port}"),
    ] {
        let (status, _, body) =
            raw_http(server.addr, &request("GET", "/v1/sessions", &host, &[], "")).await;
        assert_eq!(status, 200, "{host}: {body}");
    }

    // h2: the same check on `:authority`, answered as a gRPC status.
    let with_authority = |authority: &str| {
        let origin: http::Uri = format!("http://{authority}").parse().expect("uri");
        tonic::transport::Endpoint::from_shared(server.url())
            .expect("url")
            .origin(origin)
    };
    let channel = with_authority(&format!("attacker.example:{port}"))
        .connect()
        .await
        .expect("connect");
    let err = pb::session_service_client::SessionServiceClient::new(channel)
        .create_session(pb::CreateSessionRequest {
            session: Some(common::session("rebound")),
        })
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(common::reason(&err), "HOST_NOT_ALLOWED");
    let channel = with_authority(&format!("octo.lan:{port}"))
        .connect()
        .await
        .expect("connect");
    pb::session_service_client::SessionServiceClient::new(channel)
        .list_sessions(pb::ListSessionsRequest::default())
        .await
        .expect("a configured name is served over h2");
    assert_eq!(session_count(&server).await, 0);
}

#[tokio::test]
async fn other_origins_are_refused_on_every_browser_protocol() {
    let server = TestServer::start_with(|c| c.cors_allowed_origins = vec![PAGE.to_owned()]).await;
    let host = server.addr.to_string();
    let session = common::create(&mut server.sessions().await, "target").await;
    let origin = format!("Origin: {EVIL}");

    let attempts = [
        // fetch() with JSON (after a preflight a browser would send first).
        request(
            "POST",
            "/v1/sessions",
            &host,
            &[&origin, "Content-Type: application/json"],
            CREATE_AUTO,
        ),
        // The preflight itself.
        request(
            "OPTIONS",
            "/v1/sessions",
            &host,
            &[
                &origin,
                "Access-Control-Request-Method: POST",
                "Access-Control-Request-Headers: content-type",
            ],
            "",
        ),
        // A form post: text/plain needs no preflight.
        request(
            "POST",
            "/v1/sessions",
            &host,
            &[&origin, "Content-Type: text/plain"],
            CREATE_AUTO,
        ),
        // EventSource on the session's events.
        request(
            "GET",
            &format!("/v1/{}/events", session.name),
            &host,
            &[&origin, "Accept: text/event-stream"],
            "",
        ),
        // gRPC-Web.
        request(
            "POST",
            "/octo.v1.SessionService/ListSessions",
            &host,
            &[
                &origin,
                "Content-Type: application/grpc-web+proto",
                "X-Grpc-Web: 1",
            ],
            "\0\0\0\0\0",
        ),
        // An <img> or <script> GET: no Origin, but fetch metadata says cross-site.
        request(
            "GET",
            "/v1/sessions",
            &host,
            &["Sec-Fetch-Site: cross-site", "Sec-Fetch-Mode: no-cors"],
            "",
        ),
        // A sandboxed frame's opaque origin.
        request(
            "POST",
            "/v1/sessions",
            &host,
            &["Origin: null", "Content-Type: application/json"],
            CREATE_AUTO,
        ),
    ];
    for attempt in &attempts {
        let (status, head, body) = raw_http(server.addr, attempt).await;
        let first = attempt.lines().next().unwrap_or("");
        assert_eq!(status, 403, "{first}: {body}");
        assert_eq!(error_reason(&body), "ORIGIN_NOT_ALLOWED", "{first}");
        assert!(
            !head.contains("access-control-allow-origin"),
            "{first}: no CORS grant: {head}"
        );
        assert!(head.contains("content-type: application/json"), "{head}");
    }
    let (_, _, body) = raw_http(server.addr, &attempts[0]).await;
    assert!(
        body.contains(&format!("add \\\"{EVIL}\\\" to `cors_allowed_origins`")),
        "the refusal says how to allow it: {body}"
    );
    assert_eq!(
        session_count(&server).await,
        1,
        "only the test's own session"
    );

    // The allowed origin gets CORS grants; the server's own origin passes too.
    for allowed in [PAGE.to_owned(), format!("http://{host}")] {
        let (status, head, body) = raw_http(
            server.addr,
            &request(
                "POST",
                "/v1/sessions",
                &host,
                &[
                    &format!("Origin: {allowed}"),
                    "Content-Type: application/json",
                ],
                "{}",
            ),
        )
        .await;
        assert_eq!(status, 200, "{allowed}: {body}");
        if allowed == PAGE {
            assert!(
                head.contains(&format!("access-control-allow-origin: {PAGE}")),
                "{head}"
            );
        }
    }
    let (status, head, _) = raw_http(
        server.addr,
        &request(
            "OPTIONS",
            "/octo.v1.SessionService/ListSessions",
            &host,
            &[
                &format!("Origin: {PAGE}"),
                "Access-Control-Request-Method: POST",
                "Access-Control-Request-Headers: content-type,x-grpc-web",
            ],
            "",
        ),
    )
    .await;
    assert!((200..300).contains(&status), "preflight: {status}");
    assert!(
        head.contains(&format!("access-control-allow-origin: {PAGE}")),
        "{head}"
    );
    assert_eq!(session_count(&server).await, 3);

    // Oversized heads are refused before any routing, and the server keeps serving.
    let many: Vec<String> = (0..150).map(|i| format!("X-Filler-{i}: {i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let (status, _, _) = raw_http(
        server.addr,
        &request("GET", "/v1/sessions", &host, &many, ""),
    )
    .await;
    assert_eq!(status, 431, "too many headers");

    // Clients without Origin (CLI, grpcurl, SDKs) are unaffected.
    let (status, _, body) =
        raw_http(server.addr, &request("GET", "/v1/sessions", &host, &[], "")).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn any_origin_is_accepted_only_with_a_token() {
    let home = tempfile::tempdir().expect("tempdir");
    let output = common::octo_command_in(home.path())
        .env("OCTO_CORS_ALLOWED_ORIGINS", r#"["*"]"#)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .await
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("needs `token`"), "{stderr}");

    let server = TestServer::start_with(|c| {
        c.cors_allowed_origins = vec!["*".into()];
        c.token = Some("a-token-for-star".into());
    })
    .await;
    let (status, head, body) = raw_http(
        server.addr,
        &request(
            "GET",
            "/v1/sessions",
            &server.addr.to_string(),
            &[&format!("Origin: {EVIL}")],
            "",
        ),
    )
    .await;
    assert_eq!(
        status, 401,
        "passes the origin check, then needs the token: {body}"
    );
    assert!(head.contains("access-control-allow-origin: *"), "{head}");
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn the_data_dir_and_database_are_private_and_loose_installs_are_narrowed() {
    use std::os::unix::fs::PermissionsExt as _;
    let server = TestServer::start().await;
    // A write, so the WAL and shared-memory files exist.
    common::create(&mut server.sessions().await, "private").await;
    let data = server.config.data_dir.clone();
    let files = ["octo.db", "octo.db-wal", "octo.db-shm"].map(|f| data.join(f));
    assert_eq!(mode(&data), 0o700, "data dir");
    for file in &files {
        assert_eq!(mode(file), 0o600, "{}", file.display());
    }
    let (dir, config) = server.stop().await;

    // An older install: world-readable dir and database.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&files[0], std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let server = TestServer::start_in(dir, config).await;
    assert_eq!(mode(&data), 0o700, "data dir narrowed");
    assert_eq!(mode(&files[0]), 0o600, "database narrowed");
    assert_eq!(session_count(&server).await, 1, "and its content kept");
}

/// A CA and a certificate for localhost and 127.0.0.1 signed by it, as PEM files.
struct TestPki {
    dir: tempfile::TempDir,
}

impl TestPki {
    fn new() -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "Octo test CA");
        let ca =
            CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("ca key")).expect("ca");
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("params")
            .signed_by(&key, &ca)
            .expect("cert");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write");
        std::fs::write(dir.path().join("cert.pem"), cert.pem()).expect("write");
        std::fs::write(dir.path().join("key.pem"), key.serialize_pem()).expect("write");
        TestPki { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

/// `octo --server URL [extra] sessions list`.
async fn cli_list(server: &str, extra: &[&str]) -> std::process::Output {
    let output = common::octo_command()
        .args(["--server", server])
        .args(extra)
        .args(["sessions", "list"])
        .output();
    tokio::time::timeout(TIMEOUT, output)
        .await
        .expect("in time")
        .expect("run")
}

#[tokio::test]
async fn tls_on_the_port_for_the_cli_and_json() {
    let pki = TestPki::new();
    let token = "tls-token-0123456789";
    let server = TestServer::start_with(|c| {
        c.tls_cert = Some(pki.path("cert.pem"));
        c.tls_key = Some(pki.path("key.pem"));
        c.token = Some(token.into());
    })
    .await;
    let port = server.addr.port();
    let https = format!("https://localhost:{port}");
    let ca = pki.path("ca.pem");
    let ca = ca.to_str().expect("utf-8 path");

    // The CLI over h2 + TLS, trusting the test CA.
    let output = cli_list(&https, &["--ca-cert", ca, "--token", token]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Without the CA the certificate is not trusted: an error, not a fallback.
    let output = cli_list(&https, &["--token", token]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("over TLS"), "{stderr}");
    assert!(
        stderr.to_ascii_lowercase().contains("certificate"),
        "{stderr}"
    );
    // Plain http to a TLS port does not work either, and says so (the server's closed
    // connection once passed for a closed stdout: a silent exit 0).
    let output = cli_list(&format!("http://127.0.0.1:{port}"), &["--token", token]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");

    // JSON over HTTP/1.1 with TLS, as a browser or curl would (the CLI above is h2;
    // ALPN offers both).
    let root = reqwest::Certificate::from_pem(&std::fs::read(pki.path("ca.pem")).expect("ca"))
        .expect("ca pem");
    let response = reqwest::Client::builder()
        .add_root_certificate(root)
        .http1_only()
        .build()
        .expect("client")
        .get(format!("https://127.0.0.1:{port}/v1/sessions"))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
}

#[tokio::test]
async fn https_never_falls_back_to_plaintext() {
    // A plaintext Octo: `https://` to it fails with a TLS error.
    let server = TestServer::start().await;
    let output = cli_list(&format!("https://{}", server.addr), &[]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("over TLS"), "{stderr}");

    // A capturing socket: what the CLI sends first is a TLS ClientHello, and the token
    // never crosses the wire in clear.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let captured = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        // Read the client's first record whole (5-byte header, then its length), then
        // close: the client sees the connection fail and gives up.
        let mut bytes = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let record_end =
                (bytes.len() >= 5).then(|| 5 + u16::from_be_bytes([bytes[3], bytes[4]]) as usize);
            if record_end.is_some_and(|end| bytes.len() >= end) {
                break;
            }
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
            }
        }
        bytes
    });
    let secret = "never-in-clear-0123456789";
    let url = format!("https://127.0.0.1:{}", addr.port());
    let args = ["--token", secret];
    let (output, bytes) = tokio::join!(cli_list(&url, &args), captured);
    let bytes = bytes.expect("capture");
    assert!(!output.status.success());
    assert_eq!(
        bytes.first(),
        Some(&0x16),
        "a TLS handshake record: {bytes:?}"
    );
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        !text.contains(secret) && !text.contains("authorization"),
        "{text}"
    );

    // --ca-cert with http:// is a mistake worth saying.
    let output = cli_list(&server.url(), &["--ca-cert", "/nonexistent.pem"]).await;
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--ca-cert is for https://"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A provider whose answer is a redirect to another host must not get the key sent
/// there: reqwest strips `authorization` on such redirects but not `x-api-key`.
#[tokio::test]
async fn provider_redirects_are_not_followed() {
    let elsewhere = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let elsewhere_addr = elsewhere.local_addr().expect("addr");
    let redirector = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let redirector_addr = redirector.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = redirector.accept().await {
            let location = format!("http://localhost:{}/v1/messages", elsewhere_addr.port());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = socket.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 307 Temporary Redirect\r\nLocation: {location}\r\n\
                     Content-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    let server = TestServer::start_with(|c| {
        let mut model = octo::config::ModelConfig::mock();
        model.provider = "anthropic".into();
        model.model = "claude-test".into();
        model.base_url = format!("http://{redirector_addr}");
        model.api_key = Some("sk-ant-secret".into());
        c.models.insert("redirected".into(), model);
        c.default_model = Some("redirected".into());
        c.provider.max_attempts = 1;
    })
    .await;
    let mut sessions = server.sessions().await;
    let session = common::create(&mut sessions, "redirect").await;
    let mut chat = server.chat().await;
    let mut events = chat
        .chat(pb::ChatRequest {
            session: session.name.clone(),
            parts: vec![common::text("hi")],
            ..Default::default()
        })
        .await
        .expect("chat")
        .into_inner();
    let events = common::collect_until(&mut events, common::is_turn_finished).await;
    let turn = common::finished(events.last().expect("events")).expect("finished");
    assert_eq!(turn.status(), pb::TurnStatus::Failed, "{turn:?}");
    let message = turn
        .error
        .as_ref()
        .map(|e| e.message.clone())
        .unwrap_or_default();
    assert!(message.contains("307"), "{message}");
    // The turn is over: had the redirect been followed, the connection would be here.
    let accepted =
        tokio::time::timeout(std::time::Duration::from_millis(1), elsewhere.accept()).await;
    assert!(accepted.is_err(), "the redirect target was contacted");
}
