#!/usr/bin/env bash
# The v2 REST API beside the legacy port of one server process (section 8 of bench/run.sh): 16
# clients reading a READY job's state, and job cycles (create, READY, delete), over each protocol,
# so that the server CPU per call compares (issue 12's target: each v2 call within 2× the legacy
# call's server CPU).
#
#   bench/v2.sh                 # prints the table
#   bench/v2.sh RESULTS.jsonl   # called by bench/run.sh: writes the results there, prints nothing
#
# BENCH_SERVER=PATH measures another build of our server (an older one, for before and after).
# Ports: $BENCH_V2_PORT (default 23718) and +1. Calls per client: $BENCH_V2_CALLS (default 1000).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=$(mktemp -d /tmp/spalloc-bench-v2.XXXXXX)
standalone=1
V2=$out/v2.jsonl
if [ $# -ge 1 ]; then V2=$1; standalone=0; fi
: > "$V2"
P=${BENCH_V2_PORT:-23718}
V2_HTTP=$P V2_LEGACY=$((P + 1))
REP=${BENCH_V2_REPEAT:-5} SECS=${BENCH_V2_SECONDS:-2} CALLS=${BENCH_V2_CALLS:-1000}

if [ $standalone = 1 ]; then
  cargo build --release -q -p spalloc-server -p spalloc-bench
fi
L=$root/target/release/spalloc-load
SERVER=${BENCH_SERVER:-$root/target/release/spalloc-server}
v2_pid=""
cleanup() { set +e; [ -n "$v2_pid" ] && { kill "$v2_pid" 2>/dev/null; wait "$v2_pid" 2>/dev/null; }; }
trap cleanup EXIT
trap 'exit 130' INT TERM

{ cat bench/machines/small-free0.toml; printf '\n[http]\nport = %s\n' "$V2_HTTP"; } > "$out/v2.toml"
"$SERVER" "$out/v2.toml" --port "$V2_LEGACY" --no-state 2>"$out/ours-v2.log" & v2_pid=$!
for _ in $(seq 100); do grep -q 'Authorization: Bearer' "$out/ours-v2.log" && break; sleep 0.05; done
token=$(sed -n 's/.*Authorization: Bearer \([A-Za-z0-9_-]*\).*/\1/p' "$out/ours-v2.log" | head -n 1)
[ -n "$token" ] || { echo "no demo token in $out/ours-v2.log" >&2; exit 1; }
api="http://127.0.0.1:$V2_HTTP/spalloc/srv/spalloc"
python3 - "$V2_LEGACY" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b'{"command": "create_job", "args": [1], "kwargs": {"owner": "bench", "keepalive": null}}\n')
s.recv(4096)
PY
"$L" conc 127.0.0.1 "$V2_LEGACY" --server-pid $v2_pid --label "legacy" --command get-job-state \
  --clients 16 --per-client "$CALLS" --repeat "$REP" >> "$V2"
"$L" http-conc "$api" --token "$token" --server-pid $v2_pid --label "v2" \
  --clients 16 --per-client "$CALLS" --repeat "$REP" >> "$V2"
"$L" cycles 127.0.0.1 "$V2_LEGACY" --server-pid $v2_pid --label "legacy" --wait ready \
  --seconds "$SECS" --repeat 3 >> "$V2"
"$L" http-cycles "$api" --token "$token" --server-pid $v2_pid --label "v2" --seconds "$SECS" --repeat 3 >> "$V2"

if [ $standalone = 1 ]; then
  python3 - "$V2" <<'PY'
import json, sys
print("| protocol | test | rate /s | p50 µs | p99 µs | server CPU µs/call |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
for line in open(sys.argv[1]):
    d = json.loads(line)
    cpu = d.get("cpu_us_per_call")
    print(f"| {d['label']} | {d['test']} | {d['rate']:.0f} | {d['p50_us']:.0f} | {d['p99_us']:.0f} | "
          f"{'-' if cpu is None else f'{cpu:.1f}'} |")
PY
fi
