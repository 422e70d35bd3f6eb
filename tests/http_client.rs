//! `evloop::http::get` against real servers: many requests answered right,
//! refusal and silence turned into their `io::Error` kinds, oversized and
//! malformed responses refused, and never a socket left behind.

#![cfg(feature = "http")]

mod common;

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::isolated;
use evloop::http::{HttpServer, Request, Response};

/// Time limit of every request here: generous, since none should reach it
/// except in the timeout test.
const TIMEOUT: Duration = Duration::from_secs(5);

/// An HTTP server on one loop answering `hello <path>`; shut down and
/// joined when the test is done.
fn with_server(test: impl FnOnce(String)) {
    let server = HttpServer::new(common::localhost())
        .threads(1)
        .start(|req: &Request| Response::text(format!("hello {}", req.path())))
        .unwrap();
    test(format!("http://{}", server.local_addr()));
    server.shutdown(Duration::ZERO);
    server.join().unwrap();
}

/// A raw server that answers the first connection with `reply`, then closes.
fn answering(reply: &'static [u8]) -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind(common::localhost()).unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let thread = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut head = [0; 1024];
        let _ = stream.read(&mut head);
        let _ = stream.write_all(reply);
    });
    (url, thread)
}

#[test]
fn two_hundred_requests_all_get_their_own_body() {
    isolated(|| {
        with_server(|base| {
            for i in 0..200 {
                let response = evloop::http::get(&format!("{base}/item/{i}?x=1"), TIMEOUT).unwrap();
                assert_eq!(response.status(), 200);
                assert_eq!(response.body(), format!("hello /item/{i}").as_bytes());
                assert_eq!(
                    response.header("content-length"),
                    Some(response.body().len().to_string().as_str())
                );
            }
        });
    });
}

#[test]
fn refused_connection_is_connection_refused() {
    isolated(|| {
        let port = TcpListener::bind(common::localhost())
            .unwrap()
            .local_addr()
            .unwrap();
        let err = evloop::http::get(&format!("http://{port}/"), TIMEOUT).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused, "{err}");
    });
}

#[test]
fn silent_server_times_out_within_the_timeout() {
    isolated(|| {
        // Accepted by the kernel's backlog, never read nor answered.
        let listener = TcpListener::bind(common::localhost()).unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let timeout = Duration::from_millis(200);
        let start = Instant::now();
        let err = evloop::http::get(&url, timeout).unwrap_err();
        let took = start.elapsed();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(
            took >= timeout && took < timeout + Duration::from_secs(1),
            "took {took:?}"
        );
    });
}

#[test]
fn body_over_the_limit_is_invalid_data() {
    isolated(|| {
        with_server(|base| {
            let err = evloop::http::get_with_max_body(&format!("{base}/0123456789"), TIMEOUT, 8).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
            assert!(err.to_string().contains("limit"), "{err}");
        });
    });
}

#[test]
fn malformed_response_is_invalid_data() {
    isolated(|| {
        let (url, server) = answering(b"HTTP/1.1 2x0 Nope\r\n\r\n");
        let err = evloop::http::get(&url, TIMEOUT).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        server.join().unwrap();
    });
}

#[test]
fn body_without_length_runs_to_end_of_stream() {
    isolated(|| {
        let (url, server) = answering(b"HTTP/1.0 200 OK\r\nX-Test: yes\r\n\r\nuntil the end");
        let response = evloop::http::get(&url, TIMEOUT).unwrap();
        assert_eq!(response.header("x-test"), Some("yes"));
        assert_eq!(response.body(), &b"until the end"[..]);
        server.join().unwrap();
    });
}

#[test]
fn truncated_body_is_unexpected_eof() {
    isolated(|| {
        let (url, server) = answering(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort");
        let err = evloop::http::get(&url, TIMEOUT).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
        server.join().unwrap();
    });
}

#[test]
fn non_http_url_is_invalid_input() {
    let err = evloop::http::get("https://127.0.0.1/", TIMEOUT).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}
