//! ScheduleService end to end, with the scheduler's clock moved by hand: cron fires at
//! minute boundaries in a time zone and across a DST change, exactly once with two
//! servers on one database, overlap SKIP vs QUEUE, misfires on restart, RunSchedule,
//! run history paging, and a signed webhook per finished run.

use crate::common;

use std::{sync::Arc, time::Duration};

use common::*;
use octo::{domain::Timestamp, pb, scheduler::ManualClock};
use prost_types::FieldMask;
use tonic::{Code, transport::Channel};

type Schedules = pb::schedule_service_client::ScheduleServiceClient<Channel>;

/// 2026-03-02T08:59:00Z, a Monday.
const START: i64 = 1_772_441_940_000_000;
const MINUTE: i64 = 60_000_000;

fn at(micros: i64) -> Timestamp {
    Timestamp(micros)
}

fn pb_time(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.as_ref().expect("time set");
    t.seconds * 1_000_000 + i64::from(t.nanos) / 1_000
}

fn schedule(cron: &str, prompt: &str) -> pb::Schedule {
    pb::Schedule {
        prompt: prompt.into(),
        cron: cron.into(),
        ..Default::default()
    }
}

async fn create(schedules: &mut Schedules, s: pb::Schedule) -> pb::Schedule {
    schedules
        .create_schedule(pb::CreateScheduleRequest { schedule: Some(s) })
        .await
        .expect("create schedule")
        .into_inner()
}

async fn runs(schedules: &mut Schedules, name: &str) -> Vec<pb::ScheduleRun> {
    schedules
        .list_schedule_runs(pb::ListScheduleRunsRequest {
            parent: name.into(),
            page_size: 500,
            ..Default::default()
        })
        .await
        .expect("runs")
        .into_inner()
        .runs
}

/// Polls the run history until `done` holds (the runs execute asynchronously); the
/// timeout is a safety net.
async fn runs_until(
    schedules: &mut Schedules,
    name: &str,
    done: impl Fn(&[pb::ScheduleRun]) -> bool,
) -> Vec<pb::ScheduleRun> {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            let runs = runs(schedules, name).await;
            if done(&runs) {
                return runs;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("runs reach the expected state in time")
}

fn status(run: &pb::ScheduleRun) -> pb::RunStatus {
    pb::RunStatus::try_from(run.status).expect("status")
}

fn all_terminal(runs: &[pb::ScheduleRun]) -> bool {
    runs.iter().all(|r| {
        matches!(
            status(r),
            pb::RunStatus::Succeeded | pb::RunStatus::Failed | pb::RunStatus::Skipped
        )
    })
}

async fn start(clock: &ManualClock) -> TestServer {
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    let config = test_config(&dir);
    TestServer::start_with_clock(dir, config, Arc::new(clock.clone())).await
}

#[tokio::test]
async fn a_cron_fire_time_runs_one_turn_and_records_it() {
    let clock = ManualClock::new(at(START));
    let server = start(&clock).await;
    let mut schedules = server.schedules().await;
    let created = create(&mut schedules, schedule("0 9 * * *", "daily report")).await;
    assert_eq!(created.time_zone, "UTC");
    assert_eq!(created.enabled, Some(true), "enabled unless said otherwise");
    assert_eq!(pb_time(&created.next_run_time), START + MINUTE);

    // One microsecond before the minute: nothing.
    clock.set(at(START + MINUTE - 1));
    assert!(runs(&mut schedules, &created.name).await.is_empty());

    clock.set(at(START + MINUTE));
    let done = runs_until(&mut schedules, &created.name, |r| {
        r.len() == 1 && status(&r[0]) == pb::RunStatus::Succeeded
    })
    .await;
    let run = &done[0];
    assert_eq!(run.trigger, pb::RunTrigger::Cron as i32);
    assert_eq!(pb_time(&run.scheduled_time), START + MINUTE);
    assert_eq!(run.attempt, 1);
    assert!(run.turn.starts_with(&run.session));

    // The run's turn answered the prompt in a new session made by the schedule.
    let mut chat = server.chat().await;
    let history = history(&mut chat, &run.session).await;
    let texts: Vec<String> = history.iter().map(message_text).collect();
    assert!(texts.iter().any(|t| t == "daily report"), "{texts:?}");
    assert!(
        texts.iter().any(|t| t.contains("Echo: daily report")),
        "{texts:?}"
    );
    let session = server
        .sessions()
        .await
        .get_session(pb::GetSessionRequest {
            name: run.session.clone(),
        })
        .await
        .expect("session")
        .into_inner();
    assert_eq!(session.source, pb::SessionSource::Schedule as i32);
    assert_eq!(
        session.permission_mode,
        pb::PermissionMode::AutoApprove as i32
    );

    let shown = schedules
        .get_schedule(pb::GetScheduleRequest {
            name: created.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(
        pb_time(&shown.next_run_time),
        START + MINUTE + 24 * 60 * MINUTE,
        "next: tomorrow 09:00"
    );
    assert_eq!(shown.last_run.as_ref().map(|r| &r.name), Some(&run.name));
}

#[tokio::test]
async fn time_zones_and_the_spring_forward_gap_follow_the_stated_rule() {
    // 2025-03-08T12:00:00Z: the day before New York springs forward (02:00 -> 03:00).
    let clock = ManualClock::new(at(1_741_435_200_000_000));
    let server = start(&clock).await;
    let mut schedules = server.schedules().await;
    let s = create(
        &mut schedules,
        pb::Schedule {
            time_zone: "America/New_York".into(),
            ..schedule("30 2 * * *", "nightly")
        },
    )
    .await;
    // 02:30 does not exist on 2025-03-09: it fires at 03:30 EDT = 07:30Z.
    assert_eq!(pb_time(&s.next_run_time), 1_741_505_400_000_000);
    clock.set(at(1_741_505_400_000_000));
    let done = runs_until(&mut schedules, &s.name, |r| r.len() == 1 && all_terminal(r)).await;
    assert_eq!(status(&done[0]), pb::RunStatus::Succeeded);
    let next = schedules
        .get_schedule(pb::GetScheduleRequest { name: s.name })
        .await
        .expect("get")
        .into_inner();
    // The day after, 02:30 EDT exists again: 06:30Z.
    assert_eq!(pb_time(&next.next_run_time), 1_741_588_200_000_000);

    let err = schedules
        .create_schedule(pb::CreateScheduleRequest {
            schedule: Some(pb::Schedule {
                time_zone: "Mars/Olympus_Mons".into(),
                ..schedule("61 * * * *", "")
            }),
        })
        .await
        .expect_err("invalid");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&err),
        ["schedule.prompt", "schedule.cron", "schedule.time_zone"]
    );
    assert!(err.message().contains("minute"), "{}", err.message());
}

#[tokio::test]
async fn two_servers_on_one_database_fire_each_time_once() {
    let clock = ManualClock::new(at(START));
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    let config = test_config(&dir);
    let a =
        TestServer::start_with_clock(dir.clone(), config.clone(), Arc::new(clock.clone())).await;
    let b = TestServer::start_with_clock(dir.clone(), config, Arc::new(clock.clone())).await;
    let mut schedules = a.schedules().await;
    let s = create(&mut schedules, schedule("* * * * *", "tick")).await;
    // Both servers see the schedule (B finds it on its next look at the store).
    for minute in 1..=3 {
        clock.set(at(START + minute * MINUTE));
        runs_until(&mut schedules, &s.name, |r| {
            r.len() == minute as usize && all_terminal(r)
        })
        .await;
    }
    let mut from_b = b.schedules().await;
    let all = runs(&mut from_b, &s.name).await;
    let mut times: Vec<i64> = all.iter().map(|r| pb_time(&r.scheduled_time)).collect();
    times.sort();
    assert_eq!(
        times,
        [START + MINUTE, START + 2 * MINUTE, START + 3 * MINUTE],
        "each minute exactly once"
    );
}

#[tokio::test]
async fn overlap_skip_records_a_skipped_run_and_queue_waits_for_the_active_one() {
    let clock = ManualClock::new(at(START));
    let server = start(&clock).await;
    let mut schedules = server.schedules().await;
    let mut chat = server.chat().await;
    // Each run's turn waits a minute before answering, so it is still active at the next
    // fire time; the test cancels it.
    let skip = create(&mut schedules, schedule("* * * * *", "/sleep 60000")).await;
    let queue = create(
        &mut schedules,
        pb::Schedule {
            overlap_policy: pb::OverlapPolicy::Queue as i32,
            ..schedule("* * * * *", "/sleep 60000")
        },
    )
    .await;

    clock.set(at(START + MINUTE));
    let running = |r: &[pb::ScheduleRun]| {
        r.len() == 1 && status(&r[0]) == pb::RunStatus::Running && !r[0].turn.is_empty()
    };
    let first_skip = runs_until(&mut schedules, &skip.name, running).await;
    let first_queue = runs_until(&mut schedules, &queue.name, running).await;

    clock.set(at(START + 2 * MINUTE));
    let skipped = runs_until(&mut schedules, &skip.name, |r| r.len() == 2).await;
    assert_eq!(status(&skipped[0]), pb::RunStatus::Skipped);
    assert!(
        skipped[0].error.contains("still active"),
        "{}",
        skipped[0].error
    );
    let queued = runs_until(&mut schedules, &queue.name, |r| r.len() == 2).await;
    assert_eq!(status(&queued[0]), pb::RunStatus::Pending);

    for run in [&first_skip[0], &first_queue[0]] {
        chat.cancel_turn(pb::CancelTurnRequest {
            name: run.turn.clone(),
        })
        .await
        .expect("cancel");
    }
    // The queued run starts once the first has ended.
    let second = runs_until(&mut schedules, &queue.name, |r| {
        status(&r[0]) == pb::RunStatus::Running && !r[0].turn.is_empty()
    })
    .await;
    let first = runs_until(&mut schedules, &queue.name, |r| {
        status(&r[1]) == pb::RunStatus::Failed
    })
    .await;
    assert!(first[1].error.contains("cancelled"), "{}", first[1].error);
    assert!(pb_time(&second[0].start_time) >= pb_time(&first[1].end_time));
    chat.cancel_turn(pb::CancelTurnRequest {
        name: second[0].turn.clone(),
    })
    .await
    .expect("cancel");
    runs_until(&mut schedules, &queue.name, all_terminal).await;
}

#[tokio::test]
async fn missed_fire_times_follow_the_misfire_rule_on_restart() {
    let clock = ManualClock::new(at(START));
    let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
    let mut config = test_config(&dir);
    config.schedule_misfire_grace_seconds = 600;
    let server =
        TestServer::start_with_clock(dir.clone(), config.clone(), Arc::new(clock.clone())).await;
    let mut schedules = server.schedules().await;
    let hourly = create(&mut schedules, schedule("0 * * * *", "hourly")).await;
    let daily = create(&mut schedules, schedule("0 6 * * *", "at six")).await;
    let (dir, config) = server.stop().await;

    // Down from 08:59 to 12:05: 09:00, 10:00, 11:00 and 12:00 were missed for the hourly
    // schedule; 12:00 is 5 minutes late (within the 10-minute grace) and runs once.
    // The daily 06:00 of the next day is not due yet.
    clock.set(at(START + 3 * 60 * MINUTE + 6 * MINUTE));
    let server = TestServer::start_with_clock(dir, config, Arc::new(clock.clone())).await;
    let mut schedules = server.schedules().await;
    let done = runs_until(&mut schedules, &hourly.name, |r| {
        r.len() == 2 && all_terminal(r)
    })
    .await;
    let (late, skipped) = (&done[0], &done[1]);
    assert_eq!(late.trigger, pb::RunTrigger::Misfire as i32);
    assert_eq!(status(late), pb::RunStatus::Succeeded);
    assert_eq!(
        pb_time(&late.scheduled_time),
        START + 3 * 60 * MINUTE + MINUTE
    );
    assert_eq!(status(skipped), pb::RunStatus::Skipped);
    assert_eq!(pb_time(&skipped.scheduled_time), START + MINUTE);
    assert!(
        skipped.error.starts_with("3 fire time(s)"),
        "{}",
        skipped.error
    );
    assert!(runs(&mut schedules, &daily.name).await.is_empty());

    // Down for a day: the 06:00 run is hours late, beyond the grace: skipped, not run.
    let (dir, config) = server.stop().await;
    clock.set(at(START + 24 * 60 * MINUTE));
    let server = TestServer::start_with_clock(dir, config, Arc::new(clock.clone())).await;
    let mut schedules = server.schedules().await;
    let done = runs_until(&mut schedules, &daily.name, |r| {
        r.len() == 1 && all_terminal(r)
    })
    .await;
    assert_eq!(status(&done[0]), pb::RunStatus::Skipped);
    assert!(done[0].error.contains("misfire grace"), "{}", done[0].error);
}

#[tokio::test]
async fn run_now_disable_history_paging_and_delete() {
    let clock = ManualClock::new(at(START));
    let server = start(&clock).await;
    let mut schedules = server.schedules().await;
    let s = create(&mut schedules, schedule("0 0 1 1 *", "manual")).await;
    for _ in 0..3 {
        let run = schedules
            .run_schedule(pb::RunScheduleRequest {
                name: s.name.clone(),
            })
            .await
            .expect("run now")
            .into_inner();
        assert_eq!(run.trigger, pb::RunTrigger::Manual as i32);
        runs_until(&mut schedules, &s.name, all_terminal).await;
    }

    // Paging: newest first, two pages, no run twice.
    let page = |token: String| pb::ListScheduleRunsRequest {
        parent: s.name.clone(),
        page_size: 2,
        page_token: token,
    };
    let first = schedules
        .list_schedule_runs(page(String::new()))
        .await
        .expect("page 1")
        .into_inner();
    assert_eq!(first.runs.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let second = schedules
        .list_schedule_runs(page(first.next_page_token.clone()))
        .await
        .expect("page 2")
        .into_inner();
    assert_eq!(second.runs.len(), 1);
    assert!(second.next_page_token.is_empty());
    let names: Vec<&str> = first
        .runs
        .iter()
        .chain(&second.runs)
        .map(|r| r.name.as_str())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(names, sorted, "newest first");
    let one = schedules
        .get_schedule_run(pb::GetScheduleRunRequest {
            name: names[2].into(),
        })
        .await
        .expect("get run")
        .into_inner();
    assert_eq!(one.name, names[2]);

    // Disabling clears the next fire time and keeps the history.
    let disabled = schedules
        .update_schedule(pb::UpdateScheduleRequest {
            schedule: Some(pb::Schedule {
                name: s.name.clone(),
                enabled: Some(false),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["enabled".into()],
            }),
        })
        .await
        .expect("disable")
        .into_inner();
    assert_eq!(disabled.enabled, Some(false));
    assert!(disabled.next_run_time.is_none());
    assert_eq!(runs(&mut schedules, &s.name).await.len(), 3);

    // Deleting keeps the sessions its runs made.
    let session = one.session.clone();
    schedules
        .delete_schedule(pb::DeleteScheduleRequest {
            name: s.name.clone(),
            ..Default::default()
        })
        .await
        .expect("delete");
    let err = schedules
        .get_schedule(pb::GetScheduleRequest { name: s.name })
        .await
        .expect_err("gone");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(reason(&err), "SCHEDULE_NOT_FOUND");
    server
        .sessions()
        .await
        .get_session(pb::GetSessionRequest { name: session })
        .await
        .expect("the run's session stays");
}

#[tokio::test]
async fn provider_failures_are_retried_with_backoff_by_the_schedules_clock() {
    let clock = ManualClock::new(at(START));
    let server = start(&clock).await;
    let mut schedules = server.schedules().await;
    let s = create(
        &mut schedules,
        pb::Schedule {
            retry_policy: Some(pb::RetryPolicy {
                max_attempts: 3,
                initial_backoff: Some(prost_types::Duration {
                    seconds: 30,
                    nanos: 0,
                }),
                max_backoff: Some(prost_types::Duration {
                    seconds: 45,
                    nanos: 0,
                }),
            }),
            ..schedule("0 0 1 1 *", "/fail-after 1 boom")
        },
    )
    .await;
    schedules
        .run_schedule(pb::RunScheduleRequest {
            name: s.name.clone(),
        })
        .await
        .expect("run");
    for (attempt, delay) in [(1, 30), (2, 45)] {
        let waiting = runs_until(&mut schedules, &s.name, |r| {
            r[0].attempt == attempt && r[0].next_retry_delay.is_some()
        })
        .await;
        assert_eq!(
            waiting[0].next_retry_delay.as_ref().map(|d| d.seconds),
            Some(delay)
        );
        assert!(
            waiting[0].error.contains("PROVIDER_"),
            "{}",
            waiting[0].error
        );
        clock.advance(Duration::from_secs(delay as u64));
    }
    let done = runs_until(&mut schedules, &s.name, all_terminal).await;
    assert_eq!(status(&done[0]), pb::RunStatus::Failed);
    assert_eq!(done[0].attempt, 3);
}

#[tokio::test]
async fn preview_shows_the_next_fire_times_in_the_zone_and_names_bad_fields() {
    let clock = ManualClock::new(at(START));
    let server = start(&clock).await;
    let mut schedules = server.schedules().await;
    let preview = |cron: &str, zone: &str, count: i32| pb::PreviewScheduleRequest {
        cron: cron.into(),
        time_zone: zone.into(),
        count,
    };
    let times = |response: pb::PreviewScheduleResponse| -> Vec<i64> {
        response
            .fire_times
            .iter()
            .map(|t| pb_time(&Some(*t)))
            .collect()
    };
    // 09:00 UTC daily, from 08:59: the default five.
    let utc = schedules
        .preview_schedule(preview("0 9 * * *", "", 0))
        .await
        .expect("preview")
        .into_inner();
    let day = 24 * 60 * MINUTE;
    assert_eq!(
        times(utc),
        (0..5).map(|d| START + MINUTE + d * day).collect::<Vec<_>>()
    );
    // 09:00 in Tokyo (UTC+9) is midnight UTC: the first is the next day's.
    let tokyo = schedules
        .preview_schedule(preview("0 9 * * *", "Asia/Tokyo", 2))
        .await
        .expect("preview")
        .into_inner();
    let midnight = START + MINUTE - 9 * 60 * MINUTE + day;
    assert_eq!(times(tokyo), [midnight, midnight + day]);

    let bad = schedules
        .preview_schedule(preview("every day-ish", "Mars/Olympus_Mons", 500))
        .await
        .expect_err("bad input");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&bad), ["cron", "time_zone", "count"]);

    // The same over JSON (what the web UI's form asks before saving).
    let json: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/v1/schedules:preview", server.url()))
        .json(&serde_json::json!({"cron": "0 9 * * *", "count": 1}))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert_eq!(json["fireTimes"][0], "2026-03-02T09:00:00Z", "{json}");
}
