#!/usr/bin/env python3
"""Log shipping, measured (bench/ship.sh builds everything in release and runs this).

    python3 bench/ship.py BIN_DIR OUT_DIR   # BIN_DIR holds steward, steward-testchild,
                                            # steward-receiver and steward-shipclient

One run, one machine: every steward figure is divided by a baseline taken in the same run.
The receiver is always `steward-receiver --count-only --expect N --exit-when-done` (a fake
Loki that decodes and checks every push, counts the lines and exits once it holds N; it
reports when the request that brought the Nth line was handled).

  1. Throughput. The program's N lines of L bytes (`steward-testchild --write-lines N
     --line-len L`) are written once to a file, timed (the program alone). Then:
       - baseline: `steward-shipclient` pushes that file to the receiver in steward's batches
         (5000 lines / 1 MiB, protobuf + snappy, one request at a time, keep-alive), timed
         from its start to the receiver holding all N; once more with a receiver that
         stores every line (its memory, and what storing costs);
       - steward: one program writing the same N lines, a `[[ship]]` Loki sink with
         linger = 50ms, log format "cri" and then plain; timed from steward's start to the
         receiver holding all N. Also when steward's log file held the Nth line.
  2. CPU per million shipped lines: steward's utime+stime (/proc/PID/stat) once the
     receiver holds all N, and in the same setup without [[ship]] once the log file holds
     line N; the difference is shipping's share.
  3. Lag at RATE bytes/s: the program writes at RATE (`--rate`) for LAG_S seconds (format
     "cri") while steward ships; steward's /metrics is sampled every second for
     steward_ship_lag_bytes and steward_ship_lag_seconds (max, p50), and the time from the
     log file holding the last line (polled every 10 ms: the program's last write, as steward
     captured it) to the receiver holding it is measured. Note: steward_ship_lag_seconds is
     the age of the oldest line read since the sink last had nothing queued (sink.rs clears
     it only then), so under a writer that never pauses it grows with the run.

Times are wall clock: "seconds" runs from starting the client (or steward) to the moment the
receiver handled the request that brought the Nth line (its `done_at_unix`).

Knobs (environment): N (1000000), LINE_LEN (100), RATE (50000000), LAG_S (10),
LAG_LINE_LEN (LINE_LEN), STORE_BASELINE (1: also the storing receiver's row).
"""

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BIN, OUT = os.path.abspath(sys.argv[1]), sys.argv[2]
N = int(os.environ.get("N", "1000000"))
LINE_LEN = int(os.environ.get("LINE_LEN", "100"))
RATE = int(os.environ.get("RATE", "50000000"))
LAG_S = float(os.environ.get("LAG_S", "10"))
LAG_LINE_LEN = int(os.environ.get("LAG_LINE_LEN", str(LINE_LEN)))
STORE_BASELINE = os.environ.get("STORE_BASELINE", "1") == "1"
TICK = os.sysconf("SC_CLK_TCK")
# How long a run may take before it is given up (the receiver then reports what it got).
DEADLINE_S = 300


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ReceiverProc:
    """steward-receiver: its address, then its summary (a JSON line) when it exits."""

    def __init__(self, expect, count_only=True):
        args = [f"{BIN}/steward-receiver", "--expect", str(expect), "--exit-when-done"]
        if count_only:
            args.append("--count-only")
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        first = self.p.stdout.readline().split()
        assert first[:2] == ["listening", "on"], first
        self.addr = first[2]
        self.url = f"http://{self.addr}/loki/api/v1/push"

    def done(self):
        return self.p.poll() is not None

    def summary(self, timeout=DEADLINE_S):
        """Waits for it to exit (closing its stdin makes it exit at once after `timeout`)."""
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            print(f"[ship] the receiver did not get all lines in {timeout} s; stopping it", file=sys.stderr)
        self.p.stdin.close()
        out = self.p.stdout.read()
        self.p.wait()
        return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def cpu_s(pid):
    stat = open(f"/proc/{pid}/stat").read()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def has_line(path, n, line_len):
    """Whether the log file ends with line n (plain or CRI: the number starts the text)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - line_len - 100))
            tail = f.read()
    except OSError:
        return False
    last = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    return f"{n:010d} ".encode() in last


def child(n, line_len, rate=None):
    args = [f"{BIN}/steward-testchild", "--write-lines", str(n), "--line-len", str(line_len)]
    if rate:
        args += ["--rate", str(rate)]
    return args + ["--sleep", "1h"]


def toml_list(items):
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


class Steward:
    """A steward with one program `app` and, if `ship_url`, a Loki sink; stopped on exit."""

    def __init__(self, program, fmt, ship_url=None, metrics_port=None):
        self.dir = tempfile.mkdtemp(prefix="stship.")
        self.cfg = os.path.join(self.dir, "steward.toml")
        text = (f'[supervisor]\nstate_dir = "{self.dir}/state"\nlog_dir = "{self.dir}/logs"\n'
                f'[programs.app]\ncommand = {toml_list(program)}\n'
                f'[programs.app.log]\nformat = "{fmt}"\nmax_size = 0\n')
        if ship_url:
            text += f'[[ship]]\nkind = "loki"\nurl = "{ship_url}"\nlinger = "50ms"\n'
        if metrics_port:
            text += f'[metrics]\nlisten = "127.0.0.1:{metrics_port}"\n'
        open(self.cfg, "w").write(text)
        self.log = os.path.join(self.dir, "logs", "app.out.log")

    def __enter__(self):
        self.t0 = time.time()
        self.p = subprocess.Popen([f"{BIN}/steward", "run", "-c", self.cfg], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, "steward.err"), "w"))
        return self

    def __exit__(self, *exc):
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_file(st, n, line_len, rx=None):
    """Polls steward's log file (every 10 ms) for line n; returns (when it held it, steward's
    CPU then). With a receiver, keeps waiting for the receiver too."""
    file_at = cpu_at_file = None
    deadline = time.time() + DEADLINE_S
    while time.time() < deadline:
        if file_at is None and has_line(st.log, n, line_len):
            file_at, cpu_at_file = time.time(), cpu_s(st.p.pid)
            if rx is None:
                break
        if rx is not None and rx.done():
            if file_at is None:  # shipped before the poll saw the file complete
                file_at, cpu_at_file = time.time(), cpu_s(st.p.pid)
            break
        time.sleep(0.01)
    return file_at, cpu_at_file


def prepare():
    """The program alone: its N lines to a file. Returns (path, seconds)."""
    path = os.path.join(OUT, f"lines-{N}x{LINE_LEN}.txt")
    t0 = time.time()
    with open(path, "wb") as f:
        subprocess.run([f"{BIN}/steward-testchild", "--write-lines", str(N), "--line-len", str(LINE_LEN)],
                       stdout=f, check=True)
    return path, time.time() - t0


def baseline(path, count_only=True):
    rx = ReceiverProc(N, count_only)
    t0 = time.time()
    client = subprocess.run([f"{BIN}/steward-shipclient", "--url", rx.url, "--file", path],
                            capture_output=True, text=True)
    s = rx.summary()
    if client.returncode != 0:
        raise SystemExit(f"steward-shipclient failed: {client.stderr}")
    report = json.loads(client.stdout)
    return {"name": "baseline: steward-shipclient" + ("" if count_only else ", receiver storing lines"),
            "lines": s["loki_lines"], "seconds": s["done_at_unix"] - t0 if s["done_at_unix"] else None,
            "requests": report["requests"], "body_bytes": report["body_bytes"], "rx": s}


def steward_ship(fmt):
    rx = ReceiverProc(N)
    with Steward(child(N, LINE_LEN), fmt, rx.url) as st:
        file_at, _ = wait_file(st, N, LINE_LEN, rx)
        s = rx.summary()
        cpu = cpu_s(st.p.pid)
        return {"name": f"steward, format = \"{fmt}\"", "lines": s["loki_lines"],
                "seconds": s["done_at_unix"] - st.t0 if s["done_at_unix"] else None,
                "file_s": file_at - st.t0 if file_at else None, "cpu_s": cpu,
                "requests": s["requests"], "body_bytes": s["bytes"], "rx": s}


def steward_alone(fmt):
    with Steward(child(N, LINE_LEN), fmt) as st:
        file_at, cpu = wait_file(st, N, LINE_LEN)
        return {"fmt": fmt, "file_s": file_at - st.t0 if file_at else None, "cpu_s": cpu}


def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def lag():
    n = int(RATE * LAG_S / LAG_LINE_LEN)
    rx = ReceiverProc(n)
    port = free_port()
    samples = []
    with Steward(child(n, LAG_LINE_LEN, RATE), "cri", rx.url, port) as st:
        stop = threading.Event()

        def sample():
            # Once a second from steward's start until the receiver holds every line.
            while not stop.wait(1.0):
                try:
                    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
                except OSError:
                    continue  # not listening yet
                samples.append((time.time() - st.t0, metric(text, "steward_ship_lag_bytes"),
                                metric(text, "steward_ship_lag_seconds")))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        file_at, _ = wait_file(st, n, LAG_LINE_LEN, rx)
        s = rx.summary()
        stop.set()
        sampler.join()
        cpu = cpu_s(st.p.pid)
    lag_b = [b for _, b, _ in samples if b is not None]
    lag_s = [x for _, _, x in samples if x is not None]
    return {"lines": n, "got": s["loki_lines"], "line_len": LAG_LINE_LEN, "file_s": file_at - st.t0 if file_at else None,
            "done_s": s["done_at_unix"] - st.t0 if s["done_at_unix"] else None,
            "last_line_lag_s": s["done_at_unix"] - file_at if s["done_at_unix"] and file_at else None,
            "lag_bytes_max": max(lag_b, default=None), "lag_bytes_p50": statistics.median(lag_b) if lag_b else None,
            "lag_seconds_max": max(lag_s, default=None), "lag_seconds_p50": statistics.median(lag_s) if lag_s else None,
            "samples": samples, "cpu_s": cpu, "rx": s}


def fmt_rate(lines, seconds):
    return f"{lines / seconds:,.0f}" if seconds else "n/a"


def main():
    machine = {"uptime_before": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()}
    print(f"[ship] {N:,} lines of {LINE_LEN} bytes; {machine['uptime_before']}", file=sys.stderr)
    path, alone_s = prepare()
    print(f"[ship] program alone: {alone_s:.2f} s", file=sys.stderr)
    rows = [baseline(path)]
    if STORE_BASELINE:
        rows.append(baseline(path, count_only=False))
    os.remove(path)
    for fmt in ("cri", "plain"):
        rows.append(steward_ship(fmt))
        print(f"[ship] {rows[-1]['name']}: {rows[-1]['seconds']}", file=sys.stderr)
    alone = {fmt: steward_alone(fmt) for fmt in ("cri", "plain")}
    print("[ship] lag run", file=sys.stderr)
    lagged = lag()
    machine["uptime_after"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    json.dump({"n": N, "line_len": LINE_LEN, "program_alone_s": alone_s, "rows": rows, "no_ship": alone,
               "lag": lagged, "machine": machine}, open(os.path.join(OUT, "ship.json"), "w"), indent=2)

    base = rows[0]
    out = [f"log shipping to a fake Loki (steward-receiver --count-only), {N:,} lines of {LINE_LEN} bytes; "
           f"the program alone writes them to a file in {alone_s:.2f} s ({fmt_rate(N, alone_s)} lines/s)",
           "",
           "| run | lines at the receiver | seconds | lines/s | ÷ baseline | requests | receiver CPU | receiver peak RSS | "
           "log file complete after | steward CPU | CPU without [[ship]] | shipping CPU per 1M lines |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ratio = f"×{base['seconds'] / r['seconds']:.2f}" if r["seconds"] and base["seconds"] else "n/a"
        rss = f"{r['rx']['max_rss_kib'] / 1024:.0f} MiB" if r["rx"].get("max_rss_kib") else "n/a"
        rx_cpu = f"{r['rx']['cpu_s']:.2f} s" if r["rx"].get("cpu_s") is not None else "n/a"
        if "cpu_s" in r:
            fmt = "cri" if "cri" in r["name"] else "plain"
            a = alone[fmt]
            file_s = f"{r['file_s']:.2f} s" if r["file_s"] else "n/a"
            ship_cpu = (r["cpu_s"] - a["cpu_s"]) / (r["lines"] / 1e6) if r["lines"] and a["cpu_s"] is not None else None
            cpu_cols = (f"{file_s} | {r['cpu_s']:.2f} s | {a['cpu_s']:.2f} s (file complete after {a['file_s']:.2f} s) | "
                        f"{ship_cpu:.2f} s" if ship_cpu is not None else f"{file_s} | {r['cpu_s']:.2f} s | n/a | n/a")
        else:
            cpu_cols = "– | – | – | –"
        secs = f"{r['seconds']:.2f}" if r["seconds"] else "n/a"
        out.append(f"| {r['name']} | {r['lines']:,} | {secs} | {fmt_rate(r['lines'], r['seconds'])} | {ratio} | "
                   f"{r['requests']:,} | {rx_cpu} | {rss} | {cpu_cols} |")
    lg = lagged

    def num(v, f):
        return f.format(v) if v is not None else "n/a"

    def mb(v):
        return v / 1e6 if v is not None else None

    out += ["",
            f"lag: the program writes {lg['lines']:,} lines of {lg['line_len']} bytes at {RATE / 1e6:.0f} MB/s "
            f"({LAG_S:.0f} s, format \"cri\"); /metrics sampled every second ({len(lg['samples'])} samples)",
            "",
            "| lines at the receiver | log file complete after | receiver complete after | last line: file → receiver | "
            "lag bytes max | lag bytes p50 | lag seconds max | lag seconds p50 | steward CPU |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {lg['got']:,} of {lg['lines']:,} | {num(lg['file_s'], '{:.2f} s')} | {num(lg['done_s'], '{:.2f} s')} | "
            f"{num(lg['last_line_lag_s'], '{:.3f} s')} | {num(mb(lg['lag_bytes_max']), '{:.1f} MB')} | "
            f"{num(mb(lg['lag_bytes_p50']), '{:.1f} MB')} | "
            f"{num(lg['lag_seconds_max'], '{:.2f} s')} | {num(lg['lag_seconds_p50'], '{:.2f} s')} | {lg['cpu_s']:.2f} s |",
            "",
            f"machine: {machine['uptime_before']} (before); {machine['uptime_after']} (after); {os.cpu_count()} CPUs"]
    text = "\n".join(out)
    open(os.path.join(OUT, "ship.md"), "w").write(text + "\n")
    print(text)


main()
