#!/usr/bin/env python3
"""`status` at scale: the whole CLI process against the harness's C client, same run.

    bench/status.sh [N ...]                      # builds, then runs this (10, 500, 5000)
    python3 bench/status.py STEWARD PBSUP N ...  # sizes N
    HELLO=PATH python3 bench/status.py ...       # also the floors (below)

For each N, one steward and one pbsup (the harness's C baseline supervisor, ../shared/bench)
each run N `sleep` programs. Once all run and 2 s have passed, the two clients are timed in
turns, RUNS times each after 2 warm-ups: `steward -c CONFIG status` (a process start,
finding the socket, one HTTP request, the table printed) and `pbsup -c SOCK status` (a C
process, one unix-socket round trip, the daemon writing a line per program). Output goes
to /dev/null for both. Prints one Markdown row per N: the medians, p90s and the ratio.

With HELLO (a Rust "hello" built in release, as bench/status.sh does), two floors are timed
in the same turns as the smallest N: that program, the least a Rust process costs to start
on this machine, and `steward --version`, the least the steward binary costs (the loader,
then clap). A second table gives each against the C client at that size, so a ratio target
can be read against what a Rust process or steward's binary takes before it does anything.
"""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from sleepers import children

STEWARD, PBSUP = sys.argv[1], sys.argv[2]
SIZES = [int(n) for n in sys.argv[3:]] or [10, 500, 5000]
RUNS = int(os.environ.get("RUNS", "20"))
HELLO = os.environ.get("HELLO")
FLOORS = [("a Rust \"hello\" (release)", [HELLO]), ("`steward --version`", [STEWARD, "--version"])] if HELLO else []


def wait_running(pid, n):
    deadline = time.monotonic() + 120
    while len(children(pid)) < n:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(children(pid))} of {n} programs ran after 120 s")
        time.sleep(0.05)


def timed(argv):
    t = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000


def start_steward(work, n):
    cfg = os.path.join(work, "steward.toml")
    with open(cfg, "w") as f:
        f.write(f'[supervisor]\nstate_dir = "{work}/state"\nlog_dir = "{work}/logs"\n')
        for i in range(n):
            f.write(f'[programs.p{i}]\ncommand = ["sleep", "100000"]\n')
    daemon = subprocess.Popen([STEWARD, "run", "-c", cfg], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return daemon, [STEWARD, "-c", cfg, "status"], [STEWARD, "-c", cfg, "shutdown"]


def start_pbsup(work, n):
    os.makedirs(f"{work}/programs")
    os.makedirs(f"{work}/logs")
    for i in range(n):
        with open(f"{work}/programs/p{i}", "w") as f:
            f.write(f"{work}/logs/p{i}.log\n/usr/bin/sleep\n100000\n")
    daemon = subprocess.Popen([PBSUP, work], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)
    sock = f"{work}/ctl.sock"
    return daemon, [PBSUP, "-c", sock, "status"], [PBSUP, "-c", sock, "shutdown"]


def stop(daemon, shutdown):
    try:
        subprocess.run(shutdown, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        daemon.wait(timeout=60)
    finally:
        if daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()


def p90(xs):
    return statistics.quantiles(xs, n=10)[-1]


print("| programs | steward status | C client (pbsup) | ×C client |")
print("|---:|---|---|---:|")
floor_times = {name: [] for name, _ in FLOORS}
client_times = []
for n in SIZES:
    # The floors are timed beside the smallest size, where starting is most of a call.
    floors = FLOORS if n == min(SIZES) else []
    works = [tempfile.mkdtemp(prefix="stst."), tempfile.mkdtemp(prefix="stpb.")]
    running = []
    try:
        running.append(start_steward(works[0], n))
        running.append(start_pbsup(works[1], n))
        for daemon, status, _ in running:
            wait_running(daemon.pid, n)
            deadline = time.monotonic() + 30
            while subprocess.run(status, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{status[0]} status never answered")
                time.sleep(0.05)
        time.sleep(2)
        times = [[], []]
        for _ in range(2):
            for _, status, _ in running:
                timed(status)
            for _, argv in floors:
                timed(argv)
        for _ in range(RUNS):
            for k, (_, status, _) in enumerate(running):
                times[k].append(timed(status))
            for name, argv in floors:
                floor_times[name].append(timed(argv))
        if floors:
            client_times = times[1]
        s, c = statistics.median(times[0]), statistics.median(times[1])
        print(f"| {n:,} | {s:.2f} ms (p90 {p90(times[0]):.2f}) | {c:.2f} ms (p90 {p90(times[1]):.2f}) | ×{s / c:.2f} |",
              flush=True)
    finally:
        for daemon, _, shutdown in running:
            stop(daemon, shutdown)
        for w in works:
            shutil.rmtree(w, ignore_errors=True)

if FLOORS:
    c = statistics.median(client_times)
    print()
    print(f"Floors, timed in the same turns as {min(SIZES):,} programs (C client: {c:.2f} ms):")
    print()
    print("| process | median | p90 | ×C client |")
    print("|---|---|---|---:|")
    for name, xs in floor_times.items():
        m = statistics.median(xs)
        print(f"| {name} | {m:.2f} ms | {p90(xs):.2f} ms | ×{m / c:.2f} |")
