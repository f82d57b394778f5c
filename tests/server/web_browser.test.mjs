// The chat page in a real browser: headless Chromium (the Debian package, /usr/bin/chromium, installed by
// scripts/setup.sh) driven by puppeteer-core against `deepseek serve --model models/tiny-r1`.
//  - asks "What is 347+589?": the reasoning streams live ("Thinking…"), then folds as "Thought for N s", and the
//    rendered answer contains 936; tokens/s are shown;
//  - asks a longer question and presses Stop mid-stream: the fetch is aborted (the proxy below sees the browser close
//    the connection), the text stops growing, the composer is usable again (a new chat gets its answer);
//  - edit + resend and regenerate; rename; reload: the conversations are still in the list and open again;
//  - settings reach the request; stored Markdown, math (KaTeX, embedded fonts), highlighted code with a working copy
//    button, raw HTML shown as text;
//  - a phone-sized viewport with the sidebar behind its toggle;
//  - a server with --api-key: the page loads without it, asks for it, stores it and uses it.
// tiny-R1 answers in a fraction of a second, faster than any stop button can be pressed, so the page talks to the
// server through a small proxy that can hand the SSE events on one at a time with a delay, as a large model would.
// Screenshots of every step go to $DS_ARTIFACTS_DIR (build/test-artifacts/web). Without Chromium or puppeteer-core
// the test is skipped, saying why (ctest reports it as skipped).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startServer, SOURCE_DIR } from './lib.mjs';

const TINY_R1 = path.join(SOURCE_DIR, 'models/tiny-r1');
const ART = process.env.DS_ARTIFACTS_DIR || path.join(os.tmpdir(), 'deepseek-web-artifacts');
const CHROMIUM = (process.env.CHROMIUM_PATH ? [process.env.CHROMIUM_PATH]
  : ['/usr/bin/chromium', '/usr/bin/chromium-browser']).find((p) => fs.existsSync(p));

let puppeteer = null, why = null;
if (!CHROMIUM) {
  why = `no Chromium at ${process.env.CHROMIUM_PATH || '/usr/bin/chromium'} (scripts/setup.sh installs the Debian ` +
    'package `chromium`; CHROMIUM_PATH names another)';
} else {
  try {
    puppeteer = (await import('puppeteer-core')).default;
  } catch (e) {
    why = 'puppeteer-core is not installed in tests/server/node_modules (run scripts/setup.sh): ' + e.message;
  }
}
if (why) console.log('web_browser: SKIPPED: ' + why);

// A pass-through proxy; with `delayMs` set, a chat stream's SSE events are handed on one per delay.
function startProxy(target) {
  // held: slowed streams forward nothing until release() (the test's clock then cannot decide where a stop lands).
  const state = { delayMs: 0, aborted: 0, slowStreams: 0, held: false, pumps: [] };
  state.release = () => { state.held = false; for (const p of state.pumps) p(); };
  const server = http.createServer((req, res) => {
    const up = http.request(target + req.url, { method: req.method, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      const sse = (ur.headers['content-type'] || '').startsWith('text/event-stream');
      if (!sse || !state.delayMs) return void ur.pipe(res);
      state.slowStreams++;
      const delay = state.delayMs;
      const queue = [];
      let buf = '', ended = false, timer = null;
      const pump = () => {
        if (timer || res.destroyed || state.held) return;
        if (queue.length) {
          timer = setTimeout(() => {
            timer = null;
            if (!res.destroyed) res.write(queue.shift());
            pump();
          }, delay);
        } else if (ended) {
          res.end(buf);
        }
      };
      state.pumps.push(pump);
      ur.setEncoding('utf8');
      ur.on('data', (d) => {
        buf += d;
        for (let i; (i = buf.indexOf('\n\n')) >= 0; buf = buf.slice(i + 2)) queue.push(buf.slice(0, i + 2));
        pump();
      });
      ur.on('end', () => { ended = true; pump(); });
      res.on('close', () => {
        if (res.writableFinished) return;
        state.aborted++;
        clearTimeout(timer);
        ur.destroy();
      });
    });
    up.on('error', () => res.destroy());
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => { if (req.method === 'POST') state.lastBody = body; });
    req.pipe(up);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve({ url: `http://127.0.0.1:${server.address().port}`, state, close: () => server.close() });
  }));
}

let srv, keyed, proxy, browser, page, shot = 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function screenshot(name) {
  fs.mkdirSync(ART, { recursive: true });
  await page.screenshot({ path: path.join(ART, `${String(++shot).padStart(2, '0')}-${name}.png`) });
}
const waitFor = (fn, arg, timeout = 20000) => page.waitForFunction(fn, { timeout, polling: 20 }, arg);
const lastAnswer = () => page.$eval('#messages .msg.assistant:last-child', (el) => ({
  content: el.querySelector('.content').innerText,
  html: el.querySelector('.content').innerHTML,
  summary: el.querySelector('.think summary')?.textContent ?? null,
  open: el.querySelector('.think')?.open ?? null,
  reasoning: el.querySelector('.think-body')?.textContent ?? '',
  stats: el.querySelector('.stats').textContent,
}));
const idle = () => waitFor(() => document.querySelector('#stop').hidden && !document.querySelector('#send').hidden &&
  !document.querySelector('.msg.assistant.streaming'));
async function ask(text) {
  await page.click('#input');
  await page.type('#input', text);
  await page.keyboard.press('Enter');
}
const chatNames = () => page.$$eval('#chat-list .chat-name', (els) => els.map((e) => e.textContent));

before(async () => {
  if (why) return;
  fs.rmSync(ART, { recursive: true, force: true });
  [srv, keyed] = await Promise.all([startServer(['--parallel', '2'], TINY_R1),
                                    startServer(['--api-key', 'browser-key-7'], TINY_R1)]);
  proxy = await startProxy(srv.url);
  browser = await puppeteer.launch({
    executablePath: CHROMIUM, headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
  page = await browser.newPage();
  await page.setViewport({ width: 1200, height: 800 });
  page.on('pageerror', (e) => console.log('page error:', e.message));
});
after(async () => {
  if (browser) await browser.close();
  if (proxy) proxy.close();
  for (const x of [srv, keyed]) if (x) assert.equal((await x.stop()).code, 0, 'graceful exit: ' + x.log());
});

test('chat page: ask, stream with live reasoning, stop, edit, regenerate, reload', { skip: why || false }, async () => {
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await page.goto(proxy.url + '/', { waitUntil: 'load' });
  await waitFor(() => document.querySelector('#model-name').textContent === 'tiny-r1');
  await screenshot('loaded');

  // 1. The reasoning streams into an open fold, which closes as "Thought for N s" once the answer comes.
  proxy.state.delayMs = 25;
  await ask('What is 347+589?');
  await waitFor(() => {
    const t = document.querySelector('.msg.assistant.streaming .think.live');
    return t && t.open && /Thinking/.test(t.querySelector('summary').textContent) &&
      t.querySelector('.think-body').textContent.length > 10;
  });
  await screenshot('thinking-live');
  await idle();
  let a = await lastAnswer();
  assert.match(a.summary, /^Thought for \d+(\.\d)? s$/);
  assert.equal(a.open, false, 'the reasoning is folded after the answer');
  assert.match(a.content, /936/);
  assert.match(a.html, /<p>[^<]*347\+589 = 936/, 'the answer is rendered Markdown: ' + a.html);
  assert.match(a.reasoning, /ones 7\+9\+0=16/);
  assert.match(a.stats, /\d+ tokens · [\d.]+ tok\/s/);
  assert.match(await page.$eval('#speed', (e) => e.textContent), /^[\d.]+ tok\/s$/);
  await page.click('#messages .msg.assistant:last-child .think summary');
  assert.equal((await lastAnswer()).open, true, 'the fold opens on click');
  await screenshot('answer-936-reasoning-open');
  await page.click('#messages .msg.assistant:last-child .think summary');
  assert.deepEqual(await chatNames(), ['What is 347+589?']);

  // 2. Stop mid-stream (in a new chat): the page aborts the fetch, the text freezes, the controls come back.
  proxy.state.delayMs = 40;
  const aborted = proxy.state.aborted;
  await page.click('#new-chat');
  await ask('What is 98765*4321?');
  await waitFor(() => (document.querySelector('.msg.assistant.streaming .think-body')?.textContent.length ?? 0) > 60);
  proxy.state.held = true;  // the stream pauses here however long the screenshot and the click take on a busy machine
  await screenshot('streaming-before-stop');
  assert.equal(await page.$eval('#stop', (e) => e.hidden), false);
  await page.click('#stop');
  proxy.state.release();    // the rest would flow now if the page had not closed the stream
  await idle();
  const frozen = await lastAnswer();
  assert.match(frozen.stats, /stopped/);
  assert.ok(frozen.reasoning.length > 60);
  // The same request, whole: the stopped reasoning is a small part of it.
  const sent = JSON.parse(proxy.state.lastBody);
  assert.deepEqual(sent.messages, [{ role: 'user', content: 'What is 98765*4321?' }]);
  assert.equal(sent.model, 'tiny-r1');
  const full = await (await fetch(srv.url + '/v1/chat/completions', { method: 'POST',
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ ...sent, stream: false }) })).json();
  const fullReasoning = full.choices[0].message.reasoning_content;
  assert.ok(frozen.reasoning.length < fullReasoning.length / 2,
    `stopped well before the end of the reasoning (${frozen.reasoning.length} of ${fullReasoning.length} chars)`);
  await sleep(500);
  assert.equal((await lastAnswer()).reasoning, frozen.reasoning, 'no text after Stop');
  assert.equal(proxy.state.aborted, aborted + 1, 'the browser closed the stream');
  assert.equal(await page.$eval('#input', (e) => e.disabled), false);
  await screenshot('stopped');

  // 3. Usable again: settings go into the request; a new chat gets its answer; edit + resend; regenerate; rename.
  proxy.state.delayMs = 0;
  await page.click('#open-settings');
  await waitFor(() => document.querySelector('#settings').open);
  await page.type('#settings-form [name=temperature]', '0');
  await page.type('#settings-form [name=max_tokens]', '300');
  await page.select('#settings-form [name=thinking]', 'off');
  await page.click('#settings-form button[value=save]');
  await waitFor(() => !document.querySelector('#settings').open);
  await page.click('#new-chat');
  await ask('What is 12+30?');
  await idle();
  assert.match((await lastAnswer()).content, /12\+30 = 42/);
  const body = JSON.parse(proxy.state.lastBody);
  assert.equal(body.temperature, 0);
  assert.equal(body.max_tokens, 300);
  assert.equal(body.thinking, false);
  assert.equal(body.top_p, undefined, 'an empty setting is left to the server');
  assert.equal(body.stream, true);
  await page.click('#messages .msg.user .edit');
  await page.$eval('.edit-box textarea', (t) => { t.value = ''; });
  await page.type('.edit-box textarea', 'What is 100+23?');
  await page.click('.edit-box .edit-send');
  await idle();
  assert.equal(await page.$$eval('#messages .msg', (m) => m.length), 2, 'the edit replaced the turn');
  assert.match((await lastAnswer()).content, /100\+23 = 123/);
  const before = (await lastAnswer()).content;
  await page.click('#messages .msg.assistant:last-child .regen');
  await idle();
  assert.equal((await lastAnswer()).content, before, 'greedy regeneration gives the same answer');
  assert.equal(await page.$$eval('#messages .msg', (m) => m.length), 2);
  await page.click('#chat-list .chat-item.active .rename');
  await page.$eval('#chat-list .rename-input', (i) => { i.value = ''; });
  await page.type('#chat-list .rename-input', 'sums');
  await page.keyboard.press('Enter');
  assert.deepEqual(await chatNames(), ['sums', 'What is 98765*4321?', 'What is 347+589?']);
  await screenshot('new-chat-edited');

  // 4. Reload: the conversations are listed and open with their messages. A stored answer with Markdown, math,
  // code and raw HTML checks the renderer of the real bundle (tiny-R1 only writes arithmetic).
  await page.evaluate((md) => {
    const chats = JSON.parse(localStorage.getItem('deepseek.chats'));
    chats.push({ id: 'render', title: 'rendering', created: Date.now(), updated: Date.now(),
      messages: [{ role: 'user', content: 'show me' }, { role: 'assistant', content: md, reasoning: '' }] });
    localStorage.setItem('deepseek.chats', JSON.stringify(chats));
  }, [
    'Inline $a^2+b^2=c^2$ and \\(e^{i\\pi}+1=0\\), a price of $5 and $10, **bold**.', '',
    '$$\\int_0^1 x\\,dx = \\frac{1}{2}$$', '', '\\[\\sum_{k=1}^{n} k = \\frac{n(n+1)}{2}\\]', '',
    '```python', 'def f(x):', '    return x + 1', '```', '',
    '<img src=x onerror="window.__xss=1"> <script>window.__xss=2</script>',
  ].join('\n'));
  await page.reload({ waitUntil: 'load' });
  await waitFor(() => document.querySelectorAll('#chat-list .chat-item').length === 4);
  assert.deepEqual(await chatNames(), ['rendering', 'sums', 'What is 98765*4321?', 'What is 347+589?']);
  const openChat = (i) => page.click(`#chat-list .chat-item:nth-child(${i + 1}) .chat-name`);
  await openChat(3);
  await waitFor(() => document.querySelectorAll('#messages .msg').length === 2);
  const texts = await page.$$eval('#messages .msg', (m) => m.map((e) => e.innerText));
  assert.match(texts[1], /936/);
  assert.match(await page.$eval('#messages .msg.assistant .think summary', (e) => e.textContent), /^Thought for/);
  assert.match(await page.$eval('#speed', (e) => e.textContent), /tok\/s/);
  await screenshot('reloaded');
  await openChat(2);
  await waitFor(() => document.querySelectorAll('#messages .msg').length === 2);
  assert.match((await lastAnswer()).stats, /stopped/);
  await openChat(0);
  await waitFor(() => document.querySelectorAll('#messages .msg').length === 2);
  const r = await page.$eval('#messages .msg.assistant .content', (el) => ({
    inline: el.querySelectorAll('.katex:not(.katex-display .katex)').length,
    display: el.querySelectorAll('.katex-display').length,
    text: el.innerText, strong: el.querySelectorAll('strong').length,
    keywords: [...el.querySelectorAll('.code code .hljs-keyword')].map((k) => k.textContent),
    img: el.querySelectorAll('img, script').length,
    lang: el.querySelector('.code-head span')?.textContent,
    fontsReady: document.fonts.check('16px KaTeX_Main'),
  }));
  assert.equal(r.inline, 2, 'two inline formulas ($...$ and \\(...\\)); prices stay text: ' + r.text);
  assert.equal(r.display, 2, 'two display formulas ($$...$$ and \\[...\\])');
  assert.match(r.text, /a price of \$5 and \$10/);
  assert.equal(r.strong, 1);
  assert.deepEqual(r.keywords, ['def', 'return']);
  assert.equal(r.lang, 'python');
  assert.equal(r.img, 0, 'raw HTML is shown as text');
  assert.match(r.text, /<img src=x onerror=/);
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  assert.ok(r.fontsReady, 'the embedded KaTeX fonts load');
  const origin = new URL(proxy.url).origin;
  await browser.defaultBrowserContext().overridePermissions(origin, ['clipboard-read', 'clipboard-write']);
  await page.click('#messages .code .copy');
  // The label is read where it changes: it turns back to 'Copy' after 1.5 s, which a busy machine can miss.
  const label = await (await waitFor(() => {
    const t = document.querySelector('#messages .code .copy').textContent;
    return t !== 'Copy' && t;
  })).jsonValue();
  assert.equal(label, 'Copied');
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'def f(x):\n    return x + 1');
  await screenshot('markdown-math-code');
  await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'dark' }]);
  await screenshot('markdown-math-code-dark');
  await page.emulateMediaFeatures([]);
  page.once('dialog', (d) => d.accept());
  await page.click('#chat-list .chat-item.active .delete');
  await waitFor(() => document.querySelectorAll('#chat-list .chat-item').length === 3 &&
    document.querySelector('#empty'));
  assert.deepEqual(await chatNames(), ['sums', 'What is 98765*4321?', 'What is 347+589?']);
  await openChat(2);

  // 5. Phone-sized: the sidebar hides behind its toggle.
  await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
  await sleep(300);
  const hidden = await page.$eval('#sidebar', (s) => s.getBoundingClientRect().right <= 0);
  assert.ok(hidden, 'the sidebar is off screen on a phone');
  await screenshot('phone');
  await page.click('#toggle-sidebar');
  await sleep(300);
  assert.equal(await page.$eval('#sidebar', (s) => s.getBoundingClientRect().left), 0);
  assert.ok(await page.$eval('#messages', (m) => m.scrollWidth <= m.clientWidth), 'nothing wider than the phone');
  await screenshot('phone-sidebar');

  assert.deepEqual(errors, [], 'no errors in the page console');

  // 6. A server with --api-key: the page loads, asks for the key, keeps it and uses it.
  await page.setViewport({ width: 1200, height: 800 });
  await page.goto(keyed.url + '/', { waitUntil: 'load' });
  await waitFor(() => document.querySelector('#key-dialog').open);
  await screenshot('api-key-prompt');
  await page.type('#key-form [name=key]', 'browser-key-7');
  await page.click('#key-form button[value=save]');
  await waitFor(() => document.querySelector('#model-name').textContent === 'tiny-r1');
  assert.equal(await page.evaluate(() => JSON.parse(localStorage.getItem('deepseek.apiKey'))), 'browser-key-7');
  await ask('What is 347+589?');
  await idle();
  assert.match((await lastAnswer()).content, /347\+589 = 936/);
  await page.reload({ waitUntil: 'load' });
  await waitFor(() => document.querySelector('#model-name').textContent === 'tiny-r1');
  assert.equal(await page.$eval('#key-dialog', (d) => d.open), false, 'the stored key is used after a reload');
  assert.deepEqual(errors, ['Failed to load resource: the server responded with a status of 401 (Unauthorized)'],
                   'only the first, keyless /v1/models');
});
