// The chat page over plain HTTP (no browser): GET / and /index.html give the embedded page (gzip for clients that
// take it, the same bytes inflated for others), self-contained (no external script, style or font), revalidated by
// ETag; with --api-key the page still loads without the key while the API answers 401 until it is given.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { startServer, SOURCE_DIR } from './lib.mjs';

const TINY_R1 = path.join(SOURCE_DIR, 'models/tiny-r1');
const BUNDLE = fs.readFileSync(path.join(SOURCE_DIR, 'web/dist/index.html'));

// Raw GET (fetch would inflate by itself and hide Content-Encoding).
function get(url, headers = {}, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.on('error', reject);
    req.end();
  });
}

let open, keyed;
before(async () => {
  [open, keyed] = await Promise.all([startServer([], TINY_R1), startServer(['--api-key', 'page-key-1'], TINY_R1)]);
});
after(async () => {
  for (const s of [open, keyed]) assert.equal((await s.stop()).code, 0, 'graceful exit: ' + s.log());
});

test('GET / is the embedded page, gzipped for clients that take it', async () => {
  for (const p of ['/', '/index.html']) {
    const plain = await get(open.url + p);
    assert.equal(plain.status, 200, p);
    assert.equal(plain.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.ok(plain.body.equals(BUNDLE), 'the inflated page is web/dist/index.html byte for byte');
    const html = plain.body.toString('utf8');
    assert.ok(html.includes('<div id="app">'), 'the app root element');
    const csp = `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'sha256-`;
    assert.ok(html.includes(csp), 'the page carries its CSP');
    // (assert.ok rather than match: a failure should not print the whole page)
    const shell = html.replace(/<script>[\s\S]*?<\/script>/g, '').replace(/<style>[\s\S]*?<\/style>/g, '');
    assert.ok(!/<(script|link|img)\b/i.test(shell) && !/\b(src|href)=/i.test(shell),
              'no external script, style or image');
    const css = html.match(/<style>([\s\S]*?)<\/style>/)[1];
    assert.ok(!/url\((?!data:)/.test(css), 'fonts and images are inlined in the CSS');
    assert.ok(/@font-face\{[^}]*KaTeX_Main[^}]*url\(data:font\/woff2;base64,/.test(css), 'the KaTeX fonts are in');

    const gz = await get(open.url + p, { 'Accept-Encoding': 'gzip, deflate, br' });
    assert.equal(gz.status, 200);
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gz.headers.vary, 'Accept-Encoding');
    assert.equal(Number(gz.headers['content-length']), gz.body.length);
    assert.ok(gz.body.length < BUNDLE.length / 1.5, `compressed: ${gz.body.length} of ${BUNDLE.length} bytes`);
    assert.ok(zlib.gunzipSync(gz.body).equals(BUNDLE));
    assert.equal((await get(open.url + p, { 'Accept-Encoding': 'gzip;q=0, identity' })).headers['content-encoding'],
                 undefined);
  }
  const head = await get(open.url + '/', { 'Accept-Encoding': 'gzip' }, 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
  const etag = head.headers.etag;
  assert.match(etag, /^"[0-9a-f]{16}"$/);
  assert.equal(head.headers['cache-control'], 'no-cache');
  assert.equal((await get(open.url + '/', { 'If-None-Match': etag })).status, 304);
  assert.equal((await get(open.url + '/', { 'If-None-Match': '"other"' })).status, 200);
  // The API is unchanged around it.
  assert.equal((await get(open.url + '/index.htm')).status, 404);
  assert.equal((await get(open.url + '/v1/models')).status, 200);
  const m = await (await fetch(open.url + '/metrics')).text();
  assert.match(m, /deepseek_http_requests_total\{route="\/",status="200"\} \d+/);
  assert.match(m, /deepseek_http_requests_total\{route="\/",status="304"\} 1/);
});

test('with --api-key the page loads without the key; the API it calls needs it', async () => {
  const u = keyed.url;
  const page = await get(u + '/');
  assert.equal(page.status, 200);
  assert.ok(page.body.toString('utf8').includes('<div id="app">'));
  assert.equal((await get(u + '/index.html', { 'Accept-Encoding': 'gzip' })).status, 200);
  for (const p of ['/v1/models', '/metrics', '/index.htm', '/index.html/', '//']) {
    const r = await get(u + p);
    assert.equal(r.status, 401, p);
    assert.equal(JSON.parse(r.body).error.type, 'authentication_error');
  }
  const post = await fetch(u + '/', { method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json' } });
  assert.equal(post.status, 401, 'only GET/HEAD of the page skip the key');
  assert.equal((await get(u + '/v1/models', { Authorization: 'Bearer page-key-1' })).status, 200);
  // What the page does once given the key: a streamed chat with the key in the Authorization header.
  const r = await fetch(u + '/v1/chat/completions', {
    method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: 'Bearer page-key-1' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'What is 347+589?' }], stream: true }),
  });
  assert.equal(r.status, 200);
  let content = '';
  for (const line of (await r.text()).split('\n')) {
    if (line.startsWith('data: {')) content += JSON.parse(line.slice(6)).choices[0]?.delta?.content ?? '';
  }
  assert.match(content, /347\+589 = 936/);
});
