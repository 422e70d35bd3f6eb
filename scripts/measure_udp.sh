#!/usr/bin/env bash
# Measure UDP echo servers' cost per datagram, as the OS sees it, side by side.
#
# The UDP counterpart of scripts/measure_echo.sh, made for a 2-core Linux
# box on loopback: each server runs pinned to CPU $SERVER_CPU (0),
# `loadgen --udp` pinned to CPU $CLIENT_CPU (1) sends it $SIZE-byte
# datagrams from $SOCKS sockets at a fixed total $RATE per second, checks
# every echo, counts the lost ones, and reads the server's CPU time from
# /proc at the edges of its window. Rounds alternate between the servers
# (A B A B ...); at the end a table gives per server the medians over the
# rounds, and the A/B ratio of the CPU medians. An echo is two datagrams at
# the server (one in, one out): cpu_us/echo is per datagram received.
#
# Servers that log evloop's UDP counters when stopped (udp_echo does) also
# get their system calls per datagram (recvmmsg + sendmmsg + epoll_wait,
# over datagrams in and out) from those counters, every round. STRACE=1
# adds, per server, one run under `strace -c -f -p PID` for $STRACE_SECS
# seconds of load, which counts every system call of any server (ptrace
# slows it several times, so it batches more than at full speed: compare
# the counts, not the times).
#
# A server is an example name, optionally with arguments after a ':',
# commas for spaces, as in measure_echo.sh: "udp_echo:--threads,1".
#
# Usage: scripts/measure_udp.sh
# Environment (defaults):
#   SERVERS="udp_echo:--threads,1 tokio_udp_echo"   servers (each takes --addr ADDR)
#   ROUNDS=3 SOCKS=50 SIZE=64 RATE=50000 WARMUP=1 DURATION=5
#   STRACE=0 STRACE_SECS=3 BASE_PORT=7400 SERVER_CPU=0 CLIENT_CPU=1
#   BIN=target/release/examples NO_BUILD= (set: use the binaries in BIN as they are)
# Example: ROUNDS=1 DURATION=2 STRACE=1 scripts/measure_udp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/common.sh
source scripts/common.sh

SERVERS=${SERVERS:-"udp_echo:--threads,1 tokio_udp_echo"}
ROUNDS=${ROUNDS:-3}
SOCKS=${SOCKS:-50}
SIZE=${SIZE:-64}
RATE=${RATE:-50000}
WARMUP=${WARMUP:-1}
DURATION=${DURATION:-5}
STRACE=${STRACE:-0}
STRACE_SECS=${STRACE_SECS:-3}
BASE_PORT=${BASE_PORT:-7400}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

BIN=${BIN:-target/release/examples}
read -r -a servers <<<"$SERVERS"
((${#servers[@]} > 0)) || { echo "measure_udp: SERVERS is empty" >&2; exit 2; }

die() { echo "measure_udp: $*" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/measure_udp.XXXXXX")

cleanup() {
    kill_leftovers
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Whether a UDP socket is bound to port $1 (any address), from /proc/net/udp.
udp_bound() {
    local hex
    hex=$(printf ':%04X ' "$1")
    grep -q -- "$hex" /proc/net/udp /proc/net/udp6 2>/dev/null
}

# First port at or above $1 that no UDP socket is bound to.
free_udp_port() {
    local port=$1
    while udp_bound "$port"; do port=$((port + 1)); done
    echo "$port"
}

# start_server SERVER PORT: sets SERVER_PID and SERVER_LOG.
start_server() {
    local name port=$2 i extra=()
    name=$(bin_of "$1")
    SERVER_LOG="$WORK/$(file_of "$1").$2.log"
    mapfile -t extra < <(args_of "$1")
    taskset -c "$SERVER_CPU" "$BIN/$name" --addr "127.0.0.1:$port" "${extra[@]}" >"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    LIVE+=("$SERVER_PID")
    for ((i = 0; i < 200; i++)); do
        alive "$SERVER_PID" || { cat "$SERVER_LOG" >&2; die "$name exited before binding port $port"; }
        udp_bound "$port" && return
        sleep 0.05
    done
    cat "$SERVER_LOG" >&2
    die "$name did not bind port $port within 10 s"
}

# The system calls per datagram in evloop's counters, logged when stopped; NA if none.
logged_syscalls() {
    sed -n 's/.*system calls: .*(\([0-9.]*\) per datagram).*/\1/p' "$1" | tail -1 | grep . || echo NA
}

# ---------------------------------------------------------------------------

command -v taskset >/dev/null || die "taskset (util-linux) is needed"
if (($(nproc) < 2)); then
    echo "measure_udp: warning: $(nproc) CPU(s); server and load generator will share one" >&2
    CLIENT_CPU=$SERVER_CPU
fi
if [[ $STRACE == 1 ]] && ! command -v strace >/dev/null; then
    [[ $(id -u) == 0 ]] || die "STRACE=1 needs strace; install it (not root, so not trying)"
    apt-get install -y strace >/dev/null || { apt-get update >/dev/null && apt-get install -y strace >/dev/null; } ||
        die "could not install strace"
fi

build_args=(--example loadgen)
for s in "${servers[@]}"; do
    b=$(bin_of "$s")
    [[ -f examples/$b.rs && " ${build_args[*]} " != *" $b "* ]] && build_args+=(--example "$b")
done
if [[ -z ${NO_BUILD:-} ]]; then
    echo "== cargo build --release ${build_args[*]}" >&2
    cargo build --release "${build_args[@]}" >&2 || die "build failed"
fi

run_limit=$(awk -v w="$WARMUP" -v d="$DURATION" 'BEGIN { print int(w + d + 30) }')
echo "== socks=$SOCKS size=$SIZE rate=$RATE/s warmup=${WARMUP}s duration=${DURATION}s rounds=$ROUNDS;" \
    "servers on CPU $SERVER_CPU, loadgen on CPU $CLIENT_CPU" >&2

# load PORT SECS [extra loadgen args...]: one loadgen --udp run; prints its line.
load() {
    timeout "$run_limit" taskset -c "$CLIENT_CPU" "$BIN/loadgen" --udp --addr "127.0.0.1:$1" \
        --conns "$SOCKS" --size "$SIZE" --rate "$RATE" --warmup "$WARMUP" --duration "$2" "${@:3}"
}

next_port=$BASE_PORT
for ((round = 1; round <= ROUNDS; round++)); do
    for s in "${servers[@]}"; do
        port=$(free_udp_port "$next_port")
        next_port=$((port + 1))
        start_server "$s" "$port"
        line=$(load "$port" "$DURATION" --pid "$SERVER_PID") || die "loadgen against $s failed (exit $?)"
        stop_pid "$SERVER_PID"
        line+=" syscalls_per_datagram=$(logged_syscalls "$SERVER_LOG")"
        printf 'round %d %-22s %s\n' "$round" "$s" "$line"
        echo "$line" >>"$WORK/$(file_of "$s").results"
    done
done

if ((ROUNDS > 0)); then
    echo
    w=22
    for s in "${servers[@]}"; do ((${#s} > w)) && w=${#s}; done
    printf '%-*s %6s %12s %11s %8s %9s %8s %8s %12s\n' "$w" server rounds cpu_us/echo echoes/s loss% p99_us \
        srv_cpu% cli_cpu% syscalls/dgram
    declare -A cpu_median
    for s in "${servers[@]}"; do
        med() { while read -r l; do field "$1" "$l"; done <"$WORK/$(file_of "$s").results" | median; }
        cpu_median[$s]=$(med server_cpu_us_per_msg)
        printf '%-*s %6d %12s %11s %8s %9s %8s %8s %12s\n' "$w" "$s" "$ROUNDS" "${cpu_median[$s]}" \
            "$(med msgs_per_s)" "$(med loss_pct)" "$(med p99_us)" "$(med server_cpu_pct)" \
            "$(med client_cpu_pct)" "$(med syscalls_per_datagram)"
    done
    if ((${#servers[@]} >= 2)); then
        a=${servers[0]} b=${servers[1]}
        awk -v a="$a" -v b="$b" -v x="${cpu_median[$a]}" -v y="${cpu_median[$b]}" 'BEGIN {
            if (x == "NA" || y == "NA" || y + 0 == 0) print "ratio " a "/" b " of cpu_us/echo medians: NA"
            else printf "ratio %s/%s of cpu_us/echo medians: %.3f\n", a, b, x / y }'
        # The same ratio round by round: each pair ran back to back, so the
        # machine's drift between rounds cancels out of it.
        ratio=$(paste -d' ' "$WORK/$(file_of "$a").results" "$WORK/$(file_of "$b").results" |
            awk '{ x = y = ""; for (i = 1; i <= NF; i++) { split($i, kv, "=")
                       if (kv[1] == "server_cpu_us_per_msg") { if (x == "") x = kv[2]; else y = kv[2] } }
                   if (x + 0 > 0 && y + 0 > 0) printf "%.3f\n", x / y }')
        echo "ratio $a/$b round by round: $(tr '\n' ' ' <<<"$ratio")(median $(median <<<"$ratio"))"
    fi
    echo "(medians over $ROUNDS rounds; syscalls/dgram from evloop's own counters, NA for other servers:" \
        "STRACE=1 counts them for all; loss% high with srv_cpu% low means the machine was busy)"
fi

if [[ $STRACE == 1 ]]; then
    for s in "${servers[@]}"; do
        port=$(free_udp_port "$next_port")
        next_port=$((port + 1))
        start_server "$s" "$port"
        trace="$WORK/$(file_of "$s").strace"
        # Bounded: strace detaches when `timeout` ends it, after the load.
        timeout -s INT "$(awk -v w="$WARMUP" -v d="$STRACE_SECS" 'BEGIN { print w + d + 1 }')" strace -c -f -S calls -o "$trace" -p "$SERVER_PID" 2>/dev/null &
        strace_pid=$!
        LIVE+=("$strace_pid")
        sleep 0.5 # let strace attach before the load starts
        line=$(load "$port" "$STRACE_SECS") || die "loadgen against $s (traced) failed (exit $?)"
        stop_pid "$strace_pid" wait
        stop_pid "$SERVER_PID"
        echoes=$(field received "$line")
        echo
        echo "== strace -c -f -p: $s, $echoes echoes in the window ($line)"
        # Rows: % time, seconds, usecs/call, calls, [errors,] syscall. The
        # trace covers the warmup too: count its datagrams at the rate sent.
        awk -v e="$echoes" -v w="$WARMUP" -v d="$STRACE_SECS" '
            $NF == "total" { total = $4; next }
            $1 ~ /^[0-9.]+$/ && NF >= 5 { n++; name[n] = $NF; calls[n] = $4 }
            END {
                dg = 2 * e * (w + d) / d
                printf "total syscalls %d for about %d datagrams (in + out, warmup included) = %.3f per datagram\n", total, dg, total / dg
                for (i = 1; i <= n && i <= 6; i++) printf "  %-16s %12d %10.3f per datagram\n", name[i], calls[i], calls[i] / dg
            }' "$trace"
    done
fi
