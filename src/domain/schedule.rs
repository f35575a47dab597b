//! Schedules (a prompt run unattended on a cron) and their runs. The cron and time zone
//! rules live in `scheduler::cron`; these are the plain records.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{PermissionMode, Timestamp};

/// What to do when a fire time comes while the previous run is still active.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverlapPolicy {
    /// Record the fire time as a skipped run.
    #[default]
    Skip,
    /// Start the run once the active one has finished.
    Queue,
}

/// Retries of runs whose turn failed on a provider error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Attempts in all; 1 means no retry.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
}

impl RetryPolicy {
    pub const MAX_ATTEMPTS: u32 = 10;

    /// The wait before attempt `attempt + 1` (attempts count from 1): doubling, capped.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        self.initial_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 1,
            initial_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(600),
        }
    }
}

/// A prompt run on a cron.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub id: String,
    pub display_name: String,
    /// The user message each run sends.
    pub prompt: String,
    /// Five fields: minute hour day-of-month month day-of-week.
    pub cron: String,
    /// IANA name; `UTC` by default.
    pub time_zone: String,
    pub enabled: bool,
    /// Run in this session (an id); `None` creates a session per run.
    pub target_session: Option<String>,
    /// A model id; `None`: the profile's, else the server default.
    pub model: Option<String>,
    /// Of the sessions runs create; `None`: the profile's, else AUTO_APPROVE (nobody is
    /// there to confirm). Schedules stored before profiles existed always have one.
    pub permission_mode: Option<PermissionMode>,
    /// The profile (id) of the sessions runs create; `None`: the default profile, if any.
    #[serde(default)]
    pub profile: Option<String>,
    /// Of the sessions runs create; empty: the profile's template, else the root.
    pub working_dir: String,
    pub overlap: OverlapPolicy,
    pub retry: RetryPolicy,
    pub webhook_url: Option<String>,
    /// The `whsec_` signing secret (never returned).
    pub webhook_secret: Option<String>,
    /// The next fire time not yet claimed; `None` while disabled.
    pub next_run_time: Option<Timestamp>,
    pub create_time: Timestamp,
    pub update_time: Timestamp,
    /// Bumped on every change; the etag.
    pub revision: i64,
}

impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schedule")
            .field("id", &self.id)
            .field("cron", &self.cron)
            .field("time_zone", &self.time_zone)
            .field("enabled", &self.enabled)
            .field("target_session", &self.target_session)
            .field("model", &self.model)
            .field("profile", &self.profile)
            .field("next_run_time", &self.next_run_time)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

impl Default for Schedule {
    fn default() -> Self {
        let now = Timestamp::now();
        Self {
            id: String::new(),
            display_name: String::new(),
            prompt: String::new(),
            cron: String::new(),
            time_zone: "UTC".into(),
            enabled: true,
            target_session: None,
            model: None,
            permission_mode: None,
            profile: None,
            working_dir: String::new(),
            overlap: OverlapPolicy::Skip,
            retry: RetryPolicy::default(),
            webhook_url: None,
            webhook_secret: None,
            next_run_time: None,
            create_time: now,
            update_time: now,
            revision: 1,
        }
    }
}

/// The fields UpdateSchedule can change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleField {
    DisplayName,
    Prompt,
    Cron,
    TimeZone,
    Enabled,
    TargetSession,
    Model,
    PermissionMode,
    WorkingDir,
    OverlapPolicy,
    RetryPolicy,
    WebhookUrl,
    WebhookSecret,
    Profile,
}

impl super::UpdatableField for ScheduleField {
    const ALL: &'static [Self] = &ScheduleField::ALL;

    fn api_name(self) -> &'static str {
        ScheduleField::api_name(self)
    }
}

impl ScheduleField {
    pub const ALL: [ScheduleField; 14] = [
        ScheduleField::DisplayName,
        ScheduleField::Prompt,
        ScheduleField::Cron,
        ScheduleField::TimeZone,
        ScheduleField::Enabled,
        ScheduleField::TargetSession,
        ScheduleField::Model,
        ScheduleField::PermissionMode,
        ScheduleField::WorkingDir,
        ScheduleField::OverlapPolicy,
        ScheduleField::RetryPolicy,
        ScheduleField::WebhookUrl,
        ScheduleField::WebhookSecret,
        ScheduleField::Profile,
    ];

    pub fn api_name(self) -> &'static str {
        match self {
            ScheduleField::DisplayName => "display_name",
            ScheduleField::Prompt => "prompt",
            ScheduleField::Cron => "cron",
            ScheduleField::TimeZone => "time_zone",
            ScheduleField::Enabled => "enabled",
            ScheduleField::TargetSession => "target_session",
            ScheduleField::Model => "model",
            ScheduleField::PermissionMode => "permission_mode",
            ScheduleField::WorkingDir => "working_dir",
            ScheduleField::OverlapPolicy => "overlap_policy",
            ScheduleField::RetryPolicy => "retry_policy",
            ScheduleField::WebhookUrl => "webhook_url",
            ScheduleField::WebhookSecret => "webhook_secret",
            ScheduleField::Profile => "profile",
        }
    }

    /// Copies this field from `from` into `to`. A masked or empty secret never
    /// overwrites a stored one.
    pub fn apply(self, from: &Schedule, to: &mut Schedule) {
        match self {
            ScheduleField::DisplayName => to.display_name = from.display_name.clone(),
            ScheduleField::Prompt => to.prompt = from.prompt.clone(),
            ScheduleField::Cron => to.cron = from.cron.clone(),
            ScheduleField::TimeZone => to.time_zone = from.time_zone.clone(),
            ScheduleField::Enabled => to.enabled = from.enabled,
            ScheduleField::TargetSession => to.target_session = from.target_session.clone(),
            ScheduleField::Model => to.model = from.model.clone(),
            ScheduleField::PermissionMode => to.permission_mode = from.permission_mode,
            ScheduleField::WorkingDir => to.working_dir = from.working_dir.clone(),
            ScheduleField::OverlapPolicy => to.overlap = from.overlap,
            ScheduleField::RetryPolicy => to.retry = from.retry,
            ScheduleField::WebhookUrl => to.webhook_url = from.webhook_url.clone(),
            ScheduleField::Profile => to.profile = from.profile.clone(),
            ScheduleField::WebhookSecret => {
                if let Some(secret) = from
                    .webhook_secret
                    .as_deref()
                    .filter(|s| !super::secret::is_masked(s))
                {
                    to.webhook_secret = Some(secret.to_owned());
                }
            }
        }
    }
}

/// How a run came about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunTrigger {
    Cron,
    Manual,
    /// A fire time missed while the server was down, run late.
    Misfire,
}

/// The lifecycle of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Skipped,
}

impl RunStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Skipped
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            RunStatus::Pending,
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Skipped,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }
}

impl RunTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            RunTrigger::Cron => "cron",
            RunTrigger::Manual => "manual",
            RunTrigger::Misfire => "misfire",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [RunTrigger::Cron, RunTrigger::Manual, RunTrigger::Misfire]
            .into_iter()
            .find(|trigger| trigger.as_str() == s)
    }
}

/// One run of a schedule.
#[derive(Clone, Debug, PartialEq)]
pub struct ScheduleRun {
    pub id: String,
    pub schedule_id: String,
    pub trigger: RunTrigger,
    /// The fire time it stands for (for manual runs, when it was asked for).
    pub scheduled_time: Timestamp,
    pub start_time: Option<Timestamp>,
    pub end_time: Option<Timestamp>,
    pub status: RunStatus,
    pub session_id: Option<String>,
    pub turn_id: Option<String>,
    /// Why it failed or was skipped; empty otherwise.
    pub error: String,
    /// Attempts made so far.
    pub attempt: u32,
    /// The wait before the next attempt, while one is pending.
    pub next_retry_delay: Option<Duration>,
    /// The server process that runs it (a server id, new at every start); empty for runs
    /// stored before runs had runners. Only the runner writes the run; a live server
    /// takes over the unfinished runs of a dead one (`ScheduleStore::take_orphaned_runs`).
    pub runner: String,
}

/// The reason a run's write is refused once another server took the run over.
pub use crate::domain::reason::RUN_TAKEN_OVER;

/// The error a runner's write gets when the run names another runner now: this server
/// was taken for dead (no heartbeat within the lease TTL) and a live one took the run.
pub fn run_taken_over(run_id: &str, runner: &str) -> super::Error {
    super::Error::Unavailable {
        reason: RUN_TAKEN_OVER,
        message: format!(
            "schedule run {run_id} was taken over by another server (this one is {runner})"
        ),
        retry_after: None,
    }
}

impl ScheduleRun {
    pub fn new(schedule_id: &str, trigger: RunTrigger, scheduled_time: Timestamp) -> Self {
        Self {
            id: super::new_id(),
            schedule_id: schedule_id.to_owned(),
            trigger,
            scheduled_time,
            start_time: None,
            end_time: None,
            status: RunStatus::Pending,
            session_id: None,
            turn_id: None,
            error: String::new(),
            attempt: 0,
            next_retry_delay: None,
            runner: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let retry = RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(100),
        };
        assert_eq!(retry.backoff(1), Duration::from_secs(30));
        assert_eq!(retry.backoff(2), Duration::from_secs(60));
        assert_eq!(retry.backoff(3), Duration::from_secs(100));
        assert_eq!(retry.backoff(40), Duration::from_secs(100));
    }

    #[test]
    fn statuses_and_triggers_round_trip_their_stored_names() {
        for s in ["pending", "running", "succeeded", "failed", "skipped"] {
            assert_eq!(RunStatus::parse(s).map(RunStatus::as_str), Some(s));
        }
        for t in ["cron", "manual", "misfire"] {
            assert_eq!(RunTrigger::parse(t).map(RunTrigger::as_str), Some(t));
        }
    }
}
