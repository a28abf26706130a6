#!/usr/bin/env bash
# package-windows-test.sh [STEWARD_EXE]: the Windows release zip and its manifests, then the
# zip installed the way README.txt says, under Wine's Service Control Manager.
#
#   1. scripts/package-windows.sh makes the zip and fills the manifests; the zip holds exactly
#      steward.exe, README.txt, steward.example.toml and the two licenses, with CRLF texts
#   2. the manifests parse (ruby's JSON and YAML), the templates in packaging/ too; Scoop's
#      version, url, hash (the zip's SHA-256) and bin; winget's three files with the fields
#      their 1.6.0 schemas require, agreeing on identifier and version, the installer's URL and
#      hash the zip's, its nested portable steward.exe a file of the zip
#   3. in a fresh Wine prefix: unzipped into C:\Program Files\steward, the sample config copied
#      to C:\ProgramData\steward\steward.toml with a program added; `steward check`; from the
#      program folder, `steward service install -c ...`: the SCM runs
#      "C:\Program Files\steward\steward.exe"; `steward service start`: RUNNING (sc query),
#      `steward service status` exits 0, `steward status` shows the program running; `service
#      stop`: STOPPED; `service uninstall`: gone, the config and logs stay
#
# STEWARD_EXE: default target-windows/x86_64-pc-windows-gnu/debug/steward.exe (what
# `scripts/ci-windows.sh build` makes; STEWARD_WINDOWS_TARGET_DIR moves it). The program of the
# config is steward-testchild.exe beside it (a test tool, not in the zip). The last line is
# `package (windows): N passed, N failed`; the exit status is 1 when anything failed.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${STEWARD_WINDOWS_TARGET_DIR:-$repo/target-windows}
exe=${1:-$target_dir/x86_64-pc-windows-gnu/debug/steward.exe}
child=$(dirname "$exe")/steward-testchild.exe
for f in "$exe" "$child"; do
    if [ ! -f "$f" ]; then
        echo "package-windows-test: no $f; build it (scripts/ci-windows.sh build) or pass steward.exe's path" >&2
        exit 2
    fi
done
command -v ruby >/dev/null || { echo "package-windows-test: ruby is missing (it parses the manifests): apt-get install ruby" >&2; exit 2; }
started=$SECONDS
say() { printf '\n=== %s (%ds)\n' "$*" "$((SECONDS - started))"; }
# shellcheck source=scripts/test-lib.sh
. "$repo/scripts/test-lib.sh"

work=$(mktemp -d /tmp/steward-win-test.XXXXXX)
cleanup() {
    if [ -n "${WINEPREFIX:-}" ]; then
        if [ "$failed" -gt 0 ] && [ -d "${C:-}/ProgramData/steward/logs" ]; then
            for f in "$C/ProgramData/steward/logs"/*; do printf '\n--- %s (last 40 lines)\n' "${f##*/}"; tail -n 40 "$f"; done
        fi
        wineserver -k >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# --- 1. the zip ---------------------------------------------------------------------------------
say "package: scripts/package-windows.sh $exe"
url=https://releases.example.invalid/steward/v9.8.7/steward-9.8.7-windows-x64.zip
if zip=$(bash "$repo/scripts/package-windows.sh" --version 9.8.7 --url "$url" --out "$work/out" "$exe"); then
    pass "built ${zip##*/} ($(du -h "$zip" | cut -f1))"
else
    fail "scripts/package-windows.sh failed"
    echo "package (windows): $passed passed, $failed failed"
    exit 1
fi
listing=$(unzip -Z1 "$zip" | LC_ALL=C sort | tr '\n' ' ')
check "the zip holds: $listing" test "$listing" = "LICENSE-APACHE.txt LICENSE-MIT.txt README.txt steward.example.toml steward.exe "
mkdir -p "$work/unzipped"
unzip -q "$zip" -d "$work/unzipped"
check "README.txt has CRLF line ends" grep -q $'\r$' "$work/unzipped/README.txt"
check "steward.exe in the zip is a PE executable" test "$(head -c 2 "$work/unzipped/steward.exe")" = MZ

# --- 2. the manifests ---------------------------------------------------------------------------
say "manifests: Scoop and winget"
sha=$(sha256sum "$zip" | cut -d' ' -f1)
# One ruby program checks a manifest set and prints one `ok WHAT` or `bad WHAT` per check.
manifests() { # manifests SCOOP_JSON WINGET_DIR VERSION URL SHA ZIP_LISTING
    ruby -rjson -ryaml -e '
        scoop_file, winget_dir, version, url, sha, listing = ARGV
        def check(ok, what) puts((ok ? "ok " : "bad ") + what) end
        s = JSON.parse(File.read(scoop_file))
        arch = s.dig("architecture", "64bit") || {}
        check(s["version"] == version, "scoop: version #{s["version"].inspect}")
        check(arch["url"] == url, "scoop: architecture.64bit.url #{arch["url"].inspect}")
        check(arch["hash"] == sha, "scoop: architecture.64bit.hash #{arch["hash"].inspect}")
        check(s["bin"] == "steward.exe" && listing.split.include?(s["bin"]), "scoop: bin #{s["bin"].inspect}, a file of the zip")
        check(%w[description homepage license].all? { |k| s[k].is_a?(String) && !s[k].empty? }, "scoop: description, homepage, license")
        files = Dir[File.join(winget_dir, "*.yaml")].sort
        m = files.to_h { |f| y = YAML.safe_load(File.read(f)); [y["ManifestType"], y] }
        check(m.keys.sort == %w[defaultLocale installer version], "winget: three files, types #{m.keys.sort.join(",")}")
        req = { "version" => %w[PackageIdentifier PackageVersion DefaultLocale ManifestType ManifestVersion],
                "installer" => %w[PackageIdentifier PackageVersion Installers ManifestType ManifestVersion],
                "defaultLocale" => %w[PackageIdentifier PackageVersion PackageLocale Publisher PackageName License ShortDescription ManifestType ManifestVersion] }
        req.each do |type, keys|
            y = m[type] || {}
            missing = keys.reject { |k| y[k].is_a?(Array) ? !y[k].empty? : !y[k].to_s.empty? }
            check(missing.empty?, "winget #{type}: the schema-required fields#{missing.empty? ? "" : ", missing " + missing.join(" ")}")
            check(y["PackageVersion"].to_s == version && y["PackageIdentifier"] == m.dig("version", "PackageIdentifier") && y["ManifestVersion"] == "1.6.0",
                  "winget #{type}: #{y["PackageIdentifier"]} #{y["PackageVersion"]}, manifest 1.6.0")
        end
        check(m.dig("version", "DefaultLocale") == m.dig("defaultLocale", "PackageLocale"), "winget: DefaultLocale is the locale file'"'"'s")
        inst = (m.dig("installer", "Installers") || [])[0] || {}
        check(inst["Architecture"] == "x64" && inst["InstallerUrl"] == url && inst["InstallerSha256"].to_s.downcase == sha,
              "winget installer: x64, the URL and the zip'"'"'s SHA-256")
        nested = (m.dig("installer", "NestedInstallerFiles") || [])[0] || {}
        check(m.dig("installer", "InstallerType") == "zip" && m.dig("installer", "NestedInstallerType") == "portable" &&
              listing.split.include?(nested["RelativeFilePath"].to_s) && nested["PortableCommandAlias"] == "steward",
              "winget installer: zip with the portable #{nested["RelativeFilePath"]} of the zip as `steward`")
    ' "$@" 2>&1
}
report() { # report OUTPUT: ok/bad lines as PASS/FAIL; anything else (a parse error) fails
    local line
    while IFS= read -r line; do
        case $line in
            ok\ *) pass "${line#ok }" ;;
            bad\ *) fail "${line#bad }" ;;
            *) fail "ruby: $line" ;;
        esac
    done <<<"$1"
}
report "$(manifests "$work/out/scoop/steward.json" "$work/out/winget" 9.8.7 "$url" "$sha" "$listing")"
# The templates themselves are valid JSON and YAML, with every placeholder in a string.
if out=$(ruby -rjson -ryaml -e 'JSON.parse(File.read(ARGV[0])); ARGV[1..].each { |f| YAML.safe_load(File.read(f)) }' \
    "$repo/packaging/scoop/steward.json" "$repo"/packaging/winget/*.yaml 2>&1); then
    pass "the templates in packaging/scoop and packaging/winget parse"
else
    fail "a template does not parse: $out"
fi

# --- 3. installed from the zip, under Wine's SCM --------------------------------------------------
say "fresh Wine prefix"
env_file=$("$repo/scripts/windows-toolchain.sh")
# shellcheck disable=SC1090
. "$env_file"
# shellcheck source=scripts/wine-lib.sh
. "$repo/scripts/wine-lib.sh"
wine_fresh_prefix "$work/prefix"
wine --version
C=$WINEPREFIX/drive_c

say "unzip to C:\\Program Files\\steward, config in C:\\ProgramData\\steward"
mkdir -p "$C/Program Files/steward" "$C/ProgramData/steward" "$C/stw-test"
unzip -q "$zip" -d "$C/Program Files/steward"
check "unzipped: $(ls "$C/Program Files/steward" | tr '\n' ' ')" test -f "$C/Program Files/steward/steward.exe"
cp "$child" "$C/stw-test/steward-testchild.exe"
# README.txt's step 2: the sample copied out of the program folder, then a program declared.
cp "$C/Program Files/steward/steward.example.toml" "$C/ProgramData/steward/steward.toml"
printf '%s\r\n' '' '[programs.clock]' "command = ['C:\\stw-test\\steward-testchild.exe', '--sleep', '1h']" \
    >>"$C/ProgramData/steward/steward.toml"
STEWARD='C:\Program Files\steward\steward.exe'
CONF='C:\ProgramData\steward\steward.toml'
steward() { w "$STEWARD" "$@"; }
if out=$(steward check -c "$CONF"); then pass "steward check: $out"; else fail "steward check:"; show "$out"; fi

say "service install, start, status, stop, uninstall"
# From the program folder, as README.txt says: the SCM gets the unzipped exe's path.
if out=$(cd "$C/Program Files/steward" && w steward.exe service install -c "$CONF"); then
    pass "steward service install (from C:\\Program Files\\steward)"
else
    fail "steward service install:"
    show "$out"
fi
runs=$(steward service status | sed -n 's/^  runs: *//p')
check "the SCM runs the unzipped exe: $runs" eval '[[ $runs == *"C:\\Program Files\\steward\\steward.exe"* ]]'
if out=$(steward service start); then pass "steward service start"; else fail "steward service start:"; show "$out"; fi
within 30 "sc query steward: RUNNING" is_state steward RUNNING
if out=$(steward service status); then pass "steward service status exits 0 while it runs"; else fail "steward service status:"; show "$out"; fi
clock_runs() { steward status -c "$CONF" | awk '$1 == "clock" && $2 == "running" { found = 1 } END { exit !found }'; }
within 30 "steward status -c $CONF: clock running (over the service's named pipe)" clock_runs
if out=$(steward service stop); then pass "steward service stop"; else fail "steward service stop:"; show "$out"; fi
within 30 "sc query steward: STOPPED" is_state steward STOPPED
if out=$(steward service uninstall); then pass "steward service uninstall"; else fail "steward service uninstall:"; show "$out"; fi
check "the service is gone (sc query fails)" not_installed steward
check "the config and logs stay ($(ls "$C/ProgramData/steward/logs" 2>/dev/null | tr '\n' ' '))" \
    eval '[ -f "$C/ProgramData/steward/steward.toml" ] && [ -f "$C/ProgramData/steward/logs/steward.log" ]'

echo "package (windows): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
