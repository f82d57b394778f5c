// DeepSeek-V3.2 (sparse attention: each query attends to the index_topk positions its lightning indexer chooses)
// through the server: with greedy sampling, 8 concurrent requests (continuous batching, MTP speculation on by default,
// prefix reuse, a KV pool small enough to swap) produce exactly what each produces alone on a server that batches
// nothing, does not speculate and computes every prompt from scratch. The test model chooses 8 positions, so every
// prompt here is attended sparsely.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, postJson, metrics } from './lib.mjs';

let srv, ref;
before(async () => {
  [srv, ref] = await Promise.all([
    startServer(['--parallel', '4', '--chunk', '16', '--batch-tokens', '48', '--ctx', '512', '--kv-cache-tokens', '192'], 'v32'),
    startServer(['--parallel', '1', '--ctx', '512', '--no-prefix-cache', '--draft', '0'], 'v32'),
  ]);
});
after(async () => { for (const s of [srv, ref]) assert.equal((await s.stop()).code, 0, s.log()); });

const shared = 'The lightning indexer scores every earlier token and keeps the best ones. '.repeat(3);
const req = (i) => ({
  prompt: shared + `Case ${i}: ` + 'more words follow here. '.repeat(i % 4),
  max_tokens: 20 + (i % 3) * 6, temperature: 0, ignore_eos: true, logprobs: 2,
});

test('V3.2: 8 concurrent greedy requests (batched, speculating, reusing prefixes) equal each alone', async () => {
  const alone = [];
  for (let i = 0; i < 8; i++) {
    const r = await postJson(ref.url, '/v1/completions', req(i));
    assert.equal(r.status, 200, r.text);
    alone.push(r.json);
  }
  // Sparse attention is really in play: prompts are longer than the 8 positions a query may attend to.
  assert.ok(alone.every((a) => a.usage.prompt_tokens > 8));
  const m0 = await metrics(srv.url);
  const together = await Promise.all(Array.from({ length: 8 }, (_, i) => postJson(srv.url, '/v1/completions', req(i))));
  const m1 = await metrics(srv.url);
  for (let i = 0; i < 8; i++) {
    assert.equal(together[i].status, 200, together[i].text);
    const a = alone[i].choices[0], b = together[i].json.choices[0];
    assert.equal(b.text, a.text, `request ${i}`);
    assert.deepEqual(b.logprobs.tokens, a.logprobs.tokens, `request ${i}`);
    assert.equal(together[i].json.usage.completion_tokens, alone[i].usage.completion_tokens);
  }
  // The server speculated with the MTP layer (its own indexer included) and reused the shared prefix.
  const hits = m1.deepseek_prefix_cache_hit_tokens_total - (m0.deepseek_prefix_cache_hit_tokens_total ?? 0);
  assert.ok(hits > 0, `prefix cache hits ${hits}`);
  const swaps = m1.deepseek_kv_cache_preemptions_total - (m0.deepseek_kv_cache_preemptions_total ?? 0);
  assert.ok(swaps > 0, `preemptions ${swaps}`);
  const drafted = m1.deepseek_spec_draft_tokens_total - (m0.deepseek_spec_draft_tokens_total ?? 0);
  assert.ok(drafted > 0, `drafted ${drafted}`);
  // Cache rows carry the indexer's key after the latent: 2 layers + MTP, (32 + 8 + 16) values of 4 bytes.
  assert.equal(m1.deepseek_kv_cache_bytes_per_token, 3 * 56 * 4);
});
