//! What a handler can do through `Conn`, and what happens when it misbehaves,
//! on both models: greetings, close, abort, half-close, pause/resume, timers,
//! idle timeout, `on_drained` after backpressure, panics, and `on_close`
//! exactly once with the right reason.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use evloop::{CloseReason, Config, Conn, Handler, TimerId};

use crate::common::{self, Model, TestServer, finish_and_expect_eof, read_exact_n};
use crate::on_both_models;

on_both_models!(
    a_panicking_handler_closes_only_its_own_connection,
    close_flushes_queued_output_then_ends_the_stream,
    abort_drops_output_and_resets_the_peer,
    shutdown_write_ends_our_stream_while_reading_goes_on,
    paused_reading_resumes_and_loses_nothing,
    timers_fire_and_are_delivered_to_on_timer,
    idle_timeout_closes_a_silent_client_but_not_an_active_one,
    on_close_runs_once_per_connection_with_its_reason,
    output_above_the_high_watermark_is_followed_by_on_drained,
    on_drained_keeps_a_streaming_handler_going_even_when_the_socket_takes_everything,
);

/// Reasons passed to `on_close`, shared with the test.
pub type Closes = Arc<Mutex<Vec<CloseReason>>>;

/// A handler driven by commands in the input: one byte each.
///
/// `P` panic, `C` close, `A` abort, `S` shut down the write half, `Z` pause
/// reading and resume 200 ms later, `T` write "tick" after 50 ms; any other
/// byte is echoed. Greets with "hi\n".
pub struct Scripted {
    closes: Closes,
    resume_timer: Option<TimerId>,
}

impl Scripted {
    /// A factory whose handlers log their close reasons in `closes`.
    pub fn factory(closes: &Closes) -> impl Fn() -> Scripted + Send + Sync + 'static {
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
            match input.split_to(1)[0] {
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
pub fn scripted(model: Model, config: Config) -> (TestServer, Closes) {
    let closes = Closes::default();
    let server = TestServer::start(model, config, Scripted::factory(&closes));
    (server, closes)
}

/// Waits for the close log to hold `n` entries and returns it.
#[track_caller]
pub fn closes_after(closes: &Closes, n: usize) -> Vec<CloseReason> {
    common::wait_until("on_close", || {
        Some(closes.lock().unwrap().clone()).filter(|c| c.len() >= n)
    })
}

fn a_panicking_handler_closes_only_its_own_connection(model: Model) {
    let (server, closes) = scripted(model, Config::default());
    let mut healthy = server.connect();
    let mut doomed = server.connect();
    assert_eq!(read_exact_n(&mut healthy, 3), b"hi\n");
    assert_eq!(read_exact_n(&mut doomed, 3), b"hi\n");

    doomed.write_all(b"xP").unwrap();
    let mut rest = Vec::new();
    let _ = doomed.read_to_end(&mut rest); // ends in a reset or an EOF
    assert_eq!(closes_after(&closes, 1), [CloseReason::Panicked]);

    healthy.write_all(b"still here").unwrap();
    assert_eq!(read_exact_n(&mut healthy, 10), b"still here");
    let stats = server.wait_for_stats("panic counted", |s| s.closed_by(&CloseReason::Panicked) == 1);
    assert_eq!(stats.panics, 1);

    let late = server.connect();
    drop((healthy, late, doomed));
    assert_eq!(closes_after(&closes, 3).len(), 3);
    drop(server);
}

fn close_flushes_queued_output_then_ends_the_stream(model: Model) {
    let (server, closes) = scripted(model, Config::default());
    let mut client = server.connect();
    client.write_all(b"bye!C").unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"hi\nbye!");
    assert_eq!(closes_after(&closes, 1), [CloseReason::Closed]);
}

fn abort_drops_output_and_resets_the_peer(model: Model) {
    let (server, closes) = scripted(model, Config::default());
    let mut client = server.connect();
    assert_eq!(read_exact_n(&mut client, 3), b"hi\n");
    client.write_all(b"lost output A").unwrap();
    let mut got = Vec::new();
    let err = client.read_to_end(&mut got).expect_err("an abort resets");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    assert!(got.is_empty(), "output queued before abort was sent: {got:?}");
    assert_eq!(closes_after(&closes, 1), [CloseReason::Aborted]);
    drop(server);
}

fn shutdown_write_ends_our_stream_while_reading_goes_on(model: Model) {
    let (server, closes) = scripted(model, Config::default());
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

fn paused_reading_resumes_and_loses_nothing(model: Model) {
    let (server, _closes) = scripted(model, Config::default());
    let mut client = server.connect();
    assert_eq!(read_exact_n(&mut client, 3), b"hi\n");
    let start = Instant::now();
    client.write_all(b"Z").unwrap();
    client.write_all(b"after").unwrap();
    assert_eq!(read_exact_n(&mut client, 8), b"resumed\n");
    assert!(start.elapsed() >= Duration::from_millis(190));
    assert_eq!(read_exact_n(&mut client, 5), b"after");
    finish_and_expect_eof(client);
}

fn timers_fire_and_are_delivered_to_on_timer(model: Model) {
    let (server, _closes) = scripted(model, Config::default());
    let mut client = server.connect();
    assert_eq!(read_exact_n(&mut client, 3), b"hi\n");
    let start = Instant::now();
    client.write_all(b"TT").unwrap();
    assert_eq!(read_exact_n(&mut client, 10), b"tick\ntick\n");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(45) && took < Duration::from_secs(2),
        "{took:?}"
    );
    finish_and_expect_eof(client);
    drop(server);
}

fn idle_timeout_closes_a_silent_client_but_not_an_active_one(model: Model) {
    let idle = Duration::from_millis(300);
    let (server, closes) = scripted(model, Config::default().idle_timeout(Some(idle)));
    let start = Instant::now();
    let mut silent = server.connect();
    let mut active = server.connect();
    let written = std::thread::scope(|scope| {
        // The active client writes twenty times per timeout, for two timeouts.
        let writer = scope.spawn(|| keep_writing(&active, idle / 20, start + idle * 2));

        // Meanwhile the silent one is closed, once the timeout has passed.
        assert_eq!(closes_after(&closes, 1), [CloseReason::IdleTimeout]);
        let took = start.elapsed();
        assert!(took >= idle - Duration::from_millis(10), "closed after {took:?}");
        let mut got = Vec::new();
        silent.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"hi\n");
        writer.join().unwrap()
    });

    // The active one, twice the timeout in, is still served.
    active.write_all(b"!").unwrap();
    let expected = [&b"hi\n"[..], &b"k".repeat(written), b"!"].concat();
    assert_eq!(read_exact_n(&mut active, expected.len()), expected);
    drop((silent, active));
    closes_after(&closes, 2);
    drop(server);
}

/// Writes a byte to `stream` every `every` until `until`; returns how many
/// it wrote.
fn keep_writing(mut stream: &TcpStream, every: Duration, until: Instant) -> usize {
    let mut written = 0;
    while Instant::now() < until {
        stream.write_all(b"k").unwrap();
        written += 1;
        std::thread::sleep(every);
    }
    written
}

fn on_close_runs_once_per_connection_with_its_reason(model: Model) {
    let (server, closes) = scripted(model, Config::default());
    let mut clients: Vec<_> = (0..4).map(|_| server.connect()).collect();
    for (client, cmd) in clients.iter_mut().zip([&b"C"[..], b"A", b"P", b""]) {
        assert_eq!(read_exact_n(client, 3), b"hi\n");
        client.write_all(cmd).unwrap();
    }
    clients.pop(); // the last one simply goes away
    let mut reasons = closes_after(&closes, 4);
    let stats = server.wait_for_stats("four closed", |s| s.closed_total() == 4);
    assert_eq!(stats.accepted, stats.closed_total() + stats.open);
    // Once the server has stopped, every on_close it will ever run has run.
    server.stop(Duration::ZERO);
    assert_eq!(closes.lock().unwrap().len(), 4, "on_close ran more than once");
    reasons.sort_by_key(|r| format!("{r:?}"));
    let expected = [
        CloseReason::Aborted,
        CloseReason::Closed,
        CloseReason::Panicked,
        CloseReason::PeerClosed,
    ];
    assert_eq!(reasons, expected);
}

/// Bulk output: "go" queues far more than socket buffers hold, and once it
/// has drained `on_drained` adds a trailer.
struct Bulk;

/// Bytes queued by [`Bulk`]: more than loopback socket buffers take at once.
const BULK: usize = 16 * 1024 * 1024;

impl Handler for Bulk {
    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        if input.split().as_ref() == b"go" {
            conn.write_bytes(Bytes::from(vec![b'.'; BULK]));
        }
    }

    fn on_drained(&mut self, conn: &mut Conn<'_>) {
        conn.write(b"drained");
    }
}

fn output_above_the_high_watermark_is_followed_by_on_drained(model: Model) {
    let server = TestServer::start(model, Config::default(), || Bulk);
    let mut client = server.connect();
    client.write_all(b"go").unwrap();
    server.wait_for_stats("output above the high watermark", |s| s.read_pauses == 1);
    let mut got = Vec::new();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    client.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), BULK + b"drained".len());
    assert!(
        got.ends_with(b".drained"),
        "on_drained wrote after the bulk output"
    );
}

/// Streams `left` bytes: writes until output passes the high watermark (the
/// default, 64 KiB), then waits for `on_drained` to write more; closes when
/// done.
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

fn on_drained_keeps_a_streaming_handler_going_even_when_the_socket_takes_everything(model: Model) {
    const TOTAL: usize = 32 * 1024 * 1024;
    let server = TestServer::start(model, Config::default(), || Streamer { left: TOTAL });
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
