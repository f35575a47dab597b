//! Questions of the model to the user (the `ask_user` tool). A turn that asks waits, as
//! it does for a confirmation, until RespondToInput answers (run on the server owning
//! the session; a client's answer reaching another server is forwarded there) or a
//! cancel withdraws the question; the accepted answer is the call's result.
//!
//! The question lives in the running turn's live state (`ActiveTurn::inputs`), so the
//! snapshot of a subscriber that (re)connects shows it; it is added and announced
//! (`input_requested`), and answered or withdrawn and announced (`input_resolved`),
//! under the one lock of that state, so each subscriber sees it exactly once: in its
//! snapshot or as an event.

use std::sync::Arc;

use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::{
    Chat,
    chat::{Caller, Located, MAX_HOPS},
    cluster::is_moved,
    events::{EventKind, InputRequest},
    live::{LiveSession, PendingInput},
};
use crate::{
    domain::{Error, Resource, Result, Timestamp, Turn, new_id, tool::ToolCallRequest},
    tools::{ToolOutcome, ask_user::Question},
};

/// Asks the question of an `ask_user` call and waits for the answer: the call's outcome
/// (the answer; why the arguments are wrong; or cancelled, the question withdrawn).
pub(super) async fn ask(
    live: &Arc<LiveSession>,
    turn: &Turn,
    call: &ToolCallRequest,
    arguments: serde_json::Value,
    cancel: &CancellationToken,
) -> ToolOutcome {
    let question = match Question::parse(arguments) {
        Ok(question) => question,
        Err(why) => return ToolOutcome::error(why),
    };
    let (answer, answered) = oneshot::channel();
    let request = InputRequest {
        id: new_id(),
        session_id: live.id.to_string(),
        turn_id: turn.id.clone(),
        tool_call_id: call.id.clone(),
        question,
        create_time: Timestamp::now(),
    };
    {
        let mut state = live.lock();
        let Some(active) = state.active.as_mut() else {
            return ToolOutcome::cancelled("cancelled before the question was asked");
        };
        active.inputs.push(PendingInput {
            request: request.clone(),
            answer: Some(answer),
        });
        live.emit_locked(
            &mut state,
            Some(&turn.id),
            EventKind::InputRequested {
                request: Box::new(request.clone()),
            },
        );
        live.publish_summary(&state);
    }
    tokio::select! {
        answer = answered => match answer {
            Ok(answer) => ToolOutcome::ok(answer),
            // The question left the live state unanswered (it was retired).
            Err(_) => ToolOutcome::cancelled("cancelled before the user answered"),
        },
        () = cancel.cancelled() => {
            withdraw(live, &turn.id, &request.id);
            ToolOutcome::cancelled("cancelled before the user answered")
        }
    }
}

/// Takes a question nobody answered off the live state and says so.
fn withdraw(live: &LiveSession, turn_id: &str, request_id: &str) {
    let mut state = live.lock();
    let Some(active) = state.active.as_mut() else {
        return;
    };
    let Some(position) = active
        .inputs
        .iter()
        .position(|p| p.request.id == request_id)
    else {
        // Answered meanwhile: the answer's own event said so.
        return;
    };
    active.inputs.remove(position);
    live.emit_locked(
        &mut state,
        Some(turn_id),
        EventKind::InputResolved {
            input_request_id: request_id.to_owned(),
            answer: None,
        },
    );
    live.publish_summary(&state);
}

impl Chat {
    /// Answers a question of the model (see the module doc). NOT_FOUND when it is not
    /// waiting; INVALID_ARGUMENT (`answer`) when the answer does not fit the question.
    pub async fn respond_to_input(
        &self,
        session_id: &str,
        request_id: &str,
        answer: &str,
    ) -> Result<InputRequest> {
        self.respond_to_input_from(session_id, request_id, answer, Caller::Client)
            .await
    }

    /// `respond_to_input`, for `caller`.
    pub async fn respond_to_input_from(
        &self,
        session_id: &str,
        request_id: &str,
        answer: &str,
        caller: Caller,
    ) -> Result<InputRequest> {
        let not_found = || {
            Error::not_found(
                Resource::InputRequest,
                format!("sessions/{session_id}/inputRequests/{request_id}"),
            )
        };
        let mut hops = 0;
        let live = loop {
            match self.locate(session_id, caller).await? {
                Located::Here(live) => break live,
                Located::Idle => return Err(not_found()),
                Located::Elsewhere(remote) => {
                    match self
                        .peers
                        .respond_to_input(&remote, session_id, request_id, answer)
                        .await
                    {
                        Err(err) if is_moved(&err) && hops < MAX_HOPS => hops += 1,
                        answered => return answered,
                    }
                }
            }
        };
        let max_bytes = self.deps.limits.max_tool_output_bytes;
        let mut state = live.lock();
        let active = state.active.as_mut().ok_or_else(not_found)?;
        let position = active
            .inputs
            .iter()
            .position(|p| p.request.id == request_id)
            .ok_or_else(not_found)?;
        let accepted = active.inputs[position]
            .request
            .question
            .accept(answer, max_bytes)
            .map_err(|why| Error::invalid("answer", why))?;
        let mut pending = active.inputs.remove(position);
        let turn_id = active.turn.id.clone();
        if let Some(waiting) = pending.answer.take() {
            // The turn may be ending (cancelled) meanwhile: then nobody reads it.
            let _ = waiting.send(accepted.clone());
        }
        live.emit_locked(
            &mut state,
            Some(&turn_id),
            EventKind::InputResolved {
                input_request_id: request_id.to_owned(),
                answer: Some(accepted),
            },
        );
        live.publish_summary(&state);
        Ok(pending.request)
    }
}
