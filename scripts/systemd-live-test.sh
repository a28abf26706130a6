#!/usr/bin/env bash
# systemd-live-test.sh [STEWARD]: steward as a service of a real systemd, end to end.
#
# Boots systemd in namespaces (scripts/systemd-namespace.sh: about a second, nothing left on
# the host) and checks there, printing PASS or FAIL with what was seen:
#
#   A. `service install -c CONFIG` (db: ready = "notify" after 2 s, with a grandchild; web
#      depends on db, and its grandchild leads a process group of its own, holding web's
#      stdout): `systemctl start` returns only after steward's READY=1, which comes
#      after db's readiness and web's start (the journal's order); `systemctl status` shows
#      steward's STATUS= text; the programs run in the unit's cgroup (each in its own below
#      it, `Delegate=yes`); `journalctl -u NAME PROGRAM=web` finds steward's structured
#      entries; `systemctl stop` stops web before db (steward's journal fields), ends with
#      Result=success (web's escaped grandchild was killed through its cgroup, so it neither
#      survives nor holds steward up until TimeoutStopSec) and, when steward exits, no process
#      of theirs is left in the unit's cgroup tree; `service uninstall` removes the unit.
#   B. the same for `wrap install NAME -- PROGRAM`, then `wrap uninstall`.
#   C. the same for a `--user` service and `wrap install --user`, under a user manager
#      (user@UID.service) of a user made for the test.
#   D. the watchdog: with `[supervisor] watchdog`, a steward stopped with SIGSTOP is killed
#      and restarted by systemd (UNIT_RESULT=watchdog, a new MainPID, NRestarts up), and its
#      program runs again.
#   E. the library: steward-service's minimal example installs itself (`minimal service
#      install`, with a working directory, a variable and a 1.5 s start); `systemctl start`
#      returns only after its ready(); the directory and the variable reached it; `systemctl
#      reload` reaches its code; `systemctl stop` ends it cleanly; when it fails (exit 3) systemd
#      restarts it (Restart=on-failure); `minimal service uninstall` removes the unit.
#
# STEWARD is the steward binary (default: $STEWARD, else target/debug/steward); the test
# child is $STEWARD_TESTCHILD, else steward-testchild beside STEWARD, else
# target/debug/steward-testchild; the library's example is $STEWARD_MINIMAL, else
# target/debug/examples/minimal (`cargo test` builds it). On a failure the unit's `systemctl status` and journal
# are printed. The last line is `systemd: N passed, N failed`; the exit status is 1 when
# anything failed. Needs root (see scripts/systemd-namespace.sh).
set -uo pipefail

# ============================================================================================
# Inside the container: the checks. Run as `systemd-live-test.sh __inside DIR`, where DIR
# holds the binaries and receives the counts.
# ============================================================================================
inside() {
    local dir=$1
    passed=0 failed=0 dump=''
    # Everything the test programs write that the checks read: pidfiles and the stop probe.
    run=/run/steward-live
    mkdir -p "$run"
    install -m 755 "$dir/steward" /usr/local/bin/steward
    install -m 755 "$dir/steward-testchild" /usr/local/bin/steward-testchild
    install -m 755 "$dir/minimal" /usr/local/bin/stw-minimal
    # A persistent journal, so that a user's own entries go to a journal file of theirs and
    # `journalctl --user` finds them (a runtime-only journal does not split per user).
    mkdir -p /var/log/journal && journalctl --flush
    child=/usr/local/bin/steward-testchild

    sections
    echo "$passed $failed" >"$dir/counts"
}

pass() { printf 'PASS  %s\n' "$*"; passed=$((passed + 1)); }
fail() {
    printf 'FAIL  %s\n' "$*"
    failed=$((failed + 1))
    if [ -n "$dump" ]; then $dump 2>&1 | sed 's/^/  | /'; fi
}
show() { printf '%s\n' "$@" | sed 's/^/  | /'; }
check() { # check DESCRIPTION COMMAND..
    local what=$1
    shift
    if "$@"; then pass "$what"; else fail "$what"; fi
}
within() { # within SECONDS DESCRIPTION COMMAND..: COMMAND until it succeeds, bounded
    local secs=$1 what=$2
    local end=$((SECONDS + secs))
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
quiet() { "$@" >/dev/null 2>&1; }
alive() { # a process that runs: exists and is not a zombie waiting to be reaped
    local state
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) && [ "${state%% *}" != Z ]
}
gone() { ! alive "$1"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
at_least() { awk -v x="$1" -v min="$2" 'BEGIN { exit !(x >= min) }'; }

# Per scope: how to reach its manager and its journal. A user's commands run as that user,
# with the runtime dir that locates the user manager.
as_scope() { # as_scope COMMAND..
    if [ "$scope" = user ]; then
        runuser -u "$user" -- env HOME="$home" XDG_RUNTIME_DIR="/run/user/$uid" "$@"
    else
        "$@"
    fi
}
sctl() { if [ "$scope" = user ]; then as_scope systemctl --user "$@"; else systemctl "$@"; fi; }
prop() { sctl show -p "$2" --value "$1.service"; }
journal() { # journal UNIT ARGS..: that unit's journal, as `journalctl [--user] -u UNIT` shows it
    local unit=$1
    shift
    journalctl --sync 2>/dev/null || true
    if [ "$scope" = user ]; then
        as_scope journalctl --user --no-pager -q -u "$unit.service" "$@"
    else
        journalctl --no-pager -q -u "$unit.service" "$@"
    fi
}
dump_unit() {
    sctl status --no-pager -n 0 "$name.service"
    journal "$name" -n 40 -o short-monotonic
}

# The unit's journal since a cursor, one line per entry, in the journal's order:
# `PROGRAM EVENT FROM TO JOB_TYPE JOB_RESULT UNIT_RESULT` (`-` for a missing field). steward
# and systemd both log through journald's one native socket, so this order is the order in
# which they sent the entries.
entries() { # entries UNIT CURSOR_FILE: the entries after the mark
    local fields=PROGRAM,EVENT,FROM,TO,JOB_TYPE,JOB_RESULT,UNIT_RESULT
    local after=()
    [ -s "$2" ] && after=(--after-cursor="$(cat "$2")")
    journal "$1" "${after[@]}" -o export --output-fields="$fields" |
        awk -F= '
            function out() { if (n) print v["PROGRAM"], v["EVENT"], v["FROM"], v["TO"], v["JOB_TYPE"], v["JOB_RESULT"], v["UNIT_RESULT"]; n = 0; split("", v) }
            BEGIN { split("PROGRAM EVENT FROM TO JOB_TYPE JOB_RESULT UNIT_RESULT", k, " "); for (i in k) v[k[i]] = "-" }
            /^$/ { out(); for (i in k) v[k[i]] = "-"; next }
            { n = 1; key = $1; sub(/^[^=]*=/, ""); if (key in v) v[key] = $0 }
            END { out() }'
}
mark() { # mark FILE: the cursor of the unit's last journal entry (none yet: empty)
    journal "$name" -n 1 --show-cursor -o cat | sed -n 's/^-- cursor: //p' >"$1"
}
line_of() { # line_of PATTERN FILE: the number of the first line matching the extended regex
    grep -n -m1 -E "$1" "$2" | cut -d: -f1
}

# Writes a drop-in whose ExecStopPost records what is left in the unit's cgroup once steward
# has exited (before systemd's own final kill, which would hide leftovers): `cgroup PATH: PIDS`.
# Only shell builtins, so that the probe itself is the only other process there. It writes
# nothing if it cannot read the cgroup, so it cannot pass by accident.
# With Delegate=yes systemd runs ExecStopPost in the unit's `.control` leaf: the probe looks at
# the whole unit's tree, without itself and what it runs to look.
stop_probe() { # stop_probe UNIT_DIR
    mkdir -p "$1/$name.service.d"
    cat >"$1/$name.service.d/stop-probe.conf" <<EOF
# Test instrument of scripts/systemd-live-test.sh
[Service]
ExecStopPost=/bin/sh -c 'while read -r l; do case "\$\$l" in 0::*) cg="\$\${l#0::}" ;; esac; done </proc/self/cgroup; cg="\$\${cg%%/.control}"; left=; for p in \$\$(find /sys/fs/cgroup\$\$cg -name cgroup.procs -exec cat {} +); do [ "\$\$p" = "\$\$\$\$" ] || [ ! -d /proc/\$\$p ] || left="\$\$left \$\$p"; done; echo "cgroup \$\$cg:\$\$left" >$probe'
EOF
}

# ---------------------------------------------------------------------------------------------
# One service through its life: start (readiness), status, programs, journal, stop, leftovers.
# Globals: scope, name, probe; pids are read from the pidfiles the programs write.
# ---------------------------------------------------------------------------------------------
start_and_check() { # start_and_check MIN_SECONDS PROGRAM_READY PROGRAMS..
    local min=$1 first=$2 t0 t1 rc log
    shift 2
    local cursor=$run/$name.cursor
    mark "$cursor"
    t0=$(now)
    sctl start "$name.service"
    rc=$?
    t1=$(now)
    # At least MIN_SECONDS: the first program sends READY=1 only after that long.
    if [ $rc -eq 0 ] && at_least "$(elapsed "$t0" "$t1")" "$min"; then
        pass "$name: systemctl start returned rc=0 after $(elapsed "$t0" "$t1")s (>= ${min}s, the notify delay)"
    else
        fail "$name: systemctl start rc=$rc after $(elapsed "$t0" "$t1")s (want 0 after >= ${min}s)"
    fi
    check "$name: active right after start (not activating)" test "$(prop "$name" ActiveState)" = active

    # The journal's order: FIRST ready, every program started, then systemd's job done.
    log=$run/$name.start
    entries "$name" "$cursor" >"$log"
    local ready started finished p ok=1
    ready=$(line_of "^$first state starting running " "$log")
    finished=$(line_of "^- - - - start done " "$log")
    for p in "$@"; do
        started=$(line_of "^$p (started|state) [a-z]+ running " "$log")
        if [ -z "$started" ] || [ -z "$finished" ] || [ -z "$ready" ] || ((started < ready || started > finished)); then ok=0; fi
    done
    if ((ok)) && ((ready < finished)); then
        pass "$name: journal order: $first ready (its own READY=1) < running: $* < systemd's start job done (steward's READY=1)"
    else
        fail "$name: journal order wrong or incomplete (want $first ready < $* running < start job done):"
        show "$(cat "$log")"
    fi

    local status_text
    status_text=$(prop "$name" StatusText)
    if [[ $status_text == "$# running" ]] && sctl status --no-pager -n 0 "$name.service" | grep -qF "Status: \"$status_text\""; then
        pass "$name: systemctl status shows steward's STATUS=: \"$status_text\""
    else
        fail "$name: StatusText is \"$status_text\" (want \"$# running\")"
    fi
}

programs_in_cgroup() { # programs_in_cgroup PIDFILE..: each pid alive and in the unit's cgroup
    local cg f p sub ok=1 seen=''
    cg=/sys/fs/cgroup$(prop "$name" ControlGroup)
    for f in "$@"; do
        p=$(cat "$f" 2>/dev/null)
        # In the unit's cgroup or below it: steward gives each program a cgroup of its own.
        if [ -n "$p" ] && alive "$p" && sub=$(sed -n "s|^0::$(prop "$name" ControlGroup)||p" "/proc/$p/cgroup") &&
            grep -q "^0::$(prop "$name" ControlGroup)" "/proc/$p/cgroup"; then
            seen+=" ${f##*/}=$p${sub:+ in .$sub}"
        else
            ok=0
            seen+=" ${f##*/}=${p:-none}(not running in $cg)"
        fi
    done
    if ((ok)); then pass "$name: programs run in the unit's cgroup:$seen"; else fail "$name: programs:$seen"; fi
}

stop_and_check() { # stop_and_check "FIRST_STOPPED THEN_STOPPING.." PIDFILE..
    local order=$1 cursor=$run/$name.stop-cursor log rc main cg f p left=''
    shift
    main=$(prop "$name" MainPID)
    cg=/sys/fs/cgroup$(prop "$name" ControlGroup)
    mark "$cursor"
    sctl stop "$name.service"
    rc=$?
    if [ $rc -eq 0 ] && [ "$(prop "$name" ActiveState)" = inactive ] && [ "$(prop "$name" Result)" = success ] &&
        [ "$(prop "$name" ExecMainStatus)" = 0 ] && gone "$main"; then
        pass "$name: systemctl stop: inactive, Result=success, steward (pid $main) exited 0"
    else
        fail "$name: stop rc=$rc state=$(prop "$name" ActiveState) result=$(prop "$name" Result) exit=$(prop "$name" ExecMainStatus)"
    fi

    # Reverse dependency order, from steward's fields: each program reached `stopped` before
    # the next one was asked to stop (FROM=running TO=stopping).
    if [ -n "$order" ]; then
        log=$run/$name.stop
        entries "$name" "$cursor" >"$log"
        local prev='' a b ok=1
        for p in $order; do
            if [ -n "$prev" ]; then
                a=$(line_of "^$prev (stopped|state) stopping stopped " "$log")
                b=$(line_of "^$p state running stopping " "$log")
                if [ -z "$a" ] || [ -z "$b" ] || ((a > b)); then ok=0; fi
            fi
            prev=$p
        done
        if ((ok)); then
            pass "$name: stopped in reverse dependency order (${order// / stopped before } was asked to stop)"
        else
            fail "$name: stop order (want $order):"
            show "$(cat "$log")"
        fi
    fi

    # Nothing of theirs left: the probe saw the cgroup when steward had exited.
    local seen
    seen=$(cat "$probe" 2>/dev/null)
    if [[ $seen =~ ^cgroup\ /.*/$name\.service:$ ]]; then
        pass "$name: when steward had exited, the unit's cgroup held no other process (ExecStopPost: \"$seen\")"
    else
        fail "$name: when steward had exited, the ExecStopPost probe saw: \"${seen:-nothing (it did not run)}\""
    fi
    for f in "$@"; do
        p=$(cat "$f" 2>/dev/null) && alive "$p" && left+=" ${f##*/}=$p"
    done
    if [ -z "$left" ] && [ ! -e "$cg" ]; then
        pass "$name: every program pid is gone (grandchild too), and the cgroup is removed"
    else
        fail "$name: still there:${left:- none} (cgroup $cg exists: $([ -e "$cg" ] && echo yes || echo no))"
    fi
}

journal_fields() { # journal_fields PROGRAM: `journalctl [--user] -u NAME PROGRAM=..` finds steward's entries
    local out events
    out=$(journal "$name" "PROGRAM=$1" -o export --output-fields=PROGRAM,EVENT,SYSLOG_IDENTIFIER)
    events=$(sed -n 's/^EVENT=//p' <<<"$out" | sort -u | tr '\n' ' ')
    if grep -qE "^EVENT=(started|spawned)$" <<<"$out" && grep -qx "SYSLOG_IDENTIFIER=steward" <<<"$out" &&
        ! grep '^PROGRAM=' <<<"$out" | grep -vqx "PROGRAM=$1"; then
        pass "$name: journalctl $([ "$scope" = user ] && echo '--user ')-u $name PROGRAM=$1: only $1's entries, from steward, events: ${events% }"
    else
        fail "$name: journalctl PROGRAM=$1 gave:"
        show "$out"
    fi
}

# ---------------------------------------------------------------------------------------------
sections() { # all, or those $LIVE_SECTIONS names (config wrap user watchdog library)
    local section
    for section in ${LIVE_SECTIONS:-config wrap user watchdog library}; do
        "section_$section"
    done
}

# A config service: db gets ready by notify after 2 s and has a grandchild; web needs db.
write_config() { # write_config DIR PIDDIR
    mkdir -p "$1" "$2"
    cat >"$1/steward.toml" <<EOF
[programs.db]
command = ["$child", "--spawn-grandchild", "--grandchild-pidfile", "$2/db-grandchild.pid",
           "--pidfile", "$2/db.pid", "--trap-term", "--notify-ready-after", "2s", "--sleep", "1h"]
ready = "notify"

[programs.web]
command = ["$child", "--spawn-grandchild", "--grandchild-new-group", "--grandchild-pidfile", "$2/web-grandchild.pid",
           "--pidfile", "$2/web.pid", "--trap-term", "--sleep", "1h"]
depends_on = ["db"]
EOF
}

section_config() {
    echo "=== A. service install -c CONFIG (system)"
    scope=system name=steward-live probe=$run/steward-live.probe dump=dump_unit
    local conf=/etc/steward-live pids=$run/config
    write_config "$conf" "$pids"
    local out
    if out=$(steward service install -c "$conf/steward.toml" --name "$name" 2>&1) &&
        [ -f "/etc/systemd/system/$name.service" ] && [ "$(systemctl is-enabled "$name.service")" = enabled ]; then
        pass "$name: service install wrote /etc/systemd/system/$name.service, enabled"
    else
        fail "$name: service install:"
        show "$out"
        return
    fi
    stop_probe /etc/systemd/system
    systemctl daemon-reload

    start_and_check 2 db db web
    programs_in_cgroup "$pids/db.pid" "$pids/db-grandchild.pid" "$pids/web.pid" "$pids/web-grandchild.pid"
    check "$name: steward service status exits 0 while it runs" quiet steward service status --name "$name"
    journal_fields web
    stop_and_check "web db" "$pids/db.pid" "$pids/db-grandchild.pid" "$pids/web.pid" "$pids/web-grandchild.pid"
    local logs=/etc/steward-live/.steward/logs
    if grep -q "got signal 15" "$logs/web.out.log" && grep -q "got signal 15" "$logs/db.out.log"; then
        pass "$name: both programs got SIGTERM (their own output says so)"
    else
        fail "$name: no 'got signal 15' in $logs/{web,db}.out.log"
    fi
    if out=$(steward service uninstall --name "$name" 2>&1) && [ ! -e "/etc/systemd/system/$name.service" ] && [ "$(prop "$name" LoadState)" = not-found ] &&
        [ -f "$conf/steward.toml" ]; then
        pass "$name: service uninstall removed the unit (LoadState=not-found), the config stays"
    else
        fail "$name: uninstall:"
        show "$out"
    fi
    rm -rf "/etc/systemd/system/$name.service.d"
}

section_wrap() {
    echo "=== B. wrap install NAME -- PROGRAM (system)"
    scope=system
    wrap_service steward-wrap /etc/systemd/system /var/lib/steward/wrap/steward-wrap /tmp
}

# wrap_service NAME UNIT_DIR WRAP_FOLDER CWD: one program, ready by notify after 2 s, with a
# grandchild; installed from CWD with the program given by bare name (resolved on PATH).
wrap_service() {
    name=$1 probe=$run/$1.probe dump=dump_unit
    local unit_dir=$2 folder=$3 cwd=$4 pids=$run/$1 out user_flag=() verb=wrap
    [ "$scope" = user ] && user_flag=(--user)
    [ "$scope" = user ] && verb="wrap --user"
    mkdir -p "$pids" && touch "$probe"
    [ "$scope" = user ] && chown "$user" "$pids" "$probe"
    if out=$(cd "$cwd" && as_scope steward wrap install "${user_flag[@]}" "$name" --ready notify -- \
        steward-testchild --spawn-grandchild --grandchild-pidfile "$pids/grandchild.pid" \
        --pidfile "$pids/main.pid" --trap-term --notify-ready-after 2s --sleep 1h 2>&1) &&
        [ -f "$folder/steward.toml" ] && [ "$(sctl is-enabled "$name.service")" = enabled ]; then
        pass "$name: $verb install wrote $folder/steward.toml and the enabled unit"
    else
        fail "$name: $verb install:"
        show "$out"
        return
    fi
    out=$(cd "$cwd" && as_scope steward wrap show "${user_flag[@]}" "$name" 2>&1)
    check "$name: wrap show prints the config with the program resolved to $child" grep -qF "\"$child\"" <<<"$out"
    stop_probe "$unit_dir"
    sctl daemon-reload

    start_and_check 2 "$name" "$name"
    programs_in_cgroup "$pids/main.pid" "$pids/grandchild.pid"
    journal_fields "$name"
    stop_and_check "" "$pids/main.pid" "$pids/grandchild.pid"
    if out=$(cd "$cwd" && as_scope steward wrap uninstall "${user_flag[@]}" "$name" 2>&1) &&
        [ ! -e "$unit_dir/$name.service" ] && [ ! -e "$folder" ] && [ "$(prop "$name" LoadState)" = not-found ]; then
        pass "$name: $verb uninstall removed the unit and $folder"
    else
        fail "$name: $verb uninstall:"
        show "$out"
    fi
    rm -rf "${unit_dir:?}/$name.service.d"
}

section_user() {
    echo "=== C. service install --user, under a user manager"
    scope=system name=user dump=''
    user='steward-live'
    local out
    if ! out=$(useradd --create-home --shell /bin/sh "$user" 2>&1); then
        fail "useradd $user: $out"
        return
    fi
    uid=$(id -u "$user") home=$(getent passwd "$user" | cut -d: -f6)
    # What a login would do (pam_systemd via logind); here root starts the manager directly.
    if ! out=$(systemctl start "user@$uid.service" 2>&1); then
        fail "systemctl start user@$uid.service:"
        show "$out" "$(systemctl status --no-pager "user@$uid.service" 2>&1)"
        return
    fi
    scope=user
    local state
    state=$(sctl is-system-running 2>&1)
    if [ "$state" = running ] || [ "$state" = degraded ]; then
        pass "user manager user@$uid.service is $state (systemctl --user as $user)"
    else
        fail "user manager: systemctl --user is-system-running says: $state"
        return
    fi

    name=steward-user probe=$run/steward-user.probe dump=dump_unit
    local conf=$home/app pids=$run/user
    mkdir -p "$pids" && chown "$user" "$pids"
    touch "$probe" && chown "$user" "$probe"
    as_scope bash -c "$(declare -f write_config); child=$child; write_config $conf $pids"
    if out=$(cd "$home" && as_scope steward service install --user -c "$conf/steward.toml" --name "$name" 2>&1) &&
        [ -f "$home/.config/systemd/user/$name.service" ] && [ "$(sctl is-enabled "$name.service")" = enabled ]; then
        pass "$name: service install --user wrote ~/.config/systemd/user/$name.service, enabled"
    else
        fail "$name: service install --user:"
        show "$out"
        return
    fi
    stop_probe "$home/.config/systemd/user"
    sctl daemon-reload

    start_and_check 2 db db web
    programs_in_cgroup "$pids/db.pid" "$pids/db-grandchild.pid" "$pids/web.pid" "$pids/web-grandchild.pid"
    check "$name: steward service status --user exits 0 while it runs" quiet as_scope steward service status --user --name "$name"
    journal_fields web
    stop_and_check "web db" "$pids/db.pid" "$pids/db-grandchild.pid" "$pids/web.pid" "$pids/web-grandchild.pid"
    if out=$(cd "$home" && as_scope steward service uninstall --user --name "$name" 2>&1) && [ ! -e "$home/.config/systemd/user/$name.service" ] && [ "$(prop "$name" LoadState)" = not-found ]; then
        pass "$name: service uninstall --user removed the unit"
    else
        fail "$name: uninstall --user:"
        show "$out"
    fi
    rm -rf "$home/.config/systemd/user/$name.service.d"

    echo "=== C2. wrap install --user"
    wrap_service steward-uwrap "$home/.config/systemd/user" "$home/.local/share/steward/wrap/steward-uwrap" "$home"
    systemctl stop "user@$uid.service"
}

section_watchdog() {
    echo "=== D. the watchdog"
    scope=system name=steward-dog probe=$run/steward-dog.probe dump=dump_unit
    local conf=/etc/steward-dog pids=$run/dog out
    mkdir -p "$conf" "$pids"
    cat >"$conf/steward.toml" <<EOF
[supervisor]
watchdog = "2s"

[programs.web]
command = ["$child", "--pidfile", "$pids/web.pid", "--sleep", "1h"]
EOF
    if ! out=$(steward service install -c "$conf/steward.toml" --name "$name" 2>&1); then
        fail "$name: service install:"
        show "$out"
        return
    fi
    systemctl start "$name.service" || fail "$name: systemctl start failed"
    local wd
    wd=$(prop "$name" WatchdogUSec)
    check "$name: the unit has WatchdogSec=2s (WatchdogUSec=$wd)" test "$wd" = 2s
    local main restarts web ping cursor=$run/$name.cursor
    main=$(prop "$name" MainPID) restarts=$(prop "$name" NRestarts) web=$(cat "$pids/web.pid")
    # systemd stamps WatchdogTimestamp at each WATCHDOG=1: steward is pinging.
    ping=$(prop "$name" WatchdogTimestampMonotonic)
    pinged() { local t; t=$(prop "$name" WatchdogTimestampMonotonic) && [ "$t" -gt "$ping" ]; }
    within 10 "$name: systemd receives steward's WATCHDOG=1 (WatchdogTimestamp moves)" pinged
    mark "$cursor"
    # A stopped steward sends no WATCHDOG=1: after WatchdogSec systemd sends SIGABRT (and
    # SIGCONT, so that it is acted on), and Restart=on-failure starts a new steward.
    local t0
    t0=$(now)
    kill -STOP "$main"
    show "SIGSTOP sent to steward (pid $main); its program web is pid $web"
    restarted() {
        local m
        m=$(prop "$name" MainPID)
        [ "$m" != 0 ] && [ "$m" != "$main" ] && [ "$(prop "$name" ActiveState)" = active ]
    }
    if within 30 "$name: systemd restarted the stopped steward" restarted; then
        show "new MainPID $(prop "$name" MainPID), active again $(elapsed "$t0" "$(now)")s after SIGSTOP"
        local n
        n=$(prop "$name" NRestarts)
        check "$name: NRestarts went from $restarts to $n" test "$n" -eq $((restarts + 1))
        if entries "$name" "$cursor" | grep -q ' watchdog$'; then
            pass "$name: the journal has UNIT_RESULT=watchdog"
        else
            fail "$name: no UNIT_RESULT=watchdog entry:"
            show "$(entries "$name" "$cursor")"
        fi
        check "$name: the old steward (pid $main) and its program (pid $web) are gone" eval "gone $main && gone $web"
        new_web() { local p; p=$(cat "$pids/web.pid" 2>/dev/null) && [ "$p" != "$web" ] && alive "$p"; }
        within 10 "$name: web runs again under the new steward" new_web && show "web is now pid $(cat "$pids/web.pid")"
    fi
    systemctl stop "$name.service"
    steward service uninstall --name "$name" >/dev/null 2>&1 || fail "$name: uninstall"
}

section_library() {
    echo "=== E. the library: an example installs itself"
    scope=system name=stw-minimal dump=dump_unit
    local log=$run/minimal.log dir=/srv/stw-minimal out took t0
    mkdir -p "$dir"
    if ! out=$(stw-minimal service install --name "$name" --working-dir "$dir" --env MINIMAL_NOTE=from-install \
        -- --start-delay 1500 --log "$log" 2>&1); then
        fail "$name: minimal service install:"
        show "$out"
        return
    fi
    pass "$name: the example installed itself ($out)"
    check "$name: the unit is Type=notify" test "$(prop "$name" Type)" = notify
    t0=$(now)
    systemctl start "$name.service" || fail "$name: systemctl start failed"
    took=$(elapsed "$t0" "$(now)")
    # The program sleeps 1.5 s before ready(): a start that returns sooner did not wait for it.
    check "$name: systemctl start returned only after its ready(), past the 1.5 s start (${took}s)" at_least "$took" 1.5
    within 5 "$name: the program says it is ready" grep -qx ready "$log"
    check "$name: the working directory reached it" grep -qx "working directory $dir" "$log"
    check "$name: the variable reached it" grep -qx "MINIMAL_NOTE=from-install" "$log"
    systemctl reload "$name.service" || fail "$name: systemctl reload failed"
    within 10 "$name: systemctl reload reaches its code as Reload" grep -qx "control Reload" "$log"
    systemctl stop "$name.service"
    check "$name: systemctl stop reached its code and it stopped cleanly (Result=$(prop "$name" Result))" \
        eval "grep -qx stopped '$log' && test \"\$(prop $name Result)\" = success"
    # A failing main: asked to stop by someone else than systemd, it ends with code 3, and
    # systemd's Restart=on-failure starts it again.
    stw-minimal service uninstall --name "$name" >/dev/null 2>&1 || fail "$name: uninstall before reinstalling"
    if ! out=$(stw-minimal service install --name "$name" -- --fail 3 --log "$log" 2>&1); then
        fail "$name: reinstall with --fail 3:"
        show "$out"
        return
    fi
    systemctl start "$name.service" || fail "$name: systemctl start (--fail 3) failed"
    local main restarts
    main=$(prop "$name" MainPID) restarts=$(prop "$name" NRestarts)
    kill -TERM "$main"
    restarted() {
        local m
        m=$(prop "$name" MainPID)
        [ "$m" != 0 ] && [ "$m" != "$main" ] && [ "$(prop "$name" ActiveState)" = active ]
    }
    within 20 "$name: its exit 3 made systemd restart it" restarted &&
        check "$name: NRestarts went from $restarts to $(prop "$name" NRestarts)" test "$(prop "$name" NRestarts)" -gt "$restarts"
    show "minimal service status: $(stw-minimal service status --name "$name" 2>&1)"
    systemctl stop "$name.service"
    if out=$(stw-minimal service uninstall --name "$name" 2>&1); then
        check "$name: uninstall removed the unit" test ! -e "/etc/systemd/system/$name.service"
    else
        fail "$name: minimal service uninstall:"
        show "$out"
    fi
}

if [ "${1:-}" = __inside ]; then
    LIVE_SECTIONS=${3:-} inside "$2"
    exit 0
fi

# ============================================================================================
# On the host: stage the binaries, boot, run the checks inside, check nothing was left.
# ============================================================================================
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
steward=${1:-${STEWARD:-$repo/target/debug/steward}}
child=${STEWARD_TESTCHILD:-$(dirname "$steward")/steward-testchild}
[ -x "$child" ] || child=$repo/target/debug/steward-testchild
minimal=${STEWARD_MINIMAL:-$repo/target/debug/examples/minimal}
if [ "$(id -u)" -ne 0 ]; then
    echo "systemd-live-test: must run as root (it boots systemd in namespaces: scripts/systemd-namespace.sh)" >&2
    exit 2
fi
if [ ! -x "$steward" ]; then
    echo "systemd-live-test: no steward binary at $steward; build it (cargo build -p steward --bin steward) or pass its path" >&2
    exit 2
fi
if [ ! -x "$child" ]; then
    echo "systemd-live-test: no steward-testchild beside $steward or in target/debug; build it (cargo build -p testkit --bin steward-testchild) or set STEWARD_TESTCHILD" >&2
    exit 2
fi
if [ ! -x "$minimal" ]; then
    echo "systemd-live-test: no steward-service example at $minimal; build it (cargo build -p steward-service --example minimal) or set STEWARD_MINIMAL" >&2
    exit 2
fi
echo "steward: $steward"
echo "test child: $child"

# The container sees the host's / as it was at boot, with a fresh /tmp: the binaries and this
# script go to a directory bound into it, which also carries the counts back.
work=$(mktemp -d /tmp/steward-live.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp "$steward" "$work/steward"
cp "$child" "$work/steward-testchild"
cp "$minimal" "$work/minimal"
cp "${BASH_SOURCE[0]}" "$work/systemd-live-test.sh"
leftovers() { ls -d /tmp/systemd-ns.* /sys/fs/cgroup/systemd-ns.* /sys/fs/cgroup/unified/systemd-ns.* 2>/dev/null; }
units_before=$(ls /etc/systemd/system) leftovers_before=$(leftovers)

SYSTEMD_NS_BIND=$work SYSTEMD_NS_TIMEOUT=300 bash "$repo/scripts/systemd-namespace.sh" \
    bash "$work/systemd-live-test.sh" __inside "$work" "${LIVE_SECTIONS:-}"
rc=$?

passed=0 failed=0
if [ -s "$work/counts" ]; then
    read -r passed failed <"$work/counts"
else
    echo "FAIL  the checks inside systemd did not run to the end (systemd-namespace.sh exit $rc)"
    failed=$((failed + 1))
fi
echo "=== the host"
if [ "$units_before" = "$(ls /etc/systemd/system)" ] && [ "$leftovers_before" = "$(leftovers)" ]; then
    echo "PASS  nothing left on the host: /etc/systemd/system unchanged, no new systemd-ns temp dir or cgroup"
    passed=$((passed + 1))
else
    echo "FAIL  the host changed: /etc/systemd/system differs, or left behind: $(leftovers | tr '\n' ' ')"
    failed=$((failed + 1))
fi
echo "systemd: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
