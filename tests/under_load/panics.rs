//! Handlers panic on a few connections while many others echo.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::BytesMut;
use evloop::{CloseReason, Conn, Handler, Model, Stats};

use crate::common::{figure, finish_and_expect_eof, pattern, read_exact_n, scaled, wait_until};
use crate::{start, stop};

/// Read timeout of every client socket, so that no step can hang.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

/// Echoes complete lines; a line starting with `PANIC` makes it panic.
struct EchoLinesOrPanic;

impl Handler for EchoLinesOrPanic {
    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        while let Some(end) = input.iter().position(|&b| b == b'\n') {
            let line = input.split_to(end + 1).freeze();
            if line.starts_with(b"PANIC") {
                panic!("{}", REQUESTED_PANIC);
            }
            conn.write_bytes(line);
        }
    }
}

/// The line that makes [`EchoLinesOrPanic`] panic.
const PANIC_LINE: &[u8] = b"PANIC\n";

/// The message of that panic.
const REQUESTED_PANIC: &str = "the client asked for a panic";

/// Keeps the panics the clients ask for out of the test output: they are
/// expected, and there are dozens. Any other panic is reported as usual.
fn quiet_requested_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = (payload.downcast_ref::<&str>().copied())
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
            if message != Some(REQUESTED_PANIC) {
                report(info);
            }
        }));
    });
}

/// Many clients echo without pause while a few others, one after another,
/// make their handlers panic.
pub fn panics_under_load_close_only_their_own_connections(model: Model) {
    quiet_requested_panics();
    let (healthy, doomed) = (scaled(48, 200), scaled(8, 32));
    let server = start(model, || EchoLinesOrPanic);
    let addr = server.local_addr();
    let panics_done = Arc::new(AtomicBool::new(false));
    let echoing: Vec<JoinHandle<usize>> = (0..healthy)
        .map(|client| {
            let panics_done = Arc::clone(&panics_done);
            std::thread::spawn(move || keep_echoing(addr, client as u64, &panics_done))
        })
        .collect();
    let panicking: Vec<JoinHandle<()>> = (0..doomed)
        .map(|client| {
            std::thread::spawn(move || echo_then_panic(addr, 1_000 + client as u64, 10 + 10 * client))
        })
        .collect();

    panicking
        .into_iter()
        .for_each(|t| t.join().expect("a panicking client failed"));
    let stats = wait_until("every panic counted", || {
        Some(server.stats()).filter(|s| s.closed_by(&CloseReason::Panicked) == doomed as u64)
    });
    assert_eq!(stats.panics, doomed as u64, "{stats:?}");
    panics_done.store(true, Ordering::SeqCst);
    let rounds: Vec<usize> = echoing
        .into_iter()
        .map(|t| t.join().expect("an echoing client failed"))
        .collect();

    let stats = wait_until("every connection closed", || {
        Some(server.stats()).filter(|s| s.open == 0)
    });
    let scenario = format!("panics under load {model:?}");
    figure(
        &scenario,
        "clients echoing / panicking",
        format!("{healthy} / {doomed}"),
    );
    figure(&scenario, "echo rounds", rounds.iter().sum::<usize>());
    assert_only_the_panicking_closed(&stats, healthy as u64, doomed as u64);
    stop(server, Duration::from_secs(1));
}

/// The counters after the scenario: each panic counted once, as the close
/// of its own connection; every other connection closed by its client; every
/// byte read echoed but for the lines that caused the panics.
#[track_caller]
fn assert_only_the_panicking_closed(stats: &Stats, healthy: u64, doomed: u64) {
    assert_eq!(stats.accepted, healthy + doomed, "{stats:?}");
    assert_eq!(stats.panics, doomed, "{stats:?}");
    assert_eq!(stats.closed_by(&CloseReason::Panicked), doomed, "{stats:?}");
    assert_eq!(stats.closed_by(&CloseReason::PeerClosed), healthy, "{stats:?}");
    let unechoed = doomed * PANIC_LINE.len() as u64;
    assert_eq!(stats.bytes_written + unechoed, stats.bytes_read, "{stats:?}");
}

/// Echoes verified lines until it sees `panics_done`, then one more: the
/// connection still works after every panic. Returns the rounds made.
fn keep_echoing(addr: SocketAddr, seed: u64, panics_done: &AtomicBool) -> usize {
    let mut stream = connect(addr);
    let mut round = 0;
    loop {
        let last = panics_done.load(Ordering::SeqCst);
        echo_line(&mut stream, seed, round);
        round += 1;
        if last {
            break;
        }
    }
    finish_and_expect_eof(stream);
    round
}

/// Echoes `rounds` verified lines, then sends [`PANIC_LINE`] and expects the
/// connection to end (end of stream or reset) with nothing more said.
fn echo_then_panic(addr: SocketAddr, seed: u64, rounds: usize) {
    let mut stream = connect(addr);
    for round in 0..rounds {
        echo_line(&mut stream, seed, round);
    }
    stream.write_all(PANIC_LINE).unwrap();
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "client {seed}"),
    }
    assert!(
        rest.is_empty(),
        "client {seed}: {} bytes after the panic",
        rest.len()
    );
}

/// Sends line `round` of client `seed` and asserts its exact echo.
#[track_caller]
fn echo_line(stream: &mut TcpStream, seed: u64, round: usize) {
    // 1 to 1,024 lowercase letters, then `\n`: never `PANIC`.
    let len = 1 + (seed as usize * 31 + round * 17) % 1_024;
    let mut line: Vec<u8> = pattern(len, (seed << 20) | round as u64)
        .into_iter()
        .map(|b| b'a' + b % 26)
        .collect();
    line.push(b'\n');
    stream.write_all(&line).unwrap();
    assert!(
        read_exact_n(stream, line.len()) == line,
        "client {seed}, round {round}: echo differs"
    );
}

/// Connects a blocking client with a read timeout.
fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}
