// Drives Vigil's LLM gateway with the official OpenAI and Anthropic Node SDKs.
// Run by cmd/vigil's TestNodeSDKs, which starts Vigil in front of the fake provider
// (with stand-in PII masking, policy and oversight) and passes VIGIL_URL and
// VIGIL_AGENT_KEY; afterwards it checks what the provider received and the ledger.
//
// Vigil runs as serve wires it: the PII engine tokenizes email addresses on the way
// out and restores them on the way back; the policy denies models and tools named
// deny* and holds tools named hold* for a human; the test's reviewer approves
// hold_ok* through the admin API and denies the rest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';

const base = process.env.VIGIL_URL;
const key = process.env.VIGIL_AGENT_KEY;
if (!base || !key) throw new Error('VIGIL_URL and VIGIL_AGENT_KEY must be set (run through go test)');

const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0 });
const anthropic = new Anthropic({ baseURL: base, apiKey: key, maxRetries: 0 });
const email = 'node.user@example.org';
const tools = [{ type: 'function', function: { name: 'send_email', parameters: { type: 'object', properties: { to: { type: 'string' } } } } }];
const atools = [{ name: 'send_email', input_schema: { type: 'object', properties: { to: { type: 'string' } } } }];

test('openai: chat', async () => {
  const c = await openai.chat.completions.create({ model: 'fake-gpt', messages: [{ role: 'user', content: `Hello, I am ${email}` }] });
  assert.equal(c.choices[0].message.content, `You said: Hello, I am ${email}`);
  assert.ok(c.usage.prompt_tokens > 0);
});

test('openai: chat stream', async () => {
  const stream = await openai.chat.completions.create({ model: 'fake-gpt', stream: true, messages: [{ role: 'user', content: `Stream for ${email}` }] });
  let text = '';
  let usageChunks = 0;
  for await (const chunk of stream) {
    if (chunk.usage) usageChunks++;
    text += chunk.choices[0]?.delta?.content ?? '';
  }
  assert.equal(text, `You said: Stream for ${email}`);
  assert.equal(usageChunks, 0, 'usage the client did not ask for must not reach it');
});

test('openai: chat stream helper with an allowed tool call', async () => {
  const final = await openai.chat.completions
    .stream({ model: 'fake-gpt', tools, messages: [{ role: 'user', content: `call tool send_email with {"to":"${email}"}` }] })
    .finalChatCompletion();
  const calls = final.choices[0].message.tool_calls;
  assert.equal(calls.length, 1);
  assert.equal(calls[0].function.name, 'send_email');
  assert.deepEqual(JSON.parse(calls[0].function.arguments), { to: email });
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
});

test('openai: denied tool call is removed and explained', async () => {
  const c = await openai.chat.completions.create({ model: 'fake-gpt', tools, messages: [{ role: 'user', content: `call tool deny_payout with {"to":"${email}"}` }] });
  const m = c.choices[0].message;
  assert.equal(m.tool_calls, undefined);
  assert.match(m.content, /Vigil removed the call to deny_payout: this tool is not allowed here \(rule no-deny-tools\)/);
  assert.equal(c.choices[0].finish_reason, 'stop');
});

test('openai: held tool call is removed when the reviewer denies it', async () => {
  const c = await openai.chat.completions.create({ model: 'fake-gpt', tools, messages: [{ role: 'user', content: `call tool hold_delete with {"to":"${email}"}` }] });
  assert.equal(c.choices[0].message.tool_calls, undefined);
  assert.match(c.choices[0].message.content, /Vigil removed the call to hold_delete: a reviewer denied this call: not today/);
});

test('openai: held tool call is released once approved', async () => {
  const c = await openai.chat.completions.create({ model: 'fake-gpt', tools, messages: [{ role: 'user', content: `call tool hold_ok_refund with {"to":"${email}"}` }] });
  assert.equal(c.choices[0].message.tool_calls[0].function.name, 'hold_ok_refund');
  assert.deepEqual(JSON.parse(c.choices[0].message.tool_calls[0].function.arguments), { to: email });
});

test('openai: responses stream with a denied function call', async () => {
  const final = await openai.responses
    .stream({ model: 'fake-gpt', input: `call tool deny_erase with {"who":"${email}"}` })
    .finalResponse();
  assert.match(final.output_text, /Vigil removed the call to deny_erase/);
  assert.equal(final.output.filter((o) => o.type === 'function_call').length, 0);
});

test('openai: embeddings', async () => {
  const e = await openai.embeddings.create({ model: 'fake-embed', input: `about ${email}` });
  assert.equal(e.data.length, 1);
  assert.ok(e.data[0].embedding.length > 0);
});

test('openai: provider 429 is a RateLimitError with Retry-After', async () => {
  await assert.rejects(
    openai.chat.completions.create({ model: 'fake-gpt', messages: [{ role: 'user', content: 'error 429' }] }),
    (err) => {
      assert.ok(err instanceof OpenAI.RateLimitError, `got ${err?.constructor?.name}`);
      assert.equal(err.headers.get('retry-after'), '7');
      assert.match(err.message, /retry after 7 seconds/);
      return true;
    });
});

test('openai: policy denial is a PermissionDeniedError', async () => {
  await assert.rejects(
    openai.chat.completions.create({ model: 'deny-gpt', messages: [{ role: 'user', content: 'hi' }] }),
    (err) => {
      assert.ok(err instanceof OpenAI.PermissionDeniedError, `got ${err?.constructor?.name}`);
      assert.equal(err.code, 'policy_denied');
      assert.match(err.message, /this model is not allowed here/);
      return true;
    });
});

test('anthropic: message', async () => {
  const m = await anthropic.messages.create({ model: 'fake-claude', max_tokens: 100, messages: [{ role: 'user', content: `Hi from ${email}` }] });
  assert.equal(m.content[0].text, `You said: Hi from ${email}`);
  assert.ok(m.usage.input_tokens > 0);
});

test('anthropic: stream helper with an allowed tool call', async () => {
  const m = await anthropic.messages
    .stream({ model: 'fake-claude', max_tokens: 100, tools: atools, messages: [{ role: 'user', content: `call tool send_email with {"to":"${email}"}` }] })
    .finalMessage();
  const uses = m.content.filter((b) => b.type === 'tool_use');
  assert.equal(uses.length, 1);
  assert.deepEqual(uses[0].input, { to: email });
  assert.equal(m.stop_reason, 'tool_use');
});

test('anthropic: streamed text and a denied tool call', async () => {
  const stream = anthropic.messages.stream({ model: 'fake-claude', max_tokens: 100, tools: atools, messages: [{ role: 'user', content: `call tool deny_close_account with {"to":"${email}"}` }] });
  const m = await stream.finalMessage();
  assert.equal(m.content.filter((b) => b.type === 'tool_use').length, 0);
  assert.match(m.content[0].text, /Vigil removed the call to deny_close_account/);
  assert.equal(m.stop_reason, 'end_turn');
});

test('anthropic: streamed text is restored', async () => {
  let text = '';
  const stream = anthropic.messages.stream({ model: 'fake-claude', max_tokens: 100, messages: [{ role: 'user', content: `Write to ${email} today` }] });
  stream.on('text', (t) => { text += t; });
  await stream.finalMessage();
  assert.equal(text, `You said: Write to ${email} today`);
});

test('anthropic: provider 429 is a RateLimitError', async () => {
  await assert.rejects(
    anthropic.messages.create({ model: 'fake-claude', max_tokens: 10, messages: [{ role: 'user', content: 'error 429' }] }),
    (err) => {
      assert.ok(err instanceof Anthropic.RateLimitError, `got ${err?.constructor?.name}`);
      assert.equal(err.headers.get('retry-after'), '7');
      return true;
    });
});

test('anthropic: policy denial is a PermissionDeniedError', async () => {
  await assert.rejects(
    anthropic.messages.create({ model: 'deny-claude', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }] }),
    (err) => {
      assert.ok(err instanceof Anthropic.PermissionDeniedError, `got ${err?.constructor?.name}`);
      assert.match(err.message, /this model is not allowed here/);
      return true;
    });
});
