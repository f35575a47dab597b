//! Scenario `fanout`: one session, K subscribers on `StreamEvents`, turns of the mock
//! provider at full speed (or, for the baseline, the bare tonic server broadcasting
//! events of the same shapes).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::anyhow;
use octo::pb;
use serde_json::json;

use crate::{
    client::{CountEvent, STREAM_EVENTS, create_session, micros, server_stream, text_parts},
    fake::now_micros,
    hist::Hist,
    proc::Server,
};

pub struct FanoutLevel {
    pub subscribers: usize,
    pub turns: u32,
    pub events: u64,
    pub wall: Duration,
    /// Event creation -> receipt, every event of every subscriber.
    pub lag: Hist,
    /// Last subscriber done minus first subscriber done.
    pub spread: Duration,
    pub rss_per_stream_kib: f64,
    pub server_cpu: Duration,
    /// This process (the subscribers' decoding) over the same window.
    pub bench_cpu: Duration,
    pub resets: u64,
    pub with_slow: bool,
}

impl FanoutLevel {
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.wall.as_secs_f64()
    }

    pub fn json(&self) -> serde_json::Value {
        json!({
            "subscribers": self.subscribers,
            "with_slow_subscriber": self.with_slow,
            "turns": self.turns,
            "events_delivered": self.events,
            "seconds": self.wall.as_secs_f64(),
            "events_per_second": self.events_per_second(),
            "lag": self.lag.json_ms(),
            "finish_spread_ms": self.spread.as_secs_f64() * 1000.0,
            "rss_per_idle_stream_kib": self.rss_per_stream_kib,
            "server_cpu_seconds": self.server_cpu.as_secs_f64(),
            "bench_cpu_seconds": self.bench_cpu.as_secs_f64(),
            "stream_resets": self.resets,
        })
    }
}

/// Turns so each level delivers about `budget` events (1..=max_turns).
pub fn turns_for(subscribers: usize, tokens: u32, budget: u64, max_turns: u32) -> u32 {
    let per_turn = (u64::from(tokens) + 10) * subscribers as u64;
    (budget / per_turn.max(1)).clamp(1, u64::from(max_turns)) as u32
}

pub async fn run_level(
    server: &Server,
    subscribers: usize,
    turns: u32,
    tokens: u32,
    slow: bool,
    bare: bool,
) -> anyhow::Result<FanoutLevel> {
    let channels = server.channels(subscribers.div_ceil(100)).await?;
    let session = if bare {
        format!("sessions/{}", octo::domain::new_id())
    } else {
        create_session(&channels[0], "bench-fanout").await?
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let rss_before = server.rss_kib()?;
    let ready = Arc::new(AtomicUsize::new(0));
    let last_turn: Arc<std::sync::OnceLock<String>> = Arc::new(std::sync::OnceLock::new());
    let mut tasks = Vec::with_capacity(subscribers);
    for i in 0..subscribers {
        let channel = channels[i % channels.len()].clone();
        let session = session.clone();
        let ready = ready.clone();
        let last_turn = last_turn.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = server_stream::<_, CountEvent>(
                channel,
                STREAM_EVENTS,
                pb::StreamEventsRequest {
                    session,
                    after_sequence: 0,
                },
            )
            .await?;
            let mut lag = Hist::default();
            let mut events = 0u64;
            let mut resets = 0;
            // Finished turns seen; done once the last turn sent is among them (a
            // subscriber reset past some events still ends).
            let mut finished = std::collections::HashSet::new();
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            loop {
                let next = tokio::select! {
                    next = stream.message() => next?,
                    _ = tick.tick() => {
                        if last_turn.get().is_some_and(|l| finished.contains(l)) {
                            break;
                        }
                        continue;
                    }
                };
                let Some(event) = next else { break };
                if event.snapshot.is_some() {
                    ready.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let now = now_micros();
                events += 1;
                lag.record(now.saturating_sub(micros(&event.time)));
                if event.stream_reset.is_some() {
                    resets += 1;
                }
                if let Some(done) = event.turn_finished {
                    finished.insert(done.turn.map(|t| t.name).unwrap_or_default());
                }
                if last_turn.get().is_some_and(|l| finished.contains(l)) {
                    break;
                }
            }
            anyhow::Ok((events, lag, Instant::now(), resets))
        }));
    }
    // Wait until every subscriber has its snapshot: the streams are open and idle.
    let deadline = Instant::now() + Duration::from_secs(120);
    while ready.load(Ordering::Relaxed) < subscribers {
        if Instant::now() > deadline {
            return Err(anyhow!(
                "only {} of {subscribers} subscribers got their snapshot",
                ready.load(Ordering::Relaxed)
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_after = server.rss_kib()?;
    let rss_per_stream_kib = (rss_after as f64 - rss_before as f64) / subscribers as f64;
    // A slow subscriber on its own connection: reads one event every 2 ms.
    let stop_slow = Arc::new(AtomicBool::new(false));
    let slow_task = if slow {
        let channel = crate::proc::connect(&server.url()).await?;
        let session = session.clone();
        let stop = stop_slow.clone();
        Some(tokio::spawn(async move {
            let mut stream = server_stream::<_, CountEvent>(
                channel,
                STREAM_EVENTS,
                pb::StreamEventsRequest {
                    session,
                    after_sequence: 0,
                },
            )
            .await?;
            while !stop.load(Ordering::Relaxed) {
                if stream.message().await?.is_none() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            anyhow::Ok(())
        }))
    } else {
        None
    };
    let cpu_before = server.cpu()?;
    let bench_before = crate::proc::own_cpu();
    let started = Instant::now();
    let mut chat = pb::chat_service_client::ChatServiceClient::new(channels[0].clone());
    let mut last = String::new();
    for t in 0..turns {
        let sent = chat
            .send_message(pb::SendMessageRequest {
                session: session.clone(),
                parts: text_parts(format!("fanout {t} bench:{tokens}:0")),
                ..Default::default()
            })
            .await?
            .into_inner();
        last = sent.turn.map(|t| t.name).unwrap_or_default();
    }
    let _ = last_turn.set(last);
    let mut lag = Hist::default();
    let mut events = 0;
    let mut resets = 0;
    let mut first_done: Option<Instant> = None;
    let mut last_done = started;
    for task in tasks {
        let (e, h, done, r) = task.await??;
        events += e;
        resets += r;
        lag.merge(&h);
        first_done = Some(first_done.map_or(done, |f| f.min(done)));
        last_done = last_done.max(done);
    }
    let server_cpu = server.cpu()? - cpu_before;
    let bench_cpu = crate::proc::own_cpu() - bench_before;
    stop_slow.store(true, Ordering::Relaxed);
    if let Some(task) = slow_task {
        task.abort();
    }
    Ok(FanoutLevel {
        subscribers,
        turns,
        events,
        wall: last_done - started,
        lag,
        spread: last_done - first_done.unwrap_or(last_done),
        rss_per_stream_kib,
        server_cpu,
        bench_cpu,
        resets,
        with_slow: slow,
    })
}
