//! Messages (a session's history) and turns (the agent work a user message triggers).

use serde::{Deserialize, Serialize};

use super::{Timestamp, Usage};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
    Tool,
    System,
}

/// One block of message content. Serialised as JSON for storage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Part {
    Text {
        text: String,
    },
    Reasoning {
        text: String,
    },
    Attachment {
        mime_type: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        filename: String,
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "base64_bytes"
        )]
        data: Option<Vec<u8>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        uri: Option<String>,
    },
    ToolCall {
        id: String,
        tool: String,
        arguments_json: String,
    },
    ToolResult {
        tool_call_id: String,
        output: String,
        is_error: bool,
    },
}

impl Part {
    /// The text shown in previews and searched, if the part has any.
    pub fn text(&self) -> Option<&str> {
        match self {
            Part::Text { text } => Some(text),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub id: String,
    pub session_id: String,
    pub turn_id: Option<String>,
    pub role: Role,
    pub parts: Vec<Part>,
    pub create_time: Timestamp,
    pub incomplete: bool,
    pub model: Option<String>,
    /// Place in the conversation the model sees; `None` while the message waits (its
    /// turn is queued, or it was steered into a turn and not yet read).
    pub position: Option<i64>,
}

impl Message {
    /// All text parts joined, for previews.
    pub fn text(&self) -> String {
        self.parts
            .iter()
            .filter_map(Part::text)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Interrupted,
}

impl TurnStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TurnStatus::Succeeded
                | TurnStatus::Failed
                | TurnStatus::Cancelled
                | TurnStatus::Interrupted
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnError {
    pub reason: String,
    pub message: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolCallStatus {
    AwaitingConfirmation,
    Running,
    Succeeded,
    Failed,
    Denied,
    Cancelled,
}

/// A tool call with its execution record. Serialised as JSON inside the turn record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolCallRecord {
    pub id: String,
    pub tool: String,
    pub arguments_json: String,
    pub status: ToolCallStatus,
    #[serde(default)]
    pub output: String,
    #[serde(default)]
    pub is_error: bool,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub start_time: Option<Timestamp>,
    #[serde(default)]
    pub end_time: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Turn {
    pub id: String,
    pub session_id: String,
    pub status: TurnStatus,
    pub user_message_id: Option<String>,
    pub model: Option<String>,
    pub usage: Usage,
    pub latency_micros: Option<i64>,
    pub time_to_first_token_micros: Option<i64>,
    pub error: Option<TurnError>,
    pub create_time: Timestamp,
    pub start_time: Option<Timestamp>,
    pub end_time: Option<Timestamp>,
    pub step_count: i32,
    pub tool_calls: Vec<ToolCallRecord>,
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(self.0)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        i64::deserialize(d).map(Timestamp)
    }
}

mod base64_bytes {
    use base64::{Engine, engine::general_purpose::STANDARD};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match data {
            Some(bytes) => s.serialize_str(&STANDARD.encode(bytes)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| STANDARD.decode(t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_through_json_with_binary_data() {
        let parts = vec![
            Part::Text { text: "hi".into() },
            Part::Attachment {
                mime_type: "image/png".into(),
                filename: String::new(),
                data: Some(vec![0, 159, 255]),
                uri: None,
            },
            Part::ToolCall {
                id: "c1".into(),
                tool: "shell".into(),
                arguments_json: "{\"command\":\"ls\"}".into(),
            },
        ];
        let json = serde_json::to_string(&parts).expect("serialise");
        let back: Vec<Part> = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, parts);
    }
}
