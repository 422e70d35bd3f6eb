//! [`EventLoop`]: one `mio::Poll`, one thread, many connections.
//!
//! Each turn runs these phases, in this order:
//!
//! 1. **poll** — wait for readiness; the timeout is the next timer's deadline,
//!    or zero when connections were carried over from the last turn.
//! 2. **dispatch** — reads and writes on connections for each event. Events
//!    whose token names a closed connection are dropped and counted as stale.
//!    Then new connections, if the listener was ready, and the commands other
//!    threads and handlers sent through [`Remote`](crate::Remote) or
//!    [`LoopHandle`] (checked every turn; the waker only ends a poll early).
//! 3. **carried over** — connections that used their read budget last turn
//!    (or resumed reading) are read again, without waiting for a new event.
//! 4. **timers** — expired handler timers, idle checks, the end of an accept
//!    back-off or of a shutdown's grace period.
//! 5. **release** — slab entries of connections closed this turn are removed,
//!    dropping (and so closing) their sockets. Keys are reused only after this
//!    phase, never within the batch of events that may still name them.
//! 6. **publish** — counters are copied for [`LoopHandle::stats`].

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use log::{debug, trace, warn};
use mio::{Events, Poll, Token};
use slab::Slab;

use super::accept::Acceptor;
use super::connection::Connection;
use super::core::Core;
use super::handle::{Command, LoopHandle};
use super::remote::Remote;
use super::token::{self, LISTENER, WAKER};
use crate::Handler;
use crate::addr::Bind;

/// A turn longer than this (poll wait excluded) is logged as a warning: some
/// handler is doing slow work on the loop thread.
const SLOW_TURN: Duration = Duration::from_millis(100);

/// A single-threaded reactor: accepts connections on one listener and drives
/// a [`Handler`] per connection from readiness events.
///
/// A [`Server`](crate::Server) runs several of these, one per thread; on its
/// own, an `EventLoop` is a complete one-thread server.
///
/// # The loop's contract
///
/// * **Edge-triggered reads run until the socket is drained.** A read that
///   returns fewer bytes than it had room for drained the receive queue, so
///   the loop stops there instead of paying a system call to see
///   `WouldBlock`; a later arrival raises a new edge. When the peer's FIN has
///   been reported, reads go on to end of stream. A connection that used its
///   per-turn read budget is carried over and read next turn.
/// * **Writes go straight out.** What a callback writes is written when it
///   returns; only what the socket refuses is buffered, and WRITABLE interest
///   is registered only while something is buffered.
/// * **Memory per connection is bounded** by the write watermarks and the
///   input limit of the [`Config`](crate::Config).
/// * **Spurious and stale events are harmless.** A read or write that would
///   block simply ends; an event for a closed connection is dropped.
/// * **Every socket is closed exactly once**, whatever ends the connection,
///   and [`Handler::on_close`] is called exactly once for it.
/// * **Running out of fds is survived:** accepting backs off, 10 ms doubling to
///   1 s, while open connections keep being served.
///
/// # Examples
///
/// ```no_run
/// use evloop::{Config, Conn, EventLoop, Handler};
/// use bytes::BytesMut;
///
/// struct Echo;
/// impl Handler for Echo {
///     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
///         conn.write(input);
///         input.clear();
///     }
/// }
///
/// let addr = "127.0.0.1:7000".parse().unwrap();
/// EventLoop::bind(addr, Config::default(), || Echo)?.run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct EventLoop<F, H> {
    /// The OS poller.
    pub(super) poll: Poll,
    /// Readiness events of the current turn.
    pub(super) events: Events,
    /// Open connections, and connections finished this turn awaiting release.
    pub(super) conns: Slab<Connection<H>>,
    /// State shared by all connections.
    pub(super) core: Core,
    /// The listening socket; `None` for a loop fed by an acceptor thread, and
    /// once shutdown has begun.
    pub(super) acceptor: Option<Acceptor>,
    /// Where the listener listens, kept after the listener is closed.
    pub(super) local: Option<Bind>,
    /// Makes a handler for each new connection.
    pub(super) factory: F,
    /// Commands from other threads and handlers.
    pub(super) commands: Receiver<Command>,
    /// Set by shutdown: when the grace period ends.
    pub(super) shutdown_deadline: Option<Instant>,
    /// Shutdown has begun: no listener, no reading, connections closing.
    pub(super) shutting_down: bool,
    /// Accepting has stopped for good while connections are served on
    /// until they close (a drain, as when another process takes over the
    /// listener); the loop ends with its last connection.
    pub(super) draining: bool,
    /// When a slow turn was last logged, to log at most one a second.
    pub(super) last_slow_warning: Option<Instant>,
    /// Serves TLS on accepted connections, if set.
    #[cfg(feature = "tls")]
    pub(super) tls: Option<crate::tls::TlsAcceptor>,
}

impl<F, H> std::fmt::Debug for EventLoop<F, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("index", &self.core.door().index)
            .field("local", &self.local)
            .field("connections", &self.conns.len())
            .finish_non_exhaustive()
    }
}

impl<F, H> EventLoop<F, H>
where
    F: FnMut() -> H,
    H: Handler,
{
    /// The TCP address the loop listens on.
    ///
    /// # Panics
    ///
    /// Panics for a loop without a TCP listener of its own (one fed by a
    /// server's acceptor thread, or one on a Unix socket: see
    /// [`local`](Self::local)).
    #[track_caller]
    pub fn local_addr(&self) -> SocketAddr {
        self.local
            .as_ref()
            .and_then(Bind::tcp)
            .expect("this loop has no TCP listener of its own")
    }

    /// Where the loop listens, TCP or Unix; `None` for a loop without a
    /// listener of its own.
    pub fn local(&self) -> Option<&Bind> {
        self.local.as_ref()
    }

    /// A handle for other threads: stats and shutdown.
    pub fn handle(&self) -> LoopHandle {
        LoopHandle::new(
            Arc::clone(self.core.door()),
            self.local.as_ref().and_then(Bind::tcp),
        )
    }

    /// A handle that reaches this loop's connections by id from any thread.
    pub fn remote(&self) -> Remote {
        self.core.remote().clone()
    }

    /// Runs the loop on the current thread until it has no connection left,
    /// then returns, keeping the loop for later use: how a client drives
    /// its outbound connections to the end on the caller's thread. Returns
    /// at once if no connection is open.
    ///
    /// # Errors
    ///
    /// Fails only if polling itself fails, like [`run`](Self::run).
    pub fn run_until_idle(&mut self) -> io::Result<()> {
        self.core.door().bind_thread();
        while !self.conns.is_empty() {
            self.turn()?;
        }
        Ok(())
    }

    /// Runs the loop on the current thread until a shutdown completes.
    ///
    /// # Errors
    ///
    /// Fails only if polling itself fails, which means the poller is broken;
    /// errors of single connections close those connections and never end
    /// the loop.
    pub fn run(mut self) -> io::Result<()> {
        self.core.door().bind_thread();
        debug!("loop {} running", self.core.door().index);
        while !self.is_done() {
            self.turn()?;
        }
        debug!("loop {} stopped", self.core.door().index);
        Ok(())
    }

    /// One turn of the loop: the phases listed in the module docs.
    pub(super) fn turn(&mut self) -> io::Result<()> {
        self.poll()?;
        let started = Instant::now();
        self.core.now = started;
        self.dispatch();
        self.serve_carried();
        self.run_timers();
        self.release_closed();
        self.publish(started);
        Ok(())
    }

    /// Phase 1: waits for events, at most until the next deadline.
    fn poll(&mut self) -> io::Result<()> {
        let timeout = self.poll_timeout();
        match self.poll.poll(&mut self.events, timeout) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            result => result,
        }
    }

    /// Zero with work carried over or commands pending, else the time to the
    /// nearest deadline.
    fn poll_timeout(&mut self) -> Option<Duration> {
        if self.core.has_carried() || self.core.door().is_wake_pending() {
            return Some(Duration::ZERO);
        }
        let accept = self.acceptor.as_ref().and_then(Acceptor::resume_at);
        let deadline = [self.core.timers.next_deadline(), accept, self.shutdown_deadline]
            .into_iter()
            .flatten()
            .min()?;
        Some(deadline.saturating_duration_since(Instant::now()))
    }

    /// Phase 2: connection events, then new connections and commands.
    fn dispatch(&mut self) {
        let mut listener_ready = false;
        for event in self.events.iter() {
            self.core.counters.events += 1;
            match event.token() {
                WAKER => self.core.counters.wakeups += 1,
                LISTENER => listener_ready = true,
                token => match live(&mut self.conns, token) {
                    Some(conn) => conn.ready(
                        &mut self.core,
                        event.is_readable(),
                        event.is_writable(),
                        event.is_read_closed(),
                        event.is_error(),
                    ),
                    None => self.core.counters.stale_events += 1,
                },
            }
        }
        if listener_ready {
            self.accept();
        }
        self.run_commands();
    }

    /// Phase 3: reads connections carried over from the last turn.
    fn serve_carried(&mut self) {
        let carried = self.core.take_carried();
        for &token in &carried {
            if let Some(conn) = live(&mut self.conns, token) {
                if conn.carried {
                    conn.serve_carried(&mut self.core);
                }
            }
        }
        self.core.return_carried(carried);
    }

    /// Phase 4: expired timers, accept back-off, shutdown grace.
    fn run_timers(&mut self) {
        let now = self.core.now;
        while let Some((id, owner)) = self.core.timers.pop_expired(now) {
            match live(&mut self.conns, token::of(owner.conn)) {
                Some(conn) => conn.timer(&mut self.core, id, owner.kind),
                None => trace!("timer {id:?} outlived its connection"),
            }
        }
        let resumed = self
            .acceptor
            .as_mut()
            .is_some_and(|a| a.resume_if_due(self.core.registry(), now));
        if resumed {
            self.accept();
        }
        if self.shutdown_deadline.is_some_and(|d| d <= now) {
            for (_, conn) in self.conns.iter_mut() {
                conn.force_close(&mut self.core);
            }
        }
    }

    /// Phase 5: removes finished connections, closing their sockets and
    /// giving back their slots.
    fn release_closed(&mut self) {
        for token in self.core.drain_closed() {
            let (key, _) = token::decode(token);
            let conn = self.conns.remove(key);
            debug_assert!(conn.is_finished() && conn.token() == token);
        }
    }

    /// Phase 6: publishes counters and notes a slow turn.
    fn publish(&mut self, started: Instant) {
        let took = started.elapsed();
        let counters = &mut self.core.counters;
        counters.open = self.conns.len() as u64;
        counters.turns += 1;
        counters.max_turn_micros = counters.max_turn_micros.max(took.as_micros() as u64);
        if took > SLOW_TURN
            && self
                .last_slow_warning
                .is_none_or(|t| t.elapsed() > Duration::from_secs(1))
        {
            warn!(
                "loop {}: a turn took {took:?}; a handler is blocking its loop",
                self.core.door().index
            );
            self.last_slow_warning = Some(Instant::now());
        }
        self.core.door().stats.publish(&self.core.counters);
    }
}

/// The connection `token` names, if it is open and of the same generation.
pub(super) fn live<H: Handler>(conns: &mut Slab<Connection<H>>, token: Token) -> Option<&mut Connection<H>> {
    let (key, _) = token::decode(token);
    conns
        .get_mut(key)
        .filter(|c| c.token() == token && !c.is_finished())
}
