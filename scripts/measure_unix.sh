#!/usr/bin/env bash
# Measure an evloop echo server's CPU per echo over a Unix domain socket
# against TCP loopback, in the same run.
#
# The same binary (examples/echo_server.rs, one loop: `--threads 1`) serves
# once with `--addr 127.0.0.1:PORT` and once with `--unix PATH`, pinned to
# CPU $SERVER_CPU (0); examples/loadgen.rs, pinned to CPU $CLIENT_CPU (1),
# drives it closed-loop with the same load over the matching transport and
# reads the server's CPU time and context switches from /proc at the edges
# of its window. Rounds alternate (tcp unix tcp unix ...) so that drift hits
# both alike; the table gives per transport the medians over the rounds, and
# the unix/tcp ratio of the CPU medians.
#
# Bounded: ROUNDS x 2 runs of WARMUP + DURATION seconds (about 80 s with the
# defaults, plus the build).
#
# Usage: scripts/measure_unix.sh
# Environment (defaults):
#   ROUNDS=5 CONNS=100 SIZE=64 DEPTH=1 WARMUP=1 DURATION=5
#   SERVER_ARGS="--threads 1" (say "--model threads" for the baseline)
#   BASE_PORT=7300 SERVER_CPU=0 CLIENT_CPU=1
# Example: ROUNDS=3 DURATION=2 SIZE=1024 scripts/measure_unix.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/common.sh
source scripts/common.sh

ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-100}
SIZE=${SIZE:-64}
DEPTH=${DEPTH:-1}
WARMUP=${WARMUP:-1}
DURATION=${DURATION:-5}
SERVER_ARGS=${SERVER_ARGS:-"--threads 1"}
BASE_PORT=${BASE_PORT:-7300}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

BIN=${CARGO_TARGET_DIR:-target}/release/examples
read -r -a server_args <<<"$SERVER_ARGS"

die() { echo "measure_unix: $*" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/measure_unix.XXXXXX")
SERVER_PID= # the server this script started and has not stopped

cleanup() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null && echo "measure_unix: killed leftover server $SERVER_PID" >&2
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server TRANSPORT: starts echo_server on TCP (a free port) or on a
# Unix socket in $WORK; sets SERVER_PID and TARGET (loadgen's arguments).
start_server() {
    local log="$WORK/server.$1.log" i where
    if [[ $1 == tcp ]]; then
        port=$(free_port "$next_port")
        next_port=$((port + 1))
        where=(--addr "127.0.0.1:$port")
    else
        where=(--unix "$WORK/echo.sock")
    fi
    TARGET=("${where[@]}")
    taskset -c "$SERVER_CPU" "$BIN/echo_server" "${where[@]}" "${server_args[@]}" >"$log" 2>&1 &
    SERVER_PID=$!
    for ((i = 0; i < 200; i++)); do
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; die "echo_server ($1) exited before listening"; }
        if [[ $1 == tcp ]]; then port_open "$port" && return; else [[ -S $WORK/echo.sock ]] && return; fi
        sleep 0.05
    done
    cat "$log" >&2
    die "echo_server ($1) did not listen within 10 s"
}

command -v taskset >/dev/null || die "taskset (util-linux) is needed"
if (($(nproc) < 2)); then
    echo "measure_unix: warning: $(nproc) CPU(s); server and load generator will share one" >&2
    CLIENT_CPU=$SERVER_CPU
fi
echo "== cargo build --release --example echo_server --example loadgen" >&2
cargo build --release --example echo_server --example loadgen >&2 || die "build failed"

run_limit=$(awk -v w="$WARMUP" -v d="$DURATION" 'BEGIN { print int(w + d + 30) }')
echo "== echo_server $SERVER_ARGS; conns=$CONNS size=$SIZE depth=$DEPTH warmup=${WARMUP}s" \
    "duration=${DURATION}s rounds=$ROUNDS; server on CPU $SERVER_CPU, loadgen on CPU $CLIENT_CPU" >&2
next_port=$BASE_PORT
for ((round = 1; round <= ROUNDS; round++)); do
    for t in tcp unix; do
        start_server "$t"
        line=$(timeout "$run_limit" taskset -c "$CLIENT_CPU" "$BIN/loadgen" "${TARGET[@]}" \
            --conns "$CONNS" --size "$SIZE" --depth "$DEPTH" --warmup "$WARMUP" --duration "$DURATION" \
            --pid "$SERVER_PID") || die "loadgen over $t failed (exit $?)"
        terminate "$SERVER_PID"
        SERVER_PID=
        [[ ! -e $WORK/echo.sock ]] || die "echo_server left its socket file behind"
        printf 'round %d %-5s %s\n' "$round" "$t" "$line"
        echo "$line" >>"$WORK/$t.results"
    done
done

echo
printf '%-9s %6s %11s %8s %11s %8s %9s %9s\n' transport rounds cpu_us/msg cs/1k msgs/s p99_us srv_cpu% cli_cpu%
declare -A cpu
for t in tcp unix; do
    med() { while read -r l; do field "$1" "$l"; done <"$WORK/$t.results" | median; }
    cpu[$t]=$(med server_cpu_us_per_msg)
    printf '%-9s %6d %11s %8s %11s %8s %9s %9s\n' "$t" "$ROUNDS" "${cpu[$t]}" "$(med server_cs_per_1k)" \
        "$(med msgs_per_s)" "$(med p99_us)" "$(med server_cpu_pct)" "$(med client_cpu_pct)"
done
awk -v x="${cpu[unix]}" -v y="${cpu[tcp]}" 'BEGIN {
    if (x == "NA" || y == "NA" || y + 0 == 0) print "ratio unix/tcp of cpu_us/msg medians: NA"
    else printf "ratio unix/tcp of cpu_us/msg medians: %.3f\n", x / y }'
echo "(medians over $ROUNDS rounds; server CPU per echo includes the kernel's work in its system calls)"
