//! [`Session`]: the state machine of the [module docs](super), fed events by
//! a driver.

use std::time::{Duration, Instant};

use bytes::BytesMut;
use log::{debug, trace};

use super::phase::{Phase, WriteHalf};
use super::transport::{Env, Read, Transport};
use crate::conn::{ConnState, TimerKind};
use crate::timer::TimerId;
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
pub(super) struct Deferred {
    /// Output that passed the high watermark drained: `on_drained` is due.
    pub(super) drained: bool,
    /// Reading resumed (after backpressure or a handler's pause) with input
    /// possibly left: offer it again.
    pub(super) redeliver: bool,
    /// The socket must be read again without waiting for a new event
    /// (edges that arrived while paused; a lingering close just begun).
    pub(super) reread: bool,
}

/// One connection's policy: handler, requests, input, output and phase.
#[derive(Debug)]
pub(crate) struct Session<H> {
    /// The application's handler.
    pub(super) handler: H,
    /// What the handler asked for, and the output it queued.
    pub(super) state: ConnState,
    /// Received bytes the handler has not consumed.
    pub(super) input: BytesMut,
    /// Where the connection is in its life.
    pub(super) phase: Phase,
    /// Our write half.
    pub(super) write: WriteHalf,
    /// Output passed the high watermark; no input is read or offered until
    /// it drains to the low one.
    pub(super) backpressured: bool,
    /// Work for the driver's next deferred round.
    pub(super) deferred: Deferred,
    /// Last time a byte moved in either direction (for the idle timeout).
    pub(super) last_active: Instant,
    /// The pending idle check, while the idle timeout is on.
    pub(super) idle_timer: Option<TimerId>,
    /// The server is draining: `on_drain` ran, or runs right after
    /// `on_open` for a connection not yet open.
    pub(super) draining: bool,
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
            draining: false,
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

    /// Who is at the other end.
    pub(crate) fn peer(&self) -> crate::Peer {
        self.state.peer
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
    /// neither paused nor backpressured, a handshake is underway, or a
    /// lingering close discards.
    pub(crate) fn wants_read(&self) -> bool {
        match self.phase {
            Phase::Open => self.may_deliver(),
            Phase::Lingering { .. } | Phase::Handshaking { .. } => true,
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

    /// Opens the connection: starts the idle check and calls `on_open`; or,
    /// if the transport has a handshake to make first (TLS), begins it.
    pub(crate) fn open(&mut self, env: &mut Env<'_>, io: &mut impl Transport) {
        if io.handshaking() {
            return self.begin_handshake(env, io);
        }
        self.opened(env, io);
    }

    /// Starts the idle check and calls `on_open`.
    pub(super) fn opened(&mut self, env: &mut Env<'_>, io: &mut impl Transport) {
        self.last_active = env.now;
        self.arm_idle(env);
        self.call(env, io, |h, conn, _| h.on_open(conn));
        if self.draining && self.phase.takes_input() {
            self.call(env, io, |h, conn, _| h.on_drain(conn));
        }
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

    /// Reads once (or, lingering, discards once; shaking hands, reads the
    /// handshake) and runs the callbacks that follow. Returns what the read
    /// gave; `WouldBlock` also when reading is not wanted now.
    pub(crate) fn read(&mut self, env: &mut Env<'_>, io: &mut impl Transport) -> Read {
        match self.phase {
            Phase::Open if self.may_deliver() => {}
            Phase::Lingering { .. } => return self.discard(env, io),
            Phase::Handshaking { .. } => return self.handshake_read(env, io),
            _ => return Read::WouldBlock,
        }
        self.borrow_scratch(env);
        let read = io.read(&mut self.input, env.config.read_size);
        io.refresh(&mut env.now);
        match read {
            Ok(Read::Data { n, .. }) => {
                env.counters.reads += 1;
                env.counters.bytes_read += n as u64;
                self.last_active = env.now;
                self.deliver(env, io);
            }
            Ok(Read::Eof) => {
                env.counters.reads += 1;
                self.peer_closed(env, io, false);
            }
            Ok(Read::Truncated) => {
                env.counters.reads += 1;
                self.peer_closed(env, io, true);
            }
            Ok(Read::WouldBlock | Read::Again { .. }) => {
                if io.held() > 0 {
                    // The transport answered the peer (a TLS key update).
                    self.progress(env, io);
                }
            }
            Err(ref e) => self.read_failed(env, io, e),
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
            (TimerKind::Handshake, Phase::Handshaking { timer: Some(t) }) if *t == id => {
                debug!("{}: TLS handshake not complete in time", self.state.id);
                self.phase = Phase::Handshaking { timer: None };
                self.finish(env, CloseReason::HandshakeTimeout);
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

    /// The server began to drain: calls `on_drain` on an open connection
    /// (once), or notes it for `on_open` on one not yet open.
    pub(crate) fn drain(&mut self, env: &mut Env<'_>, io: &mut impl Transport) {
        if std::mem::replace(&mut self.draining, true) {
            return;
        }
        if self.phase.takes_input() && !self.state.is_closing() {
            self.call(env, io, |h, conn, _| h.on_drain(conn));
        }
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
            } else if self.phase.is_read_closed() {
                self.end_of_input(env, io);
            }
        }
    }
}
