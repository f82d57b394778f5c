# SPDX-License-Identifier: MIT
"""A small byte-level BPE tokenizer in the Hugging Face `tokenizers` JSON format, with DeepSeek's special tokens.

The pre-tokenizer is DeepSeek-V3's, except that numbers split into single digits (so arithmetic works digit by
digit). Encoding here mirrors `tokenizers` exactly for what it is used on (the pre-tokenizer regexes run through the
`regex` module, which shares their syntax).
"""
import collections
import json

import regex

DIGITS = r"\p{N}"
CJK = "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+"
WORDS = (r"[!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+|"
         r" ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# DeepSeek-R1's added tokens (text, special). Ids 0..2 as in DeepSeek; the rest follow the learned vocabulary.
HEAD_SPECIALS = [("<｜begin▁of▁sentence｜>", True), ("<｜end▁of▁sentence｜>", True), ("<｜▁pad▁｜>", True)]
TAIL_SPECIALS = [("<think>", False), ("</think>", False), ("<｜User｜>", False), ("<｜Assistant｜>", False),
                 ("<｜tool▁calls▁begin｜>", False), ("<｜tool▁calls▁end｜>", False),
                 ("<｜tool▁call▁begin｜>", False), ("<｜tool▁call▁end｜>", False),
                 ("<｜tool▁outputs▁begin｜>", False), ("<｜tool▁outputs▁end｜>", False),
                 ("<｜tool▁output▁begin｜>", False), ("<｜tool▁output▁end｜>", False), ("<｜tool▁sep｜>", False)]


def byte_map():
    """GPT-2's reversible byte -> printable unicode map used by ByteLevel."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


BYTE_MAP = byte_map()
_SPLITS = [regex.compile(DIGITS), regex.compile(CJK), regex.compile(WORDS)]


def _isolate(pat, pieces):
    out = []
    for p in pieces:
        pos = 0
        for m in pat.finditer(p):
            if m.start() > pos:
                out.append(p[pos:m.start()])
            if m.end() > m.start():
                out.append(m.group())
            pos = m.end()
        if pos < len(p):
            out.append(p[pos:])
    return out


def pretokenize(text):
    pieces = [text]
    for pat in _SPLITS:
        pieces = _isolate(pat, pieces)
    return ["".join(BYTE_MAP[b] for b in p.encode("utf-8")) for p in pieces]


def train(texts, vocab_limit):
    """Learns merges until the vocabulary (bytes + merges + specials) reaches vocab_limit or no pair repeats."""
    words = collections.Counter()
    for t in texts:
        words.update(pretokenize(t))
    seqs = {w: list(w) for w in words}
    merges = []
    budget = vocab_limit - 256 - len(HEAD_SPECIALS) - len(TAIL_SPECIALS)
    while len(merges) < budget:
        pairs = collections.Counter()
        for w, n in words.items():
            s = seqs[w]
            for a, b in zip(s, s[1:]):
                pairs[(a, b)] += n
        if not pairs:
            break
        (a, b), n = max(pairs.items(), key=lambda kv: (kv[1], kv[0]))
        if n < 2:
            break
        merges.append((a, b))
        for w, s in seqs.items():
            i, out = 0, []
            while i < len(s):
                if i + 1 < len(s) and s[i] == a and s[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(s[i])
                    i += 1
            seqs[w] = out
    return merges


class Tokenizer:
    def __init__(self, merges):
        self.merges = merges
        self.rank = {m: i for i, m in enumerate(merges)}
        vocab = [t for t, _ in HEAD_SPECIALS] + [BYTE_MAP[b] for b in range(256)] + [a + b for a, b in merges]
        vocab += [t for t, _ in TAIL_SPECIALS]
        self.id_to_token = vocab
        self.vocab = {t: i for i, t in enumerate(vocab)}
        self.specials = {t: self.vocab[t] for t, _ in HEAD_SPECIALS + TAIL_SPECIALS}
        self._special_re = regex.compile("|".join(regex.escape(t) for t, _ in HEAD_SPECIALS + TAIL_SPECIALS))
        self._cache = {}
        self._inv_bytes = {c: b for b, c in BYTE_MAP.items()}

    def _bpe(self, piece):
        if piece in self._cache:
            return self._cache[piece]
        s = list(piece)
        while len(s) > 1:
            best = min(range(len(s) - 1), key=lambda i: self.rank.get((s[i], s[i + 1]), 1 << 30))
            if (s[best], s[best + 1]) not in self.rank:
                break
            s = s[:best] + [s[best] + s[best + 1]] + s[best + 2:]
        ids = [self.vocab[t] for t in s]
        self._cache[piece] = ids
        return ids

    def encode(self, text):
        """Special-token text is matched as the special token (HF's default for added tokens)."""
        ids, pos = [], 0
        for m in self._special_re.finditer(text):
            for p in pretokenize(text[pos:m.start()]):
                ids += self._bpe(p)
            ids.append(self.specials[m.group()])
            pos = m.end()
        for p in pretokenize(text[pos:]):
            ids += self._bpe(p)
        return ids

    def decode(self, ids):
        out, buf = [], bytearray()
        for i in ids:
            t = self.id_to_token[i]
            if t in self.specials:
                out.append(buf.decode("utf-8", "replace"))
                buf = bytearray()
                out.append(t)
            else:
                buf += bytes(self._inv_bytes[c] for c in t)
        out.append(buf.decode("utf-8", "replace"))
        return "".join(out)

    def __len__(self):
        return len(self.id_to_token)

    def to_json(self):
        added = [{"id": self.vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
                  "normalized": not special, "special": special} for t, special in HEAD_SPECIALS + TAIL_SPECIALS]
        split = lambda pat: {"type": "Split", "pattern": {"Regex": pat}, "behavior": "Isolated", "invert": False}
        bpe_vocab = {t: i for i, t in enumerate(self.id_to_token) if t not in self.specials}
        return {
            "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
            "normalizer": {"type": "Sequence", "normalizers": []},
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                split(DIGITS), split(CJK), split(WORDS),
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
            "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                      "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                      "vocab": bpe_vocab, "merges": [f"{a} {b}" for a, b in self.merges]},
        }


def tokenizer_config(chat_template, model_max_length):
    tok = lambda t: {"__type": "AddedToken", "content": t, "lstrip": False, "normalized": True, "rstrip": False,
                     "single_word": False}
    return {"add_bos_token": True, "add_eos_token": False, "bos_token": tok("<｜begin▁of▁sentence｜>"),
            "clean_up_tokenization_spaces": False, "eos_token": tok("<｜end▁of▁sentence｜>"), "legacy": True,
            "model_max_length": model_max_length, "pad_token": tok("<｜end▁of▁sentence｜>"), "sp_model_kwargs": {},
            "unk_token": None, "tokenizer_class": "LlamaTokenizerFast", "chat_template": chat_template}


def save(tok, out_dir, chat_template, model_max_length):
    with open(f"{out_dir}/tokenizer.json", "w", encoding="utf-8") as f:
        json.dump(tok.to_json(), f, ensure_ascii=False, indent=1)
    with open(f"{out_dir}/tokenizer_config.json", "w", encoding="utf-8") as f:
        json.dump(tokenizer_config(chat_template, model_max_length), f, ensure_ascii=False, indent=2)


def load(folder):
    """The Tokenizer of a saved tokenizer.json (merges in order)."""
    with open(f"{folder}/tokenizer.json", encoding="utf-8") as f:
        j = json.load(f)
    return Tokenizer([tuple(m.split(" ")) for m in j["model"]["merges"]])
