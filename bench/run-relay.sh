#!/usr/bin/env bash
# Runs bench/relay_bench.cpp against our relay and against @nostr-relay/core (the peer) in one go, each on
# 127.0.0.1 with a fresh database, and prints both with the ratios.
#   bash bench/run-relay.sh [INGEST_EVENTS] [PEER_INGEST_EVENTS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
ours_n=${1:-40000}
peer_n=${2:-2000}
cmake --preset release >/dev/null
cmake --build --preset release --target infernet relay_bench >/dev/null
bin=build/release/apps/infernet/infernet
bench=build/release/bench/relay_bench
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

wait_url() {  # file pattern -> URL printed by a server
  for _ in $(seq 100); do
    url=$(grep -oE 'ws://[0-9.]+:[0-9]+' "$1" | head -1 || true)
    [ -n "$url" ] && { echo "$url"; return; }
    sleep 0.1
  done
  echo "server did not start: $(cat "$1")" >&2
  exit 1
}

INFERNET_DATA_DIR="$work/ours" "$bin" node --relay --listen 127.0.0.1:0 --database "$work/ours.db" \
  --log-level warn --set relay.max_events_per_second=1000000 > "$work/ours.log" 2>&1 &
ours_url=$(wait_url "$work/ours.log")
node tests/interop/peer_relay.mjs "$work/peer.db" 0 > "$work/peer.log" 2>&1 &
peer_url=$(wait_url "$work/peer.log")

echo "machine: $(nproc) cores; relay and load generator share them"
"$bench" "$ours_url" "$ours_n" 500 > "$work/ours.json"
"$bench" "$peer_url" "$peer_n" 100 > "$work/peer.json"
node bench/relay_report.mjs "$work/ours.json" "$work/peer.json"
