#!/usr/bin/env bash
# Count the user-space instructions an echo server executes per echo, with
# valgrind's callgrind: a figure that does not drift with the machine's load
# or clock, for comparing servers and spotting where an echo's code goes.
#
# Each server runs under `valgrind --tool=callgrind` (give it one loop or one
# thread where it has the option: echo_server takes `--threads 1`; mio_echo
# and tokio_echo have one), pinned to CPU $SERVER_CPU (0), and is driven by
# examples/loadgen.rs, pinned to CPU $CLIENT_CPU (1): $CONNS connections,
# $SIZE-byte messages, closed loop, one message in flight per connection,
# for exactly $N echoes (`--count`). Then a fresh server takes exactly 3N.
# Starting, connecting, closing and stopping cost the same in both runs, so
#
#     instructions per echo = (Ir(3N) - Ir(N)) / 2N
#
# counts what the echoes alone cost, in the server's own code and its
# libraries (Ir: instructions executed in user space; the kernel's work in
# the system calls is not counted). Each server is stopped by its PID with
# SIGTERM: echo_server shuts down and exits, mio_echo and tokio_echo, which
# do not catch it, are ended by it, and callgrind writes its counts as the
# process ends either way.
#
# Under callgrind an echo server serves three to five times fewer echoes per
# second while loadgen runs at full speed, so each turn of its loop finds
# more connections ready than at full speed and the cost of a turn is shared
# by more echoes: compare the servers with one another rather than with
# figures from native runs.
#
# For the servers named in $PROFILE (echo_server), the same difference is
# taken function by function from callgrind_annotate's profiles of the two
# runs: the $TOP functions with the most instructions per echo, by self cost
# and by inclusive cost.
#
# LOAD replaces loadgen's message arguments (`--size $SIZE --depth 1`), so
# the same count serves other protocols: scripts/callgrind_http.sh runs it
# with `--http / --depth 16` for HTTP requests pipelined 16 deep. A server
# entry whose program holds a '/' is a path to a binary rather than an
# example (tools/may_hello/target/release/may_hello).
#
# Usage: scripts/callgrind_echo.sh
# Environment (defaults):
#   SERVERS="echo_server:--threads,1 mio_echo tokio_echo"   (entries as in
#           scripts/measure_echo.sh: example[:arg,arg...]; each takes --addr)
#   N=20000 CONNS=100 SIZE=64 TOP=15 PROFILE=echo_server
#   LOAD="--size $SIZE --depth 1" UNIT=echo   (what one counted message is)
#   OUT_DIR=   (keep the callgrind.out files there; by default they are removed)
#   BASE_PORT=7200 SERVER_CPU=0 CLIENT_CPU=1
# Example: SERVERS=echo_server:--threads,1 N=5000 OUT_DIR=/tmp/cg scripts/callgrind_echo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/common.sh
source scripts/common.sh

SERVERS=${SERVERS:-"echo_server:--threads,1 mio_echo tokio_echo"}
N=${N:-20000}
CONNS=${CONNS:-100}
SIZE=${SIZE:-64}
TOP=${TOP:-15}
PROFILE=${PROFILE:-echo_server}
OUT_DIR=${OUT_DIR:-}
LOAD=${LOAD:-"--size $SIZE --depth 1"}
UNIT=${UNIT:-echo}
BASE_PORT=${BASE_PORT:-7200}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

BIN=${CARGO_TARGET_DIR:-target}/release/examples
# Seconds a server under valgrind gets to start listening, and to exit after
# SIGTERM (TERM_GRACE is read by `terminate`).
START_LIMIT=120
TERM_GRACE=60
# Seconds loadgen may take for 3N echoes to a server that runs under valgrind.
LOAD_LIMIT=1200

read -r -a servers <<<"$SERVERS"
((${#servers[@]} > 0)) || { echo "callgrind_echo: SERVERS is empty" >&2; exit 2; }
[[ $N =~ ^[1-9][0-9]*$ ]] || { echo "callgrind_echo: N must be a positive whole number" >&2; exit 2; }

die() { echo "callgrind_echo: $*" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/callgrind_echo.XXXXXX")
SERVER_PID= # the server this script started and has not stopped

cleanup() {
    if [[ -n $SERVER_PID ]]; then
        kill -KILL "$SERVER_PID" 2>/dev/null && echo "callgrind_echo: killed leftover server $SERVER_PID" >&2
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_server ENTRY PORT OUT_FILE: starts the server under callgrind and
# waits until it listens; sets SERVER_PID (valgrind runs the program in its
# own process, so this PID is the server's).
start_server() {
    local name port=$2 out=$3 log i extra=()
    name=$(bin_of "$1")
    log="$out.log"
    mapfile -t extra < <(args_of "$1")
    local program="$BIN/$name"
    [[ $name == */* ]] && program=$name
    taskset -c "$SERVER_CPU" valgrind --tool=callgrind --callgrind-out-file="$out" \
        "$program" --addr "127.0.0.1:$port" "${extra[@]}" >"$log" 2>&1 &
    SERVER_PID=$!
    for ((i = 0; i < START_LIMIT * 10; i++)); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            cat "$log" >&2
            die "$name exited before listening on port $port"
        fi
        port_open "$port" && return
        sleep 0.1
    done
    cat "$log" >&2
    die "$name did not listen on port $port within $START_LIMIT s"
}

# stop_server: SIGTERM to the server, then waits for it (and callgrind's
# output) for up to $TERM_GRACE seconds.
stop_server() {
    terminate "$SERVER_PID"
    SERVER_PID=
}

# run_counted ENTRY COUNT OUT_FILE: one server run of exactly COUNT echoes;
# sets IR to the total of its callgrind output.
run_counted() {
    local port line
    port=$(free_port "$next_port")
    next_port=$((port + 1))
    start_server "$1" "$port" "$3"
    local load
    read -r -a load <<<"$LOAD"
    line=$(timeout "$LOAD_LIMIT" taskset -c "$CLIENT_CPU" "$BIN/loadgen" --addr "127.0.0.1:$port" \
        --conns "$CONNS" "${load[@]}" --warmup 0 --count "$2" --timeout "$LOAD_LIMIT") ||
        die "loadgen against $1 ($2 echoes) failed (exit $?)"
    stop_server
    [[ $(field msgs "$line") == "$2" ]] || die "loadgen against $1 reported $(field msgs "$line") ${UNIT}s, not $2"
    IR=$(awk '$1 == "totals:" { print $2 }' "$3" 2>/dev/null)
    [[ -n $IR ]] || die "no totals in $3 (did $1 exit cleanly?)"
}

# functions OUT_FILE [--inclusive=yes]: "cost<TAB>file:function" for every
# function of a callgrind output, from callgrind_annotate's function list
# (the rows between the rule under its "file:function" header and the next
# blank line).
functions() {
    callgrind_annotate --threshold=100 --auto=no "${@:2}" "$1" 2>/dev/null | awk '
        /file:function/ { header = 1; next }
        header && /^-+$/ { rows = 1; next }
        rows && /^ *$/ { rows = header = 0; next }
        rows && match($0, /^ *[0-9,]+ /) {
            cost = substr($0, 1, RLENGTH); gsub(/[ ,]/, "", cost)
            name = substr($0, RLENGTH + 1)
            sub(/^\( *[0-9.]+%\) */, "", name) # the percentage
            sub(/ \[[^]]*\]$/, "", name)        # the object file
            print cost "\t" name
        }'
}

# per_echo_table OUT_N OUT_3N TITLE [--inclusive=yes]: the $TOP functions by
# (cost in the 3N run - cost in the N run) / 2N. callgrind splits a function
# by the source file of its (inlined) code, and counts the parts as calling
# one another: a function's self cost is the sum over its parts, its
# inclusive cost their largest. The inclusive table leaves out functions
# that contain (nearly) every echo, such as a thread's start and the loop's
# `run`.
per_echo_table() {
    local all=$(((IR3 - IR1) * 995 / 1000)) inclusive=${4:+1}
    ((inclusive)) || all=$((IR3 + 1))
    echo
    echo "-- $3 (instructions per $UNIT, function)"
    awk -F'\t' -v n="$N" -v all="$all" -v inclusive="${inclusive:-0}" '
        NR == FNR { first[$2] = $1; next }
        {
            d = $1 - first[$2]; name = $2; sub(/^[^:]*:/, "", name)
            if (!inclusive) cost[name] += d
            else if (!(name in cost) || d > cost[name]) cost[name] = d
        }
        END { for (f in cost) if (cost[f] > 0 && cost[f] < all) print cost[f] / (2 * n) "\t" f }' \
        <(functions "$1" "${@:4}") <(functions "$2" "${@:4}") |
        sort -t$'\t' -k1,1gr | awk -F'\t' -v top="$TOP" 'NR <= top { printf "%10.1f  %s\n", $1, substr($2, 1, 140) }'
}

# ---------------------------------------------------------------------------

command -v valgrind >/dev/null || die "valgrind is needed"
command -v taskset >/dev/null || die "taskset (util-linux) is needed"
annotate=1
if ! command -v callgrind_annotate >/dev/null; then
    echo "callgrind_echo: callgrind_annotate is missing: totals only, no per-function tables" >&2
    annotate=0
fi
if (($(nproc) < 2)); then
    echo "callgrind_echo: warning: $(nproc) CPU(s); server and load generator will share one" >&2
    CLIENT_CPU=$SERVER_CPU
fi
if [[ -n $OUT_DIR ]]; then
    mkdir -p "$OUT_DIR"
    OUT_DIR=$(cd "$OUT_DIR" && pwd)
fi

build_args=(--example loadgen)
for s in "${servers[@]}"; do
    b=$(bin_of "$s")
    [[ $b != */* && -f examples/$b.rs && " ${build_args[*]} " != *" $b "* ]] && build_args+=(--example "$b")
done
echo "== cargo build --release ${build_args[*]}" >&2
cargo build --release "${build_args[@]}" >&2 || die "build failed"

echo "== callgrind: $N and $((3 * N)) ${UNIT}s per server, conns=$CONNS load: $LOAD (closed loop);" \
    "servers on CPU $SERVER_CPU, loadgen on CPU $CLIENT_CPU" >&2
next_port=$BASE_PORT
results=()
for s in "${servers[@]}"; do
    dir=${OUT_DIR:-$WORK}
    out1="$dir/callgrind.$(file_of "$s").$N.out"
    out3="$dir/callgrind.$(file_of "$s").$((3 * N)).out"
    echo "-- $s: $N ${UNIT}s" >&2
    run_counted "$s" "$N" "$out1"
    IR1=$IR
    echo "-- $s: $((3 * N)) ${UNIT}s" >&2
    run_counted "$s" "$((3 * N))" "$out3"
    IR3=$IR
    results+=("$(printf '%s\t%s\t%s' "$s" "$IR1" "$IR3")")
    if ((annotate)) && [[ " $PROFILE " == *" $(bin_of "$s") "* ]]; then
        per_echo_table "$out1" "$out3" "$s: top $TOP by self cost" >"$WORK/$(file_of "$s").self"
        per_echo_table "$out1" "$out3" "$s: top $TOP by inclusive cost, below the loop" --inclusive=yes \
            >"$WORK/$(file_of "$s").incl"
    fi
done

echo
w=10
for s in "${servers[@]}"; do ((${#s} > w)) && w=${#s}; done
printf '%-*s %15s %15s %12s\n' "$w" server "Ir($N)" "Ir($((3 * N)))" "instr/$UNIT"
for r in "${results[@]}"; do
    IFS=$'\t' read -r s ir1 ir3 <<<"$r"
    awk -v w="$w" -v s="$s" -v a="$ir1" -v b="$ir3" -v n="$N" \
        'BEGIN { printf "%-*s %15d %15d %12.1f\n", w, s, a, b, (b - a) / (2 * n) }'
done
echo "(instructions per $UNIT = (Ir(3N) - Ir(N)) / 2N, user space only; conns=$CONNS load: $LOAD)"
for s in "${servers[@]}"; do
    for table in self incl; do
        [[ -f $WORK/$(file_of "$s").$table ]] && cat "$WORK/$(file_of "$s").$table"
    done
done
[[ -z $OUT_DIR ]] || echo "callgrind outputs kept in $OUT_DIR (callgrind_annotate FILE, or kcachegrind FILE)"
