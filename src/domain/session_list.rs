//! What ListSessions shows and in which order: the `filter` (a subset of AIP-160 over
//! labels) and the `order_by` (AIP-132) of the request, parsed into plain values that
//! the store turns into SQL. Errors are INVALID_ARGUMENT naming the field (`filter`,
//! `order_by`) and saying what is wrong and what is accepted.
//!
//! Filter grammar (AIP-160 subset), conditions joined with `AND`:
//! - `labels.KEY = "value"`  the label is exactly this value;
//! - `labels.KEY != "value"` the label is not this value (sessions without it match);
//! - `labels.KEY:*` or `labels:KEY`  the session has the label, whatever its value.
//!
//! Values are double-quoted (`\"` and `\\` escape) or bare words of letters, digits,
//! `_`, `-` and `.`. Keys follow the label key rules. `OR`, `NOT` and other fields are
//! refused with a message saying so.
//!
//! Orders: an optional `pinned desc` first, then one of `last_active_time`,
//! `create_time`, `display_name`, each `asc` (the AIP-132 default) or `desc`. The id
//! breaks ties in the key's direction, so every order is total and a keyset page token
//! stays exact. Empty is `pinned desc, last_active_time desc` (the list's order before
//! `order_by` existed).

use super::{Error, Result, session::is_label_key};

/// The most conditions one filter may hold (each is a clause of the list query).
pub const MAX_FILTER_CONDITIONS: usize = 32;

/// One condition of a label filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelCondition {
    Equals { key: String, value: String },
    NotEquals { key: String, value: String },
    Has { key: String },
}

impl LabelCondition {
    pub fn key(&self) -> &str {
        match self {
            LabelCondition::Equals { key, .. }
            | LabelCondition::NotEquals { key, .. }
            | LabelCondition::Has { key } => key,
        }
    }
}

const FILTER_FORMS: &str = "accepted: labels.KEY = \"value\", labels.KEY != \"value\", \
     labels.KEY:* (has the label), joined with AND";

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    /// A field path or a bare value: letters, digits, `_`, `-`, `.`.
    Word(String),
    Quoted(String),
    Eq,
    NotEq,
    Has,
    Star,
}

fn describe(token: Option<&Token>) -> String {
    match token {
        None => "the end of the filter".to_owned(),
        Some(Token::Word(w)) => format!("`{w}`"),
        Some(Token::Quoted(q)) => format!("\"{q}\""),
        Some(Token::Eq) => "`=`".to_owned(),
        Some(Token::NotEq) => "`!=`".to_owned(),
        Some(Token::Has) => "`:`".to_owned(),
        Some(Token::Star) => "`*`".to_owned(),
    }
}

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid("filter", message)
}

fn tokens(text: &str) -> Result<Vec<Token>> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '=' => {
                chars.next();
                out.push(Token::Eq);
            }
            '!' => {
                chars.next();
                if chars.next() != Some('=') {
                    return Err(invalid(format!("`!` must be part of `!=`; {FILTER_FORMS}")));
                }
                out.push(Token::NotEq);
            }
            ':' => {
                chars.next();
                out.push(Token::Has);
            }
            '*' => {
                chars.next();
                out.push(Token::Star);
            }
            '"' => {
                chars.next();
                let mut value = String::new();
                loop {
                    match chars.next() {
                        None => return Err(invalid("a quoted value is not closed with `\"`")),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(escaped @ ('"' | '\\')) => value.push(escaped),
                            _ => {
                                return Err(invalid(
                                    "inside a quoted value only \\\" and \\\\ are escapes",
                                ));
                            }
                        },
                        Some(other) => value.push(other),
                    }
                }
                out.push(Token::Quoted(value));
            }
            c if is_word_char(c) => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if !is_word_char(c) {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                out.push(Token::Word(word));
            }
            other => {
                return Err(invalid(format!(
                    "unexpected character `{other}`; {FILTER_FORMS}"
                )));
            }
        }
    }
    Ok(out)
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

fn label_key(key: &str) -> Result<String> {
    if is_label_key(key) {
        Ok(key.to_owned())
    } else {
        Err(invalid(format!(
            "`{key}` is not a label key (1-63 characters of a-z, 0-9, '_' or '-', starting \
             with a letter)"
        )))
    }
}

/// Parses a ListSessions `filter`; empty (or blank) is no condition.
pub fn parse_filter(text: &str) -> Result<Vec<LabelCondition>> {
    let tokens = tokens(text)?;
    let mut conditions = Vec::new();
    let mut at = 0;
    while at < tokens.len() {
        if !conditions.is_empty() {
            match &tokens[at] {
                Token::Word(w) if w == "AND" => at += 1,
                Token::Word(w) if w == "OR" || w == "NOT" => {
                    return Err(invalid(format!("{w} is not supported; {FILTER_FORMS}")));
                }
                other => {
                    return Err(invalid(format!(
                        "expected AND between conditions, got {}; {FILTER_FORMS}",
                        describe(Some(other))
                    )));
                }
            }
        }
        let field = match tokens.get(at) {
            Some(Token::Word(w)) if w == "NOT" || w == "OR" || w == "AND" => {
                return Err(invalid(format!(
                    "{w} is not supported here; {FILTER_FORMS}"
                )));
            }
            Some(Token::Word(w)) => w.clone(),
            other => {
                return Err(invalid(format!(
                    "expected a condition, got {}; {FILTER_FORMS}",
                    describe(other)
                )));
            }
        };
        let op = tokens.get(at + 1);
        let operand = tokens.get(at + 2);
        let condition = if field == "labels" {
            // `labels:KEY`: has the label.
            match (op, operand) {
                (Some(Token::Has), Some(Token::Word(key) | Token::Quoted(key))) => {
                    LabelCondition::Has {
                        key: label_key(key)?,
                    }
                }
                _ => {
                    return Err(invalid(format!(
                        "`labels` takes a key: labels.KEY = \"value\" or labels:KEY; {FILTER_FORMS}"
                    )));
                }
            }
        } else if let Some(key) = field.strip_prefix("labels.") {
            let key = label_key(key)?;
            match (op, operand) {
                (Some(Token::Eq), Some(Token::Word(value) | Token::Quoted(value))) => {
                    LabelCondition::Equals {
                        key,
                        value: value.clone(),
                    }
                }
                (Some(Token::NotEq), Some(Token::Word(value) | Token::Quoted(value))) => {
                    LabelCondition::NotEquals {
                        key,
                        value: value.clone(),
                    }
                }
                (Some(Token::Has), Some(Token::Star)) => LabelCondition::Has { key },
                (Some(Token::Has), _) => {
                    return Err(invalid(format!(
                        "labels.{key}: takes only `*` (has the label); {FILTER_FORMS}"
                    )));
                }
                (Some(Token::Eq | Token::NotEq), other) => {
                    return Err(invalid(format!(
                        "labels.{key} needs a value after the operator, got {}; {FILTER_FORMS}",
                        describe(other)
                    )));
                }
                (other, _) => {
                    return Err(invalid(format!(
                        "expected `=`, `!=` or `:*` after labels.{key}, got {}; {FILTER_FORMS}",
                        describe(other)
                    )));
                }
            }
        } else {
            return Err(invalid(format!(
                "`{field}` cannot be filtered on: only labels can (for text use `query`, \
                 and `source`, `pinned`, `created_after`, `created_before`); {FILTER_FORMS}"
            )));
        };
        conditions.push(condition);
        if conditions.len() > MAX_FILTER_CONDITIONS {
            return Err(invalid(format!(
                "at most {MAX_FILTER_CONDITIONS} conditions"
            )));
        }
        at += 3;
    }
    Ok(conditions)
}

/// The field a session list is sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SortKey {
    LastActiveTime,
    CreateTime,
    DisplayName,
}

impl SortKey {
    pub fn api_name(self) -> &'static str {
        match self {
            SortKey::LastActiveTime => "last_active_time",
            SortKey::CreateTime => "create_time",
            SortKey::DisplayName => "display_name",
        }
    }

    const ALL: [SortKey; 3] = [
        SortKey::LastActiveTime,
        SortKey::CreateTime,
        SortKey::DisplayName,
    ];
}

/// The order of a session list: pinned sessions first or not, then the key in its
/// direction, then the id in the same direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionOrder {
    pub pinned_first: bool,
    pub key: SortKey,
    pub descending: bool,
}

impl Default for SessionOrder {
    /// Pinned first, then the most recent activity.
    fn default() -> Self {
        SessionOrder {
            pinned_first: true,
            key: SortKey::LastActiveTime,
            descending: true,
        }
    }
}

const ORDER_FORMS: &str = "accepted: an optional `pinned desc,` then one of \
     last_active_time, create_time, display_name, each optionally followed by asc or desc \
     (e.g. \"create_time desc\"); empty is \"pinned desc, last_active_time desc\"";

impl SessionOrder {
    /// Parses a ListSessions `order_by`; empty is the default order.
    pub fn parse(text: &str) -> Result<SessionOrder> {
        if text.trim().is_empty() {
            return Ok(SessionOrder::default());
        }
        let invalid = |message: String| Error::invalid("order_by", message);
        let mut items: Vec<(String, bool)> = Vec::new();
        for item in text.split(',') {
            let words: Vec<&str> = item.split_whitespace().collect();
            let descending = match words.as_slice() {
                [_] => false,
                [_, direction] if direction.eq_ignore_ascii_case("asc") => false,
                [_, direction] if direction.eq_ignore_ascii_case("desc") => true,
                [] => return Err(invalid(format!("an empty sort field; {ORDER_FORMS}"))),
                _ => {
                    return Err(invalid(format!(
                        "`{}` is not `FIELD`, `FIELD asc` or `FIELD desc`; {ORDER_FORMS}",
                        item.trim()
                    )));
                }
            };
            items.push((super::session::snake_case(words[0]), descending));
        }
        let mut pinned_first = false;
        if let Some((field, descending)) = items.first()
            && field == "pinned"
        {
            if !descending || items.len() == 1 {
                return Err(invalid(format!(
                    "pinned sorts only as `pinned desc`, followed by another field; {ORDER_FORMS}"
                )));
            }
            pinned_first = true;
            items.remove(0);
        }
        let [(field, descending)] = items.as_slice() else {
            return Err(invalid(format!(
                "sorts by one field (after an optional `pinned desc`); {ORDER_FORMS}"
            )));
        };
        let Some(key) = SortKey::ALL.into_iter().find(|k| k.api_name() == field) else {
            return Err(invalid(format!("cannot sort by `{field}`; {ORDER_FORMS}")));
        };
        Ok(SessionOrder {
            pinned_first,
            key,
            descending: *descending,
        })
    }

    /// The order as `order_by` text, one spelling per order (page tokens are bound to it).
    pub fn canonical(&self) -> String {
        format!(
            "{}{} {}",
            if self.pinned_first {
                "pinned desc, "
            } else {
                ""
            },
            self.key.api_name(),
            if self.descending { "desc" } else { "asc" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn violation(result: Result<impl std::fmt::Debug>) -> (String, String) {
        match result {
            Err(Error::InvalidArgument(v)) => (v[0].field.clone(), v[0].description.clone()),
            other => panic!("expected invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn filters_parse_equality_inequality_and_presence() {
        assert_eq!(parse_filter("  ").expect("blank"), vec![]);
        assert_eq!(
            parse_filter(
                r#"labels.team = "core" AND labels.env!=prod AND labels.x:* AND labels:y-z"#
            )
            .expect("parses"),
            vec![
                LabelCondition::Equals {
                    key: "team".into(),
                    value: "core".into()
                },
                LabelCondition::NotEquals {
                    key: "env".into(),
                    value: "prod".into()
                },
                LabelCondition::Has { key: "x".into() },
                LabelCondition::Has { key: "y-z".into() },
            ]
        );
        assert_eq!(
            parse_filter(r#"labels.q="say \"hi\" \\ ok""#).expect("escapes"),
            vec![LabelCondition::Equals {
                key: "q".into(),
                value: r#"say "hi" \ ok"#.into()
            }]
        );
    }

    #[test]
    fn bad_filters_name_the_field_and_say_why() {
        for (filter, says) in [
            (r#"display_name = "x""#, "cannot be filtered on"),
            (
                r#"labels.team = "a" OR labels.team = "b""#,
                "OR is not supported",
            ),
            (r#"labels.Team = "a""#, "is not a label key"),
            (r#"labels.team = "a" labels.b = "c""#, "expected AND"),
            (r#"labels.team = "open"#, "not closed"),
            (r#"labels.team >= "a""#, "unexpected character `>`"),
            ("labels.team", "expected `=`, `!=` or `:*`"),
            ("labels.team =", "needs a value"),
            ("labels.team:core", "takes only `*`"),
            ("NOT labels.x:*", "NOT is not supported"),
        ] {
            let (field, description) = violation(parse_filter(filter));
            assert_eq!(field, "filter", "{filter}");
            assert!(description.contains(says), "{filter}: {description}");
        }
    }

    #[test]
    fn orders_parse_with_directions_and_an_optional_pinned_first() {
        assert_eq!(
            SessionOrder::parse("").expect("empty"),
            SessionOrder::default()
        );
        let order = SessionOrder::parse("create_time desc").expect("parses");
        assert_eq!(
            order,
            SessionOrder {
                pinned_first: false,
                key: SortKey::CreateTime,
                descending: true
            }
        );
        assert_eq!(order.canonical(), "create_time desc");
        let order = SessionOrder::parse("pinned desc, displayName").expect("parses");
        assert_eq!(order.canonical(), "pinned desc, display_name asc");
        assert_eq!(
            SessionOrder::parse("pinned desc,last_active_time DESC").expect("parses"),
            SessionOrder::default()
        );
        for (order_by, says) in [
            ("title", "cannot sort by `title`"),
            ("create_time sideways", "is not `FIELD`"),
            ("pinned", "pinned sorts only"),
            ("create_time, display_name", "sorts by one field"),
            ("create_time,", "an empty sort field"),
        ] {
            let (field, description) = violation(SessionOrder::parse(order_by));
            assert_eq!(field, "order_by");
            assert!(description.contains(says), "{order_by}: {description}");
        }
    }
}
