"""The `sleep` children of a supervisor, read from /proc, and a config of N of them
(bench/storm.py, bench/status.py, bench/stopfloor.py).

A process's children are listed in /proc/PID/task/TID/children, one file per thread, which
costs about 2 ms for 5,000 children. Scanning all of /proc instead cost 83 ms of CPU each
time, which in bench/storm.py's loop took most of a core from the storm it measured.
"""
import os


def child_pids(pid):
    """The pids of `pid`'s children, whatever they run (some may not have exec'd yet)."""
    out = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out.update(int(p) for p in open(f"/proc/{pid}/task/{tid}/children").read().split())
        except OSError:
            pass  # a thread that just ended
    return out


def runs_sleep(pid):
    try:
        return open(f"/proc/{pid}/comm").read().strip() == "sleep"
    except OSError:
        return False  # gone meanwhile


def children(pid):
    """The pids of `pid`'s children that run `sleep` (exec'd)."""
    return {p for p in child_pids(pid) if runs_sleep(p)}


def write_config(work, n):
    """A steward.toml in `work` with `n` programs `p0`.. running `sleep 100000`, logs without
    rotation as bench/steward.sh writes them; returns its path."""
    cfg = os.path.join(work, "steward.toml")
    with open(cfg, "w") as f:
        f.write(f'[supervisor]\nstate_dir = "{work}/state"\nlog_dir = "{work}/logs"\n')
        for i in range(n):
            f.write(f'[programs.p{i}]\ncommand = ["sleep", "100000"]\n[programs.p{i}.log]\nmax_size = 0\n')
    return cfg
