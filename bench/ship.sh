#!/usr/bin/env bash
# Log shipping: throughput against a plain client, steward's CPU per million shipped lines,
# and the lag while a program writes 50 MB/s (bench/ship.py says how each is measured).
# Builds steward and the test kit's programs in release, then runs bench/ship.py, which
# writes ship.md and ship.json to $OUT (default target/bench/ship-<UTC time>/). Every
# steward figure is a ratio to, or a difference with, a baseline measured in the same run.
#
#   bench/ship.sh                    # 1,000,000 lines of 100 bytes, lag at 50 MB/s for 10 s
#   N=200000 LAG_S=5 bench/ship.sh   # shorter
#   bench/run.sh ship                # the same, through the main entry point
#
# Knobs: N (1000000), LINE_LEN (100), RATE (bytes/s, 50000000), LAG_S (10), LAG_LINE_LEN
# (LINE_LEN), STORE_BASELINE (1: also a baseline row whose receiver stores every line, for
# its memory), OUT. Takes about a minute on 2 cores; needs Linux (/proc) and some 700 MB in
# the temp dir for the lag run's log file. The receiver is steward-receiver --count-only, the
# baseline client steward-shipclient (both in crates/testkit/src/bin/).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${OUT:-$repo/target/bench/ship-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$repo"
. bench/lib.sh
release_build -q -p steward -p testkit --bins
python3 "$repo/bench/ship.py" "$target_dir/release" "$OUT"
echo "[bench] results in $OUT (ship.md, ship.json)" >&2
