//! Echo and input limits over real sockets, on both models: every byte comes
//! back exactly whatever the sizes, splits and number of clients; a client
//! that never reads stops the server reading; unconsumed input is bounded;
//! every fd is returned afterwards.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use bytes::BytesMut;
use evloop::{CloseReason, Config, Conn, Handler};

use crate::common::{Echo, echo_through, finish_and_expect_eof, pattern};
use crate::model::{Model, Server};

on_both_models!(
    payloads_from_one_byte_to_16_mib_are_echoed_exactly,
    a_message_split_into_single_byte_writes_is_echoed_in_order,
    many_messages_coalesced_into_one_write_are_echoed_whole,
    two_hundred_fifty_clients_at_once_each_get_their_own_bytes,
    half_closed_client_still_receives_all_of_its_echo,
    stats_count_bytes_and_connections,
    a_client_that_never_reads_stops_the_server_reading,
    partial_input_is_kept_for_the_next_call,
    unconsumed_input_over_the_limit_closes_with_input_limit,
);

fn payloads_from_one_byte_to_16_mib_are_echoed_exactly(model: Model) {
    let server = Server::echo(model);
    let sizes = [
        1,
        2,
        63,
        64,
        1500,
        16 * 1024,
        64 * 1024 + 7,
        1024 * 1024,
        16 * 1024 * 1024,
    ];
    for (seed, len) in sizes.into_iter().enumerate() {
        let stream = server.connect();
        let payload = pattern(len, seed as u64);
        let got = echo_through(&stream, &payload);
        assert_eq!(got.len(), len, "length of the echo of {len} bytes");
        assert!(got == payload, "echo of {len} bytes differs");
        finish_and_expect_eof(stream);
    }
    server.wait_for_stats("all closed", |s| s.open == 0);
    drop(server);
}

fn a_message_split_into_single_byte_writes_is_echoed_in_order(model: Model) {
    let server = Server::echo(model);
    let mut stream = server.connect();
    let payload = pattern(300, 7);
    for byte in &payload {
        stream.write_all(std::slice::from_ref(byte)).unwrap();
    }
    let mut got = vec![0; payload.len()];
    stream.read_exact(&mut got).unwrap();
    assert_eq!(got, payload);
    finish_and_expect_eof(stream);
    drop(server);
}

fn many_messages_coalesced_into_one_write_are_echoed_whole(model: Model) {
    let server = Server::echo(model);
    let mut stream = server.connect();
    let messages: Vec<Vec<u8>> = (0..200).map(|i| pattern(64, 1000 + i)).collect();
    stream.write_all(&messages.concat()).unwrap();
    for (i, message) in messages.iter().enumerate() {
        let mut got = vec![0; 64];
        stream.read_exact(&mut got).unwrap();
        assert_eq!(&got, message, "message {i}");
    }
    finish_and_expect_eof(stream);
}

fn two_hundred_fifty_clients_at_once_each_get_their_own_bytes(model: Model) {
    let server = Server::echo(model);
    let mut clients: Vec<_> = (0..250).map(|_| server.connect()).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        client.write_all(&pattern(1000, i as u64)).unwrap();
    }
    for (i, client) in clients.iter_mut().enumerate() {
        let mut got = vec![0; 1000];
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, pattern(1000, i as u64), "client {i}");
    }
    let stats = server.wait_for_stats("250 accepted", |s| s.accepted == 250);
    assert_eq!(stats.open, 250);
    drop(clients);
    let stats = server.wait_for_stats("250 closed", |s| s.open == 0);
    assert_eq!(stats.closed_by(&CloseReason::PeerClosed), 250);
    drop(server);
}

fn half_closed_client_still_receives_all_of_its_echo(model: Model) {
    let server = Server::echo(model);
    let mut stream = server.connect();
    let payload = pattern(4 * 1024 * 1024, 99);
    let mut writer = stream.try_clone().unwrap();
    let sent = payload.clone();
    let sender = std::thread::spawn(move || {
        writer.write_all(&sent).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    });
    let mut got = Vec::new();
    stream.read_to_end(&mut got).unwrap();
    sender.join().unwrap();
    assert_eq!(got.len(), payload.len());
    assert!(got == payload, "echo differs");
    let stats = server.wait_for_stats("closed", |s| s.open == 0);
    assert_eq!(stats.closed_by(&CloseReason::PeerClosed), 1);
}

fn stats_count_bytes_and_connections(model: Model) {
    let server = Server::echo(model);
    let stream = server.connect();
    assert_eq!(echo_through(&stream, &pattern(10_000, 5)).len(), 10_000);
    finish_and_expect_eof(stream);
    let stats = server.wait_for_stats("closed", |s| s.closed_total() == 1);
    assert_eq!((stats.accepted, stats.open), (1, 0));
    assert_eq!((stats.bytes_read, stats.bytes_written), (10_000, 10_000));
    assert!(stats.reads >= 2 && stats.writes >= 1, "{stats:?}");
    assert_eq!((stats.panics, stats.stale_events), (0, 0));
    match model {
        Model::Reactor => assert!(stats.events >= 2 && stats.turns >= 2),
        // The thread model has no poll loop: its loop counters stay zero.
        Model::Threads => assert_eq!((stats.events, stats.turns, stats.max_turn_micros), (0, 0, 0)),
    }
}

const HIGH: usize = 64 * 1024;
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

/// The reactor pauses reading at the high watermark; a connection thread
/// stops reading while its write is blocked. Either way the server holds
/// little and loses nothing.
fn a_client_that_never_reads_stops_the_server_reading(model: Model) {
    let config = Config::default()
        .write_watermarks(HIGH / 2, HIGH)
        .read_budget(BUDGET);
    let server = Server::start(model, config, || Echo);
    let mut client = server.connect();
    let data = vec![0x5a; 32 * 1024 * 1024];

    let sent = write_until_stuck(&mut client, &data);
    assert!(
        sent < data.len(),
        "the server kept reading from a client that never reads"
    );
    let before = server.stats();
    std::thread::sleep(Duration::from_millis(300));
    let after = server.stats();
    assert_eq!(before.bytes_read, after.bytes_read, "server still reading");
    if model == Model::Reactor {
        assert!(after.read_pauses >= 1, "no read pause counted");
    }
    // What the server holds (read but not yet written) stays bounded; the
    // rest waits in kernel buffers.
    let held = after.bytes_read - after.bytes_written;
    assert!(held as usize <= HIGH + BUDGET, "server holds {held} bytes");

    let mut got = vec![0; sent];
    client.read_exact(&mut got).unwrap();
    assert!(got[..] == data[..sent], "echo differs after backpressure");
    let sent = sent as u64;
    server.wait_for_stats("all written", |s| s.bytes_written == sent && s.bytes_read == sent);
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
    let server = Server::start(model, Config::default(), || Lines);
    let mut client = server.connect();
    client.write_all(b"hel").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    client.write_all(b"lo\nwor").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    client.write_all(b"ld\n").unwrap();
    let mut got = vec![0; 12];
    client.read_exact(&mut got).unwrap();
    assert_eq!(got, b"hello\nworld\n");
}

fn unconsumed_input_over_the_limit_closes_with_input_limit(model: Model) {
    let server = Server::start(model, Config::default().max_input(1000), || Lines);
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
