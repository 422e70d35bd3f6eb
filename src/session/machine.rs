//! [`Session`]: the state machine of the [module docs](super), fed events by
//! a driver.

use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use log::{debug, error, trace};

use super::phase::{Phase, WriteHalf};
use super::transport::{Env, Read, Transport};
use crate::conn::{ConnState, End, TimerKind, TimerOwner};
use crate::timer::{TimerId, deadline};
use crate::{CloseReason, Conn, ConnId, Handler};

/// Longest a lingering close waits for the peer's end of stream.
pub(crate) const LINGER_TIME: Duration = Duration::from_secs(2);
/// Most bytes a lingering close reads and discards before giving up.
pub(crate) const LINGER_BYTES: usize = 1024 * 1024;

/// Work a driver owes the session outside any event: set by the session,
/// done in [`Session::serve_deferred`] (the reactor's carried phase, the
/// thread's next step), so that a handler acting from a callback never
/// re-enters itself.
#[derive(Debug, Default, Clone, Copy)]
struct Deferred {
    /// Output that passed the high watermark drained: `on_drained` is due.
    drained: bool,
    /// Reading resumed (after backpressure or a handler's pause) with input
    /// possibly left: offer it again.
    redeliver: bool,
    /// The socket must be read again without waiting for a new event
    /// (edges that arrived while paused; a lingering close just begun).
    reread: bool,
}

/// One connection's policy: handler, requests, input, output and phase.
#[derive(Debug)]
pub(crate) struct Session<H> {
    /// The application's handler.
    handler: H,
    /// What the handler asked for, and the output it queued.
    state: ConnState,
    /// Received bytes the handler has not consumed.
    input: BytesMut,
    /// Where the connection is in its life.
    phase: Phase,
    /// Our write half.
    write: WriteHalf,
    /// Output passed the high watermark; no input is read or offered until
    /// it drains to the low one.
    backpressured: bool,
    /// Work for the driver's next deferred round.
    deferred: Deferred,
    /// Last time a byte moved in either direction (for the idle timeout).
    last_active: Instant,
    /// The pending idle check, while the idle timeout is on.
    idle_timer: Option<TimerId>,
}

impl<H: Handler> Session<H> {
    /// A session for an accepted connection, not yet opened.
    pub(crate) fn new(handler: H, state: ConnState, now: Instant) -> Self {
        Session {
            handler,
            state,
            input: BytesMut::new(),
            phase: Phase::Open,
            write: WriteHalf::Open,
            backpressured: false,
            deferred: Deferred::default(),
            last_active: now,
            idle_timer: None,
        }
    }

    /// A session for an outbound connection whose handshake must complete
    /// by `until`.
    pub(crate) fn connecting(handler: H, state: ConnState, env: &mut Env<'_>, until: Instant) -> Self {
        let mut session = Session::new(handler, state, env.now);
        let timer = env.timers.insert(until, session.owner(TimerKind::Connect));
        session.phase = Phase::Connecting { timer: Some(timer) };
        session
    }

    /// This connection's id.
    pub(crate) fn id(&self) -> ConnId {
        self.state.id
    }

    /// The phase, for drivers and tests.
    #[cfg(test)]
    pub(crate) fn phase(&self) -> &Phase {
        &self.phase
    }

    /// True while the handshake of an outbound connection is underway.
    pub(crate) fn is_connecting(&self) -> bool {
        matches!(self.phase, Phase::Connecting { .. })
    }

    /// True once the connection has ended; the driver then releases it.
    pub(crate) fn is_finished(&self) -> bool {
        self.phase.is_finished()
    }

    /// Why the connection ended, once it has.
    pub(crate) fn close_reason(&self) -> Option<&CloseReason> {
        match &self.phase {
            Phase::Finished { reason } => Some(reason),
            _ => None,
        }
    }

    /// True while the driver should read: the handler takes input and is
    /// neither paused nor backpressured, or a lingering close discards.
    pub(crate) fn wants_read(&self) -> bool {
        match self.phase {
            Phase::Open => self.may_deliver(),
            Phase::Lingering { .. } => true,
            _ => false,
        }
    }

    /// True while output waits for the socket.
    pub(crate) fn has_output(&self) -> bool {
        !self.state.out.is_empty()
    }

    /// True while deferred work is owed ([`serve_deferred`](Self::serve_deferred)).
    pub(crate) fn has_deferred(&self) -> bool {
        let d = self.deferred;
        !self.is_finished() && (d.drained || d.redeliver || d.reread)
    }

    /// Queued output, for tests and bounds.
    #[cfg(test)]
    pub(crate) fn pending_output(&self) -> usize {
        self.state.out.len()
    }

    /// Unconsumed input, for tests and bounds.
    #[cfg(test)]
    pub(crate) fn pending_input(&self) -> usize {
        self.input.len()
    }

    /// Opens the connection: starts the idle check and calls `on_open`.
    pub(crate) fn open(&mut self, env: &mut Env<'_>, io: &mut impl Transport) {
        self.last_active = env.now;
        self.arm_idle(env);
        self.call(env, io, |h, conn, _| h.on_open(conn));
    }

    /// The handshake of an outbound connection completed.
    pub(crate) fn connected(&mut self, env: &mut Env<'_>, io: &mut impl Transport) {
        if let Phase::Connecting { timer } = &mut self.phase {
            if let Some(id) = timer.take() {
                env.timers.cancel(id);
            }
            self.phase = Phase::Open;
            trace!("{}: connected to {}", self.state.id, self.state.peer);
            self.open(env, io);
        }
    }

    /// Reads once (or, lingering, discards once) and runs the callbacks
    /// that follow. Returns what the read gave; `WouldBlock` also when
    /// reading is not wanted now.
    pub(crate) fn read(&mut self, env: &mut Env<'_>, io: &mut impl Transport) -> Read {
        if matches!(self.phase, Phase::Lingering { .. }) {
            return self.discard(env, io);
        }
        if !self.wants_read() {
            return Read::WouldBlock;
        }
        self.borrow_scratch(env);
        let read = io.read(&mut self.input, env.config.read_size);
        match read {
            Ok(Read::Data { n, .. }) => {
                env.counters.reads += 1;
                env.counters.bytes_read += n as u64;
                self.last_active = env.now;
                self.deliver(env, io);
            }
            Ok(Read::Eof) => {
                env.counters.reads += 1;
                self.peer_closed(env, io);
            }
            Ok(Read::WouldBlock) => {}
            Err(ref e) => self.finish(env, CloseReason::from_io(e)),
        }
        self.return_scratch(env);
        read.unwrap_or(Read::WouldBlock)
    }

    /// The socket can take output: writes what is queued and moves on. If
    /// output that had to wait for the socket is now all gone while input
    /// waits, the input is offered again: a handler that stopped consuming
    /// at an output limit of its own, below the high watermark, goes on.
    pub(crate) fn writable(&mut self, env: &mut Env<'_>, io: &mut impl Transport) {
        let waited = self.has_output();
        self.progress(env, io);
        if waited && !self.has_output() && !self.input.is_empty() && self.phase.takes_input() {
            self.deferred.redeliver = true;
        }
    }

    /// A socket error (or a poller's error report) ends the connection; a
    /// lingering close ends with its own reason.
    pub(crate) fn failed(&mut self, env: &mut Env<'_>, reason: CloseReason) {
        let reason = match &self.phase {
            Phase::Lingering { reason, .. } => reason.clone(),
            _ => reason,
        };
        self.finish(env, reason);
    }

    /// Runs one expired timer of this connection.
    pub(crate) fn timer(&mut self, env: &mut Env<'_>, io: &mut impl Transport, id: TimerId, kind: TimerKind) {
        match (kind, &self.phase) {
            (TimerKind::User, _) => {
                self.state.timers.retain(|&t| t != id);
                self.call(env, io, |h, conn, _| h.on_timer(conn, id));
            }
            (TimerKind::Idle, _) => self.idle_check(env, id),
            (TimerKind::Connect, Phase::Connecting { timer: Some(t) }) if *t == id => {
                debug!("{}: not connected in time", self.state.id);
                self.phase = Phase::Connecting { timer: None };
                self.finish(env, CloseReason::ConnectTimeout);
            }
            (
                TimerKind::Linger,
                Phase::Lingering {
                    reason,
                    timer: Some(t),
                    ..
                },
            ) if *t == id => {
                debug!(
                    "{}: the peer did not finish within {LINGER_TIME:?}",
                    self.state.id
                );
                let reason = reason.clone();
                self.finish(env, reason);
            }
            _ => trace!("{}: stale timer {id:?}", self.state.id),
        }
    }

    /// Begins a graceful close for a shutdown: flush, then close.
    pub(crate) fn shutdown(&mut self, env: &mut Env<'_>, io: &mut impl Transport) {
        self.state.close_with(CloseReason::Shutdown);
        self.apply(env, io);
    }

    /// Closes now, abortively: the end of a shutdown's grace period.
    pub(crate) fn force_close(&mut self, env: &mut Env<'_>, io: &mut impl Transport) {
        self.reset(env, io, CloseReason::Shutdown);
    }

    /// Runs a closure sent from another thread as a callback.
    pub(crate) fn run_task(
        &mut self,
        env: &mut Env<'_>,
        io: &mut impl Transport,
        task: impl FnOnce(&mut Conn<'_>),
    ) {
        self.call(env, io, |_, conn, _| task(conn));
    }

    /// Does the deferred work: a due `on_drained`, then input offered again
    /// (and `on_eof` after it, once the peer has finished).
    pub(crate) fn serve_deferred(&mut self, env: &mut Env<'_>, io: &mut impl Transport) {
        let deferred = std::mem::take(&mut self.deferred);
        if deferred.drained {
            self.call(env, io, |h, conn, _| h.on_drained(conn));
        }
        if deferred.redeliver && self.may_deliver() {
            if !self.input.is_empty() {
                self.deliver(env, io);
            } else if self.phase == Phase::ReadClosed {
                self.end_of_input(env, io);
            }
        }
    }

    /// Offers the input to `on_data` for as long as the handler consumes
    /// some and may go on, then enforces the input limit.
    fn deliver(&mut self, env: &mut Env<'_>, io: &mut impl Transport) {
        loop {
            let before = self.input.len();
            self.call(env, io, |h, conn, input| h.on_data(conn, input));
            if self.input.len() > env.config.max_input && self.phase.takes_input() {
                debug!(
                    "{}: {} unconsumed input bytes, over the limit",
                    self.state.id,
                    self.input.len()
                );
                self.state.close_with(CloseReason::InputLimit);
                return self.apply(env, io);
            }
            let progressed = self.input.len() < before;
            if self.input.is_empty() || !progressed || !self.may_deliver() {
                break;
            }
        }
        if self.phase == Phase::ReadClosed {
            self.end_of_input(env, io);
        }
    }

    /// The peer's end of stream was read.
    fn peer_closed(&mut self, env: &mut Env<'_>, io: &mut impl Transport) {
        trace!("{}: end of stream", self.state.id);
        self.phase = Phase::ReadClosed;
        self.end_of_input(env, io);
    }

    /// After the peer's end of stream: once the handler has been offered all
    /// it can take (it is not paused, and consumed nothing more with its
    /// output flushed), `on_eof` sees what is left; what it still leaves is discarded and
    /// counted, and the connection closes once output is flushed.
    fn end_of_input(&mut self, env: &mut Env<'_>, io: &mut impl Transport) {
        if self.phase != Phase::ReadClosed || !self.may_deliver() {
            return;
        }
        if !self.input.is_empty() && self.has_output() {
            // The handler may be waiting for its output to go: offer the
            // input again once it has ([`writable`](Self::writable)).
            return;
        }
        if std::mem::take(&mut self.deferred.redeliver) && !self.input.is_empty() {
            // Output drained since the handler last declined the input.
            return self.deliver(env, io);
        }
        self.call(env, io, |h, conn, input| h.on_eof(conn, input));
        if !self.input.is_empty() && !self.is_finished() {
            let n = self.input.len();
            env.counters.input_discarded += n as u64;
            debug!(
                "{}: {n} input bytes left unconsumed at end of stream, discarded",
                self.state.id
            );
            self.input.clear();
        }
        self.state.close_with(CloseReason::PeerClosed);
        self.apply(env, io);
    }

    /// True while input may be handed to the handler.
    fn may_deliver(&self) -> bool {
        self.phase.takes_input() && !self.backpressured && !self.state.read_paused && self.state.end.is_none()
    }

    /// Calls a handler callback, catching a panic, then carries out what the
    /// handler asked for.
    fn call(
        &mut self,
        env: &mut Env<'_>,
        io: &mut impl Transport,
        f: impl FnOnce(&mut H, &mut Conn<'_>, &mut BytesMut),
    ) {
        if self.is_finished() {
            return;
        }
        let (paused, idle) = (self.state.read_paused, self.state.idle_timeout);
        let mut conn = Conn::new(&mut self.state, env.timers, env.now, env.remote);
        let (handler, input) = (&mut self.handler, &mut self.input);
        if panic::catch_unwind(AssertUnwindSafe(|| f(handler, &mut conn, input))).is_err() {
            env.counters.panics += 1;
            error!(
                "{}: handler panicked; closing this connection only",
                self.state.id
            );
            return self.reset(env, io, CloseReason::Panicked);
        }
        if self.state.idle_timeout != idle {
            self.rearm_idle(env);
        }
        if paused && !self.state.read_paused {
            // Edges that came while paused were not acted on.
            self.deferred.redeliver = true;
            self.deferred.reread = true;
        }
        self.apply(env, io);
    }

    /// Carries out the handler's requests: an abort at once, a close by
    /// moving to its phase; then output moves on.
    fn apply(&mut self, env: &mut Env<'_>, io: &mut impl Transport) {
        match (&self.state.end, &self.phase) {
            (Some(End::Abort), _) => return self.reset(env, io, CloseReason::Aborted),
            (Some(End::Close(reason)), Phase::Connecting { .. }) => {
                // Nothing was sent yet; nothing needs flushing.
                let reason = reason.clone();
                return self.finish(env, reason);
            }
            (Some(End::Close(reason)), Phase::Open | Phase::ReadClosed) => {
                let peer_done = self.phase == Phase::ReadClosed;
                self.phase = Phase::Closing {
                    reason: reason.clone(),
                    peer_done,
                };
            }
            _ => {}
        }
        self.progress(env, io);
    }

    /// Writes queued output, then moves a flushed connection on: a close
    /// proceeds, a requested shutdown of the write half happens; write
    /// interest and the watermarks follow what is left.
    fn progress(&mut self, env: &mut Env<'_>, io: &mut impl Transport) {
        if !matches!(
            self.phase,
            Phase::Open | Phase::ReadClosed | Phase::Closing { .. }
        ) {
            return;
        }
        let queued = self.state.out.len();
        if queued > 0 && !self.flush(env, io) {
            return;
        }
        let pending = self.state.out.len();
        if pending == 0 {
            if let Phase::Closing { reason, peer_done } = &self.phase {
                let (reason, peer_done) = (reason.clone(), *peer_done);
                return self.close_or_linger(env, io, reason, peer_done);
            }
            if self.state.shutdown_write && self.write == WriteHalf::Open {
                self.shut_write(io);
            }
        }
        if let Err(e) = io.want_writable(pending > 0) {
            return self.finish(env, CloseReason::from_io(&e));
        }
        self.watermarks(env, queued, pending);
    }

    /// Writes until the queue is empty or the socket is full. Returns false
    /// if the connection failed and finished.
    fn flush(&mut self, env: &mut Env<'_>, io: &mut impl Transport) -> bool {
        while !self.state.out.is_empty() {
            match io.write(&mut self.state.out) {
                Ok(0) => {
                    self.finish(env, CloseReason::Error(std::io::ErrorKind::WriteZero));
                    return false;
                }
                Ok(n) => {
                    env.counters.writes += 1;
                    env.counters.bytes_written += n as u64;
                    self.last_active = env.now;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.finish(env, CloseReason::from_io(&e));
                    return false;
                }
            }
        }
        true
    }

    /// Pauses input once a callback has queued more than the high watermark
    /// (even if the socket then took it all); at the low watermark resumes
    /// it and defers `on_drained` and a new offer of the input left, so a
    /// handler streaming from `on_drained` loops instead of recursing.
    fn watermarks(&mut self, env: &mut Env<'_>, queued: usize, pending: usize) {
        let (low, high) = (env.config.low_watermark, env.config.high_watermark);
        if !self.backpressured && queued > high {
            self.backpressured = true;
            env.counters.read_pauses += 1;
            trace!("{}: {queued} bytes queued, pausing input", self.state.id);
        }
        if self.backpressured && pending <= low {
            self.backpressured = false;
            self.deferred.drained = true;
            self.deferred.redeliver = true;
            self.deferred.reread = true;
        }
    }

    /// Ends a connection whose output is flushed: at once, or, when the
    /// handler closed while the peer may still be sending, by lingering.
    /// Closing a socket with unread input makes the kernel send a reset,
    /// which can destroy the last response before the peer reads it (say, a
    /// 413 sent while the body still arrives). So our write half is shut
    /// (the peer reads the response, then end of stream) and what the peer
    /// still sends is discarded until its end of stream, [`LINGER_TIME`] or
    /// [`LINGER_BYTES`].
    fn close_or_linger(
        &mut self,
        env: &mut Env<'_>,
        io: &mut impl Transport,
        reason: CloseReason,
        peer_done: bool,
    ) {
        let lingers = matches!(reason, CloseReason::Closed | CloseReason::InputLimit);
        if peer_done || !lingers || (self.input.is_empty() && !io.has_unread()) {
            return self.finish(env, reason);
        }
        self.input.clear();
        if self.write == WriteHalf::Open {
            self.shut_write(io);
        }
        if let Err(e) = io.want_writable(false) {
            return self.finish(env, CloseReason::from_io(&e));
        }
        if let Some(id) = self.idle_timer.take() {
            env.timers.cancel(id);
        }
        let until = deadline(env.now, LINGER_TIME);
        let timer = Some(env.timers.insert(until, self.owner(TimerKind::Linger)));
        self.phase = Phase::Lingering {
            reason,
            left: LINGER_BYTES,
            timer,
        };
        self.deferred.reread = true;
    }

    /// Reads once and drops what a lingering peer sends; finishes at its end
    /// of stream, on an error, or when the allowance is spent.
    fn discard(&mut self, env: &mut Env<'_>, io: &mut impl Transport) -> Read {
        self.borrow_scratch(env);
        let read = io.read(&mut self.input, env.config.read_size);
        self.input.clear();
        self.return_scratch(env);
        let Phase::Lingering { reason, left, .. } = &mut self.phase else {
            return Read::WouldBlock;
        };
        match read {
            Ok(Read::Data { n, short }) => {
                env.counters.reads += 1;
                *left = left.saturating_sub(n);
                if *left == 0 {
                    let reason = reason.clone();
                    self.finish(env, reason);
                }
                Read::Data { n, short }
            }
            Ok(Read::WouldBlock) => Read::WouldBlock,
            Ok(Read::Eof) | Err(_) => {
                let reason = reason.clone();
                self.finish(env, reason);
                Read::Eof
            }
        }
    }

    /// Reads into the lent buffer when this connection holds no input.
    fn borrow_scratch(&mut self, env: &mut Env<'_>) {
        if self.input.is_empty() {
            std::mem::swap(&mut self.input, env.scratch);
        }
    }

    /// Hands the buffer back if the handler consumed everything: a waiting
    /// connection then holds no read buffer at all.
    fn return_scratch(&mut self, env: &mut Env<'_>) {
        if self.input.is_empty() && self.input.capacity() > env.scratch.capacity() {
            std::mem::swap(&mut self.input, env.scratch);
        }
    }

    /// Shuts down the write half: the peer reads end of stream.
    fn shut_write(&mut self, io: &mut impl Transport) {
        self.write = WriteHalf::Shut;
        if let Err(e) = io.shutdown_write() {
            debug!("{}: shutdown(write) failed: {e}", self.state.id);
        }
    }

    /// The owner record of one of this connection's timers.
    fn owner(&self, kind: TimerKind) -> TimerOwner {
        TimerOwner {
            token: self.state.token,
            kind,
        }
    }

    /// Starts the idle check for the current timeout.
    fn arm_idle(&mut self, env: &mut Env<'_>) {
        if let Some(timeout) = self.state.idle_timeout {
            let at = deadline(self.last_active, timeout);
            self.idle_timer = Some(env.timers.insert(at, self.owner(TimerKind::Idle)));
        }
    }

    /// Restarts the idle check after the timeout changed.
    fn rearm_idle(&mut self, env: &mut Env<'_>) {
        if let Some(id) = self.idle_timer.take() {
            env.timers.cancel(id);
        }
        if !matches!(self.phase, Phase::Lingering { .. } | Phase::Connecting { .. }) {
            self.arm_idle(env);
        }
    }

    /// The idle check fired: close if idle long enough, else check later.
    fn idle_check(&mut self, env: &mut Env<'_>, id: TimerId) {
        if self.idle_timer != Some(id) {
            return;
        }
        self.idle_timer = None;
        let Some(timeout) = self.state.idle_timeout else {
            return;
        };
        if env.now.saturating_duration_since(self.last_active) >= timeout {
            debug!("{}: idle for {timeout:?}, closing", self.state.id);
            self.finish(env, CloseReason::IdleTimeout);
        } else {
            self.arm_idle(env);
        }
    }

    /// Ends the connection abortively: output dropped, the peer sees a reset.
    fn reset(&mut self, env: &mut Env<'_>, io: &mut impl Transport, reason: CloseReason) {
        if !self.is_finished() {
            io.set_reset();
        }
        self.finish(env, reason);
    }

    /// Ends the connection: the only place that does, and it runs once.
    /// Cancels timers, drops buffers, counts the reason and calls
    /// `on_close`; the driver then releases the socket.
    pub(crate) fn finish(&mut self, env: &mut Env<'_>, reason: CloseReason) {
        if self.is_finished() {
            return;
        }
        let phase_timer = match &mut self.phase {
            Phase::Connecting { timer } | Phase::Lingering { timer, .. } => timer.take(),
            _ => None,
        };
        let own = [self.idle_timer.take(), phase_timer];
        for id in own.into_iter().flatten().chain(self.state.timers.drain(..)) {
            env.timers.cancel(id);
        }
        self.phase = Phase::Finished {
            reason: reason.clone(),
        };
        self.deferred = Deferred::default();
        self.state.out.clear();
        self.input = BytesMut::new();
        env.counters.closed[reason.index()] += 1;
        debug!("{}: closed ({reason})", self.state.id);
        let handler = &mut self.handler;
        if panic::catch_unwind(AssertUnwindSafe(|| handler.on_close(&reason))).is_err() {
            env.counters.panics += 1;
            error!("{}: handler panicked in on_close", self.state.id);
        }
    }
}
