//! octo-bench: drives a running Octo over real gRPC on loopback from a separate process
//! (Octo is started as a child process per scenario), prints a table per scenario and
//! writes JSON results, plus an SVG of throughput and p99 latency against concurrency.
//!
//! Scenarios (`--scenario`, default `all`):
//! - `turns`: N concurrent workers run turns through `ChatService/Chat` against an
//!   OpenAI-compatible fake served by this binary (Octo's real provider adapter, HTTP
//!   client and SSE parser are on the path): turns/s, tokens/s, Octo CPU per turn (from
//!   /proc), first-token latency added by Octo (client receipt minus the fake's send
//!   time, stamped into the token), RSS. Swept over `--concurrency`.
//! - `paced`: many concurrent turns each streaming at a realistic rate; added latency
//!   per token (fake send -> client) and event creation -> client.
//! - `fanout`: one session, K subscribers, the mock provider at full speed: events/s
//!   delivered, lag, RSS per idle stream, and the same with one slow subscriber.
//! - `store`: SendMessage durable ack; ListSessions over many stored sessions and
//!   ListMessages on a long session (the database seeded directly); RSS with idle
//!   stored sessions.
//! - `baseline`: a bare tonic server (this binary, `--serve-bare`) with the same
//!   message shapes, for the `turns` and `fanout` shapes: the ceiling.
//! - `startup`: process start to health SERVING, and idle RSS.
//! - `cluster`: 1, 2 and 3 servers (`--servers`) on one Postgres, a fresh database each:
//!   turns/s, each server's CPU per turn, Postgres' CPU per turn and added first-token
//!   latency with about (n-1)/n of the turns sent to a non-owner; and the hop cost, the
//!   same session streamed from its owner and a non-owner at once (per-sequence receipt
//!   time difference) and `SendMessage` forwarded vs local. Postgres: a throwaway one
//!   (Debian's `postgresql` server binaries, initdb in a temp dir, removed after), or
//!   `--database-url` (the bench creates and drops a database per server count there).
//!   See `cluster.rs`.
//! - `memory`: bursts of sessions running turns of the mock model, then idle: RSS per
//!   live session, RSS over time as the sessions retire (and whether it comes back to
//!   2× the fresh RSS), and the peak with 1,000 live sessions. See `memory.rs`.
//! - `tools`: Octo's own cost of a tool call (in-process `list_dir`, a sandboxed `shell`
//!   and the same unsandboxed) and of a compaction, one session at a time. See
//!   `tools.rs`.
//!
//! `--smoke` shrinks every size so the whole run takes seconds (CI checks only that the
//! tool works, never a timing). `all` includes `cluster`: without Postgres binaries (and
//! no `--database-url`) it fails at once, naming the package to install.

mod bare;
mod client;
mod cluster;
mod fake;
mod fanout;
mod hist;
mod memory;
mod pg;
mod proc;
mod store;
mod svg;
mod tools;
mod turns;

use std::path::PathBuf;

use anyhow::anyhow;
use clap::Parser;
use serde_json::{Value, json};

#[derive(Parser, Debug, Clone)]
#[command(about = "Octo load generator")]
struct Args {
    /// turns, paced, fanout, store, baseline, startup, cluster, memory, tools, or all.
    #[arg(long, default_value = "all")]
    scenario: String,
    /// Tiny sizes: checks the tool works, in seconds.
    #[arg(long)]
    smoke: bool,
    /// The octo binary to start (default: next to this one).
    #[arg(long)]
    octo: Option<PathBuf>,
    /// Directory for the JSON results and the SVG.
    #[arg(long, default_value = "target/bench")]
    out: PathBuf,
    /// turns: concurrent workers, one level per value.
    #[arg(long, default_value = "1,10,50,100,200", value_delimiter = ',')]
    concurrency: Vec<usize>,
    /// turns: turns per level (spread over the workers).
    #[arg(long, default_value_t = 2000)]
    turns: u64,
    /// turns: turns per session before a worker takes a fresh session.
    #[arg(long, default_value_t = 10)]
    per_session: u64,
    /// turns: tokens per turn.
    #[arg(long, default_value_t = 200)]
    tokens: u32,
    /// turns: tokens per write of the fake provider after the first (1: each its own).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// paced: concurrent turns.
    #[arg(long, default_value_t = 1000)]
    paced_turns: usize,
    /// paced: tokens per second of each turn.
    #[arg(long, default_value_t = 50)]
    rate: u32,
    /// paced: tokens per turn.
    #[arg(long, default_value_t = 100)]
    paced_tokens: u32,
    /// fanout: subscriber counts, one level per value.
    #[arg(long, default_value = "1,100,1000,10000", value_delimiter = ',')]
    subscribers: Vec<usize>,
    /// fanout: tokens per turn of the mock provider.
    #[arg(long, default_value_t = 1000)]
    fanout_tokens: u32,
    /// fanout: about this many events delivered per level (turns are sized to it).
    #[arg(long, default_value_t = 4_000_000)]
    fanout_events: u64,
    /// fanout: at most this many turns per level.
    #[arg(long, default_value_t = 40)]
    fanout_max_turns: u32,
    /// fanout: the level also run with one slow subscriber.
    #[arg(long, default_value_t = 1000)]
    slow_at: usize,
    /// store: SendMessage calls timed.
    #[arg(long, default_value_t = 1000)]
    sends: usize,
    /// store: stored sessions for ListSessions.
    #[arg(long, default_value_t = 1_000_000)]
    stored_sessions: u64,
    /// store: idle stored sessions for the RSS measurement.
    #[arg(long, default_value_t = 100_000)]
    idle_sessions: u64,
    /// store: messages in the session ListMessages reads.
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// store: queries timed per list call.
    #[arg(long, default_value_t = 1000)]
    queries: usize,
    /// startup: starts timed.
    #[arg(long, default_value_t = 10)]
    starts: usize,
    /// cluster: server counts, one level per value.
    #[arg(long, default_value = "1,2,3", value_delimiter = ',')]
    servers: Vec<usize>,
    /// cluster: concurrent workers (tokens and turns per session as for turns).
    #[arg(long, default_value_t = 10)]
    cluster_concurrency: usize,
    /// cluster: turns per server count.
    #[arg(long, default_value_t = 500)]
    cluster_turns: u64,
    /// cluster: turns of the hop measurement, sent alternately to owner and non-owner.
    #[arg(long, default_value_t = 100)]
    hop_turns: usize,
    /// cluster: tokens per hop turn.
    #[arg(long, default_value_t = 10)]
    hop_tokens: u32,
    /// cluster: tokens per second of a hop turn.
    #[arg(long, default_value_t = 200)]
    hop_rate: u32,
    /// cluster: an existing Postgres (postgres://...) to create the bench's databases
    /// on, instead of a throwaway one.
    #[arg(long)]
    database_url: Option<String>,
    /// memory: sessions per burst, each running its turns at once.
    #[arg(long, default_value_t = 100)]
    memory_sessions: usize,
    /// memory: turns per session in a burst.
    #[arg(long, default_value_t = 40)]
    memory_turns: u64,
    /// memory: tokens per turn (the mock model).
    #[arg(long, default_value_t = 200)]
    memory_tokens: u32,
    /// memory: bursts, each followed by the watch.
    #[arg(long, default_value_t = 3)]
    memory_bursts: usize,
    /// memory: Octo's session_idle_seconds.
    #[arg(long, default_value_t = 60)]
    memory_idle: u64,
    /// memory: seconds of idle sampling after each burst.
    #[arg(long, default_value_t = 120)]
    memory_watch: u64,
    /// memory: live sessions for the peak measurement (0: skip it).
    #[arg(long, default_value_t = 1000)]
    memory_wide: usize,
    /// memory: turns per session of the peak measurement.
    #[arg(long, default_value_t = 10)]
    memory_wide_turns: u64,
    /// memory: concurrent turns of the peak measurement.
    #[arg(long, default_value_t = 200)]
    memory_wide_concurrency: usize,
    /// memory: an earlier run's memory.json, drawn in grey in the SVG (before/after).
    #[arg(long)]
    memory_baseline: Option<PathBuf>,
    /// tools: turns of each kind (plain, list_dir, shell, shell without the sandbox).
    #[arg(long, default_value_t = 200)]
    tool_turns: usize,
    /// tools: CompactSession calls timed.
    #[arg(long, default_value_t = 50)]
    compactions: usize,
    /// Internal: serve the bare tonic baseline and print its address.
    #[arg(long, hide = true)]
    serve_bare: bool,
}

impl Args {
    fn apply_smoke(&mut self) {
        if !self.smoke {
            return;
        }
        self.concurrency = vec![1, 4];
        self.turns = 8;
        self.per_session = 2;
        self.tokens = 20;
        self.paced_turns = 10;
        self.rate = 200;
        self.paced_tokens = 10;
        self.subscribers = vec![1, 10];
        self.fanout_tokens = 20;
        self.fanout_events = 1000;
        self.fanout_max_turns = 3;
        self.slow_at = 10;
        self.sends = 20;
        self.stored_sessions = 2000;
        self.idle_sessions = 1000;
        self.messages = 1000;
        self.queries = 20;
        self.starts = 2;
        self.cluster_concurrency = 2;
        self.cluster_turns = 8;
        self.hop_turns = 4;
        self.hop_tokens = 5;
        self.memory_sessions = 4;
        self.memory_turns = 2;
        self.memory_tokens = 20;
        self.memory_bursts = 2;
        self.memory_idle = 1;
        self.memory_watch = 3;
        self.memory_wide = 10;
        self.memory_wide_turns = 2;
        self.memory_wide_concurrency = 5;
        self.tool_turns = 3;
        self.compactions = 2;
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    args.apply_smoke();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.serve_bare {
        return runtime.block_on(bare::serve());
    }
    runtime.block_on(run(args))
}

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("octo-bench-{}-{name}", std::process::id()))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let octo = match &args.octo {
        Some(path) => path.clone(),
        None => proc::default_octo()?,
    };
    let all = args.scenario == "all";
    let wanted = |name: &str| all || args.scenario == name;
    let known = [
        "all", "turns", "paced", "fanout", "store", "baseline", "startup", "cluster", "memory",
        "tools",
    ];
    if !known.contains(&args.scenario.as_str()) {
        return Err(anyhow!(
            "unknown scenario {:?}: use one of {}",
            args.scenario,
            known.join(", ")
        ));
    }
    if wanted("cluster") && args.database_url.is_none() {
        // Before any other scenario runs: say what is missing at once.
        pg::bin_dir()?;
    }
    std::fs::create_dir_all(&args.out)?;
    let fake = fake::Fake::start(args.batch).await?;
    let setup = |name: &str, default_model: &'static str, mock_tokens: u32| client::OctoSetup {
        octo: octo.clone(),
        dir: scratch(name),
        fake_url: fake.base_url(),
        mock_tokens,
        default_model,
    };
    let mut results = serde_json::Map::new();
    results.insert("machine".into(), proc::machine());
    results.insert(
        "command".into(),
        Value::String(std::env::args().collect::<Vec<_>>().join(" ")),
    );

    if wanted("startup") {
        let s = setup("startup", "mock", 20);
        let result = store::startup(&s, args.starts).await?;
        let _ = std::fs::remove_dir_all(&s.dir);
        print_startup(&result);
        save(&args, "startup", &result, &mut results)?;
    }
    if wanted("turns") {
        let s = setup("turns", "fake", 20);
        let server = s.start().await?;
        let channels = server
            .channels(max_of(&args.concurrency).div_ceil(100))
            .await?;
        let mut levels = Vec::new();
        for &c in &args.concurrency {
            let level = turns::run_level(
                &server,
                &channels,
                c,
                args.turns,
                args.per_session,
                args.tokens,
                false,
            )
            .await?;
            levels.push(level.json());
        }
        server.stop().await;
        let _ = std::fs::remove_dir_all(&s.dir);
        let result =
            json!({ "tokens_per_turn": args.tokens, "fake_batch": args.batch, "levels": levels });
        print_turns("turns (Octo, OpenAI-compatible fake provider)", &result);
        save(&args, "turns", &result, &mut results)?;
    }
    if wanted("paced") {
        let s = setup("paced", "fake", 20);
        let server = s.start().await?;
        let paced = turns::paced(&server, args.paced_turns, args.rate, args.paced_tokens).await?;
        server.stop().await;
        let _ = std::fs::remove_dir_all(&s.dir);
        let result = paced.json();
        print_paced(&result);
        save(&args, "paced", &result, &mut results)?;
    }
    if wanted("fanout") {
        let s = setup("fanout", "mock", args.fanout_tokens);
        let server = s.start().await?;
        let result = fanout_levels(&args, &server, false).await?;
        server.stop().await;
        let _ = std::fs::remove_dir_all(&s.dir);
        print_fanout("fanout (Octo, mock provider at full speed)", &result);
        save(&args, "fanout", &result, &mut results)?;
    }
    if wanted("baseline") {
        let exe = std::env::current_exe()?;
        let server = proc::Server::spawn(&exe, &["--serve-bare"], &[]).await?;
        let channels = server
            .channels(max_of(&args.concurrency).div_ceil(100))
            .await?;
        let mut levels = Vec::new();
        for &c in &args.concurrency {
            let level = turns::run_level(
                &server,
                &channels,
                c,
                args.turns,
                args.per_session,
                args.tokens,
                true,
            )
            .await?;
            levels.push(level.json());
        }
        let turns_result = json!({ "tokens_per_turn": args.tokens, "levels": levels });
        print_turns("baseline turns (bare tonic Chat stream)", &turns_result);
        let fan = fanout_levels(&args, &server, true).await?;
        print_fanout("baseline fanout (bare tonic broadcast)", &fan);
        server.stop().await;
        let result = json!({ "turns": turns_result, "fanout": fan });
        save(&args, "baseline", &result, &mut results)?;
    }
    if wanted("store") {
        let s = setup("store", "mock", 5);
        let sizes = store::StoreSizes {
            sends: args.sends,
            idle_sessions: args.idle_sessions,
            sessions: args.stored_sessions,
            messages: args.messages,
            queries: args.queries,
        };
        let result = store::run(&s, &sizes).await?;
        let _ = std::fs::remove_dir_all(&s.dir);
        print_store(&result);
        save(&args, "store", &result, &mut results)?;
    }
    if wanted("cluster") {
        let sizes = cluster::ClusterSizes {
            servers: args.servers.clone(),
            concurrency: args.cluster_concurrency,
            turns: args.cluster_turns,
            per_session: args.per_session,
            tokens: args.tokens,
            hop_turns: args.hop_turns,
            hop_tokens: args.hop_tokens,
            hop_rate: args.hop_rate,
            database_url: args.database_url.clone(),
        };
        let result = cluster::run(&sizes, &fake, |name| setup(name, "fake", 20)).await?;
        cluster::print(&result);
        save(&args, "cluster", &result, &mut results)?;
    }
    let mut memory_baseline = None;
    if wanted("memory") {
        let s = setup("memory", "mock", args.memory_tokens);
        let sizes = memory::MemorySizes {
            sessions: args.memory_sessions,
            turns: args.memory_turns,
            tokens: args.memory_tokens,
            bursts: args.memory_bursts,
            idle_seconds: args.memory_idle,
            watch_seconds: args.memory_watch,
            wide: args.memory_wide,
            wide_turns: args.memory_wide_turns,
            wide_concurrency: args.memory_wide_concurrency,
        };
        let result = memory::run(&s, &sizes).await?;
        memory::print(&result);
        save(&args, "memory", &result, &mut results)?;
        if let Some(path) = &args.memory_baseline {
            memory_baseline = Some(serde_json::from_slice::<Value>(&std::fs::read(path)?)?);
        }
    }
    if wanted("tools") {
        let s = setup("tools", "mock", 20);
        let result = tools::run(&s, args.tool_turns, args.compactions).await?;
        tools::print(&result);
        save(&args, "tools", &result, &mut results)?;
    }
    results.insert("fake_provider_requests".into(), json!(fake.requests()));
    let results = Value::Object(results);
    let targets = targets(&results);
    print_targets(&targets);
    let mut results = results;
    results["targets"] = targets;
    let name = if all {
        "results".to_owned()
    } else {
        format!("results-{}", args.scenario)
    };
    std::fs::write(
        args.out.join(format!("{name}.json")),
        serde_json::to_vec_pretty(&results)?,
    )?;
    let mut charts = charts(&results);
    if results["memory"].is_object() {
        charts.push(memory::chart(&results["memory"], memory_baseline.as_ref()));
    }
    if !charts.is_empty() {
        let path = args.out.join(format!("{name}.svg"));
        std::fs::write(&path, svg::document(&charts))?;
        println!(
            "\nwrote {} and {}",
            args.out.join(format!("{name}.json")).display(),
            path.display()
        );
    }
    Ok(())
}

fn max_of(values: &[usize]) -> usize {
    values.iter().copied().max().unwrap_or(1)
}

async fn fanout_levels(args: &Args, server: &proc::Server, bare: bool) -> anyhow::Result<Value> {
    let mut levels = Vec::new();
    for &k in &args.subscribers {
        let turns = fanout::turns_for(
            k,
            args.fanout_tokens,
            args.fanout_events,
            args.fanout_max_turns,
        );
        let level = fanout::run_level(server, k, turns, args.fanout_tokens, false, bare).await?;
        levels.push(level.json());
        if k == args.slow_at {
            let level = fanout::run_level(server, k, turns, args.fanout_tokens, true, bare).await?;
            levels.push(level.json());
        }
    }
    Ok(json!({ "tokens_per_turn": args.fanout_tokens, "levels": levels }))
}

fn save(
    args: &Args,
    name: &str,
    result: &Value,
    results: &mut serde_json::Map<String, Value>,
) -> anyhow::Result<()> {
    std::fs::write(
        args.out.join(format!("{name}.json")),
        serde_json::to_vec_pretty(result)?,
    )?;
    results.insert(name.into(), result.clone());
    Ok(())
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn print_startup(r: &Value) {
    println!("\n== startup");
    println!("first start -> SERVING   warm start p50 / max     idle RSS");
    println!(
        "{:>12.1} ms   {:>10.1} / {:>6.1} ms   {:>8.1} MiB",
        f(&r["first_start_to_serving"]["p50_ms"]),
        f(&r["start_to_serving"]["p50_ms"]),
        f(&r["start_to_serving"]["max_ms"]),
        f(&r["idle_rss_kib"]) / 1024.0
    );
}

fn print_turns(title: &str, r: &Value) {
    println!("\n== {title}");
    println!(
        "{:>6} {:>7} {:>9} {:>10} {:>12} {:>12} {:>11} {:>11} {:>9}",
        "conc",
        "turns",
        "turns/s",
        "tokens/s",
        "cpu ms/turn",
        "bench ms/t",
        "1st p50 ms",
        "1st p99 ms",
        "RSS MiB"
    );
    for l in r["levels"].as_array().into_iter().flatten() {
        println!(
            "{:>6} {:>7} {:>9.1} {:>10.0} {:>12.3} {:>12.3} {:>11.3} {:>11.3} {:>9.1}",
            l["concurrency"].as_u64().unwrap_or(0),
            l["turns"].as_u64().unwrap_or(0),
            f(&l["turns_per_second"]),
            f(&l["tokens_per_second"]),
            f(&l["server_cpu_ms_per_turn"]),
            f(&l["bench_cpu_ms_per_turn"]),
            f(&l["first_token_added"]["p50_ms"]),
            f(&l["first_token_added"]["p99_ms"]),
            f(&l["server_rss_kib"]) / 1024.0
        );
    }
}

fn print_paced(r: &Value) {
    println!("\n== paced");
    println!(
        "turns  tok/s/turn  added p50 / p99 / max ms     creation->client p50 / p99 / max ms   CPU%   RSS MiB"
    );
    println!(
        "{:>5} {:>11}  {:>7.3} / {:>6.3} / {:>7.3}     {:>7.3} / {:>6.3} / {:>7.3}            {:>5.1} {:>8.1}",
        r["concurrent_turns"].as_u64().unwrap_or(0),
        r["tokens_per_second_per_turn"].as_u64().unwrap_or(0),
        f(&r["added_latency_per_token"]["p50_ms"]),
        f(&r["added_latency_per_token"]["p99_ms"]),
        f(&r["added_latency_per_token"]["max_ms"]),
        f(&r["event_creation_to_client"]["p50_ms"]),
        f(&r["event_creation_to_client"]["p99_ms"]),
        f(&r["event_creation_to_client"]["max_ms"]),
        f(&r["server_cpu_percent"]),
        f(&r["server_rss_kib"]) / 1024.0
    );
}

fn print_fanout(title: &str, r: &Value) {
    println!("\n== {title}");
    println!(
        "{:>7} {:>5} {:>6} {:>11} {:>13} {:>11} {:>11} {:>11} {:>12} {:>7} {:>8} {:>8}",
        "subs",
        "slow",
        "turns",
        "events",
        "events/s",
        "lag p50 ms",
        "lag p99 ms",
        "spread ms",
        "KiB/stream",
        "resets",
        "srv cpu",
        "bench cpu"
    );
    for l in r["levels"].as_array().into_iter().flatten() {
        println!(
            "{:>7} {:>5} {:>6} {:>11} {:>13.0} {:>11.3} {:>11.3} {:>11.1} {:>12.1} {:>7} {:>7.2}s {:>7.2}s",
            l["subscribers"].as_u64().unwrap_or(0),
            if l["with_slow_subscriber"].as_bool() == Some(true) {
                "yes"
            } else {
                "no"
            },
            l["turns"].as_u64().unwrap_or(0),
            l["events_delivered"].as_u64().unwrap_or(0),
            f(&l["events_per_second"]),
            f(&l["lag"]["p50_ms"]),
            f(&l["lag"]["p99_ms"]),
            f(&l["finish_spread_ms"]),
            f(&l["rss_per_idle_stream_kib"]),
            l["stream_resets"].as_u64().unwrap_or(0),
            f(&l["server_cpu_seconds"]),
            f(&l["bench_cpu_seconds"])
        );
    }
}

fn print_store(r: &Value) {
    println!("\n== store");
    for (name, key) in [
        ("SendMessage durable ack", "send_message_ack"),
        ("ListSessions (page 50)", "list_sessions"),
        ("ListMessages (page 50)", "list_messages"),
    ] {
        println!(
            "{name:<26} p50 {:>7.3} ms   p99 {:>7.3} ms   max {:>7.3} ms",
            f(&r[key]["p50_ms"]),
            f(&r[key]["p99_ms"]),
            f(&r[key]["max_ms"])
        );
    }
    println!(
        "stored sessions {}, messages in the session {}; RSS empty {:.1} MiB, with {} idle sessions {:.1} MiB (+{:.1} MiB)",
        r["stored_sessions"].as_u64().unwrap_or(0),
        r["messages_in_session"].as_u64().unwrap_or(0),
        f(&r["rss_empty_kib"]) / 1024.0,
        r["idle_sessions"].as_u64().unwrap_or(0),
        f(&r["rss_idle_sessions_kib"]) / 1024.0,
        f(&r["rss_added_by_idle_sessions_kib"]) / 1024.0
    );
}

fn levels<'a>(v: &'a Value, path: &[&str]) -> Vec<&'a Value> {
    let mut v = v;
    for p in path {
        v = &v[*p];
    }
    v["levels"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// Each target: measured value, limit, met.
fn targets(r: &Value) -> Value {
    let mut out = Vec::new();
    let mut check = |name: &str, value: f64, limit: f64, at_most: bool| {
        if value.is_nan() {
            return;
        }
        let met = if at_most {
            value <= limit
        } else {
            value >= limit
        };
        out.push(json!({ "target": name, "value": value, "limit": limit, "at_most": at_most, "met": met }));
    };
    let turns = levels(r, &["turns"]);
    if let Some(worst) = turns
        .iter()
        .map(|l| f(&l["server_cpu_ms_per_turn"]))
        .fold(None, |a: Option<f64>, v| Some(a.map_or(v, |a| a.max(v))))
    {
        check(
            "Octo CPU per 200-token turn, worst level (ms)",
            worst,
            3.0,
            true,
        );
    }
    if let Some(single) = turns.iter().find(|l| l["concurrency"] == 1) {
        check(
            "first token added, 1 turn at a time, p50 (ms)",
            f(&single["first_token_added"]["p50_ms"]),
            0.5,
            true,
        );
        check(
            "first token added, 1 turn at a time, p99 (ms)",
            f(&single["first_token_added"]["p99_ms"]),
            2.0,
            true,
        );
    }
    check(
        "paced: added latency per event p99 (ms)",
        f(&r["paced"]["added_latency_per_token"]["p99_ms"]),
        1.0,
        true,
    );
    let fan = levels(r, &["fanout"]);
    let at = |levels: &[&Value], k: u64, slow: bool| {
        levels
            .iter()
            .find(|l| l["subscribers"] == k && l["with_slow_subscriber"].as_bool() == Some(slow))
            .map(|l| f(&l["events_per_second"]))
    };
    if let Some(v) = at(&fan, 1000, false) {
        check(
            "fanout: events/s with 1,000 subscribers",
            v,
            1_000_000.0,
            false,
        );
        if let Some(slow) = at(&fan, 1000, true) {
            check(
                "fanout: events/s with a slow subscriber / without",
                slow / v,
                0.9,
                false,
            );
        }
        if let Some(bare) = at(&levels(r, &["baseline", "fanout"]), 1000, false) {
            check(
                "fanout: fraction of bare tonic, 1,000 subscribers",
                v / bare,
                0.5,
                false,
            );
        }
    }
    if let Some(l) = fan
        .iter()
        .max_by_key(|l| l["subscribers"].as_u64().unwrap_or(0))
    {
        check(
            "fanout: RSS per idle open stream, most subscribers (KiB)",
            f(&l["rss_per_idle_stream_kib"]),
            20.0,
            true,
        );
    }
    check(
        "SendMessage durable ack p99 (ms)",
        f(&r["store"]["send_message_ack"]["p99_ms"]),
        5.0,
        true,
    );
    check(
        "ListSessions p99 (ms)",
        f(&r["store"]["list_sessions"]["p99_ms"]),
        5.0,
        true,
    );
    check(
        "ListMessages p99 (ms)",
        f(&r["store"]["list_messages"]["p99_ms"]),
        5.0,
        true,
    );
    check(
        "RSS added by idle stored sessions (MiB)",
        f(&r["store"]["rss_added_by_idle_sessions_kib"]) / 1024.0,
        5.0,
        true,
    );
    check(
        "start-up to SERVING (ms)",
        f(&r["startup"]["first_start_to_serving"]["p50_ms"]),
        100.0,
        true,
    );
    check(
        "start-up to SERVING, warm (ms)",
        f(&r["startup"]["start_to_serving"]["p50_ms"]),
        100.0,
        true,
    );
    check(
        "idle RSS (MiB)",
        f(&r["startup"]["idle_rss_kib"]) / 1024.0,
        20.0,
        true,
    );
    for (name, value, limit, at_most) in memory::targets(&r["memory"]) {
        check(&name, value, limit, at_most);
    }
    for hop in r["cluster"]["hop"].as_array().into_iter().flatten() {
        check(
            &format!(
                "cluster ({} servers): non-owner stream added p50 (ms)",
                hop["servers"]
            ),
            f(&hop["hop_added_us"]["p50"]) / 1000.0,
            1.0,
            true,
        );
    }
    Value::Array(out)
}

fn print_targets(t: &Value) {
    let Some(items) = t.as_array().filter(|a| !a.is_empty()) else {
        return;
    };
    println!("\n== targets");
    for item in items {
        println!(
            "{:<58} {:>12.3}  {} {:<10} {}",
            item["target"].as_str().unwrap_or_default(),
            f(&item["value"]),
            if item["at_most"].as_bool() == Some(true) {
                "<="
            } else {
                ">="
            },
            f(&item["limit"]),
            if item["met"].as_bool() == Some(true) {
                "met"
            } else {
                "MISSED"
            }
        );
    }
}

fn charts(r: &Value) -> Vec<svg::Chart> {
    let mut charts = Vec::new();
    let series = |levels: &[&Value], x: &str, y: &[&str], scale: f64| -> Vec<(f64, f64)> {
        levels
            .iter()
            .filter(|l| l["with_slow_subscriber"].as_bool() != Some(true))
            .map(|l| {
                let mut v = *l;
                for k in y {
                    v = &v[*k];
                }
                (f(&l[x]), f(v) * scale)
            })
            .collect()
    };
    let octo_turns = levels(r, &["turns"]);
    let bare_turns = levels(r, &["baseline", "turns"]);
    if !octo_turns.is_empty() || !bare_turns.is_empty() {
        charts.push(svg::Chart {
            log_x: true,
            title: "turns: throughput and p99 first-token latency vs concurrent turns".into(),
            x_label: "concurrent turns (log)".into(),
            left_label: "tokens/s".into(),
            right_label: "p99 first token ms (dashed)".into(),
            series: vec![
                svg::Series {
                    name: "Octo tokens/s".into(),
                    points: series(&octo_turns, "concurrency", &["tokens_per_second"], 1.0),
                    color: "#1f77b4",
                    right: false,
                },
                svg::Series {
                    name: "bare tonic tokens/s".into(),
                    points: series(&bare_turns, "concurrency", &["tokens_per_second"], 1.0),
                    color: "#999999",
                    right: false,
                },
                svg::Series {
                    name: "Octo p99 first token added".into(),
                    points: series(
                        &octo_turns,
                        "concurrency",
                        &["first_token_added", "p99_ms"],
                        1.0,
                    ),
                    color: "#d62728",
                    right: true,
                },
                svg::Series {
                    name: "bare p99 first event".into(),
                    points: series(
                        &bare_turns,
                        "concurrency",
                        &["first_token_added", "p99_ms"],
                        1.0,
                    ),
                    color: "#ff9896",
                    right: true,
                },
            ],
        });
    }
    let octo_fan = levels(r, &["fanout"]);
    let bare_fan = levels(r, &["baseline", "fanout"]);
    if !octo_fan.is_empty() || !bare_fan.is_empty() {
        charts.push(svg::Chart {
            log_x: true,
            title: "fanout: events/s delivered and p99 lag vs subscribers".into(),
            x_label: "subscribers of one session (log)".into(),
            left_label: "events/s delivered".into(),
            right_label: "p99 lag ms (dashed)".into(),
            series: vec![
                svg::Series {
                    name: "Octo events/s".into(),
                    points: series(&octo_fan, "subscribers", &["events_per_second"], 1.0),
                    color: "#1f77b4",
                    right: false,
                },
                svg::Series {
                    name: "bare tonic events/s".into(),
                    points: series(&bare_fan, "subscribers", &["events_per_second"], 1.0),
                    color: "#999999",
                    right: false,
                },
                svg::Series {
                    name: "Octo p99 lag".into(),
                    points: series(&octo_fan, "subscribers", &["lag", "p99_ms"], 1.0),
                    color: "#d62728",
                    right: true,
                },
                svg::Series {
                    name: "bare p99 lag".into(),
                    points: series(&bare_fan, "subscribers", &["lag", "p99_ms"], 1.0),
                    color: "#ff9896",
                    right: true,
                },
            ],
        });
    }
    charts
}
