#!/usr/bin/env bash
# Makes llama.cpp available to the build: the system's if CMake can find one (a `llama` CMake package),
# otherwise the pinned source that the npm package node-llama-cpp ships (llama/gitRelease.bundle, a git bundle
# of llama.cpp), built into build/deps/llama.cpp. Only the parts the project uses are built: the static
# library, llama-server (the proxy engine's tests and the API benchmark) and llama-bench (the engine
# benchmark). Safe to run again: a finished build is kept until the pin changes.
#
# Build flags, chosen by measurement (docs/engines.md): Release, static, GGML_NATIVE=ON (the CPU's own
# instruction set: faster single-thread decode here), OpenMP threads, no network code (no OpenSSL, no
# downloaded web UI).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# The pin: node-llama-cpp's version and the npm registry's integrity hash of its tarball.
version=3.22.1
integrity=sha512-bltIipuWmc123H7tMIgDGKSsSrhmhlQYeVUC48XTjVW7XGJJiJJyCdlTMzQ/LiWoPkGDpcL4FviDpgw7qfTiDw==

# CMake's package search leaves a CMakeFiles folder behind: run it in a scratch directory.
probe=$(mktemp -d)
if [ "${INFERNET_LLAMA_FROM_SYSTEM:-auto}" != "no" ] && (cd "$probe" && cmake --find-package -DNAME=llama \
    -DCOMPILER_ID=GNU -DLANGUAGE=CXX -DMODE=EXIST >/dev/null 2>&1); then
  rm -rf "$probe"
  echo "llama.cpp: using the system's"
  exit 0
fi
rm -rf "$probe"

gpu=()
# The CUDA backend (layers then offload to the GPU) is built where CUDA's compiler is present and a GPU is
# seen, or when INFERNET_LLAMA_CUDA=on; compiling its kernels takes long, so never on a machine without a GPU
# unless asked.
cuda=${INFERNET_LLAMA_CUDA:-auto}
if [ "$cuda" = auto ]; then
  cuda=off
  if command -v nvcc >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then cuda=on; fi
fi
if [ "$cuda" = on ]; then gpu=(-DGGML_CUDA=ON); else gpu=(-DGGML_CUDA=OFF); fi

deps=build/deps
dir=$deps/llama.cpp
stamp=$dir/.built-$version-cuda-$cuda
if [ -f "$stamp" ]; then
  echo "llama.cpp: built from node-llama-cpp $version"
  exit 0
fi

mkdir -p "$deps"
tarball=$deps/node-llama-cpp-$version.tgz
if [ ! -f "$tarball" ]; then
  echo "llama.cpp: fetching node-llama-cpp $version from npm"
  (cd "$deps" && npm pack --silent "node-llama-cpp@$version" >/dev/null)
fi
got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$got" != "$integrity" ]; then
  rm -f "$tarball"
  echo "llama.cpp: node-llama-cpp-$version.tgz does not match its pinned integrity hash" >&2
  exit 1
fi

rm -rf "$dir"
mkdir -p "$dir"
tar -xzf "$tarball" -C "$dir" package/llama/gitRelease.bundle
git clone --quiet "$dir/package/llama/gitRelease.bundle" "$dir/src" 2>/dev/null
rm -rf "$dir/package"



echo "llama.cpp: building (library, llama-server, llama-bench; a few minutes on 2 cores)"
log=$dir/build.log
if ! { cmake -S "$dir/src" -B "$dir/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
      -DGGML_NATIVE=ON -DGGML_CCACHE=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
      -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_COMMON=ON \
      -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF "${gpu[@]}" &&
    cmake --build "$dir/build" --target llama ggml llama-server llama-bench; } >"$log" 2>&1; then
  tail -30 "$log" >&2
  echo "llama.cpp: build failed (log: $log)" >&2
  exit 1
fi
touch "$stamp"
echo "llama.cpp: built from node-llama-cpp $version"
