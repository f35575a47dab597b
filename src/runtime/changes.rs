//! Session changes across the servers of a cluster. What `Sessions` publishes on this
//! server goes to the others as a notice through the store (Postgres NOTIFY), and
//! their notices become changes here, so WatchSessions on any server sees every
//! session created, updated or deleted anywhere, and Get/ListSessions show the live
//! status of sessions owned by other servers.
//!
//! Notices are best effort, as NOTIFY is: a server whose listening connection drops
//! misses the notices until it listens again (one second later); its watchers see the
//! next change of each session. A notice carries the session's id and live summary,
//! not the session: the receiver reads the session from the store, so a notice stays
//! small (well under NOTIFY's 8000 bytes) whatever the session holds.
//!
//! Model changes travel the same way (a `models` notice with no session): a server that
//! hears one re-reads the models, so none keeps using a model changed or deleted
//! elsewhere. It re-reads them too whenever it (re)starts listening, since notices sent
//! while it was not listening are lost.

use std::{sync::Arc, time::Duration};

use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{LiveIndex, LiveSummary, Models, SessionChange, Sessions};
use crate::{domain::SessionStatus, store::Store};

/// How long to wait before listening again after the listening connection failed.
const RELISTEN_PAUSE: Duration = Duration::from_secs(1);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Notice {
    /// The server the change happened on (its own notices come back to it too).
    server: String,
    change: Change,
    session: String,
    /// The live summary, for `Updated`: `idle`, `running` or `awaiting_confirmation`.
    #[serde(default)]
    status: String,
    #[serde(default)]
    queue_depth: i32,
    #[serde(default)]
    active_turn: Option<String>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Change {
    Created,
    Updated,
    Deleted,
    /// A model was created, changed or deleted (no session).
    Models,
}

fn status_name(status: SessionStatus) -> &'static str {
    match status {
        SessionStatus::Idle => "idle",
        SessionStatus::Running => "running",
        SessionStatus::AwaitingConfirmation => "awaiting_confirmation",
        SessionStatus::AwaitingInput => "awaiting_input",
    }
}

fn status_of(name: &str) -> SessionStatus {
    match name {
        "running" => SessionStatus::Running,
        "awaiting_confirmation" => SessionStatus::AwaitingConfirmation,
        "awaiting_input" => SessionStatus::AwaitingInput,
        _ => SessionStatus::Idle,
    }
}

impl Notice {
    fn of(server: &str, change: &SessionChange) -> Notice {
        let (kind, session) = match change {
            SessionChange::Created(s) => (Change::Created, Some(s)),
            SessionChange::Updated(s) => (Change::Updated, Some(s)),
            SessionChange::Deleted(_) => (Change::Deleted, None),
        };
        let id = match change {
            SessionChange::Created(s) | SessionChange::Updated(s) => s.id.clone(),
            SessionChange::Deleted(id) => id.clone(),
        };
        Notice {
            server: server.to_owned(),
            change: kind,
            session: id,
            status: status_name(session.map_or(SessionStatus::Idle, |s| s.status)).to_owned(),
            queue_depth: session.map_or(0, |s| s.queue_depth),
            active_turn: session.and_then(|s| s.active_turn.clone()),
        }
    }

    fn models(server: &str) -> Notice {
        Notice {
            server: server.to_owned(),
            change: Change::Models,
            session: String::new(),
            status: String::new(),
            queue_depth: 0,
            active_turn: None,
        }
    }

    fn summary(&self) -> Option<LiveSummary> {
        let summary = LiveSummary {
            status: status_of(&self.status),
            queue_depth: self.queue_depth,
            active_turn: self.active_turn.clone(),
        };
        (summary != LiveSummary::default()).then_some(summary)
    }
}

/// Starts relaying: this server's changes out, the other servers' in. Both tasks stop
/// on `shutdown`.
/// What the relay keeps current on this server.
pub(crate) struct Relayed {
    pub sessions: Arc<Sessions>,
    pub live: Arc<LiveIndex>,
    pub models: Arc<Models>,
}

///
/// Listens before it returns, so a change another server makes once this server is
/// serving is not missed.
pub(crate) async fn relay(
    relayed: Relayed,
    store: &Arc<dyn Store>,
    server_id: &str,
    tasks: &tokio_util::task::TaskTracker,
    shutdown: &CancellationToken,
) {
    let listening = store.change_notices().await;
    let (sender, sessions) = mpsc::unbounded_channel();
    relayed.sessions.relay_to(sender);
    let (sender, models) = mpsc::unbounded_channel();
    relayed.models.relay_to(sender);
    tasks.spawn(send_out(
        sessions,
        models,
        store.clone(),
        server_id.to_owned(),
        shutdown.clone(),
    ));
    tasks.spawn(take_in(
        relayed,
        store.clone(),
        server_id.to_owned(),
        shutdown.clone(),
        Some(listening),
    ));
}

async fn send_out(
    mut sessions: mpsc::UnboundedReceiver<SessionChange>,
    mut models: mpsc::UnboundedReceiver<()>,
    store: Arc<dyn Store>,
    server: String,
    shutdown: CancellationToken,
) {
    loop {
        let notice = tokio::select! {
            change = sessions.recv() => match change {
                Some(change) => Notice::of(&server, &change),
                None => return,
            },
            change = models.recv() => match change {
                Some(()) => Notice::models(&server),
                None => return,
            },
            () = shutdown.cancelled() => return,
        };
        let Ok(json) = serde_json::to_string(&notice) else {
            continue;
        };
        if let Err(err) = store.publish_notice(&json).await {
            tracing::warn!(session = %notice.session, change = ?notice.change, error = %err, "cannot tell the other servers of a change");
        }
    }
}

async fn take_in(
    relayed: Relayed,
    store: Arc<dyn Store>,
    server: String,
    shutdown: CancellationToken,
    mut first: Option<crate::domain::Result<futures::stream::BoxStream<'static, String>>>,
) {
    loop {
        let listening = match first.take() {
            Some(listening) => listening,
            None => store.change_notices().await,
        };
        // Notices sent while not listening are lost: models may have changed meanwhile
        // (at the first listen: while this server started).
        if let Err(err) = relayed.models.reload().await {
            tracing::warn!(error = %err, "cannot re-read the models");
        }
        match listening {
            Ok(mut notices) => loop {
                let notice = tokio::select! {
                    notice = notices.next() => match notice {
                        Some(notice) => notice,
                        None => break,
                    },
                    () = shutdown.cancelled() => return,
                };
                match serde_json::from_str::<Notice>(&notice) {
                    Ok(notice) if notice.server != server => apply(&relayed, notice).await,
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "unreadable change notice"),
                }
            },
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for other servers' session changes");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(RELISTEN_PAUSE) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Another server's change, as a change here.
async fn apply(relayed: &Relayed, notice: Notice) {
    let (sessions, live) = (&relayed.sessions, &relayed.live);
    if notice.change == Change::Models {
        if let Err(err) = relayed.models.reload().await {
            tracing::warn!(error = %err, "cannot re-read the models another server changed");
        }
        return;
    }
    if notice.change == Change::Deleted {
        live.set(&notice.session, None);
        sessions.publish_here(SessionChange::Deleted(notice.session));
        return;
    }
    live.set(&notice.session, notice.summary());
    // Read after the summary is set, so the session carries it.
    match sessions.get(&notice.session).await {
        Ok(session) if notice.change == Change::Created => {
            sessions.publish_here(SessionChange::Created(session));
        }
        Ok(session) => sessions.publish_here(SessionChange::Updated(session)),
        // Deleted meanwhile: its own notice follows.
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_round_trips_and_an_idle_session_has_no_summary() {
        let notice = Notice {
            server: "a".into(),
            change: Change::Updated,
            session: "s".into(),
            status: "running".into(),
            queue_depth: 2,
            active_turn: Some("t".into()),
        };
        let json = serde_json::to_string(&notice).expect("json");
        let back: Notice = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, notice);
        assert_eq!(
            back.summary(),
            Some(LiveSummary {
                status: SessionStatus::Running,
                queue_depth: 2,
                active_turn: Some("t".into()),
            })
        );
        let idle = Notice {
            status: "idle".into(),
            queue_depth: 0,
            active_turn: None,
            ..back
        };
        assert_eq!(idle.summary(), None);
    }
}
