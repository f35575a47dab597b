//! Conversions between proto messages and domain types, and the parsing of resource
//! names. Proto stops here: nothing below `api/` sees a generated type.

use std::time::Duration;

use prost_types::{Duration as PbDuration, Timestamp as PbTimestamp};

use crate::{
    domain::{
        self, Error, Message, Model, Part, PermissionMode, ProviderKind, ReasoningEffort, Result,
        Role, Session, SessionSource, SessionStatus, Timestamp, ToolCallRecord, ToolCallStatus,
        Turn, TurnError, TurnStatus, Usage,
        error::Violations,
        schedule::{OverlapPolicy, RetryPolicy, RunStatus, RunTrigger, Schedule, ScheduleRun},
        session::SessionSettings,
    },
    pb,
};

// --- names ---

/// The id in `{collection}/{id}`; errors name `field`.
pub fn parse_name<'a>(name: &'a str, collection: &str, field: &str) -> Result<&'a str> {
    let valid = match collection {
        "models" | "profiles" | "triggers" => domain::is_valid_model_id,
        "mcpServers" => domain::mcp::is_valid_id,
        _ => domain::is_valid_id,
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
    parse_nested_name(name, "sessions", kind, field)
}

/// The parent and child ids in `{parent}/{p}/{kind}/{child}` (both UUIDs).
pub fn parse_nested_name<'a>(
    name: &'a str,
    parent: &str,
    kind: &str,
    field: &str,
) -> Result<(&'a str, &'a str)> {
    let bad = || {
        Error::invalid(
            field,
            format!("must be a name of the form {parent}/{{id}}/{kind}/{{id}}, got {name:?}"),
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
        (Some(p), Some(session), Some(k), Some(child), None)
            if p == parent
                && k == kind
                && domain::is_valid_id(session)
                && domain::is_valid_id(child) =>
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

pub fn model_name(id: &str) -> String {
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

pub fn duration(micros: Option<i64>) -> Option<PbDuration> {
    micros.map(|m| PbDuration {
        seconds: m.div_euclid(1_000_000),
        nanos: (m.rem_euclid(1_000_000) * 1_000) as i32,
    })
}

pub fn from_duration(d: &Option<PbDuration>) -> Option<i64> {
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

pub fn reasoning_effort_pb(value: ReasoningEffort) -> pb::ReasoningEffort {
    match value {
        ReasoningEffort::Default => pb::ReasoningEffort::Unspecified,
        ReasoningEffort::Off => pb::ReasoningEffort::Off,
        ReasoningEffort::Low => pb::ReasoningEffort::Low,
        ReasoningEffort::Medium => pb::ReasoningEffort::Medium,
        ReasoningEffort::High => pb::ReasoningEffort::High,
    }
}

/// A permission mode a client may leave unset (UNSPECIFIED: `None`).
pub fn permission_mode_choice(value: i32, field: &str) -> Result<Option<PermissionMode>> {
    Ok(match enum_value::<pb::PermissionMode>(value, field)? {
        pb::PermissionMode::Unspecified => None,
        _ => Some(permission_mode(value, field)?),
    })
}

pub fn permission_mode(value: i32, field: &str) -> Result<PermissionMode> {
    Ok(match enum_value::<pb::PermissionMode>(value, field)? {
        pb::PermissionMode::Unspecified | pb::PermissionMode::Ask => PermissionMode::Ask,
        pb::PermissionMode::AutoApprove => PermissionMode::AutoApprove,
        pb::PermissionMode::ReadOnly => PermissionMode::ReadOnly,
    })
}

pub fn permission_mode_pb(value: PermissionMode) -> pb::PermissionMode {
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
        SessionStatus::AwaitingInput => pb::SessionStatus::AwaitingInput,
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
        mcp_servers: s.mcp_servers.as_ref().map(|ids| pb::McpServerSelection {
            names: ids.iter().map(|id| format!("mcpServers/{id}")).collect(),
        }),
        delete_time: s.delete_time.and_then(timestamp),
        expire_time: s.expire_time.and_then(timestamp),
        profile: s.profile.as_deref().map(profile_name).unwrap_or_default(),
    }
}

/// `profiles/{id}`.
pub fn profile_name(id: &str) -> String {
    format!("profiles/{id}")
}

/// An optional reference to a profile, `profiles/{profile}`: empty is `None`.
pub fn profile_ref(name: &str, field: &str) -> Result<Option<String>> {
    match name {
        "" => Ok(None),
        name => Ok(Some(parse_name(name, "profiles", field)?.to_owned())),
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
    let permission_mode = permission_mode_choice(s.permission_mode, "permission_mode");
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
        mcp_servers: s.mcp_servers.as_ref().map(|selection| {
            selection
                .names
                .iter()
                .enumerate()
                .filter_map(|(i, name)| {
                    match parse_name(name, "mcpServers", &format!("mcp_servers.names[{i}]")) {
                        Ok(id) => Some(id.to_owned()),
                        Err(err) => {
                            v.check(Err(err));
                            None
                        }
                    }
                })
                .collect()
        }),
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

pub fn context_compacted_pb(summary: &crate::domain::summary::Summary) -> pb::ContextCompacted {
    pb::ContextCompacted {
        replaced_messages: summary.replaced_messages as i32,
        tokens_before: summary.tokens_before as i64,
        tokens_after: summary.tokens_after as i64,
        summary: summary.text.clone(),
        model: format!("models/{}", summary.model),
    }
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

// --- update masks ---

/// The fields an update mask names (`*` for all), or None when there is no mask (the
/// caller then takes the populated fields, AIP-134). A nested path such as
/// `retry_policy.max_attempts` changes its whole top-level field.
pub fn mask_fields<F: domain::UpdatableField>(
    mask: Option<&prost_types::FieldMask>,
) -> Result<Option<Vec<F>>> {
    let Some(mask) = mask.filter(|mask| !mask.paths.is_empty()) else {
        return Ok(None);
    };
    let mut fields = Vec::new();
    for path in &mask.paths {
        if path == "*" {
            return Ok(Some(F::ALL.to_vec()));
        }
        let top = path.split('.').next().unwrap_or(path);
        match F::from_api_name(top) {
            Some(field) => fields.push(field),
            None => {
                let names: Vec<&str> = F::ALL.iter().map(|f| f.api_name()).collect();
                return Err(Error::invalid(
                    "update_mask",
                    format!(
                        "{path:?} is not an updatable field; use {}",
                        names.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(Some(fields))
}

// --- etags ---

/// The etag of a resource at `revision` (the same form as sessions': `"N"`).
pub fn etag(revision: i64) -> String {
    format!("\"{revision}\"")
}

/// The revision a client-sent etag expects; `None` for no etag (don't check). An etag
/// this server did not issue expects a revision that never exists, so it mismatches.
pub fn expected_revision(etag: &str) -> Option<i64> {
    if etag.is_empty() {
        return None;
    }
    Some(
        etag.trim_matches('"')
            .parse::<i64>()
            .ok()
            .filter(|r| *r > 0)
            .unwrap_or(-1),
    )
}

// --- google.protobuf.Struct <-> JSON ---

pub fn struct_pb(map: &serde_json::Map<String, serde_json::Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: map.iter().map(|(k, v)| (k.clone(), value_pb(v))).collect(),
    }
}

fn value_pb(value: &serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(*b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s.clone()),
        serde_json::Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(value_pb).collect(),
        }),
        serde_json::Value::Object(map) => Kind::StructValue(struct_pb(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

pub fn struct_json(s: &prost_types::Struct) -> serde_json::Map<String, serde_json::Value> {
    s.fields
        .iter()
        .map(|(k, v)| (k.clone(), value_json(v)))
        .collect()
}

fn value_json(value: &prost_types::Value) -> serde_json::Value {
    use prost_types::value::Kind;
    match &value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(*b),
        // Whole numbers stay integers, so options like `tokens = 20` read back as written.
        Some(Kind::NumberValue(n)) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
            serde_json::Value::from(*n as i64)
        }
        Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(*n)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s.clone()),
        Some(Kind::ListValue(list)) => {
            serde_json::Value::Array(list.values.iter().map(value_json).collect())
        }
        Some(Kind::StructValue(s)) => serde_json::Value::Object(struct_json(s)),
    }
}

// --- models ---

pub fn provider_kind_pb(kind: ProviderKind) -> pb::ProviderKind {
    match kind {
        ProviderKind::OpenAiCompatible => pb::ProviderKind::OpenaiCompatible,
        ProviderKind::Anthropic => pb::ProviderKind::Anthropic,
        ProviderKind::Mock => pb::ProviderKind::Mock,
    }
}

pub fn model_pb(m: &Model) -> pb::Model {
    pb::Model {
        name: model_name(&m.id),
        display_name: m.display_name.clone(),
        provider: provider_kind_pb(m.provider) as i32,
        provider_model: m.provider_model.clone(),
        base_url: m.base_url.clone(),
        api_key: m.api_key_hint(),
        api_key_env: m.api_key_env.clone().unwrap_or_default(),
        capabilities: Some(pb::ModelCapabilities {
            tools: m.capabilities.tools,
            vision: m.capabilities.vision,
            reasoning: m.capabilities.reasoning,
        }),
        context_window: i32::try_from(m.context_window).unwrap_or(i32::MAX),
        max_output_tokens: i32::try_from(m.max_output_tokens).unwrap_or(i32::MAX),
        is_default: m.is_default,
        extra_headers: m.extra_headers.clone().into_iter().collect(),
        provider_options: Some(struct_pb(&m.options)),
        create_time: timestamp(m.create_time),
        update_time: timestamp(m.update_time),
        etag: etag(m.revision),
    }
}

/// The client-settable fields of a model; `provider` may be unset only when
/// `provider_required` is false (an update that does not change it).
pub fn model(m: &pb::Model, provider_required: bool) -> Result<Model> {
    let mut v = Violations::new();
    let provider = match pb::ProviderKind::try_from(m.provider) {
        Ok(pb::ProviderKind::OpenaiCompatible) => Some(ProviderKind::OpenAiCompatible),
        Ok(pb::ProviderKind::Anthropic) => Some(ProviderKind::Anthropic),
        Ok(pb::ProviderKind::Mock) => Some(ProviderKind::Mock),
        Ok(pb::ProviderKind::Unspecified) => {
            if provider_required {
                v.add(
                    "provider",
                    "is required: OPENAI_COMPATIBLE, ANTHROPIC or MOCK",
                );
            }
            None
        }
        Err(_) => {
            v.add("provider", format!("unknown enum value {}", m.provider));
            None
        }
    };
    let non_negative = |v: &mut Violations, value: i32, field: &str| -> u32 {
        u32::try_from(value).unwrap_or_else(|_| {
            v.add(field, "must not be negative");
            0
        })
    };
    let context_window = non_negative(&mut v, m.context_window, "context_window");
    let max_output_tokens = non_negative(&mut v, m.max_output_tokens, "max_output_tokens");
    v.into_result()?;
    let capabilities = m.capabilities.unwrap_or_default();
    let mut model = Model::new("", provider.unwrap_or(ProviderKind::Mock));
    model.display_name = m.display_name.clone();
    model.provider_model = m.provider_model.clone();
    model.base_url = m.base_url.clone();
    model.api_key = Some(m.api_key.clone()).filter(|k| !k.is_empty());
    model.api_key_env = Some(m.api_key_env.clone()).filter(|k| !k.is_empty());
    model.capabilities = domain::ModelCapabilities {
        tools: capabilities.tools,
        vision: capabilities.vision,
        reasoning: capabilities.reasoning,
    };
    model.context_window = context_window;
    model.max_output_tokens = max_output_tokens;
    model.is_default = m.is_default;
    model.extra_headers = m.extra_headers.clone().into_iter().collect();
    model.options = m
        .provider_options
        .as_ref()
        .map(struct_json)
        .unwrap_or_default();
    Ok(model)
}

// --- schedules ---

pub fn schedule_name(id: &str) -> String {
    format!("schedules/{id}")
}

pub fn std_duration(d: Duration) -> Option<PbDuration> {
    duration(Some(domain::time::micros(d)))
}

/// A positive duration, or `default` when unset or zero.
fn positive_duration(
    v: &mut Violations,
    d: &Option<PbDuration>,
    default: Duration,
    field: &str,
) -> Duration {
    match from_duration(d) {
        None | Some(0) => default,
        Some(micros) if micros < 0 => {
            v.add(field, "must not be negative");
            default
        }
        Some(micros) => Duration::from_micros(micros as u64),
    }
}

pub fn schedule_pb(s: &Schedule, last_run: Option<&ScheduleRun>) -> pb::Schedule {
    pb::Schedule {
        name: schedule_name(&s.id),
        display_name: s.display_name.clone(),
        prompt: s.prompt.clone(),
        cron: s.cron.clone(),
        time_zone: s.time_zone.clone(),
        enabled: Some(s.enabled),
        target_session: s
            .target_session
            .as_deref()
            .map(session_name)
            .unwrap_or_default(),
        model: s.model.as_deref().map(model_name).unwrap_or_default(),
        permission_mode: s
            .permission_mode
            .map_or(pb::PermissionMode::Unspecified, permission_mode_pb)
            as i32,
        working_dir: s.working_dir.clone(),
        overlap_policy: match s.overlap {
            OverlapPolicy::Skip => pb::OverlapPolicy::Skip,
            OverlapPolicy::Queue => pb::OverlapPolicy::Queue,
        } as i32,
        retry_policy: Some(pb::RetryPolicy {
            max_attempts: i32::try_from(s.retry.max_attempts).unwrap_or(i32::MAX),
            initial_backoff: std_duration(s.retry.initial_backoff),
            max_backoff: std_duration(s.retry.max_backoff),
        }),
        webhook_url: s.webhook_url.clone().unwrap_or_default(),
        webhook_secret: s
            .webhook_secret
            .as_deref()
            .map(domain::secret::mask)
            .unwrap_or_default(),
        next_run_time: s.next_run_time.and_then(timestamp),
        last_run: last_run.map(schedule_run_pb),
        create_time: timestamp(s.create_time),
        update_time: timestamp(s.update_time),
        etag: etag(s.revision),
        profile: s.profile.as_deref().map(profile_name).unwrap_or_default(),
    }
}

/// The client-settable fields of a schedule; paths in violations are relative to it.
pub fn schedule(s: &pb::Schedule) -> Result<Schedule> {
    let mut v = Violations::new();
    let target_session = match s.target_session.as_str() {
        "" => None,
        name => parse_name(name, "sessions", "target_session")
            .map_err(|e| v.check(Err(e)))
            .ok()
            .map(str::to_owned),
    };
    let model = match s.model.as_str() {
        "" => None,
        name => parse_name(name, "models", "model")
            .map_err(|e| v.check(Err(e)))
            .ok()
            .map(str::to_owned),
    };
    let permission_mode = permission_mode_choice(s.permission_mode, "permission_mode")
        .map_err(|e| v.check(Err(e)))
        .unwrap_or_default();
    let profile = profile_ref(&s.profile, "profile")
        .map_err(|e| v.check(Err(e)))
        .unwrap_or_default();
    let overlap = match pb::OverlapPolicy::try_from(s.overlap_policy) {
        Ok(pb::OverlapPolicy::Unspecified | pb::OverlapPolicy::Skip) => OverlapPolicy::Skip,
        Ok(pb::OverlapPolicy::Queue) => OverlapPolicy::Queue,
        Err(_) => {
            v.add(
                "overlap_policy",
                format!("unknown enum value {}", s.overlap_policy),
            );
            OverlapPolicy::Skip
        }
    };
    let defaults = RetryPolicy::default();
    let retry = match &s.retry_policy {
        None => defaults,
        Some(r) => RetryPolicy {
            max_attempts: match r.max_attempts {
                0 => defaults.max_attempts,
                n => u32::try_from(n).unwrap_or(0),
            },
            initial_backoff: positive_duration(
                &mut v,
                &r.initial_backoff,
                defaults.initial_backoff,
                "retry_policy.initial_backoff",
            ),
            max_backoff: positive_duration(
                &mut v,
                &r.max_backoff,
                defaults.max_backoff,
                "retry_policy.max_backoff",
            ),
        },
    };
    v.into_result()?;
    Ok(Schedule {
        display_name: s.display_name.clone(),
        prompt: s.prompt.clone(),
        cron: s.cron.trim().to_owned(),
        time_zone: s.time_zone.trim().to_owned(),
        enabled: s.enabled.unwrap_or(true),
        target_session,
        model,
        permission_mode,
        profile,
        working_dir: s.working_dir.clone(),
        overlap,
        retry,
        webhook_url: Some(s.webhook_url.clone()).filter(|u| !u.is_empty()),
        webhook_secret: Some(s.webhook_secret.clone()).filter(|u| !u.is_empty()),
        ..Schedule::default()
    })
}

pub fn schedule_run_pb(r: &ScheduleRun) -> pb::ScheduleRun {
    pb::ScheduleRun {
        name: format!("schedules/{}/runs/{}", r.schedule_id, r.id),
        trigger: match r.trigger {
            RunTrigger::Cron => pb::RunTrigger::Cron,
            RunTrigger::Manual => pb::RunTrigger::Manual,
            RunTrigger::Misfire => pb::RunTrigger::Misfire,
        } as i32,
        scheduled_time: timestamp(r.scheduled_time),
        start_time: r.start_time.and_then(timestamp),
        end_time: r.end_time.and_then(timestamp),
        status: match r.status {
            RunStatus::Pending => pb::RunStatus::Pending,
            RunStatus::Running => pb::RunStatus::Running,
            RunStatus::Succeeded => pb::RunStatus::Succeeded,
            RunStatus::Failed => pb::RunStatus::Failed,
            RunStatus::Skipped => pb::RunStatus::Skipped,
        } as i32,
        session: r
            .session_id
            .as_deref()
            .map(session_name)
            .unwrap_or_default(),
        turn: match (&r.session_id, &r.turn_id) {
            (Some(s), Some(t)) => turn_name(s, t),
            _ => String::new(),
        },
        error: r.error.clone(),
        attempt: i32::try_from(r.attempt).unwrap_or(i32::MAX),
        next_retry_delay: r.next_retry_delay.and_then(std_duration),
    }
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
                reason: crate::domain::reason::PROVIDER_ERROR.into(),
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
