#!/usr/bin/env bash
# A fleet: three hello_http processes on loopback ports behind HAProxy
# (round-robin, HTTP health checks every 100 ms), driven by $CLIENTS
# keep-alive HTTP clients through HAProxy for three phases:
#
#   steady     $PHASE seconds as they are;
#   rolling    each of the three restarted in turn by handover (--handover:
#              the new process takes the socket over, the old one drains);
#   kill -9    backend s2 killed under load, the fleet left at two.
#
# Each backend answers $DELAY_MS late (hello_http --delay), so requests are
# in flight when s2 dies. HAProxy names the server of every answer
# (X-Server, its own error pages included). Printed per phase:
#
#   rolling restart: requests=.. failures=0 longest_handover_ms=.. by_kind=
#   kill -9 s2: requests=.. failures=N by_kind=RemoteDisconnected:N haproxy_s2_in_flight_before=N ..
#
# What the kill shows: the clients lose the requests that were in flight on
# s2 — as many as HAProxy had open on s2 just before the kill (its `scur`)
# — and nothing else: HAProxy closes each of those clients' connections
# without an answer (a keep-alive client may resend an idempotent request
# on a new one), no error names s1 or s3, and new requests for s2 fail to
# connect and are redispatched (retries 3, option redispatch) until the
# health checks mark it down. Exits 1 if the steady or rolling phase failed
# a request, or the kill failed one that HAProxy says was on s1 or s3.
#
# Usage: scripts/fleet.sh
# Environment: CLIENTS=30 DELAY_MS=200 PHASE=3 (seconds) HAPROXY=haproxy
#   BIN=target/release/examples NO_BUILD= (set: use BIN as it is)
# Takes about 4 x PHASE + 5 seconds, plus the release build. Prints
# "SKIPPED: .." and exits 0 when HAProxy is not installed. Everything stays
# on 127.0.0.1; every process it starts is ended by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/common.sh

CLIENTS=${CLIENTS:-30} DELAY_MS=${DELAY_MS:-200} PHASE=${PHASE:-3}
BIN=${BIN:-target/release/examples}
HAPROXY=${HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}
if [[ ! -x $HAPROXY ]]; then
    echo "SKIPPED: haproxy is not installed (Debian package haproxy)" >&2
    exit 0
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[[ -n ${NO_BUILD:-} ]] || cargo build --release --quiet --example hello_http

tmp=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do alive "$pid" && terminate "$pid"; done
    rm -rf "$tmp"
}
trap cleanup EXIT

front=$(free_port 17400)
declare -a port backend
next=$((front + 1))
for i in 1 2 3; do
    port[i]=$(free_port "$next")
    next=$((port[i] + 1))
done

# start_backend I: backend sI, in the background, taking over from the
# running one if there is one; its PID in backend[I].
start_backend() {
    "$BIN/hello_http" --addr "127.0.0.1:${port[$1]}" --threads 1 --delay "$DELAY_MS" \
        --handover "$tmp/s$1.sock" 2>>"$tmp/s$1.log" &
    backend[$1]=$!
    pids+=("${backend[$1]}")
}

# haproxy_cmd COMMAND: a command on HAProxy's admin socket; prints the answer.
haproxy_cmd() {
    python3 - "$tmp/haproxy.sock" "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
out = b""
while chunk := s.recv(65536):
    out += chunk
print(out.decode(), end="")
EOF
}

# stat SERVER FIELD: one field of HAProxy's `show stat` for backend server SERVER.
stat() {
    haproxy_cmd "show stat" | awk -F, -v s="$1" -v f="$2" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == f || $i == "# " f) col = i }
        $1 == "be" && $2 == s { print $col }'
}

for i in 1 2 3; do start_backend "$i"; done
cat >"$tmp/haproxy.cfg" <<EOF
global
    maxconn 4096
    stats socket $tmp/haproxy.sock level admin
defaults
    mode http
    timeout connect 1s
    timeout check 1s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch
    # Keep-alive to the servers too (HAProxy's default): a draining backend
    # closes each idle connection HAProxy holds to it at once, and the one
    # carrying a request after answering it with "Connection: close".
frontend fe
    bind 127.0.0.1:$front
    default_backend be
backend be
    balance roundrobin
    option httpchk GET /health
    default-server inter 100ms fall 2 rise 2
    http-after-response set-header X-Server %s
    server s1 127.0.0.1:${port[1]} check
    server s2 127.0.0.1:${port[2]} check
    server s3 127.0.0.1:${port[3]} check
EOF
"$HAPROXY" -db -f "$tmp/haproxy.cfg" 2>"$tmp/haproxy.log" &
haproxy=$!
pids+=("$haproxy")
for ((i = 0; i < 100; i++)); do
    [[ -S $tmp/haproxy.sock ]] && [[ $(haproxy_cmd "show stat" | grep -c '^be,s[0-9],.*,UP,' || true) == 3 ]] && break
    sleep 0.1
done
((i < 100)) || { echo "fleet: HAProxy did not see three backends up:" >&2; cat "$tmp"/*.log >&2; exit 1; }

# The clients: each a keep-alive connection through HAProxy, one request at
# a time; every answer tallied under the phase named in $tmp/phase, by
# status and by the server HAProxy names.
echo steady >"$tmp/phase"
python3 - "$front" "$CLIENTS" "$tmp/phase" >"$tmp/clients.out" <<'EOF' &
import http.client, sys, threading, collections
port, clients, phase_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
tally = collections.Counter()
lock = threading.Lock()
def phase():
    with open(phase_file) as f:
        return f.read().strip()
def client():
    conn = None
    while (p := phase()) != "done":
        try:
            conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=20)
            conn.request("GET", "/")
            r = conn.getresponse()
            r.read()
            key = (p, "ok" if r.status == 200 else "fail", r.getheader("X-Server", "?"))
            if r.getheader("Connection", "").lower() == "close":
                conn.close(); conn = None
        except Exception as e:
            key = (p, "fail", type(e).__name__)
            conn = None
        with lock:
            tally[key] += 1
threads = [threading.Thread(target=client) for _ in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
for (p, outcome, server), n in sorted(tally.items()):
    print(p, outcome, server, n)
EOF
client=$!
pids+=("$client")

sleep "$PHASE"
echo rolling >"$tmp/phase"
longest=0
for i in 1 2 3; do
    old=${backend[$i]}
    t0=$(date +%s%3N)
    start_backend "$i"
    for ((w = 0; w < 2000; w++)); do alive "$old" || break; sleep 0.01; done
    alive "$old" && { echo "fleet: s$i's old process did not exit" >&2; exit 1; }
    took=$(($(date +%s%3N) - t0))
    ((took > longest)) && longest=$took
    sleep 0.5
done
sleep "$PHASE"
echo kill >"$tmp/phase"
sleep 0.5
in_flight=$(stat s2 scur)
kill -KILL "${backend[2]}"
wait "${backend[2]}" 2>/dev/null || true
sleep "$PHASE"
echo done >"$tmp/phase"
wait "$client"

count() { awk -v p="$1" -v o="$2" '$1 == p && $2 == o { n += $4 } END { print n + 0 }' "$tmp/clients.out"; }
by_server() { awk -v p="$1" '$1 == p && $2 == "fail" { printf "%s%s:%s", sep, $3, $4; sep = "," }' "$tmp/clients.out"; }
total() { echo $(($(count "$1" ok) + $(count "$1" fail))); }

echo "fleet: 3 x hello_http --delay $DELAY_MS behind $("$HAPROXY" -v | head -1 | cut -d' ' -f1-3) on 127.0.0.1:$front, $CLIENTS keep-alive clients"
echo "steady: requests=$(total steady) failures=$(count steady fail)"
echo "rolling restart: requests=$(total rolling) failures=$(count rolling fail) longest_handover_ms=$longest" \
    "by_kind=$(by_server rolling)"
echo "kill -9 s2: requests=$(total kill) failures=$(count kill fail) by_kind=$(by_server kill)" \
    "haproxy_s2_in_flight_before=$in_flight haproxy_s2_srv_abrt=$(stat s2 srv_abrt)" \
    "haproxy_s2_status=$(stat s2 status)"
failed=0
(($(count steady fail) == 0 && $(count rolling fail) == 0)) || failed=1
[[ -z $(awk '$1 == "kill" && $2 == "fail" && ($3 == "s1" || $3 == "s3")' "$tmp/clients.out") ]] || failed=1
exit "$failed"
