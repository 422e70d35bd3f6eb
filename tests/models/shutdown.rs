//! Graceful shutdown on both models: the listener closes at once, queued
//! replies are flushed, a client that never reads is cut at the end of the
//! grace period, and every fd is returned.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use evloop::{CloseReason, Config, Conn, Handler};

use crate::common::{Model, TestServer, pattern};
use crate::on_both_models;

on_both_models!(
    shutdown_flushes_queued_replies_before_closing,
    shutdown_flushes_large_queued_replies_before_closing,
    shutdown_cuts_a_never_reading_client_at_the_grace_period,
    shutdown_closes_listener_and_connections,
);

fn shutdown_flushes_queued_replies_before_closing(model: Model) {
    let server = TestServer::echo(model);
    let mut client = server.connect();
    let payload = pattern(32 * 1024, 11);
    client.write_all(&payload).unwrap();
    // Shut down once the server has read it, while we have not read the echo.
    server.wait_for_stats("read", |s| s.bytes_read == 32 * 1024);
    server.begin_shutdown(Duration::from_secs(5));
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    assert!(got == payload, "lost bytes at shutdown: got {}", got.len());
    server.wait_for_stats("closed", |s| s.closed_by(&CloseReason::Shutdown) == 1);
    drop((client, server));
}

/// Bytes queued by [`Reply`]: more than kernel buffers hold, so most of it
/// is still queued in the server when shutdown begins.
const LARGE: usize = 16 * 1024 * 1024;

/// Queues its reply on the first bytes it receives.
struct Reply(Option<Bytes>);

impl Handler for Reply {
    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        input.clear();
        if let Some(reply) = self.0.take() {
            conn.write_bytes(reply);
        }
    }
}

fn shutdown_flushes_large_queued_replies_before_closing(model: Model) {
    let reply = Bytes::from(pattern(LARGE, 12));
    let expected = reply.clone();
    let server = TestServer::start(model, Config::default(), move || Reply(Some(reply.clone())));
    let mut client = server.connect();
    client.write_all(b"go").unwrap();
    // Shut down once the server has the request, while we have read nothing.
    server.wait_for_stats("request read", |s| s.bytes_read == 2);
    server.begin_shutdown(Duration::from_secs(5));
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    assert!(
        got == expected,
        "lost bytes at shutdown: got {} of {LARGE}",
        got.len()
    );
    server.wait_for_stats("closed", |s| s.closed_by(&CloseReason::Shutdown) == 1);
    drop((client, server));
}

/// Queues [`FLOOD`] bytes, far more than kernel buffers hold, on the first
/// bytes it receives.
struct Flood;

/// A megabyte of zeros, queued many times over without copying.
static ZEROS: [u8; 1 << 20] = [0; 1 << 20];

/// Bytes [`Flood`] queues.
const FLOOD: usize = 64 * ZEROS.len();

impl Handler for Flood {
    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        input.clear();
        for _ in 0..FLOOD / ZEROS.len() {
            conn.write_bytes(Bytes::from_static(&ZEROS));
        }
    }
}

fn shutdown_cuts_a_never_reading_client_at_the_grace_period(model: Model) {
    let server = TestServer::start(model, Config::default(), || Flood);
    let mut client = server.connect();
    client.write_all(b"go").unwrap();
    server.wait_for_stats("output to back up", |s| s.bytes_read > 0);

    let grace = Duration::from_millis(300);
    let start = Instant::now();
    server.begin_shutdown(grace);
    server.wait_for_stats("cut off", |s| s.closed_by(&CloseReason::Shutdown) == 1);
    let took = start.elapsed();
    let early = grace - Duration::from_millis(20); // timers may round a little
    assert!(
        took >= early && took < grace + Duration::from_secs(2),
        "cut off after {took:?}"
    );
    server.stop(grace);
    let mut got = Vec::new();
    let result = client.read_to_end(&mut got);
    assert!(result.is_err() || got.len() < FLOOD, "the client got everything");
    drop(client);
}

fn shutdown_closes_listener_and_connections(model: Model) {
    let server = TestServer::echo(model);
    let addr = server.addr;
    let mut idle = server.connect();
    server.wait_for_stats("accepted", |s| s.open == 1);
    server.stop(Duration::from_secs(1));
    let mut buf = [0; 1];
    assert_eq!(idle.read(&mut buf).unwrap(), 0, "connection closed at shutdown");
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "listener closed"
    );
    drop(idle);
}
