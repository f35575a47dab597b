//! Bearer-token authentication for every protocol (gRPC, gRPC-Web and JSON all reach the
//! gRPC services through this layer), constant-time comparison, and per-peer slowing
//! down of repeated failures. Health checks stay open.

use std::{
    collections::HashMap,
    convert::Infallible,
    future::Future,
    net::IpAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use http::{HeaderMap, Request, Response};
use subtle::ConstantTimeEq;
use tonic::{body::Body, transport::server::TcpConnectInfo};

use crate::domain::Error;

/// Paths that never need a token.
const OPEN_PATH_PREFIXES: &[&str] = &["/grpc.health.v1.Health/"];
/// Failures from one address before responses to it are delayed.
const FREE_FAILURES: u32 = 3;
/// The longest delay of a failed attempt.
const MAX_DELAY: Duration = Duration::from_secs(5);
/// A peer's failure count resets after this long without failures.
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Peers tracked at most; the oldest are forgotten first.
const MAX_TRACKED_PEERS: usize = 10_000;

/// Why the server refuses to start with the configured auth.
pub fn check_startup(
    listen: std::net::SocketAddr,
    token: Option<&str>,
    require_token: bool,
) -> Result<(), String> {
    if token.is_some() {
        return Ok(());
    }
    if !listen.ip().is_loopback() {
        return Err(format!(
            "refusing to listen on {listen} without a token: any host that can reach it could \
             drive agents that run commands here. Set `token` in the config file or OCTO_TOKEN \
             (or pass --token), or listen on a loopback address such as 127.0.0.1."
        ));
    }
    if require_token {
        return Err(
            "require_token is set but no token is configured: set `token` or OCTO_TOKEN".into(),
        );
    }
    Ok(())
}

#[derive(Default)]
struct Failures {
    peers: HashMap<IpAddr, (u32, Instant)>,
}

pub struct Auth {
    token: Option<Vec<u8>>,
    /// What the servers of a cluster present to each other (`PEER_PATH_PREFIX` calls);
    /// without one, no call reaches the peer service.
    cluster_token: Option<Vec<u8>>,
    failures: Mutex<Failures>,
}

/// The internal server-to-server service; its calls carry the cluster token instead
/// of a client's.
pub const PEER_PATH_PREFIX: &str = "/octo.peer.v1.PeerService/";
/// The metadata a peer call carries the cluster token in.
pub const CLUSTER_TOKEN_HEADER: &str = "x-octo-cluster-token";

impl Auth {
    pub fn new(token: Option<&str>) -> Self {
        Self {
            token: token.map(|t| t.as_bytes().to_vec()),
            cluster_token: None,
            failures: Mutex::new(Failures::default()),
        }
    }

    /// Accepts peer calls carrying `token` (a server of a cluster).
    pub fn with_cluster_token(mut self, token: Option<&str>) -> Self {
        self.cluster_token = token.map(|t| t.as_bytes().to_vec());
        self
    }

    /// Checks a peer call's cluster token, as `check` does a client's.
    pub fn check_peer(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<(), (Error, Duration)> {
        let presented = headers
            .get(CLUSTER_TOKEN_HEADER)
            .map(|v| v.as_bytes().to_vec());
        let error = match (&self.cluster_token, presented) {
            (Some(expected), Some(token)) if bool::from(token.ct_eq(expected)) => return Ok(()),
            (None, _) => Error::PermissionDenied {
                reason: crate::domain::reason::NOT_A_CLUSTER,
                message: "this server is not part of a cluster".into(),
            },
            (Some(_), _) => Error::Unauthenticated("the cluster token is not valid".into()),
        };
        let delay = peer.map_or(Duration::ZERO, |ip| self.record_failure(ip));
        Err((error, delay))
    }

    pub fn required(&self) -> bool {
        self.token.is_some()
    }

    /// Checks the request's `authorization: Bearer …`. On failure, returns the error and
    /// how long to hold the answer back.
    pub fn check(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
    ) -> Result<(), (Error, Duration)> {
        let Some(expected) = &self.token else {
            return Ok(());
        };
        let presented = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let error = match presented {
            // ct_eq compares in time independent of where the bytes differ.
            Some(token) if bool::from(token.as_bytes().ct_eq(expected)) => return Ok(()),
            Some(_) => Error::Unauthenticated("the bearer token is not valid".into()),
            None => Error::Unauthenticated(
                "this server requires a token: send `authorization: Bearer <token>`".into(),
            ),
        };
        let delay = peer.map_or(Duration::ZERO, |ip| self.record_failure(ip));
        Err((error, delay))
    }

    fn record_failure(&self, ip: IpAddr) -> Duration {
        let Ok(mut failures) = self.failures.lock() else {
            return MAX_DELAY;
        };
        let now = Instant::now();
        if failures.peers.len() >= MAX_TRACKED_PEERS && !failures.peers.contains_key(&ip) {
            failures
                .peers
                .retain(|_, (_, last)| now.duration_since(*last) < FAILURE_WINDOW);
            if failures.peers.len() >= MAX_TRACKED_PEERS {
                // Still full: everyone unknown is treated as a repeat offender.
                return MAX_DELAY;
            }
        }
        let entry = failures.peers.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= FAILURE_WINDOW {
            entry.0 = 0;
        }
        entry.0 += 1;
        entry.1 = now;
        failure_delay(entry.0)
    }
}

/// No delay for the first few failures, then doubling from 100 ms up to 5 s.
fn failure_delay(failures: u32) -> Duration {
    if failures <= FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (failures - FREE_FAILURES - 1).min(16);
    (Duration::from_millis(100) * 2u32.pow(doublings)).min(MAX_DELAY)
}

/// A tower layer putting [`Auth`] in front of the gRPC services.
#[derive(Clone)]
pub struct AuthLayer {
    auth: Arc<Auth>,
}

impl AuthLayer {
    pub fn new(auth: Arc<Auth>) -> Self {
        Self { auth }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: self.auth.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Arc<Auth>,
}

/// The peer address the connection handler stored on the request.
pub fn peer_ip<B>(request: &Request<B>) -> Option<IpAddr> {
    request
        .extensions()
        .get::<TcpConnectInfo>()
        .and_then(|info| info.remote_addr)
        .map(|addr| addr.ip())
}

impl<S> tower::Service<Request<Body>> for AuthService<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let open = OPEN_PATH_PREFIXES
            .iter()
            .any(|prefix| request.uri().path().starts_with(prefix));
        let verdict = if open {
            Ok(())
        } else if request.uri().path().starts_with(PEER_PATH_PREFIX) {
            self.auth.check_peer(request.headers(), peer_ip(&request))
        } else {
            self.auth.check(request.headers(), peer_ip(&request))
        };
        match verdict {
            Ok(()) => {
                // Take the service that was polled ready; leave a fresh clone behind.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(async move { inner.call(request).await })
            }
            Err((error, delay)) => {
                tracing::warn!(peer = ?peer_ip(&request), path = request.uri().path(), delay_ms = delay.as_millis() as u64, "authentication failed");
                Box::pin(async move {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    let mut response = crate::api::error::to_status(error).into_http::<Body>();
                    response.headers_mut().insert(
                        http::header::WWW_AUTHENTICATE,
                        http::HeaderValue::from_static("Bearer"),
                    );
                    Ok(response)
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            value.parse().expect("header value"),
        );
        headers
    }

    #[test]
    fn only_the_exact_bearer_token_passes() {
        let auth = Auth::new(Some("s3cret-token"));
        assert!(auth.check(&headers("Bearer s3cret-token"), None).is_ok());
        for bad in [
            "Bearer s3cret-toke",
            "Bearer s3cret-token2",
            "Basic s3cret-token",
            "s3cret-token",
        ] {
            assert!(auth.check(&headers(bad), None).is_err(), "{bad}");
        }
        assert!(auth.check(&HeaderMap::new(), None).is_err());
        assert!(Auth::new(None).check(&HeaderMap::new(), None).is_ok());
    }

    #[test]
    fn repeated_failures_from_one_peer_are_delayed_others_are_not() {
        let auth = Auth::new(Some("t"));
        let attacker: IpAddr = "10.0.0.1".parse().expect("ip");
        let other: IpAddr = "10.0.0.2".parse().expect("ip");
        let delays: Vec<Duration> = (0..8)
            .map(|_| {
                auth.check(&headers("Bearer nope"), Some(attacker))
                    .expect_err("fails")
                    .1
            })
            .collect();
        assert_eq!(&delays[..3], &[Duration::ZERO; 3]);
        assert_eq!(delays[3], Duration::from_millis(100));
        assert_eq!(delays[4], Duration::from_millis(200));
        assert!(delays.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(
            auth.check(&headers("Bearer nope"), Some(other))
                .expect_err("fails")
                .1,
            Duration::ZERO
        );
        // A valid token is never delayed.
        assert!(auth.check(&headers("Bearer t"), Some(attacker)).is_ok());
        assert_eq!(failure_delay(100), MAX_DELAY);
    }

    #[test]
    fn startup_refuses_public_address_without_token() {
        let public: std::net::SocketAddr = "0.0.0.0:50051".parse().expect("addr");
        let loopback: std::net::SocketAddr = "127.0.0.1:50051".parse().expect("addr");
        assert!(check_startup(public, None, false).is_err());
        assert!(check_startup(public, Some("t"), false).is_ok());
        assert!(check_startup(loopback, None, false).is_ok());
        assert!(check_startup(loopback, None, true).is_err());
        let v6: std::net::SocketAddr = "[::1]:1".parse().expect("addr");
        assert!(check_startup(v6, None, false).is_ok());
    }
}
