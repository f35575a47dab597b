//! The model asks the user (the built-in `ask_user` tool, called by the mock's `/ask`):
//! the question arrives as `input_requested` with its choices and stays in the snapshot
//! of subscribers that connect later; RespondToInput's answer reaches the model (the
//! mock quotes its tool results); bad answers and unknown requests are refused naming
//! the field; a cancel withdraws the question; turns nobody attends (schedule runs,
//! SendMessageAndWait) are not offered the tool. Over gRPC, JSON/SSE, the `octo` CLI and
//! a cluster of three servers.

use crate::common;

use std::process::Stdio;

use common::{
    ChatClient, SseReader, TIMEOUT, TestServer, collect_until, create, create_in_mode, finished,
    finishes, history, is_kind, message_text, send_text, sent_turn, streamed_text, subscribe, text,
    violated_fields,
};
use octo::pb;
use pb::session_event::Kind;
use tokio::io::AsyncWriteExt;

const ASK_LANGUAGE: &str = "/ask Which language? | Rust | Go";
/// A well-formed id no input request has.
const UNKNOWN_ID: &str = "01890a5d-ac96-774b-bcce-b302099a8057";

fn input_request(events: &[pb::SessionEvent]) -> pb::InputRequest {
    events
        .iter()
        .find_map(|e| match &e.kind {
            Some(Kind::InputRequested(r)) => r.input_request.clone(),
            _ => None,
        })
        .expect("input_requested")
}

fn input_resolved(events: &[pb::SessionEvent]) -> pb::InputResolved {
    events
        .iter()
        .find_map(|e| match &e.kind {
            Some(Kind::InputResolved(r)) => Some(r.clone()),
            _ => None,
        })
        .expect("input_resolved")
}

fn tool_record(events: &[pb::SessionEvent]) -> pb::ToolCallRecord {
    events
        .iter()
        .find_map(|e| match &e.kind {
            Some(Kind::ToolCallFinished(f)) => f.record.clone(),
            _ => None,
        })
        .expect("tool_call_finished")
}

async fn respond(
    chat: &mut ChatClient,
    name: &str,
    answer: &str,
) -> Result<pb::RespondToInputResponse, tonic::Status> {
    chat.respond_to_input(pb::RespondToInputRequest {
        name: name.to_owned(),
        answer: answer.to_owned(),
    })
    .await
    .map(tonic::Response::into_inner)
}

/// Sends `message` and reads the watcher until the turn asks (or ends).
async fn ask(
    chat: &mut ChatClient,
    watcher: &mut tonic::Streaming<pb::SessionEvent>,
    session: &str,
    message: &str,
) -> (pb::Turn, Vec<pb::SessionEvent>) {
    let turn = sent_turn(
        &send_text(chat, session, message, pb::BusyPolicy::Enqueue)
            .await
            .expect("send"),
    );
    let name = turn.name.clone();
    let events = collect_until(watcher, move |e| {
        finishes(&name)(e) || is_kind("input_requested")(e)
    })
    .await;
    (turn, events)
}

/// The text of the newest assistant message of a session.
async fn last_reply(chat: &mut ChatClient, session: &str) -> String {
    history(chat, session)
        .await
        .iter()
        .find(|m| m.role() == pb::Role::Assistant)
        .map(message_text)
        .expect("an assistant message")
}

async fn offered_tools(server: &TestServer, session: &str) -> Vec<(String, pb::ToolPermission)> {
    pb::mcp_server_service_client::McpServerServiceClient::new(server.channel().await)
        .list_tools(pb::ListToolsRequest {
            mcp_server: String::new(),
            session: session.to_owned(),
        })
        .await
        .expect("ListTools")
        .into_inner()
        .tools
        .into_iter()
        .map(|t| {
            let permission = t.permission();
            (t.name, permission)
        })
        .collect()
}

fn has_ask_user(tools: &[(String, pb::ToolPermission)]) -> bool {
    tools.iter().any(|(name, _)| name == "ask_user")
}

#[tokio::test]
async fn a_question_waits_in_the_snapshot_and_its_answer_reaches_the_model() {
    let server = TestServer::start().await;
    // ASK mode (the default): asking is never confirmed.
    let session = create(&mut server.sessions().await, "ask").await;
    let mut chat = server.chat().await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let (turn, events) = ask(&mut chat, &mut watcher, &session.name, ASK_LANGUAGE).await;
    assert!(
        is_kind("input_requested")(events.last().expect("events")),
        "{:?}",
        common::kinds(&events)
    );
    assert!(!common::kinds(&events).contains(&"confirmation_requested"));
    let request = input_request(&events);
    assert!(
        request
            .name
            .starts_with(&format!("{}/inputRequests/", session.name)),
        "{}",
        request.name
    );
    assert_eq!(request.turn, turn.name);
    assert_eq!(request.question, "Which language?");
    assert_eq!(request.choices, ["Rust", "Go"]);
    assert!(!request.allow_free_text);
    assert!(request.create_time.is_some());
    let call = events
        .iter()
        .find_map(|e| match &e.kind {
            Some(Kind::ToolCallStarted(s)) => s.tool_call.clone(),
            _ => None,
        })
        .expect("tool_call_started");
    assert_eq!(call.tool, "ask_user");
    assert_eq!(request.tool_call_id, call.id);

    // A client that connects now (a reconnect) finds it in its snapshot.
    drop(watcher);
    let mut late = subscribe(&mut chat, &session.name, 0).await;
    let first = late.message().await.expect("stream").expect("snapshot");
    let Some(Kind::Snapshot(snapshot)) = first.kind else {
        panic!("snapshot first");
    };
    assert_eq!(
        snapshot.pending_input_requests,
        std::slice::from_ref(&request)
    );
    assert!(snapshot.pending_confirmations.is_empty());
    assert_eq!(
        snapshot.session.expect("session").status(),
        pb::SessionStatus::AwaitingInput
    );
    let got = server
        .sessions()
        .await
        .get_session(pb::GetSessionRequest {
            name: session.name.clone(),
        })
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got.status(), pb::SessionStatus::AwaitingInput);

    // Answers that do not fit are refused, naming the field; the question still waits.
    let not_a_choice = respond(&mut chat, &request.name, "Python")
        .await
        .expect_err("not a choice");
    assert_eq!(not_a_choice.code(), tonic::Code::InvalidArgument);
    assert_eq!(violated_fields(&not_a_choice), ["answer"]);
    assert!(
        not_a_choice.message().contains("\"Rust\", \"Go\""),
        "{}",
        not_a_choice.message()
    );
    let empty = respond(&mut chat, &request.name, "  ")
        .await
        .expect_err("empty");
    assert_eq!(empty.code(), tonic::Code::InvalidArgument);
    assert_eq!(violated_fields(&empty), ["answer"]);
    let both = respond(&mut chat, "sessions/x/confirmations/y", "")
        .await
        .expect_err("bad name and empty answer");
    assert_eq!(violated_fields(&both), ["name", "answer"]);
    let unknown = respond(
        &mut chat,
        &format!("{}/inputRequests/{UNKNOWN_ID}", session.name),
        "Go",
    )
    .await
    .expect_err("unknown");
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    assert_eq!(common::reason(&unknown), "INPUT_REQUEST_NOT_FOUND");

    let answered = respond(&mut chat, &request.name, " Go ")
        .await
        .expect("answer");
    assert_eq!(answered.input_request.expect("request").name, request.name);
    let events = collect_until(&mut late, finishes(&turn.name)).await;
    let resolved = input_resolved(&events);
    assert_eq!(resolved.input_request, request.name);
    assert_eq!(resolved.answer, "Go");
    let record = tool_record(&events);
    assert_eq!(record.status(), pb::ToolCallStatus::Succeeded);
    assert_eq!(record.result.expect("result").output, "Go");
    assert_eq!(
        streamed_text(&events).trim_end(),
        "Tool ask_user returned: Go"
    );
    assert_eq!(
        finished(events.last().expect("events"))
            .expect("turn")
            .status(),
        pb::TurnStatus::Succeeded
    );

    // Answered: a second answer finds nothing.
    let again = respond(&mut chat, &request.name, "Rust")
        .await
        .expect_err("already answered");
    assert_eq!(again.code(), tonic::Code::NotFound);
}

#[tokio::test]
async fn questions_over_json_and_sse() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let created: serde_json::Value = http
        .post(format!("{}/v1/sessions", server.url()))
        .json(&serde_json::json!({"displayName": "json"}))
        .send()
        .await
        .expect("create")
        .json()
        .await
        .expect("json");
    let session = created["name"].as_str().expect("name").to_owned();
    let events = http
        .get(format!("{}/v1/{session}/events", server.url()))
        .send()
        .await
        .expect("events");
    let mut sse = SseReader::new(events);
    assert!(sse.next().await.expect("snapshot").json()["snapshot"].is_object());

    let send = |text: &str| {
        http.post(format!("{}/v1/{session}/messages", server.url()))
            .json(&serde_json::json!({"parts": [{"text": text}]}))
            .send()
    };
    let sent = send("/ask Pick a colour | red | blue").await.expect("send");
    assert_eq!(sent.status(), 200);
    let request = loop {
        let event = sse.next().await.expect("an event").json();
        if event["inputRequested"].is_object() {
            break event["inputRequested"]["inputRequest"].clone();
        }
    };
    assert_eq!(request["question"], "Pick a colour");
    assert_eq!(request["choices"], serde_json::json!(["red", "blue"]));
    let name = request["name"].as_str().expect("name").to_owned();

    let respond = |answer: &str| {
        http.post(format!("{}/v1/{name}:respond", server.url()))
            .json(&serde_json::json!({ "answer": answer }))
            .send()
    };
    let refused = respond("green").await.expect("respond");
    assert_eq!(refused.status(), 400);
    let body: serde_json::Value = refused.json().await.expect("json");
    let violations = body["details"]
        .as_array()
        .expect("details")
        .iter()
        .find_map(|d| d["fieldViolations"].as_array())
        .expect("field violations");
    assert_eq!(violations[0]["field"], "answer");
    assert!(
        violations[0]["description"]
            .as_str()
            .is_some_and(|d| d.contains("\"red\", \"blue\"")),
        "{body}"
    );
    let missing = http
        .post(format!(
            "{}/v1/{session}/inputRequests/{UNKNOWN_ID}:respond",
            server.url()
        ))
        .json(&serde_json::json!({"answer": "red"}))
        .send()
        .await
        .expect("respond");
    assert_eq!(missing.status(), 404);

    let answered = respond("blue").await.expect("respond");
    assert_eq!(answered.status(), 200);
    let body: serde_json::Value = answered.json().await.expect("json");
    assert_eq!(body["inputRequest"]["name"], name.as_str());
    let mut resolved = None;
    let mut reply = String::new();
    loop {
        let event = sse.next().await.expect("an event").json();
        if event["inputResolved"].is_object() {
            resolved = Some(event["inputResolved"].clone());
        }
        if let Some(text) = event["textDelta"]["text"].as_str() {
            reply.push_str(text);
        }
        if event["turnFinished"].is_object() {
            assert_eq!(
                event["turnFinished"]["turn"]["status"],
                "TURN_STATUS_SUCCEEDED"
            );
            break;
        }
    }
    let resolved = resolved.expect("input_resolved");
    assert_eq!(resolved["inputRequest"], name.as_str());
    assert_eq!(resolved["answer"], "blue");
    assert_eq!(reply.trim_end(), "Tool ask_user returned: blue");
}

#[tokio::test]
async fn a_cancel_withdraws_the_question() {
    let server = TestServer::start().await;
    let session = create(&mut server.sessions().await, "cancel").await;
    let mut chat = server.chat().await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let (turn, events) = ask(&mut chat, &mut watcher, &session.name, "/ask Your name?").await;
    let request = input_request(&events);
    assert!(request.choices.is_empty());
    assert!(request.allow_free_text, "an open question takes any text");

    chat.cancel_turn(pb::CancelTurnRequest {
        name: turn.name.clone(),
    })
    .await
    .expect("cancel");
    let events = collect_until(&mut watcher, finishes(&turn.name)).await;
    let resolved = input_resolved(&events);
    assert_eq!(resolved.input_request, request.name);
    assert_eq!(resolved.answer, "", "withdrawn, not answered");
    assert_eq!(tool_record(&events).status(), pb::ToolCallStatus::Cancelled);
    assert_eq!(
        finished(events.last().expect("events"))
            .expect("turn")
            .status(),
        pb::TurnStatus::Cancelled
    );
    let kinds = common::kinds(&events);
    assert_eq!(
        kinds.iter().filter(|k| **k == "input_resolved").count(),
        1,
        "{kinds:?}"
    );

    let late = respond(&mut chat, &request.name, "Ada")
        .await
        .expect_err("withdrawn");
    assert_eq!(late.code(), tonic::Code::NotFound);
    let mut again = subscribe(&mut chat, &session.name, 0).await;
    let Some(Kind::Snapshot(snapshot)) = again.message().await.expect("stream").expect("e").kind
    else {
        panic!("snapshot first");
    };
    assert!(snapshot.pending_input_requests.is_empty());
}

#[tokio::test]
async fn read_only_sessions_are_offered_the_question_tool() {
    let server = TestServer::start().await;
    let session = create_in_mode(
        &mut server.sessions().await,
        "ro",
        pb::PermissionMode::ReadOnly,
    )
    .await;
    let tools = offered_tools(&server, &session.name).await;
    assert!(
        tools.contains(&("ask_user".to_owned(), pb::ToolPermission::Read)),
        "{tools:?}"
    );
    assert!(!tools.iter().any(|(name, _)| name == "shell"), "{tools:?}");

    let mut chat = server.chat().await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let (turn, events) = ask(&mut chat, &mut watcher, &session.name, ASK_LANGUAGE).await;
    let request = input_request(&events);
    respond(&mut chat, &request.name, "Rust")
        .await
        .expect("answer");
    let events = collect_until(&mut watcher, finishes(&turn.name)).await;
    assert_eq!(
        streamed_text(&events).trim_end(),
        "Tool ask_user returned: Rust"
    );
}

/// Runs `schedule` now and returns its finished run.
async fn run_schedule(server: &TestServer, schedule: pb::Schedule) -> pb::ScheduleRun {
    let mut schedules = server.schedules().await;
    let created = schedules
        .create_schedule(pb::CreateScheduleRequest {
            schedule: Some(schedule),
        })
        .await
        .expect("create schedule")
        .into_inner();
    schedules
        .run_schedule(pb::RunScheduleRequest {
            name: created.name.clone(),
        })
        .await
        .expect("run now");
    common::eventually("the schedule run to succeed", async || {
        let runs = schedules
            .list_schedule_runs(pb::ListScheduleRunsRequest {
                parent: created.name.clone(),
                ..Default::default()
            })
            .await
            .expect("runs")
            .into_inner()
            .runs;
        runs.into_iter()
            .find(|r| r.status() == pb::RunStatus::Succeeded)
    })
    .await
}

#[tokio::test]
async fn turns_nobody_attends_are_not_offered_the_question_tool() {
    let server = TestServer::start().await;
    let mut chat = server.chat().await;
    // The control: a session someone uses is offered it (the mock's `/tools` lists what
    // the request offers).
    let attended = create(&mut server.sessions().await, "attended").await;
    assert!(has_ask_user(&offered_tools(&server, &attended.name).await));
    let mut watcher = subscribe(&mut chat, &attended.name, 0).await;
    let (turn, events) = ask(&mut chat, &mut watcher, &attended.name, "/tools").await;
    assert!(finishes(&turn.name)(events.last().expect("events")));
    let offered = last_reply(&mut chat, &attended.name).await;
    assert!(
        offered.starts_with("Tools: read_file") && offered.contains("ask_user"),
        "{offered}"
    );

    // A schedule's run in a new session (source SCHEDULE).
    let run = run_schedule(
        &server,
        pb::Schedule {
            prompt: "/tools".into(),
            cron: "0 0 1 1 *".into(),
            ..Default::default()
        },
    )
    .await;
    let offered = last_reply(&mut chat, &run.session).await;
    assert!(offered.starts_with("Tools: read_file"), "{offered}");
    assert!(!offered.contains("ask_user"), "{offered}");
    assert!(!has_ask_user(&offered_tools(&server, &run.session).await));

    // A schedule's run in an existing session someone uses: that turn runs unattended.
    let run = run_schedule(
        &server,
        pb::Schedule {
            prompt: "/tools".into(),
            cron: "0 0 1 1 *".into(),
            target_session: attended.name.clone(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(run.session, attended.name);
    let offered = last_reply(&mut chat, &attended.name).await;
    assert!(offered.starts_with("Tools: read_file"), "{offered}");
    assert!(!offered.contains("ask_user"), "{offered}");

    // SendMessageAndWait: its caller cannot answer while it waits.
    let wait = |text: &str| pb::SendMessageAndWaitRequest {
        session: attended.name.clone(),
        parts: vec![common::text(text)],
        ..Default::default()
    };
    let answered = chat
        .send_message_and_wait(wait("/tools"))
        .await
        .expect("send and wait")
        .into_inner();
    let offered = message_text(answered.replies.last().expect("reply"));
    assert!(!offered.contains("ask_user"), "{offered}");
    // A model that asks anyway is told nobody can answer, and the turn goes on.
    let answered = chat
        .send_message_and_wait(wait(ASK_LANGUAGE))
        .await
        .expect("send and wait")
        .into_inner();
    assert_eq!(
        answered.turn.expect("turn").status(),
        pb::TurnStatus::Succeeded
    );
    let reply = message_text(answered.replies.last().expect("reply"));
    assert!(
        reply.starts_with("Tool ask_user returned: nobody can answer"),
        "{reply}"
    );
}

/// Runs `octo --server URL args...` with `stdin` (closed when `None`).
async fn octo(
    server: &TestServer,
    args: &[&str],
    stdin: Option<&str>,
) -> (Option<i32>, String, String) {
    let mut command = common::octo_command();
    command
        .arg("--server")
        .arg(server.url())
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("octo runs");
    if let Some(text) = stdin {
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(text.as_bytes()).await.expect("write stdin");
        drop(input);
    }
    let output = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .expect("octo finishes in time")
        .expect("octo output");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn octo_chat_asks_at_the_terminal_and_octo_run_is_not_asked() {
    let server = TestServer::start().await;
    // A number out of range is asked again; the next line answers.
    let (code, stdout, stderr) =
        octo(&server, &["chat", "--new", ASK_LANGUAGE], Some("5\n2\n")).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(
            "? Which language?\n  1) Rust\n  2) Go\nAnswer [1-2]: 5\n\
             Please type a number from 1 to 2.\n\
             ? Which language?\n  1) Rust\n  2) Go\nAnswer [1-2]: 2\n"
        ),
        "{stderr}"
    );
    assert!(stdout.contains("⚙ ask_user "), "{stdout}");
    assert!(stdout.contains("✓ ask_user"), "{stdout}");
    assert!(
        stdout.contains("Tool ask_user returned: Go"),
        "the answer reached the model: {stdout}"
    );

    // Nobody at stdin: the question cannot be answered, so the turn is cancelled.
    let (code, stdout, stderr) = octo(&server, &["chat", "--new", "/ask Your name?"], None).await;
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("? Your name?\nAnswer: \nno answer (stdin is closed): cancelling the turn"),
        "{stderr}"
    );
    assert!(stderr.contains("[cancelled"), "{stderr}");
    assert!(stdout.contains("✗ ask_user cancelled"), "{stdout}");

    // `octo run` answers nothing: the model is not offered the tool and goes on.
    let (code, stdout, stderr) = octo(&server, &["run", ASK_LANGUAGE], None).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("Tool ask_user returned: nobody can answer"),
        "{stdout}"
    );
}

/// Three servers on one Postgres: A takes the message, B owns the session, C answers.
#[tokio::test]
async fn questions_are_answered_through_a_server_that_does_not_own_the_session() {
    let servers = crate::cluster::cluster(|_| {}).await;
    let (a, b, c) = (&servers[0], &servers[1], &servers[2]);
    let session = create(&mut a.sessions().await, "cluster").await;
    let mut on_b = subscribe(&mut b.chat().await, &session.name, 0).await;
    let sent = send_text(
        &mut a.chat().await,
        &session.name,
        ASK_LANGUAGE,
        pb::BusyPolicy::Enqueue,
    )
    .await
    .expect("send");
    let turn = sent_turn(&sent);
    let events = collect_until(&mut on_b, is_kind("input_requested")).await;
    let request = input_request(&events);

    // A subscriber on C gets the owner's snapshot, with the question.
    let mut c_chat = c.chat().await;
    let mut on_c = subscribe(&mut c_chat, &session.name, 0).await;
    let Some(Kind::Snapshot(snapshot)) = on_c.message().await.expect("stream").expect("e").kind
    else {
        panic!("snapshot first");
    };
    assert_eq!(
        snapshot.pending_input_requests,
        std::slice::from_ref(&request)
    );

    // The owner's validation and NOT_FOUND, passed through C.
    let refused = respond(&mut c_chat, &request.name, "Python")
        .await
        .expect_err("not a choice");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert_eq!(violated_fields(&refused), ["answer"]);
    let unknown = respond(
        &mut c_chat,
        &format!("{}/inputRequests/{UNKNOWN_ID}", session.name),
        "Rust",
    )
    .await
    .expect_err("unknown");
    assert_eq!(common::reason(&unknown), "INPUT_REQUEST_NOT_FOUND");

    let answered = respond(&mut c_chat, &request.name, "Rust")
        .await
        .expect("answer through a non-owner");
    assert_eq!(answered.input_request.expect("request"), request);
    let events = collect_until(&mut on_b, finishes(&turn.name)).await;
    assert_eq!(input_resolved(&events).answer, "Rust");
    assert_eq!(
        streamed_text(&events).trim_end(),
        "Tool ask_user returned: Rust"
    );

    // SendMessageAndWait on C, forwarded to B, still runs unattended.
    let answered = c_chat
        .send_message_and_wait(pb::SendMessageAndWaitRequest {
            session: session.name.clone(),
            parts: vec![text("/tools")],
            ..Default::default()
        })
        .await
        .expect("send and wait through a non-owner")
        .into_inner();
    let offered = message_text(answered.replies.last().expect("reply"));
    assert!(offered.starts_with("Tools: read_file"), "{offered}");
    assert!(!offered.contains("ask_user"), "{offered}");
}
