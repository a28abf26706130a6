#!/usr/bin/env bash
# windows-toolchain.sh: install what steward needs to check, build and test its Windows side on
# a Debian 12 (bookworm) machine, from Debian packages only (no rustup target, no downloads).
#
# Usage:
#   scripts/windows-toolchain.sh          install (idempotent); prints the env file's path on stdout
#   scripts/windows-toolchain.sh --path   print the env file's path only, install nothing
#
# Then, in a SUBSHELL that builds only for Windows (see scripts/ci-windows.sh):
#   ( . "$(scripts/windows-toolchain.sh)"
#     export CARGO_TARGET_DIR=target-windows
#     cargo check --workspace --all-targets --target x86_64-pc-windows-gnu
#     cargo test -p steward --target x86_64-pc-windows-gnu )   # test exes run under Wine
#
# How it works (details in shared/notes/windows-cross.md):
#   * Debian's rustc-web (1.96, bookworm-security) knows x86_64-pc-windows-gnu but ships no std
#     for it; rust-web-src ships the std sources at $(rustc --print sysroot)/lib/rustlib/src/rust,
#     so cargo -Zbuild-std (allowed through RUSTC_BOOTSTRAP=1) compiles std itself, linked with
#     mingw-w64. Debian's cargo-web is used with it so cargo and std match.
#   * Wine 8 has no bcryptprimitives.dll, which Rust std imports (ProcessPrng): a small shim DLL
#     built here forwards it to advapi32!SystemFunction036 and is copied into each Wine prefix.
#   * The env file sets RUSTC and CARGO_UNSTABLE_BUILD_STD, which would also rebuild std for
#     host builds: source it only in the Windows step, never in a shell that builds for Linux.
#
# Idempotent: a second run checks dpkg and compares files, changes nothing and takes well under
# a second. `apt-get update` runs only when a package is missing.
#
# Knobs:
#   STEWARD_WINDOWS_TOOLCHAIN  where the helper files go (default /opt/steward-windows-toolchain
#                              as root, else ~/.local/share/steward-windows-toolchain)
set -euo pipefail

readonly TARGET=x86_64-pc-windows-gnu
readonly PACKAGES=(rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64 wine wine64)

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
    HOME_DIR=${STEWARD_WINDOWS_TOOLCHAIN:-/opt/steward-windows-toolchain}
else
    SUDO=(sudo)
    HOME_DIR=${STEWARD_WINDOWS_TOOLCHAIN:-${XDG_DATA_HOME:-$HOME/.local/share}/steward-windows-toolchain}
fi
readonly ENV_FILE=$HOME_DIR/env.sh

case "${1:-}" in
    "") ;;
    --path) echo "$ENV_FILE"; exit 0 ;;
    -h | --help) sed -n '2,30p' "$0"; exit 0 ;;
    *) echo "windows-toolchain.sh: unknown argument: $1 (try --help)" >&2; exit 2 ;;
esac

# Everything but the env file's path goes to stderr, so `env=$(scripts/windows-toolchain.sh)` works.
log() { printf '[windows-toolchain] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
started=$SECONDS
changed=0

# write_if_changed PATH MODE: put stdin at PATH unless PATH already has exactly that content and
# mode. The new file is staged beside PATH and renamed, so a reader never sees half a file; an
# unchanged file (and its folder) is not touched at all.
write_if_changed() {
    local path=$1 mode=$2 tmp
    tmp=$(mktemp)
    cat >"$tmp"
    if [ -f "$path" ] && cmp -s "$tmp" "$path" && [ "$(stat -c %a "$path")" = "$mode" ]; then
        rm -f "$tmp"
        return
    fi
    cp "$tmp" "$path.new" && rm -f "$tmp"
    chmod "$mode" "$path.new"
    mv -f "$path.new" "$path"
    log "wrote $path"
    changed=1
}

link_if_changed() { # link_if_changed TARGET LINK
    if [ "$(readlink "$2" 2>/dev/null || true)" != "$1" ]; then
        ln -sfn "$1" "$2"
        log "linked $2 -> $1"
        changed=1
    fi
}

# --- 1. Debian packages --------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    # Wait for a dpkg lock held by someone else instead of failing at once.
    apt_opts=(-q -o DPkg::Lock::Timeout=600)
    log "apt-get update (missing: ${missing[*]})"
    "${SUDO[@]}" apt-get "${apt_opts[@]}" update >&2
    log "apt-get install ${missing[*]}"
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" >&2
    changed=1
    log "packages installed in $((SECONDS - started)) s"
fi

# rustc and the std sources must be the very same version, or -Zbuild-std fails in odd ways.
v_rustc=$(dpkg-query -W -f='${Version}' rustc-web)
v_src=$(dpkg-query -W -f='${Version}' rust-web-src)
v_cargo=$(dpkg-query -W -f='${Version}' cargo-web)
[ "$v_rustc" = "$v_src" ] || die "rustc-web $v_rustc and rust-web-src $v_src differ: install matching versions"
[ "$v_rustc" = "$v_cargo" ] || log "warning: cargo-web $v_cargo differs from rustc-web $v_rustc"

for bin in /usr/bin/rustc /usr/bin/rustdoc /usr/bin/cargo /usr/bin/x86_64-w64-mingw32-gcc \
    /usr/bin/wine /usr/bin/wineserver /usr/bin/wineboot; do
    [ -x "$bin" ] || die "$bin is missing although its package is installed"
done
/usr/bin/rustc --print target-list | grep -qx "$TARGET" || die "/usr/bin/rustc does not know $TARGET"
std_src="$(/usr/bin/rustc --print sysroot)/lib/rustlib/src/rust/library"
[ -f "$std_src/Cargo.lock" ] || die "std sources for -Zbuild-std not found at $std_src (package rust-web-src)"
# bookworm main's rustc-web 1.85 cannot link for this target (rsbegin.o/rsend.o missing); the
# bookworm-security one can. Catch an old one here rather than at the first link.
rustc_minor=$(/usr/bin/rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
[ "$rustc_minor" -ge 90 ] ||
    die "/usr/bin/rustc is $(/usr/bin/rustc --version); need >= 1.90 (bookworm-security's rustc-web): is bookworm-security in the apt sources?"

# --- 2. helper files -----------------------------------------------------------------------
"${SUDO[@]}" mkdir -p "$HOME_DIR/bin" "$HOME_DIR/shim"
[ -w "$HOME_DIR" ] || "${SUDO[@]}" chown -R "$(id -u):$(id -g)" "$HOME_DIR"

# Debian's cargo, rustc and rustdoc first on PATH, ahead of any rustup proxies.
for tool in cargo rustc rustdoc; do link_if_changed "/usr/bin/$tool" "$HOME_DIR/bin/$tool"; done

# The ProcessPrng shim for Wine 8. Rust std calls ProcessPrng(buffer, size_t length) and treats
# any return as success; RtlGenRandom (SystemFunction036) takes a ULONG length, so feed it in
# chunks. Rebuilt only when this source changes or the DLL is gone.
write_if_changed "$HOME_DIR/shim/bcryptprimitives.c" 644 <<'EOF'
/* bcryptprimitives.dll for Wine 8, which lacks it. Generated by steward's
 * scripts/windows-toolchain.sh: forwards ProcessPrng, which Rust std imports, to RtlGenRandom. */
#include <windows.h>

__declspec(dllimport) BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
EOF
shim_dll=$HOME_DIR/shim/bcryptprimitives.dll
if [ ! -f "$shim_dll" ] || [ "$HOME_DIR/shim/bcryptprimitives.c" -nt "$shim_dll" ]; then
    x86_64-w64-mingw32-gcc -O2 -shared -s -o "$shim_dll.tmp" "$HOME_DIR/shim/bcryptprimitives.c" -ladvapi32
    mv -f "$shim_dll.tmp" "$shim_dll"
    log "built $shim_dll"
    changed=1
fi

# wine-prefix-init [PREFIX]: make PREFIX (default $WINEPREFIX) a usable headless Wine prefix.
write_if_changed "$HOME_DIR/bin/wine-prefix-init" 755 <<EOF
#!/usr/bin/env bash
# Create, if needed, a headless Wine prefix with the bcryptprimitives.dll shim, and start its
# Wine session with stdio on /dev/null. Generated by steward's scripts/windows-toolchain.sh.
set -euo pipefail
export WINEPREFIX=\${1:-\${WINEPREFIX:?set WINEPREFIX or pass a prefix directory}}
export WINEDEBUG=\${WINEDEBUG:--all}
system32=\$WINEPREFIX/drive_c/windows/system32
if [ ! -f "\$WINEPREFIX/system.reg" ] || [ ! -d "\$system32" ]; then
    mkdir -p "\$WINEPREFIX"
    # No wine-mono / wine-gecko: they would be downloaded, and nothing here needs them.
    WINEDLLOVERRIDES="mscoree,mshtml=" wineboot -i </dev/null >/dev/null 2>&1
    # Services cannot be started from the session that created the prefix (1055/1060):
    # wait for it to end.
    timeout 120 wineserver -w || true
fi
cmp -s "$shim_dll" "\$system32/bcryptprimitives.dll" || cp "$shim_dll" "\$system32/bcryptprimitives.dll"
# The first Wine command of a session lends its stderr to services.exe & co., which keep it
# open: a caller reading that command's output through a pipe would wait forever. Start the
# session here, on /dev/null.
wineboot </dev/null >/dev/null 2>&1 || true
EOF

# wine-runner EXE ARGS...: cargo's runner for the Windows target (cargo run / cargo test).
write_if_changed "$HOME_DIR/bin/wine-runner" 755 <<EOF
#!/usr/bin/env bash
# Run a Windows exe under Wine in \$WINEPREFIX, preparing the prefix on first use.
# Generated by steward's scripts/windows-toolchain.sh.
set -euo pipefail
"$HOME_DIR/bin/wine-prefix-init" >&2
exec wine "\$@"
EOF

# --- 3. the env file -------------------------------------------------------------------------
# Sourced in the Windows step only. Single-quoted values: no path here contains a quote.
write_if_changed "$ENV_FILE" 644 <<EOF
# Environment for cargo --target $TARGET with Debian's rustc-web and -Zbuild-std.
# Generated by steward's scripts/windows-toolchain.sh. Source it in a subshell that builds only
# for Windows: RUSTC and CARGO_UNSTABLE_BUILD_STD would also apply to host builds.
# Toolchain: rustc-web $v_rustc, cargo-web $v_cargo
export STEWARD_WINDOWS_TOOLCHAIN='$HOME_DIR'
export RUSTC='/usr/bin/rustc'
export RUSTDOC='/usr/bin/rustdoc'
export RUSTC_BOOTSTRAP=1
export CARGO_UNSTABLE_BUILD_STD='std panic_abort'
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER='x86_64-w64-mingw32-gcc'
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER='$HOME_DIR/bin/wine-runner'
export CC_x86_64_pc_windows_gnu='x86_64-w64-mingw32-gcc'
export AR_x86_64_pc_windows_gnu='x86_64-w64-mingw32-ar'
export WINEDEBUG=\${WINEDEBUG:--all}
export WINEPREFIX=\${WINEPREFIX:-'$HOME_DIR/wineprefix'}
case ":\$PATH:" in *":$HOME_DIR/bin:"*) ;; *) export PATH='$HOME_DIR/bin':"\$PATH" ;; esac
EOF

if [ "$changed" = 1 ]; then
    log "ready in $((SECONDS - started)) s: $(/usr/bin/rustc --version), $(/usr/bin/cargo --version), wine $(dpkg-query -W -f='${Version}' wine)"
else
    log "already up to date ($((SECONDS - started)) s)"
fi
echo "$ENV_FILE"
