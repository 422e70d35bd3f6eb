//! The clients of the slow-peer scenarios, all cheap in the test process:
//! slow readers and tricklers driven by the test thread on non-blocking
//! sockets, and one well-behaved HTTP client on its own thread.

use std::io::{self, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use socket2::{Domain, Socket, Type};

use crate::common::http::{Reply, read_reply};
use crate::common::{figure, wait_until};

/// Kernel send and receive buffer size of each slow reader's socket.
const CLIENT_BUFFER: usize = 64 * 1024;
/// The segment size slow readers announce: Ethernet's.
const CLIENT_MSS: u32 = 1460;

/// Clients that write and never read, all driven by the calling thread.
pub(crate) struct Writer {
    /// The clients' non-blocking sockets.
    streams: Vec<TcpStream>,
    /// What each write sends.
    chunk: Vec<u8>,
}

impl Writer {
    /// Writers over `streams`, sending `chunk` again and again.
    pub(crate) fn new(streams: Vec<TcpStream>, chunk: Vec<u8>) -> Self {
        Writer { streams, chunk }
    }

    /// Writes to every client until for half a second none has taken a byte
    /// and the server has read nothing more (`server_read` returns the bytes
    /// it read, and may check its state on the way): every client blocked
    /// because the server stopped reading it. Returns the bytes sent. Panics
    /// if that does not happen within a minute.
    #[track_caller]
    pub(crate) fn until_stalled(&mut self, server_read: impl Fn() -> u64) -> u64 {
        const STALL: Duration = Duration::from_millis(500);
        let start = Instant::now();
        let (mut sent, mut read) = (0, server_read());
        let mut quiet_since = Instant::now();
        while quiet_since.elapsed() < STALL {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the clients could still send after a minute ({sent} bytes): the server never stopped reading"
            );
            let round = self.round();
            let now_read = server_read();
            if round > 0 || now_read != read {
                quiet_since = Instant::now();
            } else {
                std::thread::sleep(Duration::from_millis(5));
            }
            (sent, read) = (sent + round, now_read);
        }
        sent
    }

    /// Writes to each client until its socket is full, at most 16 writes
    /// each so that one round ends even if the server keeps up; returns the
    /// bytes written.
    fn round(&mut self) -> u64 {
        let mut total = 0;
        for stream in &mut self.streams {
            for _ in 0..16 {
                match stream.write(&self.chunk) {
                    Ok(n) => total += n as u64,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => panic!("a slow reader's write failed: {e}"),
                }
            }
        }
        total
    }
}

/// `n` clients of `addr` with non-blocking sockets, small kernel buffers
/// and an Ethernet-sized MSS. The server's side is under test: loopback's
/// 64 KiB segments would let the kernel autotune the server's send buffer to
/// `tcp_wmem`'s maximum (4 MiB) per connection, gigabytes of kernel memory in
/// the soak, while peers on a real network announce about 1,460 bytes.
pub(crate) fn nonblocking_clients(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
            socket.set_tcp_mss(CLIENT_MSS).unwrap();
            socket.set_send_buffer_size(CLIENT_BUFFER).unwrap();
            socket.set_recv_buffer_size(CLIENT_BUFFER).unwrap();
            socket.connect(&addr.into()).unwrap();
            socket.set_nonblocking(true).unwrap();
            socket.into()
        })
        .collect()
}

/// A client that sends a byte now and then, on a non-blocking socket, and
/// records what it receives and when the server closed.
pub(crate) struct Trickler {
    /// The socket.
    stream: TcpStream,
    /// Bytes sent so far.
    pub(crate) sent: usize,
    /// Bytes received so far.
    pub(crate) got: Vec<u8>,
    /// When the first byte went out.
    started: Option<Instant>,
    /// Time from the first byte to the server's end of stream, once seen.
    pub(crate) closed_after: Option<Duration>,
}

impl Trickler {
    /// Connects to `addr`.
    pub(crate) fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        stream.set_nonblocking(true).unwrap();
        Trickler {
            stream,
            sent: 0,
            got: Vec::new(),
            started: None,
            closed_after: None,
        }
    }

    /// Sends one byte (a socket with room for megabytes takes it at once).
    pub(crate) fn send(&mut self, byte: u8) {
        self.started.get_or_insert_with(Instant::now);
        self.stream.write_all(&[byte]).expect("a one-byte write");
        self.sent += 1;
    }

    /// Reads what has arrived; notes the end of stream. A reset fails the
    /// test: the server must close cleanly.
    pub(crate) fn poll(&mut self) {
        let mut buf = [0; 4096];
        while self.closed_after.is_none() {
            match self.stream.read(&mut buf) {
                Ok(0) => self.closed_after = self.started.map(|s| s.elapsed()),
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => panic!("a trickling client saw {e} instead of a clean close"),
            }
        }
    }

    /// Waits until every byte sent has been echoed, and checks them.
    #[track_caller]
    pub(crate) fn await_echo(&mut self) {
        wait_until("the trickled bytes echoed", || {
            self.poll();
            (self.got.len() >= self.sent).then_some(())
        });
        let expected: Vec<u8> = (0..self.sent).map(|i| b'a' + (i % 26) as u8).collect();
        assert_eq!(self.got, expected);
    }
}

/// The head a loris trickles: far longer than it can send in time, so it is
/// never complete.
pub(crate) fn loris_head() -> Vec<u8> {
    let mut head = b"GET /loris HTTP/1.1\r\nHost: slow\r\nX-Padding: ".to_vec();
    head.resize(4096, b'a');
    head
}

/// Asserts that `got` is exactly one `408` response announcing the close.
#[track_caller]
pub(crate) fn assert_single_408(got: &[u8]) {
    let mut reader = got;
    let Reply { status, headers, .. } = read_reply(&mut reader, false);
    assert_eq!(status, "HTTP/1.1 408 Request Timeout");
    assert!(
        headers.contains(&("connection".into(), "close".into())),
        "{headers:?}"
    );
    assert!(reader.is_empty(), "{} bytes after the 408", reader.len());
}

/// A well-behaved keep-alive client running requests on its own thread.
pub(crate) struct GoodClient {
    /// Tells the thread to stop after its current request.
    stop: Arc<AtomicBool>,
    /// The thread; returns its latencies.
    thread: JoinHandle<Latencies>,
}

impl GoodClient {
    /// Starts requesting from `addr`, one request at a time.
    pub(crate) fn start(addr: SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || requests(addr, &flag));
        GoodClient { stop, thread }
    }

    /// Runs for `time`.
    pub(crate) fn run_for(addr: SocketAddr, time: Duration) -> Latencies {
        let client = GoodClient::start(addr);
        std::thread::sleep(time);
        client.stop()
    }

    /// Stops; its latencies. Panics if a request went unanswered.
    pub(crate) fn stop(self) -> Latencies {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .expect("every request of the good client answered")
    }
}

/// Requests `/good` on one keep-alive connection until `stop`; checks
/// every answer.
fn requests(addr: SocketAddr, stop: &AtomicBool) -> Latencies {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let start = Instant::now();
    let mut latencies = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let sent = Instant::now();
        writer
            .write_all(b"GET /good HTTP/1.1\r\nHost: good\r\n\r\n")
            .unwrap();
        let reply = read_reply(&mut reader, false);
        assert_eq!(
            (reply.status.as_str(), reply.body.as_str()),
            ("HTTP/1.1 200 OK", "ok")
        );
        latencies.push(sent.elapsed());
    }
    Latencies {
        latencies,
        elapsed: start.elapsed(),
    }
}

/// Latencies of one client's requests.
pub(crate) struct Latencies {
    /// Each request's, in order.
    pub(crate) latencies: Vec<Duration>,
    /// How long the client ran.
    elapsed: Duration,
}

impl Latencies {
    /// The `p`th percentile latency.
    pub(crate) fn percentile(&self, p: usize) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
    }

    /// Prints throughput and latencies as figures, labelled `label`.
    pub(crate) fn report(&self, scenario: &str, label: &str) {
        let rate = self.latencies.len() as f64 / self.elapsed.as_secs_f64();
        figure(
            scenario,
            &format!("good client {label}: requests/s"),
            format!("{rate:.0}"),
        );
        figure(
            scenario,
            &format!("good client {label}: p50 (µs)"),
            self.percentile(50).as_micros(),
        );
        figure(
            scenario,
            &format!("good client {label}: p99 (µs)"),
            self.percentile(99).as_micros(),
        );
    }
}
