// Helpers for the server tests: start the real `deepseek serve` binary on a free loopback port, read /metrics.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import assert from 'node:assert/strict';

export const BIN = process.env.DEEPSEEK_BIN;
export const MODEL = process.env.DS_SERVER_MODEL;
export const SOURCE_DIR = process.env.DS_SOURCE_DIR;
assert.ok(BIN && MODEL && SOURCE_DIR, 'DEEPSEEK_BIN, DS_SERVER_MODEL and DS_SOURCE_DIR must be set (run through ctest)');

// `variant`: one of the test model's folders (v3, r1, tools), or an absolute model folder.
// `ranks` > 1: the server split across that many processes by mpirun (docs/SCALING.md).
export async function startServer(args = [], variant = 'v3', ranks = 1) {
  const ctx = args.includes('--ctx') ? [] : ['--ctx', '1024'];
  const model = variant.startsWith('/') ? variant : `${MODEL}/${variant}`;
  const argv = ['serve', '--model', model, '--port', '0', ...ctx, '-t', '1', ...args];
  const env = { ...process.env, OMPI_ALLOW_RUN_AS_ROOT: '1', OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: '1' };
  const proc = ranks > 1
    ? spawn('mpirun', ['--oversubscribe', '-np', String(ranks), BIN, ...argv], { stdio: ['ignore', 'ignore', 'pipe'], env })
    : spawn(BIN, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const exited = new Promise((resolve) => proc.on('exit', (code, sig) => resolve({ code, sig })));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not start:\n' + log)), 120000);
    proc.stderr.on('data', (d) => {
      log += d.toString();
      const m = log.match(/listening on (http:\/\/[0-9.]+:\d+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
    exited.then((e) => { clearTimeout(timer); reject(new Error(`server exited early (${JSON.stringify(e)}):\n${log}`)); });
  });
  return {
    url, proc, log: () => log,
    async stop() {
      // Across processes: SIGTERM to rank 0, which stops the others (mpirun itself exits 1 when it is signalled).
      const target = ranks > 1 ? rankZero(proc.pid) : null;
      if (target) process.kill(target, 'SIGTERM');
      else proc.kill('SIGTERM');
      const r = await exited;
      return r;
    },
  };
}

// The pid of rank 0 among mpirun's children (its environment names the rank).
function rankZero(mpirunPid) {
  const kids = spawnSync('pgrep', ['-P', String(mpirunPid)]).stdout.toString().split('\n').filter((l) => l);
  for (const k of kids) {
    try {
      if (fs.readFileSync(`/proc/${k}/environ`, 'utf8').split('\0').includes('OMPI_COMM_WORLD_RANK=0')) return Number(k);
    } catch { /* gone */ }
  }
  return null;
}

export async function metrics(url, headers = {}) {
  const r = await fetch(url + '/metrics', { headers });
  assert.equal(r.status, 200);
  const text = await r.text();
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

// Polls until pred(metrics) holds; returns the elapsed milliseconds, or throws after `ms`.
export async function waitMetrics(url, pred, ms = 1000, headers = {}) {
  const t0 = Date.now();
  let m;
  while (Date.now() - t0 <= ms) {
    m = await metrics(url, headers);
    if (pred(m)) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error('metrics condition not reached in ' + ms + ' ms: ' + JSON.stringify(m));
}

export async function postJson(url, path, body, headers = {}) {
  const r = await fetch(url + path, {
    method: 'POST', headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: r.status, json, text: text.slice(0, 300), headers: r.headers, req: (typeof body === "string" ? body : JSON.stringify(body)).slice(0, 200) };
}

export function assertApiError(res, status, param) {
  assert.equal(res.status, status, `expected ${status}, got ${res.status} for ${res.req}: ${res.text}`);
  assert.ok(res.json && res.json.error, 'error object: ' + res.text);
  assert.equal(typeof res.json.error.message, 'string');
  assert.ok(['invalid_request_error', 'authentication_error', 'server_error'].includes(res.json.error.type));
  if (param !== undefined) assert.equal(res.json.error.param, param, res.text);
}
