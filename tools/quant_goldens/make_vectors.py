#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Makes tests/fixtures/quant: test vectors for src/base/quant.cpp (ggml's weight formats and activation quantisers).

For every weight block format: random blocks (random bytes, with each f16 scale field set to a finite f16 of
moderate size; block 0 has scale 0, block 1 subnormal scales, block 2 negative ones) written to <TYPE>.blocks, and
their dequantisation written to <TYPE>.f32 (little-endian float32).

For the activation formats Q8_0 and Q8_K: float32 inputs (random rows, all-zero blocks, tiny, huge, negative-dominant,
exact .5 ties, equal-magnitude extremes) in <TYPE>_act.f32 and the expected blocks in <TYPE>_act.blocks
(Q8_0: 34-byte blocks, Q8_K: 292-byte blocks {f32 d; i8 q[256]; i16 bsums[16]}).

Where the expected values come from:
  * dequantisation: ggml's own dequantize_row_<type> from libggml-base.so (ctypes) when it loads - ggml's C code is
    the definition of the formats. Each vector is also dequantised by gguf-py's numpy `dequantize`; the script prints
    where the two agree bit for bit and where they differ. Without the library (--no-ggml), gguf-py's values are
    written instead. (With the library used to make the committed vectors, all formats agree bit for bit.)
  * Q8_0 activations: gguf-py's `quantize` (documented bit-exact with quantize_row_q8_0_ref), checked against
    ggml's quantize_row_q8_0_ref when the library loads.
  * Q8_K activations: gguf-py has no Q8_K quantiser; this script implements ggml's quantize_row_q8_K_ref in numpy
    float32 (q8_k_ref below), checked against ggml's quantize_row_q8_K_ref when the library loads. ggml leaves bsums
    of an all-zero block unwritten; here (and in quant.cpp) they are 0 (ggml is called on a zeroed buffer).

    LD_LIBRARY_PATH=/work/bench/llamacpp/build/bin /usr/bin/python3 tools/quant_goldens/make_vectors.py
"""
import argparse
import ctypes
import os
import sys

import numpy as np

LLAMA = "/work/bench/llamacpp"

# name: (ggml type id, block elements, block bytes, offsets of f16 scale fields); IQ1_M's scale is special.
FORMATS = {
    "Q4_0": (2, 32, 18, [0]),
    "Q4_1": (3, 32, 20, [0, 2]),
    "Q5_0": (6, 32, 22, [0]),
    "Q5_1": (7, 32, 24, [0, 2]),
    "Q8_0": (8, 32, 34, [0]),
    "Q2_K": (10, 256, 84, [80, 82]),
    "Q3_K": (11, 256, 110, [108]),
    "Q4_K": (12, 256, 144, [0, 2]),
    "Q5_K": (13, 256, 176, [0, 2]),
    "Q6_K": (14, 256, 210, [208]),
    "IQ2_XXS": (16, 256, 66, [0]),
    "IQ2_XS": (17, 256, 74, [0]),
    "IQ3_XXS": (18, 256, 98, [0]),
    "IQ1_S": (19, 256, 50, [0]),
    "IQ4_NL": (20, 32, 18, [0]),
    "IQ3_S": (21, 256, 110, [0]),
    "IQ2_S": (22, 256, 82, [0]),
    "IQ4_XS": (23, 256, 136, [0]),
    "IQ1_M": (29, 256, 56, None),
}
N_BLOCKS = {32: 64, 256: 32}  # fixture size: 8 KB / 32 KB of float32 per format


def scale_values(rng, n):
    """n f16 scales: moderate random values of either sign; block 0: 0, block 1: subnormal, block 2: negative."""
    mag = np.exp2(rng.uniform(-8.0, 1.0, n)).astype(np.float16)
    sign = np.where(rng.random(n) < 0.3, -1, 1).astype(np.float16)
    v = (mag * sign).astype(np.float16)
    v[0] = 0
    if n > 1:
        v[1] = np.uint16(0x0001 + rng.integers(0, 0x3ff)).view(np.float16)
    if n > 2:
        v[2] = -abs(v[2])
    return v


def make_blocks(name, rng):
    _, blk, nbytes, offs = FORMATS[name]
    n = N_BLOCKS[blk]
    b = rng.integers(0, 256, size=(n, nbytes), dtype=np.uint8)
    if name == "IQ1_M":
        # the f16 super-scale is the top nibble of each of the 4 u16 scale words (bytes 48..55), low nibble first
        bits = scale_values(rng, n).view(np.uint16)
        words = b[:, 48:56].copy().view("<u2")
        for k in range(4):
            words[:, k] = (words[:, k] & 0x0FFF) | (((bits >> (4 * k)) & 0xF) << 12)
        b[:, 48:56] = words.view(np.uint8)
    else:
        for off in offs:
            b[:, off:off + 2] = scale_values(rng, n).view(np.uint8).reshape(n, 2)
    return b


def load_ggml(path):
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        print(f"make_vectors: cannot load {path}: {e}", file=sys.stderr)
        return None
    return lib


def ggml_dequant(lib, name, blocks):
    _, blk, _, _ = FORMATS[name]
    n = blocks.shape[0] * blk
    fn = getattr(lib, "dequantize_row_" + name.lower().replace("_k", "_K"))
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    fn.restype = None
    src = np.ascontiguousarray(blocks)
    out = np.zeros(n, dtype=np.float32)
    fn(src.ctypes.data, out.ctypes.data, n)
    return out


def ggml_quant(lib, fn_name, x, block_bytes, blk):
    fn = getattr(lib, fn_name)
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    fn.restype = None
    x = np.ascontiguousarray(x, dtype=np.float32)
    out = np.zeros(x.size // blk * block_bytes, dtype=np.uint8)
    fn(x.ctypes.data, out.ctypes.data, x.size)
    return out


def bits_equal(a, b):
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def q8_k_ref(x):
    """ggml's quantize_row_q8_K_ref in numpy float32 arithmetic (one block of 256 at a time)."""
    out = bytearray()
    for blk in x.reshape(-1, 256):
        blk = blk.astype(np.float32)
        ax = np.abs(blk)
        amax = ax.max()
        if amax == 0:  # d = 0, q = 0; bsums: 0 (ggml leaves them unwritten)
            out += np.float32(0).tobytes() + bytes(256) + bytes(32)
            continue
        mx = blk[int(np.argmax(ax))]  # first element of largest magnitude, with its sign
        iscale = np.float32(-127.0) / mx
        t = (iscale * blk).astype(np.float32)
        # nearest_int: add 1.5 * 2^23, read the low mantissa bits (round half to even)
        v = ((t + np.float32(12582912.0)).astype(np.float32).view(np.int32) & 0x007FFFFF) - 0x00400000
        q = np.minimum(127, v).astype(np.int8)
        bsums = q.astype(np.int32).reshape(16, 16).sum(axis=1).astype(np.int16)
        d = np.float32(1.0) / iscale
        out += np.float32(d).tobytes() + q.tobytes() + bsums.astype("<i2").tobytes()
    return np.frombuffer(bytes(out), dtype=np.uint8)


def act_inputs(rng, nb, blk, huge):
    """nb blocks of float32 activations, one pattern per block (cycled)."""
    rows = []
    for i in range(nb):
        kind = i % 9
        if kind == 0:
            v = rng.standard_normal(blk)
        elif kind == 1:
            v = np.zeros(blk)
        elif kind == 2:
            v = rng.standard_normal(blk) * 1e-25  # tiny
        elif kind == 3:
            v = rng.standard_normal(blk) * huge  # huge
        elif kind == 4:  # negative-dominant: the largest magnitude is negative
            v = -np.abs(rng.standard_normal(blk)) * 3
            v[rng.integers(0, blk, blk // 4)] = np.abs(rng.standard_normal(blk // 4))
        elif kind == 5:  # exact ties: scale 1, values k + 0.5 (roundf: away from 0; nearest_int: to even)
            v = rng.integers(-126, 126, blk) + 0.5
            v[rng.integers(0, blk)] = 127.0 if i % 2 else -127.0
        elif kind == 6:  # equal magnitudes of both signs at the extreme
            v = rng.uniform(-1, 1, blk)
            v[3], v[7] = -2.0, 2.0
            if i % 2:
                v[3], v[7] = 2.0, -2.0
        elif kind == 7:  # mostly zeros with a few values
            v = np.zeros(blk)
            v[rng.integers(0, blk, 3)] = rng.standard_normal(3) * 10
        else:
            v = rng.uniform(-1, 1, blk) * 10 ** rng.uniform(-3, 3)
        rows.append(v.astype(np.float32))
    return np.concatenate(rows).astype(np.float32)


def write(path, data):
    with open(path, "wb") as f:
        f.write(np.ascontiguousarray(data).tobytes())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("gguf_py", nargs="?", default=f"{LLAMA}/src/gguf-py", help="gguf-py directory")
    ap.add_argument("--ggml-lib", default=f"{LLAMA}/build/bin/libggml-base.so")
    ap.add_argument("--no-ggml", action="store_true", help="do not use ggml's library (gguf-py values only)")
    ap.add_argument("--out", default="tests/fixtures/quant")
    ap.add_argument("--seed", type=int, default=20240611)
    a = ap.parse_args()

    sys.path.insert(0, a.gguf_py)
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, quants

    lib = None if a.no_ggml else load_ggml(a.ggml_lib)
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    report = []

    for name, (tid, blk, nbytes, _) in FORMATS.items():
        qt = GGMLQuantizationType[name]
        assert int(qt) == tid and GGML_QUANT_SIZES[qt] == (blk, nbytes), name
        blocks = make_blocks(name, rng)
        gg = quants.dequantize(blocks.reshape(-1), qt).astype(np.float32).reshape(-1)
        if lib is not None:
            ref = ggml_dequant(lib, name, blocks)
            same = bits_equal(ref, gg)
            diff = int(np.count_nonzero(ref.view(np.uint32) != gg.view(np.uint32)))
            report.append(f"{name:8s} {blocks.shape[0]:3d} blocks  gguf-py vs ggml: "
                          + ("bit-identical" if same else f"{diff} of {ref.size} values differ"))
            expected = ref
        else:
            report.append(f"{name:8s} {blocks.shape[0]:3d} blocks  from gguf-py (ggml library not used)")
            expected = gg
        assert np.all(np.isfinite(expected)), name
        write(os.path.join(a.out, f"{name}.blocks"), blocks)
        write(os.path.join(a.out, f"{name}.f32"), expected.astype("<f4"))

    # Q8_0 activations: gguf-py's quantiser (and ggml's when loaded)
    x = act_inputs(rng, 72, 32, huge=1e5)
    q = quants.quantize(x.reshape(1, -1), GGMLQuantizationType.Q8_0).reshape(-1)
    if lib is not None:
        r = ggml_quant(lib, "quantize_row_q8_0_ref", x, 34, 32)
        if not np.array_equal(r, q):
            sys.exit("make_vectors: gguf-py's Q8_0 quantize differs from ggml's quantize_row_q8_0_ref")
        report.append("Q8_0 act  72 blocks  gguf-py quantize vs ggml quantize_row_q8_0_ref: identical")
    write(os.path.join(a.out, "Q8_0_act.f32"), x.astype("<f4"))
    write(os.path.join(a.out, "Q8_0_act.blocks"), q)

    # Q8_K activations: numpy port of ggml's reference (and ggml's when loaded)
    x = act_inputs(rng, 27, 256, huge=1e30)
    q = q8_k_ref(x)
    if lib is not None:
        r = ggml_quant(lib, "quantize_row_q8_K_ref", x, 292, 256)
        if not np.array_equal(r, q):
            sys.exit("make_vectors: q8_k_ref differs from ggml's quantize_row_q8_K_ref")
        report.append("Q8_K act  27 blocks  numpy q8_k_ref vs ggml quantize_row_q8_K_ref: identical")
    write(os.path.join(a.out, "Q8_K_act.f32"), x.astype("<f4"))
    write(os.path.join(a.out, "Q8_K_act.blocks"), q)

    print("\n".join(report))


if __name__ == "__main__":
    main()
