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

    /// Flushes what the backend buffers (SQLite: a WAL checkpoint). Called on shutdown.
    async fn flush(&self) -> Result<()>;
}
