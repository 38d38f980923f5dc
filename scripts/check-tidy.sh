#!/usr/bin/env bash
# Runs clang-tidy (.clang-tidy) over the project's own translation units, using the compile database of the
# build directory given as $1. Two files at a time: the machine has two cores.
set -uo pipefail
build_dir=${1:?usage: check-tidy.sh BUILD_DIR}
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files -co --exclude-standard -- 'src/*.cpp' 'apps/*.cpp' | grep -v '_test\.cpp$' | sort -u)
[ "${#files[@]}" -gt 0 ] || { echo "no sources found"; exit 1; }
out=$(printf '%s\n' "${files[@]}" | xargs -P 2 -n 1 clang-tidy -p "$build_dir" --quiet 2>&1)
rc=$?
printf '%s\n' "$out" | grep -v -E '^[0-9]+ warnings? generated\.$|^Suppressed [0-9]+ warnings|^Use -header-filter|^$' || true
if [ "$rc" -ne 0 ]; then
  echo "clang-tidy: findings above"
  exit 1
fi
echo "clang-tidy: ${#files[@]} files clean"
