#!/usr/bin/env bash
# Benchmark steward against the C fork/exec baseline and peer supervisors with the shared,
# product-neutral harness (../shared/bench, "perfbase"), in one invocation.
#
#   bench/run.sh                          # baseline steward supervisord pm2, all scenarios
#   SYSTEMS="baseline steward" bench/run.sh restart stop    # a subset
#   bench/run.sh sweep                    # scale scenario at several program counts, charts
#   bench/run.sh ship                     # log shipping (bench/ship.sh; no harness, no peers)
#
# What it does:
#   1. copies the harness to a fresh temp dir (it writes its results and state into its own
#      folder) and adds bench/steward.sh as adapters/steward.sh;
#   2. builds the harness's C programs and steward in release;
#   3. installs what the peers need, once, into $BENCH_HOME (default ~/.cache/steward-bench):
#      supervisor in a Python venv, pm2 under an npm prefix; it says when it installs;
#   4. runs each system in turn (the harness runs the baseline again inside the restart,
#      logs, scale, stop and control scenarios, so every ratio is from the same invocation);
#   5. writes the harness's table and bench/summary.py's targets table to $OUT
#      (default target/bench/<UTC time>/), with `uptime` before and after.
#
# Knobs: SYSTEMS, HARNESS (path to the shared harness), BENCH_HOME, OUT, plus the
# harness's own (IDLE_WINDOW, LOG_REPS, SCALE_REPS, ... see its README).
#
# `sweep` runs only the scale scenario, once per size in SWEEP_SIZES (default
# "10 500 2000 5000") for each system, SCALE_REPS defaulting to 1. Peers other than baseline
# and steward run only up to SWEEP_PEER_MAX programs (default 2000): they take minutes at
# 5,000, and a missing point is better than a 20-minute run. Each size's results go to
# $OUT/results/n<size>/<system>/results.jsonl (skipped points in n<size>/skipped.txt);
# bench/sweep.py then writes sweep.csv, sweep.md and sweep-{start,memory,stop}.png to $OUT,
# with matplotlib installed once into $BENCH_HOME/plot-venv.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Log shipping has its own baseline (a plain client against the same receiver): bench/ship.sh.
if [ "${1:-}" = ship ]; then
    shift
    exec "$repo/bench/ship.sh" "$@"
fi
HARNESS=${HARNESS:-$repo/../shared/bench}
BENCH_HOME=${BENCH_HOME:-$HOME/.cache/steward-bench}
SYSTEMS=${SYSTEMS:-"baseline steward supervisord pm2"}
OUT=${OUT:-$repo/target/bench/$(date -u +%Y%m%dT%H%M%SZ)}
say() { printf '[bench] %s\n' "$*" >&2; }
sweep=0
if [ "${1:-}" = sweep ]; then
    sweep=1; shift
    SWEEP_SIZES=${SWEEP_SIZES:-"10 500 2000 5000"}
    SWEEP_PEER_MAX=${SWEEP_PEER_MAX:-2000}
    export SCALE_REPS=${SCALE_REPS:-1}
fi

[ -f "$HARNESS/pb" ] || { say "no harness at $HARNESS (set HARNESS=...)"; exit 2; }
mkdir -p "$OUT" "$BENCH_HOME"
OUT=$(cd "$OUT" && pwd)

# --- 1. private copy of the harness, plus our adapter
work=$(mktemp -d /tmp/stbench.XXXXXX)   # short: unix socket paths live under it
cp -r "$HARNESS/." "$work/"
chmod -R u+w "$work"
cp "$repo/bench/steward.sh" "$work/adapters/steward.sh"
say "harness copied to $work"

# --- 2. builds
make -s -C "$work/src" >/dev/null 2>&1 || {
    mkdir -p "$work/bin"
    gcc -O2 -o "$work/bin/pbchild" "$work/src/pbchild.c"
    gcc -O2 -o "$work/bin/pbsup" "$work/src/pbsup.c"
}
say "building steward (release)"
(cd "$repo" && cargo build --release --bin steward)
target_dir=$(cd "$repo" && cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export STEWARD_BIN=$target_dir/release/steward

# --- 3. peers, installed once (idempotent)
need() { case " $SYSTEMS " in *" $1 "*) return 0 ;; esac; return 1; }
if need supervisord; then
    if [ ! -x "$BENCH_HOME/venv/bin/supervisord" ]; then
        say "installing supervisor into $BENCH_HOME/venv (pip)"
        python3 -m venv "$BENCH_HOME/venv"
        "$BENCH_HOME/venv/bin/pip" install -q supervisor
    fi
    ln -sfn "$BENCH_HOME/venv" "$work/venv"      # the harness puts $PB/venv/bin on PATH
fi
if need pm2; then
    export NPM_CONFIG_PREFIX=$BENCH_HOME/npm       # so `npm root -g` finds it (pm2 adapter)
    if [ ! -x "$BENCH_HOME/npm/bin/pm2" ]; then
        command -v npm >/dev/null || { say "pm2 needs node and npm: apt-get install nodejs npm"; exit 2; }
        say "installing pm2 into $BENCH_HOME/npm (npm)"
        npm install -g -s pm2 >/dev/null
    fi
    export PATH=$BENCH_HOME/npm/bin:$PATH
    # pm2-logrotate (for the rotation runs) is installed by the pm2 adapter into
    # run/pm2-logrotate-template; keep that template between runs
    if [ -d "$BENCH_HOME/pm2-logrotate-template" ]; then
        mkdir -p "$work/run" && cp -a "$BENCH_HOME/pm2-logrotate-template" "$work/run/"
    fi
fi

if [ "$sweep" = 1 ] && [ ! -x "$BENCH_HOME/plot-venv/bin/python" ]; then
    say "installing matplotlib into $BENCH_HOME/plot-venv (pip), for the sweep's charts"
    python3 -m venv "$BENCH_HOME/plot-venv"
    "$BENCH_HOME/plot-venv/bin/pip" install -q matplotlib
fi

# --- 4. run
{ echo "start: $(date -u +%FT%TZ)"; echo "uptime: $(uptime)"; uname -srm; nproc; } > "$OUT/machine.txt"
if [ "$sweep" = 0 ]; then
    for sys in $SYSTEMS; do
        say "== $sys: ${*:-all scenarios}"
        (cd "$work" && ./pb run "$sys" "$@") 2>&1 | tee "$OUT/run-$sys.log" >&2
    done
else
    for n in $SWEEP_SIZES; do
        res=$OUT/results/n$n
        mkdir -p "$res"
        rm -f "$res/skipped.txt"
        for sys in $SYSTEMS; do
            if [ "$sys" != baseline ] && [ "$sys" != steward ] && [ "$n" -gt "$SWEEP_PEER_MAX" ]; then
                say "== $sys: $n programs skipped: peers run up to SWEEP_PEER_MAX=$SWEEP_PEER_MAX (slow at large N)"
                echo "$sys above SWEEP_PEER_MAX=$SWEEP_PEER_MAX" >> "$res/skipped.txt"
                continue
            fi
            say "== $sys: scale, $n programs, $SCALE_REPS rep(s)"
            (cd "$work" && RESULTS=$res SCALE_N=$n ./pb run "$sys" scale) 2>&1 \
                | tee "$OUT/run-n$n-$sys.log" >&2 || say "$sys at $n programs failed, continuing"
        done
    done
fi
{ echo "end: $(date -u +%FT%TZ)"; echo "uptime: $(uptime)"; } >> "$OUT/machine.txt"
if need pm2 && [ -d "$work/run/pm2-logrotate-template/modules/pm2-logrotate" ]; then
    rm -rf "$BENCH_HOME/pm2-logrotate-template"
    cp -a "$work/run/pm2-logrotate-template" "$BENCH_HOME/"
fi

# --- 5. tables
if [ "$sweep" = 1 ]; then
    rm -rf "$work"
    "$BENCH_HOME/plot-venv/bin/python" "$repo/bench/sweep.py" "$OUT/results" "$OUT"
    cat "$OUT/sweep.md"
    say "results in $OUT: sweep.md, sweep.csv, sweep-start.png, sweep-memory.png, sweep-stop.png"
    exit 0
fi
cp -r "$work/results" "$OUT/"
(cd "$work" && ./pb table) > "$OUT/table.md"
python3 "$repo/bench/summary.py" "$OUT/results" | tee "$OUT/summary.md"
rm -rf "$work"
say "results in $OUT (summary.md: targets; table.md: the harness's full table)"
