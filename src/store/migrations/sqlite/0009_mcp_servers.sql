-- MCP tool servers (issue 14). config is the whole server as JSON (transport, env and
-- header values included: secrets, never returned by the API, as models' api_key).
-- The live connection state is not stored: each server keeps its own.
CREATE TABLE mcp_servers (
    id          TEXT PRIMARY KEY NOT NULL,
    create_time INTEGER NOT NULL,
    revision    INTEGER NOT NULL,
    config      TEXT NOT NULL
) STRICT;
