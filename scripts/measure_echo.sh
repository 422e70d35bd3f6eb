#!/usr/bin/env bash
# Measure echo servers' cost per message, as the OS sees it, side by side.
#
# Made for a 2-core Linux box on loopback: each server runs pinned to CPU
# $SERVER_CPU (0), examples/loadgen.rs pinned to CPU $CLIENT_CPU (1) drives it
# closed-loop, and reads the server's CPU time and context switches from
# /proc at the edges of its measurement window. Rounds alternate between the
# servers (A B A B ...) so that drift hits them alike; at the end a table gives
# per server the medians over the rounds, plus the A/B ratio of the CPU medians.
#
# STRACE=1 also runs each server once under `strace -c -f` for a load of
# exactly $STRACE_COUNT echoes and prints syscalls per echo and the top
# syscalls (strace's own timings are meaningless, only the counts matter).
# ptrace slows the server several times, so it batches more than at full speed:
# PERF=1 repeats that count with `perf stat` syscall tracepoints instead,
# which leave the server's speed alone (needs perf and perf_event access).
#
# A server is an example name, optionally with arguments after a ':', commas
# for spaces: "echo_server:--model,threads" runs
# `echo_server --addr ADDR --model threads`. For sweeps over connection counts,
# idle memory and charts, see examples/compare/; this script is the quick
# A/B of two binaries, plus syscall counts.
#
# Usage: scripts/measure_echo.sh
# Environment (defaults):
#   SERVERS="echo_server mio_echo"   servers to compare (each takes --addr ADDR)
#   ROUNDS=3 CONNS=100 SIZE=64 DEPTH=1 WARMUP=1 DURATION=5
#   STRACE=0 PERF=0 STRACE_COUNT=200000 BASE_PORT=7100 SERVER_CPU=0 CLIENT_CPU=1
#   LOADGEN_ARGS=""                  more loadgen options, split at spaces
#                                    (scripts/measure_tls.sh passes --tls CA_FILE)
# Examples: SERVERS=mio_echo ROUNDS=1 DURATION=2 STRACE=1 scripts/measure_echo.sh
#           SERVERS="echo_server:--model,reactor,--threads,1 echo_server:--model,threads" scripts/measure_echo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/common.sh
source scripts/common.sh

SERVERS=${SERVERS:-"echo_server mio_echo"}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-100}
SIZE=${SIZE:-64}
DEPTH=${DEPTH:-1}
WARMUP=${WARMUP:-1}
DURATION=${DURATION:-5}
STRACE=${STRACE:-0}
STRACE_COUNT=${STRACE_COUNT:-200000}
PERF=${PERF:-0}
BASE_PORT=${BASE_PORT:-7100}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
read -r -a loadgen_args <<<"${LOADGEN_ARGS:-}"
# --depth only where it is not the default, as loadgen --handshakes takes none.
shape=(--conns "$CONNS" --size "$SIZE")
[[ $DEPTH == 1 ]] || shape+=(--depth "$DEPTH")

BIN=target/release/examples
read -r -a servers <<<"$SERVERS"
((${#servers[@]} > 0)) || { echo "measure_echo: SERVERS is empty" >&2; exit 2; }

die() { echo "measure_echo: $*" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/measure_echo.XXXXXX")

cleanup() {
    kill_leftovers
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server SERVER PORT [STRACE_FILE]: sets SERVER_PID (and WRAPPER_PID under strace).
start_server() {
    local name port=$2 trace=${3:-} log i extra=()
    name=$(bin_of "$1")
    log="$WORK/$(file_of "$1").$2.log"
    mapfile -t extra < <(args_of "$1")
    if [[ -n $trace ]]; then
        taskset -c "$SERVER_CPU" strace -c -f -S calls -o "$trace" \
            "$BIN/$name" --addr "127.0.0.1:$port" "${extra[@]}" >"$log" 2>&1 &
        WRAPPER_PID=$!
    else
        taskset -c "$SERVER_CPU" "$BIN/$name" --addr "127.0.0.1:$port" "${extra[@]}" >"$log" 2>&1 &
        WRAPPER_PID=
    fi
    SERVER_PID=$! # taskset execs its command, so this is the server (or strace)
    LIVE+=("$SERVER_PID")
    for ((i = 0; i < 200; i++)); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            cat "$log" >&2
            die "$name exited before listening on port $port"
        fi
        if port_open "$port"; then
            if [[ -n $WRAPPER_PID ]]; then
                # The traced server is strace's only child.
                SERVER_PID=$(cat "/proc/$WRAPPER_PID/task/$WRAPPER_PID/children" 2>/dev/null || true)
                SERVER_PID=${SERVER_PID%% *}
                [[ -n $SERVER_PID ]] || die "cannot find the server under strace ($WRAPPER_PID)"
                LIVE+=("$SERVER_PID")
            fi
            return
        fi
        sleep 0.05
    done
    cat "$log" >&2
    die "$name did not listen on port $port within 10 s"
}

stop_server() {
    stop_pid "$SERVER_PID"
    # strace exits by itself once its tracee is gone, after writing its summary.
    [[ -z ${WRAPPER_PID:-} ]] || stop_pid "$WRAPPER_PID" wait
}

# ---------------------------------------------------------------------------

command -v taskset >/dev/null || die "taskset (util-linux) is needed"
if (($(nproc) < 2)); then
    echo "measure_echo: warning: $(nproc) CPU(s); server and load generator will share one" >&2
    CLIENT_CPU=$SERVER_CPU
fi
if [[ $STRACE == 1 ]] && ! command -v strace >/dev/null; then
    [[ $(id -u) == 0 ]] || die "STRACE=1 needs strace; install it (not root, so not trying)"
    apt-get install -y strace >/dev/null || { apt-get update >/dev/null && apt-get install -y strace >/dev/null; } ||
        die "could not install strace"
fi
if [[ $PERF == 1 ]]; then
    command -v perf >/dev/null || die "PERF=1 needs perf (linux-perf)"
    perf stat -e raw_syscalls:sys_enter -- true >/dev/null 2>&1 ||
        die "perf cannot count syscall tracepoints here (perf_event_paranoid, tracefs?)"
fi

build_args=(--example loadgen)
# A server without an examples/ source is a binary placed in $BIN by hand
# (say, a build of an experimental variant); it is used as it is.
for s in "${servers[@]}"; do
    b=$(bin_of "$s")
    [[ -f examples/$b.rs && " ${build_args[*]} " != *" $b "* ]] && build_args+=(--example "$b")
done
echo "== cargo build --release ${build_args[*]}" >&2
cargo build --release "${build_args[@]}" >&2 || die "build failed"

run_limit=$(awk -v w="$WARMUP" -v d="$DURATION" 'BEGIN { print int(w + d + 30) }')
echo "== conns=$CONNS size=$SIZE depth=$DEPTH warmup=${WARMUP}s duration=${DURATION}s rounds=$ROUNDS;" \
    "servers on CPU $SERVER_CPU, loadgen on CPU $CLIENT_CPU" >&2

next_port=$BASE_PORT
for ((round = 1; round <= ROUNDS; round++)); do
    for s in "${servers[@]}"; do
        port=$(free_port "$next_port")
        next_port=$((port + 1))
        start_server "$s" "$port"
        line=$(timeout "$run_limit" taskset -c "$CLIENT_CPU" "$BIN/loadgen" --addr "127.0.0.1:$port" \
            "${shape[@]}" --warmup "$WARMUP" --duration "$DURATION" --pid "$SERVER_PID" \
            "${loadgen_args[@]}") || die "loadgen against $s failed (exit $?)"
        stop_server
        printf 'round %d %-12s %s\n' "$round" "$s" "$line"
        awk -v s="$(field server_cpu_pct "$line")" -v c="$(field client_cpu_pct "$line")" \
            'BEGIN { exit !(s != "NA" && s + 0 < 90 && c + 0 < 90) }' &&
            echo "measure_echo: warning: neither server (${s}) nor loadgen was busy >= 90%:" \
                "other load on the machine?" >&2
        echo "$line" >>"$WORK/$(file_of "$s").results"
    done
done

if ((ROUNDS > 0)); then
    echo
    w=14
    for s in "${servers[@]}"; do ((${#s} > w)) && w=${#s}; done
    printf '%-*s %6s %14s %10s %11s %9s %8s %8s\n' "$w" server rounds cpu_us/msg cs/1k msgs/s p99_us srv_cpu% cli_cpu%
    declare -A cpu_median
    for s in "${servers[@]}"; do
        med() { while read -r l; do field "$1" "$l"; done <"$WORK/$(file_of "$s").results" | median; }
        cpu_median[$s]=$(med server_cpu_us_per_msg)
        printf '%-*s %6d %14s %10s %11s %9s %8s %8s\n' "$w" "$s" "$ROUNDS" "${cpu_median[$s]}" \
            "$(med server_cs_per_1k)" "$(med msgs_per_s)" "$(med p99_us)" "$(med server_cpu_pct)" "$(med client_cpu_pct)"
    done
    if ((${#servers[@]} >= 2)); then
        a=${servers[0]} b=${servers[1]}
        awk -v a="$a" -v b="$b" -v x="${cpu_median[$a]}" -v y="${cpu_median[$b]}" 'BEGIN {
            if (x == "NA" || y == "NA" || y + 0 == 0) print "ratio " a "/" b " of cpu_us/msg medians: NA"
            else printf "ratio %s/%s of cpu_us/msg medians: %.3f\n", a, b, x / y }'
    fi
    echo "(medians over $ROUNDS rounds; srv_cpu% near 100 means the server was the bottleneck," \
        "cli_cpu% near 100 means the load generator was)"
fi

# count_load SERVER [LOADGEN_ARGS...]: runs loadgen for exactly $STRACE_COUNT
# echoes against the server on $port; prints its result line.
count_load() {
    timeout 180 taskset -c "$CLIENT_CPU" "$BIN/loadgen" --addr "127.0.0.1:$port" \
        "${shape[@]}" --warmup 0 --count "$STRACE_COUNT" \
        --timeout 150 "${loadgen_args[@]}" "${@:2}" || die "loadgen against $1 (counted run) failed (exit $?)"
}

# print_counts MSGS: reads "syscall calls errors" lines (one named "total")
# in descending order of calls; prints syscalls per echo and the top ones.
print_counts() {
    awk -v m="$1" '
        $1 == "total" { total = $2; next }
        $2 > 0 { n++; name[n] = $1; calls[n] = $2; errs[n] = $3 }
        END {
            printf "total syscalls %d / %d echoes = %.3f syscalls per echo\n", total, m, total / m
            printf "  %-16s %12s %10s %10s\n", "syscall", "calls", "per_echo", "errors"
            for (i = 1; i <= n && i <= 8; i++)
                printf "  %-16s %12d %10.3f %10s\n", name[i], calls[i], calls[i] / m, errs[i]
        }'
}

if [[ $STRACE == 1 ]]; then
    for s in "${servers[@]}"; do
        port=$(free_port "$next_port")
        next_port=$((port + 1))
        trace="$WORK/$(file_of "$s").strace"
        start_server "$s" "$port" "$trace"
        line=$(count_load "$s")
        stop_server
        msgs=$(field msgs "$line")
        echo
        echo "== strace -c -f $s: $msgs echoes (conns=$CONNS size=$SIZE depth=$DEPTH)"
        echo "   (ptrace slows the server several times, so it batches more than at full speed: see PERF=1)"
        # Rows: % time, seconds, usecs/call, calls, [errors,] syscall; sorted by calls.
        awk '$NF == "total" { print "total", $4, 0; next }
             $1 ~ /^[0-9.]+$/ && NF >= 5 { print $NF, $4, (NF == 6 ? $5 : 0) }' "$trace" |
            print_counts "$msgs"
    done
fi

if [[ $PERF == 1 ]]; then
    events=raw_syscalls:sys_enter
    for sc in epoll_wait epoll_pwait epoll_pwait2 epoll_ctl recvfrom sendto read write readv writev \
        recvmsg sendmsg accept4 futex close setsockopt; do
        events+=",syscalls:sys_enter_$sc"
    done
    for s in "${servers[@]}"; do
        port=$(free_port "$next_port")
        next_port=$((port + 1))
        start_server "$s" "$port"
        counts="$WORK/$(file_of "$s").perf"
        perf stat -x, -e "$events" -p "$SERVER_PID" -o "$counts" &
        perf_pid=$!
        LIVE+=("$perf_pid")
        sleep 0.5 # let perf attach before the load starts
        line=$(count_load "$s" --pid "$SERVER_PID")
        kill -INT "$perf_pid" 2>/dev/null || true # perf stat writes its counts on SIGINT
        stop_pid "$perf_pid" wait
        stop_server
        msgs=$(field msgs "$line")
        echo
        echo "== perf stat (syscall tracepoints) $s: $msgs echoes (conns=$CONNS size=$SIZE depth=$DEPTH): $line"
        awk -F, '$3 == "raw_syscalls:sys_enter" { print "total", $1, "-"; next }
                 $3 ~ /^syscalls:sys_enter_/ { sub(/^syscalls:sys_enter_/, "", $3); print $3, $1 + 0, "-" }' \
            "$counts" | sort -k2,2nr | print_counts "$msgs"
    done
fi
