#!/usr/bin/env bash
# The OpenAI streaming path against llama.cpp's llama-server, on the random ~110M-parameter q8_0 model (target
# bench_model), in one run: both serve the same GGUF file with the provider's default settings (threads one
# per core, context 2048, batch and micro-batch 512, flash attention off) and one slot, and the official
# `openai` npm client (bench/openai_bench.mjs) sends each the same greedy streaming request in turn:
#   1. llama-server (build/deps/llama.cpp/build/bin/llama-server) on 127.0.0.1, prompt cache off, since
#      Infernet's engine prefills every job's prompt afresh;
#   2. the whole network on loopback: a relay, one provider on the llama engine serving only this model, and a
#      consumer whose /v1 the client calls with an API key made by `infernet apikey create`.
# Prints the table with medians, p90, the ratios and the goal (bench/openai_report.mjs). A measurement, not
# a test.
#   bash bench/run-openai.sh [--api chat|text] [--rounds N] [--warmup N] [--threads N] [--max-tokens N]
#                            [--keep DIR]
# Defaults: chat (/v1/chat/completions), 20 rounds after 2 warm-up rounds, threads = cores (provider.threads
# 0), 128 tokens. --keep DIR keeps the raw results and the logs there.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
api=chat
rounds=20
warmup=2
threads=$(nproc)
max_tokens=128
keep=
usage="usage: bash bench/run-openai.sh [--api chat|text] [--rounds N] [--warmup N] [--threads N] [--max-tokens N] [--keep DIR]"
while [ $# -gt 0 ]; do
  case "$1" in
    --api) api=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --max-tokens) max_tokens=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
# The provider's defaults (docs/config.md), given to both sides explicitly.
context=2048
batch=512
flash_attn=false

cmake --preset release >/dev/null
cmake --build --preset release --target infernet >/dev/null
bin=build/release/apps/infernet/infernet
model=$(sed -n 's/^INFERNET_BENCH_MODEL:INTERNAL=//p' build/release/CMakeCache.txt)
# Made once (about 7 s); an existing file is kept even when the maker's sources are newer than it.
[ -f "$model" ] || cmake --build --preset release --target bench_model >/dev/null
# llama-server from the pinned build (scripts/llama-cpp.sh), or the system's when the build uses that.
llama_server=build/deps/llama.cpp/build/bin/llama-server
[ -x "$llama_server" ] || llama_server=$(command -v llama-server || true)
if [ -z "$llama_server" ] || [ ! -f "$model" ]; then
  echo "run-openai.sh: need llama-server ($llama_server) and the bench model ($model)" >&2
  exit 1
fi
name=$(basename "$model" .gguf)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT

. bench/network.sh
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# llama-server: one slot, the same threads for prompt and generation, no prompt cache (neither the slot's
# nor the RAM cache), so every request prefills its whole prompt as a provider's job does.
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
"$llama_server" -m "$model" --host 127.0.0.1 --port "$port" -t "$threads" -tb "$threads" -c "$context" \
  -b "$batch" -ub "$batch" -fa "$([ "$flash_attn" = true ] && echo on || echo off)" -np 1 --no-cache-prompt \
  -cram 0 --no-webui > "$work/llama-server.log" 2>&1 &
llama_url="http://127.0.0.1:$port"

# The network: one relay, one provider serving only this model on a one-slot llama engine, one consumer.
mkdir -p "$work/models"
ln -s "$(realpath "$model")" "$work/models/"
INFERNET_DATA_DIR="$work/relay" "$bin" node --relay --listen 127.0.0.1:0 --log-level warn > "$work/relay.log" 2>&1 &
url=$(wait_line "$work/relay.log" 'ws://[0-9.]+:[0-9]+')
# At level info the provider logs each result with its engine time, which openai_bench.mjs reads.
INFERNET_DATA_DIR="$work/provider" "$bin" node --provider --log-level info --set node.relays="$url" \
  --set provider.engine=llama --set provider.models_dir="$work/models" \
  --set provider.threads="$threads" --set provider.slots=1 --set provider.context="$context" \
  --set provider.batch="$batch" --set provider.flash_attn="$flash_attn" > "$work/provider.log" 2>&1 &
wait_line "$work/provider.log" 'provider npub1[a-z0-9]+' >/dev/null
INFERNET_DATA_DIR="$work/consumer" "$bin" node --consumer --api-listen 127.0.0.1:0 --log-level warn \
  --set node.relays="$url" > "$work/consumer.log" 2>&1 &
infernet_url=$(wait_line "$work/consumer.log" 'http://[0-9.]+:[0-9]+')
key=$("$bin" --data-dir "$work/consumer" apikey create --scope submit --name bench --json |
  node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).key))')

# Both ready: llama-server answers /health once its model is loaded; the consumer lists the model once the
# provider's announcement reached it.
for _ in $(seq 600); do
  curl -sf "$llama_url/health" >/dev/null 2>&1 &&
    curl -sf -H "authorization: Bearer $key" "$infernet_url/v1/models/$name" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf "$llama_url/health" >/dev/null || { echo "llama-server did not start: $(tail -20 "$work/llama-server.log")" >&2; exit 1; }
curl -sf -H "authorization: Bearer $key" "$infernet_url/v1/models/$name" >/dev/null ||
  { echo "the consumer does not list $name: $(cat "$work/provider.log" "$work/consumer.log")" >&2; exit 1; }

node bench/openai_bench.mjs --infernet "$infernet_url" --key "$key" --llama "$llama_url" --model "$name" \
  --api "$api" --rounds "$rounds" --warmup "$warmup" --max-tokens "$max_tokens" --provider-log "$work/provider.log" \
  > "$work/openai.json" 2>"$work/bench.log"
cat > "$work/setup.json" <<EOF
{"threads": $threads, "context": $context, "batch": $batch, "flash_attn": $flash_attn,
 "client": "$(node -p 'JSON.parse(require("fs").readFileSync("node_modules/openai/package.json")).version')",
 "machine": "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')",
 "load_before": "$load_before", "load_after": "$(cut -d' ' -f1-3 /proc/loadavg)"}
EOF
node bench/openai_report.mjs "$work"
if [ -n "$keep" ]; then
  mkdir -p "$keep"
  cp "$work"/*.json "$work"/*.log "$keep"/
fi
