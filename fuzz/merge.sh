#!/usr/bin/env bash
# Rebuilds the checked-in corpora: for each harness, the minimal set of inputs (libFuzzer -merge=1) that keeps the
# coverage of fuzz/corpus/<name>, the seeds from fuzz/make_seeds.py, and OUT/corpus/<name> (a long run's finds).
# Usage: fuzz/merge.sh BUILD OUT [harness...]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=$1 OUT=$2
shift 2
ALL=(safetensors shard_index config gguf tokenizer_load tokenizer_encode stream_decoder chat_template openai)
python3 fuzz/make_seeds.py "$OUT/seeds"
for n in "${@:-${ALL[@]}}"; do
  mkdir -p "fuzz/corpus/$n" "$OUT/corpus/$n" "$OUT/seeds/$n"
  tmp="fuzz/corpus/.$n.new"
  rm -rf "$tmp" && mkdir -p "$tmp"
  "$BUILD/fuzz/fuzz_$n" -merge=1 -timeout=10 -rss_limit_mb=2048 "$tmp" "fuzz/corpus/$n" "$OUT/seeds/$n" \
    "$OUT/corpus/$n" >"$OUT/$n.merge.log" 2>&1
  rm -rf "fuzz/corpus/$n"
  mv "$tmp" "fuzz/corpus/$n"
  echo "fuzz-merge: $n: $(ls "fuzz/corpus/$n" | wc -l) inputs, $(du -sh "fuzz/corpus/$n" | cut -f1)"
done
