// Continuous batching changes nothing: with greedy sampling, 16 concurrent requests produce exactly what each
// produces alone (the reference server computes every prompt from scratch: --no-prefix-cache); a request sharing a
// prefix with earlier ones reuses their KV blocks (cached after they finished, or shared with a running request)
// and still produces identical output. When the KV pool runs out, running sequences are swapped out and back in
// and still produce exactly what they produce alone.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, postJson, metrics } from './lib.mjs';

let srv, ref;
const args = ['--parallel', '4', '--chunk', '16', '--batch-tokens', '48', '--ctx', '2048'];
before(async () => { [srv, ref] = await Promise.all([startServer(args), startServer(['--parallel', '1', '--chunk', '16', '--batch-tokens', '48', '--ctx', '2048', '--no-prefix-cache'])]); });
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
  // The default cache format: f32 rows, 4 bytes per value (V3 test model: 2 layers of 32 + 8 latent values).
  assert.equal(m1['deepseek_kv_cache_info{dtype="f32"}'], 1);
  assert.equal(m1.deepseek_kv_cache_bytes_per_token, 2 * 40 * 4);
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
  const expect = await postJson(ref.url, '/v1/chat/completions', probe);
  assert.equal(expect.json.usage.prompt_tokens_details.cached_tokens, 0);
  // On the batching server the prompt shares the system prompt with earlier requests (their blocks stay cached).
  const m0 = await metrics(srv.url);
  const got = await postJson(srv.url, '/v1/chat/completions', probe);
  const m1 = await metrics(srv.url);
  const hit = m1.deepseek_prefix_cache_hit_tokens_total - m0.deepseek_prefix_cache_hit_tokens_total;
  assert.ok(hit >= 100, `prefix hit ${hit}`);
  assert.equal(got.json.usage.prompt_tokens_details.cached_tokens, hit);
  assert.equal(got.json.choices[0].message.content, expect.json.choices[0].message.content);
  const computed = m1.deepseek_prompt_tokens_computed_total - m0.deepseek_prompt_tokens_computed_total;
  assert.equal(computed, got.json.usage.prompt_tokens - hit);
  assert.equal(m1.deepseek_prefix_cache_hit_requests_total, m0.deepseek_prefix_cache_hit_requests_total + 1);
  // Nothing runs now: no block is referenced, and the shared prefix is held once, in cached blocks.
  assert.equal(m1.deepseek_kv_cache_blocks_used, 0);
  assert.ok(m1.deepseek_kv_cache_blocks_cached > 0);
});

test('reuse at a block boundary that is not a chunk boundary keeps outputs identical', async () => {
  // Prompts that share 1..3 blocks of 16 tokens beyond a common start, with --chunk 64: the resumed prefill
  // starts mid-chunk. Token-id prompts make the shared lengths exact.
  const s = await startServer(['--parallel', '2', '--chunk', '64', '--kv-block-size', '16', '--ctx', '1024']);
  const r = await startServer(['--parallel', '1', '--chunk', '64', '--ctx', '1024', '--no-prefix-cache']);
  try {
    const base = Array.from({ length: 200 }, (_, i) => 1000 + ((i * 7919) % 5000));
    for (const [len, cut] of [[90, 80], [97, 96], [130, 113], [65, 48], [50, 49]]) {
      const warm = base.slice(0, cut).concat([7, 8, 9]);
      await postJson(s.url, '/v1/completions', { prompt: warm, max_tokens: 2, temperature: 0, ignore_eos: true });
      const prompt = base.slice(0, len);
      const body = { prompt, max_tokens: 8, temperature: 0, ignore_eos: true, logprobs: 1 };
      const [got, want] = await Promise.all([postJson(s.url, '/v1/completions', body), postJson(r.url, '/v1/completions', body)]);
      assert.equal(got.status, 200, got.text);
      assert.deepEqual(got.json.choices[0].logprobs.tokens, want.json.choices[0].logprobs.tokens, `len ${len} cut ${cut}`);
      assert.deepEqual(got.json.choices[0].logprobs.token_logprobs, want.json.choices[0].logprobs.token_logprobs,
                       `len ${len} cut ${cut}: logprobs bitwise`);
      assert.equal(want.json.usage.prompt_tokens_details?.cached_tokens ?? 0, 0);
    }
  } finally {
    for (const x of [s, r]) assert.equal((await x.stop()).code, 0, x.log());
  }
});

test('prefix blocks shared with a busy request', async () => {
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
    // Shared, not copied: the busy request and the probe held the system prompt's blocks once.
    const expect = await postJson(ref.url, '/v1/chat/completions', probe);
    assert.equal(got.json.choices[0].message.content, expect.json.choices[0].message.content);
    const m = await metrics(s.url);
    assert.equal(m.deepseek_slots_active, 1, 'the long request is still running');
    await busy;
  } finally {
    assert.equal((await s.stop()).code, 0);
  }
});

test('a small KV pool: requests wait for blocks and complete; a prompt the pool cannot hold is a 400', async () => {
  // 8 blocks of 16 tokens for 4 slots: each 60-token prompt + its first token needs 4 blocks, so at most two run.
  const s = await startServer(['--parallel', '4', '--ctx', '1024', '--kv-cache-tokens', '128', '--kv-block-size', '16',
                               '--no-prefix-cache']);
  try {
    const prompt = (k) => Array.from({ length: 60 }, (_, i) => 2000 + k * 97 + i);
    const rs = await Promise.all([0, 1, 2, 3, 4].map((k) =>
      postJson(s.url, '/v1/completions', { prompt: prompt(k), max_tokens: 3, temperature: 0, ignore_eos: true })));
    for (const r of rs) {
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.usage.completion_tokens, 3);
    }
    const m = await metrics(s.url);
    assert.equal(m.deepseek_kv_cache_blocks_total, 8);
    assert.equal(m.deepseek_kv_cache_blocks_used, 0, 'blocks are back before the responses end');
    const big = await postJson(s.url, '/v1/completions', { prompt: Array(200).fill(1000), max_tokens: 2 });
    assert.equal(big.status, 400);
    assert.match(big.json.error.message, /kv-cache-tokens/);
  } finally {
    assert.equal((await s.stop()).code, 0, s.log());
  }
});

test('a pool too small for the running sequences: the youngest are swapped out and back, outputs unchanged', async () => {
  // 8 blocks of 16 tokens for 4 slots: 4 prompts of 20 tokens are all admitted (2 blocks each), then each needs a
  // third block at 32 tokens and a fourth at 48: sequences must be preempted for the others to go on.
  const s = await startServer(['--parallel', '4', '--chunk', '16', '--batch-tokens', '48', '--ctx', '1024',
                               '--kv-cache-tokens', '128', '--kv-block-size', '16', '--no-prefix-cache']);
  try {
    const body = (k, max) => ({ prompt: Array.from({ length: 20 }, (_, i) => 3000 + k * 131 + i * 7), max_tokens: max,
                                temperature: 0, ignore_eos: true });
    const alone = [];
    for (let k = 0; k < 4; k++) alone.push(await postJson(ref.url, '/v1/completions', body(k, 40)));
    const together = await Promise.all([0, 1, 2, 3].map((k) => postJson(s.url, '/v1/completions', body(k, 40))));
    for (let k = 0; k < 4; k++) {
      assert.equal(together[k].status, 200, together[k].text);
      assert.equal(together[k].json.usage.completion_tokens, 40, `request ${k}`);
      assert.equal(together[k].json.choices[0].text, alone[k].json.choices[0].text, `request ${k}`);
    }
    let m = await metrics(s.url);
    assert.ok(m.deepseek_kv_cache_preemptions_total > 0, 'the pool was too small: someone was swapped out');
    assert.equal(m.deepseek_kv_cache_full_stops_total, 0);
    assert.equal(m.deepseek_kv_cache_swapped_requests, 0);
    assert.equal(m.deepseek_kv_cache_blocks_used, 0);
    // A sequence alone that outgrows the whole pool ends with `length` at the pool's size, and the server goes on.
    const long = await postJson(s.url, '/v1/completions', body(9, 500));
    assert.equal(long.status, 200, long.text);
    assert.equal(long.json.choices[0].finish_reason, 'length');
    assert.ok(long.json.usage.completion_tokens < 128 && long.json.usage.completion_tokens > 90,
              `${long.json.usage.completion_tokens} tokens`);
    m = await metrics(s.url);
    assert.equal(m.deepseek_kv_cache_full_stops_total, 1);
    const after = await postJson(s.url, '/v1/completions', body(0, 40));
    assert.equal(after.json.choices[0].text, alone[0].json.choices[0].text);
  } finally {
    assert.equal((await s.stop()).code, 0, s.log());
  }
});
