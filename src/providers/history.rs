//! Helpers both HTTP adapters use to turn the domain history into a request.

use crate::domain::{Message, Part, Role};

/// The text the model sees for a tool call that never got a result (a crash or a cancel
/// between the call and its result). Both APIs reject a tool call without a result.
pub(crate) const MISSING_RESULT: &str = "The tool call was not executed (no result was recorded).";

/// Tracks tool calls that still wait for their results, so a result can be made up for
/// each call the history never answered.
#[derive(Default)]
pub(crate) struct PendingCalls {
    ids: Vec<String>,
}

impl PendingCalls {
    /// Called for every message in order. Returns the ids of calls that will never get a
    /// result: their results must be sent before `message`.
    pub(crate) fn before(&mut self, message: &Message) -> Vec<String> {
        for part in &message.parts {
            if let Part::ToolResult { tool_call_id, .. } = part {
                self.ids.retain(|id| id != tool_call_id);
            }
        }
        if message.role == Role::Tool {
            return Vec::new();
        }
        std::mem::take(&mut self.ids)
    }

    /// Called after an assistant message has been mapped.
    pub(crate) fn called(&mut self, message: &Message) {
        for part in &message.parts {
            if let Part::ToolCall { id, .. } = part {
                self.ids.push(id.clone());
            }
        }
    }

    /// The calls still unanswered at the end of the history.
    pub(crate) fn finish(&mut self) -> Vec<String> {
        std::mem::take(&mut self.ids)
    }
}

/// How an attachment can be shown to a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AttachmentKind {
    Image,
    Pdf,
    /// Text-like content, inlined as text.
    Text,
    Other,
}

pub(crate) fn attachment_kind(mime_type: &str) -> AttachmentKind {
    let mime = mime_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if mime.starts_with("image/") {
        AttachmentKind::Image
    } else if mime == "application/pdf" {
        AttachmentKind::Pdf
    } else if mime.starts_with("text/")
        || matches!(
            mime.as_str(),
            "application/json" | "application/xml" | "application/yaml" | "application/toml"
        )
    {
        AttachmentKind::Text
    } else {
        AttachmentKind::Other
    }
}

/// An attachment's text for the model when it cannot be sent natively.
pub(crate) fn attachment_as_text(
    mime_type: &str,
    filename: &str,
    data: Option<&[u8]>,
    uri: Option<&str>,
) -> String {
    let name = if filename.is_empty() {
        "attachment"
    } else {
        filename
    };
    match (data, uri) {
        (Some(bytes), _) if attachment_kind(mime_type) == AttachmentKind::Text => {
            format!("[{name} ({mime_type})]\n{}", String::from_utf8_lossy(bytes))
        }
        (_, Some(uri)) => format!("[{name} ({mime_type}): {uri}]"),
        (Some(bytes), None) => format!(
            "[{name} ({mime_type}, {} bytes) cannot be shown to this model]",
            bytes.len()
        ),
        (None, None) => format!("[{name} ({mime_type})]"),
    }
}

/// The JSON schema of a tool's arguments; an object schema when the tool has none.
pub(crate) fn parameters_schema(parameters: &serde_json::Value) -> serde_json::Value {
    if parameters.is_object() {
        parameters.clone()
    } else {
        serde_json::json!({"type": "object", "properties": {}})
    }
}

/// Up to `max` characters of `text`, for error messages.
pub(crate) fn snippet(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}
