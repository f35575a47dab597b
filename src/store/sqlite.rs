//! The embedded SQLite store: WAL mode, foreign keys, versioned migrations run at open.
//! One writer connection serialises writes; readers come from a small pool so reads run
//! beside a write. All SQLite calls run on tokio's blocking pool, at most one write and
//! `READERS` reads at a time; callers beyond that wait without holding a thread.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

mod cluster;
mod mcp_servers;
mod models;
mod outbox;
mod profiles;
mod schedules;
mod sessions;
mod summaries;
mod triggers;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use tokio::sync::Semaphore;

use super::{
    MessageStore, Store, TurnStore,
    codec::{self, MESSAGE_COLUMNS, TURN_COLUMNS, json_name},
};
use crate::domain::{
    Error, Message, Part, Result, Role, Timestamp, ToolCallRecord, Turn, TurnStatus, Usage,
    cluster::Fence, outbox::OutboxDelivery,
};

/// Versioned schema changes; version N is the N-th entry. Never edit a released entry:
/// add a new one.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/sqlite/0001_sessions.sql"),
    include_str!("migrations/sqlite/0002_turns.sql"),
    include_str!("migrations/sqlite/0003_history_positions.sql"),
    include_str!("migrations/sqlite/0004_models_schedules.sql"),
    include_str!("migrations/sqlite/0005_waiting_messages.sql"),
    include_str!("migrations/sqlite/0006_cluster.sql"),
    include_str!("migrations/sqlite/0007_outbox.sql"),
    include_str!("migrations/sqlite/0008_run_runners.sql"),
    include_str!("migrations/sqlite/0009_mcp_servers.sql"),
    include_str!("migrations/sqlite/0010_session_mcp_servers.sql"),
    include_str!("migrations/sqlite/0011_summaries.sql"),
    include_str!("migrations/sqlite/0012_trash.sql"),
    include_str!("migrations/sqlite/0013_profiles.sql"),
    include_str!("migrations/sqlite/0014_triggers.sql"),
];

/// Readers kept open for reuse.
/// Reads at once, and reader connections kept. A burst of requests (1,000 turns starting
/// together) waits here, in order, rather than each taking a blocking-pool thread: that
/// grew the process to ~160 threads, each parked on a connection.
const READERS: usize = 8;

pub struct SqliteStore {
    inner: Arc<Inner>,
}

/// Notices a slow listener may fall behind by before it misses some (as on Postgres,
/// where notices to a listener that is not reading are best effort too).
const NOTICE_BUFFER: usize = 1024;

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// One write at a time holds a thread; the others wait without one.
    write_turn: Arc<Semaphore>,
    read_turns: Arc<Semaphore>,
    /// `publish_notice` within this process: every listener of this store.
    notices: tokio::sync::broadcast::Sender<String>,
}

/// A write transaction that takes the write lock at BEGIN. A deferred one that reads
/// first fails at once with SQLITE_BUSY (no busy wait) when another connection, such as a
/// second server on the same database, wrote in between.
fn immediate(conn: &mut Connection) -> Result<rusqlite::Transaction<'_>> {
    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(storage_error)
}

/// Runs a statement through the connection's statement cache: SQL is parsed once per
/// connection, not on every call.
fn exec<P: rusqlite::Params>(conn: &Connection, sql: &str, params: P) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// `query_row` through the statement cache.
fn query_one<T, P, F>(conn: &Connection, sql: &str, params: P, f: F) -> rusqlite::Result<T>
where
    P: rusqlite::Params,
    F: FnOnce(&Row<'_>) -> rusqlite::Result<T>,
{
    conn.prepare_cached(sql)?.query_row(params, f)
}

/// Distinct statements kept prepared per connection.
const STATEMENT_CACHE: usize = 64;

fn storage_error(err: impl std::fmt::Display) -> Error {
    Error::Internal(format!("storage: {err}"))
}

/// `octo.db` + `-wal` → `octo.db-wal`.
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // NORMAL is durable across process crashes in WAL mode (a power loss may lose the
    // last transactions, never corrupt the database).
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;",
    )?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it to the current
    /// schema.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || -> Result<SqliteStore> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|err| {
                    storage_error(format!("cannot create {}: {err}", parent.display()))
                })?;
            }
            // The database (and so its -wal and -shm files, which SQLite creates with the
            // database's mode) holds conversations and stored API keys: owner only.
            crate::files::private_file(&path, true)
                .and_then(|()| crate::files::private_file(&sidecar(&path, "-wal"), false))
                .and_then(|()| crate::files::private_file(&sidecar(&path, "-shm"), false))
                .map_err(|err| storage_error(format!("cannot secure {}: {err}", path.display())))?;
            let mut writer = open_connection(&path)
                .map_err(|err| storage_error(format!("cannot open {}: {err}", path.display())))?;
            migrate(&mut writer)?;
            // Checkpoints (the only fsyncs in WAL mode with synchronous = NORMAL) run on
            // a background thread, not inside whichever commit crosses the threshold, so
            // a durable acknowledgement never waits for one.
            writer
                .execute_batch("PRAGMA wal_autocheckpoint = 0;")
                .map_err(storage_error)?;
            let inner = Arc::new(Inner {
                path,
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                write_turn: Arc::new(Semaphore::new(1)),
                read_turns: Arc::new(Semaphore::new(READERS)),
                notices: tokio::sync::broadcast::channel(NOTICE_BUFFER).0,
            });
            spawn_checkpointer(Arc::downgrade(&inner));
            Ok(SqliteStore { inner })
        })
        .await
        .map_err(storage_error)?
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let turn = self.inner.read_turns.clone().acquire_owned().await;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            // Held by the thread, so a cancelled caller does not free it early.
            let _turn = turn.map_err(storage_error)?;
            let pooled = inner.readers.lock().map_err(storage_error)?.pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => open_connection(&inner.path).map_err(storage_error)?,
            };
            let result = f(&conn);
            let mut readers = inner.readers.lock().map_err(storage_error)?;
            if readers.len() < READERS {
                readers.push(conn);
            }
            result
        })
        .await
        .map_err(storage_error)?
    }

    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let turn = self.inner.write_turn.clone().acquire_owned().await;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let _turn = turn.map_err(storage_error)?;
            let mut conn = inner.writer.lock().map_err(storage_error)?;
            f(&mut conn)
        })
        .await
        .map_err(storage_error)?
    }
}

/// How often the background thread checkpoints the WAL into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Checkpoints the WAL (PASSIVE: never blocks writers or readers) until the store is
/// dropped.
fn spawn_checkpointer(inner: std::sync::Weak<Inner>) {
    let spawned = std::thread::Builder::new()
        .name("octo-checkpoint".into())
        .spawn(move || {
            let mut conn: Option<Connection> = None;
            loop {
                std::thread::sleep(CHECKPOINT_EVERY);
                let Some(inner) = inner.upgrade() else { return };
                if conn.is_none() {
                    conn = open_connection(&inner.path).ok();
                }
                drop(inner);
                if let Some(c) = &conn
                    && let Err(err) = c.execute_batch("PRAGMA wal_checkpoint(PASSIVE);")
                {
                    tracing::debug!(error = %err, "WAL checkpoint failed");
                }
            }
        });
    if let Err(err) = spawned {
        tracing::warn!(error = %err, "cannot start the WAL checkpoint thread");
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let current: usize = query_one(conn, "PRAGMA user_version", [], |row| row.get::<_, i64>(0))
        .map_err(storage_error)? as usize;
    if current > MIGRATIONS.len() {
        return Err(storage_error(format!(
            "the database has schema version {current}, newer than this Octo knows ({}); upgrade Octo",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = index + 1;
        let tx = immediate(conn)?;
        tx.execute_batch(sql)
            .map_err(|err| storage_error(format!("migration {version}: {err}")))?;
        tx.pragma_update(None, "user_version", version as i64)
            .map_err(storage_error)?;
        tx.commit().map_err(storage_error)?;
        tracing::info!(version, "applied database migration");
    }
    Ok(())
}

// --- JSON columns: the shared codec, with decode errors as rusqlite conversion errors ---

fn from_json_name<T: serde::de::DeserializeOwned>(text: &str) -> rusqlite::Result<T> {
    codec::from_json_name(text).map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(err))
    })
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> rusqlite::Result<T> {
    codec::from_json(text).map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(err))
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    codec::to_json(value).map_err(storage_error)
}

// --- messages and turns ---

fn message_from_row(row: &Row<'_>) -> rusqlite::Result<Message> {
    let parts: String = row.get(4)?;
    Ok(Message {
        id: row.get(0)?,
        session_id: row.get(1)?,
        turn_id: row.get(2)?,
        role: from_json_name::<Role>(&row.get::<_, String>(3)?)?,
        parts: from_json::<Vec<Part>>(&parts)?,
        create_time: Timestamp(row.get(5)?),
        incomplete: row.get(6)?,
        model: row.get(7)?,
        position: row.get(8)?,
    })
}

fn insert_message(conn: &Connection, m: &Message) -> Result<()> {
    write_message(conn, m, "")
}

/// Inserts a message row; with `upsert`, replaces its content but keeps a position it
/// already has when the new one has none.
fn write_message(conn: &Connection, m: &Message, upsert: &str) -> Result<()> {
    exec(conn,
        &format!("INSERT INTO messages (id, session_id, turn_id, role, parts, create_time, incomplete, model, position) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) {upsert}"),
        params![
            m.id,
            m.session_id,
            m.turn_id,
            json_name(&m.role),
            to_json(&m.parts)?,
            m.create_time.0,
            m.incomplete,
            m.model,
            m.position,
        ],
    )
    .map_err(storage_error)?;
    Ok(())
}

const MESSAGE_UPSERT: &str = "ON CONFLICT (id) DO UPDATE SET turn_id = excluded.turn_id, \
     role = excluded.role, parts = excluded.parts, incomplete = excluded.incomplete, \
     model = excluded.model, position = COALESCE(excluded.position, messages.position)";

fn turn_from_row(row: &Row<'_>) -> rusqlite::Result<Turn> {
    let error_reason: Option<String> = row.get(11)?;
    let error_message: Option<String> = row.get(12)?;
    let tool_calls: String = row.get(17)?;
    Ok(Turn {
        id: row.get(0)?,
        session_id: row.get(1)?,
        status: from_json_name::<TurnStatus>(&row.get::<_, String>(2)?)?,
        user_message_id: row.get(3)?,
        model: row.get(4)?,
        usage: Usage {
            input_tokens: row.get(5)?,
            output_tokens: row.get(6)?,
            reasoning_tokens: row.get(7)?,
            cached_input_tokens: row.get(8)?,
        },
        latency_micros: row.get(9)?,
        time_to_first_token_micros: row.get(10)?,
        error: codec::turn_error(error_reason, error_message),
        create_time: Timestamp(row.get(13)?),
        start_time: row.get::<_, Option<i64>>(14)?.map(Timestamp),
        end_time: row.get::<_, Option<i64>>(15)?.map(Timestamp),
        step_count: row.get(16)?,
        tool_calls: from_json::<Vec<ToolCallRecord>>(&tool_calls)?,
    })
}

fn insert_turn(conn: &Connection, t: &Turn) -> Result<()> {
    write_turn(conn, t, "INSERT")
}

fn write_turn(conn: &Connection, t: &Turn, verb: &str) -> Result<()> {
    exec(
        conn,
        &format!(
            "{verb} INTO turns ({TURN_COLUMNS}) VALUES \
             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)"
        ),
        params![
            t.id,
            t.session_id,
            json_name(&t.status),
            t.user_message_id,
            t.model,
            t.usage.input_tokens,
            t.usage.output_tokens,
            t.usage.reasoning_tokens,
            t.usage.cached_input_tokens,
            t.latency_micros,
            t.time_to_first_token_micros,
            t.error.as_ref().map(|e| e.reason.clone()),
            t.error.as_ref().map(|e| e.message.clone()),
            t.create_time.0,
            t.start_time.map(|t| t.0),
            t.end_time.map(|t| t.0),
            t.step_count,
            to_json(&t.tool_calls)?,
        ],
    )
    .map_err(storage_error)?;
    Ok(())
}

/// Counts a new message in its session: count, preview, activity time.
fn count_message(conn: &Connection, m: &Message) -> Result<()> {
    let text = m.text();
    let preview = crate::domain::session::preview(&text);
    exec(
        conn,
        "UPDATE sessions SET message_count = message_count + 1, \
         last_message_preview = CASE WHEN ?2 = '' THEN last_message_preview ELSE ?2 END, \
         last_active_time = MAX(last_active_time, ?3) WHERE id = ?1",
        params![m.session_id, preview, m.create_time.0],
    )
    .map_err(storage_error)?;
    Ok(())
}

fn query_messages(
    conn: &Connection,
    sql: &str,
    values: Vec<rusqlite::types::Value>,
) -> Result<Vec<Message>> {
    let mut stmt = conn.prepare_cached(sql).map_err(storage_error)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(values), message_from_row)
        .map_err(storage_error)?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(storage_error)
}

fn query_turns(
    conn: &Connection,
    sql: &str,
    values: Vec<rusqlite::types::Value>,
) -> Result<Vec<Turn>> {
    let mut stmt = conn.prepare_cached(sql).map_err(storage_error)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(values), turn_from_row)
        .map_err(storage_error)?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(storage_error)
}

#[async_trait]
impl Store for SqliteStore {
    async fn flush(&self) -> Result<()> {
        self.write(|conn| {
            conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                .map_err(storage_error)
        })
        .await
    }

    async fn check(&self) -> Result<()> {
        self.read(|conn| {
            conn.query_row("PRAGMA user_version", [], |_| Ok(()))
                .map_err(storage_error)
        })
        .await
    }
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn append_user_message(
        &self,
        message: &Message,
        turn: Option<&Turn>,
        fence: Fence,
    ) -> Result<()> {
        let message = message.clone();
        let turn = turn.cloned();
        self.write(move |conn| {
            let tx = immediate(conn)?;
            cluster::check_fence(&tx, &message.session_id, fence)?;
            // In the trash: read-only (the write lock is held, so the move cannot commit
            // between this check and the insert).
            let deleted: Option<Option<i64>> = query_one(
                &tx,
                "SELECT delete_time FROM sessions WHERE id = ?1",
                [&message.session_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(storage_error)?;
            if let Some(Some(_)) = deleted {
                return Err(crate::domain::session::session_deleted(&message.session_id));
            }
            if let Some(turn) = &turn {
                write_turn(&tx, turn, "INSERT")?;
            }
            insert_message(&tx, &message)?;
            count_message(&tx, &message)?;
            tx.commit().map_err(storage_error)
        })
        .await
    }

    async fn put_message(&self, message: &Message, fence: Fence) -> Result<()> {
        let message = message.clone();
        self.write(move |conn| {
            let tx = immediate(conn)?;
            cluster::check_fence(&tx, &message.session_id, fence)?;
            let exists: bool = query_one(
                &tx,
                "SELECT 1 FROM messages WHERE id = ?1",
                [&message.id],
                |_| Ok(true),
            )
            .optional()
            .map_err(storage_error)?
            .unwrap_or(false);
            write_message(&tx, &message, MESSAGE_UPSERT)?;
            if !exists {
                count_message(&tx, &message)?;
            } else if !message.text().is_empty() {
                let preview = crate::domain::session::preview(&message.text());
                exec(
                    &tx,
                    "UPDATE sessions SET last_message_preview = ?2 WHERE id = ?1",
                    params![message.session_id, preview],
                )
                .map_err(storage_error)?;
            }
            tx.commit().map_err(storage_error)
        })
        .await
    }

    async fn get_message(&self, session_id: &str, message_id: &str) -> Result<Option<Message>> {
        let (session_id, message_id) = (session_id.to_owned(), message_id.to_owned());
        self.read(move |conn| {
            Ok(query_messages(
                conn,
                &format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = ?1 AND id = ?2"
                ),
                vec![session_id.into(), message_id.into()],
            )?
            .pop())
        })
        .await
    }

    async fn list_messages(
        &self,
        session_id: &str,
        before: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Message>> {
        let session_id = session_id.to_owned();
        let before = before.map(str::to_owned);
        let after = after.map(str::to_owned);
        self.read(move |conn| {
            // Conversation order, newest first: messages still waiting for their turn (no
            // position yet) are the newest, by id; then by position. Two index range
            // scans (messages_waiting, messages_history) that stop at `limit`, instead of
            // sorting the whole session on COALESCE(position, MAX).
            let bound = |id: Option<String>| -> Result<Option<Option<(Option<i64>, String)>>> {
                let Some(id) = id else { return Ok(None) };
                let position: Option<Option<i64>> = query_one(
                    conn,
                    "SELECT position FROM messages WHERE id = ?1",
                    [&id],
                    |row| row.get(0),
                )
                .optional()
                .map_err(storage_error)?;
                // An unknown bound matches nothing, as before.
                Ok(Some(position.map(|p| (p, id))))
            };
            let before = bound(before)?;
            let after = bound(after)?;
            if matches!(before, Some(None)) || matches!(after, Some(None)) {
                return Ok(Vec::new());
            }
            let before = before.flatten();
            let after = after.flatten();
            let mut out = Vec::new();
            // Waiting messages: only below a waiting `before`, above any positioned `after`.
            let waiting_allowed = before.as_ref().is_none_or(|(p, _)| p.is_none());
            if waiting_allowed {
                let mut sql = format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = ?1 AND position IS NULL"
                );
                let mut values: Vec<rusqlite::types::Value> = vec![session_id.clone().into()];
                if let Some((_, id)) = &before {
                    values.push(id.clone().into());
                    sql.push_str(&format!(" AND id < ?{}", values.len()));
                }
                if let Some((None, id)) = &after {
                    values.push(id.clone().into());
                    sql.push_str(&format!(" AND id > ?{}", values.len()));
                }
                values.push((limit as i64).into());
                sql.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", values.len()));
                out = query_messages(conn, &sql, values)?;
            }
            // Positioned messages: none above a waiting `after`.
            let positioned_allowed = after.as_ref().is_none_or(|(p, _)| p.is_some());
            if out.len() < limit && positioned_allowed {
                let mut sql = format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages WHERE session_id = ?1 AND position IS NOT NULL"
                );
                let mut values: Vec<rusqlite::types::Value> = vec![session_id.into()];
                if let Some((Some(position), id)) = &before {
                    values.push((*position).into());
                    values.push(id.clone().into());
                    sql.push_str(&format!(
                        " AND (position, id) < (?{}, ?{})",
                        values.len() - 1,
                        values.len()
                    ));
                }
                if let Some((Some(position), id)) = &after {
                    values.push((*position).into());
                    values.push(id.clone().into());
                    sql.push_str(&format!(
                        " AND (position, id) > (?{}, ?{})",
                        values.len() - 1,
                        values.len()
                    ));
                }
                values.push(((limit - out.len()) as i64).into());
                sql.push_str(&format!(
                    " ORDER BY position DESC, id DESC LIMIT ?{}",
                    values.len()
                ));
                out.extend(query_messages(conn, &sql, values)?);
            }
            Ok(out)
        })
        .await
    }

    async fn history(&self, session_id: &str) -> Result<Vec<Message>> {
        let session_id = session_id.to_owned();
        self.read(move |conn| {
            query_messages(
                conn,
                &format!(
                    "SELECT {MESSAGE_COLUMNS} FROM messages \
                     WHERE session_id = ?1 AND position IS NOT NULL ORDER BY position"
                ),
                vec![session_id.into()],
            )
        })
        .await
    }

    async fn next_position(&self, session_id: &str) -> Result<i64> {
        let session_id = session_id.to_owned();
        self.read(move |conn| {
            query_one(
                conn,
                "SELECT COALESCE(MAX(position), 0) + 1 FROM messages WHERE session_id = ?1",
                [&session_id],
                |row| row.get(0),
            )
            .map_err(storage_error)
        })
        .await
    }

    async fn set_message_position(
        &self,
        session_id: &str,
        message_id: &str,
        position: i64,
        fence: Fence,
    ) -> Result<()> {
        let (session_id, message_id) = (session_id.to_owned(), message_id.to_owned());
        self.write(move |conn| {
            cluster::fenced(conn, &session_id, fence, |conn| {
                exec(
                    conn,
                    "UPDATE messages SET position = ?3 WHERE session_id = ?1 AND id = ?2",
                    params![session_id, message_id, position],
                )
                .map_err(storage_error)?;
                Ok(())
            })
        })
        .await
    }
}

#[async_trait]
impl TurnStore for SqliteStore {
    async fn put_turn_with(
        &self,
        turn: &Turn,
        fence: Fence,
        deliveries: &[OutboxDelivery],
    ) -> Result<()> {
        let turn = turn.clone();
        let deliveries = deliveries.to_vec();
        self.write(move |conn| {
            let tx = immediate(conn)?;
            cluster::check_fence(&tx, &turn.session_id, fence)?;
            let previous: Option<String> = query_one(&tx, "SELECT status FROM turns WHERE id = ?1", [&turn.id], |row| row.get(0))
                .optional()
                .map_err(storage_error)?;
            let was_terminal = previous
                .as_deref()
                .and_then(|s| from_json_name::<TurnStatus>(s).ok())
                .is_some_and(TurnStatus::is_terminal);
            write_turn(&tx, &turn, "INSERT OR REPLACE")?;
            if turn.status.is_terminal() && !was_terminal {
                let u = &turn.usage;
                exec(&tx,
                    "UPDATE sessions SET input_tokens = input_tokens + ?2, output_tokens = output_tokens + ?3, \
                     reasoning_tokens = reasoning_tokens + ?4, cached_input_tokens = cached_input_tokens + ?5, \
                     last_active_time = MAX(last_active_time, ?6) WHERE id = ?1",
                    params![
                        turn.session_id,
                        u.input_tokens,
                        u.output_tokens,
                        u.reasoning_tokens,
                        u.cached_input_tokens,
                        turn.end_time.unwrap_or(turn.create_time).0
                    ],
                )
                .map_err(storage_error)?;
            }
            outbox::insert_deliveries(&tx, &deliveries)?;
            tx.commit().map_err(storage_error)
        })
        .await
    }

    async fn get_turn(&self, session_id: &str, turn_id: &str) -> Result<Option<Turn>> {
        let (session_id, turn_id) = (session_id.to_owned(), turn_id.to_owned());
        self.read(move |conn| {
            Ok(query_turns(
                conn,
                &format!("SELECT {TURN_COLUMNS} FROM turns WHERE session_id = ?1 AND id = ?2"),
                vec![session_id.into(), turn_id.into()],
            )?
            .pop())
        })
        .await
    }

    async fn list_turns(
        &self,
        session_id: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Turn>> {
        let session_id = session_id.to_owned();
        let before = before.map(str::to_owned);
        self.read(move |conn| {
            let mut sql = format!("SELECT {TURN_COLUMNS} FROM turns WHERE session_id = ?1");
            let mut values: Vec<rusqlite::types::Value> = vec![session_id.into()];
            if let Some(before) = before {
                values.push(before.into());
                sql.push_str(&format!(" AND id < ?{}", values.len()));
            }
            values.push((limit as i64).into());
            sql.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", values.len()));
            query_turns(conn, &sql, values)
        })
        .await
    }

    async fn unfinished_turns(&self, session_id: Option<&str>) -> Result<Vec<Turn>> {
        let session_id = session_id.map(str::to_owned);
        self.read(move |conn| {
            query_turns(
                conn,
                &format!(
                    "SELECT {TURN_COLUMNS} FROM turns WHERE status IN ('queued', 'running') \
                     AND (?1 IS NULL OR session_id = ?1) ORDER BY id"
                ),
                vec![session_id.map_or(rusqlite::types::Value::Null, rusqlite::types::Value::Text)],
            )
        })
        .await
    }
}
