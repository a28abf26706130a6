#!/usr/bin/env python3
"""What the dashboard and `steward top` cost (docs/benchmarks.md, "Dashboards").

Usage: dashboard.py RELEASE_DIR OUT_DIR   (bench/dashboard.sh builds and calls it)

With N programs (PROGRAMS, default 200) of `steward-testchild --sleep 1h`, in one run:
  1. idle without [dashboard]: steward's PSS, and its CPU time and context switches over
     WINDOW seconds (default 20);
  2. idle with [dashboard] configured but no one looking: the same figures;
  3. watched: one live dashboard stream (the page's SSE feed, signed in) and one `steward top`
     (in tmux, when tmux is installed) open: the same figures;
  4. the page's load, median of REPS (default 50): index.html, app.js and app.css, the
     session check and the live feed until its first `status` event, against one GET of a
     static file (icon.svg) from the same listener.
Writes dashboard.md and dashboard.json to OUT_DIR.
"""

import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

RELEASE = os.path.abspath(sys.argv[1])
OUT = sys.argv[2]
N = int(os.environ.get("PROGRAMS", "200"))
WINDOW = float(os.environ.get("WINDOW", "20"))
REPS = int(os.environ.get("REPS", "50"))
TOKEN = "bench-token-0123456789abcdef"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def config(dashboard):
    child = os.path.join(RELEASE, "steward-testchild")
    lines = []
    if dashboard:
        lines += ['[dashboard]', 'listen = "127.0.0.1:0"', '',
                  '[[api.tokens]]', 'name = "bench"', 'role = "operator"', 'token_file = "token"', '']
    for i in range(N):
        lines += [f"[programs.p{i}]", f'command = ["{child}", "--sleep", "1h"]', ""]
    return "\n".join(lines)


class Steward:
    def __init__(self, dashboard):
        self.dir = tempfile.mkdtemp(prefix="stdash.")
        with open(os.path.join(self.dir, "token"), "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(os.path.join(self.dir, "token"), 0o600)
        self.config = os.path.join(self.dir, "steward.toml")
        with open(self.config, "w") as f:
            f.write(config(dashboard))
        self.log = open(os.path.join(self.dir, "steward.log"), "w+")
        self.proc = subprocess.Popen(
            [os.path.join(RELEASE, "steward"), "run", "--config", self.config, "--log-format", "json"],
            cwd=self.dir, stdout=self.log, stderr=self.log, start_new_session=True)
        self.addr = None
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.running() >= N and (not dashboard or self.dashboard_addr()):
                return
            time.sleep(0.2)
        raise SystemExit(f"steward did not start {N} programs in 60 s; its log: {self.log.name}")

    def cli(self, *args):
        return subprocess.run([os.path.join(RELEASE, "steward"), "--config", self.config, *args],
                              capture_output=True, text=True)

    def running(self):
        out = self.cli("status", "--json")
        if out.returncode != 0:
            return 0
        return sum(p["state"] == "running" for p in json.loads(out.stdout)["programs"])

    def dashboard_addr(self):
        self.log.seek(0)
        for line in self.log:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            text = json.dumps(event)
            if "dashboard" in text and "http://" in text:
                url = text[text.index("http://") + 7:]
                host_port = url.split("/")[0].split('"')[0]
                host, port = host_port.rsplit(":", 1)
                self.addr = (host, int(port))
                return self.addr
        return None

    def pss_kb(self):
        with open(f"/proc/{self.proc.pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
        return 0

    def cpu_and_switches(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        switches = 0
        for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
            with open(f"/proc/{self.proc.pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        switches += int(line.split()[1])
        return cpu, switches

    def window(self):
        cpu0, sw0 = self.cpu_and_switches()
        time.sleep(WINDOW)
        cpu1, sw1 = self.cpu_and_switches()
        return {"pss_kb": self.pss_kb(), "cpu_ms_per_s": (cpu1 - cpu0) * 1000 / WINDOW,
                "wakeups_per_s": (sw1 - sw0) / WINDOW}

    def stop(self):
        self.cli("shutdown")
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, 9)
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def sign_in(addr):
    conn = http.client.HTTPConnection(*addr, timeout=30)
    conn.request("POST", "/ui/session", json.dumps({"token": TOKEN}), {"Content-Type": "application/json"})
    reply = conn.getresponse()
    body = reply.read()
    if reply.status != 200:
        raise SystemExit(f"sign-in failed: {reply.status} {body!r}")
    cookie = reply.getheader("Set-Cookie").split(";")[0]
    conn.close()
    return cookie


def get(conn, path, headers=None):
    conn.request("GET", path, headers=headers or {})
    reply = conn.getresponse()
    body = reply.read()
    assert reply.status == 200, f"GET {path}: {reply.status} {body[:200]!r}"
    return body


def open_stream(addr, cookie):
    """The page's live feed: returns the connection once its first `status` event arrived."""
    conn = http.client.HTTPConnection(*addr, timeout=30)
    conn.request("GET", "/ui/api/stream", headers={"Cookie": cookie, "Accept": "text/event-stream"})
    reply = conn.getresponse()
    assert reply.status == 200, f"stream: {reply.status}"
    while True:
        line = reply.fp.readline()
        if not line:
            raise SystemExit("the live feed ended before its first status event")
        if line.startswith(b"event: status"):
            return conn, reply


def page_load(addr, cookie):
    """Seconds until the page has its files (index.html, app.js, app.css, on one
    connection, as a browser asks), and then until its session check and its first live
    status have come."""
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(*addr, timeout=30)
    for path in ("/ui/", "/ui/app.js", "/ui/app.css"):
        get(conn, path)
    assets = time.perf_counter() - t0
    get(conn, "/ui/session", {"Cookie": cookie})
    conn.close()
    stream, _ = open_stream(addr, cookie)
    elapsed = time.perf_counter() - t0
    stream.close()
    return assets, elapsed


def static_file(addr):
    t0 = time.perf_counter()
    conn = http.client.HTTPConnection(*addr, timeout=30)
    get(conn, "/ui/icon.svg")
    conn.close()
    return time.perf_counter() - t0


def main():
    os.makedirs(OUT, exist_ok=True)
    results = {"programs": N, "window_s": WINDOW, "reps": REPS}

    s = Steward(dashboard=False)
    results["idle_without_dashboard"] = s.window()
    s.stop()

    s = Steward(dashboard=True)
    results["idle_with_dashboard"] = s.window()
    cookie = sign_in(s.addr)

    loads = [page_load(s.addr, cookie) for _ in range(REPS)]
    statics = [static_file(s.addr) for _ in range(REPS)]
    results["page_files_ms"] = statistics.median(a for a, _ in loads) * 1000
    results["page_live_ms"] = statistics.median(b for _, b in loads) * 1000
    results["static_file_ms"] = statistics.median(statics) * 1000

    stream, reply = open_stream(s.addr, cookie)
    tmux = shutil.which("tmux")
    sock = f"stdash{os.getpid()}"
    if tmux:
        subprocess.run([tmux, "-L", sock, "-f", "/dev/null", "new-session", "-d", "-x", "160", "-y", "50",
                        os.path.join(RELEASE, "steward"), "--config", s.config, "top"], check=True)
    # The stream must be read, as a browser would, or its buffers fill and it stalls.
    def drain():
        try:
            while reply.fp and reply.fp.readline():
                pass
        except (OSError, ValueError, AttributeError):
            pass  # closed at the end
    threading.Thread(target=drain, daemon=True).start()
    time.sleep(3)  # past the first samples: the window measures the steady state
    results["watched"] = s.window()
    results["watched"]["top_open"] = bool(tmux)
    if tmux:
        subprocess.run([tmux, "-L", sock, "kill-server"])
    stream.close()
    s.stop()

    with open(os.path.join(OUT, "dashboard.json"), "w") as f:
        json.dump(results, f, indent=2)
    rows = [("idle, no [dashboard]", results["idle_without_dashboard"]),
            ("idle, [dashboard] set, no one looking", results["idle_with_dashboard"]),
            ("one dashboard and one `top` open" if tmux else "one dashboard open", results["watched"])]
    md = [f"{N} programs, {WINDOW:.0f} s windows.", "",
          "| steward | PSS | CPU | wakeups |", "|---|---|---|---|"]
    for name, r in rows:
        md.append(f"| {name} | {r['pss_kb'] / 1024:.2f} MB | {r['cpu_ms_per_s']:.1f} ms/s | "
                  f"{r['wakeups_per_s']:.1f}/s |")
    static = results["static_file_ms"]
    md += ["", f"Page load, median of {REPS}: its three files {results['page_files_ms']:.2f} ms "
           f"(×{results['page_files_ms'] / static:.1f} of one static file from the same listener, "
           f"{static:.2f} ms); with the session check and the first live status "
           f"{results['page_live_ms']:.2f} ms (×{results['page_live_ms'] / static:.1f})."]
    with open(os.path.join(OUT, "dashboard.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))


main()
