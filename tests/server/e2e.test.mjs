// End to end through the official openai SDK, where the answer is known from outside the engine:
//  - the built-in tiny-R1 (`deepseek serve --model models/tiny-r1`) answers "What is 347+589?" greedily: the
//    completion's token ids (read back from logprobs) equal PyTorch's greedy ids (tests/fixtures/tiny-r1/greedy.npy),
//    the reasoning ends exactly at the </think> token and the answer contains "= 936", streamed and not;
//  - a model that calls a tool (the scripted test model, see make_test_model.cpp) yields finish_reason
//    "tool_calls" and message.tool_calls, and the streamed delta.tool_calls as the SDK assembles them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { startServer, SOURCE_DIR } from './lib.mjs';

const TINY_R1 = path.join(SOURCE_DIR, 'models/tiny-r1');

// int64 .npy (little endian, C order, 1-D) -> numbers
function readNpyI64(file) {
  const b = fs.readFileSync(file);
  assert.equal(b.toString('latin1', 1, 6), 'NUMPY');
  const hl = b.readUInt16LE(8);
  const header = b.toString('latin1', 10, 10 + hl);
  assert.match(header, /'descr': '<i8'/);
  const out = [];
  for (let o = 10 + hl; o < b.length; o += 8) out.push(Number(b.readBigInt64LE(o)));
  return out;
}

// token bytes (hex) -> id, from a byte-level BPE tokenizer.json (GPT-2 byte <-> unicode table) and its added tokens
function idsByBytes(tokenizerJson) {
  const tj = JSON.parse(fs.readFileSync(tokenizerJson, 'utf8'));
  const printable = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const u2b = new Map();
  let n = 0;
  for (let b = 0; b < 256; b++) u2b.set(printable.includes(b) ? b : 256 + n++, b);
  for (const b of printable) u2b.set(b, b);
  const map = new Map();
  for (const [tokStr, id] of Object.entries(tj.model.vocab)) {
    const bytes = Buffer.from([...tokStr].map((ch) => u2b.get(ch.codePointAt(0))));
    map.set(bytes.toString('hex'), id);
  }
  for (const a of tj.added_tokens) map.set(Buffer.from(a.content, 'utf8').toString('hex'), a.id);
  return map;
}

let r1srv, r1, toolsrv, tools;
before(async () => {
  [r1srv, toolsrv] = await Promise.all([startServer(['--parallel', '2'], TINY_R1), startServer([], 'tools')]);
  r1 = new OpenAI({ baseURL: r1srv.url + '/v1', apiKey: 'unused', maxRetries: 0 });
  tools = new OpenAI({ baseURL: toolsrv.url + '/v1', apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  for (const s of [r1srv, toolsrv]) {
    const e = await s.stop();
    assert.equal(e.code, 0, 'graceful exit: ' + s.log());
  }
});

const question = [{ role: 'user', content: 'What is 347+589?' }];

test('tiny-R1: greedy answer, token ids equal PyTorch greedy, reasoning split at the </think> token', async () => {
  const want = readNpyI64(path.join(SOURCE_DIR, 'tests/fixtures/tiny-r1/greedy.npy'));
  const toId = idsByBytes(path.join(TINY_R1, 'tokenizer.json'));
  const eos = toId.get(Buffer.from('<｜end▁of▁sentence｜>').toString('hex'));
  const thinkEnd = toId.get(Buffer.from('</think>').toString('hex'));
  assert.ok(eos !== undefined && thinkEnd !== undefined);
  assert.equal(want.at(-1), eos, 'the PyTorch reference runs to end-of-sentence');

  const a = await r1.chat.completions.create({ model: 'tiny-r1', messages: question, temperature: 0, max_tokens: 400,
    logprobs: true });
  const ch = a.choices[0];
  assert.equal(ch.finish_reason, 'stop');
  const ids = ch.logprobs.content.map((e) => {
    const id = toId.get(Buffer.from(e.bytes).toString('hex'));
    assert.ok(id !== undefined, 'a logprobs token that is not in the vocabulary: ' + JSON.stringify(e.token));
    return id;
  });
  assert.deepEqual(ids, want.slice(0, -1), 'completion ids vs PyTorch greedy (the end-of-sentence token ends it)');
  assert.equal(a.usage.completion_tokens, ids.length);

  // The split is at the </think> token: reasoning = the tokens before it, answer = the tokens after it.
  const k = ids.indexOf(thinkEnd);
  assert.ok(k > 0, 'the model closes its reasoning');
  const text = (from, to) => Buffer.concat(ch.logprobs.content.slice(from, to).map((e) => Buffer.from(e.bytes))).toString('utf8');
  assert.equal(ch.message.reasoning_content.trim(), text(0, k).trim());
  assert.equal(ch.message.content.trim(), text(k + 1).trim());
  assert.match(ch.message.content, /347\+589 = 936/);
  assert.ok(!ch.message.content.includes('</think>') && !ch.message.reasoning_content.includes('</think>'));
  assert.match(ch.message.reasoning_content, /^Add 347 and 589 digit by digit/);
  assert.equal(a.usage.completion_tokens_details.reasoning_tokens, k + 1);

  // Streamed: the same reasoning and answer, reasoning deltas all before the first answer delta.
  const stream = await r1.chat.completions.create({ model: 'tiny-r1', messages: question, temperature: 0,
    max_tokens: 400, stream: true });
  let reasoning = '', content = '', finish = null, answerStarted = false;
  for await (const c of stream) {
    for (const d of c.choices) {
      if (d.delta.reasoning_content) {
        assert.ok(!answerStarted, 'reasoning after the answer started');
        reasoning += d.delta.reasoning_content;
      }
      if (d.delta.content) { content += d.delta.content; answerStarted = true; }
      if (d.finish_reason) finish = d.finish_reason;
    }
  }
  assert.equal(finish, 'stop');
  assert.equal(reasoning, ch.message.reasoning_content);
  assert.equal(content, ch.message.content);
});

const weatherTool = [{ type: 'function', function: { name: 'get_weather', description: 'Current weather',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
const askWeather = [{ role: 'user', content: 'What is the weather in Oslo?' }];

test('tool call: finish_reason tool_calls and message.tool_calls', async () => {
  const a = await tools.chat.completions.create({ model: 'tools', messages: askWeather, tools: weatherTool,
    temperature: 0, max_tokens: 64 });
  const ch = a.choices[0];
  assert.equal(ch.finish_reason, 'tool_calls');
  assert.equal(ch.message.tool_calls.length, 1);
  const call = ch.message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.match(call.id, /^call_/);
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Oslo' });
  assert.ok(!ch.message.content || !ch.message.content.includes('tool▁call'), 'tool-call tokens leaked into content');

  // Without `tools` in the request the same output is plain text: nothing is parsed.
  const plain = await tools.chat.completions.create({ model: 'tools', messages: askWeather, temperature: 0, max_tokens: 64 });
  assert.equal(plain.choices[0].finish_reason, 'stop');
  assert.equal(plain.choices[0].message.tool_calls, undefined);
});

test('tool call: streamed delta.tool_calls as the SDK assembles them', async () => {
  const stream = tools.chat.completions.stream({ model: 'tools', messages: askWeather, tools: weatherTool,
    temperature: 0, max_tokens: 64 });
  let deltas = 0;
  for await (const c of stream) for (const d of c.choices) if (d.delta.tool_calls) deltas++;
  const final = await stream.finalChatCompletion();
  assert.ok(deltas >= 1);
  const ch = final.choices[0];
  assert.equal(ch.finish_reason, 'tool_calls');
  assert.equal(ch.message.tool_calls.length, 1);
  assert.equal(ch.message.tool_calls[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(ch.message.tool_calls[0].function.arguments), { city: 'Oslo' });
});
