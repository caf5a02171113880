"""Allocation at scale through the protocol: how long a spalloc (v1) server takes to place many
single-board jobs, on the first machine it lists (give it an otherwise idle machine with no free
delay and no power-on wait).

    python3 queue_alloc.py HOST PORT [--jobs 1000] [--repeat 3] [--server-pid PID] [--json]

Each round, on one connection:
  idle_create_s    JOBS create_job(1) calls on the idle machine (each placed at once);
                   then they are destroyed and the machine allowed to empty;
  queued_create_s  JOBS create_job(1) calls queued behind a job holding the whole machine;
  alloc_s          from destroying that blocker until every queued job that fits has boards;
  ready_s          ... until every one of them is READY;
  server_cpu_s     the server's CPU time (its threads' run time, from /proc; needs
                   --server-pid) over the same span as ready_s;
  idle_create_server_cpu_s  the same over the idle creates.
Progress is read by polling list_jobs every 2 ms, the same way for every server, so its cost is
part of server_cpu_s. With --json the last line is the results as JSON.
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from protocol import Connection  # noqa: E402

READY = 3


def cpu_seconds(pid):
    """CPU seconds of a process, or None: the sum of its threads' run time from
    /proc/PID/task/*/schedstat (nanoseconds), else user + system from /proc/PID/stat (in
    10 ms ticks, too coarse for phases of tens of milliseconds)."""
    if pid is None:
        return None
    try:
        total = 0
        for task in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, task)) as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (OSError, ValueError, IndexError):
        pass
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_for(conn, predicate, what, timeout=120.0):
    """Polls list_jobs until predicate(jobs) holds; returns when it did (perf_counter)."""
    deadline = time.perf_counter() + timeout
    while True:
        jobs = conn.call("list_jobs")
        if predicate(jobs):
            return time.perf_counter()
        if time.perf_counter() > deadline:
            sys.exit("queue_alloc.py: timed out waiting for %s" % what)
        time.sleep(0.002)


def one_round(conn, n, width, height, fits, pid):
    create = lambda: conn.call("create_job", 1, owner="queue_alloc", keepalive=None)  # noqa: E731
    cpu_start = cpu_seconds(pid)
    start = time.perf_counter()
    jobs = set(create() for _ in range(n))
    idle_create = time.perf_counter() - start
    cpu_created = cpu_seconds(pid)
    gone = lambda listed: not any(j["job_id"] in jobs for j in listed)  # noqa: E731
    for job in jobs:
        conn.call("destroy_job", job, "queue_alloc")
    wait_for(conn, gone, "the jobs to go")
    blocker = conn.call("create_job", width, height, owner="queue_alloc", keepalive=None)
    wait_for(conn, lambda listed: any(j["job_id"] == blocker and j["state"] == READY
                                      for j in listed), "the whole-machine job")
    start = time.perf_counter()
    jobs = set(create() for _ in range(n))
    queued_create = time.perf_counter() - start
    gone = lambda listed: not any(j["job_id"] in jobs for j in listed)  # noqa: E731
    cpu_before = cpu_seconds(pid)
    start = time.perf_counter()
    conn.call("destroy_job", blocker, "queue_alloc")
    mine = lambda listed: [j for j in listed if j["job_id"] in jobs]  # noqa: E731
    allocated = wait_for(conn, lambda listed: sum(j["boards"] is not None
                                                  for j in mine(listed)) >= fits,
                         "the queued jobs to be allocated")
    ready = wait_for(conn, lambda listed: sum(j["state"] == READY
                                              for j in mine(listed)) >= fits,
                     "the queued jobs to be ready")
    cpu_after = cpu_seconds(pid)
    for job in jobs:
        conn.call("destroy_job", job, "queue_alloc")
    wait_for(conn, gone, "the jobs to go")
    return {"idle_create_s": idle_create, "queued_create_s": queued_create,
            "alloc_s": allocated - start, "ready_s": ready - start,
            "server_cpu_s": None if cpu_before is None else cpu_after - cpu_before,
            "idle_create_server_cpu_s": None if cpu_start is None else cpu_created - cpu_start}


def main():
    parser = argparse.ArgumentParser(description="Allocation of many queued jobs.")
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--server-pid", type=int)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    conn = Connection(options.host, options.port)
    machine = conn.call("list_machines")[0]
    width, height = machine["width"], machine["height"]
    boards = width * height * 3 - len(machine["dead_boards"])
    fits = min(options.jobs, boards)
    rounds = []
    for i in range(options.repeat):
        result = one_round(conn, options.jobs, width, height, fits, options.server_pid)
        rounds.append(result)
        print("round %d: %s" % (i + 1, ", ".join(
            "%s %.1f ms" % (k[:-2], v * 1e3) for k, v in result.items() if v is not None)),
            flush=True)
    conn.close()
    if options.json:
        print(json.dumps({"machine": machine["name"], "jobs": options.jobs, "boards": boards,
                          "placed": fits, "rounds": rounds,
                          "median_ready_s": statistics.median(r["ready_s"] for r in rounds)}))


if __name__ == "__main__":
    main()
