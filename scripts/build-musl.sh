#!/usr/bin/env bash
# build-musl.sh: a fully static steward for x86_64-unknown-linux-musl, on Debian 12 without
# rustup's musl target (rustup's servers are not reachable everywhere; where they are, use
# `rustup target add x86_64-unknown-linux-musl` and `cargo build --release --target
# x86_64-unknown-linux-musl` instead: docs/install.md).
#
# Usage: scripts/build-musl.sh [--release]     prints the binary's path on stdout
#
# How, from Debian packages only (it installs them when missing, as root):
#   * rustc-web, cargo-web, rust-web-src (as for Windows, scripts/windows-toolchain.sh): rustc
#     knows the musl target but Debian ships no std for it, so cargo -Zbuild-std compiles std
#     from rust-web-src (RUSTC_BOOTSTRAP=1);
#   * musl-tools: musl's libc.a, crt files and the musl-gcc linker, with
#     `-C link-self-contained=no` (rustup's self-contained musl objects are not there);
#   * libunwind-14-dev: std's unwinder for a static musl build is libunwind.a. LLVM's (Debian
#     builds it against glibc) needs one glibc symbol, __fprintf_chk (fortified fprintf, used
#     on its error paths): a shim defining it as vfprintf is added to a copy of the archive;
#     gcc's libgcc_eh cannot stand in (it calls glibc's _dl_find_object);
#   * a musl-gcc wrapper turns rustc's -static-pie into -static: musl-gcc's specs add musl's
#     dynamic loader (/lib/ld-musl-x86_64.so.1) unless -static is given, and the result would
#     not run where musl is not installed.
# The target dir is target-musl/ (STEWARD_MUSL_TARGET_DIR). A first build compiles std and every
# dependency (about 10 minutes on 2 cores); the check at the end runs the binary with musl's
# loader hidden, in a private mount namespace when root (else it only checks `file`).
set -euo pipefail

readonly TARGET=x86_64-unknown-linux-musl
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { printf 'build-musl: %s\n' "$*" >&2; exit 2; }
profile=debug cargo_profile=()
case ${1:-} in
    --release) profile=release cargo_profile=(--release) ;;
    '') ;;
    *) die "usage: build-musl.sh [--release]" ;;
esac

packages=(rustc-web cargo-web rust-web-src musl-tools libunwind-14-dev file)
missing=()
for p in "${packages[@]}"; do dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" -eq 0 ] || die "missing packages: ${missing[*]} (apt-get install them, or run as root)"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

target_dir=${STEWARD_MUSL_TARGET_DIR:-$repo/target-musl}
tools=$target_dir/musl-tools lib=$target_dir/unwind
mkdir -p "$tools/bin" "$lib"

# libunwind.a with the __fprintf_chk shim, rebuilt when the shim or LLVM's archive changes.
cat >"$tools/fortify_shim.c.new" <<'EOF'
/* glibc's fortified fprintf, which Debian's LLVM libunwind.a calls; musl has no such symbol. */
#include <stdarg.h>
#include <stdio.h>
int __fprintf_chk(FILE *f, int flag, const char *fmt, ...) {
    (void)flag;
    va_list ap;
    va_start(ap, fmt);
    int r = vfprintf(f, fmt, ap);
    va_end(ap);
    return r;
}
EOF
if ! cmp -s "$tools/fortify_shim.c.new" "$tools/fortify_shim.c" || [ /usr/lib/llvm-14/lib/libunwind.a -nt "$lib/libunwind.a" ]; then
    mv "$tools/fortify_shim.c.new" "$tools/fortify_shim.c"
    musl-gcc -O2 -c "$tools/fortify_shim.c" -o "$tools/fortify_shim.o"
    rm -f "$lib/libunwind.a"
    cp /usr/lib/llvm-14/lib/libunwind.a "$lib/libunwind.a"
    ar rs "$lib/libunwind.a" "$tools/fortify_shim.o"
else
    rm -f "$tools/fortify_shim.c.new"
fi
cat >"$tools/bin/musl-gcc" <<'EOF'
#!/bin/bash
# rustc asks for -static-pie; musl-gcc's specs add musl's dynamic loader unless -static is
# given: link fully static instead (scripts/build-musl.sh).
args=()
for a in "$@"; do
    if [ "$a" = -static-pie ]; then args+=(-static); else args+=("$a"); fi
done
exec /usr/bin/musl-gcc "${args[@]}"
EOF
chmod +x "$tools/bin/musl-gcc"

(
    # Only for this build: RUSTC and CARGO_UNSTABLE_BUILD_STD would rebuild std for host builds.
    export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
    export CARGO_UNSTABLE_BUILD_STD='std panic_abort'
    # musl-gcc is the wrapper above, found first on PATH (for the link; C code of dependencies
    # such as ring compiles with it too, which changes nothing there).
    export PATH=$tools/bin:$PATH
    export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER=musl-gcc
    export CC_x86_64_unknown_linux_musl=musl-gcc
    export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C link-self-contained=no -C target-feature=+crt-static -L $lib"
    export CARGO_TARGET_DIR=$target_dir
    cd "$repo"
    /usr/bin/cargo build --locked -p steward --bin steward --target "$TARGET" "${cargo_profile[@]}" >&2
)
bin=$target_dir/$TARGET/$profile/steward
file "$bin" | grep -q 'statically linked' || die "$bin is not statically linked: $(file "$bin")"
if [ "$(id -u)" -eq 0 ] && [ -e /lib/ld-musl-x86_64.so.1 ]; then
    unshare -m sh -c 'mount --bind /dev/null /lib/ld-musl-x86_64.so.1 && "$1" --version' sh "$bin" >&2 ||
        die "$bin does not run without musl's loader"
fi
echo "$bin"
