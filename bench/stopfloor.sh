#!/usr/bin/env bash
# Stopping N programs against the kernel's own floor (bench/stopfloor.py says what it
# measures): steward with and without a cgroup per program, beside a minimal supervisor that
# pays the same kernel costs.
#
#   bench/stopfloor.sh           # 5,000 programs, three runs of each way
#   bench/stopfloor.sh 2000 5    # other size and runs
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
. bench/lib.sh
release_build --bin steward
python3 bench/stopfloor.py "$target_dir/release/steward" "${1:-5000}" "${2:-3}"
