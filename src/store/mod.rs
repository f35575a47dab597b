//! Persistence behind one trait, so the runtime does not know which database it talks
//! to. SQLite is the embedded default; a Postgres backend implements the same trait.

mod codec;
pub mod postgres;
pub mod sqlite;

use std::{path::Path, sync::Arc, time::Duration};

use async_trait::async_trait;

use crate::domain::{
    Message, Model, Result, Session, SessionSource, Timestamp, Turn,
    cluster::{Fence, Lease, ServerInfo},
    mcp::McpServer,
    outbox::{AttemptOutcome, DeliveryCounts, DeliveryState, OutboxDelivery},
    profile::Profile,
    schedule::{Schedule, ScheduleRun},
    session_list::{LabelCondition, SessionOrder, SortKey},
    summary::Summary,
    trigger::{DeliveryClaim, Trigger, TriggerDelivery},
};

/// The backends a database URL can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend of `url`: `postgres://` or `postgresql://`, else `sqlite://PATH`.
    /// `Err` says what a URL may look like.
    pub fn of(url: &str) -> std::result::Result<Backend, String> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else if url.starts_with("sqlite://") {
            Ok(Backend::Sqlite)
        } else {
            Err(format!(
                "{:?} is not a database URL: use postgres://user:password@host:port/database \
                 (a cluster) or sqlite:///path/to/octo.db (one server)",
                crate::domain::secret::mask_url(url)
            ))
        }
    }
}

/// Opens (creating and migrating as needed) the store `url` names, or without one the
/// SQLite database at `sqlite_path`: the store a server runs on. On Postgres a server
/// that is not `shared` (one of a cluster) claims the database for itself: a second
/// server on it is refused with DATABASE_IN_USE.
pub async fn open(url: Option<&str>, sqlite_path: &Path, shared: bool) -> Result<Arc<dyn Store>> {
    let Some(url) = url else {
        return Ok(Arc::new(sqlite::SqliteStore::open(sqlite_path).await?));
    };
    match Backend::of(url)
        .map_err(|message| crate::domain::Error::invalid("database_url", message))?
    {
        Backend::Postgres => {
            let store = postgres::PostgresStore::open(url).await?;
            if !shared {
                store.hold_server_lock().await?;
            }
            Ok(Arc::new(store))
        }
        Backend::Sqlite => {
            let path = url.trim_start_matches("sqlite://");
            Ok(Arc::new(sqlite::SqliteStore::open(Path::new(path)).await?))
        }
    }
}

/// Which sessions a list returns, and in which order. Filters combine with AND.
#[derive(Clone, Debug, Default)]
pub struct SessionFilter {
    /// Case-insensitive substring of the title or the last message preview.
    pub query: Option<String>,
    pub source: Option<SessionSource>,
    pub pinned: Option<bool>,
    /// Created at or after this time.
    pub created_after: Option<Timestamp>,
    /// Created before this time.
    pub created_before: Option<Timestamp>,
    /// Sessions in the trash are listed too (AIP-164 `show_deleted`); otherwise they
    /// are left out.
    pub show_deleted: bool,
    /// Label conditions, every one of which holds.
    pub labels: Vec<LabelCondition>,
    /// The list order.
    pub order: SessionOrder,
}

/// Where a page of the session list ends: the last session's sort key in the list's
/// [`SessionOrder`] (`pinned` counts only when the order puts pinned sessions first;
/// only the key's own field is set), then its id, so the order is total.
/// `last_active_time` keeps its name and place from before other orders existed, so
/// page tokens issued then still decode.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionCursor {
    pub pinned: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_active_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_time: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub id: String,
}

impl SessionCursor {
    /// The position just after `session` in `order`.
    pub fn of(session: &Session, order: &SessionOrder) -> Self {
        let mut cursor = Self {
            pinned: session.pinned,
            last_active_time: None,
            create_time: None,
            display_name: None,
            id: session.id.clone(),
        };
        match order.key {
            SortKey::LastActiveTime => {
                cursor.last_active_time = Some(session.last_active_time.as_micros());
            }
            SortKey::CreateTime => cursor.create_time = Some(session.create_time.as_micros()),
            SortKey::DisplayName => cursor.display_name = Some(session.display_name.clone()),
        }
        cursor
    }

    /// Whether the cursor holds the key `order` sorts by.
    pub fn fits(&self, order: &SessionOrder) -> bool {
        match order.key {
            SortKey::LastActiveTime => self.last_active_time.is_some(),
            SortKey::CreateTime => self.create_time.is_some(),
            SortKey::DisplayName => self.display_name.is_some(),
        }
    }
}

/// Which sessions a retention pass purges ([`SessionStore::purge_sessions`]).
#[derive(Clone, Debug, Default)]
pub struct PurgeRule {
    /// Sessions in the trash whose `expire_time` is at or before this time.
    pub expired_at: Timestamp,
    /// Also sessions, in the trash or not, last active before this time
    /// (`session_retention_days`); `None` purges by the trash only.
    pub inactive_before: Option<Timestamp>,
    /// Sessions live on the calling server: never purged from under it.
    pub keep: Vec<String>,
    /// At most this many sessions per call.
    pub limit: usize,
}

/// A whole session's content, for export, import and fork.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionContent {
    pub session: Session,
    /// Oldest first.
    pub messages: Vec<Message>,
    /// Oldest first.
    pub turns: Vec<Turn>,
}

/// Everything Octo persists, as one object the runtime holds (`Arc<dyn Store>`): one
/// small trait per kind of thing stored, so each backend (SQLite, Postgres) implements
/// and tests them piece by piece. Call sites import the piece they use
/// (`use crate::store::SessionStore`).
#[async_trait]
pub trait Store:
    SessionStore
    + MessageStore
    + TurnStore
    + ModelStore
    + McpServerStore
    + ProfileStore
    + TriggerStore
    + ScheduleStore
    + ClusterStore
    + OutboxStore
    + SummaryStore
    + Send
    + Sync
    + 'static
{
    /// Flushes what the backend buffers (SQLite: a WAL checkpoint). Called on shutdown.
    async fn flush(&self) -> Result<()>;

    /// Whether the database answers a query now (the server's readiness probe).
    async fn check(&self) -> Result<()>;
}

/// Sessions, with what belongs to a session as a whole: tools allowed for its rest, the
/// floor of its event sequence, and its whole content (import, export, fork, delete).
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session.
    async fn create_session(&self, session: &Session) -> Result<()>;

    async fn get_session(&self, id: &str) -> Result<Option<Session>>;

    /// Sessions in `filter.order` after `after`, at most `limit`. Sessions in the trash
    /// only with `filter.show_deleted`.
    async fn list_sessions(
        &self,
        filter: &SessionFilter,
        after: Option<&SessionCursor>,
        limit: usize,
    ) -> Result<Vec<Session>>;

    /// Replaces a session's stored fields if its revision is still `expected_revision`
    /// (the caller sets `session.revision` to the next one). Returns false on a conflict.
    async fn update_session(&self, session: &Session, expected_revision: i64) -> Result<bool>;

    /// Deletes a session with its messages and turns (and its lease), whether in the
    /// trash or not. Returns false if there was none.
    async fn delete_session(&self, id: &str) -> Result<bool>;

    /// Purges a session in the trash: deletes it as [`Self::delete_session`] does, but
    /// only while its `delete_time` is set (a session restored meanwhile stays). Returns
    /// whether it did.
    async fn purge_session(&self, id: &str) -> Result<bool>;

    /// One retention pass: deletes (as [`Self::delete_session`]) up to `rule.limit`
    /// sessions the rule names, and returns their ids. Never purges a session in
    /// `rule.keep`, one with queued or running turns, or one whose lease is live (its
    /// owner, another server, has it live). Safe with several servers on one database:
    /// each session is purged by one of them (Postgres: `FOR UPDATE SKIP LOCKED`), and
    /// one taking a lease at the same moment either gets it first (the session stays)
    /// or finds the session gone.
    async fn purge_sessions(&self, rule: &PurgeRule) -> Result<Vec<String>>;

    /// Stores a session with its messages and turns in one transaction (import, fork).
    async fn insert_session_content(&self, content: &SessionContent) -> Result<()>;

    /// A session with all its messages and turns, oldest first.
    async fn session_content(&self, id: &str) -> Result<Option<SessionContent>>;

    /// Tools the user allowed for the rest of the session (ALLOW_ALWAYS).
    async fn allowed_tools(&self, session_id: &str) -> Result<Vec<String>>;

    /// Fenced (see [`ClusterStore`]): refused with LEASE_LOST once `fence` is stale.
    async fn allow_tool(&self, session_id: &str, tool: &str, fence: Fence) -> Result<()>;

    /// The floor a session's event sequence restarts above.
    async fn event_sequence(&self, session_id: &str) -> Result<i64>;

    /// Sets the floor: with `only_if`, only when the stored floor is still that value
    /// (a retiring session lowering its own floor); without, only upwards. Fenced.
    async fn set_event_sequence(
        &self,
        session_id: &str,
        sequence: i64,
        only_if: Option<i64>,
        fence: Fence,
    ) -> Result<()>;
}

/// A session's messages: the conversation (messages with a position) and messages
/// waiting to join it.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Stores a user message and the turn it starts (or joins) in one transaction, and
    /// counts the message in its session. The durable acknowledgement of SendMessage.
    /// Refused with FAILED_PRECONDITION (`SESSION_DELETED`), nothing written, when the
    /// session is in the trash: checked in the same transaction, so no message joins a
    /// session once its move to the trash committed. Fenced.
    async fn append_user_message(
        &self,
        message: &Message,
        turn: Option<&Turn>,
        fence: Fence,
    ) -> Result<()>;

    /// Inserts or replaces a message (assistant text is checkpointed while it streams).
    /// Counts it in its session the first time. Fenced.
    async fn put_message(&self, message: &Message, fence: Fence) -> Result<()>;

    async fn get_message(&self, session_id: &str, message_id: &str) -> Result<Option<Message>>;

    /// Messages in conversation order, newest first (waiting messages first of all),
    /// strictly between `after` and `before` (message ids).
    async fn list_messages(
        &self,
        session_id: &str,
        before: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Message>>;

    /// The conversation the model sees: messages with a position, in position order.
    async fn history(&self, session_id: &str) -> Result<Vec<Message>>;

    /// The position the next message joining the conversation gets.
    async fn next_position(&self, session_id: &str) -> Result<i64>;

    /// Puts a waiting message into the conversation at `position`. Fenced.
    async fn set_message_position(
        &self,
        session_id: &str,
        message_id: &str,
        position: i64,
        fence: Fence,
    ) -> Result<()>;
}

/// A session's context summary (compaction). Deleted with its session.
#[async_trait]
pub trait SummaryStore: Send + Sync {
    async fn get_summary(&self, session_id: &str) -> Result<Option<Summary>>;

    /// Inserts or replaces the session's summary. Fenced.
    async fn put_summary(&self, summary: &Summary, fence: Fence) -> Result<()>;
}

/// Turn records.
#[async_trait]
pub trait TurnStore: Send + Sync {
    /// Inserts or replaces a turn record. A terminal turn adds its usage to the session.
    /// Fenced.
    async fn put_turn(&self, turn: &Turn, fence: Fence) -> Result<()> {
        self.put_turn_with(turn, fence, &[]).await
    }

    /// [`Self::put_turn`], inserting `deliveries` into the webhook outbox in the same
    /// transaction (a turn's terminal write and its `turn.finished` webhooks): both are
    /// stored or, on any error (a stale fence included), neither.
    async fn put_turn_with(
        &self,
        turn: &Turn,
        fence: Fence,
        deliveries: &[OutboxDelivery],
    ) -> Result<()>;

    async fn get_turn(&self, session_id: &str, turn_id: &str) -> Result<Option<Turn>>;

    /// Turns newest first, older than `before` (a turn id).
    async fn list_turns(
        &self,
        session_id: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Turn>>;

    /// Queued and running turns, oldest first: of one session (taking it over from a
    /// server that stopped) or of every session (a server's recovery at start).
    async fn unfinished_turns(&self, session_id: Option<&str>) -> Result<Vec<Turn>>;
}

/// What deleting a model did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ModelDeletion {
    /// The model that became the default because the deleted one was.
    pub promoted: Option<String>,
}

/// Model configs. The store keeps "exactly one default while any model exists" inside
/// its transactions, so two servers on one database cannot break it.
#[async_trait]
pub trait ModelStore: Send + Sync {
    /// All models, the default first, then by creation.
    async fn list_models(&self) -> Result<Vec<Model>>;

    /// Stores a new model and returns it as stored: the first model becomes the default;
    /// a new default clears the old one. ALREADY_EXISTS if the id is taken.
    async fn create_model(&self, model: &Model) -> Result<Model>;

    /// Replaces a model if its revision is still `expected_revision` (the caller sets
    /// the next one). Setting `is_default` clears the old default. Returns None on a
    /// conflict, NOT_FOUND if it is gone.
    async fn update_model(&self, model: &Model, expected_revision: i64) -> Result<Option<Model>>;

    /// Deletes a model, promoting the oldest remaining model if it was the default.
    /// Deleting the last model while sessions or schedules reference it is
    /// FAILED_PRECONDITION (MODEL_IN_USE) unless `force`.
    async fn delete_model(
        &self,
        id: &str,
        expected_revision: Option<i64>,
        force: bool,
    ) -> Result<ModelDeletion>;
}

/// MCP servers' configs (their live connection state is the runtime's).
#[async_trait]
pub trait McpServerStore: Send + Sync {
    /// Every MCP server, by id.
    async fn list_mcp_servers(&self) -> Result<Vec<McpServer>>;

    /// Stores a new server. ALREADY_EXISTS if the id is taken.
    async fn create_mcp_server(&self, server: &McpServer) -> Result<()>;

    /// Replaces a server if its revision is still `expected_revision` (the caller sets
    /// the next one). Returns false on a conflict or when it is gone.
    async fn update_mcp_server(&self, server: &McpServer, expected_revision: i64) -> Result<bool>;

    /// Deletes a server. Returns false if there was none.
    async fn delete_mcp_server(&self, id: &str) -> Result<bool>;
}

/// Profiles. As for models, the store keeps "exactly one default while any profile
/// exists" inside its transactions (the first profile becomes the default, a new
/// default clears the old one, deleting the default promotes the oldest remaining one).
#[async_trait]
pub trait ProfileStore: Send + Sync {
    /// All profiles, the default first, then by creation.
    async fn list_profiles(&self) -> Result<Vec<Profile>>;

    async fn get_profile(&self, id: &str) -> Result<Option<Profile>>;

    /// The default profile; None when there is no profile.
    async fn default_profile(&self) -> Result<Option<Profile>>;

    /// Stores a new profile and returns it as stored (the first becomes the default).
    /// ALREADY_EXISTS if the id is taken.
    async fn create_profile(&self, profile: &Profile) -> Result<Profile>;

    /// Replaces a profile if its revision is still `expected_revision` (the caller sets
    /// the next one). Setting `is_default` clears the old default; clearing it on the
    /// default is FAILED_PRECONDITION (DEFAULT_PROFILE_REQUIRED). Returns None on a
    /// conflict, NOT_FOUND if it is gone.
    async fn update_profile(
        &self,
        profile: &Profile,
        expected_revision: i64,
    ) -> Result<Option<Profile>>;

    /// Deletes a profile (ABORTED on a stale `expected_revision`, NOT_FOUND if it is
    /// gone) and returns the id of the profile promoted to default in its place, if it
    /// was the default and another remains.
    async fn delete_profile(
        &self,
        id: &str,
        expected_revision: Option<i64>,
    ) -> Result<Option<String>>;
}

/// Inbound triggers and their delivery records (rules in [`crate::domain::trigger`]).
#[async_trait]
pub trait TriggerStore: Send + Sync {
    /// Every trigger, by id.
    async fn list_triggers(&self) -> Result<Vec<Trigger>>;

    async fn get_trigger(&self, id: &str) -> Result<Option<Trigger>>;

    /// Stores a new trigger. ALREADY_EXISTS if the id is taken.
    async fn create_trigger(&self, trigger: &Trigger) -> Result<()>;

    /// Replaces a trigger if its revision is still `expected_revision` (the caller sets
    /// the next one). Returns false on a conflict or when it is gone.
    async fn update_trigger(&self, trigger: &Trigger, expected_revision: i64) -> Result<bool>;

    /// Deletes a trigger and its delivery records. Returns false if there was none.
    async fn delete_trigger(&self, id: &str) -> Result<bool>;

    /// Claims the handling of a verified call, atomically (servers of a cluster
    /// receiving the same call at once get one claim): stores `delivery` (status
    /// RECEIVED) when its trigger has no record with its replay key, or makes an
    /// earlier FAILED record with that key RECEIVED again (a retry: the record keeps
    /// its id, its attempts rise, its receive time, size, event and message id are
    /// `delivery`'s, its session, turn and error are cleared). Returns the record as
    /// claimed, or the earlier record when the key was STARTED or is RECEIVED (a
    /// replay). Keeps the
    /// newest [`KEPT_DELIVERIES`](crate::domain::trigger::KEPT_DELIVERIES) records of
    /// the trigger. NOT_FOUND when the trigger is gone.
    async fn claim_delivery(&self, delivery: &TriggerDelivery) -> Result<DeliveryClaim>;

    /// Records how a claimed delivery ended: its status, session, turn and error.
    async fn finish_delivery(&self, delivery: &TriggerDelivery) -> Result<()>;

    /// A trigger's delivery records, newest first (by id), older than the id `before`,
    /// at most `limit`.
    async fn list_trigger_deliveries(
        &self,
        trigger_id: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<TriggerDelivery>>;
}

/// Schedules and their runs.
#[async_trait]
pub trait ScheduleStore: Send + Sync {
    async fn create_schedule(&self, schedule: &Schedule) -> Result<()>;

    async fn get_schedule(&self, id: &str) -> Result<Option<Schedule>>;

    /// Schedules by creation (id), after the id `after`.
    async fn list_schedules(&self, after: Option<&str>, limit: usize) -> Result<Vec<Schedule>>;

    /// Replaces a schedule if its revision is still `expected_revision`. Returns false on
    /// a conflict or when it is gone.
    async fn update_schedule(&self, schedule: &Schedule, expected_revision: i64) -> Result<bool>;

    /// Deletes a schedule and its run history (the sessions runs created stay). Returns
    /// false if there was none.
    async fn delete_schedule(&self, id: &str) -> Result<bool>;

    /// Enabled schedules whose next fire time is at or before `now`.
    async fn due_schedules(&self, now: Timestamp) -> Result<Vec<Schedule>>;

    /// The earliest next fire time of any enabled schedule.
    async fn next_fire_time(&self) -> Result<Option<Timestamp>>;

    /// Claims the fire time `fire_time` of `run.schedule_id` by storing `run`, and moves
    /// the schedule's next fire time on to `next`, in one transaction. Returns false
    /// when the fire time was already claimed (by this or another server sharing the
    /// database); the schedule's next fire time moves on either way.
    async fn claim_fire_time(
        &self,
        run: &ScheduleRun,
        fire_time: Timestamp,
        next: Option<Timestamp>,
    ) -> Result<bool> {
        self.claim_fire_time_with(run, fire_time, next, &[]).await
    }

    /// [`Self::claim_fire_time`], inserting `deliveries` into the webhook outbox in the
    /// same transaction when the claim succeeds (a run stored finished at once, SKIPPED,
    /// and its `schedule_run.finished` webhooks); nothing of them when it does not.
    async fn claim_fire_time_with(
        &self,
        run: &ScheduleRun,
        fire_time: Timestamp,
        next: Option<Timestamp>,
        deliveries: &[OutboxDelivery],
    ) -> Result<bool>;

    /// Stores a new run that claims no fire time (RunSchedule).
    async fn insert_run(&self, run: &ScheduleRun) -> Result<()>;

    /// Replaces a run's record (see [`Self::update_run_with`]).
    async fn update_run(&self, run: &ScheduleRun) -> Result<()> {
        self.update_run_with(run, &[]).await
    }

    /// Replaces a run's record and inserts `deliveries` into the webhook outbox in the
    /// same transaction (a run's final update and its `schedule_run.finished` webhooks).
    /// Fenced by the runner: refused with UNAVAILABLE / `RUN_TAKEN_OVER`, nothing written
    /// (deliveries included), when the stored run names another runner than
    /// `run.runner` (a live server took it over, [`Self::take_orphaned_runs`]). A run
    /// that no longer exists (its schedule was deleted) is no error: nothing is updated
    /// and the deliveries are inserted.
    async fn update_run_with(&self, run: &ScheduleRun, deliveries: &[OutboxDelivery])
    -> Result<()>;

    async fn get_run(&self, schedule_id: &str, run_id: &str) -> Result<Option<ScheduleRun>>;

    /// Runs newest first, older than the run id `before`.
    async fn list_runs(
        &self,
        schedule_id: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ScheduleRun>>;

    /// Takes over the unfinished (pending or running) runs of dead runners: those whose
    /// runner is not `runner` and not a live server (registered, with a heartbeat within
    /// `ttl` of now; see [`ClusterStore`]). Sets their runner to `runner` and returns
    /// them, oldest first, at most `limit`. Atomic: servers taking over at once get
    /// disjoint sets. One server (no registry rows) takes every unfinished run of an
    /// earlier process.
    async fn take_orphaned_runs(
        &self,
        runner: &str,
        ttl: Duration,
        limit: usize,
    ) -> Result<Vec<ScheduleRun>>;

    /// The newest run of each of these schedules (those with any), in one query.
    async fn latest_runs(&self, schedule_ids: &[String]) -> Result<Vec<ScheduleRun>>;
}

/// Ownership of sessions across servers sharing one database: the server registry and
/// session leases (rules in [`crate::domain::cluster`]).
///
/// **Fencing**: the owner-write methods of the other traits (`allow_tool`,
/// `set_event_sequence`, `append_user_message`, `put_message`, `set_message_position`,
/// `put_turn`, `put_turn_with`) take a [`Fence`]. A fenced write reads the session's
/// lease in the write's own transaction, under a lock [`ClusterStore::acquire_lease`]
/// waits for, and is refused with UNAVAILABLE / `LEASE_LOST` (nothing written, outbox
/// deliveries included) when there is no lease or its epoch is not the fence's. So once an acquisition that moved the epoch has
/// committed, no write fenced with the old epoch can commit. `Fence::NONE` writes
/// without the check and without any extra query.
///
/// **Time**: a lease is live while now < `expire_time`, so a TTL of zero makes one that
/// is expired at once. "Now" is the database's clock on Postgres and the local clock on
/// SQLite.
#[async_trait]
pub trait ClusterStore: Send + Sync {
    /// Registers (or re-registers) a server: inserts or updates its address; the start
    /// time is set on insert only; the heartbeat time is now.
    async fn register_server(&self, id: &str, address: &str) -> Result<ServerInfo>;

    /// In one transaction: sets the server's heartbeat time to now and renews every lease
    /// it owns to now + `ttl` (an expired one too: nobody took it, its epoch is the same,
    /// so it is still this server's). Returns the leases the server holds afterwards, by
    /// session id: the caller compares them with what it thinks it holds to find the ones
    /// it lost. A missing server row is not re-created (its address is unknown here): the
    /// leases are renewed all the same and come back with address `""`; the caller
    /// re-registers when it finds itself missing from [`Self::list_servers`].
    async fn heartbeat(&self, server_id: &str, ttl: Duration) -> Result<Vec<Lease>>;

    /// Registered servers by id, dead ones included (their heartbeat time says so).
    async fn list_servers(&self) -> Result<Vec<ServerInfo>>;

    /// Clean shutdown: deletes the server's row and releases its leases (owner `""`,
    /// expire time 0, epoch kept), so others take its sessions at once.
    async fn deregister_server(&self, id: &str) -> Result<()>;

    /// Takes the session's lease for `server_id` until now + `ttl` when there is none, it
    /// is released or expired, or `server_id` owns it already (a renewal). The epoch
    /// starts at 1, rises when the owner changes (from `""` too), and is kept when the
    /// same server re-acquires. Returns the lease as it stands afterwards, with its
    /// owner's address: the owner is another server when the lease is live elsewhere
    /// (compare `owner`). Atomic: servers acquiring at once get exactly one owner.
    /// NOT_FOUND if the session does not exist.
    async fn acquire_lease(
        &self,
        session_id: &str,
        server_id: &str,
        ttl: Duration,
    ) -> Result<Lease>;

    /// The session's lease with its owner's address, live or not; None if it never had one.
    async fn get_lease(&self, session_id: &str) -> Result<Option<Lease>>;

    /// Releases the lease if `server_id` owns it at `epoch`: owner `""`, expire time 0,
    /// row and epoch kept (the next owner gets a higher epoch). Returns whether it did.
    async fn release_lease(&self, session_id: &str, server_id: &str, epoch: i64) -> Result<bool>;

    /// Sessions with unfinished (queued or running) turns and no live lease (none,
    /// released or expired), oldest unfinished turn first, at most `limit`: the sessions
    /// a dead server left behind, for a live one to take over.
    async fn orphaned_sessions(&self, limit: usize) -> Result<Vec<String>>;

    /// Tells every listener of this database (`change_notices`, on any server) about a
    /// change; `notice` is opaque to the store (the runtime's JSON, at most
    /// [`MAX_NOTICE_BYTES`]). Best effort: a listener that is not connected misses it.
    async fn publish_notice(&self, notice: &str) -> Result<()>;

    /// Notices published from now on, by any server on this database (this one too),
    /// in the order the database delivers them. The stream ends when the listening
    /// connection is lost; listen again to go on (notices in between are missed).
    async fn change_notices(&self) -> Result<futures::stream::BoxStream<'static, String>>;
}

/// The largest notice `publish_notice` takes (Postgres NOTIFY allows 8000 bytes).
pub const MAX_NOTICE_BYTES: usize = 7900;

/// The webhook outbox (rules in [`crate::domain::outbox`]). Deliveries are inserted with
/// the writes that cause them ([`TurnStore::put_turn_with`],
/// [`ScheduleStore::update_run_with`]) or on their own; any server claims due ones, sends
/// them and records each attempt.
///
/// **Time**: `now` is the caller's clock (servers of a cluster are assumed to agree
/// within well under a claim's length; a skew only moves when a row is due).
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Inserts new deliveries (ALREADY_EXISTS if an id is taken), in one transaction.
    async fn insert_deliveries(&self, deliveries: &[OutboxDelivery]) -> Result<()>;

    /// Atomically claims up to `limit` pending deliveries due at `now` (oldest due first)
    /// for `claimer` until `now + lease`: sets `claimed_by` and moves
    /// `next_attempt_time` to the claim's end, so no other claimer gets them until the
    /// claim is recorded or expires. Claimers at once get disjoint sets (Postgres:
    /// `FOR UPDATE SKIP LOCKED`). Returns them as claimed.
    async fn claim_due_deliveries(
        &self,
        now: Timestamp,
        claimer: &str,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<OutboxDelivery>>;

    /// Records one attempt by `claimer` at `now`: counts it, and makes the delivery
    /// delivered, pending again (due at the retry time) or dead; the claim ends. Returns
    /// false (nothing written) when the delivery is not pending under `claimer`'s claim:
    /// its claim expired and another server took it, or an operator changed it.
    async fn record_attempt(
        &self,
        id: &str,
        claimer: &str,
        now: Timestamp,
        outcome: &AttemptOutcome,
    ) -> Result<bool>;

    async fn get_delivery(&self, id: &str) -> Result<Option<OutboxDelivery>>;

    /// Deliveries newest first (by id), of one state or all, older than the id `before`,
    /// at most `limit`.
    async fn list_deliveries(
        &self,
        state: Option<DeliveryState>,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxDelivery>>;

    /// An operator's retry: a dead delivery becomes pending with no attempts counted and
    /// due at `now`; a pending one is made due at `now` unless a server holds a live
    /// claim on it. Returns the delivery as stored afterwards; NOT_FOUND if there is none,
    /// FAILED_PRECONDITION (`WEBHOOK_DELIVERED`) if it was delivered.
    async fn retry_delivery(&self, id: &str, now: Timestamp) -> Result<OutboxDelivery>;

    /// How many deliveries are in each state.
    async fn delivery_counts(&self) -> Result<DeliveryCounts>;
}
