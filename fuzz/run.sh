#!/usr/bin/env bash
# Runs the libFuzzer harnesses of BUILD/fuzz for SECONDS each, JOBS at a time, starting from the checked-in corpus
# (fuzz/corpus/<name>, read only) and keeping what they discover in OUT/corpus/<name> (scratch; `make fuzz-merge`
# folds it back, minimized). A crash, UB report, timeout (-timeout=10 s per input) or memory blow-up (-rss_limit_mb)
# fails the run; its input is saved as OUT/<name>-crash-* (reproduce: BUILD/fuzz/fuzz_<name> that-file).
# Usage: fuzz/run.sh BUILD SECONDS OUT [harness...]   (default: every harness)
# FUZZ_JOBS: harnesses run at once (default: the cores); FUZZ_RUNS: also stop a harness after this many executions
# (the documented long runs use FUZZ_RUNS=10000000 with a SECONDS large enough to reach it).
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=$1 SECONDS_EACH=$2 OUT=$3
shift 3
ALL=(safetensors shard_index config gguf tokenizer_load tokenizer_encode stream_decoder chat_template openai)
NAMES=("${@:-${ALL[@]}}")
JOBS=${FUZZ_JOBS:-$(nproc)}
# Longest input per harness: enough for the seeds' structure, small enough to keep executions fast (tokenizer_encode:
# with 8 KiB texts its corpus drifted to long inputs and ASan runs fell to ~1,000 per second; long texts are
# tokenizer_hostile's job; chat_template at 16 KiB fell below 700 per second).
declare -A MAXLEN=([safetensors]=65536 [shard_index]=16384 [config]=8192 [gguf]=65536 [tokenizer_load]=65536
                   [tokenizer_encode]=1024 [stream_decoder]=4096 [chat_template]=4096 [openai]=16384)
declare -A DICT=([safetensors]=json [shard_index]=json [config]=json [gguf]=gguf [tokenizer_load]=tokenizer
                 [tokenizer_encode]=tokenizer [stream_decoder]= [chat_template]=jinja [openai]=openai)
mkdir -p "$OUT"

one() {
  local n=$1 bin="$BUILD/fuzz/fuzz_$1"
  mkdir -p "$OUT/corpus/$n"
  local dict=()
  [ -n "${DICT[$n]}" ] && dict=(-dict="fuzz/dict/${DICT[$n]}.dict")
  local runs=() t0=$EPOCHSECONDS
  [ -n "${FUZZ_RUNS:-}" ] && runs=(-runs="$FUZZ_RUNS")
  "$bin" "$OUT/corpus/$n" "fuzz/corpus/$n" "${dict[@]}" -max_total_time="$SECONDS_EACH" "${runs[@]}" -timeout=10 \
    -rss_limit_mb=2048 -max_len="${MAXLEN[$n]}" -artifact_prefix="$OUT/$n-" -print_final_stats=1 \
    >"$OUT/$n.log" 2>&1
  local rc=$?
  local execs
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$OUT/$n.log" | tail -1 | grep -o '[0-9]*$')
  printf '%-17s rc=%-3s executions=%-10s seconds=%s\n' "$n" "$rc" "${execs:-?}" "$((EPOCHSECONDS - t0))" | tee -a "$OUT/summary"
  if [ $rc -ne 0 ]; then
    echo "fuzz: $n FAILED (rc $rc); last lines of $OUT/$n.log:" >&2
    tail -30 "$OUT/$n.log" >&2
  fi
  return $rc
}

: >"$OUT/summary"
fail=0
running=0
for n in "${NAMES[@]}"; do
  [ -x "$BUILD/fuzz/fuzz_$n" ] || { echo "fuzz: $BUILD/fuzz/fuzz_$n not built" >&2; exit 2; }
  one "$n" &
  running=$((running + 1))
  if [ $running -ge "$JOBS" ]; then
    wait -n || fail=1
    running=$((running - 1))
  fi
done
while [ $running -gt 0 ]; do
  wait -n || fail=1
  running=$((running - 1))
done
echo "fuzz: summary in $OUT/summary"
exit $fail
