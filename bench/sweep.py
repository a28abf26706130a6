#!/usr/bin/env python3
"""The harness's scale scenario at several program counts (bench/run.sh sweep): a table and
three charts.

    python3 bench/sweep.py RESULTS_ROOT OUTDIR    # RESULTS_ROOT/n<programs>/<system>/results.jsonl

Writes OUTDIR/sweep.csv, sweep.md, sweep-start.png, sweep-memory.png and sweep-stop.png
(matplotlib). A point is the median over the run's `sup#k` reps; its ratios are to the median
of the `baseline#k` reps the harness interleaved in the same system's run. Points whose reps
did not all start (or stop) are left out of that chart and noted in the table.
"""
import csv
import json
import os
import re
import statistics
import sys

root, out = sys.argv[1:3]
ORDER = ["baseline", "steward", "supervisord", "pm2"]
STYLE = {"baseline": dict(color="#555555", linestyle="--", label="baseline (C fork/exec)"),
         "steward": dict(color="#1f77b4"), "supervisord": dict(color="#ff7f0e"), "pm2": dict(color="#2ca02c")}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def ratio(a, b):
    return a / b if a is not None and b else None


def scale_records(path):
    recs = []
    for line in open(path):
        try:
            r = json.loads(line)
        except ValueError:  # a rep whose measurement failed leaves `"data":}`
            continue
        if r.get("scenario") == "scale":
            recs.append((r["variant"].split("#")[0], r["data"]))
    return recs


rows, skipped = [], {}
sizes = sorted(int(m.group(1)) for d in os.listdir(root) if (m := re.fullmatch(r"n(\d+)", d)))
for n in sizes:
    d = os.path.join(root, f"n{n}")
    if os.path.isfile(os.path.join(d, "skipped.txt")):
        for line in open(os.path.join(d, "skipped.txt")):
            if line.strip():
                sys_, why = (line.split(None, 1) + [""])[:2]
                skipped.setdefault((n, why.strip()), []).append(sys_)
    for s in os.listdir(d):
        path = os.path.join(d, s, "results.jsonl")
        if not os.path.isfile(path):
            continue
        recs = scale_records(path)
        sup = [x for v, x in recs if v == "sup"]
        base = [x for v, x in recs if v == "baseline"]
        if not sup:
            continue
        row = {"programs": n, "system": s, "reps": len(sup)}
        for k in ("start_s", "stop_children_s", "stop_all_s"):
            row[k] = med([x.get(k) for x in sup])
        for k in ("pss", "rss"):
            kb = med([x.get(f"{k}_kb") for x in sup])
            row[f"{k}_mb"] = kb / 1024 if kb is not None else None
        row["baseline_start_s"] = med([x.get("start_s") for x in base])
        row["baseline_stop_all_s"] = med([x.get("stop_all_s") for x in base])
        # The baseline against itself would only show the noise between two of its runs.
        theirs = s != "baseline"
        row["start_x_baseline"] = ratio(row["start_s"], row["baseline_start_s"]) if theirs else None
        row["stop_all_x_baseline"] = ratio(row["stop_all_s"], row["baseline_stop_all_s"]) if theirs else None
        row["started"] = min(x.get("started", 0) for x in sup)
        row["start_ok"] = all(x.get("start_ok") for x in sup)
        row["stop_ok"] = all(x.get("stop_ok") and x.get("sup_all_gone") for x in sup)
        rows.append(row)
if not rows:
    sys.exit(f"sweep.py: no scale results under {root}/n<programs>/<system>/results.jsonl")
rank = lambda s: (ORDER.index(s) if s in ORDER else len(ORDER), s)  # noqa: E731
rows.sort(key=lambda r: (r["programs"], rank(r["system"])))
systems = sorted({r["system"] for r in rows}, key=rank)
reps = sorted({r["reps"] for r in rows})
reps_txt = f"median of {reps[0]}" + (f"–{reps[-1]}" if len(reps) > 1 else "") + (" reps" if reps[-1] > 1 else " rep")
os.makedirs(out, exist_ok=True)

fields = ["programs", "system", "reps", "start_s", "start_x_baseline", "pss_mb", "rss_mb", "stop_children_s",
          "stop_all_s", "stop_all_x_baseline", "baseline_start_s", "baseline_stop_all_s", "started", "start_ok",
          "stop_ok"]
with open(os.path.join(out, "sweep.csv"), "w", newline="") as f:
    w = csv.DictWriter(f, fields)
    w.writeheader()
    for r in rows:
        w.writerow({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()})


def num(v, fmt):
    return "–" if v is None else format(v, fmt)


def times(v):
    return "–" if v is None else f"×{v:.2f}"


md = [f"# Scale sweep: `sleep` programs under each supervisor ({reps_txt} per point)", "",
      "×baseline: ratio to the C fork/exec baseline run interleaved in the same system's run (median of its reps).",
      "", "| programs | system | start s | ×baseline | PSS MB | stop-all s | ×baseline | notes |",
      "|---:|---|---:|---:|---:|---:|---:|---|"]
for r in rows:
    notes = []
    if not r["start_ok"]:
        notes.append(f"only {r['started']:,} started")
    if not r["stop_ok"]:
        notes.append("not all gone after shutdown")
    md.append(f"| {r['programs']:,} | {r['system']} | {num(r['start_s'], '.3f')} | {times(r['start_x_baseline'])}"
              f" | {num(r['pss_mb'], '.2f')} | {num(r['stop_all_s'], '.3f')} | {times(r['stop_all_x_baseline'])}"
              f" | {'; '.join(notes)} |")
if skipped:
    md += ["", "Not measured:"]
    md += [f"- {n:,} programs: {', '.join(s)} ({why or 'skipped'})" for (n, why), s in sorted(skipped.items())]
with open(os.path.join(out, "sweep.md"), "w") as f:
    f.write("\n".join(md) + "\n")

import matplotlib  # noqa: E402  (after the table, which needs no matplotlib)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter, NullFormatter, NullLocator  # noqa: E402


def chart(fname, key, ok, title, ylabel):
    fig, ax = plt.subplots(figsize=(10, 6), dpi=100, facecolor="white")
    for s in systems:
        pts = [(r["programs"], r[key]) for r in rows if r["system"] == s and r[key] is not None and r[ok]]
        if pts:
            st = {"label": s, **STYLE.get(s, {})}
            ax.plot(*zip(*pts), marker="o", markersize=7, linewidth=2, **st)
    ax.set_xscale("log")
    ax.set_xticks(sizes)
    ax.set_xticklabels([f"{n:,}" for n in sizes])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlim(sizes[0] / 1.5, sizes[-1] * 1.5)
    # Log y as well: the peers are 10 to 100 times slower or bigger, which on a linear axis
    # flattens steward and the baseline into one line at the bottom.
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("programs (log scale)", fontsize=12)
    ax.set_ylabel(f"{ylabel} (log scale)", fontsize=12)
    ax.set_title(f"{title}\n(scale scenario, {reps_txt} per point; lower is better)", fontsize=13)
    ax.tick_params(labelsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=11, loc="best")
    fig.tight_layout()
    fig.savefig(os.path.join(out, fname), facecolor="white")
    plt.close(fig)


chart("sweep-start.png", "start_s", "start_ok", "Time from launching the supervisor until all programs run", "seconds")
chart("sweep-memory.png", "pss_mb", "start_ok", "Supervisor memory (PSS) with all programs running", "PSS, MB")
chart("sweep-stop.png", "stop_all_s", "stop_ok", "Time from the shutdown command until all its processes are gone",
      "seconds")
print(f"sweep.py: wrote sweep.csv, sweep.md, sweep-start.png, sweep-memory.png, sweep-stop.png to {out}",
      file=sys.stderr)
