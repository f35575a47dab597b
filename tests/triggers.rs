//! Inbound triggers end to end: calls to `POST /hooks/{trigger}` signed by an
//! independent implementation (Python's `hmac`/`hashlib`, run as a child process), the
//! turn they start (source WEBHOOK, the rendered prompt reaching the mock model), every
//! way a call is refused (each a clear 4xx with nothing started), the GitHub scheme, the
//! delivery log, TriggerService over gRPC and JSON, and `octo triggers`.

use crate::common;

use std::process::Stdio;

use common::{TIMEOUT, TestServer, violated_fields};
use octo::pb::{self, trigger_service_client::TriggerServiceClient};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt as _;
use tonic::{Code, transport::Channel};

type Triggers = TriggerServiceClient<Channel>;

/// A Standard Webhooks secret: `whsec_` + base64 of 32 bytes.
const SECRET: &str = "whsec_dGhpcyBpcyBhIHRlc3Qga2V5IG9mIDMyIGJ5dGVzIQ==";
const OTHER_SECRET: &str = "whsec_YW5vdGhlciB0ZXN0IGtleSwgYWxzbyAzMiBieXRlcw==";
const GITHUB_SECRET: &str = "it-is-a-github-secret-of-some-length";

/// Signs with Python's standard library: Standard Webhooks (`sw SECRET ID TS`) or
/// GitHub (`gh SECRET`); the body comes on stdin.
const SIGNER: &str = r#"
import base64, hashlib, hmac, sys
body = sys.stdin.buffer.read()
if sys.argv[1] == "sw":
    secret, msg_id, ts = sys.argv[2:5]
    key = base64.b64decode(secret.split("_", 1)[1])
    mac = hmac.new(key, msg_id.encode() + b"." + ts.encode() + b"." + body, hashlib.sha256)
    print("v1," + base64.b64encode(mac.digest()).decode())
else:
    print("sha256=" + hmac.new(sys.argv[2].encode(), body, hashlib.sha256).hexdigest())
"#;

async fn python_sign(args: &[&str], body: &[u8]) -> String {
    let mut child = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(SIGNER)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("python3 runs");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(body).await.expect("write body");
    drop(stdin);
    let output = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .expect("python3 in time")
        .expect("python3 output");
    assert!(output.status.success(), "python3 failed");
    String::from_utf8(output.stdout)
        .expect("utf8")
        .trim()
        .to_owned()
}

fn now() -> i64 {
    octo::domain::Timestamp::now().to_unix().0
}

/// A Standard Webhooks call: its headers, signed by Python with `secret`.
async fn standard_headers(secret: &str, id: &str, ts: i64, body: &[u8]) -> Vec<(String, String)> {
    let signature = python_sign(&["sw", secret, id, &ts.to_string()], body).await;
    vec![
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), ts.to_string()),
        ("webhook-signature".into(), signature),
    ]
}

struct Answer {
    status: u16,
    json: Value,
}

async fn call(
    server: &TestServer,
    trigger: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Answer {
    let mut request = reqwest::Client::new()
        .post(format!("{}/hooks/{trigger}", server.url()))
        .header("content-type", "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = tokio::time::timeout(TIMEOUT, request.send())
        .await
        .expect("in time")
        .expect("answered");
    let status = response.status().as_u16();
    let json = response.json().await.unwrap_or(Value::Null);
    Answer { status, json }
}

async fn triggers(server: &TestServer) -> Triggers {
    TriggerServiceClient::new(server.channel().await)
}

async fn create_trigger(client: &mut Triggers, id: &str, trigger: pb::Trigger) -> pb::Trigger {
    client
        .create_trigger(pb::CreateTriggerRequest {
            trigger: Some(trigger),
            trigger_id: id.into(),
        })
        .await
        .expect("create trigger")
        .into_inner()
}

async fn deliveries(client: &mut Triggers, id: &str) -> Vec<pb::TriggerDelivery> {
    client
        .list_trigger_deliveries(pb::ListTriggerDeliveriesRequest {
            parent: format!("triggers/{id}"),
            ..Default::default()
        })
        .await
        .expect("deliveries")
        .into_inner()
        .trigger_deliveries
}

/// Every session on the server, the trash included.
async fn all_sessions(server: &TestServer) -> Vec<pb::Session> {
    server
        .sessions()
        .await
        .list_sessions(pb::ListSessionsRequest {
            page_size: 500,
            show_deleted: true,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner()
        .sessions
}

/// The texts of a session's messages once its turn `turn` has ended.
async fn texts_after(server: &TestServer, turn: &str) -> Vec<String> {
    let mut chat = server.chat().await;
    common::eventually("the turn ends", async || {
        let t = common::get_turn(&mut chat, turn).await;
        (t.status == pb::TurnStatus::Succeeded as i32).then_some(())
    })
    .await;
    let session = turn.split("/turns/").next().expect("session");
    let mut texts: Vec<String> = common::history(&mut chat, session)
        .await
        .iter()
        .map(common::message_text)
        .collect();
    texts.reverse();
    texts
}

fn issue_trigger() -> pb::Trigger {
    pb::Trigger {
        display_name: "Issues".into(),
        secret: SECRET.into(),
        prompt_template: "New issue: {{ payload.issue.title }} ({{event}}) {{payload.missing}}!"
            .into(),
        ..Default::default()
    }
}

fn issue_body(title: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"type": "issue.opened", "issue": {"title": title}})).expect("json")
}

#[tokio::test]
async fn a_signed_call_starts_a_turn_with_the_rendered_prompt() {
    let server = TestServer::start().await;
    let mut client = triggers(&server).await;
    let created = create_trigger(&mut client, "issues", issue_trigger()).await;
    assert_eq!(created.url_path, "/hooks/issues");
    assert!(
        created.secret.contains("****") && created.secret != SECRET,
        "{}",
        created.secret
    );

    let body = issue_body("Crash on start");
    let headers = standard_headers(SECRET, "msg_first", now(), &body).await;
    let answer = call(&server, "issues", &headers, body).await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    assert_eq!(answer.json["status"], "TRIGGER_DELIVERY_STATUS_STARTED");
    assert_eq!(answer.json["messageId"], "msg_first");
    let session_name = answer.json["session"].as_str().expect("session").to_owned();
    let turn = answer.json["turn"].as_str().expect("turn").to_owned();
    assert!(turn.starts_with(&session_name), "{turn}");

    let session = server
        .sessions()
        .await
        .get_session(pb::GetSessionRequest {
            name: session_name.clone(),
        })
        .await
        .expect("session")
        .into_inner();
    assert_eq!(session.source, pb::SessionSource::Webhook as i32);
    assert_eq!(
        session.permission_mode,
        pb::PermissionMode::ReadOnly as i32,
        "no profile: READ_ONLY"
    );
    assert_eq!(
        session.labels.get("trigger").map(String::as_str),
        Some("issues")
    );
    let texts = texts_after(&server, &turn).await;
    assert_eq!(
        texts,
        [
            "New issue: Crash on start (issue.opened) !",
            "Echo: New issue: Crash on start (issue.opened) !"
        ],
        "the rendered prompt reached the model"
    );

    let log = deliveries(&mut client, "issues").await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].status, pb::TriggerDeliveryStatus::Started as i32);
    assert_eq!(log[0].session, session_name);
    assert_eq!(log[0].turn, turn);
    assert_eq!(log[0].event, "issue.opened");
    assert_eq!(log[0].attempts, 1);
    assert!(log[0].name.starts_with("triggers/issues/deliveries/"));

    // With a profile: its settings, recorded on the session.
    let mut profiles =
        pb::profile_service_client::ProfileServiceClient::new(server.channel().await);
    profiles
        .create_profile(pb::CreateProfileRequest {
            profile: Some(pb::Profile {
                system_prompt: "You triage issues.".into(),
                permission_mode: pb::PermissionMode::AutoApprove as i32,
                ..Default::default()
            }),
            profile_id: "triage".into(),
        })
        .await
        .expect("profile");
    create_trigger(
        &mut client,
        "triaged",
        pb::Trigger {
            profile: "profiles/triage".into(),
            prompt_template: "/context".into(),
            ..issue_trigger()
        },
    )
    .await;
    let body = issue_body("x");
    let headers = standard_headers(SECRET, "msg_p", now(), &body).await;
    let answer = call(&server, "triaged", &headers, body).await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    let session = server
        .sessions()
        .await
        .get_session(pb::GetSessionRequest {
            name: answer.json["session"].as_str().expect("session").into(),
        })
        .await
        .expect("session")
        .into_inner();
    assert_eq!(session.profile, "profiles/triage");
    assert_eq!(
        session.permission_mode,
        pb::PermissionMode::AutoApprove as i32
    );
    let texts = texts_after(&server, answer.json["turn"].as_str().expect("turn")).await;
    assert!(texts[1].contains("system: You triage issues."), "{texts:?}");
}

#[tokio::test]
async fn refused_calls_get_a_clear_4xx_and_start_nothing() {
    let server = TestServer::start().await;
    let mut client = triggers(&server).await;
    create_trigger(&mut client, "issues", issue_trigger()).await;
    create_trigger(
        &mut client,
        "off",
        pb::Trigger {
            disabled: true,
            ..issue_trigger()
        },
    )
    .await;
    let body = issue_body("t");

    // A wrong signature, an unknown trigger and a disabled one read the same.
    let wrong = standard_headers(OTHER_SECRET, "msg_1", now(), &body).await;
    let wrong = call(&server, "issues", &wrong, body.clone()).await;
    let good = standard_headers(SECRET, "msg_1", now(), &body).await;
    let unknown = call(&server, "nope", &good, body.clone()).await;
    let malformed_id = call(&server, "Not..An/Id", &good, body.clone()).await;
    let disabled = call(&server, "off", &good, body.clone()).await;
    for answer in [&wrong, &unknown, &malformed_id, &disabled] {
        assert_eq!(answer.status, 401, "{}", answer.json);
        assert_eq!(answer.json["message"], wrong.json["message"]);
    }
    assert!(
        wrong.json["message"]
            .as_str()
            .is_some_and(|m| m.contains("signature does not verify")),
        "{}",
        wrong.json
    );

    // A stale or future timestamp, correctly signed (a minute past the 5-minute
    // tolerance, so a slow signer cannot bring it back in).
    for ts in [now() - 360, now() + 360] {
        let headers = standard_headers(SECRET, "msg_2", ts, &body).await;
        let answer = call(&server, "issues", &headers, body.clone()).await;
        assert_eq!(answer.status, 400, "{}", answer.json);
        assert!(
            answer.json["message"]
                .as_str()
                .is_some_and(|m| m.contains("webhook-timestamp"))
        );
    }
    // No signature at all; a signature without its id.
    let none = call(&server, "issues", &[], body.clone()).await;
    assert_eq!(none.status, 400, "{}", none.json);
    let without_id: Vec<_> = good
        .iter()
        .filter(|(n, _)| n != "webhook-id")
        .cloned()
        .collect();
    assert_eq!(
        call(&server, "issues", &without_id, body.clone())
            .await
            .status,
        400
    );

    // Over 1 MiB, correctly signed: refused before anything is looked at.
    let mut big = br#"{"pad": ""#.to_vec();
    big.resize(1024 * 1024 + 16, b'x');
    big.extend_from_slice(br#""}"#);
    let headers = standard_headers(SECRET, "msg_big", now(), &big).await;
    let answer = call(&server, "issues", &headers, big).await;
    assert_eq!(answer.status, 413, "{}", answer.json);

    // Verified but not JSON: recorded as failed, nothing started.
    let text = b"not json".to_vec();
    let headers = standard_headers(SECRET, "msg_text", now(), &text).await;
    let answer = call(&server, "issues", &headers, text).await;
    assert_eq!(answer.status, 400, "{}", answer.json);

    assert!(
        all_sessions(&server).await.is_empty(),
        "nothing was started"
    );
    let log = deliveries(&mut client, "issues").await;
    assert_eq!(log.len(), 1, "only verified calls are recorded: {log:?}");
    assert_eq!(log[0].status, pb::TriggerDeliveryStatus::Failed as i32);
    assert!(log[0].error.contains("not JSON"), "{}", log[0].error);

    // A replay of a call that started a turn: 409, and one session only.
    let first = call(&server, "issues", &good, body.clone()).await;
    assert_eq!(first.status, 202, "{}", first.json);
    let replay = call(&server, "issues", &good, body.clone()).await;
    assert_eq!(replay.status, 409, "{}", replay.json);
    let earlier = first.json["name"].as_str().expect("name");
    assert!(
        replay.json["message"]
            .as_str()
            .is_some_and(|m| m.contains(earlier)),
        "the refusal names the earlier delivery: {}",
        replay.json
    );
    assert_eq!(all_sessions(&server).await.len(), 1);
    // A failed call may be sent again (a sender's retry, the same signed body): it is
    // handled again and counted, not refused as a replay.
    let text = b"not json".to_vec();
    let headers = standard_headers(SECRET, "msg_text", now(), &text).await;
    assert_eq!(call(&server, "issues", &headers, text).await.status, 400);
    let log = deliveries(&mut client, "issues").await;
    let failed = log
        .iter()
        .find(|d| d.message_id == "msg_text")
        .expect("failed");
    assert_eq!(failed.attempts, 2);
    assert_eq!(
        all_sessions(&server).await.len(),
        1,
        "still nothing else started"
    );
}

#[tokio::test]
async fn github_signatures_into_a_fixed_session() {
    let server = TestServer::start().await;
    let mut client = triggers(&server).await;
    let target = common::create(&mut server.sessions().await, "inbox").await;
    create_trigger(
        &mut client,
        "gh",
        pb::Trigger {
            signature_scheme: pb::SignatureScheme::Github as i32,
            secret: GITHUB_SECRET.into(),
            session: target.name.clone(),
            prompt_template: "{{event}}: {{payload.action}} #{{payload.issue.number}}".into(),
            ..Default::default()
        },
    )
    .await;
    let body =
        serde_json::to_vec(&json!({"action": "opened", "issue": {"number": 7}})).expect("json");
    let signature = python_sign(&["gh", GITHUB_SECRET], &body).await;
    let headers = vec![
        ("x-hub-signature-256".to_owned(), signature.clone()),
        ("x-github-event".to_owned(), "issues".to_owned()),
        (
            "x-github-delivery".to_owned(),
            "72d3162e-cc78-11e3-81ab-4c9367dc0958".to_owned(),
        ),
    ];
    let answer = call(&server, "gh", &headers, body.clone()).await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    assert_eq!(answer.json["session"], target.name.as_str());
    let texts = texts_after(&server, answer.json["turn"].as_str().expect("turn")).await;
    assert_eq!(texts, ["issues: opened #7", "Echo: issues: opened #7"]);

    // The same signed body again, even under another delivery id, is a replay.
    let mut again = headers.clone();
    again[2].1 = "another-delivery".into();
    assert_eq!(call(&server, "gh", &again, body.clone()).await.status, 409);
    // A wrong signature, and a Standard Webhooks call to a GitHub trigger.
    let wrong = python_sign(&["gh", "not-the-secret-at-all-0123"], &body).await;
    let wrong = vec![("x-hub-signature-256".to_owned(), wrong)];
    assert_eq!(call(&server, "gh", &wrong, body.clone()).await.status, 401);
    let standard = standard_headers(SECRET, "msg_x", now(), &body).await;
    assert_eq!(
        call(&server, "gh", &standard, body.clone()).await.status,
        401
    );

    let history = common::history(&mut server.chat().await, &target.name).await;
    assert_eq!(history.len(), 2, "one turn in the fixed session");
    let log = deliveries(&mut client, "gh").await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].message_id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    assert_eq!(log[0].event, "issues");
}

#[tokio::test]
async fn triggers_are_managed_over_grpc_and_json_with_the_secret_masked() {
    let server = TestServer::start().await;
    let mut client = triggers(&server).await;
    let bad = client
        .create_trigger(pb::CreateTriggerRequest {
            trigger: Some(pb::Trigger {
                secret: "not-a-whsec".into(),
                profile: "profiles/nope".into(),
                prompt_template: "{{ env.HOME }}".into(),
                ..Default::default()
            }),
            trigger_id: "bad".into(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(bad.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&bad),
        [
            "trigger.prompt_template",
            "trigger.secret",
            "trigger.profile"
        ]
    );
    let both = client
        .create_trigger(pb::CreateTriggerRequest {
            trigger: Some(pb::Trigger {
                secret: SECRET.into(),
                profile: "profiles/p".into(),
                session: "sessions/0190b5b4-0000-7000-8000-000000000000".into(),
                ..Default::default()
            }),
            trigger_id: "both".into(),
        })
        .await
        .expect_err("both targets");
    // Both targets, and each names nothing that exists: every violation at once.
    assert_eq!(
        violated_fields(&both),
        ["trigger.profile", "trigger.profile", "trigger.session"]
    );

    let created = create_trigger(&mut client, "hook", issue_trigger()).await;
    // A masked secret sent back keeps the stored one; the trigger still verifies it.
    let updated = client
        .update_trigger(pb::UpdateTriggerRequest {
            trigger: Some(pb::Trigger {
                display_name: "renamed".into(),
                ..created.clone()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["*".into()],
            }),
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(updated.display_name, "renamed");
    assert_eq!(updated.secret, created.secret);
    let stale = client
        .update_trigger(pb::UpdateTriggerRequest {
            trigger: Some(created.clone()),
            update_mask: None,
        })
        .await
        .expect_err("stale etag");
    assert_eq!(stale.code(), Code::Aborted);

    let http = reqwest::Client::new();
    let base = server.url();
    let shown: Value = http
        .get(format!("{base}/v1/triggers/hook"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(shown["urlPath"], "/hooks/hook");
    assert!(shown["secret"].as_str().is_some_and(|s| s.contains("****")));
    let body = issue_body("json");
    let headers = standard_headers(SECRET, "msg_json", now(), &body).await;
    assert_eq!(call(&server, "hook", &headers, body).await.status, 202);
    let log: Value = http
        .get(format!("{base}/v1/triggers/hook/deliveries"))
        .send()
        .await
        .expect("deliveries")
        .json()
        .await
        .expect("json");
    assert_eq!(
        log["triggerDeliveries"][0]["status"],
        "TRIGGER_DELIVERY_STATUS_STARTED"
    );
    // The hook needs no token, the API does.
    let listed = http
        .get(format!("{base}/v1/triggers"))
        .send()
        .await
        .expect("list");
    assert_eq!(listed.status(), 200);
    let deleted = http
        .delete(format!("{base}/v1/triggers/hook"))
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 200);
    let body = issue_body("after");
    let headers = standard_headers(SECRET, "msg_after", now(), &body).await;
    assert_eq!(call(&server, "hook", &headers, body).await.status, 401);
}

#[tokio::test]
async fn the_hook_needs_no_token_but_the_api_does() {
    let server = TestServer::start_with(|config| config.token = Some("t0ken".into())).await;
    let mut client = TriggerServiceClient::with_interceptor(
        server.channel().await,
        |mut request: tonic::Request<()>| {
            request
                .metadata_mut()
                .insert("authorization", "Bearer t0ken".parse().expect("value"));
            Ok(request)
        },
    );
    client
        .create_trigger(pb::CreateTriggerRequest {
            trigger: Some(issue_trigger()),
            trigger_id: "open".into(),
        })
        .await
        .expect("create");
    let body = issue_body("no token");
    let headers = standard_headers(SECRET, "msg_open", now(), &body).await;
    assert_eq!(call(&server, "open", &headers, body).await.status, 202);
    let api = reqwest::Client::new()
        .get(format!("{}/v1/triggers", server.url()))
        .send()
        .await
        .expect("list");
    assert_eq!(api.status(), 401);
}

#[tokio::test]
async fn the_cli_adds_a_trigger_prints_its_secret_once_and_shows_deliveries() {
    let server = TestServer::start().await;
    let octo = |args: &[&str]| {
        let mut command = common::octo_command();
        command
            .arg("--server")
            .arg(server.url())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        async move {
            let output = tokio::time::timeout(TIMEOUT, command.output())
                .await
                .expect("in time")
                .expect("runs");
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8(output.stdout).expect("utf8")
        }
    };
    let added = octo(&[
        "triggers",
        "add",
        "deploys",
        "--prompt",
        "Deployed {{payload.version}}",
    ])
    .await;
    assert!(added.contains("Added triggers/deploys."), "{added}");
    assert!(
        added.contains(&format!("POST {}/hooks/deploys", server.url())),
        "{added}"
    );
    let secret = added
        .lines()
        .find_map(|l| l.strip_prefix("Secret: "))
        .expect("the secret is printed")
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let shown = octo(&["triggers", "show", "deploys"]).await;
    assert!(
        !shown.contains(&secret) && shown.contains("****"),
        "{shown}"
    );

    let body = serde_json::to_vec(&json!({"version": "1.2.3"})).expect("json");
    let headers = standard_headers(&secret, "msg_deploy", now(), &body).await;
    let answer = call(&server, "deploys", &headers, body).await;
    assert_eq!(answer.status, 202, "{}", answer.json);
    let texts = texts_after(&server, answer.json["turn"].as_str().expect("turn")).await;
    assert_eq!(texts[0], "Deployed 1.2.3");

    let log = octo(&["triggers", "deliveries", "deploys"]).await;
    assert!(
        log.contains("started") && log.contains("msg_deploy"),
        "{log}"
    );
    let list = octo(&["triggers", "list"]).await;
    assert!(
        list.contains("deploys") && list.contains("/hooks/deploys"),
        "{list}"
    );
    octo(&["triggers", "rm", "deploys"]).await;
    assert!(octo(&["triggers", "list"]).await.contains("No triggers."));
}
