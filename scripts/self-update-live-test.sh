#!/usr/bin/env bash
# self-update-live-test.sh [STEWARD]: `steward self-update` of steward installed as a service
# of a real systemd (booted in namespaces by scripts/systemd-namespace.sh; nothing is left on
# the host), end to end:
#
#   1. `service install` + `systemctl start`; GET /v1/version names the unit
#      (`"service": {"manager": "systemd", "name": "stw-update.service"}`).
#   2. A signed release 1.1.0 (a wrapper that runs a copy of STEWARD with
#      STEWARD_TEST_VERSION=1.1.0: STEWARD must be a debug build) in a folder: `steward
#      self-update` (the installed binary updating itself) swaps /usr/local/bin/steward,
#      `systemctl restart`s the unit, and waits: the unit's MainPID is new, /v1/version says
#      1.1.0, pending.json is gone (confirmed), the backup is the old binary. The time the
#      restart took is printed.
#   3. A release 1.2.0 that crashes at start (STEWARD_TEST_CRASH_AT_START=1): systemd's
#      Restart=on-failure starts it again, the boot counter restores 1.1.0 after 2 failed
#      starts, and systemd's next start runs it; self-update says it was rolled back and
#      quarantined.json names 1.2.0.
#
# The manifests are signed here with Debian's `minisign`.
# Needs root. The last line is `self-update: N passed, N failed`; exit 1 when anything failed.
set -uo pipefail

inside() {
    local dir=$1
    passed=0 failed=0
    install -m 755 "$dir/steward" /usr/local/bin/steward
    install -m 755 "$dir/steward-testchild" /usr/local/bin/steward-testchild
    # The copy the release wrappers run (the installed path is what gets swapped).
    install -D -m 755 "$dir/steward" /opt/stw-real/steward
    checks
    echo "$passed $failed" >"$dir/counts"
}

pass() { printf 'PASS  %s\n' "$*"; passed=$((passed + 1)); }
fail() { printf 'FAIL  %s\n' "$*"; failed=$((failed + 1)); }
show() { printf '%s\n' "$@" | sed 's/^/  | /'; }
within() { # within SECONDS COMMAND..: COMMAND until it succeeds, bounded
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS >= end)) && return 1
        sleep 0.1
    done
}
version_json() { curl -s --max-time 5 --unix-socket "$state/steward.sock" http://steward/v1/version; }
answers() { version_json | grep -q "\"version\":\"$1\""; }
mainpid() { systemctl show -p MainPID --value "$name.service"; }

# Publishes a release of steward `version` in $rel whose binary is a wrapper with `env`.
publish() { # publish VERSION ENV..
    local version=$1
    shift
    rm -rf "$rel" && mkdir -p "$rel/bin"
    printf '#!/bin/sh\nexec env STEWARD_TEST_VERSION=%s %s /opt/stw-real/steward "$@"\n' "$version" "$*" >"$rel/bin/steward"
    chmod 755 "$rel/bin/steward"
    tar -C "$rel" -czf "$rel/steward-$version.tar.gz" bin
    rm -rf "$rel/bin"
    # A key pair made once per run (no password), then the manifest signed with it.
    if [ ! -f "$keys/sec.key" ]; then
        mkdir -p "$keys"
        minisign -G -W -p "$keys/pub.key" -s "$keys/sec.key" -f >/dev/null
        sed -n 2p "$keys/pub.key" >"$keys/pub"
    fi
    local archive="steward-$version.tar.gz" target
    case $(uname -m) in x86_64) target=linux-x86_64 ;; aarch64) target=linux-aarch64 ;; esac
    cat >"$rel/manifest.json" <<JSON
{"schema": 1, "name": "steward", "version": "$version", "expires": "2099-01-01T00:00:00Z",
 "artifacts": [{"target": "$target", "url": "$archive",
   "sha256": "$(sha256sum "$rel/$archive" | cut -d' ' -f1)", "size": $(stat -c %s "$rel/$archive")}]}
JSON
    minisign -S -s "$keys/sec.key" -m "$rel/manifest.json" -t "name=steward version=$version" >/dev/null
}

checks() {
    name=stw-update conf=/etc/stw-update state=/var/lib/stw-update rel=/srv/stw-rel keys=/root/stw-keys
    mkdir -p "$conf"
    cat >"$conf/steward.toml" <<EOF
[supervisor]
state_dir = "$state"

[programs.clock]
command = ["/usr/local/bin/steward-testchild", "--sleep", "1h"]
EOF
    echo "=== 1. steward as a systemd service"
    local out
    if out=$(steward service install -c "$conf/steward.toml" --name "$name" 2>&1) && systemctl start "$name.service"; then
        pass "service install + systemctl start"
    else
        fail "service install / start:"
        show "$out" "$(systemctl status --no-pager "$name.service" 2>&1)"
        return
    fi
    within 20 answers 0.1.0 || fail "steward 0.1.0 does not answer"
    local reply
    reply=$(version_json)
    if grep -q '"service":{"manager":"systemd","name":"stw-update.service"}' <<<"$reply"; then
        pass "GET /v1/version names the unit: $reply"
    else
        fail "GET /v1/version does not name the unit: $reply"
    fi

    echo "=== 2. self-update to 1.1.0 through systemctl restart"
    publish 1.1.0
    local pub pid0 pid1 t0 t1
    pub=$(cat "$keys/pub")
    pid0=$(mainpid)
    t0=$(date +%s.%N)
    out=$(steward self-update -c "$conf/steward.toml" --source "$rel" --key "$pub" 2>&1)
    local rc=$?
    t1=$(date +%s.%N)
    show "$out"
    if [ $rc -eq 0 ] && grep -q "steward 1.1.0 is running" <<<"$out"; then
        pass "self-update rc=0 in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')s (whole command: fetch, gate, swap, restart, answer)"
    else
        fail "self-update rc=$rc"
        show "$(journalctl --no-pager -q -u "$name.service" -n 30)"
    fi
    pid1=$(mainpid)
    if [ "$pid1" != "$pid0" ] && [ "$pid1" != 0 ] && answers 1.1.0; then
        pass "systemd restarted it: MainPID $pid0 -> $pid1, /v1/version says 1.1.0"
    else
        fail "MainPID $pid0 -> $pid1; /v1/version: $(version_json)"
    fi
    if within 20 test ! -e "$state/update/pending.json" && journalctl --no-pager -q -u "$name.service" | grep -q "steward 1.1.0 confirmed"; then
        pass "confirmed: pending.json removed, the journal says so"
    else
        fail "not confirmed: $(cat "$state/update/pending.json" 2>&1)"
    fi
    if cmp -s "$state/update/backup/steward-0.1.0" /opt/stw-real/steward && grep -q 'STEWARD_TEST_VERSION=1.1.0' /usr/local/bin/steward; then
        pass "the backup is the old binary; /usr/local/bin/steward is the new one"
    else
        fail "backup or installed binary wrong: $(ls -la "$state/update/backup" /usr/local/bin/steward 2>&1)"
    fi

    echo "=== 3. a release that crashes at start is rolled back by the boot counter under systemd"
    publish 1.2.0 STEWARD_TEST_CRASH_AT_START=1
    pid0=$(mainpid)
    # --exe: the installed steward is now 1.1.0's wrapper, so this CLI's own path is the copy
    # it runs (/opt/stw-real/steward), which must stay as it is.
    out=$(steward self-update -c "$conf/steward.toml" --source "$rel" --key "$pub" --exe /usr/local/bin/steward 2>&1)
    rc=$?
    show "$out"
    if [ $rc -eq 1 ] && grep -q "steward 1.2.0 failed to start and was rolled back" <<<"$out"; then
        pass "self-update says 1.2.0 was rolled back (rc=1)"
    else
        fail "self-update rc=$rc, no rollback reported"
        show "$(journalctl --no-pager -q -u "$name.service" -n 40)"
    fi
    if within 30 answers 1.1.0 && grep -q 'STEWARD_TEST_VERSION=1.1.0 ' /usr/local/bin/steward &&
        grep -q '"1.2.0"' "$state/update/quarantined.json" && [ ! -e "$state/update/pending.json" ]; then
        pass "1.1.0 runs again (MainPID $(mainpid), NRestarts=$(systemctl show -p NRestarts --value "$name.service")), 1.2.0 quarantined"
    else
        fail "after the rollback: $(version_json); $(cat "$state/update/quarantined.json" 2>&1)"
    fi
    local crashes
    crashes=$(journalctl --no-pager -q -u "$name.service" | grep -c "crashing right after the boot counter")
    if [ "$crashes" -eq 2 ] && journalctl --no-pager -q -u "$name.service" | grep -q "failed to start 2 times"; then
        pass "the journal: 2 crashed starts, then the restore"
    else
        fail "the journal: $crashes crashes"
        show "$(journalctl --no-pager -q -u "$name.service" -n 40)"
    fi
    steward service uninstall --name "$name" >/dev/null 2>&1
}

if [ "${1:-}" = __inside ]; then
    inside "$2"
    exit 0
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
steward=${1:-${STEWARD:-$repo/target/debug/steward}}
child=${STEWARD_TESTCHILD:-$(dirname "$steward")/steward-testchild}
if [ "$(id -u)" -ne 0 ]; then
    echo "self-update-live-test: must run as root (scripts/systemd-namespace.sh)" >&2
    exit 2
fi
for f in "$steward" "$child"; do
    [ -x "$f" ] || { echo "self-update-live-test: no $f; cargo build -p steward -p testkit (a debug build: the test hooks)" >&2; exit 2; }
done
command -v minisign >/dev/null || { echo "self-update-live-test: needs minisign to sign (apt-get install minisign)" >&2; exit 2; }
work=$(mktemp -d /tmp/steward-selfup.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp "$steward" "$work/steward"
cp "$child" "$work/steward-testchild"
cp "${BASH_SOURCE[0]}" "$work/self-update-live-test.sh"
SYSTEMD_NS_BIND=$work SYSTEMD_NS_TIMEOUT=300 bash "$repo/scripts/systemd-namespace.sh" \
    bash "$work/self-update-live-test.sh" __inside "$work"
rc=$?
passed=0 failed=0
if [ -s "$work/counts" ]; then
    read -r passed failed <"$work/counts"
else
    echo "FAIL  the checks inside systemd did not run to the end (systemd-namespace.sh exit $rc)"
    failed=1
fi
echo "self-update: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
