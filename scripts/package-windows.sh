#!/usr/bin/env bash
# package-windows.sh: the Windows release zip, and its Scoop and winget manifests.
#
# Usage: scripts/package-windows.sh [--version V] [--url URL] [--homepage URL] [--out DIR] STEWARD_EXE
#
#   STEWARD_EXE     the steward.exe to ship (CI: the one scripts/ci-windows.sh build made)
#   --version V     the release version (default: the workspace's, from Cargo.toml)
#   --url URL       where the zip will be downloaded from, for the manifests (default:
#                   $STEWARD_RELEASE_URL, else a placeholder under example.invalid)
#   --homepage URL  the project's page, for the manifests (default: $STEWARD_HOMEPAGE, else a
#                   placeholder)
#   --out DIR       where everything goes (default: target/windows-release)
#
# Writes into DIR:
#   steward-V-windows-x64.zip    steward.exe (stripped), README.txt, steward.example.toml,
#                                LICENSE-MIT.txt, LICENSE-APACHE.txt, files at the top level
#                                (what `C:\Program Files\steward` holds once unzipped)
#   scoop/steward.json           packaging/scoop/steward.json with the version, URL and hash
#   winget/*.yaml                packaging/winget/*.yaml, the same (winget's multi-file layout)
# and prints the zip's path on stdout. Text files get CRLF line ends (Notepad, type). Needs
# zip and sha256sum; x86_64-w64-mingw32-strip when present (the exe is copied as is otherwise).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { printf 'package-windows: %s\n' "$*" >&2; exit 2; }

version='' url=${STEWARD_RELEASE_URL:-} homepage=${STEWARD_HOMEPAGE:-https://example.invalid/steward}
out=$repo/target/windows-release exe=''
while [ $# -gt 0 ]; do
    case $1 in
        --version) version=${2:?--version needs a value}; shift 2 ;;
        --url) url=${2:?--url needs a value}; shift 2 ;;
        --homepage) homepage=${2:?--homepage needs a value}; shift 2 ;;
        --out) out=${2:?--out needs a value}; shift 2 ;;
        -*) die "unknown option $1 (see the usage at the top of $0)" ;;
        *) [ -z "$exe" ] || die "one exe only (got $exe and $1)"; exe=$1; shift ;;
    esac
done
[ -n "$exe" ] || die "usage: package-windows.sh [--version V] [--url URL] [--homepage URL] [--out DIR] STEWARD_EXE"
[ -f "$exe" ] || die "no steward.exe at $exe; build it first (scripts/ci-windows.sh build)"
for tool in zip sha256sum; do
    command -v "$tool" >/dev/null || die "$tool is missing: apt-get install zip coreutils"
done
if [ -z "$version" ]; then
    version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$repo/Cargo.toml" | head -n1)
    [ -n "$version" ] || die "no version in $repo/Cargo.toml; give --version"
fi
name=steward-$version-windows-x64.zip
[ -n "$url" ] || url=https://example.invalid/steward/releases/v$version/$name

stage=$(mktemp -d /tmp/steward-win.XXXXXX)
trap 'rm -rf "$stage"' EXIT
crlf() { sed 's/\r*$/\r/' "$1" >"$2"; }
if command -v x86_64-w64-mingw32-strip >/dev/null; then
    x86_64-w64-mingw32-strip -o "$stage/steward.exe" "$exe"
else
    cp "$exe" "$stage/steward.exe"
fi
crlf "$repo/packaging/windows/README.txt" "$stage/README.txt"
crlf "$repo/packaging/windows/steward.example.toml" "$stage/steward.example.toml"
crlf "$repo/LICENSE-MIT" "$stage/LICENSE-MIT.txt"
crlf "$repo/LICENSE-APACHE" "$stage/LICENSE-APACHE.txt"

mkdir -p "$out/scoop" "$out/winget"
rm -f "$out/$name"
# -X: no Unix owner or time extras; -D: no directory entries (the files are at the top).
(cd "$stage" && zip -q -X -D -9 "$out/$name" steward.exe README.txt steward.example.toml LICENSE-MIT.txt LICENSE-APACHE.txt)
sha=$(sha256sum "$out/$name" | cut -d' ' -f1)

fill() { # fill TEMPLATE DEST: the @...@ values of a release
    sed -e "s|@VERSION@|$version|g" -e "s|@URL@|$url|g" -e "s|@SHA256@|$sha|g" -e "s|@HOMEPAGE@|$homepage|g" "$1" >"$2"
    if grep -q '@[A-Z0-9]*@' "$2"; then die "$1 has a placeholder this script does not fill: $(grep -o '@[A-Z0-9]*@' "$2" | head -n1)"; fi
}
fill "$repo/packaging/scoop/steward.json" "$out/scoop/steward.json"
for f in "$repo"/packaging/winget/*.yaml; do
    fill "$f" "$out/winget/${f##*/}"
done
echo "$out/$name"
