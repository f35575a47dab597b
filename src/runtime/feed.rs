//! One subscriber's event feed: the snapshot, a reset if the resume point is gone,
//! retained events, then live ones — each event exactly once and in sequence order.
//!
//! The events come from the session's live state on this server when it owns the
//! session, or relayed from the owner (`Peers::subscribe`) when another server does.
//! When the source goes away (the hop to the owner dropped, the owner died, this
//! server lost the lease), the feed finds the owner again and resumes after the last
//! sequence it delivered: the subscriber sees no gap and no duplicate, or an explicit
//! `stream_reset` when the new owner no longer has the events it missed. A subscriber
//! that falls behind catches up from the owner's log or is reset; it never slows the
//! session or other subscribers.

use std::{collections::VecDeque, sync::Arc, time::Duration};

use futures::StreamExt as _;
use tokio::sync::broadcast::error::RecvError;

use super::{
    Caller, Chat,
    cluster::{RemoteEvents, is_transient},
    events::Event,
    live::Watch,
};

/// How many times a feed looks for the session's owner again before it ends, and how
/// long it waits between tries. 40 × 250 ms = 10 s: one default lease TTL, the longest
/// a dead owner's sessions wait for a new owner.
const RECONNECT_ATTEMPTS: u32 = 40;
const RECONNECT_PAUSE: Duration = Duration::from_millis(250);

/// Where a feed's events come from.
pub(crate) enum Source {
    Local(Watch),
    Remote(RemoteEvents),
}

/// What opening a source gives: the source, the events to send first, and the last
/// sequence already accounted for (later duplicates are skipped).
pub(crate) struct Opened {
    pub source: Source,
    pub pending: VecDeque<Arc<Event>>,
    pub delivered: i64,
}

pub struct EventFeed {
    chat: Arc<Chat>,
    /// A peer's feed ends when the source goes: the peer finds the owner itself,
    /// rather than relaying through this server.
    caller: Caller,
    session_id: String,
    source: Source,
    pending: VecDeque<Arc<Event>>,
    /// The last sequence handed out; later duplicates are skipped.
    delivered: i64,
    ended: bool,
}

impl EventFeed {
    pub(crate) fn new(chat: Arc<Chat>, session_id: &str, opened: Opened, caller: Caller) -> Self {
        Self {
            chat,
            caller,
            session_id: session_id.to_owned(),
            source: opened.source,
            pending: opened.pending,
            delivered: opened.delivered,
            ended: false,
        }
    }

    /// The next event, or `None` when the session was deleted (or its owner could not
    /// be found again).
    pub async fn next(&mut self) -> Option<Arc<Event>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if event.sequence > 0 {
                    if event.sequence <= self.delivered {
                        continue;
                    }
                    self.delivered = event.sequence;
                } else if event.kind.is_reset() {
                    // What follows starts over from the owner's oldest retained event.
                    self.delivered = 0;
                }
                if event.kind.is_session_deleted() {
                    self.ended = true;
                }
                return Some(event);
            }
            if self.ended {
                return None;
            }
            let lost = match &mut self.source {
                Source::Local(Watch { receiver, live }) => {
                    tokio::select! {
                        received = receiver.recv() => match received {
                            Ok(event) => {
                                self.pending.push_back(event);
                                false
                            }
                            Err(RecvError::Lagged(_)) => {
                                let (replay, reset) = live.replay_after(self.delivered);
                                if let Some(reset) = reset {
                                    self.pending.push_back(Arc::new(reset));
                                }
                                self.pending.extend(replay);
                                false
                            }
                            Err(RecvError::Closed) => true,
                        },
                        () = live.moved.cancelled() => {
                            // Events emitted before the move are still in the channel.
                            match receiver.try_recv() {
                                Ok(event) => {
                                    self.pending.push_back(event);
                                    false
                                }
                                Err(_) => true,
                            }
                        }
                    }
                }
                Source::Remote(events) => match events.next().await {
                    Some(Ok(event)) => {
                        self.pending.push_back(Arc::new(event));
                        false
                    }
                    Some(Err(err)) => {
                        tracing::debug!(session = %self.session_id, error = %err, "relayed stream dropped");
                        true
                    }
                    None => true,
                },
            };
            if lost && (self.caller == Caller::Peer || !self.reconnect().await) {
                self.ended = true;
            }
        }
    }

    /// Finds the session's owner again and resumes after the last delivered sequence.
    /// The subscriber had its snapshot; a new one is not sent again.
    async fn reconnect(&mut self) -> bool {
        for attempt in 0..RECONNECT_ATTEMPTS {
            if attempt > 0 {
                tokio::select! {
                    () = tokio::time::sleep(RECONNECT_PAUSE) => {}
                    () = self.chat.deps.shutdown.cancelled() => return false,
                }
            }
            match self
                .chat
                .open(&self.session_id, self.delivered, Caller::Client)
                .await
            {
                Ok(opened) => {
                    self.source = opened.source;
                    self.pending
                        .extend(opened.pending.into_iter().filter(|e| !e.kind.is_snapshot()));
                    tracing::debug!(session = %self.session_id, after = self.delivered, "event feed resumed");
                    return true;
                }
                Err(err) if is_transient(&err) => continue,
                Err(err) => {
                    tracing::debug!(session = %self.session_id, error = %err, "event feed ends");
                    return false;
                }
            }
        }
        tracing::warn!(session = %self.session_id, "no owner found for the session; the event feed ends");
        false
    }
}

impl Chat {
    /// Waits for a turn to end, wherever its session is owned, and returns it as
    /// stored. (A turn's end is stored before its event goes out.)
    pub async fn wait_for_turn(
        self: &Arc<Self>,
        session_id: &str,
        turn_id: &str,
    ) -> crate::domain::Result<crate::domain::Turn> {
        // Subscribed before the first read, so the end cannot pass unseen in between.
        let mut feed = self.subscribe(session_id, 0).await?;
        loop {
            let turn = self.get_turn(session_id, turn_id).await?;
            if turn.status.is_terminal() {
                return Ok(turn);
            }
            loop {
                match feed.next().await {
                    Some(event)
                        if event.kind.is_turn_terminal()
                            && event.turn_id.as_deref() == Some(turn_id) =>
                    {
                        break;
                    }
                    Some(_) => {}
                    // Deleted (or no owner found): the store says what became of it.
                    None => return self.get_turn(session_id, turn_id).await,
                }
            }
        }
    }
}
