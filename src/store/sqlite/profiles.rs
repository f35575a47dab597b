//! Profiles in SQLite: the default invariant is kept inside each write transaction, as
//! for models.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::{SqliteStore, immediate, storage_error};
use crate::{
    domain::{Error, Resource, Result, profile::Profile},
    store::{
        ProfileStore,
        codec::{self, PROFILE_COLUMNS as COLUMNS},
    },
};

fn profile_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Profile> {
    let is_default: bool = row.get(0)?;
    let revision: i64 = row.get(1)?;
    let config: String = row.get(2)?;
    codec::profile_from(&config, is_default, revision).map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(err))
    })
}

fn get(conn: &Connection, id: &str) -> Result<Option<Profile>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM profiles WHERE id = ?1"),
        [id],
        profile_from_row,
    )
    .optional()
    .map_err(storage_error)
}

fn config_json(profile: &Profile) -> Result<String> {
    codec::to_json(profile).map_err(storage_error)
}

fn clear_default(tx: &Transaction<'_>, except: &str) -> Result<()> {
    tx.execute(
        "UPDATE profiles SET is_default = 0, revision = revision + 1 \
         WHERE is_default = 1 AND id != ?1",
        [except],
    )
    .map_err(storage_error)?;
    Ok(())
}

fn name(id: &str) -> String {
    format!("profiles/{id}")
}

#[async_trait]
impl ProfileStore for SqliteStore {
    async fn list_profiles(&self) -> Result<Vec<Profile>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM profiles ORDER BY is_default DESC, create_time, id"
                ))
                .map_err(storage_error)?;
            let rows = stmt
                .query_map([], profile_from_row)
                .map_err(storage_error)?;
            rows.collect::<rusqlite::Result<Vec<_>>>()
                .map_err(storage_error)
        })
        .await
    }

    async fn get_profile(&self, id: &str) -> Result<Option<Profile>> {
        let id = id.to_owned();
        self.read(move |conn| get(conn, &id)).await
    }

    async fn default_profile(&self) -> Result<Option<Profile>> {
        self.read(|conn| {
            conn.query_row(
                &format!("SELECT {COLUMNS} FROM profiles WHERE is_default = 1"),
                [],
                profile_from_row,
            )
            .optional()
            .map_err(storage_error)
        })
        .await
    }

    async fn create_profile(&self, profile: &Profile) -> Result<Profile> {
        let mut profile = profile.clone();
        self.write(move |conn| {
            let tx = immediate(conn)?;
            if get(&tx, &profile.id)?.is_some() {
                return Err(Error::AlreadyExists {
                    resource: Resource::Profile,
                    name: name(&profile.id),
                });
            }
            let count: i64 = tx
                .query_row("SELECT count(*) FROM profiles", [], |row| row.get(0))
                .map_err(storage_error)?;
            if count == 0 {
                profile.is_default = true;
            }
            if profile.is_default {
                clear_default(&tx, &profile.id)?;
            }
            tx.execute(
                "INSERT INTO profiles (id, is_default, create_time, update_time, revision, config) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    profile.id,
                    profile.is_default,
                    profile.create_time.as_micros(),
                    profile.update_time.as_micros(),
                    profile.revision,
                    config_json(&profile)?
                ],
            )
            .map_err(storage_error)?;
            tx.commit().map_err(storage_error)?;
            Ok(profile)
        })
        .await
    }

    async fn update_profile(
        &self,
        profile: &Profile,
        expected_revision: i64,
    ) -> Result<Option<Profile>> {
        let profile = profile.clone();
        self.write(move |conn| {
            let tx = immediate(conn)?;
            let Some(stored) = get(&tx, &profile.id)? else {
                return Err(Error::not_found(Resource::Profile, name(&profile.id)));
            };
            if stored.revision != expected_revision {
                return Ok(None);
            }
            codec::keep_default_profile(&stored, &profile)?;
            if profile.is_default {
                clear_default(&tx, &profile.id)?;
            }
            tx.execute(
                "UPDATE profiles SET is_default = ?2, update_time = ?3, revision = ?4, \
                 config = ?5 WHERE id = ?1",
                params![
                    profile.id,
                    profile.is_default,
                    profile.update_time.as_micros(),
                    profile.revision,
                    config_json(&profile)?
                ],
            )
            .map_err(storage_error)?;
            tx.commit().map_err(storage_error)?;
            Ok(Some(profile))
        })
        .await
    }

    async fn delete_profile(
        &self,
        id: &str,
        expected_revision: Option<i64>,
    ) -> Result<Option<String>> {
        let id = id.to_owned();
        self.write(move |conn| {
            let tx = immediate(conn)?;
            let Some(stored) = get(&tx, &id)? else {
                return Err(Error::not_found(Resource::Profile, name(&id)));
            };
            if expected_revision.is_some_and(|r| r != stored.revision) {
                return Err(Error::EtagMismatch {
                    resource: Resource::Profile,
                    name: name(&id),
                });
            }
            tx.execute("DELETE FROM profiles WHERE id = ?1", [&id])
                .map_err(storage_error)?;
            let mut promoted = None;
            if stored.is_default {
                promoted = tx
                    .query_row(
                        "SELECT id FROM profiles ORDER BY create_time, id LIMIT 1",
                        [],
                        |row| row.get::<_, String>(0),
                    )
                    .optional()
                    .map_err(storage_error)?;
                if let Some(successor) = &promoted {
                    tx.execute(
                        "UPDATE profiles SET is_default = 1, revision = revision + 1 WHERE id = ?1",
                        [successor],
                    )
                    .map_err(storage_error)?;
                }
            }
            tx.commit().map_err(storage_error)?;
            Ok(promoted)
        })
        .await
    }
}
