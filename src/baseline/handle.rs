//! [`ThreadHandle`]: the door into a [`ThreadServer`](super::ThreadServer)
//! from any thread.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::shared::Shared;
use crate::Stats;

/// A cloneable, thread-safe handle to a [`ThreadServer`](super::ThreadServer):
/// read its counters, shut it down, wait for it to stop.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use bytes::BytesMut;
/// use evloop::baseline::ThreadServer;
/// use evloop::{Config, Conn, Handler};
///
/// struct Discard;
/// impl Handler for Discard {
///     fn on_data(&mut self, _: &mut Conn<'_>, input: &mut BytesMut) { input.clear(); }
/// }
///
/// let server = ThreadServer::bind("127.0.0.1:0".parse().unwrap(), Config::default(), || Discard)?;
/// let handle = server.handle();
/// let thread = std::thread::spawn(move || server.run());
/// assert_eq!(handle.stats().accepted, 0);
/// handle.shutdown(Duration::from_secs(1));
/// thread.join().unwrap()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct ThreadHandle {
    /// The server's shared state.
    shared: Arc<Shared>,
}

impl fmt::Debug for ThreadHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadHandle")
            .field("local", self.shared.local())
            .finish()
    }
}

impl ThreadHandle {
    /// A handle on `shared`.
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        ThreadHandle { shared }
    }

    /// The TCP address the server listens on.
    ///
    /// # Panics
    ///
    /// Panics for a server on a Unix socket; see [`local`](Self::local).
    #[track_caller]
    pub fn local_addr(&self) -> SocketAddr {
        self.shared
            .local()
            .tcp()
            .expect("this server listens on a Unix socket, not TCP; see ThreadHandle::local")
    }

    /// Where the server listens, TCP or Unix.
    pub fn local(&self) -> &crate::Bind {
        self.shared.local()
    }

    /// The server's counters now, in the same [`Stats`] as the reactor's.
    ///
    /// Every connection thread counts its own reads, writes, bytes and
    /// panics; a snapshot adds up those of the open connections and those of
    /// the closed ones, so it is exact rather than a turn old. `read_pauses`
    /// counts callbacks that left output above the high watermark, and
    /// `accept_backoffs` the acceptor's pauses, `rejected` the connections
    /// closed at once without a handler (over
    /// [`max_connections`](super::ThreadServer::max_connections), with no
    /// thread to serve them, or arriving as shutdown began). The fields that describe a
    /// poll loop — `events`, `turns`, `stale_events`, `max_turn_micros` —
    /// stay 0: this model has none.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// Shuts the server down gracefully: it stops accepting at once (the
    /// listener stops listening), stops reading, lets every connection flush
    /// what it has queued, then closes it with
    /// [`CloseReason::Shutdown`](crate::CloseReason::Shutdown). Connections
    /// still open after `grace` are reset, which also ends a write blocked on
    /// a peer that does not read.
    ///
    /// Returns at once; [`wait`](Self::wait) waits for the end. Calling it
    /// again can only bring the deadline forward; after the server stopped it
    /// does nothing.
    pub fn shutdown(&self, grace: Duration) {
        self.shared.begin_shutdown(grace);
    }

    /// Blocks until the server has stopped: its listener is closed and every
    /// connection thread has finished, `on_close` included. Also returns if
    /// the server was dropped without being run. Called from a handler, it
    /// never returns: the server waits for that handler's thread.
    pub fn wait(&self) {
        self.shared.wait_stopped();
    }
}
