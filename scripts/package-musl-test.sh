#!/usr/bin/env bash
# package-musl-test.sh: the static musl steward (scripts/build-musl.sh) builds and works.
#
#   - the binary is statically linked and has no program interpreter (no loader to find);
#   - with musl's loader hidden (a private mount namespace binds /dev/null over it), it
#     supervises for real: `run` starts a program that prints a line, `status` (the same
#     binary as a client, over the local socket) shows it running, its line is in the log
#     file, and `shutdown` ends `run` with exit 0.
#
# BUILD_FLAGS are passed to build-musl.sh (default: a debug build; `--release` for the
# shipped one). Needs root (for the namespace). The last line is `package (musl): N passed,
# N failed`; the exit status is 1 when anything failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "package-musl-test: needs root (a mount namespace)" >&2; exit 2; }
# shellcheck disable=SC2086
bin=$(bash "$repo/scripts/build-musl.sh" ${BUILD_FLAGS:-}) || { echo "package-musl-test: the build failed" >&2; exit 1; }

# shellcheck source=scripts/test-lib.sh
. "$repo/scripts/test-lib.sh"
work=$(mktemp -d /tmp/steward-musl-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

if file "$bin" | grep -q 'statically linked'; then pass "statically linked: $bin"; else fail "not static: $(file "$bin")"; fi
if readelf -l "$bin" | grep -q INTERP; then fail "it names a program interpreter"; else pass "no program interpreter"; fi

cat >"$work/steward.toml" <<'TOML'
[programs.hello]
command = ["/bin/sh", "-c", "echo hello from a static steward; exec sleep 3600"]
TOML

# Inside the namespace: musl's loader hidden, then run, status, the log line, shutdown.
inside=$(cat <<'SH'
set -u
[ -e /lib/ld-musl-x86_64.so.1 ] && mount --bind /dev/null /lib/ld-musl-x86_64.so.1
cd "$2"
"$1" run -c steward.toml >run.out 2>&1 &
run=$!
# Readiness: status answers and says running (the daemon needs a moment to bind).
i=0
until "$1" -c steward.toml status 2>/dev/null | grep -q '^hello  *running'; do
    i=$((i + 1))
    [ $i -lt 200 ] || { echo "status never showed hello running"; cat run.out; kill $run; exit 3; }
    sleep 0.05
done
echo "status: hello running"
i=0
until grep -q 'hello from a static steward' .steward/logs/hello.out.log 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 200 ] || { echo "the line never reached the log file"; kill $run; exit 4; }
    sleep 0.05
done
echo "log: the line is in hello.out.log"
"$1" -c steward.toml shutdown >/dev/null || { echo "shutdown failed"; exit 5; }
wait $run
echo "run exited $?"
SH
)
out=$(unshare -m sh -c "$inside" sh "$bin" "$work" 2>&1)
while IFS= read -r line; do printf '    %s\n' "$line"; done <<<"$out"
check "status shows the program running" grep -q '^status: hello running' <<<"$out"
check "its output is in the log file" grep -q '^log: ' <<<"$out"
check "shutdown ends run with exit 0" grep -q '^run exited 0$' <<<"$out"

echo "package (musl): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
