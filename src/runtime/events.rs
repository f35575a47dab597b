//! Session events: what happened in a session, numbered per session. The runtime emits
//! them; the API layer converts them for the wire.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;

use crate::domain::{
    Message, Part, Role, Session, Timestamp, ToolCallRecord, Turn, file::FileChange,
    summary::Summary, tool::ToolCallRequest,
};
use crate::tools::{OutputStream, ask_user::Question};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentKind {
    Text,
    Reasoning,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
    AllowAlways,
}

/// A tool call waiting for a person.
#[derive(Clone, Debug, PartialEq)]
pub struct Confirmation {
    pub id: String,
    pub session_id: String,
    pub turn_id: String,
    pub call: ToolCallRequest,
    pub reason: String,
    pub create_time: Timestamp,
}

/// A question of the model (the `ask_user` tool) waiting for the user's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct InputRequest {
    pub id: String,
    pub session_id: String,
    pub turn_id: String,
    /// The `ask_user` call it answers.
    pub tool_call_id: String,
    pub question: Question,
    pub create_time: Timestamp,
}

/// The live state of a session, sent first on every event stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub session: Session,
    pub active_turn: Option<Turn>,
    pub queued_turns: Vec<Turn>,
    pub pending_confirmations: Vec<Confirmation>,
    pub pending_input_requests: Vec<InputRequest>,
    /// The assistant message being streamed, with what has arrived so far.
    pub partial_message: Option<Message>,
    pub last_sequence: i64,
}

/// Large payloads are boxed so every event (most are small text deltas) stays small in
/// the retained log and the broadcast buffer.
#[derive(Clone, Debug, PartialEq)]
pub enum EventKind {
    Snapshot(Box<Snapshot>),
    TurnQueued {
        turn: Box<Turn>,
        position: i32,
    },
    TurnStarted {
        turn: Box<Turn>,
    },
    MessageStarted {
        message_id: Arc<str>,
        role: Role,
    },
    ContentStarted {
        message_id: Arc<str>,
        index: i32,
        kind: ContentKind,
    },
    TextDelta {
        message_id: Arc<str>,
        index: i32,
        text: String,
    },
    ReasoningDelta {
        message_id: Arc<str>,
        index: i32,
        text: String,
    },
    ContentFinished {
        message_id: Arc<str>,
        index: i32,
    },
    ToolCallStarted {
        call: Box<ToolCallRequest>,
    },
    ToolCallOutput {
        tool_call_id: String,
        stream: OutputStream,
        text: String,
    },
    ToolCallFinished {
        record: Box<ToolCallRecord>,
        duration_micros: i64,
    },
    ConfirmationRequested {
        confirmation: Box<Confirmation>,
    },
    /// `None` when a cancel withdrew the request.
    ConfirmationResolved {
        confirmation_id: String,
        decision: Option<Decision>,
    },
    InputRequested {
        request: Box<InputRequest>,
    },
    /// The answer the model got; `None` when a cancel withdrew the question.
    InputResolved {
        input_request_id: String,
        answer: Option<String>,
    },
    MessageCompleted {
        message: Box<Message>,
    },
    TurnFinished {
        turn: Box<Turn>,
    },
    SessionUpdated {
        session: Box<Session>,
    },
    SessionDeleted,
    /// The oldest part of the conversation was summarised (compaction).
    ContextCompacted {
        summary: Box<Summary>,
    },
    Error {
        reason: String,
        message: String,
    },
    StreamReset {
        reason: String,
        oldest_retained: i64,
    },
    /// A built-in file tool created or changed a file (after the call's output, before
    /// its ToolCallFinished).
    FileChanged {
        tool_call_id: String,
        change: Box<FileChange>,
    },
    /// An event of a session owned by another server, relayed as the owner encoded it
    /// (the bytes are in `Event::wire`): only what this server needs to know of it.
    Relayed(RelayedKind),
}

/// What a relayed event is, as far as the relaying server cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayedKind {
    Snapshot,
    TurnFinished,
    SessionDeleted,
    StreamReset,
    Other,
}

impl EventKind {
    /// Whether this event ends the turn it belongs to.
    pub fn is_turn_terminal(&self) -> bool {
        matches!(
            self,
            EventKind::TurnFinished { .. } | EventKind::Relayed(RelayedKind::TurnFinished)
        )
    }

    /// Whether this event ends the session's stream.
    pub fn is_session_deleted(&self) -> bool {
        matches!(
            self,
            EventKind::SessionDeleted | EventKind::Relayed(RelayedKind::SessionDeleted)
        )
    }

    pub(crate) fn is_snapshot(&self) -> bool {
        matches!(
            self,
            EventKind::Snapshot(_) | EventKind::Relayed(RelayedKind::Snapshot)
        )
    }

    pub(crate) fn is_reset(&self) -> bool {
        matches!(
            self,
            EventKind::StreamReset { .. } | EventKind::Relayed(RelayedKind::StreamReset)
        )
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Per session, strictly increasing; 0 for snapshots and resets (not logged).
    pub sequence: i64,
    pub session_id: Arc<str>,
    /// Shared by the events of one turn (one allocation per turn, not per event).
    pub turn_id: Option<Arc<str>>,
    pub time: Timestamp,
    pub kind: EventKind,
    /// The event as the API sends it, encoded by the first subscriber and reused by the
    /// others. Not part of the event's value.
    pub wire: WireCache,
}

impl Event {
    /// About how many heap bytes this event keeps while it is retained: the event with
    /// its `Arc` counts, the text it carries, a boxed payload's fixed size plus its
    /// strings, and cached wire bytes. An estimate for the retained log's byte budget:
    /// allocator rounding and the ids shared with other events are not counted (a text
    /// delta of six characters counts 134 bytes and costs ~184 in RSS with glibc).
    pub fn retained_bytes(&self) -> usize {
        use std::mem::size_of;
        let payload = match &self.kind {
            EventKind::TextDelta { text, .. } | EventKind::ReasoningDelta { text, .. } => {
                text.capacity()
            }
            EventKind::ToolCallOutput {
                tool_call_id, text, ..
            } => tool_call_id.capacity() + text.capacity(),
            EventKind::Error { reason, message } => reason.capacity() + message.capacity(),
            EventKind::StreamReset { reason, .. } => reason.capacity(),
            EventKind::ConfirmationResolved {
                confirmation_id, ..
            } => confirmation_id.capacity(),
            EventKind::InputResolved {
                input_request_id,
                answer,
            } => input_request_id.capacity() + answer.as_ref().map_or(0, String::capacity),
            EventKind::InputRequested { request } => {
                size_of::<InputRequest>() + input_request_bytes(request)
            }
            EventKind::MessageStarted { .. }
            | EventKind::ContentStarted { .. }
            | EventKind::ContentFinished { .. }
            | EventKind::SessionDeleted
            | EventKind::Relayed(_) => 0,
            EventKind::TurnQueued { turn, .. }
            | EventKind::TurnStarted { turn }
            | EventKind::TurnFinished { turn } => turn_bytes(turn),
            EventKind::MessageCompleted { message } => message_bytes(message),
            EventKind::ToolCallStarted { call } => size_of::<ToolCallRequest>() + call_bytes(call),
            EventKind::ToolCallFinished { record, .. } => {
                size_of::<ToolCallRecord>() + record_bytes(record)
            }
            EventKind::ConfirmationRequested { confirmation } => {
                size_of::<Confirmation>()
                    + confirmation.id.len()
                    + confirmation.session_id.len()
                    + confirmation.turn_id.len()
                    + confirmation.reason.len()
                    + call_bytes(&confirmation.call)
            }
            EventKind::SessionUpdated { session } => session_bytes(session),
            EventKind::ContextCompacted { summary } => {
                size_of::<Summary>()
                    + summary.session_id.len()
                    + summary.text.len()
                    + summary.model.len()
            }
            EventKind::FileChanged {
                tool_call_id,
                change,
            } => {
                tool_call_id.capacity()
                    + size_of::<FileChange>()
                    + change.path.capacity()
                    + change.diff.capacity()
            }
            EventKind::Snapshot(snapshot) => {
                size_of::<Snapshot>()
                    + session_bytes(&snapshot.session)
                    + snapshot.active_turn.as_ref().map_or(0, turn_bytes)
                    + snapshot.queued_turns.iter().map(turn_bytes).sum::<usize>()
                    + snapshot.partial_message.as_ref().map_or(0, message_bytes)
                    + snapshot
                        .pending_input_requests
                        .iter()
                        .map(|r| size_of::<InputRequest>() + input_request_bytes(r))
                        .sum::<usize>()
            }
        };
        size_of::<Event>() + 2 * size_of::<usize>() + payload + self.wire.retained_len()
    }
}

fn input_request_bytes(request: &InputRequest) -> usize {
    request.id.len()
        + request.session_id.len()
        + request.turn_id.len()
        + request.tool_call_id.len()
        + request.question.question.len()
        + request
            .question
            .choices
            .iter()
            .map(|c| c.len() + std::mem::size_of::<String>())
            .sum::<usize>()
}

fn call_bytes(call: &ToolCallRequest) -> usize {
    call.id.len() + call.tool.len() + call.arguments_json.len()
}

fn record_bytes(record: &ToolCallRecord) -> usize {
    record.id.len() + record.tool.len() + record.arguments_json.len() + record.output.len()
}

fn turn_bytes(turn: &Turn) -> usize {
    std::mem::size_of::<Turn>()
        + turn.id.len()
        + turn.session_id.len()
        + turn.user_message_id.as_ref().map_or(0, String::len)
        + turn.model.as_ref().map_or(0, String::len)
        + turn
            .tool_calls
            .iter()
            .map(|r| std::mem::size_of::<ToolCallRecord>() + record_bytes(r))
            .sum::<usize>()
}

fn message_bytes(message: &Message) -> usize {
    let parts: usize = message
        .parts
        .iter()
        .map(|part| {
            std::mem::size_of::<Part>()
                + match part {
                    Part::Text { text } | Part::Reasoning { text } => text.len(),
                    Part::Attachment {
                        mime_type,
                        filename,
                        data,
                        uri,
                    } => {
                        mime_type.len()
                            + filename.len()
                            + data.as_ref().map_or(0, Vec::len)
                            + uri.as_ref().map_or(0, String::len)
                    }
                    Part::ToolCall {
                        id,
                        tool,
                        arguments_json,
                    } => id.len() + tool.len() + arguments_json.len(),
                    Part::ToolResult {
                        tool_call_id,
                        output,
                        ..
                    } => tool_call_id.len() + output.len(),
                }
        })
        .sum();
    std::mem::size_of::<Message>()
        + message.id.len()
        + message.session_id.len()
        + message.turn_id.as_ref().map_or(0, String::len)
        + message.model.as_ref().map_or(0, String::len)
        + parts
}

fn session_bytes(session: &Session) -> usize {
    std::mem::size_of::<Session>()
        + session.id.len()
        + session.display_name.len()
        + session.working_dir.len()
        + session.system_prompt.len()
        + session.last_message_preview.len()
        + session
            .labels
            .iter()
            .map(|(k, v)| k.len() + v.len() + 3 * std::mem::size_of::<usize>())
            .sum::<usize>()
}

/// Bytes an event encodes to, shared by all its subscribers, so a session with N
/// subscribers pays for one conversion and encoding per event, not N. The runtime only
/// decides whether caching is worth it: with fewer than two subscribers when the event
/// was emitted there is nothing to share, and the bytes would only grow the retained
/// log, so nothing is kept. What the bytes are is the API layer's business.
#[derive(Clone, Default)]
pub struct WireCache(
    /// Only allocated when shared: one pointer in every retained event.
    Option<Box<OnceLock<Bytes>>>,
);

impl WireCache {
    /// A cache that keeps the bytes when `subscribers` can share them.
    pub fn for_subscribers(subscribers: usize) -> Self {
        WireCache((subscribers > 1).then(Box::default))
    }

    /// A cache holding `bytes` already (an event relayed from another server).
    pub fn filled(bytes: Bytes) -> Self {
        WireCache(Some(Box::new(OnceLock::from(bytes))))
    }

    /// The bytes, when cached.
    pub fn get(&self) -> Option<&Bytes> {
        self.0.as_ref().and_then(|b| b.get())
    }

    /// The cached bytes, or `encode()`'s (kept if shared).
    pub fn get_or_encode(&self, encode: impl FnOnce() -> Bytes) -> Bytes {
        match &self.0 {
            Some(bytes) => bytes.get_or_init(encode).clone(),
            None => encode(),
        }
    }

    fn cached_len(&self) -> Option<usize> {
        self.0.as_ref().and_then(|b| b.get()).map(Bytes::len)
    }

    /// Heap bytes the cache holds (its box and the bytes), for the log's budget.
    fn retained_len(&self) -> usize {
        self.0.as_ref().map_or(0, |_| {
            std::mem::size_of::<OnceLock<Bytes>>() + self.cached_len().unwrap_or(0)
        })
    }
}

impl PartialEq for WireCache {
    /// A cache, not a value: equal events are equal whatever they have cached.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for WireCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireCache")
            .field("shared", &self.0.is_some())
            .field("cached_bytes", &self.cached_len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[test]
    fn a_shared_cache_encodes_once_for_every_subscriber() {
        let cache = WireCache::for_subscribers(3);
        let encodings = Cell::new(0);
        let encode = || {
            encodings.set(encodings.get() + 1);
            Bytes::from_static(b"event")
        };
        for _ in 0..3 {
            assert_eq!(cache.get_or_encode(encode), Bytes::from_static(b"event"));
        }
        assert_eq!(encodings.get(), 1);
    }

    fn delta(text: &str, wire: WireCache) -> Event {
        Event {
            sequence: 7,
            session_id: Arc::from("s"),
            turn_id: Some(Arc::from("t")),
            time: Timestamp(0),
            kind: EventKind::TextDelta {
                message_id: Arc::from("m"),
                index: 0,
                text: text.to_owned(),
            },
            wire,
        }
    }

    #[test]
    fn retained_bytes_count_the_event_its_text_and_cached_bytes() {
        let plain = delta("tok12 ", WireCache::default());
        let base = std::mem::size_of::<Event>() + 2 * std::mem::size_of::<usize>();
        assert_eq!(plain.retained_bytes(), base + "tok12 ".len());
        let long = delta(&"x".repeat(1000), WireCache::default());
        assert_eq!(long.retained_bytes(), base + 1000);
        let shared = delta("tok12 ", WireCache::filled(Bytes::from(vec![0u8; 300])));
        assert!(shared.retained_bytes() >= plain.retained_bytes() + 300);
        println!("a text delta counts {} bytes", plain.retained_bytes());
    }

    #[test]
    fn a_single_subscriber_keeps_nothing() {
        for subscribers in [0, 1] {
            let cache = WireCache::for_subscribers(subscribers);
            let encodings = Cell::new(0);
            for _ in 0..2 {
                cache.get_or_encode(|| {
                    encodings.set(encodings.get() + 1);
                    Bytes::from_static(b"event")
                });
            }
            assert_eq!(encodings.get(), 2);
            assert_eq!(cache.cached_len(), None, "nothing retained");
        }
    }
}
