//! The trash (AIP-164 soft delete) end to end, over gRPC, JSON/HTTP and the `octo` CLI:
//! DeleteSession moves a session to the trash (hidden from the list unless
//! show_deleted, still readable, read-only), UndeleteSession restores it, PurgeSession
//! deletes it for good; the retention pass purges expired and (when configured)
//! inactive sessions but never a live one; schedules targeting a trashed session fail
//! saying so. And ListSessions' label `filter` and `order_by` with exact pagination and
//! field-naming errors.
//!
//! Retention is configured, not mocked: `trash_retention_days = 0` expires a session at
//! once, a fraction of a day makes a few seconds, `retention_interval_seconds = 1` runs
//! a pass every second; tests wait on the outcome with `common::eventually`.

use crate::common;

use std::collections::HashMap;

use common::{
    TIMEOUT, TestServer, collect_until, create, eventually, finishes, get_turn, history, is_kind,
    reason, send_text, sent_turn, subscribe, violated_fields,
};
use futures::StreamExt;
use octo::pb;
use prost_types::FieldMask;
use tonic::Code;

type Sessions = pb::session_service_client::SessionServiceClient<tonic::transport::Channel>;

async fn delete(client: &mut Sessions, name: &str) -> Result<pb::Session, tonic::Status> {
    client
        .delete_session(pb::DeleteSessionRequest {
            name: name.to_owned(),
            ..Default::default()
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn get(client: &mut Sessions, name: &str) -> Result<pb::Session, tonic::Status> {
    client
        .get_session(pb::GetSessionRequest {
            name: name.to_owned(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn list(client: &mut Sessions, request: pb::ListSessionsRequest) -> Vec<String> {
    client
        .list_sessions(request)
        .await
        .expect("list")
        .into_inner()
        .sessions
        .into_iter()
        .map(|s| s.name)
        .collect()
}

fn micros(t: &Option<prost_types::Timestamp>) -> i64 {
    let t = t.as_ref().expect("time set");
    t.seconds * 1_000_000 + i64::from(t.nanos) / 1_000
}

/// Asserts a status is FAILED_PRECONDITION with `reason`.
fn precondition(status: &tonic::Status, why: &str) {
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(reason(status), why, "{status:?}");
}

#[tokio::test]
async fn delete_moves_a_session_to_the_trash_read_only_until_restored() {
    let server = TestServer::start().await;
    let mut client = server.sessions().await;
    let mut chat = server.chat().await;
    let session = create(&mut client, "to the trash").await;
    let other = create(&mut client, "stays").await;
    let turn = sent_turn(
        &send_text(&mut chat, &session.name, "hello", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    eventually("the first turn ends", async || {
        let t = get_turn(&mut chat, &turn.name).await;
        (t.status == pb::TurnStatus::Succeeded as i32).then_some(())
    })
    .await;

    let trashed = delete(&mut client, &session.name).await.expect("delete");
    assert_eq!(trashed.name, session.name);
    let (deleted, expires) = (micros(&trashed.delete_time), micros(&trashed.expire_time));
    assert_eq!(
        expires - deleted,
        30 * 24 * 3600 * 1_000_000,
        "expire_time is delete_time + the default 30 days"
    );
    assert_ne!(
        trashed.etag, session.etag,
        "a move to the trash is a change"
    );

    // Hidden from the list, shown with show_deleted; Get and the history still work.
    assert_eq!(
        list(&mut client, Default::default()).await,
        [other.name.as_str()]
    );
    let all = list(
        &mut client,
        pb::ListSessionsRequest {
            show_deleted: true,
            ..Default::default()
        },
    )
    .await;
    assert!(
        all.contains(&session.name) && all.contains(&other.name),
        "{all:?}"
    );
    let got = get(&mut client, &session.name)
        .await
        .expect("still readable");
    assert_eq!(got.delete_time, trashed.delete_time);
    assert_eq!(got.expire_time, trashed.expire_time);
    assert_eq!(history(&mut chat, &session.name).await.len(), 2);

    // Read-only: sending, updating, forking and streaming say why.
    let err = send_text(&mut chat, &session.name, "anyone?", pb::BusyPolicy::Enqueue)
        .await
        .expect_err("send to the trash");
    precondition(&err, "SESSION_DELETED");
    assert!(err.message().contains("restore"), "{}", err.message());
    let err = client
        .update_session(pb::UpdateSessionRequest {
            session: Some(pb::Session {
                name: session.name.clone(),
                display_name: "renamed".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["display_name".into()],
            }),
        })
        .await
        .expect_err("update in the trash");
    precondition(&err, "SESSION_DELETED");
    let err = client
        .fork_session(pb::ForkSessionRequest {
            name: session.name.clone(),
            ..Default::default()
        })
        .await
        .expect_err("fork in the trash");
    precondition(&err, "SESSION_DELETED");
    let err = chat
        .stream_events(pb::StreamEventsRequest {
            session: session.name.clone(),
            after_sequence: 0,
        })
        .await
        .expect_err("stream in the trash");
    precondition(&err, "SESSION_DELETED");

    // AIP-164: deleting again is NOT_FOUND unless allow_missing; restoring a session
    // that is not in the trash is ALREADY_EXISTS; purging one is FAILED_PRECONDITION.
    assert_eq!(
        delete(&mut client, &session.name)
            .await
            .expect_err("again")
            .code(),
        Code::NotFound
    );
    let again = client
        .delete_session(pb::DeleteSessionRequest {
            name: session.name.clone(),
            allow_missing: true,
            ..Default::default()
        })
        .await
        .expect("allow_missing")
        .into_inner();
    assert_eq!(again.delete_time, trashed.delete_time, "unchanged");
    let err = client
        .undelete_session(pb::UndeleteSessionRequest {
            name: other.name.clone(),
        })
        .await
        .expect_err("not in the trash");
    assert_eq!(err.code(), Code::AlreadyExists);
    let err = client
        .purge_session(pb::PurgeSessionRequest {
            name: other.name.clone(),
            ..Default::default()
        })
        .await
        .expect_err("purge outside the trash");
    precondition(&err, "SESSION_NOT_DELETED");

    // Restored: listed again and usable again; watchers see it come back.
    let mut watch = client
        .watch_sessions(pb::WatchSessionsRequest {})
        .await
        .expect("watch")
        .into_inner();
    let restored = client
        .undelete_session(pb::UndeleteSessionRequest {
            name: session.name.clone(),
        })
        .await
        .expect("undelete")
        .into_inner();
    assert!(restored.delete_time.is_none() && restored.expire_time.is_none());
    let change = tokio::time::timeout(TIMEOUT, watch.next())
        .await
        .expect("a change in time")
        .expect("open")
        .expect("ok")
        .change;
    assert!(
        matches!(&change, Some(pb::watch_sessions_response::Change::Created(s)) if s.name == session.name),
        "{change:?}"
    );
    assert_eq!(list(&mut client, Default::default()).await.len(), 2);
    let turn = sent_turn(
        &send_text(
            &mut chat,
            &session.name,
            "back again",
            pb::BusyPolicy::Enqueue,
        )
        .await
        .expect("send after restore"),
    );
    eventually("the turn after the restore ends", async || {
        let t = get_turn(&mut chat, &turn.name).await;
        (t.status == pb::TurnStatus::Succeeded as i32).then_some(())
    })
    .await;

    // Purged: gone for good, history and all.
    delete(&mut client, &session.name).await.expect("delete");
    client
        .purge_session(pb::PurgeSessionRequest {
            name: session.name.clone(),
            ..Default::default()
        })
        .await
        .expect("purge");
    assert_eq!(
        get(&mut client, &session.name)
            .await
            .expect_err("gone")
            .code(),
        Code::NotFound
    );
    let err = chat
        .get_turn(pb::GetTurnRequest {
            name: turn.name.clone(),
        })
        .await
        .expect_err("its turns are gone");
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .purge_session(pb::PurgeSessionRequest {
            name: session.name.clone(),
            ..Default::default()
        })
        .await
        .expect_err("purged already");
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn deleting_a_busy_session_cancels_its_running_and_queued_turns() {
    let server = TestServer::start_with(|config| {
        let mock = config.models.get_mut("mock").expect("mock");
        // A turn that streams until cancelled.
        mock.options
            .insert("tokens".into(), serde_json::json!(1_000_000));
        mock.options
            .insert("token_delay_ms".into(), serde_json::json!(1));
    })
    .await;
    let mut client = server.sessions().await;
    let mut chat = server.chat().await;
    let session = create(&mut client, "busy").await;
    let mut events = subscribe(&mut chat, &session.name, 0).await;
    let running = sent_turn(
        &send_text(&mut chat, &session.name, "one", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    let queued = sent_turn(
        &send_text(&mut chat, &session.name, "two", pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    collect_until(&mut events, is_kind("text_delta")).await;

    let trashed = delete(&mut client, &session.name).await.expect("delete");
    assert_eq!(
        trashed.status,
        pb::SessionStatus::Idle as i32,
        "{trashed:?}"
    );
    assert_eq!(trashed.queue_depth, 0);
    let seen = collect_until(&mut events, is_kind("session_deleted")).await;
    assert!(
        seen.iter().any(finishes(&queued.name)),
        "the queued turn's end is told before the stream ends: {:?}",
        common::kinds(&seen)
    );
    let queued_end = get_turn(&mut chat, &queued.name).await;
    assert_eq!(queued_end.status, pb::TurnStatus::Cancelled as i32);
    assert_eq!(
        queued_end.error.as_ref().map(|e| e.reason.as_str()),
        Some("SESSION_DELETED")
    );
    eventually("the running turn ends cancelled", async || {
        let t = get_turn(&mut chat, &running.name).await;
        (t.status == pb::TurnStatus::Cancelled as i32).then_some(())
    })
    .await;

    // Restored, nothing runs again by itself: both turns stay cancelled, the session idle.
    let restored = client
        .undelete_session(pb::UndeleteSessionRequest {
            name: session.name.clone(),
        })
        .await
        .expect("undelete")
        .into_inner();
    assert_eq!(restored.status, pb::SessionStatus::Idle as i32);
    assert_eq!(restored.queue_depth, 0);
    let turns = chat
        .list_turns(pb::ListTurnsRequest {
            parent: session.name.clone(),
            ..Default::default()
        })
        .await
        .expect("turns")
        .into_inner()
        .turns;
    assert_eq!(turns.len(), 2);
    assert!(
        turns
            .iter()
            .all(|t| t.status == pb::TurnStatus::Cancelled as i32),
        "{turns:?}"
    );
}

/// The JSON/HTTP mapping of the same calls, from the google.api.http annotations.
#[tokio::test]
async fn the_trash_over_json() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let base = format!("{}/v1", server.url());
    let call = async |request: reqwest::RequestBuilder| {
        let response = tokio::time::timeout(TIMEOUT, request.send())
            .await
            .expect("in time")
            .expect("answers");
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.expect("json body");
        (status, body)
    };
    let (status, created) = call(
        http.post(format!("{base}/sessions"))
            .json(&serde_json::json!({"displayName": "json", "labels": {"team": "core"}})),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let name = created["name"].as_str().expect("name").to_owned();

    let (status, trashed) = call(http.delete(format!("{base}/{name}"))).await;
    assert_eq!(status, 200, "{trashed}");
    assert!(
        trashed["deleteTime"].is_string() && trashed["expireTime"].is_string(),
        "{trashed}"
    );

    let names = |page: &serde_json::Value| -> Vec<String> {
        page["sessions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|s| s["name"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let (status, page) = call(http.get(format!("{base}/sessions"))).await;
    assert_eq!(status, 200, "{page}");
    assert!(names(&page).is_empty(), "{page}");
    for query in ["showDeleted=true", "show_deleted=true"] {
        let (status, page) = call(http.get(format!("{base}/sessions?{query}"))).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(names(&page), [name.as_str()], "{query}");
    }

    let (status, restored) = call(
        http.post(format!("{base}/{name}:undelete"))
            .json(&serde_json::json!({})),
    )
    .await;
    assert_eq!(status, 200, "{restored}");
    assert!(restored.get("deleteTime").is_none(), "{restored}");
    let (status, error) = call(
        http.post(format!("{base}/{name}:undelete"))
            .json(&serde_json::json!({})),
    )
    .await;
    assert_eq!(status, 409, "not in the trash: {error}");
    let (status, error) = call(
        http.post(format!("{base}/{name}:purge"))
            .json(&serde_json::json!({})),
    )
    .await;
    assert_eq!(status, 400, "FAILED_PRECONDITION: {error}");
    assert_eq!(
        error["details"][0]["reason"], "SESSION_NOT_DELETED",
        "{error}"
    );

    let (status, _) = call(http.delete(format!("{base}/{name}"))).await;
    assert_eq!(status, 200);
    let (status, purged) = call(
        http.post(format!("{base}/{name}:purge"))
            .json(&serde_json::json!({})),
    )
    .await;
    assert_eq!(status, 200, "{purged}");
    let (status, _) = call(http.get(format!("{base}/{name}"))).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn retention_purges_a_session_whose_time_in_the_trash_is_up() {
    let server = TestServer::start_with(|config| {
        config.trash_retention_days = 0.0;
        config.retention_interval_seconds = 1;
    })
    .await;
    let mut client = server.sessions().await;
    let mut chat = server.chat().await;
    let doomed = create(&mut client, "expires at once").await;
    let kept = create(&mut client, "not in the trash").await;
    send_text(
        &mut chat,
        &doomed.name,
        "some history",
        pb::BusyPolicy::Enqueue,
    )
    .await
    .expect("send");
    eventually("the history is stored", async || {
        (history(&mut chat, &doomed.name).await.len() == 2).then_some(())
    })
    .await;
    let trashed = delete(&mut client, &doomed.name).await.expect("delete");
    assert_eq!(
        trashed.expire_time, trashed.delete_time,
        "retention 0: due at once"
    );
    eventually("the retention pass purges it", async || {
        match get(&mut client, &doomed.name).await {
            Err(status) if status.code() == Code::NotFound => Some(()),
            _ => None,
        }
    })
    .await;
    let err = chat
        .list_messages(pb::ListMessagesRequest {
            parent: doomed.name.clone(),
            ..Default::default()
        })
        .await
        .expect_err("its history is gone");
    assert_eq!(err.code(), Code::NotFound);
    get(&mut client, &kept.name)
        .await
        .expect("a session not in the trash stays");
}

#[tokio::test]
async fn retention_purges_inactive_sessions_but_never_a_live_one() {
    let server = TestServer::start_with(|config| {
        // Two seconds without activity.
        config.session_retention_days = Some(2.0 / 86_400.0);
        config.retention_interval_seconds = 1;
    })
    .await;
    let mut client = server.sessions().await;
    let mut chat = server.chat().await;
    // Live while its event stream is open: never purged from under it.
    let live = create(&mut client, "watched").await;
    let _watching = subscribe(&mut chat, &live.name, 0).await;
    let idle = create(&mut client, "idle").await;
    eventually("the idle session is purged", async || {
        match get(&mut client, &idle.name).await {
            Err(status) if status.code() == Code::NotFound => Some(()),
            _ => None,
        }
    })
    .await;
    // Older than the idle one, and inactive as long: only being live kept it.
    get(&mut client, &live.name)
        .await
        .expect("the live session stays");
}

#[tokio::test]
async fn a_schedule_targeting_a_session_in_the_trash_fails_its_runs_saying_so() {
    let server = TestServer::start().await;
    let mut client = server.sessions().await;
    let mut schedules = server.schedules().await;
    let target = create(&mut client, "scheduled into").await;
    let schedule = schedules
        .create_schedule(pb::CreateScheduleRequest {
            schedule: Some(pb::Schedule {
                prompt: "report".into(),
                cron: "0 0 1 1 *".into(),
                target_session: target.name.clone(),
                ..Default::default()
            }),
        })
        .await
        .expect("create schedule")
        .into_inner();
    delete(&mut client, &target.name).await.expect("delete");
    schedules
        .run_schedule(pb::RunScheduleRequest {
            name: schedule.name.clone(),
        })
        .await
        .expect("run now");
    let run = eventually("the run ends", async || {
        let runs = schedules
            .list_schedule_runs(pb::ListScheduleRunsRequest {
                parent: schedule.name.clone(),
                ..Default::default()
            })
            .await
            .expect("runs")
            .into_inner()
            .runs;
        runs.into_iter()
            .find(|r| r.status == pb::RunStatus::Failed as i32)
    })
    .await;
    assert!(run.error.contains("in the trash"), "{}", run.error);

    // A new schedule cannot target it either.
    let err = schedules
        .create_schedule(pb::CreateScheduleRequest {
            schedule: Some(pb::Schedule {
                prompt: "report".into(),
                cron: "0 0 1 1 *".into(),
                target_session: target.name.clone(),
                ..Default::default()
            }),
        })
        .await
        .expect_err("target in the trash");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["schedule.target_session"]);
}

#[tokio::test]
async fn label_filters_and_orders_page_exactly_and_bad_ones_name_their_field() {
    let server = TestServer::start().await;
    let mut client = server.sessions().await;
    let mut by_title = HashMap::new();
    for (title, team) in [
        ("delta", Some("core")),
        ("alpha", Some("core")),
        ("echo", Some("web")),
        ("charlie", None),
        ("bravo", Some("core")),
    ] {
        let created = client
            .create_session(pb::CreateSessionRequest {
                session: Some(pb::Session {
                    display_name: title.into(),
                    labels: team
                        .map(|t| HashMap::from([("team".to_owned(), t.to_owned())]))
                        .unwrap_or_default(),
                    ..Default::default()
                }),
            })
            .await
            .expect("create")
            .into_inner();
        by_title.insert(title, created.name);
    }
    let titles = |names: &[String]| -> Vec<&str> {
        names
            .iter()
            .map(|n| {
                *by_title
                    .iter()
                    .find(|(_, name)| *name == n)
                    .map(|(t, _)| t)
                    .expect("a known session")
            })
            .collect()
    };
    // Every page of a request, two at a time.
    let all_pages = async |client: &mut Sessions, filter: &str, order_by: &str| {
        let mut names = Vec::new();
        let mut token = String::new();
        loop {
            let page = client
                .list_sessions(pb::ListSessionsRequest {
                    page_size: 2,
                    page_token: token,
                    filter: filter.into(),
                    order_by: order_by.into(),
                    ..Default::default()
                })
                .await
                .expect("page")
                .into_inner();
            names.extend(page.sessions.into_iter().map(|s| s.name));
            if page.next_page_token.is_empty() {
                return names;
            }
            token = page.next_page_token;
        }
    };
    let core = r#"labels.team = "core""#;
    assert_eq!(
        titles(&all_pages(&mut client, core, "display_name").await),
        ["alpha", "bravo", "delta"]
    );
    assert_eq!(
        titles(&all_pages(&mut client, core, "create_time desc").await),
        ["bravo", "alpha", "delta"]
    );
    assert_eq!(
        titles(&all_pages(&mut client, r#"labels.team != "core""#, "display_name desc").await),
        ["echo", "charlie"]
    );
    assert_eq!(
        titles(
            &all_pages(
                &mut client,
                "labels.team:* AND labels.team != web",
                "display_name"
            )
            .await
        ),
        ["alpha", "bravo", "delta"]
    );
    assert_eq!(
        titles(&all_pages(&mut client, "", "last_active_time desc").await),
        ["bravo", "charlie", "echo", "alpha", "delta"]
    );

    // A token is bound to its order.
    let first = client
        .list_sessions(pb::ListSessionsRequest {
            page_size: 2,
            order_by: "display_name".into(),
            ..Default::default()
        })
        .await
        .expect("page")
        .into_inner();
    let err = client
        .list_sessions(pb::ListSessionsRequest {
            page_size: 2,
            page_token: first.next_page_token,
            order_by: "create_time desc".into(),
            ..Default::default()
        })
        .await
        .expect_err("a token of another order");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["page_token"]);

    // Bad filter and order: each field named, both at once, saying what is wrong.
    let err = client
        .list_sessions(pb::ListSessionsRequest {
            filter: r#"title = "x""#.into(),
            order_by: "size desc".into(),
            ..Default::default()
        })
        .await
        .expect_err("bad filter and order_by");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["filter", "order_by"]);
    assert!(
        err.message().contains("`title` cannot be filtered on"),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("cannot sort by `size`"),
        "{}",
        err.message()
    );

    // The same over JSON: query parameters by proto or JSON name.
    let http = reqwest::Client::new();
    let response = http
        .get(format!("{}/v1/sessions", server.url()))
        .query(&[("filter", core), ("orderBy", "display_name desc")])
        .send()
        .await
        .expect("json list");
    assert_eq!(response.status(), 200);
    let page: serde_json::Value = response.json().await.expect("json");
    let names: Vec<String> = page["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .map(|s| s["name"].as_str().expect("name").to_owned())
        .collect();
    assert_eq!(titles(&names), ["delta", "bravo", "alpha"]);
    let response = http
        .get(format!("{}/v1/sessions", server.url()))
        .query(&[("filter", "labels.team ~ core")])
        .send()
        .await
        .expect("json list");
    assert_eq!(response.status(), 400);
    let error: serde_json::Value = response.json().await.expect("json");
    assert_eq!(
        error["details"][1]["fieldViolations"][0]["field"], "filter",
        "{error}"
    );
}

/// `octo sessions rm | list --deleted | restore | purge` against a live server.
#[tokio::test]
async fn cli_moves_to_the_trash_lists_it_restores_and_purges() {
    let server = TestServer::start().await;
    let run = async |args: &[&str]| {
        let output = tokio::time::timeout(
            TIMEOUT,
            common::octo_command()
                .arg("--server")
                .arg(server.url())
                .args(args)
                .output(),
        )
        .await
        .expect("octo finishes in time")
        .expect("octo runs");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let mut client = server.sessions().await;
    let session = create(&mut client, "cli trash").await;
    let id = session.name.trim_start_matches("sessions/").to_owned();

    let (code, out, err) = run(&["sessions", "rm", &id]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains(&format!(
            "Moved session {id} (cli trash) to the trash until"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!("octo sessions restore {id}")),
        "{out}"
    );

    let (code, out, err) = run(&["sessions", "list"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.contains("cli trash"), "hidden: {out}");
    let (code, out, err) = run(&["sessions", "list", "--deleted"]).await;
    assert_eq!(code, Some(0), "{err}");
    let row = out
        .lines()
        .find(|l| l.contains("cli trash"))
        .unwrap_or_else(|| panic!("listed with --deleted: {out}"));
    assert!(row.contains("trash"), "{row}");
    let (code, out, err) = run(&["sessions", "show", &id]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("In the trash since"), "{out}");

    let (code, out, err) = run(&["sessions", "restore", &id]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains(&format!("Restored session {id} (cli trash)")),
        "{out}"
    );
    let (code, out, _) = run(&["sessions", "list", "--filter", "labels.none:*"]).await;
    assert_eq!(code, Some(0));
    assert!(out.contains("No sessions."), "{out}");
    let (code, out, _) = run(&["sessions", "list", "--order-by", "display_name"]).await;
    assert_eq!(code, Some(0));
    assert!(out.contains("cli trash"), "restored: {out}");
    let (code, _, err) = run(&["sessions", "list", "--order-by", "size"]).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("order_by"), "{err}");

    let (code, _, err) = run(&["sessions", "purge", &id]).await;
    assert_eq!(code, Some(1), "only the trash is purged");
    assert!(err.contains("SESSION_NOT_DELETED"), "{err}");
    let (code, _, err) = run(&["sessions", "rm", &id]).await;
    assert_eq!(code, Some(0), "{err}");
    let (code, out, err) = run(&["sessions", "purge", &id]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("for good"), "{out}");
    let (code, _, err) = run(&["sessions", "show", &id]).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("SESSION_NOT_FOUND"), "{err}");
}
