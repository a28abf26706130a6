#!/usr/bin/env bash
# Fuzzes steward's input handling with libFuzzer (docs/fuzzing.md): the config parser and
# interpolation, the API, the line framer, rotation decisions and the alert `when` grammar.
# One fuzzing process at a time.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]   fuzz each target (default: all) for SECONDS (300)
#   scripts/fuzz.sh --corpus-only           run the kept inputs through the checks, no fuzzer
#
# Builds with stable Rust: libFuzzer comes from the libfuzzer-sys crate (it needs a C++
# compiler) and coverage from LLVM's sanitizer-coverage pass, which stable rustc runs.
# FUZZ_ASAN=1 adds AddressSanitizer, which needs nightly (`rustup toolchain install
# nightly`). cargo-fuzz is not needed; `cargo +nightly fuzz run TARGET` works on fuzz/ too.
#
# New inputs found go to fuzz/target/corpus/TARGET (fuzz/corpus/ is only read); a crash is
# saved in fuzz/artifacts/TARGET/ and makes the script fail, after the other targets ran.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

all_targets=(config interp alert_when framer rotation api ship)

if [[ ${1:-} == --corpus-only ]]; then
    exec cargo test --manifest-path fuzz/Cargo.toml --locked --no-default-features --release
fi

seconds=${1:-300}
shift || true
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=("${all_targets[@]}")
if ! [[ $seconds =~ ^[0-9]+$ ]]; then
    echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...] | --corpus-only (targets: ${all_targets[*]})" >&2
    exit 2
fi

host=$(rustc -vV | sed -n 's/^host: //p')
# What cargo-fuzz passes: coverage counters and comparison tracing for libFuzzer, checks
# on as in tests (an overflow is a finding), and `cfg(fuzzing)`.
flags=(
    -Cpasses=sancov-module
    -Cllvm-args=-sanitizer-coverage-level=4
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
    -Cllvm-args=-sanitizer-coverage-pc-table
    -Cllvm-args=-sanitizer-coverage-trace-compares
    --cfg fuzzing
    -Cdebug-assertions
    -Coverflow-checks
)
toolchain=()
if [[ ${FUZZ_ASAN:-0} == 1 ]]; then
    toolchain=(+nightly)
    flags+=(-Zsanitizer=address)
fi
# --target: the flags then apply to the targets only, not to build scripts and proc macros.
RUSTFLAGS="${flags[*]}" cargo "${toolchain[@]}" build --manifest-path fuzz/Cargo.toml --locked --release \
    --target "$host" --bins
bin=fuzz/target/$host/release

# The API target's supervisor writes its state and logs in TMPDIR.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

failed=()
summary=()
for t in "${targets[@]}"; do
    [[ -x $bin/$t ]] || { echo "no fuzz target $t (targets: ${all_targets[*]})" >&2; exit 2; }
    mkdir -p "fuzz/target/corpus/$t" "fuzz/artifacts/$t"
    dirs=("fuzz/target/corpus/$t" "fuzz/corpus/$t")
    [[ -d fuzz/regressions/$t ]] && dirs+=("fuzz/regressions/$t")
    log=fuzz/target/$t.log
    echo "[fuzz] $t for ${seconds}s"
    status=0
    TMPDIR=$scratch "$bin/$t" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="fuzz/artifacts/$t/" "${dirs[@]}" >"$log" 2>&1 || status=$?
    # The last status line: "#RUNS DONE cov: N ft: N corp: N/SIZE ...".
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    line=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$line")
    corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$line")
    if [[ $status -ne 0 ]]; then
        failed+=("$t")
        grep -E -A30 '^(==[0-9]+== ?ERROR|thread .* panicked|.*deadly signal|.*Test unit written)' "$log" | head -60 >&2 || tail -40 "$log" >&2
        summary+=("$(printf '%-11s FAILED (exit %d) after %s runs; log: %s' "$t" "$status" "${runs:-?}" "$log")")
    else
        summary+=("$(printf '%-11s %10s runs  cov %5s  corpus %5s' "$t" "${runs:-?}" "${cov:-?}" "${corp:-?}")")
    fi
done

printf '\n[fuzz] %ss per target\n' "$seconds"
printf '  %s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "[fuzz] failed: ${failed[*]}; the inputs are in fuzz/artifacts/" >&2
    exit 1
fi
