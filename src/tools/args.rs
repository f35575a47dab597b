//! Checks a tool call's arguments against the tool's own JSON Schema (the subset the
//! built-in tools use) before deserialising them, so a bad call gets an error that names
//! the argument and the problem.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Validates `arguments` against `schema` and deserialises them. `null` counts as `{}`,
/// and an optional argument given as `null` counts as absent.
pub(crate) fn parse<T: DeserializeOwned>(
    tool: &str,
    schema: &Value,
    arguments: Value,
) -> Result<T, String> {
    let cleaned = validate(schema, arguments)
        .map_err(|why| format!("invalid arguments for `{tool}`: {why}"))?;
    serde_json::from_value(Value::Object(cleaned))
        .map_err(|err| format!("invalid arguments for `{tool}`: {err}"))
}

fn validate(schema: &Value, arguments: Value) -> Result<Map<String, Value>, String> {
    let mut object = match arguments {
        Value::Null => Map::new(),
        Value::Object(object) => object,
        other => {
            return Err(format!(
                "expected an object of named arguments, got {}",
                describe(&other)
            ));
        }
    };
    let empty = Map::new();
    let properties = schema
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();

    if let Some(unknown) = object.keys().find(|key| !properties.contains_key(*key)) {
        let mut known: Vec<&str> = properties.keys().map(String::as_str).collect();
        known.sort_unstable();
        return Err(format!(
            "unknown argument `{unknown}` (expected: {})",
            known.join(", ")
        ));
    }
    object.retain(|key, value| !value.is_null() || required.contains(&key.as_str()));
    if let Some(missing) = required.iter().find(|name| !object.contains_key(**name)) {
        return Err(format!("missing required argument `{missing}`"));
    }
    for (name, value) in &object {
        if let Some(property) = properties.get(name) {
            check_property(name, property, value)?;
        }
    }
    Ok(object)
}

fn check_property(name: &str, property: &Value, value: &Value) -> Result<(), String> {
    if let Some(expected) = property.get("type").and_then(Value::as_str) {
        let fits = match expected {
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            _ => true,
        };
        if !fits {
            return Err(format!(
                "argument `{name}` must be {}, got {}",
                article(expected),
                describe(value)
            ));
        }
    }
    if let (Some(min), Some(number)) = (
        property.get("minimum").and_then(Value::as_f64),
        value.as_f64(),
    ) && number < min
    {
        return Err(format!(
            "argument `{name}` must be at least {min}, got {value}"
        ));
    }
    if let (Some(min), Some(number)) = (
        property.get("exclusiveMinimum").and_then(Value::as_f64),
        value.as_f64(),
    ) && number <= min
    {
        return Err(format!(
            "argument `{name}` must be greater than {min}, got {value}"
        ));
    }
    if let (Some(min), Some(text)) = (
        property.get("minLength").and_then(Value::as_u64),
        value.as_str(),
    ) && (text.chars().count() as u64) < min
    {
        return Err(if min == 1 {
            format!("argument `{name}` must not be empty")
        } else {
            format!("argument `{name}` must be at least {min} characters long")
        });
    }
    Ok(())
}

fn article(schema_type: &str) -> String {
    match schema_type {
        "integer" | "object" | "array" => format!("an {schema_type}"),
        other => format!("a {other}"),
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(number) if number.is_f64() => "a number with a fraction",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Args {
        path: String,
        offset: Option<u64>,
        all: Option<bool>,
    }

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "path": {"type": "string", "minLength": 1},
                "offset": {"type": "integer", "minimum": 1},
                "all": {"type": "boolean"},
            },
            "required": ["path"],
            "additionalProperties": false,
        })
    }

    fn parse_args(arguments: Value) -> Result<Args, String> {
        parse("t", &schema(), arguments)
    }

    #[test]
    fn accepts_valid_arguments_and_null_optionals() {
        assert_eq!(
            parse_args(json!({"path": "a", "offset": 3, "all": null})),
            Ok(Args {
                path: "a".into(),
                offset: Some(3),
                all: None
            })
        );
    }

    #[test]
    fn names_the_problem() {
        let cases = [
            (json!({}), "missing required argument `path`"),
            (json!(null), "missing required argument `path`"),
            (
                json!({"path": null}),
                "argument `path` must be a string, got null",
            ),
            (
                json!({"path": 5}),
                "argument `path` must be a string, got a number",
            ),
            (json!({"path": ""}), "argument `path` must not be empty"),
            (
                json!({"path": "a", "offset": "3"}),
                "argument `offset` must be an integer, got a string",
            ),
            (
                json!({"path": "a", "offset": 1.5}),
                "argument `offset` must be an integer, got a number with a fraction",
            ),
            (
                json!({"path": "a", "offset": 0}),
                "argument `offset` must be at least 1, got 0",
            ),
            (
                json!({"path": "a", "extra": 1}),
                "unknown argument `extra` (expected: all, offset, path)",
            ),
            (
                json!(["a"]),
                "expected an object of named arguments, got an array",
            ),
        ];
        for (arguments, want) in cases {
            let got = parse_args(arguments.clone()).expect_err("must fail");
            assert_eq!(
                got,
                format!("invalid arguments for `t`: {want}"),
                "{arguments}"
            );
        }
    }
}
