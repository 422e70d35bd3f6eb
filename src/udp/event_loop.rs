//! One UDP loop: a thread with its own poller and its own socket.
//!
//! A turn of the loop, in order:
//!
//! 1. **wait** in the poller (no timeout, or none at all when a read budget
//!    ran out and the socket may still hold datagrams);
//! 2. **stop** if a wake says so, after sending what is queued;
//! 3. **send** what is queued, in batches; when the kernel's send buffer is
//!    full (`EAGAIN`) the loop asks for WRITABLE and stops reading until
//!    the queue has drained (backpressure, never a busy loop);
//! 4. **door**: on a wake, queue and send the datagrams other threads
//!    handed in;
//! 5. **receive** while reading is on: a batch per `recvmmsg`, each datagram
//!    to the handler, the batch's replies out in one `sendmmsg`, until the
//!    socket is empty (a batch shorter than its slots says so, saving the
//!    call that would only find it empty) or [`READ_BUDGET`] batches went;
//! 6. **publish** the counters for other threads.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use super::door::{Door, Handed};
use super::outbox::Outbox;
use super::{DatagramHandler, UdpConfig, UdpSock, UdpStats};
use crate::sys::{self, RecvBatch, SendBatch};

/// The socket's token.
pub(crate) const SOCKET: Token = Token(0);
/// The waker's token.
pub(crate) const WAKER: Token = Token(1);

/// Batches received in one turn at most, so that a flood cannot keep the
/// loop from its door (a stop request, datagrams from other threads).
const READ_BUDGET: usize = 16;

/// What a loop starts with, made on the starting thread so that errors
/// reach the caller of `start`.
#[derive(Debug)]
pub(crate) struct LoopParts {
    /// Its poller, the socket and waker registered.
    pub(crate) poll: Poll,
    /// Its socket, bound (and connected, for a client).
    pub(crate) socket: UdpSocket,
    /// Its door, shared with the handle.
    pub(crate) door: Arc<Door>,
    /// The socket's address.
    pub(crate) local: SocketAddr,
    /// The connected peer, if any.
    pub(crate) peer: Option<SocketAddr>,
    /// Sizes and limits.
    pub(crate) config: UdpConfig,
    /// While set, sends fail with `WouldBlock` before reaching the kernel:
    /// a full send buffer for tests of backpressure, as loopback never
    /// fills a UDP socket's (its packets leave the buffer as they are sent).
    #[cfg(test)]
    pub(crate) fake_full: Option<Arc<std::sync::atomic::AtomicBool>>,
}

/// A running loop.
struct UdpLoop<H> {
    /// See [`LoopParts`].
    parts: LoopParts,
    /// The application.
    handler: H,
    /// Where batches are received.
    recv: RecvBatch,
    /// Headers for batched sends.
    scratch: SendBatch,
    /// Datagrams waiting to be sent.
    outbox: Outbox,
    /// Datagrams handed in by other threads, taken from the door.
    handed: Vec<Handed>,
    /// The counters, published at the end of every turn.
    stats: UdpStats,
    /// The socket may hold datagrams not yet read (an edge seen, or a read
    /// budget spent).
    readable: bool,
    /// Reading is paused until the send queue drains; interest is WRITABLE
    /// only meanwhile.
    paused: bool,
}

/// Runs a loop on the calling thread until its door says stop.
///
/// # Errors
///
/// A broken poller.
pub(crate) fn run<H: DatagramHandler>(parts: LoopParts, handler: H) -> io::Result<()> {
    let config = parts.config;
    let mut udp = UdpLoop {
        handler,
        recv: RecvBatch::new(config.batch_len(), config.max_datagram_len()),
        scratch: SendBatch::default(),
        outbox: Outbox::new(config.send_queue_len(), config.max_datagram_len()),
        handed: Vec::new(),
        stats: UdpStats::default(),
        readable: true,
        paused: false,
        parts,
    };
    udp.run()
}

impl<H> Drop for UdpLoop<H> {
    /// Publishes the last counters and closes the door (and its waker),
    /// whether the loop stopped or its handler panicked.
    fn drop(&mut self) {
        self.parts.door.stats.publish(&self.stats);
        self.parts.door.close();
    }
}

impl<H: DatagramHandler> UdpLoop<H> {
    /// The turns, until stopped.
    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(8);
        self.call(|handler, sock| handler.on_start(sock));
        self.send_queued()?;
        loop {
            let (mut wake, mut writable) = (false, false);
            self.wait(&mut events)?;
            for event in events.iter() {
                match event.token() {
                    WAKER => wake = true,
                    _ => {
                        self.readable |= event.is_readable() || event.is_error();
                        writable |= event.is_writable() || event.is_error();
                    }
                }
            }
            if wake && self.parts.door.stopping() {
                return self.send_queued();
            }
            // Paused, the queue is tried again when the socket turns
            // writable, or on a wake, which brings more to send anyway:
            // room is made before what was handed in is queued.
            if !self.outbox.is_empty() && (!self.paused || writable || wake) {
                self.send_queued()?;
            }
            if wake {
                self.take_handed();
                if !self.paused {
                    self.send_queued()?;
                }
            }
            if self.readable && !self.paused {
                self.receive()?;
            }
            self.parts.door.stats.publish(&self.stats);
        }
    }

    /// Waits for events; without waiting when the socket may hold more.
    fn wait(&mut self, events: &mut Events) -> io::Result<()> {
        let timeout = (self.readable && !self.paused).then_some(Duration::ZERO);
        self.stats.polls += 1;
        match self.parts.poll.poll(events, timeout) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                events.clear();
                Ok(())
            }
            other => other,
        }
    }

    /// Calls the handler with its view of the socket.
    fn call(&mut self, callback: impl FnOnce(&mut H, &mut UdpSock<'_>)) {
        let mut sock = UdpSock {
            outbox: &mut self.outbox,
            dropped: &mut self.stats.dropped,
            local: self.parts.local,
            peer: self.parts.peer,
        };
        callback(&mut self.handler, &mut sock);
    }

    /// Queues what other threads handed in.
    fn take_handed(&mut self) {
        self.parts.door.take(&mut self.handed);
        for (data, to) in self.handed.drain(..) {
            // Sizes were checked by the sender; a full queue drops.
            if self.outbox.push(&data, to).is_err() {
                self.stats.dropped += 1;
            }
        }
    }

    /// Receives batches and hands each datagram to the handler, until the
    /// socket is empty, the budget is spent or sending must wait.
    fn receive(&mut self) -> io::Result<()> {
        for _ in 0..READ_BUDGET {
            self.stats.recv_calls += 1;
            match sys::recv_batch(self.parts.socket.as_fd(), &mut self.recv) {
                Ok(done) => {
                    self.stats.recv_calls += done.calls as u64 - 1;
                    self.deliver();
                    self.send_queued()?;
                    if done.datagrams < self.recv.slots() {
                        self.readable = false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.stats.errors += 1;
                    let peer = self.parts.peer;
                    self.call(|handler, sock| handler.on_error(sock, &e, peer));
                    self.send_queued()?;
                }
            }
            if !self.readable || self.paused {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Hands the datagrams of the last batch to the handler.
    fn deliver(&mut self) {
        let mut sock = UdpSock {
            outbox: &mut self.outbox,
            dropped: &mut self.stats.dropped,
            local: self.parts.local,
            peer: self.parts.peer,
        };
        for i in 0..self.recv.len() {
            let got = self.recv.get(i);
            let Some(from) = got.from else { continue };
            match got.truncated {
                None => {
                    self.stats.datagrams_in += 1;
                    self.handler.on_datagram(&mut sock, got.data, from);
                }
                Some(len) => {
                    self.stats.truncated += 1;
                    self.handler.on_truncated(&mut sock, from, len);
                }
            }
        }
    }

    /// Sends the queue in batches until it is empty or the kernel's buffer
    /// is full; pauses reading in the latter case, resumes it in the former.
    ///
    /// # Errors
    ///
    /// Changing the socket's interest failed.
    fn send_queued(&mut self) -> io::Result<()> {
        while !self.outbox.is_empty() {
            self.stats.send_calls += 1;
            match self.send_batch() {
                Ok(done) => {
                    self.stats.send_calls += done.calls as u64 - 1;
                    self.stats.datagrams_out += done.datagrams as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return self.pause(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // The first datagram's own failure: drop it, say so, go on.
                    self.stats.errors += 1;
                    let to = self.outbox.front_to().or(self.parts.peer);
                    self.outbox.consume(1);
                    self.call(|handler, sock| handler.on_error(sock, &e, to));
                }
            }
        }
        self.resume()
    }

    /// One batched send of the queue.
    fn send_batch(&mut self) -> io::Result<sys::BatchDone> {
        #[cfg(test)]
        if (self.parts.fake_full.as_ref()).is_some_and(|full| full.load(std::sync::atomic::Ordering::SeqCst))
        {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        (self.outbox).send(self.parts.socket.as_fd(), &mut self.scratch)
    }

    /// Stops reading until the queue drains; asks for WRITABLE meanwhile.
    fn pause(&mut self) -> io::Result<()> {
        if !self.paused {
            self.paused = true;
            self.stats.send_pauses += 1;
            log::debug!("udp {}: send buffer full, reading paused", self.parts.local);
            let registry = self.parts.poll.registry();
            registry.reregister(&mut self.parts.socket, SOCKET, Interest::WRITABLE)?;
        }
        Ok(())
    }

    /// Reads again after a pause; whatever arrived meanwhile is read next.
    fn resume(&mut self) -> io::Result<()> {
        if self.paused {
            self.paused = false;
            self.readable = true;
            log::debug!("udp {}: send queue drained, reading resumed", self.parts.local);
            let registry = self.parts.poll.registry();
            registry.reregister(&mut self.parts.socket, SOCKET, Interest::READABLE)?;
        }
        Ok(())
    }
}
