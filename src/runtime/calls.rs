//! The tool calls of one model answer: each is announced, gated by the permission policy
//! (ASK waits for a confirmation), run with its output streamed as events, and recorded;
//! the results go back to the model. `ask_user` calls are answered by the person instead
//! of run (`input`), where someone may answer.
//!
//! Every call gets exactly one ToolCallStarted and one ToolCallFinished, whatever
//! happens (refused, denied, cancelled while waiting or running).

use std::{sync::Arc, time::Instant};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{
    events::{Confirmation, Decision, EventKind},
    input,
    live::{LiveSession, PendingConfirmation},
    spans,
};
use crate::{
    domain::{
        Part, PermissionMode, Timestamp, ToolCallRecord, ToolCallStatus, Turn, new_id,
        tool::ToolCallRequest,
    },
    tools::{Gate, Tool, ToolContext, ToolOutcome, ToolOutput, Toolbox, ask_user, gate},
};

/// What the calls of one step run with.
pub(super) struct CallContext<'a> {
    pub toolbox: &'a Toolbox,
    pub mode: PermissionMode,
    pub working_dir: &'a str,
    /// Someone may answer questions: `ask_user` asks (else it refuses, as its tool).
    pub attended: bool,
    pub cancel: &'a CancellationToken,
}

/// Gates and runs each call in order; returns the tool results for the model.
pub(super) async fn run_tools(
    live: &Arc<LiveSession>,
    turn: &mut Turn,
    calls: &[ToolCallRequest],
    context: CallContext<'_>,
) -> Vec<Part> {
    let CallContext {
        toolbox,
        mode,
        working_dir,
        attended,
        cancel,
    } = context;
    let mut results = Vec::with_capacity(calls.len());
    for call in calls {
        // Ends when dropped, at the end of this iteration.
        let span = spans::tool_call(call);
        live.emit(
            Some(&turn.id),
            EventKind::ToolCallStarted {
                call: Box::new(call.clone()),
            },
        );
        // Set when the tool starts running: neither the wait for a person's approval
        // (seconds in ASK mode) nor a refusal counts as running time.
        let mut ran: Option<Instant> = None;
        let mut record = ToolCallRecord {
            id: call.id.clone(),
            tool: call.tool.clone(),
            arguments_json: call.arguments_json.clone(),
            status: ToolCallStatus::Running,
            output: String::new(),
            is_error: false,
            exit_code: None,
            start_time: Some(Timestamp::now()),
            end_time: None,
        };
        let tool = toolbox.get(&call.tool).cloned();
        // `ask_user` is a read: never confirmed, offered in READ_ONLY.
        let verdict = match &tool {
            None => Err(format!("there is no tool named {:?}", call.tool)),
            Some(tool) => match gate(tool.access(), mode) {
                Gate::Deny => Err(format!("{} is not allowed in READ_ONLY mode", call.tool)),
                Gate::Run => Ok(()),
                Gate::Confirm if live.lock().allow_always.contains(&call.tool) => Ok(()),
                Gate::Confirm => match confirm(live, turn, call, cancel).await {
                    Some(Decision::Allow | Decision::AllowAlways) => Ok(()),
                    Some(Decision::Deny) => Err("the user denied this tool call".to_owned()),
                    // Withdrawn by a cancel: recorded as cancelled below.
                    None => Ok(()),
                },
            },
        };
        match (verdict, tool) {
            (Ok(()), Some(tool)) if !cancel.is_cancelled() => {
                let arguments =
                    serde_json::from_str(&call.arguments_json).unwrap_or(serde_json::Value::Null);
                let arguments = if arguments.is_object() {
                    arguments
                } else {
                    serde_json::Value::Object(Default::default())
                };
                ran = Some(Instant::now());
                record.start_time = Some(Timestamp::now());
                let outcome = if attended && call.tool == ask_user::NAME {
                    input::ask(live, turn, call, arguments, cancel).await
                } else {
                    run_tool(live, turn, call, &*tool, arguments, working_dir, cancel).await
                };
                announce_changes(live, &turn.id, &call.id, &outcome);
                record.status = if outcome.cancelled {
                    ToolCallStatus::Cancelled
                } else if outcome.is_error {
                    ToolCallStatus::Failed
                } else {
                    ToolCallStatus::Succeeded
                };
                record.output = outcome.output;
                record.is_error = outcome.is_error;
                record.exit_code = outcome.exit_code;
            }
            (Ok(()), _) => {
                record.status = ToolCallStatus::Cancelled;
                record.output = "cancelled".into();
                record.is_error = true;
            }
            (Err(why), _) => {
                record.status = ToolCallStatus::Denied;
                record.output = why;
                record.is_error = true;
            }
        }
        record.end_time = Some(Timestamp::now());
        spans::record_tool_call(&span, &record);
        results.push(Part::ToolResult {
            tool_call_id: call.id.clone(),
            output: record.output.clone(),
            is_error: record.is_error,
        });
        turn.tool_calls.push(record.clone());
        live.emit(
            Some(&turn.id),
            EventKind::ToolCallFinished {
                record: Box::new(record),
                duration_micros: ran.map_or(0, |ran| ran.elapsed().as_micros() as i64),
            },
        );
    }
    results
}

/// Runs one tool, streaming its output as events.
async fn run_tool(
    live: &LiveSession,
    turn: &Turn,
    call: &ToolCallRequest,
    tool: &dyn Tool,
    arguments: serde_json::Value,
    working_dir: &str,
    cancel: &CancellationToken,
) -> ToolOutcome {
    let limits = &live.deps.limits;
    let (output_tx, mut output_rx) = mpsc::channel::<ToolOutput>(256);
    let context = ToolContext {
        working_dir: working_dir.into(),
        cancel: cancel.child_token(),
        output: output_tx,
        timeout: limits.tool_timeout,
        max_output_bytes: limits.max_tool_output_bytes,
        env: limits.tool_env.clone(),
        sandbox: limits.sandbox.clone(),
    };
    let run = tool.run(arguments, context);
    tokio::pin!(run);
    let outcome = loop {
        tokio::select! {
            Some(chunk) = output_rx.recv() => {
                live.emit(Some(&turn.id), EventKind::ToolCallOutput { tool_call_id: call.id.clone(), stream: chunk.stream, text: chunk.text });
            }
            outcome = &mut run => break outcome,
        }
    };
    while let Ok(chunk) = output_rx.try_recv() {
        live.emit(
            Some(&turn.id),
            EventKind::ToolCallOutput {
                tool_call_id: call.id.clone(),
                stream: chunk.stream,
                text: chunk.text,
            },
        );
    }
    outcome
}

/// One `file_changed` event per file the call created or changed, with the turn's id.
fn announce_changes(
    live: &LiveSession,
    turn_id: &str,
    call_id: &str,
    outcome: &crate::tools::ToolOutcome,
) {
    for change in &outcome.changes {
        live.emit(
            Some(turn_id),
            EventKind::FileChanged {
                tool_call_id: call_id.to_owned(),
                change: Box::new(change.clone()),
            },
        );
    }
}

/// Asks the user; `None` when the turn was cancelled first.
async fn confirm(
    live: &Arc<LiveSession>,
    turn: &Turn,
    call: &ToolCallRequest,
    cancel: &CancellationToken,
) -> Option<Decision> {
    let (answer, decision) = oneshot::channel();
    let confirmation = Confirmation {
        id: new_id(),
        session_id: live.id.to_string(),
        turn_id: turn.id.clone(),
        call: call.clone(),
        reason: format!("{} needs confirmation in ASK mode", call.tool),
        create_time: Timestamp::now(),
    };
    {
        let mut state = live.lock();
        let active = state.active.as_mut()?;
        active.confirmations.push(PendingConfirmation {
            confirmation: confirmation.clone(),
            answer: Some(answer),
        });
        live.emit_locked(
            &mut state,
            Some(&turn.id),
            EventKind::ConfirmationRequested {
                confirmation: Box::new(confirmation),
            },
        );
        live.publish_summary(&state);
    }
    tokio::select! {
        decision = decision => decision.ok(),
        () = cancel.cancelled() => None,
    }
}
