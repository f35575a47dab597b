//! Scenario `memory`: what bursts of turns leave resident, the way a new user would see
//! it. One Octo process on the mock model (`--memory-tokens` per turn at full speed):
//!
//! 1. Fresh RSS, 0.5 s after start.
//! 2. `--memory-bursts` times: `--memory-sessions` sessions, each running
//!    `--memory-turns` turns through `Chat` at once (one worker per session), then
//!    `--memory-watch` seconds idle. Octo runs with `session_idle_seconds =
//!    --memory-idle`, so the burst's sessions retire during the watch. Per burst: RSS at
//!    its end, and [`SETTLE`] later (all its sessions live, idle, nobody subscribed; a
//!    server that gives memory back once quiet has done so); the peak; RSS at the end of
//!    the watch; and how long after the burst RSS first came back to ≤ 2× fresh. Memory
//!    per live session two ways: (settled − fresh) / sessions, which also counts what
//!    the process grew by for good (caches, allocator), and (settled − after the watch)
//!    / sessions, what retiring them gave back (meaningful only once all retired and
//!    when the allocator returns memory).
//! 3. Peak and final RSS with `--memory-wide` live sessions (`--memory-wide-turns`
//!    turns each, `--memory-wide-concurrency` at a time), on a second, fresh process.
//!
//! RSS (/proc/<pid>/status VmRSS) and the live-session count (`octo_live_sessions` from
//! GET /metrics) are sampled every 500 ms throughout; the samples go into the JSON and
//! the SVG (RSS and live sessions against time), with the samples of an earlier run's
//! `memory.json` (`--memory-baseline`) overlaid for a before/after picture. Nothing is
//! asserted: smoke mode only checks the tool runs.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{client::OctoSetup, proc::Server, svg, turns};

pub struct MemorySizes {
    pub sessions: usize,
    pub turns: u64,
    pub tokens: u32,
    pub bursts: usize,
    pub idle_seconds: u64,
    pub watch_seconds: u64,
    pub wide: usize,
    pub wide_turns: u64,
    pub wide_concurrency: usize,
}

/// RSS and live sessions every 500 ms, seconds since the scenario's start.
struct Sampler {
    samples: Arc<Mutex<Vec<Sample>>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone, Copy)]
struct Sample {
    seconds: f64,
    rss_kib: u64,
    /// -1 when the scrape failed.
    live: i64,
}

const SAMPLE_EVERY: Duration = Duration::from_millis(500);
/// After a burst, before RSS with its sessions live is read.
const SETTLE: Duration = Duration::from_secs(3);

impl Sampler {
    fn start(server: &Server, origin: Instant) -> Self {
        let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
        let pid = server.pid;
        let url = format!("{}/metrics", server.url());
        let out = samples.clone();
        let task = tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            loop {
                tick.tick().await;
                let Ok(rss_kib) = crate::proc::rss_kib(pid) else {
                    return;
                };
                let live = live_sessions(&http, &url).await.unwrap_or(-1);
                out.lock().expect("samples").push(Sample {
                    seconds: origin.elapsed().as_secs_f64(),
                    rss_kib,
                    live,
                });
            }
        });
        Self { samples, task }
    }

    fn snapshot(&self) -> Vec<Sample> {
        self.samples.lock().expect("samples").clone()
    }

    fn stop(self) -> Vec<Sample> {
        self.task.abort();
        self.snapshot()
    }
}

async fn live_sessions(http: &reqwest::Client, url: &str) -> Option<i64> {
    let text = http.get(url).send().await.ok()?.text().await.ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("octo_live_sessions "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as i64)
}

/// Octo with `session_idle_seconds` set (top-level keys go before the model tables).
async fn start(setup: &OctoSetup, idle_seconds: u64) -> anyhow::Result<Server> {
    setup.write_config()?;
    let rest = std::fs::read_to_string(setup.config_path())?;
    std::fs::write(
        setup.config_path(),
        format!("session_idle_seconds = {idle_seconds}\n{rest}"),
    )?;
    crate::client::start_octo(&setup.octo, &setup.config_path(), &setup.data_dir()).await
}

pub async fn run(setup: &OctoSetup, sizes: &MemorySizes) -> anyhow::Result<Value> {
    let server = start(setup, sizes.idle_seconds).await?;
    let origin = Instant::now();
    let sampler = Sampler::start(&server, origin);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fresh = server.rss_kib()?;
    let channels = server.channels(sizes.sessions.div_ceil(100)).await?;
    let mut bursts = Vec::new();
    for burst in 0..sizes.bursts {
        let started = origin.elapsed().as_secs_f64();
        let level = turns::run_level(
            &server,
            &channels,
            sizes.sessions,
            sizes.sessions as u64 * sizes.turns,
            sizes.turns,
            sizes.tokens,
            false,
        )
        .await?;
        let ended = origin.elapsed().as_secs_f64();
        let rss_end = server.rss_kib()?;
        tokio::time::sleep(SETTLE).await;
        let rss_settled = server.rss_kib()?;
        tokio::time::sleep(Duration::from_secs(sizes.watch_seconds).saturating_sub(SETTLE)).await;
        let rss_after = server.rss_kib()?;
        let samples = sampler.snapshot();
        let window: Vec<&Sample> = samples.iter().filter(|s| s.seconds >= started).collect();
        let peak = window
            .iter()
            .map(|s| s.rss_kib)
            .chain([rss_end])
            .max()
            .unwrap_or(rss_end);
        let back = window
            .iter()
            .find(|s| s.seconds >= ended && s.rss_kib <= 2 * fresh)
            .map(|s| s.seconds - ended);
        let retired = window
            .iter()
            .find(|s| s.seconds >= ended && s.live == 0)
            .map(|s| s.seconds - ended);
        let n = sizes.sessions as f64;
        let given_back = retired
            .is_some()
            .then(|| (rss_settled as f64 - rss_after as f64) / n);
        bursts.push(json!({
            "burst": burst + 1,
            "sessions": sizes.sessions,
            "turns_per_session": sizes.turns,
            "started_s": started,
            "ended_s": ended,
            "turns_per_second": level.turns_per_second(),
            "rss_end_kib": rss_end,
            "rss_settled_kib": rss_settled,
            "per_live_session_kib": (rss_settled as f64 - fresh as f64) / n,
            "per_live_session_given_back_kib": given_back,
            "peak_kib": peak,
            "rss_after_watch_kib": rss_after,
            "watch_s": sizes.watch_seconds,
            "seconds_to_2x_fresh": back,
            "seconds_to_all_retired": retired,
        }));
    }
    drop(channels);
    let samples = sampler.stop();
    server.stop().await;
    let _ = std::fs::remove_dir_all(&setup.dir);

    let wide = if sizes.wide > 0 {
        Some(wide(setup, sizes).await?)
    } else {
        None
    };
    let _ = std::fs::remove_dir_all(&setup.dir);
    Ok(json!({
        "tokens_per_turn": sizes.tokens,
        "session_idle_seconds": sizes.idle_seconds,
        "fresh_rss_kib": fresh,
        "bursts": bursts,
        "wide": wide,
        "samples": samples.iter().map(|s| json!([s.seconds, s.rss_kib, s.live])).collect::<Vec<_>>(),
    }))
}

/// Peak and final RSS with `wide` live sessions, on a fresh process.
async fn wide(setup: &OctoSetup, sizes: &MemorySizes) -> anyhow::Result<Value> {
    // Long enough that every session is still live at the end.
    let server = start(setup, 3600).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fresh = server.rss_kib()?;
    let concurrency = sizes.wide_concurrency.clamp(1, sizes.wide);
    let channels = server.channels(concurrency.div_ceil(100)).await?;
    let peak = crate::proc::PeakRss::start(server.pid);
    let level = turns::run_level(
        &server,
        &channels,
        concurrency,
        sizes.wide as u64 * sizes.wide_turns,
        sizes.wide_turns,
        sizes.tokens,
        false,
    )
    .await?;
    let end = server.rss_kib()?;
    let peak = peak.stop().max(end);
    drop(channels);
    server.stop().await;
    Ok(json!({
        "sessions": sizes.wide,
        "turns_per_session": sizes.wide_turns,
        "concurrency": concurrency,
        "turns_per_second": level.turns_per_second(),
        "fresh_rss_kib": fresh,
        "peak_rss_kib": peak,
        "rss_end_kib": end,
        "per_live_session_kib": (end as f64 - fresh as f64) / sizes.wide as f64,
    }))
}

fn mib(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN) / 1024.0
}

pub fn print(r: &Value) {
    println!(
        "\n== memory (mock model, {} tokens per turn)",
        r["tokens_per_turn"]
    );
    println!(
        "fresh RSS {:.1} MiB; session_idle_seconds {}",
        mib(&r["fresh_rss_kib"]),
        r["session_idle_seconds"]
    );
    println!(
        "{:>5} {:>8} {:>6} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>13} {:>11} {:>11}",
        "burst",
        "sessions",
        "turns",
        "turns/s",
        "end MiB",
        "+3s MiB",
        "KiB/sess",
        "KiB freed",
        "peak MiB",
        "after watch",
        "<=2x fresh",
        "retired"
    );
    for b in r["bursts"].as_array().into_iter().flatten() {
        let secs = |v: &Value| {
            v.as_f64()
                .map_or_else(|| "never".to_owned(), |s| format!("{s:.1} s"))
        };
        println!(
            "{:>5} {:>8} {:>6} {:>8.1} {:>8.1} {:>8.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} MiB {:>11} {:>11}",
            b["burst"].as_u64().unwrap_or(0),
            b["sessions"].as_u64().unwrap_or(0),
            b["turns_per_session"].as_u64().unwrap_or(0),
            b["turns_per_second"].as_f64().unwrap_or(f64::NAN),
            mib(&b["rss_end_kib"]),
            mib(&b["rss_settled_kib"]),
            b["per_live_session_kib"].as_f64().unwrap_or(f64::NAN),
            b["per_live_session_given_back_kib"]
                .as_f64()
                .unwrap_or(f64::NAN),
            mib(&b["peak_kib"]),
            mib(&b["rss_after_watch_kib"]),
            secs(&b["seconds_to_2x_fresh"]),
            secs(&b["seconds_to_all_retired"]),
        );
    }
    let w = &r["wide"];
    if w.is_object() {
        println!(
            "{} live sessions ({} turns each, {} at a time): fresh {:.1} MiB, peak {:.1} MiB, end {:.1} MiB ({:.1} KiB per live session)",
            w["sessions"],
            w["turns_per_session"],
            w["concurrency"],
            mib(&w["fresh_rss_kib"]),
            mib(&w["peak_rss_kib"]),
            mib(&w["rss_end_kib"]),
            w["per_live_session_kib"].as_f64().unwrap_or(f64::NAN),
        );
    }
}

/// The targets of the memory issue, as `(name, value, limit, at_most)`.
pub fn targets(r: &Value) -> Vec<(String, f64, f64, bool)> {
    let mut out = Vec::new();
    let bursts: Vec<&Value> = r["bursts"].as_array().into_iter().flatten().collect();
    if let Some(first) = bursts.first() {
        out.push((
            "memory: KiB per live session, (RSS live - fresh) / n, burst 1".to_owned(),
            first["per_live_session_kib"].as_f64().unwrap_or(f64::NAN),
            200.0,
            true,
        ));
        out.push((
            "memory: KiB per live session, freed at retirement, burst 1".to_owned(),
            first["per_live_session_given_back_kib"]
                .as_f64()
                .unwrap_or(f64::NAN),
            200.0,
            true,
        ));
    }
    let fresh = r["fresh_rss_kib"].as_f64().unwrap_or(f64::NAN);
    for b in bursts {
        out.push((
            format!(
                "memory: RSS / fresh after burst {} and {} s idle",
                b["burst"], b["watch_s"]
            ),
            b["rss_after_watch_kib"].as_f64().unwrap_or(f64::NAN) / fresh,
            2.0,
            true,
        ));
    }
    out
}

fn series(samples: &Value, column: usize, scale: f64) -> Vec<(f64, f64)> {
    samples
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let y = s[column].as_f64()?;
            (y >= 0.0).then(|| (s[0].as_f64().unwrap_or(f64::NAN), y * scale))
        })
        .collect()
}

/// RSS (left) and live sessions (right, dashed) against time; an earlier run's samples
/// (`baseline`) in grey.
pub fn chart(r: &Value, baseline: Option<&Value>) -> svg::Chart {
    let mut series_list = vec![svg::Series {
        name: "RSS MiB".into(),
        points: series(&r["samples"], 1, 1.0 / 1024.0),
        color: "#1f77b4",
        right: false,
    }];
    if let Some(fresh) = r["fresh_rss_kib"].as_f64() {
        let end = r["samples"]
            .as_array()
            .and_then(|s| s.last())
            .and_then(|s| s[0].as_f64())
            .unwrap_or(1.0);
        series_list.push(svg::Series {
            name: "2x fresh RSS".into(),
            points: vec![(0.0, 2.0 * fresh / 1024.0), (end, 2.0 * fresh / 1024.0)],
            color: "#2ca02c",
            right: false,
        });
    }
    series_list.push(svg::Series {
        name: "live sessions".into(),
        points: series(&r["samples"], 2, 1.0),
        color: "#d62728",
        right: true,
    });
    if let Some(before) = baseline {
        series_list.push(svg::Series {
            name: "RSS MiB, before".into(),
            points: series(&before["samples"], 1, 1.0 / 1024.0),
            color: "#999999",
            right: false,
        });
    }
    svg::Chart {
        log_x: false,
        title: format!(
            "memory: {} sessions x {} turns per burst, then idle",
            r["bursts"][0]["sessions"], r["bursts"][0]["turns_per_session"]
        ),
        x_label: "seconds since start".into(),
        left_label: "RSS MiB".into(),
        right_label: "live sessions (dashed)".into(),
        series: series_list,
    }
}
