#!/usr/bin/env bash
# The session's model-based property test at depth: random sequences of
# peer, socket, timer and handler events against the connection's
# guarantees (src/session/tests.rs). `cargo test` runs 256 cases; this runs
# CASES of them in release and stops by itself.
#
# Usage: scripts/session_model.sh
# Environment (defaults): CASES=100000
set -euo pipefail
cd "$(dirname "$0")/.."

cases=${CASES:-100000}
start=$(date +%s)
status=0
RUST_BACKTRACE=0 PROPTEST_CASES=$cases cargo test --release --lib -- session::tests --test-threads 2 \
    >target/session-model.log 2>&1 || status=$?
# The probe handler's deliberate panics are noise; show the rest.
grep -v -e 'probe panics on purpose' -e "^thread '.*' panicked at src/session/tests.rs:[0-9]*:[0-9]*:$" \
    target/session-model.log | grep -E 'test result|panicked|minimal failing|assert' || true
echo "session model: $cases cases, $(( $(date +%s) - start )) s, exit $status"
exit "$status"
