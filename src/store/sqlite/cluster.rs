//! The server registry and session leases in SQLite (`servers`, `session_leases`), and
//! the fence check of owner writes. The rules are `domain::cluster`'s; SQLite keeps
//! them by its single writer: every method that changes a lease runs in one write
//! transaction on the one writer connection, so a check and the write it guards cannot
//! interleave with another lease change, and a fenced write checks its epoch inside its
//! own write transaction. Time is the local clock ([`Timestamp::now`]): a SQLite
//! database has one server, so one clock. (Two handles on one file serialise on SQLite's
//! write lock, taken at BEGIN IMMEDIATE, so they are safe too.)

use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{SqliteStore, exec, immediate, query_one, storage_error};
use crate::{
    domain::{
        Error, Resource, Result, Timestamp,
        cluster::{Fence, Lease, ServerInfo, lease_lost},
        time::micros,
    },
    store::ClusterStore,
};

/// A lease with its owner's address (`""` without a server row).
const LEASE_SELECT: &str = "SELECT l.session_id, l.owner, COALESCE(s.address, ''), l.epoch, \
     l.expire_time FROM session_leases l LEFT JOIN servers s ON s.id = l.owner";

fn lease_from_row(row: &Row<'_>) -> rusqlite::Result<Lease> {
    Ok(Lease {
        session_id: row.get(0)?,
        owner: row.get(1)?,
        address: row.get(2)?,
        epoch: row.get(3)?,
        expire_time: Timestamp(row.get(4)?),
    })
}

fn server_from_row(row: &Row<'_>) -> rusqlite::Result<ServerInfo> {
    Ok(ServerInfo {
        id: row.get(0)?,
        address: row.get(1)?,
        start_time: Timestamp(row.get(2)?),
        heartbeat_time: Timestamp(row.get(3)?),
    })
}

/// A TTL in microseconds, capped so that now + ttl cannot overflow (~73,000 years).
fn ttl_micros(ttl: Duration) -> i64 {
    micros(ttl).min(i64::MAX / 4)
}

fn lease(conn: &Connection, session_id: &str) -> Result<Option<Lease>> {
    query_one(
        conn,
        &format!("{LEASE_SELECT} WHERE l.session_id = ?1"),
        [session_id],
        lease_from_row,
    )
    .optional()
    .map_err(storage_error)
}

/// Refuses a fenced write (LEASE_LOST) unless the session's lease still has the fence's
/// epoch. Called inside the write's transaction on the writer, so no acquisition can
/// move the epoch between this check and the commit. `Fence::NONE` passes without a
/// query.
pub(super) fn check_fence(conn: &Connection, session_id: &str, fence: Fence) -> Result<()> {
    if fence.is_none() {
        return Ok(());
    }
    let epoch: Option<i64> = query_one(
        conn,
        "SELECT epoch FROM session_leases WHERE session_id = ?1",
        [session_id],
        |row| row.get(0),
    )
    .optional()
    .map_err(storage_error)?;
    if epoch == Some(fence.0) {
        Ok(())
    } else {
        Err(lease_lost(session_id, fence))
    }
}

/// Runs a single-statement write `f` fenced: unfenced it runs as it is (no transaction,
/// no extra query); fenced, in one write transaction after [`check_fence`].
pub(super) fn fenced<T>(
    conn: &mut Connection,
    session_id: &str,
    fence: Fence,
    f: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    if fence.is_none() {
        return f(conn);
    }
    let tx = immediate(conn)?;
    check_fence(&tx, session_id, fence)?;
    let out = f(&tx)?;
    tx.commit().map_err(storage_error)?;
    Ok(out)
}

#[async_trait]
impl ClusterStore for SqliteStore {
    async fn register_server(&self, id: &str, address: &str) -> Result<ServerInfo> {
        let (id, address) = (id.to_owned(), address.to_owned());
        self.write(move |conn| {
            let now = Timestamp::now().0;
            query_one(
                conn,
                "INSERT INTO servers (id, address, start_time, heartbeat_time) \
                 VALUES (?1, ?2, ?3, ?3) ON CONFLICT (id) DO UPDATE SET \
                 address = excluded.address, heartbeat_time = excluded.heartbeat_time \
                 RETURNING id, address, start_time, heartbeat_time",
                params![id, address, now],
                server_from_row,
            )
            .map_err(storage_error)
        })
        .await
    }

    async fn heartbeat(&self, server_id: &str, ttl: Duration) -> Result<Vec<Lease>> {
        let server_id = server_id.to_owned();
        self.write(move |conn| {
            let now = Timestamp::now().0;
            let tx = immediate(conn)?;
            exec(
                &tx,
                "UPDATE servers SET heartbeat_time = ?2 WHERE id = ?1",
                params![server_id, now],
            )
            .map_err(storage_error)?;
            exec(
                &tx,
                "UPDATE session_leases SET expire_time = ?2 WHERE owner = ?1",
                params![server_id, now + ttl_micros(ttl)],
            )
            .map_err(storage_error)?;
            let leases = {
                let mut stmt = tx
                    .prepare_cached(&format!(
                        "{LEASE_SELECT} WHERE l.owner = ?1 ORDER BY l.session_id"
                    ))
                    .map_err(storage_error)?;
                stmt.query_map([&server_id], lease_from_row)
                    .map_err(storage_error)?
                    .collect::<rusqlite::Result<Vec<_>>>()
                    .map_err(storage_error)?
            };
            tx.commit().map_err(storage_error)?;
            Ok(leases)
        })
        .await
    }

    async fn list_servers(&self) -> Result<Vec<ServerInfo>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT id, address, start_time, heartbeat_time FROM servers ORDER BY id",
                )
                .map_err(storage_error)?;
            stmt.query_map([], server_from_row)
                .map_err(storage_error)?
                .collect::<rusqlite::Result<Vec<_>>>()
                .map_err(storage_error)
        })
        .await
    }

    async fn deregister_server(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.write(move |conn| {
            let tx = immediate(conn)?;
            exec(&tx, "DELETE FROM servers WHERE id = ?1", [&id]).map_err(storage_error)?;
            exec(
                &tx,
                "UPDATE session_leases SET owner = '', expire_time = 0 WHERE owner = ?1",
                [&id],
            )
            .map_err(storage_error)?;
            tx.commit().map_err(storage_error)
        })
        .await
    }

    async fn acquire_lease(
        &self,
        session_id: &str,
        server_id: &str,
        ttl: Duration,
    ) -> Result<Lease> {
        let (session_id, server_id) = (session_id.to_owned(), server_id.to_owned());
        self.write(move |conn| {
            let tx = immediate(conn)?;
            let exists = query_one(
                &tx,
                "SELECT 1 FROM sessions WHERE id = ?1",
                [&session_id],
                |_| Ok(()),
            )
            .optional()
            .map_err(storage_error)?
            .is_some();
            if !exists {
                return Err(Error::not_found(
                    Resource::Session,
                    format!("sessions/{session_id}"),
                ));
            }
            // The same statement as on Postgres. The conflict branch changes the row only
            // when it may be taken; `excluded.expire_time - ttl` is the one "now" of the
            // statement. The epoch rises with a change of owner, from "" too.
            let now = Timestamp::now().0;
            let ttl = ttl_micros(ttl);
            exec(
                &tx,
                "INSERT INTO session_leases (session_id, owner, epoch, expire_time) \
                 VALUES (?1, ?2, 1, ?3 + ?4) ON CONFLICT (session_id) DO UPDATE SET \
                 owner = excluded.owner, \
                 epoch = CASE WHEN session_leases.owner = excluded.owner \
                         THEN session_leases.epoch ELSE session_leases.epoch + 1 END, \
                 expire_time = excluded.expire_time \
                 WHERE session_leases.owner = excluded.owner OR session_leases.owner = '' \
                 OR session_leases.expire_time <= excluded.expire_time - ?4",
                params![session_id, server_id, now, ttl],
            )
            .map_err(storage_error)?;
            let lease = lease(&tx, &session_id)?
                .ok_or_else(|| storage_error("a lease just written is missing"))?;
            tx.commit().map_err(storage_error)?;
            Ok(lease)
        })
        .await
    }

    async fn get_lease(&self, session_id: &str) -> Result<Option<Lease>> {
        let session_id = session_id.to_owned();
        self.read(move |conn| lease(conn, &session_id)).await
    }

    async fn release_lease(&self, session_id: &str, server_id: &str, epoch: i64) -> Result<bool> {
        let (session_id, server_id) = (session_id.to_owned(), server_id.to_owned());
        self.write(move |conn| {
            let released = exec(
                conn,
                "UPDATE session_leases SET owner = '', expire_time = 0 \
                 WHERE session_id = ?1 AND owner = ?2 AND epoch = ?3",
                params![session_id, server_id, epoch],
            )
            .map_err(storage_error)?;
            Ok(released == 1)
        })
        .await
    }

    async fn orphaned_sessions(&self, limit: usize) -> Result<Vec<String>> {
        self.read(move |conn| {
            let now = Timestamp::now().0;
            let mut stmt = conn
                .prepare_cached(
                    "SELECT t.session_id FROM turns t \
                     LEFT JOIN session_leases l ON l.session_id = t.session_id \
                     WHERE t.status IN ('queued', 'running') \
                     AND (l.session_id IS NULL OR l.owner = '' OR l.expire_time <= ?1) \
                     GROUP BY t.session_id ORDER BY MIN(t.id), t.session_id LIMIT ?2",
                )
                .map_err(storage_error)?;
            stmt.query_map(
                params![now, i64::try_from(limit).unwrap_or(i64::MAX)],
                |row| row.get(0),
            )
            .map_err(storage_error)?
            .collect::<rusqlite::Result<Vec<String>>>()
            .map_err(storage_error)
        })
        .await
    }

    async fn publish_notice(&self, notice: &str) -> Result<()> {
        crate::store::codec::check_notice(notice)?;
        // No listener is fine.
        let _ = self.inner.notices.send(notice.to_owned());
        Ok(())
    }

    async fn change_notices(&self) -> Result<BoxStream<'static, String>> {
        let receiver = self.inner.notices.subscribe();
        Ok(Box::pin(futures::stream::unfold(
            receiver,
            |mut receiver| async move {
                loop {
                    match receiver.recv().await {
                        Ok(notice) => return Some((notice, receiver)),
                        // Missed some: best effort, as documented.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        )))
    }
}
