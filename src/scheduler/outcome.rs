//! How a schedule run ends given its turn, and the run as webhook receivers get it
//! (the `data` of a `schedule_run.finished` delivery): resource names as in the API,
//! RFC 3339 times.

use crate::domain::{
    Timestamp, Turn, TurnStatus,
    schedule::{RunStatus, ScheduleRun},
};

/// How a run ends given its turn's terminal state, and the error to record.
pub(super) fn run_outcome(turn: &Turn) -> (RunStatus, String) {
    match (&turn.status, &turn.error) {
        (TurnStatus::Succeeded, _) => (RunStatus::Succeeded, String::new()),
        (status, Some(error)) => (
            RunStatus::Failed,
            format!(
                "turn {}: {} ({})",
                status_word(*status),
                error.message,
                error.reason
            ),
        ),
        (status, None) => (RunStatus::Failed, format!("turn {}", status_word(*status))),
    }
}

fn status_word(status: TurnStatus) -> &'static str {
    match status {
        TurnStatus::Queued => "queued",
        TurnStatus::Running => "running",
        TurnStatus::Succeeded => "succeeded",
        TurnStatus::Failed => "failed",
        TurnStatus::Cancelled => "was cancelled",
        TurnStatus::Interrupted => "was interrupted",
    }
}

/// A run as webhook receivers get it: resource names as in the API, RFC 3339 times.
pub fn run_json(run: &ScheduleRun) -> serde_json::Value {
    let time = |t: Option<Timestamp>| t.map(Timestamp::to_rfc3339);
    serde_json::json!({
        "schedule": format!("schedules/{}", run.schedule_id),
        "run": format!("schedules/{}/runs/{}", run.schedule_id, run.id),
        "trigger": run.trigger.as_str(),
        "status": run.status.as_str(),
        "scheduled_time": run.scheduled_time.to_rfc3339(),
        "start_time": time(run.start_time),
        "end_time": time(run.end_time),
        "session": run.session_id.as_ref().map(|s| format!("sessions/{s}")),
        "turn": match (&run.session_id, &run.turn_id) {
            (Some(s), Some(t)) => Some(format!("sessions/{s}/turns/{t}")),
            _ => None,
        },
        "attempt": run.attempt,
        "error": run.error,
    })
}
