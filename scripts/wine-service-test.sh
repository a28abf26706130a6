#!/usr/bin/env bash
# wine-service-test.sh: steward as a real Windows service, under Wine's Service Control Manager.
#
# Usage: scripts/wine-service-test.sh        (KEEP_PREFIX=1 keeps the Wine prefix for a look)
#
# Builds steward.exe, steward-testchild.exe and steward-scmctl.exe for x86_64-pc-windows-gnu
# (incremental, in target-windows/ like scripts/ci-windows.sh), makes a fresh private Wine
# prefix, and checks, printing PASS or FAIL for each:
#
#   A. two config services side by side (paths with spaces everywhere):
#      install (--start delayed, --display-name, --depends-on) -> what the SCM stored is what
#      `service render --init windows` shows -> Event Log source registered -> `sc start` ->
#      RUNNING -> `steward status` reaches each service over its named pipe -> a crashing
#      program comes back -> Pause (programs down) / Continue (up again) / ParamChange (reload)
#      -> `sc stop` -> STOPPED, program and grandchild gone -> uninstall -> gone; the Event Log
#      source stays while the other service uses it and goes with the last one
#   B. the same for `wrap install` (crash by `taskkill /F`, restart, old grandchild gone), then
#      `wrap uninstall` removes the service and its wrap folder
#   C. `steward run` in a console: the CLI over the pipe, Ctrl+C stops it in order
#      (crates/steward/tests/windows_console.rs, run under Wine)
#   D. the steward-service library's minimal example as a service of its own: it installs
#      itself (`minimal.exe service install`, with a working directory and a variable); a
#      slow start shows START_PENDING with rising checkpoints, then RUNNING; the working
#      directory and the variable reached it; its Event Log source is registered and its
#      log (steward_service::log) goes there and to files; Pause, Continue and ParamChange reach its code;
#      `sc stop` lets it finish; a failing main leaves its service-specific exit code in `sc
#      query`; `minimal.exe service uninstall` removes it and its Event Log source (Ctrl+C in a console:
#      crates/steward-service/tests/windows_console.rs, run by scripts/ci-windows.sh test)
#
# What Wine 8 cannot check, so this does not pretend to (see docs/services.md):
#   - failure actions: accepted (non-crash flag refused with 124) but never acted on;
#     delayed auto-start is refused with 124; the values sent are unit-tested instead
#   - the Event Log: RegisterEventSourceW/ReportEventW succeed but store nothing; only that the
#     calls succeed is checked (steward.log says so); the texts are unit-tested
#   - the named pipe's ACL (owner + Administrators): Wine runs everything as one user and does
#     not enforce it; Preshutdown and Shutdown (no system shutdown here); accounts and passwords
#   - Ctrl+Break to a process group (Wine 8 does not deliver it; process/windows/mod.rs says so)
#
# Wine 8 tools used around their gaps: `sc` has no pause/continue/control (steward-scmctl sends
# them), `tasklist` prints nothing (steward-scmctl alive PID asks GetExitCodeProcess), `sc query`
# writes CRLF. Waits poll a condition with a bound; no step sleeps a fixed time to synchronise.
set -euo pipefail

readonly TARGET=x86_64-pc-windows-gnu
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
started=$SECONDS
fails=0
say() { printf '\n=== %s (%ds)\n' "$*" "$((SECONDS - started))"; }
pass() { printf 'PASS  %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; fails=$((fails + 1)); }
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}
within() { # within SECONDS DESCRIPTION COMMAND...: poll COMMAND until it succeeds, bounded
    local secs=$1 what=$2 end=$((SECONDS + $1))
    shift 2
    until "$@"; do
        if ((SECONDS >= end)); then
            fail "$what (not within ${secs}s)"
            return 0
        fi
        sleep 0.2
    done
    pass "$what"
}

# --- toolchain, build --------------------------------------------------------------------------
env_file=$("$repo/scripts/windows-toolchain.sh")
# shellcheck disable=SC1090
. "$env_file"
export CARGO_TARGET_DIR=${STEWARD_WINDOWS_TARGET_DIR:-$repo/target-windows}
cd "$repo"
say "build steward.exe, steward-testchild.exe, steward-scmctl.exe and the console test"
cargo build -p steward -p testkit --bins --target "$TARGET"
cargo build -p steward-service --example minimal --target "$TARGET"
cargo test --no-run -p steward --test integration --target "$TARGET"
bin=$CARGO_TARGET_DIR/$TARGET/debug

# --- a private, headless Wine prefix -----------------------------------------------------------
say "fresh Wine prefix"
# shellcheck source=scripts/wine-lib.sh
. "$repo/scripts/wine-lib.sh"
export WINEPREFIX=$CARGO_TARGET_DIR/wine-service-prefix
cleanup() {
    # On a failure, what the services logged goes into the CI log before the prefix goes.
    if [ "${fails:-0}" -gt 0 ] && [ -d "${C:-}" ]; then
        find "$C/ProgramData/steward" "$C/wrap data" -type f \( -name '*.log' -o -name starts \) 2>/dev/null |
            while read -r f; do printf '\n--- %s (last 40 lines)\n' "${f#"$C"/}"; tail -n 40 "$f"; done
    fi
    wineserver -k >/dev/null 2>&1 || true
    if [ "${KEEP_PREFIX:-0}" = 1 ]; then echo "prefix kept at $WINEPREFIX"; else rm -rf "$WINEPREFIX"; fi
}
trap cleanup EXIT
wine_fresh_prefix "$WINEPREFIX"
echo "$(wine --version)"

C=$WINEPREFIX/drive_c
mkdir -p "$C/Program Files/steward test"
cp "$bin/steward.exe" "$bin/steward-testchild.exe" "$bin/steward-scmctl.exe" "$C/Program Files/steward test/"
STEWARD='C:\Program Files\steward test\steward.exe'
SCMCTL='C:\Program Files\steward test\steward-scmctl.exe'
CHILD='C:\Program Files\steward test\steward-testchild.exe'

steward() { w "$STEWARD" "$@"; }
alive() { wine "$SCMCTL" alive "$1" >/dev/null 2>&1; }
gone() { ! alive "$1"; }
pidfile() { tr -d '\r\n ' <"$1" 2>/dev/null || true; }
count_lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
at_least_lines() { [ "$(count_lines "$1")" -ge "$2" ]; }
has_file() { [ -s "$1" ]; }
# fresh_pidfiles FILE...: remove a run's pidfiles before the program is started again, so that
# only the new run's can be read afterwards. (A stale grandchild pidfile also made the new run
# fail now and then under Wine, which cannot rename over a file that is open; the test child
# now removes it itself, see spawn_grandchild in testchild.rs.)
fresh_pidfiles() { rm -f "$@"; }
EVENT_SOURCE='HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\steward'
source_registered() { wine reg query "$EVENT_SOURCE" >/dev/null 2>&1; }

# --- A: two config services side by side -------------------------------------------------------
say "A. config services: install"
one=$C/steward\ svc/one
two=$C/steward\ svc/two
mkdir -p "$one" "$two"
# state_dir and log_dir are relative: resolved from the config's folder, not C:\windows.
cat >"$one/steward.toml" <<EOF
[supervisor]
state_dir = "state"
log_dir = "logs"

[programs.worker]
command = ['$CHILD', "--spawn-grandchild", "--grandchild-pidfile", "grandchild.pid", "--pidfile", "worker.pid", "--append-start", "worker.starts", "--trap-term", "--sleep", "1h"]

[programs.flaky]
command = ['$CHILD', "--append-start", "flaky.starts", "--sleep", "300ms", "--exit", "3"]
restart_delay = "100ms"
max_restarts = 1000
EOF
cat >"$two/steward.toml" <<EOF
[programs.worker]
command = ['$CHILD', "--pidfile", "worker.pid", "--sleep", "1h"]
EOF
CFG1='C:\steward svc\one\steward.toml'
CFG2='C:\steward svc\two\steward.toml'
opts1=(--name stw-one --display-name "Steward One" --start delayed --depends-on eventlog --env "GREETING=say \"hi\"")
out=$(steward service install -c "$CFG1" "${opts1[@]}") || fail "install stw-one: $out"
echo "$out"
out=$(steward service install -c "$CFG2" --name stw-two --start manual) || fail "install stw-two: $out"
echo "$out"
check "stw-one and stw-two are installed, STOPPED" eval 'is_state stw-one STOPPED && is_state stw-two STOPPED'
# (status exits 3: the service does not run yet)
stored=$(steward service status --name stw-one | sed -n 's/^  runs: *//p' || true)
rendered=$(steward service render --init windows -c "$CFG1" "${opts1[@]}" --exe "$STEWARD" | sed -n 's/^command line: *//p' || true)
echo "stored:   $stored"
echo "rendered: $rendered"
check "the SCM stored exactly the rendered, quoted command line" eval '[ -n "$stored" ] && [ "$stored" = "$rendered" ]'
check "the Event Log source steward is registered" source_registered

say "A. config services: start"
w sc start stw-one >/dev/null || true
w sc start stw-two >/dev/null || true
within 30 "sc query stw-one: RUNNING" is_state stw-one RUNNING
within 30 "sc query stw-two: RUNNING" is_state stw-two RUNNING
within 20 "stw-one's worker and grandchild are up" eval 'has_file "$one/worker.pid" && has_file "$one/grandchild.pid"'
worker=$(pidfile "$one/worker.pid")
grandchild=$(pidfile "$one/grandchild.pid")
check "worker $worker and grandchild $grandchild run" eval 'alive "$worker" && alive "$grandchild"'
out=$(steward status -c "$CFG1") || true
echo "$out"
check "steward status reaches stw-one over its named pipe" grep -Eq '^worker +running' <<<"$out"
out=$(steward status -c "$CFG2") || true
check "steward status reaches stw-two over its own pipe" grep -Eq '^worker +running' <<<"$out"
within 30 "a crashing program comes back (3 starts of flaky)" at_least_lines "$one/flaky.starts" 3
check "stw-one is still RUNNING" is_state stw-one RUNNING
check "the service host writes to the Event Log (the calls succeed)" \
    eval 'grep -q "Event Log: writing as source steward" "$one/logs/steward.log" && ! grep -q "cannot write to the Event Log" "$one/logs/steward.log"'
check "--env reached the service" grep -q -- '--env "GREETING=say \\"hi\\""' <<<"$stored"

say "A. Pause, Continue, ParamChange"
w "$SCMCTL" control stw-one pause || true
within 30 "Pause: stw-one is PAUSED" is_state stw-one PAUSED
within 10 "Pause: its worker is down" gone "$worker"
# Only the next run's pidfiles are read after Continue.
fresh_pidfiles "$one/worker.pid" "$one/grandchild.pid"
w "$SCMCTL" control stw-one continue || true
within 30 "Continue: stw-one is RUNNING" is_state stw-one RUNNING
# Counted by starts, not by pid: Wine hands out freed pids again.
within 20 "Continue: the worker started again" at_least_lines "$one/worker.starts" 2
worker=$(pidfile "$one/worker.pid")
check "Continue: the new worker $worker runs" alive "$worker"
grandchild=$(pidfile "$one/grandchild.pid")
w "$SCMCTL" control stw-one paramchange || true
within 10 "ParamChange: steward reloaded its config" grep -q "reload applied" "$one/logs/steward.log"

say "A. stop, uninstall"
w sc stop stw-one || true
within 30 "sc stop: stw-one is STOPPED" is_state stw-one STOPPED
within 10 "sc stop killed the worker" gone "$worker"
within 10 "sc stop killed the grandchild too" gone "$grandchild"
check "the worker was stopped with Ctrl+C from the service (its log: got ctrl 0)" grep -q "got ctrl 0" "$one/logs/worker.out.log"
check "stw-two is still RUNNING" is_state stw-two RUNNING
check "stw-one logged before reporting STOPPED" grep -q "reporting STOPPED" "$one/logs/steward.log"
steward service uninstall --name stw-one || fail "uninstall stw-one"
check "stw-one is gone (sc query fails)" not_installed stw-one
check "the Event Log source stays while stw-two uses it" source_registered
steward service stop --name stw-two || fail "service stop stw-two"
check "service stop: stw-two is STOPPED" is_state stw-two STOPPED
echo '[programs.worker]' >"$two/steward.toml" # no command: invalid
out=$(steward service start --name stw-two) && fail "service start with an invalid config succeeded"
echo "$out"
check "an invalid config: the start fails with steward's exit code 2" grep -q "steward exit code 2" <<<"$out"
check "sc query shows SERVICE_EXIT_CODE 2" eval 'wine sc query stw-two | tr -d "\r" | grep -Eq "SERVICE_EXIT_CODE +: 2 "'
steward service uninstall --name stw-two || fail "uninstall stw-two"
check "stw-two is gone" not_installed stw-two
check "the last uninstall removed the Event Log source" eval '! source_registered'

# --- B: wrap mode -----------------------------------------------------------------------------
say "B. wrap: install"
wrapdata=$C/wrap\ data
mkdir -p "$wrapdata"
# A restart delay long enough to see the crashed run's grandchild gone before the next run.
steward wrap install stw-wrap --restart always --restart-delay 2s --cwd 'C:\wrap data' --start manual -- \
    "$CHILD" --spawn-grandchild --grandchild-pidfile gc.pid --pidfile main.pid --append-start starts --sleep 1h ||
    fail "wrap install"
shown=$(steward wrap show stw-wrap) || true
echo "$shown"
check "wrap show prints the generated config" grep -qF 'steward-testchild.exe' <<<"$shown"
check "stw-wrap is installed" is_state stw-wrap STOPPED
wrapdir=$C/ProgramData/steward/wrap/stw-wrap
check "the wrap folder is %ProgramData%\\steward\\wrap\\stw-wrap" test -f "$wrapdir/steward.toml"

say "B. wrap: start, crash, stop"
w sc start stw-wrap >/dev/null || true
within 30 "sc query stw-wrap: RUNNING" is_state stw-wrap RUNNING
within 20 "the wrapped program and its grandchild are up" eval 'has_file "$wrapdata/main.pid" && has_file "$wrapdata/gc.pid"'
main=$(pidfile "$wrapdata/main.pid")
gc=$(pidfile "$wrapdata/gc.pid")
check "program $main and grandchild $gc run" eval 'alive "$main" && alive "$gc"'
fresh_pidfiles "$wrapdata/main.pid" "$wrapdata/gc.pid" # the new run's, not this run's, are read below
w taskkill /F /PID "$main" || true
within 10 "the crashed run's grandchild was cleaned up" gone "$gc"
within 20 "the killed program comes back" at_least_lines "$wrapdata/starts" 2
main=$(pidfile "$wrapdata/main.pid")
gc=$(pidfile "$wrapdata/gc.pid")
check "the new run ($main) and its grandchild ($gc) run" eval 'alive "$main" && alive "$gc"'
check "stw-wrap is still RUNNING" is_state stw-wrap RUNNING
w sc stop stw-wrap || true
within 30 "sc stop: stw-wrap is STOPPED" is_state stw-wrap STOPPED
within 10 "sc stop killed the program and its grandchild" eval 'gone "$main" && gone "$gc"'
steward wrap uninstall stw-wrap || fail "wrap uninstall"
check "stw-wrap is gone" not_installed stw-wrap
check "wrap uninstall removed the wrap folder" test ! -e "$wrapdir"

# --- C: steward run in a console, Ctrl+C -------------------------------------------------------
say "C. steward run in a console: the CLI over the pipe, Ctrl+C"
if cargo test -p steward --test integration --target "$TARGET" -- windows_console --nocapture; then
    pass "steward run: steward status over the pipe; Ctrl+C stops the programs and grandchild, exit 0"
else
    fail "steward run under a console and Ctrl+C (crates/steward/tests/windows_console.rs)"
fi

# --- D: the library's minimal example ----------------------------------------------------------
say "D. steward-service: the minimal example under the SCM"
lib=$C/lib\ test
mkdir -p "$lib"
cp "$bin/examples/minimal.exe" "$lib/"
minlog=$lib/minimal.log
mkdir -p "$lib/work"
if out=$(w "$lib/minimal.exe" service install --name stw-minimal --working-dir 'C:\lib test\work' \
    --env MINIMAL_NOTE=from-install -- --start-delay 4000 --log 'C:\lib test\minimal.log' \
    --log-dir 'C:\lib test\logs' 2>&1); then
    pass "stw-minimal: the example installed itself ($out)"
else
    fail "stw-minimal: minimal.exe service install: $out"
fi
w sc start stw-minimal >/dev/null || true
# The checkpoints seen while it starts: they must rise (once a second, by the library).
# The checkpoint of a START_PENDING report, in decimal (sc prints 0x...); nothing once it
# left that state (state and checkpoint from one query).
starting_checkpoint() {
    local hex
    hex=$(wine sc query "$1" 2>/dev/null | tr -d '\r' |
        awk '/STATE/ {pending = ($4 == "START_PENDING")} /CHECKPOINT/ && pending {print $3; exit}')
    [ -n "$hex" ] && echo $((hex))
}
seen=()
end=$((SECONDS + 30))
while ((SECONDS < end)); do
    cp=$(starting_checkpoint stw-minimal || true)
    [ -n "$cp" ] || { is_state stw-minimal START_PENDING || break; continue; }
    if [ ${#seen[@]} -eq 0 ] || [ "$cp" != "${seen[-1]}" ]; then seen+=("$cp"); fi
    sleep 0.2
done
echo "checkpoints while START_PENDING: ${seen[*]}"
rising() { # at least 3 values, each above the one before
    [ ${#seen[@]} -ge 3 ] || return 1
    local i
    for ((i = 1; i < ${#seen[@]}; i++)); do [ "${seen[i]}" -gt "${seen[i - 1]}" ] || return 1; done
}
check "a slow start is START_PENDING with rising checkpoints (${seen[*]})" rising
within 30 "stw-minimal: RUNNING once its code said ready" is_state stw-minimal RUNNING
check "its code ran under the SCM (Scm mode) and said ready" eval 'grep -q "^starting (Scm)" "$minlog" && grep -qx ready "$minlog"'
check "the working directory the install set reached it" grep -qxF 'working directory C:\lib test\work' "$minlog"
check "the variable the install set reached it" grep -qx "MINIMAL_NOTE=from-install" "$minlog"
MIN_SOURCE='HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\stw-minimal'
check "install registered its Event Log source, named after the service" eval 'wine reg query "$MIN_SOURCE" >/dev/null 2>&1'
# steward_service::log under the SCM: the Event Log (Wine stores nothing there), and the files.
check "its log goes to the Event Log and to daily files under the SCM" \
    eval 'grep -qs "the log goes to the Windows Event Log" "$lib/logs/"stw-minimal.*.log'
w "$SCMCTL" control stw-minimal pause || true
within 20 "Pause: PAUSED" is_state stw-minimal PAUSED
check "Pause reached its code" grep -qx "control Pause" "$minlog"
w "$SCMCTL" control stw-minimal continue || true
within 20 "Continue: RUNNING" is_state stw-minimal RUNNING
check "Continue reached its code" grep -qx "control Continue" "$minlog"
w "$SCMCTL" control stw-minimal paramchange || true
within 10 "ParamChange reached its code as Reload" grep -qx "control Reload" "$minlog"
w sc stop stw-minimal || true
within 30 "sc stop: STOPPED" is_state stw-minimal STOPPED
check "Stop reached its code, which finished" eval 'grep -qx "control Stop(Requested)" "$minlog" && grep -qx stopped "$minlog"'
exit_codes() { wine sc query "$1" 2>/dev/null | tr -d '\r' | awk '/WIN32_EXIT_CODE|SERVICE_EXIT_CODE/ {printf "%s ", $3}'; }
check "a clean stop leaves exit code 0 ($(exit_codes stw-minimal))" eval '[ "$(exit_codes stw-minimal)" = "0 0 " ]'
if out=$(w "$lib/minimal.exe" service uninstall --name stw-minimal 2>&1); then
    check "minimal.exe service uninstall removed it ($out)" eval '! wine sc query stw-minimal >/dev/null 2>&1'
    check "uninstall removed its Event Log source" eval '! wine reg query "$MIN_SOURCE" >/dev/null 2>&1'
else
    fail "stw-minimal: minimal.exe service uninstall: $out"
fi

w "$lib/minimal.exe" service install --name stw-minfail -- --fail 3 >/dev/null 2>&1 || fail "minimal.exe service install --name stw-minfail"
w sc start stw-minfail >/dev/null || true
within 30 "stw-minfail: RUNNING" is_state stw-minfail RUNNING
w sc stop stw-minfail || true
within 30 "stw-minfail: STOPPED" is_state stw-minfail STOPPED
# 1066 is ERROR_SERVICE_SPECIFIC_ERROR: the code is in SERVICE_EXIT_CODE.
check "a failing main leaves a service-specific exit code 3 ($(exit_codes stw-minfail))" \
    eval '[ "$(exit_codes stw-minfail)" = "1066 3 " ]'
w "$lib/minimal.exe" service uninstall --name stw-minfail >/dev/null 2>&1 || fail "minimal.exe service uninstall --name stw-minfail"

printf '\n=== summary: %s in %ds\n' "$([ $fails -eq 0 ] && echo 'all checks passed' || echo "$fails FAILED")" \
    "$((SECONDS - started))"
[ $fails -eq 0 ]
