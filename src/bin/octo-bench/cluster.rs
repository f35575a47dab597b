//! Scenario `cluster`: 1, 2 and 3 `octo serve` processes on one Postgres (a throwaway
//! one started by the bench, `pg.rs`, or `--database-url`), a fresh database per server
//! count, every server a child process measured from /proc.
//!
//! Per server count (`--servers`):
//! - **turns**: `--cluster-concurrency` workers run `--cluster-turns` turns through
//!   `ChatService/Chat` against the OpenAI-compatible fake, like `turns`. Sessions are
//!   created round-robin over the servers and made live on the server that created them
//!   (a one-token warm-up turn there, not measured), so that server owns them. Turn `t`
//!   of a session owned by server `o` is sent to server `(o + t) % n`: about (n-1)/n of
//!   the turns go through a non-owner (the fraction is reported). Measured: turns/s,
//!   each server's CPU over the level divided by the level's turns (their sum is the
//!   cluster's CPU per turn), Postgres' CPU per turn when the bench started it, and the
//!   first-token latency Octo added (fake send time stamped into the token -> client
//!   receipt), overall and split into turns sent to the owner and to a non-owner. The
//!   fake counts its requests: each measured turn must reach it exactly once.
//! - **hop** (2 servers or more): one session owned by server 0, subscribed with
//!   `StreamEvents` on the owner and on server 1 at once; `--hop-turns` paced turns
//!   (`--hop-tokens` tokens at `--hop-rate` tokens/s, so queueing does not blur the hop)
//!   sent by `SendMessage` alternately to the owner (local) and to server 1 (forwarded).
//!   Per event sequence number seen by both subscribers: receipt on the non-owner minus
//!   receipt on the owner (µs; the added latency of one relay hop), and the
//!   `SendMessage` latency local vs forwarded.
//!
//! The totals cannot scale on a machine with few shared cores (all servers, Postgres,
//! the fake and the clients share them): read the per-server CPU per turn and the hop
//! cost, not turns/s, as the cluster's cost.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow, bail};
use octo::pb;
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};
use tonic::transport::Channel;

use crate::{
    client::{
        CHAT, LightEvent, OctoSetup, STREAM_EVENTS, create_session, server_stream, text_parts,
    },
    fake::{Fake, now_micros, stamp},
    hist::Hist,
    pg::{self, Postgres},
    proc::{Server, connect},
};

/// Every server of the bench's clusters uses this (the cluster token must be 32+
/// printable characters).
const CLUSTER_TOKEN: &str = "octo-bench-cluster-token-not-a-secret-0123456789";

/// What the scenario runs.
pub struct ClusterSizes {
    pub servers: Vec<usize>,
    pub concurrency: usize,
    pub turns: u64,
    pub per_session: u64,
    pub tokens: u32,
    pub hop_turns: usize,
    pub hop_tokens: u32,
    pub hop_rate: u32,
    /// An existing Postgres to create the databases on, instead of a throwaway one.
    pub database_url: Option<String>,
}

/// Where the databases are made.
enum Database {
    Own(Postgres),
    External(String),
}

impl Database {
    fn admin_url(&self) -> String {
        match self {
            Database::Own(pg) => pg.url("postgres"),
            Database::External(url) => url.clone(),
        }
    }

    fn cpu(&self) -> Option<Duration> {
        match self {
            Database::Own(pg) => Some(pg.cpu()),
            Database::External(_) => None,
        }
    }
}

/// Runs every server count; `setup(name)` is the bench's Octo setup for a scratch dir.
pub async fn run(
    sizes: &ClusterSizes,
    fake: &Fake,
    setup: impl Fn(&str) -> OctoSetup,
) -> anyhow::Result<Value> {
    let database = match &sizes.database_url {
        Some(url) => Database::External(url.clone()),
        None => Database::Own(Postgres::start().await?),
    };
    let mut levels = Vec::new();
    let mut hops = Vec::new();
    let result = async {
        for &n in &sizes.servers {
            if n == 0 {
                bail!("--servers: a cluster has at least one server");
            }
            let name = format!("octo_bench_{}_{n}", std::process::id());
            let admin = database.admin_url();
            let url = pg::create_database(&admin, &name).await?;
            let setups: Vec<OctoSetup> =
                (0..n).map(|i| setup(&format!("cluster-{n}-{i}"))).collect();
            let mut servers = Vec::with_capacity(n);
            for s in &setups {
                servers.push(start(s, &url).await?);
            }
            let outcome = async {
                let level = turns_level(&servers, &database, fake, sizes).await?;
                levels.push(level);
                if n >= 2 {
                    let mut hop = hop(&servers[0], &servers[1], sizes).await?;
                    hop["servers"] = json!(n);
                    hops.push(hop);
                }
                anyhow::Ok(())
            }
            .await;
            for server in servers {
                server.stop().await;
            }
            for s in &setups {
                let _ = std::fs::remove_dir_all(&s.dir);
            }
            pg::drop_database(&admin, &name).await;
            outcome?;
        }
        anyhow::Ok(())
    }
    .await;
    if let Database::Own(pg) = database {
        tokio::task::spawn_blocking(move || pg.stop()).await?;
    }
    result?;
    Ok(json!({
        "postgres": if sizes.database_url.is_some() { "external (--database-url)" } else { "throwaway, fsync=off" },
        "tokens_per_turn": sizes.tokens,
        "levels": levels,
        "hop": hops,
    }))
}

/// One server of a cluster on `url`.
async fn start(setup: &OctoSetup, url: &str) -> anyhow::Result<Server> {
    setup.write_config()?;
    let path = setup.config_path();
    let rest = std::fs::read_to_string(&path)?;
    // Top-level keys go before the config's tables. Sessions stay live (and owned)
    // for the whole level.
    std::fs::write(
        &path,
        format!(
            "database_url = {url:?}\ncluster_token = {CLUSTER_TOKEN:?}\nsession_idle_seconds = 3600\n{rest}"
        ),
    )?;
    crate::client::start_octo(&setup.octo, &path, &setup.data_dir())
        .await
        .with_context(|| format!("starting a cluster server on {}", pg::redact(url)))
}

/// Reads a Chat stream to its end; the first-token latency Octo added, and the tokens.
async fn chat(channel: Channel, session: &str, text: String) -> anyhow::Result<(Option<u64>, u64)> {
    let mut stream = server_stream::<_, LightEvent>(
        channel,
        CHAT,
        pb::ChatRequest {
            session: session.to_owned(),
            parts: text_parts(text),
            ..Default::default()
        },
    )
    .await?;
    let mut first = None;
    let mut tokens = 0;
    // Read to the end (the server closes a Chat stream after turn_finished): see turns.rs.
    while let Some(event) = stream.message().await? {
        if let Some(delta) = &event.text_delta {
            tokens += 1;
            if first.is_none() {
                let now = now_micros();
                first = Some(stamp(&delta.text).map_or(0, |sent| now.saturating_sub(sent)));
            }
        }
    }
    Ok((first, tokens))
}

#[derive(Default)]
struct Firsts {
    all: Hist,
    local: Hist,
    forwarded: Hist,
}

async fn turns_level(
    servers: &[Server],
    database: &Database,
    fake: &Fake,
    sizes: &ClusterSizes,
) -> anyhow::Result<Value> {
    let n = servers.len();
    let concurrency = sizes.concurrency.max(1);
    let per_session = sizes.per_session.max(1);
    let tokens = sizes.tokens;
    let mut channels = Vec::with_capacity(n);
    for server in servers {
        channels.push(server.channels(concurrency.div_ceil(100)).await?);
    }
    let turns_each = sizes.turns.div_ceil(concurrency as u64).max(1);
    let sessions_each = turns_each.div_ceil(per_session) as usize;
    // Sessions round-robin over the servers, each made live (owned) where it was made.
    let mut sessions: Vec<Vec<(String, usize)>> = Vec::with_capacity(concurrency);
    let mut made = 0usize;
    for w in 0..concurrency {
        let mut own = Vec::with_capacity(sessions_each);
        for _ in 0..sessions_each {
            let owner = made % n;
            made += 1;
            let channel = &channels[owner][w % channels[owner].len()];
            let session = create_session(channel, "bench-cluster").await?;
            chat(channel.clone(), &session, "warm-up bench:1:0".into()).await?;
            own.push((session, owner));
        }
        sessions.push(own);
    }
    let firsts = Arc::new(Mutex::new(Firsts::default()));
    let requests_before = fake.requests();
    let cpu_before = servers
        .iter()
        .map(Server::cpu)
        .collect::<anyhow::Result<Vec<_>>>()?;
    let pg_before = database.cpu();
    let bench_before = crate::proc::own_cpu();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for (w, own) in sessions.into_iter().enumerate() {
        let channels: Vec<Channel> = channels.iter().map(|c| c[w % c.len()].clone()).collect();
        let firsts = firsts.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Firsts::default();
            let (mut tokens_seen, mut forwarded) = (0u64, 0u64);
            for t in 0..turns_each {
                let (session, owner) = &own[(t / per_session) as usize];
                let via = (owner + t as usize) % channels.len();
                let (first, seen) = chat(
                    channels[via].clone(),
                    session,
                    format!("turn {t} bench:{tokens}:0"),
                )
                .await?;
                tokens_seen += seen;
                if let Some(first) = first {
                    mine.all.record(first);
                    if via == *owner {
                        mine.local.record(first);
                    } else {
                        mine.forwarded.record(first);
                    }
                }
                if via != *owner {
                    forwarded += 1;
                }
            }
            let mut all = firsts.lock().await;
            all.all.merge(&mine.all);
            all.local.merge(&mine.local);
            all.forwarded.merge(&mine.forwarded);
            anyhow::Ok((turns_each, tokens_seen, forwarded))
        }));
    }
    let (mut turns, mut tokens_total, mut forwarded) = (0, 0, 0);
    for task in tasks {
        let (t, k, f) = task.await??;
        turns += t;
        tokens_total += k;
        forwarded += f;
    }
    let wall = started.elapsed();
    let bench_cpu = crate::proc::own_cpu() - bench_before;
    let requests = fake.requests() - requests_before;
    let mut cpu = Vec::with_capacity(n);
    for (server, before) in servers.iter().zip(&cpu_before) {
        cpu.push(server.cpu()? - *before);
    }
    let pg_cpu = match (pg_before, database.cpu()) {
        (Some(before), Some(after)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    if tokens_total < turns * u64::from(tokens) {
        bail!(
            "{n} servers: expected {} tokens, got {tokens_total}",
            turns * u64::from(tokens)
        );
    }
    if requests != turns {
        bail!(
            "{n} servers: {turns} turns but the provider got {requests} requests (each turn must run exactly once)"
        );
    }
    let per_turn = |d: Duration| d.as_secs_f64() * 1000.0 / turns as f64;
    let mut rss = Vec::with_capacity(n);
    for server in servers {
        rss.push(server.rss_kib()?);
    }
    let firsts = firsts.lock().await;
    Ok(json!({
        "servers": n,
        "concurrency": concurrency,
        "turns": turns,
        "forwarded_turns": forwarded,
        "forwarded_fraction": forwarded as f64 / turns as f64,
        "tokens": tokens_total,
        "seconds": wall.as_secs_f64(),
        "turns_per_second": turns as f64 / wall.as_secs_f64(),
        "tokens_per_second": tokens_total as f64 / wall.as_secs_f64(),
        "server_cpu_ms_per_turn": cpu.iter().map(|d| per_turn(*d)).collect::<Vec<_>>(),
        "cluster_cpu_ms_per_turn": per_turn(cpu.iter().sum()),
        "postgres_cpu_ms_per_turn": pg_cpu.map(per_turn),
        "bench_cpu_ms_per_turn": per_turn(bench_cpu),
        "provider_requests": requests,
        "first_token_added": firsts.all.json_ms(),
        "first_token_added_owner": firsts.local.json_ms(),
        "first_token_added_non_owner": firsts.forwarded.json_ms(),
        "server_rss_kib": rss,
    }))
}

/// Receipt time of each event sequence one subscriber saw while measuring.
type Receipts = HashMap<i64, u64>;

/// Subscribes to `session` on `channel`; once `measuring`, records each event's receipt
/// time, and reports each turn_finished on `finished`. Ends after `turns` of them.
async fn subscriber(
    channel: Channel,
    session: String,
    turns: usize,
    measuring: Arc<AtomicBool>,
    ready: mpsc::Sender<()>,
    finished: Option<mpsc::Sender<()>>,
) -> anyhow::Result<(Receipts, u64)> {
    let mut stream = server_stream::<_, LightEvent>(
        channel,
        STREAM_EVENTS,
        pb::StreamEventsRequest {
            session,
            after_sequence: 0,
        },
    )
    .await?;
    let mut receipts = Receipts::new();
    let mut resets = 0;
    let mut done = 0;
    let mut first = true;
    while let Some(event) = stream.message().await? {
        let now = now_micros();
        if first {
            first = false;
            let _ = ready.send(()).await;
        }
        if event.stream_reset.is_some() {
            resets += 1;
            continue;
        }
        if event.snapshot.is_some() || !measuring.load(Ordering::Acquire) {
            continue;
        }
        receipts.insert(event.sequence, now);
        if event.turn_finished.is_some() {
            done += 1;
            if let Some(finished) = &finished {
                let _ = finished.send(()).await;
            }
            if done == turns {
                break;
            }
        }
    }
    if done < turns {
        bail!("a hop subscriber's stream ended after {done} of {turns} turns");
    }
    Ok((receipts, resets))
}

/// The hop: one session owned by `owner`, streamed from it and from `other` at once.
async fn hop(owner: &Server, other: &Server, sizes: &ClusterSizes) -> anyhow::Result<Value> {
    let turns = sizes.hop_turns.max(1);
    let a = connect(&owner.url()).await?;
    let b = connect(&other.url()).await?;
    let session = create_session(&a, "bench-hop").await?;
    chat(a.clone(), &session, "warm-up bench:1:0".into()).await?;
    let measuring = Arc::new(AtomicBool::new(false));
    let (ready_tx, mut ready_rx) = mpsc::channel(2);
    let (finished_tx, mut finished_rx) = mpsc::channel(turns);
    let on_owner = tokio::spawn(subscriber(
        a.clone(),
        session.clone(),
        turns,
        measuring.clone(),
        ready_tx.clone(),
        Some(finished_tx),
    ));
    let on_other = tokio::spawn(subscriber(
        b.clone(),
        session.clone(),
        turns,
        measuring.clone(),
        ready_tx,
        None,
    ));
    for _ in 0..2 {
        tokio::time::timeout(Duration::from_secs(10), ready_rx.recv())
            .await
            .context("a hop subscriber got no snapshot")?;
    }
    measuring.store(true, Ordering::Release);
    let mut send_local = Hist::default();
    let mut send_forwarded = Hist::default();
    let (tokens, rate) = (sizes.hop_tokens, sizes.hop_rate);
    for i in 0..turns {
        let (channel, hist) = if i % 2 == 0 {
            (&a, &mut send_local)
        } else {
            (&b, &mut send_forwarded)
        };
        let mut chat = pb::chat_service_client::ChatServiceClient::new(channel.clone());
        let sent = Instant::now();
        chat.send_message(pb::SendMessageRequest {
            session: session.clone(),
            parts: text_parts(format!("hop {i} bench:{tokens}:{rate}")),
            ..Default::default()
        })
        .await?;
        hist.record(sent.elapsed().as_micros() as u64);
        tokio::time::timeout(Duration::from_secs(30), finished_rx.recv())
            .await
            .context("a hop turn did not finish within 30 s")?
            .ok_or_else(|| anyhow!("the owner's hop subscriber ended early"))?;
    }
    let (owner_seen, owner_resets) = tokio::time::timeout(Duration::from_secs(30), on_owner)
        .await
        .context("the owner's hop stream")???;
    let (other_seen, other_resets) = tokio::time::timeout(Duration::from_secs(30), on_other)
        .await
        .context("the non-owner's hop stream")???;
    let mut added: Vec<i64> = Vec::with_capacity(owner_seen.len());
    let mut missing = 0u64;
    for (sequence, at_owner) in &owner_seen {
        match other_seen.get(sequence) {
            Some(at_other) => added.push(*at_other as i64 - *at_owner as i64),
            None => missing += 1,
        }
    }
    added.sort_unstable();
    let pick = |p: f64| -> Option<i64> {
        let rank = ((p / 100.0) * added.len() as f64).ceil().max(1.0) as usize;
        added.get(rank - 1).copied()
    };
    let mean = added.iter().sum::<i64>() as f64 / added.len().max(1) as f64;
    Ok(json!({
        "turns": turns,
        "tokens_per_turn": tokens,
        "tokens_per_second": rate,
        "events_compared": added.len(),
        "events_missing_on_non_owner": missing,
        "events_only_on_non_owner": other_seen.keys().filter(|s| !owner_seen.contains_key(s)).count(),
        "stream_resets": owner_resets + other_resets,
        "hop_added_us": {
            "p50": pick(50.0),
            "p99": pick(99.0),
            "min": added.first(),
            "max": added.last(),
            "mean": mean,
        },
        "send_message_owner": send_local.json_ms(),
        "send_message_non_owner": send_forwarded.json_ms(),
    }))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// A histogram's `key` in ms, or `-` when it recorded nothing (no forwarded turns with
/// one server); a missing number (Postgres CPU with `--database-url`) is `-` too.
fn cell(v: &Value, key: &str) -> String {
    if v["count"].as_u64() == Some(0) || v[key].is_null() {
        "-".into()
    } else {
        format!("{:.3}", f(&v[key]))
    }
}

/// The scenario's tables.
pub fn print(r: &Value) {
    println!(
        "\n== cluster (servers on one Postgres, {}; OpenAI-compatible fake provider)",
        r["postgres"].as_str().unwrap_or_default()
    );
    println!(
        "{:>4} {:>5} {:>6} {:>6} {:>8} {:>10} {:>17} {:>8} {:>10} {:>10} {:>10} {:>10}",
        "srv",
        "conc",
        "turns",
        "fwd %",
        "turns/s",
        "cluster ms",
        "per server ms/t",
        "pg ms/t",
        "1st p50 ms",
        "1st p99 ms",
        "fwd p50",
        "fwd p99"
    );
    for l in r["levels"].as_array().into_iter().flatten() {
        let per_server: Vec<String> = l["server_cpu_ms_per_turn"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|v| format!("{:.2}", f(v)))
            .collect();
        println!(
            "{:>4} {:>5} {:>6} {:>6.0} {:>8.1} {:>10.3} {:>17} {:>8} {:>10.3} {:>10.3} {:>10} {:>10}",
            l["servers"].as_u64().unwrap_or(0),
            l["concurrency"].as_u64().unwrap_or(0),
            l["turns"].as_u64().unwrap_or(0),
            f(&l["forwarded_fraction"]) * 100.0,
            f(&l["turns_per_second"]),
            f(&l["cluster_cpu_ms_per_turn"]),
            per_server.join("/"),
            cell(l, "postgres_cpu_ms_per_turn"),
            f(&l["first_token_added"]["p50_ms"]),
            f(&l["first_token_added"]["p99_ms"]),
            cell(&l["first_token_added_non_owner"], "p50_ms"),
            cell(&l["first_token_added_non_owner"], "p99_ms"),
        );
    }
    let hops = r["hop"]
        .as_array()
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    if hops.is_empty() {
        return;
    }
    println!(
        "\n{:>4} {:>7} {:>15} {:>15} {:>8} {:>7}   {:>24} {:>24}",
        "srv",
        "events",
        "hop p50 us",
        "hop p99 us",
        "missing",
        "resets",
        "send owner p50/p99 ms",
        "send non-owner p50/p99"
    );
    for h in hops {
        println!(
            "{:>4} {:>7} {:>15.0} {:>15.0} {:>8} {:>7}   {:>11.3} / {:>10.3} {:>11.3} / {:>10.3}",
            h["servers"].as_u64().unwrap_or(0),
            h["events_compared"].as_u64().unwrap_or(0),
            f(&h["hop_added_us"]["p50"]),
            f(&h["hop_added_us"]["p99"]),
            h["events_missing_on_non_owner"].as_u64().unwrap_or(0),
            h["stream_resets"].as_u64().unwrap_or(0),
            f(&h["send_message_owner"]["p50_ms"]),
            f(&h["send_message_owner"]["p99_ms"]),
            f(&h["send_message_non_owner"]["p50_ms"]),
            f(&h["send_message_non_owner"]["p99_ms"]),
        );
    }
}
