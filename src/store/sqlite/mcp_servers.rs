//! MCP servers in SQLite: one row per server, its config as JSON.

use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

use super::{SqliteStore, immediate, storage_error};
use crate::{
    domain::{Error, Resource, Result, mcp::McpServer},
    store::McpServerStore,
};

fn decode(config: &str) -> Result<McpServer> {
    serde_json::from_str(config).map_err(storage_error)
}

fn encode(server: &McpServer) -> Result<String> {
    serde_json::to_string(server).map_err(storage_error)
}

#[async_trait]
impl McpServerStore for SqliteStore {
    async fn list_mcp_servers(&self) -> Result<Vec<McpServer>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached("SELECT config FROM mcp_servers ORDER BY id")
                .map_err(storage_error)?;
            let rows = stmt
                .query_map([], |row| row.get::<_, String>(0))
                .map_err(storage_error)?;
            rows.map(|row| decode(&row.map_err(storage_error)?))
                .collect()
        })
        .await
    }

    async fn create_mcp_server(&self, server: &McpServer) -> Result<()> {
        let server = server.clone();
        self.write(move |conn| {
            let tx = immediate(conn)?;
            let taken = tx
                .query_row("SELECT 1 FROM mcp_servers WHERE id = ?1", [&server.id], |_| Ok(()))
                .optional()
                .map_err(storage_error)?
                .is_some();
            if taken {
                return Err(Error::AlreadyExists {
                    resource: Resource::McpServer,
                    name: format!("mcpServers/{}", server.id),
                });
            }
            tx.execute(
                "INSERT INTO mcp_servers (id, create_time, revision, config) VALUES (?1, ?2, ?3, ?4)",
                params![server.id, server.create_time.as_micros(), server.revision, encode(&server)?],
            )
            .map_err(storage_error)?;
            tx.commit().map_err(storage_error)
        })
        .await
    }

    async fn update_mcp_server(&self, server: &McpServer, expected_revision: i64) -> Result<bool> {
        let server = server.clone();
        self.write(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE mcp_servers SET revision = ?2, config = ?3 WHERE id = ?1 AND revision = ?4",
                    params![server.id, server.revision, encode(&server)?, expected_revision],
                )
                .map_err(storage_error)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn delete_mcp_server(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.write(move |conn| {
            let deleted = conn
                .execute("DELETE FROM mcp_servers WHERE id = ?1", [&id])
                .map_err(storage_error)?;
            Ok(deleted == 1)
        })
        .await
    }
}
