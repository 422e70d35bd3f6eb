//! The door into a loop from other threads: [`LoopHandle`], and the shared
//! state behind it and behind [`Remote`](crate::Remote).
//!
//! Commands travel over a channel. A `mio::Waker` interrupts the loop's poll
//! so it reads them at once, but only when needed: a flag records that a wake
//! is already pending, so a burst of commands costs one wake, and a command
//! sent from the loop's own thread (a handler writing to a neighbour) costs
//! none, since the loop drains its channel every turn anyway.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use bytes::Bytes;
use mio::{Registry, Token, Waker};

use super::slot::Occupancy;
use super::token::WAKER;
use crate::stats::SharedStats;
use crate::{Conn, Stats};

/// A closure sent to run against one connection on its loop.
pub(crate) type Task = Box<dyn FnOnce(&mut Conn<'_>) + Send>;

/// What another thread can ask of a loop.
pub(crate) enum Command {
    /// Stop accepting, flush and close every connection within the grace period.
    Shutdown(Duration),
    /// Close the listener and serve the open connections until they close.
    StopAccepting,
    /// Serve a socket accepted by the server's acceptor thread, which took
    /// its slot.
    Adopt(socket2::Socket, crate::Peer, super::slot::Slot),
    /// Open an outbound connection with a handler from the loop's factory.
    Connect(SocketAddr, Duration),
    /// The same to a Unix domain socket.
    ConnectUnix(crate::UnixAddr, Duration),
    /// The same over TLS.
    #[cfg(feature = "tls")]
    ConnectTls(Box<TlsDial>),
    /// Queue bytes on a connection.
    Write(Token, Bytes),
    /// Close a connection after flushing.
    Close(Token),
    /// Run a closure with a connection's [`Conn`].
    Run(Token, Task),
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Shutdown(grace) => write!(f, "Shutdown({grace:?})"),
            Command::StopAccepting => write!(f, "StopAccepting"),
            Command::Adopt(_, peer, _) => write!(f, "Adopt({peer})"),
            Command::Connect(addr, timeout) => write!(f, "Connect({addr}, {timeout:?})"),
            Command::ConnectUnix(addr, timeout) => write!(f, "ConnectUnix({addr}, {timeout:?})"),
            #[cfg(feature = "tls")]
            Command::ConnectTls(dial) => write!(f, "ConnectTls({}, {:?})", dial.addr, dial.timeout),
            Command::Write(token, data) => write!(f, "Write({token:?}, {} bytes)", data.len()),
            Command::Close(token) => write!(f, "Close({token:?})"),
            Command::Run(token, _) => write!(f, "Run({token:?})"),
        }
    }
}

/// An outbound TLS connection asked of a loop from another thread.
#[cfg(feature = "tls")]
pub(crate) struct TlsDial {
    /// Where to connect.
    pub(crate) addr: SocketAddr,
    /// The connect timeout.
    pub(crate) timeout: Duration,
    /// The client's TLS settings.
    pub(crate) config: Arc<crate::tls::rustls::ClientConfig>,
    /// The name the server's certificate must be valid for.
    pub(crate) server_name: crate::tls::rustls::pki_types::ServerName<'static>,
}

/// A number naming the calling thread, unique in the process and never 0:
/// cheaper to compare than a `ThreadId` fetched each time.
fn thread_number() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local! {
        static NUMBER: u64 = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    NUMBER.with(|n| *n)
}

/// One loop's door: everything other threads share with it.
pub(crate) struct Door {
    /// Commands to the loop.
    tx: Sender<Command>,
    /// Wakes the loop's poll.
    waker: Waker,
    /// A wake is pending: the loop has not yet drained since the last one.
    wake_pending: AtomicBool,
    /// The [`thread_number`] of the thread the loop last ran on (0 before it
    /// ran); commands sent from that thread need no wake.
    thread: AtomicU64,
    /// The loop's open connections and load, as other threads see them.
    pub(crate) occupancy: Arc<Occupancy>,
    /// The loop's published counters.
    pub(crate) stats: SharedStats,
    /// Index of the loop within its server.
    pub(crate) index: u32,
}

impl fmt::Debug for Door {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Door")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl Door {
    /// Makes the door of loop `index`, whose poll has `registry`; returns the
    /// receiving end the loop keeps.
    pub(crate) fn new(registry: &Registry, index: u32) -> std::io::Result<(Arc<Door>, Receiver<Command>)> {
        let (tx, rx) = mpsc::channel();
        let door = Door {
            tx,
            waker: Waker::new(registry, WAKER)?,
            wake_pending: AtomicBool::new(false),
            thread: AtomicU64::new(0),
            occupancy: Arc::default(),
            stats: SharedStats::new(),
            index,
        };
        Ok((Arc::new(door), rx))
    }

    /// Queues a command and wakes the loop if it may be asleep. Returns false
    /// if the loop has exited.
    pub(crate) fn send(&self, cmd: Command) -> bool {
        if self.tx.send(cmd).is_err() {
            return false;
        }
        // From the loop's own thread only the flag is set: the loop sees it
        // before its next poll and does not block.
        let on_loop = self.thread.load(Ordering::Acquire) == thread_number();
        if !self.wake_pending.swap(true, Ordering::AcqRel) && !on_loop {
            let _ = self.waker.wake();
        }
        true
    }

    /// Queues a command for the connection `token` if it is open.
    pub(crate) fn send_to(&self, token: Token, cmd: Command) -> bool {
        self.occupancy.is_live(token) && self.send(cmd)
    }

    /// Called by the loop before draining its channel: later commands wake it again.
    pub(crate) fn clear_wake(&self) {
        self.wake_pending.store(false, Ordering::Release);
    }

    /// Records the thread the loop runs on now; a loop moved to another
    /// thread (turned on one, then run on another) records the new one.
    pub(crate) fn bind_thread(&self) {
        self.thread.store(thread_number(), Ordering::Release);
    }

    /// Connections this loop has or has been handed.
    pub(crate) fn load(&self) -> usize {
        self.occupancy.load()
    }

    /// True while a command may be waiting: the loop must not block in poll.
    pub(crate) fn is_wake_pending(&self) -> bool {
        self.wake_pending.load(Ordering::Acquire)
    }
}

/// A cloneable, thread-safe handle to a running [`EventLoop`](crate::EventLoop):
/// read its stats, shut it down.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use evloop::{Config, EventLoop, Conn, Handler};
/// use bytes::BytesMut;
///
/// struct Discard;
/// impl Handler for Discard {
///     fn on_data(&mut self, _: &mut Conn<'_>, input: &mut BytesMut) { input.clear(); }
/// }
///
/// let event_loop = EventLoop::bind("127.0.0.1:0".parse().unwrap(), Config::default(), || Discard)?;
/// let handle = event_loop.handle();
/// let thread = std::thread::spawn(move || event_loop.run());
/// assert_eq!(handle.stats().accepted, 0);
/// handle.shutdown(Duration::from_secs(1));
/// thread.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct LoopHandle {
    /// The loop's door.
    door: Arc<Door>,
    /// The loop's listening address, if it has a listener.
    local_addr: Option<SocketAddr>,
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl LoopHandle {
    /// Wraps a loop's door.
    pub(crate) fn new(door: Arc<Door>, local_addr: Option<SocketAddr>) -> Self {
        LoopHandle { door, local_addr }
    }

    /// The TCP address the loop listens on.
    ///
    /// # Panics
    ///
    /// Panics for a loop of a [`Server`](crate::Server) fed by its acceptor
    /// thread, which has no listener of its own, and for a loop on a Unix
    /// socket.
    #[track_caller]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr.expect("this loop has no listener of its own")
    }

    /// A snapshot of the loop's counters, at most one loop turn old.
    pub fn stats(&self) -> Stats {
        self.door.stats.snapshot()
    }

    /// Asks the loop to open an outbound connection to `addr`, as
    /// [`EventLoop::connect`](crate::EventLoop::connect) does, with a handler
    /// from the loop's own factory: the handler learns the outcome through
    /// [`on_open`](crate::Handler::on_open) (connected) or
    /// [`on_close`](crate::Handler::on_close) (refused, timed out, failed).
    ///
    /// Returns at once: false if the loop has exited. A connection that
    /// cannot even be started (no fds, the connection limit) makes no handler
    /// and is logged as a warning.
    pub fn connect(&self, addr: SocketAddr, timeout: Duration) -> bool {
        self.door.send(Command::Connect(addr, timeout))
    }

    /// Asks the loop to open an outbound connection to the Unix domain
    /// socket `addr`, as [`EventLoop::connect_unix`](crate::EventLoop::connect_unix)
    /// does, with a handler from the loop's own factory; otherwise as
    /// [`connect`](Self::connect).
    ///
    /// Returns at once: false if the loop has exited.
    pub fn connect_unix(&self, addr: impl Into<crate::UnixAddr>, timeout: Duration) -> bool {
        self.door.send(Command::ConnectUnix(addr.into(), timeout))
    }

    /// Asks the loop to open an outbound TLS connection, as
    /// [`EventLoop::connect_tls`](crate::EventLoop::connect_tls) does, with
    /// a handler from the loop's own factory; otherwise as
    /// [`connect`](Self::connect).
    ///
    /// Returns at once: false if the loop has exited.
    #[cfg(feature = "tls")]
    pub fn connect_tls(
        &self,
        addr: SocketAddr,
        timeout: Duration,
        config: Arc<crate::tls::rustls::ClientConfig>,
        server_name: crate::tls::rustls::pki_types::ServerName<'static>,
    ) -> bool {
        let dial = TlsDial {
            addr,
            timeout,
            config,
            server_name,
        };
        self.door.send(Command::ConnectTls(Box::new(dial)))
    }

    /// Shuts the loop down gracefully: it stops accepting at once (the
    /// listener is closed), stops reading, lets every connection flush what it
    /// has queued, then closes it with [`CloseReason::Shutdown`](crate::CloseReason::Shutdown).
    /// Connections still not flushed after `grace` are reset. `run` returns
    /// when no connection is left.
    ///
    /// Returns at once; calling it again or after the loop ended does nothing.
    pub fn shutdown(&self, grace: Duration) {
        self.door.send(Command::Shutdown(grace));
    }
}
