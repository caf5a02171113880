#!/usr/bin/env bash
# Compares, command for command, what the reference Python spalloc server and our
# spalloc-server (bmp = "scp") send to a BMP for the same allocations.
#
# Both are run, one after the other (the fake BMP binds 127.44.1.0:17893), against
# compat/reference/fake_bmp.py with compat/machines/small.cfg's machine (2x1 triads, 6 boards,
# BMP 127.44.1.0). The same scenario runs
# against each: one-board job until ready, destroy; whole-machine job until ready, power off,
# power on, destroy. The fake BMP's logs are then diffed with times left out (sequence
# numbers are not logged) and must be identical line for line. Loopback only. Exit status 0
# when they are.
#   scripts/compare-bmp-traffic.sh [OUTDIR]      (default OUTDIR: a new folder in /tmp)
# Needs python3 and PyPI (runs compat/reference/setup.sh: ~20 s the first time). Not run by CI.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ref=$root/compat/reference
out=${1:-$(mktemp -d /tmp/compare-bmp-traffic.XXXXXX)}
mkdir -p "$out"
home=${SPALLOC_REF_HOME:-/tmp/spalloc-ref}
ref_port=${REF_PORT:-22391}
our_port=${OUR_PORT:-22392}

"$ref/setup.sh"
py=$home/server/bin/python
(cd "$root" && cargo build -q -p spalloc-server)
ours_bin=$root/target/debug/spalloc-server

# The scenario, against HOST PORT; prints each step.
scenario() {
  python3 - "$1" <<'PY'
import json, socket, sys, time
port = int(sys.argv[1])
s = socket.create_connection(("127.0.0.1", port), timeout=30)
buf = b""
def call(command, *args, **kwargs):
    global buf
    s.sendall((json.dumps({"command": command, "args": list(args), "kwargs": kwargs}) + "\n").encode())
    while True:
        while b"\n" not in buf:
            data = s.recv(65536)
            if not data:
                sys.exit("server closed the connection")
            buf += data
        line, buf = buf.split(b"\n", 1)
        msg = json.loads(line)
        if "return" in msg:
            return msg["return"]
        if "exception" in msg:
            sys.exit("%s raised %s" % (command, msg["exception"]))
def wait(job, state, power=None):
    deadline = time.time() + 30
    while time.time() < deadline:
        st = call("get_job_state", job)
        if st["state"] == state and (power is None or st["power"] == power):
            return st
        time.sleep(0.05)
    sys.exit("job %d never reached state %d: %s" % (job, state, st))
def gone(job):
    # list_jobs is no keepalive; wait until the job is retired, then for the
    # BMP work and the delayed free (seconds_before_free = 2) to finish.
    while any(j["job_id"] == job for j in call("list_jobs")):
        time.sleep(0.05)
    time.sleep(3)
def step(text):
    print(text, flush=True)
step("one board")
a = call("create_job", 1, owner="compare", keepalive=None)
wait(a, 3)
step("destroy it")
call("destroy_job", a, "done")
gone(a)
step("whole machine")
b = call("create_job", 2, 1, owner="compare", keepalive=None)
wait(b, 3)
step("power off")
call("power_off_job_boards", b)
wait(b, 3, False)
step("power on")
call("power_on_job_boards", b)
wait(b, 3, True)
step("destroy it")
call("destroy_job", b, "done")
gone(b)
PY
}

# --- the reference server (compat/reference/start.sh starts its own fake BMP) ---
echo "== reference server"
"$ref/stop.sh" "$ref_port"
SPALLOC_POWER_ON_SLEEP=0 SPALLOC_RETRY_SLEEP=0 \
  "$ref/start.sh" "$root/compat/machines/small.cfg" "$ref_port" >/dev/null
trap '"$ref/stop.sh" "$ref_port"' EXIT
scenario "$ref_port"
"$ref/stop.sh" "$ref_port"
trap - EXIT
cp "$home/run-$ref_port/bmp.log" "$out/reference-bmp.log"

# --- our server, with the same machine and no power-on wait ---
echo "== our server"
cat > "$out/ours.toml" <<TOML
ip = "127.0.0.1"
timeout_check_interval = 1.0
seconds_before_free = 2.0

[[machine]]
name = "test-machine"
board_locations = [[0,0,0, 0,0,0], [0,0,1, 0,0,1], [0,0,2, 0,0,2],
                   [1,0,0, 0,0,3], [1,0,1, 0,0,4], [1,0,2, 0,0,5]]
base_ip = "127.44.1.0"
bmp = "scp"
post_power_on_delay = 0.0
retry_delay = 0.0
TOML
rm -f "$out/bmp.ready"
"$py" "$ref/fake_bmp.py" 127.44.1.0 --ready-file "$out/bmp.ready" > "$out/ours-bmp.log" 2>&1 &
bmp=$!
srv=
cleanup() { [ -n "$srv" ] && kill -TERM "$srv" 2>/dev/null; kill -TERM "$bmp" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 1 100); do [ -e "$out/bmp.ready" ] && break; sleep 0.05; done
"$ours_bin" "$out/ours.toml" --port "$our_port" --no-state > "$out/ours-server.log" 2>&1 &
srv=$!
for _ in $(seq 1 100); do
  python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $our_port), timeout=1)" 2>/dev/null && break
  kill -0 "$srv" 2>/dev/null || { cat "$out/ours-server.log" >&2; exit 1; }
  sleep 0.05
done
scenario "$our_port"
cleanup
trap - EXIT
srv=

# --- the comparison: drop the time, keep address, command, board, args, data ---
for who in reference ours; do
  grep -E '^[0-9.]+ 127\.' "$out/$who-bmp.log" | cut -d' ' -f2- > "$out/$who.commands"
done
echo "== $(wc -l < "$out/reference.commands") reference commands, $(wc -l < "$out/ours.commands") ours (logs in $out)"
# Both servers visit a job's boards and links in the same order (CPython's set order of
# (x, y, z) and (x, y, z, link) tuples, which our core reproduces), so the logs must match
# line for line.
if diff -u "$out/reference.commands" "$out/ours.commands" > "$out/commands.diff"; then
  echo "identical, command for command"
else
  echo "DIFFERENT:"
  cat "$out/commands.diff"
  exit 1
fi
