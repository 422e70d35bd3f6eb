#!/usr/bin/env bash
# Fuzz evloop for a bounded time per target, then print one line per target.
#
# Targets (fuzz/fuzz_targets/, built on the crate's `fuzzing` feature):
#   http_request  the HTTP request decoder: parser, limits, pipelining, and
#                 the same requests however the bytes are cut
#   output_queue  the reactor's output buffer under partial writes,
#                 WouldBlock, EINTR and aborts, against a model
# Each runs one libFuzzer job (cargo fuzz builds with AddressSanitizer and
# debug assertions) for FUZZ_SECONDS, growing its corpus in fuzz/corpus/TARGET
# from the seeds in fuzz/seeds/TARGET (plus fuzz/seeds/TARGET.dict if any).
# A crash, leak, timeout or out-of-memory stops that target, leaves the input
# in fuzz/artifacts/TARGET/ and makes the script exit 1 after the others ran;
# the full libFuzzer output is in fuzz/artifacts/TARGET/last-run.log.
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`);
# exits 2 without them. Not a CI step: CI has no nightly.
#
# Usage: scripts/fuzz.sh [TARGET...]          (default: every target)
# Environment (defaults): FUZZ_SECONDS=60   time per target, build excluded
# Examples: FUZZ_SECONDS=300 scripts/fuzz.sh
#           FUZZ_SECONDS=10 scripts/fuzz.sh output_queue
# Reproduce a crash: cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
if (($# > 0)); then TARGETS=("$@"); else TARGETS=(http_request output_queue); fi

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: cargo fuzz is missing; install it with 'cargo install cargo-fuzz'" \
        "(and the nightly toolchain: 'rustup toolchain install nightly')" >&2
    exit 2
fi

# stat NAME LINE: the value after "NAME: " in a libFuzzer status line.
stat() { sed -n "s|.* $1: \([^ ]*\).*|\1|p" <<<"$2"; }

# Fuzzes target $1; prints its summary line; fails if libFuzzer found something.
fuzz_one() {
    local target=$1 corpus=fuzz/corpus/$1 seeds=fuzz/seeds/$1 artifacts=fuzz/artifacts/$1
    mkdir -p "$corpus" "$artifacts"
    local log=$artifacts/last-run.log extra=()
    [[ -d $seeds ]] && extra+=("$seeds")
    local flags=(-max_total_time="$FUZZ_SECONDS" -timeout=10 -print_final_stats=1)
    [[ -f $seeds.dict ]] && flags+=(-dict="$seeds.dict")
    cargo +nightly fuzz build "$target" >"$log" 2>&1 || {
        echo "$target: build failed, see $log"
        return 1
    }
    local status=0
    # The hard limit only matters if libFuzzer hangs past its own.
    timeout --signal=INT $((FUZZ_SECONDS + 120)) \
        cargo +nightly fuzz run "$target" "$corpus" "${extra[@]}" -- "${flags[@]}" >>"$log" 2>&1 || status=$?
    local last runs found
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)
    runs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
    # libFuzzer stops at its first finding and writes it out as a test unit.
    found=$(grep -c 'Test unit written to' "$log" || true)
    printf '%s: %s runs in %ss (%s exec/s), cov %s, features %s, corpus %s, crashes %s\n' \
        "$target" "${runs:-0}" "$FUZZ_SECONDS" "$(stat exec/s "$last")" "$(stat cov "$last")" \
        "$(stat ft "$last")" "$(stat corp "$last")" "$found"
    if ((status != 0)); then
        echo "    libFuzzer exited with $status; see $log"
        grep -m 1 -A 3 -E 'panicked|==ERROR|deadly signal|ALARM' "$log" | sed 's/^/    /' || true
        grep -m 1 'Test unit written to' "$log" | sed 's/^.*Test unit written to /    input: /' || true
        return 1
    fi
}

failed=0
for target in "${TARGETS[@]}"; do
    fuzz_one "$target" || failed=1
done
exit "$failed"
