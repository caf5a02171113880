#!/usr/bin/env bash
# Tool latency over the v2 REST API (plain HTTP and HTTPS) beside the legacy protocol, one server
# process each, the tools run round-robin so that the host's load falls on every side alike.
#
#   bench/v2_tools.sh [RUNS]        # default 20 runs of each; prints a Markdown table
#
# Needs target/release/{spalloc-server,spalloc,spalloc-ps,spalloc-job,spalloc-machine} (bench/run.sh
# builds them; so does this script when run alone), python3 and openssl (for the test certificate).
# The Python reference tools (compat/reference/setup.sh puts them in $SPALLOC_REF_HOME/client/bin)
# are timed too, over the legacy protocol (they have no other), when they are there.
# Ports: $BENCH_PORT+30 to +33 (default 23740-23743), loopback only. The tools authenticate with the
# in-memory demo account's token (as scripts do: SPALLOC_TOKEN), so no log-in round trip is timed;
# the last rows time a password log-in (form, CSRF, session cookie) for comparison.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
RUNS=${1:-20}
P=$(( ${BENCH_PORT:-23710} + 30 ))
LEGACY=$P HTTP=$((P + 1)) TLS_LEGACY=$((P + 2)) HTTPS=$((P + 3))
bin=${BENCH_BIN:-$root/target/release}   # BENCH_BIN: other builds of the tools, for trying the script
[ -x "$bin/spalloc" ] && [ -x "$bin/spalloc-server" ] ||
  cargo build --release -q -p spalloc-server -p spalloc-cli
work=$(mktemp -d /tmp/spalloc-v2-tools.XXXXXX)
pids=()
cleanup() {
  set +e
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -addext basicConstraints=critical,CA:FALSE -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null

# serve NAME LEGACY_PORT HTTP_PORT [TLS KEYS]: our server with the small machine; sets token_NAME.
serve() {
  local name=$1
  { cat bench/machines/small-free0.toml; printf '\n[http]\nport = %s\n%s\n' "$3" "${4:-}"; } > "$work/$name.toml"
  "$bin/spalloc-server" "$work/$name.toml" --port "$2" --no-state 2>"$work/$name.log" &
  pids+=($!)
  for _ in $(seq 200); do grep -qs 'Authorization: Bearer' "$work/$name.log" && break; sleep 0.05; done
  local token
  token=$(sed -n 's/.*Authorization: Bearer \([A-Za-z0-9_-]*\).*/\1/p' "$work/$name.log" | head -n 1)
  [ -n "$token" ] || { echo "no demo token in $work/$name.log" >&2; exit 1; }
  printf -v "token_$name" '%s' "$token"
  sed -n 's/.*log in as user "\([^"]*\)" with password "\([^"]*\)".*/\1 \2/p' "$work/$name.log" | head -n 1 > "$work/$name.login"
}
serve plain "$LEGACY" "$HTTP"
serve tls "$TLS_LEGACY" "$HTTPS" "tls_cert = \"$work/cert.pem\"
tls_key = \"$work/key.pem\""

# spalloc-job needs an allocated job that the demo user may see, on each server: made over v2.
make_job() {
  python3 - "$1" "$2" <<'PY'
import json, sys, time, urllib.request
url, token = sys.argv[1], sys.argv[2]
headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
body = json.dumps({"num-boards": 1, "tags": ["default"], "keepalive-interval": "PT300S"}).encode()
with urllib.request.urlopen(urllib.request.Request(url, body, headers, method="POST")) as r:
    job = r.headers["Location"].rstrip("/").rsplit("/", 1)[1]
for _ in range(200):
    with urllib.request.urlopen(urllib.request.Request(f"{url}/{job}", headers=headers)) as r:
        if json.load(r)["state"] == "READY":
            break
    time.sleep(0.05)
print(job)
PY
}
job_plain=$(make_job "http://127.0.0.1:$HTTP/spalloc/srv/spalloc/jobs" "$token_plain")
job_tls=$(SSL_CERT_FILE="$work/cert.pem" make_job "https://localhost:$HTTPS/spalloc/srv/spalloc/jobs" "$token_tls")
read -r demo_user demo_password < "$work/plain.login"

python3 - "$RUNS" <<PY
import os, statistics, subprocess, sys, time
runs = int(sys.argv[1])
bin = "$bin"
legacy = ["--hostname", "127.0.0.1", "--port", "$LEGACY"]
http = ["--url", "http://127.0.0.1:$HTTP/spalloc/"]
https = ["--url", "https://localhost:$HTTPS/spalloc/", "--ca-cert", "$work/cert.pem"]
home = "$work/home"
os.makedirs(home, exist_ok=True)
base = {k: v for k, v in os.environ.items() if not k.startswith("SPALLOC_")}
base.update(HOME=home, XDG_CONFIG_HOME=home, XDG_CONFIG_DIRS=home, NO_COLOR="1")
env_plain = dict(base, SPALLOC_TOKEN="$token_plain")
env_tls = dict(base, SPALLOC_TOKEN="$token_tls")
env_password = dict(base, SPALLOC_USER="$demo_user", SPALLOC_PASSWORD="$demo_password")
ref_bin = "${SPALLOC_REF_HOME:-/tmp/spalloc-ref}/client/bin"
has_ref = os.path.exists(os.path.join(ref_bin, "spalloc-ps"))
tools = [
    ("spalloc -c true", ["spalloc", "--keepalive", "60"], ["-c", "true"], ["--owner", "bench"]),
    ("spalloc-ps", ["spalloc-ps"], [], []),
    ("spalloc-machine", ["spalloc-machine"], [], []),
    ("spalloc-job --ethernet-ips", ["spalloc-job"], ["--ethernet-ips", "{job}"], []),
]
cases = []
for name, tool, tail_of_any, legacy_extra in tools:
    tail = [t.format(job="$job_plain") for t in tail_of_any]
    exe = [os.path.join(bin, tool[0])] + tool[1:]
    cases.append((name, "legacy", exe + legacy + legacy_extra + tail, base))
    if has_ref:
        ref_exe = [os.path.join(ref_bin, tool[0])] + tool[1:]
        cases.append((name, "legacy, Python tools", ref_exe + legacy + legacy_extra + tail, base))
    cases.append((name, "v2 HTTP", exe + http + tail, env_plain))
    cases.append((name, "v2 HTTPS", exe + https + [t.format(job="$job_tls") for t in tail_of_any], env_tls))
    if name == "spalloc -c true":
        cases.append((name, "v2 HTTP, password", exe + http + tail, env_password))

def once(command, env):
    start = time.perf_counter()
    p = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if status != 0:
        sys.exit(f"{' '.join(command)} failed ({status}): {err}")
    return wall, usage.ru_utime + usage.ru_stime

results = {i: ([], []) for i in range(len(cases))}
for i, (_, _, command, env) in enumerate(cases):
    once(command, env)  # warm-up
for _ in range(runs):
    for i, (_, _, command, env) in enumerate(cases):
        wall, cpu = once(command, env)
        results[i][0].append(wall)
        results[i][1].append(cpu)

print(f"| tool | protocol | median wall ms | min ms | tool CPU ms | wall ÷ legacy |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
legacy_median = {}
for i, (name, protocol, _, _) in enumerate(cases):
    walls, cpus = results[i]
    median = statistics.median(walls)
    if protocol == "legacy":
        legacy_median[name] = median
    ratio = median / legacy_median[name]
    print(f"| {name} | {protocol} | {median * 1000:.1f} | {min(walls) * 1000:.1f} | "
          f"{statistics.median(cpus) * 1000:.1f} | {ratio:.2f}× |")
PY
