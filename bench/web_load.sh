#!/usr/bin/env bash
# Legacy calls per second with and without one dashboard page a second (issue 15's benchmark: "no
# measurable change in legacy calls per second while one page per second is open").
#
# One server process on the 1,200-board machine (bench/machines/huge.toml, --no-state) with its
# [http] listener, holding 1,000 single-board jobs; 16 legacy clients call get_job_state
# (spalloc-load conc) in rounds that alternate between no page and a loop fetching the machine
# page (the heaviest page: SVG map of 1,200 boards) once a second with the demo user's token.
# Prints, per side, the median legacy rate and server CPU per call over the rounds, and the ratios.
#
#   bench/web_load.sh                 # prints the table (BENCHMARKS.md's dashboard section)
#   bench/web_load.sh --quick         # fewer, shorter rounds: a smoke test
#   bench/web_load.sh --no-build      # as bench/run.sh (section 9) calls it, after its own build
#
# Ports: $BENCH_WEB_PORT (default 23730) for the legacy port and +1 for HTTP. Loopback only; every
# loop is bounded in count and time.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
quick=0 build=1
for arg in "$@"; do
  case $arg in
    --quick) quick=1 ;;
    --no-build) build=0 ;;
    *) echo "usage: bench/web_load.sh [--quick] [--no-build]" >&2; exit 2 ;;
  esac
done
P=${BENCH_WEB_PORT:-23730}
LEGACY=$P HTTP=$((P + 1))
if [ $quick = 1 ]; then ROUNDS=2 PER=3000; else ROUNDS=${BENCH_WEB_ROUNDS:-5} PER=${BENCH_WEB_PER_CLIENT:-20000}; fi
out=$(mktemp -d /tmp/spalloc-bench-web.XXXXXX)
pids=()
cleanup() {
  set +e
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
say() { printf '\n== %s\n' "$*" >&2; }

if [ $build = 1 ]; then
  say "building (release)"
  cargo build --release -q -p spalloc-server -p spalloc-bench
fi
L=$root/target/release/spalloc-load
SERVER=${BENCH_SERVER:-$root/target/release/spalloc-server}

{ cat bench/machines/huge.toml; printf '\n[http]\nport = %s\n' "$HTTP"; } > "$out/web.toml"
"$SERVER" "$out/web.toml" --port "$LEGACY" --no-state 2>"$out/server.log" & server=$!
pids+=("$server")
for _ in $(seq 200); do grep -q 'Authorization: Bearer' "$out/server.log" && break; sleep 0.05; done
token=$(sed -n 's/.*Authorization: Bearer \([A-Za-z0-9_-]*\).*/\1/p' "$out/server.log" | head -n 1)
[ -n "$token" ] || { echo "no demo token in $out/server.log" >&2; exit 1; }

say "1,000 single-board jobs on the 1,200-board machine"
python3 - "$LEGACY" <<'PY'
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30) as s:
    line = b'{"command": "create_job", "args": [1], "kwargs": {"owner": "bench", "keepalive": null}}\n'
    s.sendall(line * 1000)
    f = s.makefile()
    for _ in range(1000):
        if '"return"' not in f.readline():
            sys.exit("create_job failed")
PY
page="http://127.0.0.1:$HTTP/spalloc/system/machine_info/huge-machine"
bytes=$(curl -sf -H "Authorization: Bearer $token" -o /dev/null -w '%{size_download}' "$page")
echo "machine page: $bytes bytes" >&2

# The page loop: one fetch a second, at most 10 minutes.
page_loop() {
  for _ in $(seq 600); do
    curl -sf -H "Authorization: Bearer $token" -o /dev/null "$page" || true
    sleep 1
  done
}

rounds=$out/rounds.jsonl
: > "$rounds"
for round in $(seq "$ROUNDS"); do
  for side in without with; do
    loop=""
    if [ $side = with ]; then page_loop & loop=$!; pids+=("$loop"); fi
    "$L" conc 127.0.0.1 "$LEGACY" --server-pid "$server" --label "$side" --command get-job-state \
      --clients 16 --per-client "$PER" --repeat 1 >> "$rounds"
    if [ -n "$loop" ]; then kill "$loop" 2>/dev/null || true; wait "$loop" 2>/dev/null || true; fi
    echo "round $round $side: $(tail -n 1 "$rounds")" >&2
  done
done

python3 - "$rounds" "$bytes" <<'PY'
import json, statistics, sys
by = {"without": [], "with": []}
for line in open(sys.argv[1]):
    d = json.loads(line)
    by[d["label"]].append(d)
def med(side, key):
    values = [d[key] for d in by[side] if d.get(key) is not None]
    return statistics.median(values) if values else None
print("| legacy load (16 clients, get_job_state) | rate /s (median) | server CPU µs/call (median) | rounds |")
print("| --- | ---: | ---: | ---: |")
for side, text in (("without", "no page open"), ("with", "machine page fetched once a second")):
    cpu = med(side, "cpu_us_per_call")
    print(f"| {text} | {med(side, 'rate'):.0f} | {'-' if cpu is None else f'{cpu:.2f}'} | {len(by[side])} |")
rate = med("with", "rate") / med("without", "rate")
line = f"\nWith the page: {rate:.3f}× the legacy rate"
c0, c1 = med("without", "cpu_us_per_call"), med("with", "cpu_us_per_call")
if c0 and c1:
    line += f", {c1 / c0:.3f}× the server CPU per legacy call"
print(line + f" (machine page {int(sys.argv[2]) // 1024} KiB, 1,000 jobs on 1,200 boards).")
PY
