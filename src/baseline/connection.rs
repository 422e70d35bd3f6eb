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

use std::net::{Shutdown, TcpStream};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use socket2::SockRef;

use super::io::{self, Timeouts};
use super::link::Link;
use super::shared::Shared;
use crate::buf::OutputQueue;
use crate::conn::{ConnState, TimerOwner};
use crate::reactor::{NoSigPipe, has_unread, read_into};
use crate::session::{Env, Read, Session, Transport};
use crate::stats::Counters;
use crate::timer::TimerQueue;
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
    stream: &'a TcpStream,
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

impl Transport for Blocking<'_> {
    fn read(&mut self, input: &mut BytesMut, min_space: usize) -> std::io::Result<Read> {
        let timeout = self.timeout();
        self.timeouts.set_read(self.stream, timeout)?;
        match read_into(self.stream.as_fd(), input, min_space) {
            // Our own shutdown of the read half, most likely, not the peer.
            Ok(Read::Eof) if self.shared.is_shutting_down() => Ok(Read::WouldBlock),
            Err(e) if io::timed_out(&e) || self.shared.is_forced() => Ok(Read::WouldBlock),
            result => result,
        }
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

impl<'a, H: Handler> Connection<'a, H> {
    /// A connection about to open.
    pub(super) fn new(
        link: &'a Link,
        shared: &'a Shared,
        config: &'a Config,
        handler: H,
        state: ConnState,
    ) -> Self {
        Connection {
            link,
            shared,
            config,
            session: Session::new(handler, state, Instant::now()),
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
        self.config.apply_socket_options(SockRef::from(&self.link.stream));
        self.with(|s, env, io| s.open(env, io));
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
            return self.with(|s, env, io| s.force_close(env, io));
        }
        if !self.shutdown_begun && self.shared.is_shutting_down() {
            self.shutdown_begun = true;
            return self.with(|s, env, io| s.shutdown(env, io));
        }
        if let Some((id, owner)) = self.timers.pop_expired(Instant::now()) {
            return self.with(|s, env, io| s.timer(env, io, id, owner.kind));
        }
        if self.session.has_deferred() {
            return self.with(|s, env, io| s.serve_deferred(env, io));
        }
        if self.session.has_output() {
            return self.call(true, |s, env, io| s.writable(env, io));
        }
        if self.session.wants_read() {
            self.trim_scratch();
            self.with(|s, env, io| {
                s.read(env, io);
            });
            return;
        }
        self.shared.sleep_until(self.timers.next_deadline());
    }

    /// Calls into the session with this thread's environment and socket;
    /// output waits for the write step.
    fn with(&mut self, f: impl FnOnce(&mut Session<H>, &mut Env<'_>, &mut Blocking<'_>)) {
        self.call(false, f);
    }

    /// Calls into the session, letting it write once if `may_write`.
    fn call(&mut self, may_write: bool, f: impl FnOnce(&mut Session<H>, &mut Env<'_>, &mut Blocking<'_>)) {
        let deadline = self.timers.next_deadline();
        let mut env = Env {
            now: Instant::now(),
            config: self.config,
            timers: &mut self.timers,
            counters: &mut self.counters,
            scratch: &mut self.scratch,
            remote: None,
        };
        let mut io = Blocking {
            stream: &self.link.stream,
            shared: self.shared,
            timeouts: &mut self.timeouts,
            deadline,
            may_write,
        };
        f(&mut self.session, &mut env, &mut io);
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
