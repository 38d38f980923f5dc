#!/usr/bin/env bash
# The main job, as far as Infernet goes today: make an identity, sign an event, verify it, and send an
# encrypted message, all with the real binary. Uses a throw-away data directory, never your ~/.infernet.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/build/release/apps/infernet/infernet"
export INFERNET_DATA_DIR
INFERNET_DATA_DIR=$(mktemp -d "${TMPDIR:-/tmp}/infernet-demo-XXXXXX")
trap 'rm -rf "$INFERNET_DATA_DIR"' EXIT
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step infernet key new
"$bin" key new

step infernet event sign --kind 1 --content "hello from Infernet" --tag t=infernet
event=$("$bin" event sign --kind 1 --content "hello from Infernet" --tag t=infernet)
echo "$event"

step 'infernet event verify  < event'
"$bin" event verify <<<"$event"

step "infernet event verify  < event with its content changed"
if "$bin" event verify <<<"${event/hello/HELLO}"; then echo "unexpected: tampered event verified"; exit 1; fi

me=$("$bin" key show --field npub)
step "infernet nip44 encrypt --to $me --message 'a job for you'"
payload=$("$bin" nip44 encrypt --to "$me" --message 'a job for you')
echo "$payload"
step "infernet nip44 decrypt --from $me  < payload"
"$bin" nip44 decrypt --from "$me" <<<"$payload"
echo
printf '\nDone. Run "%s --help" to see every command.\n' "$bin"
