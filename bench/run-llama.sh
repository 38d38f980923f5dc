#!/usr/bin/env bash
# Inference on the random ~110M-parameter q8_0 model (target bench_model), one job at a time, every side on
# the same GGUF file and the same thread count:
#   1. the llama engine called directly (bench/llama_engine_bench.cpp) beside llama.cpp's own llama-bench:
#      prefill and decode tokens/s;
#   2. the whole network on loopback (relay, one provider on the llama engine, consumer;
#      bench/llama_path_bench.mjs submits over REST and reads the WebSocket stream) beside the engine of step 1:
#      decode tokens/s and time to first token.
# The three take turns, ROUNDS times, REPS runs each per turn, so that a machine whose speed drifts (a shared
# VM) slows all of them alike; the network stays up throughout, its provider idle while the others run.
# Prints the tables with the ratios and the goals (bench/llama_report.mjs). Measurements, not tests.
#   bash bench/run-llama.sh [--threads N] [--rounds N] [--reps N] [--context N]
# Defaults: 2 threads, 4 rounds of 3 runs, context 2048 (the provider's default, provider.context). llama-bench
# sizes its context to each test (512 for -p 512, 256 for -n 128); --context 640 comes closest to that.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
threads=2
rounds=4
reps=3
context=2048  # tokens per job, the engine's and the provider's alike
while [ $# -gt 0 ]; do
  case "$1" in
    --threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --context) context=$2; shift 2 ;;
    *) echo "usage: bash bench/run-llama.sh [--threads N] [--rounds N] [--reps N] [--context N]" >&2; exit 2 ;;
  esac
done
prompt=512
gen=128
batch=512

cmake --preset release >/dev/null
cmake --build --preset release --target infernet bench_model llama_engine_bench >/dev/null
bin=build/release/apps/infernet/infernet
model=$(sed -n 's/^INFERNET_BENCH_MODEL:INTERNAL=//p' build/release/CMakeCache.txt)
# llama-bench from the pinned build (scripts/llama-cpp.sh), or the system's when the build uses that.
llama_bench=build/deps/llama.cpp/build/bin/llama-bench
[ -x "$llama_bench" ] || llama_bench=$(command -v llama-bench || true)
if [ -z "$llama_bench" ] || [ ! -f "$model" ]; then
  echo "run-llama.sh: need llama-bench ($llama_bench) and the bench model ($model)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load $(cut -d' ' -f1-3 /proc/loadavg)"

# The network: one relay, one provider serving only this model on a one-slot llama engine, one consumer.
. bench/network.sh
mkdir -p "$work/models"
ln -s "$(realpath "$model")" "$work/models/"
INFERNET_DATA_DIR="$work/relay" "$bin" node --relay --listen 127.0.0.1:0 --log-level warn > "$work/relay.log" 2>&1 &
url=$(wait_line "$work/relay.log" 'ws://[0-9.]+:[0-9]+')
# At level info the provider logs each result with its engine time, which llama_path_bench.mjs reads.
INFERNET_DATA_DIR="$work/provider" "$bin" node --provider --log-level info --set node.relays="$url" \
  --set provider.engine=llama --set provider.models_dir="$work/models" \
  --set provider.threads="$threads" --set provider.slots=1 --set provider.context="$context" \
  --set provider.batch="$batch" > "$work/provider.log" 2>&1 &
wait_line "$work/provider.log" 'provider npub1[a-z0-9]+' >/dev/null
INFERNET_DATA_DIR="$work/consumer" "$bin" node --consumer --api-listen 127.0.0.1:0 --log-level warn \
  --set node.relays="$url" > "$work/consumer.log" 2>&1 &
api=$(wait_line "$work/consumer.log" 'http://[0-9.]+:[0-9]+')

engine_run() {
  build/release/bench/llama_engine_bench "$model" --threads "$threads" --reps "$reps" --prompt-tokens "$prompt" \
    --gen-tokens "$gen" --context "$context" --batch "$batch" > "$work/engine-$1.json"
}
llama_bench_run() {  # the engine's settings: batch and micro-batch 512, flash attention off
  "$llama_bench" -m "$model" -t "$threads" -p "$prompt" -n "$gen" -b "$batch" -ub "$batch" -fa 0 -r "$reps" \
    -o json > "$work/llama-bench-$1.json" 2>"$work/llama-bench.log"
}
for round in $(seq "$rounds"); do
  # Ours and llama-bench swap places every round, so neither always runs at the same moment of a drift; the
  # network comes last. Each warms up first (the network's provider only in the first round).
  if [ $((round % 2)) = 1 ]; then engine_run "$round"; llama_bench_run "$round"; else llama_bench_run "$round"; engine_run "$round"; fi
  node bench/llama_path_bench.mjs "$api" "$work/engine-$round.json" "$reps" "$([ "$round" = 1 ] && echo 1 || echo 0)" \
    "$work/provider.log" > "$work/path-$round.json"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
node bench/llama_report.mjs "$work"
