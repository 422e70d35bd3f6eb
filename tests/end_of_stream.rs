//! End of stream loses nothing: what the peer sent before its FIN reaches
//! the handler, on both models — a pipelined batch of HTTP requests followed
//! by a half-close gets every response, a handler that takes a few bytes at
//! a time processes a large input to its last byte, and a last line without
//! its newline reaches `on_eof`.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use bytes::BytesMut;
use common::{Model, TestServer, pattern};
use evloop::{Config, Conn, Handler};

on_both_models!(
    a_pipelined_batch_then_half_close_gets_every_response,
    a_handler_taking_a_few_bytes_a_call_processes_every_byte_before_the_fin,
    a_last_line_without_its_newline_reaches_on_eof,
);

/// A client's socket with a bounded read timeout.
fn client(server_addr: std::net::SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(server_addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream
}

/// Writes `data` from another thread, then shuts the write half, so that
/// the caller can read while the server still receives.
fn send_then_half_close(stream: &TcpStream, data: Vec<u8>) -> std::thread::JoinHandle<()> {
    let mut writer = stream.try_clone().unwrap();
    std::thread::spawn(move || {
        writer.write_all(&data).unwrap();
        writer.shutdown(Shutdown::Write).unwrap();
    })
}

#[cfg(feature = "http")]
fn a_pipelined_batch_then_half_close_gets_every_response(model: Model) {
    use common::http::read_reply;
    use evloop::http::{HttpServer, Response};
    use std::io::BufReader;

    let server = HttpServer::new(common::localhost())
        .threads(1)
        .model(model)
        .start(|req| Response::text(req.path().trim_start_matches('/').to_owned()))
        .unwrap();
    for n in [1, 3, 500, 1_000, 5_000] {
        let stream = client(server.local_addr());
        let batch: String = (0..n)
            .map(|i| format!("GET /{i} HTTP/1.1\r\nHost: t\r\n\r\n"))
            .collect();
        let writer = send_then_half_close(&stream, batch.into_bytes());
        let mut reader = BufReader::new(&stream);
        for i in 0..n {
            let reply = read_reply(&mut reader, false);
            assert_eq!(reply.status, "HTTP/1.1 200 OK", "response {i} of {n}");
            assert_eq!(reply.body, i.to_string(), "response {i} of {n} out of order");
        }
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert!(
            rest.is_empty(),
            "{} bytes after the last of {n} responses",
            rest.len()
        );
        writer.join().unwrap();
    }
    let stats = server.stats();
    assert_eq!(stats.input_discarded, 0);
    server.shutdown(Duration::ZERO);
    server.join().unwrap();
}

#[cfg(not(feature = "http"))]
fn a_pipelined_batch_then_half_close_gets_every_response(_: Model) {}

/// Consumes at most three bytes per call and stops while more than a
/// kilobyte of its output waits: the slowest handler that still makes
/// progress. Echoes each byte plus one.
struct Nibbler;

/// Queued output above which [`Nibbler`] stops consuming.
const NIBBLER_LIMIT: usize = 1024;

impl Handler for Nibbler {
    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        if conn.pending_output() > NIBBLER_LIMIT {
            return;
        }
        let taken = input.split_to(input.len().min(3));
        let out: Vec<u8> = taken.iter().map(|b| b.wrapping_add(1)).collect();
        conn.write(&out);
    }
}

fn a_handler_taking_a_few_bytes_a_call_processes_every_byte_before_the_fin(model: Model) {
    let server = TestServer::start(model, Config::default(), || Nibbler);
    let input = pattern(256 * 1024, 7);
    let stream = client(server.addr);
    let writer = send_then_half_close(&stream, input.clone());
    let mut got = Vec::new();
    (&stream).read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    let expected: Vec<u8> = input.iter().map(|b| b.wrapping_add(1)).collect();
    assert_eq!(got.len(), expected.len(), "bytes processed");
    assert!(got == expected, "every byte processed, in order");
    let stats = server.wait_for_stats("closed", |s| s.closed_total() == 1);
    assert_eq!(stats.input_discarded, 0);
}

/// Echoes whole lines; at end of stream, a last line without its newline
/// is echoed with one.
struct Lines;

impl Handler for Lines {
    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        while let Some(end) = input.iter().position(|&b| b == b'\n') {
            let line = input.split_to(end + 1);
            conn.write(&line);
        }
    }

    fn on_eof(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        if !input.is_empty() {
            conn.write(&input.split());
            conn.write(b"\n");
        }
    }
}

fn a_last_line_without_its_newline_reaches_on_eof(model: Model) {
    let server = TestServer::start(model, Config::default(), || Lines);
    let stream = client(server.addr);
    let writer = send_then_half_close(&stream, b"hello\nworld\ntrailing partial".to_vec());
    let mut got = Vec::new();
    (&stream).read_to_end(&mut got).unwrap();
    writer.join().unwrap();
    assert_eq!(got, b"hello\nworld\ntrailing partial\n");
    let stats = server.wait_for_stats("closed", |s| s.closed_total() == 1);
    assert_eq!(stats.input_discarded, 0);
}
