#!/usr/bin/env bash
# User-space instructions per pipelined HTTP request, with valgrind's
# callgrind: scripts/callgrind_echo.sh run on HTTP servers instead of echo
# servers. Each server (one loop or worker) answers `Hello world!` to
# loadgen's `GET /`, $CONNS keep-alive connections, $DEPTH requests in
# flight per connection, for exactly N and then 3N requests:
#
#     instructions per request = (Ir(3N) - Ir(N)) / 2N
#
# By default it measures evloop's hello_http against may_minihttp
# (tools/may_hello, built here first with its own Cargo project) the same
# way, and lists where hello_http's instructions go. Read the caveats in
# scripts/callgrind_echo.sh: compare the servers with one another.
#
# Usage: scripts/callgrind_http.sh
# Environment (defaults):
#   N=20000 CONNS=256 DEPTH=16 TOP=15
#   SERVERS="hello_http:--threads,1 tools/may_hello/target/release/may_hello:--threads,1"
#   (and everything scripts/callgrind_echo.sh reads)
# Example: N=5000 SERVERS=hello_http:--threads,1 scripts/callgrind_http.sh
set -euo pipefail
cd "$(dirname "$0")/.."

MAY=tools/may_hello/target/release/may_hello
export SERVERS=${SERVERS:-"hello_http:--threads,1 $MAY:--threads,1"}
export CONNS=${CONNS:-256}
export DEPTH=${DEPTH:-16}
export LOAD="--http / --depth $DEPTH"
export UNIT=request
export PROFILE=${PROFILE:-hello_http}

if [[ " $SERVERS " == *" $MAY"* ]]; then
    echo "== cargo build --release --manifest-path tools/may_hello/Cargo.toml" >&2
    CARGO_TARGET_DIR=tools/may_hello/target cargo build --release --manifest-path tools/may_hello/Cargo.toml >&2 ||
        { echo "callgrind_http: may_hello did not build" >&2; exit 1; }
fi
exec scripts/callgrind_echo.sh
