//! Shared by the benches: the servers to compare, a many-connection client,
//! and OS-based criterion measurements ([`measure`]).

#![allow(dead_code)] // each bench uses a different subset

pub mod measure;

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::BytesMut;
use evloop::baseline::{ThreadHandle, ThreadServer};
use evloop::{Config, Conn, EventLoop, Handler, LoopHandle};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

/// Zero-copy echo: the one handler every model runs.
pub struct Echo;

impl Handler for Echo {
    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        conn.write_bytes(input.split().freeze());
    }
}

/// The configuration every model runs with: defaults, minus the idle
/// timeout, which a long benchmark could otherwise meet.
pub fn config() -> Config {
    Config::default().idle_timeout(None)
}

/// How to stop a running server and wait for it.
enum Stop {
    /// The reactor: its handle and its thread.
    Reactor(LoopHandle, Option<JoinHandle<std::io::Result<()>>>),
    /// The thread-per-connection baseline.
    Threads(ThreadHandle),
}

/// A server serving the echo handler on 127.0.0.1 (port 0), in this
/// process; shut down and waited for when dropped.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// How to stop it.
    stop: Stop,
}

impl Drop for Running {
    fn drop(&mut self) {
        let grace = Duration::from_secs(1);
        match &mut self.stop {
            Stop::Reactor(handle, thread) => {
                handle.shutdown(grace);
                if let Some(thread) = thread.take() {
                    thread
                        .join()
                        .expect("event loop panicked")
                        .expect("event loop failed");
                }
            }
            Stop::Threads(handle) => {
                handle.shutdown(grace);
                handle.wait();
            }
        }
    }
}

/// Starts a server of one model.
pub type Start = fn() -> Running;

/// The execution models compared, by name. Another model is one more entry
/// and its `Start` function.
pub const MODELS: &[(&str, Start)] = &[("reactor", start_reactor), ("threads", start_threads)];

/// One event loop on a thread of its own.
pub fn start_reactor() -> Running {
    let event_loop = EventLoop::bind(localhost(), config(), || Echo).expect("bind the reactor");
    let handle = event_loop.handle();
    let thread = std::thread::spawn(move || event_loop.run());
    Running {
        addr: handle.local_addr(),
        stop: Stop::Reactor(handle, Some(thread)),
    }
}

/// The baseline: one blocking thread per connection.
pub fn start_threads() -> Running {
    let server = ThreadServer::bind(localhost(), config(), || Echo).expect("bind the baseline");
    let addr = server.local_addr();
    let handle = server.start().expect("start the baseline");
    Running {
        addr,
        stop: Stop::Threads(handle),
    }
}

/// 127.0.0.1 on a port the OS picks.
fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Whether this process may open `conns` connections to itself (two fds
/// each) after raising its fd limit as far as it goes.
pub fn fds_allow(conns: usize) -> bool {
    let limit = evloop::sys::raise_fd_limit().unwrap_or(1024);
    (2 * conns as u64).saturating_add(128) <= limit
}

/// Many client connections driven from the calling thread by one `mio::Poll`.
///
/// Each [`round`](Clients::round) writes `depth` messages on every
/// connection at once (one `write` each: the pipelined case when `depth > 1`)
/// and returns when every echoed byte is back.
pub struct Clients {
    /// The poller, READABLE on every connection.
    poll: Poll,
    /// Its event buffer.
    events: Events,
    /// The connections; the index is the token.
    streams: Vec<TcpStream>,
    /// What each connection writes per round.
    burst: Vec<u8>,
    /// Bytes each connection still expects in the current round.
    pending: Vec<usize>,
    /// Read buffer.
    buf: Vec<u8>,
}

impl Clients {
    /// Opens `conns` connections to `addr`, each to send `depth` messages of
    /// `size` bytes per round.
    pub fn connect(addr: SocketAddr, conns: usize, size: usize, depth: usize) -> Clients {
        let poll = Poll::new().expect("poll");
        let streams = (0..conns)
            .map(|i| {
                let stream = std::net::TcpStream::connect(addr).expect("connect");
                stream.set_nodelay(true).expect("TCP_NODELAY");
                stream.set_nonblocking(true).expect("nonblocking");
                let mut stream = TcpStream::from_std(stream);
                poll.registry()
                    .register(&mut stream, Token(i), Interest::READABLE)
                    .expect("register");
                stream
            })
            .collect();
        Clients {
            poll,
            events: Events::with_capacity(1024),
            streams,
            burst: vec![0x5a; size * depth],
            pending: vec![0; conns],
            buf: vec![0; 64 * 1024],
        }
    }

    /// Sends a burst on every connection and waits for all the echoes.
    ///
    /// # Panics
    ///
    /// If a burst does not fit the socket's send buffer at once, a
    /// connection closes, or the echoes take over 10 s.
    pub fn round(&mut self) {
        for (stream, pending) in self.streams.iter_mut().zip(&mut self.pending) {
            let n = stream.write(&self.burst).expect("write");
            assert_eq!(
                n,
                self.burst.len(),
                "burst larger than the socket buffer: lower depth or size"
            );
            *pending = n;
        }
        let mut left = self.streams.len();
        while left > 0 {
            self.poll
                .poll(&mut self.events, Some(Duration::from_secs(10)))
                .expect("poll");
            assert!(!self.events.is_empty(), "no echo within 10 s");
            for event in self.events.iter() {
                let i = event.token().0;
                if self.pending[i] > 0 && drain(&mut self.streams[i], &mut self.buf, &mut self.pending[i]) {
                    left -= 1;
                }
            }
        }
    }
}

/// Reads what `stream` has; true once `pending` reaches zero.
fn drain(stream: &mut TcpStream, buf: &mut [u8], pending: &mut usize) -> bool {
    loop {
        match stream.read(buf) {
            Ok(0) => panic!("the server closed a connection"),
            Ok(n) => {
                *pending = pending.checked_sub(n).expect("more bytes echoed than sent");
                if *pending == 0 {
                    return true;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}
