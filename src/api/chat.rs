//! ChatService: validate, call the runtime's Chat, convert messages, turns and events.

use std::{pin::Pin, sync::Arc};

use futures::Stream;
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::convert::{self, parse_child_name, parse_name};
use crate::{
    domain::{Error, FieldViolation, Result},
    pb::{self, chat_service_server::ChatService},
    runtime::{
        BusyPolicy, Caller, Chat, EventFeed, SendRequest,
        events::{ContentKind, Decision, Event, EventKind, InputRequest},
    },
    tools::OutputStream,
};

pub struct ChatApi {
    chat: Arc<Chat>,
    shutdown: CancellationToken,
    /// Who calls: clients (the public service) or, behind `api::peer`, the other
    /// servers of a cluster, whose commands are never forwarded again.
    caller: Caller,
}

impl ChatApi {
    pub fn new(chat: Arc<Chat>, shutdown: CancellationToken) -> Self {
        Self {
            chat,
            shutdown,
            caller: Caller::Client,
        }
    }

    /// The same service for other servers' forwarded commands (`api::peer`).
    pub fn for_peers(chat: Arc<Chat>, shutdown: CancellationToken) -> Self {
        Self {
            chat,
            shutdown,
            caller: Caller::Peer,
        }
    }
}

fn busy_policy(value: i32) -> Result<BusyPolicy> {
    Ok(match pb::BusyPolicy::try_from(value) {
        Ok(pb::BusyPolicy::Unspecified | pb::BusyPolicy::Enqueue) => BusyPolicy::Enqueue,
        Ok(pb::BusyPolicy::Steer) => BusyPolicy::Steer,
        Ok(pb::BusyPolicy::Interrupt) => BusyPolicy::Interrupt,
        Ok(pb::BusyPolicy::Reject) => BusyPolicy::Reject,
        Err(_) => {
            return Err(Error::invalid(
                "on_busy",
                format!("unknown enum value {value}"),
            ));
        }
    })
}

pub(super) fn send_request(
    session: &str,
    parts: &[pb::Part],
    on_busy: i32,
    model: &str,
) -> Result<SendRequest> {
    let session_id = parse_name(session, "sessions", "session")?.to_owned();
    let parts = parts
        .iter()
        .enumerate()
        .map(|(i, p)| convert::part(p, &format!("parts[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    let model = if model.is_empty() {
        None
    } else {
        Some(parse_name(model, "models", "model")?.to_owned())
    };
    Ok(SendRequest {
        session_id,
        parts,
        on_busy: busy_policy(on_busy)?,
        model,
        unattended: false,
    })
}

fn confirmation_pb(c: &crate::runtime::events::Confirmation) -> pb::Confirmation {
    pb::Confirmation {
        name: format!("sessions/{}/confirmations/{}", c.session_id, c.id),
        turn: format!("sessions/{}/turns/{}", c.session_id, c.turn_id),
        tool_call: Some(pb::ToolCall {
            id: c.call.id.clone(),
            tool: c.call.tool.clone(),
            arguments_json: c.call.arguments_json.clone(),
        }),
        reason: c.reason.clone(),
        create_time: convert::timestamp(c.create_time),
    }
}

pub(super) fn input_request_pb(r: &InputRequest) -> pb::InputRequest {
    pb::InputRequest {
        name: format!("sessions/{}/inputRequests/{}", r.session_id, r.id),
        turn: format!("sessions/{}/turns/{}", r.session_id, r.turn_id),
        tool_call_id: r.tool_call_id.clone(),
        question: r.question.question.clone(),
        choices: r.question.choices.clone(),
        allow_free_text: r.question.allow_free_text,
        create_time: convert::timestamp(r.create_time),
    }
}

/// A confirmation answer from the wire.
fn decision(value: i32) -> Result<Decision> {
    match pb::ConfirmationDecision::try_from(value) {
        Ok(pb::ConfirmationDecision::Allow) => Ok(Decision::Allow),
        Ok(pb::ConfirmationDecision::Deny) => Ok(Decision::Deny),
        Ok(pb::ConfirmationDecision::AllowAlways) => Ok(Decision::AllowAlways),
        _ => Err(Error::invalid(
            "decision",
            "must be ALLOW, DENY or ALLOW_ALWAYS",
        )),
    }
}

pub(super) fn decision_pb(decision: Option<Decision>) -> pb::ConfirmationDecision {
    match decision {
        None => pb::ConfirmationDecision::Unspecified,
        Some(Decision::Allow) => pb::ConfirmationDecision::Allow,
        Some(Decision::Deny) => pb::ConfirmationDecision::Deny,
        Some(Decision::AllowAlways) => pb::ConfirmationDecision::AllowAlways,
    }
}

fn content_kind_pb(kind: ContentKind) -> pb::ContentKind {
    match kind {
        ContentKind::Text => pb::ContentKind::Text,
        ContentKind::Reasoning => pb::ContentKind::Reasoning,
    }
}

/// Concatenates name segments with one allocation (names are built for every event sent
/// to every subscriber; `format!` costs several times more).
fn join(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        out.push_str(part);
    }
    out
}

/// A runtime event as the wire event.
pub fn event_pb(event: &Event) -> pb::SessionEvent {
    use pb::session_event::Kind;
    if let EventKind::Relayed(_) = event.kind {
        // Relayed as the owner encoded it (see api::peer::relayed); always decodable.
        return event
            .wire
            .get()
            .and_then(|bytes| pb::SessionEvent::decode(bytes.clone()).ok())
            .unwrap_or_default();
    }
    let session = &*event.session_id;
    let message_name = |id: &str| join(&["sessions/", session, "/messages/", id]);
    let kind = match &event.kind {
        EventKind::Snapshot(s) => Kind::Snapshot(pb::SessionSnapshot {
            session: Some(convert::session_pb(&s.session)),
            active_turn: s.active_turn.as_ref().map(convert::turn_pb),
            queued_turns: s.queued_turns.iter().map(convert::turn_pb).collect(),
            pending_confirmations: s
                .pending_confirmations
                .iter()
                .map(confirmation_pb)
                .collect(),
            partial_message: s.partial_message.as_ref().map(convert::message_pb),
            last_sequence: s.last_sequence,
            pending_input_requests: s
                .pending_input_requests
                .iter()
                .map(input_request_pb)
                .collect(),
        }),
        EventKind::TurnQueued { turn, position } => Kind::TurnQueued(pb::TurnQueued {
            turn: Some(convert::turn_pb(turn)),
            position: *position,
        }),
        EventKind::TurnStarted { turn } => Kind::TurnStarted(pb::TurnStarted {
            turn: Some(convert::turn_pb(turn)),
        }),
        EventKind::MessageStarted { message_id, role } => {
            Kind::MessageStarted(pb::MessageStarted {
                message: message_name(message_id),
                role: convert::role_pb(*role).into(),
            })
        }
        EventKind::ContentStarted {
            message_id,
            index,
            kind,
        } => Kind::ContentStarted(pb::ContentStarted {
            message: message_name(message_id),
            index: *index,
            kind: content_kind_pb(*kind).into(),
        }),
        EventKind::TextDelta {
            message_id,
            index,
            text,
        } => Kind::TextDelta(pb::TextDelta {
            message: message_name(message_id),
            index: *index,
            text: text.clone(),
        }),
        EventKind::ReasoningDelta {
            message_id,
            index,
            text,
        } => Kind::ReasoningDelta(pb::ReasoningDelta {
            message: message_name(message_id),
            index: *index,
            text: text.clone(),
        }),
        EventKind::ContentFinished { message_id, index } => {
            Kind::ContentFinished(pb::ContentFinished {
                message: message_name(message_id),
                index: *index,
            })
        }
        EventKind::ToolCallStarted { call } => Kind::ToolCallStarted(pb::ToolCallStarted {
            tool_call: Some(pb::ToolCall {
                id: call.id.clone(),
                tool: call.tool.clone(),
                arguments_json: call.arguments_json.clone(),
            }),
        }),
        EventKind::ToolCallOutput {
            tool_call_id,
            stream,
            text,
        } => Kind::ToolCallOutput(pb::ToolCallOutput {
            tool_call_id: tool_call_id.clone(),
            stream: match stream {
                OutputStream::Stdout => pb::OutputStream::Stdout,
                OutputStream::Stderr => pb::OutputStream::Stderr,
            }
            .into(),
            text: text.clone(),
        }),
        EventKind::ToolCallFinished {
            record,
            duration_micros,
        } => Kind::ToolCallFinished(pb::ToolCallFinished {
            record: Some(convert::tool_call_record_pb(record)),
            duration: Some(prost_types::Duration {
                seconds: duration_micros / 1_000_000,
                nanos: ((duration_micros % 1_000_000) * 1_000) as i32,
            }),
        }),
        EventKind::ConfirmationRequested { confirmation } => {
            Kind::ConfirmationRequested(pb::ConfirmationRequested {
                confirmation: Some(confirmation_pb(confirmation)),
            })
        }
        EventKind::ConfirmationResolved {
            confirmation_id,
            decision,
        } => Kind::ConfirmationResolved(pb::ConfirmationResolved {
            confirmation: format!("sessions/{session}/confirmations/{confirmation_id}"),
            decision: decision_pb(*decision).into(),
        }),
        EventKind::InputRequested { request } => Kind::InputRequested(pb::InputRequested {
            input_request: Some(input_request_pb(request)),
        }),
        EventKind::InputResolved {
            input_request_id,
            answer,
        } => Kind::InputResolved(pb::InputResolved {
            input_request: join(&["sessions/", session, "/inputRequests/", input_request_id]),
            answer: answer.clone().unwrap_or_default(),
        }),
        EventKind::MessageCompleted { message } => Kind::MessageCompleted(pb::MessageCompleted {
            message: Some(convert::message_pb(message)),
        }),
        EventKind::TurnFinished { turn } => Kind::TurnFinished(pb::TurnFinished {
            turn: Some(convert::turn_pb(turn)),
        }),
        EventKind::SessionUpdated { session } => Kind::SessionUpdated(pb::SessionUpdated {
            session: Some(convert::session_pb(session)),
        }),
        EventKind::SessionDeleted => Kind::SessionDeleted(pb::SessionDeleted {
            session: format!("sessions/{session}"),
        }),
        EventKind::ContextCompacted { summary } => {
            Kind::ContextCompacted(convert::context_compacted_pb(summary))
        }
        EventKind::Error { reason, message } => Kind::Error(pb::ErrorEvent {
            reason: reason.clone(),
            message: message.clone(),
            retry_delay: None,
        }),
        EventKind::StreamReset {
            reason,
            oldest_retained,
        } => Kind::StreamReset(pb::StreamReset {
            reason: reason.clone(),
            oldest_retained_sequence: *oldest_retained,
        }),
        EventKind::FileChanged {
            tool_call_id,
            change,
        } => Kind::FileChanged(super::files::file_changed_pb(tool_call_id, change)),
        EventKind::Relayed(_) => unreachable!("returned above"),
    };
    pb::SessionEvent {
        sequence: event.sequence,
        session: join(&["sessions/", session]),
        turn: event
            .turn_id
            .as_deref()
            .map(|t| join(&["sessions/", session, "/turns/", t]))
            .unwrap_or_default(),
        time: convert::timestamp(event.time),
        kind: Some(kind),
    }
}

/// Streams a feed as `to_wire` makes each event, optionally only one turn's events until
/// its end (`Chat`).
fn event_stream<T: Send + 'static>(
    feed: EventFeed,
    only_turn: Option<String>,
    shutdown: CancellationToken,
    to_wire: fn(&Event) -> T,
) -> WireStream<T> {
    let stream = futures::stream::unfold(
        (feed, only_turn, false),
        move |(mut feed, only_turn, done)| async move {
            if done {
                return None;
            }
            loop {
                let event = feed.next().await?;
                if let Some(turn) = &only_turn
                    && event.turn_id.as_deref() != Some(turn.as_str())
                {
                    continue;
                }
                let finished = only_turn.is_some() && event.kind.is_turn_terminal();
                return Some((Ok(to_wire(&event)), (feed, only_turn, finished)));
            }
        },
    );
    Box::pin(futures::StreamExt::take_until(
        stream,
        shutdown.cancelled_owned(),
    ))
}

/// An event stream, each event as `T`.
pub type WireStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

impl ChatApi {
    /// `Chat`: sends the message and streams its turn's events until the turn ends.
    pub async fn chat_events<T: Send + 'static>(
        &self,
        req: pb::ChatRequest,
        to_wire: fn(&Event) -> T,
    ) -> Result<Response<WireStream<T>>, Status> {
        let send = send_request(&req.session, &req.parts, req.on_busy, &req.model)?;
        // Subscribe first, so none of the turn's events can be missed.
        let feed = self
            .chat
            .subscribe_from(&send.session_id, 0, self.caller)
            .await?;
        let (_, turn) = self.chat.send_from(send, self.caller).await?;
        Ok(Response::new(event_stream(
            feed,
            Some(turn.id),
            self.shutdown.clone(),
            to_wire,
        )))
    }

    /// `StreamEvents`: the session's events from `after_sequence` on.
    pub async fn session_events<T: Send + 'static>(
        &self,
        req: pb::StreamEventsRequest,
        to_wire: fn(&Event) -> T,
    ) -> Result<Response<WireStream<T>>, Status> {
        let session_id = parse_name(&req.session, "sessions", "session")?;
        let feed = self
            .chat
            .subscribe_from(session_id, req.after_sequence, self.caller)
            .await?;
        Ok(Response::new(event_stream(
            feed,
            None,
            self.shutdown.clone(),
            to_wire,
        )))
    }
}

#[tonic::async_trait]
impl ChatService for ChatApi {
    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Result<Response<pb::SendMessageResponse>, Status> {
        let req = request.into_inner();
        let send = send_request(&req.session, &req.parts, req.on_busy, &req.model)?;
        let (message, turn) = self.chat.send_from(send, self.caller).await?;
        Ok(Response::new(pb::SendMessageResponse {
            message: Some(convert::message_pb(&message)),
            turn: Some(convert::turn_pb(&turn)),
        }))
    }

    async fn send_message_and_wait(
        &self,
        request: Request<pb::SendMessageAndWaitRequest>,
    ) -> Result<Response<pb::SendMessageAndWaitResponse>, Status> {
        let req = request.into_inner();
        let send = send_request(&req.session, &req.parts, req.on_busy, &req.model)?;
        let timeout = match convert::from_duration(&req.timeout) {
            None | Some(0) => None,
            Some(micros) if micros < 0 => {
                return Err(Error::invalid("timeout", "must not be negative").into());
            }
            Some(micros) => Some(std::time::Duration::from_micros(micros as u64)),
        };
        let answered = self.chat.send_and_wait(send, self.caller, timeout).await?;
        Ok(Response::new(pb::SendMessageAndWaitResponse {
            message: Some(convert::message_pb(&answered.message)),
            turn: Some(convert::turn_pb(&answered.turn)),
            replies: answered.replies.iter().map(convert::message_pb).collect(),
        }))
    }

    // Served by `wire::ChatRoutes`, which sends each event encoded once for all
    // subscribers; these give the same events as messages, for callers of the trait.
    type ChatStream = WireStream<pb::SessionEvent>;

    async fn chat(
        &self,
        request: Request<pb::ChatRequest>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        self.chat_events(request.into_inner(), event_pb).await
    }

    type StreamEventsStream = WireStream<pb::SessionEvent>;

    async fn stream_events(
        &self,
        request: Request<pb::StreamEventsRequest>,
    ) -> Result<Response<Self::StreamEventsStream>, Status> {
        self.session_events(request.into_inner(), event_pb).await
    }

    async fn list_messages(
        &self,
        request: Request<pb::ListMessagesRequest>,
    ) -> Result<Response<pb::ListMessagesResponse>, Status> {
        let req = request.into_inner();
        let session_id = parse_name(&req.parent, "sessions", "parent")?;
        let bound = |name: &str, field: &str| -> Result<Option<String>> {
            if name.is_empty() {
                return Ok(None);
            }
            let (session, message) = parse_child_name(name, "messages", field)?;
            if session != session_id {
                return Err(Error::invalid(
                    field,
                    format!("must be a message of {}", req.parent),
                ));
            }
            Ok(Some(message.to_owned()))
        };
        let before = bound(&req.before, "before")?;
        let after = bound(&req.after, "after")?;
        let (messages, next_page_token) = self
            .chat
            .list_messages(
                session_id,
                before.as_deref(),
                after.as_deref(),
                &req.page_token,
                req.page_size,
            )
            .await?;
        Ok(Response::new(pb::ListMessagesResponse {
            messages: messages.iter().map(convert::message_pb).collect(),
            next_page_token,
        }))
    }

    async fn get_message(
        &self,
        request: Request<pb::GetMessageRequest>,
    ) -> Result<Response<pb::Message>, Status> {
        let req = request.into_inner();
        let (session, message) = parse_child_name(&req.name, "messages", "name")?;
        Ok(Response::new(convert::message_pb(
            &self.chat.get_message(session, message).await?,
        )))
    }

    async fn get_turn(
        &self,
        request: Request<pb::GetTurnRequest>,
    ) -> Result<Response<pb::Turn>, Status> {
        let req = request.into_inner();
        let (session, turn) = parse_child_name(&req.name, "turns", "name")?;
        Ok(Response::new(convert::turn_pb(
            &self.chat.get_turn(session, turn).await?,
        )))
    }

    async fn list_turns(
        &self,
        request: Request<pb::ListTurnsRequest>,
    ) -> Result<Response<pb::ListTurnsResponse>, Status> {
        let req = request.into_inner();
        let session_id = parse_name(&req.parent, "sessions", "parent")?;
        let (turns, next_page_token) = self
            .chat
            .list_turns(session_id, &req.page_token, req.page_size)
            .await?;
        Ok(Response::new(pb::ListTurnsResponse {
            turns: turns.iter().map(convert::turn_pb).collect(),
            next_page_token,
        }))
    }

    async fn cancel_turn(
        &self,
        request: Request<pb::CancelTurnRequest>,
    ) -> Result<Response<pb::Turn>, Status> {
        let req = request.into_inner();
        let (session, turn) = parse_child_name(&req.name, "turns", "name")?;
        Ok(Response::new(convert::turn_pb(
            &self
                .chat
                .cancel_turn_from(session, turn, self.caller)
                .await?,
        )))
    }

    async fn clear_queue(
        &self,
        request: Request<pb::ClearQueueRequest>,
    ) -> Result<Response<pb::ClearQueueResponse>, Status> {
        let req = request.into_inner();
        let session_id = parse_name(&req.session, "sessions", "session")?;
        let cancelled = self.chat.clear_queue_from(session_id, self.caller).await?;
        Ok(Response::new(pb::ClearQueueResponse {
            cancelled_turns: cancelled.iter().map(convert::turn_pb).collect(),
        }))
    }

    async fn compact_session(
        &self,
        request: Request<pb::CompactSessionRequest>,
    ) -> Result<Response<pb::CompactSessionResponse>, Status> {
        let req = request.into_inner();
        let session_id = parse_name(&req.session, "sessions", "session")?;
        let (compacted, summary) = self.chat.compact_session(session_id, self.caller).await?;
        Ok(Response::new(pb::CompactSessionResponse {
            compacted,
            summary: summary.as_ref().map(convert::context_compacted_pb),
        }))
    }

    async fn respond_to_confirmation(
        &self,
        request: Request<pb::RespondToConfirmationRequest>,
    ) -> Result<Response<pb::RespondToConfirmationResponse>, Status> {
        let req = request.into_inner();
        let (session, confirmation) = parse_child_name(&req.name, "confirmations", "name")?;
        let answered = self
            .chat
            .respond_from(session, confirmation, decision(req.decision)?, self.caller)
            .await?;
        Ok(Response::new(pb::RespondToConfirmationResponse {
            confirmation: Some(confirmation_pb(&answered)),
        }))
    }

    async fn respond_to_input(
        &self,
        request: Request<pb::RespondToInputRequest>,
    ) -> Result<Response<pb::RespondToInputResponse>, Status> {
        let req = request.into_inner();
        let name = parse_child_name(&req.name, "inputRequests", "name");
        let mut violations = match &name {
            Err(Error::InvalidArgument(violations)) => violations.clone(),
            _ => Vec::new(),
        };
        if req.answer.trim().is_empty() {
            violations.push(FieldViolation::new("answer", "must not be empty"));
        }
        if !violations.is_empty() {
            return Err(Error::InvalidArgument(violations).into());
        }
        let (session, input_request) = name?;
        let answered = self
            .chat
            .respond_to_input_from(session, input_request, &req.answer, self.caller)
            .await?;
        Ok(Response::new(pb::RespondToInputResponse {
            input_request: Some(input_request_pb(&answered)),
        }))
    }
}
