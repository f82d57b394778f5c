# SPDX-License-Identifier: MIT
"""Minimal safetensors reader/writer (F32, BF16, F8_E4M3 read) for torch without the safetensors package."""
import json
import struct

import numpy as np
import torch

_DT = {"F32": (torch.float32, 4), "BF16": (torch.bfloat16, 2), "F8_E4M3": (None, 1), "I64": (torch.int64, 8)}


def _e4m3_table():
    t = np.zeros(256, np.float32)
    for b in range(256):
        s, e, m = b >> 7, (b >> 3) & 15, b & 7
        if e == 15 and m == 7:
            v = float("nan")
        elif e == 0:
            v = m / 8 * 2.0 ** -6
        else:
            v = (1 + m / 8) * 2.0 ** (e - 7)
        t[b] = -v if s else v
    return torch.from_numpy(t)


def load(path):
    """name -> tensor (fp8 returned as float32 values, unscaled)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        blob = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = blob[b:e]
        dt = info["dtype"]
        if dt == "BF16":
            t = torch.from_numpy(np.frombuffer(raw, np.int16).copy()).view(torch.bfloat16)
        elif dt == "F32":
            t = torch.from_numpy(np.frombuffer(raw, np.float32).copy())
        elif dt == "F8_E4M3":
            t = _e4m3_table()[torch.from_numpy(np.frombuffer(raw, np.uint8).astype(np.int64))]
        else:
            raise ValueError(f"{path}: {name}: dtype {dt} not supported here")
        out[name] = t.reshape(info["shape"])
    return out


def save(tensors, path, metadata=None):
    """tensors: name -> torch tensor (bf16 or f32), written in sorted name order."""
    header, chunks, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        if t.dtype == torch.bfloat16:
            raw, dt = t.view(torch.int16).numpy().tobytes(), "BF16"
        elif t.dtype == torch.float32:
            raw, dt = t.numpy().tobytes(), "F32"
        else:
            raise ValueError(f"{name}: dtype {t.dtype} not supported")
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        chunks.append(raw)
        off += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)
