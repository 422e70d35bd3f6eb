#!/usr/bin/env bash
# Restarts under load: each server restarts $RESTARTS times by handover
# (`--handover PATH`: the new process takes the listening socket over, the
# old one stops accepting and drains) while loadgen drives a fixed rate of
# requests over kept-alive connections.
#
# echo_server: its connections cannot be told to leave (an echo has no
# requests to end), so each is replaced by a new connection every
# $RECONNECT requests (`loadgen --reconnect`), and the old process drains as
# they go. hello_http: the connections are kept alive for as long as the
# server keeps them; at the drain the old process closes each one once it
# has answered what it received (the last answer says `Connection: close`),
# and loadgen opens a new one, to the new process, sending again whatever
# the closed one left unanswered (`resent`).
#
# loadgen checks every byte, and stops at the first connection refused,
# reset or closed by the server outside those rules, or byte wrong, naming
# it (exit 1); at the end it counts connections whose oldest request waited
# over a second (lost). Printed per server:
#
#   echo_server restarts=5 load=ok connect_errors=0 resets=0 closed=0 corrupted=0 stalled=0
#     msgs=.. reconnects=.. p99_us=.. p999_us=.. max_us=.. handover_ms=max,..
#   hello_http restarts=5 load=ok connect_errors=0 resets=0 closed=0 corrupted=0 stalled=0
#     msgs=.. reconnects=.. resent=.. p99_us=.. ..
#
# max_us is the longest latency of the run, handovers included (latency runs
# from each request's due time, so a stall is charged in full); handover_ms
# is how long each new process took from its start until the old one had
# exited (start, takeover, drain).
#
# Usage: scripts/restart_under_load.sh [SERVER...]  (default: echo_server hello_http)
# Environment: RESTARTS=5 RATE=2000 (requests/s) CONNS=20 RECONNECT=20 (echo_server)
#   INTERVAL=1.5 (seconds between restarts) THREADS=2
#   BIN=target/release/examples NO_BUILD= (set: use BIN as it is)
# Takes RESTARTS x INTERVAL + 3 seconds per server, plus the release build.
# Exits 1 if any run lost anything. Everything stays on 127.0.0.1; every
# process it starts is ended by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

RESTARTS=${RESTARTS:-5} RATE=${RATE:-2000} CONNS=${CONNS:-20} RECONNECT=${RECONNECT:-20}
INTERVAL=${INTERVAL:-1.5} THREADS=${THREADS:-2} BIN=${BIN:-target/release/examples}
SERVERS=("$@")
((${#SERVERS[@]})) || SERVERS=(echo_server hello_http)

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[[ -n ${NO_BUILD:-} ]] || cargo build --release --quiet --example echo_server --example hello_http --example loadgen

tmp=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do alive "$pid" && terminate "$pid"; done
    rm -rf "$tmp"
}
trap cleanup EXIT

# start SERVER PORT: one instance, in the background; its PID in $started.
start() {
    "$BIN/$1" --addr "127.0.0.1:$2" --threads "$THREADS" --handover "$tmp/$1.sock" 2>>"$tmp/$1.log" &
    started=$!
    pids+=("$started")
}

# wait_exit PID SECONDS: waits for a process to end; fails after SECONDS.
wait_exit() {
    local i
    for ((i = 0; i < $2 * 100; i++)); do
        alive "$1" || { wait "$1" 2>/dev/null || true; return 0; }
        sleep 0.01
    done
    return 1
}

now_ms() { date +%s%3N; }

failed=0
for server in "${SERVERS[@]}"; do
    port=$(free_port 17300)
    start "$server" "$port"
    current=$started
    for ((i = 0; i < 500; i++)); do port_open "$port" && break; sleep 0.01; done
    extra=(--reconnect "$RECONNECT")
    [[ $server == hello_http ]] && extra=(--http /)
    duration=$(awk -v r="$RESTARTS" -v i="$INTERVAL" 'BEGIN { print r * i + 1.5 }')
    "$BIN/loadgen" --addr "127.0.0.1:$port" --conns "$CONNS" --rate "$RATE" \
        --warmup 0 --duration "$duration" "${extra[@]}" >"$tmp/load.out" 2>"$tmp/load.err" &
    load=$!
    pids+=("$load")
    handovers=()
    for ((r = 1; r <= RESTARTS; r++)); do
        sleep "$INTERVAL"
        old=$current
        t0=$(now_ms)
        start "$server" "$port"
        current=$started
        if ! wait_exit "$old" 20; then
            echo "$server: restart $r: the old process $old did not exit within 20 s" >&2
            failed=1
        fi
        handovers+=($(($(now_ms) - t0)))
    done
    load_ok=ok
    wait "$load" || load_ok=failed
    out=$(cat "$tmp/load.out") err=$(cat "$tmp/load.err")
    count() { grep -ci "$1" <<<"$err" || true; }
    connect_errors=$(count 'connect ')
    resets=$(count 'reset')
    closed=$(count 'closed by the server')
    corrupted=$(count 'mismatch\|never sent\|to no request')
    stalled=$(field stalled "$out")
    max_handover=$(printf '%s\n' "${handovers[@]}" | sort -n | tail -1)
    echo "$server restarts=$RESTARTS load=$load_ok connect_errors=$connect_errors resets=$resets" \
        "closed=$closed corrupted=$corrupted stalled=${stalled:-NA}"
    resent=$(field resent "$out")
    echo "  msgs=$(field msgs "$out") reconnects=$(field reconnects "$out")${resent:+ resent=$resent}" \
        "target_rate=$RATE" \
        "p99_us=$(field p99_us "$out") p999_us=$(field p999_us "$out") max_us=$(field max_us "$out")" \
        "handover_ms=max:$max_handover,all:$(IFS=,; echo "${handovers[*]}")"
    [[ -n $err ]] && echo "  loadgen: $err"
    if [[ $load_ok != ok || ${stalled:-1} != 0 ]]; then failed=1; fi
    terminate "$current"
done
exit "$failed"
