//! One connection on a reactor: its socket, handler and the state machine
//! that turns readiness events and handler requests into system calls.
//!
//! A connection moves through these states; every arrow out of "open" ends in
//! [`Connection::finish`], which runs exactly once. An outbound connection
//! starts in "connecting" and reaches "open" (and `on_open`) only once its
//! handshake completed:
//!
//! ```text
//!  connecting ──refused / error / timeout──────────────► finish(ConnectRefused | ConnectTimeout | …)
//!   │ ──writable, no socket error─► open
//!  open ──read 0──────────► read closed ──output flushed──► finish(PeerClosed)
//!   │ ──close()───────────► closing ─────output flushed──► finish(Closed)
//!   │                           └─ peer may still send: shut our write half,
//!   │                              discard its bytes until its FIN (≤ 2 s) ─► finish(Closed)
//!   │ ──abort()/panic/error/idle/over limit──────────────► finish(reason)
//! ```
//!
//! `finish` deregisters the socket, cancels timers and calls `on_close`; the
//! socket itself is dropped (closing its fd) when the loop releases the slab
//! entry at the end of the turn.

use std::net::Shutdown;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use log::{debug, error, trace};
use mio::net::TcpStream;
use mio::{Interest, Token};
use socket2::SockRef;

use super::event_loop::Core;
use super::handle::Task;
use super::io::{self, Read};
use crate::conn::{ConnState, TimerKind, TimerOwner};
use crate::timer::{TimerId, deadline};
use crate::{CloseReason, Conn, Handler};

/// Longest a lingering close waits for the peer's end of stream.
pub(crate) const LINGER_TIME: Duration = Duration::from_secs(2);
/// Most bytes a lingering close reads and discards before giving up.
pub(crate) const LINGER_BYTES: usize = 1024 * 1024;

/// A connection owned by a reactor loop.
#[derive(Debug)]
pub(crate) struct Connection<H> {
    /// The socket. Dropped (fd closed) only when the slab entry is removed.
    stream: TcpStream,
    /// Handler requests and queued output.
    state: ConnState,
    /// Received bytes the handler has not consumed.
    input: BytesMut,
    /// The application's handler.
    handler: H,
    /// Generation part of this connection's token.
    pub(crate) generation: u32,
    /// `finish` has run; the entry awaits release. Nothing else happens after.
    pub(crate) finished: bool,
    /// The socket is registered for WRITABLE (held only while output is queued).
    writable_interest: bool,
    /// Output passed the high watermark; reading waits for the low watermark.
    backpressured: bool,
    /// A read returned end of stream.
    read_closed: bool,
    /// The poller reported the peer's FIN (or a hang-up); reads then run to
    /// `WouldBlock` or end of stream instead of stopping at a short read,
    /// because no further edge will announce the end of stream.
    fin_seen: bool,
    /// The write half has been shut down.
    write_shut: bool,
    /// Queued on the loop's carry-over list, to be read next turn.
    pub(crate) carried: bool,
    /// Output drained below the low watermark; `on_drained` runs in the
    /// carried phase.
    drained_due: bool,
    /// Lingering close underway: our FIN is sent, the peer's remaining bytes
    /// are read and discarded until its FIN, then the connection ends with
    /// this reason.
    linger: Option<CloseReason>,
    /// Bytes a lingering close still discards before giving up.
    linger_left: usize,
    /// Reading resumed (after a handler pause or backpressure) with input
    /// possibly left unconsumed;
    /// that input is handed to `on_data` again before the socket is read.
    redeliver: bool,
    /// Last time a byte moved in either direction (for the idle timeout).
    last_active: Instant,
    /// The pending idle check, if the idle timeout is on.
    idle_timer: Option<TimerId>,
    /// An outbound connection whose handshake has not completed: no reads,
    /// no writes, no `on_open` yet; the first writable or error event settles it.
    connecting: bool,
    /// The connect timeout of a connection still connecting.
    connect_timer: Option<TimerId>,
}

impl<H: Handler> Connection<H> {
    /// Wraps an accepted, registered socket.
    pub(crate) fn new(
        stream: TcpStream,
        state: ConnState,
        handler: H,
        generation: u32,
        now: Instant,
    ) -> Self {
        Connection {
            stream,
            state,
            input: BytesMut::new(),
            handler,
            generation,
            finished: false,
            writable_interest: false,
            backpressured: false,
            read_closed: false,
            fin_seen: false,
            write_shut: false,
            carried: false,
            redeliver: false,
            drained_due: false,
            linger: None,
            linger_left: 0,
            last_active: now,
            idle_timer: None,
            connecting: false,
            connect_timer: None,
        }
    }

    /// This connection's id.
    pub(crate) fn id(&self) -> crate::ConnId {
        self.state.id
    }

    /// This connection's token.
    pub(crate) fn token(&self) -> Token {
        self.state.token
    }

    /// Starts the idle timer and calls `on_open`.
    pub(crate) fn open(&mut self, core: &mut Core) {
        self.arm_idle(core);
        self.call(core, |h, conn, _| h.on_open(conn));
    }

    /// Waits for the handshake of an outbound connection, registered for
    /// READABLE and WRITABLE, at most until `deadline`.
    pub(crate) fn start_connect(&mut self, core: &mut Core, deadline: Instant) {
        self.connecting = true;
        self.writable_interest = true;
        let owner = TimerOwner {
            token: self.state.token,
            kind: TimerKind::Connect,
        };
        self.connect_timer = Some(core.timers.insert(deadline, owner));
    }

    /// Settles a handshake after an event: opens the connection if it
    /// connected, finishes it if it failed. Returns false unless it is open
    /// now; a spurious event leaves it connecting.
    fn connect_ready(&mut self, core: &mut Core) -> bool {
        if let Some(err) = self.stream.take_error().unwrap_or_else(Some) {
            self.finish(core, connect_failure(&err));
            return false;
        }
        // No pending error and no peer yet: the handshake is still underway.
        match self.stream.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotConnected => return false,
            Err(e) => {
                self.finish(core, connect_failure(&e));
                return false;
            }
        }
        self.connecting = false;
        if let Some(id) = self.connect_timer.take() {
            core.timers.cancel(id);
        }
        trace!("{}: connected to {}", self.state.id, self.state.peer);
        self.last_active = core.now;
        self.open(core);
        !self.finished
    }

    /// Handles one readiness event.
    pub(crate) fn ready(
        &mut self,
        core: &mut Core,
        readable: bool,
        writable: bool,
        read_closed: bool,
        error: bool,
    ) {
        if self.connecting && !self.connect_ready(core) {
            return;
        }
        if let Some(reason) = self.linger.clone() {
            self.fin_seen |= read_closed;
            return if error {
                self.finish(core, reason)
            } else {
                self.discard(core)
            };
        }
        if error {
            let err = self.stream.take_error().ok().flatten();
            let reason = err.as_ref().map_or(CloseReason::Reset, CloseReason::from_io);
            return self.finish(core, reason);
        }
        if read_closed {
            self.fin_seen = true;
        }
        if readable || read_closed {
            self.carried = false;
            self.read(core);
        }
        if writable && !self.finished {
            self.progress(core);
        }
    }

    /// Reads until the socket is drained, the budget is spent, or reading
    /// must stop; hands each read to `on_data`.
    pub(crate) fn read(&mut self, core: &mut Core) {
        if std::mem::take(&mut self.redeliver) && !self.input.is_empty() && self.can_read() {
            self.call(core, |h, conn, input| h.on_data(conn, input));
            self.check_input_limit(core);
        }
        let mut budget = core.config.read_budget;
        while self.can_read() {
            self.borrow_scratch(core);
            let go_on = self.read_once(core, &mut budget);
            self.return_scratch(core);
            if !go_on {
                return;
            }
        }
    }

    /// One `read` and its callback; returns whether to read again now.
    fn read_once(&mut self, core: &mut Core, budget: &mut usize) -> bool {
        match io::read_into(
            SockRef::from(&self.stream),
            &mut self.input,
            core.config.read_size,
        ) {
            Ok(Read::Data { n, short }) => {
                core.counters.reads += 1;
                core.counters.bytes_read += n as u64;
                self.last_active = core.now;
                self.call(core, |h, conn, input| h.on_data(conn, input));
                self.check_input_limit(core);
                *budget = budget.saturating_sub(n);
                if short && !self.fin_seen {
                    return false;
                }
                if *budget == 0 {
                    self.carry(core);
                    return false;
                }
                true
            }
            Ok(Read::Eof) => {
                core.counters.reads += 1;
                self.read_closed = true;
                trace!("{}: end of stream", self.state.id);
                self.call(core, |h, conn, _| h.on_eof(conn));
                false
            }
            Ok(Read::WouldBlock) => false,
            Err(e) => {
                self.finish(core, CloseReason::from_io(&e));
                false
            }
        }
    }

    /// Reads into the loop's spare buffer when this connection holds no
    /// input, so that only connections with a partial message own a buffer.
    fn borrow_scratch(&mut self, core: &mut Core) {
        if self.input.is_empty() {
            self.input = std::mem::take(&mut core.scratch);
        }
    }

    /// Hands the buffer back to the loop if the handler consumed everything:
    /// a waiting connection then holds no read buffer at all.
    fn return_scratch(&mut self, core: &mut Core) {
        if self.input.is_empty() && self.input.capacity() > core.scratch.capacity() {
            core.scratch = std::mem::take(&mut self.input);
        }
    }

    /// Runs one expired timer of this connection.
    pub(crate) fn timer(&mut self, core: &mut Core, id: TimerId, kind: TimerKind) {
        match kind {
            TimerKind::Idle => self.idle_check(core, id),
            TimerKind::Connect => {
                if self.connecting && self.connect_timer == Some(id) {
                    self.connect_timer = None;
                    debug!("{}: not connected in time", self.state.id);
                    self.finish(core, CloseReason::ConnectTimeout);
                }
            }
            TimerKind::User => {
                self.state.timers.retain(|&t| t != id);
                self.call(core, |h, conn, _| h.on_timer(conn, id));
            }
        }
    }

    /// Begins a graceful close for shutdown: flush, then close.
    pub(crate) fn shutdown(&mut self, core: &mut Core) {
        self.state.close_with(CloseReason::Shutdown);
        self.progress(core);
    }

    /// Closes now, for the end of a shutdown's grace period.
    pub(crate) fn force_close(&mut self, core: &mut Core) {
        self.reset(core, CloseReason::Shutdown);
    }

    /// Runs a closure sent through [`Remote`](crate::Remote) as a callback.
    pub(crate) fn run_task(&mut self, core: &mut Core, task: Task) {
        self.call(core, |_, conn, _| task(conn));
    }

    /// Calls a handler callback, catching a panic, then carries out whatever
    /// the handler asked for.
    fn call(&mut self, core: &mut Core, f: impl FnOnce(&mut H, &mut Conn<'_>, &mut BytesMut)) {
        let mut conn = Conn::new(&mut self.state, &mut core.timers, core.now).with_remote(&core.remote);
        let (handler, input) = (&mut self.handler, &mut self.input);
        if panic::catch_unwind(AssertUnwindSafe(|| f(handler, &mut conn, input))).is_err() {
            core.counters.panics += 1;
            error!(
                "{}: handler panicked; closing this connection only",
                self.state.id
            );
            return self.reset(core, CloseReason::Panicked);
        }
        self.apply(core);
    }

    /// Carries out the handler's requests after a callback.
    fn apply(&mut self, core: &mut Core) {
        if self.state.aborted {
            return self.reset(core, CloseReason::Aborted);
        }
        if self.read_closed {
            self.state.close_with(CloseReason::PeerClosed);
        }
        if std::mem::take(&mut self.state.idle_changed) {
            self.rearm_idle(core);
        }
        if std::mem::take(&mut self.state.read_resumed) {
            self.redeliver = true;
            self.carry(core);
        }
        self.progress(core);
    }

    /// Writes queued output, then updates interest, watermarks and any
    /// pending close or shutdown.
    fn progress(&mut self, core: &mut Core) {
        if self.connecting {
            // Output waits for the handshake; a close needs no flush.
            if let Some(reason) = self.state.closing.clone() {
                self.finish(core, reason);
            }
            return;
        }
        let queued = self.state.out.len();
        if queued > 0 && !self.flush(core) {
            return;
        }
        let pending = self.state.out.len();
        if pending == 0 {
            if let Some(reason) = self.state.closing.clone() {
                return self.close_or_linger(core, reason);
            }
            if self.state.shutdown_write && !self.write_shut {
                self.shut_write();
            }
        }
        self.set_writable_interest(core, pending > 0);
        self.watermarks(core, queued, pending);
    }

    /// Ends a connection whose output is flushed: at once, or, when the
    /// handler closed with the peer's bytes still unread, by a lingering
    /// close. Closing a socket with unread input makes the kernel send a
    /// reset, and a reset can destroy the last response before the peer
    /// reads it (say, a 413 sent while the body is still arriving). So the
    /// write half is shut (the peer sees our end of stream after the
    /// response), and what the peer still sends is read and discarded until
    /// its own end of stream, [`LINGER_TIME`] or [`LINGER_BYTES`].
    fn close_or_linger(&mut self, core: &mut Core, reason: CloseReason) {
        let peer_may_send = !self.read_closed
            && !self.fin_seen
            && (!self.input.is_empty() || io::has_unread(SockRef::from(&self.stream)));
        if self.linger.is_some()
            || !peer_may_send
            || !matches!(reason, CloseReason::Closed | CloseReason::InputLimit)
        {
            return self.finish(core, reason);
        }
        self.shut_write();
        self.set_writable_interest(core, false);
        self.linger = Some(reason);
        self.linger_left = LINGER_BYTES;
        self.last_active = core.now;
        self.state.idle_timeout = Some(LINGER_TIME);
        self.rearm_idle(core);
        self.discard(core);
    }

    /// Reads and drops what a lingering peer sends; ends the connection at
    /// its end of stream, on an error, or when the byte allowance is spent.
    fn discard(&mut self, core: &mut Core) {
        let Some(reason) = self.linger.clone() else { return };
        loop {
            self.borrow_scratch(core);
            let read = io::read_into(
                SockRef::from(&self.stream),
                &mut self.input,
                core.config.read_size,
            );
            self.input.clear();
            self.return_scratch(core);
            match read {
                Ok(Read::Data { n, short }) => {
                    core.counters.reads += 1;
                    self.linger_left = self.linger_left.saturating_sub(n);
                    if self.linger_left == 0 {
                        return self.finish(core, reason);
                    }
                    if short && !self.fin_seen {
                        return;
                    }
                }
                Ok(Read::WouldBlock) => return,
                Ok(Read::Eof) | Err(_) => return self.finish(core, reason),
            }
        }
    }

    /// Writes until the queue is empty or the socket is full. Returns false if
    /// the connection failed and was finished.
    fn flush(&mut self, core: &mut Core) -> bool {
        while !self.state.out.is_empty() {
            match self
                .state
                .out
                .write_to(&mut io::NoSigPipe(SockRef::from(&self.stream)))
            {
                Ok(n) => {
                    core.counters.writes += 1;
                    core.counters.bytes_written += n as u64;
                    self.last_active = core.now;
                }
                Err(e) if io::would_block(&e) => break,
                Err(e) if io::interrupted(&e) => continue,
                Err(e) => {
                    self.finish(core, CloseReason::from_io(&e));
                    return false;
                }
            }
        }
        true
    }

    /// Pauses reading once a callback has queued more than the high
    /// watermark (even if the socket then took it all at once); at the low
    /// watermark resumes reading and schedules `on_drained` for the carried
    /// phase, so a handler streaming from `on_drained` into a fast socket
    /// loops through turns instead of recursing.
    fn watermarks(&mut self, core: &mut Core, queued: usize, pending: usize) {
        if !self.backpressured && queued > core.config.high_watermark {
            self.backpressured = true;
            core.counters.read_pauses += 1;
            trace!("{}: {queued} bytes queued, pausing reads", self.state.id);
        }
        if self.backpressured && pending <= core.config.low_watermark {
            self.backpressured = false;
            self.drained_due = true;
            // A handler that stopped consuming because its output was full
            // gets the input it left once the output drains.
            self.redeliver = true;
            self.carry(core);
        }
    }

    /// Serves a connection from the carry-over list: a due `on_drained`, then
    /// reading.
    pub(crate) fn serve_carried(&mut self, core: &mut Core) {
        self.carried = false;
        if std::mem::take(&mut self.drained_due) && !self.finished {
            self.call(core, |h, conn, _| h.on_drained(conn));
        }
        self.read(core);
    }

    /// Registers or drops WRITABLE interest so it is held only while output
    /// is queued.
    fn set_writable_interest(&mut self, core: &mut Core, want: bool) {
        if want == self.writable_interest {
            return;
        }
        let interest = if want {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        match core
            .registry
            .reregister(&mut self.stream, self.state.token, interest)
        {
            Ok(()) => self.writable_interest = want,
            Err(e) => self.finish(core, CloseReason::from_io(&e)),
        }
    }

    /// Shuts down the write half: the peer reads end of stream.
    fn shut_write(&mut self) {
        self.write_shut = true;
        if let Err(e) = self.stream.shutdown(Shutdown::Write) {
            debug!("{}: shutdown(write) failed: {e}", self.state.id);
        }
    }

    /// Closes unconsumed input that grew past the limit.
    fn check_input_limit(&mut self, core: &mut Core) {
        if !self.finished && self.input.len() > core.config.max_input {
            debug!(
                "{}: {} unconsumed input bytes, over the limit",
                self.state.id,
                self.input.len()
            );
            self.state.close_with(CloseReason::InputLimit);
            self.progress(core);
        }
    }

    /// True while reading is allowed.
    fn can_read(&self) -> bool {
        !self.finished
            && !self.connecting
            && !self.read_closed
            && !self.backpressured
            && !self.state.read_paused
            && !self.state.is_closing()
    }

    /// Puts the connection on the list read at the next turn.
    fn carry(&mut self, core: &mut Core) {
        if !self.carried && !self.finished {
            self.carried = true;
            core.carried.push(self.state.token);
        }
    }

    /// Starts the idle check for the configured timeout.
    fn arm_idle(&mut self, core: &mut Core) {
        if let Some(timeout) = self.state.idle_timeout {
            let owner = TimerOwner {
                token: self.state.token,
                kind: TimerKind::Idle,
            };
            self.idle_timer = Some(core.timers.insert(deadline(self.last_active, timeout), owner));
        }
    }

    /// Restarts the idle check after the timeout changed.
    fn rearm_idle(&mut self, core: &mut Core) {
        if let Some(id) = self.idle_timer.take() {
            core.timers.cancel(id);
        }
        self.arm_idle(core);
    }

    /// The idle check fired: close if idle long enough, else check again later.
    fn idle_check(&mut self, core: &mut Core, id: TimerId) {
        if self.idle_timer != Some(id) {
            return;
        }
        self.idle_timer = None;
        let Some(timeout) = self.state.idle_timeout else {
            return;
        };
        if core.now.saturating_duration_since(self.last_active) >= timeout {
            debug!("{}: idle for {timeout:?}, closing", self.state.id);
            let reason = self.linger.take().unwrap_or(CloseReason::IdleTimeout);
            self.finish(core, reason);
        } else {
            self.arm_idle(core);
        }
    }

    /// Ends the connection abortively: queued output is dropped and the peer
    /// sees a reset (`SO_LINGER` 0) rather than a clean end of stream.
    fn reset(&mut self, core: &mut Core, reason: CloseReason) {
        if !self.finished {
            let _ = SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
        }
        self.finish(core, reason);
    }

    /// Ends the connection: the only place that does, and it runs once.
    ///
    /// Deregisters the socket, cancels timers, counts the reason and calls
    /// `on_close`. The fd is closed when the entry is released; bytes already
    /// handed to the kernel are still delivered unless [`reset`](Self::reset)
    /// set `SO_LINGER` 0.
    pub(crate) fn finish(&mut self, core: &mut Core, reason: CloseReason) {
        if self.finished {
            return;
        }
        self.finished = true;
        if let Err(e) = core.registry.deregister(&mut self.stream) {
            debug!("{}: deregister failed: {e}", self.state.id);
        }
        self.cancel_timers(core);
        self.state.out.clear();
        self.input = BytesMut::new();
        core.counters.open -= 1;
        core.door.closed(self.state.token);
        core.door.remove_load();
        core.limit.release();
        core.counters.closed[reason.index()] += 1;
        core.closed.push(self.state.token);
        debug!("{}: closed ({reason})", self.state.id);
        let handler = &mut self.handler;
        if panic::catch_unwind(AssertUnwindSafe(|| handler.on_close(&reason))).is_err() {
            core.counters.panics += 1;
            error!("{}: handler panicked in on_close", self.state.id);
        }
    }

    /// Cancels the idle check and every handler timer.
    fn cancel_timers(&mut self, core: &mut Core) {
        let own = [self.idle_timer.take(), self.connect_timer.take()];
        for id in own.into_iter().flatten().chain(self.state.timers.drain(..)) {
            core.timers.cancel(id);
        }
    }
}

/// The reason an outbound connection that failed to connect closes with.
fn connect_failure(err: &std::io::Error) -> CloseReason {
    match err.kind() {
        std::io::ErrorKind::ConnectionRefused => CloseReason::ConnectRefused,
        std::io::ErrorKind::TimedOut => CloseReason::ConnectTimeout,
        _ => CloseReason::from_io(err),
    }
}
