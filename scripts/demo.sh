#!/usr/bin/env bash
# `make demo`: runs the engine on a bundled model. Until the built-in chat model exists, this is the tiny-v3 fixture
# (DeepSeek-V3 architecture, random weights, no tokenizer): it prints the model, then a greedy continuation of the
# fixture's prompt as token ids, and checks them against the Hugging Face reference continuation.
set -euo pipefail
DEEPSEEK=${1:-build/apps/deepseek/deepseek}
M=tests/fixtures/models/tiny-v3
echo "== deepseek info --model $M"
"$DEEPSEEK" info --model "$M"
echo
echo "== deepseek generate --model $M --tokens $M/tokens.npy -n 32 --greedy --precision f32"
out=$(mktemp --suffix .npy)
"$DEEPSEEK" generate --model "$M" --tokens "$M/tokens.npy" -n 32 --greedy --precision f32 --out-ids "$out" -v
echo
python3 - "$out" "$M/greedy.npy" <<'PY'
import sys, struct
def ids(p):
    b = open(p, 'rb').read(); hl = struct.unpack('<H', b[8:10])[0]; d = b[10 + hl:]
    return list(struct.unpack('<%dq' % (len(d) // 8), d))
a, r = ids(sys.argv[1]), ids(sys.argv[2])
print("continuation identical to the Hugging Face reference (greedy.npy)" if a == r else f"DIFFERS from greedy.npy: {a} vs {r}")
sys.exit(0 if a == r else 1)
PY
rm -f "$out"
