//! However a client's bytes are cut into writes, a server answers the same:
//! echo and HTTP, on both execution models, over real sockets. Each case
//! also checks that every socket it opened is closed again.
//!
//! tests/http.rs cuts a pipeline of bodiless GETs on the reactor; here the
//! pipelines carry bodies (cut inside heads, bodies and between them), end
//! either with `Connection: close` or with a malformed request, and run on
//! the thread-per-connection model too.

#![cfg(feature = "http")]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::{Model, TestServer, isolated, pattern, scaled};
use evloop::ServerHandle;
use evloop::http::{HttpServer, Request, Response};
use proptest::prelude::*;

/// Writes `raw` to `stream` in pieces ending at `cuts` (sorted, clamped),
/// pausing after each so that the pieces arrive as separate reads.
fn write_in_pieces(stream: &mut TcpStream, raw: &[u8], cuts: &[usize]) {
    let mut at = 0;
    for end in cuts.iter().map(|&c| c.min(raw.len())).chain([raw.len()]) {
        if end > at {
            stream.write_all(&raw[at..end]).unwrap();
            at = end;
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Sends `raw` in pieces from another thread, then shuts down the write
/// half; returns everything read until the server closes.
fn exchange(stream: TcpStream, raw: Vec<u8>, mut cuts: Vec<usize>) -> Vec<u8> {
    cuts.sort_unstable();
    let mut writer = stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        write_in_pieces(&mut writer, &raw, &cuts);
        // The server may already have closed after a refused request.
        let _ = writer.shutdown(Shutdown::Write);
    });
    let mut got = Vec::new();
    let mut reader = stream;
    if let Err(e) = reader.read_to_end(&mut got) {
        panic!("the server did not close cleanly after {} bytes: {e}", got.len());
    }
    sender.join().unwrap();
    got
}

/// A client socket with a bounded read timeout.
fn connect(addr: std::net::SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Echoes `len` bytes of a pattern, cut at `cuts`, through an echo server
/// of `model`; asserts they come back unchanged.
fn assert_echo_survives_cuts(model: Model, len: usize, seed: u64, cuts: Vec<usize>) {
    isolated(|| {
        let server = TestServer::echo(model);
        let payload = pattern(len, seed);
        let got = exchange(server.connect(), payload.clone(), cuts);
        assert_eq!(got.len(), payload.len());
        assert!(got == payload, "the echo differs from what was sent");
    });
}

/// An HTTP server of `model` answering `METHOD TARGET BODY-LENGTH BODY`.
fn http_server(model: Model) -> ServerHandle {
    HttpServer::new(common::localhost())
        .threads(1)
        .model(model)
        .start(|req: &Request| {
            let body = String::from_utf8_lossy(req.body());
            Response::text(format!("{} {} {} {body}", req.method(), req.target(), body.len()))
        })
        .unwrap()
}

/// A pipeline of requests with bodies of several sizes, HTTP/1.0 and 1.1,
/// ending in `Connection: close`, or with `malformed`, in a request whose
/// last byte is a NUL (so the refusal comes with the last byte sent).
fn pipeline(malformed: bool) -> Vec<u8> {
    let mut raw = Vec::new();
    for (i, size) in [0, 1, 17, 300, 2_000, 5].into_iter().enumerate() {
        let body = "b".repeat(size);
        raw.extend_from_slice(
            format!("POST /p{i}?n={size} HTTP/1.1\r\nHost: h\r\nContent-Length: {size}\r\n\r\n{body}")
                .as_bytes(),
        );
    }
    raw.extend_from_slice(b"GET /ten HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    if malformed {
        raw.extend_from_slice(b"GET /bad HTTP/1.1\r\nHost: h\r\n\0");
    } else {
        raw.extend_from_slice(b"GET /last HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    }
    raw
}

/// The responses with their `Date` lines taken out (the clock may tick
/// between two exchanges).
fn without_dates(replies: &[u8]) -> String {
    String::from_utf8(replies.to_vec())
        .unwrap()
        .split_inclusive("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("date:"))
        .collect()
}

/// Sends the pipeline whole, then cut at `cuts`, to an HTTP server of
/// `model`; asserts both get the same replies, which answer every request.
fn assert_http_survives_cuts(model: Model, malformed: bool, cuts: Vec<usize>) {
    isolated(|| {
        let server = http_server(model);
        let raw = pipeline(malformed);
        let whole = without_dates(&exchange(connect(server.local_addr()), raw.clone(), vec![]));
        let cut = without_dates(&exchange(connect(server.local_addr()), raw, cuts));
        assert_eq!(cut, whole);
        assert_eq!(
            whole.matches("HTTP/1.1 200 OK").count(),
            8 - usize::from(malformed)
        );
        assert!(whole.contains("POST /p4?n=2000 2000 bbb"), "{whole}");
        assert_eq!(whole.contains("HTTP/1.1 400 Bad Request"), malformed);
        server.shutdown(Duration::ZERO);
        server.join().unwrap();
    });
}

/// Up to eight cut points within `len` bytes.
fn cuts(len: usize) -> impl Strategy<Value = Vec<usize>> {
    proptest::collection::vec(0..len, 0..8)
}

// Each case runs isolated on its own, so the properties as a whole do not.
on_both_models!(
    unisolated:
    echo_returns_the_bytes_however_they_are_cut,
    http_answers_a_pipeline_the_same_however_it_is_cut,
);

/// How many cases each property runs.
fn config() -> ProptestConfig {
    ProptestConfig::with_cases(scaled(16, 200))
}

fn echo_returns_the_bytes_however_they_are_cut(model: Model) {
    proptest!(config(), |(
        (len, cuts) in (1..20_000usize).prop_flat_map(|len| (Just(len), cuts(len))),
        seed in any::<u64>(),
    )| {
        assert_echo_survives_cuts(model, len, seed, cuts);
    });
}

fn http_answers_a_pipeline_the_same_however_it_is_cut(model: Model) {
    proptest!(config(), |(malformed in any::<bool>(), cuts in cuts(3_000))| {
        assert_http_survives_cuts(model, malformed, cuts);
    });
}
