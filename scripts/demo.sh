#!/usr/bin/env bash
# `make demo`: the built-in tiny-R1 model (DeepSeek-V3 architecture, trained on arithmetic, models/tiny-r1) answers
# a few questions; the reasoning (inside <think>…</think>) is shown apart from the answer.
set -euo pipefail
DEEPSEEK=${1:-build/apps/deepseek/deepseek}
M=models/tiny-r1
echo "== deepseek info --model $M"
"$DEEPSEEK" info --model "$M"
for q in "What is 347+589?" "What is 4021-388?" "What is 123*45?"; do
  echo
  echo "== deepseek run --model $M \"$q\""
  "$DEEPSEEK" run --model "$M" "$q"
done
echo
echo "(deepseek run --model $M   with no message starts an interactive chat)"
