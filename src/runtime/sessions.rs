//! Sessions: creation, listing, changes with optimistic concurrency, the trash (AIP-164
//! soft delete: move, restore, purge), fork, export and import, and the live feed of
//! changes behind WatchSessions.
//!
//! A session in the trash (`delete_time` set) is read-only: every change here refuses
//! it with FAILED_PRECONDITION (`SESSION_DELETED`), and the store refuses new messages
//! for it in the message's own transaction. Watchers see a move to the trash as
//! `Deleted` and a restore as `Created`, so a list that hides the trash stays right.

use std::{collections::HashMap, sync::Arc};

use tokio::sync::broadcast;

use super::{LiveIndex, Models, Workspace};
use crate::{
    domain::{
        Error, PermissionMode, Resource, Result, Session, SessionSource, SessionStatus, Timestamp,
        Usage, new_id,
        page::{self, fingerprint},
        session::{SessionField, SessionSettings, preview},
    },
    store::{SessionContent, SessionCursor, SessionFilter, Store},
};

/// How many changes a slow watcher may fall behind before it is told to reload.
const WATCH_BUFFER: usize = 1024;
/// Attempts of an unconditional update that races other writers.
const UPDATE_ATTEMPTS: usize = 8;
/// The archive format ExportSession writes and ImportSession reads.
pub const ARCHIVE_FORMAT_VERSION: i32 = 1;

/// What a new session is made of besides its settings.
#[derive(Clone, Debug)]
pub struct NewSession {
    /// What its creator chose; unset fields come from the profile.
    pub settings: SessionSettings,
    pub source: SessionSource,
    /// The profile (id) it starts from; `None`: the default profile, if there is one.
    pub profile: Option<String>,
    /// The permission mode when neither the settings nor the profile choose one.
    pub fallback_mode: PermissionMode,
}

impl NewSession {
    /// A session from `settings` with the default profile and ASK as the fallback.
    pub fn new(settings: SessionSettings, source: SessionSource) -> Self {
        Self {
            settings,
            source,
            profile: None,
            fallback_mode: PermissionMode::Ask,
        }
    }
}

/// One change in the set of sessions, as WatchSessions streams it.
#[derive(Clone, Debug)]
pub enum SessionChange {
    Created(Session),
    Updated(Session),
    Deleted(String),
}

pub struct Sessions {
    store: Arc<dyn Store>,
    workspace: Workspace,
    changes: broadcast::Sender<SessionChange>,
    /// In a cluster: where this server's changes go to reach the other servers.
    relay: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<SessionChange>>,
    /// Live status of sessions with work in progress.
    live: Arc<LiveIndex>,
    models: Arc<Models>,
    /// How long a session stays in the trash before it is purged (its `expire_time`).
    trash_retention: std::time::Duration,
}

/// The trash retention when the configuration says nothing (`trash_retention_days`).
pub const DEFAULT_TRASH_RETENTION: std::time::Duration =
    std::time::Duration::from_secs(30 * 24 * 3600);

impl Sessions {
    pub fn new(
        store: Arc<dyn Store>,
        workspace: Workspace,
        live: Arc<LiveIndex>,
        models: Arc<Models>,
    ) -> Self {
        let (changes, _) = broadcast::channel(WATCH_BUFFER);
        Self {
            store,
            workspace,
            changes,
            relay: std::sync::OnceLock::new(),
            live,
            models,
            trash_retention: DEFAULT_TRASH_RETENTION,
        }
    }

    /// Sets how long sessions stay in the trash (config `trash_retention_days`).
    pub fn with_trash_retention(mut self, retention: std::time::Duration) -> Self {
        self.trash_retention = retention;
        self
    }

    /// Tells watchers a session changed (e.g. its live status).
    pub fn publish_updated(&self, session: Session) {
        self.publish(SessionChange::Updated(session));
    }

    async fn check_model(&self, model: Option<&str>) -> Result<()> {
        match model {
            Some(id) if !self.models.exists(id).await? => Err(Error::NotFound {
                resource: Resource::Model,
                name: format!("models/{id}"),
            }),
            _ => Ok(()),
        }
    }

    /// Checks a working dir the way session creation will (inside the workspace root);
    /// violations name `field`.
    pub fn check_working_dir(&self, dir: &str, field: &str) -> Result<()> {
        self.workspace.resolve(dir, field).map(|_| ())
    }

    /// Subscribes to session changes from now on.
    pub fn watch(&self) -> broadcast::Receiver<SessionChange> {
        self.changes.subscribe()
    }

    pub(crate) fn publish(&self, change: SessionChange) {
        if let Some(relay) = self.relay.get() {
            let _ = relay.send(change.clone());
        }
        self.publish_here(change);
    }

    /// Tells this server's watchers only (another server's change, relayed).
    pub(crate) fn publish_here(&self, change: SessionChange) {
        // No receivers is fine: nobody is watching.
        let _ = self.changes.send(change);
    }

    /// Sends every change made here to `relay` as well (a cluster; see `changes`).
    pub(crate) fn relay_to(&self, relay: tokio::sync::mpsc::UnboundedSender<SessionChange>) {
        let _ = self.relay.set(relay);
    }

    /// Creates a session: `new.settings` where set, else its profile's values (the
    /// profile named, else the default profile), else the defaults. NOT_FOUND for an
    /// unknown profile or an unknown explicit model.
    pub async fn create(&self, new: NewSession) -> Result<Session> {
        let NewSession {
            mut settings,
            source,
            profile,
            fallback_mode,
        } = new;
        settings.validate()?;
        self.check_model(settings.model.as_deref()).await?;
        let profile = super::profiles::choose(&*self.store, profile.as_deref()).await?;
        let id = new_id();
        let now = Timestamp::now();
        if let Some(profile) = &profile {
            profile.fill(&mut settings);
        }
        let working_dir = match profile
            .as_ref()
            .filter(|_| settings.working_dir.is_empty())
            .and_then(|p| Some((p, p.working_dir(&id, now)?)))
        {
            Some((profile, dir)) => self
                .workspace
                .resolve(&dir, "working_dir")
                .map_err(|err| super::profiles::explain_template(err, &profile.id))?,
            None => self
                .workspace
                .resolve(&settings.working_dir, "working_dir")?,
        };
        let session = Session {
            id,
            display_name: settings.display_name,
            model: settings.model,
            reasoning_effort: settings.reasoning_effort,
            working_dir: working_dir.to_string_lossy().into_owned(),
            permission_mode: settings.permission_mode.unwrap_or(fallback_mode),
            system_prompt: settings.system_prompt,
            labels: settings.labels,
            pinned: settings.pinned,
            source,
            message_count: 0,
            last_message_preview: String::new(),
            usage: Usage::default(),
            create_time: now,
            update_time: now,
            last_active_time: now,
            revision: 1,
            forked_from: None,
            mcp_servers: settings.mcp_servers,
            delete_time: None,
            expire_time: None,
            profile: profile.map(|p| p.id),
            status: SessionStatus::Idle,
            queue_depth: 0,
            active_turn: None,
        };
        self.store.create_session(&session).await?;
        tracing::info!(session = %session.id, profile = session.profile.as_deref().unwrap_or(""), "session created");
        self.publish(SessionChange::Created(session.clone()));
        Ok(session)
    }

    pub async fn get(&self, id: &str) -> Result<Session> {
        let mut session = self
            .store
            .get_session(id)
            .await?
            .ok_or_else(|| Error::not_found(Resource::Session, format!("sessions/{id}")))?;
        self.live.overlay(&mut session);
        Ok(session)
    }

    /// One page of sessions and the token of the next page (empty on the last page).
    /// The token is bound to the filters and the order: another request's token is
    /// INVALID_ARGUMENT.
    pub async fn list(
        &self,
        filter: &SessionFilter,
        page_token: &str,
        page_size: i32,
    ) -> Result<(Vec<Session>, String)> {
        let limit = page::page_size(page_size)?;
        let filters = filter_fingerprint(filter);
        let after: Option<SessionCursor> = page::decode_token(page_token, filters)?;
        if after.as_ref().is_some_and(|c| !c.fits(&filter.order)) {
            return Err(Error::invalid(
                "page_token",
                "is not a token this server issued for this order_by",
            ));
        }
        // One extra row tells whether another page exists without a second query.
        let mut sessions = self
            .store
            .list_sessions(filter, after.as_ref(), limit + 1)
            .await?;
        for session in &mut sessions {
            self.live.overlay(session);
        }
        let next = if sessions.len() > limit {
            sessions.truncate(limit);
            sessions
                .last()
                .map(|last| page::encode_token(&SessionCursor::of(last, &filter.order), filters))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok((sessions, next))
    }

    /// Applies `change` to the session's latest state with optimistic concurrency and
    /// publishes the result. With an etag it fails on a concurrent change (ABORTED);
    /// without one it retries on top of the latest state. `change` gives the next state
    /// (its revision and update time are set here), or `None` when nothing changes (no
    /// new revision, no event). Returns the session as stored and whether it changed.
    async fn change(
        &self,
        id: &str,
        etag: &str,
        mut change: impl FnMut(&Session) -> Result<Option<Session>>,
    ) -> Result<(Session, bool)> {
        for _ in 0..UPDATE_ATTEMPTS {
            let current = self.get(id).await?;
            current.check_etag(etag)?;
            let Some(mut next) = change(&current)? else {
                return Ok((current, false));
            };
            next.revision = current.revision + 1;
            next.update_time = Timestamp::now();
            if self.store.update_session(&next, current.revision).await? {
                return Ok((next, true));
            }
            if !etag.is_empty() {
                return Err(Error::EtagMismatch {
                    resource: Resource::Session,
                    name: format!("sessions/{id}"),
                });
            }
        }
        Err(Error::Unavailable {
            reason: crate::domain::reason::CONTENDED,
            message: format!("sessions/{id} is changing too fast; retry"),
            retry_after: Some(std::time::Duration::from_millis(100)),
        })
    }

    /// Changes `fields` to their values in `settings`. With an etag the update fails on a
    /// concurrent change; without one it retries on top of the latest state.
    pub async fn update(
        &self,
        id: &str,
        settings: SessionSettings,
        fields: &[SessionField],
        etag: &str,
    ) -> Result<Session> {
        settings.validate()?;
        if fields.contains(&SessionField::Model) {
            self.check_model(settings.model.as_deref()).await?;
        }
        let working_dir = if fields.contains(&SessionField::WorkingDir) {
            Some(
                self.workspace
                    .resolve(&settings.working_dir, "working_dir")?,
            )
        } else {
            None
        };
        let (session, changed) = self
            .change(id, etag, |current| {
                current.check_not_deleted()?;
                let mut next = current.clone();
                for field in fields {
                    match field {
                        SessionField::DisplayName => {
                            next.display_name = settings.display_name.clone()
                        }
                        SessionField::Model => next.model = settings.model.clone(),
                        SessionField::ReasoningEffort => {
                            next.reasoning_effort = settings.reasoning_effort
                        }
                        SessionField::WorkingDir => {
                            if let Some(dir) = &working_dir {
                                next.working_dir = dir.to_string_lossy().into_owned();
                            }
                        }
                        SessionField::PermissionMode => {
                            next.permission_mode = settings.permission_mode.unwrap_or_default()
                        }
                        SessionField::SystemPrompt => {
                            next.system_prompt = settings.system_prompt.clone()
                        }
                        SessionField::Labels => next.labels = settings.labels.clone(),
                        SessionField::Pinned => next.pinned = settings.pinned,
                        SessionField::McpServers => next.mcp_servers = settings.mcp_servers.clone(),
                    }
                }
                // Nothing changes: no new revision, no event.
                Ok((next != *current).then_some(next))
            })
            .await?;
        if changed {
            self.publish(SessionChange::Updated(session.clone()));
        }
        Ok(session)
    }

    /// Moves a session to the trash (AIP-164): sets `delete_time` and `expire_time`
    /// (now + the trash retention), a new revision. NOT_FOUND if it is gone or already
    /// in the trash. The caller ends its live state (see `Chat::delete_session`).
    pub async fn trash(&self, id: &str, etag: &str) -> Result<Session> {
        let now = Timestamp::now();
        let retention = self.trash_retention;
        let (session, _) = self
            .change(id, etag, |current| {
                if current.is_deleted() {
                    // Moved there meanwhile by another request: AIP-164 NOT_FOUND.
                    return Err(Error::not_found(
                        Resource::Session,
                        format!("sessions/{id}"),
                    ));
                }
                let mut next = current.clone();
                next.delete_time = Some(now);
                next.expire_time = Some(now.plus(retention));
                Ok(Some(next))
            })
            .await?;
        tracing::info!(session = %id, expire_time = %session.expire_time.unwrap_or_default().to_rfc3339(), "session moved to the trash");
        self.publish(SessionChange::Deleted(id.to_owned()));
        Ok(session)
    }

    /// Restores a session from the trash (AIP-164 Undelete): clears `delete_time` and
    /// `expire_time`. ALREADY_EXISTS if it is not in the trash.
    pub async fn restore(&self, id: &str) -> Result<Session> {
        let (session, _) = self
            .change(id, "", |current| {
                if !current.is_deleted() {
                    return Err(Error::AlreadyExists {
                        resource: Resource::Session,
                        name: format!("sessions/{id}"),
                    });
                }
                let mut next = current.clone();
                next.delete_time = None;
                next.expire_time = None;
                Ok(Some(next))
            })
            .await?;
        tracing::info!(session = %id, "session restored from the trash");
        self.publish(SessionChange::Created(session.clone()));
        Ok(session)
    }

    /// Purges a session in the trash for good: it, its messages and turns. NOT_FOUND if
    /// it is gone; FAILED_PRECONDITION (`SESSION_NOT_DELETED`) if it is not in the trash
    /// (restored meanwhile included). The caller ends its live state first.
    pub async fn purge(&self, id: &str) -> Result<()> {
        if self.store.purge_session(id).await? {
            tracing::info!(session = %id, "session purged from the trash");
            self.publish(SessionChange::Deleted(id.to_owned()));
            return Ok(());
        }
        // Gone, or restored between the caller's check and here.
        let session = self.get(id).await?;
        Err(crate::domain::session::session_not_deleted(&session.id))
    }

    /// The whole session, for ExportSession.
    pub async fn export(&self, id: &str) -> Result<SessionContent> {
        self.store
            .session_content(id)
            .await?
            .ok_or_else(|| Error::not_found(Resource::Session, format!("sessions/{id}")))
    }

    /// A new session holding a copy of `id`'s history up to and including
    /// `up_to_message` (all of it when `None`).
    pub async fn fork(
        &self,
        id: &str,
        up_to_message: Option<&str>,
        display_name: Option<String>,
    ) -> Result<Session> {
        let mut content = self.export(id).await?;
        // A session in the trash is read-only, forking included (restore it first).
        content.session.check_not_deleted()?;
        if let Some(message_id) = up_to_message {
            let Some(position) = content.messages.iter().position(|m| m.id == message_id) else {
                return Err(Error::not_found(
                    Resource::Message,
                    format!("sessions/{id}/messages/{message_id}"),
                ));
            };
            content.messages.truncate(position + 1);
        }
        let kept_turns: std::collections::HashSet<String> = content
            .messages
            .iter()
            .filter_map(|m| m.turn_id.clone())
            .collect();
        content.turns.retain(|t| kept_turns.contains(&t.id));
        let title = display_name.unwrap_or_else(|| {
            format!("{} (fork)", content.session.display_name)
                .trim()
                .to_owned()
        });
        content.session.display_name = title;
        content.session.forked_from = Some(id.to_owned());
        content.session.pinned = false;
        let session = self.insert_copy(content, None).await?;
        tracing::info!(session = %session.id, from = %id, "session forked");
        Ok(session)
    }

    /// Restores an exported session under a new id. A working dir that is not acceptable
    /// here (another machine's path, outside the root) falls back to the workspace root.
    pub async fn import(&self, content: SessionContent) -> Result<Session> {
        let working_dir = match self
            .workspace
            .resolve(&content.session.working_dir, "working_dir")
        {
            Ok(dir) => dir,
            Err(err) => {
                tracing::warn!(error = %err, "imported working dir not usable here; using the workspace root");
                self.workspace.root().to_path_buf()
            }
        };
        let session = self
            .insert_copy(content, Some(working_dir.to_string_lossy().into_owned()))
            .await?;
        tracing::info!(session = %session.id, "session imported");
        Ok(session)
    }

    /// Stores `content` as a new session: new ids for the session, its messages and its
    /// turns (references remapped, order kept), counters derived from the messages.
    async fn insert_copy(
        &self,
        content: SessionContent,
        working_dir: Option<String>,
    ) -> Result<Session> {
        let SessionContent {
            mut session,
            mut messages,
            mut turns,
        } = content;
        let session_id = new_id();
        // Messages come in conversation order; ids are time-ordered, so generating them in
        // that order keeps it, and positions restate it.
        turns.sort_by(|a, b| (a.create_time, &a.id).cmp(&(b.create_time, &b.id)));
        let mut turn_ids = HashMap::new();
        for turn in &mut turns {
            let fresh = new_id();
            turn_ids.insert(std::mem::replace(&mut turn.id, fresh.clone()), fresh);
            turn.session_id = session_id.clone();
        }
        let mut message_ids = HashMap::new();
        for (index, message) in messages.iter_mut().enumerate() {
            message.position = Some(index as i64 + 1);
            let fresh = new_id();
            message_ids.insert(std::mem::replace(&mut message.id, fresh.clone()), fresh);
            message.session_id = session_id.clone();
            message.turn_id = message
                .turn_id
                .as_ref()
                .and_then(|t| turn_ids.get(t).cloned());
        }
        for turn in &mut turns {
            turn.user_message_id = turn
                .user_message_id
                .as_ref()
                .and_then(|m| message_ids.get(m).cloned());
            // A copied turn that was still going is not going here.
            if !turn.status.is_terminal() {
                turn.status = crate::domain::TurnStatus::Interrupted;
            }
        }
        let now = Timestamp::now();
        session.id = session_id;
        if let Some(dir) = working_dir {
            session.working_dir = dir;
        }
        session.message_count = messages.len() as i64;
        session.last_message_preview = messages
            .last()
            .map(|m| preview(&m.text()))
            .unwrap_or_default();
        session.usage = turns.iter().fold(Usage::default(), |mut total, t| {
            total.add(&t.usage);
            total
        });
        session.create_time = now;
        session.update_time = now;
        session.last_active_time = messages
            .last()
            .map_or(now, |m| m.create_time.max(session.last_active_time));
        session.revision = 1;
        // A copy is never in the trash (an archive of a trashed session imports live).
        session.delete_time = None;
        session.expire_time = None;
        session.status = SessionStatus::Idle;
        session.queue_depth = 0;
        session.active_turn = None;
        let content = SessionContent {
            session,
            messages,
            turns,
        };
        self.store.insert_session_content(&content).await?;
        self.publish(SessionChange::Created(content.session.clone()));
        Ok(content.session)
    }
}

/// What a page token is bound to. The parts added with the trash, label filters and
/// orders count only when they differ from their defaults, so tokens of requests that
/// use none of them (all tokens issued before) stay valid across the upgrade.
fn filter_fingerprint(filter: &SessionFilter) -> u64 {
    let mut parts = vec![
        filter.query.clone().unwrap_or_default(),
        format!("{:?}", filter.source),
        format!("{:?}", filter.pinned),
        format!("{:?}", filter.created_after),
        format!("{:?}", filter.created_before),
    ];
    if filter.show_deleted {
        parts.push("show_deleted".to_owned());
    }
    if !filter.labels.is_empty() {
        parts.push(format!("{:?}", filter.labels));
    }
    if filter.order != crate::domain::session_list::SessionOrder::default() {
        parts.push(filter.order.canonical());
    }
    fingerprint(&parts.iter().map(String::as_str).collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        domain::{Message, Part, Role},
        store::sqlite::SqliteStore,
    };

    async fn sessions() -> (tempfile::TempDir, Sessions) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open(&dir.path().join("octo.db"))
            .await
            .expect("store");
        let workspace = Workspace::new(&dir.path().join("ws"), false).expect("workspace");
        let store: Arc<dyn Store> = Arc::new(store);
        let models = Models::open(
            store.clone(),
            &Default::default(),
            None,
            reqwest::Client::new(),
            Default::default(),
        )
        .await
        .expect("models");
        (
            dir,
            Sessions::new(store, workspace, Arc::default(), Arc::new(models)),
        )
    }

    fn titled(title: &str) -> SessionSettings {
        SessionSettings {
            display_name: title.into(),
            ..SessionSettings::default()
        }
    }

    #[tokio::test]
    async fn list_pages_through_everything_exactly_once() {
        let (_dir, sessions) = sessions().await;
        for i in 0..7 {
            sessions
                .create(NewSession::new(
                    titled(&format!("s{i}")),
                    SessionSource::Api,
                ))
                .await
                .expect("create");
        }
        let filter = SessionFilter::default();
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let (page, next) = sessions.list(&filter, &token, 3).await.expect("list");
            seen.extend(page.into_iter().map(|s| s.display_name));
            if next.is_empty() {
                break;
            }
            token = next;
        }
        assert_eq!(seen, ["s6", "s5", "s4", "s3", "s2", "s1", "s0"]);
        let other = SessionFilter {
            query: Some("s1".into()),
            ..SessionFilter::default()
        };
        let (_, next) = sessions.list(&filter, "", 3).await.expect("list");
        assert!(
            sessions.list(&other, &next, 3).await.is_err(),
            "token bound to its filter"
        );
    }

    #[tokio::test]
    async fn update_checks_etag_and_publishes_changes() {
        let (_dir, sessions) = sessions().await;
        let mut watch = sessions.watch();
        let created = sessions
            .create(NewSession::new(titled("a"), SessionSource::Manual))
            .await
            .expect("create");
        assert!(matches!(watch.recv().await, Ok(SessionChange::Created(s)) if s.id == created.id));

        let updated = sessions
            .update(
                &created.id,
                titled("b"),
                &[SessionField::DisplayName],
                &created.etag(),
            )
            .await
            .expect("update");
        assert_eq!(updated.display_name, "b");
        assert_ne!(updated.etag(), created.etag());
        assert!(
            matches!(watch.recv().await, Ok(SessionChange::Updated(s)) if s.display_name == "b")
        );

        let stale = sessions
            .update(
                &created.id,
                titled("c"),
                &[SessionField::DisplayName],
                &created.etag(),
            )
            .await;
        assert!(matches!(stale, Err(Error::EtagMismatch { .. })));
        // Fields outside the mask stay as they were.
        let pinned = sessions
            .update(
                &created.id,
                SessionSettings {
                    pinned: true,
                    ..titled("ignored")
                },
                &[SessionField::Pinned],
                "",
            )
            .await
            .expect("pin");
        assert_eq!((pinned.display_name.as_str(), pinned.pinned), ("b", true));
    }

    #[tokio::test]
    async fn fork_copies_history_up_to_a_message_with_new_ids() {
        let (_dir, sessions) = sessions().await;
        let original = sessions
            .create(NewSession::new(titled("orig"), SessionSource::Api))
            .await
            .expect("create");
        let mut content = sessions.export(&original.id).await.expect("export");
        for (i, text) in ["one", "two", "three"].into_iter().enumerate() {
            content.messages.push(Message {
                id: new_id(),
                session_id: original.id.clone(),
                turn_id: None,
                role: if i % 2 == 0 {
                    Role::User
                } else {
                    Role::Assistant
                },
                parts: vec![Part::Text { text: text.into() }],
                create_time: Timestamp(i as i64 + 1),
                incomplete: false,
                model: None,
                position: None,
            });
        }
        let imported = sessions.import(content).await.expect("import");
        assert_eq!(imported.message_count, 3);
        assert_eq!(imported.last_message_preview, "three");
        let source = sessions.export(&imported.id).await.expect("export");
        let second = source.messages[1].id.clone();

        let fork = sessions
            .fork(&imported.id, Some(&second), None)
            .await
            .expect("fork");
        assert_eq!(fork.display_name, "orig (fork)");
        assert_eq!(fork.forked_from.as_deref(), Some(imported.id.as_str()));
        let forked = sessions.export(&fork.id).await.expect("export fork");
        let texts: Vec<_> = forked.messages.iter().map(Message::text).collect();
        assert_eq!(texts, ["one", "two"]);
        assert!(forked.messages.iter().all(|m| m.session_id == fork.id));
        assert!(
            forked
                .messages
                .iter()
                .all(|m| !source.messages.iter().any(|o| o.id == m.id))
        );

        let unknown = sessions.fork(&imported.id, Some(&new_id()), None).await;
        assert!(matches!(
            unknown,
            Err(Error::NotFound {
                resource: Resource::Message,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn the_trash_is_read_only_restorable_and_purged_only_from_there() {
        let (_dir, sessions) = sessions().await;
        let mut watch = sessions.watch();
        let s = sessions
            .create(NewSession::new(titled("x"), SessionSource::Api))
            .await
            .expect("create");
        assert!(matches!(
            sessions.trash(&s.id, "\"999\"").await,
            Err(Error::EtagMismatch { .. })
        ));
        assert!(matches!(
            sessions.purge(&s.id).await,
            Err(Error::FailedPrecondition { reason, .. }) if reason == crate::domain::reason::SESSION_NOT_DELETED
        ));
        let trashed = sessions.trash(&s.id, &s.etag()).await.expect("trash");
        let (deleted, expires) = (
            trashed.delete_time.expect("delete_time"),
            trashed.expire_time.expect("expire_time"),
        );
        assert_eq!(
            expires.0 - deleted.0,
            DEFAULT_TRASH_RETENTION.as_micros() as i64
        );
        assert_ne!(trashed.etag(), s.etag());
        assert!(matches!(
            sessions.trash(&s.id, "").await,
            Err(Error::NotFound { .. })
        ));
        // Read-only: updates and forks are refused, naming why.
        let update = sessions
            .update(&s.id, titled("y"), &[SessionField::DisplayName], "")
            .await;
        assert!(
            matches!(&update, Err(Error::FailedPrecondition { reason, .. }) if *reason == crate::domain::reason::SESSION_DELETED),
            "{update:?}"
        );
        assert!(matches!(
            sessions.fork(&s.id, None, None).await,
            Err(Error::FailedPrecondition { reason, .. }) if reason == crate::domain::reason::SESSION_DELETED
        ));
        // Hidden from the list unless asked for.
        let (listed, _) = sessions
            .list(&SessionFilter::default(), "", 10)
            .await
            .expect("list");
        assert!(listed.is_empty());
        let all = SessionFilter {
            show_deleted: true,
            ..SessionFilter::default()
        };
        let (listed, _) = sessions.list(&all, "", 10).await.expect("list");
        assert_eq!(listed.len(), 1);

        let restored = sessions.restore(&s.id).await.expect("restore");
        assert_eq!((restored.delete_time, restored.expire_time), (None, None));
        assert!(matches!(
            sessions.restore(&s.id).await,
            Err(Error::AlreadyExists { .. })
        ));
        sessions.trash(&s.id, "").await.expect("trash again");
        sessions.purge(&s.id).await.expect("purge");
        assert!(matches!(
            sessions.get(&s.id).await,
            Err(Error::NotFound { .. })
        ));
        assert!(matches!(
            sessions.purge(&s.id).await,
            Err(Error::NotFound { .. })
        ));

        let mut seen = Vec::new();
        while let Ok(change) = watch.try_recv() {
            seen.push(match change {
                SessionChange::Created(_) => "created",
                SessionChange::Updated(_) => "updated",
                SessionChange::Deleted(_) => "deleted",
            });
        }
        assert_eq!(
            seen,
            ["created", "deleted", "created", "deleted", "deleted"]
        );
    }
}
