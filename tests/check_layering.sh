#!/usr/bin/env bash
# Enforces the layer arrows of docs/ARCHITECTURE.md: every `#include "<layer>/..."` in src/<layer> must name an
# allowed layer, and CUDA headers appear only under src/backend/cuda. Exits non-zero on the first violation list.
set -u
cd "$(dirname "$0")/.."
declare -A allowed=(
  [base]="base"
  [dist]="base dist"
  [io]="base io"
  [tokenizer]="base io tokenizer"
  [ops]="base ops"
  [ops/ref]="base ops ops/ref"
  [backend/cpu]="base ops ops/ref backend/cpu"
  [backend/cuda]="base ops ops/ref dist backend/cuda"
  [model]="base io ops dist model"
  [runtime]="base io ops ops/ref backend/cpu backend/cuda dist tokenizer model runtime"
  [server]="base runtime tokenizer server"
)
bad=0
for layer in "${!allowed[@]}"; do
  [ -d "src/$layer" ] || continue
  # Files directly in this layer's folder (sub-layers such as ops/ref are checked on their own).
  while IFS= read -r line; do
    file=${line%%:*}
    inc=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"$line")
    dir=$(dirname "$inc")
    ok=0
    for a in ${allowed[$layer]}; do [ "$dir" = "$a" ] && ok=1; done
    [ "$dir" = "." ] && ok=1
    if [ $ok -eq 0 ]; then echo "layering: $file includes $inc (not allowed for layer $layer)"; bad=1; fi
  done < <(find "src/$layer" -maxdepth 1 -type f \( -name '*.h' -o -name '*.cpp' \) -print0 | xargs -0 -r grep -H '#include "' )
done
cuda=$(grep -rlE '#include\s*[<"](cuda|cublas|nccl)' src apps include 2>/dev/null | grep -v '^src/backend/cuda/' || true)
if [ -n "$cuda" ]; then echo "layering: CUDA headers outside src/backend/cuda: $cuda"; bad=1; fi
# apps see the runtime API (runtime/, its tokenizer types, include/deepseek), base, and the .npy format helpers;
# never model, ops or backends.
apps_bad=$(grep -rhoE '#include "[a-z_/]+\.h"' apps 2>/dev/null | grep -vE '"(deepseek|base|runtime|tokenizer|server|apps)/|"io/npy\.h"' || true)
if [ -n "$apps_bad" ]; then echo "layering: apps include internals: $apps_bad"; bad=1; fi
[ $bad -eq 0 ] && echo "layering: ok"
exit $bad
