// Soak: `serve` on the built-in tiny-R1 under many concurrent clients for a long time, a share of which disconnect at
// random points (before the first byte, during reasoning, mid-answer, while queued; streaming and not). Afterwards
// slots, queue and KV blocks are back to 0, the server's RSS is within 10% of its level after warm-up, and a fresh
// request answers exactly as before the soak. Every request that ran to its end gave the same greedy answer as a
// request alone (continuous batching must not change answers).
//
// Size from the environment: DS_SOAK_STREAMS (concurrent clients, default 256), DS_SOAK_SECONDS (default 600),
// DS_SOAK_DISCONNECT (share of requests abandoned, default 0.3). ctest runs a reduced size (tests/server/CMakeLists.txt);
// the full run and its figures are in docs/SECURITY.md.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { startServer, postJson, metrics, waitMetrics, SOURCE_DIR } from './lib.mjs';

const STREAMS = Number(process.env.DS_SOAK_STREAMS ?? 256);
const SECONDS = Number(process.env.DS_SOAK_SECONDS ?? 600);
const DISCONNECT = Number(process.env.DS_SOAK_DISCONNECT ?? 0.3);
const TINY_R1 = path.join(SOURCE_DIR, 'models/tiny-r1');

const problems = fs.readFileSync(path.join(SOURCE_DIR, 'tests/fixtures/tiny-r1/heldout.jsonl'), 'utf8')
  .trim().split('\n').slice(0, 24).map((l) => JSON.parse(l).question);
const ask = (q, extra = {}) => ({ model: 'tiny-r1', messages: [{ role: 'user', content: q }], temperature: 0,
  max_tokens: 400, ...extra });
const idle = (m) => m.deepseek_slots_active === 0 && m.deepseek_queue_depth === 0 &&
  m.deepseek_kv_cache_blocks_used === 0 && m.deepseek_kv_cache_used_tokens === 0;

function rssKiB(pid) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+) kB/);
  return Number(m[1]);
}

let srv;
const reference = new Map();  // question -> {content, reasoning}
before(async () => {
  srv = await startServer(['--parallel', '8', '--queue', String(STREAMS + 16), '--ctx', '4096'], TINY_R1);
  for (const q of problems) {
    const r = await postJson(srv.url, '/v1/chat/completions', ask(q));
    assert.equal(r.status, 200, r.text);
    const msg = r.json.choices[0].message;
    reference.set(q, { content: msg.content, reasoning: msg.reasoning_content });
  }
});
after(async () => {
  const e = await srv.stop();
  assert.equal(e.code, 0, 'graceful exit: ' + srv.log());
});

// One streamed request; abandoned after `abortAfter` chunks (0: before the first byte) when set. Returns the
// assembled message, or 'aborted'.
async function streamOnce(q, abortAfter) {
  const ac = new AbortController();
  try {
    const r = await fetch(srv.url + '/v1/chat/completions', { method: 'POST', signal: ac.signal,
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(ask(q, { stream: true })) });
    if (abortAfter === 0) { ac.abort(); return 'aborted'; }
    assert.equal(r.status, 200);
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = '', content = '', reasoning = '', chunks = 0, done = false;
    while (!done) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buf += dec.decode(value, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const ev = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (!ev.startsWith('data: ')) continue;  // heartbeats are SSE comments
        if (ev === 'data: [DONE]') { done = true; break; }
        const d = JSON.parse(ev.slice(6)).choices[0]?.delta ?? {};
        content += d.content ?? '';
        reasoning += d.reasoning_content ?? '';
        if (abortAfter !== undefined && ++chunks >= abortAfter) { ac.abort(); return 'aborted'; }
      }
    }
    assert.ok(done, 'stream ended with [DONE]');
    return { content, reasoning };
  } catch (e) {
    if (e.name === 'AbortError') return 'aborted';
    throw new Error(`${e.message} (${e.cause?.code ?? ''} ${e.cause?.message ?? ''})`);
  }
}

async function plainOnce(q, abortMs) {
  const ac = new AbortController();
  if (abortMs !== undefined) setTimeout(() => ac.abort(), abortMs);
  try {
    const r = await fetch(srv.url + '/v1/chat/completions', { method: 'POST', signal: ac.signal,
      headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(ask(q)) });
    const j = await r.json();
    assert.equal(r.status, 200, JSON.stringify(j));
    return { content: j.choices[0].message.content, reasoning: j.choices[0].message.reasoning_content };
  } catch (e) {
    if (e.name === 'AbortError') return 'aborted';
    throw new Error(`${e.message} (${e.cause?.code ?? ''} ${e.cause?.message ?? ''})`);
  }
}

test(`soak: ${STREAMS} clients for ${SECONDS} s, ${Math.round(DISCONNECT * 100)}% abandoned`, async () => {
  const t0 = Date.now();
  const deadline = t0 + SECONDS * 1000;
  const stats = { completed: 0, aborted: 0, mismatched: 0 };
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  let rssWarm = 0;
  const warmAt = t0 + SECONDS * 250;  // RSS after a quarter of the run
  let warmTimer;
  const warm = new Promise((resolve) => { warmTimer = setTimeout(() => { rssWarm = rssKiB(srv.proc.pid); resolve(); },
    warmAt - Date.now()); });

  async function client() {
    while (Date.now() < deadline) {
      const q = problems[Math.floor(rand() * problems.length)];
      const abandon = rand() < DISCONNECT;
      const streaming = rand() < 0.75;
      const out = streaming ? await streamOnce(q, abandon ? Math.floor(rand() * 50) : undefined)
        : await plainOnce(q, abandon ? Math.floor(rand() * 3000) : undefined);
      if (out === 'aborted') { stats.aborted++; continue; }
      stats.completed++;
      const ref = reference.get(q);
      if (out.content !== ref.content || out.reasoning !== ref.reasoning) stats.mismatched++;
    }
  }
  try {
    await Promise.all([warm, ...Array.from({ length: STREAMS }, client)]);
  } finally {
    clearTimeout(warmTimer);
  }
  const waited = await waitMetrics(srv.url, idle, 10000);
  const rssEnd = rssKiB(srv.proc.pid);
  const m = await metrics(srv.url);
  console.log(`soak: ${stats.completed} completed, ${stats.aborted} abandoned, ${stats.mismatched} mismatched; ` +
    `RSS ${(rssWarm / 1024).toFixed(1)} MiB after warm-up, ${(rssEnd / 1024).toFixed(1)} MiB at the end; ` +
    `idle ${waited} ms after the last client; ` +
    `cancelled ${m['deepseek_requests_finished_total{reason="cancelled"}']}, ` +
    `rejected ${JSON.stringify(Object.entries(m).filter(([k]) => k.startsWith('deepseek_requests_rejected_total')))}`);
  assert.ok(stats.completed > 0 && stats.aborted > 0, JSON.stringify(stats));
  assert.equal(stats.mismatched, 0, 'answers under load equal the answers alone');
  assert.ok(rssEnd <= rssWarm * 1.10, `RSS ${rssEnd} KiB at the end vs ${rssWarm} KiB after warm-up`);
  // A fresh request answers as before the soak, promptly.
  const tq = Date.now();
  const r = await postJson(srv.url, '/v1/chat/completions', ask(problems[0]));
  assert.equal(r.status, 200);
  assert.equal(r.json.choices[0].message.content, reference.get(problems[0]).content);
  assert.ok(Date.now() - tq < 5000, 'fresh request answered within 5 s');
  assert.equal((await fetch(srv.url + '/health')).status, 200);
});
