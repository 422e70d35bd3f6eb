//! Building and starting a multi-loop server.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use super::balance::Balance;
use super::handle::ServerHandle;
use super::pin::Pin;
use crate::listener::Listener;
use crate::{Bind, Config, Handler};

/// The execution model a [`Server`] runs its handlers on.
///
/// The same [`Handler`] runs on either, so switching is one line and a
/// benchmark that switches measures the model, not the program.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use std::net::TcpStream;
/// use std::time::Duration;
///
/// use evloop::bytes::BytesMut;
/// use evloop::{Conn, Handler, Model, Server};
///
/// struct Echo;
///
/// impl Handler for Echo {
///     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
///         conn.write_bytes(input.split().freeze());
///     }
/// }
///
/// // The same handler, one OS thread per connection.
/// let server = Server::new("127.0.0.1:0".parse().unwrap())
///     .model(Model::Threads)
///     .start(|| Echo)?;
/// let mut client = TcpStream::connect(server.local_addr())?;
/// client.write_all(b"hi")?;
/// let mut echo = [0; 2];
/// client.read_exact(&mut echo)?;
/// assert_eq!(&echo, b"hi");
/// server.shutdown(Duration::from_secs(1));
/// server.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Model {
    /// Event loops on `mio`, one per thread, each serving many connections.
    #[default]
    Reactor,
    /// One OS thread per connection on blocking sockets: the
    /// [`baseline`](crate::baseline) that event loops are measured against.
    /// [`Server::threads`] and [`Server::balance`] do not apply; there is no
    /// [`Remote`](crate::Remote) (it refuses every id).
    Threads,
}

/// A server of several event loops, one per thread, in one process: handlers
/// on all loops share memory through ordinary Rust (`Arc`, atomics, channels)
/// and reach any connection through [`Remote`](crate::Remote).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use evloop::bytes::BytesMut;
/// use evloop::{Balance, Conn, Handler, Server};
///
/// struct Echo;
/// impl Handler for Echo {
///     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
///         conn.write_bytes(input.split().freeze());
///     }
/// }
///
/// let server = Server::new("127.0.0.1:0".parse().unwrap())
///     .threads(2)
///     .balance(Balance::RoundRobin)
///     .start(|| Echo)?;
/// println!("listening on {}", server.local_addr());
/// server.shutdown(Duration::from_secs(1));
/// server.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Server {
    /// Where to listen: TCP or a Unix socket.
    pub(super) bind: Bind,
    /// Number of loops.
    pub(super) threads: usize,
    /// How connections reach loops.
    pub(super) balance: Balance,
    /// Per-connection limits, the same on every loop.
    pub(super) config: Config,
    /// Most connections open at once, server-wide.
    pub(super) max_connections: usize,
    /// Event loops, or a thread per connection.
    pub(super) model: Model,
    /// Stack size of connection threads under [`Model::Threads`].
    pub(super) stack_size: usize,
    /// Where loop threads run.
    pub(super) pin: Pin,
    /// A socket listening already, served instead of binding `addr`
    /// (see [`Server::from_listener`]); each start serves duplicates of it.
    pub(super) inherited: Option<Arc<Listener>>,
    /// Serves TLS on every connection, if set.
    #[cfg(feature = "tls")]
    pub(super) tls: Option<crate::tls::TlsAcceptor>,
}

impl Server {
    /// A server listening on `addr` (port 0 picks a free port), with one loop
    /// per available core, the default [`Balance`] ([`Balance::ReusePort`]
    /// on Linux), the default [`Config`] and no connection cap.
    pub fn new(addr: SocketAddr) -> Self {
        Server::bind(addr)
    }

    /// A server listening on `bind` — a TCP address, or a Unix domain socket
    /// (a [`UnixBind`](crate::UnixBind) with its options, or a
    /// [`UnixAddr`](crate::UnixAddr)) — with the defaults of
    /// [`new`](Server::new). Both models serve a Unix socket alike.
    ///
    /// On a Unix socket, [`Balance::ReusePort`] gives every loop the same
    /// listening socket (the kernel offers no balancing `SO_REUSEPORT` for
    /// Unix sockets): each new connection wakes the loops that wait, and
    /// one of them takes it. The other balances work as for TCP.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::os::unix::net::UnixStream;
    /// use std::time::Duration;
    /// use evloop::bytes::BytesMut;
    /// use evloop::{Conn, Handler, Server, UnixBind};
    ///
    /// struct Echo;
    /// impl Handler for Echo {
    ///     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
    ///         conn.write_bytes(input.split().freeze());
    ///     }
    /// }
    ///
    /// let path = std::env::temp_dir().join(format!("evloop-doc-{}.sock", std::process::id()));
    /// let server = Server::bind(UnixBind::path(&path).mode(0o600)).threads(1).start(|| Echo)?;
    /// let mut client = UnixStream::connect(&path)?;
    /// client.write_all(b"ping")?;
    /// let mut reply = [0; 4];
    /// client.read_exact(&mut reply)?;
    /// assert_eq!(&reply, b"ping");
    /// server.shutdown(Duration::from_secs(1));
    /// server.join()?;
    /// assert!(!path.exists(), "the socket file is removed at shutdown");
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn bind(bind: impl Into<Bind>) -> Self {
        Server {
            bind: bind.into(),
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            balance: Balance::default(),
            config: Config::default(),
            max_connections: usize::MAX,
            model: Model::Reactor,
            stack_size: crate::baseline::DEFAULT_STACK_SIZE,
            pin: Pin::Off,
            inherited: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Pins loop threads to CPUs (default [`Pin::Off`]); see [`Pin`] for the
    /// trade-offs. Applies to [`Model::Reactor`]: starting a
    /// [`Model::Threads`] server with pinning fails, as its threads are the
    /// connections'.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use evloop::bytes::BytesMut;
    /// use evloop::{Conn, Handler, Pin, Server};
    ///
    /// struct Echo;
    /// impl Handler for Echo {
    ///     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
    ///         conn.write_bytes(input.split().freeze());
    ///     }
    /// }
    ///
    /// // Two loops, on CPUs 2 and 3.
    /// Server::new("127.0.0.1:7000".parse().unwrap())
    ///     .threads(2)
    ///     .pin(Pin::Cpus(vec![2, 3]))
    ///     .run(|| Echo)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn pin(mut self, pin: Pin) -> Self {
        self.pin = pin;
        self
    }

    /// Serves TLS on every connection, on either [`Model`]: each accepted
    /// connection shakes hands with the acceptor's config of the moment
    /// before [`on_open`](Handler::on_open), and handlers read and write
    /// plaintext. Takes an `Arc<rustls::ServerConfig>`, or a
    /// [`TlsAcceptor`](crate::tls::TlsAcceptor) whose clone you keep to
    /// swap the certificate without a restart. See [`evloop::tls`](crate::tls).
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use evloop::bytes::BytesMut;
    /// use evloop::tls::{self, TlsAcceptor};
    /// use evloop::{Conn, Handler, Server};
    ///
    /// struct Echo;
    /// impl Handler for Echo {
    ///     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
    ///         conn.write_bytes(input.split().freeze());
    ///     }
    /// }
    ///
    /// let acceptor = TlsAcceptor::new(tls::server_config("cert.pem", "key.pem")?);
    /// let server = Server::new("127.0.0.1:7443".parse().unwrap()).tls(acceptor.clone()).start(|| Echo)?;
    /// // A renewed certificate, for the connections that come next:
    /// acceptor.set_config(tls::server_config("renewed-cert.pem", "renewed-key.pem")?);
    /// server.shutdown(Duration::from_secs(5));
    /// server.join()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls(mut self, acceptor: impl Into<crate::tls::TlsAcceptor>) -> Self {
        self.tls = Some(acceptor.into());
        self
    }

    /// The execution model; [`Model::Reactor`] by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use evloop::{Model, Server};
    /// # use evloop::{Conn, Handler};
    /// # struct Echo;
    /// # impl Handler for Echo {
    /// #     fn on_data(&mut self, c: &mut Conn<'_>, i: &mut bytes::BytesMut) { c.write_bytes(i.split().freeze()); }
    /// # }
    /// let server = Server::new("127.0.0.1:0".parse().unwrap()).model(Model::Threads).start(|| Echo)?;
    /// server.shutdown(std::time::Duration::ZERO);
    /// server.join()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn model(mut self, model: Model) -> Self {
        self.model = model;
        self
    }

    /// Stack size of each connection thread under [`Model::Threads`]; see
    /// [`ThreadServer::stack_size`](crate::baseline::ThreadServer::stack_size)
    /// (default [`DEFAULT_STACK_SIZE`](crate::baseline::DEFAULT_STACK_SIZE)).
    ///
    /// # Panics
    ///
    /// Panics below [`MIN_STACK_SIZE`](crate::baseline::MIN_STACK_SIZE).
    #[track_caller]
    pub fn thread_stack_size(mut self, bytes: usize) -> Self {
        assert!(
            bytes >= crate::baseline::MIN_STACK_SIZE,
            "thread_stack_size {bytes} is below the minimum of {}",
            crate::baseline::MIN_STACK_SIZE
        );
        self.stack_size = bytes;
        self
    }

    /// Number of event loops, each on its own thread.
    ///
    /// Default: the number of available cores. More loops than cores only
    /// adds context switches.
    ///
    /// # Panics
    ///
    /// Panics if `n` is 0 or above 65,536.
    #[track_caller]
    pub fn threads(mut self, n: usize) -> Self {
        assert!((1..=65_536).contains(&n), "threads must be 1..=65536, got {n}");
        self.threads = n;
        self
    }

    /// How new connections are spread over the loops; see [`Balance`].
    pub fn balance(mut self, balance: Balance) -> Self {
        self.balance = balance;
        self
    }

    /// Per-connection limits and tuning, applied on every loop.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Most connections open at once across all loops.
    ///
    /// Default: no cap (the fd limit is the cap, survived by backing off).
    /// Above the cap a new connection is accepted and closed at once, so the
    /// client learns immediately instead of waiting in the backlog; each one
    /// is counted in [`Stats::rejected`](crate::Stats::rejected).
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

    /// Binds the listener(s) and starts the loops (and the acceptor thread,
    /// under round-robin or least-connections). Each loop makes its handlers
    /// with `factory`, on its own thread.
    ///
    /// # Errors
    ///
    /// Fails if the address cannot be bound or a loop cannot be created; no
    /// thread is left running then.
    pub fn start<F, H>(self, factory: F) -> io::Result<ServerHandle>
    where
        F: Fn() -> H + Send + Sync + 'static,
        H: Handler,
    {
        match self.model {
            Model::Reactor => self.start_loops(factory),
            Model::Threads => self.start_threads(factory),
        }
    }

    /// Starts the server and blocks until it has shut down (see
    /// [`ServerHandle::shutdown`]; pair with [`ServerHandle::shutdown_on_signals`]
    /// through [`start`](Server::start) to stop on Ctrl-C).
    ///
    /// # Errors
    ///
    /// As [`start`](Server::start), or a loop's poller failing.
    pub fn run<F, H>(self, factory: F) -> io::Result<()>
    where
        F: Fn() -> H + Send + Sync + 'static,
        H: Handler,
    {
        self.start(factory)?.join()
    }
}
