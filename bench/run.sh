#!/usr/bin/env bash
# Side-by-side benchmarks: our server and tools against the Python reference, in one run on this
# machine, both driven by the same load generators. Writes the table to stdout and BENCHMARKS.md.
#
#   bench/run.sh            # about 4-5 minutes
#   bench/run.sh --quick    # fewer repeats, a smoke test (~2 minutes); does not touch BENCHMARKS.md
#   bench/state.sh          # only the durable-state comparison (section 7), ~1 minute
#   bench/v2_tools.sh       # only the tools over v2 beside legacy (section 10), ~1 minute
#
# Runs the Python reference with compat/reference/ (setup.sh installs it from PyPI into venvs in
# $SPALLOC_REF_HOME, default /tmp/spalloc-ref) on bench/machines/*.cfg; the load generators are
# spalloc-load (crate spalloc-bench) and bench/tools/. Needs python3 and cc. Loopback addresses
# only. Ports: $BENCH_PORT (default 23710) to $BENCH_PORT+9, and +20, +21 (bench/web_load.sh), +30 to +33 (bench/v2_tools.sh).
# The reference gets its own BMP IPs (127.0.91.0 and 127.93.x.x) so that it does not collide
# with other reference servers.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
quick=0
[ "${1:-}" = "--quick" ] && quick=1
ref=$root/compat/reference
tools=$root/bench/tools
export SPALLOC_REF_HOME=${SPALLOC_REF_HOME:-/tmp/spalloc-ref}
C=$SPALLOC_REF_HOME/client/bin
P=${BENCH_PORT:-23710}
REF_SMALL=$P OURS_SMALL=$((P + 1)) ECHO=$((P + 2)) REF_HUGE=$((P + 3)) OURS_HUGE=$((P + 4)) NULLP=$((P + 5))
out=$(mktemp -d /tmp/spalloc-bench.XXXXXX)
R=$out/results.jsonl
: > "$R"
if [ $quick = 1 ]; then REP=1 SECS=1 RUNS=5 QREP=1; else REP=5 SECS=2 RUNS=20 QREP=3; fi

say() { printf '\n== %s\n' "$*" >&2; }
ours_pids=()
cleanup() {
  set +e
  for pid in "${ours_pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  STOP_TIMEOUT=5 "$ref/stop.sh" "$REF_SMALL" >/dev/null 2>&1
  STOP_TIMEOUT=5 "$ref/stop.sh" "$REF_HUGE" >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building (release)"
cargo build --release -q -p spalloc-server -p spalloc-cli -p spalloc-bench
"$ref/setup.sh"
L=$root/target/release/spalloc-load
SERVER=$root/target/release/spalloc-server

# Reference configs: the twins of our small-free0 and huge machines, with BMP addresses of their own.
cp bench/machines/small-free0.cfg "$out/ref-small.cfg"
cp bench/machines/huge.cfg "$out/ref-huge.cfg"

# start_ref CFG PORT: the reference, no power-on wait, quiet fake BMP; sets ref_pid.
start_ref() {
  SPALLOC_POWER_ON_SLEEP=0 FAKE_BMP_ARGS=--quiet "$ref/start.sh" "$1" "$2" >&2
  ref_pid=$(tail -n 1 "$SPALLOC_REF_HOME/run-$2.pids")
}
# call PORT JSON: sends one request line and waits for its reply.
call() {
  python3 - "$@" <<'PY'
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as s:
    s.sendall(sys.argv[2].encode() + b"\n")
    sys.exit('"return"' not in s.makefile().readline())
PY
}
# start_ours TOML PORT: sets our_pid.
start_ours() {
  "$SERVER" "$1" --port "$2" --quiet --no-state 2>"$out/ours-$2.log" &
  our_pid=$!
  ours_pids+=("$our_pid")
  for _ in $(seq 100); do
    call "$2" '{"command": "version"}' >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "our server did not start on port $2" >&2; exit 1
}
job1() { call "$1" '{"command": "create_job", "args": [1], "kwargs": {"owner": "bench", "keepalive": null}}'; }

date_utc=$(date -u '+%Y-%m-%d %H:%M UTC')
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
load0=$(cut -d' ' -f1-3 /proc/loadavg)

say "small machines: reference on $REF_SMALL, ours on $OURS_SMALL"
start_ref "$out/ref-small.cfg" "$REF_SMALL"; RPID=$ref_pid
start_ours bench/machines/small-free0.toml "$OURS_SMALL"; OPID=$our_pid
job1 "$REF_SMALL"; job1 "$OURS_SMALL"   # job 1: one board, keepalive None, READY at once
sleep 0.5

say "1. tool latency (both tool sets against the reference server, then ours against ours)"
for round in 1 2; do
  python3 "$tools/cli_wall.py" 127.0.0.1 "$REF_SMALL" --job 1 --runs $RUNS --json \
    | tail -n 1 | python3 -c "import json,sys; d=json.load(sys.stdin); d['label']='reference tools'; d['test']='tools'; d['round']=$round; print(json.dumps(d))" >> "$R"
  python3 "$tools/cli_wall.py" 127.0.0.1 "$REF_SMALL" --bin "$root/target/release" --job 1 --runs $RUNS --json \
    | tail -n 1 | python3 -c "import json,sys; d=json.load(sys.stdin); d['label']='our tools'; d['test']='tools'; d['round']=$round; print(json.dumps(d))" >> "$R"
done
python3 "$tools/cli_wall.py" 127.0.0.1 "$OURS_SMALL" --bin "$root/target/release" --job 1 --runs $RUNS --json \
  | tail -n 1 | python3 -c "import json,sys; d=json.load(sys.stdin); d['label']='our tools, our server'; d['test']='tools'; d['round']=1; print(json.dumps(d))" >> "$R"

say "2. protocol round trips (spalloc-load, same generator for both servers)"
"$L" echo-server "$ECHO" --seconds 60 & echo_pid=$!; ours_pids+=("$echo_pid")
sleep 0.2
"$L" echo 127.0.0.1 "$ECHO" --label floor --calls 5000 --repeat $REP >> "$R"
# The ceiling: bench/tools/null_server.c answers every line with a canned reply and does nothing else.
cc -O2 -pthread -o "$out/null_server" "$tools/null_server.c"
"$out/null_server" "$NULLP" 60 >/dev/null 2>&1 & null_pid=$!; ours_pids+=("$null_pid")
sleep 0.2
"$L" seq 127.0.0.1 "$NULLP" --server-pid $null_pid --label null --calls 5000 --repeat $REP >> "$R"
"$L" conc 127.0.0.1 "$NULLP" --server-pid $null_pid --label null --clients 16 --per-client 1000 --repeat $REP >> "$R"
for who in reference ours; do
  if [ $who = reference ]; then port=$REF_SMALL pid=$RPID; else port=$OURS_SMALL pid=$OPID; fi
  for cmd in version get-job-state; do
    "$L" seq 127.0.0.1 $port --server-pid $pid --label $who --command $cmd --calls 5000 --repeat $REP >> "$R"
  done
  for cmd in version get-job-state; do
    "$L" conc 127.0.0.1 $port --server-pid $pid --label $who --command $cmd --clients 16 --per-client 1000 --repeat $REP >> "$R"
  done
done
"$L" echo 127.0.0.1 "$ECHO" --label floor --calls 5000 --repeat $REP >> "$R"

say "3 and 6. job cycles: create, READY, destroy (polling every 200 µs, and on notify_job)"
for who in reference ours; do
  if [ $who = reference ]; then port=$REF_SMALL pid=$RPID; else port=$OURS_SMALL pid=$OPID; fi
  "$L" cycles 127.0.0.1 $port --server-pid $pid --label $who --wait ready --seconds $SECS --repeat 3 >> "$R"
  "$L" cycles 127.0.0.1 $port --server-pid $pid --label $who --wait ready --notify --seconds $SECS --repeat 3 >> "$R"
done

say "5a. memory on the small machine: idle, 1,000 idle connections"
for who in reference ours; do
  if [ $who = reference ]; then port=$REF_SMALL pid=$RPID; else port=$OURS_SMALL pid=$OPID; fi
  "$L" mem 127.0.0.1 $port --server-pid $pid --label "$who small" --connections 1000 --jobs 0 >> "$R"
done
STOP_TIMEOUT=5 "$ref/stop.sh" "$REF_SMALL" >/dev/null 2>&1 || true

say "4 and 5b. the 1,200-board machine: reference on $REF_HUGE, ours on $OURS_HUGE"
start_ref "$out/ref-huge.cfg" "$REF_HUGE"; RPID=$ref_pid
start_ours bench/machines/huge.toml "$OURS_HUGE"; OPID=$our_pid
for who in reference ours; do
  if [ $who = reference ]; then port=$REF_HUGE pid=$RPID; else port=$OURS_HUGE pid=$OPID; fi
  "$L" mem 127.0.0.1 $port --server-pid $pid --label "$who huge" --connections 1000 --jobs 1000 >> "$R"
  sleep 1
  python3 "$tools/queue_alloc.py" 127.0.0.1 $port --server-pid $pid --jobs 1000 --repeat $QREP --json 2>/dev/null \
    | tail -n 1 | python3 -c "import json,sys; d=json.load(sys.stdin); d['label']='$who'; d['test']='queue'; print(json.dumps(d))" >> "$R"
done
STOP_TIMEOUT=5 "$ref/stop.sh" "$REF_HUGE" >/dev/null 2>&1 || true

say "7. durable state on against --no-state"
bench/state.sh "$R"

say "8. v2 REST API beside the legacy port of the same server (ports $((P + 8)) and $((P + 9)))"
# 16 clients reading a READY job's state, and job cycles (create, READY, delete),
# over each protocol, against one server process so that its CPU per call compares.
V2=$out/v2.jsonl
BENCH_SERVER=$SERVER BENCH_V2_PORT=$((P + 8)) BENCH_V2_REPEAT=$REP BENCH_V2_SECONDS=$SECS bench/v2.sh "$V2"
python3 - "$V2" > "$out/v2.md" <<'PY'
import json, sys
print("| protocol | test | rate /s | p50 µs | p99 µs | server CPU µs/call |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
for line in open(sys.argv[1]):
    d = json.loads(line)
    cpu = d.get("cpu_us_per_call")
    print(f"| {d['label']} | {d['test']} | {d['rate']:.0f} | {d['p50_us']:.0f} | {d['p99_us']:.0f} | "
          f"{'-' if cpu is None else f'{cpu:.1f}'} |")
PY

say "9. legacy calls per second with and without a dashboard page once a second"
if [ $quick = 1 ]; then web_args=(--quick --no-build); else web_args=(--no-build); fi
BENCH_WEB_PORT=$((P + 20)) bench/web_load.sh "${web_args[@]}" > "$out/web.md"

say "10. tool latency over v2 (plain HTTP and HTTPS) beside the legacy protocol (ports $((P + 30)) to $((P + 33)))"
bench/v2_tools.sh $RUNS > "$out/v2_tools.md"

say "4b. allocator micro-benchmark (sans-I/O Controller)"
if [ $quick = 1 ]; then scale_args=(-- --quick); else scale_args=(); fi
cargo bench -q -p spalloc-bench --bench alloc_scale "${scale_args[@]}" 2>/dev/null | grep '^|' > "$out/alloc_scale.md"

load1=$(cut -d' ' -f1-3 /proc/loadavg)
cmd="bench/run.sh${1:+ $1}"
python3 bench/report.py "$R" "$out/alloc_scale.md" \
  --command "$cmd" --date "$date_utc" --cpu "$cpu" --load "$load0 → $load1" > "$out/table.md"
cat "$out/table.md"
printf '\nv2 REST API beside the legacy port (one server process):\n\n'
cat "$out/v2.md"
printf '\nDashboard: legacy calls with and without one machine page a second (one server process):\n\n'
cat "$out/web.md"
printf '\nTool latency over v2 beside the legacy protocol (bench/v2_tools.sh):\n\n'
cat "$out/v2_tools.md"
if [ $quick = 0 ]; then
  python3 bench/report.py --splice "$out/table.md" BENCHMARKS.md
  echo "(table written to BENCHMARKS.md; raw results in $R)" >&2
fi
