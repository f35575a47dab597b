//! What the model is sent of a conversation, and compaction: summarising its oldest
//! part so that a long session keeps its meaning instead of forgetting its start.
//!
//! The view of a request: the session's system prompt with the summary (if any) after
//! it, then the messages after the summary's `through_position`, repaired (every tool
//! call has a result) and, only as a last resort, trimmed to the window.
//!
//! When to compact: before each model request, the request's size is measured as what
//! the provider counted for the last request of the session (its reported input tokens)
//! plus an estimate (4 characters a token) of the messages since; before the session's
//! first answer, and right after a compaction, by the estimate alone. Past `threshold`
//! of the window (0.75 by default) the oldest messages are summarised: the newest ones,
//! from a user message on and up to `keep` of the window (0.25), stay as they are;
//! everything before them, with the previous summary, goes to the model (or the
//! configured `[compaction] model`) in one request, and its answer is the new summary.
//! The originals stay stored: history and export show them.
//!
//! A compaction that fails (provider error, empty answer) is logged and announced as an
//! error event, not retried within the turn, and the request goes out trimmed instead.

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{Deps, events::EventKind, live::LiveSession, models::ResolvedModel};
use crate::{
    domain::{Message, Part, Role, Session, Timestamp, new_id, summary::Summary, tool::ToolSpec},
    providers::{self, ChatRequest, Provider, SUMMARY_INSTRUCTION, StreamEvent},
    tools::Toolbox,
};

/// What the provider counted of a session's last model request.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestSize {
    /// Input tokens, as the provider reported them.
    pub input_tokens: u64,
    /// How many of the session's positioned messages that request was built from.
    pub history_len: usize,
    /// The summary it used (`through_position`), if any: a different one voids it.
    pub through_position: Option<i64>,
}

/// The system prompt a session's requests start from: its own, else the server's.
pub(super) fn session_system_prompt(deps: &Deps, session: &Session) -> String {
    if session.system_prompt.is_empty() {
        deps.limits.system_prompt.clone()
    } else {
        session.system_prompt.clone()
    }
}

/// The session's tools now: the built-ins and its MCP servers' tools as they list them.
pub(super) async fn session_toolbox(deps: &Deps, session: &Session) -> Toolbox {
    deps.toolbox
        .with(deps.mcp.tools(session.mcp_servers.as_deref()).await)
}

/// The system prompt of a request: the session's, then the summary.
pub(super) fn system_with(system: &str, summary: Option<&Summary>) -> String {
    match summary {
        None => system.to_owned(),
        Some(summary) => format!(
            "{system}\n\n<conversation-summary>\nThe earlier part of this conversation, \
             summarised:\n{}\n</conversation-summary>",
            summary.text
        ),
    }
}

/// The messages a request includes: those after the summary.
pub(super) fn visible<'a>(history: &'a [Message], summary: Option<&Summary>) -> &'a [Message] {
    let Some(summary) = summary else {
        return history;
    };
    let start = history
        .iter()
        .position(|m| m.position.is_none_or(|p| p > summary.through_position))
        .unwrap_or(history.len());
    &history[start..]
}

fn estimate_all(messages: &[Message]) -> usize {
    messages.iter().map(estimate_tokens).sum()
}

/// A rough token count of a text: four characters a token.
fn estimate_text(text: &str) -> usize {
    text.len() / 4 + 4
}

/// The size of the next request over `history`: the provider's count of the last one
/// plus an estimate of the messages since, or the estimate alone.
pub(super) fn measure(
    history: &[Message],
    system: &str,
    summary: Option<&Summary>,
    last: Option<&RequestSize>,
) -> u64 {
    let through = summary.map(|s| s.through_position);
    match last {
        Some(last) if last.through_position == through && last.history_len <= history.len() => {
            last.input_tokens + estimate_all(&history[last.history_len..]) as u64
        }
        _ => {
            (estimate_text(&system_with(system, summary)) + estimate_all(visible(history, summary)))
                as u64
        }
    }
}

/// Where the kept part of `visible` starts: the earliest user message from which the
/// rest fits `keep_tokens`, or at least the latest user message. 0 means there is
/// nothing before it to summarise.
pub(super) fn split_point(visible: &[Message], keep_tokens: usize) -> usize {
    let Some(latest_user) = visible.iter().rposition(|m| m.role == Role::User) else {
        return 0;
    };
    let mut split = latest_user;
    let mut kept: usize = estimate_all(&visible[latest_user..]);
    for index in (0..latest_user).rev() {
        kept += estimate_tokens(&visible[index]);
        if kept > keep_tokens {
            break;
        }
        if visible[index].role == Role::User {
            split = index;
        }
    }
    split
}

/// What a compaction works from.
pub(super) struct Compaction<'a> {
    pub session_id: &'a str,
    /// The session's positioned messages, oldest first.
    pub history: &'a [Message],
    pub previous: Option<&'a Summary>,
    /// The turn's tools: a history with tool calls needs their definitions.
    pub tools: &'a [ToolSpec],
    pub context_window: u32,
    /// Share of the window the kept messages may fill.
    pub keep: f64,
    pub tokens_before: u64,
    /// The session's system prompt (for the size after).
    pub system: &'a str,
}

/// Summarises what comes before the kept messages with `provider`. `Ok(None)` when there
/// is nothing to summarise (the newest exchange is all there is).
pub(super) async fn summarise(
    provider: &dyn Provider,
    model_id: &str,
    work: Compaction<'_>,
    cancel: &CancellationToken,
) -> Result<Option<Summary>, String> {
    let visible = visible(work.history, work.previous);
    let keep_tokens = (f64::from(work.context_window) * work.keep) as usize;
    let split = split_point(visible, keep_tokens);
    if split == 0 {
        return Ok(None);
    }
    let (replaced, kept) = visible.split_at(split);
    let Some(through_position) = replaced.last().and_then(|m| m.position) else {
        return Ok(None);
    };
    let mut system = SUMMARY_SYSTEM_PROMPT.to_owned();
    if let Some(previous) = work.previous {
        system.push_str("\n\nThe summary of the conversation before these messages:\n");
        system.push_str(&previous.text);
    }
    let mut messages = repair_history(replaced);
    messages.push(Message {
        id: new_id(),
        session_id: work.session_id.to_owned(),
        turn_id: None,
        role: Role::User,
        parts: vec![Part::Text {
            text: SUMMARY_INSTRUCTION.to_owned(),
        }],
        create_time: Timestamp::now(),
        incomplete: false,
        model: None,
        position: None,
    });
    let request = ChatRequest {
        system,
        messages,
        tools: work.tools.to_vec(),
        reasoning_effort: crate::domain::ReasoningEffort::Low,
    };
    let text = tokio::select! {
        text = answer_text(provider, &request) => text?,
        () = cancel.cancelled() => return Err("cancelled".into()),
    };
    let text = text.trim().to_owned();
    if text.is_empty() {
        return Err("the model answered the summary request with no text".into());
    }
    let summary = Summary {
        session_id: work.session_id.to_owned(),
        through_position,
        replaced_messages: work.previous.map_or(0, |p| p.replaced_messages) + replaced.len() as u32,
        tokens_before: work.tokens_before,
        tokens_after: 0,
        model: model_id.to_owned(),
        create_time: Timestamp::now(),
        text,
    };
    let tokens_after =
        estimate_text(&system_with(work.system, Some(&summary))) + estimate_all(kept);
    Ok(Some(Summary {
        tokens_after: tokens_after as u64,
        ..summary
    }))
}

/// The text of one model answer; tool calls (the model was asked not to make any) are
/// ignored.
async fn answer_text(provider: &dyn Provider, request: &ChatRequest) -> Result<String, String> {
    let mut stream = provider
        .stream(request)
        .await
        .map_err(|err| err.to_string())?;
    let mut text = String::new();
    while let Some(event) = stream.next().await {
        match event.map_err(|err| err.to_string())? {
            StreamEvent::TextDelta(delta) => text.push_str(&delta),
            StreamEvent::Finished(_) => break,
            _ => {}
        }
    }
    Ok(text)
}

/// Compacts on the session's owner: summarises with the configured compaction model
/// (else `model`), stores the summary under the owner's fence, then announces it
/// (`context_compacted`, with the turn's id when a turn compacts). A failure is logged
/// and announced as an error event; the caller goes on without a new summary.
pub(super) async fn compact(
    live: &LiveSession,
    turn_id: Option<&str>,
    model: &ResolvedModel,
    work: Compaction<'_>,
    cancel: &CancellationToken,
) -> Result<Option<Summary>, String> {
    let deps = &live.deps;
    let utility = match &deps.limits.compaction.model {
        Some(id) => match deps.models.resolve(Some(id), None).await {
            Ok(resolution) => Some(resolution.model),
            Err(err) => {
                tracing::warn!(model = %id, error = %err, "the compaction model cannot be used; the turn's model summarises");
                None
            }
        },
        None => None,
    };
    let model = utility.as_ref().unwrap_or(model);
    let provider = providers::build(&model.spec, &deps.provider_policy, deps.http.clone());
    let started = std::time::Instant::now();
    let outcome = match summarise(&*provider, &model.id, work, cancel).await {
        Ok(Some(summary)) => deps
            .store
            .put_summary(&summary, live.fence)
            .await
            .map(|()| Some(summary))
            .map_err(|err| err.to_string()),
        other => other,
    };
    match &outcome {
        Ok(Some(summary)) => {
            tracing::info!(
                session = %live.id,
                replaced = summary.replaced_messages,
                tokens_before = summary.tokens_before,
                tokens_after = summary.tokens_after,
                latency_ms = started.elapsed().as_millis() as u64,
                "context compacted"
            );
            live.emit(
                turn_id,
                EventKind::ContextCompacted {
                    summary: Box::new(summary.clone()),
                },
            );
        }
        Ok(None) => {}
        Err(err) => {
            tracing::warn!(session = %live.id, error = %err, "compaction failed; the oldest messages are dropped instead");
            live.emit(
                turn_id,
                EventKind::Error {
                    reason: crate::domain::reason::COMPACTION_FAILED.into(),
                    message: format!(
                        "the conversation could not be summarised ({err}); its oldest messages \
                         are left out of this turn's requests instead"
                    ),
                },
            );
        }
    }
    outcome
}

/// How the model is asked to summarise (the instruction itself is the last message).
const SUMMARY_SYSTEM_PROMPT: &str = "You are condensing the earlier part of a conversation \
between a user and an AI agent, so that the agent can continue the work without those \
messages. Write a summary that keeps what the agent needs: the user's goals, \
instructions and constraints; decisions made and why; facts learned; files, commands and \
tools used with their outcomes; work done and still open. Be specific (names, paths, \
numbers) and concise. Write notes, not a dialogue. Do not call tools.";

/// Makes a history every provider accepts: a tool call without a result (a crash cut the
/// turn) gets a synthetic one.
pub(super) fn repair_history(history: &[Message]) -> Vec<Message> {
    let answered: std::collections::HashSet<&str> = history
        .iter()
        .flat_map(|m| m.parts.iter())
        .filter_map(|p| match p {
            Part::ToolResult { tool_call_id, .. } => Some(tool_call_id.as_str()),
            _ => None,
        })
        .collect();
    let mut repaired = Vec::with_capacity(history.len());
    for message in history {
        repaired.push(message.clone());
        let missing: Vec<Part> = message
            .parts
            .iter()
            .filter_map(|p| match p {
                Part::ToolCall { id, .. } if !answered.contains(id.as_str()) => {
                    Some(Part::ToolResult {
                        tool_call_id: id.clone(),
                        output: "the tool call was not run (the turn was interrupted)".into(),
                        is_error: true,
                    })
                }
                _ => None,
            })
            .collect();
        if !missing.is_empty() {
            repaired.push(Message {
                id: new_id(),
                session_id: message.session_id.clone(),
                turn_id: message.turn_id.clone(),
                role: Role::Tool,
                parts: missing,
                create_time: message.create_time,
                incomplete: false,
                model: None,
                position: None,
            });
        }
    }
    repaired
}

/// A rough token count: four characters a token.
pub(super) fn estimate_tokens(message: &Message) -> usize {
    let chars: usize = message
        .parts
        .iter()
        .map(|p| match p {
            Part::Text { text } | Part::Reasoning { text } => text.len(),
            Part::ToolCall { arguments_json, .. } => arguments_json.len() + 16,
            Part::ToolResult { output, .. } => output.len() + 16,
            Part::Attachment { .. } => 1024 * 4,
        })
        .sum();
    chars / 4 + 4
}

/// The last resort, when compaction could not make room (it failed, or the newest
/// exchange alone is that large): when the estimate exceeds nine tenths of the model's
/// window, the oldest messages are dropped, then any leading messages up to the next
/// user message (so a tool result never loses its call), always keeping the latest user
/// message and what follows it.
pub(super) fn fit_context(history: Vec<Message>, context_window: u32) -> Vec<Message> {
    if context_window == 0 {
        return history;
    }
    let budget = context_window as usize * 9 / 10;
    let mut total: usize = history.iter().map(estimate_tokens).sum();
    if total <= budget {
        return history;
    }
    let last_user = history
        .iter()
        .rposition(|m| m.role == Role::User)
        .unwrap_or(0);
    let mut start = 0;
    while start < last_user && total > budget {
        total -= estimate_tokens(&history[start]);
        start += 1;
    }
    while start < last_user && history[start].role != Role::User {
        start += 1;
    }
    tracing::debug!(dropped = start, "history trimmed to the context window");
    history.into_iter().skip(start).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(role: Role, parts: Vec<Part>) -> Message {
        Message {
            id: new_id(),
            session_id: "s".into(),
            turn_id: None,
            role,
            parts,
            create_time: Timestamp(0),
            incomplete: false,
            model: None,
            position: None,
        }
    }

    fn text(role: Role, text: &str) -> Message {
        message(role, vec![Part::Text { text: text.into() }])
    }

    #[test]
    fn context_drops_oldest_whole_exchanges_and_keeps_the_last_question() {
        let history = vec![
            text(Role::User, &"a".repeat(400)),
            message(
                Role::Assistant,
                vec![Part::ToolCall {
                    id: "c".into(),
                    tool: "shell".into(),
                    arguments_json: "{}".into(),
                }],
            ),
            message(
                Role::Tool,
                vec![Part::ToolResult {
                    tool_call_id: "c".into(),
                    output: "x".repeat(400),
                    is_error: false,
                }],
            ),
            text(Role::User, "second question"),
            text(Role::Assistant, "answer"),
            text(Role::User, "latest"),
        ];
        let kept = fit_context(history.clone(), 100);
        assert_eq!(
            kept.first().map(|m| m.role),
            Some(Role::User),
            "starts at a user message"
        );
        assert!(kept.iter().any(|m| m.text() == "latest"));
        assert!(
            !kept.iter().any(|m| m.role == Role::Tool),
            "the big exchange went whole"
        );
        assert_eq!(
            fit_context(history.clone(), 0).len(),
            history.len(),
            "unknown window: all kept"
        );
    }

    #[test]
    fn unanswered_tool_calls_get_a_synthetic_result() {
        let history = vec![
            text(Role::User, "go"),
            message(
                Role::Assistant,
                vec![Part::ToolCall {
                    id: "c1".into(),
                    tool: "shell".into(),
                    arguments_json: "{}".into(),
                }],
            ),
        ];
        let repaired = repair_history(&history);
        assert_eq!(repaired.len(), 3);
        assert!(
            matches!(&repaired[2].parts[0], Part::ToolResult { tool_call_id, is_error: true, .. } if tool_call_id == "c1")
        );
    }
}
