// Package policy compiles and evaluates Vigil policies: YAML rules with CEL conditions,
// cheap glob scopes, and declarative usage limits. It also runs policy test files and
// holds the live policy for the gateway (Engine), with reload, a file watcher, shadow
// mode and usage metering.
//
// It does no I/O beyond reading policy files; the ledger and the usage counters are
// reached through the Recorder and UsageStore interfaces declared here.
//
// # Format
//
//	version: 1
//	default: deny                    # effect when no rule matches
//	rules:
//	  - id: refunds-over-100         # letters, digits, . _ -; unique among rules and limits
//	    description: optional text
//	    match:                       # optional scope, checked before `when`; every key
//	      tools: ["pay/refund"]      #   given must match, any pattern of a key may
//	    when: args.amount > 100      # optional CEL condition; absent means "in scope"
//	    effect: deny                 # allow | deny | require_approval
//	    message: shown to the agent  # optional; a default names the rule
//	    on_error: skip               # optional; default deny (fail closed)
//	  - id: big-payouts
//	    when: args.amount > 1000
//	    effect: require_approval
//	    approval: {roles: [reviewer], approvers: 2, timeout: 30m}
//	    # optional: reviewers need a current training record for this competence
//	    # (kept in the ISO 42001 records, kind competence)
//	    #   approval: {require_training: payments-oversight}
//	limits:
//	  - id: support-budget
//	    match: {agents: ["support-*"]}
//	    per: agent                   # agent (default): each agent its own counter;
//	                                 # system: one counter for all agents of a system
//	    calls_per_minute: 60         # <calls|tool_calls|tokens|cost>_per_<minute|hour|day>
//	    cost_per_day: 25.00          # in the currency the LLM proxy reports cost in
//	    message: optional text
//
// Scope keys (`match:`) take glob patterns (`*` any run of characters, `?` one):
// agents (agent name), systems (AI system name), kinds (action kinds, exact),
// providers and models (model provider and name), servers (MCP server), tools (tool
// name, or server/tool), resources (resource URI or prompt name). A scope on a part the
// action lacks (tools on a model call) does not match. Limits take agents and systems.
//
// # Condition variables
//
//	agent     vigil.Agent: id, name, system (string), labels (map(string, string))
//	action    vigil.Action: kind (model_call, model_response, tool_call, tool_result,
//	          resource_read, prompt_get)
//	model     vigil.Model: provider, name
//	tool      vigil.Tool: server, name, annotations (vigil.ToolAnnotations: title,
//	          readOnlyHint, destructiveHint, idempotentHint, openWorldHint)
//	args      map(string, dyn): the call's arguments or request parameters (masked)
//	resource  vigil.Resource: uri (resource reads), name (prompt gets)
//	pii       vigil.PII: types (list(string)), counts (map(string, int)), total (int):
//	          what the masker found in the payload. Masking runs first and replaces
//	          every finding (a block operator refuses the call before policy), so
//	          this says what was found, not what is left: nothing found is left.
//	          pii is empty when nothing is scanned (pii.mode off, or masking failed
//	          and fail_open lets the call through unmasked).
//	usage     vigil.Usage: calls, tool_calls, tokens (vigil.Window: minute, hour, day,
//	          int) and cost (vigil.CostWindow, double) for the agent, and the same for
//	          its system under usage.system; counts before this action
//	now       timestamp: the action's time
//
// Parts an action lacks read as empty: on a model call tool.name is "" and every tool
// annotation false; has(tool.name) tells whether there is a tool. A tool that declares
// no annotations has MCP's defaults (destructiveHint and openWorldHint true), set by
// the ingress. Misspelled fields and unknown variables are compile errors, with the
// file, line, column and rule id; so is comparing action.kind with a kind that does not
// exist. A missing key in args is an evaluation error of that rule.
//
// # Decisions
//
// Limits are checked first, on calls only (model_call, tool_call, resource_read,
// prompt_get); tool_calls_* limits only on tool calls. A counter at or over its maximum
// denies with Decision.Limit set to "<limit id>/<metric>_per_<window>". Otherwise all
// matching rules are collected; deny beats require_approval beats allow; no match
// gives the default. A rule whose condition fails to evaluate counts as deny, unless it
// says on_error: skip; either way Decision.Errors names it and why. The first matching
// rule with the winning effect gives the message. Several matching approval rules merge
// strictly: roles are intersected (an approver must satisfy every rule; an empty
// intersection leaves admin), the most approvers and the shortest timeout win; timing
// out denies. Every decision carries the policy's version: the hex SHA-256 of its
// canonical text (see Canonical).
//
// # Speed
//
// Conditions are compiled once. Top-level conjuncts such as action.kind == "tool_call"
// or tool.name == "refund" are lifted out of the condition into the rule's filter and
// tested as string comparisons before any CEL runs; the variables are built without
// reflection from a pooled activation. See BENCHMARKS.md.
package policy
