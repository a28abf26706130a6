#!/usr/bin/env bash
# package-homebrew-test.sh [STEWARD]: packaging/homebrew/steward.rb, checked without macOS.
#
#   - `ruby -c`: the formula is valid Ruby
#   - its `service do` block, evaluated against a stand-in of Homebrew's DSL (the formula class
#     loads with stubs for desc, url, depends_on...; the block runs on a recorder), says what
#     `steward service render --init launchd` says for the same config and executable:
#     ProgramArguments = run, WorkingDirectory = working_dir, KeepAlive = {SuccessfulExit:
#     false}, StandardOutPath/StandardErrorPath = log_path/error_log_path, RunAtLoad (the
#     DSL's default run_type :immediate)
#   - the sample config the formula installs, with the formula's inreplace done the same way,
#     passes `steward check`
#
# What it cannot check here: `brew install` and `brew services` themselves (no macOS runner,
# no Homebrew). STEWARD: default $STEWARD, else target/release/steward. The last line is
# `package (homebrew): N passed, N failed`.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
steward=${1:-${STEWARD:-$repo/target/release/steward}}
formula=$repo/packaging/homebrew/steward.rb
[ -x "$steward" ] || { echo "package-homebrew-test: no steward binary at $steward" >&2; exit 2; }
command -v ruby >/dev/null || { echo "package-homebrew-test: ruby is missing: apt-get install ruby" >&2; exit 2; }
# shellcheck source=scripts/test-lib.sh
. "$repo/scripts/test-lib.sh"
work=$(mktemp -d /tmp/steward-brew-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

if out=$(ruby -c "$formula" 2>&1); then pass "ruby -c $formula: $out"; else fail "ruby -c: $out"; fi

# A Homebrew prefix in the temp dir: opt/steward/bin, etc, var.
prefix=$work/homebrew
mkdir -p "$prefix/opt/steward/bin" "$prefix/etc/steward" "$prefix/var/log/steward" "$prefix/var/lib/steward"
cp "$steward" "$prefix/opt/steward/bin/steward"
# The formula's inreplace, with the same patterns (read from the formula, so they cannot drift).
ruby -e '
    formula, sample, etc, var = ARGV
    text = File.read(sample)
    pairs = File.read(formula).scan(/s\.gsub! "([^"]+)",\s*(?:"([^"]+)"|(\w+)\/"([^"]+)")/m)
    abort "no gsub! found in the formula" if pairs.empty?
    pairs.each do |from, literal, dir, rest|
        to = literal || File.join(dir == "etc" ? etc : var, rest)
        abort "the formula replaces #{from.inspect}, which the sample no longer has" unless text.include?(from)
        text = text.gsub(from, to)
    end
    File.write(File.join(etc, "steward/steward.toml"), text)
' "$formula" "$repo/packaging/steward.toml" "$prefix/etc" "$prefix/var" 2>&1 && conf_ok=1 || conf_ok=0
conf=$prefix/etc/steward/steward.toml
if ((conf_ok)) && out=$("$steward" check -c "$conf" 2>&1) && grep -q "log_dir = \"$prefix/var/log/steward\"" "$conf"; then
    pass "the formula's sample config (its inreplace applied) passes steward check: $out"
else
    fail "the formula's sample config: $out"
fi

# The service block, as Homebrew would evaluate it, next to steward's own launchd rendering.
plist=$("$steward" service render --init launchd -c "$conf" --exe "$prefix/opt/steward/bin/steward" 2>&1) ||
    fail "steward service render --init launchd: $plist"
out=$(ruby -rpathname -rrexml/document -e '
    formula, prefix, plist = ARGV
    # Just enough of Homebrew: the class-level DSL records nothing but the service block.
    class Formula
        class << self
            attr_reader :service_block
            %i[desc homepage url sha256 license depends_on test].each { |m| define_method(m) { |*_a, **_k, &_b| nil } }
            def service(&block) = @service_block = block
        end
    end
    # The recorder the block runs on; unknown names (opt_bin, etc, var) go to the formula.
    class Recorder
        attr_reader :v
        def initialize(formula) = (@formula = formula; @v = { "run_type" => :immediate })
        %i[run working_dir keep_alive log_path error_log_path run_type].each do |m|
            define_method(m) { |arg| @v[m.to_s] = arg }
        end
        def method_missing(name, *args) = @formula.send(name, *args)
        def respond_to_missing?(*) = true
    end
    load formula
    f = Steward.allocate
    f.define_singleton_method(:opt_bin) { Pathname("#{prefix}/opt/steward/bin") }
    f.define_singleton_method(:etc) { Pathname("#{prefix}/etc") }
    f.define_singleton_method(:var) { Pathname("#{prefix}/var") }
    r = Recorder.new(f)
    r.instance_exec(&Steward.service_block)
    s = r.v

    # The plist: its top dict as a Ruby hash.
    def value(el)
        case el.name
        when "string" then el.text.to_s
        when "integer" then el.text.to_i
        when "true" then true
        when "false" then false
        when "array" then el.elements.map { |e| value(e) }
        when "dict" then el.elements.each_slice(2).to_h { |k, v| [k.text, value(v)] }
        end
    end
    p = value(REXML::Document.new(plist).root.elements["dict"])
    def check(ok, what) = puts((ok ? "ok " : "bad ") + what)
    check(s["run"].map(&:to_s) == p["ProgramArguments"], "run = ProgramArguments: #{p["ProgramArguments"].join(" ")}")
    check(s["working_dir"].to_s == p["WorkingDirectory"], "working_dir = WorkingDirectory: #{p["WorkingDirectory"]}")
    check(s["keep_alive"] == { successful_exit: false } && p["KeepAlive"] == { "SuccessfulExit" => false },
          "keep_alive successful_exit: false = KeepAlive {SuccessfulExit: false}")
    check(s["log_path"].to_s == p["StandardOutPath"] && s["error_log_path"].to_s == p["StandardErrorPath"],
          "log_path, error_log_path = StandardOutPath, StandardErrorPath: #{p["StandardOutPath"]}")
    check(s["run_type"] == :immediate && p["RunAtLoad"] == true, "run_type immediate (the default) = RunAtLoad")
' "$formula" "$prefix" "$plist" 2>&1)
while IFS= read -r line; do
    case $line in
        ok\ *) pass "service block: ${line#ok }" ;;
        bad\ *) fail "service block: ${line#bad }" ;;
        *) fail "ruby: $line" ;;
    esac
done <<<"$out"

echo "package (homebrew): $passed passed, $failed failed"
[ "$failed" -eq 0 ]
