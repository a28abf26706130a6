#!/usr/bin/env python3
"""steward's targets (issue 7) from the harness's results: one row per target, one column
per system, each cell the same-run figure (ratio to the C baseline where the target is a
ratio), and whether steward meets it.

    python3 bench/summary.py RESULTS_DIR      # RESULTS_DIR/<system>/results.jsonl
"""
import json
import os
import statistics
import sys

res = sys.argv[1]
ORDER = ["baseline", "steward", "supervisord", "pm2"]
systems = sorted((d for d in os.listdir(res) if os.path.isfile(os.path.join(res, d, "results.jsonl"))),
                 key=lambda s: (ORDER.index(s) if s in ORDER else 99, s))
R = {s: [json.loads(l) for l in open(os.path.join(res, s, "results.jsonl")) if l.strip()] for s in systems}


def recs(s, scen, prefix=None, exact=None):
    out = []
    for r in R.get(s, []):
        v = r["variant"]
        if r["scenario"] != scen or (exact is not None and v != exact):
            continue
        if prefix is not None and not (v == prefix or v.startswith(prefix + "#")):
            continue
        out.append(r["data"])
    return out


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def last(s, scen, v):
    d = recs(s, scen, exact=v)
    return d[-1] if d else None


# Each metric: system -> (number or None, text). `None` = not measured.
def idle_pss(s):
    d = last(s, "idle", "n10")
    if not d:
        return None, "–"
    return d["pss_kb"] / 1024, f"{d['pss_kb'] / 1024:.2f} MB ({d['sup_procs']} proc)"


def idle_wakeups(s):
    d = last(s, "idle", "n10")
    if not d:
        return None, "–"
    return d["ctx_switches"], f"{d['ctx_switches']} cs, {d['cpu_ms']} ms CPU"


def restart(v, ratio=True):
    def f(s):
        d = last(s, "restart", v)
        if not d or s == "baseline":
            return (None, f"{d['median_ms']:.1f} ms" if d and "median_ms" in d else "–")
        if "median_ms" not in d or not d.get("ref_median_ms"):
            return None, f"{d.get('starts')} start(s), then none"
        r = d["median_ms"] / d["ref_median_ms"]
        extra = f"; no new start within 12 s after {d['starts']} starts" if d.get("stalled") else ""
        if not ratio:
            gaps = ", ".join(f"{g:.0f}" for g in d.get("gaps_ms", [])[:8])
            return None, f"gaps {gaps} ms{extra}"
        return r, f"×{r:.2f} ({d['median_ms']:.1f} vs {d['ref_median_ms']:.1f} ms){extra}"
    return f


def logs(rot):
    def f(s):
        sup = recs(s, "logs", prefix="rotate" if rot else "sup")
        base = recs(s, "logs", prefix="direct-rot" if rot else "direct")
        if not sup:
            return None, "–"
        rs = [a["wall_s"] / b["wall_s"] for a, b in zip(sup, base) if a.get("wall_s") and b.get("wall_s")]
        r = med(rs)
        ok = sum(1 for d in sup if d.get("exact"))
        txt = (f"×{r:.2f} " if r is not None else "") + f"({med([d.get('wall_s') for d in sup]):.2f} s), {ok}/{len(sup)} exact"
        if rot:
            txt += f", {med([d.get('files') for d in sup]):.0f} files"
        if ok < len(sup):
            r = float("inf")  # integrity failure misses the target whatever the speed
        return r, txt
    return f


def scale_start(s):
    sup = recs(s, "scale", prefix="sup")
    base = recs(s, "scale", prefix="baseline")
    if not sup:
        return None, "–"
    r = med([a["start_s"] / b["start_s"] for a, b in zip(sup, base)])
    if any(not d["start_ok"] for d in sup):
        r = float("inf")
    return r, f"×{r:.2f} ({med([d['start_s'] for d in sup]):.2f} vs {med([d['start_s'] for d in base]):.2f} s)"


def scale_pss(s):
    sup = recs(s, "scale", prefix="sup")
    if not sup:
        return None, "–"
    p = med([d["pss_kb"] for d in sup]) / 1024
    return p, f"{p:.2f} MB"


def stop_trap(s):
    d = last(s, "stop", "trap")
    b = last(s, "stop", "trap-baseline")
    if not d or not d["gone_ms"]:
        return None, "–"
    g = d["gone_ms"]["median"]
    txt = f"{g:.1f} ms"
    if b and b["gone_ms"]:
        txt += f" (baseline {b['gone_ms']['median']:.1f} ms)"
    if d.get("stopped") != d.get("tries"):
        g = float("inf")
        txt += f"; only {d.get('stopped')}/{d.get('tries')}"
    return g, txt


def grandchild(s):
    d = last(s, "stop", "grandchild")
    if not d:
        return None, "–"
    left = d["grandchild_left_running"]
    return (1 if left else 0), ("ORPHANED" if left else "killed")


def control(s):
    d = last(s, "control", "status")
    if not d:
        return None, "–"
    txt = f"{d['median']:.2f} ms (p90 {d['p90']:.2f}; baseline client {d.get('ref_median') or 0:.2f} ms)"
    return d["median"], txt


# The scale targets are for 500 programs; a run with another SCALE_N says how many it ran
# (and has no verdict for the memory target, which is for 500).
SCALE_N = next((r["data"].get("started") for s in systems for r in R[s] if r["scenario"] == "scale"), 500)
SCALE = "scale 500" if SCALE_N == 500 else f"scale {SCALE_N} (targets are for 500)"

rows = [
    ("idle, 10 programs: supervisor PSS", "≤ 3 MB", idle_pss, lambda v: v <= 3),
    ("idle, 10 programs: wakeups in 30 s", "0", idle_wakeups, lambda v: v == 0),
    ("restart gap, exits at once (fastest config)", "≤ 1.5×", restart("fast-0ms"), lambda v: v <= 1.5),
    ("restart gap, exits after 0.2 s (fastest config)", "≤ 1.5×", restart("fast-200ms"), lambda v: v <= 1.5),
    ("restart gap, exits at once (default config)", "(no target)", restart("default-0ms", ratio=False), None),
    ("log throughput, 200 MB, vs direct `>file`", "≤ 1.2×, exact", logs(False), lambda v: v <= 1.2),
    ("log throughput with rotation at 10 MiB", "≤ 1.2×, exact", logs(True), lambda v: v <= 1.2),
    (f"{SCALE}: time to all running", "≤ 1.5×", scale_start, lambda v: v <= 1.5),
    (f"{SCALE}: supervisor PSS", "≤ 8 MB", scale_pss, (lambda v: v <= 8) if SCALE_N == 500 else None),
    ("stop, TERM-trapping child: until gone", "≤ 5 ms", stop_trap, lambda v: v <= 5),
    ("stop, grandchild in the group", "killed", grandchild, lambda v: v == 0),
    ("`status` round trip (whole CLI process)", "≤ 3 ms", control, lambda v: v <= 3),
]

print("| target | goal | " + " | ".join(systems) + " | steward vs goal |")
print("|---|---|" + "---|" * len(systems) + "---|")
for name, goal, fn, ok in rows:
    cells = []
    verdict = "–"
    for s in systems:
        v, txt = fn(s)
        cells.append(txt)
        if s == "steward" and ok is not None and v is not None:
            verdict = "met" if ok(v) else "**missed**"
    print(f"| {name} | {goal} | " + " | ".join(c.replace("|", "/") for c in cells) + f" | {verdict} |")
