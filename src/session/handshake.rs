//! The transport's handshake (TLS) in a [`Session`]: the phase between
//! accepting (or connecting) and `on_open`, bounded by a timer, and how a
//! failed read ends the connection, a TLS failure with our alert sent.
//!
//! A plain socket has no handshake ([`Transport::handshaking`] is false), so
//! nothing here runs for it.

use std::io;

use log::{debug, trace};

use super::machine::Session;
use super::phase::Phase;
use super::transport::{Env, Read, Transport};
use crate::buf::OutputQueue;
use crate::conn::{End, TimerKind};
use crate::timer::deadline;
use crate::{CloseReason, Handler};

impl<H: Handler> Session<H> {
    /// Enters the handshake phase, with its timer, and writes what the
    /// transport has to say first (a client's hello).
    #[cold]
    pub(super) fn begin_handshake(&mut self, env: &mut Env<'_>, io: &mut impl Transport) {
        let until = deadline(env.now, env.config.handshake_timeout);
        let timer = env.timers.insert(until, self.owner(TimerKind::Handshake));
        self.phase = Phase::Handshaking { timer: Some(timer) };
        trace!("{}: TLS handshake begins", self.state.id);
        self.flush_handshake(env, io);
    }

    /// Reads handshake records once; when the handshake completes, opens
    /// the connection and offers the input that came with it.
    #[cold]
    pub(super) fn handshake_read(&mut self, env: &mut Env<'_>, io: &mut impl Transport) -> Read {
        self.borrow_scratch(env);
        let read = io.read(&mut self.input, env.config.read_size);
        io.refresh(&mut env.now);
        match read {
            Ok(Read::Data { n, .. }) => {
                env.counters.reads += 1;
                env.counters.bytes_read += n as u64;
            }
            Ok(Read::Eof) => self.finish(env, CloseReason::PeerClosed),
            Ok(Read::Truncated) => {
                debug!("{}: end of stream during the TLS handshake", self.state.id);
                self.finish(env, CloseReason::Truncated);
            }
            Ok(Read::Again { .. } | Read::WouldBlock) => {}
            Err(ref e) => self.read_failed(env, io, e),
        }
        if matches!(self.phase, Phase::Handshaking { .. }) {
            if io.handshaking() {
                self.flush_handshake(env, io);
            } else {
                self.handshaken(env, io);
            }
        }
        self.return_scratch(env);
        read.unwrap_or(Read::WouldBlock)
    }

    /// The handshake completed: the connection opens, `on_open` runs, and
    /// input that arrived with the handshake's last flight is offered.
    fn handshaken(&mut self, env: &mut Env<'_>, io: &mut impl Transport) {
        if let Phase::Handshaking { timer } = &mut self.phase {
            if let Some(id) = timer.take() {
                env.timers.cancel(id);
            }
        }
        self.phase = Phase::Open;
        #[cfg(feature = "tls")]
        {
            self.state.tls = io.tls_info().map(Box::new);
        }
        debug!("{}: TLS handshake complete", self.state.id);
        self.opened(env, io);
        if !self.input.is_empty() && self.may_deliver() {
            self.deliver(env, io);
        }
    }

    /// Writes the handshake records the transport holds, asking for
    /// WRITABLE while some wait. The handler's own output waits for
    /// `on_open`.
    pub(super) fn flush_handshake(&mut self, env: &mut Env<'_>, io: &mut impl Transport) {
        let mut none = OutputQueue::default();
        while io.held() > 0 {
            let wrote = io.write(&mut none);
            io.refresh(&mut env.now);
            match wrote {
                Ok(_) => env.counters.writes += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return self.finish(env, CloseReason::from_io(&e)),
            }
        }
        if let Err(e) = io.want_writable(io.held() > 0) {
            self.finish(env, CloseReason::from_io(&e));
        }
    }

    /// A read failed. A socket error ends the connection at once; a TLS
    /// failure whose alert the transport holds closes gracefully instead:
    /// the handler's output is dropped (nothing can be encrypted any more),
    /// the alert is written, then the connection closes, lingering if the
    /// peer is still sending, with [`CloseReason::Tls`].
    #[cold]
    pub(super) fn read_failed(&mut self, env: &mut Env<'_>, io: &mut impl Transport, err: &io::Error) {
        let reason = CloseReason::from_io(err);
        if reason != CloseReason::Tls || io.held() == 0 {
            if reason == CloseReason::Tls {
                debug!("{}: {err}", self.state.id);
            }
            return self.finish(env, reason);
        }
        debug!("{}: {err}; sending our alert", self.state.id);
        if let Phase::Handshaking { timer } = &mut self.phase {
            if let Some(id) = timer.take() {
                env.timers.cancel(id);
            }
        }
        self.state.out.clear();
        self.input.clear();
        if self.idle_timer.is_none() {
            // Bounds the alert's flush when the handshake timer was the
            // only one running.
            self.last_active = env.now;
            self.arm_idle(env);
        }
        self.state.end = Some(End::Close(CloseReason::Tls));
        self.phase = Phase::Closing {
            reason: CloseReason::Tls,
            peer_done: false,
        };
        self.progress(env, io);
    }
}
