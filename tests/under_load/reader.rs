//! Non-blocking clients on one thread, each reading at its own pace: the
//! 1,000 readers of the shutdown scenario, without 1,000 threads.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Events, Interest, Poll, Token};

/// One client: its request sent, its reply being read and checked.
#[derive(Debug)]
pub struct Client {
    /// Its id, which names its reply.
    pub id: usize,
    /// Its connection, non-blocking.
    stream: mio::net::TcpStream,
    /// The whole reply it asked for; the server may send a prefix only.
    expected: Bytes,
    /// Bytes received so far.
    got: usize,
    /// Most bytes it reads at once: its pace.
    pace: usize,
    /// Where the received bytes first differed from `expected`.
    wrong_at: Option<usize>,
    /// How the stream ended: `Ok` for a clean end of stream.
    end: Option<io::Result<()>>,
}

impl Client {
    /// Connects, sends its request for `mode`, and turns the socket
    /// non-blocking.
    pub fn ask(addr: SocketAddr, id: usize, mode: &str, expected: Bytes) -> Client {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        // A small, fixed receive window: flow control, not the kernel's
        // buffers, then holds back what the client has not read yet.
        socket.set_recv_buffer_size(16 * 1024).unwrap();
        socket.connect(&addr.into()).unwrap();
        let mut stream: TcpStream = socket.into();
        stream.write_all(format!("{id} {mode}\n").as_bytes()).unwrap();
        stream.set_nonblocking(true).unwrap();
        Client {
            id,
            stream: mio::net::TcpStream::from_std(stream),
            expected,
            got: 0,
            pace: 4 * 1024 * (1 + id % 8),
            wrong_at: None,
            end: None,
        }
    }

    /// Reads once, at most its pace; returns whether it may read more
    /// now (false once the socket is drained or the stream ended).
    fn read_some(&mut self, buf: &mut [u8], received: &AtomicU64) -> bool {
        match self.stream.read(&mut buf[..self.pace]) {
            Ok(0) => self.end = Some(Ok(())),
            Ok(n) => {
                self.check(&buf[..n]);
                received.fetch_add(n as u64, Ordering::Relaxed);
                return true;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => return true,
            Err(e) => self.end = Some(Err(e)),
        }
        false
    }

    /// Compares newly received bytes with what was expected there.
    fn check(&mut self, data: &[u8]) {
        let end = self.got + data.len();
        if self.wrong_at.is_none() && self.expected.get(self.got..end) != Some(data) {
            self.wrong_at = Some(self.got);
        }
        self.got = end;
    }

    /// Asserts it received exactly the `accepted` first bytes of its
    /// reply, then a clean end of stream.
    #[track_caller]
    pub fn assert_got_exactly(&self, accepted: u64) {
        let id = self.id;
        assert!(
            self.wrong_at.is_none(),
            "client {id}: wrong bytes from {:?}",
            self.wrong_at
        );
        assert_eq!(
            self.got as u64, accepted,
            "client {id}: bytes received != accepted"
        );
        match &self.end {
            Some(Ok(())) => {}
            other => panic!("client {id}: ended with {other:?}, not a clean end of stream"),
        }
    }
}

/// Reads every client until its stream ends, round-robin among those
/// with bytes waiting; counts bytes into `received`. Panics after
/// `limit`.
pub fn read_all(mut clients: Vec<Client>, received: &AtomicU64, limit: Duration) -> Vec<Client> {
    let mut poll = Poll::new().unwrap();
    for (index, client) in clients.iter_mut().enumerate() {
        poll.registry()
            .register(&mut client.stream, Token(index), Interest::READABLE)
            .unwrap();
    }
    // Edge-triggered: a client is read until it would block, one read
    // per pass, so each moves at its own pace and none starves the rest.
    let mut ready: VecDeque<usize> = (0..clients.len()).collect();
    let mut queued = vec![true; clients.len()];
    let mut events = Events::with_capacity(1024);
    let mut buf = vec![0; 64 * 1024];
    let mut open = clients.len();
    let deadline = Instant::now() + limit;
    while open > 0 {
        assert!(
            Instant::now() < deadline,
            "{open} clients still reading after {limit:?}"
        );
        let timeout = if ready.is_empty() {
            Duration::from_millis(100)
        } else {
            Duration::ZERO
        };
        poll.poll(&mut events, Some(timeout)).unwrap();
        for event in &events {
            let index = event.token().0;
            if !std::mem::replace(&mut queued[index], true) {
                ready.push_back(index);
            }
        }
        for _ in 0..ready.len() {
            let index = ready.pop_front().expect("counted");
            let client = &mut clients[index];
            if client.read_some(&mut buf, received) {
                ready.push_back(index);
            } else if client.end.is_some() {
                open -= 1; // and stays marked queued: never read again
            } else {
                queued[index] = false;
            }
        }
    }
    clients
}
