//! The Postgres store: the backend of a cluster, several Octo servers on one database.
//! It keeps the same contract as the SQLite store and gives the same results, orders and
//! errors (`tests/store.rs` runs one suite against both). This module owns the pool, the
//! schema migrations and the error mapping; each submodule implements one store trait.
//!
//! - **Pool**: deadpool over tokio-postgres, at most [`POOL_SIZE`] connections, made on
//!   demand; callers beyond that wait for one. Statements are prepared once per
//!   connection (deadpool's statement cache). No TLS yet: a URL asking for it
//!   (`sslmode=require`, `verify-ca`, `verify-full`) is refused at [`PostgresStore::open`].
//! - **Schema**: `migrations/postgres/*.sql`, applied at open in one transaction that
//!   holds a transaction-scoped advisory lock ([`MIGRATION_LOCK`]), so servers starting
//!   together migrate once and the others wait and find nothing to do. The version is the
//!   highest row of `schema_migrations`; a database newer than this binary is an error.
//! - **Concurrency**: Postgres has many writers where SQLite has one, so each invariant
//!   SQLite gets from its single writer is kept here by one atomic statement or by locks
//!   taken inside one transaction (READ COMMITTED), never by an unlocked
//!   read-modify-write:
//!   - compare-and-swap on `revision`, the event-sequence floor and a message's position
//!     are single `UPDATE ... WHERE` statements;
//!   - a write to a session's messages or turns that also changes the session's counters
//!     (message count, preview, usage, activity) or its allowed tools first locks the
//!     session row (`FOR NO KEY UPDATE`, which leaves foreign-key checks alone), then the
//!     children: writes to one session are serialised (so "was this turn terminal
//!     already?" and "is this message new?" are answered under the lock), and the lock
//!     order is the one a cascading `DELETE FROM sessions` takes, so they cannot deadlock;
//!   - model writes lock the `models` table against other writers (SHARE ROW EXCLUSIVE;
//!     reads go on), since "exactly one default" and "the first model is the default" are
//!     facts about the whole table, not one row;
//!   - a fire time is claimed by inserting its run under the unique (schedule, fire
//!     time) key, with the schedule row locked so it cannot be disabled or deleted
//!     between the check and the claim.
//!   - a fenced owner write (see `cluster`) also holds its session's lease row FOR SHARE,
//!     taken right after the session row, so an acquisition of the lease waits for it.
//! - **Text**: ids and searched text are `COLLATE "C"`: byte order like SQLite's BINARY.
//!   Postgres text cannot hold NUL: previews and error texts the store writes have it
//!   replaced (U+FFFD); JSON columns escape it; a client's own text with NUL fails.
//! - **One server per database, for now**: [`PostgresStore::hold_server_lock`] (taken by
//!   `store::open`, so by every server) keeps a session-level advisory lock on a
//!   connection of its own; a second server is refused at start until leases and routing
//!   let servers share a database. Tests that open two handles on purpose do not take it.
//! - **Errors**: a unique violation becomes the domain error SQLite returns for it
//!   (ALREADY_EXISTS for a session or model id); anything else is INTERNAL with its
//!   cause, which the API layer logs and does not show to clients. No `tokio_postgres`
//!   or `deadpool` type leaves this module.

mod cluster;
mod mcp_servers;
mod messages;
mod models;
mod outbox;
mod profiles;
mod schedules;
mod sessions;
mod summaries;
mod triggers;
mod turns;

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::{
    NoTls, Row,
    config::SslMode,
    error::SqlState,
    types::{FromSql, ToSql},
};

use super::Store;
use crate::domain::{Error, Result, Timestamp};

/// Versioned schema changes; version N is the N-th entry. Never edit a released entry:
/// add a new one.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/postgres/0001_initial.sql"),
    include_str!("migrations/postgres/0002_cluster.sql"),
    include_str!("migrations/postgres/0003_outbox.sql"),
    include_str!("migrations/postgres/0004_run_runners.sql"),
    include_str!("migrations/postgres/0005_mcp_servers.sql"),
    include_str!("migrations/postgres/0006_session_mcp_servers.sql"),
    include_str!("migrations/postgres/0007_summaries.sql"),
    include_str!("migrations/postgres/0008_trash.sql"),
    include_str!("migrations/postgres/0009_profiles.sql"),
    include_str!("migrations/postgres/0010_triggers.sql"),
];

/// The advisory lock key migrations run under ("octo" and 1), per database.
const MIGRATION_LOCK: i64 = 0x6f63_746f_0000_0001;

/// The session-level advisory lock a server holds on its database ("octo" and 2) until
/// several servers can share one (ownership leases and routing, issue 12).
const SERVER_LOCK: i64 = 0x6f63_746f_0000_0002;

/// Connections kept at most. Each is a Postgres backend process: several servers on one
/// database multiply this.
const POOL_SIZE: usize = 16;

/// How long connecting may take when the URL does not say (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The Postgres backend.
pub struct PostgresStore {
    pool: Pool,
    /// Where to open the connection that listens for change notices (outside the pool:
    /// LISTEN holds a connection for as long as it listens).
    config: tokio_postgres::Config,
    /// The connection holding [`SERVER_LOCK`], kept out of the pool for the store's life.
    server_lock: std::sync::Mutex<Option<deadpool_postgres::ClientWrapper>>,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:pass@host:port/db`) and migrates the schema.
    pub async fn open(url: &str) -> Result<PostgresStore> {
        let mut config = parse_url(url)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("octo");
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|err| storage_error(format!("cannot make the Postgres pool: {err}")))?;
        let store = PostgresStore {
            pool,
            config,
            server_lock: std::sync::Mutex::new(None),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Claims the database for this server alone: until servers can share one database
    /// (leases and routing), two on one would drive the same sessions twice, so the
    /// second is refused at start. The lock is a session-level advisory lock on a
    /// connection this store keeps; it goes when the store (or its connection) does.
    pub async fn hold_server_lock(&self) -> Result<()> {
        let client = self.client().await?;
        let locked: bool = client
            .query_one(&format!("SELECT pg_try_advisory_lock({SERVER_LOCK})"), &[])
            .await
            .map_err(pg_error)?
            .try_get(0)
            .map_err(pg_error)?;
        if !locked {
            return Err(Error::FailedPrecondition {
                reason: crate::domain::reason::DATABASE_IN_USE,
                message: "another Octo server is using this database: several servers on one \
                          Postgres need cluster mode, which is not built yet; stop the other \
                          server or give this one a database of its own"
                    .into(),
            });
        }
        // Kept, never returned to the pool: the lock lives as long as this connection.
        *self.server_lock.lock().map_err(storage_error)? = Some(Object::take(client));
        Ok(())
    }

    /// A pooled connection.
    async fn client(&self) -> Result<Object> {
        self.pool
            .get()
            .await
            .map_err(|err| storage_error(format!("no Postgres connection: {}", chain(&err))))
    }

    async fn migrate(&self) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        // Held to commit: a second server starting now waits here, then sees the version.
        tx.batch_execute(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
            .await
            .map_err(pg_error)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (\
                 version BIGINT PRIMARY KEY, \
                 applied_time BIGINT NOT NULL)",
        )
        .await
        .map_err(pg_error)?;
        let current: i64 = tx
            .query_one(
                "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
                &[],
            )
            .await
            .map_err(pg_error)?
            .try_get(0)
            .map_err(pg_error)?;
        let known = MIGRATIONS.len() as i64;
        if current > known {
            return Err(storage_error(format!(
                "the database has schema version {current}, newer than this Octo knows \
                 ({known}); upgrade Octo"
            )));
        }
        let mut applied = Vec::new();
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            let version = index as i64 + 1;
            tx.batch_execute(sql)
                .await
                .map_err(|err| storage_error(format!("migration {version}: {}", chain(&err))))?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_time) VALUES ($1, $2)",
                &[&version, &Timestamp::now().as_micros()],
            )
            .await
            .map_err(pg_error)?;
            applied.push(version);
        }
        tx.commit().await.map_err(pg_error)?;
        for version in applied {
            tracing::info!(version, "applied Postgres migration");
        }
        Ok(())
    }
}

/// The connection settings of `url`, refusing what this backend cannot do yet (TLS).
fn parse_url(url: &str) -> Result<tokio_postgres::Config> {
    let tls_unsupported = || Error::Unavailable {
        reason: crate::domain::reason::POSTGRES_TLS_UNSUPPORTED,
        message: "the database URL asks for TLS (sslmode), but TLS to Postgres is not \
                  supported yet: use sslmode=disable (or prefer) on a trusted network, or a \
                  local TLS tunnel"
            .into(),
        retry_after: None,
    };
    let config: tokio_postgres::Config = match url.parse() {
        Ok(config) => config,
        // tokio-postgres knows only disable, prefer and require; libpq's stricter modes
        // are TLS too.
        Err(_) if url.contains("sslmode=verify-") => return Err(tls_unsupported()),
        // The cause names the bad part, never the URL (which may hold a password).
        Err(err) => return Err(Error::invalid("database_url", chain(&err))),
    };
    if config.get_ssl_mode() == SslMode::Require {
        return Err(tls_unsupported());
    }
    Ok(config)
}

// --- errors ---

fn storage_error(err: impl std::fmt::Display) -> Error {
    Error::Internal(format!("storage: {err}"))
}

/// A driver error as INTERNAL, with its whole cause (`db error: ERROR: ...`).
fn pg_error(err: tokio_postgres::Error) -> Error {
    storage_error(chain(&err))
}

/// An error and its sources, `outer: inner: ...`.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn is_unique_violation(err: &tokio_postgres::Error) -> bool {
    err.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

// --- statements: prepared once per connection, on a client or in a transaction ---

type Param<'a> = &'a (dyn ToSql + Sync);

/// Runs a statement; the driver's error, for callers that map some of them.
async fn try_execute<C: GenericClient>(
    client: &C,
    sql: &str,
    params: &[Param<'_>],
) -> std::result::Result<u64, tokio_postgres::Error> {
    let statement = client.prepare_cached(sql).await?;
    client.execute(&statement, params).await
}

async fn execute<C: GenericClient>(client: &C, sql: &str, params: &[Param<'_>]) -> Result<u64> {
    try_execute(client, sql, params).await.map_err(pg_error)
}

async fn query<C: GenericClient>(client: &C, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>> {
    let statement = client.prepare_cached(sql).await.map_err(pg_error)?;
    client.query(&statement, params).await.map_err(pg_error)
}

async fn query_opt<C: GenericClient>(
    client: &C,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Option<Row>> {
    let statement = client.prepare_cached(sql).await.map_err(pg_error)?;
    client.query_opt(&statement, params).await.map_err(pg_error)
}

/// Column `index` of `row`.
fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T> {
    row.try_get(index).map_err(pg_error)
}

/// Rows decoded by `decode`.
fn decode_all<T>(rows: &[Row], decode: fn(&Row) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(decode).collect()
}

/// `text` storable in a Postgres TEXT column, which cannot hold NUL (SQLite's can): NUL
/// becomes U+FFFD. Only for text the store derives or reports (previews, error texts),
/// never for what a client stored and reads back.
fn pg_text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

/// A LIMIT: SQLite reads a negative one as none; Postgres refuses it.
fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Locks a session's row until the transaction ends: taken first by every write that
/// changes a session's counters together with its messages or turns (see the module
/// documentation). A missing session locks nothing; the write that follows then fails on
/// its foreign key, as on SQLite.
async fn lock_session<C: GenericClient>(client: &C, session_id: &str) -> Result<()> {
    query_opt(
        client,
        "SELECT 1 FROM sessions WHERE id = $1 FOR NO KEY UPDATE",
        &[&session_id],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl Store for PostgresStore {
    /// Postgres makes each commit durable itself: nothing is buffered here.
    async fn flush(&self) -> Result<()> {
        Ok(())
    }

    async fn check(&self) -> Result<()> {
        let client = self.client().await?;
        client
            .query_one("SELECT count(*) FROM schema_migrations", &[])
            .await
            .map_err(pg_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
