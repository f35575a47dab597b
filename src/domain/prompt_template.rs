//! Prompt templates of inbound triggers: text with `{{ ... }}` tags that quote fields of
//! the incoming JSON payload. A tiny, safe substitution: no expressions, no code, no
//! loops; a tag is a path, nothing else.
//!
//! - `{{payload}}` is the whole payload as compact JSON; `{{payload.issue.title}}` a
//!   field; `{{payload.commits.0.message}}` an array element (by index); `{{event}}` the
//!   event's name (GitHub's `X-GitHub-Event`, else the payload's `type` field). Spaces
//!   inside the braces are allowed.
//! - A string renders as itself, a number or a boolean as JSON, an object or an array as
//!   compact JSON; a missing field or `null` renders **empty** (payloads of one hook often
//!   differ by event, and a prompt with a gap is more useful than a dropped delivery).
//! - Every `{{` opens a tag, and every tag must be one of the above: anything else is
//!   refused when the trigger is saved, not when a delivery comes.
//! - The rendered prompt is bounded: each value at [`MAX_VALUE_BYTES`], the whole at
//!   [`MAX_RENDERED_BYTES`], cut at a character boundary with a marker saying so.

use serde_json::Value;

/// Longest template.
pub const MAX_TEMPLATE_BYTES: usize = 16 * 1024;
/// Longest value one tag inserts.
pub const MAX_VALUE_BYTES: usize = 16 * 1024;
/// Longest rendered prompt.
pub const MAX_RENDERED_BYTES: usize = 64 * 1024;
/// Most tags in one template.
pub const MAX_TAGS: usize = 64;
/// Most path segments in one tag.
const MAX_DEPTH: usize = 16;
/// What a cut value or prompt ends with.
pub const TRUNCATED: &str = "… [truncated]";

/// The template a trigger without one uses: the whole payload.
pub const DEFAULT_TEMPLATE: &str = "{{payload}}";

#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Text(String),
    /// `payload` followed by these keys or indexes.
    Payload(Vec<String>),
    Event,
}

/// A parsed template.
#[derive(Clone, Debug, PartialEq)]
pub struct PromptTemplate {
    pieces: Vec<Piece>,
}

impl PromptTemplate {
    /// Parses `text` (empty: [`DEFAULT_TEMPLATE`]). The error says what is wrong where.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() > MAX_TEMPLATE_BYTES {
            return Err(format!("must be at most {MAX_TEMPLATE_BYTES} bytes"));
        }
        if text.contains('\0') {
            return Err("must not contain NUL characters".into());
        }
        let text = if text.trim().is_empty() {
            DEFAULT_TEMPLATE
        } else {
            text
        };
        let mut pieces = Vec::new();
        let mut rest = text;
        let mut tags = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(format!("{:?} has no closing }}}}", shown(&rest[open..])));
            };
            let tag = after[..close].trim();
            pieces.push(parse_tag(tag)?);
            tags += 1;
            if tags > MAX_TAGS {
                return Err(format!("at most {MAX_TAGS} tags"));
            }
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Self { pieces })
    }

    /// The prompt for `payload` and `event`, bounded (see the module docs).
    pub fn render(&self, payload: &Value, event: &str) -> String {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Event => out.push_str(&bounded(event, MAX_VALUE_BYTES)),
                Piece::Payload(path) => {
                    let value = path.iter().try_fold(payload, |value, key| match value {
                        Value::Object(map) => map.get(key),
                        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
                        _ => None,
                    });
                    let text = match value {
                        None | Some(Value::Null) => String::new(),
                        Some(Value::String(s)) => bounded(s, MAX_VALUE_BYTES),
                        Some(other) => bounded(&other.to_string(), MAX_VALUE_BYTES),
                    };
                    out.push_str(&text);
                }
            }
            if out.len() > MAX_RENDERED_BYTES {
                break;
            }
        }
        bounded(&out, MAX_RENDERED_BYTES)
    }
}

fn parse_tag(tag: &str) -> Result<Piece, String> {
    if tag == "event" {
        return Ok(Piece::Event);
    }
    let mut segments = tag.split('.');
    if segments.next() != Some("payload") {
        return Err(format!(
            "unknown tag {{{{{}}}}}: use {{{{payload}}}}, {{{{payload.some.field}}}} or {{{{event}}}}",
            shown(tag)
        ));
    }
    let path: Vec<String> = segments.map(str::to_owned).collect();
    if path.len() > MAX_DEPTH {
        return Err(format!(
            "{{{{{}}}}} is deeper than {MAX_DEPTH} fields",
            shown(tag)
        ));
    }
    for segment in &path {
        let valid = !segment.is_empty()
            && segment
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '$' || c == '@');
        if !valid {
            return Err(format!(
                "{{{{{}}}}}: a field name is letters, digits, _, -, $ or @ (an index is digits)",
                shown(tag)
            ));
        }
    }
    Ok(Piece::Payload(path))
}

fn shown(text: &str) -> String {
    text.chars().take(40).collect()
}

/// `text` cut to at most `max` bytes (at a character boundary), marked when cut.
fn bounded(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub(TRUNCATED.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{TRUNCATED}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tags_quote_fields_and_missing_ones_render_empty() {
        let payload = json!({
            "issue": {"title": "Crash on start", "number": 42, "labels": [{"name": "bug"}]},
            "draft": false,
            "none": null,
        });
        let template =
            PromptTemplate::parse("Issue #{{ payload.issue.number }}: {{payload.issue.title}} [{{payload.issue.labels.0.name}}] {{payload.draft}} <{{payload.missing.deep}}><{{payload.none}}> ({{event}})")
                .expect("parses");
        assert_eq!(
            template.render(&payload, "issues"),
            "Issue #42: Crash on start [bug] false <><> (issues)"
        );
        let whole = PromptTemplate::parse("").expect("default");
        assert_eq!(
            whole.render(&json!({"a": [1, "x"]}), ""),
            r#"{"a":[1,"x"]}"#
        );
        let object = PromptTemplate::parse("{{payload.issue.labels}}").expect("parses");
        assert_eq!(object.render(&payload, ""), r#"[{"name":"bug"}]"#);
    }

    #[test]
    fn bad_tags_are_refused_when_saved() {
        for bad in [
            "{{payload.issue.title}",
            "{{ env.HOME }}",
            "{{payload..x}}",
            "{{payload.a b}}",
            "{{}}",
            "{{payload.x | upper}}",
            "{{trigger}}",
        ] {
            assert!(PromptTemplate::parse(bad).is_err(), "{bad}");
        }
        let many = "{{event}}".repeat(MAX_TAGS + 1);
        assert!(PromptTemplate::parse(&many).is_err());
        assert!(PromptTemplate::parse(&"x".repeat(MAX_TEMPLATE_BYTES + 1)).is_err());
    }

    #[test]
    fn the_rendered_prompt_is_bounded_at_a_character_boundary() {
        let big = "é".repeat(MAX_VALUE_BYTES);
        let payload = json!({ "body": big });
        let one = PromptTemplate::parse("{{payload.body}}").expect("parses");
        let rendered = one.render(&payload, "");
        assert!(rendered.len() <= MAX_VALUE_BYTES, "{}", rendered.len());
        assert!(rendered.ends_with(TRUNCATED));
        let many = PromptTemplate::parse(&"{{payload.body}}".repeat(10)).expect("parses");
        let rendered = many.render(&payload, "");
        assert!(rendered.len() <= MAX_RENDERED_BYTES, "{}", rendered.len());
        assert!(rendered.ends_with(TRUNCATED));
    }
}
