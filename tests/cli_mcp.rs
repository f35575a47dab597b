//! `octo mcp ...` as a user runs it: the real binary against a real server that runs the
//! reference MCP server (installed by .ci/setup) over stdio.

use crate::common;

use std::{path::PathBuf, time::Duration};

use common::{TIMEOUT, TestServer};

use common::cli::Run;

async fn octo(server: &TestServer, args: &[&str], env: &[(&str, &str)]) -> Run {
    common::cli::octo_with(server, args, |command| {
        command.envs(env.iter().copied());
    })
    .await
}

#[tokio::test]
async fn add_list_tools_and_rm() {
    let everything = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(".ci/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(everything.is_file(), "run `bash .ci/setup`");
    let server = TestServer::start().await;
    let secret = "token-from-my-env-0123456789";
    let added = octo(
        &server,
        &[
            "mcp",
            "add",
            "everything",
            "--env",
            "MY_TOKEN",
            "--",
            "node",
            &everything.display().to_string(),
            "stdio",
        ],
        &[("MY_TOKEN", secret)],
    )
    .await
    .ok();
    assert!(
        added.stdout.contains("Added mcpServers/everything."),
        "{}",
        added.stdout
    );
    assert!(
        added.stdout.contains("MY_TOKEN=toke****6789"),
        "{}",
        added.stdout
    );
    assert!(!added.stdout.contains(secret));

    // The list shows the live state; wait until the server has connected.
    let listed = tokio::time::timeout(TIMEOUT, async {
        loop {
            let run = octo(&server, &["mcp", "list", "--json"], &[]).await.ok();
            let json = run.json();
            if json["mcpServers"][0]["status"]["state"] == "MCP_SERVER_STATE_CONNECTED" {
                return json;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("connected");
    assert!(listed["mcpServers"][0]["status"]["toolCount"].as_i64() >= Some(10));
    let table = octo(&server, &["mcp", "list"], &[]).await.ok();
    let row = table
        .stdout
        .lines()
        .find(|l| l.starts_with("everything"))
        .expect("a row");
    assert!(row.contains("connected") && row.contains("stdio"), "{row}");

    let tools = octo(&server, &["mcp", "tools", "everything"], &[])
        .await
        .ok();
    let echo = tools
        .stdout
        .lines()
        .find(|l| l.starts_with("everything__echo "))
        .unwrap_or_else(|| panic!("no echo:\n{}", tools.stdout));
    assert!(
        echo.contains("read") && echo.contains("mcpServers/everything"),
        "{echo}"
    );
    let all = octo(&server, &["mcp", "tools"], &[]).await.ok();
    assert!(
        all.stdout
            .lines()
            .any(|l| l.starts_with("shell ") && l.contains("execute"))
    );

    octo(&server, &["mcp", "rm", "everything"], &[]).await.ok();
    let gone = octo(&server, &["mcp", "show", "everything"], &[]).await;
    assert_eq!(gone.code, Some(1), "{}", gone.stdout);
    assert!(gone.stderr.contains("not found"), "{}", gone.stderr);
    let empty = octo(&server, &["mcp", "list"], &[]).await.ok();
    assert_eq!(empty.stdout.trim(), "No MCP servers.");

    // Mistakes fail before any request.
    let bad = octo(
        &server,
        &["mcp", "add", "x", "--env", "UNSET_VAR_X", "--", "c"],
        &[],
    )
    .await;
    assert_eq!(bad.code, Some(1));
    assert!(bad.stderr.contains("UNSET_VAR_X"), "{}", bad.stderr);
}
