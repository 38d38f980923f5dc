#!/usr/bin/env bash
# Matching and dispatch with 200 providers on a real relay: one relay process, REAL `infernet node --provider`
# processes (the fake engine) and the load generator's announcements up to TOTAL, with the consumer inside
# bench/market_bench.cpp. Prints the figures and the ratios to the goals (>= 2000 matches/s, dispatch p50 < 5 ms).
#   bash bench/run-market.sh [REAL] [TOTAL] [DISPATCHES]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
real=${1:-3}
total=${2:-200}
dispatches=${3:-300}
cmake --preset release >/dev/null
cmake --build --preset release --target infernet market_bench >/dev/null
bin=build/release/apps/infernet/infernet
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

. bench/network.sh
start_relay
start_fake_providers "$real"

echo "machine: $(nproc) cores; relay, $real providers and the consumer share them; $total providers announced"
build/release/bench/market_bench "$url" "$real" "$total" "$dispatches" | tee "$work/market.json"
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
const f = (x) => x.toFixed(2);
console.log(`matching, pure market over ${r.providers} providers: ${Math.round(r.pure_matches_per_second)}/s`);
console.log(`matching, consumer path (estimate): ${Math.round(r.consumer_matches_per_second)}/s = ${f(r.matches_vs_goal)}x the goal of 2000/s`);
console.log(`dispatch (submit -> request published): p50 ${f(r.dispatch_p50_ms)} ms, p99 ${f(r.dispatch_p99_ms)} ms; goal p50 < 5 ms: ${f(r.dispatch_p50_vs_goal)}x`);
console.log(`completed ${r.completed} of ${r.dispatches} dispatched jobs (p50 ${f(r.completed_p50_ms)} ms end to end)`);
' "$work/market.json"
