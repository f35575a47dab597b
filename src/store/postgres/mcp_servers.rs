//! MCP servers in Postgres: one row per server, its config as JSON.

use async_trait::async_trait;
use tokio_postgres::Row;

use super::{
    PostgresStore, decode_all, execute, get, is_unique_violation, pg_error, query, try_execute,
};
use crate::{
    domain::{Error, Resource, Result, mcp::McpServer},
    store::McpServerStore,
};

fn from_row(row: &Row) -> Result<McpServer> {
    serde_json::from_str(get::<&str>(row, 0)?).map_err(super::storage_error)
}

fn encode(server: &McpServer) -> Result<String> {
    serde_json::to_string(server).map_err(super::storage_error)
}

#[async_trait]
impl McpServerStore for PostgresStore {
    async fn list_mcp_servers(&self) -> Result<Vec<McpServer>> {
        let client = self.client().await?;
        let rows = query(&client, "SELECT config FROM mcp_servers ORDER BY id", &[]).await?;
        decode_all(&rows, from_row)
    }

    async fn create_mcp_server(&self, server: &McpServer) -> Result<()> {
        let client = self.client().await?;
        try_execute(
            &client,
            "INSERT INTO mcp_servers (id, create_time, revision, config) VALUES ($1, $2, $3, $4)",
            &[
                &server.id,
                &server.create_time.as_micros(),
                &server.revision,
                &encode(server)?,
            ],
        )
        .await
        .map_err(|err| {
            if is_unique_violation(&err) {
                Error::AlreadyExists {
                    resource: Resource::McpServer,
                    name: format!("mcpServers/{}", server.id),
                }
            } else {
                pg_error(err)
            }
        })?;
        Ok(())
    }

    async fn update_mcp_server(&self, server: &McpServer, expected_revision: i64) -> Result<bool> {
        let client = self.client().await?;
        let changed = execute(
            &client,
            "UPDATE mcp_servers SET revision = $2, config = $3 WHERE id = $1 AND revision = $4",
            &[
                &server.id,
                &server.revision,
                &encode(server)?,
                &expected_revision,
            ],
        )
        .await?;
        Ok(changed == 1)
    }

    async fn delete_mcp_server(&self, id: &str) -> Result<bool> {
        let client = self.client().await?;
        Ok(execute(&client, "DELETE FROM mcp_servers WHERE id = $1", &[&id]).await? == 1)
    }
}
