//! Helpers shared by the integration tests: a server on a background thread,
//! echo handlers, payload patterns, and the fd-count check.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use evloop::{Config, Conn, EventLoop, Handler, LoopHandle, Stats};

/// Serialises the tests of one binary: they count the process's open fds,
/// which any test running beside them would disturb.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Echoes everything, zero-copy.
pub struct Echo;

impl Handler for Echo {
    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        conn.write_bytes(input.split().freeze());
    }
}

/// An event loop serving 127.0.0.1 on a free port from a background thread.
/// Dropping it shuts the loop down and joins the thread.
pub struct TestServer {
    pub addr: SocketAddr,
    pub handle: LoopHandle,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl TestServer {
    /// Starts a loop with `config` and handlers from `factory`.
    pub fn start<F, H>(config: Config, factory: F) -> TestServer
    where
        F: FnMut() -> H + Send + 'static,
        H: Handler + Send,
    {
        let event_loop = EventLoop::bind("127.0.0.1:0".parse().unwrap(), config, factory).unwrap();
        let handle = event_loop.handle();
        let thread = std::thread::spawn(move || event_loop.run());
        TestServer {
            addr: handle.local_addr(),
            handle,
            thread: Some(thread),
        }
    }

    /// An echo server with the default config.
    pub fn echo() -> TestServer {
        TestServer::start(Config::default(), || Echo)
    }

    /// The loop's counters.
    pub fn stats(&self) -> Stats {
        self.handle.stats()
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

    /// Shuts down with `grace` and joins the loop thread.
    pub fn stop(mut self, grace: Duration) {
        self.handle.shutdown(grace);
        self.thread.take().unwrap().join().unwrap().unwrap();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.handle.shutdown(Duration::ZERO);
            let _ = thread.join();
        }
    }
}

/// Polls `probe` until it returns `Some`, for at most five seconds.
#[track_caller]
pub fn wait_until<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The process's open fd count now.
pub fn open_fds() -> usize {
    evloop::sys::open_fds().expect("fd counting needs Linux /proc")
}

/// Asserts that the process's open fd count comes back to `start`.
#[track_caller]
pub fn assert_fds_return_to(start: usize) {
    let start_time = Instant::now();
    loop {
        let now = open_fds();
        if now == start {
            return;
        }
        assert!(
            start_time.elapsed() < Duration::from_secs(5),
            "open fds: {now}, expected {start}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `len` bytes of a pattern that differs per `seed` and does not repeat
/// at any small period, so reordered or lost bytes are caught.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
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
