#!/usr/bin/env bash
# The main job: builds the tools, starts spalloc-server with its embedded
# simulated 24-board machine ("demo") on a free loopback port, and allocates
# boards from it with `spalloc`, printing the result.
#
#   scripts/demo.sh            # three boards
#   scripts/demo.sh 2 1        # any spalloc request: N, W H or X Y Z, plus options
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --locked -p spalloc-server -p spalloc-cli
bin=target/debug
log=$(mktemp)
"$bin/spalloc-server" --port 0 2>"$log" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -f "$log"' EXIT

# The server logs the address it bound ("... address=127.0.0.1:PORT").
port=""
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening.*address=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -n 1)
  [ -n "$port" ] && break
  sleep 0.05
done
if [ -z "$port" ]; then
  echo "spalloc-server did not start:" >&2
  cat "$log" >&2
  exit 1
fi

server_args=(--hostname 127.0.0.1 --port "$port")
echo "\$ spalloc-machine"
"$bin/spalloc-machine" "${server_args[@]}"
echo
[ $# -gt 0 ] || set -- 3
echo "\$ spalloc --owner demo $*"
# No input: the "press enter when done" prompt ends at once and the job is freed.
"$bin/spalloc" "${server_args[@]}" --owner demo "$@" </dev/null
echo
echo "\$ spalloc --owner demo $* -c 'echo ...'"
"$bin/spalloc" "${server_args[@]}" --owner demo "$@" \
  -c 'echo "job {id}: {w}x{h} chips, Ethernet chip at {hostname}; all boards in {ethernet_ips}:" && cat {ethernet_ips}' </dev/null
