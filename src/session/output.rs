//! Callbacks and the output side of a [`Session`]: running a callback and
//! carrying out what the handler asked, writing, the watermarks, how a close
//! proceeds, the idle check, and the one place a connection ends.

use std::panic::{self, AssertUnwindSafe};

use bytes::BytesMut;
use log::{debug, error, trace};

use super::machine::{Deferred, LINGER_BYTES, LINGER_TIME, Session};
use super::phase::{Phase, WriteHalf};
use super::transport::{Env, Transport};
use crate::conn::{End, TimerKind, TimerOwner};
use crate::timer::{TimerId, deadline};
use crate::{CloseReason, Conn, Handler};

impl<H: Handler> Session<H> {
    /// Calls a handler callback, catching a panic, then carries out what the
    /// handler asked for.
    pub(super) fn call(
        &mut self,
        env: &mut Env<'_>,
        io: &mut impl Transport,
        f: impl FnOnce(&mut H, &mut Conn<'_>, &mut BytesMut),
    ) {
        if self.invoke(env, io, f) {
            self.apply(env, io);
        }
    }

    /// Runs a handler callback, catching a panic (which resets the
    /// connection), and notes a changed idle timeout or a resumed read.
    /// Returns false if the connection is finished.
    pub(super) fn invoke(
        &mut self,
        env: &mut Env<'_>,
        io: &mut impl Transport,
        f: impl FnOnce(&mut H, &mut Conn<'_>, &mut BytesMut),
    ) -> bool {
        if self.is_finished() {
            return false;
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
            self.reset(env, io, CloseReason::Panicked);
            return false;
        }
        if self.state.idle_timeout != idle {
            self.rearm_idle(env);
        }
        if paused && !self.state.read_paused {
            // Edges that came while paused were not acted on.
            self.deferred.redeliver = true;
            self.deferred.reread = true;
        }
        true
    }

    /// Carries out the handler's requests, then output moves on.
    pub(super) fn apply(&mut self, env: &mut Env<'_>, io: &mut impl Transport) {
        self.requests(env, io);
        self.progress(env, io);
    }

    /// Carries out an abort at once, and a close by moving to its phase.
    pub(super) fn requests(&mut self, env: &mut Env<'_>, io: &mut impl Transport) {
        match (&self.state.end, &self.phase) {
            (Some(End::Abort), _) => self.reset(env, io, CloseReason::Aborted),
            (Some(End::Close(reason)), Phase::Connecting { .. } | Phase::Handshaking { .. }) => {
                // Nothing of the handler's was sent yet; nothing needs flushing.
                let reason = reason.clone();
                self.finish(env, reason);
            }
            (Some(End::Close(reason)), Phase::Open | Phase::ReadClosed { .. }) => {
                let peer_done = self.phase.is_read_closed();
                self.phase = Phase::Closing {
                    reason: reason.clone(),
                    peer_done,
                };
            }
            _ => {}
        }
    }

    /// Writes queued output, then moves a flushed connection on: a close
    /// proceeds (after the transport's own end of stream, a TLS
    /// `close_notify`), a requested shutdown of the write half happens;
    /// write interest and the watermarks follow what is left, the
    /// transport's held bytes counted with the queue.
    pub(super) fn progress(&mut self, env: &mut Env<'_>, io: &mut impl Transport) {
        if !matches!(
            self.phase,
            Phase::Open | Phase::ReadClosed { .. } | Phase::Closing { .. }
        ) {
            if matches!(self.phase, Phase::Handshaking { .. }) {
                self.flush_handshake(env, io);
            }
            return;
        }
        let queued = self.state.out.len() + io.held();
        if queued > 0 && !self.flush(env, io) {
            return;
        }
        let mut pending = self.state.out.len() + io.held();
        if pending == 0 && self.ends_output() && io.end_output() {
            if !self.flush(env, io) {
                return;
            }
            pending = io.held();
        }
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

    /// True once output is to end: a graceful close, or a requested
    /// shutdown of the write half not yet done.
    fn ends_output(&self) -> bool {
        matches!(self.phase, Phase::Closing { .. })
            || (self.state.shutdown_write && self.write == WriteHalf::Open)
    }

    /// Writes until the queue and what the transport holds are empty or the
    /// socket is full. Returns false if the connection failed and finished.
    pub(super) fn flush(&mut self, env: &mut Env<'_>, io: &mut impl Transport) -> bool {
        while !self.state.out.is_empty() || io.held() > 0 {
            let wrote = io.write(&mut self.state.out);
            io.refresh(&mut env.now);
            match wrote {
                Ok(0) if io.held() == 0 && !self.state.out.is_empty() => {
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
    pub(super) fn watermarks(&mut self, env: &mut Env<'_>, queued: usize, pending: usize) {
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
    pub(super) fn close_or_linger(
        &mut self,
        env: &mut Env<'_>,
        io: &mut impl Transport,
        reason: CloseReason,
        peer_done: bool,
    ) {
        // A TLS failure lingers too: the peer that sent something other
        // than TLS (a plaintext request) reads our alert, not a reset.
        let lingers = matches!(
            reason,
            CloseReason::Closed | CloseReason::InputLimit | CloseReason::Tls
        );
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

    /// Shuts down the write half: the peer reads end of stream.
    pub(super) fn shut_write(&mut self, io: &mut impl Transport) {
        self.write = WriteHalf::Shut;
        if let Err(e) = io.shutdown_write() {
            debug!("{}: shutdown(write) failed: {e}", self.state.id);
        }
    }

    /// The owner record of one of this connection's timers.
    pub(super) fn owner(&self, kind: TimerKind) -> TimerOwner {
        TimerOwner {
            conn: self.state.id,
            kind,
        }
    }

    /// Starts the idle check for the current timeout.
    pub(super) fn arm_idle(&mut self, env: &mut Env<'_>) {
        if let Some(timeout) = self.state.idle_timeout {
            let at = deadline(self.last_active, timeout);
            self.idle_timer = Some(env.timers.insert(at, self.owner(TimerKind::Idle)));
        }
    }

    /// Restarts the idle check after the timeout changed.
    pub(super) fn rearm_idle(&mut self, env: &mut Env<'_>) {
        if let Some(id) = self.idle_timer.take() {
            env.timers.cancel(id);
        }
        if !matches!(
            self.phase,
            Phase::Lingering { .. } | Phase::Connecting { .. } | Phase::Handshaking { .. }
        ) {
            self.arm_idle(env);
        }
    }

    /// The idle check fired: close if idle long enough, else check later.
    pub(super) fn idle_check(&mut self, env: &mut Env<'_>, id: TimerId) {
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
    pub(super) fn reset(&mut self, env: &mut Env<'_>, io: &mut impl Transport, reason: CloseReason) {
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
            Phase::Connecting { timer } | Phase::Handshaking { timer } | Phase::Lingering { timer, .. } => {
                timer.take()
            }
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
