#!/usr/bin/env python3
"""What each feature costs when it is turned on: steward idle with 10 quiet programs, once
per config variant, in one run. For each: PSS (from /proc/PID/smaps_rollup, after the start
settles), then CPU time and wakeups (context switches of all of steward's threads) over a
window. A feature that is configured but has nothing to do should cost no wakeups; the ones
that work on a timer (health probes, memory alerts) say how often.

    bench/features.py STEWARD_BINARY [WINDOW_SECONDS]
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

STEWARD = os.path.abspath(sys.argv[1])
WINDOW = float(sys.argv[2]) if len(sys.argv) > 2 else 20.0
SETTLE = 12.0
TOKEN_SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"  # sha256("test")

def programs(extra=""):
    return "".join(f'[programs.p{i}]\ncommand = ["sleep", "100000"]\n{extra}' for i in range(10))

VARIANTS = [
    ("nothing but 10 programs", programs()),
    ("[metrics] listen", programs() + '[metrics]\nlisten = "127.0.0.1:0"\n'),
    ("[api] listen (remote API, loopback)", programs()
        + f'[api]\nlisten = "127.0.0.1:0"\n[[api.tokens]]\nname = "a"\nrole = "viewer"\ntoken_sha256 = "{TOKEN_SHA}"\n'),
    ("[dashboard] listen", programs()
        + f'[dashboard]\nlisten = "127.0.0.1:0"\n[api]\n[[api.tokens]]\nname = "a"\nrole = "viewer"\ntoken_sha256 = "{TOKEN_SHA}"\n'),
    ("[[alerts]] on restarts", programs() + '[[alerts]]\nname = "flapping"\nwhen = "restarts > 3 within 10m"\n'),
    ("[[alerts]] on memory (samples every 5 s)", programs() + '[[alerts]]\nname = "big"\nwhen = "memory > 1GB"\n'),
    ("health check on each (tcp, every 10 s)", programs('health = { tcp = "127.0.0.1:9", interval = "10s" }\n')),
    ("[[ship]] one Loki sink, programs silent", programs() + '[[ship]]\nkind = "loki"\nurl = "http://127.0.0.1:9"\n'),
    ("log format = \"cri\"", programs('log = { format = "cri" }\n')),
    ("one program with instances = 10", '[programs.p]\ncommand = ["sleep", "100000"]\ninstances = 10\n'),
    ("watch_config = true", '[supervisor]\nwatch_config = true\n' + programs()),
]

def threads_switches(pid):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total

def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def pss_kb(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0

def measure(config):
    work = tempfile.mkdtemp(prefix="stfeat.")
    try:
        path = os.path.join(work, "steward.toml")
        with open(path, "w") as f:
            f.write(config)
        proc = subprocess.Popen([STEWARD, "run", "-c", path], stdout=subprocess.DEVNULL,
                                stderr=open(os.path.join(work, "log"), "w"), start_new_session=True)
        try:
            # Started: every program running, by the CLI over the local socket.
            deadline = time.time() + 20
            while time.time() < deadline:
                out = subprocess.run([STEWARD, "status", "-c", path], capture_output=True, text=True)
                if out.returncode == 0 and out.stdout.count("running") >= 10:
                    break
                time.sleep(0.1)
            time.sleep(SETTLE)  # the start's own work settles (and tokio's idle blocking threads exit, 10 s)
            pss = pss_kb(proc.pid)
            s0, c0 = threads_switches(proc.pid), cpu_seconds(proc.pid)
            time.sleep(WINDOW)
            s1, c1 = threads_switches(proc.pid), cpu_seconds(proc.pid)
            return pss, (c1 - c0) / WINDOW * 1000, (s1 - s0) / WINDOW
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)

def main():
    print(f"steward idle with 10 quiet programs, one variant at a time; window {WINDOW:g} s")
    print()
    print("| turned on | PSS | CPU | wakeups (context switches) |")
    print("|---|---:|---:|---:|")
    for name, config in VARIANTS:
        pss, cpu, switches = measure(config)
        print(f"| {name} | {pss / 1024:.2f} MB | {cpu:.1f} ms/s | {switches:.1f}/s |", flush=True)

if __name__ == "__main__":
    main()
