//! The process's `tracing` subscriber, and OpenTelemetry traces opt-in by the standard
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`).
//!
//! Owns: the subscriber (the log to stderr and, when traces are on, the OpenTelemetry
//! layer), the tracer provider and its flush at shutdown ([`Telemetry::shutdown`]),
//! W3C trace context (`traceparent`) from requests ([`extract`]) and onto outgoing
//! calls ([`inject`]), and the span of each RPC ([`rpc`]).
//!
//! Which spans are exported: exactly those that declare an `otel.kind` field (the RPC,
//! the turn, each model request and each tool call), at INFO. The log never shows them,
//! so its lines are what they were; the exporter sees nothing else (no log events, no
//! other spans). Runtime, providers and tools name only `tracing`: spans whose fields
//! are `otel.*` (the bridge's name/kind/status) and semantic-convention attributes
//! (`gen_ai.*`); the OpenTelemetry types stay here.
//!
//! Invariants: without the endpoint variable there is no exporter, no OpenTelemetry
//! layer and no RPC span layer, and the exported spans' callsites are disabled (each
//! costs one cached interest check). The exporter runs off the request path: spans go
//! to a bounded batch queue (spans beyond it are dropped, never waited for), sent by
//! the SDK's own thread.
//!
//! Environment (the OpenTelemetry SDK's standard variables): `OTEL_SERVICE_NAME`
//! (default `octo`), `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_PROTOCOL` (`grpc`,
//! the default, or `http/protobuf`), `OTEL_EXPORTER_OTLP_HEADERS`, `_TIMEOUT`,
//! `_COMPRESSION`, `OTEL_TRACES_SAMPLER` and `_ARG`, `OTEL_SDK_DISABLED`,
//! `OTEL_TRACES_EXPORTER=none`, and the `_TRACES_` forms of the exporter's variables.

pub mod rpc;

use std::{
    io::IsTerminal,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use anyhow::Context as _;
use opentelemetry::{
    Key, KeyValue,
    propagation::TextMapPropagator,
    trace::{TraceContextExt, TracerProvider as _},
};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _, WithTonicConfig as _};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing::{Metadata, level_filters::LevelFilter, subscriber::Interest};
use tracing_subscriber::{
    EnvFilter, Layer as _,
    filter::FilterExt as _,
    layer::{Context, Filter, SubscriberExt as _},
    util::SubscriberInitExt as _,
};

/// Set once the OpenTelemetry layer is installed: the server adds the RPC span layer.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// How long shutdown waits for the last spans to reach the collector.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether traces are exported by this process.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The tracer provider, kept to flush it at shutdown. Without traces, nothing.
#[must_use = "shut it down when the server stops, or the last spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still queued and stops the exporter (at most 5 s: a collector
    /// that does not answer must not hold the process).
    pub async fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        // The SDK blocks while its thread exports; the export's I/O runs on this
        // runtime, so block a blocking-pool thread, not a worker.
        let done =
            tokio::task::spawn_blocking(move || provider.shutdown_with_timeout(FLUSH_TIMEOUT))
                .await;
        match done {
            Ok(Ok(())) => tracing::debug!("traces flushed"),
            Ok(Err(err)) => tracing::warn!(error = %err, "cannot flush the last traces"),
            Err(err) => tracing::warn!(error = %err, "cannot flush the last traces"),
        }
    }
}

/// The OTLP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Protocol {
    Grpc,
    HttpProtobuf,
}

/// Where and how traces go, when they are on.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Export {
    endpoint: String,
    protocol: Protocol,
}

/// Reads the standard variables (through `var`, so tests need not touch the process's
/// environment). `Ok(None)`: traces are off.
fn export_config(var: impl Fn(&str) -> Option<String>) -> Result<Option<Export>, String> {
    let var = |name: &str| {
        var(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    match var("OTEL_TRACES_EXPORTER").as_deref() {
        None | Some("otlp") => {}
        Some("none") => return Ok(None),
        Some(other) => {
            return Err(format!(
                "OTEL_TRACES_EXPORTER={other} is not supported: Octo exports with otlp (or none)"
            ));
        }
    }
    let Some(endpoint) =
        var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"))
    else {
        return Ok(None);
    };
    let protocol = match var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .as_deref()
    {
        None | Some("grpc") => Protocol::Grpc,
        Some("http/protobuf") => Protocol::HttpProtobuf,
        Some(other) => {
            return Err(format!(
                "OTEL_EXPORTER_OTLP_PROTOCOL={other} is not supported: use grpc or http/protobuf"
            ));
        }
    };
    Ok(Some(Export { endpoint, protocol }))
}

/// Installs the process's subscriber: the log to stderr filtered by `log_filter` and,
/// when the environment asks for traces, the OpenTelemetry layer. A subscriber already
/// installed (by a test, say) is left in place, and then no traces are exported. Call
/// inside the Tokio runtime (the exporters' connections live on it).
pub fn init(log_filter: EnvFilter) -> anyhow::Result<Telemetry> {
    let export = export_config(|name| std::env::var(name).ok())
        .map_err(anyhow::Error::msg)
        .context("OpenTelemetry configuration")?;
    let provider = export.as_ref().map(tracer_provider).transpose()?;
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(log_filter.and(Exported(false)));
    let traces = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("octo"))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_level(false)
            .with_tracked_inactivity(false)
            .with_filter(Exported(true))
    });
    let installed = tracing_subscriber::registry()
        .with(log)
        .with(traces)
        .try_init()
        .is_ok();
    let provider = match provider {
        Some(provider) if !installed => {
            let _ = provider.shutdown();
            None
        }
        provider => provider,
    };
    if let (Some(export), Some(_)) = (&export, &provider) {
        ENABLED.store(true, Ordering::Relaxed);
        tracing::info!(
            endpoint = %export.endpoint,
            protocol = match export.protocol {
                Protocol::Grpc => "grpc",
                Protocol::HttpProtobuf => "http/protobuf",
            },
            "exporting OpenTelemetry traces"
        );
    }
    Ok(Telemetry { provider })
}

fn tracer_provider(export: &Export) -> anyhow::Result<SdkTracerProvider> {
    let is_https = export.endpoint.starts_with("https://");
    let exporter = match export.protocol {
        Protocol::Grpc => {
            let builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
            let builder = if is_https {
                builder.with_tls_config(
                    opentelemetry_otlp::tonic_types::transport::ClientTlsConfig::new()
                        .with_native_roots(),
                )
            } else {
                builder
            };
            builder.build()
        }
        Protocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
            .with_http_client(client::OnTokio::new(export_timeout())?)
            .build(),
    }
    .with_context(|| format!("the OTLP exporter to {}", export.endpoint))?;
    // The SDK reads OTEL_TRACES_SAMPLER (default: parent-based, always on), and
    // OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES for the resource.
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource())
        .build())
}

/// The environment's resource, named `octo` unless it says otherwise.
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&Key::new("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    let mut builder = Resource::builder();
    if !named {
        builder = builder.with_service_name("octo");
    }
    if detected.get(&Key::new("service.version")).is_none() {
        builder =
            builder.with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    }
    builder.build()
}

/// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` or `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds),
/// default 10 s: the HTTP client enforces it (the gRPC exporter reads it itself).
fn export_timeout() -> Duration {
    [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .iter()
    .find_map(|name| std::env::var(name).ok()?.trim().parse::<u64>().ok())
    .map_or(Duration::from_secs(10), Duration::from_millis)
}

/// The W3C trace context a request carries (`traceparent`, `tracestate`); an empty
/// context when it carries none or a malformed one.
pub fn extract(headers: &http::HeaderMap) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers))
}

/// Puts the current span's trace context on an outgoing request (a call to another
/// server of the cluster), so its RPC span joins this trace. Nothing when traces are
/// off or no exported span is current.
pub fn inject(headers: &mut http::HeaderMap) {
    if !enabled() {
        return;
    }
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let context = tracing::Span::current().context();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new()
            .inject_context(&context, &mut opentelemetry_http::HeaderInjector(headers));
    }
}

/// Whether `meta` is a span meant for OpenTelemetry: one that declares `otel.kind`.
fn is_exported(meta: &Metadata<'_>) -> bool {
    meta.is_span() && meta.fields().field("otel.kind").is_some()
}

/// Lets through only the exported spans (`Exported(true)`, the OpenTelemetry layer's
/// filter) or everything else (`Exported(false)`, the log's). Decided once per
/// callsite, from its metadata.
struct Exported(bool);

impl<S> Filter<S> for Exported {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        is_exported(meta) == self.0
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        if is_exported(meta) == self.0 {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        // Exported spans are INFO; the rest is for the log's own filter to say.
        Some(if self.0 {
            LevelFilter::INFO
        } else {
            LevelFilter::TRACE
        })
    }
}

/// The HTTP/protobuf exporter's client: the server's reqwest, run on the Tokio runtime
/// (the SDK's export thread is not a Tokio thread, so the request is spawned there and
/// the thread waits for its answer).
mod client {
    use std::time::Duration;

    use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

    #[derive(Debug)]
    pub(super) struct OnTokio {
        client: reqwest::Client,
        runtime: tokio::runtime::Handle,
    }

    impl OnTokio {
        pub(super) fn new(timeout: Duration) -> anyhow::Result<Self> {
            let client = reqwest::Client::builder()
                .timeout(timeout)
                .connect_timeout(timeout.min(Duration::from_secs(10)))
                .build()?;
            Ok(Self {
                client,
                runtime: tokio::runtime::Handle::try_current()?,
            })
        }
    }

    /// Bigger answers are cut: a collector's answer is a few bytes of partial-success
    /// counts.
    const MAX_RESPONSE_BYTES: usize = 64 * 1024;

    #[async_trait::async_trait]
    impl HttpClient for OnTokio {
        async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
            let request = reqwest::Request::try_from(request.map(reqwest::Body::from))?;
            let client = self.client.clone();
            self.runtime
                .spawn(async move {
                    let mut response = client.execute(request).await?;
                    let mut answer = Response::builder().status(response.status());
                    if let Some(headers) = answer.headers_mut() {
                        *headers = std::mem::take(response.headers_mut());
                    }
                    let mut body = Vec::new();
                    while let Some(chunk) = response.chunk().await? {
                        let room = MAX_RESPONSE_BYTES.saturating_sub(body.len());
                        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    }
                    Ok::<_, HttpError>(answer.body(Bytes::from(body))?)
                })
                .await?
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Option<Export>, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        export_config(|name| vars.get(name).cloned())
    }

    #[test]
    fn traces_are_off_without_an_endpoint() {
        assert_eq!(config(&[]), Ok(None));
        assert_eq!(config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]), Ok(None));
        assert_eq!(
            config(&[
                ("OTEL_SERVICE_NAME", "octo-prod"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            ]),
            Ok(None)
        );
    }

    #[test]
    fn the_endpoint_turns_traces_on_with_grpc_by_default() {
        let on = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")]);
        assert_eq!(
            on,
            Ok(Some(Export {
                endpoint: "http://collector:4317".into(),
                protocol: Protocol::Grpc
            }))
        );
        let traces_only = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://all:4318"),
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://traces:4318/v1/traces",
            ),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ]);
        assert_eq!(
            traces_only,
            Ok(Some(Export {
                endpoint: "http://traces:4318/v1/traces".into(),
                protocol: Protocol::HttpProtobuf
            }))
        );
    }

    #[test]
    fn disabled_or_unsupported_settings_say_so() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317");
        assert_eq!(config(&[endpoint, ("OTEL_SDK_DISABLED", "true")]), Ok(None));
        assert_eq!(
            config(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")]),
            Ok(None)
        );
        let json = config(&[endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]);
        assert!(json.unwrap_err().contains("http/json"));
        let zipkin = config(&[endpoint, ("OTEL_TRACES_EXPORTER", "zipkin")]);
        assert!(zipkin.unwrap_err().contains("zipkin"));
    }

    #[test]
    fn a_traceparent_is_extracted_and_garbage_is_not() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            http::HeaderValue::from_static(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        );
        let context = extract(&headers);
        let span = context.span();
        let remote = span.span_context();
        assert!(remote.is_valid() && remote.is_remote());
        assert_eq!(
            remote.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        headers.insert("traceparent", http::HeaderValue::from_static("00-zz-zz-01"));
        assert!(!extract(&headers).span().span_context().is_valid());
    }
}
