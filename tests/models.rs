//! ModelService end to end: the default invariant, key masking, delete rules and the
//! fallback of sessions whose model was deleted, over gRPC and JSON; TestModel and
//! BenchmarkModels against fake provider servers speaking the real wire format.

use crate::common;

use std::time::{Duration, Instant};

use common::*;
use octo::{
    pb,
    providers::fake::{FakeOpenAi, FakeResponse},
};
use prost_types::FieldMask;
use tokio_stream::StreamExt;
use tonic::Code;

const SECRET: &str = "sk-test-0123456789abcdefSECRET";

fn openai_model(base_url: &str) -> pb::Model {
    pb::Model {
        provider: pb::ProviderKind::OpenaiCompatible as i32,
        provider_model: "gpt-test".into(),
        base_url: base_url.into(),
        api_key: SECRET.into(),
        ..Default::default()
    }
}

fn mock_model() -> pb::Model {
    pb::Model {
        provider: pb::ProviderKind::Mock as i32,
        ..Default::default()
    }
}

async fn create(
    client: &mut pb::model_service_client::ModelServiceClient<tonic::transport::Channel>,
    id: &str,
    model: pb::Model,
) -> pb::Model {
    client
        .create_model(pb::CreateModelRequest {
            model: Some(model),
            model_id: id.into(),
        })
        .await
        .expect("create model")
        .into_inner()
}

async fn list(
    client: &mut pb::model_service_client::ModelServiceClient<tonic::transport::Channel>,
) -> Vec<pb::Model> {
    client
        .list_models(pb::ListModelsRequest::default())
        .await
        .expect("list")
        .into_inner()
        .models
}

fn defaults(models: &[pb::Model]) -> Vec<String> {
    models
        .iter()
        .filter(|m| m.is_default)
        .map(|m| m.name.clone())
        .collect()
}

#[tokio::test]
async fn exactly_one_default_and_keys_are_masked_and_never_overwritten_by_a_mask() {
    let fake = FakeOpenAi::start(vec![FakeResponse::text(["o", "k"])])
        .await
        .expect("fake");
    let server = TestServer::start().await;
    let mut models = server.models().await;

    let created = create(&mut models, "remote", openai_model(&fake.base_url())).await;
    assert_eq!(created.name, "models/remote");
    assert!(!created.is_default, "the configured mock stays the default");
    assert!(created.api_key.contains("****"), "{}", created.api_key);
    assert!(!created.api_key.contains("0123456789"));
    assert_eq!(defaults(&list(&mut models).await), ["models/mock"]);

    // Make it the default: the old default is cleared, and it lists first.
    let mut change = created.clone();
    change.is_default = true;
    let updated = models
        .update_model(pb::UpdateModelRequest {
            model: Some(change),
            update_mask: Some(FieldMask {
                paths: vec!["is_default".into()],
            }),
        })
        .await
        .expect("set default")
        .into_inner();
    assert!(updated.is_default);
    assert_ne!(updated.etag, created.etag, "the etag changes on update");
    let listed = list(&mut models).await;
    assert_eq!(defaults(&listed), ["models/remote"]);
    assert_eq!(listed[0].name, "models/remote");

    // The masked hint sent back under `api_key` (and an empty key) is ignored.
    for sent_back in [updated.api_key.clone(), String::new()] {
        let mut echo = updated.clone();
        echo.api_key = sent_back;
        echo.display_name = "Remote".into();
        echo.etag = String::new();
        models
            .update_model(pb::UpdateModelRequest {
                model: Some(echo),
                update_mask: Some(FieldMask {
                    paths: vec!["api_key".into(), "display_name".into()],
                }),
            })
            .await
            .expect("update with the mask sent back");
    }
    let tested = models
        .test_model(pb::TestModelRequest {
            target: Some(pb::test_model_request::Target::Name("models/remote".into())),
        })
        .await
        .expect("test")
        .into_inner();
    assert!(tested.ok, "{tested:?}");
    assert_eq!(tested.reply_preview, "ok");
    let auth = fake
        .requests()
        .last()
        .and_then(|r| r.header("authorization").map(str::to_owned));
    assert_eq!(auth.as_deref(), Some(format!("Bearer {SECRET}").as_str()));

    // Unsetting the default directly is refused: another model must take over.
    let mut unset = list(&mut models).await[0].clone();
    unset.is_default = false;
    let err = models
        .update_model(pb::UpdateModelRequest {
            model: Some(unset),
            update_mask: Some(FieldMask {
                paths: vec!["is_default".into()],
            }),
        })
        .await
        .expect_err("cannot unset the default");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "DEFAULT_MODEL_REQUIRED");

    // A stale etag is refused.
    let err = models
        .delete_model(pb::DeleteModelRequest {
            name: "models/remote".into(),
            etag: created.etag.clone(),
            force: false,
        })
        .await
        .expect_err("stale etag");
    assert_eq!(err.code(), Code::Aborted);
}

#[tokio::test]
async fn deleting_the_default_promotes_a_successor_and_the_last_model_in_use_needs_force() {
    let server = TestServer::start().await;
    let mut models = server.models().await;
    create(&mut models, "second", mock_model()).await;

    models
        .delete_model(pb::DeleteModelRequest {
            name: "models/mock".into(),
            ..Default::default()
        })
        .await
        .expect("delete the default");
    assert_eq!(defaults(&list(&mut models).await), ["models/second"]);

    // The last model, used by a session: refused without force.
    let mut sessions = server.sessions().await;
    let session = sessions
        .create_session(pb::CreateSessionRequest {
            session: Some(pb::Session {
                model: "models/second".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("session")
        .into_inner();
    let err = models
        .delete_model(pb::DeleteModelRequest {
            name: "models/second".into(),
            ..Default::default()
        })
        .await
        .expect_err("in use");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "MODEL_IN_USE");
    assert!(err.message().contains("1 session"), "{}", err.message());

    models
        .delete_model(pb::DeleteModelRequest {
            name: "models/second".into(),
            force: true,
            ..Default::default()
        })
        .await
        .expect("forced");
    assert!(list(&mut models).await.is_empty());

    // With no model at all, sending is FAILED_PRECONDITION with the way out.
    let mut chat = server.chat().await;
    let err = chat
        .send_message(pb::SendMessageRequest {
            session: session.name.clone(),
            parts: vec![text("hi")],
            ..Default::default()
        })
        .await
        .expect_err("no model");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(reason(&err), "NO_MODEL_CONFIGURED");
    assert!(
        err.message().contains("octo models add"),
        "{}",
        err.message()
    );

    // The first model added becomes the default again, and the session works.
    let first = create(&mut models, "again", mock_model()).await;
    assert!(first.is_default);
    let mut events = subscribe(&mut chat, &session.name, 0).await;
    let response = send_text(&mut chat, &session.name, "hello", pb::BusyPolicy::Enqueue)
        .await
        .expect("sent");
    let turn = sent_turn(&response);
    let seen = collect_until(&mut events, finishes(&turn.name)).await;
    let finished = seen.iter().find_map(finished).expect("finished");
    assert_eq!(finished.status, pb::TurnStatus::Succeeded as i32);
    assert_eq!(finished.model, "models/again");
}

#[tokio::test]
async fn a_session_whose_model_was_deleted_falls_back_to_the_default_with_a_note() {
    let server = TestServer::start().await;
    let mut models = server.models().await;
    create(&mut models, "doomed", mock_model()).await;
    let mut sessions = server.sessions().await;
    let session = sessions
        .create_session(pb::CreateSessionRequest {
            session: Some(pb::Session {
                model: "models/doomed".into(),
                ..Default::default()
            }),
        })
        .await
        .expect("session")
        .into_inner();
    models
        .delete_model(pb::DeleteModelRequest {
            name: "models/doomed".into(),
            ..Default::default()
        })
        .await
        .expect("delete");

    let mut chat = server.chat().await;
    let mut events = subscribe(&mut chat, &session.name, 0).await;
    let response = send_text(
        &mut chat,
        &session.name,
        "still there?",
        pb::BusyPolicy::Enqueue,
    )
    .await
    .expect("sent");
    let turn = sent_turn(&response);
    let seen = collect_until(&mut events, finishes(&turn.name)).await;
    let note = seen.iter().find_map(|e| match &e.kind {
        Some(pb::session_event::Kind::Error(error)) => Some(error.clone()),
        _ => None,
    });
    let note = note.expect("a visible note");
    assert_eq!(note.reason, "MODEL_FALLBACK");
    assert!(note.message.contains("models/doomed") && note.message.contains("models/mock"));
    let finished = seen.iter().find_map(finished).expect("finished");
    assert_eq!(finished.status, pb::TurnStatus::Succeeded as i32);
    assert_eq!(finished.model, "models/mock");
}

#[tokio::test]
async fn invalid_models_get_field_violations() {
    let server = TestServer::start().await;
    let mut models = server.models().await;
    let err = models
        .create_model(pb::CreateModelRequest {
            model: Some(pb::Model {
                base_url: "ftp://x".into(),
                api_key_env: "lower-case".into(),
                ..Default::default()
            }),
            model_id: "Bad_Id".into(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&err), ["model.provider"]);

    let err = models
        .create_model(pb::CreateModelRequest {
            model: Some(pb::Model {
                provider: pb::ProviderKind::OpenaiCompatible as i32,
                base_url: "ftp://x".into(),
                api_key_env: "lower-case".into(),
                ..Default::default()
            }),
            model_id: "ok-id".into(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(
        violated_fields(&err),
        [
            "model.provider_model",
            "model.base_url",
            "model.api_key_env"
        ]
    );

    let err = models
        .create_model(pb::CreateModelRequest {
            model: Some(mock_model()),
            model_id: "Bad_Id".into(),
        })
        .await
        .expect_err("bad id");
    assert_eq!(violated_fields(&err), ["model_id"]);

    let err = models
        .create_model(pb::CreateModelRequest {
            model: Some(mock_model()),
            model_id: "mock".into(),
        })
        .await
        .expect_err("taken");
    assert_eq!(err.code(), Code::AlreadyExists);

    let err = models
        .get_model(pb::GetModelRequest {
            name: "models/nope".into(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(reason(&err), "MODEL_NOT_FOUND");
}

#[tokio::test]
async fn test_model_reports_the_providers_error_for_stored_and_unsaved_configs() {
    let failing = FakeOpenAi::start(vec![FakeResponse::status(
        401,
        r#"{"error":{"message":"Incorrect API key provided: sk-t****"}}"#,
    )])
    .await
    .expect("fake");
    let server = TestServer::start().await;
    let mut models = server.models().await;

    let unsaved = models
        .test_model(pb::TestModelRequest {
            target: Some(pb::test_model_request::Target::Model(openai_model(
                &failing.base_url(),
            ))),
        })
        .await
        .expect("test")
        .into_inner();
    assert!(!unsaved.ok);
    assert!(
        unsaved.error.contains("Incorrect API key provided"),
        "{}",
        unsaved.error
    );
    assert!(unsaved.latency.is_some());
    assert!(
        list(&mut models)
            .await
            .iter()
            .all(|m| m.name != "models/unsaved")
    );

    let stored = models
        .test_model(pb::TestModelRequest {
            target: Some(pb::test_model_request::Target::Name("models/mock".into())),
        })
        .await
        .expect("test")
        .into_inner();
    assert!(stored.ok, "{stored:?}");
    assert!(!stored.reply_preview.is_empty());

    // Nothing is listening on a port we just released: a connection error, not a hang.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let unreachable = models
        .test_model(pb::TestModelRequest {
            target: Some(pb::test_model_request::Target::Model(openai_model(
                &format!("http://{closed}/v1"),
            ))),
        })
        .await
        .expect("test")
        .into_inner();
    assert!(!unreachable.ok);
    assert!(!unreachable.error.is_empty());
}

#[tokio::test]
async fn benchmark_streams_one_result_per_model_and_a_hanging_one_does_not_delay_the_others() {
    let fast = FakeOpenAi::start(vec![FakeResponse::text(["fast"])])
        .await
        .expect("fake");
    let hanging = FakeOpenAi::start(vec![FakeResponse::Hang])
        .await
        .expect("fake");
    let server = TestServer::start().await;
    let mut models = server.models().await;
    create(&mut models, "fast", openai_model(&fast.base_url())).await;
    create(&mut models, "hanging", openai_model(&hanging.base_url())).await;

    let timeout = Duration::from_secs(3);
    let started = Instant::now();
    let mut stream = models
        .benchmark_models(pb::BenchmarkModelsRequest {
            timeout: Some(prost_types::Duration {
                seconds: timeout.as_secs() as i64,
                nanos: 0,
            }),
            ..Default::default()
        })
        .await
        .expect("benchmark")
        .into_inner();
    let mut results = Vec::new();
    while let Some(result) = tokio::time::timeout(TIMEOUT, stream.next())
        .await
        .expect("in time")
    {
        results.push((started.elapsed(), result.expect("result")));
    }
    let names: Vec<&str> = results.iter().map(|(_, r)| r.model.as_str()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[2], "models/hanging", "the hanging model comes last");
    let (hang_at, hang) = &results[2];
    assert!(!hang.ok);
    assert!(hang.error.contains("timed out"), "{}", hang.error);
    assert!(*hang_at >= timeout);
    for (at, result) in &results[..2] {
        assert!(result.ok, "{result:?}");
        assert!(result.time_to_first_token.is_some());
        assert!(*at < timeout, "{} arrived after the timeout", result.model);
    }
}

#[tokio::test]
async fn models_over_json_http() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let url = server.url();

    let created: serde_json::Value = http
        .post(format!("{url}/v1/models?modelId=local"))
        .json(&serde_json::json!({
            "provider": "PROVIDER_KIND_OPENAI_COMPATIBLE",
            "providerModel": "qwen",
            "baseUrl": "http://127.0.0.1:9/v1",
            "apiKey": SECRET,
            "providerOptions": {"temperature": 0.2},
        }))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert_eq!(created["name"], "models/local");
    let hint = created["apiKey"].as_str().expect("hint");
    assert!(hint.contains("****") && !hint.contains("0123456789"));
    assert_eq!(created["providerOptions"]["temperature"], 0.2);

    let patched = http
        .patch(format!("{url}/v1/models/local?updateMask=isDefault"))
        .json(&serde_json::json!({"isDefault": true}))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), 200);
    let listed: serde_json::Value = http
        .get(format!("{url}/v1/models"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["models"][0]["name"], "models/local");
    assert_eq!(listed["models"][0]["isDefault"], true);
    assert!(
        listed["models"][1]
            .get("isDefault")
            .is_none_or(|v| v == false)
    );

    let providers: serde_json::Value = http
        .get(format!("{url}/v1/providers"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    let ids: Vec<&str> = providers["providers"]
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|p| p["id"].as_str())
        .collect();
    for id in [
        "openai",
        "anthropic",
        "deepseek",
        "groq",
        "ollama",
        "litellm",
    ] {
        assert!(ids.contains(&id), "{id} in {ids:?}");
    }

    let bad = http
        .post(format!("{url}/v1/models"))
        .json(&serde_json::json!({"provider": "PROVIDER_KIND_MOCK", "contextWindow": -1}))
        .send()
        .await
        .expect("post");
    assert_eq!(bad.status(), 400);
    let body: serde_json::Value = bad.json().await.expect("json");
    assert!(body.to_string().contains("model.context_window"), "{body}");

    let deleted = http
        .delete(format!("{url}/v1/models/local"))
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 200);
    let listed: serde_json::Value = http
        .get(format!("{url}/v1/models"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(listed["models"][0]["name"], "models/mock");
    assert_eq!(listed["models"][0]["isDefault"], true, "promoted again");
}

#[tokio::test]
async fn a_key_in_the_environment_adds_a_model_on_a_first_start() {
    let home = tempfile::tempdir().expect("home");
    let mut command = octo_command();
    command.env("OPENAI_API_KEY", "sk-from-the-environment-123456");
    let (mut child, address) = spawn_serve_with(command, home.path(), &[] as &[&str]).await;
    let channel = common::connect(&address).await;
    let mut models = pb::model_service_client::ModelServiceClient::new(channel);
    let listed = list(&mut models).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].name, "models/openai");
    assert_eq!(listed[0].api_key_env, "OPENAI_API_KEY");
    assert_eq!(listed[0].api_key, "", "the key is referenced, not copied");
    assert!(listed[0].is_default);
    let _ = child.kill().await;
}
