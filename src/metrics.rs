//! Prometheus metrics: per-RPC request counts by status code, latency histograms, open
//! server streams and active sessions, rendered at `GET /metrics`. The layer sits in
//! front of the gRPC services, so gRPC, gRPC-Web and JSON calls are all counted once.

use std::{
    collections::HashSet,
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::{Arc, atomic::AtomicI64},
    task::{Context, Poll, ready},
    time::Instant,
};

use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};
use tonic::body::Body;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    method: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

/// The standard `process_*` metrics, read from /proc at each scrape (Linux; elsewhere
/// none are reported).
#[derive(Debug)]
struct ProcessCollector;

impl prometheus_client::collector::Collector for ProcessCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::{
            encoding::EncodeMetric,
            metrics::{TypedMetric, counter::ConstCounter, gauge::ConstGauge},
        };
        let Some(process) = ProcessStats::read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(process.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "User and system CPU time spent, in seconds",
            None,
            ConstCounter::<f64>::TYPE,
        )?)?;
        for (name, help, value) in [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                process.resident_bytes,
            ),
            (
                "process_open_fds",
                "Open file descriptors",
                process.open_fds,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch, in seconds",
                process.start_time_seconds,
            ),
        ] {
            ConstGauge::new(value).encode(encoder.encode_descriptor(
                name,
                help,
                None,
                ConstGauge::<f64>::TYPE,
            )?)?;
        }
        Ok(())
    }
}

/// What /proc says of this process.
struct ProcessStats {
    cpu_seconds: f64,
    resident_bytes: f64,
    open_fds: f64,
    start_time_seconds: f64,
}

impl ProcessStats {
    fn read() -> Option<ProcessStats> {
        // Clock ticks per second and the page size: 100 and 4096 on every Linux
        // platform Octo builds for (sysconf would say the same).
        const TICKS: f64 = 100.0;
        const PAGE: f64 = 4096.0;
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
        let (utime, stime, start_ticks, rss_pages) =
            (field(14)?, field(15)?, field(22)?, field(24)?);
        let boot_time = std::fs::read_to_string("/proc/stat")
            .ok()?
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse::<f64>()
            .ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as f64;
        Some(ProcessStats {
            cpu_seconds: (utime + stime) / TICKS,
            resident_bytes: rss_pages * PAGE,
            open_fds,
            start_time_seconds: boot_time + start_ticks / TICKS,
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

type HistogramFamily = Family<MethodLabels, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.25 ms .. ~8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RpcLabels, Counter>,
    latency: HistogramFamily,
    open_streams: Family<MethodLabels, Gauge>,
    /// Sessions with a live actor; the runtime sets it.
    pub active_sessions: Gauge<i64, AtomicI64>,
    pub live_sessions: Gauge<i64, AtomicI64>,
    /// Webhook deliveries in the outbox by state (of the whole database, so every server
    /// of a cluster reports the same numbers).
    webhook_deliveries: Family<StateLabels, Gauge>,
    /// Method paths served, so labels stay bounded whatever clients send.
    known_methods: HashSet<String>,
    streaming_methods: HashSet<String>,
}

impl Metrics {
    /// `methods` are `(path, server_streaming)` of every RPC served.
    pub fn new(methods: impl IntoIterator<Item = (String, bool)>) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RpcLabels, Counter>::default();
        registry.register(
            "octo_rpc_requests",
            "RPCs handled, by method and gRPC status code",
            requests.clone(),
        );
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "octo_rpc_duration_seconds",
            "Time from request to the end of the response (streams: their whole life)",
            latency.clone(),
        );
        let open_streams = Family::<MethodLabels, Gauge>::default();
        registry.register(
            "octo_open_streams",
            "Server streams currently open, by method",
            open_streams.clone(),
        );
        let active_sessions = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "octo_active_sessions",
            "Sessions with a turn running or queued on this server",
            active_sessions.clone(),
        );
        let live_sessions = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "octo_live_sessions",
            "Sessions with live state on this server: work, subscribers, or idle for less \
             than session_idle_seconds",
            live_sessions.clone(),
        );
        let build_info = Family::<BuildLabels, Gauge>::default();
        registry.register(
            "octo_build",
            "The running build (value 1)",
            build_info.clone(),
        );
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_owned(),
            })
            .set(1);
        registry.register_collector(Box::new(ProcessCollector));
        let webhook_deliveries = Family::<StateLabels, Gauge>::default();
        registry.register(
            "octo_webhook_deliveries",
            "Webhook deliveries in the outbox, by state (pending, delivered, dead)",
            webhook_deliveries.clone(),
        );
        let mut known_methods = HashSet::new();
        let mut streaming_methods = HashSet::new();
        for (path, streaming) in methods {
            if streaming {
                streaming_methods.insert(path.clone());
            }
            known_methods.insert(path);
        }
        Self {
            registry,
            requests,
            latency,
            open_streams,
            active_sessions,
            live_sessions,
            webhook_deliveries,
            known_methods,
            streaming_methods,
        }
    }

    /// Sets the outbox's counts by state.
    pub fn set_webhook_deliveries(&self, counts: crate::domain::outbox::DeliveryCounts) {
        for (state, n) in [
            ("pending", counts.pending),
            ("delivered", counts.delivered),
            ("dead", counts.dead),
        ] {
            self.webhook_deliveries
                .get_or_create(&StateLabels {
                    state: state.to_owned(),
                })
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(err) = encode(&mut out, &self.registry) {
            tracing::error!(error = %err, "cannot encode metrics");
        }
        out
    }

    fn method_label(&self, path: &str) -> String {
        let method = path.trim_start_matches('/');
        if self.known_methods.contains(path) {
            method.to_owned()
        } else {
            "unknown".to_owned()
        }
    }
}

/// Records one call when its response body ends or is dropped.
struct CallRecord {
    metrics: Arc<Metrics>,
    method: String,
    started: Instant,
    streaming: bool,
    code: Option<String>,
    /// The body reached its end (as opposed to being dropped by a departed client).
    completed: bool,
}

impl CallRecord {
    fn new(metrics: Arc<Metrics>, path: &str) -> Self {
        let method = metrics.method_label(path);
        let streaming = metrics.streaming_methods.contains(path);
        if streaming {
            metrics
                .open_streams
                .get_or_create(&MethodLabels {
                    method: method.clone(),
                })
                .inc();
        }
        Self {
            metrics,
            method,
            started: Instant::now(),
            streaming,
            code: None,
            completed: false,
        }
    }

    fn observe_headers(&mut self, headers: &http::HeaderMap) {
        if let Some(code) = headers.get("grpc-status").and_then(|v| v.to_str().ok()) {
            self.code = Some(code_name(code));
        }
    }
}

impl Drop for CallRecord {
    fn drop(&mut self) {
        let code = self
            .code
            .take()
            .unwrap_or_else(|| if self.completed { "OK" } else { "CANCELLED" }.to_owned());
        let labels = MethodLabels {
            method: self.method.clone(),
        };
        self.metrics
            .requests
            .get_or_create(&RpcLabels {
                method: self.method.clone(),
                code,
            })
            .inc();
        self.metrics
            .latency
            .get_or_create(&labels)
            .observe(self.started.elapsed().as_secs_f64());
        if self.streaming {
            self.metrics.open_streams.get_or_create(&labels).dec();
        }
    }
}

/// The canonical name (`NOT_FOUND`) of a `grpc-status` header value, the same form as
/// the `OK` and `CANCELLED` recorded without one.
fn code_name(code: &str) -> String {
    let code = code
        .trim()
        .parse::<i32>()
        .map(tonic::Code::from)
        .unwrap_or(tonic::Code::Unknown);
    crate::api::error::code_name(code).to_owned()
}

/// Response body that reports to its [`CallRecord`] as it ends.
pub struct MeteredBody {
    inner: Body,
    record: Option<CallRecord>,
}

impl HttpBody for MeteredBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let (Some(trailers), Some(record)) = (frame.trailers_ref(), self.record.as_mut())
                {
                    record.observe_headers(trailers);
                }
            }
            Some(Err(_)) => {}
            None => {
                if let Some(mut record) = self.record.take() {
                    record.completed = true;
                }
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

#[derive(Clone)]
pub struct MetricsLayer {
    metrics: Arc<Metrics>,
}

impl MetricsLayer {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for MetricsLayer {
    type Service = MetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub struct MetricsService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> tower::Service<Request<Body>> for MetricsService<S>
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
        let mut record = CallRecord::new(self.metrics.clone(), request.uri().path());
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = inner.call(request).await?;
            // Trailers-only responses (errors) carry the status in the headers.
            record.observe_headers(response.headers());
            Ok(response.map(|inner| {
                Body::new(MeteredBody {
                    inner,
                    record: Some(record),
                })
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_render_with_code_and_bounded_method_labels() {
        let metrics = Arc::new(Metrics::new([
            ("/octo.v1.SessionService/GetSession".to_owned(), false),
            ("/octo.v1.SessionService/WatchSessions".to_owned(), true),
        ]));
        {
            let mut record = CallRecord::new(metrics.clone(), "/octo.v1.SessionService/GetSession");
            let mut headers = http::HeaderMap::new();
            headers.insert("grpc-status", http::HeaderValue::from_static("5"));
            record.observe_headers(&headers);
        }
        drop(CallRecord::new(metrics.clone(), "/evil/../path"));
        let watch = CallRecord::new(metrics.clone(), "/octo.v1.SessionService/WatchSessions");
        let text = metrics.render();
        assert!(
            text.contains(r#"octo_rpc_requests_total{method="octo.v1.SessionService/GetSession",code="NOT_FOUND"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"method="unknown""#), "{text}");
        assert!(
            text.contains(r#"octo_open_streams{method="octo.v1.SessionService/WatchSessions"} 1"#),
            "{text}"
        );
        drop(watch);
        assert!(
            metrics
                .render()
                .contains(r#"octo_open_streams{method="octo.v1.SessionService/WatchSessions"} 0"#)
        );
    }
}
