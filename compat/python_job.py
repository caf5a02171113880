#!/usr/bin/env python3
"""The reference library (`spalloc_client.Job` and `ProtocolClient`, PyPI
spalloc 1!7.4.1) against a server on 127.0.0.1:PORT serving a fresh
`machines/small.cfg` machine ("test-machine", 2x1 triads, seconds_before_free=2).

    $SPALLOC_REF_HOME/client/bin/python python_job.py PORT

Prints `PASS name` / `FAIL name: why` lines; exits 1 if any check failed.
"""
import sys
import time

from spalloc_client import Job, JobDestroyedError, JobState, ProtocolClient

port = int(sys.argv[1])
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS python-lib: {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL python-lib: {name}: {detail}", flush=True)
    return ok


def job(*args, **kw):
    base = dict(hostname="127.0.0.1", port=port, owner="pylib", config_filenames=[],
                reconnect_delay=0.5, timeout=10.0, keepalive=60.0)
    base.update(kw)
    return Job(*args, **base)


c = ProtocolClient("127.0.0.1", port)
c.connect(10.0)


def state_of(job_id):
    return c.get_job_state(job_id, timeout=10.0)


# One board, and everything a ready Job reports.
with job(1) as j:
    check("Job(1) is ready", j.state == JobState.ready, j.state)
    check("Job(1) geometry", (j.hostname, j.width, j.height, j.machine_name) == ("127.44.1.1", 8, 8, "test-machine"),
          (j.hostname, j.width, j.height, j.machine_name))
    check("Job(1) connections and boards", j.connections == {(0, 0): "127.44.1.1"} and j.boards == [[0, 0, 0]],
          (j.connections, j.boards))
    check("Job(1).power", j.power is True, j.power)
    check("where_is_machine", j.where_is_machine(3, 2) == (0, 0, 0), j.where_is_machine(3, 2))
    wi = c.where_is(job_id=j.id, chip_x=3, chip_y=2)
    check("ProtocolClient.where_is(job_id, chip_x, chip_y)",
          wi == {"machine": "test-machine", "logical": [0, 0, 0], "physical": [0, 0, 0], "chip": [3, 2],
                 "board_chip": [3, 2], "job_id": j.id, "job_chip": [3, 2]}, wi)
    j1 = j.id
check("leaving `with` destroys the job", state_of(j1)["state"] == JobState.destroyed, state_of(j1))

# A board by X Y Z, power off, on and reset.
j = job(1, 0, 2)
j.wait_until_ready(20)
check("Job(1, 0, 2) is board (1, 0, 2)", j.boards == [[1, 0, 2]] and j.hostname == "127.44.1.41",
      (j.boards, j.hostname))
j.set_power(False)
j.wait_until_ready(20)
check("set_power(False) then ready, power off", j.state == JobState.ready and j.power is False, (j.state, j.power))
j.set_power(True)
j.wait_until_ready(20)
check("set_power(True)", j.power is True, j.power)
j.reset()
j.wait_until_ready(20)
check("reset", j.state == JobState.ready and j.power is True, (j.state, j.power))
jx = j.id
j.destroy("lib done")
st = state_of(jx)
check("destroy(reason)", st["state"] == JobState.destroyed and st["reason"] == "lib done", st)
try:
    job(resume_job_id=jx)
    check("resuming a destroyed job raises JobDestroyedError", False, "no exception")
except JobDestroyedError as e:
    check("resuming a destroyed job raises JobDestroyedError", "lib done" in str(e), e)

# N boards, then W x H queued behind it.
time.sleep(2.5)
a = job(4, min_ratio=0.0)
a.wait_until_ready(20)
check("Job(4) gets 2 triads (6 boards)", len(a.boards) == 6 and (a.width, a.height) == (24, 12),
      (a.boards, a.width, a.height))
b = job(1, 1)
check("Job(1, 1) queues behind a full machine", b.state == JobState.queued, b.state)
# Our server adds where a queued job stands and why (issue 16); the library must ignore them.
st = state_of(b.id)
if "queue_position" in st:  # the reference server does not send them
    check("a queued job's state has queue_position and queue_reason, and Job ignores them",
          st["queue_position"] == 1 and "waiting for 3 free boards" in st["queue_reason"]
          and b.state == JobState.queued and b.power is None, st)
jobs = c.list_jobs(timeout=10.0)
mine = {x["job_id"]: x for x in jobs}
check("list_jobs shows both", a.id in mine and b.id in mine and mine[b.id]["state"] == JobState.queued
      and mine[a.id]["allocated_machine_name"] == "test-machine" and len(mine[a.id]["boards"]) == 6,
      jobs)
ms = c.list_machines(timeout=10.0)
check("list_machines", ms == [{"name": "test-machine", "tags": ["default"], "width": 2, "height": 1,
                               "dead_boards": [], "dead_links": []}], ms)
a.destroy()
b.wait_until_ready(20)
check("the queued Job(1, 1) becomes ready after the destroy", b.state == JobState.ready and len(b.boards) == 3,
      (b.state, b.boards))
b.destroy()

# Keepalive from the helper process, then expiry once it stops.
k = job(1, keepalive=1.0)
k.wait_until_ready(20)
time.sleep(3)
check("the keepalive helper keeps a keepalive=1 job alive", c.list_jobs(timeout=10.0)[-1]["job_id"] == k.id,
      c.list_jobs(timeout=10.0))
kid = k.id
k.close()
deadline = time.time() + 15
while time.time() < deadline and any(x["job_id"] == kid for x in c.list_jobs(timeout=10.0)):
    time.sleep(0.2)
st = state_of(kid)
check("a closed job expires with 'Job timed out.'", st["state"] == JobState.destroyed and st["reason"] == "Job timed out.",
      st)

# An impossible request.
try:
    job(3, 3).wait_until_ready(10)
    check("Job(3, 3) on a 2x1 machine is destroyed", False, "no exception")
except JobDestroyedError as e:
    check("Job(3, 3) on a 2x1 machine is destroyed", "Cancelled: No suitable machines available." in str(e), e)

c.close()
print(f"python-lib: {passed} passed, {failed} failed", flush=True)
sys.exit(1 if failed else 0)
