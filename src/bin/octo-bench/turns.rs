//! Scenarios `turns` and `paced`: turns through `ChatService/Chat` against the fake
//! OpenAI-compatible provider (or, for the baseline, the bare tonic server's Chat).

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::anyhow;
use octo::pb;
use serde_json::json;
use tokio::sync::Mutex;
use tonic::transport::Channel;

use crate::{
    client::{CHAT, LightEvent, create_session, micros, server_stream, text_parts},
    fake::{now_micros, stamp},
    hist::Hist,
    proc::Server,
};

/// One level of the turns scenario.
pub struct TurnsLevel {
    pub concurrency: usize,
    pub turns: u64,
    pub tokens: u64,
    pub wall: Duration,
    pub server_cpu: Duration,
    pub bench_cpu: Duration,
    pub first_token: Hist,
    pub rss_kib: u64,
}

impl TurnsLevel {
    pub fn turns_per_second(&self) -> f64 {
        self.turns as f64 / self.wall.as_secs_f64()
    }

    pub fn json(&self) -> serde_json::Value {
        json!({
            "concurrency": self.concurrency,
            "turns": self.turns,
            "tokens": self.tokens,
            "seconds": self.wall.as_secs_f64(),
            "turns_per_second": self.turns_per_second(),
            "tokens_per_second": self.tokens as f64 / self.wall.as_secs_f64(),
            "server_cpu_ms_per_turn": self.server_cpu.as_secs_f64() * 1000.0 / self.turns as f64,
            "bench_cpu_ms_per_turn": self.bench_cpu.as_secs_f64() * 1000.0 / self.turns as f64,
            "first_token_added": self.first_token.json_ms(),
            "server_rss_kib": self.rss_kib,
        })
    }
}

/// Runs `total` turns of `tokens` tokens from `concurrency` workers; each worker uses a
/// session for `per_session` turns, then a fresh one (history stays realistic).
/// `bare`: the server is the bare tonic baseline (first token measured from the request).
pub async fn run_level(
    server: &Server,
    channels: &[Channel],
    concurrency: usize,
    total: u64,
    per_session: u64,
    tokens: u32,
    bare: bool,
) -> anyhow::Result<TurnsLevel> {
    let turns_each = total.div_ceil(concurrency as u64).max(1);
    let sessions_each = turns_each.div_ceil(per_session) as usize;
    // Sessions first: creating them is not part of the measurement.
    let mut sessions: Vec<Vec<String>> = Vec::with_capacity(concurrency);
    for w in 0..concurrency {
        let channel = &channels[w % channels.len()];
        let mut own = Vec::with_capacity(sessions_each);
        for _ in 0..sessions_each {
            own.push(if bare {
                format!("sessions/{}", octo::domain::new_id())
            } else {
                create_session(channel, "bench-turns").await?
            });
        }
        sessions.push(own);
    }
    let first_token = Arc::new(Mutex::new(Hist::default()));
    let cpu_before = server.cpu()?;
    let bench_before = crate::proc::own_cpu();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for (w, own) in sessions.into_iter().enumerate() {
        let channel = channels[w % channels.len()].clone();
        let first_token = first_token.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = Hist::default();
            let mut tokens_seen = 0u64;
            for t in 0..turns_each {
                let session = &own[(t / per_session) as usize];
                let sent = now_micros();
                let mut stream = server_stream::<_, LightEvent>(
                    channel.clone(),
                    CHAT,
                    pb::ChatRequest {
                        session: session.clone(),
                        parts: text_parts(format!("turn {t} bench:{tokens}:0")),
                        ..Default::default()
                    },
                )
                .await?;
                let mut first = true;
                while let Some(event) = stream.message().await? {
                    if let Some(delta) = &event.text_delta {
                        tokens_seen += 1;
                        if first {
                            first = false;
                            let now = now_micros();
                            let from = if bare {
                                sent
                            } else {
                                stamp(&delta.text).unwrap_or(sent)
                            };
                            hist.record(now.saturating_sub(from));
                        }
                    }
                }
                // Read to the end (the server closes a Chat stream after turn_finished)
                // rather than dropping the stream at turn_finished: a dropped stream is
                // reset, the frames already in flight for it then count as locally reset
                // streams, and h2 closes the connection (ENHANCE_YOUR_CALM) after 1,024.
            }
            first_token.lock().await.merge(&hist);
            anyhow::Ok((turns_each, tokens_seen))
        }));
    }
    let mut turns = 0;
    let mut tokens_total = 0;
    for task in tasks {
        let (t, k) = task.await??;
        turns += t;
        tokens_total += k;
    }
    let wall = started.elapsed();
    let server_cpu = server.cpu()? - cpu_before;
    let bench_cpu = crate::proc::own_cpu() - bench_before;
    if tokens_total < turns * u64::from(tokens) {
        return Err(anyhow!(
            "expected {} tokens, got {tokens_total}",
            turns * u64::from(tokens)
        ));
    }
    let first_token = first_token.lock().await.clone();
    Ok(TurnsLevel {
        concurrency,
        turns,
        tokens: tokens_total,
        wall,
        server_cpu,
        bench_cpu,
        first_token,
        rss_kib: server.rss_kib()?,
    })
}

/// The paced scenario's result.
pub struct Paced {
    pub turns: usize,
    pub rate: u32,
    pub tokens: u32,
    /// Token handed to the socket by the fake provider -> client receipt.
    pub added: Hist,
    /// Event creation in Octo (its timestamp) -> client receipt.
    pub from_event: Hist,
    pub wall: Duration,
    pub server_cpu: Duration,
    pub rss_kib: u64,
}

impl Paced {
    pub fn json(&self) -> serde_json::Value {
        json!({
            "concurrent_turns": self.turns,
            "tokens_per_second_per_turn": self.rate,
            "tokens_per_turn": self.tokens,
            "seconds": self.wall.as_secs_f64(),
            "added_latency_per_token": self.added.json_ms(),
            "event_creation_to_client": self.from_event.json_ms(),
            "server_cpu_percent": self.server_cpu.as_secs_f64() / self.wall.as_secs_f64() * 100.0,
            "server_rss_kib": self.rss_kib,
        })
    }
}

/// `turns` concurrent turns, each streaming `tokens` tokens at `rate` tokens/s.
pub async fn paced(server: &Server, turns: usize, rate: u32, tokens: u32) -> anyhow::Result<Paced> {
    let channels = server.channels(turns.div_ceil(100)).await?;
    let mut sessions = Vec::with_capacity(turns);
    for i in 0..turns {
        sessions.push(create_session(&channels[i % channels.len()], "bench-paced").await?);
    }
    let cpu_before = server.cpu()?;
    let started = Instant::now();
    let peak = crate::proc::PeakRss::start(server.pid);
    let mut tasks = Vec::with_capacity(turns);
    for (i, session) in sessions.into_iter().enumerate() {
        let channel = channels[i % channels.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut added = Hist::default();
            let mut from_event = Hist::default();
            let mut stream = server_stream::<_, LightEvent>(
                channel,
                CHAT,
                pb::ChatRequest {
                    session,
                    parts: text_parts(format!("paced bench:{tokens}:{rate}")),
                    ..Default::default()
                },
            )
            .await?;
            let mut seen = 0u32;
            while let Some(event) = stream.message().await? {
                let now = now_micros();
                if let Some(delta) = &event.text_delta {
                    seen += 1;
                    if let Some(sent) = stamp(&delta.text) {
                        added.record(now.saturating_sub(sent));
                    }
                    from_event.record(now.saturating_sub(micros(&event.time)));
                }
            }
            anyhow::Ok((added, from_event, seen))
        }));
    }
    let mut added = Hist::default();
    let mut from_event = Hist::default();
    for task in tasks {
        let (a, e, seen) = task.await??;
        if seen < tokens {
            return Err(anyhow!("a paced turn streamed {seen} of {tokens} tokens"));
        }
        added.merge(&a);
        from_event.merge(&e);
    }
    let wall = started.elapsed();
    Ok(Paced {
        turns,
        rate,
        tokens,
        added,
        from_event,
        wall,
        server_cpu: server.cpu()? - cpu_before,
        rss_kib: peak.stop(),
    })
}
