//! Scenario `tools`: what a tool call and a compaction cost Octo, one session at a time
//! (latency is the server's, not a model's: the mock answers at once).
//!
//! One Octo on the mock model (20 tokens a reply), a session in AUTO_APPROVE mode, and
//! `--tool-turns` turns of each kind through SendMessageAndWait, one after another:
//! - `plain`: a message and its answer (one model request);
//! - `list_dir`: the model calls `list_dir` (in-process), then answers (two requests);
//! - `shell`: the model calls `shell` with `true`, then answers: a process per call, run
//!   in the sandbox (Landlock, rlimits, a cgroup where one is writable);
//! - `shell_unconfined`: the same on a second Octo with `[sandbox]` off (no Landlock,
//!   no limits, no cgroup), so the difference is the sandbox's cost per shell call.
//!
//! Per kind: wall time per turn (p50, p99, mean) and Octo's CPU per turn (/proc). A tool
//! call's cost is its kind minus `plain`. Then `--compactions` times: two more ~100-token
//! exchanges, then CompactSession; its latency and Octo's CPU per compaction (the
//! summary request itself is the mock's, so this is Octo's own share: reading history,
//! building the request, storing the summary, announcing it).

use std::time::Instant;

use serde_json::{Value, json};
use tonic::transport::Channel;

use crate::{client::OctoSetup, hist::Hist, proc::Server};
use octo::pb;

const KINDS: [(&str, &str); 3] = [
    ("plain", "hello there"),
    ("list_dir", "/tool list_dir {}"),
    ("shell", r#"/tool shell {"command":"true"}"#),
];

/// `[sandbox]` with everything off.
const UNCONFINED: &str = "\n[sandbox]\nconfine_files = false\ncpu_seconds = 0\nfile_size_mb = 0\naddress_space_mb = 0\nprocesses = 0\n";

pub async fn run(setup: &OctoSetup, turns: usize, compactions: usize) -> anyhow::Result<Value> {
    let mut kinds = serde_json::Map::new();
    let server = setup.start().await?;
    let channel = crate::proc::connect(&server.url()).await?;
    let session = auto_session(&channel).await?;
    for (kind, text) in KINDS {
        kinds.insert(
            kind.into(),
            measure(&server, &channel, &session, text, turns).await?,
        );
    }
    let compaction = compact(&server, &channel, compactions).await?;
    server.stop().await;

    // The same shell call without the sandbox, on a server configured so.
    setup.write_config()?;
    let mut config = std::fs::read_to_string(setup.config_path())?;
    config.push_str(UNCONFINED);
    std::fs::write(setup.config_path(), config)?;
    let server =
        crate::client::start_octo(&setup.octo, &setup.config_path(), &setup.data_dir()).await?;
    let channel = crate::proc::connect(&server.url()).await?;
    let session = auto_session(&channel).await?;
    kinds.insert(
        "shell_unconfined".into(),
        measure(&server, &channel, &session, KINDS[2].1, turns).await?,
    );
    server.stop().await;
    Ok(json!({"turns": turns, "kinds": kinds, "compaction": compaction}))
}

async fn auto_session(channel: &Channel) -> anyhow::Result<String> {
    let mut sessions = pb::session_service_client::SessionServiceClient::new(channel.clone());
    Ok(sessions
        .create_session(pb::CreateSessionRequest {
            session: Some(pb::Session {
                display_name: "bench-tools".into(),
                permission_mode: pb::PermissionMode::AutoApprove as i32,
                system_prompt: "Be brief.".into(),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .name)
}

async fn send_and_wait(
    chat: &mut pb::chat_service_client::ChatServiceClient<Channel>,
    session: &str,
    text: &str,
) -> anyhow::Result<()> {
    let answer = chat
        .send_message_and_wait(pb::SendMessageAndWaitRequest {
            session: session.to_owned(),
            parts: crate::client::text_parts(text.to_owned()),
            ..Default::default()
        })
        .await?
        .into_inner();
    let status = answer.turn.as_ref().map(|t| t.status());
    anyhow::ensure!(
        status == Some(pb::TurnStatus::Succeeded),
        "turn {text:?} ended {status:?}"
    );
    Ok(())
}

async fn measure(
    server: &Server,
    channel: &Channel,
    session: &str,
    text: &str,
    turns: usize,
) -> anyhow::Result<Value> {
    let mut chat = pb::chat_service_client::ChatServiceClient::new(channel.clone());
    // One warm-up turn: first-use costs (the tool's first spawn, caches) stay out.
    send_and_wait(&mut chat, session, text).await?;
    let mut latency = Hist::default();
    let cpu = server.cpu()?;
    for _ in 0..turns {
        let started = Instant::now();
        send_and_wait(&mut chat, session, text).await?;
        latency.record(started.elapsed().as_micros() as u64);
    }
    let cpu = server.cpu()? - cpu;
    Ok(json!({
        "latency": latency.json_ms(),
        "cpu_per_turn_us": cpu.as_micros() as f64 / turns as f64,
    }))
}

async fn compact(server: &Server, channel: &Channel, times: usize) -> anyhow::Result<Value> {
    let mut chat = pb::chat_service_client::ChatServiceClient::new(channel.clone());
    let session = auto_session(channel).await?;
    let long = "lorem ".repeat(70);
    let mut latency = Hist::default();
    let mut cpu = std::time::Duration::ZERO;
    let mut replaced = 0;
    for i in 0..times {
        for j in 0..2 {
            send_and_wait(&mut chat, &session, &format!("topic {i}.{j} {long}")).await?;
        }
        let before = server.cpu()?;
        let started = Instant::now();
        let answer = chat
            .compact_session(pb::CompactSessionRequest {
                session: session.clone(),
            })
            .await?
            .into_inner();
        latency.record(started.elapsed().as_micros() as u64);
        cpu += server.cpu()? - before;
        anyhow::ensure!(answer.compacted, "compaction {i} had nothing to do");
        replaced = answer.summary.map_or(0, |s| s.replaced_messages);
    }
    Ok(json!({
        "compactions": times,
        "replaced_messages_at_end": replaced,
        "latency": latency.json_ms(),
        "cpu_per_compaction_us": cpu.as_micros() as f64 / times.max(1) as f64,
    }))
}

pub fn print(result: &Value) {
    println!("== tools (one session, the mock model: Octo's own cost per turn)");
    println!(
        "{:<18} {:>9} {:>9} {:>9} {:>13}",
        "kind", "p50 ms", "p99 ms", "mean ms", "CPU/turn µs"
    );
    let plain_cpu = result["kinds"]["plain"]["cpu_per_turn_us"]
        .as_f64()
        .unwrap_or(0.0);
    for kind in ["plain", "list_dir", "shell", "shell_unconfined"] {
        let k = &result["kinds"][kind];
        let cpu = k["cpu_per_turn_us"].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:<18} {:>9.3} {:>9.3} {:>9.3} {:>13.0}{}",
            kind,
            k["latency"]["p50_ms"].as_f64().unwrap_or(f64::NAN),
            k["latency"]["p99_ms"].as_f64().unwrap_or(f64::NAN),
            k["latency"]["mean_ms"].as_f64().unwrap_or(f64::NAN),
            cpu,
            if kind == "plain" {
                String::new()
            } else {
                format!("  (+{:.0} over plain)", cpu - plain_cpu)
            }
        );
    }
    let c = &result["compaction"];
    println!(
        "compaction: {} runs, p50 {:.3} ms, p99 {:.3} ms, Octo CPU {:.0} µs each",
        c["compactions"],
        c["latency"]["p50_ms"].as_f64().unwrap_or(f64::NAN),
        c["latency"]["p99_ms"].as_f64().unwrap_or(f64::NAN),
        c["cpu_per_compaction_us"].as_f64().unwrap_or(f64::NAN),
    );
}
