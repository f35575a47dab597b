//! The webhook outbox in Postgres. Any server of a cluster claims due rows with one
//! `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)` statement: servers claiming
//! at once skip each other's locked rows, so they get disjoint sets, and a claimed row's
//! `next_attempt_time` moves to the claim's end, so it is not due for anyone else until
//! the claim is recorded or expires. [`insert_deliveries`] runs inside the transactions
//! of the writes that cause deliveries (a turn's terminal write, a run's final update).

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{
    PostgresStore, decode_all, execute, get, is_unique_violation, limit, pg_error, pg_text, query,
    query_opt, storage_error, try_execute,
};
use crate::{
    domain::{
        Error, Resource, Result, Timestamp,
        outbox::{AttemptOutcome, DeliveryCounts, DeliveryState, OutboxDelivery},
    },
    store::{
        OutboxStore,
        codec::{add_count, delivered, not_found, outcome_columns},
    },
};

const COLUMNS: &str = "id, url, secret, event_type, payload, create_time, state, attempts, \
    next_attempt_time, last_error, claimed_by, update_time";

fn delivery_from_row(row: &Row) -> Result<OutboxDelivery> {
    let state: &str = get(row, 6)?;
    let attempts: i64 = get(row, 7)?;
    Ok(OutboxDelivery {
        id: get(row, 0)?,
        url: get(row, 1)?,
        secret: get(row, 2)?,
        event_type: get(row, 3)?,
        payload: get(row, 4)?,
        create_time: Timestamp(get(row, 5)?),
        state: DeliveryState::parse(state)
            .ok_or_else(|| storage_error(format!("unknown delivery state {state:?}")))?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_attempt_time: Timestamp(get(row, 8)?),
        last_error: get(row, 9)?,
        claimed_by: get(row, 10)?,
        update_time: Timestamp(get(row, 11)?),
    })
}

/// Inserts deliveries on `client` (inside the caller's transaction).
pub(super) async fn insert_deliveries<C: GenericClient>(
    client: &C,
    deliveries: &[OutboxDelivery],
) -> Result<()> {
    for d in deliveries {
        try_execute(
            client,
            &format!(
                "INSERT INTO webhook_deliveries ({COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            ),
            &[
                &d.id,
                &d.url,
                &d.secret,
                &d.event_type,
                &d.payload,
                &d.create_time.0,
                &d.state.as_str(),
                &i64::from(d.attempts),
                &d.next_attempt_time.0,
                &pg_text(&d.last_error),
                &d.claimed_by,
                &d.update_time.0,
            ],
        )
        .await
        .map_err(|err| {
            if is_unique_violation(&err) {
                Error::AlreadyExists {
                    resource: Resource::WebhookDelivery,
                    name: format!("webhookDeliveries/{}", d.id),
                }
            } else {
                pg_error(err)
            }
        })?;
    }
    Ok(())
}

async fn get_one<C: GenericClient>(client: &C, id: &str) -> Result<Option<OutboxDelivery>> {
    query_opt(
        client,
        &format!("SELECT {COLUMNS} FROM webhook_deliveries WHERE id = $1"),
        &[&id],
    )
    .await?
    .as_ref()
    .map(delivery_from_row)
    .transpose()
}

#[async_trait]
impl OutboxStore for PostgresStore {
    async fn insert_deliveries(&self, deliveries: &[OutboxDelivery]) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        insert_deliveries(&tx, deliveries).await?;
        tx.commit().await.map_err(pg_error)
    }

    async fn claim_due_deliveries(
        &self,
        now: Timestamp,
        claimer: &str,
        count: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxDelivery>> {
        let client = self.client().await?;
        let until = now.plus(lease);
        let rows = query(
            &client,
            &format!(
                "UPDATE webhook_deliveries SET claimed_by = $2, next_attempt_time = $3 \
                 WHERE id IN (SELECT id FROM webhook_deliveries WHERE state = 'pending' \
                 AND next_attempt_time <= $1 ORDER BY next_attempt_time, id LIMIT $4 \
                 FOR UPDATE SKIP LOCKED) RETURNING {COLUMNS}"
            ),
            &[&now.0, &claimer, &until.0, &limit(count)],
        )
        .await?;
        let mut claimed = decode_all(&rows, delivery_from_row)?;
        // RETURNING has no order of its own.
        claimed.sort_by(|a, b| a.create_time.cmp(&b.create_time).then(a.id.cmp(&b.id)));
        Ok(claimed)
    }

    async fn record_attempt(
        &self,
        id: &str,
        claimer: &str,
        now: Timestamp,
        outcome: &AttemptOutcome,
    ) -> Result<bool> {
        let client = self.client().await?;
        let (state, next, error) = outcome_columns(outcome, now);
        let changed = execute(
            &client,
            "UPDATE webhook_deliveries SET state = $3, next_attempt_time = $4, \
             last_error = $5, attempts = attempts + 1, claimed_by = '', update_time = $6 \
             WHERE id = $1 AND state = 'pending' AND claimed_by = $2",
            &[
                &id,
                &claimer,
                &state.as_str(),
                &next.0,
                &pg_text(error),
                &now.0,
            ],
        )
        .await?;
        Ok(changed == 1)
    }

    async fn get_delivery(&self, id: &str) -> Result<Option<OutboxDelivery>> {
        let client = self.client().await?;
        get_one(&client, id).await
    }

    async fn list_deliveries(
        &self,
        state: Option<DeliveryState>,
        before: Option<&str>,
        count: usize,
    ) -> Result<Vec<OutboxDelivery>> {
        let client = self.client().await?;
        let state = state.map(DeliveryState::as_str);
        let rows = query(
            &client,
            &format!(
                "SELECT {COLUMNS} FROM webhook_deliveries \
                 WHERE ($1::TEXT IS NULL OR state = $1) AND ($2::TEXT IS NULL OR id < $2) \
                 ORDER BY id DESC LIMIT $3"
            ),
            &[&state, &before, &limit(count)],
        )
        .await?;
        decode_all(&rows, delivery_from_row)
    }

    async fn retry_delivery(&self, id: &str, now: Timestamp) -> Result<OutboxDelivery> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let current = query_opt(
            &tx,
            "SELECT state FROM webhook_deliveries WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?
        .ok_or_else(|| not_found(id))?;
        let state: &str = get(&current, 0)?;
        match DeliveryState::parse(state) {
            Some(DeliveryState::Delivered) => return Err(delivered(id)),
            Some(DeliveryState::Dead) => {
                execute(
                    &tx,
                    "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, \
                     next_attempt_time = $2, claimed_by = '', update_time = $2 WHERE id = $1",
                    &[&id, &now.0],
                )
                .await?;
            }
            _ => {
                execute(
                    &tx,
                    "UPDATE webhook_deliveries SET next_attempt_time = $2 \
                     WHERE id = $1 AND (claimed_by = '' OR next_attempt_time <= $2)",
                    &[&id, &now.0],
                )
                .await?;
            }
        }
        let stored = get_one(&tx, id).await?.ok_or_else(|| not_found(id))?;
        tx.commit().await.map_err(pg_error)?;
        Ok(stored)
    }

    async fn delivery_counts(&self) -> Result<DeliveryCounts> {
        let client = self.client().await?;
        let rows = query(
            &client,
            "SELECT state, COUNT(*) FROM webhook_deliveries GROUP BY state",
            &[],
        )
        .await?;
        let mut counts = DeliveryCounts::default();
        for row in &rows {
            add_count(&mut counts, get(row, 0)?, get(row, 1)?);
        }
        Ok(counts)
    }
}
