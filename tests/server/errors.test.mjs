// Bad requests get 4xx with an OpenAI-style error object and the server keeps serving; auth; CORS; limits.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import OpenAI from 'openai';
import { startServer, postJson, assertApiError } from './lib.mjs';

let srv, auth;
before(async () => {
  [srv, auth] = await Promise.all([
    startServer(['--parallel', '2', '--max-n', '4']),
    startServer(['--parallel', '1', '--api-key', 'sekret-key-123', '--cors-origin', 'http://app.example'])]);
});
after(async () => {
  for (const s of [srv, auth]) assert.equal((await s.stop()).code, 0, s.log());
});

const ok = { messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2, temperature: 0 };
const chat = (body, h) => postJson(srv.url, '/v1/chat/completions', body, h);

test('malformed and non-object JSON, invalid UTF-8, lone surrogates, deep nesting', async () => {
  for (const body of ['{"messages": [', 'not json', '[1,2]', '"str"', '{"messages":[{"role":"user","content":"\\ud800"}]}',
                      '['.repeat(100000) + ']'.repeat(100000)]) {
    assertApiError(await chat(body), 400);
  }
  const raw = Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"'), Buffer.from([0xff, 0xfe, 0xc3]),
                             Buffer.from('"}],"max_tokens":2}')]);
  const r = await fetch(srv.url + '/v1/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: raw });
  assert.equal(r.status, 400);
  assert.equal((await r.json()).error.type, 'invalid_request_error');
});

test('wrong types and missing fields name the parameter', async () => {
  const cases = [
    [{}, 'messages'], [{ messages: 'hi' }, 'messages'], [{ messages: [] }, 'messages'], [{ messages: [123] }, 'messages[0]'],
    [{ messages: [{}] }, 'messages[0].role'], [{ messages: [{ role: 123, content: 'x' }] }, 'messages[0].role'],
    [{ messages: [{ role: 'wizard', content: 'x' }] }, 'messages[0].role'],
    [{ messages: [{ role: 'user', content: 123 }] }, 'messages[0].content'],
    [{ messages: [{ role: 'user', content: [{ type: 'image_url' }] }] }, 'messages[0].content'],
    [{ ...ok, temperature: 'hot' }, 'temperature'], [{ ...ok, temperature: -1 }, 'temperature'], [{ ...ok, temperature: 1e9 }, 'temperature'],
    [{ ...ok, top_p: 0 }, 'top_p'], [{ ...ok, top_p: 1.5 }, 'top_p'], [{ ...ok, top_k: -1 }, 'top_k'],
    [{ ...ok, presence_penalty: 5 }, 'presence_penalty'], [{ ...ok, frequency_penalty: -3 }, 'frequency_penalty'],
    [{ ...ok, max_tokens: 1.5 }, 'max_tokens'], [{ ...ok, max_tokens: '2' }, 'max_tokens'], [{ ...ok, stream: 'yes' }, 'stream'],
    [{ ...ok, seed: 'x' }, 'seed'], [{ ...ok, stop: 5 }, 'stop'], [{ ...ok, stop: [''] }, 'stop'],
    [{ ...ok, chat_template_kwargs: { tokenize: true } }, 'chat_template_kwargs'], [{ ...ok, logit_bias: { 5: 100 } }, 'logit_bias'],
  ];
  for (const [body, param] of cases) assertApiError(await chat(body), 400, param);
});

test('out-of-bounds max_tokens, n, top_logprobs, stop strings', async () => {
  for (const v of [0, -1, 2 ** 31, 2 ** 63, 1e20]) assertApiError(await chat({ ...ok, max_tokens: v }), 400, 'max_tokens');
  assertApiError(await chat({ ...ok, max_completion_tokens: 5000 }), 400, 'max_completion_tokens');
  for (const v of [0, -1, 5, 1000000, 2 ** 63]) assertApiError(await chat({ ...ok, n: v }), 400, 'n');
  for (const v of [-1, 21, 129281, 1e9]) assertApiError(await chat({ ...ok, logprobs: true, top_logprobs: v }), 400, 'top_logprobs');
  assertApiError(await postJson(srv.url, '/v1/completions', { prompt: 'x', logprobs: 1e9 }), 400, 'logprobs');
  assertApiError(await chat({ ...ok, stop: Array.from({ length: 17 }, (_, i) => 's' + i) }), 400, 'stop');
  assertApiError(await chat({ ...ok, stop: ['x'.repeat(1000)] }), 400, 'stop');
});

test('unknown model is 404; prompt longer than the context is 400', async () => {
  const r = await chat({ ...ok, model: 'gpt-4' });
  assertApiError(r, 404, 'model');
  assert.equal(r.json.error.code, 'model_not_found');
  const long = await chat({ messages: [{ role: 'user', content: 'word '.repeat(3000) }], max_tokens: 2 });
  assertApiError(long, 400);
  assert.equal(long.json.error.code, 'context_length_exceeded');
  const ids = await postJson(srv.url, '/v1/completions', { prompt: Array(2000).fill(100), max_tokens: 2 });
  assertApiError(ids, 400);
  assertApiError(await postJson(srv.url, '/v1/completions', { prompt: [1, 129280] }), 400, 'prompt');
  assertApiError(await postJson(srv.url, '/v1/completions', { prompt: [-5] }), 400, 'prompt');
  assertApiError(await postJson(srv.url, '/v1/completions', { prompt: '' }), 400);
  assertApiError(await postJson(srv.url, '/detokenize', { tokens: [1e12] }), 400, 'tokens');
});

test('100 MB body is refused with 413 before it is read', async () => {
  const status = await new Promise((resolve, reject) => {
    const u = new URL(srv.url);
    const req = http.request({ host: u.hostname, port: u.port, method: 'POST', path: '/v1/chat/completions',
      headers: { 'Content-Type': 'application/json', 'Content-Length': 100 * 1024 * 1024 } }, (res) => {
      let b = '';
      res.on('data', (d) => { b += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: b }));
    });
    req.on('error', reject);
    req.write(Buffer.alloc(1024 * 1024, 0x20));
  });
  assert.equal(status.status, 413);
  assert.equal(JSON.parse(status.body).error.code, 'payload_too_large');
});

test('wrong content type, wrong method, unknown route', async () => {
  const r = await fetch(srv.url + '/v1/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'a=b' });
  assert.equal(r.status, 415);
  const g = await fetch(srv.url + '/v1/chat/completions');
  assert.ok(g.status === 404 || g.status === 405);
  assert.ok((await g.json()).error);
  const u = await fetch(srv.url + '/v2/nothing');
  assert.equal(u.status, 404);
});

test('the server still serves after all that', async () => {
  const r = await chat(ok);
  assert.equal(r.status, 200);
  assert.equal(r.json.choices[0].message.role, 'assistant');
});

test('API key: every route but /health; Bearer and X-Api-Key; no bypass by path', async () => {
  const u = auth.url;
  assert.equal((await fetch(u + '/health')).status, 200);
  for (const p of ['/v1/models', '/v1/models/v3', '/metrics', '/v1/models/', '//v1/models', '/v1/../v1/models', '/nope']) {
    const r = await fetch(u + p);
    assert.equal(r.status, 401, p);
    assert.equal((await r.json()).error.type, 'authentication_error');
  }
  assertApiError(await postJson(u, '/v1/chat/completions', ok), 401);
  assertApiError(await postJson(u, '/v1/chat/completions', ok, { Authorization: 'Bearer wrong' }), 401);
  assertApiError(await postJson(u, '/v1/chat/completions', ok, { Authorization: 'Bearer sekret-key-12' }), 401);
  assert.equal((await postJson(u, '/v1/chat/completions', ok, { Authorization: 'Bearer sekret-key-123' })).status, 200);
  assert.equal((await postJson(u, '/v1/chat/completions', ok, { 'X-Api-Key': 'sekret-key-123' })).status, 200);
  const client = new OpenAI({ baseURL: u + '/v1', apiKey: 'sekret-key-123', maxRetries: 0 });
  assert.equal((await client.models.list()).data.length, 1);
  assert.equal((await client.models.retrieve('v3')).id, 'v3');
  const bad = new OpenAI({ baseURL: u + '/v1', apiKey: 'nope', maxRetries: 0 });
  await assert.rejects(bad.models.list(), (e) => e.status === 401);
});

test('CORS: off by default, only the configured origin when on', async () => {
  const r = await fetch(srv.url + '/health', { headers: { Origin: 'http://evil.example' } });
  assert.equal(r.headers.get('access-control-allow-origin'), null);
  const pre = await fetch(auth.url + '/v1/chat/completions', { method: 'OPTIONS',
    headers: { Origin: 'http://app.example', 'Access-Control-Request-Method': 'POST' } });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), 'http://app.example');
  const other = await fetch(auth.url + '/health', { headers: { Origin: 'http://evil.example' } });
  assert.equal(other.headers.get('access-control-allow-origin'), null);
});
