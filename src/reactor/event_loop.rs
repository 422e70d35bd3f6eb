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

use bytes::BytesMut;
use log::{debug, trace, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token};
use slab::Slab;
use socket2::SockRef;

use super::accept::{self, Accepted, Acceptor, ConnLimit, Episodes};
use super::connection::Connection;
use super::handle::{Command, Door, LoopHandle};
use super::remote::Remote;
use super::token::{self, Generations, LISTENER, WAKER};
use crate::conn::{ConnId, ConnState, TimerOwner};
use crate::stats::Counters;
use crate::timer::TimerQueue;
use crate::{Config, Handler};

/// A turn longer than this (poll wait excluded) is logged as a warning: some
/// handler is doing slow work on the loop thread.
const SLOW_TURN: Duration = Duration::from_millis(100);

/// Everything a connection may touch besides itself, kept apart from the slab
/// so a connection and the loop's shared state can be borrowed together.
#[derive(Debug)]
pub(crate) struct Core {
    /// Registers and re-registers sockets with this loop's poll.
    pub(crate) registry: Registry,
    /// Handler timers and idle checks of all connections.
    pub(crate) timers: TimerQueue<TimerOwner>,
    /// This loop's counters.
    pub(crate) counters: Counters,
    /// Per-connection limits.
    pub(crate) config: Config,
    /// The time, read once per turn after poll returns.
    pub(crate) now: Instant,
    /// Tokens of connections to read next turn without waiting for an event.
    pub(crate) carried: Vec<Token>,
    /// Tokens of connections finished this turn, released at its end.
    pub(crate) closed: Vec<Token>,
    /// Generation for the next connection's token.
    generations: Generations,
    /// This loop's door: live connection ids, load, published stats.
    pub(crate) door: Arc<Door>,
    /// Reaches every loop of the server, for handlers ([`crate::Conn::remote`]).
    pub(crate) remote: Remote,
    /// The server-wide connection cap.
    pub(crate) limit: Arc<ConnLimit>,
    /// The read buffer lent to whichever connection reads with no input
    /// pending; connections keep a buffer only while holding a partial
    /// message, so an idle connection costs no buffer.
    pub(crate) scratch: BytesMut,
}

/// What a loop is built from; a [`Server`](crate::Server) makes one per loop.
pub(crate) struct Parts {
    /// The loop's poller, whose registry the door's waker uses.
    pub(crate) poll: Poll,
    /// The loop's door.
    pub(crate) door: Arc<Door>,
    /// The receiving end of the door's channel.
    pub(crate) commands: Receiver<Command>,
    /// Reaches every loop of the server.
    pub(crate) remote: Remote,
    /// The server-wide connection cap.
    pub(crate) limit: Arc<ConnLimit>,
    /// The loop's own listener, if it accepts by itself.
    pub(crate) listener: Option<std::net::TcpListener>,
    /// Accept back-off episodes, shared by every loop of the server that
    /// has a listener, so that each episode is logged once.
    pub(crate) episodes: Arc<Episodes>,
}

impl Parts {
    /// The parts of a loop that is a whole server by itself: loop 0, a
    /// `Remote` reaching only it, no connection cap, episodes of its own.
    fn lone(listener: Option<std::net::TcpListener>) -> io::Result<Parts> {
        let (poll, door, commands) = Parts::poll_and_door(0)?;
        let remote = Remote::new(Arc::new([Arc::clone(&door)]));
        let limit = Arc::new(ConnLimit::new(usize::MAX));
        Ok(Parts {
            poll,
            door,
            commands,
            remote,
            limit,
            listener,
            episodes: Arc::default(),
        })
    }

    /// A poller and a door for loop `index`.
    pub(crate) fn poll_and_door(index: u32) -> io::Result<(Poll, Arc<Door>, Receiver<Command>)> {
        let poll = Poll::new()?;
        let (door, commands) = Door::new(poll.registry(), index)?;
        Ok((poll, door, commands))
    }
}

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
///   input limit of the [`Config`].
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
    poll: Poll,
    /// Readiness events of the current turn.
    events: Events,
    /// Open connections, and connections finished this turn awaiting release.
    conns: Slab<Connection<H>>,
    /// State shared by all connections.
    core: Core,
    /// The listening socket; `None` for a loop fed by an acceptor thread, and
    /// once shutdown has begun.
    acceptor: Option<Acceptor>,
    /// The listener's address, kept after the listener is closed.
    local_addr: Option<SocketAddr>,
    /// Makes a handler for each new connection.
    factory: F,
    /// Commands from other threads and handlers.
    commands: Receiver<Command>,
    /// Set by shutdown: when the grace period ends.
    shutdown_deadline: Option<Instant>,
    /// Shutdown has begun: no listener, no reading, connections closing.
    shutting_down: bool,
    /// When a slow turn was last logged, to log at most one a second.
    last_slow_warning: Option<Instant>,
}

impl<F, H> std::fmt::Debug for EventLoop<F, H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("index", &self.core.door.index)
            .field("local_addr", &self.local_addr)
            .field("connections", &self.conns.len())
            .finish_non_exhaustive()
    }
}

impl<F, H> EventLoop<F, H>
where
    F: FnMut() -> H,
    H: Handler,
{
    /// Binds a listener on `addr` (port 0 picks a free port) and prepares a
    /// loop that serves it with handlers made by `factory`.
    ///
    /// # Errors
    ///
    /// Fails if the address cannot be bound or the poller cannot be created.
    pub fn bind(addr: SocketAddr, config: Config, factory: F) -> io::Result<Self> {
        Self::from_std(accept::listen(addr, false)?, config, factory)
    }

    /// Prepares a loop that serves an already bound listener (set to
    /// non-blocking here).
    ///
    /// # Errors
    ///
    /// Fails if the poller cannot be created or the listener registered.
    pub fn from_std(listener: std::net::TcpListener, config: Config, factory: F) -> io::Result<Self> {
        Self::from_parts(Parts::lone(Some(listener))?, config, factory)
    }

    /// Prepares a loop with no listener, for outbound connections only
    /// ([`connect`](Self::connect)), driven by handlers made by `factory`.
    ///
    /// # Errors
    ///
    /// Fails if the poller cannot be created.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use evloop::{Config, Conn, EventLoop, Handler};
    /// use bytes::BytesMut;
    ///
    /// /// Sends a greeting once connected and prints what comes back.
    /// struct Hello;
    /// impl Handler for Hello {
    ///     fn on_open(&mut self, conn: &mut Conn<'_>) {
    ///         conn.write(b"hello\n");
    ///     }
    ///     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
    ///         println!("{:?}", input.split());
    ///         conn.close();
    ///     }
    /// }
    ///
    /// let mut client = EventLoop::new(Config::default(), || Hello)?;
    /// client.connect("127.0.0.1:7000".parse().unwrap(), Duration::from_secs(1))?;
    /// client.run_until_idle()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn new(config: Config, factory: F) -> io::Result<Self> {
        Self::from_parts(Parts::lone(None)?, config, factory)
    }

    /// Assembles a loop of a server.
    pub(crate) fn from_parts(parts: Parts, config: Config, factory: F) -> io::Result<Self> {
        let registry = parts.poll.registry().try_clone()?;
        let acceptor = match parts.listener {
            Some(listener) => {
                listener.set_nonblocking(true)?;
                // Accepted sockets inherit the sizes from the handshake on.
                config.apply_buffer_sizes(SockRef::from(&listener));
                Some(Acceptor::new(
                    TcpListener::from_std(listener),
                    &registry,
                    parts.episodes,
                )?)
            }
            None => None,
        };
        let local_addr = acceptor.as_ref().map(Acceptor::local_addr).transpose()?;
        Ok(EventLoop {
            events: Events::with_capacity(config.events_capacity),
            poll: parts.poll,
            conns: Slab::new(),
            core: Core {
                registry,
                timers: TimerQueue::new(),
                counters: Counters::default(),
                config,
                now: Instant::now(),
                carried: Vec::new(),
                closed: Vec::new(),
                generations: Generations::new(),
                door: parts.door,
                remote: parts.remote,
                limit: parts.limit,
                scratch: BytesMut::new(),
            },
            acceptor,
            local_addr,
            factory,
            commands: parts.commands,
            shutdown_deadline: None,
            shutting_down: false,
            last_slow_warning: None,
        })
    }

    /// The address the loop listens on.
    ///
    /// # Panics
    ///
    /// Panics for a loop without a listener of its own (one fed by a
    /// server's acceptor thread).
    #[track_caller]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr.expect("this loop has no listener of its own")
    }

    /// A handle for other threads: stats and shutdown.
    pub fn handle(&self) -> LoopHandle {
        LoopHandle::new(Arc::clone(&self.core.door), self.local_addr)
    }

    /// A handle that reaches this loop's connections by id from any thread.
    pub fn remote(&self) -> Remote {
        self.core.remote.clone()
    }

    /// Opens an outbound TCP connection to `addr`, driven by a handler from
    /// the loop's factory like an accepted one. Usable before the loop runs;
    /// while it runs, [`LoopHandle::connect`] asks for the same.
    ///
    /// The connect is non-blocking: this returns at once, and the handshake
    /// completes as the loop turns. Then the handler's
    /// [`on_open`](Handler::on_open) runs, meaning *connected*. A connection
    /// that fails never sees `on_open`, but its
    /// [`on_close`](Handler::on_close) still runs, once, with
    /// [`CloseReason::ConnectRefused`](crate::CloseReason::ConnectRefused),
    /// [`CloseReason::ConnectTimeout`](crate::CloseReason::ConnectTimeout)
    /// when `timeout` passes first, or the socket error. The socket is closed
    /// on every path.
    ///
    /// # Errors
    ///
    /// Fails, making no handler, if the connection cannot even be started:
    /// the loop is shutting down, the connection limit is reached, or the
    /// socket cannot be created, connected or registered (no fds, an address
    /// the OS rejects at once).
    pub fn connect(&mut self, addr: SocketAddr, timeout: Duration) -> io::Result<ConnId> {
        if self.shutting_down {
            return Err(io::Error::other("the loop is shutting down"));
        }
        if !self.core.limit.try_acquire() {
            return Err(io::Error::other("at the connection limit"));
        }
        self.core.door.add_load();
        self.core.now = Instant::now();
        let deadline = crate::timer::deadline(self.core.now, timeout);
        let interest = Interest::READABLE | Interest::WRITABLE;
        let inserted = super::io::dial(addr, &self.core.config).and_then(|stream| {
            insert(
                &mut self.conns,
                &mut self.core,
                &mut self.factory,
                stream,
                addr,
                interest,
            )
        });
        match inserted {
            Ok(conn) => {
                conn.start_connect(&mut self.core, deadline);
                trace!("{}: connecting to {addr}", conn.id());
                Ok(conn.id())
            }
            Err(e) => {
                self.core.limit.release();
                self.core.door.remove_load();
                Err(e)
            }
        }
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
        self.core.door.bind_thread();
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
        self.core.door.bind_thread();
        debug!("loop {} running", self.core.door.index);
        while !self.is_done() {
            self.turn()?;
        }
        debug!("loop {} stopped", self.core.door.index);
        Ok(())
    }

    /// One turn of the loop: the phases listed in the module docs.
    fn turn(&mut self) -> io::Result<()> {
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
        if !self.core.carried.is_empty() || self.core.door.is_wake_pending() {
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

    /// Carries out every queued command.
    fn run_commands(&mut self) {
        self.core.door.clear_wake();
        while let Ok(cmd) = self.commands.try_recv() {
            self.core.counters.commands += 1;
            self.run_command(cmd);
        }
        if self.shutdown_deadline.is_some() && !self.shutting_down {
            self.begin_shutdown();
        }
    }

    /// Carries out one command.
    fn run_command(&mut self, cmd: Command) {
        let (token, task): (Token, crate::reactor::handle::Task) = match cmd {
            Command::Shutdown(grace) => {
                let deadline = self.core.now + grace;
                self.shutdown_deadline = Some(self.shutdown_deadline.map_or(deadline, |d| d.min(deadline)));
                return;
            }
            Command::Adopt(stream, peer) => return self.adopt(stream, peer),
            Command::Connect(addr, timeout) => {
                if let Err(e) = self.connect(addr, timeout) {
                    warn!("loop {}: cannot connect to {addr}: {e}", self.core.door.index);
                }
                return;
            }
            Command::Write(token, data) => (token, Box::new(move |conn| conn.write_bytes(data))),
            Command::Close(token) => (token, Box::new(|conn| conn.close())),
            Command::Run(token, task) => (token, task),
        };
        match live(&mut self.conns, token) {
            Some(conn) => conn.run_task(&mut self.core, task),
            None => trace!("command for closed connection {token:?} dropped"),
        }
    }

    /// Phase 3: reads connections carried over from the last turn.
    fn serve_carried(&mut self) {
        for token in std::mem::take(&mut self.core.carried) {
            if let Some(conn) = live(&mut self.conns, token) {
                if conn.carried {
                    conn.serve_carried(&mut self.core);
                }
            }
        }
    }

    /// Phase 4: expired timers, accept back-off, shutdown grace.
    fn run_timers(&mut self) {
        let now = self.core.now;
        while let Some((id, owner)) = self.core.timers.pop_expired(now) {
            match live(&mut self.conns, owner.token) {
                Some(conn) => conn.timer(&mut self.core, id, owner.kind),
                None => trace!("timer {id:?} outlived its connection"),
            }
        }
        let resumed = self
            .acceptor
            .as_mut()
            .is_some_and(|a| a.resume_if_due(&self.core.registry, now));
        if resumed {
            self.accept();
        }
        if self.shutdown_deadline.is_some_and(|d| d <= now) {
            for (_, conn) in self.conns.iter_mut() {
                conn.force_close(&mut self.core);
            }
        }
    }

    /// Phase 5: removes finished connections, closing their sockets.
    fn release_closed(&mut self) {
        for token in self.core.closed.drain(..) {
            let (key, _) = token::decode(token);
            let conn = self.conns.remove(key);
            debug_assert!(conn.finished && conn.token() == token);
        }
    }

    /// Phase 6: publishes counters and notes a slow turn.
    fn publish(&mut self, started: Instant) {
        let took = started.elapsed();
        let counters = &mut self.core.counters;
        counters.turns += 1;
        counters.max_turn_micros = counters.max_turn_micros.max(took.as_micros() as u64);
        if took > SLOW_TURN
            && self
                .last_slow_warning
                .is_none_or(|t| t.elapsed() > Duration::from_secs(1))
        {
            warn!(
                "loop {}: a turn took {took:?}; a handler is blocking its loop",
                self.core.door.index
            );
            self.last_slow_warning = Some(Instant::now());
        }
        self.core.door.stats.publish(counters);
    }

    /// Accepts every waiting connection, within the connection cap.
    fn accept(&mut self) {
        let Some(acceptor) = self.acceptor.as_mut() else {
            return;
        };
        loop {
            match acceptor.accept(&self.core.registry, self.core.now) {
                Accepted::Stream(stream, peer) => {
                    if self.core.limit.try_acquire() {
                        self.core.door.add_load();
                        open(&mut self.conns, &mut self.core, &mut self.factory, stream, peer);
                    } else {
                        self.core.counters.rejected += 1;
                        debug!("at the connection limit; closing {peer} at once");
                    }
                }
                Accepted::Done => return,
                Accepted::BackedOff => {
                    self.core.counters.accept_backoffs += 1;
                    return;
                }
            }
        }
    }

    /// Serves a socket handed over by the server's acceptor thread, which
    /// already took its connection slot and counted it in this loop's load.
    fn adopt(&mut self, stream: TcpStream, peer: SocketAddr) {
        if self.shutting_down {
            self.core.limit.release();
            self.core.door.remove_load();
            return;
        }
        open(&mut self.conns, &mut self.core, &mut self.factory, stream, peer);
    }

    /// Stops accepting and asks every connection to flush and close.
    fn begin_shutdown(&mut self) {
        self.shutting_down = true;
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.close(&self.core.registry);
        }
        debug!(
            "loop {}: shutting down {} connection(s)",
            self.core.door.index,
            self.conns.len()
        );
        for (_, conn) in self.conns.iter_mut() {
            conn.shutdown(&mut self.core);
        }
    }

    /// True once shutdown has begun and every connection is gone.
    fn is_done(&self) -> bool {
        self.shutting_down && self.conns.is_empty()
    }

    /// Test access: handles an event for `token` as if the poller reported it.
    #[cfg(test)]
    pub(crate) fn inject_readable(&mut self, token: Token) -> bool {
        match live(&mut self.conns, token) {
            Some(conn) => {
                conn.ready(&mut self.core, true, false, false, false);
                true
            }
            None => {
                self.core.counters.stale_events += 1;
                false
            }
        }
    }
}

/// The connection `token` names, if it is open and of the same generation.
fn live<H: Handler>(conns: &mut Slab<Connection<H>>, token: Token) -> Option<&mut Connection<H>> {
    let (key, generation) = token::decode(token);
    conns
        .get_mut(key)
        .filter(|c| c.generation == generation && !c.finished)
}

/// Registers an accepted socket that holds a connection slot and opens a
/// connection for it; on failure the slot is given back and the socket closed.
fn open<F, H>(
    conns: &mut Slab<Connection<H>>,
    core: &mut Core,
    factory: &mut F,
    stream: TcpStream,
    peer: SocketAddr,
) where
    F: FnMut() -> H,
    H: Handler,
{
    match insert(conns, core, factory, stream, peer, Interest::READABLE) {
        Ok(conn) => {
            trace!("{}: accepted from {peer}", conn.id());
            core.counters.accepted += 1;
            conn.open(core);
        }
        Err(e) => {
            warn!("cannot serve a connection from {peer}: {e}");
            core.limit.release();
            core.door.remove_load();
        }
    }
}

/// Registers a socket with `interest` under a fresh token, sets the config's
/// socket options on it and inserts its connection, with a handler from
/// `factory`, not yet opened. On failure the socket is closed and no handler
/// made; the caller gives the slot back.
fn insert<'a, F, H>(
    conns: &'a mut Slab<Connection<H>>,
    core: &mut Core,
    factory: &mut F,
    mut stream: TcpStream,
    peer: SocketAddr,
    interest: Interest,
) -> io::Result<&'a mut Connection<H>>
where
    F: FnMut() -> H,
    H: Handler,
{
    let entry = conns.vacant_entry();
    let generation = core.generations.next();
    if entry.key() > token::MAX_KEY {
        return Err(io::Error::other("too many connections on one loop"));
    }
    let token = token::encode(entry.key(), generation);
    core.registry.register(&mut stream, token, interest)?;
    core.config.apply_socket_options(SockRef::from(&stream));
    let id = ConnId::new(core.door.index, token);
    let state = ConnState::new(id, token, peer, core.config.idle_timeout);
    let conn = entry.insert(Connection::new(stream, state, factory(), generation, core.now));
    core.door.opened(token);
    core.counters.open += 1;
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Conn;
    use bytes::BytesMut;
    use std::io::Write;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the bytes its connections receive.
    struct Counting(Arc<AtomicUsize>);

    impl Handler for Counting {
        fn on_data(&mut self, _: &mut Conn<'_>, input: &mut BytesMut) {
            self.0.fetch_add(input.len(), Ordering::SeqCst);
            input.clear();
        }
    }

    /// Turns the loop until `done` holds, for at most five seconds.
    fn turn_until<F: FnMut() -> H, H: Handler>(
        el: &mut EventLoop<F, H>,
        mut done: impl FnMut(&EventLoop<F, H>) -> bool,
    ) {
        let start = Instant::now();
        while !done(el) {
            assert!(start.elapsed() < Duration::from_secs(5), "condition not reached");
            el.turn().unwrap();
        }
    }

    #[test]
    fn stale_event_for_reused_key_is_not_delivered() {
        let received = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&received);
        let config = Config::default().idle_timeout(None);
        let mut el = EventLoop::bind("127.0.0.1:0".parse().unwrap(), config, move || {
            Counting(Arc::clone(&counter))
        })
        .unwrap();
        let addr = el.local_addr();

        // Connection A takes slab key 0; it closes and is released.
        let a = std::net::TcpStream::connect(addr).unwrap();
        turn_until(&mut el, |el| el.conns.len() == 1);
        let old_token = el.conns[0].token();
        drop(a);
        turn_until(&mut el, |el| el.conns.is_empty());

        // Connection B reuses key 0 under a new generation, with bytes waiting.
        let mut b = std::net::TcpStream::connect(addr).unwrap();
        turn_until(&mut el, |el| el.conns.len() == 1);
        let new_token = el.conns[0].token();
        assert_eq!(
            token::decode(new_token).0,
            token::decode(old_token).0,
            "key reused"
        );
        assert_ne!(new_token, old_token);
        b.write_all(b"for B only").unwrap();
        std::thread::sleep(Duration::from_millis(50));

        // An event still naming A must not reach B.
        assert!(!el.inject_readable(old_token));
        assert_eq!(el.core.counters.stale_events, 1);
        assert_eq!(received.load(Ordering::SeqCst), 0, "B's handler saw A's event");

        // B's own event is delivered.
        assert!(el.inject_readable(new_token));
        assert_eq!(received.load(Ordering::SeqCst), 10);
    }
}
