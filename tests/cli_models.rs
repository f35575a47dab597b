//! `octo models ...` as a user runs it: the real binary against a real server.

use crate::common;

use std::process::Stdio;

use common::{TIMEOUT, TestServer};
use tokio::{io::AsyncWriteExt, process::Command};

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn assert_ok(&self) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", self.stdout))
    }

    /// The table row whose first cell is `id`.
    #[track_caller]
    fn row(&self, id: &str) -> &str {
        self.stdout
            .lines()
            .find(|line| line.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no row {id}:\n{}", self.stdout))
    }
}

fn octo(server: &TestServer) -> Command {
    let mut command = common::octo_command();
    command
        .env_remove("OCTO_MODEL_API_KEY")
        .arg("--server")
        .arg(server.url());
    command
}

async fn run_with_stdin(mut command: Command, stdin: Option<&str>) -> Run {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("octo runs");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(text.as_bytes()).await.expect("write stdin");
        drop(pipe);
    }
    let output = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .expect("octo finishes in time")
        .expect("octo runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn octo_run(server: &TestServer, args: &[&str]) -> Run {
    let mut command = octo(server);
    command.args(args);
    run_with_stdin(command, None).await
}

/// A loopback URL nothing listens on: bind a port, note it, close it.
fn unused_base_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    format!("http://127.0.0.1:{port}/v1")
}

/// A server without any model configured.
async fn empty_server() -> TestServer {
    TestServer::start_with(|config| {
        config.models.clear();
        config.default_model = None;
    })
    .await
}

const KEY: &str = "sk-cli-test-0123456789abcdefSECRET";

#[tokio::test]
async fn models_add_list_default_update_and_rm() {
    let server = empty_server().await;
    let empty = octo_run(&server, &["models", "list"]).await;
    empty.assert_ok();
    assert!(empty.stdout.contains("No models"), "{}", empty.stdout);

    // The key comes from stdin, never from the command line; reads mask it.
    let mut add = octo(&server);
    add.args([
        "models",
        "add",
        "gpt",
        "--provider",
        "openai",
        "--model",
        "gpt-4.1",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--api-key-stdin",
        "--context-window",
        "128000",
    ]);
    let added = run_with_stdin(add, Some(&format!("{KEY}\n"))).await;
    added.assert_ok();
    assert!(added.stdout.contains("****"), "{}", added.stdout);
    assert!(!added.stdout.contains(KEY), "{}", added.stdout);
    assert!(!added.stdout.contains("SECRET"), "{}", added.stdout);

    // The second model comes from a preset and from OCTO_MODEL_API_KEY.
    let mut add_other = octo(&server);
    add_other.env("OCTO_MODEL_API_KEY", KEY).args([
        "models",
        "add",
        "models/other",
        "--preset",
        "ollama",
        "--model",
        "llama3",
        "--display-name",
        "Local llama",
    ]);
    let other = run_with_stdin(add_other, None).await;
    other.assert_ok();
    assert!(!other.stdout.contains(KEY), "{}", other.stdout);

    let listed = octo_run(&server, &["models", "list"]).await;
    listed.assert_ok();
    assert!(!listed.stdout.contains(KEY), "{}", listed.stdout);
    assert!(!listed.stdout.contains("SECRET"), "{}", listed.stdout);
    let gpt = listed.row("gpt");
    assert!(gpt.contains("openai"), "{gpt}");
    assert!(gpt.contains("gpt-4.1"), "{gpt}");
    assert!(gpt.contains("http://127.0.0.1:9/v1"), "{gpt}");
    assert!(gpt.contains("****"), "{gpt}");
    // The first model became the default.
    assert!(gpt.ends_with("yes"), "{}", listed.stdout);
    let row = listed.row("other");
    assert!(row.contains("llama3"), "{row}");
    assert!(!row.ends_with("yes"), "{}", listed.stdout);

    let json = octo_run(&server, &["--json", "models", "list"]).await;
    json.assert_ok();
    let models = json.json()["models"].as_array().expect("models").clone();
    assert_eq!(models.len(), 2, "{}", json.stdout);
    let other_json = models
        .iter()
        .find(|m| m["name"] == "models/other")
        .expect("other");
    assert_eq!(other_json["provider"], "PROVIDER_KIND_OPENAI_COMPATIBLE");
    assert_eq!(other_json["displayName"], "Local llama");
    assert!(
        other_json["baseUrl"]
            .as_str()
            .is_some_and(|url| !url.is_empty()),
        "the preset fills the base URL: {other_json}"
    );
    assert!(!json.stdout.contains(KEY), "{}", json.stdout);

    // `default` moves the default.
    octo_run(&server, &["models", "default", "other"])
        .await
        .assert_ok();
    let listed = octo_run(&server, &["models", "ls"]).await;
    listed.assert_ok();
    assert!(listed.row("other").ends_with("yes"), "{}", listed.stdout);
    assert!(!listed.row("gpt").ends_with("yes"), "{}", listed.stdout);

    // `update` changes only what it is given; the stored key stays.
    let updated = octo_run(
        &server,
        &[
            "--json",
            "model",
            "update",
            "models/gpt",
            "--display-name",
            "GPT",
            "--max-output-tokens",
            "1000",
        ],
    )
    .await;
    updated.assert_ok();
    let model = updated.json();
    assert_eq!(model["displayName"], "GPT");
    assert_eq!(model["maxOutputTokens"], 1000);
    assert_eq!(model["contextWindow"], 128000);
    assert_eq!(model["providerModel"], "gpt-4.1");
    assert!(
        model["apiKey"].as_str().is_some_and(|k| k.contains("****")),
        "{model}"
    );
    let nothing = octo_run(&server, &["models", "update", "gpt"]).await;
    assert_eq!(nothing.code, Some(1), "{}", nothing.stderr);
    let missing = octo_run(&server, &["models", "update", "nope", "--model", "x"]).await;
    assert_eq!(missing.code, Some(1));
    assert!(missing.stderr.contains("NOT_FOUND"), "{}", missing.stderr);

    // Deleting the default promotes the other one.
    octo_run(&server, &["models", "rm", "other"])
        .await
        .assert_ok();
    let listed = octo_run(&server, &["models", "list"]).await;
    assert!(listed.row("gpt").ends_with("yes"), "{}", listed.stdout);

    // The last model, used by a session, goes only with --force.
    octo_run(
        &server,
        &[
            "sessions", "create", "--model", "gpt", "--title", "uses gpt",
        ],
    )
    .await
    .assert_ok();
    let refused = octo_run(&server, &["models", "rm", "gpt"]).await;
    assert_eq!(refused.code, Some(1), "{}", refused.stdout);
    assert!(refused.stderr.starts_with("error: "), "{}", refused.stderr);
    let forced = octo_run(&server, &["models", "rm", "gpt", "--force"]).await;
    forced.assert_ok();
    assert!(
        forced.stdout.contains("Deleted model gpt"),
        "{}",
        forced.stdout
    );
    let empty = octo_run(&server, &["models", "list"]).await;
    assert!(empty.stdout.contains("No models"), "{}", empty.stdout);
}

#[tokio::test]
async fn models_add_refuses_bad_input_and_keys_as_arguments() {
    let server = empty_server().await;
    // A key as a plain argument is not an option at all.
    let plain = octo_run(
        &server,
        &[
            "models",
            "add",
            "x",
            "--provider",
            "openai",
            "--api-key",
            KEY,
        ],
    )
    .await;
    assert_eq!(plain.code, Some(2), "{}", plain.stderr);

    let no_provider = octo_run(&server, &["models", "add", "x"]).await;
    assert_eq!(no_provider.code, Some(1));
    assert!(
        no_provider.stderr.contains("--provider"),
        "{}",
        no_provider.stderr
    );

    let bad_id = octo_run(
        &server,
        &["models", "add", "Not_A_Slug", "--provider", "mock"],
    )
    .await;
    assert_eq!(bad_id.code, Some(1), "{}", bad_id.stdout);
    assert!(
        bad_id.stderr.contains("INVALID_ARGUMENT"),
        "{}",
        bad_id.stderr
    );

    let bad_preset = octo_run(
        &server,
        &["models", "add", "x", "--preset", "no-such-preset"],
    )
    .await;
    assert_eq!(bad_preset.code, Some(1));
    assert!(
        bad_preset.stderr.contains("ollama"),
        "lists the presets: {}",
        bad_preset.stderr
    );

    let mut empty_stdin = octo(&server);
    empty_stdin.args([
        "models",
        "add",
        "x",
        "--provider",
        "openai",
        "--api-key-stdin",
    ]);
    let empty_stdin = run_with_stdin(empty_stdin, Some("\n")).await;
    assert_eq!(empty_stdin.code, Some(1));
    assert!(
        empty_stdin.stderr.contains("no API key"),
        "{}",
        empty_stdin.stderr
    );
}

#[tokio::test]
async fn models_providers_lists_the_presets() {
    let server = empty_server().await;
    let providers = octo_run(&server, &["models", "providers"]).await;
    providers.assert_ok();
    let header = providers.stdout.lines().next().expect("header");
    assert!(header.starts_with("PRESET"), "{}", providers.stdout);
    let openai = providers.row("openai");
    assert!(openai.contains("OPENAI_API_KEY"), "{openai}");
    let ollama = providers.row("ollama");
    assert!(ollama.contains("http://"), "{ollama}");

    let json = octo_run(&server, &["--json", "models", "providers"]).await;
    json.assert_ok();
    let ids: Vec<String> = json.json()["providers"]
        .as_array()
        .expect("providers")
        .iter()
        .filter_map(|p| p["id"].as_str().map(str::to_owned))
        .collect();
    for id in ["openai", "anthropic", "ollama", "groq"] {
        assert!(ids.iter().any(|i| i == id), "{id} in {ids:?}");
    }
}

#[tokio::test]
async fn models_test_passes_on_the_mock_and_fails_on_an_unreachable_url() {
    let server = TestServer::start().await;
    let ok = octo_run(&server, &["models", "test", "mock"]).await;
    ok.assert_ok();
    assert!(ok.stdout.contains("Result   ok"), "{}", ok.stdout);
    assert!(ok.stdout.contains("Latency"), "{}", ok.stdout);
    assert!(ok.stdout.contains("Reply"), "{}", ok.stdout);
    let ok = octo_run(&server, &["--json", "models", "test", "models/mock"]).await;
    ok.assert_ok();
    assert_eq!(ok.json()["ok"], true, "{}", ok.stdout);

    let base_url = unused_base_url();
    let mut add = octo(&server);
    add.env("OCTO_MODEL_API_KEY", KEY).args([
        "models",
        "add",
        "broken",
        "--provider",
        "openai",
        "--model",
        "gpt-4.1",
        "--base-url",
        &base_url,
    ]);
    run_with_stdin(add, None).await.assert_ok();
    let failed = octo_run(&server, &["models", "test", "broken"]).await;
    assert_eq!(failed.code, Some(1), "{}", failed.stdout);
    assert!(failed.stdout.contains("failed"), "{}", failed.stdout);
    let error = failed
        .stdout
        .lines()
        .find(|l| l.starts_with("Error"))
        .unwrap_or_else(|| panic!("an error line: {}", failed.stdout));
    assert!(error.len() > "Error".len() + 3, "{error}");
    assert!(failed.stderr.contains("broken"), "{}", failed.stderr);
    assert!(!failed.stdout.contains(KEY), "{}", failed.stdout);

    // An unsaved config: nothing is stored.
    let mut unsaved = octo(&server);
    unsaved.env("OCTO_MODEL_API_KEY", KEY).args([
        "--json",
        "models",
        "test",
        "--provider",
        "openai",
        "--model",
        "gpt-4.1",
        "--base-url",
        &base_url,
    ]);
    let unsaved = run_with_stdin(unsaved, None).await;
    assert_eq!(unsaved.code, Some(1), "{}", unsaved.stderr);
    let result = unsaved.json();
    assert!(result.get("ok").is_none(), "not ok: {result}");
    assert!(
        result["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{result}"
    );
    let unsaved_mock = octo_run(&server, &["models", "test", "--provider", "mock"]).await;
    unsaved_mock.assert_ok();
    let listed = octo_run(&server, &["--json", "models", "list"]).await;
    assert_eq!(
        listed.json()["models"].as_array().map(Vec::len),
        Some(2),
        "{}",
        listed.stdout
    );
}

#[tokio::test]
async fn models_bench_prints_a_line_per_model() {
    let server = TestServer::start().await;
    octo_run(
        &server,
        &["models", "add", "mock-two", "--provider", "mock"],
    )
    .await
    .assert_ok();
    let bench = octo_run(&server, &["models", "bench", "--timeout", "20s"]).await;
    bench.assert_ok();
    for id in ["mock", "mock-two"] {
        let line = bench.row(id);
        assert!(line.contains(" ok "), "{line}");
        assert!(line.contains("ttft"), "{line}");
        assert!(line.contains("total"), "{line}");
    }

    let json = octo_run(&server, &["--json", "models", "bench", "mock-two"]).await;
    json.assert_ok();
    let lines: Vec<&str> = json.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", json.stdout);
    let result: serde_json::Value = serde_json::from_str(lines[0]).expect("json line");
    assert_eq!(result["model"], "models/mock-two");
    assert_eq!(result["ok"], true);

    let base_url = unused_base_url();
    let mut add = octo(&server);
    add.env("OCTO_MODEL_API_KEY", KEY).args([
        "models",
        "add",
        "broken",
        "--provider",
        "openai",
        "--model",
        "m",
        "--base-url",
        &base_url,
    ]);
    run_with_stdin(add, None).await.assert_ok();
    let mixed = octo_run(&server, &["models", "bench", "mock", "broken"]).await;
    assert_eq!(mixed.code, Some(1), "{}", mixed.stdout);
    assert!(mixed.row("mock").contains(" ok "), "{}", mixed.stdout);
    assert!(mixed.row("broken").contains("failed"), "{}", mixed.stdout);
    assert!(
        mixed.stderr.contains("1 of 2 models failed"),
        "{}",
        mixed.stderr
    );
}
