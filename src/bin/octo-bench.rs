//! octo-bench: drives a running Octo over real gRPC on loopback from a separate process.
//!
//! Scenario `mock`: the built-in mock provider alone, in this process (no server): the
//! ceiling it puts on every other scenario, in tokens/s.
//!
//! Scenario `chat`: starts `octo serve --demo` (the built-in mock model, configured to
//! stream N tokens at full speed) as a child process, then runs T turns one after the
//! other through `ChatService/Chat`, measuring per turn the time from sending the
//! request to the first text delta (all of it is Octo: the mock answers instantly) and
//! events/s delivered to the client. Prints a table and writes JSON.

use std::{path::PathBuf, process::Stdio, time::Instant};

use anyhow::{Context, anyhow};
use clap::Parser;
use octo::pb::{
    self, chat_service_client::ChatServiceClient, session_service_client::SessionServiceClient,
};
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(Parser, Debug)]
#[command(about = "Octo load generator")]
struct Args {
    /// `chat` (through a server) or `mock` (the mock provider alone).
    #[arg(long, default_value = "chat")]
    scenario: String,
    /// Tokens the mock streams per turn.
    #[arg(long, default_value_t = 200)]
    tokens: u32,
    /// Turns to run, one after the other.
    #[arg(long, default_value_t = 50)]
    turns: u32,
    /// The octo binary to start (default: next to this one).
    #[arg(long)]
    octo: Option<PathBuf>,
    /// Where to write the JSON result.
    #[arg(long, default_value = "target/bench/chat.json")]
    out: PathBuf,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    match args.scenario.as_str() {
        "chat" => chat(args).await,
        "mock" => mock(args).await,
        other => Err(anyhow!("unknown scenario {other:?}: use chat or mock")),
    }
}

/// Streams `tokens` tokens from the mock provider, `turns` times, counting text deltas.
async fn mock(args: Args) -> anyhow::Result<()> {
    use futures::StreamExt;
    use octo::providers::{
        ChatRequest, ModelSpec, Provider, ProviderKind, StreamEvent, mock::MockProvider,
    };
    let spec = ModelSpec {
        kind: ProviderKind::Mock,
        provider_model: "mock".into(),
        base_url: String::new(),
        api_key: None,
        extra_headers: Default::default(),
        max_output_tokens: 0,
        options: serde_json::json!({ "tokens": args.tokens }),
    };
    let provider = MockProvider::new(&spec);
    let request = ChatRequest {
        system: String::new(),
        messages: vec![octo::domain::Message {
            id: octo::domain::new_id(),
            session_id: String::new(),
            turn_id: None,
            role: octo::domain::Role::User,
            parts: vec![octo::domain::Part::Text { text: "go".into() }],
            create_time: octo::domain::Timestamp::now(),
            incomplete: false,
            model: None,
            position: None,
        }],
        tools: Vec::new(),
        reasoning_effort: Default::default(),
    };
    let started = Instant::now();
    let mut count = 0u64;
    for _ in 0..args.turns {
        let mut stream = provider.stream(&request).await?;
        while let Some(event) = stream.next().await {
            if let StreamEvent::TextDelta(_) = event? {
                count += 1;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if count != u64::from(args.tokens) * u64::from(args.turns) {
        return Err(anyhow!(
            "expected {} tokens, got {count}",
            args.tokens * args.turns
        ));
    }
    let result = serde_json::json!({
        "scenario": "mock",
        "tokens": count,
        "tokens_per_second": count as f64 / seconds,
    });
    println!("scenario  tokens       tokens/s");
    println!("mock      {count:>10}  {:>11.0}", count as f64 / seconds);
    write_result(&args.out, &result)
}

fn write_result(out: &std::path::Path, result: &serde_json::Value) -> anyhow::Result<()> {
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(out, serde_json::to_vec_pretty(result)?)?;
    Ok(())
}

async fn chat(args: Args) -> anyhow::Result<()> {
    let octo = match &args.octo {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .ok_or_else(|| anyhow!("no parent dir"))?
            .join("octo"),
    };
    let dir = std::env::temp_dir().join(format!("octo-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "default_model = \"mock\"\nlog = \"warn,octo::server=info\"\n[models.mock]\nprovider = \"mock\"\nmodel = \"mock\"\n[models.mock.options]\ntokens = {}\n",
            args.tokens
        ),
    )?;
    let mut server = tokio::process::Command::new(&octo)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env_remove("RUST_LOG")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", octo.display()))?;
    let stderr = server.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
    let mut lines = BufReader::new(stderr).lines();
    let address = loop {
        let line = lines
            .next_line()
            .await?
            .ok_or_else(|| anyhow!("octo exited before listening"))?;
        if line.contains("octo listening")
            && let Some(rest) = line.split("address=").nth(1)
        {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let url = format!("http://{address}");
    let channel = tonic::transport::Channel::from_shared(url)?
        .connect()
        .await?;
    let mut sessions = SessionServiceClient::new(channel.clone());
    let mut chat = ChatServiceClient::new(channel);
    let session = sessions
        .create_session(pb::CreateSessionRequest {
            session: Some(pb::Session {
                display_name: "bench".into(),
                ..Default::default()
            }),
        })
        .await?
        .into_inner();

    let mut first_token_ms = Vec::new();
    let mut total_events = 0u64;
    let mut stream_seconds = 0f64;
    let started = Instant::now();
    for _ in 0..args.turns {
        let sent = Instant::now();
        let mut stream = chat
            .chat(pb::ChatRequest {
                session: session.name.clone(),
                parts: vec![pb::Part {
                    kind: Some(pb::part::Kind::Text("go".into())),
                }],
                ..Default::default()
            })
            .await?
            .into_inner();
        let mut first = None;
        let mut events = 0u64;
        while let Some(event) = stream.message().await? {
            events += 1;
            match event.kind {
                Some(pb::session_event::Kind::TextDelta(_)) if first.is_none() => {
                    first = Some(sent.elapsed());
                }
                Some(pb::session_event::Kind::TurnFinished(_)) => break,
                _ => {}
            }
        }
        let elapsed = sent.elapsed();
        first_token_ms.push(first.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0));
        total_events += events;
        stream_seconds += elapsed.as_secs_f64();
    }
    let wall = started.elapsed().as_secs_f64();
    first_token_ms.sort_by(f64::total_cmp);
    let result = serde_json::json!({
        "scenario": "chat",
        "tokens_per_turn": args.tokens,
        "turns": args.turns,
        "events": total_events,
        "events_per_second": total_events as f64 / stream_seconds,
        "turns_per_second": args.turns as f64 / wall,
        "first_token_ms": {
            "p50": percentile(&first_token_ms, 50.0),
            "p99": percentile(&first_token_ms, 99.0),
            "max": first_token_ms.last().copied().unwrap_or(f64::NAN),
        },
    });
    println!("scenario  tokens/turn  turns  events/s    turns/s  first-token p50  p99      max");
    println!(
        "chat      {:>11}  {:>5}  {:>9.0}  {:>7.1}  {:>12.3} ms  {:>6.3}  {:>6.3}",
        args.tokens,
        args.turns,
        result["events_per_second"].as_f64().unwrap_or_default(),
        result["turns_per_second"].as_f64().unwrap_or_default(),
        percentile(&first_token_ms, 50.0),
        percentile(&first_token_ms, 99.0),
        first_token_ms.last().copied().unwrap_or(f64::NAN),
    );
    write_result(&args.out, &result)?;
    server.start_kill()?;
    let _ = server.wait().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
