//! Turns an MCP `tools/call` result into what the model is fed back: text stays text;
//! images, audio and binary resources are summarised in one line each (their bytes would
//! only burn the context window); embedded text resources are quoted with their URI;
//! `structuredContent` is the JSON text when the server sent no content blocks.
//!
//! Works on the result's JSON (the protocol's own shape) rather than the SDK's
//! non-exhaustive enums, so a content type added by a later protocol version degrades to
//! a one-line note instead of failing the call.

use serde_json::Value;

use crate::tools::{ToolOutcome, output};

/// The outcome for a `CallToolResult` given as JSON.
pub(crate) fn outcome(result: &Value, max_output_bytes: usize) -> ToolOutcome {
    let mut lines: Vec<String> = Vec::new();
    for block in result["content"].as_array().into_iter().flatten() {
        lines.push(describe_block(block));
    }
    if lines.is_empty()
        && let Some(structured) = result.get("structuredContent")
    {
        lines.push(structured.to_string());
    }
    let text = output::bound(&lines.join("\n"), max_output_bytes);
    if result["isError"].as_bool().unwrap_or(false) {
        ToolOutcome::error(text)
    } else {
        ToolOutcome::ok(text)
    }
}

fn describe_block(block: &Value) -> String {
    let mime = |value: &Value| {
        value["mimeType"]
            .as_str()
            .unwrap_or("unknown type")
            .to_owned()
    };
    match block["type"].as_str().unwrap_or_default() {
        "text" => block["text"].as_str().unwrap_or_default().to_owned(),
        kind @ ("image" | "audio") => format!(
            "[{kind}: {}, {} bytes]",
            mime(block),
            base64_len(block["data"].as_str().unwrap_or_default())
        ),
        "resource" => {
            let resource = &block["resource"];
            let uri = resource["uri"].as_str().unwrap_or_default();
            match (resource["text"].as_str(), resource["blob"].as_str()) {
                (Some(text), _) => format!("[resource {uri}]\n{text}"),
                (None, Some(blob)) => format!(
                    "[resource {uri}: {}, {} bytes]",
                    mime(resource),
                    base64_len(blob)
                ),
                (None, None) => format!("[resource {uri}]"),
            }
        }
        "resource_link" => {
            let uri = block["uri"].as_str().unwrap_or_default();
            match block["name"].as_str() {
                Some(name) if !name.is_empty() => format!("[resource link {uri}: {name}]"),
                _ => format!("[resource link {uri}]"),
            }
        }
        other => format!("[{other} content]"),
    }
}

/// Decoded size of base64 text, without decoding it.
fn base64_len(data: &str) -> usize {
    let data = data.trim_end_matches('=');
    data.len() * 3 / 4
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn text_stays_and_binary_is_summarised() {
        let result = json!({"content": [
            {"type": "text", "text": "hello"},
            {"type": "image", "mimeType": "image/png", "data": "aGVsbG8="},
            {"type": "resource", "resource": {"uri": "file:///a.txt", "text": "inside"}},
            {"type": "resource", "resource": {"uri": "file:///b.gz", "mimeType": "application/gzip", "blob": "AAAA"}},
            {"type": "resource_link", "uri": "test://x", "name": "X"},
            {"type": "hologram"}
        ]});
        assert_eq!(
            outcome(&result, 4096),
            ToolOutcome::ok(
                "hello\n[image: image/png, 5 bytes]\n[resource file:///a.txt]\ninside\n\
                 [resource file:///b.gz: application/gzip, 3 bytes]\n\
                 [resource link test://x: X]\n[hologram content]"
            )
        );
    }

    #[test]
    fn errors_structured_content_and_the_bound() {
        let failed =
            json!({"content": [{"type": "text", "text": "no such file"}], "isError": true});
        assert_eq!(outcome(&failed, 4096), ToolOutcome::error("no such file"));
        let structured = json!({"content": [], "structuredContent": {"sum": 3}});
        assert_eq!(outcome(&structured, 4096), ToolOutcome::ok(r#"{"sum":3}"#));
        let big = json!({"content": [{"type": "text", "text": "x".repeat(100_000)}]});
        let bounded = outcome(&big, 1000);
        assert!(bounded.output.len() <= 1000);
        assert!(bounded.output.contains("bytes omitted"));
    }
}
