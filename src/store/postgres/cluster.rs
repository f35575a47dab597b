//! The server registry and session leases in Postgres (`servers`, `session_leases`), and
//! the fence check of owner writes. The rules are `domain::cluster`'s; here is how they
//! hold with many servers writing at once (READ COMMITTED):
//!
//! - **Clock**: every lease and heartbeat time is the database's clock
//!   ([`NOW`], `clock_timestamp()`), never a server's: servers with skewed clocks still
//!   agree on when a lease expires. One statement reads it once (a CTE or `excluded`), so
//!   a statement's checks and writes agree on "now".
//! - **Acquiring** is one `INSERT ... ON CONFLICT DO UPDATE ... WHERE` on the lease row:
//!   Postgres locks the conflicting row and re-checks the `WHERE` on its newest version,
//!   so of servers acquiring at once exactly one changes the owner and the others see
//!   it; no read-modify-write. The lease is read back after it (as it stands then).
//! - **Fencing**: a fenced write locks its session's row first (as every session write
//!   does), then the lease row `FOR SHARE`, checks the epoch, writes and commits. An
//!   acquisition's update waits for that share lock, so it commits after the write; and
//!   a write that starts after an acquisition committed reads the new epoch and is
//!   refused. Lock order is session row, then lease row, then the rest: the order a
//!   cascading `DELETE FROM sessions` takes, so they cannot deadlock. An acquisition
//!   locks only its lease row (its foreign-key check takes KEY SHARE on the session row,
//!   which no session write conflicts with), so it cannot close a cycle either.
//! - **Heartbeat** updates all of a server's lease rows in one transaction: it waits for
//!   fenced writes in flight on them (a share lock each, held for one short write), and
//!   an acquisition racing it sees the renewed expiry once it commits.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use futures::{StreamExt as _, stream::BoxStream};
use tokio_postgres::{AsyncMessage, Row, error::SqlState};

use super::{PostgresStore, decode_all, execute, get, pg_error, query, query_opt, try_execute};
use crate::{
    domain::{
        Error, Resource, Result, Timestamp,
        cluster::{Fence, Lease, ServerInfo, lease_lost},
        time::micros,
    },
    store::ClusterStore,
};

/// Now on the database's clock, in microseconds since the Unix epoch. `clock_timestamp()`
/// rather than `now()`: the latter is the start of the transaction.
pub(super) const NOW: &str = "(extract(epoch from clock_timestamp()) * 1000000)::bigint";

/// The channel change notices go on (`LISTEN`/`NOTIFY`).
const NOTICE_CHANNEL: &str = "octo_changes";
/// Notices a listener may have unread before newer ones are dropped.
const NOTICE_BUFFER: usize = 1024;

/// A lease with its owner's address (`""` without a server row).
const LEASE_SELECT: &str = "SELECT l.session_id, l.owner, COALESCE(s.address, ''), l.epoch, \
     l.expire_time FROM session_leases l LEFT JOIN servers s ON s.id = l.owner";

fn lease_from_row(row: &Row) -> Result<Lease> {
    Ok(Lease {
        session_id: get(row, 0)?,
        owner: get(row, 1)?,
        address: get(row, 2)?,
        epoch: get(row, 3)?,
        expire_time: Timestamp(get(row, 4)?),
    })
}

fn server_from_row(row: &Row) -> Result<ServerInfo> {
    Ok(ServerInfo {
        id: get(row, 0)?,
        address: get(row, 1)?,
        start_time: Timestamp(get(row, 2)?),
        heartbeat_time: Timestamp(get(row, 3)?),
    })
}

/// A TTL in microseconds, capped so that now + ttl cannot overflow a BIGINT.
pub(super) fn ttl_micros(ttl: Duration) -> i64 {
    micros(ttl).min(i64::MAX / 4)
}

async fn lease<C: GenericClient>(client: &C, session_id: &str) -> Result<Option<Lease>> {
    query_opt(
        client,
        &format!("{LEASE_SELECT} WHERE l.session_id = $1"),
        &[&session_id],
    )
    .await?
    .as_ref()
    .map(lease_from_row)
    .transpose()
}

/// Refuses a fenced write (LEASE_LOST) unless the session's lease still has the fence's
/// epoch, holding the lease row `FOR SHARE` to the end of the transaction so no
/// acquisition moves the epoch before the write commits. The caller has locked the
/// session's row already (lock order: see the module documentation). `Fence::NONE`
/// passes without a query.
pub(super) async fn check_fence<C: GenericClient>(
    client: &C,
    session_id: &str,
    fence: Fence,
) -> Result<()> {
    if fence.is_none() {
        return Ok(());
    }
    let epoch = match query_opt(
        client,
        "SELECT epoch FROM session_leases WHERE session_id = $1 FOR SHARE",
        &[&session_id],
    )
    .await?
    {
        Some(row) => Some(get::<i64>(&row, 0)?),
        None => None,
    };
    if epoch == Some(fence.0) {
        Ok(())
    } else {
        Err(lease_lost(session_id, fence))
    }
}

#[async_trait]
impl ClusterStore for PostgresStore {
    async fn register_server(&self, id: &str, address: &str) -> Result<ServerInfo> {
        let client = self.client().await?;
        let row = query(
            &client,
            &format!(
                "WITH c AS (SELECT {NOW} AS now) \
                 INSERT INTO servers (id, address, start_time, heartbeat_time) \
                 SELECT $1, $2, c.now, c.now FROM c ON CONFLICT (id) DO UPDATE SET \
                 address = excluded.address, heartbeat_time = excluded.heartbeat_time \
                 RETURNING id, address, start_time, heartbeat_time"
            ),
            &[&id, &address],
        )
        .await?;
        let row = row
            .first()
            .ok_or_else(|| super::storage_error("an upsert returned no row"))?;
        server_from_row(row)
    }

    async fn heartbeat(&self, server_id: &str, ttl: Duration) -> Result<Vec<Lease>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let now: i64 = get(
            &query_opt(&tx, &format!("SELECT {NOW}"), &[])
                .await?
                .ok_or_else(|| super::storage_error("SELECT returned no row"))?,
            0,
        )?;
        execute(
            &tx,
            "UPDATE servers SET heartbeat_time = $2 WHERE id = $1",
            &[&server_id, &now],
        )
        .await?;
        execute(
            &tx,
            "UPDATE session_leases SET expire_time = $2 WHERE owner = $1",
            &[&server_id, &(now + ttl_micros(ttl))],
        )
        .await?;
        // Under the row locks the update took: exactly the leases it renewed.
        let rows = query(
            &tx,
            &format!("{LEASE_SELECT} WHERE l.owner = $1 ORDER BY l.session_id"),
            &[&server_id],
        )
        .await?;
        let leases = decode_all(&rows, lease_from_row)?;
        tx.commit().await.map_err(pg_error)?;
        Ok(leases)
    }

    async fn list_servers(&self) -> Result<Vec<ServerInfo>> {
        let client = self.client().await?;
        let rows = query(
            &client,
            "SELECT id, address, start_time, heartbeat_time FROM servers ORDER BY id",
            &[],
        )
        .await?;
        decode_all(&rows, server_from_row)
    }

    async fn deregister_server(&self, id: &str) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        execute(&tx, "DELETE FROM servers WHERE id = $1", &[&id]).await?;
        execute(
            &tx,
            "UPDATE session_leases SET owner = '', expire_time = 0 WHERE owner = $1",
            &[&id],
        )
        .await?;
        tx.commit().await.map_err(pg_error)
    }

    async fn acquire_lease(
        &self,
        session_id: &str,
        server_id: &str,
        ttl: Duration,
    ) -> Result<Lease> {
        let client = self.client().await?;
        let ttl = ttl_micros(ttl);
        // The conflict branch changes the row only when it may be taken, re-checked on
        // the row's newest version once its lock is ours; `excluded.expire_time - ttl` is
        // the statement's one reading of the clock. The epoch rises with a change of
        // owner, from "" too. A missing session fails the foreign key: NOT_FOUND.
        try_execute(
            &client,
            &format!(
                "INSERT INTO session_leases AS l (session_id, owner, epoch, expire_time) \
                 VALUES ($1, $2, 1, {NOW} + $3) ON CONFLICT (session_id) DO UPDATE SET \
                 owner = excluded.owner, \
                 epoch = CASE WHEN l.owner = excluded.owner THEN l.epoch ELSE l.epoch + 1 END, \
                 expire_time = excluded.expire_time \
                 WHERE l.owner = excluded.owner OR l.owner = '' \
                 OR l.expire_time <= excluded.expire_time - $3"
            ),
            &[&session_id, &server_id, &ttl],
        )
        .await
        .map_err(|err| {
            if err.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
                not_found(session_id)
            } else {
                pg_error(err)
            }
        })?;
        // Deleted between the two statements: gone, as if it had been before.
        lease(&client, session_id)
            .await?
            .ok_or_else(|| not_found(session_id))
    }

    async fn get_lease(&self, session_id: &str) -> Result<Option<Lease>> {
        lease(&self.client().await?, session_id).await
    }

    async fn release_lease(&self, session_id: &str, server_id: &str, epoch: i64) -> Result<bool> {
        let client = self.client().await?;
        let released = execute(
            &client,
            "UPDATE session_leases SET owner = '', expire_time = 0 \
             WHERE session_id = $1 AND owner = $2 AND epoch = $3",
            &[&session_id, &server_id, &epoch],
        )
        .await?;
        Ok(released == 1)
    }

    async fn orphaned_sessions(&self, limit: usize) -> Result<Vec<String>> {
        let client = self.client().await?;
        let rows = query(
            &client,
            &format!(
                "SELECT t.session_id FROM turns t \
                 LEFT JOIN session_leases l ON l.session_id = t.session_id \
                 WHERE t.status IN ('queued', 'running') \
                 AND (l.session_id IS NULL OR l.owner = '' OR l.expire_time <= {NOW}) \
                 GROUP BY t.session_id ORDER BY MIN(t.id), t.session_id LIMIT $1"
            ),
            &[&super::limit(limit)],
        )
        .await?;
        rows.iter().map(|row| get(row, 0)).collect()
    }

    async fn publish_notice(&self, notice: &str) -> Result<()> {
        crate::store::codec::check_notice(notice)?;
        let client = self.client().await?;
        execute(
            &client,
            &format!("SELECT pg_notify('{NOTICE_CHANNEL}', $1)"),
            &[&notice],
        )
        .await?;
        Ok(())
    }

    async fn change_notices(&self) -> Result<BoxStream<'static, String>> {
        let (client, mut connection) = self
            .config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(pg_error)?;
        let (sender, receiver) = tokio::sync::mpsc::channel(NOTICE_BUFFER);
        // Drives the listening connection; ends when the connection does, which is
        // when the stream below (holding the client) is dropped, or on a network error.
        tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(notice)) => {
                        // A full buffer drops the notice: best effort, like NOTIFY itself.
                        if let Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) =
                            sender.try_send(notice.payload().to_owned())
                        {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(error = %err, "the change-notice connection to Postgres failed");
                        return;
                    }
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {NOTICE_CHANNEL}"))
            .await
            .map_err(pg_error)?;
        Ok(Box::pin(futures::stream::unfold(
            (receiver, client),
            |(mut receiver, client)| async move {
                receiver
                    .recv()
                    .await
                    .map(|notice| (notice, (receiver, client)))
            },
        )))
    }
}

fn not_found(session_id: &str) -> Error {
    Error::not_found(Resource::Session, format!("sessions/{session_id}"))
}
