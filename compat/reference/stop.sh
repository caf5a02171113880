#!/usr/bin/env bash
# Stops what start.sh PORT started, by the PIDs in $SPALLOC_REF_HOME/run-PORT.pids: the server
# first (SIGTERM, so that it finishes its BMP work and saves its state), then the fake BMPs.
# Only processes running launch_server.py or fake_bmp.py are signalled; one still running after
# STOP_TIMEOUT seconds (default 20) is killed.
set -u
[ $# = 1 ] || { echo "usage: $0 PORT" >&2; exit 2; }
pids=${SPALLOC_REF_HOME:-/tmp/spalloc-ref}/run-$1.pids
[ -f "$pids" ] || exit 0
running() { [ -r "/proc/$1/stat" ] && [ "$(sed 's/^.*) //' "/proc/$1/stat" | cut -d' ' -f1)" != Z ]; }
started_here() { tr '\0' ' ' < "/proc/$1/cmdline" 2>/dev/null | grep -qE '(launch_server|fake_bmp)\.py'; }
for pid in $(tac "$pids"); do
  started_here "$pid" || continue
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq $((${STOP_TIMEOUT:-20} * 10))); do running "$pid" || break; sleep 0.1; done
  if running "$pid"; then
    echo "$0: PID $pid did not stop; killing it" >&2
    kill -KILL "$pid" 2>/dev/null
  fi
done
rm -f "$pids"
