# test-lib.sh: what the package check scripts share (sourced, not run). PASS and FAIL lines
# with their counts, `check` for one command, and `within` for a condition to come true
# within a bound (polled: these scripts watch other programs' state from outside).
# shellcheck shell=bash

passed=0 failed=0
pass() { printf 'PASS  %s\n' "$*"; passed=$((passed + 1)); }
fail() { printf 'FAIL  %s\n' "$*"; failed=$((failed + 1)); }
# Indented, to show what a check saw under its FAIL line.
show() { printf '%s\n' "$@" | sed 's/^/  | /'; }
check() { # check DESCRIPTION COMMAND..: PASS if COMMAND succeeds, else FAIL
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}
within() { # within SECONDS DESCRIPTION COMMAND..: COMMAND until it succeeds; 1 on timeout
    local secs=$1 what=$2 end=$((SECONDS + $1))
    shift 2
    until "$@"; do
        if ((SECONDS >= end)); then
            fail "$what (not within ${secs}s)"
            return 1
        fi
        sleep 0.1
    done
    pass "$what"
}
