//! MCP servers as a managed resource: their configs in the store (seeded from
//! `[mcp.<id>]` at start, managed over the API after), and the connections that follow
//! them (`tools::mcp`). Reads join each config with its live status.
//!
//! The store is the truth: every turn re-reads the list (one query) and brings the
//! connections in line before taking their tools, so a server added, changed or
//! removed through any server of a cluster applies to the next turn everywhere. API
//! writes store first, then apply.

use std::{collections::BTreeMap, sync::Arc};

use crate::{
    config::McpConfig,
    domain::{
        Error, Resource, Result, Timestamp,
        mcp::{McpServer, McpServerStatus},
    },
    domain::{mcp::TOOL_SEPARATOR, tool::ToolSpec},
    runtime::Sessions,
    store::Store,
    tools::{Access, Tool, Toolbox, mcp::McpConnections, offered},
};

/// A server's config (secrets masked) and its live status.
#[derive(Clone, Debug, PartialEq)]
pub struct McpServerView {
    pub server: McpServer,
    pub status: McpServerStatus,
}

pub struct McpServers {
    store: Arc<dyn Store>,
    connections: Arc<McpConnections>,
    builtin: Toolbox,
    sessions: Arc<Sessions>,
}

/// A tool as ListTools shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolListing {
    pub spec: ToolSpec,
    /// The MCP server's id; `None` for a built-in tool.
    pub server: Option<String>,
    pub access: Access,
}

fn etag_mismatch(id: &str) -> Error {
    Error::EtagMismatch {
        resource: Resource::McpServer,
        name: format!("mcpServers/{id}"),
    }
}

fn not_found(id: &str) -> Error {
    Error::not_found(Resource::McpServer, format!("mcpServers/{id}"))
}

impl McpServers {
    /// Adds the configured servers the store does not have yet (a server changed or
    /// deleted over the API stays so across restarts) and starts every enabled one.
    pub async fn open(
        store: Arc<dyn Store>,
        connections: Arc<McpConnections>,
        configured: &BTreeMap<String, McpConfig>,
        builtin: Toolbox,
        sessions: Arc<Sessions>,
    ) -> Result<Self> {
        let stored = store.list_mcp_servers().await?;
        for (id, config) in configured {
            if stored.iter().any(|s| &s.id == id) {
                continue;
            }
            let server = config
                .to_server(id)
                .map_err(|err| Error::invalid(format!("mcp.{id}"), err))?;
            tracing::info!(server = %id, transport = server.transport_name(), "adding the configured MCP server");
            match store.create_mcp_server(&server).await {
                // Another server of the cluster seeded it first.
                Ok(()) | Err(Error::AlreadyExists { .. }) => {}
                Err(err) => return Err(err),
            }
        }
        let servers = Self {
            store,
            connections,
            builtin,
            sessions,
        };
        servers.sync().await?;
        Ok(servers)
    }

    /// Brings the connections in line with the store.
    async fn sync(&self) -> Result<Vec<McpServer>> {
        let stored = self.store.list_mcp_servers().await?;
        self.connections.sync(&stored);
        Ok(stored)
    }

    fn view(&self, server: &McpServer) -> McpServerView {
        McpServerView {
            status: self
                .connections
                .status(&server.id)
                .unwrap_or_else(McpServerStatus::disabled),
            server: server.masked(),
        }
    }

    /// Every server, by id.
    pub async fn list(&self) -> Result<Vec<McpServerView>> {
        Ok(self.sync().await?.iter().map(|s| self.view(s)).collect())
    }

    pub async fn get(&self, id: &str) -> Result<McpServerView> {
        self.sync()
            .await?
            .iter()
            .find(|s| s.id == id)
            .map(|s| self.view(s))
            .ok_or_else(|| not_found(id))
    }

    /// Validates, stores and starts a new server.
    pub async fn create(&self, mut server: McpServer) -> Result<McpServerView> {
        let now = Timestamp::now();
        server.create_time = now;
        server.update_time = now;
        server.revision = 1;
        server.validate()?;
        self.store.create_mcp_server(&server).await?;
        self.connections.set(server.clone());
        Ok(self.view(&server))
    }

    /// Replaces a server's config (masked secrets sent back keep the stored values);
    /// its connection restarts when the transport or the enabled flag changed.
    pub async fn update(
        &self,
        mut server: McpServer,
        expected_revision: Option<i64>,
    ) -> Result<McpServerView> {
        let stored = self
            .store
            .list_mcp_servers()
            .await?
            .into_iter()
            .find(|s| s.id == server.id)
            .ok_or_else(|| not_found(&server.id))?;
        if expected_revision.is_some_and(|r| r != stored.revision) {
            return Err(etag_mismatch(&server.id));
        }
        server.keep_masked_secrets(&stored);
        server.validate()?;
        server.create_time = stored.create_time;
        server.update_time = Timestamp::now();
        server.revision = stored.revision + 1;
        if !self
            .store
            .update_mcp_server(&server, stored.revision)
            .await?
        {
            return Err(etag_mismatch(&server.id));
        }
        self.connections.set(server.clone());
        Ok(self.view(&server))
    }

    /// Deletes a server and stops it.
    pub async fn delete(&self, id: &str, expected_revision: Option<i64>) -> Result<()> {
        if let Some(expected) = expected_revision {
            let current = self.get(id).await?;
            if current.server.revision != expected {
                return Err(etag_mismatch(id));
            }
        }
        if !self.store.delete_mcp_server(id).await? {
            return Err(not_found(id));
        }
        self.connections.remove(id);
        Ok(())
    }

    /// Tools with their source and permission class: one server's (`server`), what the
    /// session `session`'s turns are offered, or (neither) every built-in tool and every
    /// enabled server's.
    pub async fn list_tools(
        &self,
        server: Option<&str>,
        session: Option<&str>,
    ) -> Result<Vec<ToolListing>> {
        let (mode, only, attended) = match session {
            Some(id) => {
                let session = self.sessions.get(id).await?;
                (
                    Some(session.permission_mode),
                    session.mcp_servers,
                    session.source.is_attended(),
                )
            }
            None => (None, None, true),
        };
        let mut listed: Vec<ToolListing> = match server {
            Some(id) => {
                self.get(id).await?;
                self.connections
                    .server_tools(id)
                    .into_iter()
                    .map(|info| ToolListing {
                        spec: ToolSpec {
                            name: info.qualified_name,
                            description: info.description,
                            parameters: info.input_schema,
                        },
                        access: if info.read_only {
                            Access::Read
                        } else {
                            Access::Write
                        },
                        server: Some(info.server),
                    })
                    .collect()
            }
            None => {
                let builtin = self.builtin.list().iter().map(|tool| (tool.clone(), None));
                let mcp = self.tools(only.as_deref()).await.into_iter().map(|tool| {
                    let server = tool
                        .spec()
                        .name
                        .split_once(TOOL_SEPARATOR)
                        .map(|(server, _)| server.to_owned());
                    (tool, server)
                });
                builtin
                    .chain(mcp)
                    .map(|(tool, server)| ToolListing {
                        spec: tool.spec(),
                        access: tool.access(),
                        server,
                    })
                    .collect()
            }
        };
        if let Some(mode) = mode {
            listed.retain(|tool| offered(&tool.spec.name, tool.access, mode, attended));
        }
        Ok(listed)
    }

    /// The tools of every enabled server, or of the enabled ones among `only` (a
    /// session's choice), for one turn (see [`McpConnections::tools`]).
    pub async fn tools(&self, only: Option<&[String]>) -> Vec<Arc<dyn Tool>> {
        if let Err(err) = self.sync().await {
            tracing::warn!(error = %err, "cannot re-read the MCP servers; using the running set");
        }
        self.connections.tools(only).await
    }
}
