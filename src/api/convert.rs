//! Conversions between proto messages and domain types, and the parsing of resource
//! names. Proto stops here: nothing below `api/` sees a generated type.

use prost_types::{Duration as PbDuration, Timestamp as PbTimestamp};

use crate::{
    domain::{
        self, Error, Message, Part, PermissionMode, ReasoningEffort, Result, Role, Session,
        SessionSource, SessionStatus, Timestamp, ToolCallRecord, ToolCallStatus, Turn, TurnError,
        TurnStatus, Usage, error::Violations, session::SessionSettings,
    },
    pb,
};

// --- names ---

/// The id in `{collection}/{id}`; errors name `field`.
pub fn parse_name<'a>(name: &'a str, collection: &str, field: &str) -> Result<&'a str> {
    let valid = if collection == "models" {
        domain::is_valid_model_id
    } else {
        domain::is_valid_id
    };
    let id = name
        .strip_prefix(collection)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|id| valid(id));
    id.ok_or_else(|| {
        if name.is_empty() {
            Error::invalid(field, "is required")
        } else {
            Error::invalid(
                field,
                format!("must be a name of the form {collection}/{{id}}, got {name:?}"),
            )
        }
    })
}

/// The session and child ids in `sessions/{session}/{kind}/{child}`.
pub fn parse_child_name<'a>(name: &'a str, kind: &str, field: &str) -> Result<(&'a str, &'a str)> {
    let bad = || {
        Error::invalid(
            field,
            format!("must be a name of the form sessions/{{session}}/{kind}/{{id}}, got {name:?}"),
        )
    };
    let mut parts = name.split('/');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("sessions"), Some(session), Some(k), Some(child), None)
            if k == kind && domain::is_valid_id(session) && domain::is_valid_id(child) =>
        {
            Ok((session, child))
        }
        _ => Err(bad()),
    }
}

pub fn session_name(id: &str) -> String {
    format!("sessions/{id}")
}

fn message_name(session: &str, id: &str) -> String {
    format!("sessions/{session}/messages/{id}")
}

fn turn_name(session: &str, id: &str) -> String {
    format!("sessions/{session}/turns/{id}")
}

fn model_name(id: &str) -> String {
    format!("models/{id}")
}

// --- time ---

pub fn timestamp(t: Timestamp) -> Option<PbTimestamp> {
    let (seconds, nanos) = t.to_unix();
    Some(PbTimestamp { seconds, nanos })
}

pub fn from_timestamp(t: &PbTimestamp, field: &str) -> Result<Timestamp> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(Error::invalid(field, "nanos must be in 0..1e9"));
    }
    Ok(Timestamp::from_unix(t.seconds, t.nanos))
}

fn duration(micros: Option<i64>) -> Option<PbDuration> {
    micros.map(|m| PbDuration {
        seconds: m.div_euclid(1_000_000),
        nanos: (m.rem_euclid(1_000_000) * 1_000) as i32,
    })
}

fn from_duration(d: &Option<PbDuration>) -> Option<i64> {
    d.as_ref().map(|d| {
        d.seconds
            .saturating_mul(1_000_000)
            .saturating_add(i64::from(d.nanos) / 1_000)
    })
}

// --- enums: unknown numbers are invalid arguments, not silent defaults ---

fn enum_value<T: TryFrom<i32>>(value: i32, field: &str) -> Result<T> {
    T::try_from(value).map_err(|_| Error::invalid(field, format!("unknown enum value {value}")))
}

pub fn reasoning_effort(value: i32, field: &str) -> Result<ReasoningEffort> {
    Ok(match enum_value::<pb::ReasoningEffort>(value, field)? {
        pb::ReasoningEffort::Unspecified => ReasoningEffort::Default,
        pb::ReasoningEffort::Off => ReasoningEffort::Off,
        pb::ReasoningEffort::Low => ReasoningEffort::Low,
        pb::ReasoningEffort::Medium => ReasoningEffort::Medium,
        pb::ReasoningEffort::High => ReasoningEffort::High,
    })
}

fn reasoning_effort_pb(value: ReasoningEffort) -> pb::ReasoningEffort {
    match value {
        ReasoningEffort::Default => pb::ReasoningEffort::Unspecified,
        ReasoningEffort::Off => pb::ReasoningEffort::Off,
        ReasoningEffort::Low => pb::ReasoningEffort::Low,
        ReasoningEffort::Medium => pb::ReasoningEffort::Medium,
        ReasoningEffort::High => pb::ReasoningEffort::High,
    }
}

pub fn permission_mode(value: i32, field: &str) -> Result<PermissionMode> {
    Ok(match enum_value::<pb::PermissionMode>(value, field)? {
        pb::PermissionMode::Unspecified | pb::PermissionMode::Ask => PermissionMode::Ask,
        pb::PermissionMode::AutoApprove => PermissionMode::AutoApprove,
        pb::PermissionMode::ReadOnly => PermissionMode::ReadOnly,
    })
}

fn permission_mode_pb(value: PermissionMode) -> pb::PermissionMode {
    match value {
        PermissionMode::Ask => pb::PermissionMode::Ask,
        PermissionMode::AutoApprove => pb::PermissionMode::AutoApprove,
        PermissionMode::ReadOnly => pb::PermissionMode::ReadOnly,
    }
}

/// The source of a new session, as a client may set it.
pub fn session_source(value: i32, field: &str) -> Result<Option<SessionSource>> {
    Ok(match enum_value::<pb::SessionSource>(value, field)? {
        pb::SessionSource::Unspecified => None,
        pb::SessionSource::Manual => Some(SessionSource::Manual),
        pb::SessionSource::Schedule => Some(SessionSource::Schedule),
        pb::SessionSource::Api => Some(SessionSource::Api),
        pb::SessionSource::Webhook => Some(SessionSource::Webhook),
    })
}

fn session_source_pb(value: SessionSource) -> pb::SessionSource {
    match value {
        SessionSource::Manual => pb::SessionSource::Manual,
        SessionSource::Schedule => pb::SessionSource::Schedule,
        SessionSource::Api => pb::SessionSource::Api,
        SessionSource::Webhook => pb::SessionSource::Webhook,
    }
}

fn session_status_pb(value: SessionStatus) -> pb::SessionStatus {
    match value {
        SessionStatus::Idle => pb::SessionStatus::Idle,
        SessionStatus::Running => pb::SessionStatus::Running,
        SessionStatus::AwaitingConfirmation => pb::SessionStatus::AwaitingConfirmation,
    }
}

pub fn role_pb(value: Role) -> pb::Role {
    match value {
        Role::User => pb::Role::User,
        Role::Assistant => pb::Role::Assistant,
        Role::Tool => pb::Role::Tool,
        Role::System => pb::Role::System,
    }
}

fn role(value: i32, field: &str) -> Result<Role> {
    match enum_value::<pb::Role>(value, field)? {
        pb::Role::Unspecified => Err(Error::invalid(field, "is required")),
        pb::Role::User => Ok(Role::User),
        pb::Role::Assistant => Ok(Role::Assistant),
        pb::Role::Tool => Ok(Role::Tool),
        pb::Role::System => Ok(Role::System),
    }
}

fn turn_status_pb(value: TurnStatus) -> pb::TurnStatus {
    match value {
        TurnStatus::Queued => pb::TurnStatus::Queued,
        TurnStatus::Running => pb::TurnStatus::Running,
        TurnStatus::Succeeded => pb::TurnStatus::Succeeded,
        TurnStatus::Failed => pb::TurnStatus::Failed,
        TurnStatus::Cancelled => pb::TurnStatus::Cancelled,
        TurnStatus::Interrupted => pb::TurnStatus::Interrupted,
    }
}

fn turn_status(value: i32, field: &str) -> Result<TurnStatus> {
    match enum_value::<pb::TurnStatus>(value, field)? {
        pb::TurnStatus::Unspecified => Err(Error::invalid(field, "is required")),
        pb::TurnStatus::Queued => Ok(TurnStatus::Queued),
        pb::TurnStatus::Running => Ok(TurnStatus::Running),
        pb::TurnStatus::Succeeded => Ok(TurnStatus::Succeeded),
        pb::TurnStatus::Failed => Ok(TurnStatus::Failed),
        pb::TurnStatus::Cancelled => Ok(TurnStatus::Cancelled),
        pb::TurnStatus::Interrupted => Ok(TurnStatus::Interrupted),
    }
}

fn tool_call_status_pb(value: ToolCallStatus) -> pb::ToolCallStatus {
    match value {
        ToolCallStatus::AwaitingConfirmation => pb::ToolCallStatus::AwaitingConfirmation,
        ToolCallStatus::Running => pb::ToolCallStatus::Running,
        ToolCallStatus::Succeeded => pb::ToolCallStatus::Succeeded,
        ToolCallStatus::Failed => pb::ToolCallStatus::Failed,
        ToolCallStatus::Denied => pb::ToolCallStatus::Denied,
        ToolCallStatus::Cancelled => pb::ToolCallStatus::Cancelled,
    }
}

fn tool_call_status(value: i32, field: &str) -> Result<ToolCallStatus> {
    match enum_value::<pb::ToolCallStatus>(value, field)? {
        pb::ToolCallStatus::Unspecified => Err(Error::invalid(field, "is required")),
        pb::ToolCallStatus::AwaitingConfirmation => Ok(ToolCallStatus::AwaitingConfirmation),
        pb::ToolCallStatus::Running => Ok(ToolCallStatus::Running),
        pb::ToolCallStatus::Succeeded => Ok(ToolCallStatus::Succeeded),
        pb::ToolCallStatus::Failed => Ok(ToolCallStatus::Failed),
        pb::ToolCallStatus::Denied => Ok(ToolCallStatus::Denied),
        pb::ToolCallStatus::Cancelled => Ok(ToolCallStatus::Cancelled),
    }
}

// --- sessions ---

fn usage_pb(u: &Usage) -> pb::Usage {
    pb::Usage {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        reasoning_tokens: u.reasoning_tokens,
        cached_input_tokens: u.cached_input_tokens,
    }
}

fn usage(u: &Option<pb::Usage>) -> Usage {
    u.as_ref().map_or_else(Usage::default, |u| Usage {
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        reasoning_tokens: u.reasoning_tokens,
        cached_input_tokens: u.cached_input_tokens,
    })
}

pub fn session_pb(s: &Session) -> pb::Session {
    pb::Session {
        name: session_name(&s.id),
        display_name: s.display_name.clone(),
        model: s.model.as_deref().map(model_name).unwrap_or_default(),
        reasoning_effort: reasoning_effort_pb(s.reasoning_effort).into(),
        working_dir: s.working_dir.clone(),
        permission_mode: permission_mode_pb(s.permission_mode).into(),
        system_prompt: s.system_prompt.clone(),
        labels: s
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        pinned: s.pinned,
        source: session_source_pb(s.source).into(),
        status: session_status_pb(s.status).into(),
        queue_depth: s.queue_depth,
        message_count: s.message_count,
        last_message_preview: s.last_message_preview.clone(),
        usage: Some(usage_pb(&s.usage)),
        create_time: timestamp(s.create_time),
        update_time: timestamp(s.update_time),
        last_active_time: timestamp(s.last_active_time),
        etag: s.etag(),
        forked_from: s
            .forked_from
            .as_deref()
            .map(session_name)
            .unwrap_or_default(),
        active_turn: s
            .active_turn
            .as_deref()
            .map(|t| turn_name(&s.id, t))
            .unwrap_or_default(),
    }
}

/// The client-settable fields of a Session. Field paths in errors are relative to the
/// Session message (callers prefix them with `within`).
pub fn session_settings(s: &pb::Session) -> Result<SessionSettings> {
    let mut v = Violations::new();
    let model = if s.model.is_empty() {
        None
    } else {
        match parse_name(&s.model, "models", "model") {
            Ok(id) => Some(id.to_owned()),
            Err(err) => {
                v.check(Err(err));
                None
            }
        }
    };
    let reasoning_effort = reasoning_effort(s.reasoning_effort, "reasoning_effort");
    let permission_mode = permission_mode(s.permission_mode, "permission_mode");
    let settings = SessionSettings {
        display_name: s.display_name.clone(),
        model,
        reasoning_effort: reasoning_effort.as_ref().copied().unwrap_or_default(),
        working_dir: s.working_dir.clone(),
        permission_mode: permission_mode.as_ref().copied().unwrap_or_default(),
        system_prompt: s.system_prompt.clone(),
        labels: s
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        pinned: s.pinned,
    };
    v.check(reasoning_effort.map(drop));
    v.check(permission_mode.map(drop));
    v.check(settings.validate());
    v.into_result()?;
    Ok(settings)
}

// --- messages and turns ---

pub fn part_pb(part: &Part) -> pb::Part {
    use pb::part::Kind;
    let kind = match part {
        Part::Text { text } => Kind::Text(text.clone()),
        Part::Reasoning { text } => Kind::Reasoning(text.clone()),
        Part::Attachment {
            mime_type,
            filename,
            data,
            uri,
        } => Kind::Attachment(pb::Attachment {
            mime_type: mime_type.clone(),
            filename: filename.clone(),
            source: match (data, uri) {
                (Some(data), _) => Some(pb::attachment::Source::Data(data.clone())),
                (None, Some(uri)) => Some(pb::attachment::Source::Uri(uri.clone())),
                (None, None) => None,
            },
        }),
        Part::ToolCall {
            id,
            tool,
            arguments_json,
        } => Kind::ToolCall(pb::ToolCall {
            id: id.clone(),
            tool: tool.clone(),
            arguments_json: arguments_json.clone(),
        }),
        Part::ToolResult {
            tool_call_id,
            output,
            is_error,
        } => Kind::ToolResult(pb::ToolResult {
            tool_call_id: tool_call_id.clone(),
            output: output.clone(),
            is_error: *is_error,
        }),
    };
    pb::Part { kind: Some(kind) }
}

pub fn part(p: &pb::Part, field: &str) -> Result<Part> {
    use pb::part::Kind;
    Ok(match &p.kind {
        None => {
            return Err(Error::invalid(
                field,
                "must set one of text, reasoning, attachment, tool_call, tool_result",
            ));
        }
        Some(Kind::Text(text)) => Part::Text { text: text.clone() },
        Some(Kind::Reasoning(text)) => Part::Reasoning { text: text.clone() },
        Some(Kind::Attachment(a)) => {
            if a.mime_type.is_empty() {
                return Err(Error::invalid(
                    format!("{field}.attachment.mime_type"),
                    "is required",
                ));
            }
            let (data, uri) = match &a.source {
                Some(pb::attachment::Source::Data(d)) => (Some(d.clone()), None),
                Some(pb::attachment::Source::Uri(u)) => (None, Some(u.clone())),
                None => {
                    return Err(Error::invalid(
                        format!("{field}.attachment"),
                        "must set data or uri",
                    ));
                }
            };
            Part::Attachment {
                mime_type: a.mime_type.clone(),
                filename: a.filename.clone(),
                data,
                uri,
            }
        }
        Some(Kind::ToolCall(c)) => Part::ToolCall {
            id: c.id.clone(),
            tool: c.tool.clone(),
            arguments_json: c.arguments_json.clone(),
        },
        Some(Kind::ToolResult(r)) => Part::ToolResult {
            tool_call_id: r.tool_call_id.clone(),
            output: r.output.clone(),
            is_error: r.is_error,
        },
    })
}

pub fn message_pb(m: &Message) -> pb::Message {
    pb::Message {
        name: message_name(&m.session_id, &m.id),
        role: role_pb(m.role).into(),
        parts: m.parts.iter().map(part_pb).collect(),
        turn: m
            .turn_id
            .as_deref()
            .map(|t| turn_name(&m.session_id, t))
            .unwrap_or_default(),
        create_time: timestamp(m.create_time),
        incomplete: m.incomplete,
        model: m.model.as_deref().map(model_name).unwrap_or_default(),
    }
}

/// The id part of the last segment of a child name, if the name is well-formed.
fn child_id(name: &str) -> Option<String> {
    name.rsplit('/')
        .next()
        .filter(|id| domain::is_valid_id(id))
        .map(str::to_owned)
}

/// A message from an archive; ids are replaced on import, so only their order matters.
pub fn message(m: &pb::Message, field: &str) -> Result<Message> {
    let parts = m
        .parts
        .iter()
        .enumerate()
        .map(|(i, p)| part(p, &format!("{field}.parts[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    Ok(Message {
        id: child_id(&m.name).unwrap_or_else(domain::new_id),
        session_id: String::new(),
        turn_id: child_id(&m.turn),
        role: role(m.role, &format!("{field}.role"))?,
        parts,
        create_time: m
            .create_time
            .as_ref()
            .map(|t| from_timestamp(t, &format!("{field}.create_time")))
            .transpose()?
            .unwrap_or_else(Timestamp::now),
        incomplete: m.incomplete,
        model: m.model.strip_prefix("models/").map(str::to_owned),
        // Given by the archive's order on import.
        position: None,
    })
}

pub fn tool_call_record_pb(r: &ToolCallRecord) -> pb::ToolCallRecord {
    pb::ToolCallRecord {
        call: Some(pb::ToolCall {
            id: r.id.clone(),
            tool: r.tool.clone(),
            arguments_json: r.arguments_json.clone(),
        }),
        status: tool_call_status_pb(r.status).into(),
        result: Some(pb::ToolResult {
            tool_call_id: r.id.clone(),
            output: r.output.clone(),
            is_error: r.is_error,
        }),
        exit_code: r.exit_code,
        start_time: r.start_time.and_then(timestamp),
        end_time: r.end_time.and_then(timestamp),
    }
}

fn tool_call_record(r: &pb::ToolCallRecord, field: &str) -> Result<ToolCallRecord> {
    let call = r.call.clone().unwrap_or_default();
    let result = r.result.clone().unwrap_or_default();
    Ok(ToolCallRecord {
        id: call.id,
        tool: call.tool,
        arguments_json: call.arguments_json,
        status: tool_call_status(r.status, &format!("{field}.status"))?,
        output: result.output,
        is_error: result.is_error,
        exit_code: r.exit_code,
        start_time: r
            .start_time
            .as_ref()
            .map(|t| from_timestamp(t, field))
            .transpose()?,
        end_time: r
            .end_time
            .as_ref()
            .map(|t| from_timestamp(t, field))
            .transpose()?,
    })
}

pub fn turn_pb(t: &Turn) -> pb::Turn {
    pb::Turn {
        name: turn_name(&t.session_id, &t.id),
        status: turn_status_pb(t.status).into(),
        user_message: t
            .user_message_id
            .as_deref()
            .map(|m| message_name(&t.session_id, m))
            .unwrap_or_default(),
        model: t.model.as_deref().map(model_name).unwrap_or_default(),
        usage: Some(usage_pb(&t.usage)),
        latency: duration(t.latency_micros),
        time_to_first_token: duration(t.time_to_first_token_micros),
        error: t.error.as_ref().map(|e| pb::TurnError {
            reason: e.reason.clone(),
            message: e.message.clone(),
        }),
        create_time: timestamp(t.create_time),
        start_time: t.start_time.and_then(timestamp),
        end_time: t.end_time.and_then(timestamp),
        step_count: t.step_count,
        tool_calls: t.tool_calls.iter().map(tool_call_record_pb).collect(),
    }
}

pub fn turn(t: &pb::Turn, field: &str) -> Result<Turn> {
    let time = |ts: &Option<PbTimestamp>, name: &str| {
        ts.as_ref()
            .map(|ts| from_timestamp(ts, &format!("{field}.{name}")))
            .transpose()
    };
    Ok(Turn {
        id: child_id(&t.name).unwrap_or_else(domain::new_id),
        session_id: String::new(),
        status: turn_status(t.status, &format!("{field}.status"))?,
        user_message_id: child_id(&t.user_message),
        model: t.model.strip_prefix("models/").map(str::to_owned),
        usage: usage(&t.usage),
        latency_micros: from_duration(&t.latency),
        time_to_first_token_micros: from_duration(&t.time_to_first_token),
        error: t.error.as_ref().map(|e| TurnError {
            reason: e.reason.clone(),
            message: e.message.clone(),
        }),
        create_time: time(&t.create_time, "create_time")?.unwrap_or_else(Timestamp::now),
        start_time: time(&t.start_time, "start_time")?,
        end_time: time(&t.end_time, "end_time")?,
        step_count: t.step_count,
        tool_calls: t
            .tool_calls
            .iter()
            .enumerate()
            .map(|(i, r)| tool_call_record(r, &format!("{field}.tool_calls[{i}]")))
            .collect::<Result<Vec<_>>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_strictly() {
        let id = domain::new_id();
        assert_eq!(
            parse_name(&format!("sessions/{id}"), "sessions", "name").ok(),
            Some(id.as_str())
        );
        for bad in [
            "",
            "sessions/",
            "sessions/x",
            "models/abc",
            &format!("sessions/{id}/x"),
        ] {
            let err = parse_name(bad, "sessions", "name").expect_err(bad);
            assert!(matches!(&err, Error::InvalidArgument(v) if v[0].field == "name"));
        }
        let child = domain::new_id();
        assert_eq!(
            parse_child_name(
                &format!("sessions/{id}/messages/{child}"),
                "messages",
                "up_to"
            )
            .ok(),
            Some((id.as_str(), child.as_str()))
        );
        assert!(
            parse_child_name(&format!("sessions/{id}/turns/{child}"), "messages", "up_to").is_err()
        );
    }

    #[test]
    fn unknown_enum_numbers_are_field_violations() {
        let session = pb::Session {
            permission_mode: 42,
            reasoning_effort: 7,
            ..Default::default()
        };
        let Err(Error::InvalidArgument(v)) = session_settings(&session) else {
            panic!("expected violations");
        };
        let fields: Vec<_> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["reasoning_effort", "permission_mode"]);
    }

    #[test]
    fn turns_round_trip_through_proto() {
        let t = Turn {
            id: domain::new_id(),
            session_id: domain::new_id(),
            status: TurnStatus::Failed,
            user_message_id: Some(domain::new_id()),
            model: Some(domain::new_id()),
            usage: Usage {
                input_tokens: 3,
                output_tokens: 4,
                ..Usage::default()
            },
            latency_micros: Some(1_500_000),
            time_to_first_token_micros: Some(250),
            error: Some(TurnError {
                reason: "PROVIDER_ERROR".into(),
                message: "boom".into(),
            }),
            create_time: Timestamp(10),
            start_time: Some(Timestamp(11)),
            end_time: Some(Timestamp(12)),
            step_count: 2,
            tool_calls: vec![ToolCallRecord {
                id: "c".into(),
                tool: "shell".into(),
                arguments_json: "{}".into(),
                status: ToolCallStatus::Succeeded,
                output: "ok".into(),
                is_error: false,
                exit_code: Some(0),
                start_time: Some(Timestamp(11)),
                end_time: Some(Timestamp(12)),
            }],
        };
        let mut back = turn(&turn_pb(&t), "turn").expect("converts");
        back.session_id = t.session_id.clone();
        assert_eq!(back, t);
    }
}
