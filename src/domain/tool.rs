//! What the model is told about a tool, shared by providers (which send it) and tools
//! (which describe themselves).

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// e.g. `shell`, `read_file`.
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// A tool call the model asked for, arguments complete.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolCallRequest {
    pub id: String,
    pub tool: String,
    pub arguments_json: String,
}
