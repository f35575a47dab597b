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

use std::{sync::Arc, time::Duration};

use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{LiveIndex, LiveSummary, SessionChange, Sessions};
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
}

fn status_name(status: SessionStatus) -> &'static str {
    match status {
        SessionStatus::Idle => "idle",
        SessionStatus::Running => "running",
        SessionStatus::AwaitingConfirmation => "awaiting_confirmation",
    }
}

fn status_of(name: &str) -> SessionStatus {
    match name {
        "running" => SessionStatus::Running,
        "awaiting_confirmation" => SessionStatus::AwaitingConfirmation,
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
pub(crate) fn relay(
    sessions: &Arc<Sessions>,
    live: &Arc<LiveIndex>,
    store: &Arc<dyn Store>,
    server_id: &str,
    tasks: &tokio_util::task::TaskTracker,
    shutdown: &CancellationToken,
) {
    let (sender, receiver) = mpsc::unbounded_channel();
    sessions.relay_to(sender);
    tasks.spawn(send_out(
        receiver,
        store.clone(),
        server_id.to_owned(),
        shutdown.clone(),
    ));
    tasks.spawn(take_in(
        sessions.clone(),
        live.clone(),
        store.clone(),
        server_id.to_owned(),
        shutdown.clone(),
    ));
}

async fn send_out(
    mut changes: mpsc::UnboundedReceiver<SessionChange>,
    store: Arc<dyn Store>,
    server: String,
    shutdown: CancellationToken,
) {
    loop {
        let change = tokio::select! {
            change = changes.recv() => match change {
                Some(change) => change,
                None => return,
            },
            () = shutdown.cancelled() => return,
        };
        let notice = Notice::of(&server, &change);
        let Ok(json) = serde_json::to_string(&notice) else {
            continue;
        };
        if let Err(err) = store.publish_notice(&json).await {
            tracing::warn!(session = %notice.session, error = %err, "cannot tell the other servers of a session change");
        }
    }
}

async fn take_in(
    sessions: Arc<Sessions>,
    live: Arc<LiveIndex>,
    store: Arc<dyn Store>,
    server: String,
    shutdown: CancellationToken,
) {
    loop {
        match store.change_notices().await {
            Ok(mut notices) => loop {
                let notice = tokio::select! {
                    notice = notices.next() => match notice {
                        Some(notice) => notice,
                        None => break,
                    },
                    () = shutdown.cancelled() => return,
                };
                match serde_json::from_str::<Notice>(&notice) {
                    Ok(notice) if notice.server != server => {
                        apply(&sessions, &live, notice).await;
                    }
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
async fn apply(sessions: &Sessions, live: &LiveIndex, notice: Notice) {
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
