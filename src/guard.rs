//! What every request passes before it is routed, so that a web page the user happens to
//! visit cannot drive the agents of a server on their machine:
//!
//! - **Host check** on a loopback bind (DNS rebinding): a page on `attacker.example`
//!   whose name is made to resolve to 127.0.0.1 reaches the server as a same-origin
//!   page, but its requests carry `Host: attacker.example`. Only `localhost`, loopback
//!   IP literals and the configured `allowed_hosts` are served, on any port.
//! - **Origin check**: a request with an `Origin` header (every cross-origin fetch, XHR,
//!   EventSource and gRPC-Web call, and every form post) must come from the server's own
//!   origin or one in `cors_allowed_origins`. Requests without `Origin` (the CLI,
//!   grpcurl, the SDKs) pass, except browser sub-resource requests that announce
//!   themselves cross-site through `Sec-Fetch-Site` (an `<img>` or `<script>` GET).
//! - **CORS**: `Access-Control-Allow-*` headers only for the allowed origins, from the
//!   same list and the same comparison as the Origin check.
//!
//! Failures are `Error::PermissionDenied` with reason `HOST_NOT_ALLOWED` or
//! `ORIGIN_NOT_ALLOWED` and a message that says how to allow the request; the caller
//! renders them (403 JSON over HTTP, PERMISSION_DENIED over gRPC).
//!
//! The guard is immutable after start and shared by every connection; checks read
//! headers only (no I/O, no locks).

use std::{net::IpAddr, time::Duration};

use http::{HeaderMap, HeaderValue, Request, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{config::Config, domain::Error};

/// The reason of a request refused for its `Host`.
pub use crate::domain::reason::HOST_NOT_ALLOWED;
/// The reason of a request refused for its `Origin` (or its cross-site fetch metadata).
pub use crate::domain::reason::ORIGIN_NOT_ALLOWED;

/// Request headers a cross-origin page may send (the preflight's allow-list).
const ALLOWED_HEADERS: [&str; 9] = [
    "authorization",
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "last-event-id",
    "x-request-id",
    "connect-protocol-version",
    "connect-timeout-ms",
];
/// Response headers a cross-origin page may read.
const EXPOSED_HEADERS: [&str; 6] = [
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "x-request-id",
    "retry-after",
    "www-authenticate",
];

/// A web origin as browsers compare them: scheme, lower-case host, port (the scheme's
/// default when absent).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: u16,
}

impl Origin {
    /// Parses `scheme://host[:port]` (http or https; an IPv6 host in brackets). Paths,
    /// queries, user info and the opaque origin `null` are not origins here.
    fn parse(text: &str) -> Option<Origin> {
        let (scheme, rest) = text.trim().split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = default_port(&scheme)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return None;
        }
        let (host, port) = split_authority(rest)?;
        Some(Origin {
            scheme,
            host,
            port: port.unwrap_or(default_port),
        })
    }
}

fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// Splits `host[:port]` (`[v6][:port]`), lower-casing the host and dropping a trailing
/// dot. `None` when the port is not a number or the host is empty.
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(port) => Some(port.parse::<u16>().ok()?),
        None => None,
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    Some((host, port))
}

/// Which origins besides the server's own may call it.
#[derive(Clone, Debug)]
enum AllowedOrigins {
    Any,
    List(Vec<Origin>),
}

/// Checks the browser-facing settings; the message names every bad entry. `*` needs a
/// token: any page could otherwise drive the server's agents.
pub fn check_config(origins: &[String], hosts: &[String], has_token: bool) -> Result<(), String> {
    let mut problems = Vec::new();
    for origin in origins {
        if origin == "*" {
            if !has_token {
                problems.push(
                    "cors_allowed_origins = [\"*\"] lets every web page call this server, so it \
                     needs `token` (set token or OCTO_TOKEN), or list the origins that may call it"
                        .to_owned(),
                );
            }
        } else if Origin::parse(origin).is_none() {
            problems.push(format!(
                "cors_allowed_origins: {origin:?} is not an origin: write scheme://host[:port], \
                 e.g. \"http://localhost:3000\" (http or https, no path)"
            ));
        }
    }
    for host in hosts {
        let valid = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !valid {
            problems.push(format!(
                "allowed_hosts: {host:?} is not a host name: write the name alone, e.g. \
                 \"octo.lan\" (no scheme, no port: every port is served)"
            ));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// The Host, Origin and CORS policy of one server.
#[derive(Clone, Debug)]
pub struct Guard {
    /// Whether the server listens on a loopback address (the Host check applies).
    loopback: bool,
    /// Extra host names served on a loopback bind, lower case.
    hosts: Vec<String>,
    origins: AllowedOrigins,
}

impl Guard {
    /// The policy of a validated configuration (see [`check_config`]).
    pub fn new(config: &Config) -> Guard {
        let origins = if config.cors_allowed_origins.iter().any(|o| o == "*") {
            AllowedOrigins::Any
        } else {
            AllowedOrigins::List(
                config
                    .cors_allowed_origins
                    .iter()
                    .filter_map(|o| Origin::parse(o))
                    .collect(),
            )
        };
        Guard {
            loopback: config.listen.ip().is_loopback(),
            hosts: config
                .allowed_hosts
                .iter()
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
                .collect(),
            origins,
        }
    }

    /// Whether the request may go on; the error says why not and how to allow it.
    pub fn check<B>(&self, request: &Request<B>) -> Result<(), Error> {
        let authority = request_authority(request);
        if self.loopback {
            self.check_host(authority)?;
        }
        self.check_origin(request.headers(), authority)
    }

    fn check_host(&self, authority: Option<&str>) -> Result<(), Error> {
        // No Host at all is not a browser (browsers always send one): nothing to rebind.
        let Some(authority) = authority else {
            return Ok(());
        };
        let host = split_authority(authority).map(|(host, _)| host);
        let served = host.as_deref().is_some_and(|host| {
            host == "localhost"
                || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
                || self.hosts.iter().any(|h| h == host)
        });
        if served {
            return Ok(());
        }
        Err(Error::PermissionDenied {
            reason: HOST_NOT_ALLOWED,
            message: format!(
                "host {authority:?} is not served on this loopback address (a guard against DNS \
                 rebinding): connect through localhost, 127.0.0.1 or [::1], or add the name to \
                 `allowed_hosts` in the config file"
            ),
        })
    }

    fn check_origin(&self, headers: &HeaderMap, authority: Option<&str>) -> Result<(), Error> {
        if matches!(self.origins, AllowedOrigins::Any) {
            return Ok(());
        }
        let Some(origin) = headers.get(header::ORIGIN) else {
            return self.check_fetch_metadata(headers);
        };
        let text = origin.to_str().unwrap_or("");
        if self.allows(origin) || is_same_origin(text, authority) {
            return Ok(());
        }
        let hint = match Origin::parse(text) {
            Some(_) => format!(
                "add \"{}\" to `cors_allowed_origins` in the config file to allow it",
                text.trim_end_matches('/')
            ),
            None => "an opaque origin (a sandboxed frame, a file:// page) cannot be allowed".into(),
        };
        Err(Error::PermissionDenied {
            reason: ORIGIN_NOT_ALLOWED,
            message: format!(
                "origin {text:?} may not call this server: browsers may call Octo only from its \
                 own origin or one listed in `cors_allowed_origins`; {hint}"
            ),
        })
    }

    /// A request without `Origin` that a browser marks cross-site and that is not a
    /// top-level navigation: an `<img>`, `<script>` or `<link>` aimed at the API.
    fn check_fetch_metadata(&self, headers: &HeaderMap) -> Result<(), Error> {
        let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let cross_site = matches!(value("sec-fetch-site"), Some("cross-site" | "same-site"));
        let navigation = matches!(value("sec-fetch-mode"), Some("navigate"));
        if cross_site && !navigation {
            return Err(Error::PermissionDenied {
                reason: ORIGIN_NOT_ALLOWED,
                message: "cross-site requests without an Origin header are refused: call the \
                          API with fetch from an origin listed in `cors_allowed_origins`"
                    .into(),
            });
        }
        Ok(())
    }

    /// Whether a cross-origin `Origin` header value is allowed (not counting the
    /// server's own origin).
    fn allows(&self, origin: &HeaderValue) -> bool {
        match &self.origins {
            AllowedOrigins::Any => true,
            AllowedOrigins::List(list) => origin
                .to_str()
                .ok()
                .and_then(Origin::parse)
                .is_some_and(|origin| list.contains(&origin)),
        }
    }

    /// The CORS layer for the allowed origins: no `Access-Control-Allow-Origin` for any
    /// other (the Origin check has refused those before CORS runs).
    pub fn cors(&self) -> CorsLayer {
        let allow_origin = match &self.origins {
            AllowedOrigins::Any => AllowOrigin::any(),
            AllowedOrigins::List(_) => {
                let guard = self.clone();
                AllowOrigin::predicate(move |origin, _| guard.allows(origin))
            }
        };
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([
                http::Method::GET,
                http::Method::POST,
                http::Method::PATCH,
                http::Method::DELETE,
                http::Method::OPTIONS,
            ])
            .allow_headers(ALLOWED_HEADERS.map(http::HeaderName::from_static))
            .expose_headers(EXPOSED_HEADERS.map(http::HeaderName::from_static))
            .max_age(Duration::from_secs(600))
    }
}

/// The authority the client addressed: h2's `:authority` (or an absolute-form HTTP/1.1
/// target), else the `Host` header; borrowed, since this runs on every request. A `Host`
/// that is not UTF-8 reads as empty, which no check accepts.
fn request_authority<B>(request: &Request<B>) -> Option<&str> {
    if let Some(authority) = request.uri().authority() {
        return Some(authority.as_str());
    }
    request
        .headers()
        .get(header::HOST)
        .map(|v| std::str::from_utf8(v.as_bytes()).unwrap_or(""))
}

/// Whether `origin` names the host and port the request was sent to.
fn is_same_origin(origin: &str, authority: Option<&str>) -> bool {
    let (Some(origin), Some(authority)) = (Origin::parse(origin), authority) else {
        return false;
    };
    let Some((host, port)) = split_authority(authority) else {
        return false;
    };
    host == origin.host && port.unwrap_or(origin.port) == origin.port
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(origins: &[&str], hosts: &[&str], listen: &str) -> Guard {
        let config = Config {
            cors_allowed_origins: origins.iter().map(|o| o.to_string()).collect(),
            allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
            listen: listen.parse().expect("listen"),
            ..Config::default()
        };
        Guard::new(&config)
    }

    fn request(host: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder().uri("/v1/sessions").header("host", host);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("request")
    }

    fn reason(result: Result<(), Error>) -> String {
        match result {
            Ok(()) => "ok".into(),
            Err(err) => err.reason(),
        }
    }

    #[test]
    fn origins_parse_as_browsers_compare_them() {
        let parsed = Origin::parse("HTTP://LocalHost:8080/").expect("origin");
        assert_eq!(
            parsed,
            Origin {
                scheme: "http".into(),
                host: "localhost".into(),
                port: 8080
            }
        );
        assert_eq!(
            Origin::parse("https://a.example").expect("origin").port,
            443
        );
        assert_eq!(Origin::parse("http://[::1]:9").expect("v6").host, "::1");
        for bad in [
            "null",
            "file://",
            "ftp://a.example",
            "http://a.example/path",
            "http://user@a.example",
            "http://a.example:port",
            "a.example",
            "http://",
        ] {
            assert_eq!(Origin::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn loopback_binds_serve_only_loopback_names_and_configured_hosts() {
        let guard = guard(&[], &["octo.lan"], "127.0.0.1:50051");
        for host in [
            "localhost",
            "localhost:50051",
            "LOCALHOST.:1",
            "127.0.0.1:50051",
            "127.9.9.9",
            "[::1]:50051",
            "octo.lan:8080",
        ] {
            assert_eq!(reason(guard.check(&request(host, &[]))), "ok", "{host}");
        }
        for host in [
            "attacker.example:50051",
            "attacker.example",
            "localhost.attacker.example",
            "127.0.0.1.nip.io",
            "10.0.0.1",
            "",
        ] {
            assert_eq!(
                reason(guard.check(&request(host, &[]))),
                HOST_NOT_ALLOWED,
                "{host}"
            );
        }
        let binary = Request::builder()
            .uri("/v1/sessions")
            .header(
                "host",
                HeaderValue::from_bytes(b"localhost\xff").expect("bytes"),
            )
            .body(())
            .expect("request");
        assert_eq!(reason(guard.check(&binary)), HOST_NOT_ALLOWED, "not UTF-8");
        // An h2 request names its authority in the URI.
        let h2 = Request::builder()
            .uri("http://attacker.example:50051/octo.v1.SessionService/ListSessions")
            .body(())
            .expect("request");
        assert_eq!(reason(guard.check(&h2)), HOST_NOT_ALLOWED);
        // A public bind needs a token instead; any Host is served.
        let public = self::guard(&[], &[], "0.0.0.0:50051");
        assert_eq!(
            reason(public.check(&request("octo.example.com", &[]))),
            "ok"
        );
    }

    #[test]
    fn only_the_own_and_listed_origins_pass() {
        let guard = guard(&["http://localhost:3000"], &[], "127.0.0.1:50051");
        let with_origin =
            |origin: &str| reason(guard.check(&request("127.0.0.1:50051", &[("origin", origin)])));
        assert_eq!(with_origin("http://localhost:3000"), "ok");
        assert_eq!(with_origin("http://127.0.0.1:50051"), "ok", "same origin");
        assert_eq!(
            with_origin("https://127.0.0.1:50051"),
            "ok",
            "same host and port"
        );
        for bad in [
            "http://localhost:3001",
            "https://localhost:3000",
            "http://evil.example",
            "http://127.0.0.1:50052",
            "http://127.0.0.1",
            "null",
            "garbage",
        ] {
            assert_eq!(with_origin(bad), ORIGIN_NOT_ALLOWED, "{bad}");
        }
        // No Origin: not a browser's cross-origin request, unless fetch metadata says so.
        assert_eq!(reason(guard.check(&request("localhost", &[]))), "ok");
        let sub_resource = [
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-mode", "no-cors"),
        ];
        assert_eq!(
            reason(guard.check(&request("localhost", &sub_resource))),
            ORIGIN_NOT_ALLOWED
        );
        let navigation = [
            ("sec-fetch-site", "cross-site"),
            ("sec-fetch-mode", "navigate"),
        ];
        assert_eq!(
            reason(guard.check(&request("localhost", &navigation))),
            "ok"
        );
        let typed = [("sec-fetch-site", "none"), ("sec-fetch-mode", "navigate")];
        assert_eq!(reason(guard.check(&request("localhost", &typed))), "ok");
    }

    #[test]
    fn the_refusal_says_how_to_allow_the_origin() {
        let guard = guard(&[], &[], "127.0.0.1:50051");
        let err = guard
            .check(&request(
                "127.0.0.1:1",
                &[("origin", "http://app.example:8000")],
            ))
            .expect_err("refused");
        let text = err.to_string();
        assert!(text.contains("cors_allowed_origins"), "{text}");
        assert!(text.contains("\"http://app.example:8000\""), "{text}");
    }

    #[test]
    fn any_origin_needs_a_token_and_bad_entries_are_named() {
        assert!(check_config(&["*".into()], &[], true).is_ok());
        let err = check_config(&["*".into()], &[], false).expect_err("no token");
        assert!(err.contains("needs `token`"), "{err}");
        let err = check_config(
            &["http://ok.example".into(), "ok.example".into()],
            &["good.lan".into(), "http://bad".into()],
            false,
        )
        .expect_err("bad entries");
        assert!(err.contains("\"ok.example\" is not an origin"), "{err}");
        assert!(err.contains("\"http://bad\" is not a host name"), "{err}");
        assert!(!err.contains("good.lan"), "{err}");
        let any = guard(&["*"], &[], "0.0.0.0:1");
        assert_eq!(
            reason(any.check(&request("x", &[("origin", "http://evil.example")]))),
            "ok"
        );
    }
}
