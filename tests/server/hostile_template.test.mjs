// A model folder whose chat template attacks the renderer (arithmetic traps, deep nesting, runaway growth), and whose
// tokenizer.json adds a pre-tokenizer regex that backtracks catastrophically: under `serve`, each such request fails
// alone with a JSON error, the server's peak RSS stays bounded, the server keeps
// answering (health, /v1/completions, a normal chat turn through the same template), and SIGTERM sent while a hostile
// render is in flight stops it within its normal time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startServer, postJson, MODEL } from './lib.mjs';

// Renders whose Python result fits the engine's int64: they render, with Python's value (POST /apply-template).
const RENDERS = {
  int_min_mod: ["{{ (-9223372036854775807 - 1) % -1 }}", '0'],
  floor_signs: ["{{ -7 // 2 }} {{ -7 % 2 }} {{ 7 % -2 }}", '-4 1 -1'],
};
// One template, branching on the first user message, so one server covers every attack.
const ATTACKS = {
  int_min_div: "{{ (-9223372036854775807 - 1) // -1 }}",
  int_overflow: "{{ 9223372036854775807 + 1 }}",
  pow_overflow: "{{ 3 ** 100 }}",
  deep_list: "{% set ns = namespace(x=[]) %}{% for i in range(200000) %}{% set ns.x = [ns.x] %}{% endfor %}ok",
  deep_compare: "{% set ns = namespace(a=[], b=[]) %}{% for i in range(300000) %}{% set ns.a = [ns.a] %}" +
    "{% set ns.b = [ns.b] %}{% endfor %}{{ ns.a == ns.b }}",
  concat_doubling: "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}" +
    "{{ ns.s | length }}",
  list_doubling: "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}" +
    "{{ ns.l | length }}",
  join_growth: "{% set ns = namespace(l=['x' * 1000000]) %}{% for i in range(40) %}{% set ns.l = ns.l + ns.l %}" +
    "{% endfor %}{{ ns.l | join('y') | length }}",
  repeat_replace: "{{ ('x' * 100000000).replace('x', 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx') | length }}",
  huge_range: "{% for i in range(9223372036854775807) %}{{ i }}{% endfor %}",
};
const NORMAL = "{% for m in messages %}<｜User｜>{{ m['content'] }}{% endfor %}<｜Assistant｜>";
let template = '';
for (const [name, body] of [...Object.entries(ATTACKS), ...Object.entries(RENDERS).map(([n, [b]]) => [n, b])]) {
  template += `{% ${template ? 'elif' : 'if'} messages[0]['content'] == '${name}' %}${body}`;
}
template += `{% else %}${NORMAL}{% endif %}`;

function status(pid, key) {
  const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(key + ':\\s+(\\d+) kB'));
  return Number(m[1]) / 1024;  // MiB
}

const BACKTRACK_REGEX = '(?:a?){21}a{21}(?=b)';
const BACKTRACK_TEXT = ('a'.repeat(21) + 'b').repeat(900);  // 20 KB

let dir, srv;
before(async () => {
  // A copy of the test model's v3 folder with this template in its tokenizer_config.json (not symlinks: the loader
  // refuses shards that resolve outside the model folder).
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-hostile-template-'));
  const src = path.join(MODEL, 'v3');
  for (const f of fs.readdirSync(src)) {
    if (f !== 'tokenizer_config.json') fs.copyFileSync(path.join(src, f), path.join(dir, f));
  }
  const cfg = JSON.parse(fs.readFileSync(path.join(src, 'tokenizer_config.json'), 'utf8'));
  cfg.chat_template = template;
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(cfg));
  // One more Split rule, harmless for ordinary text, that costs ~2^21 backtracking steps per match on runs of 21 'a'
  // followed by 'b' (13 ms a match, under PCRE2's match limit: unbounded, the text below takes about 12 s to split).
  const tj = JSON.parse(fs.readFileSync(path.join(src, 'tokenizer.json'), 'utf8'));
  tj.pre_tokenizer.pretokenizers.unshift(
    { type: 'Split', pattern: { Regex: BACKTRACK_REGEX }, behavior: 'Isolated', invert: false });
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tj));
  srv = await startServer(['--parallel', '2'], dir);
});
after(async () => {
  if (srv) await srv.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const chat = (content) => postJson(srv.url, '/v1/chat/completions',
  { messages: [{ role: 'user', content }], max_tokens: 4, temperature: 0 });

test('every attack fails its own request with a JSON error, in bounded time and memory', async () => {
  const rss0 = status(srv.proc.pid, 'VmRSS');
  for (const name of Object.keys(ATTACKS)) {
    const t0 = Date.now();
    const r = await chat(name);
    const ms = Date.now() - t0;
    assert.equal(r.status, 400, `${name}: ${r.text}`);
    assert.equal(r.json.error.code, 'template_error', `${name}: ${r.text}`);
    assert.match(r.json.error.message, /template/, name);
    assert.ok(ms < 10000, `${name} took ${ms} ms`);
    console.log(`${name}: ${r.status} in ${ms} ms: ${r.json.error.message}`);
  }
  const hwm = status(srv.proc.pid, 'VmHWM');
  console.log(`RSS ${rss0.toFixed(0)} MiB before, peak ${hwm.toFixed(0)} MiB`);
  assert.ok(hwm < rss0 + 1024, `peak RSS ${hwm} MiB (from ${rss0} MiB): the render budget must bound it`);
  // The server lives on: health, a completion without the template, a normal chat turn through it.
  assert.equal((await fetch(srv.url + '/health')).status, 200);
  const c = await postJson(srv.url, '/v1/completions', { prompt: 'Hello', max_tokens: 4, temperature: 0 });
  assert.equal(c.status, 200, c.text);
  const n = await chat('hello there');
  assert.equal(n.status, 200, n.text);
  assert.equal(n.json.usage.completion_tokens, 4);
});

test('a pre-tokenizer regex that backtracks fails the request with tokenizer_error, on every route', async () => {
  const cases = [
    ['/v1/chat/completions', { messages: [{ role: 'user', content: BACKTRACK_TEXT }], max_tokens: 2 }, 'messages'],
    ['/v1/completions', { prompt: BACKTRACK_TEXT, max_tokens: 2 }, 'prompt'],
    ['/tokenize', { content: BACKTRACK_TEXT }, 'content'],
  ];
  for (const [route, body, param] of cases) {
    const t0 = Date.now();
    const r = await postJson(srv.url, route, body);
    const ms = Date.now() - t0;
    assert.equal(r.status, 400, `${route}: ${r.text}`);
    assert.equal(r.json.error.code, 'tokenizer_error', `${route}: ${r.text}`);
    assert.equal(r.json.error.param, param, route);
    assert.match(r.json.error.message, /pre-tokenizer rule 0 took over/, route);
    assert.ok(ms < 8000, `${route} took ${ms} ms`);
    console.log(`${route}: ${r.status} in ${ms} ms: ${r.json.error.message.slice(0, 120)}`);
  }
  // Short runs of the same shape split at once; the server answers them and everything else.
  const ok = await postJson(srv.url, '/tokenize', { content: 'a'.repeat(21) + 'b' });
  assert.equal(ok.status, 200, ok.text);
  assert.equal((await chat('hello there')).status, 200);
});

test('arithmetic at the int64 edges renders with Python\'s results', async () => {
  for (const [name, [, want]] of Object.entries(RENDERS)) {
    const r = await postJson(srv.url, '/apply-template', { messages: [{ role: 'user', content: name }] });
    assert.equal(r.status, 200, `${name}: ${r.text}`);
    assert.equal(r.json.prompt, want, name);
  }
});

test('SIGTERM while hostile renders are in flight stops the server within its normal time', async () => {
  const inflight = ['deep_compare', 'join_growth', 'repeat_replace', 'concat_doubling'].map((a) => chat(a).catch((e) => e));
  await new Promise((r) => setTimeout(r, 100));
  const t0 = Date.now();
  const e = await srv.stop();
  srv = null;
  const ms = Date.now() - t0;
  assert.equal(e.code, 0, 'graceful exit');
  assert.ok(ms < 10000, `stopped in ${ms} ms`);
  await Promise.all(inflight);
});
