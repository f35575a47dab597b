//! The web UI: the single-page app built from `clients/web` (its `dist/`, committed),
//! embedded in the binary at compile time by build.rs and served at `/`.
//!
//! Contract:
//! - `GET`/`HEAD` of `/` (or `/index.html`) and of every file in `dist/` are answered
//!   here; anything else (every `/v1/...` path, unknown paths) is not, so the JSON
//!   gateway keeps answering them (a `google.rpc.Status` 404 for unknown routes).
//! - Content types by extension; hashed assets (`/assets/...`, names carry a content
//!   hash) are `Cache-Control: public, max-age=31536000, immutable`, everything else
//!   (`index.html`) `no-cache`.
//! - A gzip twin precompressed at bundle time is served when `Accept-Encoding` allows
//!   gzip (`Vary: Accept-Encoding` either way).
//! - Each file has an ETag (a hash of its bytes, `-gz` for the gzipped form); a matching
//!   `If-None-Match` is answered `304 Not Modified` without a body.
//! - Every response carries a strict Content-Security-Policy (scripts and styles only
//!   from the server's own origin, no inline script, `connect-src 'self'`),
//!   `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`.
//! - Requests reach this module only after the Host/Origin guard, like every other one.

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};

/// One embedded file: its URL path, its bytes, its gzipped bytes when precompressed, and
/// its quoted ETag (a hash of the bytes).
type Asset = (
    &'static str,
    &'static [u8],
    Option<&'static [u8]>,
    &'static str,
);

/// Every file of `clients/web/dist`, sorted by path.
static ASSETS: &[Asset] = include!(concat!(env!("OUT_DIR"), "/web_ui.rs"));

/// The policy of every UI response: the app is same-origin only, and renders untrusted
/// model output, so nothing inline runs and nothing loads or connects elsewhere.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; \
     manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Whether the binary carries a built UI (it does unless `clients/web/dist` was missing).
pub fn available() -> bool {
    ASSETS.iter().any(|(path, ..)| *path == "/index.html")
}

/// Logs where the UI is (or that it is off), once, at start.
pub fn log_url(local_addr: std::net::SocketAddr, tls: bool, enabled: bool) {
    if !enabled {
        tracing::info!("web UI off (--no-ui or ui = false)");
    } else if available() {
        let scheme = if tls { "https" } else { "http" };
        tracing::info!(url = %format!("{scheme}://{local_addr}/"), "web UI");
    } else {
        tracing::warn!("this binary was built without the web UI (clients/web/dist missing)");
    }
}

/// The UI's answer to `request`, or `None` when the path is not one of its files.
pub fn response<B>(request: &Request<B>) -> Option<Response<tonic::body::Body>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return None;
    }
    let path = match request.uri().path() {
        "/" => "/index.html",
        path => path,
    };
    let index = ASSETS.binary_search_by(|(p, ..)| p.cmp(&path)).ok()?;
    let (path, body, gzipped, etag) = ASSETS[index];
    let (body, encoded) = match gzipped {
        Some(gzipped) if accepts_gzip(request.headers()) => (gzipped, true),
        _ => (body, false),
    };
    let etag = if encoded {
        format!("{}-gz\"", etag.trim_end_matches('"'))
    } else {
        etag.to_owned()
    };
    let not_modified = request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag
        });
    let immutable = path.starts_with("/assets/");
    let mut builder = Response::builder()
        .status(if not_modified {
            StatusCode::NOT_MODIFIED
        } else {
            StatusCode::OK
        })
        .header(header::CONTENT_TYPE, content_type(path))
        .header(header::ETAG, etag)
        .header(
            header::CACHE_CONTROL,
            if immutable {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            },
        )
        .header(header::VARY, "Accept-Encoding")
        .header(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::REFERRER_POLICY, "no-referrer");
    if encoded {
        builder = builder.header(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    if !not_modified {
        builder = builder.header(header::CONTENT_LENGTH, body.len());
    }
    let body = if request.method() == Method::HEAD || not_modified {
        Bytes::new()
    } else {
        Bytes::from_static(body)
    };
    builder
        .body(tonic::body::Body::new(http_body_util::Full::new(body)))
        .ok()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json" | "map") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        _ => "application/octet-stream",
    }
}

/// Whether `Accept-Encoding` lists gzip (or `*`) with a non-zero quality.
fn accepts_gzip(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        map.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        map
    }

    #[test]
    fn gzip_is_accepted_only_when_listed_with_a_positive_quality() {
        assert!(accepts_gzip(&headers("gzip, deflate, br")));
        assert!(accepts_gzip(&headers("br;q=1.0, GZIP;q=0.5")));
        assert!(accepts_gzip(&headers("*")));
        assert!(!accepts_gzip(&headers("br, deflate")));
        assert!(!accepts_gzip(&headers("gzip;q=0")));
        assert!(!accepts_gzip(&http::HeaderMap::new()));
    }

    #[test]
    fn assets_are_sorted_and_only_ui_paths_answer() {
        assert!(ASSETS.windows(2).all(|w| w[0].0 < w[1].0));
        let get = |path: &str| Request::get(path).body(()).unwrap();
        assert!(response(&get("/v1/sessions")).is_none());
        assert!(response(&get("/nope")).is_none());
        let post = Request::post("/").body(()).unwrap();
        assert!(response(&post).is_none());
        if available() {
            let page = response(&get("/")).expect("index");
            assert_eq!(page.headers()[header::CACHE_CONTROL], "no-cache");
        }
    }
}
