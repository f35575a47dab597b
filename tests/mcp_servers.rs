//! MCP servers as a managed resource: McpServerService over gRPC and JSON/HTTP against a
//! real Octo server running the reference MCP server
//! (`@modelcontextprotocol/server-everything`, installed by .ci/setup) over stdio: live
//! status, secrets masked on read and kept when sent back masked, ListTools with sources
//! and permission classes (and a session's READ_ONLY filter), delete, config seeding,
//! and bad input with field violations.

use crate::common;

use std::{path::PathBuf, time::Duration};

use common::{
    TIMEOUT, TestServer, collect_until, create_in_mode, finishes, reason, send_text, sent_turn,
    subscribe, violated_fields,
};
use octo::{config::McpConfig, pb};
use pb::mcp_server_service_client::McpServerServiceClient;
use tonic::transport::Channel;

const SECRET: &str = "secret-token-0123456789";

fn everything() -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(".ci/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(
        path.is_file(),
        "{} is missing: run `bash .ci/setup`",
        path.display()
    );
    path.display().to_string()
}

fn stdio(env: &[(&str, &str)]) -> pb::McpServer {
    pb::McpServer {
        display_name: "Everything".into(),
        transport: Some(pb::mcp_server::Transport::Stdio(pb::StdioTransport {
            command: "node".into(),
            args: vec![everything(), "stdio".into()],
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            working_dir: String::new(),
        })),
        ..Default::default()
    }
}

async fn client(server: &TestServer) -> McpServerServiceClient<Channel> {
    McpServerServiceClient::new(server.channel().await)
}

/// Polls GetMcpServer until `state` (the API offers no watch; the poll is the condition).
async fn wait_for_state(
    client: &mut McpServerServiceClient<Channel>,
    name: &str,
    state: pb::McpServerState,
) -> pb::McpServer {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            let server = client
                .get_mcp_server(pb::GetMcpServerRequest { name: name.into() })
                .await
                .expect("get")
                .into_inner();
            let status = server.status.clone().expect("status");
            if status.state() == state {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name} never reached {state:?}"))
}

fn env_of(server: &pb::McpServer) -> std::collections::HashMap<String, String> {
    match &server.transport {
        Some(pb::mcp_server::Transport::Stdio(stdio)) => stdio.env.clone(),
        other => panic!("stdio transport, got {other:?}"),
    }
}

async fn tools(
    client: &mut McpServerServiceClient<Channel>,
    mcp_server: &str,
    session: &str,
) -> Vec<pb::Tool> {
    client
        .list_tools(pb::ListToolsRequest {
            mcp_server: mcp_server.into(),
            session: session.into(),
        })
        .await
        .expect("list tools")
        .into_inner()
        .tools
}

fn names(tools: &[pb::Tool]) -> Vec<&str> {
    tools.iter().map(|t| t.name.as_str()).collect()
}

#[tokio::test]
async fn servers_are_managed_over_grpc_with_live_status_and_masked_secrets() {
    let server = TestServer::start().await;
    let mut mcp = client(&server).await;
    let created = mcp
        .create_mcp_server(pb::CreateMcpServerRequest {
            mcp_server: Some(stdio(&[("API_TOKEN", SECRET)])),
            mcp_server_id: "everything".into(),
        })
        .await
        .expect("create")
        .into_inner();
    assert_eq!(created.name, "mcpServers/everything");
    assert_eq!(created.display_name, "Everything");
    let shown = env_of(&created)["API_TOKEN"].clone();
    assert!(
        shown.contains("****") && !shown.contains("0123456789"),
        "{shown}"
    );
    let connected = wait_for_state(&mut mcp, &created.name, pb::McpServerState::Connected).await;
    let status = connected.status.clone().expect("status");
    assert!(status.tool_count >= 10, "{status:?}");
    assert!(status.error.is_empty());

    // Its tools, with schema, source and permission class.
    let listed = tools(&mut mcp, "mcpServers/everything", "").await;
    assert_eq!(listed.len() as i32, status.tool_count);
    let echo = listed
        .iter()
        .find(|t| t.name == "everything__echo")
        .expect("echo");
    assert_eq!(echo.source, "mcpServers/everything");
    assert_eq!(echo.permission(), pb::ToolPermission::Read);
    assert!(
        echo.parameters
            .as_ref()
            .is_some_and(|p| p.fields.contains_key("properties")),
        "{echo:?}"
    );
    let toggle = listed
        .iter()
        .find(|t| t.name == "everything__toggle-simulated-logging")
        .expect("toggle");
    assert_eq!(toggle.permission(), pb::ToolPermission::Write);

    // Everything: the built-ins first, then the server's.
    let all = tools(&mut mcp, "", "").await;
    assert_eq!(
        names(&all[..8]),
        [
            "read_file",
            "list_dir",
            "glob",
            "grep",
            "write_file",
            "edit_file",
            "shell",
            "ask_user"
        ]
    );
    assert!(all[..8].iter().all(|t| t.source == "builtin"));
    assert_eq!(all[6].permission(), pb::ToolPermission::Execute);
    assert_eq!(all[7].permission(), pb::ToolPermission::Read);
    assert!(names(&all).contains(&"everything__echo"));
    // What a READ_ONLY session's turns are offered: reads only.
    let read_only = create_in_mode(
        &mut server.sessions().await,
        "ro",
        pb::PermissionMode::ReadOnly,
    )
    .await;
    let offered = tools(&mut mcp, "", &read_only.name).await;
    let offered = names(&offered);
    assert!(offered.contains(&"read_file") && offered.contains(&"everything__echo"));
    for hidden in [
        "shell",
        "write_file",
        "everything__toggle-simulated-logging",
    ] {
        assert!(!offered.contains(&hidden), "{hidden} offered in READ_ONLY");
    }

    // The masked value sent back keeps the stored secret; disabling stops the server.
    let mut update = connected.clone();
    update.disabled = true;
    let disabled = mcp
        .update_mcp_server(pb::UpdateMcpServerRequest {
            mcp_server: Some(update),
        })
        .await
        .expect("update")
        .into_inner();
    assert!(disabled.disabled);
    assert_ne!(disabled.etag, connected.etag);
    assert_eq!(
        disabled.status.clone().expect("status").state(),
        pb::McpServerState::Disabled
    );
    assert!(!names(&tools(&mut mcp, "", "").await).contains(&"everything__echo"));
    let mut update = disabled.clone();
    update.disabled = false;
    mcp.update_mcp_server(pb::UpdateMcpServerRequest {
        mcp_server: Some(update.clone()),
    })
    .await
    .expect("enable");
    // A stale etag is refused.
    let stale = mcp
        .update_mcp_server(pb::UpdateMcpServerRequest {
            mcp_server: Some(update),
        })
        .await
        .expect_err("stale etag");
    assert_eq!(stale.code(), tonic::Code::Aborted);
    wait_for_state(&mut mcp, &created.name, pb::McpServerState::Connected).await;
    let session = create_in_mode(
        &mut server.sessions().await,
        "env",
        pb::PermissionMode::AutoApprove,
    )
    .await;
    let mut chat = server.chat().await;
    let mut watcher = subscribe(&mut chat, &session.name, 0).await;
    let turn = sent_turn(
        &send_text(
            &mut chat,
            &session.name,
            "/tool everything__get-env {}",
            pb::BusyPolicy::Enqueue,
        )
        .await
        .expect("send"),
    );
    let events = collect_until(&mut watcher, finishes(&turn.name)).await;
    let env = events
        .iter()
        .find_map(|e| match &e.kind {
            Some(pb::session_event::Kind::ToolCallFinished(f)) => {
                f.record.as_ref().and_then(|r| r.result.clone())
            }
            _ => None,
        })
        .expect("tool result")
        .output;
    let env: serde_json::Value = serde_json::from_str(&env).expect("json");
    assert_eq!(
        env["API_TOKEN"], SECRET,
        "the stored secret reached the server"
    );

    // Deleted: gone, and its tools with it.
    mcp.delete_mcp_server(pb::DeleteMcpServerRequest {
        name: created.name.clone(),
        etag: String::new(),
    })
    .await
    .expect("delete");
    let missing = mcp
        .get_mcp_server(pb::GetMcpServerRequest {
            name: created.name.clone(),
        })
        .await
        .expect_err("gone");
    assert_eq!(missing.code(), tonic::Code::NotFound);
    assert!(
        !names(&tools(&mut mcp, "", "").await)
            .iter()
            .any(|n| n.starts_with("everything__"))
    );
}

#[tokio::test]
async fn bad_input_names_every_field_and_ids_are_unique() {
    let server = TestServer::start().await;
    let mut mcp = client(&server).await;
    let mut bad = stdio(&[("1BAD", "x")]);
    if let Some(pb::mcp_server::Transport::Stdio(stdio)) = &mut bad.transport {
        stdio.command.clear();
        stdio.working_dir = "relative/dir".into();
    }
    let err = mcp
        .create_mcp_server(pb::CreateMcpServerRequest {
            mcp_server: Some(bad),
            mcp_server_id: "Bad_Id".into(),
        })
        .await
        .expect_err("invalid");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        violated_fields(&err),
        [
            "mcp_server_id",
            "mcp_server.stdio.command",
            "mcp_server.stdio.env[\"1BAD\"]",
            "mcp_server.stdio.working_dir"
        ]
    );
    let err = mcp
        .create_mcp_server(pb::CreateMcpServerRequest {
            mcp_server: Some(pb::McpServer::default()),
            mcp_server_id: "x".into(),
        })
        .await
        .expect_err("no transport");
    assert_eq!(violated_fields(&err), ["mcp_server.transport"]);
    let http = pb::McpServer {
        transport: Some(pb::mcp_server::Transport::Http(pb::HttpTransport {
            url: "http://127.0.0.1:9/mcp".into(),
            headers: [("Authorization".to_owned(), "Bearer abc****def".to_owned())].into(),
        })),
        disabled: true,
        ..Default::default()
    };
    let err = mcp
        .create_mcp_server(pb::CreateMcpServerRequest {
            mcp_server: Some(http.clone()),
            mcp_server_id: "remote".into(),
        })
        .await
        .expect_err("a masked secret is not a value");
    assert_eq!(
        violated_fields(&err),
        ["mcp_server.http.headers[\"Authorization\"]"]
    );
    let mut http = http;
    if let Some(pb::mcp_server::Transport::Http(h)) = &mut http.transport {
        h.headers
            .insert("Authorization".into(), "Bearer real".into());
    }
    let request = pb::CreateMcpServerRequest {
        mcp_server: Some(http),
        mcp_server_id: "remote".into(),
    };
    mcp.create_mcp_server(request.clone())
        .await
        .expect("create");
    let err = mcp.create_mcp_server(request).await.expect_err("taken");
    assert_eq!(err.code(), tonic::Code::AlreadyExists);
    let err = mcp
        .get_mcp_server(pb::GetMcpServerRequest {
            name: "mcpServers/No".into(),
        })
        .await
        .expect_err("bad name");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let err = mcp
        .delete_mcp_server(pb::DeleteMcpServerRequest {
            name: "mcpServers/remote".into(),
            etag: "\"7\"".into(),
        })
        .await
        .expect_err("etag");
    assert_eq!(err.code(), tonic::Code::Aborted);
    assert!(!reason(&err).is_empty());
}

#[tokio::test]
async fn configured_servers_are_seeded_and_served_as_json() {
    let mut configured = McpConfig::stdio("node", &[&everything(), "stdio"]);
    configured.env.insert("API_TOKEN".into(), SECRET.into());
    let server = TestServer::start_with(move |config| {
        config.mcp.insert("everything".into(), configured);
    })
    .await;
    let http = reqwest::Client::new();
    let listed: serde_json::Value = http
        .get(format!("{}/v1/mcpServers", server.url()))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    let seeded = &listed["mcpServers"][0];
    assert_eq!(seeded["name"], "mcpServers/everything");
    assert_eq!(seeded["stdio"]["command"], "node");
    let token = seeded["stdio"]["env"]["API_TOKEN"].as_str().expect("env");
    assert!(
        token.contains("****") && !token.contains("0123456789"),
        "{token}"
    );
    assert!(seeded["status"]["state"].is_string(), "{seeded}");
    assert!(!listed.to_string().contains(SECRET));

    // Created over JSON too.
    let response = http
        .post(format!("{}/v1/mcpServers?mcpServerId=remote", server.url()))
        .json(&serde_json::json!({
            "http": {"url": "http://127.0.0.1:9/mcp", "headers": {"Authorization": "Bearer xyz-0123456789"}},
            "disabled": true
        }))
        .send()
        .await
        .expect("create");
    assert_eq!(response.status(), 200);
    let created: serde_json::Value = response.json().await.expect("json");
    assert_eq!(created["name"], "mcpServers/remote");
    assert_eq!(created["status"]["state"], "MCP_SERVER_STATE_DISABLED");
    assert!(!created.to_string().contains("xyz-0123456789"));
}

#[tokio::test]
async fn a_session_chooses_its_mcp_servers() {
    let mut configured = McpConfig::stdio("node", &[&everything(), "stdio"]);
    configured.enabled = true;
    let server = TestServer::start_with(move |config| {
        config.mcp.insert("everything".into(), configured);
    })
    .await;
    let mut mcp = client(&server).await;
    wait_for_state(
        &mut mcp,
        "mcpServers/everything",
        pb::McpServerState::Connected,
    )
    .await;
    let mut sessions = server.sessions().await;
    // Default: every enabled server.
    let all = create_in_mode(&mut sessions, "all", pb::PermissionMode::AutoApprove).await;
    assert_eq!(all.mcp_servers, None);
    assert!(names(&tools(&mut mcp, "", &all.name).await).contains(&"everything__echo"));

    // None chosen: the server's tools are not offered, and a call finds no such tool.
    let mut none = common::session_in_mode("none", pb::PermissionMode::AutoApprove);
    none.mcp_servers = Some(pb::McpServerSelection { names: Vec::new() });
    let none = sessions
        .create_session(pb::CreateSessionRequest {
            session: Some(none),
        })
        .await
        .expect("create")
        .into_inner();
    assert_eq!(
        none.mcp_servers,
        Some(pb::McpServerSelection { names: Vec::new() })
    );
    let offered = tools(&mut mcp, "", &none.name).await;
    assert!(
        !names(&offered)
            .iter()
            .any(|n| n.starts_with("everything__"))
    );
    assert!(names(&offered).contains(&"read_file"));
    let mut chat = server.chat().await;
    let mut watcher = subscribe(&mut chat, &none.name, 0).await;
    let turn = sent_turn(
        &send_text(
            &mut chat,
            &none.name,
            "/tool everything__echo {\"message\": \"x\"}",
            pb::BusyPolicy::Enqueue,
        )
        .await
        .expect("send"),
    );
    let events = collect_until(&mut watcher, finishes(&turn.name)).await;
    let output = events
        .iter()
        .find_map(|e| match &e.kind {
            Some(pb::session_event::Kind::ToolCallFinished(f)) => {
                f.record.as_ref().and_then(|r| r.result.clone())
            }
            _ => None,
        })
        .expect("tool result")
        .output;
    assert!(output.contains("no tool named"), "{output}");

    // Chosen by update: offered again.
    let updated = sessions
        .update_session(pb::UpdateSessionRequest {
            session: Some(pb::Session {
                name: none.name.clone(),
                mcp_servers: Some(pb::McpServerSelection {
                    names: vec!["mcpServers/everything".into()],
                }),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["mcp_servers".into()],
            }),
        })
        .await
        .expect("update")
        .into_inner();
    assert_eq!(
        updated.mcp_servers.expect("chosen").names,
        ["mcpServers/everything"]
    );
    assert!(names(&tools(&mut mcp, "", &none.name).await).contains(&"everything__echo"));

    // A bad name is a field violation.
    let mut bad = common::session_in_mode("bad", pb::PermissionMode::Ask);
    bad.mcp_servers = Some(pb::McpServerSelection {
        names: vec!["servers/x".into()],
    });
    let err = sessions
        .create_session(pb::CreateSessionRequest { session: Some(bad) })
        .await
        .expect_err("bad name");
    assert_eq!(violated_fields(&err), ["session.mcp_servers.names[0]"]);
}
