#!/usr/bin/env bash
# The reliability scenarios at soak size, in release, with their figures.
#
# The same tests that CI runs in a bounded size (`cargo test`) run here with
# EVLOOP_SOAK=1, which scales them up (see `scaled` in tests/common/mod.rs):
#
#   emfile       fd floods of 30x the child server's limit, held 10 s, on every
#                server kind (multi-loop ReusePort, round-robin acceptor, the
#                thread baseline with and without a connection cap)
#   churn        100,000 connect/send/close cycles across two loops
#   under_load   handler panics among 200 busy clients; graceful shutdown of
#                1,000 clients mid-transfer (about 3 GB accepted for writing)
#   slow_peers   1,000 slow readers, 1,000 slowloris clients against a 6 s
#                head timeout, idle timeouts
#   resets       5,000 random aborts mid-request and mid-response
#
# Each test binary runs alone (one test at a time) under a time limit, so the
# script stops by itself; it prints every FIGURE line the tests report and
# writes them to $OUT (default target/soak-figures.txt). It exits nonzero if
# any scenario failed. All traffic stays on 127.0.0.1.
#
# Usage: scripts/soak.sh [TEST...]      (default: all of the above)
# Environment: LIMIT=900 (seconds per test binary), OUT=target/soak-figures.txt
# Takes about 3 minutes on a 2-core machine, plus the release build.
set -euo pipefail
cd "$(dirname "$0")/.."

LIMIT=${LIMIT:-900}
OUT=${OUT:-target/soak-figures.txt}
TESTS=("$@")
((${#TESTS[@]})) || TESTS=(emfile churn under_load slow_peers resets)

# 1,000 clients and their server sockets need a few thousand fds.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

cargo build --release --tests --quiet
mkdir -p "$(dirname "$OUT")"
: >"$OUT"
failed=()
for test in "${TESTS[@]}"; do
    echo "== $test (soak size, release)"
    log=$(mktemp "${TMPDIR:-/tmp}/soak.$test.XXXXXX")
    start=$SECONDS
    if EVLOOP_SOAK=1 timeout "$LIMIT" cargo test --release --quiet --test "$test" -- \
        --nocapture --test-threads=1 >"$log" 2>&1; then
        status=ok
    else
        status="FAILED (exit $?)"
        failed+=("$test")
    fi
    # A FIGURE line may follow the harness's "test name ... " on one line.
    grep -o 'FIGURE .*' "$log" | sed 's/^FIGURE //' | tee -a "$OUT" || true
    echo "== $test: $status in $((SECONDS - start)) s"
    if [[ $status != ok ]]; then
        tail -40 "$log"
    fi
    rm -f "$log"
done
echo "figures: $OUT"
if ((${#failed[@]})); then
    echo "failed: ${failed[*]}" >&2
    exit 1
fi
