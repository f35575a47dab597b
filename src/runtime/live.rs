//! A live session: the in-memory state of a session that has work in progress or
//! subscribers, owned by one driver task that runs its turns in order. State changes
//! and the events describing them happen under one lock, so a subscriber's snapshot,
//! replay and live feed join without gap or duplicate.
//!
//! The retained log (what streams resume from) has two sizes. While anyone subscribes,
//! it keeps the last `event_log_capacity` events (4,096 by default), so a subscriber
//! that fell behind the live feed catches up from it. With nobody subscribed, it keeps
//! only the newest events that fit `event_log_bytes` (64 KiB by default, about 450
//! text deltas: two 200-token turns), counted by [`Event::retained_bytes`]; it shrinks
//! to that when the last subscriber leaves, and the broadcast ring (1,024 slots, and
//! the events it pins) is dropped with that subscriber and made again by the next one.
//! A resume point older than what is retained gets an explicit reset, never a gap.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex, MutexGuard},
};

use tokio::sync::{Notify, broadcast, oneshot};
use tokio_util::sync::CancellationToken;

use super::{
    Deps,
    events::{Confirmation, Decision, Event, EventKind, InputRequest, Snapshot, WireCache},
};
use crate::domain::{Message, Result, Session, SessionStatus, Timestamp, Turn, cluster::Fence};

/// Sequence numbers reserved ahead in the store, so a crash never reuses one.
pub(crate) const SEQUENCE_BLOCK: i64 = 1 << 20;
/// A subscriber this far behind the live feed catches up from the log (or is reset).
const BROADCAST_CAPACITY: usize = 1024;

/// The running turn.
pub(crate) struct ActiveTurn {
    pub turn: Turn,
    pub cancel: CancellationToken,
    /// User messages sent with STEER, injected at the next step.
    pub steering: Vec<Message>,
    /// The assistant message being streamed.
    pub partial: Option<Message>,
    pub confirmations: Vec<PendingConfirmation>,
    /// Questions of the model (`ask_user`) waiting for RespondToInput.
    pub inputs: Vec<PendingInput>,
    /// Nobody can answer questions in this turn (SendMessageAndWait, a schedule run):
    /// the model is not offered `ask_user`.
    pub unattended: bool,
}

impl ActiveTurn {
    /// The turn as it starts running, with nothing pending yet.
    pub fn new(turn: Turn, cancel: CancellationToken, unattended: bool) -> Self {
        ActiveTurn {
            turn,
            cancel,
            steering: Vec::new(),
            partial: None,
            confirmations: Vec::new(),
            inputs: Vec::new(),
            unattended,
        }
    }
}

pub(crate) struct PendingConfirmation {
    pub confirmation: Confirmation,
    pub answer: Option<oneshot::Sender<Decision>>,
}

pub(crate) struct PendingInput {
    pub request: InputRequest,
    /// Takes the accepted answer to the waiting turn.
    pub answer: Option<oneshot::Sender<String>>,
}

pub(crate) struct LiveState {
    next_sequence: i64,
    /// The floor stored in the store: every sequence handed out is below it.
    sequence_floor: i64,
    log: VecDeque<Arc<Event>>,
    /// The log's size by `Event::retained_bytes` (recounted when the last subscriber
    /// leaves; cached wire bytes filled in later are not added).
    log_bytes: usize,
    /// Open subscriptions (`Watch`es) on this server.
    watchers: usize,
    /// The live feed; only while someone subscribes.
    events: Option<broadcast::Sender<Arc<Event>>>,
    pub queue: VecDeque<Turn>,
    /// The queued turns sent unattended (see `ActiveTurn::unattended`). Kept in memory
    /// only: a turn recovered after a restart or a takeover runs attended.
    pub unattended: HashSet<String>,
    /// The span each queued turn's span will be a child of: the exported span (an RPC's)
    /// that sent its message, by turn id. Kept in memory only, like `unattended`.
    pub origins: HashMap<String, tracing::Span>,
    pub active: Option<ActiveTurn>,
    /// Tools the user allowed for the rest of the session.
    pub allow_always: HashSet<String>,
    /// Set once the driver has stopped: callers must find or start a fresh one.
    pub retired: bool,
    /// What the provider counted of the last model request (compaction measures by it).
    pub last_request: Option<super::context::RequestSize>,
    /// The turn id of the last event, shared by the next events of the same turn.
    last_turn_id: Option<Arc<str>>,
}

impl LiveState {
    pub fn status(&self) -> SessionStatus {
        match &self.active {
            None => SessionStatus::Idle,
            Some(active) if !active.confirmations.is_empty() => SessionStatus::AwaitingConfirmation,
            Some(active) if !active.inputs.is_empty() => SessionStatus::AwaitingInput,
            Some(_) => SessionStatus::Running,
        }
    }

    pub fn is_busy(&self) -> bool {
        self.active.is_some() || !self.queue.is_empty()
    }

    /// Whether anyone subscribes to the session here.
    pub fn is_watched(&self) -> bool {
        self.watchers > 0
    }

    /// What the session list shows of this state.
    pub fn summary(&self) -> LiveSummary {
        LiveSummary {
            status: self.status(),
            queue_depth: self.queue.len() as i32,
            active_turn: self.active.as_ref().map(|a| a.turn.id.clone()),
        }
    }
}

/// What the session list shows of a live session.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LiveSummary {
    pub status: SessionStatus,
    pub queue_depth: i32,
    pub active_turn: Option<String>,
}

impl LiveSummary {
    /// Fills a session's live fields.
    pub fn apply(self, session: &mut Session) {
        session.status = self.status;
        session.queue_depth = self.queue_depth;
        session.active_turn = self.active_turn;
    }
}

/// Live summaries of all live sessions, for GetSession/ListSessions.
#[derive(Default)]
pub struct LiveIndex {
    sessions: std::sync::RwLock<HashMap<String, LiveSummary>>,
}

impl LiveIndex {
    pub fn get(&self, id: &str) -> Option<LiveSummary> {
        self.sessions.read().ok().and_then(|m| m.get(id).cloned())
    }

    /// Fills a stored session's live fields.
    pub fn overlay(&self, session: &mut Session) {
        if let Some(summary) = self.get(&session.id) {
            summary.apply(session);
        }
    }

    pub(crate) fn set(&self, id: &str, summary: Option<LiveSummary>) {
        if let Ok(mut map) = self.sessions.write() {
            match summary {
                Some(summary) => map.insert(id.to_owned(), summary),
                None => map.remove(id),
            };
        }
    }
}

/// What a new subscriber gets, taken atomically.
pub(crate) struct Subscription {
    pub snapshot: Snapshot,
    /// Retained events after the resume point.
    pub replay: Vec<Arc<Event>>,
    /// Set when the resume point is older than the retained window.
    pub reset: Option<Event>,
    pub live: Watch,
}

/// One subscriber's place on the live feed. While any exists the session is watched;
/// dropping the last one shrinks the log to its byte budget and frees the feed.
pub(crate) struct Watch {
    /// Declared before `live`, so it is gone when the guard counts this watcher out:
    /// the last one takes the broadcast ring (and the events it pins) with it.
    pub receiver: broadcast::Receiver<Arc<Event>>,
    pub live: Watched,
}

/// The session a `Watch` is on; counts the watcher out when dropped.
pub(crate) struct Watched(Arc<LiveSession>);

impl std::ops::Deref for Watched {
    type Target = LiveSession;

    fn deref(&self) -> &LiveSession {
        &self.0
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.0.unwatch();
    }
}

pub(crate) struct LiveSession {
    pub id: Arc<str>,
    pub deps: Arc<Deps>,
    /// The lease epoch every write for this session carries (`Fence::NONE` on one
    /// server): once another server takes the session, the store refuses them.
    pub fence: Fence,
    /// Cancelled when this server lost the session to another one: the driver stops and
    /// subscribers here resume from the new owner.
    pub moved: CancellationToken,
    state: Mutex<LiveState>,
    /// Wakes the driver when a turn is queued.
    pub wake: Notify,
    /// Serialises SendMessage per session: decide, store, enqueue as one step.
    pub send_lock: tokio::sync::Mutex<()>,
}

impl LiveSession {
    /// Loads the sequence floor and the queued turns; reserves the next block of sequences.
    pub async fn start(id: &str, deps: Arc<Deps>, fence: Fence) -> Result<Arc<LiveSession>> {
        let stored = deps.store.event_sequence(id).await?;
        let allow_always = deps.store.allowed_tools(id).await?.into_iter().collect();
        let floor = stored + SEQUENCE_BLOCK;
        deps.store
            .set_event_sequence(id, floor, None, fence)
            .await?;
        let live = Arc::new(LiveSession {
            id: Arc::from(id),
            deps,
            fence,
            moved: CancellationToken::new(),
            state: Mutex::new(LiveState {
                next_sequence: stored + 1,
                sequence_floor: floor,
                log: VecDeque::new(),
                log_bytes: 0,
                watchers: 0,
                events: None,
                queue: VecDeque::new(),
                unattended: HashSet::new(),
                origins: HashMap::new(),
                active: None,
                allow_always,
                retired: false,
                last_request: None,
                last_turn_id: None,
            }),
            wake: Notify::new(),
            send_lock: tokio::sync::Mutex::new(()),
        });
        Ok(live)
    }

    pub fn lock(&self) -> MutexGuard<'_, LiveState> {
        // A panic while holding the lock leaves consistent-enough state for the others.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Emits an event: numbers it, keeps it in the log, sends it to subscribers.
    pub fn emit(&self, turn_id: Option<&str>, kind: EventKind) -> Arc<Event> {
        let mut state = self.lock();
        self.emit_locked(&mut state, turn_id, kind)
    }

    /// Emits while the caller holds the lock (state change and event are atomic).
    pub fn emit_locked(
        &self,
        state: &mut LiveState,
        turn_id: Option<&str>,
        kind: EventKind,
    ) -> Arc<Event> {
        let sequence = state.next_sequence;
        state.next_sequence += 1;
        let turn_id = turn_id.map(|id| match &state.last_turn_id {
            Some(last) if **last == *id => last.clone(),
            _ => {
                let shared: Arc<str> = Arc::from(id);
                state.last_turn_id = Some(shared.clone());
                shared
            }
        });
        let event = Arc::new(Event {
            sequence,
            session_id: self.id.clone(),
            turn_id,
            time: Timestamp::now(),
            kind,
            wire: WireCache::for_subscribers(state.watchers),
        });
        state.log_bytes += event.retained_bytes();
        state.log.push_back(event.clone());
        self.trim_log(state);
        if let Some(events) = &state.events {
            // Every receiver may have gone since the last event: fine.
            let _ = events.send(event.clone());
        }
        event
    }

    /// Drops the oldest events beyond what is retained: `event_log_capacity` events
    /// while watched, and also at most `event_log_bytes` while not.
    fn trim_log(&self, state: &mut LiveState) {
        let limits = &self.deps.limits;
        let bytes = if state.watchers > 0 {
            usize::MAX
        } else {
            limits.event_log_bytes
        };
        while state.log.len() > limits.event_log_capacity || state.log_bytes > bytes {
            let Some(oldest) = state.log.pop_front() else {
                break;
            };
            state.log_bytes = state.log_bytes.saturating_sub(oldest.retained_bytes());
        }
    }

    /// A subscriber left. With nobody left: the feed goes, and the log shrinks to its
    /// byte budget. The encoded bytes cached for several subscribers are dropped too
    /// (a later replay encodes again), so what stays is what the budget counted.
    fn unwatch(&self) {
        let mut state = self.lock();
        state.watchers = state.watchers.saturating_sub(1);
        if state.watchers > 0 {
            return;
        }
        state.events = None;
        for event in state.log.iter_mut() {
            // Events still held elsewhere (another feed's queue) keep theirs.
            if let Some(event) = Arc::get_mut(event) {
                event.wire = WireCache::default();
            }
        }
        state.log_bytes = state.log.iter().map(|e| e.retained_bytes()).sum();
        self.trim_log(&mut state);
        // A log that held 4,096 events keeps a 32 KiB ring of pointers otherwise.
        if state.log.capacity() > 2 * state.log.len() + 64 {
            state.log.shrink_to_fit();
        }
    }

    /// Publishes the session's live summary to the index (call after status changes).
    pub fn publish_summary(&self, state: &LiveState) {
        self.deps.live.set(&self.id, Some(state.summary()));
    }

    /// Raises the stored sequence floor when the sequence nears it. Called by the async
    /// paths that emit (turn steps, sends), so the floor always stays ahead.
    pub async fn keep_sequence_floor(&self) -> Result<()> {
        let raise = {
            let mut state = self.lock();
            if state.next_sequence + SEQUENCE_BLOCK / 2 > state.sequence_floor {
                state.sequence_floor = state.next_sequence + SEQUENCE_BLOCK;
                Some(state.sequence_floor)
            } else {
                None
            }
        };
        if let Some(floor) = raise {
            self.deps
                .store
                .set_event_sequence(&self.id, floor, None, self.fence)
                .await?;
        }
        Ok(())
    }

    /// Subscribes after `after_sequence`: snapshot, retained events after it (or a reset
    /// when they are gone), and the live feed, all from one instant.
    pub fn subscribe(self: &Arc<Self>, mut session: Session, after_sequence: i64) -> Subscription {
        let mut state = self.lock();
        let last = state.next_sequence - 1;
        state.summary().apply(&mut session);
        let snapshot = Snapshot {
            session,
            active_turn: state.active.as_ref().map(|a| a.turn.clone()),
            queued_turns: state.queue.iter().cloned().collect(),
            pending_confirmations: state
                .active
                .iter()
                .flat_map(|a| a.confirmations.iter().map(|c| c.confirmation.clone()))
                .collect(),
            pending_input_requests: state
                .active
                .iter()
                .flat_map(|a| a.inputs.iter().map(|i| i.request.clone()))
                .collect(),
            partial_message: state.active.as_ref().and_then(|a| a.partial.clone()),
            last_sequence: last,
        };
        let (replay, reset) = self.replay_locked(&state, after_sequence);
        let receiver = state
            .events
            .get_or_insert_with(|| broadcast::channel(BROADCAST_CAPACITY).0)
            .subscribe();
        state.watchers += 1;
        Subscription {
            snapshot,
            replay,
            reset,
            live: Watch {
                receiver,
                live: Watched(self.clone()),
            },
        }
    }

    /// Retained events after `after`, or a reset event when some are no longer retained.
    pub fn replay_after(&self, after: i64) -> (Vec<Arc<Event>>, Option<Event>) {
        let state = self.lock();
        self.replay_locked(&state, after)
    }

    fn replay_locked(&self, state: &LiveState, after: i64) -> (Vec<Arc<Event>>, Option<Event>) {
        let last = state.next_sequence - 1;
        if after <= 0 || after == last {
            return (Vec::new(), None);
        }
        let oldest = state
            .log
            .front()
            .map_or(state.next_sequence, |e| e.sequence);
        let gone = if after > last {
            // Not a point this session has reached (a restored backup, a client bug).
            Some(format!(
                "resume point {after} is ahead of the session's last event {last}; reload history, then continue"
            ))
        } else if after + 1 < oldest {
            Some(format!(
                "resume point {after} is older than the retained events (oldest {oldest}); reload history, then continue"
            ))
        } else {
            None
        };
        if let Some(reason) = gone {
            let reset = self.reset_event(reason, oldest);
            return (state.log.iter().cloned().collect(), Some(reset));
        }
        let replay = state
            .log
            .iter()
            .filter(|e| e.sequence > after)
            .cloned()
            .collect();
        (replay, None)
    }

    fn reset_event(&self, reason: String, oldest_retained: i64) -> Event {
        Event {
            sequence: 0,
            session_id: self.id.clone(),
            turn_id: None,
            time: Timestamp::now(),
            kind: EventKind::StreamReset {
                reason,
                oldest_retained,
            },
            wire: WireCache::default(),
        }
    }

    /// Lowers the stored floor to the last sequence used, when retiring cleanly, so the
    /// next start continues without a jump (only if nobody raised it meanwhile).
    pub async fn store_exact_sequence(&self) -> Result<()> {
        let (last, floor) = {
            let state = self.lock();
            (state.next_sequence - 1, state.sequence_floor)
        };
        self.deps
            .store
            .set_event_sequence(&self.id, last, Some(floor), self.fence)
            .await
    }

    /// Ends this live state for good (the session was deleted, or moved to another
    /// server): queued turns leave the queue (they stay stored), the running turn is
    /// cancelled, and the driver stops.
    pub fn retire(&self, state: &mut LiveState) {
        state.queue.clear();
        state.unattended.clear();
        state.origins.clear();
        if let Some(active) = &state.active {
            active.cancel.cancel();
        }
        state.retired = true;
    }

    /// Forgets this session's summary (it is idle).
    pub fn clear_summary(&self) {
        self.deps.live.set(&self.id, None);
    }
}
