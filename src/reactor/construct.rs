//! How an [`EventLoop`] is made: on an address it binds, around a listener
//! bound already, with no listener (outbound connections only), or from the
//! parts a [`Server`](crate::Server) prepares for each of its loops.

use std::io;
use std::net::SocketAddr;

use mio::Events;
use slab::Slab;
use socket2::SockRef;

use super::accept::{self, Acceptor};
use super::core::Core;
use super::event_loop::EventLoop;
use super::parts::Parts;
use crate::addr::Bind;
use crate::listener::Listener;
use crate::{Config, Handler};

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
        Self::from_parts(Parts::lone(Some(listener.into()))?, config, factory)
    }

    /// Binds a listener on `bind` — a TCP address, or a Unix domain socket
    /// (see [`UnixBind`](crate::UnixBind) for how its file is handled) —
    /// and prepares a loop that serves it with handlers made by `factory`.
    ///
    /// # Errors
    ///
    /// Fails if the address cannot be bound (a live server on a Unix path
    /// is `AddrInUse`, naming the path) or the poller cannot be created.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use evloop::bytes::BytesMut;
    /// use evloop::{Bind, Config, Conn, EventLoop, Handler};
    ///
    /// struct Echo;
    /// impl Handler for Echo {
    ///     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
    ///         conn.write_bytes(input.split().freeze());
    ///     }
    /// }
    ///
    /// EventLoop::listen(Bind::unix("/tmp/echo.sock"), Config::default(), || Echo)?.run()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn listen(bind: impl Into<Bind>, config: Config, factory: F) -> io::Result<Self> {
        let listener = Listener::bind(&bind.into(), false)?;
        Self::from_parts(Parts::lone(Some(listener))?, config, factory)
    }

    /// Prepares a loop that serves an already bound Unix listener (set to
    /// non-blocking here), for example one inherited from a service
    /// manager. Its socket file, if any, is left in place at shutdown: it
    /// belongs to whoever bound it.
    ///
    /// # Errors
    ///
    /// Fails if the poller cannot be created or the listener registered.
    pub fn from_std_unix(
        listener: std::os::unix::net::UnixListener,
        config: Config,
        factory: F,
    ) -> io::Result<Self> {
        Self::from_parts(Parts::lone(Some(listener.into()))?, config, factory)
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
                // Accepted sockets inherit the sizes from the handshake on.
                config.apply_buffer_sizes(SockRef::from(&listener));
                Some(Acceptor::new(listener, &registry, parts.episodes)?)
            }
            None => None,
        };
        let local = acceptor.as_ref().map(Acceptor::local).transpose()?;
        Ok(EventLoop {
            events: Events::with_capacity(config.events_capacity),
            poll: parts.poll,
            conns: Slab::new(),
            core: Core::new(registry, config, parts.door, parts.remote, parts.limit),
            acceptor,
            local,
            factory,
            commands: parts.commands,
            shutdown_deadline: None,
            shutting_down: false,
            draining: false,
            last_slow_warning: None,
            #[cfg(feature = "tls")]
            tls: None,
        })
    }
}
