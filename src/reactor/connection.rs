//! One connection on a reactor: its socket, its [`Session`], and the
//! readiness-driven I/O that feeds the session.
//!
//! The session decides everything a connection does; this file only moves
//! bytes with non-blocking calls when the poller says they can move:
//!
//! * **read** — on a readable event, reads until a short read drains the
//!   socket (or, once the poller reported the peer's FIN, until end of
//!   stream), or until the per-turn read budget is spent; then the
//!   connection is carried to the next turn.
//! * **write** — the session writes what a callback queued as soon as it
//!   returns; WRITABLE interest is registered only while output waits.
//! * **settle** — after every event, a finished connection is deregistered
//!   and queued for release at the end of the turn (dropping the socket
//!   closes its fd); one owing deferred work is carried to the next turn.
//!
//! A TLS connection lends the session a [`TlsLayer`](crate::tls) over the
//! same socket instead of the socket itself; the session then reads and
//! writes plaintext, and this file does not change. A plain connection pays
//! one pointer check per call into the session.

use std::net::Shutdown;
use std::os::fd::{AsFd, AsRawFd};
use std::time::Duration;

use log::trace;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use socket2::SockRef;

use super::core::Core;
use super::handle::Task;
use super::io::{self, NoSigPipe};
use super::slot::Slot;
use crate::buf::OutputQueue;
use crate::conn::TimerKind;
use crate::session::{Read, Session, Transport};
use crate::timer::TimerId;
#[cfg(feature = "tls")]
use crate::tls::{TlsLayer, TlsState};
use crate::{CloseReason, Handler};

/// A connection owned by a reactor loop.
#[derive(Debug)]
pub(crate) struct Connection<H> {
    /// The socket, TCP or Unix: the driver only moves bytes through its fd,
    /// so one type serves both at no cost. Dropped (fd closed) only when the
    /// slab entry is removed.
    stream: socket2::Socket,
    /// The connection's policy and state.
    session: Session<H>,
    /// TLS over the socket, if the connection speaks it.
    #[cfg(feature = "tls")]
    tls: Option<Box<TlsState>>,
    /// Its place in the server (cap, load, live id), given back on drop.
    _slot: Slot,
    /// This connection's token: slab key and generation.
    token: Token,
    /// The socket is registered for WRITABLE (held only while output waits).
    writable_interest: bool,
    /// The poller reported the peer's FIN (or a hang-up); reads then run to
    /// `WouldBlock` or end of stream instead of stopping at a short read,
    /// because no further edge will announce the end of stream.
    fin_seen: bool,
    /// Queued on the loop's carry-over list, to be served next turn.
    pub(crate) carried: bool,
    /// The session finished and the socket was deregistered; the entry
    /// waits for release at the end of the turn.
    released: bool,
}

/// The reactor's [`Transport`]: non-blocking calls on a registered socket.
struct Socket<'a> {
    /// The socket.
    stream: &'a mut socket2::Socket,
    /// The loop's registry, for WRITABLE interest.
    registry: &'a Registry,
    /// The connection's token.
    token: Token,
    /// Whether WRITABLE interest is registered.
    writable_interest: &'a mut bool,
}

impl Transport for Socket<'_> {
    fn read(&mut self, input: &mut bytes::BytesMut, min_space: usize) -> std::io::Result<Read> {
        io::read_into(self.stream.as_fd(), input, min_space)
    }

    #[cfg(feature = "tls")]
    fn read_slice(&mut self, buf: &mut [u8]) -> std::io::Result<Read> {
        io::read_slice(self.stream.as_fd(), buf)
    }

    fn write(&mut self, out: &mut OutputQueue) -> std::io::Result<usize> {
        loop {
            match out.write_to(&mut NoSigPipe(self.stream.as_fd())) {
                Err(e) if io::interrupted(&e) => continue,
                result => return result,
            }
        }
    }

    fn shutdown_write(&mut self) -> std::io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }

    fn set_reset(&mut self) {
        let _ = self.stream.set_linger(Some(Duration::ZERO));
    }

    fn has_unread(&mut self) -> bool {
        io::has_unread(SockRef::from(&*self.stream))
    }

    #[inline]
    fn want_writable(&mut self, want: bool) -> std::io::Result<()> {
        if want == *self.writable_interest {
            return Ok(());
        }
        self.reregister(want)
    }
}

impl Socket<'_> {
    /// Registers or drops WRITABLE interest: rare, only when output starts
    /// or stops waiting for the socket.
    #[cold]
    fn reregister(&mut self, writable: bool) -> std::io::Result<()> {
        let interest = if writable {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let fd = self.stream.as_raw_fd();
        self.registry
            .reregister(&mut SourceFd(&fd), self.token, interest)?;
        *self.writable_interest = writable;
        Ok(())
    }
}

/// Calls into a connection's session with the loop's environment and the
/// connection's transport: its socket, or the TLS layer over it. `$f` is a
/// closure, expanded once per transport so that each is typed for its own.
macro_rules! with {
    ($conn:expr, $core:expr, $f:expr) => {{
        let conn = &mut *$conn;
        let (mut env, registry) = $core.split();
        let mut socket = Socket {
            stream: &mut conn.stream,
            registry,
            token: conn.token,
            writable_interest: &mut conn.writable_interest,
        };
        #[cfg(feature = "tls")]
        match conn.tls.as_deref_mut() {
            None => call(&mut conn.session, &mut env, &mut socket, $f),
            Some(tls) => call(&mut conn.session, &mut env, &mut TlsLayer::new(socket, tls), $f),
        }
        #[cfg(not(feature = "tls"))]
        call(&mut conn.session, &mut env, &mut socket, $f)
    }};
}

/// Calls `f` with the session, environment and transport, so that the
/// closure's parameter types come from the call.
#[inline(always)]
fn call<S, E, T, R>(session: S, env: E, io: T, f: impl FnOnce(S, E, T) -> R) -> R {
    f(session, env, io)
}

impl<H: Handler> Connection<H> {
    /// Wraps a registered socket and its session; `connecting` if the
    /// socket is registered for WRITABLE to learn how its handshake ends.
    pub(crate) fn new(
        stream: socket2::Socket,
        session: Session<H>,
        #[cfg(feature = "tls")] tls: Option<Box<TlsState>>,
        slot: Slot,
        token: Token,
    ) -> Self {
        let connecting = session.is_connecting();
        Connection {
            stream,
            session,
            #[cfg(feature = "tls")]
            tls,
            _slot: slot,
            token,
            writable_interest: connecting,
            fin_seen: false,
            carried: false,
            released: false,
        }
    }

    /// This connection's token.
    pub(crate) fn token(&self) -> Token {
        self.token
    }

    /// True while the peer's bytes wait unread in the kernel.
    #[cfg(test)]
    pub(crate) fn has_unread(&self) -> bool {
        io::has_unread(SockRef::from(&self.stream))
    }

    /// True once the session finished; no event reaches it any more.
    pub(crate) fn is_finished(&self) -> bool {
        self.session.is_finished()
    }

    /// Calls `on_open`.
    pub(crate) fn open(&mut self, core: &mut Core) {
        with!(self, core, |s, env, io| s.open(env, io));
        self.settle(core);
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
        if self.session.is_connecting() {
            self.handshake(core);
        } else if error {
            let err = self.stream.take_error().ok().flatten();
            let reason = err.as_ref().map_or(CloseReason::Reset, CloseReason::from_io);
            with!(self, core, |s, env, _| s.failed(env, reason));
        } else {
            self.fin_seen |= read_closed;
            if readable || read_closed {
                self.carried = false;
                self.read(core);
            }
            if writable {
                with!(self, core, |s, env, io| s.writable(env, io));
            }
        }
        self.settle(core);
    }

    /// Settles the handshake of an outbound connection after an event:
    /// connected, failed, or (a spurious event) still underway.
    fn handshake(&mut self, core: &mut Core) {
        let failure = match self.stream.take_error().unwrap_or_else(Some) {
            Some(err) => Some(err),
            None => match self.stream.peer_addr() {
                Ok(_) => None,
                Err(e) if e.kind() == std::io::ErrorKind::NotConnected => return,
                Err(e) => Some(e),
            },
        };
        match failure {
            Some(err) => with!(self, core, |s, env, _| s.finish(env, connect_failure(&err))),
            None => with!(self, core, |s, env, io| s.connected(env, io)),
        }
    }

    /// Reads until the socket is drained, the budget is spent (then the
    /// connection is carried to the next turn), or the session stops
    /// wanting input.
    fn read(&mut self, core: &mut Core) {
        let (mut budget, until_eof) = (core.config().read_budget, self.fin_seen);
        let spent = with!(self, core, |s, env, io| {
            while s.wants_read() {
                match s.read(env, io) {
                    Read::Data { n, short } | Read::Again { n, short } => {
                        budget = budget.saturating_sub(n);
                        if short && !until_eof {
                            return false;
                        }
                        if budget == 0 {
                            return true;
                        }
                    }
                    Read::Eof | Read::Truncated | Read::WouldBlock => return false,
                }
            }
            false
        });
        if spent {
            self.carry(core);
        }
    }

    /// Serves a connection from the carry-over list: deferred work, then
    /// reading.
    pub(crate) fn serve_carried(&mut self, core: &mut Core) {
        self.carried = false;
        with!(self, core, |s, env, io| s.serve_deferred(env, io));
        self.read(core);
        self.settle(core);
    }

    /// Runs one expired timer of this connection.
    pub(crate) fn timer(&mut self, core: &mut Core, id: TimerId, kind: TimerKind) {
        with!(self, core, |s, env, io| s.timer(env, io, id, kind));
        self.settle(core);
    }

    /// Begins a graceful close for shutdown: flush, then close.
    pub(crate) fn shutdown(&mut self, core: &mut Core) {
        with!(self, core, |s, env, io| s.shutdown(env, io));
        self.settle(core);
    }

    /// Tells the session that the server began to drain (`on_drain`).
    pub(crate) fn drain(&mut self, core: &mut Core) {
        with!(self, core, |s, env, io| s.drain(env, io));
        self.settle(core);
    }

    /// Closes now, for the end of a shutdown's grace period.
    pub(crate) fn force_close(&mut self, core: &mut Core) {
        with!(self, core, |s, env, io| s.force_close(env, io));
        self.settle(core);
    }

    /// Runs a closure sent through [`Remote`](crate::Remote) as a callback.
    pub(crate) fn run_task(&mut self, core: &mut Core, task: Task) {
        with!(self, core, |s, env, io| s.run_task(env, io, task));
        self.settle(core);
    }

    /// After an event: a finished connection is deregistered and queued for
    /// release; one owing deferred work is carried to the next turn.
    fn settle(&mut self, core: &mut Core) {
        if self.session.is_finished() {
            if !self.released {
                self.released = true;
                core.retire(&self.stream, self.token);
            }
        } else if self.session.has_deferred() {
            self.carry(core);
        }
    }

    /// Puts the connection on the list served at the next turn.
    fn carry(&mut self, core: &mut Core) {
        if !self.carried {
            self.carried = true;
            core.carry(self.token);
            trace!("{}: carried to the next turn", self.session.id());
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
