#!/usr/bin/env bash
# package-deb.sh: the steward Debian package, from an already built steward binary.
#
# Usage: scripts/package-deb.sh [--revision N] [--version V] [--arch ARCH] [--out DIR] STEWARD
#
#   STEWARD         the binary to ship (CI: target/release/steward); it is also run at build
#                   time to render the systemd unit and to write the man pages and completions
#   --version V     upstream version (default: the workspace's, from Cargo.toml)
#   --revision N    Debian revision (default 1): the package version is V-N
#   --arch ARCH     Debian architecture (default: dpkg --print-architecture)
#   --out DIR       where the .deb goes (default: target/debian)
#
# Prints the path of the .deb on stdout. Needs dpkg-dev (dpkg-deb, dpkg-shlibdeps), binutils
# (strip) and gzip.
#
# Why a script and not cargo-deb: `cargo install cargo-deb --locked` compiles cargo-deb and
# its dependency tree from source on every fresh CI machine (crates.io has no binaries), while
# dpkg-deb, dpkg-shlibdeps and deb-systemd-helper are on every Debian machine already and the
# packaging itself takes seconds. The package is what cargo-deb would make from the same files,
# and the maintainer scripts in packaging/debian/ are debhelper's `dh_installsystemd
# --no-start` snippets written out.
#
# What goes in (docs/install.md has the table):
#   /usr/bin/steward                        the binary, stripped
#   /lib/systemd/system/steward.service     `steward service render --init systemd` for
#                                           /etc/steward/steward.toml and /usr/bin/steward,
#                                           with TimeoutStopSec raised (see below)
#   /etc/steward/steward.toml               the commented sample config (a conffile)
#   /usr/share/man/man1, man5               `steward man --out DIR`, gzipped
#   bash, zsh and fish completions          `steward completions SHELL`
#   /usr/share/doc/steward/copyright        both licenses (MIT OR Apache-2.0)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { printf 'package-deb: %s\n' "$*" >&2; exit 2; }

version='' revision=1 arch='' out=$repo/target/debian steward=''
while [ $# -gt 0 ]; do
    case $1 in
        --version) version=${2:?--version needs a value}; shift 2 ;;
        --revision) revision=${2:?--revision needs a value}; shift 2 ;;
        --arch) arch=${2:?--arch needs a value}; shift 2 ;;
        --out) out=${2:?--out needs a value}; shift 2 ;;
        -*) die "unknown option $1 (see the usage at the top of $0)" ;;
        *) [ -z "$steward" ] || die "one binary only (got $steward and $1)"; steward=$1; shift ;;
    esac
done
[ -n "$steward" ] || die "usage: package-deb.sh [--revision N] [--version V] [--arch ARCH] [--out DIR] STEWARD"
[ -x "$steward" ] || die "no executable steward at $steward; build it first (cargo build --release -p steward)"
for tool in dpkg-deb dpkg-shlibdeps strip gzip; do
    command -v "$tool" >/dev/null || die "$tool is missing: apt-get install dpkg-dev binutils gzip"
done
if [ -z "$version" ]; then
    # The first `version = "..."` of the workspace manifest is [workspace.package]'s.
    version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repo/Cargo.toml" | head -n1)
    [ -n "$version" ] || die "no version in $repo/Cargo.toml; give --version"
fi
[ -n "$arch" ] || arch=$(dpkg --print-architecture)
full=$version-$revision

stage=$(mktemp -d /tmp/steward-deb.XXXXXX)
trap 'rm -rf "$stage"' EXIT
root=$stage/root
mkdir -p "$root/DEBIAN"
# dpkg-deb refuses group-writable maintainer scripts, and the files should not depend on the
# builder's umask.
umask 022

install -D -m 0755 "$steward" "$root/usr/bin/steward"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/steward"
install -D -m 0644 "$repo/packaging/steward.toml" "$root/etc/steward/steward.toml"

# The unit is steward's own rendering, as `steward service install` would write it for this
# config, so the package and a hand install agree on Type=notify, KillMode=mixed, Delegate=yes,
# Restart=on-failure and the rest. One value is the package's: render computes TimeoutStopSec
# from the config's stop_timeouts, and the shipped config has no programs yet (5 s); the admin
# adds programs later without re-rendering, so the package keeps systemd's usual 90 s.
# `steward service install` writes an exact unit to /etc/systemd/system, which takes precedence.
unit=$root/lib/systemd/system/steward.service
mkdir -p "$(dirname "$unit")"
rendered=$("$steward" service render --init systemd --root "$root" -c /etc/steward/steward.toml --exe /usr/bin/steward) ||
    die "steward service render failed (output above)"
{
    echo "# The steward Debian package's unit: \`steward service render --init systemd\` for"
    echo "# /etc/steward/steward.toml, with TimeoutStopSec=90s. Change it with"
    echo "# \`systemctl edit steward\`, or let \`steward service install -c /etc/steward/steward.toml\`"
    echo "# write one sized for your programs to /etc/systemd/system (which takes precedence)."
    sed -e '/^#/d' -e 's/^TimeoutStopSec=.*/TimeoutStopSec=90s/' <<<"$rendered"
} >"$unit"
grep -qx 'TimeoutStopSec=90s' "$unit" || die "the rendered unit has no TimeoutStopSec line to adjust:
$rendered"

# Man pages and completions, from the binary itself.
man=$stage/man
"$steward" man --out "$man" >/dev/null ||
    die "\`$steward man --out DIR\` failed: this steward has no man verb (build a newer one)"
for page in "$man"/*.[15]; do
    [ -e "$page" ] || die "\`steward man --out\` wrote no page in $man"
    section=${page##*.}
    install -D -m 0644 "$page" "$root/usr/share/man/man$section/${page##*/}"
    gzip -9n "$root/usr/share/man/man$section/${page##*/}"
done
completion() { # completion SHELL DEST
    install -d "$root/$(dirname "$2")"
    "$steward" completions "$1" >"$root/$2" || die "\`steward completions $1\` failed"
    [ -s "$root/$2" ] || die "\`steward completions $1\` printed nothing"
    chmod 0644 "$root/$2"
}
completion bash usr/share/bash-completion/completions/steward
completion zsh usr/share/zsh/vendor-completions/_steward
completion fish usr/share/fish/vendor_completions.d/steward.fish

doc=$root/usr/share/doc/steward
install -D -m 0644 "$repo/packaging/debian/copyright" "$doc/copyright"
maintainer=${DEB_MAINTAINER:-the steward developers <packaging@steward.invalid>}
{
    printf 'steward (%s) unstable; urgency=medium\n\n' "$full"
    printf '  * steward %s, packaged from its release binary.\n\n' "$version"
    printf ' -- %s  %s\n' "$maintainer" "$(date -R -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}")"
} | gzip -9n >"$doc/changelog.Debian.gz"

for script in postinst prerm postrm; do
    install -m 0755 "$repo/packaging/debian/$script" "$root/DEBIAN/$script"
done
echo /etc/steward/steward.toml >"$root/DEBIAN/conffiles"
# A package built from a release, not uploaded to Debian: its changelog closes no Debian bug.
install -D -m 0644 /dev/stdin "$root/usr/share/lintian/overrides/steward" <<<'steward: initial-upload-closes-no-bugs'


# Depends: the shared libraries the binary links, as dpkg-shlibdeps finds them (it wants a
# debian/control to exist, hence the little source tree).
mkdir -p "$stage/src/debian"
printf 'Source: steward\n\nPackage: steward\nArchitecture: any\n' >"$stage/src/debian/control"
depends=$(cd "$stage/src" && dpkg-shlibdeps -O "$root/usr/bin/steward" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || die "dpkg-shlibdeps found no dependencies for $steward"

(cd "$root" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/conffiles"
cat >"$root/DEBIAN/control" <<EOF
Package: steward
Version: $full
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends, init-system-helpers (>= 1.54~)
Section: admin
Priority: optional
Description: process supervisor: run programs as supervised services
 steward runs the programs declared in one TOML file as supervised background
 services: it starts them in dependency order, restarts them with backoff when
 they fail, stops their whole process tree and keeps their output in rotated
 log files. The package runs a machine-wide steward under systemd, with its
 config in /etc/steward/steward.toml.
EOF

mkdir -p "$out"
deb=$out/steward_${full}_$arch.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
