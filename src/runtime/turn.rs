//! One agent turn: build the request from history, stream the model's answer as events,
//! gate and run the tools it calls, feed the results back, and repeat until the model
//! stops, the step limit is hit, or the turn is cancelled. Emits exactly one
//! TurnFinished, at the end, whatever happened.

use std::{sync::Arc, time::Instant};

use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::models::ResolvedModel;
use super::{
    events::{Confirmation, ContentKind, Decision, EventKind},
    live::{LiveSession, PendingConfirmation},
};
use crate::{
    domain::{
        Message, Part, Role, Session, Timestamp, ToolCallRecord, ToolCallStatus, Turn, TurnError,
        TurnStatus, Usage,
        cluster::Fence,
        new_id,
        session::{SessionField, SessionSettings},
        tool::ToolCallRequest,
    },
    providers::{self, ChatRequest, ProviderError, StreamEvent},
    store::Store,
    tools::{Gate, ToolContext, ToolOutput, Toolbox, gate},
};

/// How often the text of a streaming message is stored, so a crash keeps most of it.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
/// Deltas between checks that the stored sequence floor stays ahead.
const FLOOR_CHECK_EVERY: u32 = 4096;

/// How a turn ends, before it is recorded.
enum Ending {
    Succeeded,
    Failed(TurnError),
    Cancelled,
}

fn failed(reason: &str, message: impl Into<String>) -> Ending {
    Ending::Failed(TurnError {
        reason: reason.to_owned(),
        message: message.into(),
    })
}

/// What a turn fixes when it starts.
struct Prepared {
    session: Session,
    model: ResolvedModel,
}

/// Resolves the turn's model (its own override, else the session's, else the default) as
/// it starts; from here on the turn keeps it, whatever the session does.
async fn prepare(live: &LiveSession, turn: &mut Turn) -> Result<Prepared, Ending> {
    let deps = &live.deps;
    let mut session = deps
        .sessions
        .get(&live.id)
        .await
        .map_err(|err| failed(&err.reason(), err.to_string()))?;
    if session.display_name.trim().is_empty() {
        session = give_title(live, session).await;
    }
    let resolution = deps
        .models
        .resolve(turn.model.as_deref(), session.model.as_deref())
        .await
        .map_err(|err| failed(&err.reason(), err.to_string()))?;
    if let Some(note) = resolution.fallback_note {
        tracing::warn!(session = %live.id, turn = %turn.id, "{note}");
        live.emit(
            Some(&turn.id),
            EventKind::Error {
                reason: "MODEL_FALLBACK".into(),
                message: note,
            },
        );
    }
    let model = resolution.model;
    turn.model = Some(model.id.clone());
    Ok(Prepared { session, model })
}

/// Titles an untitled session from its latest message (this turn's, for its first turn)
/// so that every client lists it by name, not only the CLI that created it; the
/// SessionUpdated the turn start emits carries it. A failure only costs the title.
async fn give_title(live: &LiveSession, session: Session) -> Session {
    let title = crate::domain::session::title(&session.last_message_preview);
    if title.is_empty() {
        return session;
    }
    let settings = SessionSettings {
        display_name: title,
        ..SessionSettings::default()
    };
    // With the etag of the untitled session just read: a client that renamed it since
    // keeps its name (the mismatch skips titling; the next turn tries again if empty).
    match live
        .deps
        .sessions
        .update(
            &live.id,
            settings,
            &[SessionField::DisplayName],
            &session.etag(),
        )
        .await
    {
        Ok(titled) => titled,
        Err(crate::domain::Error::EtagMismatch { .. }) => session,
        Err(err) => {
            tracing::warn!(session = %live.id, error = %err, "cannot title the session");
            session
        }
    }
}

pub(crate) async fn run(live: &Arc<LiveSession>, mut turn: Turn, cancel: CancellationToken) {
    let started = Instant::now();
    turn.status = TurnStatus::Running;
    turn.start_time = Some(Timestamp::now());
    let prepared = prepare(live, &mut turn).await;
    if let Ok(prepared) = &prepared {
        // Now RUNNING: the session as prepare loaded it carries that live status.
        live.emit(
            None,
            EventKind::SessionUpdated {
                session: Box::new(prepared.session.clone()),
            },
        );
        live.deps.sessions.publish_updated(prepared.session.clone());
    }
    if let Err(err) = live.deps.store.put_turn(&turn, live.fence).await {
        tracing::error!(turn = %turn.id, error = %err, "cannot store the turn start");
    }
    {
        let mut state = live.lock();
        if let Some(active) = state.active.as_mut() {
            active.turn = turn.clone();
        }
        live.emit_locked(
            &mut state,
            Some(&turn.id),
            EventKind::TurnStarted {
                turn: Box::new(turn.clone()),
            },
        );
    }
    tracing::info!(session = %live.id, turn = %turn.id, model = ?turn.model, "turn started");

    let ending = match prepared {
        Err(ending) => ending,
        Ok(prepared) => match steps(live, &mut turn, &cancel, started, prepared).await {
            Ok(ending) => ending,
            Err(err) => failed("INTERNAL", err.to_string()),
        },
    };
    let (status, error) = match ending {
        Ending::Succeeded => (TurnStatus::Succeeded, None),
        Ending::Failed(error) => (TurnStatus::Failed, Some(error)),
        Ending::Cancelled if live.deps.shutdown.is_cancelled() => (
            TurnStatus::Interrupted,
            Some(TurnError {
                reason: "SERVER_SHUTDOWN".into(),
                message: "the server shut down while this turn ran".into(),
            }),
        ),
        Ending::Cancelled => (TurnStatus::Cancelled, None),
    };
    turn.status = status;
    turn.error = error;
    turn.end_time = Some(Timestamp::now());
    turn.latency_micros = Some(started.elapsed().as_micros() as i64);
    if let Err(err) = super::outbox::store_finished_turn(&live.deps, &turn, live.fence).await {
        tracing::error!(turn = %turn.id, error = %err, "cannot store the turn end");
    }
    {
        let mut state = live.lock();
        if let Some(active) = state.active.as_mut() {
            // Withdraw confirmations nobody answered.
            for pending in active.confirmations.drain(..).collect::<Vec<_>>() {
                live.emit_locked(
                    &mut state,
                    Some(&turn.id),
                    EventKind::ConfirmationResolved {
                        confirmation_id: pending.confirmation.id,
                        decision: None,
                    },
                );
            }
        }
        if let Some(active) = state.active.as_mut() {
            active.partial = None;
            active.turn = turn.clone();
        }
        live.emit_locked(
            &mut state,
            Some(&turn.id),
            EventKind::TurnFinished {
                turn: Box::new(turn.clone()),
            },
        );
    }
    tracing::info!(session = %live.id, turn = %turn.id, status = ?turn.status, latency_ms = started.elapsed().as_millis() as u64, "turn finished");
}

async fn steps(
    live: &Arc<LiveSession>,
    turn: &mut Turn,
    cancel: &CancellationToken,
    started: Instant,
    prepared: Prepared,
) -> crate::domain::Result<Ending> {
    let deps = &live.deps;
    let Prepared { session, model } = prepared;
    let provider = providers::build(&model.spec, &deps.provider_policy, deps.http.clone());
    let system = if session.system_prompt.is_empty() {
        deps.limits.system_prompt.clone()
    } else {
        session.system_prompt.clone()
    };
    // The MCP tools as their servers list them now; the turn keeps this set.
    let toolbox = deps
        .toolbox
        .with(deps.mcp.tools(session.mcp_servers.as_deref()).await);
    let tools = toolbox.specs(session.permission_mode);
    // The turn's message joins the conversation now, after everything that came before
    // it (not when it was queued).
    let mut position = deps.store.next_position(&live.id).await?;
    if let Some(user_message) = &turn.user_message_id {
        deps.store
            .set_message_position(&live.id, user_message, position, live.fence)
            .await?;
        position += 1;
    }
    let mut history = deps.store.history(&live.id).await?;

    for _ in 0..deps.limits.max_steps {
        if cancel.is_cancelled() {
            return Ok(Ending::Cancelled);
        }
        live.keep_sequence_floor().await?;
        let steered: Vec<Message> = {
            let mut state = live.lock();
            state
                .active
                .as_mut()
                .map(|a| std::mem::take(&mut a.steering))
                .unwrap_or_default()
        };
        for mut message in steered {
            deps.store
                .set_message_position(&live.id, &message.id, position, live.fence)
                .await?;
            message.position = Some(position);
            position += 1;
            history.push(message);
        }
        turn.step_count += 1;
        let request = ChatRequest {
            system: system.clone(),
            messages: fit_context(repair_history(&history), model.context_window),
            tools: tools.clone(),
            reasoning_effort: session.reasoning_effort,
        };
        let answer = stream_answer(
            live,
            turn,
            ModelCall {
                provider: &*provider,
                request: &request,
                model_id: &model.id,
            },
            cancel,
            started,
            &mut position,
        )
        .await?;
        let StepAnswer {
            message,
            calls,
            usage,
            ending,
        } = answer;
        turn.usage.add(&usage);
        if let Some(message) = message {
            history.push(message);
        }
        if let Some(ending) = ending {
            return Ok(ending);
        }
        if calls.is_empty() {
            return Ok(Ending::Succeeded);
        }
        let results = run_tools(
            live,
            turn,
            &toolbox,
            &calls,
            session.permission_mode,
            &session.working_dir,
            cancel,
        )
        .await;
        let tool_message = Message {
            id: new_id(),
            session_id: live.id.to_string(),
            turn_id: Some(turn.id.clone()),
            role: Role::Tool,
            parts: results,
            create_time: Timestamp::now(),
            incomplete: false,
            model: None,
            position: Some(position),
        };
        position += 1;
        deps.store.put_message(&tool_message, live.fence).await?;
        live.emit(
            Some(&turn.id),
            EventKind::MessageCompleted {
                message: Box::new(tool_message.clone()),
            },
        );
        history.push(tool_message);
        deps.store.put_turn(turn, live.fence).await?;
    }
    Ok(failed(
        "STEP_LIMIT",
        format!(
            "the turn made {} model requests, the limit",
            deps.limits.max_steps
        ),
    ))
}

struct StepAnswer {
    /// The assistant message, stored (complete or, when cut short, incomplete).
    message: Option<Message>,
    calls: Vec<ToolCallRequest>,
    usage: Usage,
    /// Set when the turn ends here (error, cancel).
    ending: Option<Ending>,
}

/// Streams one model answer into events and an assistant message.
/// One request to the model.
struct ModelCall<'a> {
    provider: &'a dyn providers::Provider,
    request: &'a ChatRequest,
    model_id: &'a str,
}

async fn stream_answer(
    live: &Arc<LiveSession>,
    turn: &mut Turn,
    call: ModelCall<'_>,
    cancel: &CancellationToken,
    started: Instant,
    position: &mut i64,
) -> crate::domain::Result<StepAnswer> {
    let deps = &live.deps;
    let ModelCall {
        provider,
        request,
        model_id,
    } = call;
    let turn_id = turn.id.clone();
    let stream = tokio::select! {
        result = provider.stream(request) => result,
        () = cancel.cancelled() => {
            return Ok(StepAnswer { message: None, calls: Vec::new(), usage: Usage::default(), ending: Some(Ending::Cancelled) });
        }
    };
    let mut stream = match stream {
        Ok(stream) => stream,
        Err(err) => {
            return Ok(StepAnswer {
                message: None,
                calls: Vec::new(),
                usage: Usage::default(),
                ending: Some(provider_failure(&err)),
            });
        }
    };

    let mut message = Message {
        id: new_id(),
        session_id: live.id.to_string(),
        turn_id: Some(turn_id.clone()),
        role: Role::Assistant,
        parts: Vec::new(),
        create_time: Timestamp::now(),
        incomplete: true,
        model: Some(model_id.to_owned()),
        position: Some(*position),
    };
    *position += 1;
    // Shared by every event of this message (one allocation, not one per delta).
    let message_id: Arc<str> = Arc::from(message.id.as_str());
    {
        let mut state = live.lock();
        if let Some(active) = state.active.as_mut() {
            active.partial = Some(message.clone());
        }
        live.emit_locked(
            &mut state,
            Some(&turn_id),
            EventKind::MessageStarted {
                message_id: message_id.clone(),
                role: Role::Assistant,
            },
        );
    }
    let mut open: Option<(ContentKind, i32)> = None;
    let mut calls = Vec::new();
    let mut usage = Usage::default();
    let mut ending = None;
    let mut checkpoint = Checkpoint::new();
    let mut deltas: u32 = 0;
    loop {
        let item = tokio::select! {
            item = stream.next() => item,
            () = cancel.cancelled() => { ending = Some(Ending::Cancelled); break; }
        };
        let event = match item {
            None => {
                ending = Some(failed(
                    "PROVIDER_PROTOCOL",
                    "the model's stream ended before it finished",
                ));
                break;
            }
            Some(Err(err)) => {
                ending = Some(provider_failure(&err));
                break;
            }
            Some(Ok(event)) => event,
        };
        match event {
            StreamEvent::TextDelta(text) | StreamEvent::ReasoningDelta(text) if text.is_empty() => {
            }
            StreamEvent::TextDelta(text) => {
                append_delta(
                    live,
                    &turn_id,
                    &message_id,
                    &mut message,
                    &mut open,
                    ContentKind::Text,
                    text,
                );
                note_first_token(turn, started);
            }
            StreamEvent::ReasoningDelta(text) => {
                append_delta(
                    live,
                    &turn_id,
                    &message_id,
                    &mut message,
                    &mut open,
                    ContentKind::Reasoning,
                    text,
                );
                note_first_token(turn, started);
            }
            StreamEvent::ToolCall(call) => {
                close_block(live, &turn_id, &message_id, &mut open);
                let part = Part::ToolCall {
                    id: call.id.clone(),
                    tool: call.tool.clone(),
                    arguments_json: call.arguments_json.clone(),
                };
                // The snapshot's partial message keeps the same parts at the same indices.
                if let Some(partial) = live.lock().active.as_mut().and_then(|a| a.partial.as_mut())
                {
                    partial.parts.push(part.clone());
                }
                message.parts.push(part);
                calls.push(call);
            }
            StreamEvent::Usage(u) => {
                // Later reports replace earlier ones field by field.
                if u.input_tokens > 0 {
                    usage.input_tokens = u.input_tokens;
                }
                if u.output_tokens > 0 {
                    usage.output_tokens = u.output_tokens;
                }
                if u.reasoning_tokens > 0 {
                    usage.reasoning_tokens = u.reasoning_tokens;
                }
                if u.cached_input_tokens > 0 {
                    usage.cached_input_tokens = u.cached_input_tokens;
                }
            }
            StreamEvent::Finished(_) => break,
        }
        deltas += 1;
        if deltas.is_multiple_of(FLOOR_CHECK_EVERY) {
            live.keep_sequence_floor().await?;
        }
        checkpoint.maybe_save(&deps.store, &message, live.fence);
    }
    checkpoint.finish().await;
    close_block(live, &turn_id, &message_id, &mut open);
    // Tool calls of an answer cut short are not run.
    if ending.is_some() {
        calls.clear();
    }
    message.incomplete = ending.is_some();
    let stored = if message.parts.is_empty() && ending.is_some() {
        None
    } else {
        deps.store.put_message(&message, live.fence).await?;
        let mut state = live.lock();
        if let Some(active) = state.active.as_mut() {
            active.partial = None;
        }
        live.emit_locked(
            &mut state,
            Some(&turn_id),
            EventKind::MessageCompleted {
                message: Box::new(message.clone()),
            },
        );
        Some(message)
    };
    Ok(StepAnswer {
        message: stored,
        calls,
        usage,
        ending,
    })
}

/// The streaming message's periodic save, off the token path: tokens keep flowing while
/// it is written (when 1,000 turns stream at once, a save can wait behind hundreds of
/// others), and a save still running when the next is due is skipped, not queued.
struct Checkpoint {
    last: Instant,
    running: Option<tokio::task::JoinHandle<crate::domain::Result<()>>>,
}

impl Checkpoint {
    fn new() -> Self {
        Checkpoint {
            last: Instant::now(),
            running: None,
        }
    }

    fn maybe_save(&mut self, store: &Arc<dyn Store>, message: &Message, fence: Fence) {
        if self.last.elapsed() < CHECKPOINT_EVERY {
            return;
        }
        if let Some(running) = &mut self.running {
            match futures::FutureExt::now_or_never(running) {
                None => return,
                Some(done) => log_checkpoint(done),
            }
        }
        self.last = Instant::now();
        let store = store.clone();
        let message = message.clone();
        self.running = Some(tokio::spawn(async move {
            store.put_message(&message, fence).await
        }));
    }

    /// Waits for a save in flight, so the message's final save lands after it.
    async fn finish(&mut self) {
        if let Some(running) = self.running.take() {
            log_checkpoint(running.await);
        }
    }
}

/// A failed checkpoint costs only what a crash would lose; the final save reports errors.
fn log_checkpoint(done: std::result::Result<crate::domain::Result<()>, tokio::task::JoinError>) {
    match done {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "saving a streaming message failed"),
        Err(err) => tracing::warn!(error = %err, "saving a streaming message stopped"),
    }
}

fn provider_failure(err: &ProviderError) -> Ending {
    use providers::ProviderErrorKind as K;
    let reason = match err.kind {
        K::Unavailable | K::RateLimited => "PROVIDER_UNAVAILABLE",
        K::Unauthenticated => "PROVIDER_UNAUTHENTICATED",
        K::InvalidRequest => "PROVIDER_INVALID_REQUEST",
        K::Timeout => "PROVIDER_TIMEOUT",
        K::Protocol => "PROVIDER_PROTOCOL",
    };
    failed(reason, err.message.clone())
}

fn note_first_token(turn: &mut Turn, started: Instant) {
    if turn.time_to_first_token_micros.is_none() {
        turn.time_to_first_token_micros = Some(started.elapsed().as_micros() as i64);
    }
}

/// Appends streamed text to part `index` of a message, creating the part (and any
/// before it) as a block of `kind` when missing.
fn add_to_part(message: &mut Message, index: usize, kind: ContentKind, text: &str) {
    while message.parts.len() <= index {
        message.parts.push(match kind {
            ContentKind::Text => Part::Text {
                text: String::new(),
            },
            ContentKind::Reasoning => Part::Reasoning {
                text: String::new(),
            },
        });
    }
    if let Some(Part::Text { text: body } | Part::Reasoning { text: body }) =
        message.parts.get_mut(index)
    {
        body.push_str(text);
    }
}

/// Adds streamed text to the message, opening a content block when the kind changes;
/// the snapshot's partial message follows in step.
fn append_delta(
    live: &LiveSession,
    turn_id: &str,
    message_id: &Arc<str>,
    message: &mut Message,
    open: &mut Option<(ContentKind, i32)>,
    kind: ContentKind,
    text: String,
) {
    if open.is_some_and(|(k, _)| k != kind) {
        close_block(live, turn_id, message_id, open);
    }
    let mut state = live.lock();
    let index = match *open {
        Some((_, index)) => index,
        None => {
            let index = message.parts.len() as i32;
            *open = Some((kind, index));
            live.emit_locked(
                &mut state,
                Some(turn_id),
                EventKind::ContentStarted {
                    message_id: message_id.clone(),
                    index,
                    kind,
                },
            );
            index
        }
    };
    add_to_part(message, index as usize, kind, &text);
    if let Some(partial) = state.active.as_mut().and_then(|a| a.partial.as_mut()) {
        add_to_part(partial, index as usize, kind, &text);
    }
    let message_id = message_id.clone();
    let kind = match kind {
        ContentKind::Text => EventKind::TextDelta {
            message_id,
            index,
            text,
        },
        ContentKind::Reasoning => EventKind::ReasoningDelta {
            message_id,
            index,
            text,
        },
    };
    live.emit_locked(&mut state, Some(turn_id), kind);
}

fn close_block(
    live: &LiveSession,
    turn_id: &str,
    message_id: &Arc<str>,
    open: &mut Option<(ContentKind, i32)>,
) {
    if let Some((_, index)) = open.take() {
        live.emit(
            Some(turn_id),
            EventKind::ContentFinished {
                message_id: message_id.clone(),
                index,
            },
        );
    }
}

/// Gates and runs each call in order; returns the tool results for the model.
async fn run_tools(
    live: &Arc<LiveSession>,
    turn: &mut Turn,
    toolbox: &Toolbox,
    calls: &[ToolCallRequest],
    mode: crate::domain::PermissionMode,
    working_dir: &str,
    cancel: &CancellationToken,
) -> Vec<Part> {
    let deps = &live.deps;
    let mut results = Vec::with_capacity(calls.len());
    for call in calls {
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
                let (output_tx, mut output_rx) = mpsc::channel::<ToolOutput>(256);
                let context = ToolContext {
                    working_dir: working_dir.into(),
                    cancel: cancel.child_token(),
                    output: output_tx,
                    timeout: deps.limits.tool_timeout,
                    max_output_bytes: deps.limits.max_tool_output_bytes,
                    env: deps.limits.tool_env.clone(),
                    sandbox: deps.limits.sandbox.clone(),
                };
                ran = Some(Instant::now());
                record.start_time = Some(Timestamp::now());
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

/// Makes a history every provider accepts: a tool call without a result (a crash cut the
/// turn) gets a synthetic one.
fn repair_history(history: &[Message]) -> Vec<Message> {
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
fn estimate_tokens(message: &Message) -> usize {
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

/// The context rule: when the history's estimate exceeds three quarters of the model's
/// window (the rest is left for the answer), the oldest messages are dropped, then any
/// leading messages up to the next user message (so a tool result never loses its
/// call), always keeping the latest user message and what follows it.
fn fit_context(history: Vec<Message>, context_window: u32) -> Vec<Message> {
    if context_window == 0 {
        return history;
    }
    let budget = context_window as usize * 3 / 4;
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
