#!/usr/bin/env python3
# Writes the seed inputs of the fuzz harnesses into fuzz/seeds/<harness>/ from the project's real data: the tiny model
# fixtures (safetensors headers with their real names and dtypes, shrunk to a few elements; their config.json), the
# cached tokenizers (cut down to a few hundred tokens), the shipped chat templates, the tokenizer test texts and ids.
# `make fuzz-corpus` then minimizes them (-merge=1) into fuzz/corpus/<harness>/, which is what is checked in.
import glob, json, os, struct, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "fuzz", "seeds")
SIZE = {"F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2, "U16": 2,
        "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "I8": 1, "U8": 1, "BOOL": 1}


def put(harness, name, data):
    d = os.path.join(OUT, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def st_image(tensors, metadata=None, pad=8):
    """tensors: [(name, dtype, shape)]; laid out largest element first, header padded as the library does."""
    order = sorted(tensors, key=lambda t: -SIZE[t[1]])
    header, off, data = {}, 0, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dt, shape in order:
        n = SIZE[dt]
        for d in shape:
            n *= d
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        data += bytes((i * 37 + 11) & 0xFF for i in range(n))
        off += n
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((pad - len(h) % pad) % pad)
    return struct.pack("<Q", len(h)) + h + data


def st_header(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        return json.loads(f.read(n))


models = sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/models/*/model.safetensors")))

# safetensors: each fixture's tensors (names, dtypes, ranks) with every dimension cut to 1 or 2.
for p in models:
    name = os.path.basename(os.path.dirname(p))
    h = st_header(p)
    ts = [(k, v["dtype"], [min(d, 2) for d in v["shape"]]) for k, v in h.items() if k != "__metadata__"][:24]
    put("safetensors", name, st_image(ts, h.get("__metadata__", {"format": "pt"})))
put("safetensors", "empty", st_image([]))
put("safetensors", "scalar-and-empty", st_image([("s", "F32", []), ("e", "BF16", [0, 4]), ("b", "BOOL", [3])]))

# shard_index: weight maps over the fixtures' tensor names, split across shards.
for p in models[:3]:
    name = os.path.basename(os.path.dirname(p))
    names = sorted(k for k in st_header(p) if k != "__metadata__")[:40]
    wm = {k: "model-%05d-of-00002.safetensors" % (1 + i % 2) for i, k in enumerate(names)}
    put("shard_index", name, json.dumps({"metadata": {"total_size": 12345}, "weight_map": wm}, indent=2))
put("shard_index", "escape", json.dumps({"weight_map": {"a": "../x.safetensors", "b": "/abs", "c": "ok.safetensors"}}))

# config: the fixtures' config.json files as shipped.
for p in sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/models/*/config.json"))):
    put("config", os.path.basename(os.path.dirname(p)), open(p, "rb").read())


# gguf: small files in the layout llama.cpp writes (metadata, tensor infos, aligned data).
def gguf(kvs, tensors, align=32):
    def s(x):
        x = x.encode()
        return struct.pack("<Q", len(x)) + x

    def val(t, v):
        if t == 8:
            return s(v)
        if t == 9:
            et, items = v
            return struct.pack("<IQ", et, len(items)) + b"".join(val(et, i) for i in items)
        return struct.pack({0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<B", 10: "<Q",
                            11: "<q", 12: "<d"}[t], v)

    b = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for k, t, v in kvs:
        b += s(k) + struct.pack("<I", t) + val(t, v)
    off, blobs = 0, []
    for name, ne, ty, nbytes in tensors:
        b += s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne)
        b += struct.pack("<IQ", ty, off)
        blobs.append(nbytes)
        off = (off + nbytes + align - 1) // align * align
    b += b"\0" * ((align - len(b) % align) % align)
    for n in blobs:
        b += bytes((i * 13 + 5) & 0xFF for i in range(n))
        b += b"\0" * ((align - len(b) % align) % align)
    return b


vocab = ["a", "b", "ab", "<0x0A>", "Ġ", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"]
base_kv = [("general.architecture", 8, "deepseek2"), ("general.alignment", 4, 32),
           ("deepseek2.block_count", 4, 2), ("deepseek2.context_length", 4, 4096),
           ("deepseek2.embedding_length", 4, 64), ("deepseek2.attention.head_count", 4, 4),
           ("deepseek2.rope.freq_base", 6, 10000.0), ("deepseek2.attention.kv_lora_rank", 4, 32),
           ("tokenizer.ggml.model", 8, "gpt2"), ("tokenizer.ggml.pre", 8, "deepseek-v3"),
           ("tokenizer.ggml.tokens", 9, (8, vocab)), ("tokenizer.ggml.token_type", 9, (5, [1, 1, 1, 6, 1, 3, 3])),
           ("tokenizer.ggml.merges", 9, (8, ["a b"])), ("tokenizer.ggml.bos_token_id", 4, 5),
           ("tokenizer.ggml.add_bos_token", 7, 1), ("tokenizer.chat_template", 8, "{{ bos_token }}{% for m in messages %}{{ m.content }}{% endfor %}")]
put("gguf", "deepseek2-f32-q8", gguf(base_kv, [("token_embd.weight", [4, 3], 0, 48), ("blk.0.attn_q.weight", [32, 2], 8, 68),
                                              ("blk.0.ffn_down.weight", [256, 1], 12, 144), ("output_norm.weight", [4], 1, 8)]))
put("gguf", "vocab-only", gguf(base_kv, []))
put("gguf", "align-1", gguf([("general.alignment", 4, 1), ("x.u64", 10, 7), ("x.i64", 11, -7), ("x.f64", 12, 0.5),
                             ("x.arr", 9, (6, [1.0, 2.0]))], [("t", [3], 0, 12)], align=1))

# tokenizer_load: the cached tokenizers cut to their first 300 ids and the merges among them.
for tname in ("deepseek-v3", "qwen3", "llama3_1"):
    p = os.path.join(ROOT, ".cache", "tokenizer-" + tname, "tokenizer.json")
    if not os.path.exists(p):
        print("make_seeds: %s missing (run scripts/fetch_tokenizer.sh); skipped" % p)
        continue
    t = json.load(open(p, encoding="utf-8"))
    keep = {k: v for k, v in t["model"]["vocab"].items() if v < 300}
    merges = []
    for m in t["model"]["merges"]:
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        if a in keep and b in keep and a + b in keep:
            merges.append(m)
    t["model"]["vocab"], t["model"]["merges"] = keep, merges[:300]
    t["added_tokens"] = [dict(a, id=300 + i) for i, a in enumerate(t["added_tokens"][:12])]
    put("tokenizer_load", tname, json.dumps(t, ensure_ascii=False))

# tokenizer_encode: the tokenizer tests' texts; stream_decoder: their DeepSeek-V3 ids (3 bytes each, id + 8).
texts = json.load(open(os.path.join(ROOT, "tests/fixtures/tokenizer/corpus.json"), encoding="utf-8"))
for i, x in enumerate(texts[:80]):
    put("tokenizer_encode", "text-%03d" % i, x[:2000])
for i, line in enumerate(open(os.path.join(ROOT, "tests/fixtures/tokenizer/encode.jsonl"), encoding="utf-8")):
    if i >= 60:
        break
    ids = json.loads(line)["ids"][:400]
    put("stream_decoder", "ids-%03d" % i, b"".join(struct.pack("<I", d + 8)[:3] for d in ids))
put("stream_decoder", "ids-then-bytes", struct.pack("<I", 19923 + 8)[:3] + b"\xff\xff\xff" + "ä\xe4\xbd你".encode()[:5])

# chat_template: the shipped templates.
for p in sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/tokenizer/templates/*.jinja"))):
    put("chat_template", os.path.basename(p), open(p, "rb").read())

# openai: request bodies of both endpoints, with the optional parameters the server accepts.
bodies = [
    {"model": "m", "messages": [{"role": "user", "content": "Hi"}]},
    {"model": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}],
     "max_tokens": 16, "temperature": 0.2, "top_p": 0.9, "seed": 7, "stop": ["\n", "END"], "n": 2},
    {"model": "m", "stream": True, "stream_options": {"include_usage": True}, "logprobs": True, "top_logprobs": 3,
     "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]},
    {"model": "m", "messages": [{"role": "user", "content": "Weather?"},
                                {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function",
                                 "function": {"name": "w", "arguments": "{\"city\":\"Paris\"}"}}]},
                                {"role": "tool", "tool_call_id": "c1", "content": "21C"}],
     "tools": [{"type": "function", "function": {"name": "w", "description": "weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}],
     "tool_choice": "auto"},
    {"model": "m", "messages": [{"role": "user", "content": "json"}], "response_format": {"type": "json_object"}},
    {"model": "m", "messages": [{"role": "user", "content": "json"}], "response_format": {"type": "json_schema",
     "json_schema": {"name": "x", "strict": True, "schema": {"type": "object", "properties": {
         "a": {"type": "integer"}, "b": {"type": "array", "items": {"enum": ["x", "y"]}}}, "required": ["a", "b"],
         "additionalProperties": False}}}},
    {"model": "m", "prompt": "Once upon a time", "max_tokens": 8, "echo": True, "logprobs": 2},
    {"model": "m", "prompt": ["a", "b"], "n": 2, "stop": "x", "frequency_penalty": 0.5, "presence_penalty": -0.5},
    {"model": "m", "prompt": [1, 2, 3], "max_tokens": 4},
    {"model": "m", "messages": [{"role": "user", "content": "hi"}], "reasoning_effort": "low",
     "chat_template_kwargs": {"thinking": True}},
]
for i, b in enumerate(bodies):
    put("openai", "body-%02d" % i, json.dumps(b))
put("openai", "tool-calls-v3", "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>w\n```json\n{\"city\": \"P\"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>")
put("openai", "tool-calls-hermes", "<tool_call>\n{\"name\": \"w\", \"arguments\": {\"city\": \"P\"}}\n</tool_call>")
print("make_seeds: wrote", OUT)
