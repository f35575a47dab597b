//! Profiles in Postgres. As for models, "exactly one default while any profile exists"
//! is a fact about the whole table: every profile write first locks the table against
//! other writers (SHARE ROW EXCLUSIVE: it conflicts with itself and with row changes,
//! not with reads), then checks and changes it as SQLite does under its single writer.

use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::Row;

use super::{PostgresStore, decode_all, execute, get, pg_error, query, query_opt, storage_error};
use crate::{
    domain::{Error, Resource, Result, profile::Profile},
    store::{
        ProfileStore,
        codec::{self, PROFILE_COLUMNS},
    },
};

fn profile_from_row(row: &Row) -> Result<Profile> {
    codec::profile_from(get(row, 2)?, get(row, 0)?, get(row, 1)?).map_err(storage_error)
}

async fn get_profile<C: GenericClient>(client: &C, id: &str) -> Result<Option<Profile>> {
    query_opt(
        client,
        &format!("SELECT {PROFILE_COLUMNS} FROM profiles WHERE id = $1"),
        &[&id],
    )
    .await?
    .as_ref()
    .map(profile_from_row)
    .transpose()
}

/// Starts a profile write: a transaction holding the table's writer lock.
async fn lock_profiles(tx: &Transaction<'_>) -> Result<()> {
    tx.batch_execute("LOCK TABLE profiles IN SHARE ROW EXCLUSIVE MODE")
        .await
        .map_err(pg_error)
}

fn config_json(profile: &Profile) -> Result<String> {
    codec::to_json(profile).map_err(storage_error)
}

async fn clear_default<C: GenericClient>(client: &C, except: &str) -> Result<()> {
    execute(
        client,
        "UPDATE profiles SET is_default = FALSE, revision = revision + 1 \
         WHERE is_default AND id <> $1",
        &[&except],
    )
    .await?;
    Ok(())
}

fn name(id: &str) -> String {
    format!("profiles/{id}")
}

#[async_trait]
impl ProfileStore for PostgresStore {
    async fn list_profiles(&self) -> Result<Vec<Profile>> {
        let client = self.client().await?;
        let rows = query(
            &client,
            &format!(
                "SELECT {PROFILE_COLUMNS} FROM profiles ORDER BY is_default DESC, create_time, id"
            ),
            &[],
        )
        .await?;
        decode_all(&rows, profile_from_row)
    }

    async fn get_profile(&self, id: &str) -> Result<Option<Profile>> {
        let client = self.client().await?;
        get_profile(&client, id).await
    }

    async fn default_profile(&self) -> Result<Option<Profile>> {
        let client = self.client().await?;
        query_opt(
            &client,
            &format!("SELECT {PROFILE_COLUMNS} FROM profiles WHERE is_default"),
            &[],
        )
        .await?
        .as_ref()
        .map(profile_from_row)
        .transpose()
    }

    async fn create_profile(&self, profile: &Profile) -> Result<Profile> {
        let mut profile = profile.clone();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        lock_profiles(&tx).await?;
        if get_profile(&tx, &profile.id).await?.is_some() {
            return Err(Error::AlreadyExists {
                resource: Resource::Profile,
                name: name(&profile.id),
            });
        }
        let count: i64 = match query_opt(&tx, "SELECT count(*) FROM profiles", &[]).await? {
            Some(row) => get(&row, 0)?,
            None => return Err(storage_error("an aggregate returned no row")),
        };
        if count == 0 {
            profile.is_default = true;
        }
        if profile.is_default {
            clear_default(&tx, &profile.id).await?;
        }
        execute(
            &tx,
            "INSERT INTO profiles (id, is_default, create_time, update_time, revision, config) \
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &profile.id,
                &profile.is_default,
                &profile.create_time.as_micros(),
                &profile.update_time.as_micros(),
                &profile.revision,
                &config_json(&profile)?,
            ],
        )
        .await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(profile)
    }

    async fn update_profile(
        &self,
        profile: &Profile,
        expected_revision: i64,
    ) -> Result<Option<Profile>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        lock_profiles(&tx).await?;
        let Some(stored) = get_profile(&tx, &profile.id).await? else {
            return Err(Error::not_found(Resource::Profile, name(&profile.id)));
        };
        if stored.revision != expected_revision {
            return Ok(None);
        }
        codec::keep_default_profile(&stored, profile)?;
        if profile.is_default {
            clear_default(&tx, &profile.id).await?;
        }
        execute(
            &tx,
            "UPDATE profiles SET is_default = $2, update_time = $3, revision = $4, config = $5 \
             WHERE id = $1",
            &[
                &profile.id,
                &profile.is_default,
                &profile.update_time.as_micros(),
                &profile.revision,
                &config_json(profile)?,
            ],
        )
        .await?;
        tx.commit().await.map_err(pg_error)?;
        Ok(Some(profile.clone()))
    }

    async fn delete_profile(
        &self,
        id: &str,
        expected_revision: Option<i64>,
    ) -> Result<Option<String>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_error)?;
        lock_profiles(&tx).await?;
        let Some(stored) = get_profile(&tx, id).await? else {
            return Err(Error::not_found(Resource::Profile, name(id)));
        };
        if expected_revision.is_some_and(|r| r != stored.revision) {
            return Err(Error::EtagMismatch {
                resource: Resource::Profile,
                name: name(id),
            });
        }
        execute(&tx, "DELETE FROM profiles WHERE id = $1", &[&id]).await?;
        let mut promoted = None;
        if stored.is_default {
            let successor = query_opt(
                &tx,
                "SELECT id FROM profiles ORDER BY create_time, id LIMIT 1",
                &[],
            )
            .await?;
            promoted = successor
                .as_ref()
                .map(|row| get::<String>(row, 0))
                .transpose()?;
            if let Some(successor) = &promoted {
                execute(
                    &tx,
                    "UPDATE profiles SET is_default = TRUE, revision = revision + 1 WHERE id = $1",
                    &[successor],
                )
                .await?;
            }
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(promoted)
    }
}
