//! Schedules: prompts run unattended on a cron. This module owns the schedule rules
//! (validation, next fire time), the firing loop, and the execution and history of runs.
//!
//! **Exactly once.** A due fire time is claimed by storing its run under a unique
//! (schedule, fire time) key in the same transaction that moves the schedule's next fire
//! time on; only the server whose insert succeeded runs it, however many servers share
//! the database.
//!
//! **Misfires.** When the scheduler finds fire times in the past (the server was down, or
//! the machine slept), only the latest of them may still run: it runs once, as a
//! MISFIRE run, if it is at most `misfire_grace` late; otherwise it is recorded as a
//! SKIPPED run. Earlier missed times are recorded together as one SKIPPED run (at the
//! first of them) whose error says how many were missed. A fire time handled less than
//! [`ON_TIME`] late is an ordinary CRON run.
//!
//! **Overlap.** SKIP records a fire time whose schedule still has a pending or running
//! run as SKIPPED; QUEUE runs it once the earlier runs of the schedule have finished: on
//! this server they are serialised by a per-schedule lock, and a run then waits while an
//! earlier run is unfinished on another server (checked every second).
//!
//! **Runners.** Every run records the server that runs it (`ScheduleRun::runner`, this
//! process's server id), and only that server writes it (the store refuses a runner's
//! write once the run names another). At start a server takes over the unfinished runs
//! of servers that are gone (every earlier run, on one server); in a cluster it does so
//! again every third of the lease TTL, so a dead server's runs are settled (or followed
//! to their turn's end on the session's new owner) within about one TTL, once, by one
//! survivor.
//!
//! **Retries.** A run whose turn fails on a provider error (reason `PROVIDER_*`) is
//! tried again in the same session after the retry policy's backoff, up to
//! `max_attempts` attempts in all.
//!
//! **Webhooks.** A run's `schedule_run.finished` deliveries (to the server-level webhook
//! and the schedule's own) are stored in the webhook outbox in the same transaction as
//! the run's final state (its last update, or the claim of a run SKIPPED at once); the
//! delivery worker (`crate::outbox`) sends them.

pub mod clock;
pub mod cron;
mod outcome;
mod run;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::Notify;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use clock::{Clock, ManualClock, SystemClock};
use cron::{Cron, Zone};
pub use outcome::run_json;

use crate::{
    domain::{
        Error, Resource, Result, Timestamp,
        error::Violations,
        schedule::{
            OverlapPolicy, RetryPolicy, RunStatus, RunTrigger, Schedule, ScheduleField, ScheduleRun,
        },
    },
    runtime::{Chat, Models, Outbox, Sessions},
    store::Store,
    webhooks::{WebhookSecret, Webhooks},
};

/// A fire time handled at most this late counts as on time (trigger CRON).
pub const ON_TIME: Duration = Duration::from_secs(60);

/// The scheduler looks at the store at least this often, so schedules another server
/// changed are picked up.
const POLL: Duration = Duration::from_secs(30);

/// The largest prompt a schedule may send.
const MAX_PROMPT_BYTES: usize = 256 * 1024;

/// The webhook event a finished run sends.
pub const RUN_FINISHED_EVENT: &str = "schedule_run.finished";

pub struct Scheduler {
    store: Arc<dyn Store>,
    chat: Arc<Chat>,
    sessions: Arc<Sessions>,
    models: Arc<Models>,
    clock: Arc<dyn Clock>,
    /// Checks webhook URLs before they are stored.
    webhooks: Webhooks,
    /// The server-level webhook (hears about every run) and the delivery worker's wake-up.
    outbox: Outbox,
    misfire_grace: Duration,
    /// This server, as the runner of the runs it claims.
    server_id: String,
    /// In a cluster: the lease TTL, the time a server may miss heartbeats before its runs
    /// are taken over. None on one server (only the runs of earlier processes are).
    lease_ttl: Option<Duration>,
    /// Wakes the firing loop when a schedule changed.
    wake: Notify,
    /// Per schedule, held while one of its runs executes here: QUEUE runs wait on it.
    run_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

/// What the scheduler works with.
pub struct SchedulerDeps {
    pub store: Arc<dyn Store>,
    pub chat: Arc<Chat>,
    pub sessions: Arc<Sessions>,
    pub models: Arc<Models>,
    pub clock: Arc<dyn Clock>,
    pub webhooks: Webhooks,
    pub outbox: Outbox,
    pub misfire_grace: Duration,
    /// This server process (new at every start): the runner of the runs it claims.
    pub server_id: String,
    /// In a cluster, the lease TTL: a server without a heartbeat for this long is dead
    /// and its unfinished runs are taken over. None on one server.
    pub lease_ttl: Option<Duration>,
}

fn not_found(id: &str) -> Error {
    Error::not_found(Resource::Schedule, format!("schedules/{id}"))
}

/// Fire times PreviewSchedule gives by default (what a form shows) and at most.
const PREVIEW_DEFAULT: usize = 5;
const PREVIEW_MAX: i32 = 100;

fn etag_mismatch(id: &str) -> Error {
    Error::EtagMismatch {
        resource: Resource::Schedule,
        name: format!("schedules/{id}"),
    }
}

/// Checks what a client sets and returns the parsed cron and zone. Field paths are
/// relative to the schedule.
fn validate(s: &Schedule) -> Result<(Cron, Zone)> {
    let mut v = Violations::new();
    if s.prompt.trim().is_empty() {
        v.add("prompt", "is required: the message each run sends");
    } else if s.prompt.len() > MAX_PROMPT_BYTES {
        v.add(
            "prompt",
            format!("must be at most {MAX_PROMPT_BYTES} bytes"),
        );
    }
    if s.display_name.chars().count() > 256 {
        v.add("display_name", "must be at most 256 characters");
    }
    let cron = Cron::parse(&s.cron)
        .map_err(|err| v.add("cron", err.to_string()))
        .ok();
    let zone = Zone::parse(&s.time_zone)
        .map_err(|err| v.add("time_zone", err))
        .ok();
    let retry = &s.retry;
    if !(1..=RetryPolicy::MAX_ATTEMPTS).contains(&retry.max_attempts) {
        v.add(
            "retry_policy.max_attempts",
            format!("must be 1 to {}", RetryPolicy::MAX_ATTEMPTS),
        );
    }
    if retry.initial_backoff.is_zero() || retry.initial_backoff > Duration::from_secs(86_400) {
        v.add(
            "retry_policy.initial_backoff",
            "must be more than 0 and at most 1 day",
        );
    }
    if retry.max_backoff < retry.initial_backoff || retry.max_backoff > Duration::from_secs(86_400)
    {
        v.add(
            "retry_policy.max_backoff",
            "must be at least initial_backoff and at most 1 day",
        );
    }
    if let Some(secret) = &s.webhook_secret
        && let Err(err) = WebhookSecret::parse(secret)
    {
        v.add("webhook_secret", err);
    }
    if s.webhook_url.is_some() && s.webhook_secret.is_none() {
        v.add(
            "webhook_secret",
            "is required with webhook_url: a `whsec_` secret (base64 of 24 to 64 random bytes) \
             the receiver verifies signatures with",
        );
    }
    v.into_result()?;
    match (cron, zone) {
        (Some(cron), Some(zone)) => Ok((cron, zone)),
        _ => Err(Error::Internal("validation passed without a cron".into())),
    }
}

impl Scheduler {
    pub fn new(deps: SchedulerDeps, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(Self {
            store: deps.store,
            chat: deps.chat,
            sessions: deps.sessions,
            models: deps.models,
            clock: deps.clock,
            webhooks: deps.webhooks,
            outbox: deps.outbox,
            misfire_grace: deps.misfire_grace,
            server_id: deps.server_id,
            lease_ttl: deps.lease_ttl,
            wake: Notify::new(),
            run_locks: Mutex::default(),
            tasks: TaskTracker::new(),
            shutdown,
        })
    }

    /// Takes over the runs that servers which are gone left unfinished (on one server:
    /// every earlier process's), then starts the firing loop, and in a cluster the
    /// periodic takeover of dead servers' runs.
    pub async fn start(self: &Arc<Self>) -> Result<()> {
        self.take_over_runs().await?;
        let this = self.clone();
        self.tasks.spawn(async move { this.fire_loop().await });
        if let Some(ttl) = self.lease_ttl {
            let this = self.clone();
            self.tasks.spawn(async move {
                loop {
                    tokio::select! {
                        () = this.shutdown.cancelled() => return,
                        () = tokio::time::sleep(ttl / 3) => {}
                    }
                    if let Err(err) = this.take_over_runs().await {
                        tracing::error!(error = %err, "taking over the schedule runs of dead servers failed; trying again at the next heartbeat");
                    }
                }
            });
        }
        Ok(())
    }

    /// Stops firing and waits (up to `grace`) for runs to record their end.
    pub async fn shutdown(&self, grace: Duration) {
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "schedule runs still busy at shutdown; a live server (or the next to start) takes them over"
            );
        }
    }

    // --- the schedule resource ---

    /// The time zone `UTC` when none is given, and the next fire time when enabled.
    fn prepare(&self, schedule: &mut Schedule) -> Result<()> {
        if schedule.time_zone.trim().is_empty() {
            schedule.time_zone = "UTC".into();
        }
        let (cron, zone) = validate(schedule)?;
        schedule.cron = cron.as_str().to_owned();
        schedule.next_run_time = if schedule.enabled {
            cron.next_after(self.clock.now(), &zone)
        } else {
            None
        };
        Ok(())
    }

    /// Checks what validation cannot without I/O: the target session, model, profile,
    /// working dir and webhook URL.
    async fn check_references(&self, s: &Schedule) -> Result<()> {
        let mut v = Violations::new();
        if let Some(session) = &s.target_session {
            match self.sessions.get(session).await {
                Ok(target) if target.is_deleted() => v.add(
                    "target_session",
                    format!("sessions/{session} is in the trash; restore it first"),
                ),
                Ok(_) => {}
                Err(Error::NotFound { .. }) => v.add(
                    "target_session",
                    format!("sessions/{session} does not exist"),
                ),
                Err(err) => return Err(err),
            }
        }
        if let Some(model) = &s.model
            && !self.models.exists(model).await?
        {
            v.add("model", format!("models/{model} does not exist"));
        }
        if let Some(profile) = &s.profile
            && self.store.get_profile(profile).await?.is_none()
        {
            v.add("profile", format!("profiles/{profile} does not exist"));
        }
        v.check(
            self.sessions
                .check_working_dir(&s.working_dir, "working_dir"),
        );
        if let Some(url) = &s.webhook_url
            && let Err(err) = self.webhooks.check_url(url).await
        {
            v.add("webhook_url", err);
        }
        v.into_result()
    }

    pub async fn create(&self, mut schedule: Schedule) -> Result<Schedule> {
        let now = self.clock.now();
        schedule.id = crate::domain::new_id();
        schedule.create_time = now;
        schedule.update_time = now;
        schedule.revision = 1;
        self.prepare(&mut schedule)
            .map_err(|e| e.within("schedule."))?;
        self.check_references(&schedule)
            .await
            .map_err(|e| e.within("schedule."))?;
        self.store.create_schedule(&schedule).await?;
        tracing::info!(schedule = %schedule.id, cron = %schedule.cron, time_zone = %schedule.time_zone, next = ?schedule.next_run_time, "schedule created");
        self.wake.notify_one();
        Ok(schedule)
    }

    /// The next `count` fire times of `cron` in `time_zone` (empty: UTC) after now, by
    /// this scheduler's clock. Violations name `cron`, `time_zone` and `count`.
    pub fn preview(&self, cron: &str, time_zone: &str, count: i32) -> Result<Vec<Timestamp>> {
        let mut v = Violations::new();
        let parsed = Cron::parse(cron)
            .map_err(|err| v.add("cron", err.to_string()))
            .ok();
        let zone_name = if time_zone.is_empty() {
            "UTC"
        } else {
            time_zone
        };
        let zone = Zone::parse(zone_name)
            .map_err(|err| v.add("time_zone", err))
            .ok();
        let count = match count {
            0 => PREVIEW_DEFAULT,
            1..=PREVIEW_MAX => count as usize,
            _ => {
                v.add(
                    "count",
                    format!("must be 1 to {PREVIEW_MAX}, or 0 for {PREVIEW_DEFAULT}"),
                );
                0
            }
        };
        v.into_result()?;
        let (Some(cron), Some(zone)) = (parsed, zone) else {
            return Ok(Vec::new());
        };
        let mut times = Vec::with_capacity(count);
        let mut after = self.clock.now();
        while times.len() < count {
            match cron.next_after(after, &zone) {
                Some(next) => {
                    times.push(next);
                    after = next;
                }
                None => break,
            }
        }
        Ok(times)
    }

    pub async fn get(&self, id: &str) -> Result<Schedule> {
        self.store
            .get_schedule(id)
            .await?
            .ok_or_else(|| not_found(id))
    }

    pub async fn list(&self, after: Option<&str>, limit: usize) -> Result<Vec<Schedule>> {
        self.store.list_schedules(after, limit).await
    }

    /// Changes `fields` to the values in `changes`. A change of cron, time zone or
    /// enabled recomputes the next fire time from now.
    pub async fn update(
        &self,
        id: &str,
        changes: &Schedule,
        fields: &[ScheduleField],
        expected_revision: Option<i64>,
    ) -> Result<Schedule> {
        let current = self.get(id).await?;
        if expected_revision.is_some_and(|r| r != current.revision) {
            return Err(etag_mismatch(id));
        }
        let mut updated = current.clone();
        for field in fields {
            field.apply(changes, &mut updated);
        }
        let timing_changed = updated.cron != current.cron
            || updated.time_zone != current.time_zone
            || updated.enabled != current.enabled;
        let next = current.next_run_time;
        self.prepare(&mut updated)
            .map_err(|e| e.within("schedule."))?;
        if !timing_changed {
            // The pending fire time stays claimed-or-not exactly as it was.
            updated.next_run_time = next;
        }
        self.check_references(&updated)
            .await
            .map_err(|e| e.within("schedule."))?;
        updated.update_time = self.clock.now();
        updated.revision = current.revision + 1;
        if !self
            .store
            .update_schedule(&updated, current.revision)
            .await?
        {
            return Err(etag_mismatch(id));
        }
        self.wake.notify_one();
        Ok(updated)
    }

    /// Deletes a schedule and its run history; sessions its runs created stay.
    pub async fn delete(
        &self,
        id: &str,
        expected_revision: Option<i64>,
        allow_missing: bool,
    ) -> Result<()> {
        match self.store.get_schedule(id).await? {
            None if allow_missing => return Ok(()),
            None => return Err(not_found(id)),
            Some(s) if expected_revision.is_some_and(|r| r != s.revision) => {
                return Err(etag_mismatch(id));
            }
            Some(_) => {}
        }
        if !self.store.delete_schedule(id).await? && !allow_missing {
            return Err(not_found(id));
        }
        tracing::info!(schedule = %id, "schedule deleted");
        self.wake.notify_one();
        Ok(())
    }

    /// Runs a schedule now, outside its cron (its overlap policy applies).
    pub async fn run_now(self: &Arc<Self>, id: &str) -> Result<ScheduleRun> {
        let schedule = self.get(id).await?;
        let mut run = self.new_run(id, RunTrigger::Manual, self.clock.now());
        if schedule.overlap == OverlapPolicy::Skip
            && let Some(active) = self.active_run(id).await?
        {
            run.status = RunStatus::Skipped;
            run.end_time = Some(run.scheduled_time);
            run.error = format!("the previous run {} is still active", active.id);
        }
        self.store.insert_run(&run).await?;
        if run.status == RunStatus::Pending {
            self.spawn_run(schedule, run.clone());
        }
        Ok(run)
    }

    pub async fn get_run(&self, schedule_id: &str, run_id: &str) -> Result<ScheduleRun> {
        self.store
            .get_run(schedule_id, run_id)
            .await?
            .ok_or_else(|| {
                Error::not_found(
                    Resource::ScheduleRun,
                    format!("schedules/{schedule_id}/runs/{run_id}"),
                )
            })
    }

    /// Runs newest first; NOT_FOUND if the schedule does not exist.
    pub async fn list_runs(
        &self,
        schedule_id: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ScheduleRun>> {
        self.get(schedule_id).await?;
        self.store.list_runs(schedule_id, before, limit).await
    }

    /// The latest run of each schedule, in the schedules' order (one store read).
    pub async fn last_runs(&self, schedules: &[Schedule]) -> Result<Vec<Option<ScheduleRun>>> {
        let ids: Vec<String> = schedules.iter().map(|s| s.id.clone()).collect();
        let mut latest = self.store.latest_runs(&ids).await?;
        Ok(schedules
            .iter()
            .map(|s| {
                latest
                    .iter()
                    .position(|run| run.schedule_id == s.id)
                    .map(|i| latest.swap_remove(i))
            })
            .collect())
    }

    async fn active_run(&self, schedule_id: &str) -> Result<Option<ScheduleRun>> {
        // Runs are newest first and a schedule rarely has many active ones.
        Ok(self
            .store
            .list_runs(schedule_id, None, 32)
            .await?
            .into_iter()
            .find(|run| !run.status.is_terminal()))
    }

    // --- firing ---

    async fn fire_loop(self: Arc<Self>) {
        loop {
            if let Err(err) = self.fire_due().await {
                tracing::error!(error = %err, "firing due schedules failed; retrying shortly");
            }
            let now = self.clock.now();
            let poll = now.plus(POLL);
            let deadline = match self.store.next_fire_time().await {
                Ok(Some(next)) => next.min(poll),
                Ok(None) => poll,
                Err(err) => {
                    tracing::error!(error = %err, "reading the next fire time failed");
                    poll
                }
            };
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = self.clock.sleep_until(deadline) => {}
            }
        }
    }

    /// Claims and starts every due fire time (see the module doc for the misfire rule).
    pub async fn fire_due(self: &Arc<Self>) -> Result<()> {
        let now = self.clock.now();
        for schedule in self.store.due_schedules(now).await? {
            if let Err(err) = self.fire(&schedule, now).await {
                tracing::error!(schedule = %schedule.id, error = %err, "firing a schedule failed");
            }
        }
        Ok(())
    }

    async fn fire(self: &Arc<Self>, schedule: &Schedule, now: Timestamp) -> Result<()> {
        let Some(first) = schedule.next_run_time else {
            return Ok(());
        };
        let (cron, zone) = match validate(schedule) {
            Ok(parsed) => parsed,
            Err(err) => {
                tracing::error!(schedule = %schedule.id, error = %err, "stored schedule is invalid; not firing it");
                return Ok(());
            }
        };
        // The due fire times are `first` and those after it up to now; only the latest
        // may still run.
        let mut latest = first;
        let mut missed: u64 = 0;
        while let Some(t) = cron.next_after(latest, &zone).filter(|t| *t <= now) {
            latest = t;
            missed += 1;
            if missed >= 100_000 {
                break;
            }
        }
        let next = cron.next_after(now, &zone);
        if missed > 0 {
            let mut skipped = self.new_run(&schedule.id, RunTrigger::Misfire, first);
            skipped.status = RunStatus::Skipped;
            skipped.end_time = Some(now);
            skipped.error = format!(
                "{missed} fire time(s) from {} were missed (the server was not running) and skipped",
                first.to_rfc3339()
            );
            self.store.claim_fire_time(&skipped, first, next).await?;
        }
        let late = Duration::from_micros(u64::try_from(now.0 - latest.0).unwrap_or(0));
        let trigger = if missed == 0 && late <= ON_TIME {
            RunTrigger::Cron
        } else {
            RunTrigger::Misfire
        };
        let mut run = self.new_run(&schedule.id, trigger, latest);
        if late > self.misfire_grace.max(ON_TIME) {
            run.status = RunStatus::Skipped;
            run.end_time = Some(now);
            run.error = format!(
                "missed: handled {} s late, more than the misfire grace of {} s",
                late.as_secs(),
                self.misfire_grace.as_secs()
            );
        } else if schedule.overlap == OverlapPolicy::Skip
            && let Some(active) = self.active_run(&schedule.id).await?
        {
            run.status = RunStatus::Skipped;
            run.end_time = Some(now);
            run.error = format!("the previous run {} was still active", active.id);
        }
        // A run stored finished (SKIPPED) carries its webhooks in the claim's transaction.
        let deliveries = if run.status == RunStatus::Pending {
            Vec::new()
        } else {
            self.run_deliveries(Some(schedule), &run)
        };
        if !self
            .store
            .claim_fire_time_with(&run, latest, next, &deliveries)
            .await?
        {
            // Another server (or an earlier pass) has it.
            return Ok(());
        }
        if !deliveries.is_empty() {
            self.outbox.stored();
        }
        tracing::info!(schedule = %schedule.id, run = %run.id, fire_time = %latest.to_rfc3339(), trigger = ?run.trigger, status = ?run.status, "schedule fired");
        if run.status == RunStatus::Pending {
            self.spawn_run(schedule.clone(), run);
        }
        Ok(())
    }
}
