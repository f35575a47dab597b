//! A lean OpenAI-compatible streaming server (HTTP/1.1, hyper) for the bench: Octo's real
//! provider adapter, HTTP client and SSE parser run against it, and it costs little.
//!
//! The last `bench:TOKENS:RATE` marker in the request body says what to stream: TOKENS
//! tokens, at RATE tokens/s (0: full speed). Every stamped token's text is
//! `@<micros since the epoch> `, the time the fake handed it to the socket, so the client
//! computes the latency Octo added. At full speed only the first token is stamped and
//! the others are pre-encoded `tok ` chunks, written `batch` tokens to a write.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, StreamBody};
use hyper::{Request, Response, body::Frame, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, sync::mpsc};
use tokio_stream::wrappers::ReceiverStream;

pub struct Fake {
    pub addr: SocketAddr,
    /// Chat-completion requests served.
    pub requests: Arc<AtomicU64>,
}

const HEAD: &str = r#"data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","model":"bench","choices":[{"index":0,"delta":{"content":""#;
const TAIL: &str = "\"},\"finish_reason\":null}]}\n\n";
const END: &str = concat!(
    r#"data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","model":"bench","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
    "\n\n",
    r#"data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","model":"bench","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":200,"total_tokens":212}}"#,
    "\n\n",
    "data: [DONE]\n\n"
);

pub fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or_default()
}

fn chunk(text: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(HEAD.len() + text.len() + TAIL.len());
    out.extend_from_slice(HEAD.as_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(TAIL.as_bytes());
    out.freeze()
}

fn stamped() -> Bytes {
    chunk(&format!("@{} ", now_micros()))
}

/// Parses the last `bench:TOKENS:RATE` marker.
fn plan(body: &[u8]) -> (u32, u32) {
    let text = String::from_utf8_lossy(body);
    text.rfind("bench:")
        .and_then(|at| {
            let mut fields = text[at + 6..].split(|c: char| !c.is_ascii_digit());
            let tokens = fields.next()?.parse().ok()?;
            let rate = fields.next()?.parse().ok()?;
            Some((tokens, rate))
        })
        .unwrap_or((200, 0))
}

impl Fake {
    pub async fn start(batch: usize) -> anyhow::Result<Fake> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(AtomicU64::new(0));
        let counter = requests.clone();
        let plain = chunk("tok ");
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let plain = plain.clone();
                let counter = counter.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let plain = plain.clone();
                        counter.fetch_add(1, Ordering::Relaxed);
                        async move { Ok::<_, Infallible>(respond(req, plain, batch).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Fake { addr, requests })
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

type Body = StreamBody<ReceiverStream<Result<Frame<Bytes>, Infallible>>>;

async fn respond(
    req: Request<hyper::body::Incoming>,
    plain: Bytes,
    batch: usize,
) -> Response<Body> {
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let (tokens, rate) = plan(&body);
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, Infallible>>(64);
    tokio::spawn(async move {
        if rate == 0 {
            // Full speed: the first token alone and stamped, then `batch` tokens a write.
            if tx.send(Ok(Frame::data(stamped()))).await.is_err() {
                return;
            }
            let mut left = tokens.saturating_sub(1) as usize;
            while left > 0 {
                let n = left.min(batch.max(1));
                left -= n;
                let frame = if n == 1 {
                    plain.clone()
                } else {
                    let mut out = BytesMut::with_capacity(plain.len() * n);
                    for _ in 0..n {
                        out.extend_from_slice(&plain);
                    }
                    out.freeze()
                };
                if tx.send(Ok(Frame::data(frame))).await.is_err() {
                    return;
                }
            }
        } else {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            for _ in 0..tokens {
                tick.tick().await;
                if tx.send(Ok(Frame::data(stamped()))).await.is_err() {
                    return;
                }
            }
        }
        let _ = tx
            .send(Ok(Frame::data(Bytes::from_static(END.as_bytes()))))
            .await;
    });
    Response::builder()
        .header("content-type", "text/event-stream")
        .header("cache-control", "no-cache")
        .body(StreamBody::new(ReceiverStream::new(rx)))
        .unwrap_or_else(|_| Response::new(StreamBody::new(ReceiverStream::new(mpsc::channel(1).1))))
}

/// The send time stamped into a token's text, if any.
pub fn stamp(text: &str) -> Option<u64> {
    text.strip_prefix('@')?.trim_end().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_and_stamps_parse() {
        assert_eq!(plan(b"x bench:10:0 y bench:200:50\"}"), (200, 50));
        assert_eq!(plan(b"nothing"), (200, 0));
        assert_eq!(stamp("@123 "), Some(123));
        assert_eq!(stamp("tok "), None);
    }
}
