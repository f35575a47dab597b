//! grpcurl, a real third-party client, with server reflection only (no proto files).
//! `.ci/setup` installs the pinned grpcurl.

use crate::common;

use common::TestServer;
use tokio::process::Command;

struct Output {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs `grpcurl -plaintext [flags] ADDRESS [command...]`.
async fn grpcurl(server: &TestServer, flags: &[&str], command: &[&str]) -> Output {
    let grpcurl = common::find_tool("grpcurl").expect(
        "grpcurl not found: run `bash .ci/setup` (it installs grpcurl into target/tools/bin)",
    );
    let output = tokio::time::timeout(
        common::TIMEOUT,
        Command::new(grpcurl)
            .arg("-plaintext")
            .args(flags)
            .arg(server.addr.to_string())
            .args(command)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("grpcurl finishes in time")
    .expect("grpcurl runs");
    Output {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test]
async fn list_and_describe_through_reflection() {
    let server = TestServer::start().await;
    let listed = grpcurl(&server, &[], &["list"]).await;
    assert!(listed.ok, "{}", listed.stderr);
    for service in [
        "octo.v1.SessionService",
        "octo.v1.ChatService",
        "octo.v1.ModelService",
        "octo.v1.ScheduleService",
        "grpc.health.v1.Health",
    ] {
        assert!(
            listed.stdout.lines().any(|l| l == service),
            "{service} in {}",
            listed.stdout
        );
    }
    let service = grpcurl(&server, &[], &["describe", "octo.v1.SessionService"]).await;
    assert!(service.ok, "{}", service.stderr);
    assert!(
        service.stdout.contains("rpc CreateSession"),
        "{}",
        service.stdout
    );
    // Source comments travel with the descriptors.
    assert!(
        service.stdout.contains("Creates a session"),
        "{}",
        service.stdout
    );
}

#[tokio::test]
async fn create_and_list_sessions() {
    let server = TestServer::start().await;
    let created = grpcurl(
        &server,
        &[
            "-d",
            r#"{"session": {"display_name": "from grpcurl", "labels": {"via": "grpcurl"}}}"#,
        ],
        &["octo.v1.SessionService/CreateSession"],
    )
    .await;
    assert!(created.ok, "{}", created.stderr);
    let session: serde_json::Value = serde_json::from_str(&created.stdout).expect("json");
    assert_eq!(session["displayName"], "from grpcurl");
    let name = session["name"].as_str().expect("name").to_owned();

    let listed = grpcurl(
        &server,
        &["-d", r#"{"page_size": 10}"#],
        &["octo.v1.SessionService/ListSessions"],
    )
    .await;
    assert!(listed.ok, "{}", listed.stderr);
    let list: serde_json::Value = serde_json::from_str(&listed.stdout).expect("json");
    assert_eq!(list["sessions"][0]["name"], name.as_str());
}

#[tokio::test]
async fn errors_show_code_and_details() {
    let server = TestServer::start().await;
    let missing = grpcurl(
        &server,
        &[
            "-d",
            r#"{"name": "sessions/0190b5b4-0000-7000-8000-000000000000"}"#,
        ],
        &["octo.v1.SessionService/GetSession"],
    )
    .await;
    assert!(!missing.ok);
    assert!(missing.stderr.contains("NotFound"), "{}", missing.stderr);
    // Details resolve through reflection (google.rpc types are registered).
    assert!(
        missing.stderr.contains("SESSION_NOT_FOUND"),
        "{}",
        missing.stderr
    );

    let invalid = grpcurl(
        &server,
        &["-d", r#"{"session": {"working_dir": "../../etc"}}"#],
        &["octo.v1.SessionService/CreateSession"],
    )
    .await;
    assert!(!invalid.ok);
    assert!(
        invalid.stderr.contains("InvalidArgument"),
        "{}",
        invalid.stderr
    );
    assert!(
        invalid.stderr.contains("session.working_dir"),
        "{}",
        invalid.stderr
    );
}
