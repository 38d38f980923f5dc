#!/usr/bin/env bash
# Jobs end to end with the fake engine: one relay and PROVIDERS provider processes (`infernet node`), and the
# consumer inside bench/jobs_bench.cpp; then the peer, a NIP-90 DVM flow on nostr-tools (bench/dvm_peer.mjs),
# through the same relay. Prints both, the ratios, and our figures against the goals.
#   bash bench/run-jobs.sh [JOBS] [WINDOW] [PROVIDERS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
jobs=${1:-3000}
window=${2:-300}
providers=${3:-10}
cmake --preset release >/dev/null
cmake --build --preset release --target infernet jobs_bench >/dev/null
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
for i in $(seq "$providers"); do
  INFERNET_DATA_DIR="$work/p$i" "$bin" node --provider --log-level warn --set node.relays="$url" \
    --set node.heartbeat_seconds=1 --set provider.slots=8 --set provider.queue=256 > "$work/p$i.log" 2>&1 &
done
for i in $(seq "$providers"); do wait_line "$work/p$i.log" 'provider npub1[a-z0-9]+' >/dev/null; done

echo "machine: $(nproc) cores; relay, $providers providers and the consumer share them"
build/release/bench/jobs_bench "$url" "$jobs" "$window" "$providers" > "$work/ours.json"
# The peer: the same flow as a NIP-90 DVM on nostr-tools (bench/dvm_peer.mjs), through the same relay; its
# providers stop before ours are asked to, so nobody competes.
kill $(jobs -p | tail -n "$providers") 2>/dev/null || true
node bench/dvm_peer.mjs "$url" "${PEER_JOBS:-1000}" 100 "$providers" > "$work/peer.json"
node bench/jobs_report.mjs "$work/ours.json" "$work/peer.json"
