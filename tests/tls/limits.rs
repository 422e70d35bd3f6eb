//! What holds over TCP holds over TLS, on both models: backpressure with
//! the watermarks counting plaintext and TLS records, the idle timeout, the
//! input limit, a panicking handler, a lingering close, and shutdown's
//! grace period.

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use evloop::bytes::BytesMut;
use evloop::{CloseReason, Config, Conn, Handler};

use crate::client::Client;
use crate::common::{Echo, Model, TestServer, assert_reading_stopped_within, pattern};
use crate::on_both_models;
use crate::pki::pki;
use crate::script::{Scripted, Shared, closes_after};

on_both_models!(
    a_client_that_never_reads_stops_the_server_reading_over_tls,
    output_above_the_high_watermark_is_followed_by_on_drained_over_tls,
    the_idle_timeout_closes_a_silent_tls_client,
    unconsumed_input_over_the_limit_closes_a_tls_connection,
    a_panicking_handler_closes_only_its_own_tls_connection,
    a_close_while_the_client_still_sends_lingers_and_loses_no_reply,
    shutdown_flushes_queued_replies_then_sends_close_notify,
    shutdown_cuts_a_never_reading_tls_client_at_the_grace_period,
);

/// The high watermark of the backpressure scenarios.
const HIGH: usize = 64 * 1024;
/// The read budget of the backpressure scenarios.
const BUDGET: usize = 256 * 1024;

/// Writes through `client` until the server stops taking bytes for half a
/// second; returns how many plaintext bytes went out.
fn write_until_stuck(client: &mut Client, data: &[u8]) -> usize {
    client
        .tls
        .sock
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut sent = 0;
    for chunk in data.chunks(16 * 1024) {
        match client.tls.write_all(chunk).and_then(|()| client.tls.flush()) {
            Ok(()) => sent += chunk.len(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("write failed: {e}"),
        }
    }
    client.tls.sock.set_write_timeout(None).unwrap();
    sent
}

fn a_client_that_never_reads_stops_the_server_reading_over_tls(model: Model) {
    let config = Config::default()
        .write_watermarks(HIGH / 2, HIGH)
        .read_budget(BUDGET);
    let server = TestServer::start_tls(model, config, pki().acceptor(), || Echo);
    let mut client = Client::connect(server.addr, pki().client_config(&[]));
    let data = pattern(32 * 1024 * 1024, 3);
    let sent = write_until_stuck(&mut client, &data);
    // Plaintext the server holds (read, not yet taken by TLS) stays under
    // the high watermark plus one turn's budget, records counted in it.
    assert_reading_stopped_within(&server, model, sent, data.len(), HIGH, BUDGET);
    // Read the echo of everything the server read (the client's rustls may
    // hold back records it could not send): reading resumes, nothing lost.
    let read = server.stats().bytes_read as usize;
    let got = read_plaintext(&mut client, read);
    assert!(got[..] == data[..got.len()], "echo differs after backpressure");
    assert!(got.len() >= read, "every byte read was echoed");
}

/// Reads `n` plaintext bytes from the socket under `client`, without
/// writing what its rustls still holds.
fn read_plaintext(client: &mut Client, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = vec![0; 64 * 1024];
    while got.len() < n {
        match client.tls.conn.reader().read(&mut buf) {
            Ok(k) if k > 0 => got.extend_from_slice(&buf[..k]),
            _ => {
                let k = client.tls.conn.read_tls(&mut client.tls.sock).expect("the echo");
                assert!(k > 0, "the stream ended after {} bytes", got.len());
                client.tls.conn.process_new_packets().unwrap();
            }
        }
    }
    got
}

/// A piece of [`Stream`]: above the high watermark, so that each one is
/// followed by `on_drained` even when the socket takes it all at once.
const PIECE: usize = HIGH + HIGH / 2;

/// Streams 16 pieces, the next after each `on_drained`, then closes.
struct Stream {
    /// Pieces left to write.
    left: usize,
    /// Times `on_drained` ran.
    drained: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Stream {
    /// Writes the next piece, or closes after the last.
    fn next(&mut self, conn: &mut Conn<'_>) {
        if self.left == 0 {
            return conn.close();
        }
        self.left -= 1;
        conn.write(&[b'x'; PIECE]);
    }
}

impl Handler for Stream {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        self.next(conn);
    }

    fn on_data(&mut self, _: &mut Conn<'_>, input: &mut BytesMut) {
        input.clear();
    }

    fn on_drained(&mut self, conn: &mut Conn<'_>) {
        self.drained.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.next(conn);
    }
}

fn output_above_the_high_watermark_is_followed_by_on_drained_over_tls(model: Model) {
    let drained = std::sync::Arc::default();
    let counter = std::sync::Arc::clone(&drained);
    let config = Config::default().write_watermarks(HIGH / 2, HIGH);
    let server = TestServer::start_tls(model, config, pki().acceptor(), move || Stream {
        left: 16,
        drained: std::sync::Arc::clone(&counter),
    });
    let mut client = Client::connect(server.addr, pki().client_config(&[]));
    let all = client.read_to_end().expect("ended with close_notify");
    assert_eq!(all.len(), 16 * PIECE);
    assert!(all.iter().all(|&b| b == b'x'));
    assert!(
        drained.load(std::sync::atomic::Ordering::Relaxed) >= 16,
        "on_drained kept it going"
    );
}

fn the_idle_timeout_closes_a_silent_tls_client(model: Model) {
    let log = Shared::default();
    let config = Config::default().idle_timeout(Some(Duration::from_millis(200)));
    let server = TestServer::start_tls(model, config, pki().acceptor(), Scripted::factory(&log));
    let (mut active, _) = Client::greeted(server.addr, pki().client_config(&[]));
    let (mut silent, _) = Client::greeted(server.addr, pki().client_config(&[]));
    for _ in 0..6 {
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(active.echo(b"x\n"), b"x\n");
    }
    assert_eq!(closes_after(&log, 1), [CloseReason::IdleTimeout]);
    // The idle timeout closes at once, as on a plain connection: no
    // close_notify, so the client sees the stream end without one.
    let end = silent.read_to_end().expect_err("no close_notify");
    assert_eq!(end.kind(), ErrorKind::UnexpectedEof);
}

fn unconsumed_input_over_the_limit_closes_a_tls_connection(model: Model) {
    let log = Shared::default();
    let config = Config::default().max_input(1000);
    let server = TestServer::start_tls(model, config, pki().acceptor(), Scripted::factory(&log));
    let mut client = Client::connect(server.addr, pki().client_config(&[]));
    let _ = client.tls.write_all(&[b'x'; 5000]);
    let _ = client.tls.flush();
    let _ = client.read_to_end();
    assert_eq!(closes_after(&log, 1), [CloseReason::InputLimit]);
    let stats = server.wait_for_stats("closed", |s| s.open == 0);
    assert_eq!(stats.closed_by(&CloseReason::InputLimit), 1);
}

fn a_panicking_handler_closes_only_its_own_tls_connection(model: Model) {
    let log = Shared::default();
    let server = TestServer::start_tls(
        model,
        Config::default(),
        pki().acceptor(),
        Scripted::factory(&log),
    );
    let (mut healthy, _) = Client::greeted(server.addr, pki().client_config(&[]));
    let (mut doomed, _) = Client::greeted(server.addr, pki().client_config(&[]));
    doomed.tls.write_all(b"P").unwrap();
    doomed.tls.flush().unwrap();
    assert!(
        doomed.read_to_end().is_err(),
        "reset, not closed with close_notify"
    );
    assert_eq!(closes_after(&log, 1), [CloseReason::Panicked]);
    assert_eq!(healthy.echo(b"still here\n"), b"still here\n");
    let stats = server.wait_for_stats("panic counted", |s| s.panics == 1);
    assert_eq!(stats.closed_by(&CloseReason::Panicked), 1);
}

fn a_close_while_the_client_still_sends_lingers_and_loses_no_reply(model: Model) {
    let log = Shared::default();
    let server = TestServer::start_tls(
        model,
        Config::default(),
        pki().acceptor(),
        Scripted::factory(&log),
    );
    let (mut client, _) = Client::greeted(server.addr, pki().client_config(&[]));
    // The close comes first, the rest on its heels while the server closes.
    let mut burst = b"C".to_vec();
    burst.extend(pattern(256 * 1024, 5));
    client.tls.write_all(&burst).unwrap();
    client.close_notify();
    let got = client
        .read_to_end()
        .expect("the reply, then close_notify; no reset");
    assert_eq!(got, b"bye\n");
    assert_eq!(closes_after(&log, 1), [CloseReason::Closed]);
}

fn shutdown_flushes_queued_replies_then_sends_close_notify(model: Model) {
    let server = TestServer::start_tls(model, Config::default(), pki().acceptor(), || Echo);
    let mut client = Client::connect(server.addr, pki().client_config(&[]));
    let payload = pattern(32 * 1024, 11);
    client.tls.write_all(&payload).unwrap();
    client.tls.flush().unwrap();
    server.wait_for_stats("read", |s| s.bytes_read == 32 * 1024);
    server.begin_shutdown(Duration::from_secs(5));
    let got = client.read_to_end().expect("ended with close_notify");
    assert!(got == payload, "lost bytes at shutdown: got {}", got.len());
    server.wait_for_stats("closed", |s| s.closed_by(&CloseReason::Shutdown) == 1);
}

fn shutdown_cuts_a_never_reading_tls_client_at_the_grace_period(model: Model) {
    let server = TestServer::start_tls(model, Config::default(), pki().acceptor(), || Echo);
    let mut client = Client::connect(server.addr, pki().client_config(&[]));
    let sent = write_until_stuck(&mut client, &pattern(32 * 1024 * 1024, 4));
    assert!(sent > 0);
    let started = std::time::Instant::now();
    server.stop(Duration::from_millis(300));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the grace period bounded the stop"
    );
    drop(client);
}
