#!/usr/bin/env bash
# systemd-namespace.sh [--] CMD [ARGS..]: run CMD against a real systemd, booted for it.
#
# Boots the machine's own systemd (/lib/systemd/systemd) as PID 1 of fresh pid, mount, uts,
# ipc, net and cgroup namespaces, on a throw-away overlay of the host's / (writes land in a
# tmpfs), waits until it is `running` (or `degraded`), runs CMD inside (systemctl, journalctl
# and /etc/systemd/system are the container's), then powers it off and removes everything it
# made. The exit status is CMD's; 3 when systemd did not boot (its console is printed), 2 for
# a usage or host problem. CMD gets this script's stdin, stdout and stderr and a clean
# environment.
#
# Needs root, util-linux (unshare, nsenter, setpriv), bsdutils (script) and systemd, and a
# cgroup2 hierarchy (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host). systemd runs
# in unified (cgroup v2) mode inside, rooted at a sub-cgroup of ours. That hierarchy may have
# no controllers: MemoryMax= and friends are then accepted and do nothing.
#
# What the host sees: a temp dir /tmp/systemd-ns.XXXXXX and cgroups under
# <cgroup2>/systemd-ns.XXXXXX, both removed on every exit path (CMD's end, a timeout, a
# signal, a failed boot). Every mount is made in the private mount namespace and dies with it.
# The container has a loopback-only network, read-only /sys and /proc/sys, a /dev without
# disks or ttys, and no CAP_SYS_MODULE, CAP_SYS_TIME, CAP_SYS_RAWIO... It is not a security
# boundary (no user namespace): it keeps tests from touching the machine by accident.
#
# Knobs (environment):
#   SYSTEMD_NS_BOOT_TIMEOUT  seconds systemd may take to boot          (default 60)
#   SYSTEMD_NS_TIMEOUT       seconds CMD may run before it is killed   (default 600)
#   SYSTEMD_NS_BIND          space-separated host directories bound read-write at the same
#                            path (the overlay shows host files as they were at boot)
#   SYSTEMD_NS_KEEP=1        keep the temp dir, with console.log (systemd's console)
set -euo pipefail

# --- Inside: PID 1 of the new pid namespace, in its new cgroup namespace --------------------
# Builds the root file system and execs systemd. Runs on the host's tree in a private mount
# namespace, so nothing here is visible outside.
boot_inside() {
    local dir=$1 root=$1/fs/root console n p
    read -r p _ </proc/self/stat            # /proc is still the host's: our host pid
    echo "$p" >"$dir/pid1.tmp" && mv "$dir/pid1.tmp" "$dir/pid1"
    console=$(readlink /proc/self/fd/0)     # the pty of `script`: systemd's /dev/console
    mount --make-rprivate /
    mount -t tmpfs -o mode=755 systemd-ns "$dir/fs"
    mkdir "$dir/fs/upper" "$dir/fs/work" "$root"
    mount -t overlay systemd-ns -o "lowerdir=/,upperdir=$dir/fs/upper,workdir=$dir/fs/work" "$root"

    # The API file systems systemd expects of a container.
    mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
    for p in sys sysrq-trigger; do          # sysrq-trigger is missing on some kernels
        [ -e "$root/proc/$p" ] || continue
        mount --bind "$root/proc/$p" "$root/proc/$p" && mount -o remount,bind,ro "$root/proc/$p"
    done
    mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
    mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$root/sys/fs/cgroup"
    mount -t tmpfs -o mode=755,nosuid systemd-ns-dev "$root/dev"
    for n in null zero full random urandom tty; do
        touch "$root/dev/$n" && mount --bind "/dev/$n" "$root/dev/$n"
    done
    # systemd logs to /dev/console only when it is a tty, hence the pty.
    touch "$root/dev/console"
    case $console in /dev/pts/*) mount --bind "$console" "$root/dev/console" ;; esac
    mkdir -m 755 "$root/dev/pts" "$root/dev/mqueue"
    mkdir -m 1777 "$root/dev/shm"
    mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5,nosuid,noexec devpts "$root/dev/pts"
    mount -t tmpfs -o mode=1777,nosuid,nodev shm "$root/dev/shm"
    mount -t mqueue -o nosuid,nodev,noexec mqueue "$root/dev/mqueue"
    ln -s pts/ptmx "$root/dev/ptmx"
    ln -s /proc/self/fd "$root/dev/fd"
    for n in 0:stdin 1:stdout 2:stderr; do ln -s "/proc/self/fd/${n%%:*}" "$root/dev/${n#*:}"; done
    mount -t tmpfs -o mode=755,nosuid,nodev systemd-ns-run "$root/run"
    mount -t tmpfs -o mode=1777,nosuid,nodev systemd-ns-tmp "$root/tmp"
    for p in ${SYSTEMD_NS_BIND:-}; do mkdir -p "$root$p" && mount --rbind "$p" "$root$p"; done

    # Only Debian's static units: drop what the host image enabled (databases, web servers,
    # timers...), and mask what needs ttys, the clock or audit. These writes go to the tmpfs.
    rm -f "$root"/etc/systemd/system/*.target.wants/*
    for n in getty.target console-getty.service getty@.service container-getty@.service \
        systemd-timesyncd.service systemd-journald-audit.socket; do
        ln -sf /dev/null "$root/etc/systemd/system/$n"
    done
    echo systemd-ns >"$root/etc/hostname"

    mkdir "$root/.old-root"
    cd "$root"
    pivot_root . .old-root
    exec /bin/sh -c 'umount -l /.old-root && rmdir /.old-root && cd / &&
        exec env -i container=systemd-ns TERM=dumb /lib/systemd/systemd --unit=multi-user.target'
}

if [ "${1:-}" = __boot_inside ]; then
    boot_inside "$2"
fi

# --- Outside: the host side ------------------------------------------------------------------
[ "${1:-}" = -- ] && shift
if [ $# -eq 0 ]; then
    echo "usage: $0 [--] CMD [ARGS..]   (runs CMD inside a systemd booted in namespaces)" >&2
    exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "systemd-namespace.sh: must run as root (it mounts and creates namespaces and cgroups)" >&2
    exit 2
fi
if [ ! -x /lib/systemd/systemd ]; then
    echo "systemd-namespace.sh: /lib/systemd/systemd is missing; install the Debian package systemd" >&2
    exit 2
fi
boot_timeout=${SYSTEMD_NS_BOOT_TIMEOUT:-60}
cmd_timeout=${SYSTEMD_NS_TIMEOUT:-600}
self=$(readlink -f "${BASH_SOURCE[0]}")

if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
    cg2=/sys/fs/cgroup
elif [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ]; then
    cg2=/sys/fs/cgroup/unified
else
    echo "systemd-namespace.sh: no cgroup2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified" >&2
    exit 2
fi

dir=$(mktemp -d /tmp/systemd-ns.XXXXXX)
# cg/box is the container's cgroup root. The host-side helpers (unshare in cg/launch, the
# nsenter parents in cg/enter) must sit outside it: their pids do not exist in the
# container's pid namespace, and systemd fails to read a cgroup that lists them.
cg=$cg2/${dir##*/}
launcher='' pid1='' cmd_pid=''

note() { printf 'systemd-namespace: %s\n' "$*" >&2; }
procs() { cat "$1/cgroup.procs" 2>/dev/null || true; }
kill_cgroup() { # SIGKILL everything in one of our own cgroups
    [ -d "$1" ] || return 0
    if [ -e "$1/cgroup.kill" ]; then
        echo 1 >"$1/cgroup.kill" 2>/dev/null || true
    else
        local p
        for p in $(procs "$1"); do kill -KILL "$p" 2>/dev/null || true; done
    fi
}
wait_gone() { # wait_gone TENTHS PID: up to TENTHS/10 s for PID to end
    local i
    for ((i = 0; i < $1; i++)); do
        kill -0 "$2" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

cleanup() {
    local rc=$? i d
    set +e
    # A second INT/TERM (say, to the whole process group), or a reader of our output that has
    # gone away (SIGPIPE), must not cut the cleanup short.
    trap - EXIT
    trap '' INT TERM PIPE
    # CMD first, if it still runs (timeout or signal). Its nsenter parent must reap it before
    # systemd powers off: systemd's last kill round SIGSTOPs every process it sees, and a
    # stopped nsenter parent never exits.
    kill_cgroup "$cg/box/exec"
    for ((i = 0; i < 20; i++)); do [ -z "$(procs "$cg/enter")" ] && break; sleep 0.1; done
    kill_cgroup "$cg/enter"
    [ -n "$cmd_pid" ] && { wait "$cmd_pid" 2>/dev/null || true; }
    [ -z "$pid1" ] && [ -s "$dir/pid1" ] && pid1=$(cat "$dir/pid1")
    if [ -n "$pid1" ] && kill -0 "$pid1" 2>/dev/null; then
        kill -s SIGRTMIN+4 "$pid1" 2>/dev/null || true # systemd: poweroff
        if ! wait_gone 200 "$pid1"; then
            note "systemd did not power off within 20 s; killing it"
            kill -KILL "$pid1" 2>/dev/null || true
        fi
    fi
    # With PID 1 gone, unshare and the rest of the launch chain end by themselves.
    [ -n "$launcher" ] && wait_gone 50 "$launcher"
    # Whatever is still in our cgroups was started by this script: kill it.
    if [ -d "$cg" ]; then
        while read -r d; do
            [ -n "$(procs "$d")" ] && { note "killing leftovers in $d"; kill_cgroup "$d"; }
        done < <(find "$cg" -depth -type d)
    fi
    if [ -n "$launcher" ]; then
        kill -KILL "$launcher" 2>/dev/null || true
        wait "$launcher" 2>/dev/null || true
    fi
    # A cgroup can be removed once its last process is reaped, which may lag a little.
    for ((i = 0; i < 50; i++)); do
        [ -d "$cg" ] || break
        find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
        [ -d "$cg" ] && sleep 0.1
    done
    [ -d "$cg" ] && note "WARNING: could not remove the cgroup $cg"
    if [ "${SYSTEMD_NS_KEEP:-0}" = 1 ]; then note "kept $dir"; else rm -rf "$dir"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
mkdir "$dir/fs" "$cg" "$cg/box" "$cg/launch" "$cg/enter"

# The chain that boots it: timeout (bounds the container's whole life) -> script (a pty,
# logged to console.log) -> sh joins cg/launch -> unshare, which stays outside and takes PID 1
# down with it (--kill-child) -> PID 1 joins cg/box -> unshare --cgroup (the cgroup namespace
# is rooted at cg/box) -> setpriv drops capabilities -> boot_inside -> systemd.
# shellcheck disable=SC2016 # $$ and $1 are for the sh that runs it
join() { printf '%q ' sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$1"; }
chain="$(join "$cg/launch") unshare --pid --fork --kill-child --mount --propagation private"
chain+=" --uts --ipc --net $(join "$cg/box") unshare --cgroup setpriv --bounding-set"
chain+=" -sys_module,-sys_rawio,-sys_time,-sys_pacct,-syslog,-wake_alarm,-block_suspend"
chain+=",-mac_admin,-mac_override,-audit_control,-audit_read"
chain+=" $(printf '%q ' /bin/bash "$self" __boot_inside "$dir")"
SHELL=/bin/sh timeout -s KILL $((boot_timeout + cmd_timeout + 120)) \
    script -qfec "$chain" "$dir/console.log" </dev/null >/dev/null 2>&1 &
launcher=$!

# inside SECONDS CMD..: CMD in every namespace of the container and in its cgroup /exec,
# with a clean environment, killed after SECONDS. The nsenter parent stays in cg/enter.
# shellcheck disable=SC2016 # the sh -c scripts expand their own variables
inside() {
    local secs=$1
    shift
    timeout --foreground -s KILL $((secs + 15)) sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' sh "$cg/enter" \
        nsenter -t "$pid1" -m -u -i -n -p -r -w \
        sh -c 'mkdir -p /sys/fs/cgroup/exec && echo $$ >/sys/fs/cgroup/exec/cgroup.procs &&
               exec nsenter --cgroup=/proc/1/ns/cgroup "$@"' sh \
        env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 TERM=dumb timeout --foreground -s KILL "$secs" "$@"
}

state='' deadline=$((SECONDS + boot_timeout))
while ((SECONDS < deadline)); do
    if ! kill -0 "$launcher" 2>/dev/null; then
        note "the container ended during boot"
        break
    fi
    [ -z "$pid1" ] && [ -s "$dir/pid1" ] && pid1=$(cat "$dir/pid1")
    if [ -n "$pid1" ] && [ "$(cat "/proc/$pid1/comm" 2>/dev/null)" = systemd ]; then
        state=$(inside 10 systemctl is-system-running 2>/dev/null || true)
        case $state in running | degraded | maintenance | stopping | offline) break ;; esac
    fi
    sleep 0.2
done
case $state in
running | degraded) note "systemd $(inside 10 systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p') is $state (host pid $pid1, ${SECONDS}s)" ;;
*)
    note "systemd did not boot within ${boot_timeout}s (state: ${state:-none}); its console:"
    tail -n 60 "$dir/console.log" >&2 || true
    if [ -n "$pid1" ] && kill -0 "$pid1" 2>/dev/null; then inside 10 systemctl --failed --no-pager >&2 || true; fi
    exit 3
    ;;
esac

# In the background, so that a signal to this script runs the cleanup at once; <&0 keeps our
# stdin (bash gives a background job /dev/null otherwise).
set +e
started=$SECONDS
inside "$cmd_timeout" "$@" <&0 &
cmd_pid=$!
wait "$cmd_pid"
rc=$?
cmd_pid=''
if [ $rc -eq 137 ] && ((SECONDS - started >= cmd_timeout)); then
    note "the command was killed after ${cmd_timeout}s (SYSTEMD_NS_TIMEOUT)"
fi
set -e
exit "$rc"
