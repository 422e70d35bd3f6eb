//! One connection on its own thread: the [`Session`] every model shares,
//! driven by blocking system calls.
//!
//! The thread repeats one step until the session finishes. A step does the
//! first of these that applies:
//!
//! 1. **shutdown** — the server began shutting down: the session closes
//!    gracefully with [`CloseReason::Shutdown`]; once the grace period is
//!    over, abortively.
//! 2. **timers** — one expired timer (handler, idle, linger) goes to the
//!    session.
//! 3. **deferred** — `on_drained` and input offered again, as the reactor
//!    does in its carried phase.
//! 4. **write** — one blocking write of queued output, bounded by the next
//!    deadline.
//! 5. **read** — one blocking read, bounded by the next deadline.
//! 6. **wait** — nothing to read (the handler paused reading): sleep until
//!    a timer is due or shutdown begins.
//!
//! Every blocking call is bounded by the nearest deadline through the
//! socket's read or write timeout, so timers fire while the thread waits on
//! the socket.
//!
//! A TLS connection lends the session a [`TlsLayer`](crate::tls) over the
//! blocking socket: the session reads and writes plaintext, the layer's
//! records go out in the write step like any output, and the steps above
//! are the same.

use std::net::Shutdown;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use socket2::SockRef;

use super::io::{self, Timeouts};
use super::link::Link;
use super::shared::Shared;
use crate::buf::OutputQueue;
use crate::conn::{ConnState, TimerOwner};
#[cfg(feature = "tls")]
use crate::reactor::read_slice;
use crate::reactor::{NoSigPipe, has_unread, read_into};
use crate::session::{Env, Read, Session, Transport};
use crate::stats::Counters;
use crate::timer::TimerQueue;
#[cfg(feature = "tls")]
use crate::tls::{TlsLayer, TlsState};
use crate::{CloseReason, Config, Handler};

/// A connection served by its own thread.
#[derive(Debug)]
pub(super) struct Connection<'a, H> {
    /// The socket and its published counters.
    link: &'a Link,
    /// Server-wide state: the shutdown flags.
    shared: &'a Shared,
    /// Per-connection limits.
    config: &'a Config,
    /// The connection's policy and state.
    session: Session<H>,
    /// TLS over the socket, if the connection speaks it.
    #[cfg(feature = "tls")]
    tls: Option<Box<TlsState>>,
    /// This connection's timers: handler timers, idle check, linger.
    timers: TimerQueue<TimerOwner>,
    /// This connection's counters, published to the link after each step.
    counters: Counters,
    /// The read buffer lent to the session while it holds no input.
    scratch: BytesMut,
    /// The socket's current read and write timeouts.
    timeouts: Timeouts,
    /// The session was told that shutdown began.
    shutdown_begun: bool,
}

/// The baseline's [`Transport`]: blocking calls, each bounded by the next
/// deadline. A wait that times out reads as `WouldBlock`; so does an end of
/// stream or error caused by the server's own shutdown, which the next step
/// turns into a [`CloseReason::Shutdown`].
struct Blocking<'a> {
    /// The socket.
    stream: &'a socket2::Socket,
    /// Server-wide state: the shutdown flags.
    shared: &'a Shared,
    /// The socket's current timeouts.
    timeouts: &'a mut Timeouts,
    /// The nearest deadline; blocking calls wait no longer.
    deadline: Option<Instant>,
    /// Whether this step may write: only the write step does, once, so
    /// that output a callback queued waits for the next step, after the
    /// counters are published and the timers run, as do further writes.
    may_write: bool,
}

impl Blocking<'_> {
    /// How long the next blocking call may wait.
    fn timeout(&self) -> Option<Duration> {
        let deadline = self.deadline?;
        Some(
            deadline
                .saturating_duration_since(Instant::now())
                .max(io::MIN_TIMEOUT),
        )
    }
}

impl Blocking<'_> {
    /// Sets the read timeout for the next deadline, then reads once with
    /// `read`, which makes the system call.
    fn read_with(
        &mut self,
        read: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> std::io::Result<Read>,
    ) -> std::io::Result<Read> {
        let timeout = self.timeout();
        self.timeouts.set_read(self.stream, timeout)?;
        match read(self.stream.as_fd()) {
            // Our own shutdown of the read half, most likely, not the peer.
            Ok(Read::Eof) if self.shared.is_shutting_down() => Ok(Read::WouldBlock),
            Err(e) if io::timed_out(&e) || self.shared.is_forced() => Ok(Read::WouldBlock),
            result => result,
        }
    }
}

impl Transport for Blocking<'_> {
    fn read(&mut self, input: &mut BytesMut, min_space: usize) -> std::io::Result<Read> {
        self.read_with(|fd| read_into(fd, input, min_space))
    }

    #[cfg(feature = "tls")]
    fn read_slice(&mut self, buf: &mut [u8]) -> std::io::Result<Read> {
        self.read_with(|fd| read_slice(fd, buf))
    }

    fn write(&mut self, out: &mut OutputQueue) -> std::io::Result<usize> {
        if !std::mem::take(&mut self.may_write) {
            return Err(std::io::ErrorKind::WouldBlock.into());
        }
        let timeout = self.timeout();
        self.timeouts.set_write(self.stream, timeout)?;
        loop {
            match out.write_to(&mut NoSigPipe(self.stream.as_fd())) {
                Err(e) if io::interrupted(&e) => continue,
                Err(e) if io::timed_out(&e) || self.shared.is_forced() => {
                    return Err(std::io::ErrorKind::WouldBlock.into());
                }
                result => return result,
            }
        }
    }

    fn shutdown_write(&mut self) -> std::io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }

    fn set_reset(&mut self) {
        let _ = SockRef::from(self.stream).set_linger(Some(Duration::ZERO));
    }

    fn has_unread(&mut self) -> bool {
        has_unread(SockRef::from(self.stream))
    }

    fn refresh(&self, now: &mut Instant) {
        *now = Instant::now();
    }
}

/// Calls into a connection's session with this thread's environment and
/// its transport — the blocking socket, or the TLS layer over it — letting
/// it write once if `$may_write`; otherwise output waits for the write
/// step. `$f` is a closure, expanded once per transport so that each is
/// typed for its own.
macro_rules! call {
    ($conn:expr, $may_write:expr, $f:expr) => {{
        let conn = &mut *$conn;
        let deadline = conn.timers.next_deadline();
        let mut env = Env {
            now: Instant::now(),
            config: conn.config,
            timers: &mut conn.timers,
            counters: &mut conn.counters,
            scratch: &mut conn.scratch,
            remote: None,
        };
        let mut io = Blocking {
            stream: &conn.link.stream,
            shared: conn.shared,
            timeouts: &mut conn.timeouts,
            deadline,
            may_write: $may_write,
        };
        #[cfg(feature = "tls")]
        match conn.tls.as_deref_mut() {
            None => apply(&mut conn.session, &mut env, &mut io, $f),
            Some(tls) => apply(&mut conn.session, &mut env, &mut TlsLayer::new(io, tls), $f),
        }
        #[cfg(not(feature = "tls"))]
        apply(&mut conn.session, &mut env, &mut io, $f)
    }};
}

/// Calls `f` with the session, environment and transport, so that the
/// closure's parameter types come from the call.
#[inline(always)]
fn apply<S, E, T>(session: S, env: E, io: T, f: impl FnOnce(S, E, T)) {
    f(session, env, io)
}

impl<'a, H: Handler> Connection<'a, H> {
    /// A connection about to open.
    pub(super) fn new(
        link: &'a Link,
        shared: &'a Shared,
        config: &'a Config,
        handler: H,
        state: ConnState,
        #[cfg(feature = "tls")] tls: Option<Box<TlsState>>,
    ) -> Self {
        Connection {
            link,
            shared,
            config,
            session: Session::new(handler, state, Instant::now()),
            #[cfg(feature = "tls")]
            tls,
            timers: TimerQueue::new(),
            counters: Counters::default(),
            scratch: BytesMut::new(),
            timeouts: Timeouts::default(),
            shutdown_begun: false,
        }
    }

    /// Sets the config's socket options, opens the session, then steps
    /// until it finishes (`on_close` included). Returns the reason.
    pub(super) fn run(mut self) -> CloseReason {
        if matches!(self.session.peer(), crate::Peer::Tcp(_)) {
            self.config.apply_socket_options(SockRef::from(&self.link.stream));
        }
        call!(&mut self, false, |s, env, io| s.open(env, io));
        loop {
            self.link.counters.publish(&self.counters);
            if let Some(reason) = self.session.close_reason() {
                return reason.clone();
            }
            self.step();
        }
    }

    /// One step: the first phase of the module docs that applies.
    fn step(&mut self) {
        if self.shared.is_forced() {
            return call!(self, false, |s, env, io| s.force_close(env, io));
        }
        if !self.shutdown_begun && self.shared.is_shutting_down() {
            self.shutdown_begun = true;
            return call!(self, false, |s, env, io| s.shutdown(env, io));
        }
        if let Some((id, owner)) = self.timers.pop_expired(Instant::now()) {
            return call!(self, false, |s, env, io| s.timer(env, io, id, owner.kind));
        }
        if self.session.has_deferred() {
            return call!(self, false, |s, env, io| s.serve_deferred(env, io));
        }
        if self.has_output() {
            return call!(self, true, |s, env, io| s.writable(env, io));
        }
        if self.session.wants_read() {
            self.trim_scratch();
            call!(self, false, |s, env, io| {
                s.read(env, io);
            });
            return;
        }
        self.shared.sleep_until(self.timers.next_deadline());
    }

    /// True while output waits: the session's, or TLS records.
    fn has_output(&self) -> bool {
        #[cfg(feature = "tls")]
        if self.tls.as_ref().is_some_and(|tls| tls.held() > 0) {
            return true;
        }
        self.session.has_output()
    }

    /// Gives back the memory a burst left in the read buffer before the
    /// thread blocks, so a waiting connection holds no more than
    /// `read_size`, as on the reactor.
    fn trim_scratch(&mut self) {
        if self.scratch.capacity() > self.config.read_size {
            self.scratch = BytesMut::new();
        }
    }
}
