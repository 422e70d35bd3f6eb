//! Echo over real sockets, on both models: every byte comes back exactly,
//! whatever the sizes, splits and number of clients, and the counters add up.

use std::io::{Read, Write};
use std::net::Shutdown;

use evloop::CloseReason;

use crate::common::{Model, TestServer, echo_through, finish_and_expect_eof, pattern};
use crate::on_both_models;

on_both_models!(
    payloads_from_one_byte_to_16_mib_are_echoed_exactly,
    a_message_split_into_single_byte_writes_is_echoed_in_order,
    many_messages_coalesced_into_one_write_are_echoed_whole,
    five_hundred_clients_at_once_each_get_their_own_bytes,
    half_closed_client_still_receives_all_of_its_echo,
    stats_count_bytes_and_connections,
);

fn payloads_from_one_byte_to_16_mib_are_echoed_exactly(model: Model) {
    let server = TestServer::echo(model);
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
    let server = TestServer::echo(model);
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
    let server = TestServer::echo(model);
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

fn five_hundred_clients_at_once_each_get_their_own_bytes(model: Model) {
    let server = TestServer::echo(model);
    let mut clients: Vec<_> = (0..500).map(|_| server.connect()).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        client.write_all(&pattern(1000, i as u64)).unwrap();
    }
    for (i, client) in clients.iter_mut().enumerate() {
        let mut got = vec![0; 1000];
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, pattern(1000, i as u64), "client {i}");
    }
    let stats = server.wait_for_stats("500 accepted", |s| s.accepted == 500);
    assert_eq!(stats.open, 500);
    drop(clients);
    let stats = server.wait_for_stats("500 closed", |s| s.open == 0);
    assert_eq!(stats.closed_by(&CloseReason::PeerClosed), 500);
    drop(server);
}

fn half_closed_client_still_receives_all_of_its_echo(model: Model) {
    let server = TestServer::echo(model);
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
    let server = TestServer::echo(model);
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
