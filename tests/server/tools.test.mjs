// Tools through the official openai SDK, at the prompt level and at the parse level:
//  - qwen3-tools (Qwen3's template, which renders `tools` itself, scripted to answer with a Hermes <tool_call>; see
//    make_test_model.cpp): the prompt the server renders (POST /apply-template) equals Jinja2's rendering of the same
//    template (python3-jinja2, configured as Hugging Face by scripts/gen_chat_goldens.py), the chat request's
//    prompt_tokens are that text's tokens, and the call comes back as tool_calls, streamed and not;
//  - tools (the V3 template, which does not render tools): the tool descriptions are in the system prompt, in the
//    text docs/SERVER.md gives, and the DeepSeek-format call comes back as tool_calls.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import OpenAI from 'openai';
import { startServer, SOURCE_DIR } from './lib.mjs';

const weatherTool = [{ type: 'function', function: { name: 'get_weather', description: 'Current weather',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
const askWeather = [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Weather in Oslo?' }];
// The scripted Qwen3 model calls after the non-thinking generation prompt ("</think>\n\n").
const noThinking = { chat_template_kwargs: { enable_thinking: false } };

let qsrv, qwen, dsrv, ds;
before(async () => {
  [qsrv, dsrv] = await Promise.all([startServer([], 'qwen3-tools'), startServer([], 'tools')]);
  qwen = new OpenAI({ baseURL: qsrv.url + '/v1', apiKey: 'unused', maxRetries: 0 });
  ds = new OpenAI({ baseURL: dsrv.url + '/v1', apiKey: 'unused', maxRetries: 0 });
});
after(async () => {
  for (const s of [qsrv, dsrv]) {
    const e = await s.stop();
    assert.equal(e.code, 0, 'graceful exit: ' + s.log());
  }
});

async function post(url, route, body) {
  const r = await fetch(url + route, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body) });
  return { status: r.status, json: await r.json() };
}

// Jinja2's rendering of a shipped template (HF settings). The server passes the tool schemas key-sorted, so the
// reference gets them key-sorted too.
function jinja2(template, messages, tools, vars) {
  const py = `
import json, sys
sys.path.insert(0, ${JSON.stringify(path.join(SOURCE_DIR, 'scripts'))})
from gen_chat_goldens import make_env
a = json.load(sys.stdin)
src = open(a["template"], encoding="utf-8").read()
tools = json.loads(json.dumps(a["tools"], sort_keys=True))
sys.stdout.write(make_env().from_string(src).render(messages=a["messages"], tools=tools, add_generation_prompt=True,
                                                    bos_token="", eos_token="<|im_end|>", **a["vars"]))
`;
  const input = JSON.stringify({ template: path.join(SOURCE_DIR, 'tests/fixtures/tokenizer/templates', template),
    messages, tools, vars });
  const r = spawnSync('python3', ['-c', py], { input, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('qwen3 template: the prompt renders the tools as the template defines them', async () => {
  const req = { messages: askWeather, tools: weatherTool, ...noThinking };
  const { status, json } = await post(qsrv.url, '/apply-template', req);
  assert.equal(status, 200);
  const expected = jinja2('qwen3.jinja', askWeather, weatherTool, { enable_thinking: false });
  assert.equal(json.prompt, expected);
  assert.ok(json.prompt.includes('<tools>\n{"function": {"description": "Current weather", "name": "get_weather"'),
            'the tools are listed inside <tools>');
  assert.ok(!json.prompt.includes('## Tools'), 'no server-side tool text when the template renders tools');
  // The chat request's prompt is exactly that text, tokenized (a completions prompt parses its special tokens).
  const chat = await qwen.chat.completions.create({ model: 'qwen3-tools', ...req, max_tokens: 1, temperature: 0 });
  const comp = await qwen.completions.create({ model: 'qwen3-tools', prompt: expected, max_tokens: 1 });
  assert.equal(chat.usage.prompt_tokens, comp.usage.prompt_tokens);
  // tool_choice "none" drops the tools from the prompt.
  const none = await post(qsrv.url, '/apply-template', { ...req, tool_choice: 'none' });
  assert.equal(none.json.prompt, jinja2('qwen3.jinja', askWeather, null, { enable_thinking: false }));
});

test('qwen3 template: a Hermes <tool_call> comes back as tool_calls', async () => {
  const a = await qwen.chat.completions.create({ model: 'qwen3-tools', messages: askWeather, tools: weatherTool,
    temperature: 0, max_tokens: 64, ...noThinking });
  const ch = a.choices[0];
  assert.equal(ch.finish_reason, 'tool_calls');
  assert.equal(ch.message.content, null);
  assert.equal(ch.message.tool_calls.length, 1);
  const call = ch.message.tool_calls[0];
  assert.equal(call.type, 'function');
  assert.match(call.id, /^call_/);
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { city: 'Oslo' });

  // Without tools the same output is text.
  const plain = await qwen.chat.completions.create({ model: 'qwen3-tools', messages: askWeather, temperature: 0,
    max_tokens: 64, ...noThinking });
  assert.equal(plain.choices[0].finish_reason, 'stop');
  assert.equal(plain.choices[0].message.tool_calls, undefined);
  assert.ok(plain.choices[0].message.content.startsWith('<tool_call>\n{"name":"get_weather"'));
});

test('qwen3 template: streamed, the call arrives as delta.tool_calls and no markup as content', async () => {
  const stream = qwen.chat.completions.stream({ model: 'qwen3-tools', messages: askWeather, tools: weatherTool,
    temperature: 0, max_tokens: 64, ...noThinking });
  let deltas = 0, content = '';
  for await (const c of stream) {
    for (const d of c.choices) {
      if (d.delta.tool_calls) deltas++;
      if (d.delta.content) content += d.delta.content;
    }
  }
  const ch = (await stream.finalChatCompletion()).choices[0];
  assert.ok(deltas >= 1);
  assert.equal(content, '', 'the <tool_call> text is not streamed as content');
  assert.equal(ch.finish_reason, 'tool_calls');
  assert.equal(ch.message.tool_calls.length, 1);
  assert.equal(ch.message.tool_calls[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(ch.message.tool_calls[0].function.arguments), { city: 'Oslo' });
});

// docs/SERVER.md's text, written out here independently of the server (tool JSON: compact, keys sorted).
const sortKeys = (x) => (Array.isArray(x) ? x.map(sortKeys) : x && typeof x === 'object'
  ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, sortKeys(x[k])])) : x);
function toolsText(tools) {
  const fn = (f) => JSON.stringify(sortKeys(f));
  return '## Tools\nYou can call these tools (one JSON object per line: name, description, parameters):\n' +
    tools.map((t) => fn(t.function) + '\n').join('') +
    "\nTo call tools, answer in this format, where NAME is a tool's name and ARGUMENTS a JSON object that follows " +
    'its parameters:\n<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\n```json\nARGUMENTS\n```' +
    '<｜tool▁call▁end｜><｜tool▁calls▁end｜>\nFor several calls, write one <｜tool▁call▁begin｜>…<｜tool▁call▁end｜> ' +
    'after another before <｜tool▁calls▁end｜>.';
}

test('V3 template (no tool rendering): the system prompt carries the tools; the call is parsed', async () => {
  const withSystem = await post(dsrv.url, '/apply-template', { messages: askWeather, tools: weatherTool });
  assert.equal(withSystem.json.prompt, '<｜begin▁of▁sentence｜>You are terse.\n\n' + toolsText(weatherTool) +
    '<｜User｜>Weather in Oslo?<｜Assistant｜>');
  const noSystem = await post(dsrv.url, '/apply-template', { messages: askWeather.slice(1), tools: weatherTool });
  assert.equal(noSystem.json.prompt, '<｜begin▁of▁sentence｜>' + toolsText(weatherTool) +
    '<｜User｜>Weather in Oslo?<｜Assistant｜>');
  const plain = await post(dsrv.url, '/apply-template', { messages: askWeather, tools: weatherTool, tool_choice: 'none' });
  assert.equal(plain.json.prompt, '<｜begin▁of▁sentence｜>You are terse.<｜User｜>Weather in Oslo?<｜Assistant｜>');

  const a = await ds.chat.completions.create({ model: 'tools', messages: askWeather, tools: weatherTool,
    temperature: 0, max_tokens: 64 });
  assert.equal(a.choices[0].finish_reason, 'tool_calls');
  assert.equal(a.choices[0].message.tool_calls[0].function.name, 'get_weather');
  assert.deepEqual(JSON.parse(a.choices[0].message.tool_calls[0].function.arguments), { city: 'Oslo' });
});
