//! `octo schedules ...`: list, show, add, update, rm, run and runs of schedules (prompts
//! run unattended on a cron) through the generated ScheduleService client.
//!
//! The webhook secret is never taken as an argument: `--webhook-secret-stdin` reads it
//! from the first line of stdin.

use std::io::{self, BufRead, IsTerminal, Write};

use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};
use prost_types::FieldMask;

use super::{
    GlobalArgs,
    client::Client,
    names::{
        model_name, profile_name, resource_id, run_id, schedule_id, schedule_name, session_id,
        session_name, turn_id,
    },
    output::{
        self, Column, Table, duration, enum_label, fit, long_time, now_unix, parse_duration,
        rfc3339, short_time, write_fields,
    },
    sessions::PermissionModeArg,
};
use crate::pb;

#[derive(Args, Debug, PartialEq)]
pub struct SchedulesArgs {
    #[command(subcommand)]
    pub command: SchedulesCommand,
}

#[derive(Subcommand, Debug, PartialEq)]
pub enum SchedulesCommand {
    /// List schedules by creation
    #[command(visible_alias = "ls")]
    List,
    /// Show a schedule
    #[command(visible_alias = "get")]
    Show {
        /// Schedule id or `schedules/{id}`
        id: String,
    },
    /// Add a schedule: a prompt run on a cron
    Add(AddArgs),
    /// Change a schedule: only the settings given change
    Update(UpdateArgs),
    /// Delete a schedule; the sessions its runs created stay
    #[command(visible_alias = "delete")]
    Rm {
        /// Schedule id or `schedules/{id}`
        id: String,
        /// Succeed when the schedule does not exist
        #[arg(long)]
        force_missing: bool,
    },
    /// Run a schedule now, outside its cron, and print the run
    Run {
        /// Schedule id or `schedules/{id}`
        id: String,
    },
    /// List a schedule's runs, newest first
    Runs(RunsArgs),
}

#[derive(Args, Debug, Default, PartialEq)]
pub struct AddArgs {
    #[command(flatten)]
    pub settings: ScheduleFlags,
    /// Create it disabled: it does not fire until enabled
    #[arg(long)]
    pub disabled: bool,
}

#[derive(Args, Debug, Default, PartialEq)]
pub struct UpdateArgs {
    /// Schedule id or `schedules/{id}`
    pub id: String,
    #[command(flatten)]
    pub settings: ScheduleFlags,
    /// Let it fire again
    #[arg(long, conflicts_with = "disable")]
    pub enable: bool,
    /// Stop it firing; its history stays
    #[arg(long)]
    pub disable: bool,
}

#[derive(Args, Debug, Default, PartialEq)]
pub struct RunsArgs {
    /// Schedule id or `schedules/{id}`
    pub id: String,
    /// Runs per page (server default 50, at most 500)
    #[arg(long, short = 'n', value_name = "N", value_parser = clap::value_parser!(i32).range(1..))]
    pub limit: Option<i32>,
    /// Follow next_page_token and list every run
    #[arg(long)]
    pub all: bool,
}

/// A schedule's settings as flags; for `update`, only the ones given change.
#[derive(Args, Debug, Default, PartialEq)]
pub struct ScheduleFlags {
    /// Five fields: minute hour day-of-month month day-of-week, e.g. "0 9 * * 1-5"
    #[arg(long, value_name = "EXPR")]
    pub cron: Option<String>,
    /// The user message each run sends
    #[arg(long, value_name = "TEXT")]
    pub prompt: Option<String>,
    /// IANA time zone the cron is read in, e.g. Europe/Paris [default: UTC]
    #[arg(long, value_name = "TZ")]
    pub time_zone: Option<String>,
    /// Human-readable name
    #[arg(long = "name", value_name = "TEXT")]
    pub display_name: Option<String>,
    /// Run in this session, an id or `sessions/{id}` [default: a new session per run;
    /// "" goes back to that]
    #[arg(long, value_name = "SESSION")]
    pub session: Option<String>,
    /// The model runs use (id or `models/{id}`; "" for the server default)
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,
    /// Which tool calls of the sessions runs create need confirmation [default: the
    /// profile's, else auto-approve: nobody is there to confirm]
    #[arg(long, value_enum)]
    pub permission_mode: Option<PermissionModeArg>,
    /// The profile of the sessions runs create, an id or `profiles/{id}` ("" for the
    /// default profile) [default: the default profile, if any]
    #[arg(long, short = 'p', value_name = "PROFILE")]
    pub profile: Option<String>,
    /// Working dir of the sessions runs create
    #[arg(long, value_name = "DIR")]
    pub working_dir: Option<String>,
    /// What to do when a fire time comes while the previous run is active [default: skip]
    #[arg(long, value_enum)]
    pub overlap: Option<OverlapArg>,
    /// Attempts in all for runs failing on provider errors, 1 for no retry
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=10))]
    pub max_attempts: Option<i32>,
    /// Wait before the first retry, doubling after, e.g. 30s [default: 30s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub initial_backoff: Option<prost_types::Duration>,
    /// The longest wait between attempts, e.g. 10m [default: 10m]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_backoff: Option<prost_types::Duration>,
    /// Receives a signed notification when a run finishes ("" for none)
    #[arg(long, value_name = "URL")]
    pub webhook_url: Option<String>,
    /// Read the `whsec_` webhook signing secret from the first line of stdin
    #[arg(long)]
    pub webhook_secret_stdin: bool,
}

impl ScheduleFlags {
    fn has_retry(&self) -> bool {
        self.max_attempts.is_some() || self.initial_backoff.is_some() || self.max_backoff.is_some()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OverlapArg {
    /// Record the fire time as skipped
    Skip,
    /// Queue the run behind the active one
    Queue,
}

impl From<OverlapArg> for pb::OverlapPolicy {
    fn from(overlap: OverlapArg) -> Self {
        match overlap {
            OverlapArg::Skip => pb::OverlapPolicy::Skip,
            OverlapArg::Queue => pb::OverlapPolicy::Queue,
        }
    }
}

/// Runs one `octo schedules` subcommand against the server `global` names.
pub async fn run(
    args: SchedulesArgs,
    global: &GlobalArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    // Validate before connecting, so mistakes fail fast even without a server.
    let command = args.command;
    command.validate()?;
    let secret = match &command {
        SchedulesCommand::Add(AddArgs { settings, .. })
        | SchedulesCommand::Update(UpdateArgs { settings, .. })
            if settings.webhook_secret_stdin =>
        {
            Some(read_secret_from_stdin()?)
        }
        _ => None,
    };
    let client = global.connect().await?;
    execute(&client, command, secret, global.json, out).await
}

impl SchedulesCommand {
    fn validate(&self) -> anyhow::Result<()> {
        match self {
            SchedulesCommand::List => {}
            SchedulesCommand::Show { id }
            | SchedulesCommand::Rm { id, .. }
            | SchedulesCommand::Run { id }
            | SchedulesCommand::Runs(RunsArgs { id, .. }) => {
                schedule_name(id)?;
            }
            SchedulesCommand::Add(args) => {
                if args.settings.cron.is_none() || args.settings.prompt.is_none() {
                    bail!("`schedules add` needs --cron and --prompt");
                }
                schedule_from_flags(&args.settings, None)?;
            }
            SchedulesCommand::Update(args) => {
                schedule_name(&args.id)?;
                schedule_from_flags(&args.settings, None)?;
            }
        }
        Ok(())
    }
}

fn read_secret_from_stdin() -> anyhow::Result<String> {
    let stdin = io::stdin();
    if stdin.is_terminal() {
        eprint!("Webhook secret (the input is echoed): ");
        let _ = io::stderr().flush();
    }
    let mut line = String::new();
    stdin.lock().read_line(&mut line)?;
    let secret = line.trim();
    if secret.is_empty() {
        bail!("--webhook-secret-stdin: no secret on stdin");
    }
    Ok(secret.to_owned())
}

/// Runs `command` on an open connection; `secret` is the webhook secret read for it.
pub async fn execute(
    client: &Client,
    command: SchedulesCommand,
    secret: Option<String>,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    match command {
        SchedulesCommand::List => list(client, json, out).await,
        SchedulesCommand::Show { id } => {
            let schedule = get(client, schedule_name(&id)?).await?;
            print_schedule(out, json, &schedule)
        }
        SchedulesCommand::Add(args) => add(client, args, secret, json, out).await,
        SchedulesCommand::Update(args) => update(client, args, secret, json, out).await,
        SchedulesCommand::Rm { id, force_missing } => {
            let name = schedule_name(&id)?;
            client
                .schedules()
                .delete_schedule(pb::DeleteScheduleRequest {
                    name: name.clone(),
                    etag: String::new(),
                    allow_missing: force_missing,
                })
                .await?;
            if json {
                // DeleteSchedule returns google.protobuf.Empty, whose canonical JSON is `{}`.
                writeln!(out, "{{}}")?;
            } else {
                writeln!(out, "Deleted schedule {}", schedule_id(&name))?;
            }
            Ok(())
        }
        SchedulesCommand::Run { id } => {
            let run = client
                .schedules()
                .run_schedule(pb::RunScheduleRequest {
                    name: schedule_name(&id)?,
                })
                .await?
                .into_inner();
            if json {
                return output::write_json(out, &run);
            }
            write_fields(out, &run_fields(&run, now_unix()))?;
            Ok(())
        }
        SchedulesCommand::Runs(args) => runs(client, &args, json, out).await,
    }
}

async fn get(client: &Client, name: String) -> anyhow::Result<pb::Schedule> {
    Ok(client
        .schedules()
        .get_schedule(pb::GetScheduleRequest { name })
        .await?
        .into_inner())
}

/// The schedule `flags` describe and the update_mask paths of the fields they set.
/// `current` is the stored schedule, whose retry policy a partial change of it keeps.
pub fn schedule_from_flags(
    flags: &ScheduleFlags,
    current: Option<&pb::Schedule>,
) -> anyhow::Result<(pb::Schedule, Vec<&'static str>)> {
    let mut schedule = pb::Schedule::default();
    let mut paths = Vec::new();
    if let Some(display_name) = &flags.display_name {
        schedule.display_name = display_name.clone();
        paths.push("display_name");
    }
    if let Some(prompt) = &flags.prompt {
        schedule.prompt = prompt.clone();
        paths.push("prompt");
    }
    if let Some(cron) = &flags.cron {
        schedule.cron = cron.clone();
        paths.push("cron");
    }
    if let Some(time_zone) = &flags.time_zone {
        schedule.time_zone = time_zone.clone();
        paths.push("time_zone");
    }
    if let Some(session) = &flags.session {
        schedule.target_session = if session.trim().is_empty() {
            String::new()
        } else {
            session_name(session)?
        };
        paths.push("target_session");
    }
    if let Some(model) = &flags.model {
        schedule.model = if model.trim().is_empty() {
            String::new()
        } else {
            model_name(model)?
        };
        paths.push("model");
    }
    if let Some(mode) = flags.permission_mode {
        schedule.permission_mode = pb::PermissionMode::from(mode) as i32;
        paths.push("permission_mode");
    }
    if let Some(profile) = &flags.profile {
        schedule.profile = if profile.trim().is_empty() {
            String::new()
        } else {
            profile_name(profile)?
        };
        paths.push("profile");
    }
    if let Some(working_dir) = &flags.working_dir {
        schedule.working_dir = working_dir.clone();
        paths.push("working_dir");
    }
    if let Some(overlap) = flags.overlap {
        schedule.overlap_policy = pb::OverlapPolicy::from(overlap) as i32;
        paths.push("overlap_policy");
    }
    if flags.has_retry() {
        let mut retry = current.and_then(|s| s.retry_policy).unwrap_or_default();
        if let Some(max_attempts) = flags.max_attempts {
            retry.max_attempts = max_attempts;
        }
        if let Some(initial) = flags.initial_backoff {
            retry.initial_backoff = Some(initial);
        }
        if let Some(max) = flags.max_backoff {
            retry.max_backoff = Some(max);
        }
        schedule.retry_policy = Some(retry);
        paths.push("retry_policy");
    }
    if let Some(url) = &flags.webhook_url {
        schedule.webhook_url = url.clone();
        paths.push("webhook_url");
    }
    Ok((schedule, paths))
}

/// `schedules add`: CreateSchedule, enabled unless `--disabled`.
async fn add(
    client: &Client,
    args: AddArgs,
    secret: Option<String>,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let (mut schedule, _) = schedule_from_flags(&args.settings, None)?;
    schedule.enabled = Some(!args.disabled);
    if let Some(secret) = secret {
        schedule.webhook_secret = secret;
    }
    let created = client
        .schedules()
        .create_schedule(pb::CreateScheduleRequest {
            schedule: Some(schedule),
        })
        .await?
        .into_inner();
    print_schedule(out, json, &created)
}

/// `schedules update`: UpdateSchedule of exactly the fields given.
async fn update(
    client: &Client,
    args: UpdateArgs,
    secret: Option<String>,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let name = schedule_name(&args.id)?;
    // A change of part of the retry policy keeps the rest of it.
    let current = if args.settings.has_retry() {
        Some(get(client, name.clone()).await?)
    } else {
        None
    };
    let (mut schedule, mut paths) = schedule_from_flags(&args.settings, current.as_ref())?;
    if args.enable || args.disable {
        schedule.enabled = Some(args.enable);
        paths.push("enabled");
    }
    if let Some(secret) = secret {
        schedule.webhook_secret = secret;
        paths.push("webhook_secret");
    }
    if paths.is_empty() {
        bail!("nothing to update: give at least one setting (see `octo schedules update --help`)");
    }
    schedule.name = name;
    let updated = client
        .schedules()
        .update_schedule(pb::UpdateScheduleRequest {
            schedule: Some(schedule),
            update_mask: Some(FieldMask {
                paths: paths.into_iter().map(str::to_owned).collect(),
            }),
        })
        .await?
        .into_inner();
    print_schedule(out, json, &updated)
}

/// `schedules list`: every page.
pub async fn list(client: &Client, json: bool, out: &mut (dyn Write + Send)) -> anyhow::Result<()> {
    let schedules_client = client.schedules();
    let (schedules, next_page_token) = super::client::collect_pages(true, |page_token| {
        let mut schedules_client = schedules_client.clone();
        async move {
            let page = schedules_client
                .list_schedules(pb::ListSchedulesRequest {
                    page_size: 0,
                    page_token,
                })
                .await?
                .into_inner();
            Ok((page.schedules, page.next_page_token))
        }
    })
    .await?;
    let all = pb::ListSchedulesResponse {
        schedules,
        next_page_token,
    };
    if json {
        return output::write_json(out, &all);
    }
    if all.schedules.is_empty() {
        writeln!(out, "No schedules.")?;
        return Ok(());
    }
    schedule_table(&all.schedules, now_unix()).render(out)?;
    Ok(())
}

/// The `schedules list` table.
pub fn schedule_table(schedules: &[pb::Schedule], now: i64) -> Table {
    let mut table = Table::new([
        Column::left("ID"),
        Column::left("NAME").max_width(30),
        Column::left("CRON"),
        Column::left("TZ"),
        Column::left("ENABLED"),
        Column::left("NEXT RUN"),
        Column::left("LAST RUN"),
    ]);
    for schedule in schedules {
        table.push_row([
            schedule_id(&schedule.name).to_owned(),
            if schedule.display_name.is_empty() {
                "-".to_owned()
            } else {
                schedule.display_name.clone()
            },
            schedule.cron.clone(),
            if schedule.time_zone.is_empty() {
                "UTC".to_owned()
            } else {
                schedule.time_zone.clone()
            },
            if schedule.enabled.unwrap_or(true) {
                "yes"
            } else {
                "no"
            }
            .to_owned(),
            match &schedule.next_run_time {
                None => "-".to_owned(),
                Some(time) => until(time, now).unwrap_or_else(|| rfc3339(time)),
            },
            schedule
                .last_run
                .as_ref()
                .map_or_else(|| "-".to_owned(), |run| run_status_label(run.status)),
        ]);
    }
    table
}

/// `schedules runs`: one page, or every page with `--all`.
async fn runs(
    client: &Client,
    args: &RunsArgs,
    json: bool,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<()> {
    let schedules_client = client.schedules();
    let request = pb::ListScheduleRunsRequest {
        parent: schedule_name(&args.id)?,
        page_size: args.limit.unwrap_or(0),
        page_token: String::new(),
    };
    let (runs, next_page_token) = super::client::collect_pages(args.all, |page_token| {
        let mut schedules_client = schedules_client.clone();
        let request = pb::ListScheduleRunsRequest {
            page_token,
            ..request.clone()
        };
        async move {
            let page = schedules_client
                .list_schedule_runs(request)
                .await?
                .into_inner();
            Ok((page.runs, page.next_page_token))
        }
    })
    .await?;
    let all = pb::ListScheduleRunsResponse {
        runs,
        next_page_token,
    };
    if json {
        return output::write_json(out, &all);
    }
    if all.runs.is_empty() {
        writeln!(out, "No runs.")?;
        return Ok(());
    }
    run_table(&all.runs, now_unix()).render(out)?;
    if !all.next_page_token.is_empty() {
        writeln!(out, "(more runs: use --all or a larger --limit)")?;
    }
    Ok(())
}

/// The `schedules runs` table.
pub fn run_table(runs: &[pb::ScheduleRun], now: i64) -> Table {
    let mut table = Table::new([
        Column::left("RUN"),
        Column::left("TRIGGER"),
        Column::left("SCHEDULED"),
        Column::left("STATUS"),
        Column::left("SESSION"),
        Column::left("TURN"),
        Column::left("ERROR").max_width(60),
    ]);
    let or_dash = |text: &str| {
        if text.is_empty() {
            "-".to_owned()
        } else {
            text.to_owned()
        }
    };
    for run in runs {
        table.push_row([
            run_id(&run.name).to_owned(),
            trigger_label(run.trigger),
            short_time(run.scheduled_time.as_ref().or(run.start_time.as_ref()), now),
            run_status_label(run.status),
            or_dash(session_id(&run.session)),
            or_dash(turn_id(&run.turn)),
            run.error.clone(),
        ]);
    }
    table
}

/// A schedule as canonical JSON, or as a key/value block.
pub fn print_schedule(
    out: &mut (dyn Write + Send),
    json: bool,
    schedule: &pb::Schedule,
) -> anyhow::Result<()> {
    if json {
        return output::write_json(out, schedule);
    }
    write_fields(out, &schedule_fields(schedule, now_unix()))?;
    Ok(())
}

/// The rows of a schedule's key/value block; empty values are left out when printed.
pub fn schedule_fields(schedule: &pb::Schedule, now: i64) -> Vec<(&'static str, String)> {
    let retry = schedule
        .retry_policy
        .as_ref()
        .filter(|r| r.max_attempts > 1)
        .map(|r| {
            let wait = |d: Option<&prost_types::Duration>| d.map(duration);
            let mut text = format!("{} attempts", r.max_attempts);
            match (
                wait(r.initial_backoff.as_ref()),
                wait(r.max_backoff.as_ref()),
            ) {
                (Some(first), Some(max)) => text.push_str(&format!(", backoff {first} to {max}")),
                (Some(first), None) => text.push_str(&format!(", backoff from {first}")),
                (None, Some(max)) => text.push_str(&format!(", backoff up to {max}")),
                (None, None) => {}
            }
            text
        })
        .unwrap_or_default();
    let last_run = schedule
        .last_run
        .as_ref()
        .map(|run| {
            let mut text = format!("{} {}", run_status_label(run.status), run_id(&run.name));
            let time = run.end_time.as_ref().or(run.start_time.as_ref());
            if let Some(time) = time {
                text.push_str(&format!(" ({})", short_time(Some(time), now)));
            }
            text
        })
        .unwrap_or_default();
    vec![
        ("ID", schedule_id(&schedule.name).to_owned()),
        ("Name", schedule.name.clone()),
        ("Display name", schedule.display_name.clone()),
        (
            "Enabled",
            if schedule.enabled.unwrap_or(true) {
                "yes"
            } else {
                "no"
            }
            .to_owned(),
        ),
        ("Cron", schedule.cron.clone()),
        (
            "Time zone",
            if schedule.time_zone.is_empty() {
                "UTC".to_owned()
            } else {
                schedule.time_zone.clone()
            },
        ),
        (
            "Next run",
            schedule
                .next_run_time
                .as_ref()
                .map(|time| match until(time, now) {
                    Some(when) => format!("{} ({when})", rfc3339(time)),
                    None => rfc3339(time),
                })
                .unwrap_or_else(|| "-".to_owned()),
        ),
        ("Prompt", fit(&schedule.prompt, Some(80))),
        (
            "Session",
            if schedule.target_session.is_empty() {
                "(a new one per run)".to_owned()
            } else {
                schedule.target_session.clone()
            },
        ),
        (
            "Model",
            if schedule.model.is_empty() {
                "(server default)".to_owned()
            } else {
                schedule.model.clone()
            },
        ),
        (
            "Permission mode",
            match pb::PermissionMode::try_from(schedule.permission_mode) {
                Ok(pb::PermissionMode::Unspecified) => {
                    "(the profile's, else auto-approve)".to_owned()
                }
                Ok(mode) => enum_label(mode.as_str_name(), "PERMISSION_MODE_"),
                Err(_) => format!("unknown ({})", schedule.permission_mode),
            },
        ),
        ("Working dir", schedule.working_dir.clone()),
        ("Profile", schedule.profile.clone()),
        (
            "Overlap",
            match pb::OverlapPolicy::try_from(schedule.overlap_policy) {
                Ok(pb::OverlapPolicy::Unspecified) => String::new(),
                Ok(policy) => enum_label(policy.as_str_name(), "OVERLAP_POLICY_"),
                Err(_) => format!("unknown ({})", schedule.overlap_policy),
            },
        ),
        ("Retry", retry),
        ("Webhook URL", schedule.webhook_url.clone()),
        ("Webhook secret", schedule.webhook_secret.clone()),
        ("Last run", last_run),
        ("Created", long_time(schedule.create_time.as_ref(), now)),
        ("Updated", long_time(schedule.update_time.as_ref(), now)),
    ]
}

/// The rows of a run's key/value block.
pub fn run_fields(run: &pb::ScheduleRun, now: i64) -> Vec<(&'static str, String)> {
    vec![
        ("Run", run_id(&run.name).to_owned()),
        ("Name", run.name.clone()),
        ("Schedule", schedule_of_run(&run.name).to_owned()),
        ("Trigger", trigger_label(run.trigger)),
        ("Status", run_status_label(run.status)),
        ("Scheduled", long_time(run.scheduled_time.as_ref(), now)),
        ("Started", long_time(run.start_time.as_ref(), now)),
        ("Ended", long_time(run.end_time.as_ref(), now)),
        ("Session", run.session.clone()),
        ("Turn", run.turn.clone()),
        (
            "Attempt",
            if run.attempt > 0 {
                run.attempt.to_string()
            } else {
                String::new()
            },
        ),
        (
            "Next retry",
            run.next_retry_delay
                .as_ref()
                .map(|d| format!("in {}", duration(d)))
                .unwrap_or_default(),
        ),
        ("Error", run.error.clone()),
    ]
}

/// The schedule id of a run name `schedules/{s}/runs/{r}`.
fn schedule_of_run(name: &str) -> &str {
    resource_id(
        "schedules",
        name.rsplit_once("/runs/").map_or(name, |(owner, _)| owner),
    )
}

/// How long until a future `time`, e.g. `in 5m`; `None` if past or beyond 30 days.
fn until(time: &prost_types::Timestamp, now: i64) -> Option<String> {
    let ahead = time.seconds.checked_sub(now)?;
    Some(match ahead {
        ..0 => return None,
        0..60 => format!("in {ahead}s"),
        60..3_600 => format!("in {}m", ahead / 60),
        3_600..86_400 => format!("in {}h", ahead / 3_600),
        86_400..2_592_000 => format!("in {}d", ahead / 86_400),
        _ => return None,
    })
}

fn run_status_label(status: i32) -> String {
    match pb::RunStatus::try_from(status) {
        Ok(pb::RunStatus::Unspecified) => "-".to_owned(),
        Ok(status) => enum_label(status.as_str_name(), "RUN_STATUS_"),
        Err(_) => format!("unknown({status})"),
    }
}

fn trigger_label(trigger: i32) -> String {
    match pb::RunTrigger::try_from(trigger) {
        Ok(pb::RunTrigger::Unspecified) => "-".to_owned(),
        Ok(trigger) => enum_label(trigger.as_str_name(), "RUN_TRIGGER_"),
        Err(_) => format!("unknown({trigger})"),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> SchedulesCommand {
        let cli = Cli::try_parse_from(args).expect("parses");
        match cli.command {
            Command::Schedules(args) => args.command,
            other => panic!("not a schedules command: {other:?}"),
        }
    }

    fn secs(seconds: i64) -> prost_types::Duration {
        prost_types::Duration { seconds, nanos: 0 }
    }

    #[test]
    fn add_flags_become_a_schedule() {
        let command = parse(&[
            "octo",
            "schedules",
            "add",
            "--cron",
            "0 9 * * 1-5",
            "--prompt",
            "Summarise the inbox",
            "--time-zone",
            "Europe/Paris",
            "--name",
            "Morning",
            "--session",
            "s1",
            "--model",
            "gpt",
            "--permission-mode",
            "read-only",
            "--working-dir",
            "proj",
            "--overlap",
            "queue",
            "--max-attempts",
            "3",
            "--initial-backoff",
            "10s",
            "--max-backoff",
            "5m",
            "--webhook-url",
            "https://example.com/hook",
            "--disabled",
        ]);
        let SchedulesCommand::Add(args) = command else {
            panic!("not add: {command:?}");
        };
        assert!(args.disabled);
        assert!(
            SchedulesCommand::Add(AddArgs::default())
                .validate()
                .is_err()
        );
        let (schedule, paths) = schedule_from_flags(&args.settings, None).expect("schedule");
        assert_eq!(schedule.cron, "0 9 * * 1-5");
        assert_eq!(schedule.prompt, "Summarise the inbox");
        assert_eq!(schedule.time_zone, "Europe/Paris");
        assert_eq!(schedule.display_name, "Morning");
        assert_eq!(schedule.target_session, "sessions/s1");
        assert_eq!(schedule.model, "models/gpt");
        assert_eq!(
            schedule.permission_mode,
            pb::PermissionMode::ReadOnly as i32
        );
        assert_eq!(schedule.working_dir, "proj");
        assert_eq!(schedule.overlap_policy, pb::OverlapPolicy::Queue as i32);
        assert_eq!(
            schedule.retry_policy,
            Some(pb::RetryPolicy {
                max_attempts: 3,
                initial_backoff: Some(secs(10)),
                max_backoff: Some(secs(300)),
            })
        );
        assert_eq!(schedule.webhook_url, "https://example.com/hook");
        assert_eq!(paths.len(), 11, "{paths:?}");
    }

    #[test]
    fn update_masks_the_fields_given_and_keeps_the_rest_of_the_retry_policy() {
        let SchedulesCommand::Update(args) = parse(&[
            "octo",
            "schedule",
            "update",
            "schedules/nightly",
            "--disable",
            "--max-attempts",
            "5",
            "--model",
            "",
        ]) else {
            panic!("not update");
        };
        assert!(args.disable && !args.enable);
        let current = pb::Schedule {
            retry_policy: Some(pb::RetryPolicy {
                max_attempts: 2,
                initial_backoff: Some(secs(7)),
                max_backoff: None,
            }),
            ..Default::default()
        };
        let (schedule, paths) =
            schedule_from_flags(&args.settings, Some(&current)).expect("schedule");
        assert_eq!(paths, ["model", "retry_policy"]);
        assert_eq!(schedule.model, "");
        assert_eq!(
            schedule.retry_policy,
            Some(pb::RetryPolicy {
                max_attempts: 5,
                initial_backoff: Some(secs(7)),
                max_backoff: None,
            })
        );
        assert!(
            Cli::try_parse_from(["octo", "schedules", "update", "x", "--enable", "--disable"])
                .is_err()
        );
    }

    #[test]
    fn bad_flags_are_rejected() {
        for bad in [
            &["octo", "schedules", "add", "--overlap", "never"][..],
            &["octo", "schedules", "add", "--max-attempts", "11"][..],
            &["octo", "schedules", "add", "--initial-backoff", "soon"][..],
            &["octo", "schedules", "add", "--webhook-secret", "whsec_x"][..],
            &["octo", "schedules", "runs"][..],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
        }
        let bad_session = parse(&[
            "octo",
            "schedules",
            "add",
            "--cron",
            "* * * * *",
            "--prompt",
            "p",
            "--session",
            "models/x",
        ]);
        assert!(bad_session.validate().is_err());
        assert!(
            parse(&["octo", "schedules", "run", "sessions/x"])
                .validate()
                .is_err()
        );
        assert_eq!(
            parse(&["octo", "schedules", "runs", "x", "-n", "3"]),
            SchedulesCommand::Runs(RunsArgs {
                id: "x".into(),
                limit: Some(3),
                all: false
            })
        );
    }

    #[test]
    fn tables_show_schedules_and_runs() {
        let now = 1_700_000_000;
        let ts = |seconds| prost_types::Timestamp { seconds, nanos: 0 };
        let schedules = vec![pb::Schedule {
            name: "schedules/nightly".into(),
            display_name: "Nightly".into(),
            cron: "0 2 * * *".into(),
            enabled: Some(true),
            next_run_time: Some(ts(now + 300)),
            last_run: Some(pb::ScheduleRun {
                status: pb::RunStatus::Succeeded as i32,
                ..Default::default()
            }),
            ..Default::default()
        }];
        let mut buf = Vec::new();
        schedule_table(&schedules, now)
            .render(&mut buf)
            .expect("render");
        let text = String::from_utf8(buf).expect("utf8");
        let row = text.lines().nth(1).expect("row");
        for cell in ["nightly", "Nightly", "0 2 * * *", "UTC", "yes", "in 5m"] {
            assert!(row.contains(cell), "{cell}: {text}");
        }
        assert!(row.ends_with("succeeded"), "{text}");

        let runs = vec![pb::ScheduleRun {
            name: "schedules/nightly/runs/r1".into(),
            trigger: pb::RunTrigger::Manual as i32,
            scheduled_time: Some(ts(now - 120)),
            status: pb::RunStatus::Failed as i32,
            session: "sessions/s1".into(),
            turn: "sessions/s1/turns/t1".into(),
            error: "provider unavailable".into(),
            ..Default::default()
        }];
        let mut buf = Vec::new();
        run_table(&runs, now).render(&mut buf).expect("render");
        let text = String::from_utf8(buf).expect("utf8");
        let row = text.lines().nth(1).expect("row");
        assert!(
            row.starts_with("r1   manual   2m ago     failed  s1       t1    provider unavailable"),
            "{text}"
        );
        let fields = run_fields(&runs[0], now);
        assert!(fields.contains(&("Schedule", "nightly".into())));
    }
}
