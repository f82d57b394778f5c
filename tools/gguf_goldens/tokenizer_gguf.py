#!/usr/bin/python3
"""Writes a tokenizer-only GGUF from a Hugging Face tokenizer folder the way llama.cpp's convert_hf_to_gguf.py does for
DeepSeek-V3 (DeepseekV2Model.set_vocab -> _set_vocab_gpt2: get_vocab_base + gguf.SpecialVocab(load_merges=True)),
with ggml's own writer (gguf-py). For cross-checking the GGUF that tests/tokenizer/test_gguf_vocab.cpp writes in C++
with the same recipe: `DS_GGUF_VOCAB_DUMP=/tmp/cpp.gguf build/tests/tokenizer/tokenizer_gguf` keeps the test's file,
then `cmp /tmp/cpp.gguf OUT.gguf` (byte-identical for DeepSeek-V3: 5,234,821 bytes, sha256 5e722e1a...).

usage: tokenizer_gguf.py GGUF_PY_DIR TOKENIZER_DIR OUT.gguf [--vocab-size N] [--pre NAME]

  GGUF_PY_DIR    llama.cpp's gguf-py folder (e.g. /work/bench/llamacpp/src/gguf-py)
  TOKENIZER_DIR  tokenizer.json + tokenizer_config.json (e.g. .cache/tokenizer-deepseek-v3)
  --vocab-size   config.json's vocab_size (DeepSeek-V3: 129280); ids without a token become [PAD<id>], type unused
  --pre          tokenizer.ggml.pre (the converter detects it by hashing an encoding; DeepSeek-V3 is deepseek-v3)

Without `transformers`, AutoTokenizer's view is rebuilt from tokenizer.json: `vocab` is the BPE vocabulary plus the
added tokens, `get_added_vocab()` the added tokens by content. The converter's decode(encode(token)) round trip of
non-normalized added tokens is the identity for tokens that are matched whole as added tokens, as all of
DeepSeek-V3's are (the script checks that no added token contains another one).

Metadata written (in this order): general.architecture = deepseek2, tokenizer.ggml.model = gpt2, tokenizer.ggml.pre,
tokenizer.ggml.tokens, tokenizer.ggml.token_type, then SpecialVocab's: tokenizer.ggml.merges, the special token ids
(bos, eos, unk, sep, pad, cls, mask as present), add_bos/add_eos_token, tokenizer.chat_template.
"""
import argparse
import json
import os
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('gguf_py')
    ap.add_argument('tokenizer_dir')
    ap.add_argument('out')
    ap.add_argument('--vocab-size', type=int, default=129280)
    ap.add_argument('--pre', default='deepseek-v3')
    a = ap.parse_args()

    sys.path.insert(0, a.gguf_py)
    import gguf  # noqa: E402

    with open(os.path.join(a.tokenizer_dir, 'tokenizer.json'), encoding='utf-8') as f:
        tj = json.load(f)
    added = tj.get('added_tokens', [])
    vocab = dict(tj['model']['vocab'])
    for t in added:
        vocab[t['content']] = t['id']
    assert max(vocab.values()) < a.vocab_size, 'vocab_size below the largest token id'
    reverse = {i: s for s, i in vocab.items()}
    added_by_content = {t['content']: t for t in added}
    added_by_id = {t['id']: t for t in added}
    contents = [t['content'] for t in added]
    for c in contents:
        assert not any(o != c and o in c for o in contents), f'added token {c!r} contains another added token'

    def looks_special(s):  # ModelBase.does_token_look_special
        return (s in ('<pad>', '<mask>', '<2mass>', '[@BOS@]') or (s.startswith('<|') and s.endswith('|>'))
                or (s.startswith('<｜') and s.endswith('｜>')) or (s.startswith('<unused') and s.endswith('>')))

    tokens, types = [], []
    for i in range(a.vocab_size):
        if i not in reverse:
            tokens.append(f'[PAD{i}]')
            types.append(gguf.TokenType.UNUSED)
            continue
        tok = reverse[i]
        if tok in added_by_content:
            if added_by_id[i]['special'] or looks_special(tok):
                types.append(gguf.TokenType.CONTROL)
            else:
                tok = tok.replace('\u2581', ' ')
                types.append(gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
        tokens.append(tok)

    w = gguf.GGUFWriter(a.out, 'deepseek2')
    w.add_tokenizer_model('gpt2')
    w.add_tokenizer_pre(a.pre)
    w.add_token_list(tokens)
    w.add_token_types(types)
    gguf.SpecialVocab(a.tokenizer_dir, load_merges=True).add_to_gguf(w, quiet=True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()
    print(f'{a.out}: {len(tokens)} tokens, {sum(t == gguf.TokenType.CONTROL for t in types)} control, '
          f'{sum(t == gguf.TokenType.UNUSED for t in types)} unused, {os.path.getsize(a.out)} bytes')


if __name__ == '__main__':
    main()
