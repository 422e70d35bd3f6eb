//! One connection on its own thread: the reactor's per-connection state
//! machine, driven by blocking system calls.
//!
//! The thread repeats one step until the connection ends. A step does the
//! first of these phases that applies:
//!
//! 1. **shutdown** — the server is shutting down: ask for a graceful close,
//!    as [`Conn::close`] does, with [`CloseReason::Shutdown`].
//! 2. **timers** — run expired handler timers; end an idle connection.
//! 3. **flush** — one blocking write of queued output.
//! 4. **close** — output flushed: end if a close was requested, shut down
//!    the write half if that was.
//! 5. **read** — input left unconsumed when the handler resumed reading is
//!    handed to `on_data` again; otherwise one blocking read, handed to
//!    `on_data` (or `on_eof`).
//! 6. **wait** — reading paused by the handler: sleep until a timer is due or
//!    shutdown begins.
//!
//! Every blocking call is bounded by the nearest deadline, handler timer or
//! idle timeout, through the socket's read or write timeout, so timers fire
//! while the thread waits on the socket. After every callback the handler's
//! requests are carried out as on the reactor (`apply`).

use std::net::Shutdown;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use log::{debug, error, trace};
use socket2::SockRef;

use super::io::{self, Recv, Timeouts};
use super::link::Link;
use super::shared::Shared;
use crate::conn::{ConnState, TimerOwner};
use crate::reactor::NoSigPipe;
use crate::reactor::{LINGER_BYTES, LINGER_TIME, has_unread};
use crate::timer::TimerQueue;
use crate::{CloseReason, Config, Conn, Handler};

/// A connection served by its own thread.
#[derive(Debug)]
pub(super) struct Connection<'a, H> {
    /// The socket and its counters.
    link: &'a Link,
    /// Server-wide state: the shutdown flags.
    shared: &'a Shared,
    /// Per-connection limits.
    config: &'a Config,
    /// The application's handler.
    handler: H,
    /// Handler requests and queued output.
    state: ConnState,
    /// This connection's handler timers (the idle timeout is kept apart, as
    /// a deadline computed from `last_active`).
    timers: TimerQueue<TimerOwner>,
    /// Received bytes the handler has not consumed.
    input: BytesMut,
    /// Set once the connection has ended; the thread then stops stepping.
    ended: Option<CloseReason>,
    /// A read returned end of stream.
    read_closed: bool,
    /// The write half has been shut down.
    write_shut: bool,
    /// Output rose above the high watermark; `on_drained` is due once it
    /// falls to the low one.
    backpressured: bool,
    /// The handler resumed reading with input left unconsumed; that input is
    /// handed to `on_data` again before the socket is read.
    redeliver: bool,
    /// Last time a byte moved in either direction (for the idle timeout).
    last_active: Instant,
    /// The socket's current read and write timeouts.
    timeouts: Timeouts,
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
            handler,
            state,
            timers: TimerQueue::new(),
            input: BytesMut::new(),
            ended: None,
            read_closed: false,
            write_shut: false,
            backpressured: false,
            redeliver: false,
            last_active: Instant::now(),
            timeouts: Timeouts::default(),
        }
    }

    /// Sets the config's socket options, calls `on_open`, then steps until
    /// the connection ends. Returns the handler, for `on_close`, and the
    /// reason.
    pub(super) fn run(mut self) -> (H, CloseReason) {
        self.config.apply_socket_options(SockRef::from(&self.link.stream));
        self.call(|h, conn, _| h.on_open(conn));
        loop {
            if let Some(reason) = self.ended.take() {
                return (self.handler, reason);
            }
            self.step();
        }
    }

    /// One step: the first phase of the module docs that applies.
    fn step(&mut self) {
        if self.shared.is_shutting_down() {
            self.state.close_with(CloseReason::Shutdown);
        }
        if self.run_timers() {
            return;
        }
        if !self.state.out.is_empty() {
            return self.flush();
        }
        if let Some(reason) = self.state.closing.clone() {
            return self.close_or_linger(reason);
        }
        if self.state.shutdown_write && !self.write_shut {
            self.shut_write();
        }
        if std::mem::take(&mut self.redeliver) && !self.input.is_empty() && self.can_read() {
            return self.deliver();
        }
        if self.can_read() {
            self.read();
        } else {
            self.shared.sleep_until(self.next_deadline());
        }
    }

    /// Runs expired timers and ends the connection if it has been idle too
    /// long. Returns true if anything happened.
    fn run_timers(&mut self) -> bool {
        let now = Instant::now();
        let mut ran = false;
        while self.ended.is_none() {
            let Some((id, _)) = self.timers.pop_expired(now) else {
                break;
            };
            self.state.timers.retain(|&t| t != id);
            self.call(|h, conn, _| h.on_timer(conn, id));
            ran = true;
        }
        if let Some(timeout) = self.idle_expired(now) {
            debug!("{}: idle for {timeout:?}, closing", self.state.id);
            self.end(CloseReason::IdleTimeout);
            ran = true;
        }
        ran
    }

    /// The idle timeout, if the connection is open and no byte has moved
    /// for that long.
    fn idle_expired(&self, now: Instant) -> Option<Duration> {
        let idle_for = now.saturating_duration_since(self.last_active);
        let timeout = self.state.idle_timeout.filter(|&t| idle_for >= t)?;
        self.ended.is_none().then_some(timeout)
    }

    /// Writes queued output once, blocking until the socket takes some or a
    /// deadline is due, then calls `on_drained` if output has drained.
    fn flush(&mut self) {
        let timeout = self.timeout();
        if let Err(e) = self.timeouts.set_write(&self.link.stream, timeout) {
            return self.fail(&e);
        }
        let mut stream = NoSigPipe(SockRef::from(&self.link.stream));
        match self.state.out.write_to(&mut stream) {
            Ok(0) => self.fail(&std::io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                self.link.counters.wrote(n);
                self.last_active = Instant::now();
                self.drained();
            }
            Err(e) if io::timed_out(&e) || io::interrupted(&e) => {}
            Err(e) => self.fail(&e),
        }
    }

    /// Calls `on_drained` once output that rose above the high watermark is
    /// down to the low one, unless the connection is about to close with
    /// nothing left to write (the reactor closes it then without the call).
    fn drained(&mut self) {
        let pending = self.state.out.len();
        let closing_now = pending == 0 && self.state.closing.is_some();
        if self.backpressured && pending <= self.config.low_watermark && !closing_now {
            self.backpressured = false;
            // As on the reactor: input left while output was full is handed
            // back to `on_data` before the next read.
            self.redeliver = true;
            self.call(|h, conn, _| h.on_drained(conn));
        }
    }

    /// Reads once, blocking until bytes arrive or a deadline is due, and
    /// hands them to the handler.
    fn read(&mut self) {
        self.trim_input();
        let timeout = self.timeout();
        if let Err(e) = self.timeouts.set_read(&self.link.stream, timeout) {
            return self.fail(&e);
        }
        match io::recv_into(&self.link.stream, &mut self.input, self.config.read_size) {
            Ok(Recv::Data(n)) => {
                self.link.counters.read(n);
                self.last_active = Instant::now();
                self.deliver();
            }
            Ok(Recv::Eof) => self.eof(),
            Ok(Recv::TimedOut) => {}
            Err(e) => self.fail(&e),
        }
    }

    /// Hands the input to `on_data` and enforces the input limit.
    fn deliver(&mut self) {
        self.call(|h, conn, input| h.on_data(conn, input));
        if self.ended.is_none() && self.input.len() > self.config.max_input {
            debug!(
                "{}: {} unconsumed input bytes, over the limit",
                self.state.id,
                self.input.len()
            );
            self.state.close_with(CloseReason::InputLimit);
        }
    }

    /// A read returned end of stream.
    fn eof(&mut self) {
        self.link.counters.read(0);
        if self.shared.is_shutting_down() {
            // Most likely our own shutdown of the read half, not the peer.
            return self.state.close_with(CloseReason::Shutdown);
        }
        self.read_closed = true;
        trace!("{}: end of stream", self.state.id);
        self.call(|h, conn, _| h.on_eof(conn));
    }

    /// Calls a handler callback, catching a panic, then carries out whatever
    /// the handler asked for.
    fn call(&mut self, f: impl FnOnce(&mut H, &mut Conn<'_>, &mut BytesMut)) {
        if self.ended.is_some() {
            return;
        }
        let mut conn = Conn::new(&mut self.state, &mut self.timers, Instant::now());
        let (handler, input) = (&mut self.handler, &mut self.input);
        if panic::catch_unwind(AssertUnwindSafe(|| f(handler, &mut conn, input))).is_err() {
            self.link.counters.panicked();
            error!(
                "{}: handler panicked; closing this connection only",
                self.state.id
            );
            return self.reset(CloseReason::Panicked);
        }
        self.apply();
    }

    /// Carries out the handler's requests after a callback, as the reactor
    /// does; writing and closing follow in the next steps.
    fn apply(&mut self) {
        if self.state.aborted {
            return self.reset(CloseReason::Aborted);
        }
        if self.read_closed {
            self.state.close_with(CloseReason::PeerClosed);
        }
        // The idle deadline is computed afresh before every blocking call.
        self.state.idle_changed = false;
        if std::mem::take(&mut self.state.read_resumed) {
            self.redeliver = true;
        }
        if !self.backpressured && self.state.out.len() > self.config.high_watermark {
            self.backpressured = true;
            self.link.counters.paused();
            trace!(
                "{}: {} bytes queued, above the high watermark",
                self.state.id,
                self.state.out.len()
            );
        }
    }

    /// Shuts down the write half: the peer reads end of stream.
    fn shut_write(&mut self) {
        self.write_shut = true;
        if let Err(e) = self.link.stream.shutdown(Shutdown::Write) {
            debug!("{}: shutdown(write) failed: {e}", self.state.id);
        }
    }

    /// True while reading is allowed.
    fn can_read(&self) -> bool {
        !self.read_closed && !self.backpressured && !self.state.read_paused && !self.state.is_closing()
    }

    /// Gives back the memory a burst left in an empty input buffer before the
    /// thread blocks, so a waiting connection holds no more than `read_size`,
    /// as on the reactor.
    fn trim_input(&mut self) {
        if self.input.is_empty() && self.input.capacity() > self.config.read_size {
            self.input = BytesMut::new();
        }
    }

    /// The nearest deadline: a handler timer or the idle timeout. An idle
    /// timeout too long to represent (`Duration::MAX`) never expires.
    fn next_deadline(&mut self) -> Option<Instant> {
        let idle = self
            .state
            .idle_timeout
            .and_then(|t| self.last_active.checked_add(t));
        [self.timers.next_deadline(), idle].into_iter().flatten().min()
    }

    /// How long the next blocking call may wait.
    fn timeout(&mut self) -> Option<Duration> {
        let deadline = self.next_deadline()?;
        Some(
            deadline
                .saturating_duration_since(Instant::now())
                .max(io::MIN_TIMEOUT),
        )
    }

    /// Ends the connection after a socket error. Once the grace period of a
    /// shutdown is over, errors are the server's own reset: `Shutdown`.
    fn fail(&mut self, err: &std::io::Error) {
        let reason = if self.shared.is_forced() {
            CloseReason::Shutdown
        } else {
            CloseReason::from_io(err)
        };
        self.end(reason);
    }

    /// Ends a connection whose output is flushed, lingering as the reactor
    /// does when the handler closed while the peer may still be sending: our
    /// write half is shut and the peer's bytes are read and dropped until its
    /// end of stream, [`LINGER_TIME`] or [`LINGER_BYTES`], so that closing
    /// with unread input does not make the kernel reset the connection and
    /// destroy the last reply.
    fn close_or_linger(&mut self, reason: CloseReason) {
        let unread = !self.input.is_empty() || has_unread(SockRef::from(&self.link.stream));
        if !self.read_closed && unread && matches!(reason, CloseReason::Closed | CloseReason::InputLimit) {
            self.shut_write();
            let deadline = Instant::now() + LINGER_TIME;
            let mut left = LINGER_BYTES;
            let mut scratch = BytesMut::new();
            while left > 0 {
                let wait = deadline.saturating_duration_since(Instant::now());
                if wait.is_zero() || self.timeouts.set_read(&self.link.stream, Some(wait)).is_err() {
                    break;
                }
                match io::recv_into(&self.link.stream, &mut scratch, self.config.read_size) {
                    Ok(Recv::Data(n)) => left = left.saturating_sub(n),
                    _ => break, // end of stream, timeout or error: done either way
                }
                scratch.clear();
            }
        }
        self.end(reason);
    }

    /// Ends the connection abortively: queued output is dropped and the peer
    /// sees a reset (`SO_LINGER` 0) rather than a clean end of stream.
    fn reset(&mut self, reason: CloseReason) {
        if self.ended.is_none() {
            let _ = SockRef::from(&self.link.stream).set_linger(Some(Duration::ZERO));
        }
        self.end(reason);
    }

    /// Ends the connection, once; the socket is closed when the thread lets
    /// go of its registration.
    fn end(&mut self, reason: CloseReason) {
        if self.ended.is_none() {
            self.ended = Some(reason);
            self.state.out.clear();
        }
    }
}
