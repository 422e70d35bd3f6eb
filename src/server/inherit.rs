//! Servers on listening sockets made outside [`Server::new`]: bound by the
//! caller, passed by systemd's socket activation, or handed over by the
//! process that served them before ([`Listeners`]).
//!
//! See [`Listeners`] for how several loops share one socket, and why a
//! second server on a held port fails.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::sync::Arc;

use super::bind::named;
use super::builder::Server;
use crate::listener::Listener;
use crate::{Bind, UnixBind, sys};

/// Listening sockets (TCP or Unix domain), each with a name: bound here, passed by systemd
/// (names from `FileDescriptorName=`), or taken over from the process that
/// served them before. A [`Server`] serves one of them
/// ([`server`](Listeners::server)); keep the `Listeners` to hand them all to
/// the next process ([`hand_over`](Listeners::hand_over)).
///
/// # How several loops share one inherited socket
///
/// An inherited socket has one accept queue, and every loop must take from
/// it: new `SO_REUSEPORT` sockets would each get a queue of their own that
/// the next process could not take over. So under [`Balance::ReusePort`](crate::Balance::ReusePort)
/// (the default) every loop gets its own descriptor of the one socket
/// (`dup`) registered in its own poller: a new connection makes every idle
/// loop ready, the first to call `accept` takes it and the others find the
/// queue empty (`WouldBlock`) — one wasted wake-up per idle loop and
/// connection, no extra hop, and the loops accept in parallel under load.
/// (`EPOLLEXCLUSIVE` would wake only one, but `mio` does not offer it.)
/// Under [`Balance::RoundRobin`](crate::Balance::RoundRobin) and [`Balance::LeastConnections`](crate::Balance::LeastConnections) the
/// acceptor thread takes from the socket exactly as from one it bound.
///
/// # One port, one server
///
/// [`Server::new`]'s own listeners refuse a port that a live listener holds
/// ([`io::ErrorKind::AddrInUse`], naming the address), even under
/// [`Balance::ReusePort`](crate::Balance::ReusePort): before binding its `SO_REUSEPORT` sockets the
/// server probes the address with a plain one (`SO_REUSEADDR` only, so a
/// port left in `TIME_WAIT` does not count), which any listening socket on
/// the port makes fail. Without the probe a second server would join the
/// first one's `SO_REUSEPORT` group and the kernel would split connections
/// between the two. Joining a running server is done by taking its socket
/// over instead (see [`Listeners::take_over`]).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use evloop::bytes::BytesMut;
/// use evloop::{Conn, Handler, Listeners};
///
/// struct Echo;
/// impl Handler for Echo {
///     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
///         conn.write_bytes(input.split().freeze());
///     }
/// }
///
/// // systemd's sockets if it passed some, else a socket of our own.
/// let listeners = match Listeners::from_systemd()? {
///     Some(listeners) => listeners,
///     None => Listeners::bind("127.0.0.1:0".parse().unwrap())?,
/// };
/// let server = listeners.server(0)?.threads(2).start(|| Echo)?;
/// server.shutdown(Duration::ZERO);
/// server.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct Listeners {
    /// The sockets, in the order they were passed, and their names.
    sockets: Vec<(Listener, String)>,
}

impl Listeners {
    /// One listening socket on `addr` (port 0 picks a free port), with
    /// `SO_REUSEADDR` and without `SO_REUSEPORT`: one accept queue, which
    /// every loop of a server shares and which a handover passes on whole.
    /// Its name is `"main"`. [`Listeners::bind_unix`] binds a Unix socket.
    ///
    /// # Errors
    ///
    /// `AddrInUse` naming the address when a listener holds it, or the
    /// other errors of `bind` and `listen`.
    pub fn bind(addr: SocketAddr) -> io::Result<Self> {
        Listeners::bind_any(Bind::Tcp(addr))
    }

    /// One Unix domain socket, bound as [`Server::bind`] binds one (a stale
    /// socket file replaced, a live one refused with `AddrInUse` naming the
    /// path, the file mode set): [`Listeners::bind`] for a path or an
    /// abstract name. Its name is `"main"`.
    ///
    /// The socket file goes with the socket: the process serving it last
    /// removes it, that is the one that bound it if it never hands it over,
    /// else the one it was handed over to (the last of a chain).
    ///
    /// # Errors
    ///
    /// `AddrInUse` naming the path when a live listener holds it, or the
    /// other errors of `bind` and `listen`.
    pub fn bind_unix(unix: UnixBind) -> io::Result<Self> {
        Listeners::bind_any(Bind::Unix(unix))
    }

    /// [`bind`](Listeners::bind) or [`bind_unix`](Listeners::bind_unix).
    fn bind_any(bind: Bind) -> io::Result<Self> {
        let listener = Listener::bind(&bind, false).map_err(|e| named(&bind, e))?;
        Ok(Listeners {
            sockets: vec![(listener, "main".into())],
        })
    }

    /// Listeners of sockets bound elsewhere, named `"unknown"` as systemd
    /// names an unnamed one. Each is set non-blocking.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if there is none or one does not listen (`listen` was
    /// not called); all are closed then.
    pub fn from_std(listeners: Vec<TcpListener>) -> io::Result<Self> {
        let sockets = (listeners.into_iter())
            .map(|l| (Listener::from(l), "unknown".to_owned()))
            .collect();
        Listeners::checked(sockets)
    }

    /// The sockets systemd passed to this process (socket activation:
    /// `LISTEN_FDS` descriptors from 3 on, for the process `LISTEN_PID`,
    /// named by `LISTEN_FDNAMES`), or `None` when it passed none. Each is
    /// checked to be a listening stream socket, then made close-on-exec and
    /// non-blocking; the three variables are removed from the environment
    /// either way, so a child process does not take them for its own.
    ///
    /// Call it at the start of `main`, before starting threads: it changes
    /// the environment, which is safe only while no other thread reads it
    /// through C (as for `sd_listen_fds`).
    ///
    /// # Errors
    ///
    /// `InvalidInput` naming the variable or the descriptor, when a variable
    /// is not a number or a descriptor is not a listening stream socket.
    pub fn from_systemd() -> io::Result<Option<Self>> {
        let Some(fds) = sys::listen_fds()? else {
            return Ok(None);
        };
        let sockets = fds
            .into_iter()
            .map(|(fd, name)| Ok((listener_of(fd)?, name)))
            .collect::<io::Result<_>>()?;
        Listeners::checked(sockets).map(Some)
    }

    /// `sockets`, once each is known to listen, set non-blocking.
    pub(super) fn checked(sockets: Vec<(Listener, String)>) -> io::Result<Self> {
        if sockets.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no listening socket given",
            ));
        }
        for (listener, name) in &sockets {
            let fd = listener.as_fd().as_raw_fd();
            if !sys::is_listening_stream(fd)? {
                let msg = format!("socket {name:?} (fd {fd}) is not listening");
                return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
            }
            listener.set_nonblocking(true)?;
        }
        Ok(Listeners { sockets })
    }

    /// A [`Server`] on socket `index` (0 for the first), which it shares:
    /// the `Listeners` keep their own descriptor for a later handover.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for an index past the end; the errors of `dup`.
    pub fn server(&self, index: usize) -> io::Result<Server> {
        let Some((listener, _)) = self.sockets.get(index) else {
            let msg = format!("no listener {index}: there are {}", self.sockets.len());
            return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
        };
        Server::inherit(listener.try_clone()?)
    }

    /// Number of sockets (at least 1).
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Always false: there is at least one socket.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// Each socket's name, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.sockets.iter().map(|(_, name)| name.as_str())
    }

    /// Where each socket listens, in order: a TCP address or a Unix name.
    ///
    /// # Errors
    ///
    /// Those of `getsockname`.
    pub fn locals(&self) -> io::Result<Vec<Bind>> {
        self.sockets.iter().map(|(l, _)| l.local()).collect()
    }

    /// The sockets, for passing on.
    pub(super) fn sockets(&self) -> &[(Listener, String)] {
        &self.sockets
    }

    /// Listeners of descriptors handed over by another process, with their
    /// names; the socket files of Unix ones are this process's now.
    pub(super) fn received(fds: Vec<OwnedFd>, names: Vec<String>) -> io::Result<Self> {
        let sockets = (fds.into_iter().zip(names))
            .map(|(fd, name)| Ok((listener_of(fd)?.owning_socket_file()?, name)))
            .collect::<io::Result<_>>()?;
        Listeners::checked(sockets)
    }
}

impl Server {
    /// A server on a socket that is already bound and listening, on either
    /// [`Model`](crate::Model): from a parent process, a test harness, or
    /// [`Listeners`]. The server listens on the socket's address; the
    /// socket is set non-blocking, and each start serves its own duplicate
    /// of it, so the server can be started again and the socket outlives it
    /// wherever else it is open (shutdown closes only the server's own
    /// descriptors, and leaves the socket listening for other holders).
    ///
    /// Several loops all accept from the one socket: see [`Listeners`] for
    /// how. Under [`Model::Threads`](crate::Model::Threads) the socket is
    /// switched to blocking, a flag that every descriptor of it shares, in
    /// every process: serve one socket with one model at a time.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the socket does not listen, or the errors of
    /// `getsockname`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use std::net::{TcpListener, TcpStream};
    /// use std::time::Duration;
    ///
    /// use evloop::bytes::BytesMut;
    /// use evloop::{Conn, Handler, Server};
    ///
    /// struct Echo;
    /// impl Handler for Echo {
    ///     fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
    ///         conn.write_bytes(input.split().freeze());
    ///     }
    /// }
    ///
    /// let listener = TcpListener::bind("127.0.0.1:0")?;
    /// let server = Server::from_listener(listener)?.threads(2).start(|| Echo)?;
    /// let mut client = TcpStream::connect(server.local_addr())?;
    /// client.write_all(b"hi")?;
    /// let mut echo = [0; 2];
    /// client.read_exact(&mut echo)?;
    /// assert_eq!(&echo, b"hi");
    /// server.shutdown(Duration::from_secs(1));
    /// server.join()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn from_listener(listener: TcpListener) -> io::Result<Server> {
        let listeners = Listeners::from_std(vec![listener])?;
        let (listener, _) = listeners.sockets.into_iter().next().expect("one socket");
        Server::inherit(listener)
    }

    /// A server on a Unix domain socket that is already bound and
    /// listening, as [`from_listener`](Server::from_listener) for TCP. Its
    /// socket file is the caller's: the server never removes it.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the socket does not listen, or the errors of
    /// `getsockname`.
    pub fn from_unix_listener(listener: UnixListener) -> io::Result<Server> {
        let listeners = Listeners::checked(vec![(Listener::from(listener), "unknown".to_owned())])?;
        let (listener, _) = listeners.sockets.into_iter().next().expect("one socket");
        Server::inherit(listener)
    }

    /// A server on `listener`, listening already: each start serves
    /// duplicates of it.
    fn inherit(listener: Listener) -> io::Result<Server> {
        let mut server = Server::bind(listener.local()?);
        server.inherited = Some(Arc::new(listener));
        Ok(server)
    }
}

/// A listener on a descriptor passed in, TCP or Unix as its address says.
fn listener_of(fd: OwnedFd) -> io::Result<Listener> {
    let unix = socket2::SockRef::from(&fd).local_addr()?.is_unix();
    Ok(if unix {
        Listener::from(UnixListener::from(fd))
    } else {
        Listener::from(TcpListener::from(fd))
    })
}
