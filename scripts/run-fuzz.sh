#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for SECONDS each, starting from the committed seed corpus in
# fuzz/corpus/<target>/ (copied, so new inputs stay in the build tree). Exits non-zero on the first crash.
set -euo pipefail
build_dir=${1:?usage: run-fuzz.sh BUILD_DIR SECONDS}
seconds=${2:-30}
root=$(cd "$(dirname "$0")/.." && pwd)
status=0
for target in event_parse nip44_decrypt relay_message; do
  bin="$build_dir/fuzz/fuzz_$target"
  work="$build_dir/fuzz/corpus-$target"
  mkdir -p "$work"
  cp -n "$root/fuzz/corpus/$target/"* "$work/" 2>/dev/null || true
  if "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$build_dir/fuzz/$target-" "$work" > "$build_dir/fuzz/$target.log" 2>&1; then
    echo "fuzz $target: ok ($(grep -m1 -oE 'stat::number_of_executed_units: *[0-9]+' "$build_dir/fuzz/$target.log" | grep -oE '[0-9]+$') runs in ${seconds}s)"
  else
    echo "fuzz $target: FAILED (see $build_dir/fuzz/$target.log)"
    tail -40 "$build_dir/fuzz/$target.log"
    status=1
  fi
done
exit $status
