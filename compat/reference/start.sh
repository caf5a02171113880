#!/usr/bin/env bash
# Starts the reference server on 127.0.0.1:PORT, with stand-in BMPs, in the background.
#   compat/reference/start.sh CONFIG PORT
# CONFIG is a reference (Python) server config; one fake_bmp.py process answers for every BMP it
# names (127.x.x.x only). Runs setup.sh first. Returns once the server answers `version`, after
# writing the two PIDs (fake BMPs, then server) to $SPALLOC_REF_HOME/run-PORT.pids for stop.sh.
# The server runs in $SPALLOC_REF_HOME/run-PORT/ (a copy of CONFIG, its state file and job log,
# server.log and bmp.log), always from a cold start. Environment:
#   SPALLOC_POWER_ON_SLEEP, SPALLOC_RETRY_SLEEP, SPALLOC_FAKE_VERSION   see launch_server.py
#   FAKE_BMP_ARGS        extra fake_bmp.py options (e.g. --quiet, --fail-power)
#   SPALLOC_SERVER_ARGS  extra server options (e.g. -q)
set -euo pipefail
kit=$(cd "$(dirname "$0")" && pwd)
[ $# = 2 ] || { echo "usage: $0 CONFIG PORT" >&2; exit 2; }
config=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
port=$2
home=${SPALLOC_REF_HOME:-/tmp/spalloc-ref}
"$kit/setup.sh"
python=$home/server/bin/python
pids=$home/run-$port.pids
run=$home/run-$port

running() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/^.*) //' "/proc/$1/stat" | cut -d' ' -f1)" != Z ]; }
answers() {  # answers PORT: a `version` request gets a reply
  python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1) as s:
    s.sendall(b'{"command": "version", "args": [], "kwargs": {}}\n')
    sys.exit(b'"return"' not in s.recv(4096))
PY
}

if [ -s "$pids" ]; then
  for pid in $(cat "$pids"); do
    running "$pid" && { echo "$0: already running on port $port (PID $pid); run stop.sh $port" >&2; exit 1; }
  done
fi
python3 -c 'import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))' "$port" 2>/dev/null ||
  { echo "$0: port $port is already in use" >&2; exit 1; }
mkdir -p "$run"
cp "$config" "$run/server.cfg"
cd "$run"
rm -f bmp.ready
# shellcheck disable=SC2086 # FAKE_BMP_ARGS is a list of options
"$python" "$kit/fake_bmp.py" --config server.cfg --ready-file bmp.ready ${FAKE_BMP_ARGS:-} > bmp.log 2>&1 &
bmp=$!
echo "$bmp" > "$pids"
# The server checks every BMP at start-up and gives up if one does not answer.
for _ in $(seq 200); do
  [ -e bmp.ready ] && break
  running "$bmp" || { echo "$0: the fake BMPs stopped: $(tail -n 3 bmp.log)" >&2; rm -f "$pids"; exit 1; }
  sleep 0.05
done
# shellcheck disable=SC2086 # SPALLOC_SERVER_ARGS is a list of options
"$python" "$kit/launch_server.py" server.cfg --port "$port" --cold-start ${SPALLOC_SERVER_ARGS:-} \
  > server.log 2>&1 &
server=$!
echo "$server" >> "$pids"
for _ in $(seq 300); do
  if answers "$port"; then
    echo "reference server on 127.0.0.1:$port: PID $server, fake BMPs PID $bmp (logs in $run)"
    exit 0
  fi
  running "$server" || break
  sleep 0.1
done
echo "$0: the reference server did not answer on port $port: $(tail -n 5 server.log)" >&2
"$kit/stop.sh" "$port"
exit 1
