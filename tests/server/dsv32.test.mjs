// DeepSeek-V3.2's encoding behind the OpenAI API: the random-weight V3.2 test model (deepseek_v32, no Jinja template:
// the server picks the encoding itself) and the V3 test model forced with `--chat-format dsv32`. Every request of the
// goldens' `server` section (made by DeepSeek's encoding_dsv32.py under the mapping docs/SERVER.md gives) renders to
// exactly the official prompt through POST /apply-template, and a chat request computes that prompt's tokens, content
// special-token text included as text; thinking from chat_template_kwargs splits reasoning from content; the
// encoder's refusals are 400s.
// (A random-weight model never writes DSML calls: tests/server/openai_test.cpp parses the goldens' completions and
// checks that no DSML markup streams as content.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { startServer, SOURCE_DIR } from './lib.mjs';

const goldens = JSON.parse(fs.readFileSync(path.join(SOURCE_DIR, 'tests/fixtures/dsv32_encoding/goldens.json'), 'utf8'));
const rows = Object.fromEntries(goldens.server.map((r) => [r.name, r]));

let srv, forced, client;
before(async () => {
  [srv, forced] = await Promise.all([startServer([], 'v32'), startServer(['--chat-format', 'dsv32'], 'v3')]);
  client = new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  for (const s of [srv, forced]) {
    const e = await s.stop();
    assert.equal(e.code, 0, 'graceful exit: ' + s.log());
  }
});

async function post(route, body, url = srv.url) {
  const r = await fetch(url + route, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body) });
  return { status: r.status, json: await r.json() };
}

test('every golden request renders to the official encoder\'s prompt (picked for deepseek_v32, or forced)', async () => {
  assert.ok(goldens.server.length >= 8);
  for (const url of [srv.url, forced.url]) {
    for (const row of goldens.server) {
      const { status, json } = await post('/apply-template', row.request, url);
      assert.equal(status, 200, `${row.name}: ${JSON.stringify(json)}`);
      assert.equal(json.prompt, row.prompt, row.name);
    }
  }
  // The tools block and the schema are in the prompt, in the caller's key order.
  assert.ok(rows.tools_with_system.prompt.includes('<functions>\n{"name": "get_weather", "description": "Current weather"'));
  assert.ok(rows.response_format.prompt.includes('## Response Format:'));
});

test('a chat request computes the rendered prompt; special-token text in content stays text', async () => {
  for (const name of ['plain', 'tools_with_system', 'tool_round_trip', 'developer']) {
    const req = rows[name].request;
    const chat = await client.chat.completions.create({ model: 'v32', ...req, max_tokens: 1, temperature: 0 });
    // A completions prompt parses special tokens everywhere and starts with the BOS the tokenizer adds (V3's
    // add_bos_token), so the same text is one token longer there, unless its content spells special tokens.
    const comp = await client.completions.create({ model: 'v32', prompt: rows[name].prompt, max_tokens: 1 });
    if (name === 'developer') {
      // The content's "<｜end▁of▁sentence｜>" is its k text tokens (POST /tokenize keeps special-token text as text;
      // in the prompt one of them may merge with the space before it), not the one control token the completions
      // prompt makes of it. (openai_test.cpp counts the ids exactly.)
      const k = (await post('/tokenize', { content: '<｜end▁of▁sentence｜>' })).json.tokens.length;
      assert.ok(k > 2);
      const extra = chat.usage.prompt_tokens - (comp.usage.prompt_tokens - 1);
      assert.ok(extra === k - 1 || extra === k - 2, `${extra} more tokens than with the control token; k = ${k}`);
    } else {
      assert.equal(chat.usage.prompt_tokens, comp.usage.prompt_tokens - 1, name);
    }
  }
});

test('thinking via chat_template_kwargs: reasoning_content; chat mode (the default): content only', async () => {
  // ignore_eos: a random model could end at once; eight tokens of output are what is split.
  const thinking = await client.chat.completions.create({ model: 'v32', ...rows.thinking.request, max_tokens: 8,
    temperature: 0, ignore_eos: true });
  const m = thinking.choices[0].message;
  assert.equal(typeof m.reasoning_content, 'string', 'the prompt ends in <think>: the output is reasoning');
  assert.ok(m.reasoning_content.length > 0);
  const chat = await client.chat.completions.create({ model: 'v32', ...rows.plain.request, max_tokens: 8,
    temperature: 0, ignore_eos: true });
  assert.equal(chat.choices[0].message.reasoning_content, undefined);
  assert.equal(typeof chat.choices[0].message.content, 'string');
  // Streamed, with tools offered, the thinking output still arrives as reasoning deltas.
  const stream = client.chat.completions.stream({ model: 'v32', ...rows.tools_without_system.request, max_tokens: 8,
    temperature: 0, ignore_eos: true });
  let reasoning = '';
  for await (const c of stream) for (const d of c.choices) reasoning += d.delta.reasoning_content ?? '';
  const fin = (await stream.finalChatCompletion()).choices[0];
  assert.ok(reasoning.length > 0);
  assert.equal(fin.message.tool_calls, undefined, 'random text is no call');
});

test('the encoder\'s refusals and the response_format path', async () => {
  const orphan = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'u' },
    { role: 'assistant', content: 'a' }, { role: 'tool', content: 't' }] });
  assert.equal(orphan.status, 400);
  assert.equal(orphan.json.error.code, 'template_error');
  assert.match(orphan.json.error.message, /DeepSeek-V3\.2/);
  const emptyDev = await post('/v1/chat/completions', { messages: [{ role: 'developer', content: '' }] });
  assert.equal(emptyDev.status, 400);
  assert.equal(emptyDev.json.error.code, 'template_error');
  // A json_schema response format is rendered into the prompt and also enforced.
  const rf = await client.chat.completions.create({ model: 'v32', ...rows.response_format.request, max_tokens: 40,
    temperature: 0 });
  assert.ok(rf.usage.prompt_tokens > 50);
  assert.match(rf.choices[0].message.content, /^\s*\{\s*"city"/);
});
