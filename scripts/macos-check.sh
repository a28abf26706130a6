#!/usr/bin/env bash
# macos-check.sh: type-check steward for macOS on Linux, with warnings denied.
#
# Usage: scripts/macos-check.sh [TARGET...]
#   TARGET: x86_64-apple-darwin, aarch64-apple-darwin (default: both, in that order)
#
# For each target it runs
#   cargo clippy --workspace --all-targets --locked --target TARGET -- -D warnings
# which is rustc's full type check (every crate; libs, bins, tests, benches and examples) plus
# the same lints as the host's clippy step. It covers the code only macOS compiles: launchd
# control (steward-service's manage/launchd.rs), the Unix spawn path without linux_spawn.rs, and
# resources/unsupported.rs. It links nothing and runs nothing: how launchd, the spawn path
# and signals behave on a Mac is not tested here.
#
# How it works without a Mac or its SDK:
#   * std: Debian's rustc-web knows the darwin targets but ships no std for them; its std
#     sources (rust-web-src) are built with cargo -Zbuild-std, as for the Windows step.
#     scripts/windows-toolchain.sh installs those packages and writes the environment for it
#     (RUSTC, RUSTC_BOOTSTRAP, CARGO_UNSTABLE_BUILD_STD), which is sourced here.
#   * clippy: Debian's rust-web-clippy, the clippy of that same rustc (the rustup one cannot
#     read a std built by another compiler). It is run as /usr/bin/cargo-clippy, because a
#     plain `cargo clippy` would find rustup's cargo-clippy in ~/.cargo/bin first.
#   * C: ring's build script compiles C and assembly even for `check`. Debian's clang builds
#     for darwin; with no SDK, it gets clang's own headers only (-ffreestanding
#     -nostdlibinc), ring's switch for building without libc headers (RING_CORE_NOSTDLIBINC),
#     and scripts/macos-sdk-stubs/ for the one SDK header still needed.
#   * Everything runs in a subshell with its own target dir (target-macos/, or
#     STEWARD_MACOS_TARGET_DIR), so none of this environment reaches a host build.
#
# Installs what is missing first (scripts/windows-toolchain.sh, then clang and
# rust-web-clippy; a second run installs nothing). Prints each target's time; exits non-zero
# if any target fails, after trying them all.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x86_64-apple-darwin aarch64-apple-darwin)
for target in "${targets[@]}"; do
    case "$target" in
        x86_64-apple-darwin | aarch64-apple-darwin) ;;
        -h | --help) sed -n '2,32p' "$0"; exit 0 ;;
        *) echo "macos-check.sh: unknown target '$target' (x86_64-apple-darwin or aarch64-apple-darwin)" >&2; exit 2 ;;
    esac
done

say() { printf '[macos-check] %s\n' "$*" >&2; }
total_start=$SECONDS

# --- what it needs --------------------------------------------------------------------------
step_start=$SECONDS
env_file=$("$repo/scripts/windows-toolchain.sh")
missing=()
for p in clang rust-web-clippy; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    apt_opts=(-q -o DPkg::Lock::Timeout=600)
    say "apt-get install ${missing[*]}"
    "${sudo[@]}" apt-get "${apt_opts[@]}" update >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" >&2
fi
# The clippy must be the one of the rustc that builds std, or it cannot read that std.
v_rustc=$(dpkg-query -W -f='${Version}' rustc-web)
v_clippy=$(dpkg-query -W -f='${Version}' rust-web-clippy)
if [ "$v_rustc" != "$v_clippy" ]; then
    say "error: rust-web-clippy $v_clippy differs from rustc-web $v_rustc: install matching versions (apt-get install rust-web-clippy=$v_rustc)"
    exit 1
fi
for bin in /usr/bin/cargo-clippy /usr/bin/clippy-driver /usr/bin/clang; do
    [ -x "$bin" ] || { say "error: $bin is missing although its package is installed"; exit 1; }
done
say "toolchain ready: $((SECONDS - step_start)) s"

# --- the check, per target ------------------------------------------------------------------
failed=()
for target in "${targets[@]}"; do
    start=$SECONDS
    if (
        # Everything below applies to this subshell only: RUSTC, CARGO_UNSTABLE_BUILD_STD
        # and the C flags must never reach a host build.
        # shellcheck disable=SC1090
        . "$env_file"
        export CARGO=/usr/bin/cargo
        export CARGO_TARGET_DIR=${STEWARD_MACOS_TARGET_DIR:-$repo/target-macos}
        # cc-rs already passes clang the darwin --target and a deployment version.
        cc_target=${target//-/_}
        export "CC_$cc_target=clang"
        export "CFLAGS_$cc_target=-ffreestanding -nostdlibinc -DRING_CORE_NOSTDLIBINC=1 -I$repo/scripts/macos-sdk-stubs"
        cd "$repo"
        say "$target: $(/usr/bin/cargo-clippy --version), $(rustc --version), target dir $CARGO_TARGET_DIR"
        /usr/bin/cargo-clippy clippy --workspace --all-targets --locked --target "$target" -- -D warnings
    ); then
        say "$target: ok in $((SECONDS - start)) s"
    else
        say "$target: FAILED after $((SECONDS - start)) s"
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    say "failed: ${failed[*]} (total $((SECONDS - total_start)) s)"
    exit 1
fi
say "all targets (${targets[*]}) passed in $((SECONDS - total_start)) s"
