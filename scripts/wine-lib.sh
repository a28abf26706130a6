# shellcheck shell=bash
# wine-lib.sh: helpers of the tests that run steward.exe as a service under Wine's Service
# Control Manager (wine-service-test.sh, package-windows-test.sh). Source it, with the
# Windows toolchain's environment loaded (scripts/windows-toolchain.sh: wine, wine-prefix-init).

# wine_fresh_prefix DIR: a new, private, headless prefix at DIR (WINEPREFIX, exported), ready
# for services. Services cannot start in the session that created the prefix, so the creating
# session ends first, then a persistent wineserver keeps services.exe between the commands that
# follow; the first wine command hands its stderr to services.exe, hence the quiet wineboot
# (see the shared notes, windows-cross.md). The caller stops it with `wineserver -k`.
wine_fresh_prefix() {
    export WINEPREFIX=$1
    export WINEDEBUG=-all
    unset DISPLAY WAYLAND_DISPLAY
    wineserver -k >/dev/null 2>&1 || true
    rm -rf "$WINEPREFIX"
    wine-prefix-init "$WINEPREFIX"
    timeout 120 wineserver -w || true
    wineserver -p
    wineboot </dev/null >/dev/null 2>&1 || true
}

# w CMD..: a Windows command's output (stdout and stderr) without Wine's CRLF; its exit status.
w() { wine "$@" 2>&1 | tr -d '\r'; return "${PIPESTATUS[0]}"; }
# state NAME: the service's state as `sc query` says it (RUNNING, STOPPED...), empty if none.
state() { wine sc query "$1" 2>/dev/null | tr -d '\r' | awk '/STATE/ {print $4; exit}'; }
is_state() { [ "$(state "$1")" = "$2" ]; }
not_installed() { ! wine sc query "$1" >/dev/null 2>&1; }
