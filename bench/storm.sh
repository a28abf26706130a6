#!/usr/bin/env bash
# Restarts at scale (bench/storm.py says what it measures): steward's CPU time per restart
# for one restart, `restart --all` and a crash storm, and `status` during the storm.
#
#   bench/storm.sh              # 500 and 5,000 programs
#   bench/storm.sh 2000         # other sizes
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
. bench/lib.sh
release_build --bin steward
echo "| programs | status, idle | one restart: steward CPU | restart --all | crash storm (all SIGKILLed) | status during the storm | \`--version\` at the same moments |"
echo "|---:|---|---|---|---|---|---|"
sizes=("$@")
[ $# -gt 0 ] || sizes=(500 5000)
for n in "${sizes[@]}"; do
    python3 bench/storm.py "$target_dir/release/steward" "$n"
done
