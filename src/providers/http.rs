//! What both HTTP adapters share: the client, retries with backoff before the first
//! event, the idle timeout, error bodies, and the server-sent-events framing.

use std::{
    collections::VecDeque,
    hash::BuildHasher,
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use futures::{StreamExt, stream::BoxStream};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::{
    EventStream, ProviderError, ProviderErrorKind, ProviderPolicy, StreamEvent, history::snippet,
};

/// Error bodies are read up to this many bytes.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// The longest event-stream line accepted (a bigger one is a broken stream).
const MAX_LINE: usize = 16 * 1024 * 1024;

/// The HTTP client providers share, with the policy's connect timeout. Redirects are
/// not followed: no model API redirects a request, and reqwest would resend custom key
/// headers (Anthropic's `x-api-key`, a model's extra headers) to whatever host a
/// redirect names; a 3xx is reported as the provider's error instead.
pub fn http_client(policy: &ProviderPolicy) -> Result<reqwest::Client, ProviderError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(policy.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("octo/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            ProviderError::new(
                ProviderErrorKind::Unavailable,
                format!("cannot create the HTTP client: {e}"),
            )
        })
}

/// Where and how a request goes.
pub(crate) struct Endpoint {
    /// For messages, e.g. `Anthropic`.
    pub provider: &'static str,
    pub url: String,
    pub headers: HeaderMap,
}

/// Builds headers from fixed ones, a secret one and the model's extra headers (which
/// may override the fixed ones). Errors never include header values.
pub(crate) fn headers(
    fixed: &[(&'static str, &str)],
    secret: Option<(&'static str, String)>,
    extra: &std::collections::BTreeMap<String, String>,
) -> Result<HeaderMap, ProviderError> {
    let invalid = |what: String| ProviderError::new(ProviderErrorKind::InvalidRequest, what);
    let mut map = HeaderMap::new();
    for (name, value) in fixed {
        let value = HeaderValue::from_str(value)
            .map_err(|_| invalid(format!("header {name} has an invalid value")))?;
        map.insert(HeaderName::from_static(name), value);
    }
    if let Some((name, value)) = secret {
        let mut value = HeaderValue::from_str(&value).map_err(|_| {
            invalid("the API key contains characters not allowed in an HTTP header".into())
        })?;
        value.set_sensitive(true);
        map.insert(HeaderName::from_static(name), value);
    }
    for (name, value) in extra {
        let header = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| invalid(format!("extra header name {name:?} is not valid")))?;
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| invalid(format!("extra header {name} has an invalid value")))?;
        value.set_sensitive(true);
        map.insert(header, value);
    }
    Ok(map)
}

/// One server-sent event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field; empty when absent.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Incremental decoder of the `text/event-stream` framing.
#[derive(Default)]
pub(crate) struct SseDecoder {
    buf: Vec<u8>,
    pos: usize,
    /// Bytes from `pos` up to here hold no line end (not scanned again).
    scanned: usize,
    event: String,
    data: String,
    has_data: bool,
}

impl SseDecoder {
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.scanned = self.scanned.saturating_sub(self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete event, if the buffered bytes hold one.
    pub(crate) fn next_event(&mut self) -> Result<Option<SseEvent>, ProviderError> {
        loop {
            let rest = &self.buf[self.pos..];
            let from = self.scanned.saturating_sub(self.pos).min(rest.len());
            let found = rest[from..]
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
                .map(|i| i + from);
            let Some(end) = found else {
                self.scanned = self.buf.len();
                if rest.len() > MAX_LINE {
                    return Err(ProviderError::new(
                        ProviderErrorKind::Protocol,
                        format!("an event-stream line is longer than {MAX_LINE} bytes"),
                    ));
                }
                return Ok(None);
            };
            let mut next = end + 1;
            if rest[end] == b'\r' {
                match rest.get(end + 1) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    // A `\r` at the end of the buffer may be half of `\r\n`.
                    None => return Ok(None),
                }
            }
            let start = self.pos;
            self.pos += next;
            if let Some(event) = self.line(start, start + end)? {
                return Ok(Some(event));
            }
        }
    }

    /// The body ended: the last event, even without its blank line.
    pub(crate) fn finish(&mut self) -> Result<Option<SseEvent>, ProviderError> {
        if let Some(event) = self.next_event()? {
            return Ok(Some(event));
        }
        let (start, end) = (self.pos, self.buf.len());
        self.pos = end;
        let end = if self.buf[start..end].last() == Some(&b'\r') {
            end - 1
        } else {
            end
        };
        if start < end
            && let Some(event) = self.line(start, end)?
        {
            return Ok(Some(event));
        }
        Ok(self.dispatch())
    }

    fn line(&mut self, start: usize, end: usize) -> Result<Option<SseEvent>, ProviderError> {
        if start == end {
            return Ok(self.dispatch());
        }
        let line = std::str::from_utf8(&self.buf[start..end]).map_err(|_| {
            ProviderError::new(
                ProviderErrorKind::Protocol,
                "the event stream is not valid UTF-8",
            )
        })?;
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => {
                self.event.clear();
                self.event.push_str(value);
            }
            _ => {}
        }
        Ok(None)
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        if !self.has_data {
            self.event.clear();
            return None;
        }
        self.has_data = false;
        Some(SseEvent {
            event: std::mem::take(&mut self.event),
            data: std::mem::take(&mut self.data),
        })
    }
}

/// Turns one wire format's events into [`StreamEvent`]s.
pub(crate) trait WireParser: Send + 'static {
    /// Handles one event, pushing what it yields. Returns true once the response is
    /// complete (its last events pushed).
    fn on_event(
        &mut self,
        event: SseEvent,
        out: &mut VecDeque<StreamEvent>,
    ) -> Result<bool, ProviderError>;

    /// The body ended before `on_event` returned true: push the last events if the
    /// response is complete anyway, else fail.
    fn on_eof(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<(), ProviderError>;
}

/// The error of a data line that is not the JSON it should be.
pub(crate) fn bad_json(provider: &str, data: &str, err: &serde_json::Error) -> ProviderError {
    ProviderError::new(
        ProviderErrorKind::Protocol,
        format!(
            "{provider} sent an event that is not valid JSON ({err}): {}",
            snippet(data, 200)
        ),
    )
}

/// The error of a stream that ended before the model finished.
pub(crate) fn cut_stream(provider: &str) -> ProviderError {
    ProviderError::new(
        ProviderErrorKind::Protocol,
        format!("{provider}: stream ended before the model finished"),
    )
}

/// The decoding state of one response body.
struct Decoding<P> {
    provider: &'static str,
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    decoder: SseDecoder,
    parser: P,
    queue: VecDeque<StreamEvent>,
    idle_timeout: Duration,
    /// Yielded after the queued events; then the stream ends.
    error: Option<ProviderError>,
    done: bool,
}

impl<P: WireParser> Decoding<P> {
    async fn next(&mut self) -> Option<Result<StreamEvent, ProviderError>> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(Ok(event));
            }
            if let Some(error) = self.error.take() {
                return Some(Err(error));
            }
            if self.done {
                return None;
            }
            match self.decoder.next_event() {
                Ok(Some(event)) => {
                    self.handle(event);
                    continue;
                }
                Ok(None) => {}
                Err(e) => {
                    self.fail(e);
                    continue;
                }
            }
            match tokio::time::timeout(self.idle_timeout, self.body.next()).await {
                Err(_) => {
                    let message = format!(
                        "{} sent nothing for {:.1} s (idle timeout)",
                        self.provider,
                        self.idle_timeout.as_secs_f64()
                    );
                    self.fail(ProviderError::new(ProviderErrorKind::Timeout, message));
                }
                Ok(Some(Ok(bytes))) => self.decoder.push(&bytes),
                Ok(Some(Err(e))) => {
                    let message = format!("connection to {} lost: {}", self.provider, describe(&e));
                    self.fail(ProviderError::new(ProviderErrorKind::Unavailable, message));
                }
                Ok(None) => self.end_of_body(),
            }
        }
    }

    fn end_of_body(&mut self) {
        while !self.done {
            match self.decoder.finish() {
                Ok(Some(event)) => self.handle(event),
                Ok(None) => break,
                Err(e) => self.fail(e),
            }
        }
        if !self.done {
            self.done = true;
            if let Err(e) = self.parser.on_eof(&mut self.queue) {
                self.fail(e);
            }
        }
    }

    fn handle(&mut self, event: SseEvent) {
        match self.parser.on_event(event, &mut self.queue) {
            Ok(finished) => self.done |= finished,
            Err(e) => self.fail(e),
        }
    }

    /// Ends the stream with `error`, after the events already queued.
    fn fail(&mut self, error: ProviderError) {
        self.done = true;
        self.error = Some(error);
    }
}

/// Why an attempt failed, and whether another may follow.
struct Failure {
    error: ProviderError,
    retry: bool,
}

/// Sends `body` to the endpoint, retrying connect errors, 429 and 5xx (and an error
/// event before the first real one) with exponential backoff, and returns the event
/// stream once its first event has arrived. Errors before the first event are returned
/// by this call; later ones end the stream.
pub(crate) async fn open_stream<P: WireParser>(
    client: &reqwest::Client,
    policy: &ProviderPolicy,
    endpoint: &Endpoint,
    body: Bytes,
    new_parser: impl Fn() -> P,
) -> Result<EventStream, ProviderError> {
    let max_attempts = policy.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        let failure = match attempt_once(client, policy, endpoint, body.clone(), &new_parser).await
        {
            Ok(stream) => return Ok(stream),
            Err(failure) => failure,
        };
        let mut error = failure.error;
        if !failure.retry || attempt >= max_attempts {
            if attempt > 1 {
                error.message = format!("{} (gave up after {attempt} attempts)", error.message);
            }
            return Err(error);
        }
        let delay = match error.retry_after {
            Some(after) => after.min(policy.max_backoff),
            None => backoff(policy, attempt),
        };
        tracing::warn!(
            provider = endpoint.provider,
            attempt,
            status = error.status,
            delay_ms = delay.as_millis() as u64,
            error = %error.message,
            "model request failed; retrying"
        );
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

async fn attempt_once<P: WireParser>(
    client: &reqwest::Client,
    policy: &ProviderPolicy,
    endpoint: &Endpoint,
    body: Bytes,
    new_parser: &impl Fn() -> P,
) -> Result<EventStream, Failure> {
    let provider = endpoint.provider;
    let send = client
        .post(&endpoint.url)
        .headers(endpoint.headers.clone())
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .body(body)
        .send();
    let response = match tokio::time::timeout(policy.idle_timeout, send).await {
        Err(_) => {
            return Err(Failure {
                error: ProviderError::new(
                    ProviderErrorKind::Timeout,
                    format!(
                        "{provider} did not answer within {:.1} s (idle timeout)",
                        policy.idle_timeout.as_secs_f64()
                    ),
                ),
                retry: false,
            });
        }
        Ok(Err(e)) => return Err(send_failure(endpoint, &e)),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    if !status.is_success() {
        return Err(status_failure(policy, provider, response).await);
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        // Not a stream: an error (some servers answer 200) or a server ignoring `stream`.
        let body = read_bounded(policy, response).await;
        return Err(Failure {
            error: ProviderError {
                kind: ProviderErrorKind::Protocol,
                message: format!(
                    "{provider} answered JSON instead of an event stream: {}",
                    error_message(&body)
                ),
                status: Some(status.as_u16()),
                retry_after: None,
            },
            retry: false,
        });
    }
    tracing::debug!(provider, status = status.as_u16(), "model stream started");
    let mut decoding = Decoding {
        provider,
        body: response.bytes_stream().boxed(),
        decoder: SseDecoder::default(),
        parser: new_parser(),
        queue: VecDeque::new(),
        idle_timeout: policy.idle_timeout,
        error: None,
        done: false,
    };
    let first = match decoding.next().await {
        None => Err(cut_stream(provider)),
        Some(first) => first,
    };
    match first {
        Ok(event) => {
            let rest = futures::stream::unfold(decoding, |mut decoding| async move {
                decoding.next().await.map(|item| (item, decoding))
            });
            Ok(futures::stream::once(async move { Ok(event) })
                .chain(rest)
                .boxed())
        }
        Err(error) => Err(Failure {
            retry: error.is_retryable(),
            error,
        }),
    }
}

fn send_failure(endpoint: &Endpoint, err: &reqwest::Error) -> Failure {
    let target = display_url(&endpoint.url);
    let reason = describe(err);
    if err.is_timeout() {
        Failure {
            error: ProviderError::new(
                ProviderErrorKind::Timeout,
                format!(
                    "timed out connecting to {} at {target}: {reason}",
                    endpoint.provider
                ),
            ),
            retry: true,
        }
    } else if err.is_builder() {
        Failure {
            error: ProviderError::new(
                ProviderErrorKind::InvalidRequest,
                format!(
                    "invalid request to {} at {target}: {reason}",
                    endpoint.provider
                ),
            ),
            retry: false,
        }
    } else {
        Failure {
            error: ProviderError::new(
                ProviderErrorKind::Unavailable,
                format!("cannot reach {} at {target}: {reason}", endpoint.provider),
            ),
            retry: true,
        }
    }
}

/// A reqwest error's description without its URL (shown separately, without query).
fn describe(err: &reqwest::Error) -> String {
    let mut text = String::from(if err.is_connect() {
        "connection failed"
    } else if err.is_timeout() {
        "timed out"
    } else if err.is_body() || err.is_decode() {
        "reading the response failed"
    } else if err.is_request() {
        "request failed"
    } else {
        "error"
    });
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// The URL without its query (which could carry a key).
fn display_url(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// Up to [`MAX_ERROR_BODY`] bytes of a body, each read bounded by the idle timeout.
async fn read_bounded(policy: &ProviderPolicy, mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Ok(Some(chunk))) =
        tokio::time::timeout(policy.idle_timeout, response.chunk()).await
    {
        let room = MAX_ERROR_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_ERROR_BODY {
            break;
        }
    }
    body
}

async fn status_failure(
    policy: &ProviderPolicy,
    provider: &str,
    response: reqwest::Response,
) -> Failure {
    let status = response.status().as_u16();
    let retry_after = retry_after(response.headers());
    let body = read_bounded(policy, response).await;
    let detail = error_message(&body);
    let (kind, retry) = match status {
        401 | 403 => (ProviderErrorKind::Unauthenticated, false),
        408 => (ProviderErrorKind::Timeout, true),
        429 => (ProviderErrorKind::RateLimited, true),
        500..=599 => (ProviderErrorKind::Unavailable, true),
        400..=499 => (ProviderErrorKind::InvalidRequest, false),
        _ => (ProviderErrorKind::Protocol, false),
    };
    let message = if detail.is_empty() {
        format!("HTTP {status} from {provider}")
    } else {
        format!("HTTP {status} from {provider}: {detail}")
    };
    Failure {
        error: ProviderError {
            kind,
            message,
            status: Some(status),
            retry_after,
        },
        retry,
    }
}

/// The provider's message in an error body: `{"error": {"message"}}` (OpenAI,
/// Anthropic), `{"error": "..."}` (Ollama) or `{"message"}`, else the raw text.
pub(crate) fn error_message(body: &[u8]) -> String {
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        let error = &json["error"];
        let found = error["message"]
            .as_str()
            .or_else(|| error.as_str())
            .or_else(|| json["message"].as_str())
            .or_else(|| json["detail"].as_str());
        if let Some(message) = found {
            return snippet(message.trim(), 2000);
        }
    }
    snippet(String::from_utf8_lossy(body).trim(), 2000)
}

/// `Retry-After` (seconds or an HTTP date) or `retry-after-ms`.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers
        .get("retry-after-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|ms| ms.is_finite() && *ms >= 0.0)
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// The delay before attempt `attempt + 1`: exponential from the initial backoff, capped,
/// with up to 20% jitter.
fn backoff(policy: &ProviderPolicy, attempt: u32) -> Duration {
    let exp = 2u32.saturating_pow(attempt.saturating_sub(1).min(20));
    let base = policy
        .initial_backoff
        .saturating_mul(exp)
        .min(policy.max_backoff);
    let random = std::collections::hash_map::RandomState::new().hash_one(attempt);
    let jitter = base.mul_f64((random % 1000) as f64 / 5000.0);
    (base + jitter).min(policy.max_backoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut decoder = SseDecoder::default();
        let mut events = Vec::new();
        for chunk in chunks {
            decoder.push(chunk);
            while let Some(event) = decoder.next_event().expect("valid") {
                events.push(event);
            }
        }
        while let Some(event) = decoder.finish().expect("valid") {
            events.push(event);
        }
        events
    }

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
        }
    }

    #[test]
    fn sse_frames_split_anywhere_decode_the_same() {
        let wire: &[u8] =
            b": comment\r\nevent: a\r\ndata: {\"x\":1}\r\n\r\ndata: one\ndata:two\n\ndata: [DONE]";
        let expected = vec![ev("a", "{\"x\":1}"), ev("", "one\ntwo"), ev("", "[DONE]")];
        assert_eq!(decode_all(&[wire]), expected);
        for split in 1..wire.len() {
            let (a, b) = wire.split_at(split);
            assert_eq!(decode_all(&[a, b]), expected, "split at {split}");
        }
        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        assert_eq!(decode_all(&bytes), expected);
    }

    #[test]
    fn a_long_line_in_small_pieces_decodes() {
        let payload = "x".repeat(100_000);
        let wire = format!("data: {payload}\r\n\r\n");
        let pieces: Vec<&[u8]> = wire.as_bytes().chunks(7).collect();
        assert_eq!(decode_all(&pieces), vec![ev("", &payload)]);
    }

    #[test]
    fn sse_without_data_dispatches_nothing() {
        assert_eq!(decode_all(&[b"event: ping\n\n\n"]), vec![]);
    }

    #[test]
    fn error_messages_are_extracted_from_known_shapes() {
        assert_eq!(
            error_message(br#"{"error":{"message":"bad key","type":"x"}}"#),
            "bad key"
        );
        assert_eq!(
            error_message(
                br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
            ),
            "Overloaded"
        );
        assert_eq!(
            error_message(br#"{"error":"model not found"}"#),
            "model not found"
        );
        assert_eq!(error_message(b"upstream broke\n"), "upstream broke");
    }

    #[test]
    fn retry_after_reads_seconds_dates_and_milliseconds() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
        let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        headers.insert("retry-after", HeaderValue::from_str(&date).expect("header"));
        let after = retry_after(&headers).expect("date");
        assert!(after <= Duration::from_secs(30) && after >= Duration::from_secs(27));
        headers.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(250)));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = ProviderPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..ProviderPolicy::default()
        };
        let first = backoff(&policy, 1);
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(120));
        let third = backoff(&policy, 3);
        assert!(third >= Duration::from_millis(400) && third <= Duration::from_millis(480));
        assert_eq!(backoff(&policy, 30), Duration::from_millis(1000));
    }
}
