//! The webhook outbox in SQLite. The single writer connection serialises claims, so two
//! handles on one file (or two servers, which SQLite mode does not run) never claim the
//! same row: a claim is one IMMEDIATE transaction that selects due rows and marks them.
//! [`insert_deliveries`] runs inside the transactions of the writes that cause
//! deliveries (a turn's terminal write, a run's final update).

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{SqliteStore, exec, immediate, storage_error};
use crate::store::codec::{add_count, delivered, not_found, outcome_columns};
use crate::{
    domain::{
        Error, Resource, Result, Timestamp,
        outbox::{AttemptOutcome, DeliveryCounts, DeliveryState, OutboxDelivery},
    },
    store::OutboxStore,
};

const COLUMNS: &str = "id, url, secret, event_type, payload, create_time, state, attempts, \
    next_attempt_time, last_error, claimed_by, update_time";

fn delivery_from_row(row: &Row<'_>) -> rusqlite::Result<OutboxDelivery> {
    let state: String = row.get(6)?;
    let attempts: i64 = row.get(7)?;
    Ok(OutboxDelivery {
        id: row.get(0)?,
        url: row.get(1)?,
        secret: row.get(2)?,
        event_type: row.get(3)?,
        payload: row.get(4)?,
        create_time: Timestamp(row.get(5)?),
        state: DeliveryState::parse(&state).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                6,
                rusqlite::types::Type::Text,
                format!("unknown delivery state {state:?}").into(),
            )
        })?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_attempt_time: Timestamp(row.get(8)?),
        last_error: row.get(9)?,
        claimed_by: row.get(10)?,
        update_time: Timestamp(row.get(11)?),
    })
}

/// Inserts deliveries on `conn` (inside the caller's transaction).
pub(super) fn insert_deliveries(conn: &Connection, deliveries: &[OutboxDelivery]) -> Result<()> {
    for d in deliveries {
        exec(
            conn,
            &format!(
                "INSERT INTO webhook_deliveries ({COLUMNS}) VALUES \
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
            ),
            params![
                d.id,
                d.url,
                d.secret,
                d.event_type,
                d.payload,
                d.create_time.0,
                d.state.as_str(),
                i64::from(d.attempts),
                d.next_attempt_time.0,
                d.last_error,
                d.claimed_by,
                d.update_time.0,
            ],
        )
        .map_err(|err| match err {
            rusqlite::Error::SqliteFailure(e, _)
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Error::AlreadyExists {
                    resource: Resource::WebhookDelivery,
                    name: format!("webhookDeliveries/{}", d.id),
                }
            }
            other => storage_error(other),
        })?;
    }
    Ok(())
}

fn get(conn: &Connection, id: &str) -> Result<Option<OutboxDelivery>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM webhook_deliveries WHERE id = ?1"
    ))
    .and_then(|mut stmt| stmt.query_row([id], delivery_from_row).optional())
    .map_err(storage_error)
}

fn query(
    conn: &Connection,
    sql: &str,
    values: Vec<rusqlite::types::Value>,
) -> Result<Vec<OutboxDelivery>> {
    let mut stmt = conn.prepare_cached(sql).map_err(storage_error)?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(values), delivery_from_row)
        .map_err(storage_error)?;
    rows.collect::<rusqlite::Result<Vec<_>>>()
        .map_err(storage_error)
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn insert_deliveries(&self, deliveries: &[OutboxDelivery]) -> Result<()> {
        let deliveries = deliveries.to_vec();
        self.write(move |conn| {
            let tx = immediate(conn)?;
            insert_deliveries(&tx, &deliveries)?;
            tx.commit().map_err(storage_error)
        })
        .await
    }

    async fn claim_due_deliveries(
        &self,
        now: Timestamp,
        claimer: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxDelivery>> {
        let claimer = claimer.to_owned();
        self.write(move |conn| {
            let tx = immediate(conn)?;
            let until = now.plus(lease);
            let mut claimed = query(
                &tx,
                &format!(
                    "SELECT {COLUMNS} FROM webhook_deliveries WHERE state = 'pending' \
                     AND next_attempt_time <= ?1 ORDER BY next_attempt_time, id LIMIT ?2"
                ),
                vec![now.0.into(), (limit as i64).into()],
            )?;
            for d in &mut claimed {
                exec(
                    &tx,
                    "UPDATE webhook_deliveries SET claimed_by = ?2, next_attempt_time = ?3 \
                     WHERE id = ?1",
                    params![d.id, claimer, until.0],
                )
                .map_err(storage_error)?;
                d.claimed_by.clone_from(&claimer);
                d.next_attempt_time = until;
            }
            tx.commit().map_err(storage_error)?;
            Ok(claimed)
        })
        .await
    }

    async fn record_attempt(
        &self,
        id: &str,
        claimer: &str,
        now: Timestamp,
        outcome: &AttemptOutcome,
    ) -> Result<bool> {
        let (id, claimer, outcome) = (id.to_owned(), claimer.to_owned(), outcome.clone());
        self.write(move |conn| {
            let (state, next, error) = outcome_columns(&outcome, now);
            let changed = exec(
                conn,
                "UPDATE webhook_deliveries SET state = ?3, next_attempt_time = ?4, \
                 last_error = ?5, attempts = attempts + 1, claimed_by = '', update_time = ?6 \
                 WHERE id = ?1 AND state = 'pending' AND claimed_by = ?2",
                params![id, claimer, state.as_str(), next.0, error, now.0],
            )
            .map_err(storage_error)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn get_delivery(&self, id: &str) -> Result<Option<OutboxDelivery>> {
        let id = id.to_owned();
        self.read(move |conn| get(conn, &id)).await
    }

    async fn list_deliveries(
        &self,
        state: Option<DeliveryState>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxDelivery>> {
        let before = before.map(str::to_owned);
        self.read(move |conn| {
            let null = rusqlite::types::Value::Null;
            query(
                conn,
                &format!(
                    "SELECT {COLUMNS} FROM webhook_deliveries WHERE (?1 IS NULL OR state = ?1) \
                     AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3"
                ),
                vec![
                    state.map_or(null.clone(), |s| s.as_str().to_owned().into()),
                    before.map_or(null, Into::into),
                    (limit as i64).into(),
                ],
            )
        })
        .await
    }

    async fn retry_delivery(&self, id: &str, now: Timestamp) -> Result<OutboxDelivery> {
        let id = id.to_owned();
        self.write(move |conn| {
            let tx = immediate(conn)?;
            let current = get(&tx, &id)?.ok_or_else(|| not_found(&id))?;
            match current.state {
                DeliveryState::Delivered => return Err(delivered(&id)),
                DeliveryState::Dead => {
                    exec(
                        &tx,
                        "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, \
                         next_attempt_time = ?2, claimed_by = '', update_time = ?2 WHERE id = ?1",
                        params![id, now.0],
                    )
                    .map_err(storage_error)?;
                }
                DeliveryState::Pending => {
                    exec(
                        &tx,
                        "UPDATE webhook_deliveries SET next_attempt_time = ?2 \
                         WHERE id = ?1 AND (claimed_by = '' OR next_attempt_time <= ?2)",
                        params![id, now.0],
                    )
                    .map_err(storage_error)?;
                }
            }
            let stored = get(&tx, &id)?.ok_or_else(|| not_found(&id))?;
            tx.commit().map_err(storage_error)?;
            Ok(stored)
        })
        .await
    }

    async fn delivery_counts(&self) -> Result<DeliveryCounts> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT state, COUNT(*) FROM webhook_deliveries GROUP BY state")
                .map_err(storage_error)?;
            let rows = stmt
                .query_map([], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
                })
                .map_err(storage_error)?;
            let mut counts = DeliveryCounts::default();
            for row in rows {
                let (state, n) = row.map_err(storage_error)?;
                add_count(&mut counts, &state, n);
            }
            Ok(counts)
        })
        .await
    }
}
