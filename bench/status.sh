#!/usr/bin/env bash
# `status` at scale against the harness's C client, same run (bench/status.py says how).
#
#   bench/status.sh              # 10, 500 and 5,000 programs
#   bench/status.sh 2000         # other sizes
#   RUNS=50 bench/status.sh      # more runs per client (20)
#
# Also times two floors in the same turns: a Rust "hello" (bench/hello.rs) and
# `steward --version` (bench/status.py says why).
#
# Needs the shared harness (HARNESS, default ../shared/bench) for pbsup's source, and gcc.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HARNESS=${HARNESS:-$repo/../shared/bench}
[ -f "$HARNESS/src/pbsup.c" ] || { echo "no harness at $HARNESS (set HARNESS=...)" >&2; exit 2; }
cd "$repo"
. bench/lib.sh
release_build --bin steward
mkdir -p "$target_dir/bench"
gcc -O2 -o "$target_dir/bench/pbsup" "$HARNESS/src/pbsup.c"
rustc --edition 2021 -C opt-level=3 -C panic=abort -o "$target_dir/bench/hello" bench/hello.rs
HELLO=$target_dir/bench/hello python3 bench/status.py "$target_dir/release/steward" "$target_dir/bench/pbsup" "$@"
