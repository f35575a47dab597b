//! The embedded web UI over real sockets: `/` and its hashed assets with their content
//! types, caching, compression and security headers; the JSON 404 kept for unknown
//! `/v1/...` paths; the Host/Origin guard still in front; and `ui = false` / `--no-ui`
//! turning it off (the latter through the real binary, which also logs the UI's URL).
//! The UI itself, in a browser, is tested by clients/web/test/*.test.mjs.

use crate::common;

use std::net::SocketAddr;

use common::{TIMEOUT, TestServer};
use tokio::io::{AsyncBufReadExt, BufReader};

/// GET `path` with extra headers; no automatic decompression (reqwest without gzip).
async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let mut request = client.get(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    tokio::time::timeout(TIMEOUT, request.send())
        .await
        .expect("answer in time")
        .expect("response")
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii").to_owned())
        .unwrap_or_default()
}

/// The hashed asset paths `index.html` references (`/assets/...js` and `.css`).
fn asset_paths(index: &str) -> Vec<String> {
    index
        .split(['"', '\''])
        .filter(|s| s.starts_with("/assets/"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn index_and_assets_have_types_caching_gzip_and_a_strict_csp() {
    let server = TestServer::start().await;
    let index = get(server.addr, "/", &[]).await;
    assert_eq!(index.status(), 200);
    assert_eq!(header(&index, "content-type"), "text/html; charset=utf-8");
    assert_eq!(header(&index, "cache-control"), "no-cache");
    assert_eq!(header(&index, "x-content-type-options"), "nosniff");
    let csp = header(&index, "content-security-policy");
    for directive in [
        "default-src 'none'",
        "script-src 'self';",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "CSP {csp:?} lacks {directive:?}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
    assert_eq!(header(&index, "content-encoding"), "", "not asked for gzip");
    let etag = header(&index, "etag");
    assert!(
        etag.starts_with('"') && etag.ends_with('"') && etag.len() > 2,
        "{etag:?}"
    );
    let html = index.text().await.expect("body");
    // Revalidation: the same ETag is a 304 without a body; the gzip form has its own.
    let again = get(server.addr, "/", &[("if-none-match", &etag)]).await;
    assert_eq!(again.status(), 304);
    assert_eq!(header(&again, "etag"), etag);
    assert_eq!(header(&again, "cache-control"), "no-cache");
    assert!(again.bytes().await.expect("body").is_empty());
    let gzipped = get(server.addr, "/", &[("accept-encoding", "gzip")]).await;
    assert_ne!(header(&gzipped, "etag"), etag);
    let stale = get(server.addr, "/", &[("if-none-match", "\"0000\"")]).await;
    assert_eq!(stale.status(), 200);
    assert!(html.contains("<title>Octo</title>"), "{html}");
    assert!(!html.contains("<script>"), "no inline script: {html}");
    assert_eq!(
        get(server.addr, "/index.html", &[])
            .await
            .text()
            .await
            .expect("body"),
        html
    );

    let assets = asset_paths(&html);
    let script = assets
        .iter()
        .find(|p| p.ends_with(".js"))
        .expect("a script");
    let style = assets
        .iter()
        .find(|p| p.ends_with(".css"))
        .expect("a stylesheet");
    for (path, content_type) in [
        (script, "text/javascript; charset=utf-8"),
        (style, "text/css; charset=utf-8"),
    ] {
        let plain = get(server.addr, path, &[]).await;
        assert_eq!(plain.status(), 200, "{path}");
        assert_eq!(header(&plain, "content-type"), content_type, "{path}");
        assert_eq!(
            header(&plain, "cache-control"),
            "public, max-age=31536000, immutable",
            "{path}"
        );
        assert_eq!(header(&plain, "vary"), "Accept-Encoding");
        assert_eq!(header(&plain, "x-content-type-options"), "nosniff");
        let plain = plain.bytes().await.expect("body");

        let gzipped = get(server.addr, path, &[("accept-encoding", "gzip, br")]).await;
        assert_eq!(header(&gzipped, "content-encoding"), "gzip", "{path}");
        assert_eq!(header(&gzipped, "content-type"), content_type, "{path}");
        let gzipped = gzipped.bytes().await.expect("body");
        assert_eq!(&gzipped[..2], &[0x1f, 0x8b], "{path}: gzip magic");
        assert!(
            gzipped.len() < plain.len(),
            "{path}: {} gzipped vs {} plain",
            gzipped.len(),
            plain.len()
        );

        let refused = get(server.addr, path, &[("accept-encoding", "gzip;q=0")]).await;
        assert_eq!(header(&refused, "content-encoding"), "");
        assert_eq!(refused.bytes().await.expect("body"), plain);
    }
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_keep_the_json_404_and_the_guard_still_applies() {
    let server = TestServer::start().await;
    for path in ["/v1/unknown", "/assets/missing.js", "/nope"] {
        let response = get(server.addr, path, &[]).await;
        assert_eq!(response.status(), 404, "{path}");
        assert!(
            header(&response, "content-type").starts_with("application/json"),
            "{path}"
        );
        let body: serde_json::Value = response.json().await.expect("JSON");
        assert_eq!(body["code"], 5, "{path}: {body}");
    }
    // The API itself is untouched.
    let sessions = get(server.addr, "/v1/sessions", &[]).await;
    assert_eq!(sessions.status(), 200);

    // A rebound name (DNS rebinding) gets no page; another origin's fetch neither.
    let rebound = get(server.addr, "/", &[("host", "attacker.example")]).await;
    assert_eq!(rebound.status(), 403);
    let cross = get(server.addr, "/", &[("sec-fetch-site", "cross-site")]).await;
    assert_eq!(cross.status(), 403);
    let evil = get(server.addr, "/", &[("origin", "http://evil.example")]).await;
    assert_eq!(evil.status(), 403);
    server.stop().await;
}

#[tokio::test]
async fn ui_false_in_the_config_turns_it_off() {
    let server = TestServer::start_with(|config| config.ui = false).await;
    let response = get(server.addr, "/", &[]).await;
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["code"], 5, "{body}");
    server.stop().await;
}

/// Runs `octo serve --demo <extra>`; returns it, its address and its `web UI` log line.
async fn serve_binary(
    home: &std::path::Path,
    extra: &[&str],
) -> (tokio::process::Child, String, String) {
    let mut child = common::octo_command_in(home)
        .args([
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--log",
            "info",
        ])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn octo serve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let (address, ui_line) = tokio::time::timeout(TIMEOUT, async {
        let mut address = None;
        while let Some(line) = lines.next_line().await.expect("read log") {
            if line.contains("octo listening") {
                address = line
                    .split("address=")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .map(str::to_owned);
            } else if line.contains("web UI") {
                return (address.expect("address logged first"), line);
            }
        }
        panic!("octo exited before logging its UI");
    })
    .await
    .expect("server logs in time");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, address, ui_line)
}

#[tokio::test]
async fn serve_logs_the_ui_url_and_no_ui_turns_it_off() {
    let home = tempfile::tempdir().expect("tempdir");
    let (mut child, address, line) = serve_binary(home.path(), &[]).await;
    assert!(line.contains(&format!("url=http://{address}/")), "{line}");
    let addr: SocketAddr = address.parse().expect("address");
    assert_eq!(get(addr, "/", &[]).await.status(), 200);
    child.kill().await.expect("kill");

    let home = tempfile::tempdir().expect("tempdir");
    let (mut child, address, line) = serve_binary(home.path(), &["--no-ui"]).await;
    assert!(line.contains("web UI off"), "{line}");
    let addr: SocketAddr = address.parse().expect("address");
    let response = get(addr, "/", &[]).await;
    assert_eq!(response.status(), 404);
    assert!(header(&response, "content-type").starts_with("application/json"));
    child.kill().await.expect("kill");
}
