#!/usr/bin/env bash
# Two-way compatibility suite against the Python reference (compat/README.md):
#   0. SpiNNMan's v2 client against our REST API (compat/spinnman/run.sh; needs only PyPI);
#   1. the reference tools and `Job` class against our server;
#   2. our tools and library against the unmodified reference server (version 1!7.0.0);
#   3. a seeded random request sequence sent to both servers, answers compared.
# Installs the pinned reference from PyPI itself (compat/reference/setup.sh), builds our
# binaries, uses loopback only (127.0.0.1:$COMPAT_PORT_BASE+1..4, default 22341-22344), stops
# every server it started, and ends with a line "N passed, M failed"; exits 1 on any failure.
# Environment: COMPAT_SEEDS (default "1 2 3 4"), COMPAT_STEPS (default 60), COMPAT_PORT_BASE,
# SPALLOC_REF_HOME (the reference's venvs and run folders, default /tmp/spalloc-ref).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
here=$root/compat
ref=$here/reference
seeds=${COMPAT_SEEDS:-1 2 3 4}
steps=${COMPAT_STEPS:-60}
base=${COMPAT_PORT_BASE:-22340}
port_ours1=$((base + 1)) port_ref2=$((base + 2)) port_ref3=$((base + 3)) port_ours3=$((base + 4))
start=$(date +%s)

work=$(mktemp -d "${TMPDIR:-/tmp}/spalloc-compat.XXXXXX")
log=$work/results.log
: > "$log"
ours_pids=()
ref_ports=()

cleanup() {
  local pid port
  for pid in "${ours_pids[@]}"; do
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  done
  for port in "${ref_ports[@]}"; do
    "$ref/stop.sh" "$port" >/dev/null 2>&1
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

summary() {
  local passed failed
  passed=$(grep -c '^PASS ' "$log")
  failed=$(grep -c '^FAIL ' "$log")
  echo "== compatibility suite: $(($(date +%s) - start)) s; known reference bugs not exercised:"
  grep '^KNOWN ' "$log" | sed 's/^/   /'
  grep '^FAIL ' "$log" | sed 's/^/   /' | cut -c1-300
  echo "$passed passed, $failed failed"
  [ "$failed" = 0 ]
}
fatal() {  # fatal MESSAGE: a set-up failure counts as a failed check
  echo "FAIL setup: $1" | tee -a "$log" >&2
  summary
  exit 1
}
# step NAME CMD...: runs CMD, showing and recording its PASS/FAIL/KNOWN lines; a non-zero exit
# without any FAIL line of its own is recorded as a failure.
step() {
  local name=$1 out rc
  shift
  out=$work/step.out
  "$@" > "$out" 2>&1
  rc=$?
  cat "$out"
  grep -E '^(PASS|FAIL|KNOWN) ' "$out" >> "$log"
  if [ "$rc" != 0 ] && ! grep -q '^FAIL ' "$out"; then
    echo "FAIL $name: exited with status $rc" | tee -a "$log"
  fi
}

port_free() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
PY
}
wait_port() {  # wait_port PORT: until a `version` call answers (10 s)
  local i
  for i in $(seq 1 100); do
    python3 - "$1" 2>/dev/null <<'PY' && return 0
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b'{"command": "version", "args": [], "kwargs": {}}\n')
assert b'"return"' in s.recv(4096)
PY
    sleep 0.1
  done
  return 1
}
start_ours() {  # start_ours CONFIG PORT: sets ours_pid
  port_free "$2" 2>/dev/null || fatal "port $2 is already in use"
  "$bin/spalloc-server" "$1" --port "$2" --quiet --no-state > "$work/ours-$2.log" 2>&1 &
  ours_pid=$!
  ours_pids+=("$ours_pid")
  wait_port "$2" || fatal "our server did not start on port $2: $(tail -n 3 "$work/ours-$2.log")"
}
stop_ours() {
  kill "$1" 2>/dev/null && wait "$1" 2>/dev/null
  local keep=() pid
  for pid in "${ours_pids[@]}"; do [ "$pid" = "$1" ] || keep+=("$pid"); done
  ours_pids=("${keep[@]}")
}
start_ref() {  # start_ref CONFIG PORT (environment as for compat/reference/start.sh)
  ref_ports+=("$2")
  "$ref/start.sh" "$1" "$2" > "$work/ref-$2.start" 2>&1 ||
    fatal "the reference server did not start on port $2: $(cat "$work/ref-$2.start")"
}
stop_ref() {
  "$ref/stop.sh" "$1" >/dev/null 2>&1
  local keep=() port
  for port in "${ref_ports[@]}"; do [ "$port" = "$1" ] || keep+=("$port"); done
  ref_ports=("${keep[@]}")
}

version_of() {  # version_of PORT: the raw reply line to a `version` request
  python3 - "$1" <<'PY'
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as s:
    s.sendall(b'{"command": "version", "args": [], "kwargs": {}}\n')
    print(s.makefile().readline().strip())
PY
}

echo "== part 0: SpiNNMan's v2 client (spinnman 1!7.4.1) against our REST API over HTTPS"
step "spinnman client" bash "$here/spinnman/run.sh"

export SPALLOC_REF_HOME=${SPALLOC_REF_HOME:-/tmp/spalloc-ref}
export SPALLOC_POWER_ON_SLEEP=0 SPALLOC_RETRY_SLEEP=0 FAKE_BMP_ARGS=--quiet

echo "== the Python reference: compat/reference/setup.sh (venvs in $SPALLOC_REF_HOME)"
"$ref/setup.sh" || fatal "compat/reference/setup.sh failed"
refpy=$SPALLOC_REF_HOME/client/bin/python
echo "== cargo build --locked -p spalloc-server -p spalloc-cli"
cargo build --locked -p spalloc-server -p spalloc-cli || fatal "cargo build failed"
bin=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/debug
# Our library's scenario is an env-gated integration test: build it before any server starts.
cargo test --locked -p spalloc --test compat_reference --no-run > "$work/build-lib.log" 2>&1 ||
  fatal "building crates/spalloc/tests/compat_reference.rs failed: $(tail -n 20 "$work/build-lib.log")"

echo "== part 1: the reference client against our server (127.0.0.1:$port_ours1)"
start_ours "$here/machines/small.toml" "$port_ours1"
step "python tools" python3 "$here/tools_scenario.py" --impl python --tools "$SPALLOC_REF_HOME/client/bin" \
  --port "$port_ours1"
stop_ours "$ours_pid"
start_ours "$here/machines/small.toml" "$port_ours1"
step "python Job class" "$refpy" "$here/python_job.py" "$port_ours1"
stop_ours "$ours_pid"

echo "== part 2: our client against the unmodified reference server 1!7.0.0 (127.0.0.1:$port_ref2)"
SPALLOC_FAKE_VERSION="" start_ref "$here/machines/small.cfg" "$port_ref2"
version=$(version_of "$port_ref2")
if [[ "$version" == *'"1!7.0.0"'* ]]; then
  echo "PASS rust: the reference server reports its own version 1!7.0.0" | tee -a "$log"
else
  echo "FAIL rust: the reference server reports $version, not 1!7.0.0" | tee -a "$log"
fi
step "rust tools" python3 "$here/tools_scenario.py" --impl rust --tools "$bin" --port "$port_ref2"
stop_ref "$port_ref2"
SPALLOC_FAKE_VERSION="" start_ref "$here/machines/small.cfg" "$port_ref2"
SPALLOC_COMPAT_SERVER=127.0.0.1:$port_ref2 step "rust library" \
  cargo test --locked -q -p spalloc --test compat_reference -- --ignored --nocapture --test-threads 1
stop_ref "$port_ref2"

echo "== part 3: differential, seeds $seeds, $steps steps each (reference :$port_ref3, ours :$port_ours3)"
for seed in $seeds; do
  start_ref "$here/machines/diff.cfg" "$port_ref3"
  start_ours "$here/machines/diff.toml" "$port_ours3"
  step "differential seed $seed" python3 "$here/differential.py" "$port_ref3" "$port_ours3" "$seed" "$steps"
  stop_ours "$ours_pid"
  stop_ref "$port_ref3"
done

summary
