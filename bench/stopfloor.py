#!/usr/bin/env python3
"""Stopping N programs against what the kernel alone takes, with and without a cgroup each.

    bench/stopfloor.sh [N]                          # builds steward in release, then runs this
    python3 bench/stopfloor.py STEWARD_BIN N [REPS]

Four ways to stop N `sleep` processes, alternated within each rep so that they share the
machine's moments:
  - floor: this script as the least a supervisor can do. It starts each `sleep` in a session
    of its own (as steward does), then times SIGTERM to every one and reaping them all.
  - floor, a cgroup each: the same, with each `sleep` born in a cgroup of its own, and each
    cgroup removed once its process is reaped: what containment costs the kernel at stop.
  - steward: `steward shutdown` until the steward process is gone (default settings, so a
    cgroup per program where it can make them, as bench/steward.sh runs it).
  - steward, process groups only: the same, with the cgroup2 mount read-only in a mount
    namespace of its own, so steward falls back to process groups (needs root and unshare).
steward's time includes starting the `steward shutdown` process (about 1.5 ms).

The cgroup ways need a writable cgroup2 hierarchy (root); without one they are left out.
"""
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from sleepers import children, write_config

BIN, N = sys.argv[1], int(sys.argv[2])
REPS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
SETTLE = 1.0  # after all run, before the stop: the starts' after-effects die down


def cgroup_mount():
    """Where cgroup2 is mounted, or None."""
    return next((f[1] for f in map(str.split, open("/proc/self/mounts")) if f[2] == "cgroup2"), None)


def cgroup2_dir():
    """This process's cgroup2 group, as a directory, or None without a cgroup2 mount."""
    mount = cgroup_mount()
    own = next((line[3:].strip() for line in open("/proc/self/cgroup") if line.startswith("0::")), None)
    if mount is None or own is None:
        return None
    return os.path.join(mount, own.lstrip("/"))


def floor(contained):
    """Seconds from the first SIGTERM until every child is reaped (and its cgroup gone)."""
    base = None
    if contained:
        base = os.path.join(cgroup2_dir(), f"stopfloor-{os.getpid()}")
        os.mkdir(base)
    pids = {}
    for i in range(N):
        group = None
        if base:
            group = os.path.join(base, f"g{i}")
            os.mkdir(group)
        pid = os.fork()
        if pid == 0:
            try:
                if group:
                    with open(os.path.join(group, "cgroup.procs"), "w") as f:
                        f.write("0")
                os.setsid()
                os.execv("/usr/bin/sleep", ["sleep", "100000"])
            finally:
                os._exit(127)
        pids[pid] = group
    # Waited for as steward's children are: reading their names makes the kernel keep /proc
    # entries for them, which each exit then has to drop.
    while len(children(os.getpid())) < N:
        time.sleep(0.1)
    time.sleep(SETTLE)
    t0 = time.perf_counter()
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    for _ in range(N):
        pid, _ = os.wait()
        if pids[pid]:
            os.rmdir(pids[pid])
    took = time.perf_counter() - t0
    if base:
        os.rmdir(base)
    return took


def steward(groups_only):
    """Seconds from `steward shutdown` until steward is gone."""
    work = tempfile.mkdtemp(prefix="stopfloor.")
    cfg = write_config(work, N)
    run = [BIN, "run", "-c", cfg]
    if groups_only:
        # The mount is made read-only in a mount namespace of steward's alone; `exec` keeps
        # the pid, so steward is the process started here.
        script = ('mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"')
        run = ["unshare", "-m", "sh", "-c", script, "sh", cgroup_mount(), *run]
    log = open(os.path.join(work, "steward.log"), "w")
    d = subprocess.Popen(run, stdout=log, stderr=log, start_new_session=True)
    try:
        while len(children(d.pid)) < N:
            if d.poll() is not None:
                sys.exit(f"steward exited early; see {work}/steward.log")
            time.sleep(0.1)
        time.sleep(SETTLE)
        t0 = time.perf_counter()
        client = subprocess.Popen([BIN, "-c", cfg, "shutdown"], stdout=subprocess.DEVNULL)
        d.wait()
        took = time.perf_counter() - t0
        # Reaped here, not by the floor's `os.wait` in the next way.
        client.wait()
    finally:
        if d.poll() is None:
            d.kill()
            d.wait()
    log.close()
    if groups_only and "process groups only" not in open(os.path.join(work, "steward.log")).read():
        sys.exit(f"steward made cgroups although the mount was read-only; see {work}/steward.log")
    shutil.rmtree(work, ignore_errors=True)
    return took


def can_contain():
    here = cgroup2_dir()
    if here is None or os.geteuid() != 0:
        return False
    probe = os.path.join(here, f"stopfloor-probe-{os.getpid()}")
    try:
        os.mkdir(probe)
        os.rmdir(probe)
        return True
    except OSError:
        return False


if can_contain():
    ways = [("floor", lambda: floor(False)), ("floor, a cgroup each", lambda: floor(True)),
            ("steward", lambda: steward(False)), ("steward, process groups only", lambda: steward(True))]
else:
    print("no writable cgroup2 hierarchy (or not root): the cgroup ways are left out", file=sys.stderr)
    ways = [("floor", lambda: floor(False)), ("steward", lambda: steward(False))]

times = {name: [] for name, _ in ways}
for rep in range(REPS):
    for name, way in ways:
        times[name].append(way())
        print(f"  rep {rep + 1}: {name}: {times[name][-1]:.3f} s", file=sys.stderr, flush=True)


def cell(name):
    v = sorted(times[name])
    return f"{statistics.median(v):.3f} s ({v[0]:.3f}–{v[-1]:.3f})"


def ratio(name, to):
    return f"×{statistics.median(times[name]) / statistics.median(times[to]):.2f}"


print(f"| {N:,} programs, {REPS} runs each | stop all: median (range) | ×floor | ×floor with a cgroup each |")
print("|---|---|---:|---:|")
contained = "floor, a cgroup each" in times
for name, _ in ways:
    print(f"| {name} | {cell(name)} | {ratio(name, 'floor')} | "
          f"{ratio(name, 'floor, a cgroup each') if contained else '–'} |")
