//! Listening sockets of either kind, as both models take them: a TCP
//! listener, or a Unix domain listener with the socket file it owns.
//!
//! Binding a Unix path replaces a stale socket file (one nothing listens
//! on), refuses a live one with `AddrInUse` naming the path, sets the
//! file's mode before listening, and removes the file when the last clone
//! of the listener closes, if the file is still the one it bound.

use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use log::debug;
use socket2::{Domain, SockAddr, Socket, Type};

use crate::addr::{Bind, Peer, UnixAddr, UnixBind};
use crate::sys;

/// Backlog of listening sockets: the kernel's usual cap (`somaxconn`), so
/// bursts of connections wait in the kernel rather than being refused.
pub(crate) const BACKLOG: i32 = 4096;

/// A bound, listening socket of either kind.
#[derive(Debug)]
pub(crate) enum Listener {
    /// A TCP listener.
    Tcp(std::net::TcpListener),
    /// A Unix domain listener and, if this process created its socket
    /// file, the guard that removes the file when the last clone closes.
    Unix(UnixListener, UnixName),
}

/// The name of a Unix listener, and the socket file it owns if any.
#[derive(Debug, Clone)]
pub(crate) struct UnixName {
    /// The name it was bound to, if known (a listener handed in by the
    /// caller may have none worth reporting).
    pub(crate) addr: Option<UnixAddr>,
    /// Removes the socket file when the last listener sharing it closes,
    /// or at [`Listener::remove_socket_file`].
    pub(crate) file: Option<Arc<SocketFile>>,
}

/// A socket file this process bound: removed on drop if it is still the
/// same file (device and inode), so a file another server has bound at the
/// same path since is left alone.
#[derive(Debug)]
pub(crate) struct SocketFile {
    /// The file's path.
    path: PathBuf,
    /// Its device and inode when bound.
    id: (u64, u64),
    /// Removed already (by [`SocketFile::remove`]).
    removed: AtomicBool,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        self.remove();
    }
}

impl SocketFile {
    /// Leaves the file to whoever serves the socket next (a handover):
    /// neither a drop nor [`SocketFile::remove`] removes it after this.
    fn disown(&self) {
        self.removed.store(true, Ordering::Release);
    }

    /// Removes the file if it is still the one bound; once only.
    fn remove(&self) {
        if self.removed.swap(true, Ordering::AcqRel) {
            return;
        }
        match fs::symlink_metadata(&self.path) {
            Ok(meta) if (meta.dev(), meta.ino()) == self.id => match fs::remove_file(&self.path) {
                Ok(()) => debug!("{}: socket file removed", self.path.display()),
                Err(e) => debug!("{}: cannot remove the socket file: {e}", self.path.display()),
            },
            Ok(_) => debug!(
                "{}: another socket file is there now; left alone",
                self.path.display()
            ),
            Err(_) => {}
        }
    }
}

impl From<std::net::TcpListener> for Listener {
    fn from(listener: std::net::TcpListener) -> Self {
        Listener::Tcp(listener)
    }
}

impl From<UnixListener> for Listener {
    /// A Unix listener bound elsewhere (inherited, or made by the caller):
    /// its socket file, if any, is the caller's and stays.
    fn from(listener: UnixListener) -> Self {
        let addr = listener.local_addr().ok().and_then(|a| unix_addr_of(&a));
        Listener::Unix(listener, UnixName { addr, file: None })
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Tcp(l) => l.as_fd(),
            Listener::Unix(l, _) => l.as_fd(),
        }
    }
}

/// The name of a std Unix socket address, if it has one.
fn unix_addr_of(addr: &std::os::unix::net::SocketAddr) -> Option<UnixAddr> {
    if let Some(path) = addr.as_pathname() {
        return Some(UnixAddr::Path(path.to_path_buf()));
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        #[cfg(target_os = "android")]
        use std::os::android::net::SocketAddrExt;
        #[cfg(target_os = "linux")]
        use std::os::linux::net::SocketAddrExt;
        if let Some(name) = addr.as_abstract_name() {
            return Some(UnixAddr::abstract_name(name));
        }
    }
    None
}

impl Listener {
    /// Binds `bind`, non-blocking; `reuse_port` as for
    /// [`listen`](crate::reactor::listen) (TCP only).
    pub(crate) fn bind(bind: &Bind, reuse_port: bool) -> io::Result<Listener> {
        match bind {
            Bind::Tcp(addr) => crate::reactor::listen(*addr, reuse_port).map(Listener::Tcp),
            Bind::Unix(unix) => bind_unix(unix),
        }
    }

    /// Where it listens: the TCP address (with the port picked), or the
    /// Unix name.
    pub(crate) fn local(&self) -> io::Result<Bind> {
        match self {
            Listener::Tcp(l) => l.local_addr().map(Bind::Tcp),
            Listener::Unix(_, name) => Ok(match &name.addr {
                Some(addr) => Bind::from(addr.clone()),
                None => Bind::from(UnixAddr::Path(PathBuf::new())),
            }),
        }
    }

    /// Another listener on the same socket (a duplicated fd), sharing its
    /// socket file: for several loops that accept from one Unix socket.
    pub(crate) fn try_clone(&self) -> io::Result<Listener> {
        Ok(match self {
            Listener::Tcp(l) => Listener::Tcp(l.try_clone()?),
            Listener::Unix(l, name) => Listener::Unix(l.try_clone()?, name.clone()),
        })
    }

    /// Sets the listener's blocking mode.
    pub(crate) fn set_nonblocking(&self, nonblocking: bool) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(nonblocking),
            Listener::Unix(l, _) => l.set_nonblocking(nonblocking),
        }
    }

    /// Accepts a connection (blocking or not, as the listener is set).
    pub(crate) fn accept(&self) -> io::Result<(Socket, Peer)> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, addr)| (Socket::from(s), Peer::Tcp(addr))),
            Listener::Unix(l, _) => l.accept().map(|(s, _)| {
                let peer = unix_peer(s.as_fd());
                (Socket::from(s), peer)
            }),
        }
    }

    /// Removes the socket file this process bound for it now, rather than
    /// when the last clone closes: for a server whose acceptor is done while
    /// another thread may still hold a clone for a moment (to wake it), so
    /// that the file is gone when the server's run returns.
    pub(crate) fn remove_socket_file(&self) {
        if let Listener::Unix(_, UnixName { file: Some(file), .. }) = self {
            file.remove();
        }
    }

    /// Leaves the socket file to the process this listener is handed over
    /// to: this process no longer removes it.
    pub(crate) fn disown_socket_file(&self) {
        if let Listener::Unix(_, UnixName { file: Some(file), .. }) = self {
            file.disown();
        }
    }

    /// Takes on the socket file of a Unix listener handed over by the
    /// process that owned it (see [`Listener::disown_socket_file`]), to
    /// remove it when the last clone closes, as if bound here.
    pub(crate) fn owning_socket_file(self) -> io::Result<Listener> {
        Ok(match self {
            Listener::Unix(
                l,
                UnixName {
                    addr: Some(addr),
                    file: None,
                },
            ) => {
                let file = match addr.as_path() {
                    Some(path) => Some(Arc::new(SocketFile::new(path)?)),
                    None => None,
                };
                Listener::Unix(
                    l,
                    UnixName {
                        addr: Some(addr),
                        file,
                    },
                )
            }
            other => other,
        })
    }

    /// Opens a connection to the listener itself (and drops it), to wake
    /// a thread blocked in `accept`.
    pub(crate) fn connect_to_self(&self) {
        match self {
            Listener::Tcp(l) => {
                if let Ok(mut addr) = l.local_addr() {
                    if addr.ip().is_unspecified() {
                        addr.set_ip(match addr {
                            std::net::SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                            std::net::SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
                        });
                    }
                    let _ = std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(1));
                }
            }
            Listener::Unix(l, _) => {
                if let Ok(addr) = l.local_addr() {
                    let _ = std::os::unix::net::UnixStream::connect_addr(&addr);
                }
            }
        }
    }
}

/// The peer of an accepted or connected Unix socket, with its credentials
/// where the OS tells them.
pub(crate) fn unix_peer(socket: BorrowedFd<'_>) -> Peer {
    Peer::Unix(sys::peer_cred(socket).ok())
}

/// Binds and listens on a Unix socket: see the module docs.
fn bind_unix(unix: &UnixBind) -> io::Result<Listener> {
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", unix.addr));
    let sockaddr = unix.addr.sockaddr().map_err(named)?;
    let path = unix.addr.as_path();
    if let Some(path) = path {
        remove_if_stale(path, &sockaddr)?;
    }
    // socket2 sets close-on-exec on every socket it creates.
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.bind(&sockaddr).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => in_use(&unix.addr),
        _ => named(e),
    })?;
    // From here on the guard removes the file on every path.
    let file = match path {
        Some(path) => Some(Arc::new(SocketFile::new(path)?)),
        None => None,
    };
    if let (Some(path), Some(mode)) = (path, unix.mode) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(named)?;
    }
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    let name = UnixName {
        addr: Some(unix.addr.clone()),
        file,
    };
    Ok(Listener::Unix(socket.into(), name))
}

impl SocketFile {
    /// The guard of the socket file just bound at `path`.
    fn new(path: &Path) -> io::Result<SocketFile> {
        let meta = fs::symlink_metadata(path)?;
        Ok(SocketFile {
            path: path.to_path_buf(),
            id: (meta.dev(), meta.ino()),
            removed: AtomicBool::new(false),
        })
    }
}

/// The error for a name a live server listens on.
fn in_use(addr: &UnixAddr) -> io::Error {
    io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("{addr}: address in use (a server is listening there)"),
    )
}

/// Removes the socket file at `path` if nothing listens on it: a connect
/// refused means its server is gone. A live server, or a file that is not
/// a socket, is an error and the file stays.
fn remove_if_stale(path: &Path, sockaddr: &SockAddr) -> io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
    };
    if !meta.file_type().is_socket() {
        let msg = format!("{}: exists and is not a socket; not removed", path.display());
        return Err(io::Error::new(io::ErrorKind::AddrInUse, msg));
    }
    // Non-blocking, so a live server with a full backlog answers at once.
    let probe = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    probe.set_nonblocking(true)?;
    match probe.connect(sockaddr) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            debug!("{}: removing a stale socket file", path.display());
            match fs::remove_file(path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
                _ => Ok(()),
            }
        }
        Ok(()) => Err(in_use(&UnixAddr::Path(path.to_path_buf()))),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock || sys::is_in_progress(&e) => {
            Err(in_use(&UnixAddr::Path(path.to_path_buf())))
        }
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!(
                "{}: cannot tell whether a server listens there: {e}",
                path.display()
            ),
        )),
    }
}

/// Starts a non-blocking connect to the Unix socket `addr`.
///
/// # Errors
///
/// The socket cannot be created, or the connect fails at once (refused, no
/// such file, or the server's backlog is full).
pub(crate) fn dial_unix(addr: &UnixAddr) -> io::Result<Socket> {
    let sockaddr = addr.sockaddr()?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    match socket.connect(&sockaddr) {
        Err(e) if !sys::is_in_progress(&e) => Err(io::Error::new(e.kind(), format!("{addr}: {e}"))),
        _ => Ok(socket),
    }
}
