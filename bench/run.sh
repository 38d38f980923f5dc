#!/usr/bin/env bash
# Builds the release preset and runs ours and the peer (nostr-tools) in one run; prints the ratios.
#   bash bench/run.sh            (after scripts/bootstrap.sh)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cmake --preset release >/dev/null
cmake --build --preset release --target nostr_bench >/dev/null
out="$root/build/release/bench"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); single thread"
"$out/nostr_bench" --benchmark_min_time=1 --benchmark_repetitions=3 --benchmark_report_aggregates_only=true --benchmark_format=json --benchmark_out="$out/ours.json" \
  --benchmark_out_format=json >/dev/null
node "$root/bench/nostr_tools_peer.mjs" > "$out/peer.json"
node "$root/bench/report.mjs" "$out/ours.json" "$out/peer.json"
