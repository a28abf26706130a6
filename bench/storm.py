#!/usr/bin/env python3
"""Restarts at scale: steward's CPU time per restart, and `status` while thousands restart.

    bench/storm.sh [N ...]                 # builds steward in release, then runs this
    python3 bench/storm.py STEWARD_BIN N   # one size

With N `sleep` programs (default settings, logs without rotation as bench/steward.sh
writes them), in one steward:
  1. `status` round trips while idle (the whole CLI process, median of 20);
  2. 50 single restarts one after another (`steward restart pK`): steward's CPU per restart;
  3. `steward restart --all`: its wall time, and steward's CPU per restart;
  4. a crash storm: every program SIGKILLed at once; steward's CPU per restart until all
     N run again (new pids), and `status` round trips measured back to back meanwhile.
     After each, `steward --version` is timed too: it starts the same binary but asks
     steward nothing, so when it is slow as well, the machine was (thousands of processes
     starting at once on two cores), not steward's answer.
steward's CPU time is the sum of its threads' run time in /proc/PID/task/*/schedstat
(nanoseconds), not clock ticks. In the storm it leaves out the API thread's: that answers
the `status` requests this script makes meanwhile (a 5,000-row table each), whose number
grows with the storm's length, and is not a restart's cost.
"""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from sleepers import child_pids, children, runs_sleep, write_config

BIN, N = sys.argv[1], int(sys.argv[2])
work = tempfile.mkdtemp(prefix="storm.")
cfg = write_config(work, N)


def ctl(*args):
    subprocess.run([BIN, "-c", cfg, *args], check=True, stdout=subprocess.DEVNULL)


def cpu_ns(pid, api=True):
    """steward's CPU time; without its API thread's when not `api`."""
    total = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            if not api and open(f"/proc/{pid}/task/{t}/comm").read().strip() == "steward-api":
                continue
            total += int(open(f"/proc/{pid}/task/{t}/schedstat").read().split()[0])
        except (OSError, ValueError):
            pass  # a thread that just ended
    return total


def replaced(pid, old):
    """Whether N children run `sleep` and none of them is in `old`; the cheap test first, as
    the storm's loop calls it between round trips."""
    now = child_pids(pid)
    return len(now) >= N and not (now & old) and all(runs_sleep(p) for p in now)


def wait_running(pid, old=frozenset()):
    while not replaced(pid, old):
        time.sleep(0.05)
    return children(pid)


def status_ms():
    t = time.perf_counter()
    subprocess.run([BIN, "-c", cfg, "status"], check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1000


daemon = subprocess.Popen([BIN, "run", "-c", cfg], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, start_new_session=True)
try:
    pids = wait_running(daemon.pid)
    time.sleep(2)
    idle = statistics.median(status_ms() for _ in range(20))

    c0 = cpu_ns(daemon.pid)
    for i in range(50):
        ctl("restart", f"p{i % N}")
    single_us = (cpu_ns(daemon.pid) - c0) / 50 / 1000

    pids = children(daemon.pid)
    c0, t0 = cpu_ns(daemon.pid), time.perf_counter()
    ctl("restart", "--all")
    all_s = time.perf_counter() - t0
    all_us = (cpu_ns(daemon.pid) - c0) / N / 1000
    pids = wait_running(daemon.pid, frozenset(pids))

    time.sleep(2)
    c0, t0 = cpu_ns(daemon.pid, api=False), time.perf_counter()
    for p in pids:
        os.kill(p, signal.SIGKILL)
    during, control = [], []
    while True:
        during.append(status_ms())
        t = time.perf_counter()
        subprocess.run([BIN, "--version"], check=True, stdout=subprocess.DEVNULL)
        control.append((time.perf_counter() - t) * 1000)
        if replaced(daemon.pid, pids):
            break
    storm_s = time.perf_counter() - t0
    storm_us = (cpu_ns(daemon.pid, api=False) - c0) / N / 1000
    ctl("shutdown")
    daemon.wait(timeout=60)
finally:
    if daemon.poll() is None:
        daemon.kill()
        daemon.wait()
    shutil.rmtree(work, ignore_errors=True)

print(f"| {N:,} | {idle:.2f} ms | {single_us:.0f} µs | {all_s:.2f} s, {all_us:.0f} µs each (×{all_us / single_us:.2f}) "
      f"| {storm_s:.2f} s, {storm_us:.0f} µs each (×{storm_us / single_us:.2f}) "
      f"| {statistics.median(during):.2f} ms, max {max(during):.2f} ms (×{statistics.median(during) / idle:.2f}) "
      f"| {statistics.median(control):.2f} ms, max {max(control):.2f} ms |")
