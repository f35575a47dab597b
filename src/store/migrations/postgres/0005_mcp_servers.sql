-- MCP tool servers (issue 14). config is the whole server as JSON (transport, env and
-- header values included: secrets, never returned by the API, as models' api_key).
-- The live connection state is not stored: each server keeps its own.
CREATE TABLE mcp_servers (
    id          TEXT COLLATE "C" PRIMARY KEY,
    create_time BIGINT NOT NULL,
    revision    BIGINT NOT NULL,
    config      TEXT NOT NULL
);
