//! The client (`evloop::http::get`, `post`, `ClientRequest`) against real
//! servers: evloop's own, Node's `http` module (chunked responses) and
//! Python's `http.server` (close-delimited HTTP/1.0), skipped visibly where
//! missing, and raw sockets for the edge cases. Many requests answered
//! right; chunked, length and close-delimited bodies decoded and bounded;
//! redirects returned, not followed; refusal and silence turned into their
//! `io::Error` kinds; malformed responses refused; and never a socket left
//! behind (each test checks the process's fd count).

#![cfg(feature = "http")]

mod common;

use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use common::http::ExternalServer;
use common::isolated;
use evloop::http::{ClientRequest, HttpServer, Request, Response};

/// Time limit of every request here: generous, since none should reach it
/// except in the timeout test.
const TIMEOUT: Duration = Duration::from_secs(5);

/// An HTTP server on one loop answering `hello <path>`; shut down and
/// joined when the test is done.
fn with_server(test: impl FnOnce(String)) {
    let server = HttpServer::new(common::localhost())
        .threads(1)
        .start(|req: &Request| {
            if req.method() == "POST" {
                return Response::text(format!(
                    "posted {} bytes: {}",
                    req.body().len(),
                    String::from_utf8_lossy(req.body())
                ))
                .header("X-Type", req.header("content-type").unwrap_or("-").to_owned());
            }
            Response::text(format!("hello {}", req.path()))
        })
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

#[test]
fn post_sends_the_body_with_its_length_and_headers() {
    isolated(|| {
        with_server(|base| {
            let response = evloop::http::post(&format!("{base}/p"), "a=1&b=2", TIMEOUT).unwrap();
            assert_eq!(response.body(), &b"posted 7 bytes: a=1&b=2"[..]);
            let response = ClientRequest::post(&format!("{base}/p"))
                .header("Content-Type", "application/json")
                .body(vec![b'x'; 100_000])
                .send()
                .unwrap();
            assert!(response.body().starts_with(b"posted 100000 bytes: xxx"));
            assert_eq!(response.header("x-type"), Some("application/json"));
            let empty = ClientRequest::post(&format!("{base}/p")).send().unwrap();
            assert_eq!(empty.body(), &b"posted 0 bytes: "[..]);
        });
    });
}

#[test]
fn a_chunked_response_is_decoded_with_its_trailers_skipped() {
    isolated(|| {
        let (url, server) = answering(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nX-Sum: 1\r\n\r\n",
        );
        let response = evloop::http::get(&url, TIMEOUT).unwrap();
        assert_eq!(response.body(), &b"hello world"[..]);
        server.join().unwrap();
    });
}

#[test]
fn interim_responses_are_skipped_and_head_has_no_body() {
    isolated(|| {
        let (url, server) = answering(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        assert_eq!(evloop::http::get(&url, TIMEOUT).unwrap().body(), &b"ok"[..]);
        server.join().unwrap();
        let (url, server) = answering(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
        let response = ClientRequest::new("HEAD", &url).timeout(TIMEOUT).send().unwrap();
        assert_eq!((response.status(), response.body().len()), (200, 0));
        server.join().unwrap();
    });
}

#[test]
fn a_broken_or_truncated_chunked_body_is_an_error() {
    isolated(|| {
        for (reply, kind) in [
            (&b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"[..], io::ErrorKind::InvalidData),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX", io::ErrorKind::InvalidData),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", io::ErrorKind::UnexpectedEof),
            (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n20\r\n0123456789abcdef0123456789abcdef\r\n0\r\n\r\n", io::ErrorKind::InvalidData),
        ] {
            let (url, server) = answering(reply);
            let err = evloop::http::get_with_max_body(&url, TIMEOUT, 16).unwrap_err();
            assert_eq!(err.kind(), kind, "{err} for {:?}", String::from_utf8_lossy(reply));
            server.join().unwrap();
        }
    });
}

#[test]
fn a_redirect_is_returned_not_followed() {
    isolated(|| {
        let (url, server) = answering(
            b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\nContent-Length: 0\r\n\r\n",
        );
        let response = evloop::http::get(&url, TIMEOUT).unwrap();
        assert_eq!(response.status(), 302);
        assert_eq!(response.header("location"), Some("http://127.0.0.1:1/elsewhere"));
        server.join().unwrap();
    });
}

/// Node's `http` module: `/chunks` streams 200 writes of a numbered line
/// with no length (so Node sends them chunked), `/big` one 3 MB chunked
/// body, `/echo` answers a POST's body chunked, `/go` redirects. Prints
/// its port, and exits after 30 s whatever happens.
const NODE_SERVER: &str = r#"
const http = require('http');
const server = http.createServer((req, res) => {
  if (req.url === '/chunks') {
    res.writeHead(200, {'Content-Type': 'text/plain'});
    let i = 0;
    const tick = () => {
      for (let n = 0; n < 20 && i < 200; n++, i++) res.write('line ' + i + '\n');
      if (i < 200) setImmediate(tick); else res.end();
    };
    tick();
  } else if (req.url === '/big') {
    res.end(Buffer.alloc(3 * 1024 * 1024, 'n'));
  } else if (req.url === '/echo') {
    const parts = [];
    req.on('data', (d) => parts.push(d));
    req.on('end', () => { res.write('got '); res.end(Buffer.concat(parts)); });
  } else if (req.url === '/go') {
    res.writeHead(301, {'Location': '/chunks'});
    res.end();
  } else {
    res.writeHead(404);
    res.end();
  }
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
setTimeout(() => process.exit(0), 30000);
"#;

#[test]
fn node_chunked_responses_are_decoded() {
    isolated(|| {
        let Some(node) = ExternalServer::start("node", &["-e", NODE_SERVER]) else {
            return;
        };
        let base = node.base();
        let chunks = evloop::http::get(&format!("{base}/chunks"), TIMEOUT).unwrap();
        assert_eq!(chunks.header("transfer-encoding"), Some("chunked"));
        let expected: String = (0..200).map(|i| format!("line {i}\n")).collect();
        assert_eq!(chunks.body(), expected.as_bytes());
        // Node sends a Buffer given to end() with its length; a stream of
        // writes goes chunked. Either way the body comes whole.
        let big = evloop::http::get(&format!("{base}/big"), TIMEOUT).unwrap();
        assert_eq!(big.body().len(), 3 * 1024 * 1024);
        assert!(big.body().iter().all(|&b| b == b'n'));
        let err = evloop::http::get_with_max_body(&format!("{base}/chunks"), TIMEOUT, 1000).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        let echo = evloop::http::post(&format!("{base}/echo"), "to node", TIMEOUT).unwrap();
        assert_eq!(echo.header("transfer-encoding"), Some("chunked"));
        assert_eq!(echo.body(), &b"got to node"[..]);
        let moved = evloop::http::get(&format!("{base}/go"), TIMEOUT).unwrap();
        assert_eq!((moved.status(), moved.header("location")), (301, Some("/chunks")));
    });
}

/// Python's `http.server` as HTTP/1.0 (its default): bodies without a
/// length, ended by the close. Prints its port, exits after 30 s.
const PYTHON_SERVER: &str = r#"
import http.server, threading, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        for i in range(1000):
            self.wfile.write(b"row %d\n" % i)
    def log_message(self, *args):
        pass
server = http.server.HTTPServer(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
threading.Timer(30, lambda: os._exit(0)).start()
server.serve_forever()
"#;

#[test]
fn python_close_delimited_responses_are_read_to_the_end() {
    isolated(|| {
        let Some(python) = ExternalServer::start("python3", &["-c", PYTHON_SERVER]) else {
            return;
        };
        let response = evloop::http::get(&format!("{}/rows", python.base()), TIMEOUT).unwrap();
        assert_eq!(response.header("content-length"), None);
        let expected: String = (0..1000).map(|i| format!("row {i}\n")).collect();
        assert_eq!(response.body(), expected.as_bytes());
        let err =
            evloop::http::get_with_max_body(&format!("{}/rows", python.base()), TIMEOUT, 100).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    });
}
