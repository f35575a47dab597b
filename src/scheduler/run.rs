//! Running schedule runs: executing a run's turn with retries, QUEUE ordering across
//! servers, settling a run with its webhooks, and taking over the runs of dead servers.
//!
//! - **One writer per run**: a run's `runner` is the server that claimed (or took over)
//!   it; the store refuses any other server's write (`RUN_TAKEN_OVER`), so a server that
//!   was only paused, then taken for dead, cannot settle a run twice or send its webhook
//!   twice.
//! - **Takeover**: `take_over_runs` takes the unfinished runs whose runner is not a live
//!   server (in one store call per batch, disjoint between servers), then settles each
//!   from its turn, or follows the turn to its end when it still runs on the session's
//!   new owner. A pending run that never started its turn is settled FAILED, not run late.
//! - **Concurrency**: runs execute on tracked tasks that stop with the scheduler's token;
//!   per schedule a tokio mutex serialises this server's runs (QUEUE), and a QUEUE run
//!   polls the store every [`QUEUE_POLL`] while an earlier run is unfinished elsewhere.
//! - **A target in the trash**: a run of a schedule whose target session is in the trash
//!   fails with the reason (SESSION_DELETED: restore the session, or retarget the
//!   schedule); it never writes to the trashed session. Creating or updating a schedule
//!   to target one is INVALID_ARGUMENT on `target_session`.

use std::{sync::Arc, time::Duration};

use super::{
    RUN_FINISHED_EVENT, Scheduler,
    outcome::{run_json, run_outcome},
};
use crate::{
    domain::{
        Error, Part, PermissionMode, Result, SessionSource, Timestamp, Turn,
        outbox::{OutboxDelivery, WebhookEndpoint},
        schedule::{OverlapPolicy, RUN_TAKEN_OVER, RunStatus, RunTrigger, Schedule, ScheduleRun},
        session::SessionSettings,
    },
    runtime::{BusyPolicy, NewSession, SendRequest},
    webhooks::WebhookSecret,
};

/// How often a QUEUE run waiting for an earlier run on another server looks again.
/// Cron fires at most once a minute, so a second's delay is noise.
const QUEUE_POLL: Duration = Duration::from_secs(1);

/// How soon following a run's turn is tried again after its session's owner was
/// unavailable: a dead owner's sessions move within the lease TTL (default 10 s).
const FOLLOW_RETRY: Duration = Duration::from_secs(1);

/// Runs taken over per store call.
const TAKEOVER_BATCH: usize = 100;

impl Scheduler {
    /// Takes over and settles (or follows) the unfinished runs of dead runners.
    pub(super) async fn take_over_runs(self: &Arc<Self>) -> Result<()> {
        // One server: nobody else heartbeats, so every other runner is gone.
        let ttl = self.lease_ttl.unwrap_or_default();
        loop {
            let runs = self
                .store
                .take_orphaned_runs(&self.server_id, ttl, TAKEOVER_BATCH)
                .await?;
            let more = runs.len() == TAKEOVER_BATCH;
            for run in runs {
                self.recover(run).await?;
            }
            if !more {
                return Ok(());
            }
        }
    }

    /// A new run of `schedule_id`, run by this server.
    pub(super) fn new_run(
        &self,
        schedule_id: &str,
        trigger: RunTrigger,
        time: Timestamp,
    ) -> ScheduleRun {
        let mut run = ScheduleRun::new(schedule_id, trigger, time);
        run.runner = self.server_id.clone();
        run
    }

    fn run_lock(&self, schedule_id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let Ok(mut locks) = self.run_locks.lock() else {
            return Arc::default();
        };
        locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        locks.entry(schedule_id.to_owned()).or_default().clone()
    }

    pub(super) fn spawn_run(self: &Arc<Self>, schedule: Schedule, run: ScheduleRun) {
        let this = self.clone();
        let lock = self.run_lock(&schedule.id);
        self.tasks.spawn(async move {
            let _serial = lock.lock().await;
            if schedule.overlap == OverlapPolicy::Queue
                && !this.wait_for_earlier_runs(&schedule.id, &run.id).await
            {
                return; // shutting down: the run is taken over at the next start
            }
            // The schedule may have changed or gone while this run waited.
            let schedule = match this.store.get_schedule(&schedule.id).await {
                Ok(Some(current)) => current,
                _ => schedule,
            };
            this.execute(&schedule, run).await;
        });
    }

    /// QUEUE across servers: waits while a run of the schedule older than `run_id` is
    /// unfinished on another server (this server's own earlier runs hold the schedule's
    /// lock). Returns false when the server shuts down first.
    async fn wait_for_earlier_runs(&self, schedule_id: &str, run_id: &str) -> bool {
        loop {
            // Run ids are UUIDv7, so "before" is "older"; a schedule rarely has many
            // unfinished runs, and they are its newest.
            match self.store.list_runs(schedule_id, Some(run_id), 32).await {
                Ok(runs) => {
                    let Some(earlier) = runs
                        .iter()
                        .find(|r| !r.status.is_terminal() && r.runner != self.server_id)
                    else {
                        return true;
                    };
                    tracing::debug!(schedule = %schedule_id, run = %run_id, earlier = %earlier.id, runner = %earlier.runner, "QUEUE run waits for an earlier run on another server");
                }
                Err(err) => {
                    tracing::warn!(schedule = %schedule_id, run = %run_id, error = %err, "cannot read the earlier runs of a QUEUE schedule; looking again");
                }
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return false,
                () = tokio::time::sleep(QUEUE_POLL) => {}
            }
        }
    }

    async fn execute(&self, schedule: &Schedule, mut run: ScheduleRun) {
        let outcome = self.attempts(schedule, &mut run).await;
        let (status, error) = match outcome {
            Ok(note) => (RunStatus::Succeeded, note.unwrap_or_default()),
            Err(error) => (RunStatus::Failed, error),
        };
        self.settle(&mut run, status, error, Some(schedule)).await;
        tracing::info!(schedule = %schedule.id, run = %run.id, status = ?run.status, attempts = run.attempt, error = %run.error, "schedule run finished");
    }

    /// Records how a run ended, with its `schedule_run.finished` webhooks in the same
    /// transaction. Without the schedule at hand it is read (gone: only the server-level
    /// webhook hears of the run).
    async fn settle(
        &self,
        run: &mut ScheduleRun,
        status: RunStatus,
        error: String,
        schedule: Option<&Schedule>,
    ) {
        run.status = status;
        run.error = error;
        run.end_time = Some(self.clock.now());
        run.next_retry_delay = None;
        let loaded;
        let schedule = match schedule {
            Some(schedule) => Some(schedule),
            None => {
                loaded = self
                    .store
                    .get_schedule(&run.schedule_id)
                    .await
                    .ok()
                    .flatten();
                loaded.as_ref()
            }
        };
        let deliveries = self.run_deliveries(schedule, run);
        match self.store.update_run_with(run, &deliveries).await {
            Ok(()) if !deliveries.is_empty() => self.outbox.stored(),
            Ok(()) => {}
            Err(err) => log_store_failure(run, &err),
        }
    }

    async fn save_run(&self, run: &ScheduleRun) {
        if let Err(err) = self.store.update_run(run).await {
            log_store_failure(run, &err);
        }
    }

    /// Runs the prompt, retrying on provider errors. Ok carries a note for the record
    /// (the schedule's model was deleted); Err the reason the run failed.
    async fn attempts(
        &self,
        schedule: &Schedule,
        run: &mut ScheduleRun,
    ) -> std::result::Result<Option<String>, String> {
        run.status = RunStatus::Running;
        run.start_time = Some(self.clock.now());
        let (session_id, note) = self
            .session_for(schedule, run)
            .await
            .map_err(|err| format!("cannot prepare the session: {err}"))?;
        run.session_id = Some(session_id.clone());
        loop {
            run.attempt += 1;
            run.next_retry_delay = None;
            run.turn_id = None;
            self.save_run(run).await;
            let sent = self
                .chat
                .send(SendRequest {
                    session_id: session_id.clone(),
                    parts: vec![Part::Text {
                        text: schedule.prompt.clone(),
                    }],
                    on_busy: BusyPolicy::Enqueue,
                    model: None,
                    // Nobody is there to answer the model's questions.
                    unattended: true,
                })
                .await;
            let turn = match sent {
                Ok((_, turn)) => turn,
                Err(err) => return Err(format!("cannot send the prompt: {err}")),
            };
            run.turn_id = Some(turn.id.clone());
            self.save_run(run).await;
            let turn = self.wait_for_turn(&turn).await?;
            let (status, error) = run_outcome(&turn);
            if status == RunStatus::Succeeded {
                return Ok(note);
            }
            let provider_failure = turn
                .error
                .as_ref()
                .is_some_and(|e| e.reason.starts_with("PROVIDER_"));
            if !provider_failure || run.attempt >= schedule.retry.max_attempts {
                return Err(error);
            }
            let delay = schedule.retry.backoff(run.attempt);
            run.error = error;
            run.next_retry_delay = Some(delay);
            self.save_run(run).await;
            tracing::info!(run = %run.id, attempt = run.attempt, delay_s = delay.as_secs_f64(), "schedule run failed on a provider error; retrying");
            tokio::select! {
                () = self.shutdown.cancelled() => return Err("the server stopped before the retry".into()),
                () = self.clock.sleep(delay) => {}
            }
        }
    }

    /// The session a run uses: the schedule's target, or a new one.
    async fn session_for(
        &self,
        schedule: &Schedule,
        run: &ScheduleRun,
    ) -> Result<(String, Option<String>)> {
        if let Some(target) = &schedule.target_session {
            // A target in the trash is read-only: the run fails saying so (SESSION_DELETED)
            // rather than quietly writing to it; restoring the session makes runs work
            // again.
            let session = self.sessions.get(target).await?;
            session.check_not_deleted()?;
            return Ok((session.id, None));
        }
        let mut note = None;
        let model = match &schedule.model {
            Some(model) if !self.models.exists(model).await? => {
                note = Some(format!(
                    "the schedule's model models/{model} was deleted; ran with the default model"
                ));
                None
            }
            other => other.clone(),
        };
        let title = if schedule.display_name.is_empty() {
            schedule.prompt.chars().take(60).collect()
        } else {
            schedule.display_name.clone()
        };
        let settings = SessionSettings {
            display_name: format!("{title} ({})", run.scheduled_time.to_rfc3339()),
            model,
            working_dir: schedule.working_dir.clone(),
            permission_mode: schedule.permission_mode,
            labels: [("schedule".to_owned(), schedule.id.clone())].into(),
            ..SessionSettings::default()
        };
        // A deleted profile fails the run (NOT_FOUND, saying which): falling back to
        // another profile could run it with permissions it was never meant to have.
        let session = self
            .sessions
            .create(NewSession {
                settings,
                source: SessionSource::Schedule,
                profile: schedule.profile.clone(),
                // Nobody is there to confirm.
                fallback_mode: PermissionMode::AutoApprove,
            })
            .await?;
        Ok((session.id, note))
    }

    /// Waits for the run's turn to end, on whichever server owns its session.
    ///
    /// The session's owner may die meanwhile (or have died: a run taken over from a dead
    /// server follows a turn its session's new owner is about to recover). Its
    /// UNAVAILABLE answers ("cannot be reached", "moved") are waited out, every
    /// [`FOLLOW_RETRY`], until a live server owns the session and the turn ends there.
    async fn wait_for_turn(&self, turn: &Turn) -> std::result::Result<Turn, String> {
        loop {
            let waited = tokio::select! {
                () = self.shutdown.cancelled() => return Err("the server stopped during the run".into()),
                waited = self.chat.wait_for_turn(&turn.session_id, &turn.id) => waited,
            };
            match waited {
                Ok(turn) => return Ok(turn),
                Err(err @ Error::Unavailable { .. }) => {
                    tracing::info!(session = %turn.session_id, turn = %turn.id, error = %err, "following a schedule run's turn: its session's owner is unavailable; trying again");
                    tokio::select! {
                        () = self.shutdown.cancelled() => return Err("the server stopped during the run".into()),
                        () = tokio::time::sleep(FOLLOW_RETRY) => {}
                    }
                }
                Err(err) => return Err(format!("cannot follow the run's turn: {err}")),
            }
        }
    }

    /// Settles a run taken over from a dead runner (a previous process, or a server of the
    /// cluster that stopped), or follows its turn to the end when the turn still runs
    /// (on the session's new owner, which recovered it).
    pub(super) async fn recover(self: &Arc<Self>, mut run: ScheduleRun) -> Result<()> {
        let turn = match (&run.session_id, &run.turn_id) {
            (Some(session), Some(turn)) => self.chat.get_turn(session, turn).await.ok(),
            _ => None,
        };
        let (status, error) = match turn {
            Some(turn) if !turn.status.is_terminal() => {
                // Queued again by the chat runtime's own recovery: wait for it.
                let this = self.clone();
                self.tasks.spawn(async move {
                    let outcome = this.wait_for_turn(&turn).await;
                    let (status, error) = match outcome {
                        Ok(turn) => run_outcome(&turn),
                        Err(error) => (RunStatus::Failed, error),
                    };
                    this.settle(&mut run, status, error, None).await;
                });
                return Ok(());
            }
            Some(turn) => run_outcome(&turn),
            None => (
                RunStatus::Failed,
                "the server stopped before the run started its turn".into(),
            ),
        };
        tracing::warn!(run = %run.id, status = ?status, "settling a schedule run its stopped server left unfinished");
        self.settle(&mut run, status, error, None).await;
        Ok(())
    }

    /// The webhooks a finished run notifies: the server-level one and the schedule's.
    pub(super) fn run_deliveries(
        &self,
        schedule: Option<&Schedule>,
        run: &ScheduleRun,
    ) -> Vec<OutboxDelivery> {
        let data = run_json(run);
        let mut endpoints: Vec<WebhookEndpoint> = self.outbox.endpoint.iter().cloned().collect();
        if let Some(schedule) = schedule
            && let (Some(url), Some(secret)) = (&schedule.webhook_url, &schedule.webhook_secret)
        {
            match WebhookSecret::parse(secret) {
                Ok(_) => endpoints.push(WebhookEndpoint {
                    url: url.clone(),
                    secret: secret.clone(),
                }),
                Err(err) => {
                    tracing::error!(schedule = %schedule.id, error = %err, "stored webhook secret is invalid")
                }
            }
        }
        endpoints
            .iter()
            .map(|endpoint| OutboxDelivery::new(endpoint, RUN_FINISHED_EVENT, &data))
            .collect()
    }
}

/// A run's write failed: taken over (this server was thought dead; the survivor settles
/// the run, so this server's outcome is dropped) or a store failure.
fn log_store_failure(run: &ScheduleRun, err: &Error) {
    if err.reason() == RUN_TAKEN_OVER {
        tracing::warn!(run = %run.id, error = %err, "schedule run was taken over by another server; dropping this server's outcome");
    } else {
        tracing::error!(run = %run.id, error = %err, "cannot store the schedule run");
    }
}
