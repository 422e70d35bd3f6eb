#!/usr/bin/env bash
# Run evloop's tests under Miri and AddressSanitizer.
#
# 1. Miri: the unit tests of the pure-logic modules (tokens, timers, the
#    output queue, the HTTP decoder and Request), property tests included
#    (at 4 cases each: Miri runs a few thousand times slower). Miri checks
#    for undefined behaviour: out-of-bounds or uninitialised reads (the
#    decoder hands httparse uninitialised header slots), aliasing, leaks.
#    The rest of the crate does socket and process system calls that Miri
#    cannot run. Isolation is off only so that proptest may look up its
#    regression files.
# 2. AddressSanitizer: the whole test suite (unit, integration and doc
#    tests, debug build), which covers the reactor's own unsafe code (reads
#    into uninitialised buffer space) against real sockets; leak detection
#    on. Tests that bound resident memory run but skip that one assertion
#    (EVLOOP_SANITIZER=address tells them): ASan keeps freed memory in
#    quarantine and adds shadow memory, so RSS under it says nothing about
#    the code (those bounds fail by 5-250 MiB).
#
# Needs the nightly toolchain with Miri (`rustup +nightly component add miri
# rust-src`); exits 2 without it. Builds go to target/miri and target/asan,
# away from the main build. Not a CI step: CI has no nightly.
#
# Usage: scripts/sanitize.sh [miri|asan]...     (default: both)
# Environment (defaults):
#   MIRI_FILTERS="reactor::token timer:: buf:: http::decode http::request"
#   ASAN_TESTS=""          extra `cargo test` arguments, e.g. "--test http"
#   ASAN_SKIP=""           name filters of tests not to run under ASan
#   MIRI_TIMEOUT=1800 ASAN_TIMEOUT=1800   seconds per stage, builds included
# Examples: scripts/sanitize.sh miri
#           ASAN_TESTS="--lib" scripts/sanitize.sh asan
set -euo pipefail
cd "$(dirname "$0")/.."

MIRI_FILTERS=${MIRI_FILTERS:-"reactor::token timer:: buf:: http::decode http::request"}
ASAN_TESTS=${ASAN_TESTS:-}
ASAN_SKIP=${ASAN_SKIP:-}
MIRI_TIMEOUT=${MIRI_TIMEOUT:-1800}
ASAN_TIMEOUT=${ASAN_TIMEOUT:-1800}
if (($# > 0)); then STAGES=("$@"); else STAGES=(miri asan); fi
HOST=$(rustc +nightly -vV | sed -n 's/^host: //p')

if ! cargo +nightly miri --version >/dev/null 2>&1; then
    echo "sanitize.sh: needs nightly with Miri: rustup toolchain install nightly" \
        "&& rustup +nightly component add miri rust-src" >&2
    exit 2
fi

# Runs stage $1 ($2 is its time limit, the rest its command); prints a
# one-line summary with the test counts and time, and the log on failure.
stage() {
    local name=$1 limit=$2 log=target/sanitize-$1.log status=0 start=$SECONDS
    shift 2
    mkdir -p target
    timeout --signal=INT "$limit" "$@" >"$log" 2>&1 || status=$?
    local passed failed
    passed=$(sed -n 's/^test result: .* \([0-9]*\) passed.*/\1/p' "$log" | paste -sd+ | bc)
    failed=$(sed -n 's/^test result: .* \([0-9]*\) failed.*/\1/p' "$log" | paste -sd+ | bc)
    printf '%s: %s passed, %s failed, %ss%s\n' "$name" "${passed:-0}" "${failed:-0}" \
        $((SECONDS - start)) "$( ((status == 124)) && echo ' (timed out)')"
    if ((status != 0)); then
        grep -E '^(error|test .*FAILED|==[0-9]+==ERROR|SUMMARY)|panicked' "$log" | head -n 20 | sed 's/^/    /'
        echo "    exit $status; full output in $log"
        return 1
    fi
}

miri() {
    # shellcheck disable=SC2086 # the filters are separate words
    CARGO_TARGET_DIR=target/miri MIRIFLAGS="-Zmiri-disable-isolation" \
        stage miri "$MIRI_TIMEOUT" cargo +nightly miri test --lib -- $MIRI_FILTERS
}

asan() {
    local skips=() name
    for name in $ASAN_SKIP; do skips+=(--skip "$name"); done
    # --target keeps the sanitizer out of build scripts and proc macros.
    # shellcheck disable=SC2086 # the extra arguments are separate words
    CARGO_TARGET_DIR=target/asan RUSTFLAGS="-Zsanitizer=address" RUSTDOCFLAGS="-Zsanitizer=address" \
        ASAN_OPTIONS="detect_leaks=1" EVLOOP_SANITIZER=address \
        stage asan "$ASAN_TIMEOUT" cargo +nightly test --no-fail-fast --target "$HOST" $ASAN_TESTS \
        -- "${skips[@]}"
}

failed=0
for s in "${STAGES[@]}"; do
    case $s in
        miri | asan) "$s" || failed=1 ;;
        *) echo "sanitize.sh: unknown stage $s (miri or asan)" >&2 && exit 2 ;;
    esac
done
exit "$failed"
