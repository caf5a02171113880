"""Whole-process wall time of the spalloc command-line tools against a spalloc (v1) server.

    python3 cli_wall.py HOST PORT [--bin DIR] [--runs 20] [--job ID] [--json]

DIR holds the tools (default: the reference's, $SPALLOC_REF_HOME/client/bin as made by
compat/reference/setup.sh; give target/release for ours). After one warm-up, each of these runs
--runs times with its output discarded, and its min / median / max wall time is reported:

    spalloc-ps, spalloc-machine, spalloc-machine NAME (the first machine listed),
    spalloc-job --ethernet-ips JOB, spalloc-where-is --job-chip JOB 1 1

JOB (--job) must be an allocated job; without --job a one-board job with no keepalive is created
first (and left). With --json the last line is the results as JSON.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from protocol import Connection  # noqa: E402


def wall_times(command, runs):
    """Runs command once to warm up, then `runs` times; (exit status, [seconds])."""
    def run():
        start = time.perf_counter()
        status = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL).returncode
        return status, time.perf_counter() - start
    status, _ = run()
    times = []
    for _ in range(runs):
        status, seconds = run()
        times.append(seconds)
    return status, times


def main():
    parser = argparse.ArgumentParser(description="Wall time of the spalloc tools.")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    home = os.environ.get("SPALLOC_REF_HOME", "/tmp/spalloc-ref")
    parser.add_argument("--bin", default=os.path.join(home, "client", "bin"))
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--job", type=int)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    conn = Connection(options.host, options.port)
    machine = conn.call("list_machines")[0]["name"]
    job = options.job
    if job is None:
        job = conn.call("create_job", 1, owner="cli_wall", keepalive=None)
    conn.close()
    server = ["-H", options.host, "-P", str(options.port)]
    tool = lambda name: os.path.join(options.bin, name)  # noqa: E731
    commands = [
        ("spalloc-ps", [tool("spalloc-ps")] + server),
        ("spalloc-machine", [tool("spalloc-machine")] + server),
        ("spalloc-machine NAME", [tool("spalloc-machine"), machine] + server),
        ("spalloc-job --ethernet-ips", [tool("spalloc-job"), "--ethernet-ips", str(job)] + server),
        ("spalloc-where-is --job-chip", [tool("spalloc-where-is"), "--job-chip", str(job), "1", "1"]
         + server),
    ]
    results = []
    for name, command in commands:
        status, times = wall_times(command, options.runs)
        ms = [t * 1e3 for t in times]
        result = {"tool": name, "rc": status, "min_ms": min(ms),
                  "median_ms": statistics.median(ms), "max_ms": max(ms)}
        results.append(result)
        print("%-30s exit %d  min %8.2f  median %8.2f  max %8.2f ms" % (
            name, status, result["min_ms"], result["median_ms"], result["max_ms"]), flush=True)
    if options.json:
        print(json.dumps({"bin": options.bin, "runs": options.runs, "job": job, "tools": results}))


if __name__ == "__main__":
    main()
