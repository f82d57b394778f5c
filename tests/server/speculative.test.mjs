// MTP speculation through the server (`deepseek serve --model models/tiny-r1`, 8 slots): all 1,000 held-out problems
// answered greedily by 8 concurrent streams, without speculation and with 1 and 2 drafts per step (2 with a KV pool
// small enough that sequences are swapped out and back); every answer (reasoning and content, token logprobs on a
// sample, finish_reason, usage) must be identical, and /metrics must report the drafts and their acceptance.
// Stop strings and max_tokens cut the same text with and without speculation.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, metrics, postJson, SOURCE_DIR } from './lib.mjs';

const TINY_R1 = path.join(SOURCE_DIR, 'models/tiny-r1');
// DS_SPEC_PROBLEMS=N: the first N problems only (the sanitizer pass runs 40; the full run is labelled slow).
const problems = fs.readFileSync(path.join(SOURCE_DIR, 'tests/fixtures/tiny-r1/heldout.jsonl'), 'utf8')
  .split('\n').filter((l) => l).map((l) => JSON.parse(l).question)
  .slice(0, Number(process.env.DS_SPEC_PROBLEMS || 1000));

const servers = {};
before(async () => {
  const common = ['--parallel', '8', '--ctx', '512'];
  [servers.plain, servers.d1, servers.d2] = await Promise.all([
    startServer([...common, '--draft', '0'], TINY_R1),
    startServer([...common, '--draft', '1'], TINY_R1),
    startServer([...common, '--draft', '2', '--kv-cache-tokens', '1024'], TINY_R1)]);
});
after(async () => {
  for (const s of Object.values(servers)) assert.equal((await s.stop()).code, 0, 'graceful exit: ' + s.log());
});

async function answer(url, q, extra = {}) {
  const r = await postJson(url, '/v1/chat/completions', {
    model: 'tiny-r1', messages: [{ role: 'user', content: q }], temperature: 0, max_tokens: 300, ...extra });
  assert.equal(r.status, 200, r.text);
  const c = r.json.choices[0];
  return { reasoning: c.message.reasoning_content, content: c.message.content, finish: c.finish_reason,
           tokens: r.json.usage.completion_tokens, logprobs: c.logprobs };
}

// Every problem through one server, 8 requests in flight at a time.
async function all(url, extraFor = () => ({})) {
  const out = new Array(problems.length);
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < problems.length) {
      const i = next++;
      out[i] = await answer(url, problems[i], extraFor(i));
    }
  }));
  return out;
}

test(`${problems.length} held-out answers identical with and without speculation (8 concurrent streams)`, async () => {
  const logprobsFor = (i) => (i % 50 === 0 ? { logprobs: true, top_logprobs: 2 } : {});
  const plain = await all(servers.plain.url, logprobsFor);
  for (const name of ['d1', 'd2']) {
    const spec = await all(servers[name].url, logprobsFor);
    let same = 0;
    for (let i = 0; i < problems.length; i++) {
      assert.deepEqual(spec[i], plain[i], `${name}: problem ${i}: ${problems[i]}`);
      same++;
    }
    const m = await metrics(servers[name].url);
    const drafted = m.deepseek_spec_draft_tokens_total, accepted = m.deepseek_spec_accepted_tokens_total;
    const first = m['deepseek_spec_accepted_by_position_total{position="1"}'] /
                  m['deepseek_spec_drafted_by_position_total{position="1"}'];
    console.log(`${name}: ${same}/${problems.length} identical; drafted ${drafted}, accepted ${accepted} ` +
                `(${(100 * accepted / drafted).toFixed(2)}%), first draft ${(100 * first).toFixed(2)}%, ` +
                `${m.deepseek_spec_tokens_per_step.toFixed(2)} tokens per verify step, ` +
                `${m.deepseek_kv_cache_preemptions_total} preemptions`);
    assert.ok(first > 0.95, `first-draft acceptance ${first}`);
    assert.ok(m.deepseek_spec_tokens_per_step > 1.9, 'tokens per verify step');
  }
  const m = await metrics(servers.plain.url);
  assert.equal(m.deepseek_spec_draft_tokens_total, 0, '--draft 0 drafts nothing');
});

test('stop strings and max_tokens cut the same text with speculation', async () => {
  for (const extra of [{ stop: ['='] }, { stop: ['</think>', '\n\n'] }, { max_tokens: 7 }, { max_tokens: 1 }]) {
    for (const q of problems.slice(0, 8)) {
      const a = await answer(servers.plain.url, q, extra), b = await answer(servers.d2.url, q, extra);
      assert.deepEqual(b, a, JSON.stringify(extra) + ' ' + q);
    }
  }
});

// The same long prompt 8 times at once: later requests share the first one's prompt blocks while it still writes its
// MTP rows into them (copy on write, or drafts dropped for a step when the small pool has no block for the copy).
test('identical concurrent prompts (shared prefix blocks) give identical answers with speculation', async () => {
  const q = problems[3] + ' ' + 'Think step by step. '.repeat(12);
  const [a] = await Promise.all([answer(servers.plain.url, q)]);
  const got = await Promise.all(Array.from({ length: 8 }, () => answer(servers.d2.url, q)));
  for (const g of got) assert.deepEqual(g, a);
  const m = await metrics(servers.d2.url);
  assert.equal(m['deepseek_requests_finished_total{reason="error"}'], 0);
});
