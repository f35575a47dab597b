//! Admission: caps on what clients may hold open, so a flood of connections or
//! subscriptions meets a clear RESOURCE_EXHAUSTED instead of exhausting file
//! descriptors or memory.
//!
//! - **Connections** (`max_connections`): a connection accepted beyond the cap is not
//!   served; each request on it is answered RESOURCE_EXHAUSTED (`TOO_MANY_CONNECTIONS`,
//!   gRPC status or JSON with HTTP 429) and the connection is closed after
//!   [`REFUSED_CONNECTION_LIFETIME`].
//! - **Streams** (`max_streams`): server-streaming Octo RPCs (Chat, StreamEvents,
//!   WatchSessions, over gRPC, gRPC-Web and JSON/SSE alike, since all reach the gRPC
//!   service) hold a permit until the response body is dropped; beyond the cap a new one
//!   is answered RESOURCE_EXHAUSTED (`TOO_MANY_STREAMS`) with a retry hint.
//!
//! Permits are semaphore permits: taking one is an atomic operation, nothing waits.

use std::{
    collections::HashSet,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::body::Body;

use crate::domain::Error;

/// How long a connection refused for the cap is kept to answer its requests.
pub const REFUSED_CONNECTION_LIFETIME: Duration = Duration::from_secs(5);

/// The caps and what is held against them. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Admission {
    connections: Arc<Semaphore>,
    streams: Arc<Semaphore>,
    max_connections: usize,
    max_streams: usize,
    /// gRPC paths of the server-streaming RPCs.
    streaming: Arc<HashSet<String>>,
}

impl Admission {
    pub fn new(max_connections: usize, max_streams: usize, streaming: HashSet<String>) -> Self {
        Self {
            connections: Arc::new(Semaphore::new(max_connections)),
            streams: Arc::new(Semaphore::new(max_streams)),
            max_connections,
            max_streams,
            streaming: Arc::new(streaming),
        }
    }

    /// A permit for a new connection, held while it is open; None beyond the cap.
    pub fn connection(&self) -> Option<OwnedSemaphorePermit> {
        self.connections.clone().try_acquire_owned().ok()
    }

    /// The error each request on a connection beyond the cap gets.
    pub fn too_many_connections(&self) -> Error {
        Error::ResourceExhausted {
            reason: crate::domain::reason::TOO_MANY_CONNECTIONS,
            message: format!(
                "this server has {} open connections, its max_connections; retry shortly",
                self.max_connections
            ),
            retry_after: Some(Duration::from_secs(1)),
        }
    }

    fn too_many_streams(&self) -> Error {
        Error::ResourceExhausted {
            reason: crate::domain::reason::TOO_MANY_STREAMS,
            message: format!(
                "this server has {} open streams, its max_streams; close one or retry shortly",
                self.max_streams
            ),
            retry_after: Some(Duration::from_secs(1)),
        }
    }
}

/// Caps server streams on the gRPC service (see the module doc).
#[derive(Clone)]
pub struct StreamCapLayer(pub Admission);

impl<S> tower::Layer<S> for StreamCapLayer {
    type Service = StreamCap<S>;

    fn layer(&self, inner: S) -> Self::Service {
        StreamCap {
            inner,
            admission: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct StreamCap<S> {
    inner: S,
    admission: Admission,
}

impl<S> tower::Service<Request<Body>> for StreamCap<S>
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
        if !self.admission.streaming.contains(request.uri().path()) {
            return Box::pin(self.inner.call(request));
        }
        let Some(permit) = self.admission.streams.clone().try_acquire_owned().ok() else {
            let err = self.admission.too_many_streams();
            tracing::warn!(path = request.uri().path(), reason = %err.reason(), "stream refused");
            let response = crate::api::error::to_status(err).into_http();
            return Box::pin(async move { Ok(response) });
        };
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await?;
            Ok(response.map(|body| {
                Body::new(Permitted {
                    body,
                    _permit: permit,
                })
            }))
        })
    }
}

/// A response body that holds its stream permit until it is dropped.
struct Permitted {
    body: Body,
    _permit: OwnedSemaphorePermit,
}

impl http_body::Body for Permitted {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, tonic::Status>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
