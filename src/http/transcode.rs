//! Building the request message from an HTTP request (JSON body, path variables, query
//! parameters) and rendering messages as proto3 JSON.

use std::collections::HashSet;

use base64::Engine as _;
use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage,
    SerializeOptions, Value,
};
use tonic::Code;

use super::error::{ApiError, bad_request_detail};
use super::route::percent_decode;

/// What the rule's `body` binds.
#[derive(Clone, Debug)]
pub enum BodyRule {
    /// No `body`: the request has no body; unbound fields come from the query.
    None,
    /// `body: "*"`: the whole request message; no query parameters.
    Whole,
    /// `body: "<field>"`: one top-level field; other unbound fields from the query.
    Field(FieldDescriptor),
}

/// The query parameter EventSource clients use for their bearer token.
pub const ACCESS_TOKEN_PARAM: &str = "access_token";

/// Resolves a field path (`session.name`) against `desc`. Every component but the last
/// must be a singular message. With `json_names`, each component may also be the
/// field's JSON name.
pub fn resolve_field_path<S: AsRef<str>>(
    desc: &MessageDescriptor,
    path: &[S],
    json_names: bool,
) -> Result<Vec<FieldDescriptor>, String> {
    let mut fields = Vec::with_capacity(path.len());
    let mut current = desc.clone();
    for (i, name) in path.iter().enumerate() {
        let name = name.as_ref();
        let field = current
            .get_field_by_name(name)
            .or_else(|| {
                json_names
                    .then(|| current.get_field_by_json_name(name))
                    .flatten()
            })
            .ok_or_else(|| format!("no field {name:?} in {}", current.full_name()))?;
        if i + 1 < path.len() {
            match field.kind() {
                Kind::Message(m) if !field.is_list() && !field.is_map() => current = m,
                _ => return Err(format!("{name:?} is not a singular message field")),
            }
        }
        fields.push(field);
    }
    Ok(fields)
}

fn path_name(fields: &[FieldDescriptor]) -> String {
    fields
        .iter()
        .map(FieldDescriptor::name)
        .collect::<Vec<_>>()
        .join(".")
}

/// The request message from the body, per the rule.
pub fn decode_body(
    input: &MessageDescriptor,
    rule: &BodyRule,
    body: &[u8],
) -> Result<DynamicMessage, ApiError> {
    let empty = body.trim_ascii().is_empty();
    match rule {
        BodyRule::None if empty => Ok(DynamicMessage::new(input.clone())),
        BodyRule::None => Err(ApiError::new(
            Code::InvalidArgument,
            "this method does not take a request body",
        )),
        BodyRule::Whole if empty => Ok(DynamicMessage::new(input.clone())),
        BodyRule::Whole => json_to_message(input, body),
        BodyRule::Field(field) => {
            let mut message = DynamicMessage::new(input.clone());
            match field.kind() {
                Kind::Message(m) if !field.is_list() && !field.is_map() => {
                    let value = if empty {
                        DynamicMessage::new(m)
                    } else {
                        json_to_message(&m, body)?
                    };
                    message
                        .try_set_field(field, Value::Message(value))
                        .map_err(internal)?;
                }
                _ if empty => {}
                _ => {
                    // A scalar, repeated or map field: let the JSON mapping parse it as
                    // `{"<field>": <body>}`.
                    let value: serde_json::Value =
                        serde_json::from_slice(body).map_err(json_error)?;
                    let mut wrapper = serde_json::Map::new();
                    wrapper.insert(field.json_name().to_owned(), value);
                    let parsed = DynamicMessage::deserialize_with_options(
                        input.clone(),
                        serde_json::Value::Object(wrapper),
                        &DeserializeOptions::new(),
                    )
                    .map_err(json_error)?;
                    message
                        .try_set_field(field, parsed.get_field(field).into_owned())
                        .map_err(internal)?;
                }
            }
            Ok(message)
        }
    }
}

fn internal(err: impl std::fmt::Display) -> ApiError {
    ApiError::new(Code::Internal, err.to_string())
}

fn json_to_message(desc: &MessageDescriptor, body: &[u8]) -> Result<DynamicMessage, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let message =
        DynamicMessage::deserialize_with_options(desc.clone(), &mut de, &DeserializeOptions::new())
            .map_err(json_error)?;
    de.end().map_err(json_error)?;
    Ok(message)
}

fn json_error(err: serde_json::Error) -> ApiError {
    let text = err.to_string();
    let message = if err.is_syntax() || err.is_eof() {
        format!("malformed JSON request body: {text}")
    } else {
        format!("invalid JSON request body: {text}")
    };
    let mut error = ApiError::new(Code::InvalidArgument, message);
    if let Some(name) = text
        .strip_prefix("unrecognized field name '")
        .and_then(|rest| rest.split_once('\''))
        .map(|(name, _)| name)
    {
        error = error.with_detail(bad_request_detail(name, "unknown field"));
    }
    error
}

/// Sets the path variables (`captures` in `bindings` order).
pub fn apply_path(
    message: &mut DynamicMessage,
    bindings: &[Vec<FieldDescriptor>],
    captures: &[String],
) -> Result<(), ApiError> {
    for (fields, value) in bindings.iter().zip(captures) {
        let Some(leaf) = fields.last() else { continue };
        let name = path_name(fields);
        let parsed = parse_value(leaf, value).map_err(|e| ApiError::bad_field(&name, e))?;
        set_at(message, fields, parsed, false).map_err(|e| ApiError::bad_field(&name, e))?;
    }
    Ok(())
}

/// The parsed query: pairs in order, percent-decoded.
pub fn parse_query(query: &str) -> Result<Vec<(String, String)>, ApiError> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key =
                percent_decode(key, true).map_err(|e| ApiError::new(Code::InvalidArgument, e))?;
            let value = percent_decode(value, true).map_err(|e| ApiError::bad_field(&key, e))?;
            Ok((key, value))
        })
        .collect()
}

/// Sets the fields named by query parameters. Returns the `access_token`, when
/// `allow_access_token` and given; otherwise that parameter is unknown like any other.
pub fn apply_query(
    message: &mut DynamicMessage,
    rule: &BodyRule,
    bindings: &[Vec<FieldDescriptor>],
    params: &[(String, String)],
    allow_access_token: bool,
) -> Result<Option<String>, ApiError> {
    let unknown = |key: &str| {
        ApiError::bad_field(key, "unknown query parameter")
            .with_message(format!("unknown query parameter {key:?}"))
    };
    let mut token = None;
    let mut seen = HashSet::new();
    for (key, raw) in params {
        if allow_access_token && key == ACCESS_TOKEN_PARAM {
            if token.replace(raw.clone()).is_some() {
                return Err(ApiError::bad_field(key, "given more than once"));
            }
            continue;
        }
        if matches!(rule, BodyRule::Whole) {
            return Err(unknown(key));
        }
        let path: Vec<&str> = key.split('.').collect();
        let fields =
            resolve_field_path(&message.descriptor(), &path, true).map_err(|_| unknown(key))?;
        if let (BodyRule::Field(body), Some(first)) = (rule, fields.first())
            && body == first
        {
            return Err(ApiError::bad_field(key, "is bound by the request body"));
        }
        let overlaps =
            |bound: &Vec<FieldDescriptor>| bound.iter().zip(&fields).all(|(a, b)| a == b);
        if bindings.iter().any(overlaps) {
            return Err(ApiError::bad_field(key, "is bound by the URL path"));
        }
        let Some(leaf) = fields.last() else {
            return Err(unknown(key));
        };
        if leaf.is_map() {
            return Err(ApiError::bad_field(
                key,
                "map fields cannot be set from the query",
            ));
        }
        let canonical = path_name(&fields);
        if !leaf.is_list() && !seen.insert(canonical) {
            return Err(ApiError::bad_field(key, "given more than once"));
        }
        let value = parse_value(leaf, raw).map_err(|e| ApiError::bad_field(key, e))?;
        set_at(message, &fields, value, leaf.is_list()).map_err(|e| ApiError::bad_field(key, e))?;
    }
    Ok(token)
}

/// Sets (or, for lists, appends) `value` at the nested field path.
pub fn set_at(
    message: &mut DynamicMessage,
    fields: &[FieldDescriptor],
    value: Value,
    append: bool,
) -> Result<(), String> {
    let Some((leaf, parents)) = fields.split_last() else {
        return Err("empty field path".into());
    };
    let mut current = message;
    for field in parents {
        current = match current.get_field_mut(field) {
            Value::Message(m) => m,
            _ => return Err(format!("{} is not a message", field.name())),
        };
    }
    if append {
        match current.get_field_mut(leaf) {
            Value::List(list) => list.push(value),
            _ => return Err(format!("{} is not repeated", leaf.name())),
        }
    } else {
        current
            .try_set_field(leaf, value)
            .map_err(|err| err.to_string())?;
    }
    Ok(())
}

/// Parses one text value (a path segment or query parameter) for `field`'s kind.
pub fn parse_value(field: &FieldDescriptor, raw: &str) -> Result<Value, String> {
    parse_kind(&field.kind(), raw)
}

fn parse_kind(kind: &Kind, raw: &str) -> Result<Value, String> {
    fn num<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, String> {
        raw.trim()
            .parse()
            .map_err(|_| format!("{raw:?} is not a valid {what}"))
    }
    Ok(match kind {
        Kind::String => Value::String(raw.to_owned()),
        Kind::Bytes => {
            use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
            let bytes = STANDARD
                .decode(raw)
                .or_else(|_| URL_SAFE.decode(raw))
                .or_else(|_| URL_SAFE_NO_PAD.decode(raw))
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(raw))
                .map_err(|_| format!("{raw:?} is not valid base64"))?;
            Value::Bytes(bytes.into())
        }
        Kind::Bool => match raw {
            "true" | "True" | "TRUE" | "1" => Value::Bool(true),
            "false" | "False" | "FALSE" | "0" => Value::Bool(false),
            _ => return Err(format!("{raw:?} is not a valid boolean (true or false)")),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(num(raw, "32-bit integer")?),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Value::I64(num(raw, "64-bit integer")?),
        Kind::Uint32 | Kind::Fixed32 => Value::U32(num(raw, "unsigned 32-bit integer")?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(num(raw, "unsigned 64-bit integer")?),
        Kind::Float => Value::F32(num(raw, "number")?),
        Kind::Double => Value::F64(num(raw, "number")?),
        Kind::Enum(e) => {
            let value = e
                .get_value_by_name(raw)
                .or_else(|| raw.parse::<i32>().ok().and_then(|n| e.get_value(n)))
                .ok_or_else(|| format!("{raw:?} is not a value of {}", e.full_name()))?;
            Value::EnumNumber(value.number())
        }
        Kind::Message(m) => Value::Message(parse_well_known(m, raw)?),
    })
}

/// Well-known message types that have a text form.
fn parse_well_known(desc: &MessageDescriptor, raw: &str) -> Result<DynamicMessage, String> {
    let from_json = |text: &str| {
        DynamicMessage::deserialize(desc.clone(), serde_json::Value::String(text.to_owned()))
            .map_err(|e| e.to_string())
    };
    match desc.full_name() {
        "google.protobuf.Timestamp" => from_json(raw)
            // An unencoded '+' of an offset arrives as a space.
            .or_else(|e| {
                if raw.contains(' ') {
                    from_json(&raw.replace(' ', "+"))
                } else {
                    Err(e)
                }
            })
            .map_err(|_| format!("{raw:?} is not an RFC 3339 timestamp")),
        "google.protobuf.Duration" => {
            from_json(raw).map_err(|_| format!("{raw:?} is not a duration like \"1.5s\""))
        }
        "google.protobuf.FieldMask" => {
            let mut mask = DynamicMessage::new(desc.clone());
            let paths = raw
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| Value::String(camel_to_snake(p)))
                .collect();
            mask.try_set_field_by_name("paths", Value::List(paths))
                .map_err(|err| err.to_string())?;
            Ok(mask)
        }
        "google.protobuf.DoubleValue"
        | "google.protobuf.FloatValue"
        | "google.protobuf.Int64Value"
        | "google.protobuf.UInt64Value"
        | "google.protobuf.Int32Value"
        | "google.protobuf.UInt32Value"
        | "google.protobuf.BoolValue"
        | "google.protobuf.StringValue"
        | "google.protobuf.BytesValue" => {
            let inner = desc
                .get_field_by_name("value")
                .ok_or_else(|| format!("{} has no value field", desc.full_name()))?;
            let mut wrapper = DynamicMessage::new(desc.clone());
            wrapper
                .try_set_field(&inner, parse_value(&inner, raw)?)
                .map_err(|err| err.to_string())?;
            Ok(wrapper)
        }
        other => Err(format!(
            "a {other} cannot be given as one value; set its fields (e.g. field.subfield=...)"
        )),
    }
}

/// `displayName` → `display_name`; snake case stays as it is.
fn camel_to_snake(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 4);
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Proto3 JSON (lowerCamelCase names, enum names, defaults omitted) of a message.
pub fn message_json(message: &DynamicMessage) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::new(&mut out);
    message
        .serialize_with_options(&mut ser, &SerializeOptions::new())
        .map_err(|err| {
            tracing::warn!(%err, message = message.descriptor().full_name(), "response is not JSON-encodable");
            ApiError::new(Code::Internal, format!("cannot encode the response as JSON: {err}"))
        })?;
    Ok(out)
}

/// The JSON of one field (the rule's `response_body`), defaults included.
pub fn field_json(message: &DynamicMessage, field: &FieldDescriptor) -> Result<Vec<u8>, ApiError> {
    let mut only = DynamicMessage::new(message.descriptor());
    only.try_set_field(field, message.get_field(field).into_owned())
        .map_err(internal)?;
    let value = only
        .serialize_with_options(
            serde_json::value::Serializer,
            &SerializeOptions::new().skip_default_fields(false),
        )
        .map_err(|err| {
            ApiError::new(
                Code::Internal,
                format!("cannot encode the response as JSON: {err}"),
            )
        })?;
    let field_value = value
        .get(field.json_name())
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    serde_json::to_vec(&field_value).map_err(|err| {
        ApiError::new(
            Code::Internal,
            format!("cannot encode the response as JSON: {err}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;
    use prost_reflect::DescriptorPool;

    /// One pool for the whole test run: descriptors of different pools never compare equal.
    fn pool() -> DescriptorPool {
        static POOL: std::sync::OnceLock<DescriptorPool> = std::sync::OnceLock::new();
        POOL.get_or_init(|| DescriptorPool::decode(crate::pb::FILE_DESCRIPTOR_SET).expect("pool"))
            .clone()
    }

    fn query(
        message: &str,
        rule: BodyRule,
        q: &str,
    ) -> Result<(DynamicMessage, Option<String>), ApiError> {
        let desc = pool().get_message_by_name(message).expect("message");
        let mut msg = DynamicMessage::new(desc);
        let params = parse_query(q)?;
        let token = apply_query(&mut msg, &rule, &[], &params, false)?;
        Ok((msg, token))
    }

    fn violation_field(error: &ApiError) -> &str {
        error.details[0]["fieldViolations"][0]["field"]
            .as_str()
            .expect("field violation")
    }

    #[test]
    fn query_scalars_enums_optional_and_timestamps() {
        let (msg, _) = query(
            "octo.v1.ListSessionsRequest",
            BodyRule::None,
            "page_size=20&pageToken=abc&source=SESSION_SOURCE_SCHEDULE&pinned=false\
             &created_after=2024-05-01T10:00:00Z&created_before=2024-05-02T10:00:00%2B02:00&query=a+b%26c",
        )
        .expect("query");
        let req: crate::pb::ListSessionsRequest = msg.transcode_to().expect("transcode");
        assert_eq!(req.page_size, 20);
        assert_eq!(req.page_token, "abc");
        assert_eq!(req.source, crate::pb::SessionSource::Schedule as i32);
        assert_eq!(req.pinned, Some(false), "explicit false keeps presence");
        assert_eq!(req.created_after.expect("after").seconds, 1_714_557_600);
        assert_eq!(
            req.created_before.expect("before").seconds,
            1_714_644_000 - 7200
        );
        assert_eq!(req.query, "a b&c");

        // Enums by number too; an unencoded '+' offset (arrives as a space) still parses.
        let (msg, _) = query(
            "octo.v1.ListSessionsRequest",
            BodyRule::None,
            "source=3&created_after=2024-05-01T12:00:00+02:00",
        )
        .expect("query");
        let req: crate::pb::ListSessionsRequest = msg.transcode_to().expect("transcode");
        assert_eq!(req.source, crate::pb::SessionSource::Api as i32);
        assert_eq!(req.created_after.expect("after").seconds, 1_714_557_600);
    }

    #[test]
    fn query_repeated_duration_and_field_mask() {
        let (msg, _) = query(
            "octo.v1.BenchmarkModelsRequest",
            BodyRule::None,
            "names=models/a&names=models/b&timeout=1.5s",
        )
        .expect("query");
        let req: crate::pb::BenchmarkModelsRequest = msg.transcode_to().expect("transcode");
        assert_eq!(req.names, vec!["models/a", "models/b"]);
        let timeout = req.timeout.expect("timeout");
        assert_eq!((timeout.seconds, timeout.nanos), (1, 500_000_000));

        let pool = pool();
        let session_field = pool
            .get_message_by_name("octo.v1.UpdateSessionRequest")
            .and_then(|m| m.get_field_by_name("session"))
            .expect("field");
        let (msg, _) = query(
            "octo.v1.UpdateSessionRequest",
            BodyRule::Field(session_field.clone()),
            "update_mask=display_name,pinned,systemPrompt",
        )
        .expect("query");
        let req: crate::pb::UpdateSessionRequest = msg.transcode_to().expect("transcode");
        assert_eq!(
            req.update_mask.expect("mask").paths,
            vec!["display_name", "pinned", "system_prompt"]
        );

        // The body field cannot come from the query.
        let err = query(
            "octo.v1.UpdateSessionRequest",
            BodyRule::Field(session_field),
            "session.display_name=x",
        )
        .expect_err("bound by body");
        assert_eq!(violation_field(&err), "session.display_name");
    }

    #[test]
    fn query_bad_values_name_the_field() {
        for (q, field) in [
            ("page_size=abc", "page_size"),
            ("pageSize=99999999999", "pageSize"),
            ("source=SESSION_SOURCE_NOPE", "source"),
            ("pinned=maybe", "pinned"),
            ("created_after=yesterday", "created_after"),
        ] {
            let err = query("octo.v1.ListSessionsRequest", BodyRule::None, q).expect_err(q);
            assert_eq!(err.code, Code::InvalidArgument, "{q}");
            assert_eq!(err.http, http::StatusCode::BAD_REQUEST);
            assert_eq!(violation_field(&err), field, "{q}");
        }
        let err = query(
            "octo.v1.ListSessionsRequest",
            BodyRule::None,
            "page_size=1&page_size=2",
        )
        .expect_err("twice");
        assert_eq!(violation_field(&err), "page_size");
    }

    #[test]
    fn unknown_query_params_and_access_token() {
        let err = query("octo.v1.ListSessionsRequest", BodyRule::None, "colour=red")
            .expect_err("unknown");
        assert_eq!(violation_field(&err), "colour");
        assert!(err.message.contains("colour"));
        // Not allowed here: access_token is just unknown.
        let err = query(
            "octo.v1.ListSessionsRequest",
            BodyRule::None,
            "access_token=t",
        )
        .expect_err("unknown");
        assert_eq!(violation_field(&err), "access_token");
        // body "*" leaves nothing to the query.
        let err =
            query("octo.v1.ForkSessionRequest", BodyRule::Whole, "name=x").expect_err("unknown");
        assert_eq!(violation_field(&err), "name");

        let desc = pool()
            .get_message_by_name("octo.v1.StreamEventsRequest")
            .expect("message");
        let session = desc.get_field_by_name("session").expect("field");
        let mut msg = DynamicMessage::new(desc);
        let params = parse_query("access_token=s%3Dcret&after_sequence=9").expect("parse");
        let token = apply_query(
            &mut msg,
            &BodyRule::None,
            &[vec![session.clone()]],
            &params,
            true,
        )
        .expect("query");
        assert_eq!(token.as_deref(), Some("s=cret"));
        // A path-bound field cannot be overridden by the query.
        let params = parse_query("session=sessions/other").expect("parse");
        let err = apply_query(&mut msg, &BodyRule::None, &[vec![session]], &params, true)
            .expect_err("bound by path");
        assert_eq!(violation_field(&err), "session");
    }

    #[test]
    fn body_rules() {
        let pool = pool();
        let create = pool
            .get_message_by_name("octo.v1.CreateSessionRequest")
            .expect("message");
        let session = create.get_field_by_name("session").expect("field");
        let rule = BodyRule::Field(session);
        // Both lowerCamelCase and proto names are accepted.
        let msg = decode_body(
            &create,
            &rule,
            br#"{"displayName":"a","permission_mode":"PERMISSION_MODE_ASK"}"#,
        )
        .expect("body");
        let req: crate::pb::CreateSessionRequest = msg.transcode_to().expect("transcode");
        let s = req.session.expect("session");
        assert_eq!(s.display_name, "a");
        assert_eq!(s.permission_mode, crate::pb::PermissionMode::Ask as i32);

        // Empty means {} (and the body field is present).
        let msg = decode_body(&create, &rule, b"  ").expect("empty");
        let req: crate::pb::CreateSessionRequest = msg.transcode_to().expect("transcode");
        assert!(req.session.is_some());

        // Unknown fields are rejected, naming the field.
        let err =
            decode_body(&create, &rule, br#"{"displayName":"a","colour":1}"#).expect_err("unknown");
        assert_eq!(err.code, Code::InvalidArgument);
        assert!(err.message.contains("colour"), "{}", err.message);
        assert_eq!(violation_field(&err), "colour");

        // Malformed JSON.
        let err = decode_body(&create, &rule, br#"{"displayName":"#).expect_err("malformed");
        assert!(err.message.starts_with("malformed JSON"), "{}", err.message);
        let err = decode_body(&create, &rule, br#"{} x"#).expect_err("trailing");
        assert_eq!(err.code, Code::InvalidArgument);

        // No body rule: a body is an error.
        let get = pool
            .get_message_by_name("octo.v1.GetSessionRequest")
            .expect("message");
        assert!(decode_body(&get, &BodyRule::None, b"{}").is_err());
        assert!(decode_body(&get, &BodyRule::None, b"").is_ok());
    }

    #[test]
    fn path_bindings_set_nested_fields() {
        let pool = pool();
        let update = pool
            .get_message_by_name("octo.v1.UpdateSessionRequest")
            .expect("message");
        let session = update.get_field_by_name("session").expect("field");
        let binding = resolve_field_path(&update, &["session", "name"], false).expect("path");
        let mut msg =
            decode_body(&update, &BodyRule::Field(session), br#"{"pinned":true}"#).expect("body");
        apply_path(&mut msg, &[binding], &["sessions/abc".to_owned()]).expect("path");
        let req: crate::pb::UpdateSessionRequest = msg.transcode_to().expect("transcode");
        let s = req.session.expect("session");
        assert_eq!(s.name, "sessions/abc");
        assert!(s.pinned);
        assert!(resolve_field_path(&update, &["session", "nope"], false).is_err());
        assert!(resolve_field_path(&update, &["update_mask", "paths", "x"], false).is_err());
    }

    #[test]
    fn json_output_is_canonical() {
        let session = crate::pb::Session {
            name: "sessions/a".into(),
            display_name: "A".into(),
            status: crate::pb::SessionStatus::Running as i32,
            message_count: 3,
            ..Default::default()
        };
        let desc = pool()
            .get_message_by_name("octo.v1.Session")
            .expect("message");
        let msg = DynamicMessage::decode(desc, session.encode_to_vec().as_slice()).expect("decode");
        let json: serde_json::Value =
            serde_json::from_slice(&message_json(&msg).expect("json")).expect("parse");
        assert_eq!(
            json,
            serde_json::json!({
                "name": "sessions/a",
                "displayName": "A",
                "status": "SESSION_STATUS_RUNNING",
                "messageCount": "3",
            })
        );
        let empty = pool()
            .get_message_by_name("google.protobuf.Empty")
            .expect("message");
        assert_eq!(
            message_json(&DynamicMessage::new(empty)).expect("json"),
            b"{}"
        );
    }
}
