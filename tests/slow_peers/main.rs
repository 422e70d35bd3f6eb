//! Slow peers: clients that try to pin a server's memory or sockets by going
//! slow, and what the server does about each, on both execution models.
//!
//! * **Slow readers** send without end and never read. Backpressure stops
//!   the server reading from each once its queued output passes the high
//!   watermark ([`Config::write_watermarks`]), so what the server holds stays
//!   within connections × (high watermark + one read budget) whatever the
//!   clients send; the rest waits in kernel buffers, which TCP flow control
//!   bounds, and then in the clients. Checked on the server's byte counters
//!   and on the process's resident memory.
//! * **Slowloris over HTTP**: clients trickle a request head a byte at a
//!   time, each byte well within the keep-alive (idle) timeout, so only the
//!   head timeout ([`HttpConfig::head_timeout`]) catches them: each gets
//!   `408` and a close, on time, while a well-behaved keep-alive client goes
//!   on being served.
//! * **Slowloris on raw TCP**: an echo client silent for longer than the
//!   idle timeout is closed with [`CloseReason::IdleTimeout`]; one that
//!   trickles a byte within it is not.
//!
//! The CI run uses a couple of hundred clients and sub-second timeouts; the
//! soak (`EVLOOP_SOAK=1`) thousands of clients and timeouts of seconds, a
//! byte every two seconds. Every measurement is printed with [`figure`].
//!
//! The test process is its own client. The client side is the test thread
//! alone, with non-blocking sockets and a few bytes of state per client, so
//! the memory that grows is the server's; kernel socket buffers are not
//! resident memory of the process. The clients live in [`clients`].

// Its slowloris scenarios speak HTTP, and its helpers are shared by all.
#![cfg(feature = "http")]

mod clients;
#[path = "../common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use clients::{GoodClient, Trickler, Writer, assert_single_408, loris_head, nonblocking_clients};
use common::{Echo, figure, localhost, pattern, scaled};
use evloop::baseline::DEFAULT_STACK_SIZE;
use evloop::http::{HttpConfig, HttpServer, Response};
use evloop::sys::ProcessStats;
use evloop::{CloseReason, Config, Model, Server, ServerHandle};

/// Smallest free space offered to each read.
const READ_SIZE: usize = 16 * 1024;
/// Bytes a loop reads from one connection per turn.
const READ_BUDGET: usize = 64 * 1024;
/// Reading resumes once queued output drains to this.
const LOW_WATERMARK: usize = 16 * 1024;
/// Reading pauses once queued output passes this.
const HIGH_WATERMARK: usize = 64 * 1024;
/// The most a slow reader's connection holds in user space: queued output up
/// to the high watermark, plus what one turn may read before the callback
/// that crossed it (one read on the thread model, at most the read budget on
/// the reactor). An echo handler consumes all its input, so nothing else.
const HELD_PER_CONN: u64 = (HIGH_WATERMARK + READ_BUDGET) as u64;
/// Resident memory a connection may cost beyond its buffers: its slab entry,
/// handler, registration and timer entries (a few hundred bytes), and the
/// allocator's rounding of its buffers; a generous page.
const BOOKKEEPING_PER_CONN: u64 = 4 * 1024;
/// Growth independent of the connection count: the allocator arenas that
/// the loop threads open on their first large allocations, each loop's read
/// buffer and event array, the slab's doubling, the test harness. Measured
/// at 1–3 MiB; the margin absorbs allocator noise.
const FIXED_OVERHEAD: u64 = 16 * 1024 * 1024;

on_both_models!(
    slow_readers_hold_at_most_the_high_watermark_each,
    slowloris_heads_get_408_on_time_while_others_are_served,
    clients_silent_past_the_idle_timeout_are_closed,
);

/// The name figures use for `model`.
fn name(model: Model) -> &'static str {
    match model {
        Model::Reactor => "reactor",
        Model::Threads => "threads",
    }
}

/// An echo server of `model` on two loops (the thread model ignores the
/// loop count) with `config`.
fn echo_server(model: Model, config: Config) -> ServerHandle {
    Server::new(localhost())
        .threads(2)
        .model(model)
        .config(config)
        .start(|| Echo)
        .unwrap()
}

/// Shuts `server` down and joins it.
fn stop(server: ServerHandle) {
    server.shutdown(Duration::ZERO);
    server.join().unwrap();
}

/// N clients send to an echo server and never read, until every one is
/// blocked; the server must then hold at most [`HELD_PER_CONN`] for each.
fn slow_readers_hold_at_most_the_high_watermark_each(model: Model) {
    let scenario = format!("slow readers {}", name(model));
    // Each slow reader also fills about 1 MiB of kernel socket buffers (both
    // directions, both ends); 1,000 of them stay below the kernel's TCP
    // memory pressure threshold on a typical machine, which would otherwise
    // shrink the buffers of every other process's connections too.
    let n = scaled(200, 1_000);
    let _ = evloop::sys::raise_fd_limit();
    let config = Config::default()
        .read_size(READ_SIZE)
        .read_budget(READ_BUDGET)
        .write_watermarks(LOW_WATERMARK, HIGH_WATERMARK)
        .idle_timeout(None);
    let server = echo_server(model, config);
    let before = ProcessStats::current().unwrap();
    let mut writer = Writer::new(nonblocking_clients(server.local_addr(), n), pattern(64 * 1024, 7));
    let limit = n as u64 * HELD_PER_CONN;
    let sent = writer.until_stalled(|| {
        // An echo server holds exactly what it read and has not yet written.
        let stats = server.stats();
        let held = stats.bytes_read - stats.bytes_written;
        assert!(
            held <= limit,
            "the server holds {held} bytes for {n} connections, over {HELD_PER_CONN} each"
        );
        stats.bytes_read
    });
    let plateau = ProcessStats::current().unwrap();
    let stats = server.stats();

    assert_eq!(stats.open, n as u64, "every slow reader is still connected");
    if model == Model::Reactor {
        // The thread model writes before it reads again, so its output never
        // passes one read and it never pauses: blocking is its backpressure.
        assert!(
            stats.read_pauses >= n as u64,
            "every connection passed the high watermark: {} pauses for {n} connections",
            stats.read_pauses
        );
    }
    let held = stats.bytes_read - stats.bytes_written;
    assert!(
        held <= limit,
        "the server holds {held} bytes for {n} connections at the plateau"
    );
    let growth = plateau.rss.saturating_sub(before.rss);
    let stack = if model == Model::Threads {
        DEFAULT_STACK_SIZE as u64
    } else {
        0
    };
    let bound = n as u64 * (HELD_PER_CONN + BOOKKEEPING_PER_CONN + stack) + FIXED_OVERHEAD;
    assert!(
        !common::memory_is_measurable() || growth <= bound,
        "resident memory grew by {growth} bytes for {n} slow readers, over the bound of {bound}"
    );

    figure(&scenario, "connections", n);
    figure(&scenario, "bytes sent by clients (MiB)", sent >> 20);
    figure(
        &scenario,
        "bytes held by the server per connection (KiB)",
        held / n as u64 / 1024,
    );
    figure(
        &scenario,
        "RSS growth per connection (KiB)",
        growth / n as u64 / 1024,
    );
    figure(&scenario, "RSS growth (MiB)", growth >> 20);
    figure(&scenario, "peak RSS (MiB)", plateau.peak_rss >> 20);
    figure(&scenario, "read pauses", stats.read_pauses);
    // What waits in kernel buffers instead: not resident memory, but memory.
    let kernel = (sent - stats.bytes_read) + stats.bytes_written;
    figure(
        &scenario,
        "bytes in kernel buffers per connection (KiB)",
        kernel / n as u64 / 1024,
    );

    // Closing with unread echo resets; every connection must still close.
    drop(writer);
    let stats = wait_closed(&server, n as u64);
    assert_eq!(stats.panics, 0);
    stop(server);
}

/// M clients trickle an HTTP head slower than the head timeout allows while
/// a keep-alive client runs requests; its latency is compared with a run
/// without the attack.
fn slowloris_heads_get_408_on_time_while_others_are_served(model: Model) {
    let scenario = format!("slowloris http {}", name(model));
    let m = scaled(150, 1_000);
    let head_timeout = scaled(Duration::from_millis(800), Duration::from_secs(6));
    let drip = scaled(Duration::from_millis(100), Duration::from_secs(2));
    let _ = evloop::sys::raise_fd_limit();
    let http = HttpConfig::default()
        .head_timeout(Some(head_timeout))
        .keep_alive_timeout(Some(head_timeout * 4));
    let server = HttpServer::new(localhost())
        .threads(2)
        .model(model)
        .http_config(http)
        .start(|_req| Response::text("ok"))
        .unwrap();
    let addr = server.local_addr();

    let alone = GoodClient::run_for(addr, scaled(Duration::from_millis(500), Duration::from_secs(3)));
    let good = GoodClient::start(addr);
    let lorises = trickle_until_closed(addr, m, drip, head_timeout + Duration::from_secs(10));
    let attacked = good.stop();

    let slack = drip + scaled(Duration::from_secs(1), Duration::from_secs(3));
    let mut slowest = Duration::ZERO;
    for loris in &lorises {
        let took = loris.closed_after.expect("every loris is closed");
        assert!(
            took >= head_timeout && took <= head_timeout + slack,
            "a loris was closed after {took:?}; head timeout {head_timeout:?}"
        );
        assert!(loris.sent > 2, "a loris trickled only {} bytes", loris.sent);
        assert_single_408(&loris.got);
        slowest = slowest.max(took);
    }
    assert!(attacked.latencies.len() >= 10, "the good client was starved");
    assert!(
        attacked.percentile(99) < Duration::from_millis(500),
        "p99 latency under attack: {:?}",
        attacked.percentile(99)
    );

    let stats = wait_closed(&server, m as u64 + 2);
    assert_eq!(stats.closed_by(&CloseReason::Closed), m as u64, "{stats:?}");
    assert_eq!(stats.closed_by(&CloseReason::PeerClosed), 2, "{stats:?}");
    assert_eq!(stats.panics, 0);
    stop(server);

    figure(&scenario, "lorises", m);
    figure(&scenario, "head timeout (ms)", head_timeout.as_millis());
    figure(&scenario, "slowest 408 and close (ms)", slowest.as_millis());
    alone.report(&scenario, "alone");
    attacked.report(&scenario, "under attack");
}

/// Connects `m` lorises, sends each a head byte every `drip` until it is
/// answered, and reads until all are closed or `limit` has passed.
fn trickle_until_closed(addr: SocketAddr, m: usize, drip: Duration, limit: Duration) -> Vec<Trickler> {
    let head = loris_head();
    let mut lorises: Vec<Trickler> = (0..m).map(|_| Trickler::connect(addr)).collect();
    let start = Instant::now();
    let mut next_drip = start;
    while lorises.iter().any(|l| l.closed_after.is_none()) && start.elapsed() < limit {
        if Instant::now() >= next_drip {
            for loris in lorises
                .iter_mut()
                .filter(|l| l.got.is_empty() && l.closed_after.is_none())
            {
                loris.send(head[loris.sent]);
            }
            next_drip += drip;
        }
        lorises.iter_mut().for_each(Trickler::poll);
        std::thread::sleep(Duration::from_millis(5));
    }
    lorises
}

/// Echo clients that go silent for twice the idle timeout are closed for
/// it; clients that trickle a byte every fifth of it are not.
fn clients_silent_past_the_idle_timeout_are_closed(model: Model) {
    let scenario = format!("idle timeout {}", name(model));
    let (slow_n, fast_n) = (scaled(100, 1_000), scaled(10, 50));
    let idle = scaled(Duration::from_millis(500), Duration::from_secs(3));
    let _ = evloop::sys::raise_fd_limit();
    let server = echo_server(model, Config::default().idle_timeout(Some(idle)));
    let addr = server.local_addr();
    let mut slow: Vec<Trickler> = (0..slow_n).map(|_| Trickler::connect(addr)).collect();
    let mut fast: Vec<Trickler> = (0..fast_n).map(|_| Trickler::connect(addr)).collect();

    let start = Instant::now();
    let (slow_gap, fast_gap) = (idle * 2, idle / 5);
    while start.elapsed() < idle * 3 {
        let now = start.elapsed();
        for (clients, gap) in [(&mut slow, slow_gap), (&mut fast, fast_gap)] {
            for client in clients.iter_mut().filter(|c| c.closed_after.is_none()) {
                if now >= gap * client.sent as u32 {
                    client.send(b'a' + (client.sent % 26) as u8);
                }
                client.poll();
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }

    let slack = scaled(Duration::from_millis(700), Duration::from_secs(2));
    let mut slowest = Duration::ZERO;
    for client in &slow {
        let took = client.closed_after.expect("a silent client is closed");
        assert!(
            took >= idle && took <= idle + slack,
            "closed after {took:?}, idle timeout {idle:?}"
        );
        assert_eq!((client.sent, &client.got[..]), (1, &b"a"[..]));
        slowest = slowest.max(took);
    }
    for client in &mut fast {
        assert_eq!(
            client.closed_after, None,
            "a client trickling within the idle timeout was closed"
        );
        client.await_echo();
    }
    drop((slow, fast));
    let stats = wait_closed(&server, (slow_n + fast_n) as u64);
    assert_eq!(
        stats.closed_by(&CloseReason::IdleTimeout),
        slow_n as u64,
        "{stats:?}"
    );
    assert_eq!(
        stats.closed_by(&CloseReason::PeerClosed),
        fast_n as u64,
        "{stats:?}"
    );
    stop(server);

    figure(&scenario, "silent clients closed", slow_n);
    figure(&scenario, "idle timeout (ms)", idle.as_millis());
    figure(&scenario, "slowest close (ms)", slowest.as_millis());
}

/// Waits until `total` connections were accepted and all are closed;
/// returns the stats then.
#[track_caller]
fn wait_closed(server: &ServerHandle, total: u64) -> evloop::Stats {
    common::wait_until("every connection closed", || {
        let s = server.stats();
        (s.accepted == total && s.closed_total() == total && s.open == 0).then_some(s)
    })
}
