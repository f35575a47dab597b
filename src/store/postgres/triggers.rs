//! Triggers in Postgres: one row per trigger (its config as JSON), and the delivery log
//! whose unique (trigger, replay key) is the replay store. A claim is one
//! `INSERT ... ON CONFLICT DO UPDATE ... WHERE status = 'failed'`: servers claiming the
//! same call at once get exactly one claim.

use async_trait::async_trait;
use tokio_postgres::{Row, error::SqlState};

use super::{
    PostgresStore, decode_all, execute, get, is_unique_violation, pg_error, pg_text, query,
    query_opt, storage_error, try_execute,
};
use crate::{
    domain::{
        Error, Resource, Result, Timestamp,
        trigger::{
            DeliveryClaim, KEPT_DELIVERIES, Trigger, TriggerDelivery, TriggerDeliveryStatus,
        },
    },
    store::{
        TriggerStore,
        codec::{self, TRIGGER_DELIVERY_COLUMNS as COLUMNS},
    },
};

fn from_row(row: &Row) -> Result<Trigger> {
    serde_json::from_str(get::<&str>(row, 0)?).map_err(storage_error)
}

fn encode(trigger: &Trigger) -> Result<String> {
    serde_json::to_string(trigger).map_err(storage_error)
}

fn delivery_from_row(row: &Row) -> Result<TriggerDelivery> {
    Ok(TriggerDelivery {
        id: get(row, 0)?,
        trigger_id: get(row, 1)?,
        replay_key: get(row, 2)?,
        message_id: get(row, 3)?,
        event: get(row, 4)?,
        status: codec::trigger_delivery_status_from(get(row, 5)?).map_err(storage_error)?,
        receive_time: Timestamp(get(row, 6)?),
        payload_bytes: get(row, 7)?,
        attempts: u32::try_from(get::<i64>(row, 8)?).unwrap_or(u32::MAX),
        session_id: get(row, 9)?,
        turn_id: get(row, 10)?,
        error: get(row, 11)?,
    })
}

#[async_trait]
impl TriggerStore for PostgresStore {
    async fn list_triggers(&self) -> Result<Vec<Trigger>> {
        let client = self.client().await?;
        let rows = query(&client, "SELECT config FROM triggers ORDER BY id", &[]).await?;
        decode_all(&rows, from_row)
    }

    async fn get_trigger(&self, id: &str) -> Result<Option<Trigger>> {
        let client = self.client().await?;
        query_opt(&client, "SELECT config FROM triggers WHERE id = $1", &[&id])
            .await?
            .as_ref()
            .map(from_row)
            .transpose()
    }

    async fn create_trigger(&self, trigger: &Trigger) -> Result<()> {
        let client = self.client().await?;
        try_execute(
            &client,
            "INSERT INTO triggers (id, create_time, revision, config) VALUES ($1, $2, $3, $4)",
            &[
                &trigger.id,
                &trigger.create_time.as_micros(),
                &trigger.revision,
                &encode(trigger)?,
            ],
        )
        .await
        .map_err(|err| {
            if is_unique_violation(&err) {
                Error::AlreadyExists {
                    resource: Resource::Trigger,
                    name: format!("triggers/{}", trigger.id),
                }
            } else {
                pg_error(err)
            }
        })?;
        Ok(())
    }

    async fn update_trigger(&self, trigger: &Trigger, expected_revision: i64) -> Result<bool> {
        let client = self.client().await?;
        let changed = execute(
            &client,
            "UPDATE triggers SET revision = $2, config = $3 WHERE id = $1 AND revision = $4",
            &[
                &trigger.id,
                &trigger.revision,
                &encode(trigger)?,
                &expected_revision,
            ],
        )
        .await?;
        Ok(changed == 1)
    }

    async fn delete_trigger(&self, id: &str) -> Result<bool> {
        let client = self.client().await?;
        Ok(execute(&client, "DELETE FROM triggers WHERE id = $1", &[&id]).await? == 1)
    }

    async fn claim_delivery(&self, delivery: &TriggerDelivery) -> Result<DeliveryClaim> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        let received = TriggerDeliveryStatus::Received.as_str();
        let statement = tx
            .prepare_cached(&format!(
                "INSERT INTO trigger_deliveries ({COLUMNS}) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, 1, NULL, NULL, '') \
                 ON CONFLICT (trigger_id, replay_key) DO UPDATE SET \
                     status = EXCLUDED.status, receive_time = EXCLUDED.receive_time, \
                     payload_bytes = EXCLUDED.payload_bytes, event = EXCLUDED.event, \
                     message_id = EXCLUDED.message_id, \
                     attempts = trigger_deliveries.attempts + 1, \
                     session_id = NULL, turn_id = NULL, error = '' \
                 WHERE trigger_deliveries.status = 'failed' \
                 RETURNING {COLUMNS}"
            ))
            .await
            .map_err(pg_error)?;
        let claimed = tx
            .query_opt(
                &statement,
                &[
                    &delivery.id,
                    &delivery.trigger_id,
                    &delivery.replay_key,
                    &pg_text(&delivery.message_id),
                    &pg_text(&delivery.event),
                    &received,
                    &delivery.receive_time.as_micros(),
                    &delivery.payload_bytes,
                ],
            )
            .await
            .map_err(|err| {
                if err.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
                    Error::not_found(
                        Resource::Trigger,
                        format!("triggers/{}", delivery.trigger_id),
                    )
                } else {
                    pg_error(err)
                }
            })?;
        let Some(row) = claimed else {
            // The key's record is not FAILED: read it (it exists: the conflict was on it).
            let earlier = query_opt(
                &tx,
                &format!(
                    "SELECT {COLUMNS} FROM trigger_deliveries \
                     WHERE trigger_id = $1 AND replay_key = $2"
                ),
                &[&delivery.trigger_id, &delivery.replay_key],
            )
            .await?
            .ok_or_else(|| storage_error("a conflicting delivery vanished"))?;
            return Ok(DeliveryClaim::Replayed(delivery_from_row(&earlier)?));
        };
        let claimed = delivery_from_row(&row)?;
        execute(
            &tx,
            "DELETE FROM trigger_deliveries WHERE trigger_id = $1 AND id NOT IN \
             (SELECT id FROM trigger_deliveries WHERE trigger_id = $1 ORDER BY id DESC LIMIT $2)",
            &[&delivery.trigger_id, &(KEPT_DELIVERIES as i64)],
        )
        .await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(DeliveryClaim::Claimed(claimed))
    }

    async fn finish_delivery(&self, delivery: &TriggerDelivery) -> Result<()> {
        let client = self.client().await?;
        execute(
            &client,
            "UPDATE trigger_deliveries SET status = $2, session_id = $3, turn_id = $4, \
             error = $5 WHERE id = $1",
            &[
                &delivery.id,
                &delivery.status.as_str(),
                &delivery.session_id,
                &delivery.turn_id,
                &pg_text(&delivery.error),
            ],
        )
        .await?;
        Ok(())
    }

    async fn list_trigger_deliveries(
        &self,
        trigger_id: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<TriggerDelivery>> {
        let client = self.client().await?;
        let rows = query(
            &client,
            &format!(
                "SELECT {COLUMNS} FROM trigger_deliveries WHERE trigger_id = $1 \
                 AND ($2::TEXT IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
            ),
            &[&trigger_id, &before, &super::limit(limit)],
        )
        .await?;
        decode_all(&rows, delivery_from_row)
    }
}
