//! Bounded memory per connection: output above the high watermark pauses
//! reading until it drains; unconsumed input above the limit closes.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use bytes::BytesMut;
use common::{Echo, TestServer, assert_fds_return_to, open_fds, pattern, serial};
use evloop::{CloseReason, Config, Conn, Handler};

const HIGH: usize = 64 * 1024;
const BUDGET: usize = 256 * 1024;

/// Writes from `stream` until the peer stops taking bytes for half a
/// second; returns how many bytes were sent (a prefix of `data`).
fn write_until_stuck(stream: &mut std::net::TcpStream, data: &[u8]) -> usize {
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

#[test]
fn a_client_that_never_reads_pauses_the_server_and_memory_stays_bounded() {
    let _serial = serial();
    let fds = open_fds();
    let config = Config::default()
        .write_watermarks(HIGH / 2, HIGH)
        .read_budget(BUDGET);
    let server = TestServer::start(config, || Echo);
    let mut client = server.connect();
    let data = pattern(32 * 1024 * 1024, 3);

    let sent = write_until_stuck(&mut client, &data);
    assert!(
        sent < data.len(),
        "the server kept reading from a client that never reads"
    );

    // The server has stopped reading: its counters no longer move.
    let before = server.stats();
    std::thread::sleep(Duration::from_millis(300));
    let after = server.stats();
    assert_eq!(before.bytes_read, after.bytes_read, "server still reading");
    assert!(after.read_pauses >= 1, "no read pause counted");

    // What the server holds (read but not yet written) stays under the high
    // watermark plus one turn's read budget; the rest waits in kernel buffers.
    let held = after.bytes_read - after.bytes_written;
    assert!(held as usize <= HIGH + BUDGET, "server holds {held} bytes");

    // Once the client drains, reading resumes and every byte comes back.
    let mut got = vec![0; sent];
    client.read_exact(&mut got).unwrap();
    assert!(got[..] == data[..sent], "echo differs after backpressure");
    // Counters are published at the end of each turn; wait for the last one.
    server.wait_for_stats("all counted", |s| s.bytes_written == sent as u64);
    assert_eq!(server.stats().bytes_read, sent as u64);

    drop((client, server));
    assert_fds_return_to(fds);
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

#[test]
fn partial_input_is_kept_for_the_next_call() {
    let _serial = serial();
    let server = TestServer::start(Config::default(), || Lines);
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

#[test]
fn unconsumed_input_over_the_limit_closes_with_input_limit() {
    let _serial = serial();
    let fds = open_fds();
    let server = TestServer::start(Config::default().max_input(1000), || Lines);
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
    assert_fds_return_to(fds);
}
