//! Answers that come later and bodies that stream, over real sockets on
//! both execution models: an answer from another thread while the same
//! loop serves other requests at once; pipelined answers leaving in request
//! order whatever order they are given in; a timer on the loop; a dropped
//! responder or a panic answered with 500; the head timeout, the idle
//! timeout and the shutdown grace still holding while an answer is
//! awaited; bodies of unknown length streamed chunked (HTTP/1.1) or ended
//! by the close (HTTP/1.0), from a thread through a channel, and a 1 GiB
//! generated body sent to a slow reader with the server never holding more
//! than its high watermark.

#![cfg(feature = "http")]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::http::{read_reply, read_until_closed, replies};
use evloop::http::{HttpConfig, HttpServer, Request, Responder, Response, body_channel, body_from_iter};
use evloop::sys::ProcessStats;
use evloop::{Config, Model, ServerHandle};

on_both_models!(
    an_answer_from_another_thread_does_not_hold_up_the_loop,
    pipelined_answers_leave_in_request_order,
    an_answer_from_a_loop_timer_arrives_after_its_delay,
    a_dropped_responder_or_a_panic_gets_500_and_a_close,
    the_head_timeout_holds_behind_an_awaited_answer,
    the_idle_timeout_closes_a_connection_whose_answer_never_comes,
    shutdown_ends_within_its_grace_with_an_answer_outstanding,
    a_streamed_body_goes_chunked_to_http_1_1_and_close_delimited_to_http_1_0,
    a_body_streamed_from_a_thread_ends_when_the_client_leaves,
    a_1_gib_body_to_a_slow_reader_keeps_memory_flat,
    the_client_reads_a_streamed_body_back,
);

/// A server of `model` on one loop running the deferring `app`; shut down
/// (no grace) and joined when dropped.
struct Deferred(ServerHandle);

impl Deferred {
    fn start(
        model: Model,
        http: HttpConfig,
        app: impl Fn(Request, Responder) + Send + Sync + 'static,
    ) -> Self {
        Self::start_with(model, http, Config::default(), app)
    }

    fn start_with(
        model: Model,
        http: HttpConfig,
        config: Config,
        app: impl Fn(Request, Responder) + Send + Sync + 'static,
    ) -> Self {
        let server = HttpServer::new(common::localhost())
            .threads(1)
            .model(model)
            .config(config)
            .http_config(http)
            .start_deferred(app)
            .unwrap();
        Deferred(server)
    }

    fn connect(&self) -> std::net::TcpStream {
        let stream = std::net::TcpStream::connect(self.0.local_addr()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
    }

    fn exchange(&self, raw: &[u8]) -> String {
        let mut stream = self.connect();
        stream.write_all(raw).unwrap();
        read_until_closed(&mut stream)
    }
}

impl Drop for Deferred {
    fn drop(&mut self) {
        self.0.shutdown(Duration::ZERO);
        let _ = self.0.join();
    }
}

/// Answers `/sleep/MS` from another thread after MS milliseconds with
/// `late MS`, and everything else at once with its path.
fn sleepy(req: Request, responder: Responder) {
    match req.path().strip_prefix("/sleep/") {
        Some(ms) => {
            let ms: u64 = ms.parse().unwrap();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(ms));
                responder.send(Response::text(format!("late {ms}")));
            });
        }
        None => responder.send(Response::text(req.path().to_owned())),
    }
}

fn an_answer_from_another_thread_does_not_hold_up_the_loop(model: Model) {
    let server = Deferred::start(model, HttpConfig::default(), sleepy);
    let slow = server.connect();
    (&slow)
        .write_all(b"GET /sleep/600 HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    let start = Instant::now();
    let fast = server.connect();
    let mut fast_reader = BufReader::new(fast.try_clone().unwrap());
    for i in 0..20 {
        (&fast)
            .write_all(format!("GET /fast{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes())
            .unwrap();
        assert_eq!(read_reply(&mut fast_reader, false).body, format!("/fast{i}"));
    }
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "fast requests waited {:?} behind the slow one",
        start.elapsed()
    );
    let reply = read_reply(&mut BufReader::new(slow), false);
    assert_eq!(reply.body, "late 600");
    assert!(
        start.elapsed() >= Duration::from_millis(550),
        "{:?}",
        start.elapsed()
    );
}

fn pipelined_answers_leave_in_request_order(model: Model) {
    let server = Deferred::start(model, HttpConfig::default(), sleepy);
    let all = server.exchange(
        b"GET /sleep/300 HTTP/1.1\r\nHost: h\r\n\r\nGET /now HTTP/1.1\r\nHost: h\r\n\r\n\
          GET /sleep/100 HTTP/1.1\r\nHost: h\r\n\r\nGET /sleep/1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    );
    let bodies: Vec<String> = replies(&all).into_iter().map(|r| r.body).collect();
    assert_eq!(bodies, ["late 300", "/now", "late 100", "late 1"]);
}

fn an_answer_from_a_loop_timer_arrives_after_its_delay(model: Model) {
    let server = Deferred::start(model, HttpConfig::default(), |req, responder| {
        let path = req.path().to_owned();
        responder.after(Duration::from_millis(150), move |responder| {
            responder.after(Duration::from_millis(50), move |responder| {
                responder.send(Response::text(format!("timed {path}")));
            });
        });
    });
    let start = Instant::now();
    let got = replies(&server.exchange(b"GET /t HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"));
    assert_eq!(got[0].body, "timed /t");
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "{:?}",
        start.elapsed()
    );
}

fn a_dropped_responder_or_a_panic_gets_500_and_a_close(model: Model) {
    let server = Deferred::start(model, HttpConfig::default(), |req, responder| match req.path() {
        "/drop" => drop(responder),
        "/panic" => panic!("the application failed"),
        _ => responder.send(Response::text("fine")),
    });
    for path in ["/drop", "/panic"] {
        let all = server.exchange(format!("GET /ok HTTP/1.1\r\nHost: h\r\n\r\nGET {path} HTTP/1.1\r\nHost: h\r\n\r\nGET /never HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
        let got = replies(&all);
        assert_eq!(got.len(), 2, "{all}");
        assert_eq!(got[0].body, "fine");
        assert_eq!(got[1].status, "HTTP/1.1 500 Internal Server Error");
        assert_eq!(got[1].header("connection"), Some("close"));
    }
}

fn the_head_timeout_holds_behind_an_awaited_answer(model: Model) {
    let limit = Duration::from_millis(300);
    let server = Deferred::start(model, HttpConfig::default().head_timeout(Some(limit)), sleepy);
    let start = Instant::now();
    let all = server.exchange(b"GET /sleep/200 HTTP/1.1\r\nHost: h\r\n\r\nGET /partial HTTP/1.1\r\nHo");
    let got = replies(&all);
    assert_eq!(
        (got[0].body.as_str(), got[1].status.as_str()),
        ("late 200", "HTTP/1.1 408 Request Timeout")
    );
    // The head timer runs once the answer has gone, not while it was awaited.
    assert!(
        start.elapsed() >= Duration::from_millis(450),
        "{:?}",
        start.elapsed()
    );
}

fn the_idle_timeout_closes_a_connection_whose_answer_never_comes(model: Model) {
    let timeout = Duration::from_millis(300);
    let kept = Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = Arc::clone(&kept);
    let server = Deferred::start(
        model,
        HttpConfig::default().keep_alive_timeout(Some(timeout)),
        move |_, responder| {
            keep.lock().unwrap().push(responder);
        },
    );
    let start = Instant::now();
    let all = server.exchange(b"GET /never HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(all, "");
    assert!(
        start.elapsed() >= timeout - Duration::from_millis(50),
        "{:?}",
        start.elapsed()
    );
    // Answering the closed connection does nothing.
    for responder in kept.lock().unwrap().drain(..) {
        responder.send(Response::text("too late"));
    }
}

fn shutdown_ends_within_its_grace_with_an_answer_outstanding(model: Model) {
    let kept = Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = Arc::clone(&kept);
    let server = HttpServer::new(common::localhost())
        .threads(1)
        .model(model)
        .start_deferred(move |_, responder| keep.lock().unwrap().push(responder))
        .unwrap();
    let mut stream = std::net::TcpStream::connect(server.local_addr()).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream
        .write_all(b"GET /never HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    common::wait_until("the request handed over", || {
        (!kept.lock().unwrap().is_empty()).then_some(())
    });
    let start = Instant::now();
    server.shutdown(Duration::from_millis(300));
    server.join().unwrap();
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    kept.lock().unwrap().clear();
}

/// Decodes a chunked body from `reader`: the data, after checking each
/// chunk's framing.
fn read_chunked(reader: &mut impl BufRead) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let size = usize::from_str_radix(line.trim_end(), 16).unwrap();
        let mut chunk = vec![0; size + 2];
        reader.read_exact(&mut chunk).unwrap();
        assert!(chunk.ends_with(b"\r\n"));
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&chunk[..size]);
    }
}

/// Streams `count` numbered lines from an iterator.
fn lines(req: Request, responder: Responder) {
    let count: usize = req.path()[1..].parse().unwrap_or(0);
    let body = body_from_iter((0..count).map(|i| Bytes::from(format!("line {i}\n"))));
    responder.stream(Response::new(200).header("Content-Type", "text/plain"), body);
}

fn a_streamed_body_goes_chunked_to_http_1_1_and_close_delimited_to_http_1_0(model: Model) {
    let server = Deferred::start(model, HttpConfig::default(), lines);
    let expected: String = (0..5000).map(|i| format!("line {i}\n")).collect();
    let stream = server.connect();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    for _ in 0..2 {
        (&stream)
            .write_all(b"GET /5000 HTTP/1.1\r\nHost: h\r\n\r\n")
            .unwrap();
        let head = read_reply(&mut reader, true);
        assert_eq!(head.header("transfer-encoding"), Some("chunked"));
        assert_eq!(head.header("content-length"), None);
        assert_eq!(read_chunked(&mut reader), expected.as_bytes());
    }
    (&stream)
        .write_all(b"HEAD /5000 HTTP/1.1\r\nHost: h\r\n\r\nGET /0 HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    assert_eq!(
        read_reply(&mut reader, true).header("transfer-encoding"),
        Some("chunked")
    );
    assert_eq!(
        read_reply(&mut reader, true).header("transfer-encoding"),
        Some("chunked")
    );
    assert_eq!(read_chunked(&mut reader), b"");
    let old = server.exchange(b"GET /5000 HTTP/1.0\r\n\r\n");
    let (head, body) = old.split_once("\r\n\r\n").unwrap();
    assert!(
        head.contains("Connection: close") && !head.contains("Transfer-Encoding"),
        "{head}"
    );
    assert_eq!(body, expected);
}

fn a_body_streamed_from_a_thread_ends_when_the_client_leaves(model: Model) {
    let ended = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&ended);
    let server = Deferred::start(model, HttpConfig::default(), move |_, responder| {
        let (sender, body) = body_channel(1024);
        responder.stream(
            Response::new(200).header("Content-Type", "text/event-stream"),
            body,
        );
        let flag = Arc::clone(&flag);
        std::thread::spawn(move || {
            for tick in 0u64.. {
                if sender.send(format!("data: {tick}\n\n")).is_err() {
                    flag.store(true, Ordering::SeqCst);
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
    });
    let stream = server.connect();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    (&stream)
        .write_all(b"GET /events HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    read_reply(&mut reader, true);
    let mut events = String::new();
    while events.matches("data: ").count() < 5 {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        events.push_str(&line);
    }
    assert!(
        events.contains("data: 0\n") && events.contains("data: 4\n"),
        "{events}"
    );
    drop((reader, stream));
    common::wait_until("the producer told that the client left", || {
        ended.load(Ordering::SeqCst).then_some(())
    });
}

/// Pieces of a generated body, each a fresh allocation, counting what the
/// server pulled.
struct Generated {
    /// Bytes still to generate.
    left: u64,
    /// Bytes pulled so far, shared with the test.
    pulled: Arc<AtomicU64>,
}

impl Iterator for Generated {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        let n = self.left.min(64 * 1024) as usize;
        if n == 0 {
            return None;
        }
        self.left -= n as u64;
        self.pulled.fetch_add(n as u64, Ordering::SeqCst);
        Some(Bytes::from(vec![b'g'; n]))
    }
}

fn a_1_gib_body_to_a_slow_reader_keeps_memory_flat(model: Model) {
    const TOTAL: u64 = 1 << 30;
    // Kernel buffers between the two ends are capped, so what the server
    // pulled and the client has not read is: the server's own output (at
    // most the high watermark, 64 KiB, plus a piece) and these buffers.
    const KERNEL: usize = 256 * 1024;
    let pulled = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&pulled);
    let config = Config::default().send_buffer(Some(KERNEL));
    let server = Deferred::start_with(model, HttpConfig::default(), config, move |_, responder| {
        let body = body_from_iter(Generated {
            left: TOTAL,
            pulled: Arc::clone(&counter),
        });
        responder.stream(Response::new(200), body);
    });
    let stream = server.connect();
    socket2::SockRef::from(&stream)
        .set_recv_buffer_size(KERNEL)
        .unwrap();
    let before = ProcessStats::current().unwrap().rss;
    (&stream)
        .write_all(b"GET /big HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::with_capacity(1 << 20, stream);
    read_reply(&mut reader, true);
    // Framing: a size line and a CRLF per 64 KiB chunk, then the last chunk.
    let wire = TOTAL + (TOTAL / 65536) * ("10000\r\n".len() as u64 + 2) + 5;
    let (mut read, mut ahead_most, mut rss_most) = (0u64, 0u64, before);
    let mut buf = vec![0; 1 << 20];
    let start = Instant::now();
    while read < wire {
        let n = reader.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended after {read} bytes");
        read += n as u64;
        if start.elapsed() < Duration::from_millis(400) {
            // Slow at first: the server must wait for us, not pull ahead.
            std::thread::sleep(Duration::from_millis(5));
            let ahead = pulled.load(Ordering::SeqCst).saturating_sub(read);
            ahead_most = ahead_most.max(ahead);
        }
        if read % (64 << 20) < n as u64 {
            rss_most = rss_most.max(ProcessStats::current().unwrap().rss);
        }
    }
    assert_eq!(read, wire);
    assert!(buf[..0].is_empty());
    assert_eq!(pulled.load(Ordering::SeqCst), TOTAL);
    let bound = 4 * KERNEL as u64 + 3 * 65536;
    assert!(
        ahead_most <= bound,
        "the server pulled {ahead_most} bytes ahead of a slow reader"
    );
    let growth = rss_most.saturating_sub(before);
    common::figure("1 GiB stream", "RSS growth at most (MiB)", growth >> 20);
    common::figure(
        "1 GiB stream",
        "pulled ahead of a slow reader at most (KiB)",
        ahead_most >> 10,
    );
    assert!(
        !common::memory_is_measurable() || growth < 32 << 20,
        "resident memory grew by {growth} bytes streaming 1 GiB"
    );
}

fn the_client_reads_a_streamed_body_back(model: Model) {
    let server = Deferred::start(model, HttpConfig::default(), lines);
    let response = evloop::http::get(
        &format!("http://{}/20000", server.0.local_addr()),
        Duration::from_secs(10),
    )
    .unwrap();
    let expected: String = (0..20000).map(|i| format!("line {i}\n")).collect();
    assert_eq!(response.header("transfer-encoding"), Some("chunked"));
    assert_eq!(response.body(), expected.as_bytes());
}
