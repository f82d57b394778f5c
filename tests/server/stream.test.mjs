// Disconnects: a client that goes away mid-stream, mid-wait or while queued frees its slot and cache within a
// second (checked through /metrics); 200 abandoned requests, then a fresh request completes normally; SIGTERM
// with a request in flight exits 0.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, postJson, metrics, waitMetrics } from './lib.mjs';

let srv;
before(async () => { srv = await startServer(['--parallel', '2', '--queue', '256', '--ctx', '8192']); });
after(async () => {
  const e = await srv.stop();
  assert.equal(e.code, 0, 'graceful exit: ' + srv.log());
});

const long = { messages: [{ role: 'user', content: 'Write a long story.' }], max_tokens: 8000, temperature: 0, ignore_eos: true };
const idle = (m) => m.deepseek_slots_active === 0 && m.deepseek_kv_cache_used_tokens === 0 && m.deepseek_queue_depth === 0 &&
  m.deepseek_kv_cache_blocks_used === 0;

test('a streaming client that disconnects frees its slot within a second', async () => {
  const before = await metrics(srv.url);
  const ac = new AbortController();
  const r = await fetch(srv.url + '/v1/chat/completions', { method: 'POST', signal: ac.signal,
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ...long, stream: true }) });
  assert.equal(r.status, 200);
  const reader = r.body.getReader();
  let got = '';
  while (!got.includes('"content":"') || got.split('data: ').length < 4) got += new TextDecoder().decode((await reader.read()).value);
  const m = await metrics(srv.url);
  assert.equal(m.deepseek_slots_active, 1, 'running while connected');
  assert.ok(m.deepseek_kv_cache_used_tokens > 0);
  assert.ok(m.deepseek_kv_cache_blocks_used > 0);
  ac.abort();
  await waitMetrics(srv.url, idle, 1000);
  const after = await metrics(srv.url);
  assert.equal(after['deepseek_requests_finished_total{reason="cancelled"}'],
               before['deepseek_requests_finished_total{reason="cancelled"}'] + 1);
});

test('a non-streaming client that disconnects frees its slot within a second', async () => {
  const ac = new AbortController();
  const p = fetch(srv.url + '/v1/chat/completions', { method: 'POST', signal: ac.signal,
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(long) }).then((r) => r.text()).catch((e) => e);
  await waitMetrics(srv.url, (m) => m.deepseek_slots_active === 1 && m.deepseek_kv_cache_used_tokens > 50, 3000);
  ac.abort();
  assert.equal((await p).name, 'AbortError');
  await waitMetrics(srv.url, idle, 1000);
});

test('a queued client that disconnects leaves the queue; running ones are unaffected', async () => {
  const acs = [0, 1, 2].map(() => new AbortController());
  const ps = acs.map((ac) => fetch(srv.url + '/v1/chat/completions', { method: 'POST', signal: ac.signal,
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ...long, stream: true }) }).catch((e) => e));
  await waitMetrics(srv.url, (m) => m.deepseek_slots_active === 2 && m.deepseek_queue_depth === 1, 3000);
  acs[2].abort();
  await waitMetrics(srv.url, (m) => m.deepseek_queue_depth === 0 && m.deepseek_slots_active === 2, 1000);
  acs[0].abort();
  acs[1].abort();
  await Promise.all(ps);
  await waitMetrics(srv.url, idle, 1000);
});

test('200 abandoned requests, then a fresh request completes normally', async () => {
  const fresh = { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 8, temperature: 0, ignore_eos: true };
  const ref = await postJson(srv.url, '/v1/chat/completions', fresh);
  assert.equal(ref.status, 200);
  const ps = [];
  for (let i = 0; i < 200; i++) {
    const ac = new AbortController();
    ps.push(fetch(srv.url + '/v1/chat/completions', { method: 'POST', signal: ac.signal,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ ...long, stream: i % 2 === 0, messages: [{ role: 'user', content: 'story ' + i }] }) })
      .then((r) => r.status).catch((e) => e.name));
    setTimeout(() => ac.abort(), 20 + (i % 10) * 20);
  }
  const outcomes = await Promise.all(ps);
  for (const o of outcomes) assert.ok(o === 'AbortError' || o === 200 || o === 503, String(o));
  await waitMetrics(srv.url, idle, 5000);
  const t0 = Date.now();
  const r = await postJson(srv.url, '/v1/chat/completions', fresh);
  assert.equal(r.status, 200);
  assert.equal(r.json.choices[0].message.content, ref.json.choices[0].message.content);
  assert.ok(Date.now() - t0 < 5000);
  const h = await fetch(srv.url + '/health');
  assert.equal(h.status, 200);
});

test('SIGTERM with a request in flight: the server exits 0', async () => {
  const s2 = await startServer(['--shutdown-grace', '0.5', '--ctx', '8192']);
  const p = postJson(s2.url, '/v1/chat/completions', long).catch((e) => e);
  await waitMetrics(s2.url, (m) => m.deepseek_slots_active === 1, 3000);
  const t0 = Date.now();
  const e = await s2.stop();
  assert.equal(e.code, 0, s2.log());
  assert.ok(Date.now() - t0 < 5000);
  await p;
});
