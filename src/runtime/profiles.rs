//! Profiles as a managed resource: stored in the database (seeded from `[profiles.<id>]`
//! at start, managed over the API after), read straight from the store whenever a
//! session is created, so a profile changed through any server of a cluster applies to
//! the next new session everywhere. There is no cache to keep coherent: one indexed read
//! per session creation.
//!
//! Sessions copy their profile's values when they are created (`Sessions::create`), so
//! nothing here ever touches an existing session.

use std::{collections::BTreeMap, sync::Arc};

use super::Models;
use crate::{
    config::ProfileConfig,
    domain::{
        Error, Resource, Result, Timestamp,
        profile::{Profile, ProfileField},
    },
    store::Store,
};

pub struct Profiles {
    store: Arc<dyn Store>,
    models: Arc<Models>,
}

fn not_found(id: &str) -> Error {
    Error::not_found(Resource::Profile, format!("profiles/{id}"))
}

fn etag_mismatch(id: &str) -> Error {
    Error::EtagMismatch {
        resource: Resource::Profile,
        name: format!("profiles/{id}"),
    }
}

/// The profile a new session starts from: the one named (NOT_FOUND if there is no such
/// profile), else the default profile, if there is one.
pub(crate) async fn choose(store: &dyn Store, requested: Option<&str>) -> Result<Option<Profile>> {
    match requested {
        Some(id) => store
            .get_profile(id)
            .await?
            .map(Some)
            .ok_or_else(|| not_found(id)),
        None => store.default_profile().await,
    }
}

/// A working dir rendered from a profile's template that does not resolve: the
/// violation says where the path came from.
pub(crate) fn explain_template(err: Error, profile: &str) -> Error {
    match err {
        Error::InvalidArgument(violations) => Error::InvalidArgument(
            violations
                .into_iter()
                .map(|mut v| {
                    v.description = format!(
                        "from profiles/{profile}'s working_dir_template: {}",
                        v.description
                    );
                    v
                })
                .collect(),
        ),
        other => other,
    }
}

impl Profiles {
    /// Adds the configured profiles the store does not have yet (the configured default
    /// first, so a fresh store makes it the default). A profile changed or deleted over
    /// the API stays so across restarts.
    pub async fn open(
        store: Arc<dyn Store>,
        models: Arc<Models>,
        configured: &BTreeMap<String, ProfileConfig>,
        configured_default: Option<&str>,
    ) -> Result<Self> {
        let stored = store.list_profiles().await?;
        let mut seeds: Vec<(&String, &ProfileConfig)> = configured.iter().collect();
        seeds.sort_by_key(|(id, _)| Some(id.as_str()) != configured_default);
        for (id, config) in seeds {
            if stored.iter().any(|p| &p.id == id) {
                continue;
            }
            let profile = config
                .to_profile(id)
                .map_err(|err| Error::invalid(format!("profiles.{id}"), err))?;
            if let Some(model) = &profile.model
                && !models.exists(model).await?
            {
                tracing::warn!(profile = %id, model = %model, "the configured profile names a model that does not exist; its sessions will use the default model");
            }
            tracing::info!(profile = %id, "adding the configured profile");
            match store.create_profile(&profile).await {
                // Another server of the cluster seeded it first.
                Ok(_) | Err(Error::AlreadyExists { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(Self { store, models })
    }

    /// Every profile, the default first, then by creation.
    pub async fn list(&self) -> Result<Vec<Profile>> {
        self.store.list_profiles().await
    }

    pub async fn get(&self, id: &str) -> Result<Profile> {
        self.store
            .get_profile(id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    /// Checks what validation cannot without I/O: the model exists. Field paths are
    /// relative to the profile.
    async fn check_references(&self, profile: &Profile) -> Result<()> {
        if let Some(model) = &profile.model
            && !self.models.exists(model).await?
        {
            return Err(Error::invalid(
                "model",
                format!("models/{model} does not exist"),
            ));
        }
        Ok(())
    }

    /// Stores a new profile (id given or generated). The first profile becomes the
    /// default.
    pub async fn create(&self, mut profile: Profile) -> Result<Profile> {
        if profile.id.is_empty() {
            profile.id = crate::domain::new_id();
        } else if !crate::domain::is_valid_model_id(&profile.id) {
            return Err(Error::invalid(
                "profile_id",
                "must be 1-63 characters of a-z, 0-9 and -, starting with a letter and not \
                 ending with -",
            ));
        }
        profile.validate().map_err(|e| e.within("profile."))?;
        self.check_references(&profile)
            .await
            .map_err(|e| e.within("profile."))?;
        let now = Timestamp::now();
        profile.create_time = now;
        profile.update_time = now;
        profile.revision = 1;
        let created = self.store.create_profile(&profile).await?;
        tracing::info!(profile = %created.id, default = created.is_default, "profile created");
        Ok(created)
    }

    /// Changes `fields` of a profile to the values in `changes`; with an expected
    /// revision (the etag), only if the profile's revision still is that. Sessions
    /// created from it before keep what they copied.
    pub async fn update(
        &self,
        id: &str,
        changes: &Profile,
        fields: &[ProfileField],
        expected_revision: Option<i64>,
    ) -> Result<Profile> {
        let current = self.get(id).await?;
        if expected_revision.is_some_and(|r| r != current.revision) {
            return Err(etag_mismatch(id));
        }
        let mut updated = current.clone();
        for field in fields {
            field.apply(changes, &mut updated);
        }
        updated.validate().map_err(|e| e.within("profile."))?;
        if fields.contains(&ProfileField::Model) {
            self.check_references(&updated)
                .await
                .map_err(|e| e.within("profile."))?;
        }
        updated.update_time = Timestamp::now();
        updated.revision = current.revision + 1;
        let stored = self
            .store
            .update_profile(&updated, current.revision)
            .await?
            .ok_or_else(|| etag_mismatch(id))?;
        tracing::info!(profile = %id, "profile updated");
        Ok(stored)
    }

    /// Deletes a profile; the oldest remaining one becomes the default if it was.
    pub async fn delete(&self, id: &str, expected_revision: Option<i64>) -> Result<()> {
        let promoted = self.store.delete_profile(id, expected_revision).await?;
        match promoted {
            Some(successor) => {
                tracing::info!(deleted = %id, default = %successor, "the default profile was deleted; promoted a successor");
            }
            None => tracing::info!(profile = %id, "profile deleted"),
        }
        Ok(())
    }
}
