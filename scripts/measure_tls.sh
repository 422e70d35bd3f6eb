#!/usr/bin/env bash
# evloop's TLS against tokio-rustls, side by side: server CPU time per echo
# over TLS, and per full handshake.
#
# Both servers use the same rustls config (evloop::tls::server_config: ring,
# TLS 1.3, an ECDSA P-256 certificate that a CA made here signed) and run
# pinned to CPU $SERVER_CPU, one thread each: `echo_server --threads 1
# --tls-cert ..` and `tokio_tls_echo` (current-thread tokio, tokio-rustls).
# scripts/measure_echo.sh runs the rounds, alternating the two servers, with
# loadgen --tls pinned to CPU $CLIENT_CPU; each part ends with a table of
# medians and the evloop/tokio ratio of CPU per message:
#
# * echo: $CONNS (100) connections, each handshaken once, then one message
#   of $SIZE (64) bytes in flight each: cpu_us/msg is per echo.
# * handshakes: $HS_CONNS (16) connections at a time, each a new TCP
#   connection, a full TLS 1.3 handshake (the client resumes nothing), one
#   echo of $SIZE bytes, close_notify and the close (loadgen --handshakes):
#   cpu_us/msg is per handshake, msgs/s is handshakes per second. The client
#   checks the certificate, which costs it more than the server pays, so the
#   server need not be busy all the time: compare CPU per handshake.
# * callgrind (PARTS="callgrind", not run by default): user-space
#   instructions per echo over TLS ($CG_N and 3 x $CG_N echoes) and per
#   handshake ($CG_HS_N and 3 x $CG_HS_N), with scripts/callgrind_echo.sh:
#   figures that do not move with the machine's load.
#
# Usage: scripts/measure_tls.sh
# Environment (defaults): PARTS="echo handshakes" ROUNDS=5 CONNS=100
#   HS_CONNS=16 SIZE=64 WARMUP=1 DURATION=3 SERVER_CPU=0 CLIENT_CPU=1
#   CG_N=20000 CG_HS_N=300
# Needs openssl (the command) for the certificates, valgrind for callgrind.
set -euo pipefail
cd "$(dirname "$0")/.."

PARTS=${PARTS:-"echo handshakes"}
export ROUNDS=${ROUNDS:-5} SIZE=${SIZE:-64} WARMUP=${WARMUP:-1} DURATION=${DURATION:-3}
CONNS=${CONNS:-100}
HS_CONNS=${HS_CONNS:-16}

command -v openssl >/dev/null || { echo "measure_tls: openssl is needed to make the certificates" >&2; exit 1; }
# Short relative paths: they appear in the servers' names in the tables.
PKI=target/tls-pki
mkdir -p "$PKI"
trap 'rm -rf "$PKI"' EXIT

# A CA, and a certificate it signs for localhost and 127.0.0.1 (loadgen
# checks the server's certificate against the IP address it dials).
p256=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${p256[@]}" -subj /CN=evloop-measure-ca -days 2 \
    -keyout "$PKI/ca.key" -out "$PKI/ca.pem" 2>/dev/null
openssl req "${p256[@]}" -subj /CN=localhost -keyout "$PKI/k.pem" -out "$PKI/leaf.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$PKI/ext"
openssl x509 -req -in "$PKI/leaf.csr" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 2 -extfile "$PKI/ext" -out "$PKI/c.pem" 2>/dev/null

export SERVERS="echo_server:--threads,1,--tls-cert,$PKI/c.pem,--tls-key,$PKI/k.pem \
tokio_tls_echo:--cert,$PKI/c.pem,--key,$PKI/k.pem"

for part in $PARTS; do
    case $part in
    echo)
        echo "== TLS echo: cpu_us/msg is server CPU per echo" >&2
        CONNS=$CONNS LOADGEN_ARGS="--tls $PKI/ca.pem" scripts/measure_echo.sh
        ;;
    handshakes)
        echo "== TLS handshakes: cpu_us/msg is server CPU per handshake, msgs/s handshakes per second" >&2
        CONNS=$HS_CONNS LOADGEN_ARGS="--tls $PKI/ca.pem --handshakes" scripts/measure_echo.sh
        ;;
    callgrind)
        echo "== callgrind: instructions per TLS echo, then per handshake" >&2
        N=${CG_N:-20000} CONNS=$CONNS PROFILE=echo_server LOAD="--size $SIZE --tls $PKI/ca.pem" \
            scripts/callgrind_echo.sh
        N=${CG_HS_N:-300} CONNS=$HS_CONNS PROFILE=echo_server UNIT=handshake \
            LOAD="--size $SIZE --tls $PKI/ca.pem --handshakes" scripts/callgrind_echo.sh
        ;;
    *) echo "measure_tls: unknown part $part in PARTS (echo, handshakes, callgrind)" >&2; exit 2 ;;
    esac
done
