#!/usr/bin/python3
"""Golden listing of GGUF files, read by ggml's own Python reader (gguf-py, from the llama.cpp source that the npm
package node-llama-cpp bundles), for tests/io/gguf_test.cpp to compare deepseek.cpp's reader with.

usage: listing.py GGUF_PY_DIR OUT.json FILE.gguf...   (paths in OUT.json are relative to ../shared/fixtures/gguf)

Per file: version, alignment, data offset; per metadata key its gguf type name and, for scalars, the value (strings
by length and their first 48 bytes), for arrays the element type and length; per tensor the name, ggml type id,
ne (ggml order) and offset in the data section.
"""
import json, os, sys

sys.path.insert(0, sys.argv[1])
from gguf import GGUFReader, GGUFValueType  # noqa: E402

TYPE_NAMES = {GGUFValueType.UINT8: 'u8', GGUFValueType.INT8: 'i8', GGUFValueType.UINT16: 'u16',
              GGUFValueType.INT16: 'i16', GGUFValueType.UINT32: 'u32', GGUFValueType.INT32: 'i32',
              GGUFValueType.FLOAT32: 'f32', GGUFValueType.BOOL: 'bool', GGUFValueType.STRING: 'string',
              GGUFValueType.ARRAY: 'array', GGUFValueType.UINT64: 'u64', GGUFValueType.INT64: 'i64',
              GGUFValueType.FLOAT64: 'f64'}

out = {}
for path in sys.argv[3:]:
    r = GGUFReader(path)
    rel = os.path.relpath(path, os.path.join(os.path.dirname(__file__), '../../../shared/fixtures/gguf'))
    kv = {}
    for name, f in r.fields.items():
        if name.startswith('GGUF.'):
            continue
        t = f.types[0]
        e = {'type': TYPE_NAMES[t]}
        if t == GGUFValueType.ARRAY:
            e['elem'] = TYPE_NAMES[GGUFValueType(int(f.parts[3][0]))]  # raw element type (also for empty arrays)
            e['len'] = len(f.data)
        elif t == GGUFValueType.STRING:
            b = bytes(f.parts[f.data[0]])
            e['len'] = len(b)
            e['head'] = list(b[:48])  # the first bytes (as numbers: any byte sequence survives JSON)
        else:
            v = f.parts[f.data[0]][0]
            e['value'] = float(v) if t in (GGUFValueType.FLOAT32, GGUFValueType.FLOAT64) else int(v)
        kv[name] = e
    tensors = [{'name': t.name, 'type': int(t.tensor_type), 'ne': [int(x) for x in t.shape],
                'offset': int(t.data_offset - r.data_offset)} for t in r.tensors]
    out[rel] = {'version': int(r.fields['GGUF.version'].parts[-1][0]), 'alignment': int(r.alignment),
                'data_offset': int(r.data_offset), 'kv': kv, 'tensors': tensors}
json.dump(out, open(sys.argv[2], 'w'), indent=0, sort_keys=True)
print(f'{len(out)} files -> {sys.argv[2]}')
