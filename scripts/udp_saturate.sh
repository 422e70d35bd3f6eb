#!/usr/bin/env bash
# UDP echo servers driven past what one core can serve, side by side: the
# batching of scripts/measure_udp.sh at full load, where a loop finds a
# full batch at every wake-up.
#
# On a 2-core box the load generator cannot outrun one server loop (each
# datagram costs the client as much as the server), so the loop finds about
# one datagram per wake-up. This script needs a machine with at least five
# CPUs: each server (one loop) runs pinned to CPU $SERVER_CPU, and one
# `loadgen --udp` per CPU of $CLIENT_CPUS sends it $RATE_EACH 64-byte
# datagrams per second from $SOCKS sockets, all at once, for $DURATION
# seconds after $WARMUP. Rounds alternate between the servers (A B A B).
# Printed per round and server:
#
#   round 1 udp_echo:--threads,1 server_cpu_pct=100 echoes_per_s=309904 cpu_us_per_echo=3.227 loss_pct=22.5 syscalls_per_datagram=0.032
#
# server_cpu_pct is the server's CPU time over the window (from
# /proc/PID/stat); echoes_per_s the echoes the load generators received,
# all together; cpu_us_per_echo the one over the other; loss_pct what was
# sent and never came back (dropped by the kernel at a full receive
# buffer, the server's or, with the load generators busy, their own);
# syscalls_per_datagram, from evloop's own counters logged when it stops
# (recvmmsg + sendmmsg + epoll_wait over datagrams in and out; NA for
# others). Then the medians and the A/B ratio of the CPU medians.
#
# Usage: scripts/udp_saturate.sh
# Environment (defaults):
#   SERVERS="udp_echo:--threads,1 tokio_udp_echo" ROUNDS=3 SERVER_CPU=2
#   CLIENT_CPUS="4 6 8 10" RATE_EACH=100000 SOCKS=16 WARMUP=0.5 DURATION=3
#   BASE_PORT=7600 BIN=target/release/examples NO_BUILD= (set: use BIN as it is)
# Takes ROUNDS x servers x (DURATION + WARMUP + 1) seconds, plus the build.
# Everything stays on 127.0.0.1; every process it starts is ended by its PID.
# shellcheck source=scripts/common.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

SERVERS=${SERVERS:-"udp_echo:--threads,1 tokio_udp_echo"}
ROUNDS=${ROUNDS:-3} SERVER_CPU=${SERVER_CPU:-2} CLIENT_CPUS=${CLIENT_CPUS:-"4 6 8 10"}
RATE_EACH=${RATE_EACH:-100000} SOCKS=${SOCKS:-16} WARMUP=${WARMUP:-0.5} DURATION=${DURATION:-3}
BASE_PORT=${BASE_PORT:-7600} BIN=${BIN:-target/release/examples}
read -r -a servers <<<"$SERVERS"
read -r -a clients <<<"$CLIENT_CPUS"

die() { echo "udp_saturate: $*" >&2; exit 1; }
for cpu in "$SERVER_CPU" "${clients[@]}"; do
    ((cpu < $(nproc))) || die "CPU $cpu does not exist here ($(nproc) CPUs); set SERVER_CPU and CLIENT_CPUS"
done
command -v taskset >/dev/null || die "taskset (util-linux) is needed"
if [[ -z ${NO_BUILD:-} ]]; then
    build=(--example loadgen)
    for s in "${servers[@]}"; do build+=(--example "$(bin_of "$s")"); done
    cargo build --release --quiet "${build[@]}" || die "build failed"
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

work_dir udp_saturate
hz=$(getconf CLK_TCK)

port=$BASE_PORT
for ((round = 1; round <= ROUNDS; round++)); do
    for s in "${servers[@]}"; do
        port=$((port + 1))
        mapfile -t extra < <(args_of "$s")
        RUST_LOG=info taskset -c "$SERVER_CPU" "$BIN/$(bin_of "$s")" --addr "127.0.0.1:$port" "${extra[@]}" \
            >"$WORK/server.log" 2>&1 &
        server=$!
        LIVE+=("$server")
        sleep 0.3
        loads=()
        for cpu in "${clients[@]}"; do
            timeout 60 taskset -c "$cpu" "$BIN/loadgen" --udp --addr "127.0.0.1:$port" --conns "$SOCKS" \
                --size 64 --rate "$RATE_EACH" --warmup "$WARMUP" --duration "$DURATION" >"$WORK/load.$cpu" 2>&1 &
            loads+=($!)
        done
        LIVE+=("${loads[@]}")
        sleep "$WARMUP"
        t0=$(cpu_ticks "$server")
        sleep "$DURATION"
        t1=$(cpu_ticks "$server")
        for pid in "${loads[@]}"; do stop_pid "$pid" wait; done
        stop_pid "$server"
        echoes=0 sent=0 received=0
        for cpu in "${clients[@]}"; do
            line=$(cat "$WORK/load.$cpu")
            [[ -n $(field msgs_per_s "$line") ]] || die "loadgen on CPU $cpu failed: $line"
            echoes=$((echoes + $(field msgs_per_s "$line")))
            sent=$((sent + $(field sent "$line"))) received=$((received + $(field received "$line")))
        done
        syscalls=$(sed -n 's/.*system calls: .*(\([0-9.]*\) per datagram).*/\1/p' "$WORK/server.log" | tail -1)
        line=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v d="$DURATION" -v e="$echoes" -v s="$sent" -v r="$received" 'BEGIN {
            cpu = t / hz / d
            per = e > 0 ? 1e6 * cpu / e : 0; loss = s > 0 ? 100 * (s - r) / s : 0
            printf "server_cpu_pct=%.0f echoes_per_s=%d cpu_us_per_echo=%.3f loss_pct=%.1f", 100 * cpu, e, per, loss }')
        line+=" syscalls_per_datagram=${syscalls:-NA}"
        echo "round $round $s $line"
        echo "$line" >>"$WORK/$(file_of "$s").results"
    done
done

echo
declare -A cpu_median
for s in "${servers[@]}"; do
    med() { while read -r l; do field "$1" "$l"; done <"$WORK/$(file_of "$s").results" | median; }
    cpu_median[$s]=$(med cpu_us_per_echo)
    echo "median $s cpu_us_per_echo=${cpu_median[$s]} echoes_per_s=$(med echoes_per_s)" \
        "loss_pct=$(med loss_pct) syscalls_per_datagram=$(med syscalls_per_datagram)"
done
if ((${#servers[@]} >= 2)); then
    a=${servers[0]} b=${servers[1]}
    awk -v a="$a" -v b="$b" -v x="${cpu_median[$a]}" -v y="${cpu_median[$b]}" \
        'BEGIN { printf "ratio %s/%s of cpu_us/echo medians: %.3f\n", a, b, x / y }'
fi
