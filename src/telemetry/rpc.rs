//! The span of each RPC: a tower layer in front of the gRPC services, so gRPC,
//! gRPC-Web and JSON/HTTP calls (both of which reach the services as gRPC) each get
//! exactly one, named `octo.v1.ChatService/SendMessage` and the like (semantic
//! conventions for gRPC servers). A caller's W3C `traceparent` makes it a child of the
//! caller's span, in the caller's trace.
//!
//! The span lives until the response body ends (a server stream: its whole life) and
//! records the gRPC status: from the trailers, from the headers of a trailers-only
//! response, OK at the end of a body without one, CANCELLED when the client leaves
//! first. The server adds this layer only when traces are exported.

use std::{
    collections::HashSet,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
};

use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use opentelemetry::trace::TraceContextExt as _;
use tonic::body::Body;
use tracing::{Instrument as _, Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The gRPC codes a server span reports as errors (the semantic conventions' list: the
/// server's fault, not the client's).
const SERVER_ERRORS: [tonic::Code; 6] = [
    tonic::Code::Unknown,
    tonic::Code::DeadlineExceeded,
    tonic::Code::Unimplemented,
    tonic::Code::Internal,
    tonic::Code::Unavailable,
    tonic::Code::DataLoss,
];

#[derive(Clone)]
pub struct RpcSpanLayer {
    /// Method paths served: span names stay bounded whatever paths clients send.
    methods: Arc<HashSet<String>>,
}

impl RpcSpanLayer {
    /// `methods`: the path (`/octo.v1.ChatService/SendMessage`) of every RPC served.
    pub fn new(methods: impl IntoIterator<Item = String>) -> Self {
        Self {
            methods: Arc::new(methods.into_iter().collect()),
        }
    }
}

impl<S> tower::Layer<S> for RpcSpanLayer {
    type Service = RpcSpanService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcSpanService {
            inner,
            methods: self.methods.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RpcSpanService<S> {
    inner: S,
    methods: Arc<HashSet<String>>,
}

/// The span of a call to `path`, a child of the caller's span when `headers` carry one.
fn rpc_span(methods: &HashSet<String>, path: &str, headers: &http::HeaderMap) -> Span {
    let (service, method) = if methods.contains(path) {
        path.trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("unknown", "unknown"))
    } else {
        ("unknown", "unknown")
    };
    let span = tracing::info_span!(
        "rpc",
        otel.name = %format_args!("{service}/{method}"),
        otel.kind = "server",
        otel.status_code = Empty,
        rpc.system = "grpc",
        rpc.service = service,
        rpc.method = method,
        rpc.grpc.status_code = Empty,
    );
    let caller = super::extract(headers);
    if caller.has_active_span() {
        let _ = span.set_parent(caller);
    }
    span
}

/// Records the call's status on its span, once.
fn record_status(span: &Span, code: tonic::Code) {
    span.record("rpc.grpc.status_code", code as i64);
    if SERVER_ERRORS.contains(&code) {
        span.record("otel.status_code", "ERROR");
    }
}

fn status_in(headers: &http::HeaderMap) -> Option<tonic::Code> {
    let code = headers
        .get("grpc-status")?
        .to_str()
        .ok()?
        .trim()
        .parse::<i32>();
    Some(code.map_or(tonic::Code::Unknown, tonic::Code::from))
}

impl<S> tower::Service<Request<Body>> for RpcSpanService<S>
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
        let span = rpc_span(&self.methods, request.uri().path(), request.headers());
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = inner.call(request).instrument(span.clone()).await?;
            // Trailers-only responses (errors) carry the status in the headers.
            let status = status_in(response.headers());
            if let Some(code) = status {
                record_status(&span, code);
            }
            Ok(response.map(|inner| {
                Body::new(SpannedBody {
                    inner,
                    span: Some(span),
                    recorded: status.is_some(),
                })
            }))
        })
    }
}

/// The response body, polled inside the call's span; the span ends with it.
struct SpannedBody {
    inner: Body,
    /// Dropped when the body ends: the span's end.
    span: Option<Span>,
    /// The status is on the span already.
    recorded: bool,
}

impl HttpBody for SpannedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let Some(span) = this.span.clone() else {
            return Pin::new(&mut this.inner).poll_frame(cx);
        };
        let frame = {
            let _entered = span.enter();
            ready!(Pin::new(&mut this.inner).poll_frame(cx))
        };
        match &frame {
            Some(Ok(frame)) => {
                if let Some(code) = frame.trailers_ref().and_then(status_in) {
                    record_status(&span, code);
                    this.recorded = true;
                }
            }
            Some(Err(status)) => {
                record_status(&span, status.code());
                this.recorded = true;
            }
            None => {
                if !this.recorded {
                    record_status(&span, tonic::Code::Ok);
                    this.recorded = true;
                }
                this.span = None;
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for SpannedBody {
    fn drop(&mut self) {
        // The client left before the body ended.
        if let Some(span) = self.span.take()
            && !self.recorded
        {
            record_status(&span, tonic::Code::Cancelled);
        }
    }
}
