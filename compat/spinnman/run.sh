#!/usr/bin/env bash
# SpiNNMan's real v2 client (PyPI spinnman 1!7.4.1, SpallocClient) against our server over
# HTTPS: see spinnman_client.py for the checks. Prints PASS/FAIL/KNOWN lines and exits 1 on any
# failure. Needs only Python 3 (with venv) and PyPI: the virtualenv (about 230 MB, 30 s to
# install) is kept in $SPALLOC_SPINNMAN_HOME (default /tmp/spalloc-spinnman), one per version of
# spinnman and Python, so later runs start at once. Builds our server with cargo unless
# SPALLOC_SERVER names a binary (and SPALLOC_PROXY_TOOL the local forwarder). Listens on
# 127.0.0.1 only, on free ports; stops its server.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
spinnman_version='1!7.4.1'
python=${PYTHON:-python3}

py_version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])') || {
  echo "FAIL spinnman: setup: $python is not usable"
  exit 1
}
home=${SPALLOC_SPINNMAN_HOME:-/tmp/spalloc-spinnman}
venv=$home/spinnman-7.4.1-py$py_version
if [ ! -f "$venv/.complete" ]; then
  echo "== installing spinnman==$spinnman_version into $venv"
  rm -rf "$venv"
  mkdir -p "$home"
  if ! { "$python" -m venv "$venv" &&
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
      "spinnman==$spinnman_version" 'trustme>=1.1,<2'; } >"$home/install.log" 2>&1; then
    echo "FAIL spinnman: setup: pip install failed: $(tail -n 5 "$home/install.log")"
    exit 1
  fi
  touch "$venv/.complete"
fi

server=${SPALLOC_SERVER:-}
proxy_tool=${SPALLOC_PROXY_TOOL:-}
if [ -z "$server" ] || [ -z "$proxy_tool" ]; then
  (cd "$root" && cargo build --locked -q -p spalloc-server -p spalloc-cli --bin spalloc-server --bin spalloc-proxy) || {
    echo "FAIL spinnman: setup: cargo build failed"
    exit 1
  }
  target=$(cd "$root" && cargo metadata --format-version 1 --no-deps |
    "$python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
  server=${server:-$target/debug/spalloc-server}
  proxy_tool=${proxy_tool:-$target/debug/spalloc-proxy}
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/spalloc-spinnman.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "== SpiNNMan $spinnman_version SpallocClient against $server (HTTPS, 127.0.0.1)"
"$venv/bin/python" "$here/spinnman_client.py" --server "$server" --proxy-tool "$proxy_tool" --work "$work"
status=$?
if [ "$status" != 0 ] && [ -f "$work/server.log" ]; then
  echo "-- our server's log (last lines):"
  tail -n 20 "$work/server.log"
fi
exit "$status"
