//! The store conformance suite's support, shared by its test binaries (`tests/store.rs`,
//! `tests/store_cluster.rs`): a [`Fixture`] per backend, SQLite (a file in a temp dir)
//! and Postgres (a database of its own on the test binary's throwaway cluster,
//! `postgres.rs`); the `conformance!` macro that runs each case against every backend;
//! and the session, message, turn and schedule values the cases store.
//!
//! Adding a backend: a fixture function here and a module line in `conformance!`.

use std::{collections::BTreeMap, sync::Arc};

use futures::future::BoxFuture;
use octo::{
    domain::{
        Message, Part, PermissionMode, ReasoningEffort, Role, Session, SessionSource,
        SessionStatus, Timestamp, Turn, TurnStatus, Usage, new_id, schedule::Schedule,
    },
    store::{Store, postgres::PostgresStore, sqlite::SqliteStore},
};

/// A store under test, and how to open a second handle on the same database.
pub struct Fixture {
    pub store: Arc<dyn Store>,
    open_again: Box<dyn Fn() -> BoxFuture<'static, Arc<dyn Store>> + Send + Sync>,
    /// Keeps a SQLite file alive for the test's duration.
    _dir: Option<tempfile::TempDir>,
}

impl Fixture {
    pub async fn open_again(&self) -> Arc<dyn Store> {
        (self.open_again)().await
    }
}

pub async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("octo.db");
    let open = move || -> BoxFuture<'static, Arc<dyn Store>> {
        let path = path.clone();
        Box::pin(async move {
            Arc::new(SqliteStore::open(&path).await.expect("open sqlite")) as Arc<dyn Store>
        })
    };
    Fixture {
        store: open().await,
        open_again: Box::new(open),
        _dir: Some(dir),
    }
}

pub async fn postgres() -> Fixture {
    let url = super::postgres::database().await;
    let open = move || -> BoxFuture<'static, Arc<dyn Store>> {
        let url = url.clone();
        Box::pin(async move {
            Arc::new(PostgresStore::open(&url).await.expect("open postgres")) as Arc<dyn Store>
        })
    };
    Fixture {
        store: open().await,
        open_again: Box::new(open),
        _dir: None,
    }
}

/// One `#[tokio::test]` per case and backend: `sqlite::<case>`, `postgres::<case>`. A
/// case is an `async fn(Fixture)` at the root of the test binary (`use
/// common::store::conformance;`, then `conformance!(case, ...)`).
#[allow(unused_macros)]
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                super::$case(crate::common::store::sqlite().await).await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                super::$case(crate::common::store::postgres().await).await;
            })*
        }
    };
}

#[allow(unused_imports)]
pub(crate) use conformance;

pub fn session(title: &str, pinned: bool, active: i64) -> Session {
    Session {
        id: new_id(),
        display_name: title.into(),
        model: None,
        reasoning_effort: ReasoningEffort::High,
        working_dir: "/tmp".into(),
        permission_mode: PermissionMode::ReadOnly,
        system_prompt: "be brief".into(),
        labels: BTreeMap::from([("team".to_owned(), "core".to_owned())]),
        pinned,
        source: SessionSource::Manual,
        message_count: 0,
        last_message_preview: String::new(),
        usage: Usage::default(),
        create_time: Timestamp(active),
        update_time: Timestamp(active),
        last_active_time: Timestamp(active),
        revision: 1,
        forked_from: None,
        // Both shapes round-trip: every pinned session chooses its MCP servers.
        mcp_servers: pinned.then(|| vec!["files".to_owned(), "web".to_owned()]),
        delete_time: None,
        expire_time: None,
        profile: None,
        status: SessionStatus::Idle,
        queue_depth: 0,
        active_turn: None,
    }
}

pub async fn created(store: &dyn Store, title: &str) -> Session {
    let s = session(title, false, 1);
    store.create_session(&s).await.expect("create session");
    s
}

pub fn message(session: &Session, text: &str, position: Option<i64>) -> Message {
    Message {
        id: new_id(),
        session_id: session.id.clone(),
        turn_id: None,
        role: Role::User,
        parts: vec![Part::Text { text: text.into() }],
        create_time: Timestamp(5),
        incomplete: false,
        model: None,
        position,
    }
}

pub fn turn(session: &Session, status: TurnStatus, created: i64) -> Turn {
    Turn {
        id: new_id(),
        session_id: session.id.clone(),
        status,
        user_message_id: None,
        model: Some("m".into()),
        usage: Usage::default(),
        latency_micros: None,
        time_to_first_token_micros: None,
        error: None,
        create_time: Timestamp(created),
        start_time: None,
        end_time: None,
        step_count: 0,
        tool_calls: Vec::new(),
    }
}

/// A nightly schedule, `enabled`, next firing at `next` (micros).
pub fn schedule(next: Option<i64>, enabled: bool) -> Schedule {
    Schedule {
        id: new_id(),
        display_name: "nightly".into(),
        cron: "0 3 * * *".into(),
        prompt: "summarise".into(),
        time_zone: "Europe/Berlin".into(),
        enabled,
        next_run_time: next.map(Timestamp),
        ..Schedule::default()
    }
}
