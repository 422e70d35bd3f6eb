//! Backpressure through a seam: loopback never fills a UDP socket's send
//! buffer (a datagram leaves it as soon as it is handed to the receiver),
//! so these tests make the loop's sends fail with `WouldBlock` while a flag
//! is set, over real sockets otherwise.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::*;

/// Echoes every datagram to its sender.
struct Echo;

impl DatagramHandler for Echo {
    fn on_datagram(&mut self, sock: &mut UdpSock<'_>, data: &[u8], from: SocketAddr) {
        let _ = sock.send_to(data, from);
    }
}

/// Polls `probe` on `handle`'s counters until it holds; panics after 5 s.
#[track_caller]
fn wait_for(handle: &UdpHandle, what: &str, probe: impl Fn(&UdpStats) -> bool) -> UdpStats {
    let start = Instant::now();
    loop {
        let stats = handle.stats();
        if probe(&stats) {
            return stats;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "waiting for {what}: {stats}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_full_send_buffer_pauses_reading_without_spinning_and_loses_nothing() {
    let full = Arc::new(AtomicBool::new(true));
    let mut server = UdpServer::new("127.0.0.1:0".parse().unwrap()).threads(1);
    server.fake_full = Some(Arc::clone(&full));
    let handle = server.start(|| Echo).unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();

    client.send_to(b"first", handle.local_addr()).unwrap();
    let paused = wait_for(&handle, "a pause", |s| s.send_pauses == 1);
    assert_eq!((paused.datagrams_in, paused.datagrams_out), (1, 0));

    // Paused: what arrives now waits in the kernel, and the loop sleeps.
    for i in 0..5u8 {
        client.send_to(&[b'n', i], handle.local_addr()).unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    let still = handle.stats();
    assert_eq!(still.datagrams_in, 1, "read while paused: {still}");
    assert!(
        still.polls <= paused.polls + 1,
        "spun while paused: {paused} then {still}"
    );

    // The buffer "drains"; a wake (the kernel's writable edge, here a
    // datagram handed in) lets the queue go and reading resume.
    full.store(false, Ordering::SeqCst);
    handle
        .sender()
        .send_to(b"handed", client.local_addr().unwrap())
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    for _ in 0..7 {
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(from, handle.local_addr());
        got.push(buf[..n].to_vec());
    }
    assert_eq!(got[0], b"first");
    assert_eq!(got[1], b"handed");
    let echoed: Vec<Vec<u8>> = (0..5u8).map(|i| vec![b'n', i]).collect();
    assert_eq!(got[2..], echoed[..], "in order, after the queued reply");

    let done = wait_for(&handle, "the echoes counted", |s| s.datagrams_out == 7);
    assert_eq!(
        (done.datagrams_in, done.send_pauses, done.dropped),
        (6, 1, 0),
        "{done}"
    );
    handle.shutdown();
    handle.join().unwrap();
}

#[test]
fn a_full_send_queue_refuses_and_counts_what_it_drops() {
    let full = Arc::new(AtomicBool::new(true));
    let config = UdpConfig::default().send_queue(2);
    let mut server = UdpServer::new("127.0.0.1:0".parse().unwrap())
        .threads(1)
        .config(config);
    server.fake_full = Some(Arc::clone(&full));
    let handle = server.start(|| Echo).unwrap();
    let sender = handle.sender();
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = sink.local_addr().unwrap();
    for i in 0..3u8 {
        sender.send_to(&[i], to).unwrap();
    }
    let stats = wait_for(&handle, "one dropped", |s| s.dropped == 1);
    assert_eq!(stats.send_pauses, 1, "{stats}");
    full.store(false, Ordering::SeqCst);
    sender.send_to(&[9], to).unwrap();
    sink.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 8];
    let got: Vec<u8> = (0..3)
        .map(|_| {
            sink.recv(&mut buf).unwrap();
            buf[0]
        })
        .collect();
    assert_eq!(got, [0, 1, 9]);
    handle.shutdown();
    handle.join().unwrap();
}
