#!/usr/bin/env bash
# Builds and runs every test: the release build (unit, interop, clang-format, clang-tidy), the same suite under
# the dev preset (AddressSanitizer + UndefinedBehaviorSanitizer), and each fuzz target for a bounded time.
# Ends with one line: "N passed, N failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
fuzz_seconds=${INFERNET_FUZZ_SECONDS:-30}
passed=0
failed=0
jobs=$(nproc)

# Adds the counts from one ctest run's "N% tests passed, F tests failed out of T" line.
count_ctest() {
  local log=$1 line total fail
  line=$(grep -E 'tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
  if [ -z "$line" ]; then
    failed=$((failed + 1))
    echo "  (no ctest summary in $log)"
    return
  fi
  total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
  fail=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$line")
  passed=$((passed + total - fail))
  failed=$((failed + fail))
}

build() {
  local preset=$1
  echo "== build: $preset"
  if ! { cmake --preset "$preset" >/dev/null && cmake --build --preset "$preset" -j "$jobs"; } \
      > "build/$preset-build.log" 2>&1; then
    tail -40 "build/$preset-build.log"
    echo "build of preset $preset failed"
    return 1
  fi
}

mkdir -p build
for preset in release dev; do
  if build "$preset"; then
    echo "== test: $preset"
    ctest --preset "$preset" -j "$jobs" 2>&1 | tee "build/$preset-test.log" | grep -E 'Test +#|tests passed|\*\*\*' | grep -vE ' Passed ' || true
    count_ctest "build/$preset-test.log"
  else
    failed=$((failed + 1))
  fi
done

if build fuzz; then
  echo "== fuzz: ${fuzz_seconds}s per target"
  while read -r line; do
    echo "$line"
    case "$line" in
      *": ok "*) passed=$((passed + 1)) ;;
      "fuzz "*) failed=$((failed + 1)) ;;
    esac
  done < <(scripts/run-fuzz.sh "$root/build/fuzz" "$fuzz_seconds" 2>&1)
else
  failed=$((failed + 1))
fi

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
