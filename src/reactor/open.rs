//! How connections come to a loop: accepted from its own listener, adopted
//! from the server's acceptor thread, or dialled. Each path takes a
//! [`Slot`] first; a path that fails drops it, which gives it back.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use log::{debug, trace, warn};
use mio::Interest;
use mio::unix::SourceFd;
use socket2::{SockRef, Socket};

use super::accept::Accepted;
use super::connection::Connection;
use super::event_loop::EventLoop;
use super::slot::Slot;
use super::token;
use crate::addr::{Peer, UnixAddr};
use crate::conn::{ConnId, ConnState};
use crate::session::Session;
#[cfg(feature = "tls")]
use crate::tls::{TlsAcceptor, TlsState};
use crate::{Handler, listener};

/// A new connection's TLS state, if it speaks TLS.
#[cfg(feature = "tls")]
type Tls = Option<Box<TlsState>>;
/// Without the `tls` feature, nothing.
#[cfg(not(feature = "tls"))]
type Tls = ();

/// How a new connection starts.
enum Start {
    /// Accepted: open at once.
    Accepted,
    /// Dialled: wait for the handshake until the deadline.
    Connecting(Instant),
}

impl<F, H> EventLoop<F, H>
where
    F: FnMut() -> H,
    H: Handler,
{
    /// Opens an outbound TCP connection to `addr`, driven by a handler from
    /// the loop's factory like an accepted one. Usable before the loop runs;
    /// while it runs, [`LoopHandle::connect`](crate::LoopHandle::connect)
    /// asks for the same.
    ///
    /// The connect is non-blocking: this returns at once, and the handshake
    /// completes as the loop turns. Then the handler's
    /// [`on_open`](Handler::on_open) runs, meaning *connected*. A connection
    /// that fails never sees `on_open`, but its
    /// [`on_close`](Handler::on_close) still runs, once, with
    /// [`CloseReason::ConnectRefused`](crate::CloseReason::ConnectRefused),
    /// [`CloseReason::ConnectTimeout`](crate::CloseReason::ConnectTimeout) when `timeout` passes first, or the
    /// socket error. The socket is closed on every path.
    ///
    /// # Errors
    ///
    /// Fails, making no handler, if the connection cannot even be started:
    /// the loop is shutting down, the connection limit is reached, or the
    /// socket cannot be created, connected or registered (no fds, an address
    /// the OS rejects at once).
    pub fn connect(&mut self, addr: SocketAddr, timeout: Duration) -> io::Result<ConnId> {
        #[cfg(feature = "tls")]
        return self.dial(addr, timeout, None);
        #[cfg(not(feature = "tls"))]
        self.dial(addr, timeout, ())
    }

    /// Opens an outbound connection to the Unix domain socket `addr` (a
    /// path, or an abstract name), driven by a handler from the loop's
    /// factory; otherwise as [`connect`](Self::connect). The handler's
    /// [`Conn::peer`](crate::Conn::peer) carries the server's credentials.
    ///
    /// A Unix connect completes (or fails) at once, so `timeout` only
    /// bounds the wait for the loop's first turn.
    ///
    /// # Errors
    ///
    /// As [`connect`](Self::connect); also, since the OS answers at once,
    /// a refused connect, a missing socket file, or a server whose backlog
    /// is full (`WouldBlock`), each error naming `addr`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use evloop::bytes::BytesMut;
    /// use evloop::{Config, Conn, EventLoop, Handler};
    ///
    /// struct Ping;
    /// impl Handler for Ping {
    ///     fn on_open(&mut self, conn: &mut Conn<'_>) {
    ///         conn.write(b"ping\n");
    ///     }
    ///     fn on_data(&mut self, conn: &mut Conn<'_>, _input: &mut BytesMut) {
    ///         conn.close();
    ///     }
    /// }
    ///
    /// let mut client = EventLoop::new(Config::default(), || Ping)?;
    /// client.connect_unix("/run/echo.sock", Duration::from_secs(1))?;
    /// client.run_until_idle()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_unix(&mut self, addr: impl Into<UnixAddr>, timeout: Duration) -> io::Result<ConnId> {
        let addr = addr.into();
        let slot = self.dial_slot()?;
        let stream = listener::dial_unix(&addr)?;
        let peer = listener::unix_peer(stream.as_fd());
        #[cfg(feature = "tls")]
        let tls = None;
        #[cfg(not(feature = "tls"))]
        let tls = ();
        let until = self.deadline(timeout);
        let id = self.insert(stream, peer, slot, Start::Connecting(until), tls)?;
        trace!("{id}: connecting to {addr}");
        Ok(id)
    }

    /// A place for an outbound connection, unless the loop is shutting
    /// down or at the connection limit.
    fn dial_slot(&mut self) -> io::Result<Slot> {
        if self.shutting_down {
            return Err(io::Error::other("the loop is shutting down"));
        }
        self.core
            .take_slot()
            .ok_or_else(|| io::Error::other("at the connection limit"))
    }

    /// The connect deadline `timeout` from now.
    fn deadline(&mut self, timeout: Duration) -> Instant {
        self.core.now = Instant::now();
        crate::timer::deadline(self.core.now, timeout)
    }

    /// Serves TLS with `acceptor` on every connection accepted from now on
    /// (the public face is [`EventLoop::tls`], in `src/tls/`).
    #[cfg(feature = "tls")]
    pub(crate) fn set_tls(&mut self, acceptor: TlsAcceptor) {
        self.tls = Some(acceptor);
    }

    /// Starts an outbound connection, speaking TLS over it if `tls` says so.
    pub(crate) fn dial(&mut self, addr: SocketAddr, timeout: Duration, tls: Tls) -> io::Result<ConnId> {
        let slot = self.dial_slot()?;
        let until = self.deadline(timeout);
        let stream = super::io::dial(addr, self.core.config())?;
        let id = self.insert(stream, Peer::Tcp(addr), slot, Start::Connecting(until), tls)?;
        trace!("{id}: connecting to {addr}");
        Ok(id)
    }

    /// Accepts every waiting connection, within the connection cap.
    pub(super) fn accept(&mut self) {
        loop {
            let Some(acceptor) = self.acceptor.as_mut() else {
                return;
            };
            match acceptor.accept(self.core.registry(), self.core.now) {
                Accepted::Stream(stream, peer) => match self.core.take_slot() {
                    Some(slot) => self.open(stream, peer, slot),
                    None => {
                        self.core.counters.rejected += 1;
                        debug!("at the connection limit; closing {peer} at once");
                    }
                },
                Accepted::Done => return,
                Accepted::BackedOff => {
                    self.core.counters.accept_backoffs += 1;
                    return;
                }
            }
        }
    }

    /// Serves a socket handed over by the server's acceptor thread, which
    /// already took its slot on this loop.
    pub(super) fn adopt(&mut self, stream: Socket, peer: Peer, slot: Slot) {
        if !self.shutting_down {
            self.open(stream, peer, slot);
        }
    }

    /// Opens an accepted connection; on failure the socket is closed and
    /// the slot given back.
    fn open(&mut self, stream: Socket, peer: Peer, slot: Slot) {
        let inserted = self
            .server_tls()
            .and_then(|tls| self.insert(stream, peer, slot, Start::Accepted, tls));
        match inserted {
            Ok(id) => {
                trace!("{id}: accepted from {peer}");
                self.core.counters.accepted += 1;
            }
            Err(e) => warn!("cannot serve a connection from {peer}: {e}"),
        }
    }

    /// The TLS state of a connection accepted now: the server side, with the
    /// acceptor's current config, if this loop serves TLS.
    fn server_tls(&self) -> io::Result<Tls> {
        #[cfg(feature = "tls")]
        return match &self.tls {
            None => Ok(None),
            Some(acceptor) => match acceptor.accept() {
                Ok(conn) => Ok(Some(TlsState::new(conn, None))),
                Err(e) => Err(io::Error::other(format!("TLS server side: {e}"))),
            },
        };
        #[cfg(not(feature = "tls"))]
        Ok(())
    }

    /// Registers a socket under a fresh token, sets the config's socket
    /// options, inserts its connection with a handler from the factory and
    /// starts it. On failure no handler is made, and the socket and slot
    /// are dropped.
    fn insert(
        &mut self,
        stream: Socket,
        peer: Peer,
        mut slot: Slot,
        start: Start,
        tls: Tls,
    ) -> io::Result<ConnId> {
        let entry = self.conns.vacant_entry();
        if entry.key() > token::MAX_KEY {
            return Err(io::Error::other("too many connections on one loop"));
        }
        let (key, generation) = (entry.key(), self.core.next_generation());
        let token = token::encode(key, generation);
        let interest = match start {
            Start::Accepted => Interest::READABLE,
            Start::Connecting(_) => Interest::READABLE | Interest::WRITABLE,
        };
        let fd = stream.as_raw_fd();
        self.core
            .registry()
            .register(&mut SourceFd(&fd), token, interest)?;
        if matches!(peer, Peer::Tcp(_)) {
            self.core.config().apply_socket_options(SockRef::from(&stream));
        }
        slot.publish(token);
        let id = ConnId::new(self.core.door().index, key, generation);
        let state = ConnState::new(id, peer, self.core.config().idle_timeout);
        let handler = (self.factory)();
        let session = match start {
            Start::Accepted => Session::new(handler, state, self.core.now),
            Start::Connecting(until) => Session::connecting(handler, state, &mut self.core.split().0, until),
        };
        #[cfg(feature = "tls")]
        let conn = entry.insert(Connection::new(stream, session, tls, slot, token));
        #[cfg(not(feature = "tls"))]
        let conn = {
            let () = tls;
            entry.insert(Connection::new(stream, session, slot, token))
        };
        if matches!(start, Start::Accepted) {
            conn.open(&mut self.core);
        }
        if self.draining {
            // Opened after the drain began (handed over by the acceptor
            // thread late, or dialled): told as the others were.
            conn.drain(&mut self.core);
        }
        Ok(id)
    }
}
