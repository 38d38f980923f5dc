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

wait_line() {  # file pattern -> first match
  for _ in $(seq 200); do
    m=$(grep -oE "$2" "$1" | head -1 || true)
    [ -n "$m" ] && { echo "$m"; return; }
    sleep 0.1
  done
  echo "did not start: $(cat "$1")" >&2
  exit 1
}

INFERNET_DATA_DIR="$work/relay" "$bin" node --relay --listen 127.0.0.1:0 --log-level warn \
  --set relay.max_events_per_second=1000000 > "$work/relay.log" 2>&1 &
url=$(wait_line "$work/relay.log" 'ws://[0-9.]+:[0-9]+')
for i in $(seq "$real"); do
  INFERNET_DATA_DIR="$work/p$i" "$bin" node --provider --log-level warn --set node.relays="$url" \
    --set node.heartbeat_seconds=1 --set provider.slots=8 --set provider.queue=256 > "$work/p$i.log" 2>&1 &
done
for i in $(seq "$real"); do wait_line "$work/p$i.log" 'provider npub1[a-z0-9]+' >/dev/null; done

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
