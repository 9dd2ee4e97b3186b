// Package mcpproxy is the MCP gateway: it serves each configured MCP server at
// /mcp/{server} over MCP streamable HTTP and relays JSON-RPC messages between the
// agent's client and the server — a process Vigil runs (stdio) or a streamable HTTP
// server — governing what matters and passing everything else through untouched:
//
//	tools/list      filtered: tools whose pinned definition changed (pins) and tools
//	                policy denies whatever the arguments are hidden
//	tools/call      through enforce.Pipeline: arguments masked, policy with the tool's
//	                annotations, approval holds with progress notifications, ledger,
//	                result restored or masked; a refusal is a tool result with isError
//	resources/read  through the pipeline; a refusal is a JSON-RPC error
//	prompts/get     the same, with the prompt's arguments masked
//	tasks/*         only for tasks the session (stateless: the agent) started; status
//	                and the result fetched later go through the call's flight (tasks.go)
//	sampling, elicitation
//	                a server's requests to the client: masked both ways and recorded
//	                (serverreq.go)
//
// Both protocol eras are served: stateful sessions (2025-03-26 to 2025-11-25: the
// Mcp-Session-Id header, SSE streams with event ids and Last-Event-ID resumption, the
// standalone GET stream, DELETE) and the stateless 2026-07-28 revision (self-contained
// POSTs, server/discover). An agent session gets an upstream session of its own (one
// process per session for stdio servers, restarted with backoff when it dies); the
// stateless revision shares one per server. docs/adr/0008-mcp-gateway.md says why.
//
// Agents authenticate with their Vigil key on every request; a session belongs to the
// agent that opened it. Gateway.CloseAgent and CloseSystem (or Options.Track, for the
// kill switch's registry) end an agent's sessions.
package mcpproxy
