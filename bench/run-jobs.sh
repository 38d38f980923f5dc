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

. bench/network.sh
start_relay
start_fake_providers "$providers"

echo "machine: $(nproc) cores; relay, $providers providers and the consumer share them"
build/release/bench/jobs_bench "$url" "$jobs" "$window" "$providers" > "$work/ours.json"
# The peer: the same flow as a NIP-90 DVM on nostr-tools (bench/dvm_peer.mjs), through the same relay; its
# providers stop before ours are asked to, so nobody competes.
kill $(jobs -p | tail -n "$providers") 2>/dev/null || true
node bench/dvm_peer.mjs "$url" "${PEER_JOBS:-1000}" 100 "$providers" > "$work/peer.json"
node bench/jobs_report.mjs "$work/ours.json" "$work/peer.json"
