#!/usr/bin/env bash
# ci-windows.sh: check (and build) steward for x86_64-pc-windows-gnu on Linux.
#
# Usage: scripts/ci-windows.sh [STEP...]      steps, in the order given (default: check build)
#   check   cargo check --workspace --all-targets   (every crate, tests and bins included)
#   build   cargo build -p steward -p testkit --bins  (steward.exe, and the test helpers
#                                                    steward-testchild.exe, steward-scmctl.exe
#                                                    that tests under Wine run: Wine cannot
#                                                    run cargo to build them on demand)
#   test    cargo test -p steward -p steward-service (test exes run under Wine, in a private
#                                                    prefix; slow the first time: the prefix;
#                                                    needs `build` first)
#
# Installs the toolchain first if needed (scripts/windows-toolchain.sh, fast when done before),
# then runs cargo in a subshell with the toolchain's environment and CARGO_TARGET_DIR set to
# target-windows/ (override with STEWARD_WINDOWS_TARGET_DIR), so host builds and their target/
# are never touched. Exits non-zero on the first failing step; prints each step's time.
set -euo pipefail

readonly TARGET=x86_64-pc-windows-gnu
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(check build)
for step in "${steps[@]}"; do
    case "$step" in
        check | build | test) ;;
        *) echo "ci-windows.sh: unknown step '$step' (check, build or test)" >&2; exit 2 ;;
    esac
done

say() { printf '[ci-windows] %s\n' "$*" >&2; }

# Stops this prefix's wineserver, then kills any Wine process of the prefix that outlived it.
# One did (conhost.exe --headless, started as the server went): it held this script's stderr,
# and .ci/run's `| tee` waited for it for ever.
stop_wine() {
    [ -d "${WINEPREFIX:-}" ] || return 0
    wineserver -k >/dev/null 2>&1 || true
    local proc pid
    for proc in /proc/[0-9]*; do
        pid=${proc#/proc/}
        case "$(readlink "$proc/exe" 2>/dev/null)" in
            */wine*) ;;
            *) continue ;;
        esac
        if tr '\0' '\n' <"$proc/environ" 2>/dev/null | grep -qxF "WINEPREFIX=$WINEPREFIX"; then
            kill -9 "$pid" 2>/dev/null || true
        fi
    done
}
total_start=$SECONDS

step_start=$SECONDS
env_file=$("$repo/scripts/windows-toolchain.sh")
say "toolchain ready: $((SECONDS - step_start)) s"

(
    # Everything below applies to this subshell only: RUSTC, CARGO_UNSTABLE_BUILD_STD and
    # friends must never reach a host build.
    # shellcheck disable=SC1090
    . "$env_file"
    export CARGO_TARGET_DIR=${STEWARD_WINDOWS_TARGET_DIR:-$repo/target-windows}
    # cargo test runs the test exes under Wine; keep their prefix inside the target dir, away
    # from any other Wine user on the machine, and stop its wineserver when done.
    export WINEPREFIX=$CARGO_TARGET_DIR/wineprefix
    trap stop_wine EXIT
    cd "$repo"
    say "$(cargo --version), $(rustc --version), target dir $CARGO_TARGET_DIR"

    run() { # run NAME CARGO-ARGS...: one timed step
        local name=$1 start=$SECONDS
        shift
        say "cargo $* --target $TARGET"
        if cargo "$@" --target "$TARGET"; then
            say "$name: ok in $((SECONDS - start)) s"
        else
            say "$name: FAILED after $((SECONDS - start)) s"
            return 1
        fi
    }
    for step in "${steps[@]}"; do
        case "$step" in
            check) run check check --workspace --all-targets ;;
            build) run build build -p steward -p testkit --bins ;;
            test) run test test -p steward -p steward-service -p testkit ;;
        esac
    done
)
say "all steps (${steps[*]}) passed in $((SECONDS - total_start)) s"
