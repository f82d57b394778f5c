// /v1/completions beyond one prompt, through the official openai SDK: a list of prompts (strings or token-id arrays)
// gives per prompt exactly what that prompt gives alone, numbered prompt * n + j, streaming and not; echo; suffix
// refused; special-token text in a prompt is the special token; GET /v1/models/{id}. And stop strings on tiny-R1
// cut the answer only, never the reasoning.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import OpenAI from 'openai';
import { startServer, postJson, assertApiError, SOURCE_DIR } from './lib.mjs';

let srv, client, r1, r1client;
before(async () => {
  [srv, r1] = await Promise.all([
    startServer(['--parallel', '4', '--queue', '8']),
    startServer(['--parallel', '2', '--ctx', '512'], path.join(SOURCE_DIR, 'models/tiny-r1'))]);
  client = new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'unused', maxRetries: 0 });
  r1client = new OpenAI({ baseURL: r1.url + '/v1', apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  for (const s of [srv, r1]) assert.equal((await s.stop()).code, 0, 'graceful exit: ' + s.log());
});

const prompts = ['The quick brown fox', 'Once upon a time', 'Hello'];
const greedy = { model: 'v3', max_tokens: 6, temperature: 0, ignore_eos: true };
const alone = (prompt, extra = {}) => client.completions.create({ ...greedy, prompt, ...extra });

// Streams a completion and gathers text and finish_reason per choice index, checking there is exactly one finish.
async function streamed(body) {
  const s = await client.completions.create({ ...body, stream: true, stream_options: { include_usage: true } });
  const text = [], finish = [], first = [];
  let usage = null;
  for await (const c of s) {
    if (c.usage) usage = c.usage;
    for (const ch of c.choices) {
      if (first[ch.index] === undefined) first[ch.index] = ch.text;
      text[ch.index] = (text[ch.index] ?? '') + ch.text;
      if (ch.finish_reason) {
        assert.equal(finish[ch.index], undefined, 'one finish_reason per choice');
        finish[ch.index] = ch.finish_reason;
      }
    }
  }
  return { text, finish, first, usage };
}

test('a list of prompts gives each prompt what it gives alone, indexed in order, usage summed', async () => {
  const one = await Promise.all(prompts.map((p) => alone(p)));
  const all = await alone(prompts);
  assert.deepEqual(all.choices.map((c) => c.index), [0, 1, 2]);
  assert.deepEqual(all.choices.map((c) => c.text), one.map((r) => r.choices[0].text));
  assert.deepEqual(all.choices.map((c) => c.finish_reason), ['length', 'length', 'length']);
  const sum = (k) => one.reduce((a, r) => a + r.usage[k], 0);
  assert.equal(all.usage.prompt_tokens, sum('prompt_tokens'));
  assert.equal(all.usage.completion_tokens, 18);
  assert.equal(all.usage.total_tokens, sum('prompt_tokens') + 18);

  // The same prompts as token-id arrays (/tokenize with add_special puts the BOS first, as a text prompt gets).
  const ids = [];
  for (const p of prompts) ids.push((await postJson(srv.url, '/tokenize', { content: p, add_special: true })).json.tokens);
  const byIds = await alone(ids);
  assert.deepEqual(byIds.choices.map((c) => c.text), all.choices.map((c) => c.text));
  assert.equal(byIds.usage.prompt_tokens, all.usage.prompt_tokens);
});

test('prompts x n: choice prompt * n + j, seed + j per prompt, streaming equals non-streaming', async () => {
  const two = ['Once upon a time', 'The quick brown fox'];
  const sampled = { model: 'v3', max_tokens: 5, temperature: 1, top_p: 1, n: 2, seed: 7, ignore_eos: true };
  const one = await Promise.all(two.map((p) => client.completions.create({ ...sampled, prompt: p })));
  const all = await client.completions.create({ ...sampled, prompt: two });
  assert.deepEqual(all.choices.map((c) => c.index), [0, 1, 2, 3]);
  assert.deepEqual(all.choices.map((c) => c.text), one.flatMap((r) => r.choices.map((c) => c.text)));
  assert.notEqual(all.choices[0].text, all.choices[1].text, 'the two choices of a prompt sample differently');
  assert.equal(all.usage.completion_tokens, 20);
  assert.equal(all.usage.prompt_tokens, one[0].usage.prompt_tokens + one[1].usage.prompt_tokens);

  const s = await streamed({ ...sampled, prompt: two });
  assert.deepEqual(s.text, all.choices.map((c) => c.text));
  assert.deepEqual(s.finish, ['length', 'length', 'length', 'length']);
  assert.equal(s.usage.completion_tokens, 20);
  assert.equal(s.usage.prompt_tokens, all.usage.prompt_tokens);
});

test('echo: the text starts with exactly the prompt, streaming in the first chunk; stop strings skip the echo', async () => {
  const prompt = 'The quick brown fox';
  const ref = (await alone(prompt)).choices[0].text;
  const a = await alone(prompt, { echo: true });
  assert.equal(a.choices[0].text, prompt + ref);
  assert.equal(a.usage.completion_tokens, 6);

  const s = await streamed({ ...greedy, prompt: [prompt, 'Hello'], echo: true });
  assert.ok(s.first[0].startsWith(prompt), s.first[0]);
  assert.ok(s.first[1].startsWith('Hello'), s.first[1]);
  assert.equal(s.text[0], prompt + ref);

  // Token-id prompts echo their detokenized text.
  const ids = (await postJson(srv.url, '/tokenize', { content: 'Hello world' })).json.tokens;
  const t = await alone(ids, { echo: true });
  assert.equal(t.choices[0].text, 'Hello world' + (await alone(ids)).choices[0].text);

  // "quick" is in the prompt, not in the completion: it must not stop anything.
  assert.ok(!ref.includes('quick'), ref);
  const st = await alone(prompt, { echo: true, stop: ['quick'] });
  assert.equal(st.choices[0].text, prompt + ref);
  assert.equal(st.choices[0].finish_reason, 'length');

  const lp = await postJson(srv.url, '/v1/completions', { prompt, echo: true, logprobs: 2 });
  assertApiError(lp, 400, 'echo');
  assert.match(lp.json.error.message, /echo.*logprobs/);
});

test('suffix is refused with a 400 naming it, not ignored', async () => {
  await assert.rejects(alone('def f(x):', { suffix: '\n    return y' }), (e) => {
    assert.ok(e instanceof OpenAI.APIError);
    assert.equal(e.status, 400);
    assert.equal(e.param, 'suffix');
    assert.match(e.message, /suffix.*not supported/);
    return true;
  });
  assert.equal((await alone('x', { suffix: '' })).choices.length, 1, 'an empty suffix is no suffix');
});

test('special-token text in a text prompt is the special token (HF default)', async () => {
  // In DeepSeek-V3's tokenizer <｜begin▁of▁sentence｜> is id 0 and <｜end▁of▁sentence｜> id 1.
  const hello = (await postJson(srv.url, '/tokenize', { content: 'Hello' })).json.tokens;
  const text = await alone('<｜end▁of▁sentence｜>Hello');
  assert.equal(text.usage.prompt_tokens, 2 + hello.length);
  const ids = await alone([0, 1, ...hello]);
  assert.equal(text.choices[0].text, ids.choices[0].text);
  assert.equal(ids.usage.prompt_tokens, text.usage.prompt_tokens);
});

test('prompt list limits and shapes are 400s naming prompt (or n)', async () => {
  const post = (body) => postJson(srv.url, '/v1/completions', { max_tokens: 1, ...body });
  assertApiError(await post({ prompt: Array(17).fill('x') }), 400, 'prompt');
  assertApiError(await post({ prompt: [] }), 400, 'prompt');
  assertApiError(await post({ prompt: ['a', 5] }), 400, 'prompt');
  assertApiError(await post({ prompt: ['a', ''] }), 400, 'prompt');
  assertApiError(await post({ prompt: [[1, 2], [129280]] }), 400, 'prompt');
  assertApiError(await post({ prompt: ['a', { text: 'b' }] }), 400, 'prompt');
  // 4 prompts x n 4 = 16 choices; this server holds 12 (--parallel 4 + --queue 8).
  const big = await post({ prompt: ['a', 'b', 'c', 'd'], n: 4 });
  assertApiError(big, 400, 'prompt');
  assert.match(big.json.error.message, /16 choices/);
  assert.equal((await post({ prompt: Array(12).fill('x') })).status, 200);
  assertApiError(await post({ prompt: Array(13).fill('x') }), 400, 'prompt');
});

test('GET /v1/models/{id}: the model object, or 404 model_not_found', async () => {
  const list = await client.models.list();
  const m = await client.models.retrieve('v3');
  assert.deepEqual({ ...m }, { ...list.data[0] });
  assert.equal(m.object, 'model');
  await assert.rejects(client.models.retrieve('gpt-4'), (e) => {
    assert.ok(e instanceof OpenAI.NotFoundError);
    assert.equal(e.code, 'model_not_found');
    assert.equal(e.error.type, 'invalid_request_error');
    return true;
  });
  const r = await fetch(srv.url + '/v1/models/v3/x');
  assert.equal(r.status, 404);
  assert.equal((await r.json()).error.code, 'model_not_found');
});

test('tiny-R1: stop strings cut the answer, never the reasoning (streaming and not)', async () => {
  const ask = (extra = {}) => r1client.chat.completions.create({ model: 'tiny-r1',
    messages: [{ role: 'user', content: 'What is 123*45?' }], temperature: 0, max_tokens: 300, ...extra });
  const full = (await ask()).choices[0];
  const R = full.message.reasoning_content, C = full.message.content;
  assert.equal(full.finish_reason, 'stop');
  assert.ok(R.length > 50 && C.length > 0, JSON.stringify(full.message));

  // A stop string found only in the reasoning changes nothing.
  assert.ok(R.includes('write') && !C.includes('write'), JSON.stringify(full.message));
  const a = (await ask({ stop: ['write'] })).choices[0];
  assert.equal(a.message.reasoning_content, R);
  assert.equal(a.message.content, C);

  // The answer's last digits, also in the reasoning: only the answer is cut, at their first place in it.
  const stop = C.trim().slice(-3);
  assert.ok(R.includes(stop), `${stop} in the reasoning too`);
  const b = (await ask({ stop })).choices[0];
  assert.equal(b.message.reasoning_content, R);
  assert.equal(b.message.content, C.slice(0, C.indexOf(stop)));
  assert.equal(b.finish_reason, 'stop');

  const s = await ask({ stop, stream: true });
  let reasoning = '', content = '', finish = null;
  for await (const c of s) {
    const d = c.choices[0]?.delta ?? {};
    reasoning += d.reasoning_content ?? '';
    content += d.content ?? '';
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(reasoning, R);
  assert.equal(content, b.message.content);
  assert.equal(finish, 'stop');
});
