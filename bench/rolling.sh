#!/usr/bin/env bash
# Rolling restarts under load: builds steward and the test server and load client (release),
# then runs bench/rolling.py, which writes rolling.md and rolling.json to $OUT (default
# target/bench/rolling-<UTC time>/). Knobs: READY_AFTER_MS (300), CONCURRENCY (32),
# STEADY_S (3), REPS (3). Linux: the instances share a socket steward holds.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$repo/target/bench/rolling-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
cd "$repo"
. bench/lib.sh
release_build -q -p steward --bin steward -p testkit --bin steward-testserver --bin steward-loadgen
uptime
python3 "$repo/bench/rolling.py" "$target_dir/release" "$OUT"
uptime
echo "[bench] results in $OUT"
