-- Pinned MCP tool definitions: the rug-pull defence (package mcpproxy/pins). One row per
-- tool of a server: the approved version and, when the server changed the tool, the
-- pending version awaiting an admin. Times are UTC microseconds.
CREATE TABLE mcp_tool_pins (
	server             TEXT NOT NULL,
	tool               TEXT NOT NULL,
	hash               TEXT NOT NULL,
	definition         TEXT NOT NULL,
	seen_at            INTEGER NOT NULL,
	approved_by        TEXT NOT NULL DEFAULT '',
	approved_at        INTEGER NOT NULL,
	pending_hash       TEXT,
	pending_definition TEXT,
	pending_seen_at    INTEGER,
	PRIMARY KEY (server, tool),
	CHECK ((pending_hash IS NULL) = (pending_definition IS NULL) AND (pending_hash IS NULL) = (pending_seen_at IS NULL))
) STRICT;
