//! Churn: a multi-loop server serves a long run of short connections —
//! connect, send a line, read its echo, close — from a few client threads,
//! and comes back to where it started: the same open fds, the same memory,
//! every connection accepted also closed, every loop in use.
//!
//! The CI run makes a few thousand cycles per balancing mode; the soak
//! (`EVLOOP_SOAK=1`) makes 100,000.
//!
//! # Who closes first
//!
//! The side that closes first keeps the connection in `TIME_WAIT` for a
//! minute. Were it the client, 100,000 cycles would hold more 4-tuples than
//! loopback has ephemeral ports (about 28,000 by default), and `connect`
//! would fail with `EADDRNOTAVAIL` unless the kernel happens to reuse
//! `TIME_WAIT` ports (`tcp_tw_reuse`, not set everywhere). So the server
//! closes first: its handler echoes the line and calls [`Conn::close`], the
//! client reads the echo, then end of stream, then closes. `TIME_WAIT` then
//! sits on the server's side, where it ties up no port and no fd of ours,
//! and every cycle must end with [`CloseReason::Closed`] — a stricter check
//! than a client close, which the server would also count for a reset.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::{assert_fds_return_to, figure, localhost, pattern, read_exact_n, scaled, serial, wait_until};
use evloop::sys::ProcessStats;
use evloop::{Balance, CloseReason, Conn, Handler, Server, ServerHandle, Stats};

/// Client threads making cycles side by side: a few, as on a 2-core machine.
const CLIENTS: usize = 4;
/// Cycles made before measuring, so that the allocator's pools, the loops'
/// slabs and the client threads' stacks exist at the starting point.
const WARM_UP: usize = 1_000;
/// How much resident memory may grow over the measured cycles. The churn
/// holds at most [`CLIENTS`] connections at a time, so a server that
/// releases what each one used ends where it started, give or take the
/// allocator's slack (under 200 KiB measured). A leak of 300 bytes per
/// connection adds 3 MiB over the CI run's 10,000 cycles (tried: it fails),
/// 30 MiB over the soak's; a leaked 16 KiB read buffer, far more.
const RSS_SLACK: u64 = 2 * 1024 * 1024;
/// Read timeout of every client socket, so that no step can hang.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Measured cycles per balancing mode.
fn cycles() -> usize {
    scaled(10_000, 100_000)
}

/// Echoes the first complete line, then closes: one cycle, server closing
/// first (see the module docs).
struct EchoLineThenClose;

impl Handler for EchoLineThenClose {
    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        if let Some(end) = input.iter().position(|&b| b == b'\n') {
            conn.write_bytes(input.split_to(end + 1).freeze());
            conn.close();
        }
    }
}

#[test]
fn churn_on_reuse_port_returns_fds_and_memory() {
    churn("churn reuse-port", Balance::ReusePort);
}

#[test]
fn churn_on_round_robin_returns_fds_and_memory() {
    churn("churn round-robin", Balance::RoundRobin);
}

/// The scenario: warm up, measure, run [`cycles`], measure again.
fn churn(scenario: &str, balance: Balance) {
    let _serial = serial();
    let fds_before_server = common::open_fds();
    let server = Server::new(localhost())
        .threads(2)
        .balance(balance)
        .start(|| EchoLineThenClose)
        .unwrap();
    let addr = server.local_addr();

    run_cycles(addr, 0, WARM_UP);
    wait_all_closed(&server, WARM_UP);
    let start = ProcessStats::current().unwrap();
    let peak = RssPeak::watch();

    let cycles = cycles();
    let began = Instant::now();
    run_cycles(addr, WARM_UP, cycles);
    let took = began.elapsed();
    let stats = wait_all_closed(&server, WARM_UP + cycles);
    let peak_rss = peak.stop(); // first: its samples open fds
    assert_fds_return_to(start.open_fds);
    let end = ProcessStats::current().unwrap();

    figure(scenario, "cycles", cycles);
    figure(
        scenario,
        "cycles/s",
        format!("{:.0}", cycles as f64 / took.as_secs_f64()),
    );
    figure(
        scenario,
        "fds before / after",
        format!("{} / {}", start.open_fds, end.open_fds),
    );
    figure(
        scenario,
        "RSS before / after / peak (KiB)",
        format!("{} / {} / {}", start.rss / 1024, end.rss / 1024, peak_rss / 1024),
    );
    assert_every_cycle_closed_cleanly(&stats, WARM_UP + cycles);
    assert_every_loop_took_part(&server);
    assert!(
        !common::memory_is_measurable() || end.rss <= start.rss + RSS_SLACK,
        "resident memory grew by {} KiB over {cycles} cycles",
        (end.rss - start.rss) / 1024
    );

    server.shutdown(Duration::from_secs(1));
    server.join().unwrap();
    drop(server); // the handle holds the loops' wakers
    assert_fds_return_to(fds_before_server);
}

/// Makes cycles `first..first + count` from [`CLIENTS`] threads, each taking
/// every `CLIENTS`-th cycle, and waits for them.
fn run_cycles(addr: SocketAddr, first: usize, count: usize) {
    let threads: Vec<JoinHandle<()>> = (0..CLIENTS)
        .map(|client| {
            std::thread::spawn(move || {
                for n in (first + client..first + count).step_by(CLIENTS) {
                    cycle(addr, n as u64);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a client thread failed");
    }
}

/// One cycle: connect, send line `n`, read exactly its echo, then the
/// server's end of stream, and close.
fn cycle(addr: SocketAddr, n: u64) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("cycle {n}: connect failed: {e}"));
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let line = line(n);
    stream.write_all(&line).unwrap();
    assert_eq!(
        read_exact_n(&mut stream, line.len()),
        line,
        "cycle {n}: echo differs"
    );
    let mut after = [0; 1];
    let end = stream.read(&mut after);
    assert!(
        matches!(end, Ok(0)),
        "cycle {n}: expected end of stream, got {end:?}"
    );
}

/// Line `n`: 16 to 527 printable bytes that differ per cycle, then `\n`.
fn line(n: u64) -> Vec<u8> {
    let mut line: Vec<u8> = pattern(16 + (n as usize * 7) % 512, n)
        .into_iter()
        .map(|b| b'!' + b % 94)
        .collect();
    line.push(b'\n');
    line
}

/// Waits until `cycles` connections have been accepted and all are closed.
#[track_caller]
fn wait_all_closed(server: &ServerHandle, cycles: usize) -> Stats {
    wait_until("every cycle closed", || {
        Some(server.stats()).filter(|s| s.accepted == cycles as u64 && s.open == 0)
    })
}

/// Every connection accepted was closed by the handler after its echo: none
/// reset, timed out, or lost to an error.
#[track_caller]
fn assert_every_cycle_closed_cleanly(stats: &Stats, cycles: usize) {
    assert_eq!(stats.accepted, stats.closed_total(), "{stats:?}");
    assert_eq!(stats.closed_by(&CloseReason::Closed), cycles as u64, "{stats:?}");
    assert_eq!(stats.panics, 0);
}

/// Each loop accepted connections, and closed every one it accepted.
#[track_caller]
fn assert_every_loop_took_part(server: &ServerHandle) {
    let loops = server.loop_stats();
    assert_eq!(loops.len(), 2);
    for (index, stats) in loops.iter().enumerate() {
        assert!(stats.accepted > 0, "loop {index} accepted nothing: {loops:?}");
        assert_eq!(stats.accepted, stats.closed_total(), "loop {index}: {stats:?}");
        assert_eq!(stats.open, 0, "loop {index}: {stats:?}");
    }
}

/// The highest resident memory seen while it watches, sampled every 10 ms
/// on a thread of its own.
struct RssPeak {
    /// Set to end the watch.
    stop: Arc<AtomicBool>,
    /// The highest sample so far, in bytes.
    peak: Arc<AtomicU64>,
    /// The sampling thread.
    thread: JoinHandle<()>,
}

impl RssPeak {
    /// Starts sampling.
    fn watch() -> RssPeak {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(ProcessStats::current().unwrap().rss, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(10));
                }
            })
        };
        RssPeak { stop, peak, thread }
    }

    /// Ends the watch; returns the peak in bytes.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        self.peak.load(Ordering::Relaxed)
    }
}
