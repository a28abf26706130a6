#!/usr/bin/env python3
"""Rolling restarts under load, measured (bench/rolling.sh builds and runs this).

One run, one machine, so every figure is a ratio of two measurements taken minutes apart:
  - requests served per second during a rolling restart of 4 instances, versus steady state;
  - the longest gap between two successful responses a client sees, during the roll, versus
    steady state (and versus a stop-then-start on the program's own port, the control);
  - the time the whole roll takes, versus the sum of the 4 new processes' readiness delays
    (the least a one-at-a-time roll can take).

steward-testserver instances share one socket steward holds; steward-loadgen keeps
CONCURRENCY requests in flight and reports successes per 100 ms interval.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1]  # the folder with steward, steward-testserver, steward-loadgen
OUT = sys.argv[2]
INSTANCES = 4
READY_AFTER_MS = int(os.environ.get("READY_AFTER_MS", "300"))
CONCURRENCY = int(os.environ.get("CONCURRENCY", "32"))
STEADY_S = float(os.environ.get("STEADY_S", "3"))
REPS = int(os.environ.get("REPS", "3"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def steward(cfg, *args):
    return subprocess.run([f"{BIN}/steward", "-c", cfg, *args], capture_output=True, text=True, check=True)


def wait_running(cfg, n):
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            st = json.loads(steward(cfg, "status", "--json").stdout)
            if st.get("groups") and st["groups"][0]["running"] == n and st["groups"][0]["total"] == n:
                return st
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"steward did not run {n} instances in 30 s")


def wait_program(cfg):
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            st = json.loads(steward(cfg, "status", "--json").stdout)
            if st["programs"][0]["state"] == "running":
                return st
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.05)
    raise SystemExit("steward did not run the program in 30 s")


def load(port, seconds):
    return subprocess.Popen(
        [f"{BIN}/steward-loadgen", "--addr", f"127.0.0.1:{port}", "--concurrency", str(CONCURRENCY),
         "--duration", f"{seconds}s", "--interval", "100ms", "--records"],
        stdout=subprocess.PIPE, text=True)


def window_rate(report, start_s, end_s):
    """Successes per second over the whole 100 ms buckets inside [start_s, end_s)."""
    buckets = report["ok_per_interval"]
    first, last = int(start_s * 10) + 1, int(end_s * 10)
    inside = buckets[first:last]
    return sum(inside) / (len(inside) / 10) if inside else float("nan")


def run(held_socket):
    """One steward with 4 instances; steady load, then a restart under load."""
    d = tempfile.mkdtemp(prefix="stroll.")
    port = free_port()
    cfg = os.path.join(d, "steward.toml")
    server = f"{BIN}/steward-testserver"
    if held_socket:
        text = f"""
[programs.web]
command = ["{server}", "--ready-after", "{READY_AFTER_MS}ms"]
instances = {INSTANCES}
ready = "notify"
[programs.web.sockets.http]
listen = "127.0.0.1:{port}"
"""
    else:  # the control: one server that loads, then binds its own port; stop-then-start
        text = f"""
[programs.web]
command = ["/bin/sh", "-c", "sleep {READY_AFTER_MS / 1000}; exec {server} --listen 127.0.0.1:{port}"]
ready = "notify"
"""
    open(cfg, "w").write(text)
    daemon = subprocess.Popen([f"{BIN}/steward", "-c", cfg, "run"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        wait_running(cfg, INSTANCES) if held_socket else wait_program(cfg)
        total = STEADY_S * 2 + 4
        t0 = time.monotonic()
        lg = load(port, total)
        time.sleep(STEADY_S + 0.5)
        r0 = time.monotonic() - t0
        steward(cfg, "restart", "web")
        r1 = time.monotonic() - t0
        out, _ = lg.communicate()
        report = json.loads(out)
        steady = window_rate(report, 0.5, STEADY_S + 0.5)
        during = window_rate(report, r0, r1)
        times = [r["at_s"] for r in report["responses"]]

        def longest_gap(start_s, end_s):
            inside = [t for t in times if start_s <= t < end_s]
            return max((b - a for a, b in zip(inside, inside[1:])), default=float("nan")) * 1000

        return {
            "held_socket": held_socket,
            "failed": report["failed"],
            "counts": report["counts"],
            "steady_rps": steady,
            "roll_rps": during,
            "roll_s": r1 - r0,
            "steady_gap_ms": longest_gap(0.5, STEADY_S + 0.5),
            "roll_gap_ms": longest_gap(r0, r1 + 0.2),
        }
    finally:
        subprocess.run([f"{BIN}/steward", "-c", cfg, "shutdown"], capture_output=True)
        daemon.wait(timeout=30)


def main():
    rows = [run(True) for _ in range(REPS)] + [run(False)]
    json.dump(rows, open(os.path.join(OUT, "rolling.json"), "w"), indent=2)
    ready_sum = INSTANCES * READY_AFTER_MS / 1000
    lines = [
        f"rolling restart of {INSTANCES} instances, {CONCURRENCY} clients, readiness {READY_AFTER_MS} ms each",
        "",
        "| run | failed | req/s steady | req/s during the restart | ratio | longest gap steady | "
        "longest gap during | restart took | ÷ sum of readiness delays |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(rows):
        name = f"held socket, rolling #{i + 1}" if r["held_socket"] else "control: own port, stop-then-start"
        floor = ready_sum if r["held_socket"] else READY_AFTER_MS / 1000
        lines.append(
            f"| {name} | {r['failed']} | {r['steady_rps']:.0f} | {r['roll_rps']:.0f} | "
            f"×{r['roll_rps'] / r['steady_rps']:.2f} | {r['steady_gap_ms']:.1f} ms | {r['roll_gap_ms']:.1f} ms | "
            f"{r['roll_s']:.2f} s | ×{r['roll_s'] / floor:.2f} |")
    text = "\n".join(lines)
    open(os.path.join(OUT, "rolling.md"), "w").write(text + "\n")
    print(text)


main()
