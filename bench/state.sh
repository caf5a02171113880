#!/usr/bin/env bash
# Durable state on against --no-state (and the Python reference, which keeps no state), in one run:
# job cycles on the small machine with synchronous = normal (the default) and full, 16 clients'
# get_job_state against the null server's CPU, and the 1,000-job queue on the 1,200-board machine.
#
#   bench/state.sh              # prints the table (BENCHMARKS.md's "Durable state on" section)
#   bench/state.sh RESULTS.jsonl   # called by bench/run.sh: appends results there, prints nothing
#
# BENCH_SERVER=PATH measures another build of our server (an older one, for before and after).
# Ports: $BENCH_STATE_PORT (default 23720) to +5. State files live in a temporary directory.
# The reference (for the queue) and the null server come from bench/tools and compat/reference
# when present, else from the kit in ${SPALLOC_REF_KIT:-../shared/ref}; without either, those rows
# are left out.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=$(mktemp -d /tmp/spalloc-bench-state.XXXXXX)
standalone=1
R=$out/results.jsonl
if [ $# -ge 1 ]; then R=$1; standalone=0; fi
P=${BENCH_STATE_PORT:-23720}
NOSTATE=$P STATE=$((P + 1)) FULL=$((P + 2)) NULLP=$((P + 3)) HUGE_NOSTATE=$((P + 4)) HUGE_STATE=$((P + 5))
REF_HUGE=$((P + 6))
SECS=${BENCH_STATE_SECONDS:-2}
QREP=${BENCH_STATE_QUEUE_REPEAT:-3}
kit=${SPALLOC_REF_KIT:-$root/../shared/ref}
export SPALLOC_REF_HOME=${SPALLOC_REF_HOME:-/tmp/spalloc-ref}

pids=()
ref_started=0
cleanup() {
  set +e
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  if [ $ref_started = 1 ]; then STOP_TIMEOUT=5 "$ref_stop" "$REF_HUGE" >/dev/null 2>&1; fi
  rm -rf "$out/state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say() { printf '\n== %s\n' "$*" >&2; }

# Tools: ours in bench/tools and compat/reference, else the kit's.
if [ -f bench/tools/queue_alloc.py ]; then queue_py=bench/tools/queue_alloc.py
elif [ -f "$kit/bench/queue_alloc.py" ]; then queue_py=$kit/bench/queue_alloc.py
else queue_py=""; fi
if [ -f bench/tools/null_server.c ]; then null_c=bench/tools/null_server.c
elif [ -f "$kit/bench/null_server.c" ]; then null_c=$kit/bench/null_server.c
else null_c=""; fi
if [ -x compat/reference/start.sh ]; then ref_start=compat/reference/start.sh ref_stop=compat/reference/stop.sh
elif [ -x "$kit/start-python-server.sh" ]; then ref_start=$kit/start-python-server.sh ref_stop=$kit/stop.sh
else ref_start=""; fi

if [ $standalone = 1 ]; then
  say "building (release)"
  cargo build --release -q -p spalloc-server -p spalloc-bench
fi
L=$root/target/release/spalloc-load
SERVER=${BENCH_SERVER:-$root/target/release/spalloc-server}
mkdir -p "$out/state"
(cat bench/machines/small-free0.toml; printf '\n[store]\nsynchronous = "full"\n') > "$out/small-full.toml"

# serve TOML PORT ARGS...: starts our server and waits for it; sets pid.
serve() {
  local toml=$1 port=$2
  shift 2
  "$SERVER" "$toml" --port "$port" --quiet "$@" 2>"$out/server-$port.log" &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 100); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "our server did not start on port $port" >&2; exit 1
}

say "durable state: job cycles on the small machine (--no-state, state on, state on with synchronous = full)"
serve bench/machines/small-free0.toml $NOSTATE --no-state; p_nostate=$pid
serve bench/machines/small-free0.toml $STATE --state "$out/state/small.sqlite"; p_state=$pid
serve "$out/small-full.toml" $FULL --state "$out/state/full.sqlite"; p_full=$pid
"$L" cycles 127.0.0.1 $NOSTATE --server-pid $p_nostate --label "no-state" --wait ready --seconds "$SECS" --repeat 3 >> "$R"
"$L" cycles 127.0.0.1 $STATE --server-pid $p_state --label "state" --wait ready --seconds "$SECS" --repeat 3 >> "$R"
"$L" cycles 127.0.0.1 $FULL --server-pid $p_full --label "state full" --wait ready --seconds "$SECS" --repeat 3 >> "$R"

say "durable state: 16 clients' get_job_state (server CPU per call against the null server)"
if [ -n "$null_c" ]; then
  cc -O2 -pthread -o "$out/null_server" "$null_c"
  "$out/null_server" "$NULLP" 60 >/dev/null 2>&1 & null_pid=$!; pids+=("$null_pid")
  sleep 0.2
  "$L" conc 127.0.0.1 "$NULLP" --server-pid $null_pid --command get-job-state --clients 16 --per-client 5000 --repeat 3 --label null >> "$R"
fi
for who in no-state state; do
  if [ $who = state ]; then port=$STATE p=$p_state; else port=$NOSTATE p=$p_nostate; fi
  "$L" conc 127.0.0.1 $port --server-pid $p --command get-job-state --clients 16 --per-client 5000 --repeat 3 --label "$who" >> "$R"
done

say "durable state: 1,000 jobs queued on the 1,200-board machine"
queue() {  # queue LABEL PORT PID
  [ -n "$queue_py" ] || return 0
  local args=()
  python3 "$queue_py" --help 2>/dev/null | grep -q -- --server-pid && args=(--server-pid "$3")
  python3 "$queue_py" 127.0.0.1 "$2" "${args[@]}" --jobs 1000 --repeat "$QREP" --json 2>/dev/null \
    | tail -n 1 | python3 -c "import json,sys; d=json.load(sys.stdin); d['label']='$1'; d['test']='queue'; print(json.dumps(d))" >> "$R"
}
serve bench/machines/huge.toml $HUGE_NOSTATE --no-state; queue "no-state" $HUGE_NOSTATE $pid
serve bench/machines/huge.toml $HUGE_STATE --state "$out/state/huge.sqlite"; queue "state" $HUGE_STATE $pid
# Called by bench/run.sh, the reference's queue figures are that run's; alone, measure them here.
if [ $standalone = 1 ] && [ -n "$ref_start" ]; then
  if [ -f bench/machines/huge.cfg ]; then
    cp bench/machines/huge.cfg "$out/ref-huge.cfg"
  else
    sed -e 's/W, H = 10, 10/W, H = 20, 20/' -e 's/big-machine/huge-machine/' \
        -e 's/127\.2\.0\.0/127.93.0.0/' "$kit/machines/big.cfg" > "$out/ref-huge.cfg"
    "$kit/setup.sh" >/dev/null
  fi
  SPALLOC_POWER_ON_SLEEP=0 FAKE_BMP_ARGS=--quiet "$ref_start" "$out/ref-huge.cfg" "$REF_HUGE" >&2
  ref_started=1
  queue "reference" $REF_HUGE "$(tail -n 1 "$SPALLOC_REF_HOME/run-$REF_HUGE.pids")"
fi

if [ $standalone = 1 ]; then
  python3 bench/report.py --state "$R"
  echo "(raw results in $R)" >&2
fi
