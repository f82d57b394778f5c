#!/usr/bin/env bash
# FP8 against bf16 decode, interleaved pairs on the V2-Lite 8-layer shape (random weights), for docs/BENCHMARKS.md.
# usage: scripts/fp8_pairs.sh [DEEPSEEK_BIN] [PAIRS]   (MEMBW=path/to/a read probe, optional: run before each pair)
set -euo pipefail
DS=${1:-build/apps/deepseek/deepseek}
N=${2:-4}
for i in $(seq 1 "$N"); do
  bw=-
  if [ -n "${MEMBW:-}" ]; then bw=$(OMP_NUM_THREADS=2 "$MEMBW" 1024 2>&1 | tail -1); fi
  echo "pair $i: $bw"
  for d in bf16 fp8; do
    echo "  $d: $("$DS" bench --config configs/deepseek-v2-lite-v3vocab.json --random-weights --layers 8 --dtype $d \
      -t 2 --prompt 128 --gen 64 2>&1 | grep -E '^decode')"
  done
done
