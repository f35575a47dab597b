-- The MCP servers a session's turns use (issue 14): a JSON array of server ids; NULL
-- for every enabled server.
ALTER TABLE sessions ADD COLUMN mcp_servers TEXT;
