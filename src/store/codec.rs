//! What both backends agree on about stored rows, independent of any driver: the text
//! each enum is stored as (the store's own snake_case names, never proto numbers), the
//! JSON kept in TEXT columns, the column lists (the row shape every decoder reads by
//! index and every insert writes in order), and the LIKE pattern of a session search.
//!
//! Nothing here touches a driver type, so `rusqlite` and `tokio_postgres` stay inside
//! their own backend modules. Changing a name or a column order here changes both
//! databases' contents: add a migration to each backend.

use std::time::Duration;

use super::{SessionCursor, SessionFilter};
use crate::domain::session_list::{LabelCondition, SortKey};
use crate::domain::{
    Error, Resource,
    outbox::{AttemptOutcome, DeliveryCounts, DeliveryState},
};

use crate::domain::{
    Model, PermissionMode, ReasoningEffort, SessionSource, Timestamp, TurnError,
    profile::Profile,
    schedule::{RunStatus, RunTrigger, Schedule},
};

// --- rules both backends enforce inside their transactions ---

/// An update may not clear the default flag of the default model: "exactly one default
/// while any model exists" is kept by making another model the default instead.
pub(crate) fn keep_default(stored: &Model, update: &Model) -> crate::domain::Result<()> {
    if stored.is_default && !update.is_default {
        return Err(crate::domain::Error::FailedPrecondition {
            reason: crate::domain::reason::DEFAULT_MODEL_REQUIRED,
            message: format!(
                "models/{} is the default; make another model the default instead",
                update.id
            ),
        });
    }
    Ok(())
}

// --- enum <-> text ---

pub(crate) fn effort_text(value: ReasoningEffort) -> &'static str {
    match value {
        ReasoningEffort::Default => "default",
        ReasoningEffort::Off => "off",
        ReasoningEffort::Low => "low",
        ReasoningEffort::Medium => "medium",
        ReasoningEffort::High => "high",
    }
}

pub(crate) fn effort_from(text: &str) -> ReasoningEffort {
    match text {
        "off" => ReasoningEffort::Off,
        "low" => ReasoningEffort::Low,
        "medium" => ReasoningEffort::Medium,
        "high" => ReasoningEffort::High,
        _ => ReasoningEffort::Default,
    }
}

pub(crate) fn mode_text(value: PermissionMode) -> &'static str {
    match value {
        PermissionMode::Ask => "ask",
        PermissionMode::AutoApprove => "auto_approve",
        PermissionMode::ReadOnly => "read_only",
    }
}

pub(crate) fn mode_from(text: &str) -> PermissionMode {
    match text {
        "auto_approve" => PermissionMode::AutoApprove,
        "read_only" => PermissionMode::ReadOnly,
        _ => PermissionMode::Ask,
    }
}

pub(crate) fn source_text(value: SessionSource) -> &'static str {
    match value {
        SessionSource::Manual => "manual",
        SessionSource::Schedule => "schedule",
        SessionSource::Api => "api",
        SessionSource::Webhook => "webhook",
    }
}

pub(crate) fn source_from(text: &str) -> SessionSource {
    match text {
        "manual" => SessionSource::Manual,
        "schedule" => SessionSource::Schedule,
        "webhook" => SessionSource::Webhook,
        _ => SessionSource::Api,
    }
}

/// A run trigger read back; the error names the unknown value.
pub(crate) fn run_trigger_from(text: &str) -> Result<RunTrigger, String> {
    RunTrigger::parse(text).ok_or_else(|| unknown_value(text))
}

/// A run status read back; the error names the unknown value.
pub(crate) fn run_status_from(text: &str) -> Result<RunStatus, String> {
    RunStatus::parse(text).ok_or_else(|| unknown_value(text))
}

fn unknown_value(text: &str) -> String {
    format!("unknown value {text:?}")
}

// --- JSON in TEXT columns ---

/// Enums stored as JSON strings (their serde names), e.g. a message's role or a turn's
/// status.
pub(crate) fn json_name<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub(crate) fn from_json_name<T: serde::de::DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned()))
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    serde_json::from_str(text)
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Result<String> {
    serde_json::to_string(value)
}

/// A model from its `config` document and the columns that override it.
pub(crate) fn model_from(
    config: &str,
    is_default: bool,
    revision: i64,
) -> serde_json::Result<Model> {
    let mut model: Model = serde_json::from_str(config)?;
    model.is_default = is_default;
    model.revision = revision;
    Ok(model)
}

/// A profile from its `config` document and the columns that override it.
pub(crate) fn profile_from(
    config: &str,
    is_default: bool,
    revision: i64,
) -> serde_json::Result<Profile> {
    let mut profile: Profile = serde_json::from_str(config)?;
    profile.is_default = is_default;
    profile.revision = revision;
    Ok(profile)
}

/// An update may not clear the default flag of the default profile (as for models).
pub(crate) fn keep_default_profile(
    stored: &Profile,
    update: &Profile,
) -> crate::domain::Result<()> {
    if stored.is_default && !update.is_default {
        return Err(crate::domain::Error::FailedPrecondition {
            reason: crate::domain::reason::DEFAULT_PROFILE_REQUIRED,
            message: format!(
                "profiles/{} is the default; make another profile the default instead",
                update.id
            ),
        });
    }
    Ok(())
}

/// A schedule from its `config` document and the columns that override it.
pub(crate) fn schedule_from(
    config: &str,
    next_run_time: Option<i64>,
    revision: i64,
) -> serde_json::Result<Schedule> {
    let mut schedule: Schedule = serde_json::from_str(config)?;
    schedule.next_run_time = next_run_time.map(Timestamp);
    schedule.revision = revision;
    Ok(schedule)
}

// --- column values that are not plain copies ---

/// A turn's error from its two columns: present when a reason is.
pub(crate) fn turn_error(reason: Option<String>, message: Option<String>) -> Option<TurnError> {
    reason.map(|reason| TurnError {
        reason,
        message: message.unwrap_or_default(),
    })
}

/// A stored retry delay (microseconds; negative reads as zero).
pub(crate) fn retry_delay(micros: Option<i64>) -> Option<Duration> {
    micros.map(|micros| Duration::from_micros(micros.max(0) as u64))
}

// --- the row shapes: decoders read these columns by index, in this order ---

pub(crate) const SESSION_COLUMNS: &str = "id, display_name, model, reasoning_effort, working_dir, permission_mode, \
     system_prompt, labels, pinned, source, message_count, last_message_preview, input_tokens, \
     output_tokens, reasoning_tokens, cached_input_tokens, create_time, update_time, \
     last_active_time, revision, forked_from, mcp_servers, delete_time, expire_time, profile";

pub(crate) const MESSAGE_COLUMNS: &str =
    "id, session_id, turn_id, role, parts, create_time, incomplete, model, position";

pub(crate) const TURN_COLUMNS: &str = "id, session_id, status, user_message_id, model, input_tokens, output_tokens, \
     reasoning_tokens, cached_input_tokens, latency_micros, first_token_micros, error_reason, \
     error_message, create_time, start_time, end_time, step_count, tool_calls";

pub(crate) const MODEL_COLUMNS: &str = "is_default, revision, config";

pub(crate) const PROFILE_COLUMNS: &str = "is_default, revision, config";

pub(crate) const TRIGGER_DELIVERY_COLUMNS: &str = "id, trigger_id, replay_key, message_id, event, \
    status, receive_time, payload_bytes, attempts, session_id, turn_id, error";

/// A delivery status read back; the error names the unknown value.
pub(crate) fn trigger_delivery_status_from(
    text: &str,
) -> Result<crate::domain::trigger::TriggerDeliveryStatus, String> {
    crate::domain::trigger::TriggerDeliveryStatus::parse(text).ok_or_else(|| unknown_value(text))
}

pub(crate) const SCHEDULE_COLUMNS: &str = "next_run_time, revision, config";

pub(crate) const RUN_COLUMNS: &str = "id, schedule_id, trigger, scheduled_time, status, start_time, \
    end_time, session_id, turn_id, error, attempt, next_retry_delay_micros, runner";

// --- search ---

/// A value the session list query binds, in a backend's own parameter type.
pub(crate) enum Bound {
    Text(String),
    Int(i64),
    Flag(bool),
}

/// How a backend spells what the session list query needs beyond standard SQL.
pub(crate) struct Dialect {
    /// The case-insensitive match with `\` as escape, e.g. `"LIKE {} ESCAPE '\\'"`.
    pub like: &'static str,
    /// A label's value (NULL when the session has no such label) from the JSON `labels`
    /// column, `{}` being the bound [`Self::label_path`] of the key.
    pub label: &'static str,
    /// What is bound for a label key in [`Self::label`].
    pub label_path: fn(&str) -> String,
}

/// The column a sort key reads.
fn sort_column(key: SortKey) -> &'static str {
    match key {
        SortKey::LastActiveTime => "last_active_time",
        SortKey::CreateTime => "create_time",
        SortKey::DisplayName => "display_name",
    }
}

/// The session list query for `filter` (its order included), after `after`, at most
/// `limit`: one place for what the filters and orders mean on every backend. A keyset:
/// inserts do not shift pages. `bind` records a value and returns its placeholder.
pub(crate) fn session_list_sql(
    filter: &SessionFilter,
    after: Option<&SessionCursor>,
    limit: usize,
    dialect: &Dialect,
    mut bind: impl FnMut(Bound) -> String,
) -> String {
    let mut clauses: Vec<String> = Vec::new();
    if !filter.show_deleted {
        clauses.push("delete_time IS NULL".to_owned());
    }
    if let Some(query) = filter.query.as_deref().filter(|q| !q.is_empty()) {
        let p = bind(Bound::Text(like_pattern(query)));
        let matches = dialect.like.replace("{}", &p);
        clauses.push(format!(
            "(display_name {matches} OR last_message_preview {matches})"
        ));
    }
    if let Some(source) = filter.source {
        let p = bind(Bound::Text(source_text(source).to_owned()));
        clauses.push(format!("source = {p}"));
    }
    if let Some(pinned) = filter.pinned {
        let p = bind(Bound::Flag(pinned));
        clauses.push(format!("pinned = {p}"));
    }
    if let Some(after_time) = filter.created_after {
        let p = bind(Bound::Int(after_time.0));
        clauses.push(format!("create_time >= {p}"));
    }
    if let Some(before) = filter.created_before {
        let p = bind(Bound::Int(before.0));
        clauses.push(format!("create_time < {p}"));
    }
    for condition in &filter.labels {
        let mut label = || {
            let path = bind(Bound::Text((dialect.label_path)(condition.key())));
            dialect.label.replace("{}", &path)
        };
        clauses.push(match condition {
            LabelCondition::Equals { value, .. } => {
                let label = label();
                format!("{label} = {}", bind(Bound::Text(value.clone())))
            }
            // A session without the label is not this value either.
            LabelCondition::NotEquals { value, .. } => {
                let (missing, present) = (label(), label());
                format!(
                    "({missing} IS NULL OR {present} <> {})",
                    bind(Bound::Text(value.clone()))
                )
            }
            LabelCondition::Has { .. } => format!("{} IS NOT NULL", label()),
        });
    }
    let order = &filter.order;
    let key = sort_column(order.key);
    let (direction, beyond) = if order.descending {
        ("DESC", "<")
    } else {
        ("ASC", ">")
    };
    if let Some(cursor) = after {
        let value = || match order.key {
            SortKey::LastActiveTime => Bound::Int(cursor.last_active_time.unwrap_or_default()),
            SortKey::CreateTime => Bound::Int(cursor.create_time.unwrap_or_default()),
            SortKey::DisplayName => Bound::Text(cursor.display_name.clone().unwrap_or_default()),
        };
        clauses.push(if order.pinned_first && order.descending {
            // One direction throughout: one row-value comparison (the list index's order).
            let pinned = bind(Bound::Flag(cursor.pinned));
            let value = bind(value());
            let id = bind(Bound::Text(cursor.id.clone()));
            format!("(pinned, {key}, id) < ({pinned}, {value}, {id})")
        } else {
            let pinned = order.pinned_first.then(|| {
                (
                    bind(Bound::Flag(cursor.pinned)),
                    bind(Bound::Flag(cursor.pinned)),
                )
            });
            let value = bind(value());
            let id = bind(Bound::Text(cursor.id.clone()));
            let rest = format!("({key}, id) {beyond} ({value}, {id})");
            match pinned {
                None => rest,
                // Pinned DESC before an ASC key: a later pinned group, or the same one
                // further on.
                Some((below, same)) => {
                    format!("(pinned < {below} OR (pinned = {same} AND {rest}))")
                }
            }
        });
    }
    let limit = bind(Bound::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
    let where_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let pinned = if order.pinned_first {
        "pinned DESC, "
    } else {
        ""
    };
    format!(
        "SELECT {SESSION_COLUMNS} FROM sessions {where_sql} \
         ORDER BY {pinned}{key} {direction}, id {direction} LIMIT {limit}"
    )
}

/// A LIKE pattern matching `query` anywhere: `%`, `_` and the escape character `\` are
/// literal in a user's search text (both backends escape with `\`).
pub(crate) fn like_pattern(query: &str) -> String {
    let mut pattern = String::with_capacity(query.len() + 2);
    pattern.push('%');
    for c in query.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// Refuses a notice larger than both backends deliver.
pub(crate) fn check_notice(notice: &str) -> crate::domain::Result<()> {
    if notice.len() > crate::store::MAX_NOTICE_BYTES {
        return Err(crate::domain::Error::Internal(format!(
            "a change notice of {} bytes is over the {} byte limit",
            notice.len(),
            crate::store::MAX_NOTICE_BYTES
        )));
    }
    Ok(())
}

// --- the webhook outbox's rules, the same on every backend ---

/// The state, next attempt time and error an outcome stores.
pub(super) fn outcome_columns(
    outcome: &AttemptOutcome,
    now: Timestamp,
) -> (DeliveryState, Timestamp, &str) {
    match outcome {
        AttemptOutcome::Delivered => (DeliveryState::Delivered, now, ""),
        AttemptOutcome::Retry { at, error } => (DeliveryState::Pending, *at, error.as_str()),
        AttemptOutcome::Dead { error } => (DeliveryState::Dead, now, error.as_str()),
    }
}

pub(super) fn add_count(counts: &mut DeliveryCounts, state: &str, n: i64) {
    let n = u64::try_from(n).unwrap_or(0);
    match DeliveryState::parse(state) {
        Some(DeliveryState::Pending) => counts.pending += n,
        Some(DeliveryState::Delivered) => counts.delivered += n,
        Some(DeliveryState::Dead) => counts.dead += n,
        None => {}
    }
}

pub(super) fn not_found(id: &str) -> Error {
    Error::not_found(Resource::WebhookDelivery, format!("webhookDeliveries/{id}"))
}

pub(super) fn delivered(id: &str) -> Error {
    Error::FailedPrecondition {
        reason: crate::domain::reason::WEBHOOK_DELIVERED,
        message: format!("webhookDeliveries/{id} was delivered already; there is nothing to retry"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_names_round_trip() {
        for effort in [
            ReasoningEffort::Default,
            ReasoningEffort::Off,
            ReasoningEffort::Low,
            ReasoningEffort::Medium,
            ReasoningEffort::High,
        ] {
            assert_eq!(effort_from(effort_text(effort)), effort);
        }
        for mode in [
            PermissionMode::Ask,
            PermissionMode::AutoApprove,
            PermissionMode::ReadOnly,
        ] {
            assert_eq!(mode_from(mode_text(mode)), mode);
        }
        for source in [
            SessionSource::Manual,
            SessionSource::Schedule,
            SessionSource::Api,
            SessionSource::Webhook,
        ] {
            assert_eq!(source_from(source_text(source)), source);
        }
        assert_eq!(run_trigger_from("cron"), Ok(RunTrigger::Cron));
        assert_eq!(
            run_status_from("nope"),
            Err("unknown value \"nope\"".to_owned())
        );
    }

    #[test]
    fn like_pattern_escapes_metacharacters() {
        assert_eq!(like_pattern(r"50%_a\b"), r"%50\%\_a\\b%");
    }
}
