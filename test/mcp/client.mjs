// A scripted MCP client on the official TypeScript SDK, for Vigil's Go tests.
//
// It connects to VIGIL_MCP_URL with the agent key VIGIL_AGENT_KEY (as a Bearer token),
// runs the steps of the JSON plan in VIGIL_PLAN in order, and prints one JSON array
// with each step's outcome. A step that fails records {"error": message} and the plan
// goes on. Steps:
//
//   {"op": "info"}                              server info, instructions, capabilities
//   {"op": "list"}                              tool names
//   {"op": "call", "name", "args", "timeout"}   {isError, text, progress: [...]}
//   {"op": "read", "uri"}                       {texts: [...]}
//   {"op": "prompt", "name", "args"}            {texts: [...]}
//   {"op": "ping"}                              {ok: true}
//   {"op": "task", "name", "args", "ttl"}       the call as a task (MCP 2025-11-25): polls
//                                               tasks/get until it ends, fetching tasks/result
//                                               early when input is required; {isError, text,
//                                               statuses: [statusMessage...], task: id}
//   {"op": "taskget", "task"}                   tasks/get of a task id: {texts: [statusMessage]}
//   {"op": "taskresult", "task"}                tasks/result of a task id: {isError, text}
//
// The client declares sampling: a server's sampling request is answered with
// "hi from the client". It declares elicitation too: a request is answered with
// accept {interpretation: "technical"}, and its message kept; the last step's
// outcome carries every message so far in "elicited".
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  CallToolResultSchema,
  CreateMessageRequestSchema,
  CreateTaskResultSchema,
  ElicitRequestSchema,
  GetTaskResultSchema,
} from "@modelcontextprotocol/sdk/types.js";

const url = process.env.VIGIL_MCP_URL;
const key = process.env.VIGIL_AGENT_KEY;
const plan = JSON.parse(process.env.VIGIL_PLAN || "[]");

const client = new Client(
  { name: "vigil-ts-test-client", version: "1.0.0" },
  { capabilities: { sampling: {}, elicitation: { form: {} } } },
);
client.setRequestHandler(CreateMessageRequestSchema, async () => ({
  model: "test-model",
  role: "assistant",
  content: { type: "text", text: "hi from the client" },
}));
const elicited = [];
client.setRequestHandler(ElicitRequestSchema, async (req) => {
  elicited.push(req.params.message);
  return { action: "accept", content: { interpretation: "technical" } };
});

const headers = key ? { Authorization: `Bearer ${key}` } : {};
const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });

const out = [];
try {
  await client.connect(transport);
} catch (e) {
  process.stdout.write(JSON.stringify([{ error: `connect: ${e.message ?? e}` }]));
  process.exit(0);
}

const texts = (content) => (content ?? []).filter((c) => c.type === "text").map((c) => c.text);

for (const step of plan) {
  try {
    switch (step.op) {
      case "info":
        out.push({
          server: client.getServerVersion(),
          instructions: client.getInstructions() ?? "",
          capabilities: client.getServerCapabilities(),
          protocol: transport.protocolVersion,
          session: transport.sessionId ? true : false,
        });
        break;
      case "list": {
        const r = await client.listTools();
        out.push({ tools: r.tools.map((t) => t.name) });
        break;
      }
      case "call": {
        const progress = [];
        const r = await client.callTool({ name: step.name, arguments: step.args ?? {} }, undefined, {
          onprogress: (p) => progress.push(p),
          timeout: step.timeout ?? 60000,
          resetTimeoutOnProgress: true,
        });
        out.push({ isError: !!r.isError, text: texts(r.content).join(""), progress });
        break;
      }
      case "read": {
        const r = await client.readResource({ uri: step.uri });
        out.push({ texts: r.contents.map((c) => c.text ?? "") });
        break;
      }
      case "prompt": {
        const r = await client.getPrompt({ name: step.name, arguments: step.args ?? {} });
        out.push({ texts: r.messages.map((m) => (m.content.type === "text" ? m.content.text : "")) });
        break;
      }
      case "ping":
        await client.ping();
        out.push({ ok: true });
        break;
      case "task": {
        const created = await client.request(
          { method: "tools/call", params: { name: step.name, arguments: step.args ?? {}, task: { ttl: step.ttl ?? 60000 } } },
          CreateTaskResultSchema,
        );
        const id = created.task.taskId;
        const statuses = [created.task.statusMessage ?? ""];
        let fetched = false;
        for (let i = 0; i < 600; i++) {
          const t = await client.request({ method: "tasks/get", params: { taskId: id } }, GetTaskResultSchema);
          statuses.push(t.statusMessage ?? "");
          if (["completed", "failed", "cancelled"].includes(t.status)) break;
          if (t.status === "input_required" && !fetched) {
            // The spec: fetch the result early; the server asks for input on that stream.
            fetched = true;
            await client.request({ method: "tasks/result", params: { taskId: id } }, CallToolResultSchema, { timeout: 60000 });
          }
          await new Promise((r) => setTimeout(r, Math.min(created.task.pollInterval ?? 200, 200)));
        }
        const r = await client.request({ method: "tasks/result", params: { taskId: id } }, CallToolResultSchema);
        out.push({ isError: !!r.isError, text: texts(r.content).join(""), statuses, task: id, elicited: [...elicited] });
        break;
      }
      case "taskget": {
        const t = await client.request({ method: "tasks/get", params: { taskId: step.task } }, GetTaskResultSchema);
        out.push({ texts: [t.statusMessage ?? ""] });
        break;
      }
      case "taskresult": {
        const r = await client.request({ method: "tasks/result", params: { taskId: step.task } }, CallToolResultSchema);
        out.push({ isError: !!r.isError, text: texts(r.content).join("") });
        break;
      }
      default:
        out.push({ error: `unknown op ${step.op}` });
    }
  } catch (e) {
    out.push({ error: String(e.message ?? e), code: e.code });
  }
}

try {
  await transport.terminateSession();
} catch {
  // the session may be gone already
}
await client.close();
process.stdout.write(JSON.stringify(out));
