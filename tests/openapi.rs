//! `GET /openapi.json`: generated from the descriptors, it lists every RPC with an HTTP
//! rule, spells resource names out as path parameters, and is checked by independent
//! tools (an OpenAPI 3.1 validator and ajv, from npm) against real answers.

use std::collections::BTreeSet;

use prost_reflect::{DescriptorPool, Value};

use crate::common::{self, TestServer};

async fn document(server: &TestServer) -> serde_json::Value {
    // No token: the document describes the public contract, like the probes.
    let response = reqwest::get(format!("{}/openapi.json", server.url()))
        .await
        .expect("GET /openapi.json");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    response.json().await.expect("JSON")
}

/// `<Service>_<Method>` of every RPC the descriptor set gives an HTTP rule.
fn annotated_rpcs() -> BTreeSet<String> {
    let pool = DescriptorPool::decode(octo::pb::FILE_DESCRIPTOR_SET).expect("descriptor set");
    let http = pool
        .get_extension_by_name("google.api.http")
        .expect("google.api.http");
    let mut names = BTreeSet::new();
    for service in pool.services() {
        for method in service.methods() {
            let options = method.options();
            if options.has_extension(&http)
                && matches!(options.get_extension(&http).as_ref(), Value::Message(_))
            {
                names.insert(format!("{}_{}", service.name(), method.name()));
            }
        }
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_with_an_http_rule_is_an_operation_on_its_path() {
    let server = TestServer::start().await;
    let doc = document(&server).await;
    assert_eq!(doc["openapi"], "3.1.0");

    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            let id = operation["operationId"].as_str().expect("operationId");
            assert!(
                operations.insert(id.to_owned()),
                "operationId {id} used twice ({method} {path})"
            );
        }
    }
    let expected = annotated_rpcs();
    assert!(expected.len() > 30, "{expected:?}");
    let missing: Vec<_> = expected.difference(&operations).collect();
    assert!(
        missing.is_empty(),
        "RPCs missing from the document: {missing:?}"
    );

    // Resource names become one parameter per collection, named after it.
    let turn = &doc["paths"]["/v1/sessions/{session}/turns/{turn}:cancel"]["post"];
    assert_eq!(turn["operationId"], "ChatService_CancelTurn");
    let names: Vec<&str> = turn["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "path")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["session", "turn"]);

    // Unbound fields are query parameters by their JSON names; a body field is not.
    let list = &doc["paths"]["/v1/sessions"]["get"];
    let query: BTreeSet<&str> = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "query")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        query.contains("pageSize") && query.contains("pageToken"),
        "{query:?}"
    );
    let update = &doc["paths"]["/v1/sessions/{session}"]["patch"];
    assert!(
        update["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "updateMask"),
        "{update}"
    );
    assert_eq!(
        update["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/octo.v1.Session"
    );

    // The proto3 JSON mapping: timestamps are RFC 3339 strings, int64 strings, enums
    // their names; comments become descriptions.
    let session = &doc["components"]["schemas"]["octo.v1.Session"];
    assert_eq!(session["properties"]["createTime"]["format"], "date-time");
    let effort = &doc["components"]["schemas"]["octo.v1.ReasoningEffort"];
    assert!(
        effort["enum"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "REASONING_EFFORT_HIGH"),
        "{effort}"
    );
    let event = &doc["components"]["schemas"]["octo.v1.SessionEvent"];
    assert_eq!(event["properties"]["sequence"]["type"], "string");
    assert!(
        !doc["paths"]["/v1/sessions"]["get"]["summary"]
            .as_str()
            .unwrap()
            .is_empty()
    );

    // Server-streaming RPCs answer server-sent events, typed by x-octo-event.
    let events = &doc["paths"]["/v1/sessions/{session}/events"]["get"]["responses"]["200"]["content"]
        ["text/event-stream"];
    assert_eq!(
        events["x-octo-event"]["$ref"],
        "#/components/schemas/octo.v1.SessionEvent"
    );

    // google.api.HttpBody answers are raw bytes, not events.
    let download = &doc["paths"]["/v1/sessions/{session}/files:download"]["get"]["responses"]["200"]
        ["content"];
    assert_eq!(
        download["application/octet-stream"]["schema"],
        serde_json::json!({"type": "string", "format": "binary"}),
        "{download}"
    );
    assert!(download.get("text/event-stream").is_none(), "{download}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_independent_validator_accepts_it_and_real_answers_match_it() {
    let server = TestServer::start().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        root.join(".ci/node_modules/@seriousme/openapi-schema-validator")
            .exists(),
        "the OpenAPI validator is not installed: run `bash .ci/setup`"
    );
    let output = tokio::time::timeout(
        common::TIMEOUT,
        tokio::process::Command::new("node")
            .arg(root.join(".ci/openapi-check.mjs"))
            .arg(server.url())
            .output(),
    )
    .await
    .expect("the check finishes")
    .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the OpenAPI check failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("valid OpenAPI 3.1.0"), "{stdout}");
    assert!(stdout.contains("ok: ChatService_StreamEvents"), "{stdout}");
    assert!(stdout.contains("openapi check passed"), "{stdout}");
}
