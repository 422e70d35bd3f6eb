//! Where a server listens ([`Bind`]) and who a connection's peer is
//! ([`Peer`]): a TCP address, or a Unix domain socket.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::sys::PeerCred;

/// The name of a Unix domain socket: a path in the file system, or (Linux
/// and Android) a name in the abstract namespace, which has no file and
/// vanishes with its last socket.
///
/// # Examples
///
/// ```
/// use evloop::UnixAddr;
///
/// let path = UnixAddr::from("/run/app.sock");
/// assert_eq!(path.as_path(), Some(std::path::Path::new("/run/app.sock")));
/// let name = UnixAddr::abstract_name("app");
/// assert_eq!(name.to_string(), "@app");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UnixAddr {
    /// A socket file at this path.
    Path(PathBuf),
    /// A name in Linux's abstract namespace (without the leading NUL byte).
    Abstract(Vec<u8>),
}

impl UnixAddr {
    /// A name in the abstract namespace (Linux and Android; binding or
    /// connecting to one fails elsewhere).
    pub fn abstract_name(name: impl AsRef<[u8]>) -> Self {
        UnixAddr::Abstract(name.as_ref().to_vec())
    }

    /// The socket file's path, or `None` for an abstract name.
    pub fn as_path(&self) -> Option<&Path> {
        match self {
            UnixAddr::Path(path) => Some(path),
            UnixAddr::Abstract(_) => None,
        }
    }

    /// The address as the socket calls take it.
    pub(crate) fn sockaddr(&self) -> std::io::Result<socket2::SockAddr> {
        match self {
            UnixAddr::Path(path) => socket2::SockAddr::unix(path),
            UnixAddr::Abstract(name) => {
                use std::os::unix::ffi::OsStrExt;
                let mut bytes = Vec::with_capacity(name.len() + 1);
                bytes.push(0);
                bytes.extend_from_slice(name);
                socket2::SockAddr::unix(std::ffi::OsStr::from_bytes(&bytes))
            }
        }
    }
}

impl fmt::Display for UnixAddr {
    /// A path as it is; an abstract name after `@`, as `ss` shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnixAddr::Path(path) => write!(f, "{}", path.display()),
            UnixAddr::Abstract(name) => write!(f, "@{}", String::from_utf8_lossy(name)),
        }
    }
}

impl From<PathBuf> for UnixAddr {
    fn from(path: PathBuf) -> Self {
        UnixAddr::Path(path)
    }
}

impl From<&Path> for UnixAddr {
    fn from(path: &Path) -> Self {
        UnixAddr::Path(path.to_path_buf())
    }
}

impl From<&str> for UnixAddr {
    fn from(path: &str) -> Self {
        UnixAddr::Path(path.into())
    }
}

/// Where a server listens: a TCP address, or a Unix domain socket with its
/// options. [`Server::bind`](crate::Server::bind),
/// [`EventLoop::listen`](crate::EventLoop::listen),
/// [`ThreadServer::listen`](crate::baseline::ThreadServer::listen) and
/// `http::HttpServer::bind` take `impl Into<Bind>`, so a `SocketAddr`, a
/// [`UnixBind`] or a [`UnixAddr`] will do.
///
/// # Examples
///
/// ```no_run
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
/// // Readable and writable by the owner and the group only.
/// Server::bind(UnixBind::path("/run/echo.sock").mode(0o660)).run(|| Echo)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    /// A TCP listener on this address (port 0 picks a free port).
    Tcp(SocketAddr),
    /// A Unix domain stream socket.
    Unix(UnixBind),
}

impl Bind {
    /// A Unix socket at `path`, with the default options of [`UnixBind`].
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        Bind::Unix(UnixBind::path(path))
    }

    /// The TCP address, or `None` for a Unix socket.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            Bind::Tcp(addr) => Some(*addr),
            Bind::Unix(_) => None,
        }
    }

    /// The Unix socket's name, or `None` for TCP.
    pub fn unix_addr(&self) -> Option<&UnixAddr> {
        match self {
            Bind::Tcp(_) => None,
            Bind::Unix(unix) => Some(&unix.addr),
        }
    }
}

impl fmt::Display for Bind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bind::Tcp(addr) => addr.fmt(f),
            Bind::Unix(unix) => unix.addr.fmt(f),
        }
    }
}

impl From<SocketAddr> for Bind {
    fn from(addr: SocketAddr) -> Self {
        Bind::Tcp(addr)
    }
}

impl From<UnixBind> for Bind {
    fn from(unix: UnixBind) -> Self {
        Bind::Unix(unix)
    }
}

impl From<UnixAddr> for Bind {
    fn from(addr: UnixAddr) -> Self {
        Bind::Unix(UnixBind { addr, mode: None })
    }
}

/// A Unix domain stream socket to listen on, and how.
///
/// Binding a path follows what servers are expected to do with socket
/// files:
///
/// * **A stale file is replaced.** A socket file left by a server that
///   died is removed if nothing listens on it (a connect is refused);
///   binding over a live server fails with `AddrInUse` naming the path, and
///   a path that is not a socket is never removed.
/// * **The mode** ([`mode`](UnixBind::mode)) is set after binding and
///   before listening, so no client connects under the umask's mode.
/// * **The file is removed when the listener closes** (at shutdown), if it
///   is still ours: a file another server has since bound at the same path
///   (another inode) is left alone.
///
/// An abstract name ([`UnixAddr::abstract_name`]) has no file: none of
/// this applies to it, and binding a name in use fails with `AddrInUse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixBind {
    /// The socket's name.
    pub(crate) addr: UnixAddr,
    /// Permission bits set on the socket file after binding.
    pub(crate) mode: Option<u32>,
}

impl UnixBind {
    /// A socket file at `path`, with the umask's mode.
    pub fn path(path: impl Into<PathBuf>) -> Self {
        UnixBind {
            addr: UnixAddr::Path(path.into()),
            mode: None,
        }
    }

    /// A name in the abstract namespace (Linux and Android).
    pub fn abstract_name(name: impl AsRef<[u8]>) -> Self {
        UnixBind {
            addr: UnixAddr::abstract_name(name),
            mode: None,
        }
    }

    /// Permission bits of the socket file (for example `0o660`: owner and
    /// group may connect), set with `chmod` after binding. Default: none
    /// set, the file keeps the mode the umask gives it. Ignored for an
    /// abstract name, which has no file.
    ///
    /// # Panics
    ///
    /// Panics if `mode` has bits beyond `0o7777`.
    #[track_caller]
    pub fn mode(mut self, mode: u32) -> Self {
        assert!(mode <= 0o7777, "mode {mode:#o} has bits beyond 0o7777");
        self.mode = Some(mode);
        self
    }

    /// The socket's name.
    pub fn addr(&self) -> &UnixAddr {
        &self.addr
    }
}

/// Who is at the other end of a connection.
///
/// [`Conn::peer_addr`](crate::Conn::peer_addr) stays the quick way to a TCP
/// peer's address; [`Conn::peer`](crate::Conn::peer) gives this, which
/// also covers Unix sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Peer {
    /// A TCP peer at this address.
    Tcp(SocketAddr),
    /// A peer over a Unix domain socket, which has no address worth the
    /// name (a client rarely binds one), but has credentials: `None` where
    /// the OS does not tell them.
    Unix(Option<PeerCred>),
}

impl Peer {
    /// The TCP peer's address, or `None` over a Unix socket.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            Peer::Tcp(addr) => Some(*addr),
            Peer::Unix(_) => None,
        }
    }

    /// The Unix peer's process, user and group ids, or `None` for TCP.
    pub fn cred(&self) -> Option<PeerCred> {
        match self {
            Peer::Tcp(_) => None,
            Peer::Unix(cred) => *cred,
        }
    }

    /// The address `Conn::peer_addr` reports: the TCP address, or the
    /// unspecified `0.0.0.0:0` over a Unix socket.
    pub(crate) fn socket_addr(&self) -> SocketAddr {
        match self {
            Peer::Tcp(addr) => *addr,
            Peer::Unix(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        }
    }
}

impl fmt::Display for Peer {
    /// A TCP address as it is; a Unix peer as `unix:pid=P,uid=U` (or
    /// `unix` when its credentials are unknown).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(addr) => addr.fmt(f),
            Peer::Unix(Some(cred)) => write!(f, "unix:pid={},uid={}", cred.pid, cred.uid),
            Peer::Unix(None) => f.write_str("unix"),
        }
    }
}

impl From<SocketAddr> for Peer {
    fn from(addr: SocketAddr) -> Self {
        Peer::Tcp(addr)
    }
}
