//! Sending a message: store it durably with its turn, then queue, steer, interrupt or
//! reject per the busy policy — on the server that owns the session (a client's send
//! to another server is forwarded there).

use std::sync::Arc;

use super::{
    Chat,
    chat::{BusyPolicy, Caller, MAX_HOPS, Route, SendRequest},
    cluster::is_moved,
    events::EventKind,
    live::LiveSession,
};
use crate::domain::{
    Error, Message, Part, Result, Role, Timestamp, Turn, TurnStatus, Usage, new_id,
};

impl Chat {
    /// Stores the user message (and its turn) durably, then queues, steers or rejects per
    /// `on_busy`. Returns the stored message and its turn.
    pub async fn send(self: &Arc<Self>, request: SendRequest) -> Result<(Message, Turn)> {
        self.send_from(request, Caller::Client).await
    }

    /// `send`, for `caller`.
    pub async fn send_from(
        self: &Arc<Self>,
        request: SendRequest,
        caller: Caller,
    ) -> Result<(Message, Turn)> {
        validate_parts(&request.parts, self.deps.limits.max_attachment_bytes)?;
        let session = self.deps.sessions.get(&request.session_id).await?;
        // In the trash: read-only (the store checks again as it stores the message).
        session.check_not_deleted()?;
        // Fail fast when no model would run it; the turn resolves its model when it starts.
        self.deps
            .models
            .resolve(request.model.as_deref(), session.model.as_deref())
            .await?;
        let mut hops = 0;
        loop {
            let live = match self.route_for(&request.session_id, caller).await? {
                Route::Here(live) => live,
                Route::Elsewhere(remote) => match self.peers.send(&remote, &request).await {
                    Err(err) if is_moved(&err) && hops < MAX_HOPS => {
                        hops += 1;
                        continue;
                    }
                    answer => return answer,
                },
            };
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
                        reason: crate::domain::reason::SESSION_BUSY,
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
                        .append_user_message(&message, None, live.fence)
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
                        .enqueue(&live, message, &request, BusyPolicy::Enqueue, true)
                        .await;
                }
                (policy, _) => {
                    if queued >= self.deps.limits.max_queue_depth {
                        return Err(Error::ResourceExhausted {
                            reason: crate::domain::reason::QUEUE_FULL,
                            message: format!(
                                "sessions/{} already has {queued} turns queued (the limit); wait, or clear the queue",
                                request.session_id
                            ),
                            retry_after: None,
                        });
                    }
                    return self.enqueue(&live, message, &request, policy, false).await;
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
        request: &SendRequest,
        policy: BusyPolicy,
        stored: bool,
    ) -> Result<(Message, Turn)> {
        let model = request.model.clone();
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
            self.deps.store.put_turn(&turn, live.fence).await?;
            self.deps.store.put_message(&message, live.fence).await?;
        } else {
            self.deps
                .store
                .append_user_message(&message, Some(&turn), live.fence)
                .await?;
        }
        let mut state = live.lock();
        if request.unattended {
            state.unattended.insert(turn.id.clone());
        }
        if let Some(origin) = super::spans::origin() {
            state.origins.insert(turn.id.clone(), origin);
        }
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

/// What [`Chat::send_and_wait`] gives back: the turn as it ended and what it said.
#[derive(Clone, Debug)]
pub struct Answered {
    /// The stored user message.
    pub message: Message,
    /// The turn, ended (any terminal status).
    pub turn: Turn,
    /// The turn's assistant messages, oldest first (tool calls included); the last one
    /// holds the final answer.
    pub replies: Vec<Message>,
}

/// The reason of the error a send-and-wait gets when its turn outlives the wait.
pub use crate::domain::reason::TURN_STILL_RUNNING;

/// Assistant messages read back per turn at most (a turn of 50 steps writes ~100).
const MAX_REPLIES: usize = 1000;

/// How long send-and-wait waits when the caller does not say, and at most: long
/// enough for a tool-using turn, short of holding a request open for ever.
pub const DEFAULT_WAIT: std::time::Duration = std::time::Duration::from_secs(300);
pub const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(3600);

impl Chat {
    /// Sends like [`Chat::send`], then waits (at most `timeout`, default
    /// [`DEFAULT_WAIT`], at most [`MAX_WAIT`]) for the turn to end, on whichever server
    /// runs it. A turn still running at the deadline goes on: the error
    /// (DEADLINE_EXCEEDED, `TURN_STILL_RUNNING`) names it and how to follow it. The
    /// caller cannot answer questions while it waits, so the turn runs unattended.
    pub async fn send_and_wait(
        self: &Arc<Self>,
        mut request: SendRequest,
        caller: Caller,
        timeout: Option<std::time::Duration>,
    ) -> Result<Answered> {
        let timeout = timeout.unwrap_or(DEFAULT_WAIT);
        if timeout > MAX_WAIT {
            return Err(Error::invalid(
                "timeout",
                format!("must be at most {} s", MAX_WAIT.as_secs()),
            ));
        }
        let session_id = request.session_id.clone();
        request.unattended = true;
        let (message, turn) = self.send_from(request, caller).await?;
        let ended =
            match tokio::time::timeout(timeout, self.wait_for_turn(&session_id, &turn.id)).await {
                Ok(ended) => ended?,
                Err(_) => {
                    return Err(Error::DeadlineExceeded {
                        reason: TURN_STILL_RUNNING,
                        message: format!(
                            "sessions/{session_id}/turns/{} did not end within {} s and goes on; \
                         follow it with StreamEvents on sessions/{session_id} or poll GetTurn",
                            turn.id,
                            timeout.as_secs_f64()
                        ),
                    });
                }
            };
        let mut replies: Vec<Message> = self
            .deps
            .store
            .list_messages(&session_id, None, Some(&message.id), MAX_REPLIES)
            .await?
            .into_iter()
            .filter(|m| m.turn_id.as_deref() == Some(turn.id.as_str()) && m.role == Role::Assistant)
            .collect();
        replies.reverse();
        Ok(Answered {
            message,
            turn: ended,
            replies,
        })
    }
}
