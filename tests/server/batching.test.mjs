// Continuous batching changes nothing: with greedy sampling, 16 concurrent requests produce exactly what each
// produces alone; a request sharing a prefix with an earlier one reuses the cache (from a free slot or copied from a
// busy one) and still produces identical output.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, postJson, metrics } from './lib.mjs';

let srv, ref;
const args = ['--parallel', '4', '--chunk', '16', '--batch-tokens', '48', '--ctx', '2048'];
before(async () => { [srv, ref] = await Promise.all([startServer(args), startServer(['--parallel', '1', '--chunk', '16', '--batch-tokens', '48', '--ctx', '2048'])]); });
after(async () => { for (const s of [srv, ref]) assert.equal((await s.stop()).code, 0, s.log()); });

const system = 'You are a careful assistant. ' + 'Always answer briefly and precisely, citing sources where possible. '.repeat(12);
const req = (i, extra = {}) => ({
  messages: [{ role: 'system', content: system }, { role: 'user', content: `Question ${i}: ` + 'tell me more. '.repeat(i % 5) }],
  max_tokens: 12 + (i % 4) * 4, temperature: 0, ignore_eos: true, ...extra,
});

test('16 concurrent greedy requests equal each alone', async () => {
  const alone = [];
  for (let i = 0; i < 16; i++) {
    const r = await postJson(ref.url, '/v1/chat/completions', req(i));
    assert.equal(r.status, 200, r.text);
    alone.push(r.json);
  }
  const m0 = await metrics(srv.url);
  const together = await Promise.all(Array.from({ length: 16 }, (_, i) => postJson(srv.url, '/v1/chat/completions', req(i))));
  const m1 = await metrics(srv.url);
  let tokens = 0;
  for (let i = 0; i < 16; i++) {
    assert.equal(together[i].status, 200);
    assert.equal(together[i].json.choices[0].message.content, alone[i].choices[0].message.content, `request ${i}`);
    assert.equal(together[i].json.usage.completion_tokens, alone[i].usage.completion_tokens);
    tokens += together[i].json.usage.completion_tokens;
  }
  // Batched: far fewer forward steps than tokens generated.
  const steps = m1.deepseek_scheduler_steps_total - m0.deepseek_scheduler_steps_total;
  assert.ok(steps < tokens * 0.6, `steps ${steps} vs tokens ${tokens}`);
  // Streaming under concurrency gives the same text too.
  const streamed = await Promise.all([0, 5, 10].map(async (i) => {
    const r = await fetch(srv.url + '/v1/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(req(i, { stream: true })) });
    let text = '';
    for (const line of (await r.text()).split('\n')) {
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      text += JSON.parse(line.slice(6)).choices[0]?.delta?.content ?? '';
    }
    return text;
  }));
  assert.deepEqual(streamed, [0, 5, 10].map((i) => alone[i].choices[0].message.content));
});

test('a shared system prompt is computed once; reuse keeps outputs identical', async () => {
  const probe = { ...req(100), messages: [{ role: 'system', content: system }, { role: 'user', content: 'A different question.' }] };
  // Reference computed from scratch: the single slot of `ref` first gets an unrelated prompt.
  await postJson(ref.url, '/v1/chat/completions', { ...req(1), messages: [{ role: 'user', content: 'Unrelated.' }] });
  const expect = await postJson(ref.url, '/v1/chat/completions', probe);
  assert.equal(expect.json.usage.prompt_tokens_details.cached_tokens, 0);
  // On the batching server the prompt shares the system prompt with earlier requests (free slots hold it).
  const m0 = await metrics(srv.url);
  const got = await postJson(srv.url, '/v1/chat/completions', probe);
  const m1 = await metrics(srv.url);
  const hit = m1.deepseek_prefix_cache_hit_tokens_total - m0.deepseek_prefix_cache_hit_tokens_total;
  assert.ok(hit >= 100, `prefix hit ${hit}`);
  assert.equal(got.json.usage.prompt_tokens_details.cached_tokens, hit);
  assert.equal(got.json.choices[0].message.content, expect.json.choices[0].message.content);
  const computed = m1.deepseek_prompt_tokens_computed_total - m0.deepseek_prompt_tokens_computed_total;
  assert.equal(computed, got.json.usage.prompt_tokens - hit);
});

test('prefix copied from a busy slot', async () => {
  const s = await startServer(['--parallel', '2', '--chunk', '16', '--ctx', '4096']);
  try {
    const other = 'Completely unrelated instructions for a different persona. '.repeat(10);
    // Fill slot caches with something else, then keep one slot busy with the shared system prompt.
    await postJson(s.url, '/v1/chat/completions', { ...req(1), messages: [{ role: 'system', content: other }, { role: 'user', content: 'x' }] });
    const busy = postJson(s.url, '/v1/chat/completions', { ...req(2), max_tokens: 3000 });
    const t0 = Date.now();
    while ((await metrics(s.url)).deepseek_kv_cache_used_tokens < 200 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    const probe = { ...req(3), messages: [{ role: 'system', content: system }, { role: 'user', content: 'Yet another one.' }] };
    const got = await postJson(s.url, '/v1/chat/completions', probe);
    assert.ok(got.json.usage.prompt_tokens_details.cached_tokens >= 100, JSON.stringify(got.json.usage));
    const expect = await postJson(ref.url, '/v1/chat/completions', probe);
    assert.equal(got.json.choices[0].message.content, expect.json.choices[0].message.content);
    const m = await metrics(s.url);
    assert.equal(m.deepseek_slots_active, 1, 'the long request is still running');
    await busy;
  } finally {
    assert.equal((await s.stop()).code, 0);
  }
});
