//! Models in SQLite: the default invariant is kept inside each write transaction.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{SqliteStore, immediate, storage_error};
use crate::{
    domain::{Error, Model, Resource, Result},
    store::{
        ModelDeletion, ModelStore,
        codec::{self, MODEL_COLUMNS as COLUMNS},
    },
};

fn model_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Model> {
    let is_default: bool = row.get(0)?;
    let revision: i64 = row.get(1)?;
    let config: String = row.get(2)?;
    codec::model_from(&config, is_default, revision).map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(err))
    })
}

fn get(conn: &Connection, id: &str) -> Result<Option<Model>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM models WHERE id = ?1"),
        [id],
        model_from_row,
    )
    .optional()
    .map_err(storage_error)
}

fn config_json(model: &Model) -> Result<String> {
    codec::to_json(model).map_err(storage_error)
}

fn clear_default(tx: &Transaction<'_>, except: &str) -> Result<()> {
    tx.execute(
        "UPDATE models SET is_default = 0, revision = revision + 1 \
         WHERE is_default = 1 AND id != ?1",
        [except],
    )
    .map_err(storage_error)?;
    Ok(())
}

fn not_found(id: &str) -> Error {
    Error::not_found(Resource::Model, format!("models/{id}"))
}

#[async_trait]
impl ModelStore for SqliteStore {
    async fn list_models(&self) -> Result<Vec<Model>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM models ORDER BY is_default DESC, create_time, id"
                ))
                .map_err(storage_error)?;
            let rows = stmt.query_map([], model_from_row).map_err(storage_error)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(storage_error)
        })
        .await
    }

    async fn create_model(&self, model: &Model) -> Result<Model> {
        let mut model = model.clone();
        self.write(move |conn| {
            let tx = immediate(conn)?;
            if get(&tx, &model.id)?.is_some() {
                return Err(Error::AlreadyExists {
                    resource: Resource::Model,
                    name: format!("models/{}", model.id),
                });
            }
            let count: i64 = tx
                .query_row("SELECT count(*) FROM models", [], |row| row.get(0))
                .map_err(storage_error)?;
            if count == 0 {
                model.is_default = true;
            }
            if model.is_default {
                clear_default(&tx, &model.id)?;
            }
            tx.execute(
                "INSERT INTO models (id, is_default, create_time, update_time, revision, config) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    model.id,
                    model.is_default,
                    model.create_time.as_micros(),
                    model.update_time.as_micros(),
                    model.revision,
                    config_json(&model)?
                ],
            )
            .map_err(storage_error)?;
            tx.commit().map_err(storage_error)?;
            Ok(model)
        })
        .await
    }

    async fn update_model(&self, model: &Model, expected_revision: i64) -> Result<Option<Model>> {
        let model = model.clone();
        self.write(move |conn| {
            let tx = immediate(conn)?;
            let Some(stored) = get(&tx, &model.id)? else {
                return Err(not_found(&model.id));
            };
            if stored.revision != expected_revision {
                return Ok(None);
            }
            codec::keep_default(&stored, &model)?;
            if model.is_default {
                clear_default(&tx, &model.id)?;
            }
            tx.execute(
                "UPDATE models SET is_default = ?2, update_time = ?3, revision = ?4, config = ?5 \
                 WHERE id = ?1",
                params![
                    model.id,
                    model.is_default,
                    model.update_time.as_micros(),
                    model.revision,
                    config_json(&model)?
                ],
            )
            .map_err(storage_error)?;
            tx.commit().map_err(storage_error)?;
            Ok(Some(model))
        })
        .await
    }

    async fn delete_model(
        &self,
        id: &str,
        expected_revision: Option<i64>,
        force: bool,
    ) -> Result<ModelDeletion> {
        let id = id.to_owned();
        self.write(move |conn| {
            let tx = immediate(conn)?;
            let Some(stored) = get(&tx, &id)? else {
                return Err(not_found(&id));
            };
            if expected_revision.is_some_and(|r| r != stored.revision) {
                return Err(Error::EtagMismatch {
                    resource: Resource::Model,
                    name: format!("models/{id}"),
                });
            }
            let count: i64 = tx
                .query_row("SELECT count(*) FROM models", [], |row| row.get(0))
                .map_err(storage_error)?;
            if count == 1 && !force {
                let (sessions, schedules): (i64, i64) = tx
                    .query_row(
                        "SELECT (SELECT count(*) FROM sessions WHERE model = ?1), \
                                (SELECT count(*) FROM schedules WHERE model = ?1)",
                        [&id],
                        |row| Ok((row.get(0)?, row.get(1)?)),
                    )
                    .map_err(storage_error)?;
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
            tx.execute("DELETE FROM models WHERE id = ?1", [&id])
                .map_err(storage_error)?;
            let mut deletion = ModelDeletion::default();
            if stored.is_default {
                deletion.promoted = tx
                    .query_row(
                        "SELECT id FROM models ORDER BY create_time, id LIMIT 1",
                        [],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(storage_error)?;
                if let Some(successor) = &deletion.promoted {
                    tx.execute(
                        "UPDATE models SET is_default = 1, revision = revision + 1 WHERE id = ?1",
                        [successor],
                    )
                    .map_err(storage_error)?;
                }
            }
            tx.commit().map_err(storage_error)?;
            Ok(deletion)
        })
        .await
    }
}
