//! [`LoopHandle`]: the only door into a loop from other threads.
//!
//! Commands travel over a channel; a `mio::Waker` interrupts the loop's poll
//! so it reads them at once.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Duration;

use mio::Waker;

use crate::Stats;
use crate::stats::SharedStats;

/// What another thread can ask of a loop.
#[derive(Debug)]
pub(crate) enum Command {
    /// Stop accepting, flush and close every connection within the grace period.
    Shutdown(Duration),
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
    /// Commands to the loop.
    tx: Sender<Command>,
    /// Wakes the loop's poll.
    waker: Arc<Waker>,
    /// The loop's published counters.
    stats: Arc<SharedStats>,
    /// The loop's listening address.
    local_addr: SocketAddr,
}

impl fmt::Debug for LoopHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopHandle")
            .field("local_addr", &self.local_addr)
            .finish()
    }
}

impl LoopHandle {
    /// Makes a handle and the receiving end the loop keeps.
    pub(crate) fn new(
        waker: Waker,
        stats: Arc<SharedStats>,
        local_addr: SocketAddr,
    ) -> (Self, Receiver<Command>) {
        let (tx, rx) = mpsc::channel();
        let handle = LoopHandle {
            tx,
            waker: Arc::new(waker),
            stats,
            local_addr,
        };
        (handle, rx)
    }

    /// The address the loop listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// A snapshot of the loop's counters, at most one loop turn old.
    pub fn stats(&self) -> Stats {
        self.stats.snapshot()
    }

    /// Shuts the loop down gracefully: it stops accepting at once (the
    /// listener is closed), stops reading, lets every connection flush what it
    /// has queued, then closes it with [`CloseReason::Shutdown`](crate::CloseReason::Shutdown).
    /// Connections still not flushed after `grace` are reset. `run` returns
    /// when no connection is left.
    ///
    /// Returns at once; calling it again or after the loop ended does nothing.
    pub fn shutdown(&self, grace: Duration) {
        self.send(Command::Shutdown(grace));
    }

    /// Queues a command and wakes the loop. A loop that has exited has dropped
    /// its receiver; the command is then moot and dropped.
    fn send(&self, cmd: Command) {
        if self.tx.send(cmd).is_ok() {
            let _ = self.waker.wake();
        }
    }
}
