//! Models in Postgres. "Exactly one default while any model exists" and "the first model
//! becomes the default" are facts about the whole table, so every model write first
//! locks the table against other writers (SHARE ROW EXCLUSIVE: it conflicts with itself
//! and with row changes, not with reads) and then checks and changes it as SQLite does
//! under its single writer.

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::Row;

use super::{PostgresStore, decode_all, execute, get, pg_error, query, query_opt, storage_error};
use crate::{
    domain::{Error, Model, Resource, Result},
    store::{
        ModelDeletion, ModelStore,
        codec::{self, MODEL_COLUMNS},
    },
};

fn model_from_row(row: &Row) -> Result<Model> {
    codec::model_from(get(row, 2)?, get(row, 0)?, get(row, 1)?).map_err(storage_error)
}

async fn get_model<C: GenericClient>(client: &C, id: &str) -> Result<Option<Model>> {
    query_opt(
        client,
        &format!("SELECT {MODEL_COLUMNS} FROM models WHERE id = $1"),
        &[&id],
    )
    .await?
    .as_ref()
    .map(model_from_row)
    .transpose()
}

/// Starts a model write: a transaction holding the table's writer lock.
async fn lock_models(tx: &Transaction<'_>) -> Result<()> {
    tx.batch_execute("LOCK TABLE models IN SHARE ROW EXCLUSIVE MODE")
        .await
        .map_err(pg_error)
}

async fn count_models<C: GenericClient>(client: &C) -> Result<i64> {
    let row = query_opt(client, "SELECT count(*) FROM models", &[])
        .await?
        .ok_or_else(|| storage_error("an aggregate returned no row"))?;
    get(&row, 0)
}

fn config_json(model: &Model) -> Result<String> {
    codec::to_json(model).map_err(storage_error)
}

async fn clear_default<C: GenericClient>(client: &C, except: &str) -> Result<()> {
    execute(
        client,
        "UPDATE models SET is_default = FALSE, revision = revision + 1 \
         WHERE is_default AND id <> $1",
        &[&except],
    )
    .await?;
    Ok(())
}

fn not_found(id: &str) -> Error {
    Error::not_found(Resource::Model, format!("models/{id}"))
}

#[async_trait]
impl ModelStore for PostgresStore {
    async fn list_models(&self) -> Result<Vec<Model>> {
        let client = self.client().await?;
        let rows = query(
            &client,
            &format!(
                "SELECT {MODEL_COLUMNS} FROM models ORDER BY is_default DESC, create_time, id"
            ),
            &[],
        )
        .await?;
        decode_all(&rows, model_from_row)
    }

    async fn create_model(&self, model: &Model) -> Result<Model> {
        let mut model = model.clone();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        lock_models(&tx).await?;
        if get_model(&tx, &model.id).await?.is_some() {
            return Err(Error::AlreadyExists {
                resource: Resource::Model,
                name: format!("models/{}", model.id),
            });
        }
        if count_models(&tx).await? == 0 {
            model.is_default = true;
        }
        if model.is_default {
            clear_default(&tx, &model.id).await?;
        }
        execute(
            &tx,
            "INSERT INTO models (id, is_default, create_time, update_time, revision, config) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &model.id,
                &model.is_default,
                &model.create_time.as_micros(),
                &model.update_time.as_micros(),
                &model.revision,
                &config_json(&model)?,
            ],
        )
        .await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(model)
    }

    async fn update_model(&self, model: &Model, expected_revision: i64) -> Result<Option<Model>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        lock_models(&tx).await?;
        let Some(stored) = get_model(&tx, &model.id).await? else {
            return Err(not_found(&model.id));
        };
        if stored.revision != expected_revision {
            return Ok(None);
        }
        codec::keep_default(&stored, model)?;
        if model.is_default {
            clear_default(&tx, &model.id).await?;
        }
        execute(
            &tx,
            "UPDATE models SET is_default = $2, update_time = $3, revision = $4, config = $5 \
             WHERE id = $1",
            &[
                &model.id,
                &model.is_default,
                &model.update_time.as_micros(),
                &model.revision,
                &config_json(model)?,
            ],
        )
        .await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(Some(model.clone()))
    }

    async fn delete_model(
        &self,
        id: &str,
        expected_revision: Option<i64>,
        force: bool,
    ) -> Result<ModelDeletion> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        lock_models(&tx).await?;
        let Some(stored) = get_model(&tx, id).await? else {
            return Err(not_found(id));
        };
        if expected_revision.is_some_and(|r| r != stored.revision) {
            return Err(Error::EtagMismatch {
                resource: Resource::Model,
                name: format!("models/{id}"),
            });
        }
        if count_models(&tx).await? == 1 && !force {
            let row = query_opt(
                &tx,
                "SELECT (SELECT count(*) FROM sessions WHERE model = $1), \
                        (SELECT count(*) FROM schedules WHERE model = $1)",
                &[&id],
            )
            .await?
            .ok_or_else(|| storage_error("an aggregate returned no row"))?;
            let (sessions, schedules): (i64, i64) = (get(&row, 0)?, get(&row, 1)?);
            if sessions + schedules > 0 {
                return Err(Error::FailedPrecondition {
                    reason: crate::domain::reason::MODEL_IN_USE,
                    message: format!(
                        "models/{id} is the last model and {sessions} session(s) and \
                         {schedules} schedule(s) use it; add another model first, or \
                         delete with force (their turns then fail until a model is added)"
                    ),
                });
            }
        }
        execute(&tx, "DELETE FROM models WHERE id = $1", &[&id]).await?;
        let mut deletion = ModelDeletion::default();
        if stored.is_default {
            let successor = query_opt(
                &tx,
                "SELECT id FROM models ORDER BY create_time, id LIMIT 1",
                &[],
            )
            .await?;
            deletion.promoted = successor.as_ref().map(|row| get(row, 0)).transpose()?;
            if let Some(successor) = &deletion.promoted {
                execute(
                    &tx,
                    "UPDATE models SET is_default = TRUE, revision = revision + 1 WHERE id = $1",
                    &[successor],
                )
                .await?;
            }
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(deletion)
    }
}
