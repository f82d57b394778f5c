#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generates src/base/quant_tables.inc: the lookup tables that define ggml's i-quant formats.

The tables (grids of the IQ2/IQ3/IQ1 formats, the sign and mask tables, the IQ4_NL values, the IQ1 delta) are read
from ggml's ggml-common.h, where they are C initialisers, and checked against gguf-py's quants.py, which stores the
same tables in its own encoding (hex-packed grid indices + a value map). Any disagreement is an error.

    /usr/bin/python3 tools/quant_goldens/gen_tables.py \
        --ggml-common /work/bench/llamacpp/src/ggml/src/ggml-common.h \
        --gguf-py /work/bench/llamacpp/src/gguf-py \
        --out src/base/quant_tables.inc
"""
import argparse
import re
import sys

LLAMA = "/work/bench/llamacpp/src"

# (name in ggml-common.h, C element type, expected length)
TABLES = [
    ("kmask_iq2xs", "uint8_t", 8),
    ("ksigns_iq2xs", "uint8_t", 128),
    ("iq2xxs_grid", "uint64_t", 256),
    ("iq2xs_grid", "uint64_t", 512),
    ("iq2s_grid", "uint64_t", 1024),
    ("iq3xxs_grid", "uint32_t", 256),
    ("iq3s_grid", "uint32_t", 512),
    ("kvalues_iq4nl", "int8_t", 16),
    ("iq1s_grid", "uint64_t", 2048),
]
DEFINES = ["IQ1S_DELTA", "IQ1M_DELTA"]


def parse_common(text):
    tables = {}
    for m in re.finditer(r"GGML_TABLE_BEGIN\(\s*(\w+)\s*,\s*(\w+)\s*,\s*(\w+)\s*\)(.*?)GGML_TABLE_END\(\)", text, re.S):
        ctype, name, _, body = m.groups()
        body = re.sub(r"//[^\n]*", "", body)
        vals = [int(v, 0) for v in re.findall(r"-?(?:0x[0-9a-fA-F]+|\d+)", body)]
        tables[name] = (ctype, vals)
    defines = {}
    for name in DEFINES:
        m = re.search(r"#define\s+%s\s+([0-9.]+)f?\b" % name, text)
        if not m:
            sys.exit(f"gen_tables: {name} not found in ggml-common.h")
        defines[name] = m.group(1)
    return tables, defines


def check_against_gguf(tables, defines, gguf_py):
    sys.path.insert(0, gguf_py)
    import numpy as np
    from gguf import quants

    def grid_bytes(name, width, signed=False):
        vals = tables[name][1]
        out = []
        for v in vals:
            v &= (1 << (8 * width)) - 1
            row = [(v >> (8 * j)) & 0xFF for j in range(width)]
            if signed:
                row = [b - 256 if b >= 128 else b for b in row]
            out.append(row)
        return np.array(out, dtype=np.float32)

    checks = [
        (quants.IQ2_XXS, "iq2xxs_grid", 8, False),
        (quants.IQ2_XS, "iq2xs_grid", 8, False),
        (quants.IQ2_S, "iq2s_grid", 8, False),
        (quants.IQ3_XXS, "iq3xxs_grid", 4, False),
        (quants.IQ3_S, "iq3s_grid", 4, False),
        (quants.IQ1_S, "iq1s_grid", 8, True),
    ]
    for cls, name, width, signed in checks:
        cls.init_grid()
        ours = grid_bytes(name, width, signed)
        theirs = np.asarray(cls.grid).reshape(ours.shape)
        if not np.array_equal(ours, theirs):
            sys.exit(f"gen_tables: {name} differs between ggml-common.h and gguf-py")
    if bytes(tables["ksigns_iq2xs"][1]) != quants.IQ2_XXS.ksigns:
        sys.exit("gen_tables: ksigns_iq2xs differs between ggml-common.h and gguf-py")
    if tuple(tables["kvalues_iq4nl"][1]) != tuple(quants.IQ4_NL.kvalues):
        sys.exit("gen_tables: kvalues_iq4nl differs between ggml-common.h and gguf-py")
    if tables["kmask_iq2xs"][1] != [1 << i for i in range(8)]:
        sys.exit("gen_tables: kmask_iq2xs is not the 8 single-bit masks")
    if float(defines["IQ1S_DELTA"]) != float(quants.IQ1_S.delta) or float(defines["IQ1M_DELTA"]) != float(quants.IQ1_M.delta):
        sys.exit("gen_tables: IQ1 delta differs between ggml-common.h and gguf-py")


def emit(tables, defines):
    cname = {
        "kmask_iq2xs": "kKmaskIq2xs", "ksigns_iq2xs": "kKsignsIq2xs", "iq2xxs_grid": "kIq2xxsGrid",
        "iq2xs_grid": "kIq2xsGrid", "iq2s_grid": "kIq2sGrid", "iq3xxs_grid": "kIq3xxsGrid",
        "iq3s_grid": "kIq3sGrid", "kvalues_iq4nl": "kValuesIq4nl", "iq1s_grid": "kIq1sGrid",
    }
    lines = [
        "// SPDX-License-Identifier: MIT",
        "// GENERATED FILE - do not edit. Made by tools/quant_goldens/gen_tables.py from ggml's ggml-common.h (checked",
        "// against gguf-py's quants.py):",
        "//   /usr/bin/python3 tools/quant_goldens/gen_tables.py --ggml-common <llama.cpp>/ggml/src/ggml-common.h",
        "//       --gguf-py <llama.cpp>/gguf-py --out src/base/quant_tables.inc",
        "// The lookup tables that define ggml's i-quant formats. Grid entries pack their 8 (or 4) byte values little-endian:",
        "// element j of entry g is byte j of g (ggml reads them through a uint8_t / int8_t pointer).",
        "// Included by src/base/quant.cpp inside its anonymous namespace.",
        "",
    ]
    for name, ctype, n in TABLES:
        t, vals = tables[name]
        assert t == ctype and len(vals) == n, (name, t, len(vals))
        per = {"uint8_t": 16, "int8_t": 16, "uint32_t": 8, "uint64_t": 4}[ctype]
        lines.append(f"constexpr {ctype} {cname[name]}[{n}] = {{")
        for i in range(0, n, per):
            chunk = vals[i:i + per]
            if ctype == "uint64_t":
                s = ", ".join(f"0x{v & 0xFFFFFFFFFFFFFFFF:016x}ull" for v in chunk)
            elif ctype == "uint32_t":
                s = ", ".join(f"0x{v:08x}u" for v in chunk)
            else:
                s = ", ".join(f"{v}" for v in chunk)
            lines.append(f"    {s},")
        lines.append("};")
    for name in DEFINES:
        cn = {"IQ1S_DELTA": "kIq1sDelta", "IQ1M_DELTA": "kIq1mDelta"}[name]
        lines.append(f"constexpr float {cn} = {defines[name]}f;")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ggml-common", default=f"{LLAMA}/ggml/src/ggml-common.h")
    ap.add_argument("--gguf-py", default=f"{LLAMA}/gguf-py")
    ap.add_argument("--out", default="src/base/quant_tables.inc")
    a = ap.parse_args()
    with open(a.ggml_common) as f:
        tables, defines = parse_common(f.read())
    for name, ctype, n in TABLES:
        if name not in tables:
            sys.exit(f"gen_tables: table {name} not found in {a.ggml_common}")
    check_against_gguf(tables, defines, a.gguf_py)
    with open(a.out, "w") as f:
        f.write(emit(tables, defines))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
