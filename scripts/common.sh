# Helpers shared by the measurement scripts (sourced, not run).

# Whether PID runs (a zombie, exited but not yet reaped, does not count).
alive() {
    local state
    state=$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null) && [[ -n $state && $state != Z ]]
}

# terminate PID [wait]: ends one of this script's processes by its PID
# (with "wait": lets it exit by itself): SIGTERM, $TERM_GRACE seconds (5) to
# exit, then SIGKILL; reaps it when it is our child.
terminate() {
    local pid=$1 grace=${TERM_GRACE:-5} i
    [[ ${2:-} == wait ]] || kill "$pid" 2>/dev/null || true
    for ((i = 0; i < grace * 20; i++)); do
        alive "$pid" || break
        sleep 0.05
    done
    if alive "$pid"; then
        echo "$(basename "$0"): process $pid still there after $grace s, SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# The PIDs a script started and has not stopped yet, for `stop_pid` and
# `kill_leftovers`; a script appends to it as it starts processes.
LIVE=()

# stop_pid PID [wait]: ends one of our processes (see `terminate`) and
# forgets it.
stop_pid() {
    local pid=$1 p keep=()
    terminate "$pid" "${2:-}"
    for p in "${LIVE[@]}"; do [[ $p == "$pid" ]] || keep+=("$p"); done
    LIVE=("${keep[@]}")
}

# kill_leftovers: at exit, kills what is still in LIVE, newest first (a
# traced server before its strace), and reaps it.
kill_leftovers() {
    local pid i
    for ((i = ${#LIVE[@]} - 1; i >= 0; i--)); do
        pid=${LIVE[i]}
        kill "$pid" 2>/dev/null && echo "$(basename "$0"): killed leftover process $pid" >&2
    done
    wait 2>/dev/null || true
}

# A server entry is an example name, optionally with arguments after a ':',
# commas for spaces: "echo_server:--threads,1" runs `echo_server --threads 1`.
# bin_of ENTRY / args_of ENTRY / file_of ENTRY: its example, its extra
# arguments (one a line), and a file-name-safe label.
bin_of() { echo "${1%%:*}"; }
args_of() { [[ $1 == *:* ]] && tr ',' '\n' <<<"${1#*:}" || true; }
file_of() { tr -c 'A-Za-z0-9_.\n-' '_' <<<"$1"; }

# Whether something listens on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# First port at or above $1 that nothing listens on.
free_port() {
    local port=$1
    while port_open "$port"; do port=$((port + 1)); done
    echo "$port"
}

# field NAME LINE: value of NAME=value in a loadgen result line.
field() { awk -v k="$1" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' <<<"$2"; }

# Median of the numbers on stdin (NA when none).
median() {
    grep -E '^[0-9.eE+-]+$' | sort -g | awk '{ a[NR] = $1 }
        END { if (NR == 0) print "NA"; else if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# CPU ticks (user + system, all threads) PID has used; `getconf CLK_TCK`
# of them to a second.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# work_dir NAME: makes $WORK, a fresh temporary directory, and arranges for
# it to go, and for every process still in LIVE to be stopped, at exit.
work_dir() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
    trap 'kill_leftovers; rm -rf "$WORK"' EXIT
    trap 'exit 130' INT TERM
}
