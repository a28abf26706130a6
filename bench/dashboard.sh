#!/usr/bin/env bash
# What the dashboard and `steward top` cost: builds steward and the test child (release), then
# runs bench/dashboard.py, which writes dashboard.md and dashboard.json to $OUT (default
# target/bench/dashboard-<UTC time>/). Knobs: PROGRAMS (200), WINDOW (20 s), REPS (50).
# `top` is measured when tmux is installed.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$repo/target/bench/dashboard-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
cd "$repo"
. bench/lib.sh
release_build -q -p steward --bin steward -p testkit --bin steward-testchild
uptime
python3 "$repo/bench/dashboard.py" "$target_dir/release" "$OUT"
uptime
echo "[bench] results in $OUT"
