// The HTTP transport's limits against hostile clients, over raw sockets: bodies over the cap however framed,
// slowloris connections, Range amplification, Host checks (DNS rebinding), the API key from a file or the
// environment, a client that never reads, large non-streaming answers and RSS, header and URI limits, the
// connection cap, pipelining and HTTP/1.0.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { startServer, metrics, waitMetrics, BIN, MODEL } from './lib.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Set by tests/server/CMakeLists.txt in a sanitizer build (DS_SANITIZE).
const SANITIZED = process.env.DS_SANITIZED === '1';
const rssKiB = (pid) => Number(fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
const MiB = 1024 * 1024;

// A raw connection: everything the server sends, whether and when it closed, and helpers to write.
function connect(url) {
  const u = new URL(url);
  const sock = net.connect({ host: u.hostname, port: Number(u.port) });
  const c = { sock, data: Buffer.alloc(0), closed: false, closedAt: 0, error: null, t0: Date.now() };
  sock.on('data', (d) => { c.data = Buffer.concat([c.data, d]); });
  sock.on('error', (e) => { c.error = e; });
  c.done = new Promise((resolve) => sock.on('close', () => { c.closed = true; c.closedAt = Date.now(); resolve(); }));
  c.ready = new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  c.text = () => c.data.toString('latin1');
  // Writes, waiting for the socket to drain; false once the connection is gone.
  c.write = async (buf) => {
    if (c.closed || sock.destroyed) return false;
    if (!sock.write(buf)) await Promise.race([new Promise((r) => sock.once('drain', r)), c.done]);
    return !c.closed && !sock.destroyed;
  };
  c.waitClosed = (ms) => Promise.race([c.done, sleep(ms)]).then(() => c.closed);
  return c;
}

// One raw request; resolves with the whole answer once the server closes or `ms` passed.
async function raw(url, text, ms = 3000) {
  const c = connect(url);
  await c.ready;
  c.sock.write(text);
  await c.waitClosed(ms);
  c.sock.destroy();
  return c.text();
}

const statusOf = (resp) => Number((resp.match(/^HTTP\/1\.[01] (\d{3})/) || [])[1]);
const bodyOf = (resp) => resp.slice(resp.indexOf('\r\n\r\n') + 4);
const host = (url) => new URL(url).host;

let srv, keyed, envKeyed, slow, open, capped;
let keyFile;
before(async () => {
  keyFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ds-key-')), 'key');
  fs.writeFileSync(keyFile, '  file-key-123 \nsecond-line\n');
  process.env.DEEPSEEK_API_KEY = 'env-key-456';
  envKeyed = await startServer(['--parallel', '1']);
  delete process.env.DEEPSEEK_API_KEY;
  [srv, keyed, slow, open, capped] = await Promise.all([
    startServer(['--parallel', '8', '--ctx', '4096', '--max-body-mib', '1', '--read-timeout', '3']),
    startServer(['--parallel', '1', '--api-key-file', keyFile, '--allowed-host', 'app.internal']),
    startServer(['--parallel', '8', '--ctx', '4096', '--http-threads', '1', '--write-timeout', '2',
                 '--send-buffer-kib', '64']),
    startServer(['--parallel', '1', '--host', '0.0.0.0']),
    startServer(['--parallel', '1', '--max-connections', '20'])]);
});
after(async () => {
  for (const s of [srv, keyed, envKeyed, slow, open, capped]) if (s) assert.equal((await s.stop()).code, 0, s.log());
});

test('a chunked body over the cap: 413, connection closed, RSS does not grow by the body size', async () => {
  const rss0 = rssKiB(srv.proc.pid);
  const c = connect(srv.url);
  await c.ready;
  await c.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: ${host(srv.url)}\r\nContent-Type: application/json\r\n` +
                'Transfer-Encoding: chunked\r\n\r\n');
  const piece = Buffer.alloc(MiB, 0x20);
  let sent = 0;
  for (; sent < 64; ++sent) {  // 64 MiB against a 1 MiB cap
    if (!(await c.write(Buffer.concat([Buffer.from(piece.length.toString(16) + '\r\n'), piece, Buffer.from('\r\n')])))) break;
  }
  assert.ok(await c.waitClosed(5000), 'the server closed the connection');
  assert.equal(statusOf(c.text()), 413, c.text().slice(0, 300));
  assert.equal(JSON.parse(bodyOf(c.text())).error.code, 'payload_too_large');
  const grew = (rssKiB(srv.proc.pid) - rss0) / 1024;
  assert.ok(grew < 24, `RSS grew by ${grew.toFixed(1)} MiB after ${sent} MiB sent`);
});

test('a POST body with no length, ended by half-close: 411 before reading it, closed, RSS flat', async () => {
  const rss0 = rssKiB(srv.proc.pid);
  const c = connect(srv.url);
  await c.ready;
  await c.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: ${host(srv.url)}\r\nContent-Type: application/json\r\n\r\n`);
  for (let i = 0; i < 32; ++i) if (!(await c.write(Buffer.alloc(MiB, 0x20)))) break;
  if (!c.closed) c.sock.end();
  assert.ok(await c.waitClosed(5000), 'the server closed the connection');
  assert.equal(statusOf(c.text()), 411, c.text().slice(0, 300));
  assert.equal(JSON.parse(bodyOf(c.text())).error.code, 'length_required');
  const grew = (rssKiB(srv.proc.pid) - rss0) / 1024;
  assert.ok(grew < 24, `RSS grew by ${grew.toFixed(1)} MiB`);
  // A Content-Length over the cap is refused from the header, as before.
  const r = await raw(srv.url, `POST /tokenize HTTP/1.1\r\nHost: ${host(srv.url)}\r\nContent-Length: ${2 * MiB}\r\n\r\n`);
  assert.equal(statusOf(r), 413);
});

test('100 connections trickling header lines: /health answers at once, they are closed at the request deadline', async () => {
  const conns = [];
  for (let i = 0; i < 100; ++i) conns.push(connect(srv.url));
  await Promise.all(conns.map((c) => c.ready));
  const t0 = Date.now();
  for (const c of conns) c.sock.write(`GET /v1/models HTTP/1.1\r\nHost: ${host(srv.url)}\r\n`);
  let stop = false;
  const trickle = (async () => {
    for (let k = 0; !stop; ++k) {
      for (const c of conns) if (!c.closed) c.sock.write(`X-Slow-${k}: ${'a'.repeat(10)}\r\n`);
      await sleep(250);
    }
  })();
  for (let i = 0; i < 3; ++i) {
    const h0 = Date.now();
    const r = await fetch(srv.url + '/health', { signal: AbortSignal.timeout(2000) });
    assert.equal(r.status, 200);
    assert.ok(Date.now() - h0 < 2000);
    await sleep(300);
  }
  assert.ok(conns.every((c) => !c.closed), 'no trickling connection closed before its deadline');
  await Promise.all(conns.map((c) => c.waitClosed(6000)));
  stop = true;
  await trickle;
  for (const c of conns) {
    assert.ok(c.closed, 'closed at the deadline');
    const at = (c.closedAt - t0) / 1000;
    assert.ok(at >= 2.5 && at < 5, `closed after ${at} s (--read-timeout 3)`);
    assert.equal(c.data.length, 0, 'no answer to an unfinished request');
  }
  assert.equal((await fetch(srv.url + '/health')).status, 200);
});

test('Range on /metrics is ignored: a full 200 body, no amplification', async () => {
  const plain = await raw(srv.url, `GET /metrics HTTP/1.1\r\nHost: ${host(srv.url)}\r\nConnection: close\r\n\r\n`);
  const ranges = Array(2000).fill('0-').join(',');
  const r = await raw(srv.url, `GET /metrics HTTP/1.1\r\nHost: ${host(srv.url)}\r\nRange: bytes=${ranges}\r\n` +
                               'Connection: close\r\n\r\n');
  assert.equal(statusOf(r), 200);
  assert.ok(!/multipart\/byteranges/i.test(r) && !/Content-Range/i.test(r));
  assert.ok(r.length < plain.length * 1.2 + 2000, `${r.length} bytes for a ${plain.length}-byte resource`);
  assert.ok(bodyOf(r).includes('deepseek_slots_total'));
});

test('Host: loopback names only on a loopback server; --allowed-host adds names; missing Host on 1.1 is 400', async () => {
  const port = new URL(srv.url).port;
  const get = (h, extra = '') => raw(srv.url, `GET /v1/models HTTP/1.1\r\n${h === null ? '' : `Host: ${h}\r\n`}${extra}` +
                                                'Connection: close\r\n\r\n');
  for (const h of ['evil.example', `evil.example:${port}`, 'localhost.evil.example', '127.0.0.1.nip.io']) {
    const r = await get(h);
    assert.equal(statusOf(r), 403, h);
    const e = JSON.parse(bodyOf(r)).error;
    assert.equal(e.param, 'Host');
    assert.equal(e.code, 'host_not_allowed');
    assert.ok(e.message.includes('Host'));
  }
  for (const h of ['localhost', `localhost:${port}`, 'LOCALHOST', '127.0.0.1', `127.0.0.1:${port}`, '[::1]', `[::1]:${port}`])
    assert.equal(statusOf(await get(h)), 200, h);
  assert.equal(statusOf(await get(null)), 400);
  const old = await raw(srv.url, 'GET /v1/models HTTP/1.0\r\n\r\n');
  assert.equal(statusOf(old), 200, 'HTTP/1.0 may omit Host');
  // --allowed-host on a loopback server: that name too (with the key).
  const auth = 'Authorization: Bearer file-key-123\r\n';
  const k = (h) => raw(keyed.url, `GET /v1/models HTTP/1.1\r\nHost: ${h}\r\n${auth}Connection: close\r\n\r\n`);
  assert.equal(statusOf(await k('app.internal')), 200);
  assert.equal(statusOf(await k('app.internal:8443')), 200);
  assert.equal(statusOf(await k('localhost')), 200);
  assert.equal(statusOf(await k('evil.example')), 403);
  // Not loopback and no --allowed-host: no Host check, and a warning at start (no API key).
  const o = await raw(open.url, 'GET /v1/models HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n');
  assert.equal(statusOf(o), 200);
  assert.match(open.log(), /WARNING: 0\.0\.0\.0 is not a loopback address and no API key is set/);
  assert.doesNotMatch(srv.log(), /WARNING/);
});

test('API key from --api-key-file and from DEEPSEEK_API_KEY, kept out of the command line', async () => {
  const models = (u, key) => fetch(u + '/v1/models', { headers: key ? { Authorization: `Bearer ${key}` } : {} });
  assert.equal((await models(keyed.url, 'file-key-123')).status, 200);
  assert.equal((await models(keyed.url)).status, 401);
  assert.equal((await models(keyed.url, 'second-line')).status, 401);
  assert.equal((await models(keyed.url, '  file-key-123 ')).status, 401);
  assert.equal((await models(envKeyed.url, 'env-key-456')).status, 200);
  assert.equal((await models(envKeyed.url)).status, 401);
  assert.equal((await models(envKeyed.url, 'file-key-123')).status, 401);
  for (const s of [keyed, envKeyed]) {
    const cmdline = fs.readFileSync(`/proc/${s.proc.pid}/cmdline`, 'utf8');
    assert.ok(!cmdline.includes('file-key-123') && !cmdline.includes('env-key-456'));
  }
  // An empty or unreadable key file is a clear error at start.
  const empty = path.join(path.dirname(keyFile), 'empty');
  fs.writeFileSync(empty, '\n');
  for (const [f, msg] of [[empty, /--api-key-file: the first line of .*empty is empty/], ['/nonexistent/key', /--api-key-file: cannot read \/nonexistent\/key/]]) {
    const r = spawnSync(BIN, ['serve', '--model', `${MODEL}/v3`, '--port', '0', '--api-key-file', f], { encoding: 'utf8', timeout: 60000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, msg);
  }
});

// A client that sends its request and then never reads, with a small receive buffer (python3: Node cannot set
// SO_RCVBUF), so that the server's writes stall after a few hundred KB whatever the machine's speed.
const NON_READER = `
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect((sys.argv[1], int(sys.argv[2])))
s.sendall(sys.argv[3].encode())
print('sent', flush=True)
time.sleep(120)
`;

test('a client that never reads a large stream holds the only worker no longer than the write timeout', async () => {
  const m0 = await metrics(slow.url);
  const body = JSON.stringify({ prompt: 'x', n: 8, max_tokens: 3000, logprobs: 20, ignore_eos: true, stream: true });
  const u = new URL(slow.url);
  const req = `POST /v1/completions HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\n` +
              `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const client = spawn('python3', ['-c', NON_READER, u.hostname, u.port, req], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise((resolve) => client.stdout.once('data', resolve));
    await sleep(300);  // the stream has begun (no /metrics here: it too would wait for the one worker)
    const t0 = Date.now();
    // --http-threads 1: /health needs the worker the stalled stream holds.
    const r = await fetch(slow.url + '/health', { signal: AbortSignal.timeout(30000) });
    assert.equal(r.status, 200);
    const waited = (Date.now() - t0) / 1000;
    console.log(`/health answered after ${waited} s behind a stalled stream (--write-timeout 2)`);
    // Queued behind the stalled stream (so about the write timeout), and freed by it.
    assert.ok(waited > 1 && waited < 10, `/health waited ${waited} s (--write-timeout 2)`);
    // Cancelled (not finished by length): the stream ended through a failed write, not by running out of tokens.
    const key = 'deepseek_requests_finished_total{reason="cancelled"}';
    await waitMetrics(slow.url, (x) => x[key] - (m0[key] || 0) === 8 && x.deepseek_slots_active === 0, 3000);
    const m = await metrics(slow.url);
    assert.equal(m['deepseek_requests_finished_total{reason="length"}'], m0['deepseek_requests_finished_total{reason="length"}'] || 0);
  } finally {
    client.kill();
  }
});

// The test model picks 20 logprobs out of 129,280 in about 1.5 ms a row, so ctest uses 150 tokens a choice (~2 MiB
// answers); DS_RSS_MAX_TOKENS=2000 gives the 25 MiB answers of the original report (minutes).
const RSS_TOKENS = Number(process.env.DS_RSS_MAX_TOKENS || 150);
test('large non-streaming answers: bounded up front, RSS flat over 8 sequential and 8 concurrent', async () => {
  const big = { messages: [{ role: 'user', content: 'Hi' }], n: 8, max_tokens: RSS_TOKENS, logprobs: true, top_logprobs: 20,
                ignore_eos: true, temperature: 1 };
  const post = (b) => fetch(srv.url + '/v1/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' },
                                                                body: JSON.stringify(b) });
  // Over the bound (8 x 4000 x 21 entries): a 400 naming the parameters; streaming the same is fine.
  const over = await post({ ...big, max_tokens: 4000 });
  assert.equal(over.status, 400);
  const e = (await over.json()).error;
  assert.equal(e.code, 'response_too_large');
  for (const w of ['n', 'max_tokens', 'top_logprobs', 'stream']) assert.ok(e.message.includes(w), e.message);
  const pid = srv.proc.pid;
  const one = async () => {
    const r = await post(big);
    assert.equal(r.status, 200);
    const j = await r.json();
    assert.equal(j.choices.length, 8);
    for (const ch of j.choices) {
      assert.equal(ch.logprobs.content.length, RSS_TOKENS);
      assert.equal(ch.logprobs.content[0].top_logprobs.length, 20);
    }
    return JSON.stringify(j).length;
  };
  const rss = [rssKiB(pid)];
  const size = await one();  // the first one sets up the allocator's arenas
  rss.push(rssKiB(pid));
  for (let i = 0; i < 8; ++i) await one();
  rss.push(rssKiB(pid));
  let peak = 0;
  const sampler = setInterval(() => { peak = Math.max(peak, rssKiB(pid)); }, 20);
  await Promise.all(Array.from({ length: 8 }, one));
  clearInterval(sampler);
  rss.push(rssKiB(pid));
  const mb = (k) => (k / 1024).toFixed(0);
  console.log(`large answers (${(size / MiB).toFixed(1)} MiB each): RSS start ${mb(rss[0])} MiB, after 1 ${mb(rss[1])}, ` +
              `after 8 sequential ${mb(rss[2])}, peak during 8 concurrent ${mb(peak)}, after them ${mb(rss[3])}`);
  assert.ok(size > RSS_TOKENS * 8 * 21 * 50, `answer of ${size} bytes`);
  if (SANITIZED) {
    // ASan's quarantine keeps freed memory (256 MiB by default), so RSS says nothing about leaks or arenas here; the
    // Release pass asserts it, and LeakSanitizer checks for leaks when the server exits.
    console.log('large answers: RSS bounds SKIPPED under the sanitizers (ASan quarantine); asserted in the Release pass');
    return;
  }
  assert.ok(rss[2] - rss[1] < 48 * 1024, `8 sequential grew RSS by ${mb(rss[2] - rss[1])} MiB`);
  assert.ok(rss[3] - rss[1] < 48 * 1024, `8 concurrent left RSS ${mb(rss[3] - rss[1])} MiB higher`);
});

test('header count, header section size and URI length limits; the server keeps serving', async () => {
  const h = `Host: ${host(srv.url)}\r\n`;
  const many = Array.from({ length: 101 }, (_, i) => `X-H${i}: v\r\n`).join('');
  assert.equal(statusOf(await raw(srv.url, `GET /health HTTP/1.1\r\n${h}${many}\r\n`)), 431);
  const fine = Array.from({ length: 90 }, (_, i) => `X-H${i}: v\r\n`).join('');
  assert.equal(statusOf(await raw(srv.url, `GET /health HTTP/1.1\r\n${h}${fine}Connection: close\r\n\r\n`)), 200);
  const r = await raw(srv.url, `GET /health HTTP/1.1\r\n${h}X-Big: ${'a'.repeat(70 * 1024)}\r\n\r\n`);
  assert.equal(statusOf(r), 431);
  assert.equal(JSON.parse(bodyOf(r)).error.code, 'headers_too_large');
  const u = await raw(srv.url, `GET /health?${'a'.repeat(9 * 1024)} HTTP/1.1\r\n${h}\r\n`);
  assert.equal(statusOf(u), 414);
  assert.equal(JSON.parse(bodyOf(u)).error.code, 'uri_too_long');
  assert.equal(statusOf(await raw(srv.url, `GET /health?${'a'.repeat(100 * 1024)} HTTP/1.1\r\n${h}\r\n`)), 414);
  assert.equal(statusOf(await raw(srv.url, 'GARBAGE\r\n\r\n')), 400);
  const m = await metrics(srv.url);
  for (const s of ['400', '411', '413', '414', '431'])
    assert.ok(m[`deepseek_http_requests_total{route="other",status="${s}"}`] >= 1, s);
  assert.equal((await fetch(srv.url + '/health')).status, 200);
});

test('pipelined requests and HTTP/1.0 keep working', async () => {
  const h = `Host: ${host(srv.url)}\r\n`;
  const two = await raw(srv.url, `GET /health HTTP/1.1\r\n${h}\r\nGET /v1/models HTTP/1.1\r\n${h}Connection: close\r\n\r\n`);
  assert.equal((two.match(/HTTP\/1\.1 200/g) || []).length, 2, two);
  assert.ok(two.includes('{"status":"ok"}') && two.includes('"object":"list"'));
  const old = await raw(srv.url, 'GET /health HTTP/1.0\r\n\r\n');
  assert.equal(statusOf(old), 200);
  assert.match(old, /Connection: close/i);
  // HTTP/1.0 streaming: no chunked encoding; the body ends with the connection.
  const body = JSON.stringify({ prompt: 'x', max_tokens: 3, stream: true });
  const s = await raw(srv.url, `POST /v1/completions HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`, 10000);
  assert.equal(statusOf(s), 200);
  assert.doesNotMatch(s, /Transfer-Encoding/i);
  assert.ok(bodyOf(s).trimEnd().endsWith('data: [DONE]'), s.slice(-200));
});

test('connections beyond --max-connections are closed at once; the server recovers', async () => {
  const conns = Array.from({ length: 30 }, () => connect(capped.url));
  await Promise.all(conns.map((c) => c.ready.catch(() => {})));
  await sleep(500);
  const closed = conns.filter((c) => c.closed).length;
  assert.ok(closed >= 10, `${closed} of 30 closed at a cap of 20`);
  for (const c of conns) c.sock.destroy();
  await sleep(200);
  assert.equal((await fetch(capped.url + '/health')).status, 200);
});
