#!/usr/bin/env bash
# Installs what building and testing Infernet needs, and nothing else: Debian packages with apt-get (only the
# missing ones), the npm test tools pinned in package-lock.json (npm ci, only when the lockfile changed) and
# llama.cpp (scripts/llama-cpp.sh: from the system, or built from pinned source once).
# Safe to run again and again.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

packages=(
  # toolchain
  cmake ninja-build g++ clang clang-format clang-tidy libclang-rt-14-dev ccache pkg-config git
  # libraries
  libsecp256k1-dev libssl-dev libexpected-dev libfmt-dev libspdlog-dev libboost1.81-dev libboost-json1.81-dev
  libtomlplusplus-dev libcli11-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
)

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from elsewhere than Debian (a newer build); only install Debian's when none is on PATH.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "bootstrap: Debian packages present"
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
  echo "bootstrap: Node.js $node_major is too old for the interop tests (need 18 or later)" >&2
  exit 1
fi

cd "$root"
stamp=node_modules/.infernet-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "bootstrap: npm test tools present"
else
  echo "bootstrap: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

# llama.cpp: the system's, or the pinned source from npm built into build/deps (scripts/llama-cpp.sh).
"$root/scripts/llama-cpp.sh"
