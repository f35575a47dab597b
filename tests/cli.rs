//! The `octo` binary as a user runs it: `serve` as a real process (start, SIGTERM,
//! refusal to listen publicly without a token), `init`/`config`, and the sessions
//! subcommands against a live server.

use crate::common;

use std::path::Path;

use common::{TIMEOUT, TestServer};
use tokio::process::{Child, Command};

fn octo() -> Command {
    common::octo_command()
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn run(command: &mut Command) -> Run {
    let output = tokio::time::timeout(TIMEOUT, command.output())
        .await
        .expect("octo finishes in time")
        .expect("octo runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Client subcommand against `server`.
async fn client(server: &TestServer, args: &[&str]) -> Run {
    run(octo().arg("--server").arg(server.url()).args(args)).await
}

/// Starts `octo serve` on an ephemeral port and returns it with the address it logged.
async fn serve(home: &Path, extra: &[&str]) -> (Child, String) {
    common::spawn_serve(home, extra).await
}

#[tokio::test]
async fn serve_starts_answers_and_stops_on_sigterm() {
    let home = tempfile::tempdir().expect("tempdir");
    let (mut child, address) = serve(home.path(), &[]).await;
    let health = reqwest::Client::new()
        .get(format!("http://{address}/v1/sessions"))
        .send()
        .await
        .expect("server answers");
    assert_eq!(health.status(), 200);
    // The default data dir follows XDG.
    assert!(home.path().join("data/octo/octo.db").exists());

    let pid = child.id().expect("pid") as i32;
    // kill(1) keeps the test free of unsafe code.
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .expect("kill");
    assert!(status.success());
    let exit = tokio::time::timeout(TIMEOUT, child.wait())
        .await
        .expect("exits in time after SIGTERM")
        .expect("wait");
    assert!(exit.success(), "graceful exit: {exit:?}");
}

#[tokio::test]
async fn serve_refuses_a_public_address_without_a_token() {
    let home = tempfile::tempdir().expect("tempdir");
    let result = run(octo()
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .args(["serve", "--listen", "0.0.0.0:0"]))
    .await;
    assert_eq!(result.code, Some(1), "{}", result.stderr);
    assert!(
        result.stderr.contains("refusing to listen on 0.0.0.0"),
        "{}",
        result.stderr
    );
    assert!(
        result.stderr.contains("OCTO_TOKEN"),
        "says how to fix it: {}",
        result.stderr
    );
}

#[tokio::test]
async fn init_writes_a_config_that_show_reads_with_secrets_masked() {
    let home = tempfile::tempdir().expect("tempdir");
    let config = home.path().join("octo.toml");
    let config_arg = config.to_str().expect("utf8");
    let init = run(octo().args(["init", "--config", config_arg])).await;
    assert_eq!(init.code, Some(0), "{}", init.stderr);
    assert!(
        std::fs::read_to_string(&config)
            .expect("written")
            .contains("listen =")
    );
    let again = run(octo().args(["init", "--config", config_arg])).await;
    assert_ne!(again.code, Some(0), "no silent overwrite");

    let show = run(octo()
        .env("OCTO_TOKEN", "sk-very-secret-token-value")
        .args(["config", "show", "--config", config_arg]))
    .await;
    assert_eq!(show.code, Some(0), "{}", show.stderr);
    assert!(show.stdout.contains("****"), "{}", show.stdout);
    assert!(!show.stdout.contains("very-secret"), "{}", show.stdout);
}

#[tokio::test]
async fn sessions_commands_manage_sessions() {
    let server = TestServer::start().await;
    let created = client(
        &server,
        &[
            "--json", "sessions", "create", "--title", "cli made", "--label", "k=v",
        ],
    )
    .await;
    assert_eq!(created.code, Some(0), "{}", created.stderr);
    let session: serde_json::Value = serde_json::from_str(&created.stdout).expect("json");
    assert_eq!(session["displayName"], "cli made");
    assert_eq!(session["source"], "SESSION_SOURCE_MANUAL");
    let name = session["name"].as_str().expect("name").to_owned();
    let id = name.trim_start_matches("sessions/").to_owned();

    let renamed = client(&server, &["sessions", "rename", &id, "renamed by cli"]).await;
    assert_eq!(renamed.code, Some(0), "{}", renamed.stderr);
    let pinned = client(&server, &["sessions", "pin", &name]).await;
    assert_eq!(pinned.code, Some(0), "{}", pinned.stderr);

    let listed = client(&server, &["sessions", "list"]).await;
    assert_eq!(listed.code, Some(0), "{}", listed.stderr);
    let row = listed
        .stdout
        .lines()
        .find(|l| l.contains("renamed by cli"))
        .expect("row in table");
    assert!(row.contains(&id[..8]), "{row}");

    let export_path = server.dir.path().join("export.json");
    let exported = client(
        &server,
        &[
            "sessions",
            "export",
            &id,
            "-o",
            export_path.to_str().expect("utf8"),
        ],
    )
    .await;
    assert_eq!(exported.code, Some(0), "{}", exported.stderr);
    let archive: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&export_path).expect("file")).expect("json");
    assert_eq!(archive["session"]["displayName"], "renamed by cli");
    assert_eq!(archive["session"]["pinned"], true);

    // rm moves it to the trash (see tests/trash.rs); purge deletes it for good.
    let removed = client(&server, &["sessions", "rm", &id]).await;
    assert_eq!(removed.code, Some(0), "{}", removed.stderr);
    let purged = client(&server, &["sessions", "purge", &id]).await;
    assert_eq!(purged.code, Some(0), "{}", purged.stderr);
    let shown = client(&server, &["sessions", "show", &id]).await;
    assert_eq!(shown.code, Some(1));
    assert!(
        shown.stderr.contains("SESSION_NOT_FOUND"),
        "{}",
        shown.stderr
    );
}

#[tokio::test]
async fn client_commands_explain_an_unreachable_server() {
    // A port nothing listens on: bind, note it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let result = run(octo().args([
        "--server",
        &format!("http://127.0.0.1:{port}"),
        "sessions",
        "list",
    ]))
    .await;
    assert_eq!(result.code, Some(1));
    assert!(result.stderr.contains("octo serve"), "{}", result.stderr);
}
