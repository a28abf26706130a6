#!/usr/bin/env bash
# The link order of steward's hot functions (crates/steward/startup.order).
#
#   scripts/startup-order.sh          # profile the release binary, rewrite the order file
#   scripts/startup-order.sh check    # build release, fail if the file has gone stale (or the
#                                     # binary needs a shared library besides libc, libgcc_s)
#
# Why: a file-backed page fault maps up to 16 neighbouring pages of the binary ("fault
# around"), so the ~0.7 MB of functions that starting, supervising and answering `status`
# run were spread over ~3.5 MB of resident text, most of steward's idle memory
# (docs/benchmarks.md). crates/steward/build.rs hands this file to the linker
# (--symbol-ordering-file), which puts these functions next to each other.
#
# The file lists symbol names, which stay the same across edits of function bodies but
# change with the toolchain, dependency versions and renames. A stale entry is skipped by
# the linker, so staleness only costs memory; `check` (run by CI) catches it: every name of
# the start-and-idle part must be in the binary, and 90% of the rest. Regenerate
# after upgrading Rust or dependencies, or after large changes on the startup path.
#
# How: run the daemon under callgrind (instruction-level, so nothing run is missed) through
# start, output capture, a crash and restart, `status`, and shutdown, plus the `status`
# client itself; every function of steward's binary that ran goes in the file, those of
# starting and idling first, with what callgrind cannot see (the C runtime's start code and
# the vfork child's code before exec, below). Last come constant tables that idle never
# reads, which the linker then puts first in .rodata, together (see cold_data). (valgrind 3.19 has no pidfd_open, so there steward watches its
# children through SIGCHLD; the rest of the spawn path is the same.)
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
order=$repo/crates/steward/startup.order
say() { printf '[startup-order] %s\n' "$*" >&2; }

cd "$repo"
cargo build --release --locked --bin steward >&2
target_dir=$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin=$target_dir/release/steward

# The line between the two parts of the file: above it what starting and idling run (crt,
# phase 1 and the vfork child, below), below it the rest. A line starting with `#` names no
# symbol, so the linker passes over it.
marker='# start and idle end here; every name above must be in the binary (scripts/startup-order.sh check)'

if [ "${1:-}" = check ]; then
    # Every name of the start-and-idle part must be found: one missing hot function (a
    # renamed task's poll, say) spreads idle's code over more pages, 0.37 MB once. Of the
    # rest, which runs rarely, 90% is enough.
    at=$(grep -nxF "$marker" "$order" | cut -d: -f1 | head -1)
    [ -n "$at" ] || { say "crates/steward/startup.order has no start-and-idle marker: run scripts/startup-order.sh to regenerate it"; exit 1; }
    symbols=$(mktemp)
    trap 'rm -f "$symbols"' EXIT
    nm "$bin" | awk '{print $NF}' | sort -u > "$symbols"
    names() { grep -v '^#' | sort -u || true; }    # a part's symbol names
    count() { grep -c . || true; }
    idle=$(head -n "$at" "$order" | names)
    rest=$(tail -n "+$((at + 1))" "$order" | names)
    missing=$(comm -23 <(printf '%s\n' "$idle") "$symbols")
    total=$(printf '%s\n' "$rest" | count)
    found=$(comm -12 <(printf '%s\n' "$rest") "$symbols" | count)
    say "start and idle: $(printf '%s\n' "$idle" | count) names, $(printf '%s' "$missing" | count) missing; the rest: $found of $total in the release binary"
    if [ -n "$missing" ]; then
        say "stale: these start-and-idle functions are no longer in the binary:"
        printf '%s\n' "$missing" | head -20 | sed 's/^/    /' >&2
        say "run scripts/startup-order.sh to regenerate crates/steward/startup.order and commit it"
        exit 1
    fi
    if [ $((found * 100)) -lt $((total * 90)) ]; then
        say "stale (under 90% of the rest): run scripts/startup-order.sh to regenerate it and commit the file"
        exit 1
    fi
    # Each shared library is loaded by every steward process, each CLI call too: libm, for one
    # powf, cost 0.1 ms of every start and 0.3 MB resident (docs/benchmarks.md, section 18).
    extra=$(readelf -d "$bin" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' \
        | grep -v -x -e libc.so.6 -e libgcc_s.so.1 || true)
    if [ -n "$extra" ]; then
        say "the release binary now needs $(echo $extra) besides libc and libgcc_s: find the call that"
        say "pulls it in (nm -D --undefined-only), and avoid it or say in docs/benchmarks.md why it is worth it"
        exit 1
    fi
    say "shared libraries: libc and libgcc_s only"
    exit 0
fi

command -v valgrind >/dev/null || { say "valgrind is needed: apt-get install valgrind"; exit 2; }
work=$(mktemp -d /tmp/steward-order.XXXXXX)
trap 'rm -rf "$work"' EXIT
{
    echo '[supervisor]'
    echo "state_dir = \"$work/state\""
    echo "log_dir = \"$work/logs\""
    # Half as bench/steward.sh writes them (log rotation off), half with the defaults.
    for i in $(seq 1 10); do
        echo "[programs.idle$i]"
        echo 'command = ["sleep", "100000"]'
        if [ "$i" -le 5 ]; then
            echo "[programs.idle$i.log]"
            echo 'max_size = 0'
        fi
    done
    echo '[programs.crashy]'
    echo "command = [\"sh\", \"-c\", \"echo out; echo err >&2; exec sleep 0.3\"]"
    echo 'autostart = false'
    echo 'restart = "always"'
    echo 'restart_delay = "0ms"'
} > "$work/steward.toml"

wait_for() {   # SECONDS CONDITION...
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do
        [ $SECONDS -lt $deadline ] || { say "timed out waiting for: $*"; cat "$work/daemon.log" >&2; exit 1; }
        sleep 0.2
    done
}
sleepers() { [ "$(pgrep -P "$daemon" -x sleep | wc -l)" -ge 10 ]; }
restarted() { [ "$(cat "$work/logs/crashy.out.log"* 2>/dev/null | grep -c '^out')" -ge 3 ]; }
cg() { valgrind -q --tool=callgrind --demangle=no --callgrind-out-file="$1" "${@:2}"; }

# Three phases, in the order their functions are laid out: (1) start and sit idle with
# programs running, which is what every steward pays for; (2) output capture, crash and
# restart, the API and shutdown; (3) the `status` client.
say "profiling the daemon under callgrind"
valgrind -q --tool=callgrind --demangle=no --callgrind-out-file="$work/daemon.cg" \
    "$bin" run -c "$work/steward.toml" >"$work/daemon.log" 2>&1 &
daemon=$!
trap 'kill "$daemon" 2>/dev/null; rm -rf "$work"' EXIT
wait_for 120 test -S "$work/state/steward.sock"
wait_for 120 sleepers
callgrind_control -d "$daemon" >/dev/null     # phase 1 -> daemon.cg.1
"$bin" -c "$work/steward.toml" start crashy >/dev/null
wait_for 120 restarted
cg "$work/status.cg" "$bin" -c "$work/steward.toml" status >/dev/null
"$bin" -c "$work/steward.toml" shutdown >/dev/null
wait "$daemon"                                 # phase 2 -> daemon.cg

# The functions of steward's own binary that ran, phase by phase, each listed once.
fns() {
    callgrind_annotate --threshold=100 --auto=no "$1" 2>/dev/null \
        | grep -F "[$bin]" \
        | sed -E 's/^ *[0-9,]+ +\([ 0-9.]+%\) +//; s/ \[.*\]$//; s/^[^:]*://; s/'"'"'[0-9]+$//' \
        | grep -v -e '^0x' -e '^(below main)$' || true
}
# What runs in the child between clone(CLONE_VM | CLONE_VFORK) and exec
# (process/linux.rs): callgrind does not follow it, but the child faults its pages into
# steward's own address space.
vfork_child() {
    nm "$bin" | awk '{print $NF}' \
        | grep -E '^_ZN7steward7process5linux[0-9]+(child_main|child_exec|write_decimal|reset_signals)17h' || true
}
# The C runtime's start code, which runs before main (callgrind's "(below main)").
crt() { printf '%s\n' _start deregister_tm_clones register_tm_clones __do_global_dtors_aux frame_dummy; }
# Constant tables of what does not run at start-up or idle: TLS (the remote API) and release
# archives and signatures (deploys, self-update). Named here, they go first in .rodata, out
# of the way: the start-up code's own constants have no symbol names the linker could order,
# so they stay where they are, and every 64 KiB window in which one is read stays resident.
cold_data() {
    nm "$bin" | awk '$2 ~ /^[rR]$/ {print $3}' \
        | grep -E '^(_ZN[0-9]+(ring|rustls|webpki_roots|zip|miniz_oxide|crc32fast|flate2|minisign_verify)[0-9]|ring_core_|ecp_nistz256_|_vpaes_)' || true
}
{ crt; fns "$work/daemon.cg.1"; vfork_child; echo "$marker"; fns "$work/daemon.cg"; fns "$work/status.cg"; cold_data; } \
    | awk '!seen[$0]++' > "$order"
say "wrote $(wc -l < "$order") functions to crates/steward/startup.order"
