#!/usr/bin/env bash
# Side by side on one GGUF file: deepseek bench and llama.cpp's llama-bench, same threads, interleaved round by round,
# the file warm in page cache. deepseek runs once per --precision given (default: fast q8).
# usage: vs_llama_gguf.sh ROUNDS DEEPSEEK_BIN LLAMA_BIN_DIR FILE.gguf [PRECISION...]
#   LLAMA_BIN_DIR: from ../shared/peer_llamacpp/build_native.sh (llama-bench; its shared libraries beside it), or
#   node:DIR for the node-llama-cpp prebuilt through DIR/bench.mjs (../shared/peer_llamacpp/README.md, "install")
set -euo pipefail
R=$1; DS=$2; LB=$3; G=$4; shift 4
PRECS=("$@"); [ ${#PRECS[@]} -gt 0 ] || PRECS=(fast q8)
# Warm the file (read every page once).
python3 -c "import sys,os
fd=os.open(sys.argv[1],os.O_RDONLY)
while os.read(fd,1<<24): pass" "$G"
for r in $(seq "$R"); do
  line="round $r:"
  for p in "${PRECS[@]}"; do
    pp=$("$DS" bench --model "$G" -t 2 --prompt 512 --gen 1 --precision "$p" 2>&1 | grep -oP 'prefill .*?: \K[0-9.]+')
    out=$("$DS" bench --model "$G" -t 2 --prompt 1 --gen 64 --precision "$p" 2>&1)
    tg=$(echo "$out" | grep -oP 'decode .*?: \K[0-9.]+(?= tok/s)')
    bw=$(echo "$out" | grep -oP 'memory read \K[0-9.]+')
    pct=$(echo "$out" | grep -oP '= \K[0-9.]+(?=% of read)')
    line="$line deepseek($p) pp512 $pp tg64 $tg ($pct% of $bw GB/s) |"
  done
  if [[ $LB == node:* ]]; then
    l=$(cd "${LB#node:}" && node bench.mjs "$G" 2 512 64 1 2>&1 | tail -1)
    lpp=$(echo "$l" | grep -oP '"pp512_tok_s":\{"mean":\K[0-9.]+')
    ltg=$(echo "$l" | grep -oP '"tg64_tok_s":\{"mean":\K[0-9.]+')
    echo "$line llama.cpp (node-llama-cpp prebuilt) pp512 $lpp tg64 $ltg"
  else
    l=$(LD_LIBRARY_PATH=$LB "$LB/llama-bench" -m "$G" -t 2 -p 512 -n 64 -r 1 2>&1)
    lpp=$(echo "$l" | grep pp512 | grep -oP '\|\s+\K[0-9.]+(?= ±)')
    ltg=$(echo "$l" | grep tg64 | grep -oP '\|\s+\K[0-9.]+(?= ±)')
    echo "$line llama.cpp pp512 $lpp tg64 $ltg"
  fi
done
