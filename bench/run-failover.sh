#!/usr/bin/env bash
# Failover time: a provider killed with SIGKILL in the middle of an OpenAI stream, to the first resumed text
# on that stream; real processes (relay, consumer, fake-engine providers), the default heartbeat. Several
# runs; prints each, the median and the slowest against the goal (3 s). See bench/failover_bench.mjs.
#   bash bench/run-failover.sh [RUNS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cmake --preset release >/dev/null
cmake --build --preset release --target infernet >/dev/null
echo "machine: $(nproc) cores; relay, consumer and providers share them"
INFERNET_BIN=build/release/apps/infernet/infernet node bench/failover_bench.mjs "${1:-7}"
