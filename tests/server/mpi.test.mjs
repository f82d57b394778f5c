// The server split across two processes (`mpirun -np 2 deepseek serve`, docs/SCALING.md): rank 0 schedules and
// serves HTTP, rank 1 runs every step on its half of the model. tiny-R1's held-out problems answered greedily by 8
// concurrent streams, with MTP drafts, must be the single-process server's answers, bit for bit: reasoning,
// content, finish_reason, usage and logprobs (every product is computed as in one process, and the experts' rows are
// added in the one-process order). A small KV pool makes sequences swap out and back (block writes the other rank
// replays), and a shared system prompt makes them share and copy prefix blocks (how many prompt tokens were cached
// depends on timing, and is not compared).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startServer, metrics, postJson, SOURCE_DIR } from './lib.mjs';

const TINY_R1 = path.join(SOURCE_DIR, 'models/tiny-r1');
const problems = fs.readFileSync(path.join(SOURCE_DIR, 'tests/fixtures/tiny-r1/heldout.jsonl'), 'utf8')
  .split('\n').filter((l) => l).map((l) => JSON.parse(l).question)
  .slice(0, Number(process.env.DS_MPI_PROBLEMS || 160));
const SYSTEM = 'Solve the problem step by step. Write every carry. '.repeat(3);

const haveMpirun = spawnSync('mpirun', ['--version']).status === 0;
const servers = {};
before(async () => {
  assert.ok(haveMpirun, 'mpirun (openmpi-bin) is not installed: run scripts/setup.sh');
  const common = ['--parallel', '8', '--ctx', '512', '--draft', '1', '--kv-cache-tokens', '640'];
  [servers.one, servers.two] = await Promise.all([
    startServer(common, TINY_R1), startServer(common, TINY_R1, 2)]);
});
after(async () => {
  for (const s of Object.values(servers)) assert.equal((await s.stop()).code, 0, 'graceful exit: ' + s.log());
});

async function answer(url, i) {
  const messages = [{ role: 'user', content: problems[i] }];
  if (i % 3 === 0) messages.unshift({ role: 'system', content: SYSTEM });
  const extra = i % 20 === 0 ? { logprobs: true, top_logprobs: 2 } : {};
  const r = await postJson(url, '/v1/chat/completions', {
    model: 'tiny-r1', messages, temperature: 0, max_tokens: 300, ...extra });
  assert.equal(r.status, 200, r.text);
  const c = r.json.choices[0];
  return { reasoning: c.message.reasoning_content, content: c.message.content, finish: c.finish_reason,
           usage: r.json.usage, logprobs: c.logprobs };
}

async function all(url) {
  const out = new Array(problems.length);
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < problems.length) {
      const i = next++;
      out[i] = await answer(url, i);
    }
  }));
  return out;
}

test(`${problems.length} answers over 8 streams: two processes give the single-process answers`, async () => {
  const one = await all(servers.one.url), two = await all(servers.two.url);
  const timing = (a) => JSON.parse(JSON.stringify(a, (k, v) => (k === 'cached_tokens' ? undefined : v)));
  for (let i = 0; i < problems.length; i++)
    assert.deepEqual(timing(two[i]), timing(one[i]), `problem ${i}: ${problems[i]}`);
  const m = await metrics(servers.two.url);
  console.log(`np=2: ${problems.length} identical; ${m.deepseek_kv_cache_preemptions_total} preemptions, ` +
              `${m.deepseek_prefix_cache_hit_tokens_total ?? '?'} prefix tokens reused, ` +
              `${m.deepseek_spec_tokens_per_step.toFixed(2)} tokens per verify step`);
  assert.ok(m.deepseek_spec_draft_tokens_total > 0, 'MTP drafts ran across processes');
  assert.ok(m.deepseek_kv_cache_preemptions_total > 0, 'sequences were swapped out and back');
  assert.ok(m.deepseek_prefix_cache_hit_tokens_total > 0, 'prefix blocks were shared');
});
