//! What a handler can do through `Conn`, and what happens when it misbehaves:
//! greetings, close, abort, half-close, pause/resume, timers, idle timeout,
//! panics, and `on_close` exactly once with the right reason.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::{TestServer, assert_fds_return_to, finish_and_expect_eof, open_fds, serial};
use evloop::{CloseReason, Config, Conn, Handler, TimerId};

/// Reasons passed to `on_close`, shared with the test.
type Closes = Arc<Mutex<Vec<CloseReason>>>;

/// A handler driven by commands in the input: one byte each.
///
/// `P` panic, `C` close, `A` abort, `S` shut down the write half, `Z` pause
/// reading and resume 200 ms later, `T` write "tick" after 50 ms; any other
/// byte is echoed.
struct Scripted {
    closes: Closes,
    resume_timer: Option<TimerId>,
}

impl Scripted {
    fn factory(closes: &Closes) -> impl FnMut() -> Scripted + Send + 'static {
        let closes = Arc::clone(closes);
        move || Scripted {
            closes: Arc::clone(&closes),
            resume_timer: None,
        }
    }
}

impl Handler for Scripted {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        conn.write(b"hi\n");
    }

    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        while !input.is_empty() {
            let byte = input.split_to(1)[0];
            match byte {
                b'P' => panic!("scripted panic"),
                b'C' => conn.close(),
                b'A' => conn.abort(),
                b'S' => conn.shutdown_write(),
                b'Z' => {
                    conn.pause_reading();
                    self.resume_timer = Some(conn.set_timer(Duration::from_millis(200)));
                    return;
                }
                b'T' => {
                    conn.set_timer(Duration::from_millis(50));
                }
                other => conn.write(&[other]),
            }
        }
    }

    fn on_timer(&mut self, conn: &mut Conn<'_>, timer: TimerId) {
        if self.resume_timer == Some(timer) {
            conn.write(b"resumed\n");
            conn.resume_reading();
        } else {
            conn.write(b"tick\n");
        }
    }

    fn on_close(&mut self, reason: &CloseReason) {
        self.closes.lock().unwrap().push(reason.clone());
    }
}

/// Starts a scripted server; returns it with the shared close log.
fn scripted(config: Config) -> (TestServer, Closes) {
    let closes = Closes::default();
    (TestServer::start(config, Scripted::factory(&closes)), closes)
}

/// Reads exactly `n` bytes.
#[track_caller]
fn read_n(stream: &mut std::net::TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    stream.read_exact(&mut buf).unwrap();
    buf
}

/// Waits for the close log to hold `n` entries and returns it.
#[track_caller]
fn closes_after(closes: &Closes, n: usize) -> Vec<CloseReason> {
    common::wait_until("on_close", || {
        Some(closes.lock().unwrap().clone()).filter(|c| c.len() >= n)
    })
}

#[test]
fn a_panicking_handler_closes_only_its_own_connection() {
    let _serial = serial();
    let fds = open_fds();
    let (server, closes) = scripted(Config::default());
    let mut healthy = server.connect();
    let mut doomed = server.connect();
    assert_eq!(read_n(&mut healthy, 3), b"hi\n");
    assert_eq!(read_n(&mut doomed, 3), b"hi\n");

    doomed.write_all(b"xP").unwrap();
    let mut rest = Vec::new();
    let _ = doomed.read_to_end(&mut rest); // ends in a reset or an EOF
    assert_eq!(closes_after(&closes, 1), [CloseReason::Panicked]);

    healthy.write_all(b"still here").unwrap();
    assert_eq!(read_n(&mut healthy, 10), b"still here");
    let stats = server.stats();
    assert_eq!((stats.panics, stats.closed_by(&CloseReason::Panicked)), (1, 1));

    let late = server.connect();
    drop((healthy, late, doomed));
    assert_eq!(closes_after(&closes, 3).len(), 3);
    drop(server);
    assert_fds_return_to(fds);
}

#[test]
fn close_flushes_queued_output_then_ends_the_stream() {
    let _serial = serial();
    let (server, closes) = scripted(Config::default());
    let mut client = server.connect();
    client.write_all(b"bye!C").unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"hi\nbye!");
    assert_eq!(closes_after(&closes, 1), [CloseReason::Closed]);
    drop(server);
}

#[test]
fn abort_drops_output_and_resets_the_peer() {
    let _serial = serial();
    let (server, closes) = scripted(Config::default());
    let mut client = server.connect();
    assert_eq!(read_n(&mut client, 3), b"hi\n");
    client.write_all(b"lost output A").unwrap();
    let mut got = Vec::new();
    let err = client.read_to_end(&mut got).expect_err("an abort resets");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    assert!(got.is_empty(), "output queued before abort was sent: {got:?}");
    assert_eq!(closes_after(&closes, 1), [CloseReason::Aborted]);
    drop(server);
}

#[test]
fn shutdown_write_ends_our_stream_while_reading_goes_on() {
    let _serial = serial();
    let (server, closes) = scripted(Config::default());
    let mut client = server.connect();
    client.write_all(b"abS").unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"hi\nab", "end of stream after the queued output");
    // The server still reads: a panic command is acted on.
    client.write_all(b"P").unwrap();
    assert_eq!(closes_after(&closes, 1), [CloseReason::Panicked]);
    drop(server);
}

#[test]
fn paused_reading_resumes_and_loses_nothing() {
    let _serial = serial();
    let (server, _closes) = scripted(Config::default());
    let mut client = server.connect();
    assert_eq!(read_n(&mut client, 3), b"hi\n");
    let start = Instant::now();
    client.write_all(b"Z").unwrap();
    client.write_all(b"after").unwrap();
    assert_eq!(read_n(&mut client, 8), b"resumed\n");
    assert!(start.elapsed() >= Duration::from_millis(190));
    assert_eq!(read_n(&mut client, 5), b"after");
    finish_and_expect_eof(client);
}

#[test]
fn timers_fire_and_are_delivered_to_on_timer() {
    let _serial = serial();
    let (server, _closes) = scripted(Config::default());
    let mut client = server.connect();
    assert_eq!(read_n(&mut client, 3), b"hi\n");
    let start = Instant::now();
    client.write_all(b"T").unwrap();
    assert_eq!(read_n(&mut client, 5), b"tick\n");
    assert!(start.elapsed() >= Duration::from_millis(45));
    finish_and_expect_eof(client);
    drop(server);
}

#[test]
fn idle_timeout_closes_a_silent_client_but_not_an_active_one() {
    let _serial = serial();
    let fds = open_fds();
    let config = Config::default().idle_timeout(Some(Duration::from_millis(300)));
    let (server, closes) = scripted(config);
    let mut silent = server.connect();
    let mut active = server.connect();
    let start = Instant::now();
    for _ in 0..10 {
        active.write_all(b"k").unwrap();
        std::thread::sleep(Duration::from_millis(60));
    }
    // The silent client was closed after ~300 ms.
    let mut got = Vec::new();
    silent.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"hi\n");
    assert_eq!(closes_after(&closes, 1), [CloseReason::IdleTimeout]);
    assert!(start.elapsed() >= Duration::from_millis(290));

    // The active one, 600 ms in, is still served.
    active.write_all(b"!").unwrap();
    assert_eq!(read_n(&mut active, 14), b"hi\nkkkkkkkkkk!");
    drop((silent, active));
    closes_after(&closes, 2);
    drop(server);
    assert_fds_return_to(fds);
}

#[test]
fn on_close_runs_once_per_connection_with_its_reason() {
    let _serial = serial();
    let (server, closes) = scripted(Config::default());
    let mut clients: Vec<_> = (0..4).map(|_| server.connect()).collect();
    for (client, cmd) in clients.iter_mut().zip([&b"C"[..], b"A", b"P", b""]) {
        assert_eq!(read_n(client, 3), b"hi\n");
        client.write_all(cmd).unwrap();
    }
    clients.pop(); // the last one simply goes away
    let mut reasons = closes_after(&closes, 4);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(closes.lock().unwrap().len(), 4, "on_close ran more than once");
    reasons.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(
        reasons,
        [
            CloseReason::Aborted,
            CloseReason::Closed,
            CloseReason::Panicked,
            CloseReason::PeerClosed
        ]
    );
    let stats = server.stats();
    assert_eq!(stats.closed_total(), 4);
    assert_eq!(stats.accepted, stats.closed_total() + stats.open);
}

#[test]
fn shutdown_flushes_large_queued_replies_before_closing() {
    let _serial = serial();
    let fds = open_fds();
    let server = TestServer::echo();
    let mut client = server.connect();
    let payload = common::pattern(2 * 1024 * 1024, 11);
    client.write_all(&payload[..32 * 1024]).unwrap();
    // Wait until the server has read it, then shut down while we have not read.
    server.wait_for_stats("read", |s| s.bytes_read == 32 * 1024);
    let handle = server.handle.clone();
    let stopper = std::thread::spawn(move || handle.shutdown(Duration::from_secs(5)));
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    stopper.join().unwrap();
    assert!(
        got[..] == payload[..32 * 1024],
        "lost bytes at shutdown: got {}",
        got.len()
    );
    server.wait_for_stats("closed", |s| s.closed_by(&CloseReason::Shutdown) == 1);
    drop((client, server));
    assert_fds_return_to(fds);
}

/// Streams `total` bytes: writes until the high watermark is passed, then
/// waits for `on_drained` to write more; closes when done.
struct Streamer {
    left: usize,
}

impl Streamer {
    fn fill(&mut self, conn: &mut Conn<'_>) {
        while self.left > 0 && conn.pending_output() <= 64 * 1024 {
            let n = self.left.min(16 * 1024);
            conn.write(&vec![b's'; n]);
            self.left -= n;
        }
        if self.left == 0 {
            conn.close();
        }
    }
}

impl Handler for Streamer {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        self.fill(conn);
    }
    fn on_data(&mut self, _: &mut Conn<'_>, input: &mut BytesMut) {
        input.clear();
    }
    fn on_drained(&mut self, conn: &mut Conn<'_>) {
        self.fill(conn);
    }
}

#[test]
fn on_drained_keeps_a_streaming_handler_going_even_when_the_socket_takes_everything() {
    let _serial = serial();
    const TOTAL: usize = 32 * 1024 * 1024;
    let server = TestServer::start(Config::default(), || Streamer { left: TOTAL });
    let mut client = server.connect();
    let mut got = 0;
    let mut buf = vec![0; 256 * 1024];
    loop {
        match client.read(&mut buf).unwrap() {
            0 => break,
            n => got += n,
        }
    }
    assert_eq!(got, TOTAL);
    server.wait_for_stats("closed", |s| s.closed_by(&CloseReason::Closed) == 1);
}
