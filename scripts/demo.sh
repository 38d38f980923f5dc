#!/usr/bin/env bash
# The demo (`make demo`): a whole Infernet network on this machine, with real inference. It starts a relay, two
# providers serving the project's own tiny language model through llama.cpp, and a consumer node; submits a
# generation job; streams the tokens to the terminal as they arrive; shows usage, cost and timing; and shuts
# everything down. Everything runs on 127.0.0.1 with ports the OS picks, in a throw-away data directory.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/build/release/apps/infernet/infernet"
model=$(ls -t "$root"/build/models/infernet-tiny-*.gguf 2>/dev/null | head -1 || true)
if [ ! -x "$bin" ] || [ -z "$model" ]; then
  echo "demo: build first: make demo (or cmake --build --preset release --target infernet tiny_model)" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/infernet-demo-XXXXXX")
pids=()
stop_all() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap stop_all EXIT
bold() { printf '\n\033[1m%s\033[0m\n' "$*"; }

# Starts `infernet node` with its own data directory; waits for the line that says it is up and prints it.
# $1 name, $2 the line's pattern, the rest the node's arguments.
start_node() {
  local name=$1 ready=$2
  shift 2
  mkdir -p "$work/$name"
  INFERNET_DATA_DIR="$work/$name" "$bin" node --log-level warn "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  for _ in $(seq 1 200); do
    if grep -qE "$ready" "$work/$name.out"; then
      grep -E "$ready" "$work/$name.out" | head -1
      return 0
    fi
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then
      echo "demo: $name did not start:" >&2
      cat "$work/$name.err" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "demo: $name did not start within 20 s" >&2
  return 1
}

mkdir -p "$work/models"
cp "$model" "$work/models/infernet-tiny.gguf"

bold "1. A relay: signed Nostr events carry every message between consumers and providers"
start_node relay 'relay listening on' --relay --listen 127.0.0.1:0
relay=$(grep -oE 'ws://[^ ]+' "$work/relay.out" | head -1)

bold "2. Two providers, each serving every GGUF file in its models directory through llama.cpp"
echo "   model: infernet-tiny, a small llama trained by this project on the Apache-2.0 licence text"
for p in 1 2; do
  start_node "provider$p" '^provider npub1' --provider --set node.relays="$relay" --set provider.engine=llama \
    --set provider.models_dir="$work/models" --set provider.threads=1 --set provider.context=256 \
    --set provider.name="demo-provider-$p" --set node.heartbeat_seconds=2
done

bold "3. A consumer node: the job database and the API that clients use"
start_node consumer 'api listening on' --consumer --set node.relays="$relay" --api-listen 127.0.0.1:0 \
  --set node.heartbeat_seconds=2
api=$(grep -oE 'http://[^ ]+' "$work/consumer.out" | head -1)

for _ in $(seq 1 100); do
  n=$("$bin" providers --api "$api" --json 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).providers.filter(p=>p.alive).length)}catch{console.log(0)}})')
  [ "$n" = 2 ] && break
  sleep 0.2
done
bold "\$ infernet providers"
"$bin" providers --api "$api"

prompt='"Derivative Works" shall mean any work'
bold "\$ infernet submit --model infernet-tiny --prompt '$prompt' --max-tokens 120 --watch"
echo "   (the tokens stream from a provider, through the relay, as they are generated)"
echo
printf '\033[2m%s\033[0m' "$prompt"
"$bin" submit --api "$api" --model infernet-tiny --prompt "$prompt" --max-tokens 120 --watch 2>"$work/job-id"
echo
job=$(grep -oE '\b[0-9a-f]{32}\b' "$work/job-id" | head -1)

bold "\$ infernet status $job"
"$bin" status --api "$api" "$job" | sed '/^output:/,$d'

# Timing from the job's own history: when it was submitted, its first output and its end.
get_json() { node -e "fetch(process.argv[1]).then(r=>r.text()).then(t=>process.stdout.write(t))" "$1"; }
{
  get_json "$api/api/v1/jobs/$job"
  echo
  get_json "$api/api/v1/jobs/$job/events"
  echo
} | node -e '
  const [job, events] = require("fs").readFileSync(0, "utf8").trim().split("\n").map(JSON.parse);
  const first = events.events.find((e) => e.type === "progress");
  const end = events.events[events.events.length - 1];
  const ms = (t) => `${(t - job.created_at).toFixed(0)} ms`;
  console.log(`first token after: ${first ? ms(first.at) : "-"}`);
  console.log(`finished after:    ${ms(end.at)}`);
  const gen = (end.at - (first ? first.at : job.created_at)) / 1000;
  if (gen > 0) console.log(`decode:            ${(job.usage.output_tokens / gen).toFixed(0)} tokens/s end to end`);'

bold "5. The same network through the OpenAI-compatible API (docs/openai.md)"
# A text completion: the tiny model continues text; it was never taught to chat.
body='{"model":"infernet-tiny","prompt":"You may obtain a copy of the License at","max_tokens":40}'
echo "\$ curl $api/v1/completions -d '$body'"
node -e '
  fetch(process.argv[1] + "/v1/completions", { method: "POST", headers: { "content-type": "application/json" }, body: process.argv[2] })
    .then((r) => r.json()).then((a) => {
      console.log(`   ${a.object}: ${JSON.stringify(a.choices[0].text)}`);
      console.log(`   finish_reason ${a.choices[0].finish_reason}, ${a.usage.completion_tokens} tokens, ${a.infernet.cost_msat} msat, job ${a.infernet.job_id}`);
    });' "$api" "$body"

bold "The API is at $api"
echo "   REST: $api/api/v1/jobs   models: $api/api/v1/models   (docs/api.md)"
echo "   OpenAI: $api/v1 (docs/openai.md); SDK: sdk/js (infernet-sdk); keys: infernet apikey create --scope submit"
echo "   With your own GGUF files: infernet node --provider --set provider.engine=llama --set provider.models_dir=DIR"

bold "Shutting down"
