//! Bounded memory per connection, on both models: a client that never reads
//! stops the server reading and loses nothing; unconsumed input is kept for
//! the next call, up to a limit that closes the connection.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::BytesMut;
use evloop::{CloseReason, Config, Conn, Handler};

use crate::common::{Echo, Model, TestServer, assert_reading_stopped_within, pattern};
use crate::on_both_models;

on_both_models!(
    a_client_that_never_reads_stops_the_server_reading,
    partial_input_is_kept_for_the_next_call,
    unconsumed_input_over_the_limit_closes_with_input_limit,
);

/// The high watermark of [`a_client_that_never_reads_stops_the_server_reading`].
const HIGH: usize = 64 * 1024;
/// The read budget of [`a_client_that_never_reads_stops_the_server_reading`].
const BUDGET: usize = 256 * 1024;

/// Writes from `stream` until the peer stops taking bytes for half a
/// second; returns how many bytes were sent (a prefix of `data`).
fn write_until_stuck(stream: &mut TcpStream, data: &[u8]) -> usize {
    stream
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut sent = 0;
    while sent < data.len() {
        match stream.write(&data[sent..(sent + 64 * 1024).min(data.len())]) {
            Ok(n) => sent += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("write failed: {e}"),
        }
    }
    sent
}

/// The reactor pauses reading at the high watermark (and counts the pause);
/// a connection thread stops reading while its write is blocked. Either way
/// the server holds little and loses nothing.
fn a_client_that_never_reads_stops_the_server_reading(model: Model) {
    let config = Config::default()
        .write_watermarks(HIGH / 2, HIGH)
        .read_budget(BUDGET);
    let server = TestServer::start(model, config, || Echo);
    let mut client = server.connect();
    let data = pattern(32 * 1024 * 1024, 3);

    let sent = write_until_stuck(&mut client, &data);
    // What the server holds (read but not yet written) stays under the high
    // watermark plus one turn's read budget; the rest waits in kernel buffers.
    assert_reading_stopped_within(&server, model, sent, data.len(), HIGH, BUDGET);

    // Once the client drains, reading resumes and every byte comes back.
    let mut got = vec![0; sent];
    client.read_exact(&mut got).unwrap();
    assert!(got[..] == data[..sent], "echo differs after backpressure");
    // The reactor publishes its counters at the end of each turn: wait for
    // the last one.
    let sent = sent as u64;
    server.wait_for_stats("all counted", |s| s.bytes_written == sent && s.bytes_read == sent);
    drop((client, server));
}

/// Echoes complete lines and keeps incomplete ones for later.
struct Lines;

impl Handler for Lines {
    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        while let Some(end) = input.iter().position(|&b| b == b'\n') {
            conn.write_bytes(input.split_to(end + 1).freeze());
        }
    }
}

fn partial_input_is_kept_for_the_next_call(model: Model) {
    let server = TestServer::start(model, Config::default(), || Lines);
    let mut client = server.connect();
    client.write_all(b"hel").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    client.write_all(b"lo\nwor").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    client.write_all(b"ld\n").unwrap();
    let mut got = vec![0; 12];
    client.read_exact(&mut got).unwrap();
    assert_eq!(got, b"hello\nworld\n");
}

fn unconsumed_input_over_the_limit_closes_with_input_limit(model: Model) {
    let server = TestServer::start(model, Config::default().max_input(1000), || Lines);
    let mut client = server.connect();
    client.write_all(b"short line\n").unwrap();
    let mut got = [0; 11];
    client.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"short line\n");

    let _ = client.write_all(&[b'x'; 5000]);
    let mut rest = Vec::new();
    let _ = client.read_to_end(&mut rest);
    assert!(rest.is_empty(), "nothing is echoed for an over-long line");
    let stats = server.wait_for_stats("closed", |s| s.open == 0);
    assert_eq!(stats.closed_by(&CloseReason::InputLimit), 1);
    drop((client, server));
}
