#!/usr/bin/env bash
# wine-self-update-test.sh: `steward self-update` of steward running as a Windows service,
# under Wine's Service Control Manager.
#
# Usage: scripts/wine-self-update-test.sh      (KEEP_PREFIX=1 keeps the Wine prefix for a look)
#
# Builds steward.exe for x86_64-pc-windows-gnu (in $STEWARD_WINDOWS_TARGET_DIR, default
# target-windows/), makes a fresh private Wine prefix, installs steward as the service
# `stw-up` from "C:\Program Files\stw up\steward.exe", starts it, and publishes a signed
# release (a zip) whose steward.exe is the same build with bytes appended (a PE with an overlay
# still runs), installed with --reinstall (same version). Then checks, printing PASS or FAIL:
#   - GET /v1/version names the SCM service;
#   - self-update exits 0 and says the new one runs;
#   - the installed exe is the new one (SHA-256) and was renamed aside while it ran (the new
#     start's log says it removed steward.exe.old-<version>), and no .old-* file is left;
#   - the SCM restarted the service: its log shows a second start with a new pid; RUNNING.
# What Wine cannot check (so this does not pretend to): failure actions are never acted on,
# so the rollback's restart on Windows is not tested here; antivirus holding a new file (the
# retries). Signs with Debian's `minisign`.
set -euo pipefail

readonly TARGET=x86_64-pc-windows-gnu
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
fails=0
pass() { printf 'PASS  %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; fails=$((fails + 1)); }
within() { # within SECONDS COMMAND...: poll COMMAND until it succeeds, bounded
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS >= end)) && return 1
        sleep 0.2
    done
}
command -v minisign >/dev/null || { echo "wine-self-update-test: needs minisign to sign (apt-get install minisign)" >&2; exit 2; }

env_file=$("$repo/scripts/windows-toolchain.sh")
(
    # shellcheck disable=SC1090
    . "$env_file"
    export CARGO_TARGET_DIR=${STEWARD_WINDOWS_TARGET_DIR:-$repo/target-windows}
    cd "$repo"
    # The same build as the other Windows steps (same features: nothing is compiled twice).
    cargo build -p steward -p testkit --bins --target "$TARGET"
)
bin=${STEWARD_WINDOWS_TARGET_DIR:-$repo/target-windows}/$TARGET/debug

export WINEPREFIX=${STEWARD_WINDOWS_TARGET_DIR:-$repo/target-windows}/wine-self-update-prefix
export WINEDEBUG=-all
unset DISPLAY WAYLAND_DISPLAY
# shellcheck disable=SC1090
. "$env_file" # for wine-prefix-init (and nothing is built below)
wineserver -k >/dev/null 2>&1 || true
rm -rf "$WINEPREFIX"
cleanup() {
    if [ "$fails" -gt 0 ] && [ -f "${LOG:-}" ]; then printf '\n--- steward.log\n'; tail -n 40 "$LOG"; fi
    wineserver -k >/dev/null 2>&1 || true
    if [ "${KEEP_PREFIX:-0}" = 1 ]; then echo "prefix kept at $WINEPREFIX"; else rm -rf "$WINEPREFIX"; fi
}
trap cleanup EXIT
wine-prefix-init "$WINEPREFIX"
timeout 120 wineserver -w || true
wineserver -p
wineboot </dev/null >/dev/null 2>&1 || true
wine --version

C=$WINEPREFIX/drive_c
mkdir -p "$C/Program Files/stw up" "$C/stw-cli" "$C/stw-up" "$C/stw-rel"
cp "$bin/steward.exe" "$C/Program Files/stw up/steward.exe"
cp "$bin/steward.exe" "$C/stw-cli/steward.exe"
: >"$C/stw-up/steward.toml"
EXE='C:\Program Files\stw up\steward.exe'
LOG=$C/stw-up/.steward/logs/steward.log
w() { wine "$@" 2>&1 | tr -d '\r'; return "${PIPESTATUS[0]}"; }
state() { wine sc query "$1" 2>/dev/null | tr -d '\r' | awk '/STATE/ {print $4; exit}'; }
is_state() { [ "$(state "$1")" = "$2" ]; }
starts() { grep -c 'service stw-up starting (pid' "$LOG" 2>/dev/null || echo 0; }
pids() { sed -n 's/.*service stw-up starting (pid \([0-9]*\)).*/\1/p' "$LOG" 2>/dev/null | tr '\n' ' '; }

echo "=== install and start the service"
w "$EXE" service install -c 'C:\stw-up\steward.toml' --name stw-up
wine sc start stw-up >/dev/null 2>&1 || true
if within 60 is_state stw-up RUNNING && within 30 test "$(starts)" -ge 1; then
    pass "stw-up RUNNING (pid $(pids))"
else
    fail "stw-up did not start: $(state stw-up)"
    exit 1
fi

echo "=== publish the release: the same build with bytes appended, version $(w "$EXE" --version)"
version=$(w "$EXE" --version | awk '{print $2}')
cp "$bin/steward.exe" "$C/stw-rel/steward.exe"
printf 'self-update test overlay %s' "$RANDOM" >>"$C/stw-rel/steward.exe"
new_sum=$(sha256sum "$C/stw-rel/steward.exe" | cut -d' ' -f1)
archive="steward-$version-windows.zip"
python3 - "$C/stw-rel" "$archive" <<'PY'
import os, sys, zipfile
rel, archive = sys.argv[1:3]
with zipfile.ZipFile(os.path.join(rel, archive), "w", zipfile.ZIP_DEFLATED) as z:
    z.write(os.path.join(rel, "steward.exe"), "steward.exe")
os.remove(os.path.join(rel, "steward.exe"))
PY
cat >"$C/stw-rel/manifest.json" <<JSON
{"schema": 1, "name": "steward", "version": "$version", "expires": "2099-01-01T00:00:00Z",
 "artifacts": [{"target": "windows-x86_64", "url": "$archive",
   "sha256": "$(sha256sum "$C/stw-rel/$archive" | cut -d' ' -f1)", "size": $(stat -c %s "$C/stw-rel/$archive")}]}
JSON
keys=$(mktemp -d)
minisign -G -W -p "$keys/pub.key" -s "$keys/sec.key" -f >/dev/null
minisign -S -s "$keys/sec.key" -m "$C/stw-rel/manifest.json" -t "name=steward version=$version" >/dev/null
pub=$(sed -n 2p "$keys/pub.key")
rm -rf "$keys"

echo "=== self-update --reinstall (from another copy of steward.exe)"
pids_before=$(pids)
t0=$(date +%s.%N)
set +e
out=$(w 'C:\stw-cli\steward.exe' self-update -c 'C:\stw-up\steward.toml' --source 'C:\stw-rel' --key "$pub" \
    --reinstall --exe "$EXE")
rc=$?
set -e
t1=$(date +%s.%N)
printf '%s\n' "$out" | sed 's/^/  | /'
if [ $rc -eq 0 ] && grep -q "is running (pid" <<<"$out" && grep -q "scm stw-up" <<<"$out"; then
    pass "self-update rc=0 in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')s, restarted through the SCM"
else
    fail "self-update rc=$rc"
fi
if [ "$(sha256sum "$C/Program Files/stw up/steward.exe" | cut -d' ' -f1)" = "$new_sum" ]; then
    pass "the installed steward.exe is the new one (SHA-256)"
else
    fail "the installed steward.exe is not the new one"
fi
if within 30 test "$(starts)" -ge 2 && [ "$(pids)" != "$pids_before" ] && within 30 is_state stw-up RUNNING; then
    pass "the SCM restarted the service: pids $(pids), RUNNING"
else
    fail "no second start in steward.log (pids: $(pids)), state $(state stw-up)"
fi
if grep -q "removed .*steward.exe.old-$version" "$LOG"; then
    pass "the running exe had been renamed aside, and the next start removed steward.exe.old-$version"
else
    fail "steward.log does not say the .old file was removed"
fi
left=$(ls "$C/Program Files/stw up")
if [ "$left" = steward.exe ]; then
    pass "nothing but steward.exe left in its folder"
else
    fail "left in the folder: $left"
fi
if within 30 bash -c "! test -e '$C/stw-up/.steward/update/pending.json'" && grep -q "confirmed" "$LOG"; then
    pass "the new start confirmed the update (pending.json removed)"
else
    fail "not confirmed"
fi
w "$EXE" service uninstall --name stw-up >/dev/null || fail "uninstall"
echo "wine self-update: $fails failed"
[ "$fails" -eq 0 ]
