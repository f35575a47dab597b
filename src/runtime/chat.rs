//! Chat: messages, turns and event streams of sessions. Finds or starts a session's live
//! state, applies the busy policy of each message, and serves subscriptions.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::{
    Deps,
    events::{Confirmation, Decision, Event, EventKind, WireCache},
    live::{ActiveTurn, LiveSession},
    turn,
};
use crate::domain::{
    Error, Message, Part, Resource, Result, Role, Timestamp, Turn, TurnError, TurnStatus, Usage,
    cluster::Fence, new_id, page,
};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BusyPolicy {
    #[default]
    Enqueue,
    Steer,
    Interrupt,
    Reject,
}

#[derive(Clone, Debug)]
pub struct SendRequest {
    pub session_id: String,
    pub parts: Vec<Part>,
    pub on_busy: BusyPolicy,
    /// A model for this turn only.
    pub model: Option<String>,
}

pub struct Chat {
    deps: Arc<Deps>,
    live: Mutex<HashMap<String, Arc<LiveSession>>>,
    /// Every driver task, so shutdown can wait for them.
    drivers: tokio_util::task::TaskTracker,
}

fn session_not_found(id: &str) -> Error {
    Error::not_found(Resource::Session, format!("sessions/{id}"))
}

impl Chat {
    pub fn new(deps: Arc<Deps>) -> Arc<Chat> {
        Arc::new(Chat {
            deps,
            live: Mutex::new(HashMap::new()),
            drivers: tokio_util::task::TaskTracker::new(),
        })
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LiveSession>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sessions with live state (a turn running or queued, or subscribers).
    pub fn live_count(&self) -> usize {
        self.map().len()
    }

    /// Every turn of every session as it ends, from now on. A receiver that lags gets
    /// `Lagged` and should read the turns it waits for from the store.
    pub fn finished_turns(&self) -> tokio::sync::broadcast::Receiver<Turn> {
        self.deps.finished_turns.subscribe()
    }

    /// The session's live state, started (with its driver) if needed.
    async fn live(self: &Arc<Self>, id: &str) -> Result<Arc<LiveSession>> {
        if let Some(live) = self.map().get(id) {
            return Ok(live.clone());
        }
        let started = LiveSession::start(id, self.deps.clone()).await?;
        let live = {
            let mut map = self.map();
            if let Some(existing) = map.get(id) {
                // Another caller started it first; ours was never used.
                existing.clone()
            } else {
                map.insert(id.to_owned(), started.clone());
                let chat = self.clone();
                let driver = started.clone();
                self.drivers.spawn(async move { chat.drive(driver).await });
                started
            }
        };
        Ok(live)
    }

    /// The driver: runs queued turns one after the other; retires when idle.
    async fn drive(self: Arc<Self>, live: Arc<LiveSession>) {
        tracing::debug!(session = %live.id, "session live");
        loop {
            // Shut down, or the session was deleted.
            if self.deps.shutdown.is_cancelled() || live.lock().retired {
                return;
            }
            let next = {
                let mut state = live.lock();
                if state.active.is_none() {
                    state.queue.pop_front().map(|turn| {
                        let cancel = CancellationToken::new();
                        state.active = Some(ActiveTurn {
                            turn: turn.clone(),
                            cancel: cancel.clone(),
                            steering: Vec::new(),
                            partial: None,
                            confirmations: Vec::new(),
                        });
                        live.publish_summary(&state);
                        (turn, cancel)
                    })
                } else {
                    None
                }
            };
            match next {
                Some((turn, cancel)) => {
                    turn::run(&live, turn, cancel).await;
                    {
                        let mut state = live.lock();
                        state.active = None;
                        if state.retired {
                            // Deleted while the turn ran: nothing left to publish.
                            return;
                        }
                        live.publish_summary(&state);
                    }
                    self.publish_session(&live).await;
                }
                None => {
                    tokio::select! {
                        () = live.wake.notified() => {}
                        () = self.deps.shutdown.cancelled() => return,
                        () = tokio::time::sleep(self.deps.limits.idle) => {
                            if self.try_retire(&live) {
                                if let Err(err) = live.store_exact_sequence().await {
                                    tracing::warn!(session = %live.id, error = %err, "cannot store the event sequence");
                                }
                                tracing::debug!(session = %live.id, "session idle");
                                return;
                            }
                        }
                    }
                }
            }
        }
    }

    fn try_retire(&self, live: &LiveSession) -> bool {
        let mut map = self.map();
        // A send in progress will enqueue: not idle.
        let Ok(_send) = live.send_lock.try_lock() else {
            return false;
        };
        let mut state = live.lock();
        if state.is_busy() || live.subscriber_count() > 0 {
            return false;
        }
        state.retired = true;
        map.remove(&*live.id);
        live.clear_summary();
        true
    }

    /// Tells watchers of the session list and of the session that it changed.
    async fn publish_session(&self, live: &LiveSession) {
        if let Ok(session) = self.deps.sessions.get(&live.id).await {
            live.emit(
                None,
                EventKind::SessionUpdated {
                    session: Box::new(session.clone()),
                },
            );
            self.deps.sessions.publish_updated(session);
        }
    }

    /// Stores the user message (and its turn) durably, then queues, steers or rejects per
    /// `on_busy`. Returns the stored message and its turn.
    pub async fn send(self: &Arc<Self>, request: SendRequest) -> Result<(Message, Turn)> {
        validate_parts(&request.parts, self.deps.limits.max_attachment_bytes)?;
        let session = self.deps.sessions.get(&request.session_id).await?;
        // Fail fast when no model would run it; the turn resolves its model when it starts.
        self.deps
            .models
            .resolve(request.model.as_deref(), session.model.as_deref())
            .await?;
        loop {
            let live = self.live(&request.session_id).await?;
            let _send = live.send_lock.lock().await;
            if live.lock().retired {
                continue;
            }
            live.keep_sequence_floor().await?;
            let (busy, queued, active) = {
                let state = live.lock();
                (
                    state.is_busy(),
                    state.queue.len(),
                    state.active.as_ref().map(|a| a.turn.clone()),
                )
            };
            let now = Timestamp::now();
            let mut message = Message {
                id: new_id(),
                session_id: request.session_id.clone(),
                turn_id: None,
                role: Role::User,
                parts: request.parts.clone(),
                create_time: now,
                incomplete: false,
                model: None,
                // Joins the conversation when its turn starts (or, steered, at the next step).
                position: None,
            };
            match (request.on_busy, active) {
                (BusyPolicy::Reject, _) if busy => {
                    return Err(Error::FailedPrecondition {
                        reason: "SESSION_BUSY",
                        message: format!(
                            "sessions/{} is running a turn; send with on_busy ENQUEUE, STEER or INTERRUPT, or wait",
                            request.session_id
                        ),
                    });
                }
                (BusyPolicy::Steer, Some(active)) => {
                    message.turn_id = Some(active.id.clone());
                    self.deps
                        .store
                        .append_user_message(&message, None, Fence::NONE)
                        .await?;
                    let steered = {
                        let mut state = live.lock();
                        match state.active.as_mut() {
                            Some(running) if running.turn.id == active.id => {
                                running.steering.push(message.clone());
                                live.emit_locked(
                                    &mut state,
                                    Some(&active.id),
                                    EventKind::MessageCompleted {
                                        message: Box::new(message.clone()),
                                    },
                                );
                                true
                            }
                            _ => false,
                        }
                    };
                    if steered {
                        return Ok((message, active));
                    }
                    // The turn ended while the message was being stored: it starts its own.
                    return self
                        .enqueue(
                            &live,
                            message,
                            request.model.clone(),
                            BusyPolicy::Enqueue,
                            true,
                        )
                        .await;
                }
                (policy, _) => {
                    if queued >= self.deps.limits.max_queue_depth {
                        return Err(Error::ResourceExhausted {
                            reason: "QUEUE_FULL",
                            message: format!(
                                "sessions/{} already has {queued} turns queued (the limit); wait, or clear the queue",
                                request.session_id
                            ),
                            retry_after: None,
                        });
                    }
                    return self
                        .enqueue(&live, message, request.model.clone(), policy, false)
                        .await;
                }
            }
        }
    }

    /// Stores `message` with a new queued turn and queues it (INTERRUPT: first, and the
    /// running turn is cancelled). `stored`: the message is already stored (a steered
    /// message whose turn ended first).
    async fn enqueue(
        &self,
        live: &LiveSession,
        mut message: Message,
        model: Option<String>,
        policy: BusyPolicy,
        stored: bool,
    ) -> Result<(Message, Turn)> {
        let turn = Turn {
            id: new_id(),
            session_id: message.session_id.clone(),
            status: TurnStatus::Queued,
            user_message_id: Some(message.id.clone()),
            // The request's override, if any; resolved when the turn starts.
            model,
            usage: Usage::default(),
            latency_micros: None,
            time_to_first_token_micros: None,
            error: None,
            create_time: message.create_time,
            start_time: None,
            end_time: None,
            step_count: 0,
            tool_calls: Vec::new(),
        };
        message.turn_id = Some(turn.id.clone());
        // A steered message that lost its turn is already stored: re-point it.
        if stored {
            self.deps.store.put_turn(&turn, Fence::NONE).await?;
            self.deps.store.put_message(&message, Fence::NONE).await?;
        } else {
            self.deps
                .store
                .append_user_message(&message, Some(&turn), Fence::NONE)
                .await?;
        }
        let mut state = live.lock();
        let position = if policy == BusyPolicy::Interrupt {
            state.queue.push_front(turn.clone());
            if let Some(active) = &state.active {
                active.cancel.cancel();
            }
            1
        } else {
            state.queue.push_back(turn.clone());
            state.queue.len() as i32
        };
        live.emit_locked(
            &mut state,
            Some(&turn.id),
            EventKind::MessageCompleted {
                message: Box::new(message.clone()),
            },
        );
        live.emit_locked(
            &mut state,
            Some(&turn.id),
            EventKind::TurnQueued {
                turn: Box::new(turn.clone()),
                position,
            },
        );
        live.publish_summary(&state);
        drop(state);
        live.wake.notify_one();
        Ok((message, turn))
    }

    /// A feed of the session's events after `after_sequence`: snapshot first.
    pub async fn subscribe(
        self: &Arc<Self>,
        session_id: &str,
        after_sequence: i64,
    ) -> Result<EventFeed> {
        if after_sequence < 0 {
            return Err(Error::invalid("after_sequence", "must not be negative"));
        }
        let session = self.deps.sessions.get(session_id).await?;
        loop {
            let live = self.live(session_id).await?;
            let subscription = {
                if live.lock().retired {
                    continue;
                }
                live.subscribe(session.clone(), after_sequence)
            };
            // Replayed events advance `delivered` as they go out; with nothing to replay,
            // live events start after the snapshot.
            let delivered = match (&subscription.reset, subscription.replay.is_empty()) {
                (Some(_), _) => 0,
                (None, true) => subscription.snapshot.last_sequence,
                (None, false) => after_sequence,
            };
            let mut pending = std::collections::VecDeque::new();
            pending.push_back(Arc::new(Event {
                sequence: 0,
                session_id: live.id.clone(),
                turn_id: None,
                time: Timestamp::now(),
                kind: EventKind::Snapshot(Box::new(subscription.snapshot)),
                wire: WireCache::default(),
            }));
            if let Some(reset) = subscription.reset {
                pending.push_back(Arc::new(reset));
            }
            pending.extend(subscription.replay);
            return Ok(EventFeed {
                live,
                receiver: subscription.live,
                pending,
                delivered,
                ended: false,
            });
        }
    }

    pub async fn cancel_turn(&self, session_id: &str, turn_id: &str) -> Result<Turn> {
        let live = self.map().get(session_id).cloned();
        if let Some(live) = live {
            enum Found {
                Queued(Turn),
                Running(Turn),
                No,
            }
            let found = {
                let mut state = live.lock();
                let queued = state.queue.iter().position(|t| t.id == turn_id);
                // Out of the queue first, so the driver cannot start it.
                if let Some(mut turn) = queued.and_then(|p| state.queue.remove(p)) {
                    finish_unstarted(&mut turn, TurnStatus::Cancelled, None);
                    live.publish_summary(&state);
                    Found::Queued(turn)
                } else if let Some(active) = state.active.as_ref().filter(|a| a.turn.id == turn_id)
                {
                    active.cancel.cancel();
                    Found::Running(active.turn.clone())
                } else {
                    Found::No
                }
            };
            match found {
                Found::Queued(turn) => {
                    // Stored before anyone hears of it: a crash cannot resurrect it.
                    self.deps.store.put_turn(&turn, Fence::NONE).await?;
                    live.emit(
                        Some(turn_id),
                        EventKind::TurnFinished {
                            turn: Box::new(turn.clone()),
                        },
                    );
                    return Ok(turn);
                }
                Found::Running(turn) => return Ok(turn),
                Found::No => {}
            }
        }
        // Finished (or never live here): idempotent, the turn as it is.
        self.get_turn(session_id, turn_id).await
    }

    pub async fn clear_queue(&self, session_id: &str) -> Result<Vec<Turn>> {
        self.deps.sessions.get(session_id).await?;
        let Some(live) = self.map().get(session_id).cloned() else {
            return Ok(Vec::new());
        };
        let cancelled: Vec<Turn> = {
            let mut state = live.lock();
            let mut turns: Vec<Turn> = state.queue.drain(..).collect();
            for turn in &mut turns {
                finish_unstarted(turn, TurnStatus::Cancelled, None);
            }
            live.publish_summary(&state);
            turns
        };
        // Stored before anyone hears of it: a crash cannot resurrect them.
        for turn in &cancelled {
            self.deps.store.put_turn(turn, Fence::NONE).await?;
            live.emit(
                Some(&turn.id),
                EventKind::TurnFinished {
                    turn: Box::new(turn.clone()),
                },
            );
        }
        Ok(cancelled)
    }

    pub async fn respond(
        &self,
        session_id: &str,
        confirmation_id: &str,
        decision: Decision,
    ) -> Result<Confirmation> {
        let not_found = || {
            Error::not_found(
                Resource::Confirmation,
                format!("sessions/{session_id}/confirmations/{confirmation_id}"),
            )
        };
        let live = self.map().get(session_id).cloned().ok_or_else(not_found)?;
        let confirmation = {
            let mut state = live.lock();
            let active = state.active.as_mut().ok_or_else(not_found)?;
            let position = active
                .confirmations
                .iter()
                .position(|c| c.confirmation.id == confirmation_id)
                .ok_or_else(not_found)?;
            let mut pending = active.confirmations.remove(position);
            let turn_id = active.turn.id.clone();
            if decision == Decision::AllowAlways {
                state
                    .allow_always
                    .insert(pending.confirmation.call.tool.clone());
            }
            if let Some(answer) = pending.answer.take() {
                let _ = answer.send(decision);
            }
            live.emit_locked(
                &mut state,
                Some(&turn_id),
                EventKind::ConfirmationResolved {
                    confirmation_id: confirmation_id.to_owned(),
                    decision: Some(decision),
                },
            );
            live.publish_summary(&state);
            pending.confirmation
        };
        if decision == Decision::AllowAlways {
            // Remembered beyond this live state: idle retirement and restarts keep it.
            self.deps
                .store
                .allow_tool(session_id, &confirmation.call.tool, Fence::NONE)
                .await?;
        }
        Ok(confirmation)
    }

    /// Ends live state of a deleted session: cancels its turns, tells subscribers.
    pub fn session_deleted(&self, session_id: &str) {
        let Some(live) = self.map().remove(session_id) else {
            return;
        };
        let mut state = live.lock();
        state.queue.clear();
        if let Some(active) = &state.active {
            active.cancel.cancel();
        }
        state.retired = true;
        live.emit_locked(&mut state, None, EventKind::SessionDeleted);
        live.clear_summary();
    }

    pub async fn get_turn(&self, session_id: &str, turn_id: &str) -> Result<Turn> {
        if let Some(live) = self.map().get(session_id).cloned() {
            let running = live
                .lock()
                .active
                .as_ref()
                .filter(|a| a.turn.id == turn_id)
                .map(|a| a.turn.clone());
            if let Some(turn) = running {
                return Ok(turn);
            }
        }
        self.deps
            .store
            .get_turn(session_id, turn_id)
            .await?
            .ok_or_else(|| {
                Error::not_found(
                    Resource::Turn,
                    format!("sessions/{session_id}/turns/{turn_id}"),
                )
            })
    }

    pub async fn list_turns(
        &self,
        session_id: &str,
        page_token: &str,
        page_size: i32,
    ) -> Result<(Vec<Turn>, String)> {
        self.deps.sessions.get(session_id).await?;
        let limit = page::page_size(page_size)?;
        let filters = page::fingerprint(&[session_id]);
        let before: Option<String> = page::decode_token(page_token, filters)?;
        let mut turns = self
            .deps
            .store
            .list_turns(session_id, before.as_deref(), limit + 1)
            .await?;
        let next = next_token(&mut turns, limit, |t| t.id.clone(), filters);
        Ok((turns, next))
    }

    pub async fn get_message(&self, session_id: &str, message_id: &str) -> Result<Message> {
        self.deps
            .store
            .get_message(session_id, message_id)
            .await?
            .ok_or_else(|| {
                Error::not_found(
                    Resource::Message,
                    format!("sessions/{session_id}/messages/{message_id}"),
                )
            })
    }

    /// History newest first; `before`/`after` are message ids.
    pub async fn list_messages(
        &self,
        session_id: &str,
        before: Option<&str>,
        after: Option<&str>,
        page_token: &str,
        page_size: i32,
    ) -> Result<(Vec<Message>, String)> {
        self.deps
            .sessions
            .get(session_id)
            .await
            .map_err(|_| session_not_found(session_id))?;
        let limit = page::page_size(page_size)?;
        let filters = page::fingerprint(&[session_id, before.unwrap_or(""), after.unwrap_or("")]);
        let cursor: Option<String> = page::decode_token(page_token, filters)?;
        // The page token continues below the last message served.
        let before = cursor.as_deref().or(before);
        let mut messages = self
            .deps
            .store
            .list_messages(session_id, before, after, limit + 1)
            .await?;
        let next = next_token(&mut messages, limit, |m| m.id.clone(), filters);
        Ok((messages, next))
    }

    /// On start: turns a crash left running become INTERRUPTED (their partial text is
    /// kept, marked incomplete); sessions with queued turns go live and run them.
    pub async fn recover(self: &Arc<Self>) -> Result<usize> {
        let unfinished = self.deps.store.unfinished_turns().await?;
        // Sessions in order of their oldest unfinished turn, each with its queue.
        let mut queues: Vec<(String, Vec<Turn>)> = Vec::new();
        for mut turn in unfinished {
            let index = queues
                .iter()
                .position(|(id, _)| *id == turn.session_id)
                .unwrap_or_else(|| {
                    queues.push((turn.session_id.clone(), Vec::new()));
                    queues.len() - 1
                });
            let queue = &mut queues[index].1;
            if turn.status == TurnStatus::Queued {
                queue.push(turn);
                continue;
            }
            turn.status = TurnStatus::Interrupted;
            turn.error = Some(TurnError {
                reason: "SERVER_RESTARTED".into(),
                message: "the server stopped while this turn ran".into(),
            });
            let end = Timestamp::now();
            turn.end_time = Some(end);
            turn.latency_micros = turn.start_time.map(|s| end.0 - s.0);
            self.deps.store.put_turn(&turn, Fence::NONE).await?;
            let live = self.live(&turn.session_id).await?;
            live.emit(
                Some(&turn.id),
                EventKind::TurnFinished {
                    turn: Box::new(turn.clone()),
                },
            );
            tracing::warn!(session = %turn.session_id, turn = %turn.id, "turn interrupted by a restart");
        }
        let sessions = queues.len();
        for (session_id, queued) in queues {
            if queued.is_empty() {
                continue;
            }
            let live = self.live(&session_id).await?;
            {
                let mut state = live.lock();
                state.queue.extend(queued);
                live.publish_summary(&state);
            }
            live.wake.notify_one();
        }
        Ok(sessions)
    }

    /// Stops every session's turn (call after cancelling `Deps::shutdown`): running
    /// turns end INTERRUPTED, queued ones stay queued and resume on the next start.
    /// Returns when every driver has stored its turn's end and stopped.
    pub async fn shutdown(&self) {
        for live in self.map().values() {
            if let Some(active) = &live.lock().active {
                active.cancel.cancel();
            }
        }
        self.drivers.close();
        self.drivers.wait().await;
    }
}

/// Truncates a `limit + 1` page to `limit`, returning the next page token.
fn next_token<T>(
    items: &mut Vec<T>,
    limit: usize,
    key: impl Fn(&T) -> String,
    filters: u64,
) -> String {
    if items.len() > limit {
        items.truncate(limit);
        items
            .last()
            .map(|last| page::encode_token(&key(last), filters))
            .unwrap_or_default()
    } else {
        String::new()
    }
}

fn finish_unstarted(turn: &mut Turn, status: TurnStatus, error: Option<TurnError>) {
    turn.status = status;
    turn.error = error;
    turn.end_time = Some(Timestamp::now());
}

fn validate_parts(parts: &[Part], max_attachment_bytes: usize) -> Result<()> {
    let mut violations = crate::domain::error::Violations::new();
    if parts.is_empty() {
        violations.add("parts", "a message needs at least one part");
    }
    for (i, part) in parts.iter().enumerate() {
        match part {
            Part::Text { text } if text.trim().is_empty() && parts.len() == 1 => {
                violations.add(format!("parts[{i}].text"), "must not be empty");
            }
            Part::Text { .. } => {}
            Part::Attachment { data, uri, .. } => {
                if let Some(data) = data
                    && data.len() > max_attachment_bytes
                {
                    violations.add(
                        format!("parts[{i}].attachment.data"),
                        format!(
                            "is {} bytes; the limit is {max_attachment_bytes}",
                            data.len()
                        ),
                    );
                }
                if data.is_none() && uri.as_deref().is_none_or(str::is_empty) {
                    violations.add(format!("parts[{i}].attachment"), "must set data or uri");
                }
            }
            _ => violations.add(
                format!("parts[{i}]"),
                "a user message may hold text and attachments only",
            ),
        }
    }
    violations.into_result()
}

/// One subscriber's events: the snapshot, a reset if the resume point is gone, retained
/// events, then live ones. A subscriber that falls behind catches up from the log or is
/// reset; it never slows the session or other subscribers.
pub struct EventFeed {
    live: Arc<LiveSession>,
    receiver: tokio::sync::broadcast::Receiver<Arc<Event>>,
    pending: std::collections::VecDeque<Arc<Event>>,
    /// The last sequence handed out; later duplicates are skipped.
    delivered: i64,
    ended: bool,
}

impl EventFeed {
    /// The next event, or `None` when the session was deleted.
    pub async fn next(&mut self) -> Option<Arc<Event>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if event.sequence > 0 {
                    if event.sequence <= self.delivered {
                        continue;
                    }
                    self.delivered = event.sequence;
                }
                if matches!(event.kind, EventKind::SessionDeleted) {
                    self.ended = true;
                }
                return Some(event);
            }
            if self.ended {
                return None;
            }
            match self.receiver.recv().await {
                Ok(event) => self.pending.push_back(event),
                Err(RecvError::Lagged(_)) => {
                    let (replay, reset) = self.live.replay_after(self.delivered);
                    if let Some(reset) = reset {
                        self.pending.push_back(Arc::new(reset));
                        self.delivered = 0;
                    }
                    self.pending.extend(replay);
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}
