//! [`ThreadServer`]: an acceptor and one thread per connection.

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::{self, Scope};
use std::time::Instant;

use log::{debug, error};
use socket2::SockRef;

use super::accept::{self, Backoff};
use super::handle::ThreadHandle;
use super::shared::Shared;
use super::worker::{self, Accepted};
use crate::limit::ConnLimit;
use crate::listener::Listener;
use crate::{Config, Handler, Peer};

/// Stack reserved for each connection thread unless
/// [`ThreadServer::stack_size`] says otherwise: 256 KiB.
///
/// Only the pages a thread touches are resident, so the size does not change
/// the memory an idle connection costs; what it changes is address space and
/// commit charge: 10,000 connections reserve 2.5 GiB at 256 KiB against
/// 20 GiB at Rust's default of 2 MiB, which matters under strict overcommit
/// or an address-space limit. Handler callbacks should be short and shallow,
/// as on a reactor; the crate's own frames, a caught panic included, use a
/// small fraction of this.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// The smallest stack [`ThreadServer::stack_size`] accepts: 64 KiB.
///
/// The costliest path of the crate's own is a handler panic, caught,
/// reported and logged; in a debug build with `RUST_BACKTRACE=1` and trace
/// logging it needs between 32 and 48 KiB (measured). 64 KiB covers that
/// with room for a simple handler; below it a panic could overflow the stack,
/// which aborts the whole process.
pub const MIN_STACK_SIZE: usize = 64 * 1024;

/// Name of every connection thread, as tools such as `ps -L` and
/// `/proc/<pid>/task/*/comm` show it (Linux keeps 15 bytes).
const CONN_THREAD_NAME: &str = "evloop-conn";

/// Name of the acceptor thread made by [`ThreadServer::start`].
const ACCEPT_THREAD_NAME: &str = "evloop-accept";

/// A thread-per-connection server: the baseline that [`EventLoop`](crate::EventLoop)
/// is measured against, driving the same [`Handler`] on blocking sockets.
///
/// The thread that calls [`run`](ThreadServer::run) accepts connections and
/// starts a thread for each; that thread makes the connection's handler with
/// `factory`, serves it and calls `on_close`. See the [module
/// docs](crate::baseline) for how each [`Conn`](crate::Conn) request is
/// carried out and how shutdown proceeds.
///
/// # Examples
///
/// ```no_run
/// use bytes::BytesMut;
/// use evloop::baseline::ThreadServer;
/// use evloop::{Config, Conn, Handler};
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
/// ThreadServer::bind(addr, Config::default(), || Echo)?
///     .max_connections(10_000)
///     .run()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct ThreadServer<F> {
    /// The listening socket, in blocking mode. The only strong reference:
    /// it closes when the server stops or is dropped.
    listener: Arc<Listener>,
    /// Per-connection limits.
    config: Config,
    /// Makes a handler for each connection, on that connection's thread.
    factory: F,
    /// Stack size of connection threads. Invariant: at least [`MIN_STACK_SIZE`].
    stack_size: usize,
    /// Connections served at once; more are closed at once. At least 1.
    max_connections: usize,
    /// State shared with handles; marks the server stopped when dropped.
    shared: StopOnDrop,
    /// Serves TLS on every connection, if set.
    #[cfg(feature = "tls")]
    tls: Option<crate::tls::TlsAcceptor>,
}

/// Owns the server's shared state and marks the server stopped when dropped,
/// whether it ran or not, so that [`ThreadHandle::wait`] returns.
struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.mark_stopped();
    }
}

impl<F> fmt::Debug for ThreadServer<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadServer")
            .field("local", self.shared.0.local())
            .field("stack_size", &self.stack_size)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl<F, H> ThreadServer<F>
where
    F: Fn() -> H + Sync,
    H: Handler,
{
    /// Binds a listener on `addr` (port 0 picks a free port) and prepares a
    /// server that serves it with handlers made by `factory`.
    ///
    /// `factory` runs on each connection's own thread, possibly on several at
    /// once, hence `Fn + Sync`; the handler it makes stays on that thread, so
    /// it need not be `Send`.
    ///
    /// The listener is made as [`EventLoop::bind`](crate::EventLoop::bind)
    /// makes its own (`SO_REUSEADDR`, the same backlog), so the two models
    /// meet the same kernel queue.
    ///
    /// # Errors
    ///
    /// Fails if the address cannot be bound.
    pub fn bind(addr: SocketAddr, config: Config, factory: F) -> io::Result<Self> {
        Self::from_std(crate::reactor::listen(addr, false)?, config, factory)
    }

    /// Prepares a server for an already bound listener (set to blocking here).
    ///
    /// # Errors
    ///
    /// Fails if the listener cannot be set to blocking or has no address.
    pub fn from_std(listener: TcpListener, config: Config, factory: F) -> io::Result<Self> {
        Self::from_listener(listener.into(), config, factory)
    }

    /// Binds a listener on `bind` — a TCP address, or a Unix domain socket
    /// (see [`UnixBind`](crate::UnixBind)) — and prepares a server that
    /// serves it with handlers made by `factory`; otherwise as
    /// [`bind`](Self::bind).
    ///
    /// # Errors
    ///
    /// Fails if the address cannot be bound (a live server on a Unix path
    /// is `AddrInUse`, naming the path).
    pub fn listen(bind: impl Into<crate::Bind>, config: Config, factory: F) -> io::Result<Self> {
        Self::from_listener(Listener::bind(&bind.into(), false)?, config, factory)
    }

    /// Prepares a server for an already bound Unix listener (set to
    /// blocking here), for example one inherited from a service manager;
    /// its socket file, if any, stays at shutdown.
    ///
    /// # Errors
    ///
    /// Fails if the listener cannot be set to blocking.
    pub fn from_std_unix(
        listener: std::os::unix::net::UnixListener,
        config: Config,
        factory: F,
    ) -> io::Result<Self> {
        Self::from_listener(listener.into(), config, factory)
    }

    /// Prepares a server for a listener of either kind.
    pub(crate) fn from_listener(listener: Listener, config: Config, factory: F) -> io::Result<Self> {
        listener.set_nonblocking(false)?;
        // Accepted sockets inherit the sizes from the handshake on.
        config.apply_buffer_sizes(SockRef::from(&listener));
        let local = listener.local()?;
        let listener = Arc::new(listener);
        let shared = Arc::new(Shared::new(local, Arc::downgrade(&listener)));
        Ok(ThreadServer {
            listener,
            config,
            factory,
            stack_size: DEFAULT_STACK_SIZE,
            max_connections: usize::MAX,
            shared: StopOnDrop(shared),
            #[cfg(feature = "tls")]
            tls: None,
        })
    }

    /// Notes that other processes hold the listener too (it was inherited):
    /// shutdown then leaves the socket listening for them.
    pub(crate) fn listener_shared(self) -> Self {
        self.shared.0.set_listener_shared();
        self
    }

    /// Stack size of each connection thread, in bytes.
    ///
    /// Default [`DEFAULT_STACK_SIZE`] (256 KiB), where the reasons for it are
    /// given. The OS rounds it up to whole pages. A handler that overflows its
    /// stack aborts the process, as on any thread, so size it for the deepest
    /// callback.
    ///
    /// # Panics
    ///
    /// Panics if `bytes` is below [`MIN_STACK_SIZE`] (64 KiB).
    #[track_caller]
    pub fn stack_size(mut self, bytes: usize) -> Self {
        assert!(
            bytes >= MIN_STACK_SIZE,
            "stack_size of {bytes} bytes is below the minimum of {MIN_STACK_SIZE}"
        );
        self.stack_size = bytes;
        self
    }

    /// Most connections served at once.
    ///
    /// Default unlimited, as on the reactor: the process's limits on fds and
    /// threads decide, and the acceptor backs off when it meets them. Beyond
    /// the limit a new connection is accepted and closed at once (the peer
    /// sees end of stream) and counted in [`Stats::rejected`](crate::Stats::rejected); a limit
    /// turns a flood into refusals instead of thousands of threads.
    ///
    /// # Panics
    ///
    /// Panics if `n` is 0.
    #[track_caller]
    pub fn max_connections(mut self, n: usize) -> Self {
        assert!(n > 0, "max_connections must be at least 1");
        self.max_connections = n;
        self
    }

    /// Serves TLS on every connection, with the acceptor's config at the
    /// time each is accepted, as [`EventLoop::tls`](crate::EventLoop::tls)
    /// does: the connection's thread makes the handshake, over the blocking
    /// socket, before [`on_open`](crate::Handler::on_open).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, acceptor: impl Into<crate::tls::TlsAcceptor>) -> Self {
        self.tls = Some(acceptor.into());
        self
    }

    /// The TCP address the server listens on.
    ///
    /// # Panics
    ///
    /// Panics for a server on a Unix socket; see [`local`](Self::local).
    #[track_caller]
    pub fn local_addr(&self) -> SocketAddr {
        self.shared
            .0
            .local()
            .tcp()
            .expect("this server listens on a Unix socket, not TCP; see ThreadServer::local")
    }

    /// Where the server listens, TCP or Unix.
    pub fn local(&self) -> &crate::Bind {
        self.shared.0.local()
    }

    /// A handle for other threads: counters, shutdown, waiting for the end.
    pub fn handle(&self) -> ThreadHandle {
        ThreadHandle::new(Arc::clone(&self.shared.0))
    }

    /// Serves on the calling thread until a shutdown completes: accepts until
    /// [`ThreadHandle::shutdown`], closes the listener, waits for every
    /// connection to close (resetting those left after the grace period) and
    /// returns once every connection thread has finished.
    ///
    /// # Errors
    ///
    /// None at present: accept failures pause accepting and failures of
    /// single connections close them, never the server. The `Result`
    /// matches [`EventLoop::run`](crate::EventLoop::run).
    pub fn run(self) -> io::Result<()> {
        let ThreadServer {
            listener,
            config,
            factory,
            stack_size,
            max_connections,
            shared,
            #[cfg(feature = "tls")]
            tls,
        } = self;
        let acceptor = Acceptor {
            shared: &shared.0,
            config: &config,
            factory: &factory,
            stack_size,
            limit: Arc::new(ConnLimit::new(max_connections)),
            #[cfg(feature = "tls")]
            tls: tls.as_ref(),
            #[cfg(not(feature = "tls"))]
            tls: (),
        };
        debug!(
            "{}: serving with a thread per connection",
            acceptor.shared.local()
        );
        // Connection threads are scoped: they borrow the factory and config,
        // and the scope joins them all before `run` returns.
        thread::scope(|scope| {
            acceptor.accept_until_shutdown(&listener, scope);
            // A thread waking the acceptor may hold the listener a moment
            // longer: the socket file goes now, not with the last clone.
            listener.remove_socket_file();
            drop(listener);
            acceptor.shared.drain();
        });
        // Release what the factory holds before waiters learn of the stop.
        drop(factory);
        debug!("{}: stopped", shared.0.local());
        drop(shared);
        Ok(())
    }

    /// Runs the server on a thread of its own (named `evloop-accept`) and
    /// returns a handle to it; [`ThreadHandle::wait`] waits for it to stop.
    ///
    /// # Errors
    ///
    /// Fails if the thread cannot be started; the server is dropped then.
    pub fn start(self) -> io::Result<ThreadHandle>
    where
        F: Send + 'static,
    {
        let handle = self.handle();
        thread::Builder::new()
            .name(ACCEPT_THREAD_NAME.into())
            .spawn(move || {
                let addr = self.local().clone();
                if let Err(e) = self.run() {
                    error!("{addr}: server failed: {e}");
                }
            })?;
        Ok(handle)
    }
}

/// The accepting side of a running server.
struct Acceptor<'a, F> {
    /// State shared with connections and handles.
    shared: &'a Shared,
    /// Per-connection limits.
    config: &'a Config,
    /// Makes handlers.
    factory: &'a F,
    /// Stack size of connection threads.
    stack_size: usize,
    /// The cap on connections served at once.
    limit: Arc<ConnLimit>,
    /// TLS settings, if the server serves TLS.
    tls: worker::Tls<'a>,
}

impl<'a, F, H> Acceptor<'a, F>
where
    F: Fn() -> H + Sync,
    H: Handler,
{
    /// Accepts connections and starts their threads until shutdown begins.
    fn accept_until_shutdown<'scope>(&self, listener: &Listener, scope: &'scope Scope<'scope, '_>)
    where
        'a: 'scope,
    {
        let mut backoff = Backoff::new();
        while !self.shared.is_shutting_down() {
            match listener.accept() {
                Ok((stream, peer)) => match self.start_thread(scope, stream, peer) {
                    Ok(()) => Self::accepted(&mut backoff, listener),
                    Err(e) => self.pause(&mut backoff, &e, "starting a connection thread"),
                },
                Err(_) if self.shared.is_shutting_down() => break,
                Err(e) if accept::is_transient(&e) => debug!("accept: skipped a failed connection: {e}"),
                Err(e) => self.pause(&mut backoff, &e, "accept"),
            }
        }
    }

    /// Registers a connection and starts its thread.
    ///
    /// # Errors
    ///
    /// The OS error if no thread could be started; the connection is closed.
    fn start_thread<'scope>(
        &self,
        scope: &'scope Scope<'scope, '_>,
        stream: socket2::Socket,
        peer: Peer,
    ) -> io::Result<()>
    where
        'a: 'scope,
    {
        let Some(place) = self.limit.take() else {
            self.shared.reject(peer);
            return Ok(());
        };
        let Some((serial, link)) = self.shared.admit(stream, peer) else {
            return Ok(());
        };
        let accepted = Accepted {
            serial,
            link,
            peer,
            place,
        };
        let (shared, config, factory, tls) = (self.shared, self.config, self.factory, self.tls);
        let started = thread::Builder::new()
            .name(CONN_THREAD_NAME.into())
            .stack_size(self.stack_size)
            .spawn_scoped(scope, move || {
                worker::serve(shared, config, factory, tls, accepted)
            });
        // Dropping the handle is fine: the scope still waits for the thread.
        started.map(drop).inspect_err(|e| {
            debug!("closing {peer}: no thread for it ({e})");
            self.shared.forget(serial);
        })
    }

    /// Ends an episode (noted once) when a connection has been accepted and
    /// started with nothing left in the backlog.
    fn accepted(backoff: &mut Backoff, listener: &Listener) {
        backoff.succeeded(|| accept::backlog_is_empty(listener));
    }

    /// Pauses accepting after `what` failed with `err`, warning once per
    /// episode.
    fn pause(&self, backoff: &mut Backoff, err: &io::Error, what: &str) {
        let (delay, _) = backoff.failed(what, err);
        self.shared.count_backoff();
        self.shared.sleep_until(Some(Instant::now() + delay));
    }
}
