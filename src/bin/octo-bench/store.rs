//! Scenarios `store` and `startup`.
//!
//! `store` seeds the SQLite file directly (inserting a million sessions through the API
//! would take far longer than the measurement): Octo creates the database and one
//! template session (and one message) through the API, stops cleanly, then the bench
//! clones the template rows in one transaction per batch, column by column as the
//! server's own schema lists them (`PRAGMA table_info`), and restarts Octo on the file.

use std::time::{Duration, Instant};

use anyhow::anyhow;
use octo::pb::{self, chat_service_client::ChatServiceClient};
use rusqlite::Connection;
use serde_json::json;
use tonic::transport::Channel;

use crate::{
    client::{OctoSetup, create_session, text_parts},
    hist::Hist,
    proc::Server,
};

pub struct StoreSizes {
    pub sends: usize,
    pub idle_sessions: u64,
    pub sessions: u64,
    pub messages: u64,
    pub queries: usize,
}

/// Clones `count` rows of `table` from the row `id = template`, replacing the columns
/// in `replace` with SQL expressions over `i` (1..=count).
fn clone_rows(
    conn: &mut Connection,
    table: &str,
    template: &str,
    count: u64,
    replace: &[(&str, String)],
) -> anyhow::Result<()> {
    let columns: Vec<String> = conn
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let exprs: Vec<String> = columns
        .iter()
        .map(|c| {
            replace
                .iter()
                .find(|(name, _)| name == c)
                .map_or_else(|| format!("t.{c}"), |(_, e)| e.clone())
        })
        .collect();
    let sql = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1) \
         INSERT INTO {table} ({}) SELECT {} FROM n, {table} AS t WHERE t.id = ?2",
        columns.join(", "),
        exprs.join(", ")
    );
    let tx = conn.transaction()?;
    tx.execute(&sql, rusqlite::params![count as i64, template])?;
    tx.commit()?;
    Ok(())
}

fn seed_sessions(
    db: &std::path::Path,
    template: &str,
    batch: u32,
    count: u64,
) -> anyhow::Result<()> {
    let mut conn = Connection::open(db)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")?;
    clone_rows(
        &mut conn,
        "sessions",
        template,
        count,
        &[
            (
                "id",
                format!("printf('%08x-0000-7000-8000-%012x', {batch}, i)"),
            ),
            ("display_name", "'seeded ' || i".into()),
            ("create_time", "t.create_time - i * 1000".into()),
            ("update_time", "t.update_time - i * 1000".into()),
            ("last_active_time", "t.last_active_time - i * 1000".into()),
        ],
    )
}

fn seed_messages(db: &std::path::Path, template: &str, count: u64) -> anyhow::Result<()> {
    let mut conn = Connection::open(db)?;
    conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")?;
    clone_rows(
        &mut conn,
        "messages",
        template,
        count,
        &[
            ("id", "printf('00000000-0000-7000-9000-%012x', i)".into()),
            ("position", "1000 + i".into()),
            ("create_time", "t.create_time + i".into()),
        ],
    )
}

async fn timed<F, T>(hist: &mut Hist, f: F) -> anyhow::Result<T>
where
    F: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let started = Instant::now();
    let out = f.await?;
    hist.record(started.elapsed().as_micros() as u64);
    Ok(out)
}

/// Idle RSS: one ListSessions (so the store has been read), then a moment to settle.
async fn settled_rss(server: &Server, channel: &Channel) -> anyhow::Result<u64> {
    let mut sessions = pb::session_service_client::SessionServiceClient::new(channel.clone());
    sessions
        .list_sessions(pb::ListSessionsRequest {
            page_size: 50,
            ..Default::default()
        })
        .await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    server.rss_kib()
}

pub async fn run(setup: &OctoSetup, sizes: &StoreSizes) -> anyhow::Result<serde_json::Value> {
    let server = setup.start().await?;
    let channel = crate::proc::connect(&server.url()).await?;
    let empty_rss = settled_rss(&server, &channel).await?;
    // SendMessage: the durable acknowledgement (user message and turn stored).
    let mut sessions = Vec::new();
    for _ in 0..sizes.sends.clamp(1, 50) {
        sessions.push(create_session(&channel, "bench-store").await?);
    }
    let mut chat = ChatServiceClient::new(channel.clone());
    let mut send = Hist::default();
    for i in 0..sizes.sends {
        timed(
            &mut send,
            chat.send_message(pb::SendMessageRequest {
                session: sessions[i % sessions.len()].clone(),
                parts: text_parts(format!("store {i}")),
                ..Default::default()
            }),
        )
        .await?;
    }
    // The templates: a session, and a session with one exchange.
    let template = sessions[0].trim_start_matches("sessions/").to_owned();
    let big = sessions[1 % sessions.len()].clone();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let message = chat
        .list_messages(pb::ListMessagesRequest {
            parent: big.clone(),
            page_size: 1,
            ..Default::default()
        })
        .await?
        .into_inner()
        .messages
        .pop()
        .ok_or_else(|| anyhow!("no message to clone"))?;
    let message_id = message
        .name
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    server.stop().await;

    let db = setup.database();
    let started = Instant::now();
    seed_sessions(&db, &template, 1, sizes.idle_sessions)?;
    let seed_idle = started.elapsed();
    let server =
        crate::client::start_octo(&setup.octo, &setup.config_path(), &setup.data_dir()).await?;
    let channel = crate::proc::connect(&server.url()).await?;
    let idle_rss = settled_rss(&server, &channel).await?;
    server.stop().await;

    let started = Instant::now();
    seed_sessions(
        &db,
        &template,
        2,
        sizes.sessions.saturating_sub(sizes.idle_sessions),
    )?;
    seed_messages(&db, &message_id, sizes.messages)?;
    let seed_rest = started.elapsed();
    let server =
        crate::client::start_octo(&setup.octo, &setup.config_path(), &setup.data_dir()).await?;
    let channel = crate::proc::connect(&server.url()).await?;
    let mut list = pb::session_service_client::SessionServiceClient::new(channel.clone());
    let mut chat = ChatServiceClient::new(channel.clone());
    // ListSessions: first pages and pages deeper in, following page tokens.
    let mut list_sessions = Hist::default();
    let mut token = String::new();
    for i in 0..sizes.queries {
        if i % 20 == 0 {
            token.clear();
        }
        let page = timed(
            &mut list_sessions,
            list.list_sessions(pb::ListSessionsRequest {
                page_size: 50,
                page_token: token.clone(),
                ..Default::default()
            }),
        )
        .await?
        .into_inner();
        token = page.next_page_token;
    }
    let mut list_messages = Hist::default();
    let mut token = String::new();
    let mut listed = 0;
    for i in 0..sizes.queries {
        if i % 20 == 0 {
            token.clear();
        }
        let page = timed(
            &mut list_messages,
            chat.list_messages(pb::ListMessagesRequest {
                parent: big.clone(),
                page_size: 50,
                page_token: token.clone(),
                ..Default::default()
            }),
        )
        .await?
        .into_inner();
        listed += page.messages.len();
        token = page.next_page_token;
    }
    if listed == 0 {
        return Err(anyhow!("ListMessages returned nothing"));
    }
    let rss_big = server.rss_kib()?;
    server.stop().await;
    Ok(json!({
        "send_message_ack": send.json_ms(),
        "list_sessions": list_sessions.json_ms(),
        "list_messages": list_messages.json_ms(),
        "stored_sessions": sizes.sessions,
        "messages_in_session": sizes.messages,
        "rss_empty_kib": empty_rss,
        "rss_idle_sessions_kib": idle_rss,
        "idle_sessions": sizes.idle_sessions,
        "rss_added_by_idle_sessions_kib": idle_rss as i64 - empty_rss as i64,
        "rss_after_queries_kib": rss_big,
        "seed_seconds": (seed_idle + seed_rest).as_secs_f64(),
    }))
}

/// Start-up: spawn to health SERVING, `starts` times (first on a new data dir, then
/// warm), and idle RSS.
pub async fn startup(setup: &OctoSetup, starts: usize) -> anyhow::Result<serde_json::Value> {
    setup.write_config()?;
    let mut cold = Hist::default();
    let mut warm = Hist::default();
    let mut rss = 0;
    for i in 0..starts.max(1) {
        if i == 0 {
            let _ = std::fs::remove_dir_all(setup.data_dir());
        }
        let started = Instant::now();
        let server =
            crate::client::start_octo(&setup.octo, &setup.config_path(), &setup.data_dir()).await?;
        let channel = crate::proc::connect(&server.url()).await?;
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        loop {
            let status = health
                .check(tonic_health::pb::HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(|r| r.into_inner().status);
            if status.ok()
                == Some(tonic_health::pb::health_check_response::ServingStatus::Serving as i32)
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let elapsed = started.elapsed().as_micros() as u64;
        if i == 0 { &mut cold } else { &mut warm }.record(elapsed);
        if i == 0 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            rss = server.rss_kib()?;
        }
        server.stop().await;
    }
    Ok(json!({
        "first_start_to_serving": cold.json_ms(),
        "start_to_serving": warm.json_ms(),
        "idle_rss_kib": rss,
    }))
}
