//! Persistence behind one trait, so the runtime does not know which database it talks
//! to. SQLite is the embedded default; a Postgres backend implements the same trait.

pub mod sqlite;

use async_trait::async_trait;

use crate::domain::{Message, Result, Session, SessionSource, Timestamp, Turn};

/// Which sessions a list returns. Filters combine with AND.
#[derive(Clone, Debug, Default)]
pub struct SessionFilter {
    /// Case-insensitive substring of the title or the last message preview.
    pub query: Option<String>,
    pub source: Option<SessionSource>,
    pub pinned: Option<bool>,
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
}

/// The sort key of the session list: pinned first, then most recent activity, then id
/// (newest first) so the order is total.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionCursor {
    pub pinned: bool,
    pub last_active_time: i64,
    pub id: String,
}

impl SessionCursor {
    pub fn of(session: &Session) -> Self {
        Self {
            pinned: session.pinned,
            last_active_time: session.last_active_time.as_micros(),
            id: session.id.clone(),
        }
    }
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

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a new session.
    async fn create_session(&self, session: &Session) -> Result<()>;

    async fn get_session(&self, id: &str) -> Result<Option<Session>>;

    /// Sessions in list order after `after`, at most `limit`.
    async fn list_sessions(
        &self,
        filter: &SessionFilter,
        after: Option<&SessionCursor>,
        limit: usize,
    ) -> Result<Vec<Session>>;

    /// Replaces a session's stored fields if its revision is still `expected_revision`
    /// (the caller sets `session.revision` to the next one). Returns false on a conflict.
    async fn update_session(&self, session: &Session, expected_revision: i64) -> Result<bool>;

    /// Deletes a session with its messages and turns. Returns false if there was none.
    async fn delete_session(&self, id: &str) -> Result<bool>;

    /// Stores a session with its messages and turns in one transaction (import, fork).
    async fn insert_session_content(&self, content: &SessionContent) -> Result<()>;

    /// A session with all its messages and turns, oldest first.
    async fn session_content(&self, id: &str) -> Result<Option<SessionContent>>;

    /// Stores a user message and the turn it starts (or joins) in one transaction, and
    /// counts the message in its session. The durable acknowledgement of SendMessage.
    async fn append_user_message(&self, message: &Message, turn: Option<&Turn>) -> Result<()>;

    /// Inserts or replaces a message (assistant text is checkpointed while it streams).
    /// Counts it in its session the first time.
    async fn put_message(&self, message: &Message) -> Result<()>;

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

    /// Puts a waiting message into the conversation at `position`.
    async fn set_message_position(
        &self,
        session_id: &str,
        message_id: &str,
        position: i64,
    ) -> Result<()>;

    /// Tools the user allowed for the rest of the session (ALLOW_ALWAYS).
    async fn allowed_tools(&self, session_id: &str) -> Result<Vec<String>>;

    async fn allow_tool(&self, session_id: &str, tool: &str) -> Result<()>;

    /// Inserts or replaces a turn record. A terminal turn adds its usage to the session.
    async fn put_turn(&self, turn: &Turn) -> Result<()>;

    async fn get_turn(&self, session_id: &str, turn_id: &str) -> Result<Option<Turn>>;

    /// Turns newest first, older than `before` (a turn id).
    async fn list_turns(
        &self,
        session_id: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Turn>>;

    /// Queued and running turns of every session, oldest first (crash recovery).
    async fn unfinished_turns(&self) -> Result<Vec<Turn>>;

    /// The floor a session's event sequence restarts above.
    async fn event_sequence(&self, session_id: &str) -> Result<i64>;

    /// Sets the floor: with `only_if`, only when the stored floor is still that value
    /// (a retiring session lowering its own floor); without, only upwards.
    async fn set_event_sequence(
        &self,
        session_id: &str,
        sequence: i64,
        only_if: Option<i64>,
    ) -> Result<()>;

    /// Flushes what the backend buffers (SQLite: a WAL checkpoint). Called on shutdown.
    async fn flush(&self) -> Result<()>;
}
