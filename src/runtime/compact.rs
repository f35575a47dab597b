//! CompactSession: compaction on demand, on the session's owner, while it is idle.
//!
//! It holds the session's send lock for the summary request (seconds with a real
//! model), so a message sent meanwhile waits for it rather than racing it; a session
//! with a turn running or queued is refused (SESSION_BUSY) instead of being waited for.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::{
    Chat,
    chat::{Caller, MAX_HOPS, Route},
    cluster::is_moved,
    context::{self, Compaction},
};
use crate::domain::{Error, Result, summary::Summary};

impl Chat {
    /// Compacts the session now. Returns whether a new summary was made and the
    /// session's summary afterwards.
    pub async fn compact_session(
        self: &Arc<Self>,
        session_id: &str,
        caller: Caller,
    ) -> Result<(bool, Option<Summary>)> {
        // A session in the trash is read-only (and must not become live).
        self.deps
            .sessions
            .get(session_id)
            .await?
            .check_not_deleted()?;
        let mut hops = 0;
        loop {
            let live = match self.route_for(session_id, caller).await? {
                Route::Here(live) => live,
                Route::Elsewhere(remote) => match self.peers.compact(&remote, session_id).await {
                    Err(err) if is_moved(&err) && hops < MAX_HOPS => {
                        hops += 1;
                        continue;
                    }
                    answer => return answer,
                },
            };
            let _send = live.send_lock.lock().await;
            {
                let state = live.lock();
                if state.retired {
                    continue;
                }
                if state.is_busy() {
                    return Err(Error::FailedPrecondition {
                        reason: crate::domain::reason::SESSION_BUSY,
                        message: format!(
                            "sessions/{session_id} is running a turn; compact it when it is idle"
                        ),
                    });
                }
            }
            let deps = &self.deps;
            let session = deps.sessions.get(session_id).await?;
            let model = deps
                .models
                .resolve(None, session.model.as_deref())
                .await?
                .model;
            let system = context::session_system_prompt(deps, &session);
            // Every tool the history may have called, for the summary request.
            let tools = context::session_toolbox(deps, &session)
                .await
                .specs(session.permission_mode, true);
            let history = deps.store.history(session_id).await?;
            let previous = deps.store.get_summary(session_id).await?;
            let last = live.lock().last_request.clone();
            let work = Compaction {
                session_id,
                history: &history,
                previous: previous.as_ref(),
                tools: &tools,
                context_window: model.context_window,
                keep: deps.limits.compaction.keep,
                tokens_before: context::measure(
                    &history,
                    &system,
                    previous.as_ref(),
                    last.as_ref(),
                ),
                system: &system,
            };
            let cancel = CancellationToken::new();
            return match context::compact(&live, None, &model, work, &cancel).await {
                Ok(Some(summary)) => Ok((true, Some(summary))),
                Ok(None) => Ok((false, previous)),
                Err(err) => Err(Error::Unavailable {
                    reason: crate::domain::reason::COMPACTION_FAILED,
                    message: format!("sessions/{session_id} could not be summarised: {err}"),
                    retry_after: None,
                }),
            };
        }
    }
}
