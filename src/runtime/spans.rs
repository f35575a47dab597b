//! The trace spans of a turn, in `tracing` terms only: the turn (`invoke_agent`), each
//! model request (`chat`) and each tool call (`execute_tool`), with the OpenTelemetry
//! GenAI semantic conventions' attributes (`gen_ai.*`) and the bridge's `otel.*` fields.
//! Declaring `otel.kind` is what makes a span exported (see `crate::telemetry`); when
//! traces are off the spans are disabled and recording on them costs nothing.
//!
//! Tree: the RPC that sent the message > the turn > its model requests and tool calls,
//! in order. A turn runs in its driver's task after SendMessage has answered, so its
//! span is made a child of that RPC's span explicitly (`origin`, held with the queued
//! turn until it starts): one trace per message sent, from the client's call to the
//! model's last word. The RPC span ends when the RPC answers all the same.

use std::time::Duration;

use tracing::{Span, field::Empty};

use crate::{
    domain::{ToolCallRecord, ToolCallStatus, Turn, Usage, tool::ToolCallRequest},
    providers::{ModelSpec, ProviderKind},
};

/// The span a turn queued now will be a child of: the exported span current where its
/// message is sent (the SendMessage RPC's), if traces are on.
pub(super) fn origin() -> Option<Span> {
    let span = Span::current();
    span.metadata()
        .is_some_and(|meta| meta.fields().field("otel.kind").is_some())
        .then_some(span)
}

/// The span of a turn of session `session_id`, a child of `origin` (else a root).
pub(super) fn turn(session_id: &str, turn_id: &str, origin: Option<&Span>) -> Span {
    tracing::info_span!(
        parent: origin.and_then(Span::id),
        "turn",
        otel.name = "invoke_agent octo",
        otel.kind = "internal",
        otel.status_code = Empty,
        otel.status_description = Empty,
        gen_ai.operation.name = "invoke_agent",
        gen_ai.agent.name = "octo",
        gen_ai.conversation.id = session_id,
        gen_ai.request.model = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        error.type = Empty,
        octo.turn.id = turn_id,
        octo.turn.status = Empty,
        octo.turn.steps = Empty,
    )
}

/// How the turn ended, on its span: model, token totals, steps, status; an error
/// status when it failed.
pub(super) fn record_turn(span: &Span, turn: &Turn) {
    if span.is_disabled() {
        return;
    }
    if let Some(model) = &turn.model {
        span.record("gen_ai.request.model", model.as_str());
    }
    span.record("gen_ai.usage.input_tokens", turn.usage.input_tokens);
    span.record("gen_ai.usage.output_tokens", turn.usage.output_tokens);
    span.record("octo.turn.steps", turn.step_count);
    span.record(
        "octo.turn.status",
        format!("{:?}", turn.status).to_ascii_lowercase(),
    );
    if let Some(error) = &turn.error {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", error.reason.as_str());
        span.record("otel.status_description", error.message.as_str());
    }
}

/// The span of one model request (an inference span), from the request to the end of
/// its stream. Not to be entered: nothing runs under it, and it ends when dropped.
pub(super) fn model_request(spec: &ModelSpec, model_id: &str) -> Span {
    let provider = match spec.kind {
        ProviderKind::OpenAiCompatible => "openai",
        ProviderKind::Anthropic => "anthropic",
        ProviderKind::Mock => "octo.mock",
    };
    tracing::info_span!(
        "model_request",
        otel.name = %format_args!("chat {}", spec.provider_model),
        otel.kind = "client",
        otel.status_code = Empty,
        otel.status_description = Empty,
        gen_ai.operation.name = "chat",
        gen_ai.provider.name = provider,
        // The name before semantic conventions 1.37, which many backends still read.
        gen_ai.system = provider,
        gen_ai.request.model = %spec.provider_model,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        gen_ai.response.time_to_first_chunk = Empty,
        error.type = Empty,
        octo.model = model_id,
    )
}

/// The time from the request to the first chunk of the answer (text, reasoning or a
/// tool call), in seconds.
pub(super) fn record_first_chunk(span: &Span, elapsed: Duration) {
    span.record("gen_ai.response.time_to_first_chunk", elapsed.as_secs_f64());
}

/// How a model request ended.
pub(super) enum RequestEnd<'a> {
    /// Its stream finished (or it gave tool calls).
    Answered,
    /// The turn was cancelled while it streamed.
    Cancelled,
    /// It failed, ending the turn with `reason`.
    Failed { reason: &'a str, message: &'a str },
}

/// What the model request gave: its usage, and how it ended.
pub(super) fn record_model_request(span: &Span, usage: &Usage, end: RequestEnd<'_>) {
    span.record("gen_ai.usage.input_tokens", usage.input_tokens);
    span.record("gen_ai.usage.output_tokens", usage.output_tokens);
    match end {
        RequestEnd::Answered => {}
        RequestEnd::Cancelled => {
            span.record("error.type", "cancelled");
        }
        RequestEnd::Failed { reason, message } => {
            span.record("otel.status_code", "ERROR");
            span.record("error.type", reason);
            span.record("otel.status_description", message);
        }
    }
}

/// The span of one tool call, from its announcement to its result (in ASK mode the wait
/// for the person's decision is inside). Not to be entered; it ends when dropped.
pub(super) fn tool_call(call: &ToolCallRequest) -> Span {
    tracing::info_span!(
        "tool_call",
        otel.name = %format_args!("execute_tool {}", call.tool),
        otel.kind = "internal",
        otel.status_code = Empty,
        gen_ai.operation.name = "execute_tool",
        gen_ai.tool.name = %call.tool,
        gen_ai.tool.call.id = %call.id,
        gen_ai.tool.type = "function",
        error.type = Empty,
        octo.tool.status = Empty,
        octo.tool.exit_code = Empty,
    )
}

/// How the call ended: its status and exit code, and an error status when the tool
/// failed (a denied or cancelled call is not the tool's error).
pub(super) fn record_tool_call(span: &Span, record: &ToolCallRecord) {
    if span.is_disabled() {
        return;
    }
    span.record(
        "octo.tool.status",
        format!("{:?}", record.status).to_ascii_lowercase(),
    );
    if let Some(code) = record.exit_code {
        span.record("octo.tool.exit_code", code);
    }
    if record.status == ToolCallStatus::Failed {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", "tool_error");
    }
}
