#!/usr/bin/env python3
"""Turns bench/run.sh's results (one JSON object a line) into the Markdown table of BENCHMARKS.md.

  report.py RESULTS.jsonl ALLOC_SCALE.md --command CMD --date DATE --cpu CPU --load LOAD > table.md
  report.py --splice table.md BENCHMARKS.md    # replace what lies between the bench markers
"""
import json
import statistics
import sys

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def splice(table_path, doc_path):
    table = open(table_path).read().rstrip("\n")
    try:
        doc = open(doc_path).read()
    except FileNotFoundError:
        doc = "# Benchmarks\n\n%s\n%s\n" % (BEGIN, END)
    if BEGIN not in doc or END not in doc:
        doc = doc.rstrip("\n") + "\n\n%s\n%s\n" % (BEGIN, END)
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    open(doc_path, "w").write(head + BEGIN + "\n" + table + "\n" + END + tail)


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return "%.1f×" % (a / b)


def f(v, fmt="%.0f"):
    return "–" if v is None else fmt % v


def state_section(rows, w):
    """Durable state on against --no-state (bench/state.sh's results)."""
    pick = lambda label, test: [r for r in rows if r.get("label") == label and r.get("test") == test]  # noqa: E731
    one = lambda label, test: (pick(label, test) or [None])[-1]  # noqa: E731
    base = one("no-state", "cycles wait ready")
    if not base:
        return
    w("### 7. Durable state on (`bench/state.sh`)")
    w("")
    w("Job cycles (create_job(1), poll `get_job_state` every 200 µs until READY, destroy_job) on the "
      "small machine, one client; our server with `--no-state`, with a state file (the default "
      "`synchronous = \"normal\"`: survives `kill -9`) and with `[store] synchronous = \"full\"` "
      "(survives a power cut: one flush per commit group):")
    w("")
    w("| our server | cycles/s | p50 µs | p99 µs | server CPU µs/cycle | against `--no-state` |")
    w("| --- | --- | --- | --- | --- | --- |")
    for label, name in (("no-state", "`--no-state`"), ("state", "state on"),
                        ("state full", "state on, `synchronous = \"full\"`")):
        r = one(label, "cycles wait ready")
        if r:
            w("| %s | %.0f | %.0f | %.0f | %s | %s |" % (
                name, r["rate"], r["p50_us"], r["p99_us"], f(r["cpu_us_per_call"]),
                "%.2f×" % (r["rate"] / base["rate"])))
    st = one("state", "cycles wait ready")
    if st:
        w("")
        w("Targets: state on at least 0.7× the `--no-state` rate: %.2f×: **%s**; p99 under 1 ms: "
          "%.0f µs: **%s**." % (st["rate"] / base["rate"], "met" if st["rate"] >= 0.7 * base["rate"] else "missed",
                               st["p99_us"], "met" if st["p99_us"] < 1000 else "missed"))
    w("")
    n = one("null", "16 clients get_job_state")
    rows16 = [(name, one(label, "16 clients get_job_state")) for label, name in
              (("no-state", "`--no-state`"), ("state", "state on"))]
    if n and n["cpu_us_per_call"] and any(r for _, r in rows16):
        w("16 clients calling `get_job_state` (5,000 calls each, so that /proc's 10 ms ticks are 0.125 µs "
          "a call): server CPU per call against the null "
          "server's %.1f µs:" % n["cpu_us_per_call"])
        w("")
        w("| our server | calls/s | p99 µs | server CPU µs/call | against the null server |")
        w("| --- | --- | --- | --- | --- |")
        for name, r in rows16:
            if r and r["cpu_us_per_call"]:
                w("| %s | %.0f | %.0f | %.1f | %.2f× |" % (
                    name, r["rate"], r["p99_us"], r["cpu_us_per_call"], r["cpu_us_per_call"] / n["cpu_us_per_call"]))
        w("")
    q0, q1, qr = one("no-state", "queue"), one("state", "queue"), one("reference", "queue")
    if q0 and q1:
        med = lambda d, k: statistics.median(x[k] for x in d["rounds"]) * 1e3  # noqa: E731
        w("1,000 single-board jobs on the 1,200-board machine (`queue_alloc.py --jobs 1000`, median of %d "
          "rounds, ms):" % len(q1["rounds"]))
        w("")
        w("| phase | `--no-state` | state on | state on against `--no-state` | reference | reference against state on |")
        w("| --- | --- | --- | --- | --- | --- |")
        for k, name in (("idle_create_s", "1,000 creates on the idle machine"),
                        ("queued_create_s", "1,000 creates queued behind a whole-machine job"),
                        ("alloc_s", "blocker destroyed → all allocated"),
                        ("ready_s", "blocker destroyed → all READY"),
                        ("idle_create_server_cpu_s", "server CPU, 1,000 creates on the idle machine"),
                        ("server_cpu_s", "server CPU, blocker destroyed → all READY")):
            if any(x.get(k) is None for d in (q0, q1) for x in d["rounds"]):
                continue
            a, b = med(q0, k), med(q1, k)
            c = med(qr, k) if qr and all(x.get(k) is not None for x in qr["rounds"]) else None
            w("| %s | %.1f | %.1f | %s | %s | %s |" % (
                name, a, b, "%.2f×" % (b / a) if a else "–", f(c, "%.1f"), ratio(c, b)))
        w("")


def main():
    if sys.argv[1] == "--splice":
        splice(sys.argv[2], sys.argv[3])
        return
    if sys.argv[1] == "--state":
        o = []
        state_section([json.loads(l) for l in open(sys.argv[2]) if l.strip()], o.append)
        print("\n".join(o))
        return
    res_path, scale_path = sys.argv[1], sys.argv[2]
    opts = dict(zip(sys.argv[3::2], sys.argv[4::2]))
    rows = [json.loads(l) for l in open(res_path) if l.strip()]
    pick = lambda label, test: [r for r in rows if r.get("label") == label and r.get("test") == test]  # noqa: E731
    one = lambda label, test: (pick(label, test) or [None])[-1]  # noqa: E731
    o = []
    w = o.append
    w("Latest run: `%s`, %s, on %s (2 vCPUs, shared with other work; load average %s)."
      % (opts.get("--command"), opts.get("--date"), opts.get("--cpu"), opts.get("--load")))
    w("")

    # 1. Tools.
    w("### 1. Tool latency: whole process, wall ms (median over runs and rounds; target ≥ 30× faster)")
    w("")
    w("| command (against the reference server) | Python tools | ours | ratio | ≥ 30×? | ours against our server |")
    w("| --- | --- | --- | --- | --- | --- |")
    ref_t, our_t, our_o = pick("reference tools", "tools"), pick("our tools", "tools"), pick("our tools, our server", "tools")
    if ref_t and our_t:
        for i, t in enumerate(ref_t[0]["tools"]):
            name = t["tool"]
            rm = statistics.median(r["tools"][i]["median_ms"] for r in ref_t)
            om = statistics.median(r["tools"][i]["median_ms"] for r in our_t)
            oo = our_o[0]["tools"][i]["median_ms"] if our_o else None
            bad = [r["tools"][i]["rc"] for r in our_t + ref_t if r["tools"][i]["rc"] != 0]
            w("| `%s`%s | %.1f | %.2f | %s | %s | %s |" % (
                name, " (exit %s)" % bad if bad else "", rm, om, ratio(rm, om),
                "yes" if rm / om >= 30 else "**no**", f(oo, "%.2f")))
    w("")

    # 2. Round trips.
    w("### 2. Protocol round trips (`spalloc-load`, same generator and machine for both)")
    w("")
    floors = pick("floor", "echo floor")
    floor_p50 = statistics.median(r["p50_us"] for r in floors) if floors else None
    w("Loopback floor (`spalloc-load echo` against its own echo server, 51-byte line): "
      "p50 %s µs, %s round trips/s (median of %d runs)." % (
          f(floor_p50, "%.1f"), f(statistics.median(r["rate"] for r in floors) if floors else None), len(floors)))
    w("")
    for test in ("seq get_job_state", "16 clients get_job_state"):
        n = one("null", test)
        if n:
            w("Ceiling, `bench/tools/null_server.c` (canned reply, no work), %s: %.0f calls/s, p50 %.0f µs, "
              "p99 %.0f µs, server CPU %.1f µs/call." % (test, n["rate"], n["p50_us"], n["p99_us"], n["cpu_us_per_call"] or 0))
            w("")
    w("| test | reference calls/s | p50 / p99 µs | server CPU µs/call | ours calls/s | p50 / p99 µs | server CPU µs/call | calls/s ratio | CPU ratio |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    tests = ["seq version", "seq get_job_state", "16 clients version", "16 clients get_job_state"]
    for test in tests:
        r, u = one("reference", test), one("ours", test)
        if not r or not u:
            continue
        w("| %s | %.0f | %.0f / %.0f | %s | %.0f | %.0f / %.0f | %s | %s | %s |" % (
            test, r["rate"], r["p50_us"], r["p99_us"], f(r["cpu_us_per_call"], "%.1f"),
            u["rate"], u["p50_us"], u["p99_us"], f(u["cpu_us_per_call"], "%.1f"),
            ratio(u["rate"], r["rate"]), ratio(r["cpu_us_per_call"], u["cpu_us_per_call"])))
    w("")
    s, c = one("ours", "seq get_job_state"), one("ours", "16 clients get_job_state")
    rc = one("reference", "16 clients get_job_state")
    if s and c and rc and floor_p50:
        w("Targets: sequential p50 within 2× the floor: %.1f µs against 2 × %.1f = %.1f µs: **%s**; "
          "server CPU per call with 16 clients ≥ 5× less than the reference: %s: **%s**; "
          "p99 with 16 clients under 1 ms: %.0f µs: **%s**." % (
              s["p50_us"], floor_p50, 2 * floor_p50, "met" if s["p50_us"] <= 2 * floor_p50 else "missed",
              ratio(rc["cpu_us_per_call"], c["cpu_us_per_call"]),
              "met" if c["cpu_us_per_call"] and rc["cpu_us_per_call"] / c["cpu_us_per_call"] >= 5 else "missed",
              c["p99_us"], "met" if c["p99_us"] < 1000 else "missed"))
        w("")

    # 3 and 6. Cycles.
    w("### 3 and 6. Job cycles: create_job(1), until READY, destroy_job (small machine, no free delay, no power-on wait)")
    w("")
    w("| waiting by | reference cycles/s | p50 ms | server CPU ms/cycle | ours cycles/s | p50 ms | server CPU ms/cycle | ratio |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for test, name in (("cycles wait ready", "polling `get_job_state` every 200 µs"),
                       ("cycles wait ready notify", "`notify_job` notifications (as `Job` does)")):
        r, u = one("reference", test), one("ours", test)
        if not r or not u:
            continue
        cpu = lambda x: None if x["cpu_us_per_call"] is None else x["cpu_us_per_call"] / 1e3  # noqa: E731
        w("| %s | %.0f | %.2f | %s | %.0f | %.3f | %s | %s |" % (
            name, r["rate"], r["p50_us"] / 1e3, f(cpu(r), "%.2f"), u["rate"], u["p50_us"] / 1e3,
            f(cpu(u), "%.3f"), ratio(u["rate"], r["rate"])))
    w("")

    # 4. Queue.
    w("### 4. Allocation at scale")
    w("")
    r, u = one("reference", "queue"), one("ours", "queue")
    if r and u:
        w("Through the protocol: `bench/tools/queue_alloc.py --jobs %d` (same Python client for both) on a "
          "20×20-triad, %d-board machine; median of %d rounds, ms:" % (u["jobs"], u["boards"], len(u["rounds"])))
        w("")
        w("| phase | reference | ours | ratio |")
        w("| --- | --- | --- | --- |")
        med = lambda d, k: statistics.median(x[k] for x in d["rounds"]) * 1e3  # noqa: E731
        for k, name in (("idle_create_s", "%d creates on the idle machine (each placed at once)"),
                        ("queued_create_s", "%d creates queued behind a whole-machine job"),
                        ("alloc_s", "blocker destroyed → all %d allocated"),
                        ("ready_s", "blocker destroyed → all %d READY"),
                        ("server_cpu_s", "server CPU, blocker destroyed → all READY")):
            name = name % u["jobs"] if "%d" in name else name
            w("| %s | %.1f | %.1f | %s |" % (name, med(r, k), med(u, k), ratio(med(r, k), med(u, k))))
        w("")
    w("The allocator alone (`cargo bench -p spalloc-bench --bench alloc_scale`: the sans-I/O "
      "`Controller`, BMP requests completed at once; 95% single-board jobs, 5% two-board or 1×1-triad; "
      "median of 3; a job that cannot fit blocks the queue behind it, FIFO as in "
      "the reference, so small machines place fewer than were queued):")
    w("")
    o.extend(l.rstrip("\n") for l in open(scale_path) if l.strip())
    w("")

    # 5. Memory.
    w("### 5. Server resident memory (VmRSS, MiB)")
    w("")
    w("| server | idle | with 1,000 idle connections | per connection | with 1,000 live jobs | peak |")
    w("| --- | --- | --- | --- | --- | --- |")
    mib = lambda k: k / 1024.0  # noqa: E731
    for label in ("reference small", "ours small", "reference huge", "ours huge"):
        m = one(label, "memory")
        if not m:
            continue
        w("| %s (%s) | %.1f | %.1f | %.1f KiB | %s | %.1f |" % (
            label.split()[0], "6 boards" if "small" in label else "1,200 boards",
            mib(m["idle_kib"]), mib(m["conns_kib"]),
            (m["conns_kib"] - m["idle_kib"]) / max(1, m["connections"]),
            "%.1f" % mib(m["jobs_kib"]) if m["jobs"] else "–", mib(m["peak_kib"])))
    w("")
    w("\"Idle\" is after sections 2, 3 and 6 (6 boards) or 4 (1,200 boards) ran on the same "
      "process: ours keeps every finished job's usage record for quotas and usage reports "
      "(64 bytes and its new strings, about 0.15-0.3 KB a job in all: \"Memory per finished "
      "job\" below), so its figure grows with the jobs those sections ran (over 100,000 on the "
      "small machine); the reference keeps no usage, only the reasons of its last 1,200 "
      "destroyed jobs. A fresh server of ours (6 boards, `--no-state`) starts at about 2 MiB.")
    w("")
    state_section(rows, w)
    print("\n".join(o))


if __name__ == "__main__":
    main()
