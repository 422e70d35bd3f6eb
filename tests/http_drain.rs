//! A drain (`ServerHandle::drain`, as after a handover) over real sockets:
//! an idle keep-alive HTTP connection has one more request answered with
//! `Connection: close`, or is closed cleanly after a second without one; a
//! request in progress — its head half read, or its answer awaited — is
//! answered with `Connection: close` and then the connection ends; a body
//! streaming at the drain is sent to its end, then the connection ends;
//! requests pipelined before the drain are all answered first; a connection
//! made just before the drain still gets its first request answered; and
//! an echo connection, whose handler does not act on a drain, keeps
//! echoing.

#![cfg(feature = "http")]

mod common;

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::http::{Http, read_reply, read_until_closed};
use common::{
    DRAIN_GRACE as GRACE, Echo, assert_echoes, assert_ends_before_the_grace, localhost, wait_until,
};
use evloop::http::{HttpConfig, HttpServer, Request, Responder, Response, body_channel};
use evloop::{Server, ServerHandle};

/// The requests a deferring app holds: each path with its responder.
type Kept = Arc<Mutex<Vec<(String, Responder)>>>;

/// A deferring server on one loop whose app keeps every responder for the
/// test to answer.
fn deferred() -> (ServerHandle, Kept) {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let app = {
        let kept = Arc::clone(&kept);
        move |req: Request, responder: Responder| {
            kept.lock().unwrap().push((req.path().to_owned(), responder));
        }
    };
    let server = HttpServer::new(localhost())
        .threads(1)
        .start_deferred(app)
        .unwrap();
    (server, kept)
}

/// A client of `server` with a bounded read timeout.
fn connect(server: &ServerHandle) -> TcpStream {
    let stream = TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
}

/// Waits until `n` requests are awaited; returns them in arrival order.
#[track_caller]
fn awaited(kept: &Mutex<Vec<(String, Responder)>>, n: usize) -> Vec<(String, Responder)> {
    wait_until("requests handed to the app", || {
        let mut kept = kept.lock().unwrap();
        (kept.len() == n).then(|| std::mem::take(&mut *kept))
    })
}

/// Reads `stream` to its clean end: one reply with `body`, saying
/// `Connection: close`, and nothing after it; returns the reply.
#[track_caller]
fn assert_last_reply(stream: &mut TcpStream, body: &str) -> common::http::Reply {
    let all = read_until_closed(stream);
    let mut reader = all.as_bytes();
    let reply = read_reply(&mut reader, false);
    assert_eq!(reply.body, body, "{all:?}");
    assert_eq!(reply.header("connection"), Some("close"), "{all:?}");
    assert!(reader.is_empty(), "nothing after the last response: {all:?}");
    reply
}

/// How long a connection idle at the drain waits for one more request
/// (`HttpConfig::next_request_at_drain`'s default).
const NEXT_REQUEST_AT_DRAIN: Duration = Duration::from_secs(1);

/// A client of `http` that has had one answer and keeps its connection.
fn kept_alive(http: &Http) -> TcpStream {
    let mut stream = http.connect();
    stream
        .write_all(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let reply = read_reply(&mut BufReader::new(&mut stream), false);
    assert_eq!(reply.body, "GET /first ");
    assert_eq!(reply.header("connection"), None, "kept alive before the drain");
    stream
}

#[test]
fn an_idle_keep_alive_connection_gets_its_next_request_answered_with_close() {
    let http = Http::describing();
    let mut stream = kept_alive(&http);

    let began = Instant::now();
    http.0.drain(GRACE).unwrap();
    // A request sent as the drain begins (as a proxy reusing its pooled
    // connection would) is answered, not met by a closed socket.
    std::thread::sleep(Duration::from_millis(100));
    stream
        .write_all(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_last_reply(&mut stream, "GET /next ");
    assert_ends_before_the_grace(&http.0, began);
}

#[test]
fn an_idle_keep_alive_connection_that_sends_nothing_is_closed_cleanly_after_a_second() {
    let http = Http::describing();
    let mut stream = kept_alive(&http);

    let began = Instant::now();
    http.0.drain(GRACE).unwrap();
    // End of stream, not a reset (read_until_closed fails on an error).
    assert_eq!(read_until_closed(&mut stream), "");
    let waited = began.elapsed();
    assert!(
        waited >= NEXT_REQUEST_AT_DRAIN - Duration::from_millis(100),
        "closed after {waited:?}, before its wait for one more request"
    );
    assert_ends_before_the_grace(&http.0, began);
}

#[test]
fn the_wait_for_one_more_request_is_the_configured_one() {
    for (wait, least, most) in [
        (Duration::ZERO, Duration::ZERO, Duration::from_millis(500)),
        (
            Duration::from_millis(300),
            Duration::from_millis(250),
            Duration::from_millis(900),
        ),
    ] {
        let config = HttpConfig::default().next_request_at_drain(wait);
        assert_eq!(config.get_next_request_at_drain(), wait);
        let http = Http::start(config, common::http::describe);
        let mut stream = kept_alive(&http);
        let began = Instant::now();
        http.0.drain(GRACE).unwrap();
        assert_eq!(read_until_closed(&mut stream), "");
        let waited = began.elapsed();
        assert!(
            (least..most).contains(&waited),
            "closed after {waited:?} with a wait of {wait:?}"
        );
        assert_ends_before_the_grace(&http.0, began);
    }
}

#[test]
fn a_request_half_read_at_the_drain_is_answered_with_connection_close() {
    let http = Http::describing();
    let mut stream = http.connect();
    stream.write_all(b"GET /half HTTP/1.1\r\nHost: x\r\n").unwrap();
    // The head's first part has reached the handler.
    std::thread::sleep(Duration::from_millis(100));
    let began = Instant::now();
    http.0.drain(GRACE).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    stream.write_all(b"\r\n").unwrap();
    assert_last_reply(&mut stream, "GET /half ");
    assert_ends_before_the_grace(&http.0, began);
}

#[test]
fn a_deferred_answer_in_flight_goes_out_whole_with_connection_close() {
    let (server, kept) = deferred();
    let mut stream = connect(&server);
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut waiting = awaited(&kept, 1);

    let began = Instant::now();
    server.drain(GRACE).unwrap();
    // The connection stays open for its answer.
    std::thread::sleep(Duration::from_millis(200));
    let (path, responder) = waiting.pop().unwrap();
    responder.send(Response::text(format!("late answer to {path}")));

    let reply = assert_last_reply(&mut stream, "late answer to /slow");
    assert_eq!(reply.status, "HTTP/1.1 200 OK");
    assert_ends_before_the_grace(&server, began);
}

#[test]
fn requests_pipelined_before_the_drain_are_all_answered_the_last_with_close() {
    let (server, kept) = deferred();
    let mut stream = connect(&server);
    stream
        .write_all(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let waiting = awaited(&kept, 3);

    let began = Instant::now();
    server.drain(GRACE).unwrap();
    // Answered last to first: they still leave in request order.
    for (path, responder) in waiting.into_iter().rev() {
        responder.send(Response::text(format!("answer to {path}")));
    }

    let all = read_until_closed(&mut stream);
    let mut reader = all.as_bytes();
    for (i, close) in [(1, None), (2, None), (3, Some("close"))] {
        let reply = read_reply(&mut reader, false);
        assert_eq!(reply.body, format!("answer to /{i}"), "{all:?}");
        assert_eq!(reply.header("connection"), close, "response {i}: {all:?}");
    }
    assert!(reader.is_empty(), "nothing after the last response: {all:?}");
    assert_ends_before_the_grace(&server, began);
}

#[test]
fn an_echo_connection_keeps_echoing_through_a_drain() {
    let server = Server::new(localhost()).threads(1).start(|| Echo).unwrap();
    let mut stream = TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_echoes(&mut stream, b"before the drain");

    server.drain(GRACE).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_echoes(&mut stream, b"during the drain");
    assert_echoes(&mut stream, b"and again");

    // The client ends it; the server ends with it.
    let began = Instant::now();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert_ends_before_the_grace(&server, began);
}

#[test]
fn a_body_streaming_at_the_drain_goes_out_to_its_end_then_the_connection_ends() {
    let (server, kept) = deferred();
    let mut stream = connect(&server);
    stream
        .write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let (_, responder) = awaited(&kept, 1).pop().unwrap();
    let (sender, body) = body_channel(4096);
    responder.stream(Response::new(200), body);
    sender.send("first ").unwrap();

    let began = Instant::now();
    server.drain(GRACE).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    sender.send("second").unwrap();
    drop(sender);

    let all = read_until_closed(&mut stream);
    assert!(all.starts_with("HTTP/1.1 200 OK\r\n"), "{all:?}");
    assert!(
        all.ends_with("\r\n\r\n6\r\nfirst \r\n6\r\nsecond\r\n0\r\n\r\n"),
        "the whole chunked body, then the end of stream: {all:?}"
    );
    assert_ends_before_the_grace(&server, began);
}

#[test]
fn a_connection_made_just_before_the_drain_gets_its_first_request_answered() {
    let http = Http::describing();
    let mut fresh = http.connect();
    let mut unused = http.connect();
    std::thread::sleep(Duration::from_millis(100));

    let began = Instant::now();
    http.0.drain(GRACE).unwrap();
    // A fresh connection waits for its first request, which may be on its
    // way.
    std::thread::sleep(Duration::from_millis(200));
    fresh
        .write_all(b"GET /fresh HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    assert_last_reply(&mut fresh, "GET /fresh ");
    // One that never sends is closed cleanly all the same.
    assert_eq!(read_until_closed(&mut unused), "");
    assert_ends_before_the_grace(&http.0, began);
}
