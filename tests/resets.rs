//! Resets: clients that abort (`SO_LINGER` 0, so the kernel sends a reset
//! instead of an end of stream) at random points, mid-request and
//! mid-response, on an echo server and an HTTP server of both execution
//! models. The server must not panic, must close every connection it
//! accepted, count each abort under [`CloseReason::Reset`], and end with the
//! process's fds where they started; a fresh client is then served as
//! before.
//!
//! # What the server can observe
//!
//! A reset reaches the server's socket as a pending error: the poller
//! reports it (`EPOLLERR`), or the next read or write fails with
//! `ECONNRESET` or `EPIPE`; both models count it as [`CloseReason::Reset`].
//! Bytes that arrived before the reset may still be read first, and a reset
//! that arrives before the connection is even accepted stays attached to
//! the socket that `accept` returns, so it is seen all the same. A server
//! would count something else only if it closed the connection first, or
//! saw an end of stream; none of the servers here closes a connection on its
//! own (echo never does, HTTP keeps valid requests alive and none of these
//! aborts lasts long enough for a timeout), and a client that aborts sends no
//! end of stream. So every abort, mid-request ones included, must be counted
//! as a reset, and the fresh client's orderly close as the one
//! [`CloseReason::PeerClosed`].
//!
//! The abort points come from a seeded generator; the seed is printed, and
//! `EVLOOP_SEED=<n>` replays a run. The CI run makes 300 aborts per
//! server; the soak (`EVLOOP_SOAK=1`) thousands.

#![cfg(feature = "http")]

mod common;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Echo, assert_echoes, figure, localhost, pattern, scaled, wait_until};
use evloop::http::{HttpServer, Response};
use evloop::{CloseReason, Model, Server, ServerHandle, Stats};
use socket2::SockRef;

/// Size of the HTTP server's `/big` response: far more than the socket
/// buffers hold, so a client that stops reading leaves the server with
/// output queued.
const BIG: usize = 8 * 1024 * 1024;
/// Largest payload an echo client sends before it aborts.
const MAX_ECHO: usize = 4 * 1024 * 1024;
/// Largest declared body of an aborted HTTP upload (below the default
/// `max_body`, so the server reads it rather than refusing it).
const MAX_UPLOAD: usize = 512 * 1024;
/// The seed used unless `EVLOOP_SEED` names another.
const DEFAULT_SEED: u64 = 0x5EED_AB07;

on_both_models!(
    echo_clients_aborting_at_random_points_are_counted_as_resets,
    http_clients_aborting_at_random_points_are_counted_as_resets,
);

/// How many clients abort, per server.
fn aborts() -> usize {
    scaled(300, 5_000)
}

/// The name figures use for `model`.
fn name(model: Model) -> &'static str {
    match model {
        Model::Reactor => "reactor",
        Model::Threads => "threads",
    }
}

/// Echo clients abort mid-request (part of a message sent, nothing read)
/// or mid-response (a large message sent while reading part of its echo).
fn echo_clients_aborting_at_random_points_are_counted_as_resets(model: Model) {
    let scenario = format!("resets echo {}", name(model));
    let mut rng = Rng::seeded(&scenario);
    let server = Server::new(localhost())
        .threads(2)
        .model(model)
        .start(|| Echo)
        .unwrap();
    let payload = pattern(MAX_ECHO, 11);
    let (n, mut mid_response) = (aborts(), 0);
    for _ in 0..n {
        let stream = connect(server.local_addr());
        if rng.below(2) == 0 {
            let sent = 1 + rng.below(64 * 1024);
            (&stream).write_all(&payload[..sent]).unwrap();
        } else {
            let len = 256 * 1024 + rng.below(MAX_ECHO - 256 * 1024);
            let stop_after = 1 + rng.below(len - 1);
            exchange_until(&stream, &payload[..len], &payload[..stop_after]);
            mid_response += 1;
        }
        abort(stream);
    }

    let mut fresh = connect(server.local_addr());
    assert_echoes(&mut fresh, b"still serving after the resets");
    drop(fresh);
    let stats = assert_every_abort_counted(&server, n);
    report(&scenario, &stats, n, mid_response);
    stop(server);
}

/// HTTP clients abort mid-head, mid-body, or mid-response (part of an
/// 8 MiB response read).
fn http_clients_aborting_at_random_points_are_counted_as_resets(model: Model) {
    let scenario = format!("resets http {}", name(model));
    let mut rng = Rng::seeded(&scenario);
    let big = Bytes::from(pattern(BIG, 13));
    let body = big.clone();
    let server = HttpServer::new(localhost())
        .threads(2)
        .model(model)
        .start(move |req| match req.path() {
            "/big" => Response::new(200).body(body.clone()),
            _ => Response::new(200).body(req.body().to_vec()),
        })
        .unwrap();
    let (n, mut mid_response) = (aborts(), 0);
    for _ in 0..n {
        let stream = connect(server.local_addr());
        match rng.below(3) {
            0 => {
                let head =
                    b"GET /big HTTP/1.1\r\nHost: aborts\r\nX-Filler: abcdefghijklmnopqrstuvwxyz\r\n\r\n";
                let cut = 1 + rng.below(head.len() - 1);
                (&stream).write_all(&head[..cut]).unwrap();
            }
            1 => {
                let len = 1 + rng.below(MAX_UPLOAD);
                let head = format!("POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: {len}\r\n\r\n");
                (&stream).write_all(head.as_bytes()).unwrap();
                (&stream).write_all(&big[..rng.below(len)]).unwrap();
            }
            _ => {
                (&stream)
                    .write_all(b"GET /big HTTP/1.1\r\nHost: aborts\r\n\r\n")
                    .unwrap();
                read_some(&stream, 1 + rng.below(BIG));
                mid_response += 1;
            }
        }
        abort(stream);
    }

    assert_big_response(server.local_addr(), &big);
    let stats = assert_every_abort_counted(&server, n);
    report(&scenario, &stats, n, mid_response);
    stop(server);
}

/// Connects to `addr` with a bounded read timeout.
fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Closes `stream` abortively: `SO_LINGER` 0 makes the close send a reset.
fn abort(stream: TcpStream) {
    SockRef::from(&stream).set_linger(Some(Duration::ZERO)).unwrap();
    drop(stream);
}

/// Sends `request` while reading its echo, until `expect` (a prefix of
/// `request`) has come back and been checked; the rest of `request` stays
/// unsent.
#[track_caller]
fn exchange_until(stream: &TcpStream, request: &[u8], expect: &[u8]) {
    stream.set_nonblocking(true).unwrap();
    let (mut sent, mut got) = (0, Vec::with_capacity(expect.len()));
    let mut buf = vec![0; 64 * 1024];
    let start = Instant::now();
    while got.len() < expect.len() {
        assert!(start.elapsed() < Duration::from_secs(10), "the echo stalled");
        let wrote = match (&*stream).write(&request[sent..]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => panic!("write failed: {e}"),
        };
        sent += wrote;
        let want = (expect.len() - got.len()).min(buf.len());
        let read = match (&*stream).read(&mut buf[..want]) {
            Ok(0) => panic!("the server closed after {} bytes", got.len()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => panic!("read failed: {e}"),
        };
        got.extend_from_slice(&buf[..read]);
        if wrote + read == 0 {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    assert!(got == expect, "the echo differs from what was sent");
    stream.set_nonblocking(false).unwrap();
}

/// Reads and drops `n` bytes.
#[track_caller]
fn read_some(stream: &TcpStream, n: usize) {
    let copied = io::copy(&mut stream.take(n as u64), &mut io::sink()).unwrap();
    assert_eq!(copied, n as u64, "the response ended early");
}

/// A fresh client gets the whole `/big` response, byte for byte.
#[track_caller]
fn assert_big_response(addr: SocketAddr, big: &[u8]) {
    let stream = connect(addr);
    (&stream)
        .write_all(b"GET /big HTTP/1.1\r\nHost: fresh\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "HTTP/1.1 200 OK\r\n");
    while line != "\r\n" {
        line.clear();
        reader.read_line(&mut line).unwrap();
    }
    let mut body = vec![0; big.len()];
    reader.read_exact(&mut body).unwrap();
    assert!(body == big, "the response after the resets is corrupt");
}

/// Waits until every connection (the `n` aborted ones and the fresh one)
/// is closed, then asserts each abort was counted as a reset and nothing
/// panicked; returns the stats.
#[track_caller]
fn assert_every_abort_counted(server: &ServerHandle, n: usize) -> Stats {
    let total = n as u64 + 1;
    let stats = wait_until("every connection closed", || {
        let s = server.stats();
        (s.closed_total() >= total && s.open == 0).then_some(s)
    });
    assert_eq!(
        (stats.accepted, stats.closed_total()),
        (total, total),
        "{stats:?}"
    );
    assert_eq!(stats.panics, 0, "{stats:?}");
    assert_eq!(stats.closed_by(&CloseReason::Reset), n as u64, "{stats:?}");
    assert_eq!(stats.closed_by(&CloseReason::PeerClosed), 1, "{stats:?}");
    stats
}

/// Prints the scenario's figures.
fn report(scenario: &str, stats: &Stats, n: usize, mid_response: usize) {
    figure(scenario, "aborts", n);
    figure(scenario, "aborts mid-response", mid_response);
    figure(scenario, "closed as reset", stats.closed_by(&CloseReason::Reset));
    figure(
        scenario,
        "bytes written by the server (MiB)",
        stats.bytes_written >> 20,
    );
}

/// Shuts `server` down and joins it.
fn stop(server: ServerHandle) {
    server.shutdown(Duration::ZERO);
    server.join().unwrap();
}

/// A small deterministic generator (xorshift64*), so a failing run can be
/// replayed from its printed seed.
struct Rng(u64);

impl Rng {
    /// The generator for `scenario`: `EVLOOP_SEED` or [`DEFAULT_SEED`],
    /// printed.
    fn seeded(scenario: &str) -> Rng {
        let seed = std::env::var("EVLOOP_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(DEFAULT_SEED);
        figure(scenario, "seed (EVLOOP_SEED)", seed);
        Rng(seed | 1)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as usize % n
    }
}
