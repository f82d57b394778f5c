#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Makes tests/fixtures/quant/quantize: test vectors for src/base/quantize.cpp (fp32 -> ggml weight formats).

input.f32: ROWS rows of 256 float32 values (little-endian), one pattern per row (gaussian at several magnitudes,
heavy outliers, all zero, constant, all positive, all negative, f16-subnormal scales, bf16-rounded weights as in real
checkpoints, exact rounding ties, a single non-zero, near-zero groups inside a normal row).
<TYPE>.q: the whole input quantised by ggml itself (ctypes on libggml-base.so):
  Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K   quantize_row_<type>_ref (what llama-quantize runs without an
                                                   importance matrix: ggml_quantize_chunk -> quantize_<type> -> _ref)
  F16, BF16                                        ggml_fp32_to_fp16_row, ggml_fp32_to_bf16_row_ref (ggml_quantize_chunk's)
The script also checks that ggml_quantize_chunk (no imatrix) gives the same bytes as the _ref function.

    LD_LIBRARY_PATH=/work/bench/llamacpp/build/bin /usr/bin/python3 tools/quant_goldens/make_quantize_vectors.py
"""
import argparse
import ctypes
import os
import sys

import numpy as np

LLAMA = "/work/bench/llamacpp"
ROWS = 16
N = 256

# name: (ggml type id, block elements, block bytes, ggml function)
TYPES = {
    "Q8_0": (8, 32, 34, "quantize_row_q8_0_ref"),
    "Q4_0": (2, 32, 18, "quantize_row_q4_0_ref"),
    "Q4_1": (3, 32, 20, "quantize_row_q4_1_ref"),
    "Q5_0": (6, 32, 22, "quantize_row_q5_0_ref"),
    "Q5_1": (7, 32, 24, "quantize_row_q5_1_ref"),
    "Q4_K": (12, 256, 144, "quantize_row_q4_K_ref"),
    "Q5_K": (13, 256, 176, "quantize_row_q5_K_ref"),
    "Q6_K": (14, 256, 210, "quantize_row_q6_K_ref"),
    "F16": (1, 1, 2, "ggml_fp32_to_fp16_row"),
    "BF16": (30, 1, 2, "ggml_fp32_to_bf16_row_ref"),
}


def inputs(rng):
    rows = []
    for i in range(ROWS):
        k = i % ROWS
        if k == 0:
            v = rng.standard_normal(N) * 0.02  # a typical weight row
        elif k == 1:
            v = rng.standard_normal(N)
        elif k == 2:
            v = rng.standard_normal(N) * 300.0
        elif k == 3:  # outliers
            v = rng.standard_normal(N) * 0.01
            v[rng.integers(0, N, 6)] = rng.standard_normal(6) * 2.0
        elif k == 4:
            v = np.zeros(N)
        elif k == 5:
            v = np.full(N, 0.375)
        elif k == 6:
            v = rng.uniform(0.1, 1.0, N)  # all positive: min > 0 paths
        elif k == 7:
            v = -rng.uniform(0.0, 1.0, N)  # all negative
        elif k == 8:
            v = rng.standard_normal(N) * 1e-6  # f16-subnormal scales
        elif k == 9:  # bf16-rounded weights (what bf16 checkpoints hold)
            f = (rng.standard_normal(N) * 0.05).astype(np.float32)
            b = f.view(np.uint32)
            b = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) << 16
            v = b.astype(np.uint32).view(np.float32)
        elif k == 10:  # exact ties on the Q8_0 / Q4_0 grids
            v = (rng.integers(-16, 16, N) + 0.5) / 16.0
            v[::32] = 2.0
        elif k == 11:  # a single non-zero per 32
            v = np.zeros(N)
            v[rng.integers(0, 32) + np.arange(0, N, 32)] = rng.standard_normal(N // 32)
        elif k == 12:  # zero groups inside a normal row (skipped K-quant groups)
            v = rng.standard_normal(N) * 0.1
            v[32:64] = 0
            v[160:176] = 0
        elif k == 13:  # mixed magnitudes across groups
            v = rng.standard_normal(N) * np.repeat(10.0 ** rng.uniform(-4, 1, N // 16), 16)
        elif k == 14:  # skewed: large positive mean
            v = rng.standard_normal(N) * 0.1 + 1.5
        else:  # heavy tails
            v = rng.standard_t(2, N) * 0.05
        rows.append(np.asarray(v, dtype=np.float32))
    return np.concatenate(rows).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ggml-lib", default=f"{LLAMA}/build/bin/libggml-base.so")
    ap.add_argument("--out", default="tests/fixtures/quant/quantize")
    ap.add_argument("--seed", type=int, default=20250314)
    a = ap.parse_args()

    lib = ctypes.CDLL(a.ggml_lib)
    chunk = lib.ggml_quantize_chunk
    chunk.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
                      ctypes.c_void_p]
    chunk.restype = ctypes.c_size_t

    os.makedirs(a.out, exist_ok=True)
    x = inputs(np.random.default_rng(a.seed))
    assert x.size == ROWS * N and np.all(np.isfinite(x))
    with open(os.path.join(a.out, "input.f32"), "wb") as f:
        f.write(x.astype("<f4").tobytes())

    for name, (tid, blk, nbytes, fn_name) in TYPES.items():
        fn = getattr(lib, fn_name)
        fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        fn.restype = None
        out = np.zeros(x.size // blk * nbytes, dtype=np.uint8)
        fn(x.ctypes.data, out.ctypes.data, x.size)
        via_chunk = np.zeros_like(out)
        chunk(tid, x.ctypes.data, via_chunk.ctypes.data, 0, ROWS, N, None)
        if not np.array_equal(out, via_chunk):
            sys.exit(f"make_quantize_vectors: {name}: ggml_quantize_chunk differs from {fn_name}")
        with open(os.path.join(a.out, f"{name}.q"), "wb") as f:
            f.write(out.tobytes())
        print(f"{name:5s} {out.size:6d} bytes  {fn_name} (= ggml_quantize_chunk without imatrix)")


if __name__ == "__main__":
    main()
