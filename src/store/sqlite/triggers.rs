//! Triggers in SQLite: one row per trigger (its config as JSON), and the delivery log
//! whose unique (trigger, replay key) is the replay store. A claim runs in one write
//! transaction, so checking the key and storing the claim cannot interleave.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{SqliteStore, immediate, storage_error};
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

fn decode(config: &str) -> Result<Trigger> {
    serde_json::from_str(config).map_err(storage_error)
}

fn encode(trigger: &Trigger) -> Result<String> {
    serde_json::to_string(trigger).map_err(storage_error)
}

fn delivery_from_row(row: &Row<'_>) -> rusqlite::Result<TriggerDelivery> {
    let status: String = row.get(5)?;
    Ok(TriggerDelivery {
        id: row.get(0)?,
        trigger_id: row.get(1)?,
        replay_key: row.get(2)?,
        message_id: row.get(3)?,
        event: row.get(4)?,
        status: codec::trigger_delivery_status_from(&status).map_err(|err| {
            rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, err.into())
        })?,
        receive_time: Timestamp(row.get(6)?),
        payload_bytes: row.get(7)?,
        attempts: row.get(8)?,
        session_id: row.get(9)?,
        turn_id: row.get(10)?,
        error: row.get(11)?,
    })
}

fn get_delivery(conn: &Connection, trigger_id: &str, key: &str) -> Result<Option<TriggerDelivery>> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM trigger_deliveries WHERE trigger_id = ?1 AND replay_key = ?2"
    ))
    .and_then(|mut stmt| {
        stmt.query_row([trigger_id, key], delivery_from_row)
            .optional()
    })
    .map_err(storage_error)
}

#[async_trait]
impl TriggerStore for SqliteStore {
    async fn list_triggers(&self) -> Result<Vec<Trigger>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT config FROM triggers ORDER BY id")
                .map_err(storage_error)?;
            let rows = stmt
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(storage_error)?;
            rows.map(|row| decode(&row.map_err(storage_error)?))
                .collect()
        })
        .await
    }

    async fn get_trigger(&self, id: &str) -> Result<Option<Trigger>> {
        let id = id.to_owned();
        self.read(move |conn| {
            let config: Option<String> = conn
                .prepare_cached("SELECT config FROM triggers WHERE id = ?1")
                .and_then(|mut stmt| stmt.query_row([&id], |row| row.get(0)).optional())
                .map_err(storage_error)?;
            config.as_deref().map(decode).transpose()
        })
        .await
    }

    async fn create_trigger(&self, trigger: &Trigger) -> Result<()> {
        let trigger = trigger.clone();
        self.write(move |conn| {
            let inserted = conn.execute(
                "INSERT INTO triggers (id, create_time, revision, config) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (id) DO NOTHING",
                params![
                    trigger.id,
                    trigger.create_time.as_micros(),
                    trigger.revision,
                    encode(&trigger)?
                ],
            );
            match inserted.map_err(storage_error)? {
                1 => Ok(()),
                _ => Err(Error::AlreadyExists {
                    resource: Resource::Trigger,
                    name: format!("triggers/{}", trigger.id),
                }),
            }
        })
        .await
    }

    async fn update_trigger(&self, trigger: &Trigger, expected_revision: i64) -> Result<bool> {
        let trigger = trigger.clone();
        self.write(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE triggers SET revision = ?2, config = ?3 WHERE id = ?1 AND revision = ?4",
                    params![trigger.id, trigger.revision, encode(&trigger)?, expected_revision],
                )
                .map_err(storage_error)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn delete_trigger(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |conn| {
            let deleted = conn
                .execute("DELETE FROM triggers WHERE id = ?1", [&id])
                .map_err(storage_error)?;
            Ok(deleted == 1)
        })
        .await
    }

    async fn claim_delivery(&self, delivery: &TriggerDelivery) -> Result<DeliveryClaim> {
        let mut claim = delivery.clone();
        self.write(move |conn| {
            let tx = immediate(conn)?;
            let exists = tx
                .query_row("SELECT 1 FROM triggers WHERE id = ?1", [&claim.trigger_id], |_| Ok(()))
                .optional()
                .map_err(storage_error)?
                .is_some();
            if !exists {
                return Err(Error::not_found(
                    Resource::Trigger,
                    format!("triggers/{}", claim.trigger_id),
                ));
            }
            claim.status = TriggerDeliveryStatus::Received;
            claim.session_id = None;
            claim.turn_id = None;
            claim.error.clear();
            match get_delivery(&tx, &claim.trigger_id, &claim.replay_key)? {
                None => {
                    claim.attempts = 1;
                    tx.execute(
                        &format!(
                            "INSERT INTO trigger_deliveries ({COLUMNS}) VALUES \
                             (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, NULL, '')"
                        ),
                        params![
                            claim.id,
                            claim.trigger_id,
                            claim.replay_key,
                            claim.message_id,
                            claim.event,
                            claim.status.as_str(),
                            claim.receive_time.as_micros(),
                            claim.payload_bytes,
                            claim.attempts,
                        ],
                    )
                    .map_err(storage_error)?;
                }
                Some(earlier) if earlier.status == TriggerDeliveryStatus::Failed => {
                    claim.id = earlier.id;
                    claim.attempts = earlier.attempts + 1;
                    tx.execute(
                        "UPDATE trigger_deliveries SET status = ?2, receive_time = ?3, \
                         payload_bytes = ?4, attempts = ?5, event = ?6, message_id = ?7, \
                         session_id = NULL, turn_id = NULL, error = '' WHERE id = ?1",
                        params![
                            claim.id,
                            claim.status.as_str(),
                            claim.receive_time.as_micros(),
                            claim.payload_bytes,
                            claim.attempts,
                            claim.event,
                            claim.message_id,
                        ],
                    )
                    .map_err(storage_error)?;
                }
                Some(earlier) => return Ok(DeliveryClaim::Replayed(earlier)),
            }
            tx.execute(
                "DELETE FROM trigger_deliveries WHERE trigger_id = ?1 AND id NOT IN \
                 (SELECT id FROM trigger_deliveries WHERE trigger_id = ?1 ORDER BY id DESC LIMIT ?2)",
                params![claim.trigger_id, KEPT_DELIVERIES as i64],
            )
            .map_err(storage_error)?;
            tx.commit().map_err(storage_error)?;
            Ok(DeliveryClaim::Claimed(claim))
        })
        .await
    }

    async fn finish_delivery(&self, delivery: &TriggerDelivery) -> Result<()> {
        let d = delivery.clone();
        self.write(move |conn| {
            conn.execute(
                "UPDATE trigger_deliveries SET status = ?2, session_id = ?3, turn_id = ?4, \
                 error = ?5 WHERE id = ?1",
                params![d.id, d.status.as_str(), d.session_id, d.turn_id, d.error],
            )
            .map_err(storage_error)?;
            Ok(())
        })
        .await
    }

    async fn list_trigger_deliveries(
        &self,
        trigger_id: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<TriggerDelivery>> {
        let trigger_id = trigger_id.to_owned();
        let before = before.map(str::to_owned);
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM trigger_deliveries WHERE trigger_id = ?1 \
                     AND (?2 IS NULL OR id < ?2) ORDER BY id DESC LIMIT ?3"
                ))
                .map_err(storage_error)?;
            let rows = stmt
                .query_map(
                    params![trigger_id, before, i64::try_from(limit).unwrap_or(i64::MAX)],
                    delivery_from_row,
                )
                .map_err(storage_error)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(storage_error)
        })
        .await
    }
}
