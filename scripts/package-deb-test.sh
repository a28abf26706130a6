#!/usr/bin/env bash
# package-deb-test.sh [STEWARD]: the Debian package through its life, under a real systemd.
#
# Builds two packages from the same binary with scripts/package-deb.sh (revisions 1 and 2, an
# upgrade as a rebuild would make it), runs lintian on the first when it is installed (an
# error fails), then boots systemd in namespaces (scripts/systemd-namespace.sh: dpkg's
# database and every file land in the throw-away overlay) and checks there, printing PASS or
# FAIL with what was seen:
#
#   install   `dpkg -i` revision 1: the unit is enabled and not started; /var/lib/steward and
#             /var/log/steward exist (0700); the unit is what `steward service render` prints
#             for the config, but for TimeoutStopSec; man pages and completions are in place
#             (`man -w`, bash's `complete -p`, the
#             zsh and fish files' first lines)
#   start     `systemctl start steward`: active after READY=1; `steward status` answers
#   edit      a program added to /etc/steward/steward.toml, `steward reload`: it runs
#   upgrade   `dpkg -i` revision 2: the edited config is kept, steward was restarted (a new
#             main pid, the new package's binary) and runs the program again; then disabled
#             and stopped by the admin, `dpkg -i` again leaves it disabled and stopped
#   remove    `dpkg -r`: steward and its program stopped, the binary gone; the config, the
#             state and the logs stay
#   purge     `dpkg --purge`: config, state, logs and the unit's enable links are gone
#
# STEWARD is the binary to package (default: $STEWARD, else target/release/steward). The last
# line is `package (deb): N passed, N failed`; the exit status is 1 when anything failed.
# Needs root, dpkg-dev and binutils (see scripts/package-deb.sh and systemd-namespace.sh).
set -uo pipefail

# ============================================================================================
# Inside the container. Run as `package-deb-test.sh __inside DIR`; DIR holds the packages and
# receives the counts.
# ============================================================================================
# pass, fail, show, check, within; beside this script, here and in the container.
# shellcheck source=scripts/test-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/test-lib.sh"
prop() { systemctl show -p "$1" --value steward.service; }
alive() { local s; s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) && [ "${s%% *}" != Z ]; }
conf=/etc/steward/steward.toml
stw_status() { steward status -c "$conf"; }
# The pid of the test program from `steward status` (NAME STATE PID ...), when it runs.
program_pid() { stw_status 2>/dev/null | awk '$1 == "pkgtest" && $2 == "running" { print $3 }'; }
program_runs() { [ -n "$(program_pid)" ]; }
dump() {
    systemctl status --no-pager -n 30 steward.service 2>&1 | sed 's/^/  | /'
}

inside() {
    local dir=$1 out rc
    passed=0 failed=0
    local v1=$dir/v1.deb v2=$dir/v2.deb
    # A container image's policy-rc.d (Docker's exits 101) forbids every service action of
    # maintainer scripts, which a real machine allows; the overlay's copy goes, the host's stays.
    if [ -e /usr/sbin/policy-rc.d ]; then
        rm -f /usr/sbin/policy-rc.d
        show "removed the image's /usr/sbin/policy-rc.d (in the container only)"
    fi

    echo "=== install: dpkg -i $(dpkg-deb -f "$v1" Version)"
    if out=$(dpkg -i "$v1" 2>&1); then pass "dpkg -i revision 1"; else fail "dpkg -i revision 1:"; show "$out"; fi
    check "the unit is enabled (is-enabled: $(systemctl is-enabled steward.service 2>&1))" \
        test "$(systemctl is-enabled steward.service 2>&1)" = enabled
    check "the unit is not started on a fresh install (is-active: $(systemctl is-active steward.service 2>&1))" \
        test "$(systemctl is-active steward.service 2>&1)" = inactive
    local d
    for d in /var/lib/steward /var/log/steward; do
        check "postinst made $d, mode $(stat -c %a "$d" 2>/dev/null)" test "$(stat -c %a "$d" 2>/dev/null)" = 700
    done
    check "/etc/steward/steward.toml is a conffile" grep -qx "/etc/steward/steward.toml" /var/lib/dpkg/info/steward.conffiles
    check "steward check accepts the shipped config" eval 'steward check -c "$conf" >/dev/null'

    # The packaged unit against steward's own rendering for this config on this machine:
    # every setting the same, but TimeoutStopSec (the package's 90 s).
    local shipped rendered
    shipped=$(grep -v '^#' /lib/systemd/system/steward.service)
    rendered=$(steward service render --init systemd -c "$conf" | grep -v '^#')
    out=$(diff <(echo "$rendered") <(echo "$shipped"))
    if [ "$(grep -c '^[<>]' <<<"$out")" = 2 ] && grep -qx '> TimeoutStopSec=90s' <<<"$out"; then
        pass "the shipped unit is \`steward service render\`'s, TimeoutStopSec=90s aside ($(grep -E '^(Type|KillMode|Delegate)=' <<<"$shipped" | tr '\n' ' '))"
    else
        fail "the shipped unit differs from \`steward service render\` (< render, > shipped):"
        show "$out"
    fi
    check "systemd-analyze verify accepts the unit" systemd-analyze verify /lib/systemd/system/steward.service

    local pages
    pages=$(find /usr/share/man/man1 /usr/share/man/man5 -name 'steward*.gz' | wc -l)
    if man -w steward >/dev/null 2>&1 && man -w 5 steward.toml >/dev/null 2>&1 && zcat /usr/share/man/man1/steward.1.gz | grep -q '^\.TH'; then
        pass "man pages: man -w steward and man -w 5 steward.toml find them ($pages pages)"
    else
        fail "man pages: man -w steward / steward.toml(5) failed; $pages pages installed"
    fi
    check "bash completion: sourcing it registers \`complete -F ... steward\`" \
        bash -c '. /usr/share/bash-completion/completions/steward && complete -p steward >/dev/null'
    check "zsh completion in /usr/share/zsh/vendor-completions/_steward" grep -q '#compdef steward' /usr/share/zsh/vendor-completions/_steward
    check "fish completion in /usr/share/fish/vendor_completions.d/steward.fish" grep -qE '^complete .*(-c|--command) steward' /usr/share/fish/vendor_completions.d/steward.fish
    check "license: /usr/share/doc/steward/copyright names MIT and Apache-2.0" \
        grep -qx 'License: MIT or Apache-2.0' /usr/share/doc/steward/copyright

    echo "=== start"
    if out=$(systemctl start steward.service 2>&1) && [ "$(prop ActiveState)" = active ]; then
        pass "systemctl start steward: active (Type=$(prop Type), status: \"$(prop StatusText)\")"
    else
        fail "systemctl start steward: $out"
        dump
    fi
    if out=$(stw_status 2>&1); then
        pass "steward status -c $conf answers (exit 0)"
    else
        fail "steward status: $out"
    fi

    echo "=== edit the config, reload"
    cat >>"$conf" <<'EOF'

[programs.pkgtest]
command = ["/bin/sh", "-c", "echo pkgtest up; exec sleep 3600"]
EOF
    if out=$(steward reload -c "$conf" 2>&1); then pass "steward reload"; else fail "steward reload: $out"; fi
    within 10 "the added program runs (steward status: pkgtest running)" program_runs
    local old_main old_prog
    old_main=$(prop MainPID) old_prog=$(program_pid)

    echo "=== upgrade: dpkg -i $(dpkg-deb -f "$v2" Version)"
    if out=$(dpkg -i "$v2" 2>&1); then pass "dpkg -i revision 2"; else fail "dpkg -i revision 2:"; show "$out"; fi
    check "the package is now $(dpkg-query -W -f '${Version}' steward)" test "$(dpkg-query -W -f '${Version}' steward)" = "$(dpkg-deb -f "$v2" Version)"
    check "the edited config is kept" grep -qx '\[programs.pkgtest\]' "$conf"
    check "no .dpkg-new, .dpkg-dist or .dpkg-old beside it" eval '! compgen -G "/etc/steward/*.dpkg-*" >/dev/null'
    local new_main
    new_main=$(prop MainPID)
    if [ "$(prop ActiveState)" = active ] && [ "$new_main" != 0 ] && [ "$new_main" != "$old_main" ]; then
        pass "the upgrade restarted steward (main pid $old_main -> $new_main), it is active"
    else
        fail "after the upgrade: state $(prop ActiveState), main pid $old_main -> $new_main (want a new one)"
        dump
    fi
    check "the old steward's program (pid $old_prog) is gone" eval "! alive $old_prog"
    within 10 "the program runs under the new steward" program_runs

    echo "=== the admin's choice survives an upgrade: disabled and stopped, then dpkg -i again"
    systemctl disable --now steward.service >/dev/null 2>&1
    if out=$(dpkg -i "$v1" 2>&1); then pass "dpkg -i revision 1 over 2"; else fail "dpkg -i revision 1 over 2:"; show "$out"; fi
    check "still disabled (is-enabled: $(systemctl is-enabled steward.service 2>&1))" \
        test "$(systemctl is-enabled steward.service 2>&1)" = disabled
    check "still stopped (is-active: $(systemctl is-active steward.service 2>&1))" \
        test "$(systemctl is-active steward.service 2>&1)" = inactive
    systemctl enable --now steward.service >/dev/null 2>&1
    within 10 "enabled and started again, the program runs" program_runs

    echo "=== remove: dpkg -r"
    local main prog
    main=$(prop MainPID) prog=$(program_pid)
    if out=$(dpkg -r steward 2>&1); then pass "dpkg -r steward"; else fail "dpkg -r steward:"; show "$out"; fi
    check "steward is stopped (is-active: $(systemctl is-active steward.service 2>&1)), its pid $main gone" \
        eval "[ \"\$(systemctl is-active steward.service 2>&1)\" != active ] && ! alive $main"
    check "its program (pid $prog) is gone" eval "! alive ${prog:-0}"
    check "/usr/bin/steward is gone" test ! -e /usr/bin/steward
    check "the edited config stays" grep -qx '\[programs.pkgtest\]' "$conf"
    check "the state dir stays (steward.lock: $(ls /var/lib/steward | tr '\n' ' '))" test -e /var/lib/steward/steward.lock
    check "the logs stay (/var/log/steward: $(ls /var/log/steward | tr '\n' ' '))" grep -qx 'pkgtest up' /var/log/steward/pkgtest.out.log
    check "dpkg keeps the package as config-files (rc)" test "$(dpkg-query -W -f '${db:Status-Abbrev}' steward)" = "rc "

    echo "=== purge: dpkg --purge"
    if out=$(dpkg --purge steward 2>&1); then pass "dpkg --purge steward"; else fail "dpkg --purge steward:"; show "$out"; fi
    check "the config is gone" test ! -e "$conf"
    check "/var/lib/steward is gone" test ! -e /var/lib/steward
    check "/var/log/steward is gone" test ! -e /var/log/steward
    local links
    links=$(find /etc/systemd/system -name 'steward.service' 2>/dev/null)
    check "no enable link or mask left in /etc/systemd/system${links:+: $links}" test -z "$links"
    check "dpkg no longer knows the package" eval "! dpkg-query -W steward >/dev/null 2>&1"

    echo "$passed $failed" >"$dir/counts"
}

if [ "${1:-}" = __inside ]; then
    export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    inside "$2"
    exit 0
fi

# ============================================================================================
# On the host: build the packages, lint, boot, run the checks inside, check nothing was left.
# ============================================================================================
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
steward=${1:-${STEWARD:-$repo/target/release/steward}}
if [ "$(id -u)" -ne 0 ]; then
    echo "package-deb-test: must run as root (it boots systemd in namespaces: scripts/systemd-namespace.sh)" >&2
    exit 2
fi
if [ ! -x "$steward" ]; then
    echo "package-deb-test: no steward binary at $steward; build it (cargo build --release -p steward) or pass its path" >&2
    exit 2
fi
if dpkg-query -W steward >/dev/null 2>&1; then
    echo "package-deb-test: a steward package is installed on this machine; the test installs its own in a container and compares: remove it first" >&2
    exit 2
fi
passed=0 failed=0

work=$(mktemp -d /tmp/steward-deb-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "=== build: scripts/package-deb.sh $steward (revisions 1 and 2)"
t0=$SECONDS
for rev in 1 2; do
    if deb=$(bash "$repo/scripts/package-deb.sh" --revision "$rev" --out "$work/out" "$steward"); then
        cp "$deb" "$work/v$rev.deb"
        pass "built ${deb##*/} ($(du -h "$deb" | cut -f1))"
    else
        fail "scripts/package-deb.sh --revision $rev failed"
    fi
done
echo "  | built in $((SECONDS - t0)) s"
if [ -s "$work/v1.deb" ] && command -v lintian >/dev/null; then
    # lintian runs as root here (a throw-away CI machine); it says so on stderr.
    lint=$(lintian --allow-root "$work/v1.deb" 2>&1)
    lint_rc=$?
    if [ "$lint_rc" -ne 0 ] || grep -q '^E: ' <<<"$lint"; then
        fail "lintian exit $lint_rc, errors:"
    else
        pass "lintian: no errors ($(grep -c '^[WIP]: ' <<<"$lint") warnings or notes)"
    fi
    [ -z "$lint" ] || printf '%s\n' "$lint" | sed 's/^/  | /'
elif [ -n "${STEWARD_TEST_REQUIRE:-}" ] && [[ ,$STEWARD_TEST_REQUIRE, == *,lintian,* ]]; then
    fail "lintian is not installed (STEWARD_TEST_REQUIRE has lintian): apt-get install lintian"
else
    echo "SKIP  lintian is not installed"
fi

if [ -s "$work/v1.deb" ] && [ -s "$work/v2.deb" ]; then
    cp "${BASH_SOURCE[0]}" "$work/package-deb-test.sh"
    cp "$repo/scripts/test-lib.sh" "$work/test-lib.sh"
    leftovers() { ls -d /tmp/systemd-ns.* /sys/fs/cgroup/systemd-ns.* /sys/fs/cgroup/unified/systemd-ns.* 2>/dev/null; }
    units_before=$(ls /etc/systemd/system) leftovers_before=$(leftovers)
    SYSTEMD_NS_BIND=$work SYSTEMD_NS_TIMEOUT=300 bash "$repo/scripts/systemd-namespace.sh" \
        bash "$work/package-deb-test.sh" __inside "$work"
    rc=$?
    if [ -s "$work/counts" ]; then
        read -r p f <"$work/counts"
        passed=$((passed + p)) failed=$((failed + f))
    else
        fail "the checks inside systemd did not run to the end (systemd-namespace.sh exit $rc)"
    fi
    echo "=== the host"
    if [ "$units_before" = "$(ls /etc/systemd/system)" ] && [ "$leftovers_before" = "$(leftovers)" ] &&
        ! dpkg-query -W steward >/dev/null 2>&1; then
        pass "nothing left on the host: no steward package, /etc/systemd/system unchanged, no systemd-ns leftovers"
    else
        fail "the host changed: $(dpkg-query -W steward 2>&1) $(leftovers | tr '\n' ' ')"
    fi
fi
echo "package (deb): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
