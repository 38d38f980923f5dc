# Sourced by the benchmark scripts: waiting for a process's ready line, and starting a relay and fake-engine
# providers from the release build. The caller sets $bin (the infernet binary) and $work (a scratch folder).

wait_line() {  # file pattern [tenths of a second] -> the first match; exits when it never comes
  for _ in $(seq "${3:-600}"); do
    m=$(grep -oE "$2" "$1" | head -1 || true)
    [ -n "$m" ] && { echo "$m"; return; }
    sleep 0.1
  done
  echo "did not start: $(cat "$1")" >&2
  exit 1
}

start_relay() {  # -> sets $url; a relay that takes events as fast as they come
  INFERNET_DATA_DIR="$work/relay" "$bin" node --relay --listen 127.0.0.1:0 --log-level warn \
    --set relay.max_events_per_second=1000000 > "$work/relay.log" 2>&1 &
  url=$(wait_line "$work/relay.log" 'ws://[0-9.]+:[0-9]+')
}

start_fake_providers() {  # N -> N fake-engine providers on $url, each ready before this returns
  for i in $(seq "$1"); do
    INFERNET_DATA_DIR="$work/p$i" "$bin" node --provider --log-level warn --set node.relays="$url" \
      --set node.heartbeat_seconds=1 --set provider.slots=8 --set provider.queue=256 > "$work/p$i.log" 2>&1 &
  done
  for i in $(seq "$1"); do wait_line "$work/p$i.log" 'provider npub1[a-z0-9]+' >/dev/null; done
}
