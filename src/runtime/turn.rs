//! One agent turn: build the request from history, stream the model's answer as events,
//! gate and run the tools it calls (`calls`), feed the results back, and repeat until
//! the model stops, the step limit is hit, or the turn is cancelled. Emits exactly one
//! TurnFinished, at the end, whatever happened (withdrawing confirmations and questions
//! still waiting).

use std::{sync::Arc, time::Instant};

use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, Span};

use super::context::{self, fit_context, repair_history};
use super::models::ResolvedModel;
use super::{
    calls,
    events::{ContentKind, EventKind},
    live::LiveSession,
    spans,
};
use crate::{
    domain::{
        Message, Part, Role, Session, Timestamp, Turn, TurnError, TurnStatus, Usage,
        cluster::Fence,
        new_id,
        session::{SessionField, SessionSettings},
        tool::ToolCallRequest,
    },
    providers::{self, ChatRequest, ProviderError, StreamEvent},
    store::Store,
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
                reason: crate::domain::reason::MODEL_FALLBACK.into(),
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

/// Runs a turn inside its span (`spans::turn`): a child of `origin`, the span of the
/// RPC that sent its message, or a root (a turn recovered at start, or sent where no
/// span was current).
pub(crate) async fn run(
    live: &Arc<LiveSession>,
    turn: Turn,
    cancel: CancellationToken,
    origin: Option<Span>,
) {
    let span = spans::turn(&live.id, &turn.id, origin.as_ref());
    drop(origin);
    run_in_span(live, turn, cancel, &span)
        .instrument(span.clone())
        .await;
}

async fn run_in_span(
    live: &Arc<LiveSession>,
    mut turn: Turn,
    cancel: CancellationToken,
    span: &Span,
) {
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
                reason: crate::domain::reason::SERVER_SHUTDOWN.into(),
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
            // Withdraw confirmations and questions nobody answered.
            let confirmations: Vec<_> = active.confirmations.drain(..).collect();
            let inputs: Vec<_> = active.inputs.drain(..).collect();
            for pending in confirmations {
                live.emit_locked(
                    &mut state,
                    Some(&turn.id),
                    EventKind::ConfirmationResolved {
                        confirmation_id: pending.confirmation.id,
                        decision: None,
                    },
                );
            }
            for pending in inputs {
                live.emit_locked(
                    &mut state,
                    Some(&turn.id),
                    EventKind::InputResolved {
                        input_request_id: pending.request.id,
                        answer: None,
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
    spans::record_turn(span, &turn);
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
    let system = context::session_system_prompt(deps, &session);
    // The MCP tools as their servers list them now; the turn keeps this set.
    let toolbox = context::session_toolbox(deps, &session).await;
    // Questions (`ask_user`) only where someone may answer them.
    let unattended = live.lock().active.as_ref().is_some_and(|a| a.unattended);
    let attended = session.source.is_attended() && !unattended;
    let tools = toolbox.specs(session.permission_mode, attended);
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
    let mut summary = deps.store.get_summary(&live.id).await?;
    // One failed compaction per turn: the rest of it goes out trimmed instead.
    let mut may_compact = true;

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
        if may_compact && model.context_window > 0 {
            let last = live.lock().last_request.clone();
            let size = context::measure(&history, &system, summary.as_ref(), last.as_ref());
            let threshold = f64::from(model.context_window) * deps.limits.compaction.threshold;
            if size as f64 > threshold {
                let work = context::Compaction {
                    session_id: &live.id,
                    history: &history,
                    previous: summary.as_ref(),
                    tools: &tools,
                    context_window: model.context_window,
                    keep: deps.limits.compaction.keep,
                    tokens_before: size,
                    system: &system,
                };
                match context::compact(live, Some(&turn.id), &model, work, cancel).await {
                    Ok(Some(new)) => summary = Some(new),
                    Ok(None) => {}
                    Err(_) => may_compact = false,
                }
            }
        }
        let history_len = history.len();
        let request = ChatRequest {
            system: context::system_with(&system, summary.as_ref()),
            messages: fit_context(
                repair_history(context::visible(&history, summary.as_ref())),
                model.context_window,
            ),
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
                spec: &model.spec,
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
        if usage.input_tokens > 0 {
            live.lock().last_request = Some(context::RequestSize {
                input_tokens: usage.input_tokens as u64,
                history_len,
                through_position: summary.as_ref().map(|s| s.through_position),
            });
        }
        if let Some(message) = message {
            history.push(message);
        }
        if let Some(ending) = ending {
            return Ok(ending);
        }
        if calls.is_empty() {
            return Ok(Ending::Succeeded);
        }
        let results = calls::run_tools(
            live,
            turn,
            &calls,
            calls::CallContext {
                toolbox: &toolbox,
                mode: session.permission_mode,
                working_dir: &session.working_dir,
                attended,
                cancel,
            },
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
        crate::domain::reason::STEP_LIMIT,
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
    spec: &'a providers::ModelSpec,
}

/// What the model request gave, on its span.
fn record_model_request(span: &Span, usage: &Usage, ending: Option<&Ending>) {
    let end = match ending {
        Some(Ending::Failed(error)) => spans::RequestEnd::Failed {
            reason: &error.reason,
            message: &error.message,
        },
        Some(Ending::Cancelled) => spans::RequestEnd::Cancelled,
        Some(Ending::Succeeded) | None => spans::RequestEnd::Answered,
    };
    spans::record_model_request(span, usage, end);
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
    // Not entered: nothing runs under it, and it ends when dropped (the stream's end).
    let span = spans::model_request(call.spec, call.model_id);
    let requested = Instant::now();
    let ModelCall {
        provider,
        request,
        model_id,
        ..
    } = call;
    let turn_id = turn.id.clone();
    let stream = tokio::select! {
        result = provider.stream(request) => result,
        () = cancel.cancelled() => {
            record_model_request(&span, &Usage::default(), Some(&Ending::Cancelled));
            return Ok(StepAnswer { message: None, calls: Vec::new(), usage: Usage::default(), ending: Some(Ending::Cancelled) });
        }
    };
    let mut stream = match stream {
        Ok(stream) => stream,
        Err(err) => {
            let ending = provider_failure(&err);
            record_model_request(&span, &Usage::default(), Some(&ending));
            return Ok(StepAnswer {
                message: None,
                calls: Vec::new(),
                usage: Usage::default(),
                ending: Some(ending),
            });
        }
    };
    let mut first_chunk = true;

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
                    crate::domain::reason::PROVIDER_PROTOCOL,
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
        if first_chunk && is_content(&event) {
            first_chunk = false;
            spans::record_first_chunk(&span, requested.elapsed());
        }
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
    record_model_request(&span, &usage, ending.as_ref());
    drop(span);
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
        K::Unavailable | K::RateLimited => crate::domain::reason::PROVIDER_UNAVAILABLE,
        K::Unauthenticated => crate::domain::reason::PROVIDER_UNAUTHENTICATED,
        K::InvalidRequest => crate::domain::reason::PROVIDER_INVALID_REQUEST,
        K::Timeout => crate::domain::reason::PROVIDER_TIMEOUT,
        K::Protocol => crate::domain::reason::PROVIDER_PROTOCOL,
    };
    failed(reason, err.message.clone())
}

/// Whether a stream event is part of the answer (its first is the first chunk).
fn is_content(event: &StreamEvent) -> bool {
    match event {
        StreamEvent::TextDelta(text) | StreamEvent::ReasoningDelta(text) => !text.is_empty(),
        StreamEvent::ToolCall(_) => true,
        StreamEvent::Usage(_) | StreamEvent::Finished(_) => false,
    }
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
