//! HTTP/1.1 over real sockets: every refused request gets its status and a
//! close, keep-alive and its ends, HEAD, pipelining in order however the
//! bytes are cut. (Real clients are in `tests/real_clients.rs`.)

#![cfg(feature = "http")]

mod common;

use std::io::{BufReader, Write};
use std::time::{Duration, Instant};

use common::http::{Http, assert_refused, describe, read_reply, read_until_closed, replies};
use evloop::Model;
use evloop::http::{HttpConfig, Response};
use proptest::prelude::*;

#[test]
fn a_malformed_request_gets_400_and_a_close() {
    let server = Http::describing();
    assert_refused(
        &server.exchange(b"GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n"),
        "HTTP/1.1 400 Bad Request",
    );
    assert_refused(
        &server.exchange(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"),
        "HTTP/1.1 400 Bad Request",
    );
}

#[test]
fn a_head_over_the_limit_gets_431_and_a_close() {
    let server = Http::start(HttpConfig::default().max_head(1024), describe);
    let endless = format!("GET / HTTP/1.1\r\nHost: h\r\nX-Long: {}", "a".repeat(2000));
    assert_refused(
        &server.exchange(endless.as_bytes()),
        "HTTP/1.1 431 Request Header Fields Too Large",
    );
}

#[test]
fn a_declared_body_over_the_limit_gets_413_before_it_is_sent() {
    let server = Http::start(HttpConfig::default().max_body(16), describe);
    let raw = b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 17\r\n\r\n";
    assert_refused(&server.exchange(raw), "HTTP/1.1 413 Content Too Large");
}

#[test]
fn a_413_survives_the_refused_body_arriving_behind_it() {
    let server = Http::start(HttpConfig::default().max_body(16), describe);
    let mut stream = server.connect();
    let mut raw = b"POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 300000\r\n\r\n".to_vec();
    raw.extend_from_slice(&[b'x'; 300_000]);
    let mut writer = stream.try_clone().unwrap();
    // The server stops reading; this write may fail once it has closed.
    let sender = std::thread::spawn(move || writer.write_all(&raw));
    assert_refused(&read_until_closed(&mut stream), "HTTP/1.1 413 Content Too Large");
    let _ = sender.join().unwrap();
}

#[test]
fn a_head_not_complete_in_time_gets_408() {
    let limit = Duration::from_millis(300);
    let server = Http::start(HttpConfig::default().head_timeout(Some(limit)), describe);
    let start = Instant::now();
    let all = server.exchange(b"GET /slow HTTP/1.1\r\nHost: loris\r\n");
    assert!(start.elapsed() >= limit, "answered after {:?}", start.elapsed());
    assert_refused(&all, "HTTP/1.1 408 Request Timeout");
}

#[test]
fn an_idle_kept_alive_connection_is_closed_after_the_timeout() {
    let timeout = Duration::from_millis(300);
    let server = Http::start(HttpConfig::default().keep_alive_timeout(Some(timeout)), describe);
    let mut stream = server.connect();
    stream
        .write_all(b"GET /once HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    let start = Instant::now();
    let all = read_until_closed(&mut stream);
    assert_eq!(replies(&all)[0].body, "GET /once ");
    assert!(
        start.elapsed() >= timeout - Duration::from_millis(50),
        "closed after {:?}",
        start.elapsed()
    );
}

#[test]
fn a_panicking_application_gets_500_and_other_connections_go_on() {
    let server = Http::describing();
    let other = server.connect();
    let mut other_reader = BufReader::new(other.try_clone().unwrap());
    (&other)
        .write_all(b"GET /before HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    assert_eq!(read_reply(&mut other_reader, false).body, "GET /before ");
    let all =
        server.exchange(b"GET /panic HTTP/1.1\r\nHost: h\r\n\r\nGET /never HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_refused(&all, "HTTP/1.1 500 Internal Server Error");
    (&other)
        .write_all(b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    assert_eq!(read_reply(&mut other_reader, false).body, "GET /after ");
}

#[test]
fn keep_alive_serves_two_requests_on_one_connection() {
    let server = Http::describing();
    let stream = server.connect();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    (&stream)
        .write_all(b"GET /one HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    let first = read_reply(&mut reader, false);
    assert_eq!(
        (first.status.as_str(), first.body.as_str()),
        ("HTTP/1.1 200 OK", "GET /one ")
    );
    assert_eq!(first.header("connection"), None);
    assert_eq!(first.header("server"), Some("evloop"));
    assert!(first.header("date").is_some_and(|d| d.ends_with(" GMT")));
    (&stream)
        .write_all(b"POST /two?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody")
        .unwrap();
    assert_eq!(read_reply(&mut reader, false).body, "POST /two?x=1 body");
}

#[test]
fn connection_close_is_answered_then_the_connection_closes() {
    let server = Http::describing();
    let got = replies(&server.exchange(b"GET /bye HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("connection"), Some("close"));
    assert_eq!(got[0].body, "GET /bye ");
}

#[test]
fn http_1_0_closes_unless_asked_to_keep_alive() {
    let server = Http::describing();
    let got = replies(&server.exchange(b"GET /old HTTP/1.0\r\n\r\n"));
    assert_eq!((got.len(), got[0].body.as_str()), (1, "GET /old "));
    assert_eq!(got[0].header("connection"), Some("close"));

    let stream = server.connect();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    (&stream)
        .write_all(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_reply(&mut reader, false).header("connection"),
        Some("keep-alive")
    );
    (&stream)
        .write_all(b"GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    assert_eq!(read_reply(&mut reader, false).body, "GET /b ");
}

#[test]
fn head_carries_the_content_length_but_no_body() {
    let server = Http::describing();
    let all = server.exchange(b"HEAD /h HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    let (head, rest) = all.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("\r\nContent-Length: 8"), "{head}");
    assert_eq!(rest, "", "HEAD response has a body");
}

/// Ten pipelined requests, the last one closing.
fn ten_requests() -> Vec<u8> {
    let mut raw = Vec::new();
    for i in 0..10 {
        let close = if i == 9 { "Connection: close\r\n" } else { "" };
        raw.extend_from_slice(
            format!("POST /{i} HTTP/1.1\r\nHost: h\r\n{close}Content-Length: 2\r\n\r\n#{i}").as_bytes(),
        );
    }
    raw
}

/// The replies expected to [`ten_requests`], as `(status, body)`.
fn ten_answers() -> Vec<(String, String)> {
    (0..10)
        .map(|i| ("HTTP/1.1 200 OK".to_owned(), format!("POST /{i} #{i}")))
        .collect()
}

/// `(status, body)` of every reply, which stay the same from run to run.
fn statuses_and_bodies(all: &str) -> Vec<(String, String)> {
    replies(all).into_iter().map(|r| (r.status, r.body)).collect()
}

#[test]
fn ten_pipelined_requests_in_one_write_are_answered_in_order() {
    let server = Http::describing();
    assert_eq!(
        statuses_and_bodies(&server.exchange(&ten_requests())),
        ten_answers()
    );
}

// The tests of this binary run side by side, so none can be isolated.
on_both_models!(unisolated: pipelined_large_responses_pass_the_watermark_and_all_arrive);

/// Twenty pipelined requests whose replies, 60 KB each, pass the high
/// watermark, then a closing one: every reply arrives, in order. The reactor
/// counts the read pause at the watermark; a connection thread has no pause
/// to count, as it does not read while it writes. The server then goes on
/// serving new connections.
fn pipelined_large_responses_pass_the_watermark_and_all_arrive(model: Model) {
    let server = Http::start_on(model, HttpConfig::default(), |req| {
        Response::new(200).body(req.path().repeat(20_000))
    });
    let mut raw = Vec::new();
    for i in 0..20 {
        raw.extend_from_slice(format!("GET /{i:02} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
    }
    raw.extend_from_slice(b"GET /end HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    let got = replies(&server.exchange(&raw));
    assert_eq!(got.len(), 21);
    for (i, reply) in got.iter().take(20).enumerate() {
        assert_eq!(reply.body, format!("/{i:02}").repeat(20_000));
    }
    if model == Model::Reactor {
        common::wait_until("a read pause at the watermark", || {
            Some(()).filter(|_| server.0.stats().read_pauses > 0)
        });
    }
    assert_eq!(
        statuses_and_bodies(&server.exchange(b"GET /x HTTP/1.0\r\n\r\n"))[0].0,
        "HTTP/1.1 200 OK"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn pipelined_bytes_cut_anywhere_get_the_same_replies(
        mut cuts in proptest::collection::vec(0usize..400, 1..6)
    ) {
        let server = Http::describing();
        let raw = ten_requests();
        cuts.sort_unstable();
        let mut stream = server.connect();
        let mut at = 0;
        for end in cuts.into_iter().map(|c| c.min(raw.len())).chain([raw.len()]) {
            stream.write_all(&raw[at..end.max(at)]).unwrap();
            at = end.max(at);
            std::thread::sleep(Duration::from_millis(1));
        }
        prop_assert_eq!(statuses_and_bodies(&read_until_closed(&mut stream)), ten_answers());
    }
}
