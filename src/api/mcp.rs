//! McpServerService: validate the request, call the runtime's MCP servers, convert the
//! answer. Secrets (env and header values) are masked by the runtime before they get
//! here.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::convert::{self, parse_name};
use crate::{
    domain::{
        Error, Result,
        mcp::{McpServer, McpServerState, McpServerStatus, McpTransport},
    },
    pb::{self, mcp_server_service_server::McpServerService},
    runtime::{McpServers, mcp::McpServerView},
    tools::Access,
};

const COLLECTION: &str = "mcpServers";

pub struct McpServerApi {
    servers: Arc<McpServers>,
}

impl McpServerApi {
    pub fn new(servers: Arc<McpServers>) -> Self {
        Self { servers }
    }
}

fn name(id: &str) -> String {
    format!("{COLLECTION}/{id}")
}

fn state_pb(state: McpServerState) -> pb::McpServerState {
    match state {
        McpServerState::Disabled => pb::McpServerState::Disabled,
        McpServerState::Connecting => pb::McpServerState::Connecting,
        McpServerState::Connected => pb::McpServerState::Connected,
        McpServerState::Failed => pb::McpServerState::Failed,
    }
}

fn status_pb(status: &McpServerStatus) -> pb::McpServerStatus {
    pb::McpServerStatus {
        state: state_pb(status.state) as i32,
        error: status.error.clone(),
        tool_count: status.tool_count.min(i32::MAX as u32) as i32,
        restarts: status.restarts.min(i32::MAX as u32) as i32,
    }
}

fn server_pb(view: &McpServerView) -> pb::McpServer {
    let server = &view.server;
    let transport = match &server.transport {
        McpTransport::Stdio {
            command,
            args,
            env,
            working_dir,
        } => pb::mcp_server::Transport::Stdio(pb::StdioTransport {
            command: command.clone(),
            args: args.clone(),
            env: env.clone().into_iter().collect(),
            working_dir: working_dir.clone(),
        }),
        McpTransport::Http { url, headers } => pb::mcp_server::Transport::Http(pb::HttpTransport {
            url: url.clone(),
            headers: headers.clone().into_iter().collect(),
        }),
    };
    pb::McpServer {
        name: name(&server.id),
        display_name: server.display_name.clone(),
        disabled: !server.enabled,
        transport: Some(transport),
        status: Some(status_pb(&view.status)),
        create_time: convert::timestamp(server.create_time),
        update_time: convert::timestamp(server.update_time),
        etag: convert::etag(server.revision),
    }
}

/// The server a client sent (`id` from the name or the create request).
fn server(given: &pb::McpServer, id: &str) -> Result<McpServer> {
    let transport = match &given.transport {
        Some(pb::mcp_server::Transport::Stdio(stdio)) => McpTransport::Stdio {
            command: stdio.command.clone(),
            args: stdio.args.clone(),
            env: stdio.env.clone().into_iter().collect(),
            working_dir: stdio.working_dir.clone(),
        },
        Some(pb::mcp_server::Transport::Http(http)) => McpTransport::Http {
            url: http.url.clone(),
            headers: http.headers.clone().into_iter().collect(),
        },
        None => {
            return Err(Error::invalid(
                "transport",
                "set stdio (command, args, env, working_dir) or http (url, headers)",
            ));
        }
    };
    let mut server = McpServer::new(id, transport);
    server.display_name = given.display_name.clone();
    server.enabled = !given.disabled;
    Ok(server)
}

fn permission_pb(access: Access) -> pb::ToolPermission {
    match access {
        Access::Read => pb::ToolPermission::Read,
        Access::Write => pb::ToolPermission::Write,
        Access::Execute => pb::ToolPermission::Execute,
    }
}

#[tonic::async_trait]
impl McpServerService for McpServerApi {
    async fn list_mcp_servers(
        &self,
        _request: Request<pb::ListMcpServersRequest>,
    ) -> Result<Response<pb::ListMcpServersResponse>, Status> {
        let servers = self.servers.list().await?;
        Ok(Response::new(pb::ListMcpServersResponse {
            mcp_servers: servers.iter().map(server_pb).collect(),
        }))
    }

    async fn get_mcp_server(
        &self,
        request: Request<pb::GetMcpServerRequest>,
    ) -> Result<Response<pb::McpServer>, Status> {
        let req = request.into_inner();
        let id = parse_name(&req.name, COLLECTION, "name")?;
        Ok(Response::new(server_pb(&self.servers.get(id).await?)))
    }

    async fn create_mcp_server(
        &self,
        request: Request<pb::CreateMcpServerRequest>,
    ) -> Result<Response<pb::McpServer>, Status> {
        let req = request.into_inner();
        let given = req
            .mcp_server
            .ok_or_else(|| Error::invalid("mcp_server", "is required"))?;
        let server = server(&given, &req.mcp_server_id).map_err(|e| e.within("mcp_server."))?;
        let created = self
            .servers
            .create(server)
            .await
            .map_err(|e| rename_id(e.within("mcp_server.")))?;
        tracing::info!(server = %created.server.id, transport = created.server.transport_name(), "MCP server created");
        Ok(Response::new(server_pb(&created)))
    }

    async fn update_mcp_server(
        &self,
        request: Request<pb::UpdateMcpServerRequest>,
    ) -> Result<Response<pb::McpServer>, Status> {
        let req = request.into_inner();
        let given = req
            .mcp_server
            .ok_or_else(|| Error::invalid("mcp_server", "is required"))?;
        let id = parse_name(&given.name, COLLECTION, "mcp_server.name")?;
        let server = server(&given, id).map_err(|e| e.within("mcp_server."))?;
        let updated = self
            .servers
            .update(server, convert::expected_revision(&given.etag))
            .await
            .map_err(|e| e.within("mcp_server."))?;
        tracing::info!(server = %id, "MCP server updated");
        Ok(Response::new(server_pb(&updated)))
    }

    async fn delete_mcp_server(
        &self,
        request: Request<pb::DeleteMcpServerRequest>,
    ) -> Result<Response<()>, Status> {
        let req = request.into_inner();
        let id = parse_name(&req.name, COLLECTION, "name")?;
        self.servers
            .delete(id, convert::expected_revision(&req.etag))
            .await?;
        tracing::info!(server = %id, "MCP server deleted");
        Ok(Response::new(()))
    }

    async fn list_tools(
        &self,
        request: Request<pb::ListToolsRequest>,
    ) -> Result<Response<pb::ListToolsResponse>, Status> {
        let req = request.into_inner();
        let server = match req.mcp_server.as_str() {
            "" => None,
            name => Some(parse_name(name, COLLECTION, "mcp_server")?),
        };
        let session = match req.session.as_str() {
            "" => None,
            name => Some(parse_name(name, "sessions", "session")?),
        };
        let tools = self.servers.list_tools(server, session).await?;
        Ok(Response::new(pb::ListToolsResponse {
            tools: tools
                .into_iter()
                .map(|tool| pb::Tool {
                    parameters: match &tool.spec.parameters {
                        serde_json::Value::Object(map) => Some(convert::struct_pb(map)),
                        _ => None,
                    },
                    name: tool.spec.name,
                    description: tool.spec.description,
                    source: tool
                        .server
                        .map_or_else(|| "builtin".to_owned(), |id| name(&id)),
                    permission: permission_pb(tool.access) as i32,
                })
                .collect(),
        }))
    }
}

/// The id of a create request is its own field, not the server's.
fn rename_id(err: Error) -> Error {
    match err {
        Error::InvalidArgument(violations) => Error::InvalidArgument(
            violations
                .into_iter()
                .map(|mut v| {
                    if v.field == "mcp_server.id" {
                        v.field = "mcp_server_id".into();
                    }
                    v
                })
                .collect(),
        ),
        other => other,
    }
}
