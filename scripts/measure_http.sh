#!/usr/bin/env bash
# Measure evloop::http's cost per request, pipelined against not, as the OS sees it.
#
# Made for a 2-core Linux box on loopback, like scripts/measure_echo.sh: the
# server (examples/hello_http.rs, one loop) runs pinned to CPU $SERVER_CPU (0);
# examples/loadgen.rs in HTTP mode (`--http /`) runs pinned to CPU $CLIENT_CPU
# (1), with $CONNS keep-alive connections, once with $PIPE_DEPTH requests in
# flight per connection (pipelined) and once with one (not pipelined), and
# reads the server's CPU time at the edges of its measurement window. Runs
# alternate (pipelined, plain, pipelined, ...) and each gets a fresh server,
# so that drift hits both alike. At the end a table gives the medians over the
# rounds of server CPU-µs per request and requests/s, and per server the ratio
# pipelined ÷ plain of the CPU medians (the goal for evloop: at most 0.25).
#
# If `wrk` is installed, each server also gets one `wrk -t1 -c$CONNS` run
# (not pipelined) of $WRK_DURATION seconds, and its requests/s and latency
# lines are printed.
#
# MAY=1 adds may_minihttp (tools/may_hello, a standalone Cargo project, one
# worker) as a second server measured the same way. may_minihttp leaves
# Nagle's algorithm on (it never sets TCP_NODELAY); evloop sets TCP_NODELAY
# by default, and NODELAY=off runs it with Nagle on too, for a comparison of
# like with like.
#
# Usage: scripts/measure_http.sh
# Environment (defaults):
#   ROUNDS=3 CONNS=256 PIPE_DEPTH=16 WARMUP=1 DURATION=5 WRK_DURATION=5
#   MAY=0 NODELAY=on BASE_PORT=7300 SERVER_CPU=0 CLIENT_CPU=1
# Example: ROUNDS=3 WARMUP=0.5 DURATION=2 WRK_DURATION=2 MAY=1 scripts/measure_http.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/common.sh
source scripts/common.sh

ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-256}
PIPE_DEPTH=${PIPE_DEPTH:-16}
WARMUP=${WARMUP:-1}
DURATION=${DURATION:-5}
WRK_DURATION=${WRK_DURATION:-5}
MAY=${MAY:-0}
BASE_PORT=${BASE_PORT:-7300}
SERVER_CPU=${SERVER_CPU:-0}
NODELAY=${NODELAY:-on}
CLIENT_CPU=${CLIENT_CPU:-1}

BIN=target/release/examples
MAY_BIN=tools/may_hello/target/release/may_hello

die() { echo "measure_http: $*" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/measure_http.XXXXXX")
SERVER_PID= # the server this script started and has not stopped

# Stops the server by its PID (see `terminate`).
stop_server() {
    [[ -n $SERVER_PID ]] || return 0
    terminate "$SERVER_PID"
    SERVER_PID=
}

cleanup() {
    stop_server
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server NAME PORT: starts evloop or may on 127.0.0.1:PORT, one thread; sets SERVER_PID.
start_server() {
    local port=$2 log="$WORK/$1.$2.log" i cmd
    case $1 in
        evloop) cmd=("$BIN/hello_http" --addr "127.0.0.1:$port" --threads 1 --nodelay "$NODELAY") ;;
        may) cmd=("$MAY_BIN" --addr "127.0.0.1:$port" --threads 1) ;;
        *) die "unknown server $1" ;;
    esac
    RUST_LOG=warn taskset -c "$SERVER_CPU" "${cmd[@]}" >"$log" 2>&1 &
    SERVER_PID=$! # taskset execs its command, so this is the server
    for ((i = 0; i < 200; i++)); do
        alive "$SERVER_PID" || { cat "$log" >&2; die "$1 exited before listening on port $port"; }
        port_open "$port" && return
        sleep 0.05
    done
    cat "$log" >&2
    die "$1 did not listen on port $port within 10 s"
}

# ---------------------------------------------------------------------------

command -v taskset >/dev/null || die "taskset (util-linux) is needed"
if (($(nproc) < 2)); then
    echo "measure_http: warning: $(nproc) CPU(s); server and load generator will share one" >&2
    CLIENT_CPU=$SERVER_CPU
fi

echo "== cargo build --release --example hello_http --example loadgen" >&2
cargo build --release --example hello_http --example loadgen >&2 || die "build failed"
servers=(evloop)
if [[ $MAY == 1 ]]; then
    echo "== cargo build --release --manifest-path tools/may_hello/Cargo.toml" >&2
    cargo build --release --manifest-path tools/may_hello/Cargo.toml >&2 || die "may_hello build failed"
    servers+=(may)
fi
modes=("pipe$PIPE_DEPTH:$PIPE_DEPTH" "plain:1") # label:depth

run_limit=$(awk -v w="$WARMUP" -v d="$DURATION" 'BEGIN { print int(w + d + 30) }')
echo "== conns=$CONNS depths=$PIPE_DEPTH,1 warmup=${WARMUP}s duration=${DURATION}s rounds=$ROUNDS;" \
    "servers (1 thread) on CPU $SERVER_CPU, loadgen on CPU $CLIENT_CPU" >&2

next_port=$BASE_PORT
for ((round = 1; round <= ROUNDS; round++)); do
    for s in "${servers[@]}"; do
        for m in "${modes[@]}"; do
            label=${m%%:*} depth=${m#*:}
            port=$(free_port "$next_port")
            next_port=$((port + 1))
            start_server "$s" "$port"
            line=$(timeout "$run_limit" taskset -c "$CLIENT_CPU" "$BIN/loadgen" --addr "127.0.0.1:$port" \
                --http / --conns "$CONNS" --depth "$depth" --warmup "$WARMUP" --duration "$DURATION" \
                --pid "$SERVER_PID") || die "loadgen against $s ($label) failed (exit $?)"
            stop_server
            printf 'round %d %-7s %-7s %s\n' "$round" "$s" "$label" "$line"
            echo "$line" >>"$WORK/$s.$label.results"
        done
    done
done

if ((ROUNDS > 0)); then
    echo
    printf '%-7s %-7s %6s %12s %11s %9s %8s %8s %7s\n' server mode rounds cpu_us/req req/s p99_us srv_cpu% cli_cpu% errors
    declare -A cpu
    for s in "${servers[@]}"; do
        for m in "${modes[@]}"; do
            label=${m%%:*}
            med() { while read -r l; do field "$1" "$l"; done <"$WORK/$s.$label.results" | median; }
            cpu[$s.$label]=$(med server_cpu_us_per_msg)
            printf '%-7s %-7s %6d %12s %11s %9s %8s %8s %7s\n' "$s" "$label" "$ROUNDS" "${cpu[$s.$label]}" \
                "$(med msgs_per_s)" "$(med p99_us)" "$(med server_cpu_pct)" "$(med client_cpu_pct)" "$(med errors)"
        done
    done
    for s in "${servers[@]}"; do
        awk -v s="$s" -v d="$PIPE_DEPTH" -v p="${cpu[$s.pipe$PIPE_DEPTH]}" -v q="${cpu[$s.plain]}" 'BEGIN {
            if (p == "NA" || q == "NA" || q + 0 == 0) print s ": ratio pipelined/plain of cpu_us/req medians: NA"
            else printf "%s: ratio pipelined (depth %d) / plain of cpu_us/req medians: %.3f%s\n", s, d, p / q,
                (s == "evloop" ? (p / q <= 0.25 ? " (goal <= 0.25: met)" : " (goal <= 0.25: NOT met)") : "") }'
    done
    echo "(medians over $ROUNDS rounds; srv_cpu% near 100 means the server was the bottleneck," \
        "cli_cpu% near 100 means the load generator was (the server then idles between smaller batches))"
fi

if command -v wrk >/dev/null; then
    for s in "${servers[@]}"; do
        port=$(free_port "$next_port")
        next_port=$((port + 1))
        start_server "$s" "$port"
        out=$(timeout $((WRK_DURATION + 30)) taskset -c "$CLIENT_CPU" \
            wrk -t1 -c"$CONNS" -d"${WRK_DURATION}s" "http://127.0.0.1:$port/") || die "wrk against $s failed"
        stop_server
        echo
        echo "== wrk -t1 -c$CONNS -d${WRK_DURATION}s (not pipelined) against $s:"
        grep -E 'Latency|Req/Sec|requests in|Requests/sec|Socket errors|Non-2xx' <<<"$out" | sed 's/^/   /'
    done
else
    echo "measure_http: wrk not installed, no wrk runs" >&2
fi
