// response_format through the official openai SDK on tiny-R1, an arithmetic model that has never seen JSON: 50
// sampled completions at temperature 1.0 constrained by a json_schema all parse and validate (ajv), with the reasoning
// still free before them; json_object gives objects; unsupported schema keywords are 400s that name them; streaming
// equals non-streaming, and a server that drafts with the MTP layer gives the same greedy output as one that does not
// (constrained sequences do not draft); sequences swapped out and back give the same output; /v1/completions takes
// it too; max_tokens cuts the JSON with "length".
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import OpenAI from 'openai';
import Ajv from 'ajv';
import { startServer, metrics, SOURCE_DIR } from './lib.mjs';

const TINY_R1 = path.join(SOURCE_DIR, 'models/tiny-r1');
let srv, plain, client, plainClient;
before(async () => {
  // `srv` drafts (tiny-R1 has an MTP layer: --draft 1 by default), `plain` does not.
  [srv, plain] = await Promise.all([
    startServer(['--parallel', '8', '--ctx', '2048'], TINY_R1),
    startServer(['--parallel', '2', '--ctx', '2048', '--draft', '0'], TINY_R1)]);
  client = new OpenAI({ baseURL: srv.url + '/v1', apiKey: 'unused', maxRetries: 0 });
  plainClient = new OpenAI({ baseURL: plain.url + '/v1', apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  for (const s of [srv, plain]) assert.equal((await s.stop()).code, 0, 'graceful exit: ' + s.log());
});

const schema = {
  type: 'object',
  properties: {
    answer: { type: 'integer' },
    unit: { enum: ['apples', 'pears'] },
    ok: { type: 'boolean' },
    tags: { type: 'array', items: { type: 'string', maxLength: 8 }, maxItems: 3 },
  },
  required: ['answer', 'unit', 'ok', 'tags'],
  additionalProperties: false,
};
const jsonSchema = { type: 'json_schema', json_schema: { name: 'fruit', strict: true, schema } };
const validate = new Ajv({ strict: true }).compile(schema);
// Every value in the schema is bounded (digits, string lengths, items, whitespace runs), so the JSON ends well
// within this; the reasoning before it is tiny-R1's usual few dozen tokens.
const MAX_TOKENS = 1200;

test('50 sampled completions at temperature 1.0 all parse and validate against the schema', async () => {
  const problems = ['12+34', '347+589', '905-78', '23*41', '8+9', '6000-1', '77*3', '450+450', '31-99', '5*5'];
  const res = await Promise.all(problems.map((p, i) => client.chat.completions.create({
    model: 'tiny-r1', messages: [{ role: 'user', content: `What is ${p}?` }], temperature: 1.0, top_p: 1.0,
    n: 5, seed: 100 + i, max_tokens: MAX_TOKENS, response_format: jsonSchema,
  })));
  const choices = res.flatMap((r) => r.choices);
  assert.equal(choices.length, 50);
  for (const c of choices) {
    const m = c.message;
    assert.equal(c.finish_reason, 'stop', m.content);
    assert.equal(typeof m.reasoning_content, 'string');
    assert.ok(m.reasoning_content.length > 0, 'the reasoning comes first, unconstrained');
    const value = JSON.parse(m.content);
    assert.ok(validate(value), JSON.stringify(validate.errors) + ' in ' + m.content);
  }
  // Declared order (keys are generated in the schema's order, not sorted).
  assert.deepEqual(Object.keys(JSON.parse(choices[0].message.content)), ['answer', 'unit', 'ok', 'tags']);
  // No drafts for constrained sequences.
  assert.equal((await metrics(srv.url)).deepseek_spec_verify_steps_total, 0);
});

test('json_object: every completion that ends is a JSON object', async () => {
  const r = await client.chat.completions.create({
    model: 'tiny-r1', messages: [{ role: 'user', content: 'What is 7+8?' }], temperature: 1.0, n: 8, seed: 1,
    max_tokens: 300, response_format: { type: 'json_object' },
  });
  let stopped = 0;
  for (const c of r.choices) {
    // Keys and strings are unbounded here: an arithmetic model may write one until max_tokens.
    assert.ok(c.message.content.trimStart().startsWith('{'), c.message.content);
    if (c.finish_reason !== 'stop') continue;
    const v = JSON.parse(c.message.content);
    assert.ok(v && typeof v === 'object' && !Array.isArray(v), c.message.content);
    ++stopped;
  }
  assert.ok(stopped > 0, 'some of 8 samples end');
});

test('unsupported schemas and malformed response_format are 400s that say why', async () => {
  const bad = async (response_format, pattern) => {
    await assert.rejects(
      client.chat.completions.create({ model: 'tiny-r1', messages: [{ role: 'user', content: 'hi' }], response_format }),
      (e) => e.status === 400 && e.param === 'response_format' && pattern.test(e.message) ? true : assert.fail(e.message));
  };
  const withSchema = (s, strict = false) => ({ type: 'json_schema', json_schema: { name: 'x', strict, schema: s } });
  await bad(withSchema({ type: 'object', properties: { s: { type: 'string', pattern: '^a' } } }), /'pattern'.*#\/properties\/s|#\/properties\/s.*'pattern'/);
  await bad(withSchema({ type: 'object', properties: { n: { type: 'number', minimum: 0 } } }), /'minimum'/);
  await bad(withSchema({ oneOf: [{ type: 'string' }] }), /'oneOf'/);
  await bad(withSchema({ type: 'object', properties: { a: { type: 'string' } } }, true), /additionalProperties/);
  await bad(withSchema({ type: 'object', properties: { a: { type: 'string' } }, additionalProperties: false }, true), /required/);
  await bad({ type: 'yaml' }, /json_object|json_schema/);
  await bad({ type: 'json_schema' }, /json_schema/);
  await bad('json', /object/);
});

test('streaming gives the non-streaming text; drafting or not gives the same greedy output', async () => {
  const body = {
    model: 'tiny-r1', messages: [{ role: 'user', content: 'What is 347+589?' }], temperature: 0,
    max_tokens: MAX_TOKENS, response_format: jsonSchema,
  };
  const whole = await client.chat.completions.create(body);
  const stream = await client.chat.completions.create({ ...body, stream: true });
  let content = '', reasoning = '', finish = null;
  for await (const chunk of stream) {
    const d = chunk.choices[0]?.delta ?? {};
    content += d.content ?? '';
    reasoning += d.reasoning_content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(content, whole.choices[0].message.content);
  assert.equal(reasoning, whole.choices[0].message.reasoning_content);
  assert.equal(finish, 'stop');
  assert.ok(validate(JSON.parse(content)));
  const undrafted = await plainClient.chat.completions.create(body);
  assert.equal(undrafted.choices[0].message.content, content);
  assert.equal(undrafted.choices[0].message.reasoning_content, reasoning);
});

test('sequences swapped out and back keep their automaton: outputs unchanged', async () => {
  // 40 blocks of 16 tokens for 4 sequences of ~300 tokens each: some must be preempted for the others to go on.
  const small = await startServer(['--parallel', '4', '--ctx', '2048', '--kv-cache-tokens', '640', '--kv-block-size',
                                   '16', '--no-prefix-cache'], TINY_R1);
  try {
    const smallClient = new OpenAI({ baseURL: small.url + '/v1', apiKey: 'unused', maxRetries: 0 });
    const body = (i) => ({ model: 'tiny-r1', messages: [{ role: 'user', content: `What is ${123 + i}*7?` }],
                           temperature: 1.0, n: 2, seed: 7 + i, max_tokens: MAX_TOKENS, response_format: jsonSchema });
    const ref = await Promise.all([0, 1].map((i) => client.chat.completions.create(body(i))));
    const got = await Promise.all([0, 1].map((i) => smallClient.chat.completions.create(body(i))));
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 2; j++) {
        const a = got[i].choices[j], b = ref[i].choices[j];
        assert.equal(a.message.content, b.message.content);
        assert.equal(a.message.reasoning_content, b.message.reasoning_content);
        assert.equal(a.finish_reason, 'stop');
        assert.ok(validate(JSON.parse(a.message.content)));
      }
    const m = await metrics(small.url);
    assert.ok(m.deepseek_kv_cache_preemptions_total > 0, 'the pool was too small: someone was swapped out');
    assert.equal(m.deepseek_kv_cache_full_stops_total, 0);
  } finally {
    assert.equal((await small.stop()).code, 0, small.log());
  }
});

test('/v1/completions takes response_format; max_tokens cuts the JSON with length', async () => {
  const r = await client.completions.create({
    model: 'tiny-r1', prompt: '12+3=', temperature: 0.7, seed: 3, max_tokens: MAX_TOKENS, n: 4,
    response_format: { type: 'json_schema', json_schema: { name: 'n', schema: { type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] } } },
  });
  for (const c of r.choices) {
    assert.equal(c.finish_reason, 'stop', c.text);
    assert.ok(Number.isInteger(JSON.parse(c.text).n), c.text);
  }
  // Greedy, then cut one token short: the text stops inside the JSON, as OpenAI's does.
  const greedy = { model: 'tiny-r1', prompt: '12+3=', temperature: 0, response_format: jsonSchema };
  const full = await client.completions.create({ ...greedy, max_tokens: MAX_TOKENS });
  assert.equal(full.choices[0].finish_reason, 'stop');
  assert.ok(validate(JSON.parse(full.choices[0].text)));
  const cut = await client.completions.create({ ...greedy, max_tokens: full.usage.completion_tokens - 1 });
  assert.ok(full.choices[0].text.startsWith(cut.choices[0].text));
  assert.ok(cut.choices[0].text.length < full.choices[0].text.length);
  assert.equal(cut.choices[0].finish_reason, 'length');
});
