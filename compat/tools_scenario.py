#!/usr/bin/env python3
"""Compatibility scenario for the five spalloc tools (standard library only).

    tools_scenario.py --tools DIR --impl python|rust --port PORT

Runs DIR/spalloc, DIR/spalloc-job, DIR/spalloc-ps, DIR/spalloc-machine and
DIR/spalloc-where-is against the server on 127.0.0.1:PORT, which must serve
a fresh copy of the `machines/small.cfg` machine ("test-machine": 2x1 triads,
6 boards, board (x, 0, z) at 127.44.1.(8(3x+z)+1), seconds_before_free=2).
`--impl python` is the reference tools against our server (part 1), `--impl
rust` ours against the reference server (part 2). The assertions are the
same for both, except the reference-tool bugs listed in KNOWN (README.md).

Prints one line per check: `PASS name`, `FAIL name: why`, or `KNOWN name:
why` (a reference bug, not run); exits 1 if any check failed.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

# Reference-tool bugs we do not exercise (client spec §8.3): the 7.4.1
# `spalloc-where-is` crashes before sending anything on these three forms.
KNOWN_PYTHON = {
    "where-is --board": "spalloc 1!7.4.1 ProtocolClient.where_is() rejects 'machine' (TypeError)",
    "where-is --physical": "spalloc 1!7.4.1 ProtocolClient.where_is() rejects 'machine' (TypeError)",
    "where-is --chip": "spalloc 1!7.4.1 ProtocolClient.where_is() rejects 'machine' (TypeError)",
}

passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"PASS {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL {name}: {detail}", flush=True)
    return ok


class Tools:
    def __init__(self, tools_dir, port, workdir, env):
        self.dir = tools_dir
        self.server = ["-H", "127.0.0.1", "-P", str(port)]
        self.cwd = workdir
        self.env = env

    def argv(self, tool, args):
        return [os.path.join(self.dir, tool)] + self.server + list(args)

    def run(self, tool, *args, timeout=60):
        p = subprocess.run(self.argv(tool, args), stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout, cwd=self.cwd, env=self.env)
        return p.returncode, p.stdout, p.stderr

    def popen(self, tool, *args):
        return subprocess.Popen(self.argv(tool, args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=self.cwd, env=self.env)


def show(rc, out, err):
    return f"rc={rc} stdout={out!r} stderr={err!r}"


def has_lines(text, *patterns):
    """Every regex in patterns matches some whole line of text (stripped)."""
    lines = [l.rstrip() for l in text.splitlines()]
    return all(any(re.fullmatch(p, l) for l in lines) for p in patterns)


def wait_until(pred, timeout=15.0, step=0.2):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(step)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tools", required=True)
    ap.add_argument("--impl", choices=["python", "rust"], required=True)
    ap.add_argument("--port", type=int, required=True)
    a = ap.parse_args()

    work = tempfile.mkdtemp(prefix="spalloc-compat-")
    env = dict(os.environ)
    # No stray configuration: empty config dirs and an empty working directory.
    env.update(XDG_CONFIG_HOME=work, XDG_CONFIG_DIRS=work, HOME=work, NO_COLOR="1")
    t = Tools(a.tools, a.port, work, env)
    tag = a.impl
    M = "test-machine"

    # --- usage errors -----------------------------------------------------
    rc, out, err = t.run("spalloc", "1")
    check(f"{tag}: spalloc without --owner exits 2", rc == 2 and "--owner must be specified" in err,
          show(rc, out, err))
    rc, out, err = t.run("spalloc", "--owner", "a", "1", "2", "3", "4")
    check(f"{tag}: spalloc with 4 positionals exits 2", rc == 2 and "expected either no arguments" in err,
          show(rc, out, err))

    # --- one board, every -c substitution -----------------------------------
    rc, out, err = t.run("spalloc", "--owner", "alice", "1", "-c", "echo", "{}", "{hostname}", "{w}",
                         "{width}", "{h}", "{height}", "id={id}")
    m = re.fullmatch(r"127\.44\.1\.1 127\.44\.1\.1 8 8 8 8 id=(\d+)\n", out)
    check(f"{tag}: spalloc 1 -c substitutes {{}} {{hostname}} {{w}} {{width}} {{h}} {{height}} {{id}}",
          rc == 0 and m is not None, show(rc, out, err))
    if m:
        j1 = m.group(1)
        check(f"{tag}: spalloc status lines on stderr", has_lines(err, rf"Job {j1}: Ready!"), err)

    # --- a board by X Y Z, info mode (no -c) ---------------------------------
    rc, out, err = t.run("spalloc", "--owner", "alice", "1", "0", "2")
    check(f"{tag}: spalloc X Y Z prints the info block and prompt",
          rc == 0 and has_lines(out, r"  Hostname: 127\.44\.1\.41", r"     Width: 8", r"    Height: 8",
                                r"Running on: test-machine")
          and "<Press enter when done>" in out, show(rc, out, err))

    # --- N boards, {ethernet_ips} CSV ----------------------------------------
    rc, out, err = t.run("spalloc", "--owner", "alice", "3", "-c", "sh", "-c",
                         "cat {ethernet_ips}; echo {w}x{h}")
    lines = out.splitlines()
    check(f"{tag}: spalloc 3 -c with {{ethernet_ips}} (CSV of 3 boards)",
          rc == 0 and len(lines) == 5 and lines[0] == "x,y,hostname"
          and all(re.fullmatch(r"\d+,\d+,127\.44\.1\.\d+", l) for l in lines[1:4])
          and re.fullmatch(r"\d+x\d+", lines[4]) is not None, show(rc, out, err))

    # --- exit status and quoting of -c ---------------------------------------
    rc, out, err = t.run("spalloc", "--owner", "alice", "1", "-c", "sh", "-c", "exit 3")
    check(f"{tag}: spalloc -c exit status is the command's", rc == 3, show(rc, out, err))
    rc, out, err = t.run("spalloc", "--owner", "alice", "-q", "1", "-c", "echo", "a  b", "it's", "{{}}")
    check(f"{tag}: spalloc -c quotes each argument, {{{{}}}} escapes, -q silences stderr",
          rc == 0 and out == "a  b it's {}\n" and err == "", show(rc, out, err))

    # --- impossible request ----------------------------------------------------
    rc, out, err = t.run("spalloc", "--owner", "alice", "3", "3", "-c", "true")
    check(f"{tag}: spalloc 3 3 on a 2x1 machine: destroyed, exit 1",
          rc == 1 and "Destroyed: Cancelled: No suitable machines available." in err, show(rc, out, err))

    # --- W x H: the whole machine, kept (--no-destroy, no keepalive) ----------
    time.sleep(2.5)  # seconds_before_free=2: let every board come back
    rc, out, err = t.run("spalloc", "--owner", "bob", "--no-destroy", "--keepalive", "-1", "2", "1",
                         "-c", "echo", "{id}", "{w}", "{h}")
    m = re.fullmatch(r"(\d+) 24 12\n", out)
    if not check(f"{tag}: spalloc 2 1 (W H) gets the whole 24x12 machine", rc == 0 and m is not None,
                 show(rc, out, err)):
        return
    jw = m.group(1)

    # --- queueing behind a full machine ------------------------------------
    queued = t.popen("spalloc", "--owner", "carol", "1", "-c", "echo", "{hostname}", "{id}")

    def carol_queued():
        rc, out, _ = t.run("spalloc-ps", "--owner", "carol")
        return rc == 0 and re.search(r"^\s*\d+\s+queue\s.*carol \(127\.0\.0\.1\)$", out, re.M)
    check(f"{tag}: spalloc-ps shows the queued job (--owner filter)", wait_until(carol_queued),
          "no queued carol job in spalloc-ps")

    rc, out, err = t.run("spalloc-ps")
    check(f"{tag}: spalloc-ps table",
          rc == 0 and has_lines(out, r"ID\s+State\s+Power\s+Boards\s+Machine\s+Created at\s+Keepalive\s+Owner \(Host\)",
                                rf"\s*{jw}\s+ready\s+on\s+6\s+test-machine\s+\d\d/\d\d/\d{{4}} \d\d:\d\d:\d\d\s+None\s+bob \(127\.0\.0\.1\)",
                                r"\s*\d+\s+queue\s+\d\d/\d\d/\d{4} \d\d:\d\d:\d\d\s+60\.0\s+carol \(127\.0\.0\.1\)"),
          show(rc, out, err))
    rc, out, err = t.run("spalloc-ps", "--machine", M)
    check(f"{tag}: spalloc-ps --machine lists only allocated jobs there",
          rc == 0 and f"bob" in out and "carol" not in out, show(rc, out, err))

    rc, out, err = t.run("spalloc-machine")
    check(f"{tag}: spalloc-machine table",
          rc == 0 and has_lines(out, r"Name\s+Num boards\s+In-use\s+Jobs\s+Tags",
                                r"test-machine\s+6\s+6\s+1\s+default"), show(rc, out, err))
    rc, out, err = t.run("spalloc-machine", M)
    expected = (f"  Name: test-machine\n  Tags: default\nIn-use: 6 of 6\n  Jobs: 1\n\n"
                " ___     ___\n/ A \\___/ A \\___\n\\___/ A \\___/ A \\\n/ A \\___/ A \\___/\n\\___/   \\___/\n"
                f"\nA:{jw}\n")
    check(f"{tag}: spalloc-machine NAME (exact map and keys)", rc == 0 and out == expected,
          show(rc, out, err) + " expected=" + repr(expected))
    rc, out, err = t.run("spalloc-machine", M, "--detailed")
    check(f"{tag}: spalloc-machine NAME --detailed",
          rc == 0 and has_lines(out, r"Key\s+Job ID\s+Num boards\s+Owner \(Host\)",
                                rf"A\s+{jw}\s+6\s+bob 127\.0\.0\.1"), show(rc, out, err))
    rc, out, err = t.run("spalloc-machine", "nope")
    check(f"{tag}: spalloc-machine unknown machine exits 6",
          rc == 6 and "No machine 'nope' was found" in err, show(rc, out, err))

    # --- spalloc-job: info, power, Ethernet IPs, where-is ---------------------
    rc, out, err = t.run("spalloc-job", jw)
    expected = f"""     Job ID: {jw}
      Owner: bob
      State: ready
 Start time: TIME
  Keepalive: None
 Owner host: 127.0.0.1
    Request: Job(2, 1,
                 machine=None,
                 max_dead_boards=0,
                 max_dead_links=None,
                 min_ratio=0.333,
                 require_torus=False,
                 tags=['default'])
 Allocation:  ___     ___
             / . \\___/ . \\___
             \\___/ . \\___/ . \\
             / . \\___/ . \\___/
             \\___/   \\___/
   Hostname: 127.44.1.1
      Width: 24
     Height: 12
 Num boards: 6
Board power: on
 Running on: test-machine
"""
    got = re.sub(r"(?m)^( Start time: ).*$", r"\1TIME", out)
    check(f"{tag}: spalloc-job ID info (exact, start time aside)", rc == 0 and got == expected,
          show(rc, out, err) + " expected=" + repr(expected))
    rc, out, err = t.run("spalloc-job", jw, "--power-off")
    rc2, out2, _ = t.run("spalloc-job", jw)
    check(f"{tag}: spalloc-job --power-off", rc == 0 and "Board power: off" in out2, show(rc, out, err) + out2)
    rc, out, err = t.run("spalloc-job", jw, "--power-on")
    rc2, out2, _ = t.run("spalloc-job", jw)
    check(f"{tag}: spalloc-job --power-on", rc == 0 and "Board power: on" in out2, show(rc, out, err) + out2)
    rc, out, err = t.run("spalloc-job", jw, "--reset")
    check(f"{tag}: spalloc-job --reset", rc == 0, show(rc, out, err))
    rc, out, err = t.run("spalloc-job", jw, "--ethernet-ips")
    check(f"{tag}: spalloc-job --ethernet-ips",
          rc == 0 and out == "x,y,hostname\n0,0,127.44.1.1\n4,8,127.44.1.17\n8,4,127.44.1.9\n"
                             "12,0,127.44.1.25\n16,8,127.44.1.41\n20,4,127.44.1.33\n", show(rc, out, err))

    where = [r"\s*Machine: test-machine"]
    rc, out, err = t.run("spalloc-where-is", "--job-chip", jw, "8", "4")
    check(f"{tag}: where-is --job-chip",
          rc == 0 and has_lines(out, r"                 Machine: test-machine",
                                r"       Physical location: Cabinet 0, Frame 0, Board 1",
                                r"        Board coordinate: \(0, 0, 1\)",
                                r"Machine chip coordinates: \(8, 4\)",
                                r"Coordinates within board: \(0, 0\)",
                                rf"         Job using board: {jw}",
                                r"  Coordinates within job: \(8, 4\)"), show(rc, out, err))
    forms = [
        ("where-is --board", ["--board", M, "1", "0", "2"],
         [r"\s*Physical location: Cabinet 0, Frame 0, Board 5", r"\s*Board coordinate: \(1, 0, 2\)",
          r"Machine chip coordinates: \(16, 8\)", rf"\s*Job using board: {jw}"], "Coordinates within board"),
        ("where-is --physical", ["--physical", M, "0", "0", "5"],
         [r"\s*Board coordinate: \(1, 0, 2\)", r"Machine chip coordinates: \(16, 8\)"], "Coordinates within board"),
        ("where-is --chip", ["--chip", M, "30", "13"],
         [r"\s*Board coordinate: \(0, 0, 2\)", r"Machine chip coordinates: \(6, 1\)",
          r"Coordinates within board: \(2, 5\)", rf"\s*Job using board: {jw}",
          r"\s*Coordinates within job: \(6, 1\)"], None),
    ]
    for name, args, pats, absent in forms:
        if tag == "python":
            print(f"KNOWN {tag}: {name}: {KNOWN_PYTHON[name]}", flush=True)
            continue
        rc, out, err = t.run("spalloc-where-is", *args)
        check(f"{tag}: {name}", rc == 0 and has_lines(out, *where, *pats) and (absent is None or absent not in out),
              show(rc, out, err))
    if tag == "python":
        print(f"KNOWN {tag}: where-is on an unknown machine (exit 4): same bug, needs --board", flush=True)
    else:
        rc, out, err = t.run("spalloc-where-is", "--board", "nope", "0", "0", "0")
        check(f"{tag}: where-is on an unknown machine exits 4",
              rc == 4 and "No boards at the specified location" in err, show(rc, out, err))
    rc, out, err = t.run("spalloc-where-is", "--job-chip", "9999", "0", "0")
    check(f"{tag}: where-is --job-chip of an unknown job exits 4",
          rc == 4 and "No boards at the specified location" in err, show(rc, out, err))

    # --- destroy with a reason frees the machine for the queued job -------------
    rc, out, err = t.run("spalloc-job", jw, "--destroy", "compat test done")
    check(f"{tag}: spalloc-job --destroy REASON", rc == 0, show(rc, out, err))
    try:
        qout, qerr = queued.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        queued.kill()
        qout, qerr = queued.communicate()
    m = re.fullmatch(r"127\.44\.1\.1 (\d+)\n", qout)
    check(f"{tag}: the queued spalloc runs once the machine is free",
          queued.returncode == 0 and m is not None
          and has_lines(qerr, r"Job \d+: Waiting in queue\.\.\.", r"Job \d+: Ready!"),
          show(queued.returncode, qout, qerr))
    rc, out, err = t.run("spalloc-job", jw)
    check(f"{tag}: spalloc-job of a destroyed job shows the reason",
          rc == 0 and out == f"Job ID: {jw}\n State: destroyed\nReason: compat test done\n", show(rc, out, err))

    # --- automatic job ID by owner, bare --destroy, bad states ---------------
    rc, out, err = t.run("spalloc", "--owner", "dave", "--no-destroy", "--keepalive", "-1", "1", "-c", "echo", "{id}")
    jd = out.strip()
    check(f"{tag}: spalloc --no-destroy keeps the job", rc == 0 and jd.isdigit(), show(rc, out, err))
    rc, out, err = t.run("spalloc-job", "--owner", "dave")
    check(f"{tag}: spalloc-job --owner finds the owner's only job",
          rc == 0 and has_lines(out, rf"\s*Job ID: {jd}", r"\s*Owner: dave"), show(rc, out, err))
    rc, out, err = t.run("spalloc-job", "--owner", "dave", "--destroy")
    rc2, out2, err2 = t.run("spalloc-job", jd)
    check(f"{tag}: bare --destroy gives 'Destroyed by OWNER'",
          rc == 0 and "Reason: Destroyed by dave" in out2, show(rc, out, err) + show(rc2, out2, err2))
    rc, out, err = t.run("spalloc-job", "--owner", "dave")
    check(f"{tag}: spalloc-job --owner with no jobs exits 3", rc == 3, show(rc, out, err))
    rc, out, err = t.run("spalloc-job", jd, "--power-on")
    check(f"{tag}: power on a destroyed job exits 8",
          rc == 8 and f"Error: Cannot power on job {jd} in state destroyed" in err, show(rc, out, err))
    rc, out, err = t.run("spalloc-job", jd, "--ethernet-ips")
    check(f"{tag}: --ethernet-ips of a destroyed job exits 9",
          rc == 9 and f"Job {jd} is queued or does not exist" in err, show(rc, out, err))
    rc, out, err = t.run("spalloc-job", "9999")
    # Same output; ours exits 10 for a job the server does not know (compat/README.md, differences).
    unknown_rc = 0 if tag == "python" else 10
    check(f"{tag}: spalloc-job of an unknown ID", rc == unknown_rc and out == "Job ID: 9999\n State: unknown\n",
          show(rc, out, err))

    # --- keepalive, then expiry -----------------------------------------------
    rc, out, err = t.run("spalloc", "--owner", "erin", "--keepalive", "1", "1", "-c", "sleep", "3")
    check(f"{tag}: spalloc --keepalive 1 keeps a 3 s job alive", rc == 0, show(rc, out, err))
    rc, out, err = t.run("spalloc", "--owner", "erin", "--no-destroy", "--keepalive", "1", "1", "-c", "echo", "{id}")
    je = out.strip()
    ok = check(f"{tag}: spalloc --no-destroy --keepalive 1", rc == 0 and je.isdigit(), show(rc, out, err))
    if ok:
        # spalloc-ps (list_jobs) is not a keepalive; spalloc-job is.
        gone = wait_until(lambda: re.search(rf"^\s*{je}\s", t.run("spalloc-ps")[1], re.M) is None, 15)
        rc, out, err = t.run("spalloc-job", je)
        check(f"{tag}: an abandoned job expires with 'Job timed out.'",
              gone and out == f"Job ID: {je}\n State: destroyed\nReason: Job timed out.\n", show(rc, out, err))

    # --- version flag, empty listings -----------------------------------------
    rc, out, err = t.run("spalloc-ps", "--owner", "nobody")
    check(f"{tag}: spalloc-ps with nothing to show prints the header only",
          rc == 0 and out.strip().split() == "ID State Power Boards Machine Created at Keepalive Owner (Host)".split(),
          show(rc, out, err))

    # --- an avoid-list, which only our server knows (ours only: the Python tools lack the option) ---
    if tag == "rust":
        rc, out, err = t.run("spalloc", "--owner", "frank", "--avoid-board", "0,0,1", "1", "-c", "true")
        check(f"{tag}: spalloc --avoid-board on the reference says it is not supported (exit 6)",
              rc == 6 and "This server does not support --avoid-board" in err
              and "unexpected keyword" not in err, show(rc, out, err))
        # The reference registers the job before refusing the keyword (its bug B1); ours destroys it.
        rc, out, err = t.run("spalloc-ps", "--owner", "frank")
        check(f"{tag}: no ghost job is left queued after the refused --avoid-board",
              rc == 0 and "frank" not in out, show(rc, out, err))
    print(f"{tag} tools: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
