//! Session events: what happened in a session, numbered per session. The runtime emits
//! them; the API layer converts them for the wire.

use std::sync::Arc;

use crate::domain::{
    Message, Role, Session, Timestamp, ToolCallRecord, Turn, tool::ToolCallRequest,
};
use crate::tools::OutputStream;

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

/// The live state of a session, sent first on every event stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub session: Session,
    pub active_turn: Option<Turn>,
    pub queued_turns: Vec<Turn>,
    pub pending_confirmations: Vec<Confirmation>,
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
    Error {
        reason: String,
        message: String,
    },
    StreamReset {
        reason: String,
        oldest_retained: i64,
    },
}

impl EventKind {
    /// Whether this event ends the turn it belongs to.
    pub fn is_turn_terminal(&self) -> bool {
        matches!(self, EventKind::TurnFinished { .. })
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
}
