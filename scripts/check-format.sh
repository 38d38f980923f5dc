#!/usr/bin/env bash
# Fails when any C++ file in the project differs from what clang-format (.clang-format) would write.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files -co --exclude-standard -- 'src/*.cpp' 'src/*.hpp' 'apps/*.cpp' 'apps/*.hpp' \
  'bench/*.cpp' 'fuzz/*.cpp' | sort -u)
[ "${#files[@]}" -gt 0 ] || { echo "no sources found"; exit 1; }
clang-format --dry-run --Werror "${files[@]}"
echo "clang-format: ${#files[@]} files clean"
