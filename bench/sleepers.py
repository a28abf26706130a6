"""The `sleep` children of a supervisor, read from /proc (bench/storm.py, bench/status.py)."""
import os


def children(pid):
    """The pids of `pid`'s children that run `sleep` (exec'd)."""
    out = set()
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            stat = open(f"/proc/{p}/stat").read()
        except OSError:
            continue  # gone meanwhile
        comm_end = stat.rindex(")")
        if stat[stat.index("(") + 1:comm_end] == "sleep" and int(stat[comm_end + 2:].split()[1]) == pid:
            out.add(int(p))
    return out
