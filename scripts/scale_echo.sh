#!/usr/bin/env bash
# How the event loops scale with cores: echo_server with 1, 2, 4 ... loops,
# each pinned to its own CPU, driven by several load generators on CPUs of
# their own, so that the loops, not the clients, set the pace.
#
# Needs a machine with more CPUs than the loops and load generators take
# together (a 2-core box cannot show it: see scripts/measure_echo.sh
# there). For each $LOOPS entry N, echo_server runs with `--threads N --pin`
# inside `taskset -c 0-(N-1)` (loop i on CPU i), and one `loadgen` per CPU of
# $CLIENT_CPUS keeps $CONNS connections each echoing $SIZE-byte messages,
# one in flight per connection, for $DURATION seconds after $WARMUP; runs go
# N = 1, 2, 4 ... and again, $ROUNDS times. Printed per run:
#
#   loops=2 round=1 echoes_per_s=612345 server_cpu_pct=198 cpu_us_per_echo=3.233
#
# then per N the medians, and the speed-up over one loop with its
# efficiency (speed-up / N). echoes_per_s adds up the load generators'
# counts; server_cpu_pct is the server's CPU time over the window, from
# /proc/PID/stat (100 = one core).
#
# Usage: scripts/scale_echo.sh
# Environment (defaults):
#   LOOPS="1 2 4" CLIENT_CPUS="8 9 10 11 12 13 14 15" CONNS=64 SIZE=64
#   ROUNDS=3 WARMUP=0.5 DURATION=2 BASE_PORT=7800
#   BIN=target/release/examples NO_BUILD= (set: use BIN as it is)
# Takes ROUNDS x loops x (DURATION + WARMUP + 1) seconds, plus the build.
# Everything stays on 127.0.0.1; every process it starts is ended by its PID.
# shellcheck source=scripts/common.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

LOOPS=${LOOPS:-"1 2 4"} CLIENT_CPUS=${CLIENT_CPUS:-"8 9 10 11 12 13 14 15"}
CONNS=${CONNS:-64} SIZE=${SIZE:-64} ROUNDS=${ROUNDS:-3} WARMUP=${WARMUP:-0.5} DURATION=${DURATION:-2}
BASE_PORT=${BASE_PORT:-7800} BIN=${BIN:-target/release/examples}
read -r -a loops <<<"$LOOPS"
read -r -a clients <<<"$CLIENT_CPUS"

die() { echo "scale_echo: $*" >&2; exit 1; }
for n in "${loops[@]}"; do
    for cpu in "${clients[@]}"; do
        ((cpu >= n)) || die "client CPU $cpu is among the $n loops' CPUs (0-$((n - 1)))"
    done
done
for cpu in "${clients[@]}"; do
    ((cpu < $(nproc))) || die "CPU $cpu does not exist here ($(nproc) CPUs); set CLIENT_CPUS and LOOPS"
done
command -v taskset >/dev/null || die "taskset (util-linux) is needed"
if [[ -z ${NO_BUILD:-} ]]; then
    cargo build --release --quiet --example echo_server --example loadgen || die "build failed"
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

work_dir scale_echo
hz=$(getconf CLK_TCK)

port=$BASE_PORT
for ((round = 1; round <= ROUNDS; round++)); do
    for n in "${loops[@]}"; do
        port=$(free_port $((port + 1)))
        taskset -c "0-$((n - 1))" "$BIN/echo_server" --addr "127.0.0.1:$port" --threads "$n" --pin \
            >"$WORK/server.log" 2>&1 &
        server=$!
        LIVE+=("$server")
        for ((i = 0; i < 500; i++)); do port_open "$port" && break; sleep 0.01; done
        loads=()
        for cpu in "${clients[@]}"; do
            timeout 60 taskset -c "$cpu" "$BIN/loadgen" --addr "127.0.0.1:$port" --conns "$CONNS" \
                --size "$SIZE" --warmup "$WARMUP" --duration "$DURATION" >"$WORK/load.$cpu" 2>&1 &
            loads+=($!)
        done
        LIVE+=("${loads[@]}")
        sleep "$WARMUP"
        t0=$(cpu_ticks "$server")
        sleep "$DURATION"
        t1=$(cpu_ticks "$server")
        for pid in "${loads[@]}"; do stop_pid "$pid" wait; done
        stop_pid "$server"
        echoes=0
        for cpu in "${clients[@]}"; do
            rate=$(field msgs_per_s "$(cat "$WORK/load.$cpu")")
            [[ -n $rate ]] || die "loadgen on CPU $cpu failed: $(cat "$WORK/load.$cpu")"
            echoes=$((echoes + rate))
        done
        line=$(awk -v t=$((t1 - t0)) -v hz="$hz" -v d="$DURATION" -v e="$echoes" 'BEGIN {
            cpu = t / hz / d; per = e > 0 ? 1e6 * cpu / e : 0
            printf "echoes_per_s=%d server_cpu_pct=%.0f cpu_us_per_echo=%.3f", e, 100 * cpu, per }')
        echo "loops=$n round=$round $line"
        echo "$line" >>"$WORK/loops.$n"
    done
done

echo
one=""
for n in "${loops[@]}"; do
    med() { while read -r l; do field "$1" "$l"; done <"$WORK/loops.$n" | median; }
    rate=$(med echoes_per_s)
    [[ -n $one ]] || one=$rate
    awk -v n="$n" -v r="$rate" -v one="$one" -v cpu="$(med server_cpu_pct)" -v per="$(med cpu_us_per_echo)" 'BEGIN {
        printf "median loops=%d echoes_per_s=%d server_cpu_pct=%s cpu_us_per_echo=%s speedup=%.2f efficiency=%.2f\n",
            n, r, cpu, per, r / one, r / one / n }'
done
