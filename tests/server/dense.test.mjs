// A dense distill-shaped model (qwen2: grouped-query attention, K/V rows in the paged pool) behind the server:
// 8 concurrent greedy streams produce exactly what each produces alone; with a KV pool too small for all of them,
// running sequences are swapped out and back and still produce the same; a shared system prompt is reused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, postJson, metrics } from './lib.mjs';

let srv, ref;
before(async () => {
  [srv, ref] = await Promise.all([
    startServer(['--parallel', '8', '--chunk', '16', '--batch-tokens', '64', '--ctx', '2048'], 'qwen2'),
    startServer(['--parallel', '1', '--chunk', '16', '--ctx', '2048', '--no-prefix-cache'], 'qwen2')]);
});
after(async () => { for (const s of [srv, ref]) assert.equal((await s.stop()).code, 0, s.log()); });

const system = 'You are a careful assistant. ' + 'Think step by step and answer briefly. '.repeat(8);
const req = (i, extra = {}) => ({
  messages: [{ role: 'system', content: system }, { role: 'user', content: `Question ${i}: ` + 'and why? '.repeat(i % 4) }],
  max_tokens: 10 + (i % 3) * 6, temperature: 0, ignore_eos: true, ...extra,
});

async function aloneOutputs(n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const r = await postJson(ref.url, '/v1/chat/completions', req(i));
    assert.equal(r.status, 200, r.text);
    out.push(r.json);
  }
  return out;
}

test('8 concurrent greedy streams equal each alone', async () => {
  const alone = await aloneOutputs(8);
  // One request first, so the system prompt is in the prefix cache whatever the timing (eight requests admitted in
  // one step, as on a loaded machine, would otherwise all prefill it before any could share it).
  assert.equal((await postJson(srv.url, '/v1/chat/completions', req(0))).status, 200);
  const m0 = await metrics(srv.url);
  const together = await Promise.all(Array.from({ length: 8 }, (_, i) => postJson(srv.url, '/v1/chat/completions', req(i))));
  const m1 = await metrics(srv.url);
  let tokens = 0;
  for (let i = 0; i < 8; i++) {
    assert.equal(together[i].status, 200, together[i].text);
    assert.equal(together[i].json.choices[0].message.content, alone[i].choices[0].message.content, `request ${i}`);
    assert.equal(together[i].json.usage.completion_tokens, alone[i].usage.completion_tokens);
    tokens += together[i].json.usage.completion_tokens;
  }
  const steps = m1.deepseek_scheduler_steps_total - m0.deepseek_scheduler_steps_total;
  assert.ok(steps < tokens * 0.6, `batched: ${steps} steps for ${tokens} tokens`);
  assert.ok(m1.deepseek_prefix_cache_hit_tokens_total > m0.deepseek_prefix_cache_hit_tokens_total, 'system prompt reused');
});

test('a KV pool too small for 8 streams: swapped sequences still equal each alone', async () => {
  const s = await startServer(['--parallel', '8', '--chunk', '16', '--ctx', '2048', '--kv-cache-tokens', '512',
                               '--kv-block-size', '16', '--no-prefix-cache'], 'qwen2');
  try {
    const long = (i) => req(i, { max_tokens: 40 });
    const wantLong = [];
    for (let i = 0; i < 8; i++) wantLong.push((await postJson(ref.url, '/v1/chat/completions', long(i))).json);
    const got = await Promise.all(Array.from({ length: 8 }, (_, i) => postJson(s.url, '/v1/chat/completions', long(i))));
    for (let i = 0; i < 8; i++) {
      assert.equal(got[i].status, 200, got[i].text);
      assert.equal(got[i].json.choices[0].message.content, wantLong[i].choices[0].message.content, `request ${i}`);
    }
    const m = await metrics(s.url);
    assert.ok(m.deepseek_kv_cache_preemptions_total > 0, 'the pool was too small: sequences were swapped');
  } finally {
    assert.equal((await s.stop()).code, 0, s.log());
  }
});
