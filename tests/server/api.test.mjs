// The official openai SDK against `deepseek serve`: chat and completions, streaming and not, logprobs, n, stop,
// tokenize/detokenize, reasoning split on an R1 template that opens <think>.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, postJson } from './lib.mjs';

let srv, client, r1, r1client;
before(async () => {
  [srv, r1] = await Promise.all([startServer(['--parallel', '2']), startServer(['--parallel', '2'], 'r1')]);
  client = new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'unused', maxRetries: 0 });
  r1client = new OpenAI({ baseURL: r1.url + '/v1', apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  for (const s of [srv, r1]) {
    const e = await s.stop();
    assert.equal(e.code, 0, 'graceful exit: ' + s.log());
  }
});

const msgs = [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Name three colours.' }];

test('models.list serves the model id', async () => {
  const list = await client.models.list();
  assert.deepEqual(list.data.map((m) => m.id), ['v3']);
});

test('chat: non-streaming and streaming agree (greedy)', async () => {
  const a = await client.chat.completions.create({ model: 'v3', messages: msgs, max_tokens: 8, temperature: 0, ignore_eos: true });
  assert.match(a.id, /^chatcmpl-/);
  assert.equal(a.object, 'chat.completion');
  assert.equal(a.choices.length, 1);
  assert.equal(a.choices[0].finish_reason, 'length');
  assert.equal(a.choices[0].message.role, 'assistant');
  assert.equal(typeof a.choices[0].message.content, 'string');
  assert.ok(a.choices[0].message.content.length > 0);
  assert.equal(a.usage.completion_tokens, 8);
  assert.ok(a.usage.prompt_tokens > 5);
  assert.equal(a.usage.total_tokens, a.usage.prompt_tokens + 8);

  const stream = await client.chat.completions.create({ model: 'v3', messages: msgs, max_tokens: 8, temperature: 0,
    ignore_eos: true, stream: true, stream_options: { include_usage: true } });
  let text = '', finish = null, usage = null, chunks = 0;
  for await (const c of stream) {
    chunks++;
    assert.equal(c.object, 'chat.completion.chunk');
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) {
      if (ch.delta.content) text += ch.delta.content;
      if (ch.finish_reason) finish = ch.finish_reason;
    }
  }
  assert.ok(chunks >= 3);
  assert.equal(text, a.choices[0].message.content);
  assert.equal(finish, 'length');
  assert.equal(usage.completion_tokens, 8);
});

test('completions: non-streaming, streaming, logprobs', async () => {
  const a = await client.completions.create({ model: 'v3', prompt: 'The quick brown fox', max_tokens: 6, temperature: 0,
    logprobs: 3, ignore_eos: true });
  assert.equal(a.object, 'text_completion');
  assert.equal(a.choices[0].finish_reason, 'length');
  const lp = a.choices[0].logprobs;
  assert.equal(lp.tokens.length, 6);
  assert.equal(lp.token_logprobs.length, 6);
  for (let i = 0; i < 6; i++) {
    assert.ok(lp.token_logprobs[i] <= 0);
    const alts = Object.values(lp.top_logprobs[i]);
    assert.ok(alts.length >= 1 && alts.length <= 3);
    // Greedy: the chosen token is the most likely one.
    assert.ok(Math.max(...alts) <= lp.token_logprobs[i] + 1e-6);
  }
  assert.equal(lp.tokens.join(''), a.choices[0].text);
  const s = await client.completions.create({ model: 'v3', prompt: 'The quick brown fox', max_tokens: 6, temperature: 0,
    stream: true, ignore_eos: true });
  let text = '';
  for await (const c of s) text += c.choices[0]?.text ?? '';
  assert.equal(text, a.choices[0].text);
});

test('chat logprobs are bounded and shaped', async () => {
  const a = await client.chat.completions.create({ model: 'v3', messages: msgs, max_tokens: 4, temperature: 0,
    logprobs: true, top_logprobs: 2, ignore_eos: true });
  const c = a.choices[0].logprobs.content;
  assert.equal(c.length, 4);
  for (const e of c) {
    assert.equal(e.top_logprobs.length, 2);
    assert.ok(Array.isArray(e.bytes));
    assert.ok(e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob);
  }
});

test('n choices and seeded sampling', async () => {
  const req = { model: 'v3', messages: msgs, max_tokens: 6, temperature: 1.0, top_p: 1, n: 3, seed: 42, ignore_eos: true };
  const a = await client.chat.completions.create(req);
  assert.deepEqual(a.choices.map((c) => c.index), [0, 1, 2]);
  assert.equal(a.usage.completion_tokens, 18);
  const b = await client.chat.completions.create(req);
  assert.deepEqual(b.choices.map((c) => c.message.content), a.choices.map((c) => c.message.content), 'same seed, same text');
  assert.notEqual(a.choices[0].message.content, a.choices[1].message.content);
});

test('stop strings cut the output (streaming and not)', async () => {
  const ref = await client.completions.create({ model: 'v3', prompt: 'Once upon a time', max_tokens: 16, temperature: 0, ignore_eos: true });
  const text = ref.choices[0].text;
  assert.ok(text.length >= 6, text);
  const cut = Math.floor(text.length / 2);
  const stop = text.slice(cut, cut + 3);
  const expect = text.slice(0, text.indexOf(stop));
  const a = await client.completions.create({ model: 'v3', prompt: 'Once upon a time', max_tokens: 16, temperature: 0, stop: [stop], ignore_eos: true });
  assert.equal(a.choices[0].text, expect);
  assert.equal(a.choices[0].finish_reason, 'stop');
  const s = await client.completions.create({ model: 'v3', prompt: 'Once upon a time', max_tokens: 16, temperature: 0,
    stop: stop, stream: true, ignore_eos: true });
  let st = '', fin = null;
  for await (const c of s) { st += c.choices[0]?.text ?? ''; fin = c.choices[0]?.finish_reason ?? fin; }
  assert.equal(st, expect);
  assert.equal(fin, 'stop');
});

test('tools and tool-call history are accepted (DeepSeek tool-call format in the template)', async () => {
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'weather',
    parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
  const a = await client.chat.completions.create({ model: 'v3', messages: [{ role: 'user', content: 'Weather in Paris?' }],
    tools, tool_choice: 'auto', max_tokens: 3, temperature: 0 });
  assert.ok(['stop', 'length', 'tool_calls'].includes(a.choices[0].finish_reason));
  const history = [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function',
      function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: '{"temp": 21}' },
  ];
  const b = await client.chat.completions.create({ model: 'v3', messages: history, tools, max_tokens: 3, temperature: 0 });
  assert.ok(b.usage.prompt_tokens > a.usage.prompt_tokens + 10, 'the tool call and its output are in the prompt');
  const bad = await postJson(srv.url, '/v1/chat/completions', { messages: history, tools: [{ type: 'function', function: { name: 1 } }] });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error.param, 'tools');
});

test('tokenize / detokenize round trip with the real tokenizer', async () => {
  const t = await postJson(srv.url, '/tokenize', { content: 'Hello world' });
  assert.equal(t.status, 200);
  assert.deepEqual(t.json.tokens, [19923, 2058]);
  const d = await postJson(srv.url, '/detokenize', { tokens: t.json.tokens });
  assert.equal(d.json.content, 'Hello world');
  // Special-token text in user content stays text.
  const s = await postJson(srv.url, '/tokenize', { content: '<｜end▁of▁sentence｜>' });
  assert.ok(!s.json.tokens.includes(1) && s.json.tokens.length > 1);
});

test('reasoning: R1 template opens <think>, output goes to reasoning_content (streaming and not)', async () => {
  const m = [{ role: 'user', content: 'Think about colours.' }];
  const a = await r1client.chat.completions.create({ model: 'r1', messages: m, max_tokens: 10, temperature: 0, ignore_eos: true });
  const msg = a.choices[0].message;
  assert.equal(typeof msg.reasoning_content, 'string');
  assert.ok(msg.reasoning_content.length > 0);
  assert.equal(msg.content, '');
  assert.equal(a.usage.completion_tokens_details.reasoning_tokens, 10);
  const s = await r1client.chat.completions.create({ model: 'r1', messages: m, max_tokens: 10, temperature: 0,
    stream: true, ignore_eos: true });
  let reasoning = '', content = '';
  for await (const c of s) {
    const d = c.choices[0]?.delta ?? {};
    reasoning += d.reasoning_content ?? '';
    content += d.content ?? '';
  }
  assert.equal(reasoning, msg.reasoning_content);
  assert.equal(content, '');
  // The V3 template does not open <think>: everything is content.
  const v = await client.chat.completions.create({ model: 'v3', messages: m, max_tokens: 10, temperature: 0, ignore_eos: true });
  assert.ok(v.choices[0].message.content.length > 0);
  assert.equal(v.usage.completion_tokens_details.reasoning_tokens, 0);
});
