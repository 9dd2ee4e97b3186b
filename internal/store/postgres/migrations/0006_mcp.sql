-- Pinned MCP tool definitions: the rug-pull defence (package mcpproxy/pins). One row per
-- tool of a server: the approved version and, when the server changed the tool, the
-- pending version awaiting an admin. Definitions are kept as text, byte for byte, so
-- their hashes can be recomputed.
CREATE TABLE mcp_tool_pins (
	server             text NOT NULL,
	tool               text NOT NULL,
	hash               text NOT NULL,
	definition         text NOT NULL,
	seen_at            timestamptz NOT NULL,
	approved_by        text NOT NULL DEFAULT '',
	approved_at        timestamptz NOT NULL,
	pending_hash       text,
	pending_definition text,
	pending_seen_at    timestamptz,
	PRIMARY KEY (server, tool),
	CHECK ((pending_hash IS NULL) = (pending_definition IS NULL) AND (pending_hash IS NULL) = (pending_seen_at IS NULL))
);
