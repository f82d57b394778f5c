// --kv-dtype behind the server, through the official openai SDK: with the KV cache stored as bf16 (MLA latent rows
// of the V3-shaped model, K/V rows of the qwen2-shaped one), 8 concurrent greedy streams produce exactly what each
// produces alone; with fp8 rows in a pool too small for all of them, sequences are swapped out to host memory and
// back and still produce the same. /metrics states the format and the bytes one token takes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import { startServer, metrics, MODEL } from './lib.mjs';

// Bytes of one token's cache rows (base/kv_rows.h): every layer's row of `w` values in the format.
function bytesPerToken(variant, dtype) {
  const c = JSON.parse(readFileSync(`${MODEL}/${variant}/config.json`, 'utf8'));
  const w = c.kv_lora_rank ? c.kv_lora_rank + c.qk_rope_head_dim
                           : 2 * c.num_key_value_heads * (c.head_dim ?? c.hidden_size / c.num_attention_heads);
  const row = { f32: 4 * w, bf16: Math.ceil(2 * w / 4) * 4, fp8: Math.ceil(w / 4) * 4 + 4 * Math.ceil(w / 128) }[dtype];
  return row * (c.num_hidden_layers + (c.num_nextn_predict_layers ?? 0));
}

const common = ['--chunk', '16', '--batch-tokens', '64', '--ctx', '2048'];
const servers = {};
before(async () => {
  const start = async (name, args, variant) => { servers[name] = await startServer([...common, ...args], variant); };
  await Promise.all([
    start('v3', ['--parallel', '8', '--kv-dtype', 'bf16'], 'v3'),
    start('v3alone', ['--parallel', '1', '--kv-dtype', 'bf16', '--no-prefix-cache'], 'v3'),
    start('qwen2', ['--parallel', '8', '--kv-dtype', 'bf16'], 'qwen2'),
    start('qwen2alone', ['--parallel', '1', '--kv-dtype', 'bf16', '--no-prefix-cache'], 'qwen2')]);
});
after(async () => { for (const s of Object.values(servers)) assert.equal((await s.stop()).code, 0, s.log()); });

const client = (srv) => new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'unused', maxRetries: 0 });
const system = 'You are a careful assistant. ' + 'Think step by step and answer briefly. '.repeat(8);
const req = (model, i, extra = {}) => ({
  model,
  messages: [{ role: 'system', content: system },
             { role: 'user', content: `Question ${i}: ` + 'and why? '.repeat(i % 4) }],
  max_tokens: 10 + (i % 3) * 6, temperature: 0, ignore_eos: true, ...extra,
});

for (const variant of ['v3', 'qwen2']) {
  test(`${variant}, bf16 cache: 8 concurrent greedy streams equal each alone; metrics state the format`, async () => {
    const batched = client(servers[variant]), alone = client(servers[variant + 'alone']);
    const want = [];
    for (let i = 0; i < 8; i++) want.push(await alone.chat.completions.create(req(variant, i)));
    // One request first, so the system prompt is in the batched server's prefix cache whatever the timing (eight
    // requests admitted in one step, as on a loaded machine, would otherwise all prefill it before any could share it).
    await batched.chat.completions.create(req(variant, 0));
    const m0 = await metrics(servers[variant].url);
    const got = await Promise.all(
      Array.from({ length: 8 }, (_, i) => batched.chat.completions.create(req(variant, i))));
    const m1 = await metrics(servers[variant].url);
    let tokens = 0;
    for (let i = 0; i < 8; i++) {
      assert.equal(got[i].choices[0].message.content, want[i].choices[0].message.content, `request ${i}`);
      assert.equal(got[i].usage.completion_tokens, want[i].usage.completion_tokens);
      tokens += got[i].usage.completion_tokens;
    }
    const steps = m1.deepseek_scheduler_steps_total - m0.deepseek_scheduler_steps_total;
    assert.ok(steps < tokens * 0.6, `batched: ${steps} steps for ${tokens} tokens`);
    assert.ok(m1.deepseek_prefix_cache_hit_tokens_total > m0.deepseek_prefix_cache_hit_tokens_total,
              'system prompt reused');
    assert.equal(m1.deepseek_kv_cache_bytes_per_token, bytesPerToken(variant, 'bf16'));
    assert.equal(m1['deepseek_kv_cache_info{dtype="bf16"}'], 1);
  });
}

test('fp8 cache, a pool too small for 8 streams: swapped sequences still equal each alone', async () => {
  const args = [...common, '--kv-dtype', 'fp8', '--no-prefix-cache'];
  const [small, ref] = await Promise.all([
    startServer([...args, '--parallel', '8', '--kv-cache-tokens', '512', '--kv-block-size', '16']),
    startServer([...args, '--parallel', '1'])]);
  try {
    const long = (i) => req('v3', i, { max_tokens: 40 });
    const want = [];
    for (let i = 0; i < 8; i++) want.push(await client(ref).chat.completions.create(long(i)));
    const got = await Promise.all(
      Array.from({ length: 8 }, (_, i) => client(small).chat.completions.create(long(i))));
    for (let i = 0; i < 8; i++) {
      assert.equal(got[i].choices[0].message.content, want[i].choices[0].message.content, `request ${i}`);
    }
    const m = await metrics(small.url);
    assert.ok(m.deepseek_kv_cache_preemptions_total > 0, 'the pool was too small: sequences were swapped');
    assert.equal(m.deepseek_kv_cache_bytes_per_token, bytesPerToken('v3', 'fp8'));
    assert.equal(m['deepseek_kv_cache_info{dtype="fp8"}'], 1);
  } finally {
    for (const s of [small, ref]) assert.equal((await s.stop()).code, 0, s.log());
  }
});

test('--kv-dtype with --precision f32 is refused at start', async () => {
  await assert.rejects(startServer(['--kv-dtype', 'bf16', '--precision', 'f32']),
                       /--kv-dtype bf16 needs --precision fast/);
});
