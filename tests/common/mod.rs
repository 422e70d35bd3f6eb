//! Helpers shared by the integration tests: a server of either execution
//! model on a background thread, echo handlers, payload patterns, and the
//! fd-count check.

#![allow(dead_code)] // each test binary uses a different subset

#[cfg(feature = "http")]
pub mod http;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use evloop::baseline::{ThreadHandle, ThreadServer};
use evloop::{Config, Conn, EventLoop, Handler, LoopHandle, Stats};

/// Serialises the tests of one binary: they count the process's open fds,
/// which any test running beside them would disturb.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `test` [`serial`]ly, then checks that the process's fd count is back
/// where it started: every socket the test and its server opened has been
/// closed.
#[track_caller]
pub fn isolated(test: impl FnOnce()) {
    let _serial = serial();
    let fds = open_fds();
    test();
    assert_fds_return_to(fds);
}

/// 127.0.0.1 on a free port.
pub fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Echoes everything, zero-copy.
pub struct Echo;

impl Handler for Echo {
    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        conn.write_bytes(input.split().freeze());
    }
}

/// Which execution model drives the handlers: the library's own switch.
pub use evloop::Model;

/// Runs each named scenario, a `fn(Model)` in the invoking module, once per
/// execution model: as the tests `reactor::<scenario>` and
/// `threads::<scenario>`, each [`isolated`] (alone, and checked to close
/// every fd it opened).
///
/// `on_both_models!(unisolated: ...)` runs them as they are, for scenarios
/// that isolate each of their cases themselves, or that run beside the other
/// tests of their binary.
///
/// ```ignore
/// on_both_models!(a_scenario, another_scenario);
///
/// fn a_scenario(model: Model) { /* ... */ }
/// ```
#[macro_export]
macro_rules! on_both_models {
    (unisolated: $($scenario:ident),+ $(,)?) => {
        $crate::on_both_models!(@models unisolated; $($scenario),+);
    };
    ($($scenario:ident),+ $(,)?) => {
        $crate::on_both_models!(@models isolated; $($scenario),+);
    };
    (@models $how:ident; $($scenario:ident),+) => {
        /// The scenarios on the event loop.
        mod reactor {
            $(#[test]
            fn $scenario() {
                $crate::on_both_models!(@run $how, super::$scenario($crate::common::Model::Reactor));
            })+
        }
        /// The scenarios on the thread-per-connection baseline.
        mod threads {
            $(#[test]
            fn $scenario() {
                $crate::on_both_models!(@run $how, super::$scenario($crate::common::Model::Threads));
            })+
        }
    };
    (@run isolated, $run:expr) => {
        $crate::common::isolated(|| $run)
    };
    (@run unisolated, $run:expr) => {
        $run
    };
}

/// A server of either model serving 127.0.0.1 on a free port. Dropping it
/// shuts it down with no grace period and waits until it has stopped.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The server itself; `None` once stopped.
    running: Option<Running>,
}

/// A running server of one model.
enum Running {
    /// An event loop on its own thread.
    Reactor {
        handle: LoopHandle,
        thread: JoinHandle<io::Result<()>>,
    },
    /// A thread-per-connection server, its acceptor on its own thread.
    Threads(ThreadHandle),
}

impl TestServer {
    /// Starts a server of `model` with `config` and handlers from `factory`.
    pub fn start<F, H>(model: Model, config: Config, factory: F) -> TestServer
    where
        F: Fn() -> H + Send + Sync + 'static,
        H: Handler + Send,
    {
        match model {
            Model::Reactor => {
                let event_loop = EventLoop::bind(localhost(), config, factory).unwrap();
                let handle = event_loop.handle();
                let thread = std::thread::spawn(move || event_loop.run());
                TestServer {
                    addr: handle.local_addr(),
                    running: Some(Running::Reactor { handle, thread }),
                }
            }
            Model::Threads => TestServer::threads(ThreadServer::bind(localhost(), config, factory).unwrap()),
        }
    }

    /// Starts a server of `model` that serves TLS with `tls`.
    #[cfg(feature = "tls")]
    pub fn start_tls<F, H>(
        model: Model,
        config: Config,
        tls: evloop::tls::TlsAcceptor,
        factory: F,
    ) -> TestServer
    where
        F: Fn() -> H + Send + Sync + 'static,
        H: Handler + Send,
    {
        match model {
            Model::Reactor => {
                let event_loop = EventLoop::bind(localhost(), config, factory).unwrap().tls(tls);
                let handle = event_loop.handle();
                let thread = std::thread::spawn(move || event_loop.run());
                TestServer {
                    addr: handle.local_addr(),
                    running: Some(Running::Reactor { handle, thread }),
                }
            }
            Model::Threads => {
                TestServer::threads(ThreadServer::bind(localhost(), config, factory).unwrap().tls(tls))
            }
        }
    }

    /// Starts a thread-per-connection server configured by the caller.
    pub fn threads<F, H>(server: ThreadServer<F>) -> TestServer
    where
        F: Fn() -> H + Send + Sync + 'static,
        H: Handler,
    {
        let handle = server.start().unwrap();
        TestServer {
            addr: handle.local_addr(),
            running: Some(Running::Threads(handle)),
        }
    }

    /// An echo server of `model` with the default config.
    pub fn echo(model: Model) -> TestServer {
        TestServer::start(model, Config::default(), || Echo)
    }

    /// The server's counters.
    pub fn stats(&self) -> Stats {
        match self.running.as_ref().expect("server running") {
            Running::Reactor { handle, .. } => handle.stats(),
            Running::Threads(handle) => handle.stats(),
        }
    }

    /// The thread server's handle (panics for the reactor).
    pub fn thread_handle(&self) -> &ThreadHandle {
        match self.running.as_ref() {
            Some(Running::Threads(handle)) => handle,
            _ => panic!("not a running thread server"),
        }
    }

    /// Connects a blocking client with a generous read timeout.
    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        stream.set_nodelay(true).unwrap();
        stream
    }

    /// Waits until the counters satisfy `cond`; panics after five seconds.
    #[track_caller]
    pub fn wait_for_stats(&self, what: &str, cond: impl Fn(&Stats) -> bool) -> Stats {
        wait_until(what, || Some(self.stats()).filter(|s| cond(s)))
    }

    /// Asks the server to shut down with `grace`, without waiting.
    pub fn begin_shutdown(&self, grace: Duration) {
        self.running.as_ref().expect("server running").shutdown(grace);
    }

    /// Shuts down with `grace`, waits until the server has stopped, and
    /// asserts that an event loop ended cleanly.
    pub fn stop(mut self, grace: Duration) {
        let running = self.running.take().expect("server running");
        running.shutdown(grace);
        running.wait().unwrap().unwrap();
    }
}

impl Running {
    /// Asks the server to shut down with `grace`.
    fn shutdown(&self, grace: Duration) {
        match self {
            Running::Reactor { handle, .. } => handle.shutdown(grace),
            Running::Threads(handle) => handle.shutdown(grace),
        }
    }

    /// Waits until the server has stopped; returns how an event loop ended.
    fn wait(self) -> std::thread::Result<io::Result<()>> {
        match self {
            Running::Reactor { thread, .. } => thread.join(),
            Running::Threads(handle) => {
                handle.wait();
                Ok(Ok(()))
            }
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown(Duration::ZERO);
            let _ = running.wait();
        }
    }
}

/// Polls `probe` until it returns `Some`, for at most five seconds.
#[track_caller]
pub fn wait_until<T>(what: &str, probe: impl FnMut() -> Option<T>) -> T {
    wait_until_within(Duration::from_secs(5), what, probe)
}

/// Polls `probe` every 5 ms until it returns `Some`; panics, naming `what`,
/// once `limit` has passed without.
///
/// For a condition that a fixed sleep would only hope to see met: the wait
/// ends as soon as it holds, and a slow machine gets the whole `limit`.
#[track_caller]
pub fn wait_until_within<T>(limit: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A drain's grace period in the drain tests: long enough that none of
/// them relies on it ending.
pub const DRAIN_GRACE: Duration = Duration::from_secs(30);

/// Joins a drained server, asserting it ended well before
/// [`DRAIN_GRACE`]: its connections closed on their own.
#[track_caller]
pub fn assert_ends_before_the_grace(server: &evloop::ServerHandle, since: Instant) {
    server.join().unwrap();
    assert!(
        since.elapsed() < DRAIN_GRACE / 2,
        "the drained server took {:?} to end",
        since.elapsed()
    );
}

/// A finished process's status, stdout and stderr, for assertion messages.
pub fn output_text(output: &std::process::Output) -> String {
    format!(
        "status {}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The example `name` as `cargo test` builds it, into
/// `target/<profile>/examples/`; `None`, with `SKIPPED` on stderr, when it
/// is not there (`cargo test --test NAME` on a fresh checkout: run `cargo
/// build --examples`).
pub fn example(name: &str) -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/deps/TEST-HASH -> target/<profile>/examples/NAME
    let path = exe.parent()?.parent()?.join("examples").join(name);
    if !path.is_file() {
        eprintln!(
            "SKIPPED: {} is not built; run `cargo build --examples`",
            path.display()
        );
        return None;
    }
    Some(path)
}

/// The process's open fd count now.
pub fn open_fds() -> usize {
    evloop::sys::open_fds().expect("fd counting needs Linux /proc")
}

/// Sets this process's soft limit on open fds to `limit` (never above the
/// hard limit); returns the soft limit it had.
pub fn set_fd_limit(limit: usize) -> usize {
    let mut rlim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rlim` is a valid, writable rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rlim) }, 0);
    let before = rlim.rlim_cur as usize;
    rlim.rlim_cur = (limit as libc::rlim_t).min(rlim.rlim_max);
    // SAFETY: `rlim` is a valid rlimit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rlim) }, 0);
    before
}

/// Asserts that the process's open fd count comes back to `start`.
///
/// Fewer than `start` after the wait is not a leak of the test's own: an fd
/// that was open when it began (a socket of an earlier test in its last
/// moments) has closed since. That is reported, not failed.
#[track_caller]
pub fn assert_fds_return_to(start: usize) {
    let start_time = Instant::now();
    loop {
        let now = open_fds();
        if now == start {
            return;
        }
        if start_time.elapsed() >= Duration::from_secs(5) {
            assert!(now < start, "open fds: {now}, expected {start}");
            eprintln!("open fds: {now}, fewer than the {start} at the start: one open then has closed since");
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `len` bytes of a pattern that differs per `seed` and does not repeat
/// at any small period, so reordered or lost bytes are caught. Eight bytes a
/// step (xorshift64), which keeps tens of megabytes cheap in debug builds.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut bytes = Vec::with_capacity(len + 8);
    while bytes.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        bytes.extend_from_slice(&x.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// Sends `payload` from one thread while reading its echo on this one;
/// returns what came back (exactly `payload.len()` bytes unless the server
/// closed early).
pub fn echo_through(stream: &TcpStream, payload: &[u8]) -> Vec<u8> {
    let mut writer = stream.try_clone().unwrap();
    let to_send = payload.to_vec();
    let sender = std::thread::spawn(move || writer.write_all(&to_send));
    let mut got = vec![0; payload.len()];
    let mut reader = stream;
    let mut filled = 0;
    while filled < got.len() {
        match reader.read(&mut got[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) => panic!("reading the echo failed after {filled} bytes: {e}"),
        }
    }
    got.truncate(filled);
    sender.join().unwrap().unwrap();
    got
}

/// Sends `msg` and expects it echoed.
#[track_caller]
pub fn assert_echoes(stream: &mut TcpStream, msg: &[u8]) {
    stream.write_all(msg).unwrap();
    assert_eq!(read_exact_n(stream, msg.len()), msg);
}

/// Reads until end of stream (or reset); returns the bytes and whether the
/// end was clean.
pub fn read_to_end(stream: &mut TcpStream) -> (Vec<u8>, bool) {
    let mut got = Vec::new();
    let clean = stream.read_to_end(&mut got).is_ok();
    (got, clean)
}

/// Shuts the write half and asserts the server then closes cleanly with
/// nothing more to say.
#[track_caller]
pub fn finish_and_expect_eof(mut stream: TcpStream) {
    stream.shutdown(Shutdown::Write).unwrap();
    let (rest, clean) = read_to_end(&mut stream);
    assert!(clean, "connection was reset instead of closed");
    assert!(rest.is_empty(), "unexpected {} trailing bytes", rest.len());
}

/// Reads exactly `n` bytes.
#[track_caller]
pub fn read_exact_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    stream.read_exact(&mut buf).unwrap();
    buf
}

/// Whether this run is the long soak (`scripts/soak.sh` sets
/// `EVLOOP_SOAK=1`) rather than the bounded CI run.
pub fn soak() -> bool {
    std::env::var_os("EVLOOP_SOAK").is_some_and(|v| v != "0")
}

/// Whether resident memory says anything about the code: not under a
/// sanitizer (`scripts/sanitize.sh` sets `EVLOOP_SANITIZER`), whose
/// quarantine and shadow memory dwarf what the code allocates. Tests that
/// bound memory skip only that assertion then.
pub fn memory_is_measurable() -> bool {
    std::env::var_os("EVLOOP_SANITIZER").is_none()
}

/// `ci` in the bounded run, `soak` in the long one: how scenarios scale.
pub fn scaled<T>(ci: T, soak: T) -> T {
    if self::soak() { soak } else { ci }
}

/// Prints one measured figure of a scenario as a `FIGURE` line, which
/// `scripts/soak.sh` collects into its summary (`--nocapture` shows them).
pub fn figure(scenario: &str, what: &str, value: impl std::fmt::Display) {
    eprintln!("FIGURE {scenario} | {what} | {value}");
}

/// Asserts that a server whose client stopped reading (after `sent` of
/// `len` bytes) has stopped reading too: nothing more is read over 300 ms,
/// the reactor counted a read pause, and the bytes it holds (read, not yet
/// written) stay under the high watermark `high` plus one turn's read
/// `budget`. Returns the stats at the end.
#[track_caller]
pub fn assert_reading_stopped_within(
    server: &TestServer,
    model: Model,
    sent: usize,
    len: usize,
    high: usize,
    budget: usize,
) -> Stats {
    assert!(
        sent < len,
        "the server kept reading from a client that never reads"
    );
    let before = server.stats();
    std::thread::sleep(Duration::from_millis(300));
    let after = server.stats();
    assert_eq!(before.bytes_read, after.bytes_read, "server still reading");
    if model == Model::Reactor {
        assert!(after.read_pauses >= 1, "no read pause counted");
    }
    let held = after.bytes_read - after.bytes_written;
    assert!(held as usize <= high + budget, "server holds {held} bytes");
    after
}
