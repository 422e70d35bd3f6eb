//! The socket calls that std, `mio` and `socket2` leave to the caller: sends
//! that never raise `SIGPIPE`, a look at the receive queue, `poll` on one
//! descriptor, and a load-balanced `SO_REUSEPORT`.
//!
//! # Portability
//!
//! | call | Linux, Android | FreeBSD, DragonFly | NetBSD, OpenBSD, illumos | macOS, iOS |
//! |---|---|---|---|---|
//! | [`send_nosignal`] | `MSG_NOSIGNAL` | `MSG_NOSIGNAL` | `MSG_NOSIGNAL` | plain `send`: the socket has `SO_NOSIGPIPE` |
//! | [`recv`] | the system call, not glibc's cancellation point | `recv` | `recv` | `recv` |
//! | [`peek_unread`] | `MSG_PEEK \| MSG_DONTWAIT` | same | same | same |
//! | [`poll_readable`] | `poll` | same | same | same |
//! | [`set_reuse_port`] | `SO_REUSEPORT` | `SO_REUSEPORT_LB` (FreeBSD), `SO_REUSEPORT` (DragonFly) | `Unsupported` | `Unsupported` |

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, BorrowedFd};

use socket2::Socket;

/// The `send` flags that keep a write to a reset connection from raising
/// `SIGPIPE`, which kills a process that has not ignored it (Rust binaries
/// ignore it; C hosts and some runtimes don't).
#[cfg(not(target_vendor = "apple"))]
const NO_SIGPIPE: libc::c_int = libc::MSG_NOSIGNAL;

/// Apple's kernels take the socket option `SO_NOSIGPIPE` instead of the
/// flag. std, `mio` and `socket2` set it on every socket they create, and an
/// accepted socket inherits it from its listener, so no flag is needed.
#[cfg(target_vendor = "apple")]
const NO_SIGPIPE: libc::c_int = 0;

/// Sends `buf` on `socket`; a peer that has reset the connection yields
/// `EPIPE` rather than a `SIGPIPE`.
///
/// # Errors
///
/// Those of `send`, `WouldBlock` on a full non-blocking socket included.
#[inline]
pub(crate) fn send_nosignal(socket: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    let fd = socket.as_raw_fd();
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes for the call.
    let n = unsafe { raw::send(fd, buf.as_ptr().cast(), buf.len(), NO_SIGPIPE) };
    result(n)
}

/// Receives once into `buf` (bytes it does not initialise stay so).
///
/// # Errors
///
/// Those of `recv`, `WouldBlock` on an empty non-blocking socket (or an
/// expired `SO_RCVTIMEO`) included.
#[inline]
pub(crate) fn recv(socket: BorrowedFd<'_>, buf: &mut [MaybeUninit<u8>]) -> io::Result<usize> {
    let fd = socket.as_raw_fd();
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the call,
    // and `recv` writes only initialised bytes into it.
    let n = unsafe { raw::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    result(n)
}

/// `recv` into an initialised buffer, for a layer that keeps its own (TLS
/// records); otherwise as [`recv`].
///
/// # Errors
///
/// As [`recv`].
#[inline]
#[cfg(feature = "tls")]
pub(crate) fn recv_slice(socket: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    let fd = socket.as_raw_fd();
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the call.
    let n = unsafe { raw::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    result(n)
}

/// A `ssize_t` result as `io::Result`: -1 means `errno`.
#[inline]
fn result(n: isize) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `recv` and `send` on the hot path.
///
/// On Linux they are made as system calls directly: glibc's `recv` and
/// `send` are thread-cancellation points, and in a process of more than one
/// thread each call turns asynchronous cancellation on and off around the
/// system call — about 60 instructions per echo, a quarter of what a bare
/// `mio` loop spends in all. Nothing in Rust uses thread cancellation.
/// Elsewhere, libc's functions.
mod raw {
    #[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64")))]
    pub(super) unsafe fn recv(
        fd: libc::c_int,
        buf: *mut libc::c_void,
        len: usize,
        flags: libc::c_int,
    ) -> isize {
        let (addr, addr_len) = (
            std::ptr::null_mut::<libc::sockaddr>(),
            std::ptr::null_mut::<libc::socklen_t>(),
        );
        // SAFETY: the caller vouches for `buf` and `len`; a null address
        // asks for no peer address, as `recv` does.
        unsafe { libc::syscall(libc::SYS_recvfrom, fd, buf, len, flags, addr, addr_len) as isize }
    }

    #[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64")))]
    pub(super) unsafe fn send(
        fd: libc::c_int,
        buf: *const libc::c_void,
        len: usize,
        flags: libc::c_int,
    ) -> isize {
        let (addr, addr_len) = (std::ptr::null::<libc::sockaddr>(), 0 as libc::socklen_t);
        // SAFETY: the caller vouches for `buf` and `len`; a null address on
        // a connected socket is what `send` passes.
        unsafe { libc::syscall(libc::SYS_sendto, fd, buf, len, flags, addr, addr_len) as isize }
    }

    #[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64"))))]
    pub(super) unsafe fn recv(
        fd: libc::c_int,
        buf: *mut libc::c_void,
        len: usize,
        flags: libc::c_int,
    ) -> isize {
        // SAFETY: the caller vouches for `buf` and `len`.
        unsafe { libc::recv(fd, buf, len, flags) as isize }
    }

    #[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64"))))]
    pub(super) unsafe fn send(
        fd: libc::c_int,
        buf: *const libc::c_void,
        len: usize,
        flags: libc::c_int,
    ) -> isize {
        // SAFETY: the caller vouches for `buf` and `len`.
        unsafe { libc::send(fd, buf, len, flags) as isize }
    }
}

/// Sends `bufs` in one `sendmsg`, as [`send_nosignal`] sends one buffer.
///
/// # Errors
///
/// Those of `sendmsg`.
#[inline]
pub(crate) fn send_vectored_nosignal(socket: BorrowedFd<'_>, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    socket2::SockRef::from(&socket).send_vectored_with_flags(bufs, NO_SIGPIPE)
}

/// Whether the peer has sent bytes that are not yet read, asked without
/// blocking (whatever the socket's mode) and without taking them:
/// `Ok(false)` once the peer has shut down its side and everything is read.
///
/// # Errors
///
/// `WouldBlock` when nothing waits, or the socket's pending error.
pub(crate) fn peek_unread(socket: &Socket) -> io::Result<bool> {
    let mut byte = [MaybeUninit::<u8>::uninit()];
    let n = socket.recv_with_flags(&mut byte, libc::MSG_PEEK | libc::MSG_DONTWAIT)?;
    Ok(n > 0)
}

/// Whether `poll` with a zero timeout reports `fd` ready to read (or in
/// error). It never blocks and changes nothing: on a listener it tells
/// whether a connection waits in the backlog, which it leaves there.
///
/// # Errors
///
/// Those of `poll` (`EINTR` included: the caller decides whether to ask again).
pub(crate) fn poll_readable(fd: BorrowedFd<'_>) -> io::Result<bool> {
    let mut pollfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pollfd` is one valid, writable `pollfd`, matching the count of
    // 1, and names a descriptor that the borrow keeps open during the call.
    match unsafe { libc::poll(&mut pollfd, 1, 0) } {
        -1 => Err(io::Error::last_os_error()),
        ready => Ok(ready > 0),
    }
}

/// Whether this OS spreads the connections to one port over several
/// listeners ([`set_reuse_port`] succeeds).
pub(crate) const REUSE_PORT_BALANCES: bool = cfg!(any(
    target_os = "linux",
    target_os = "android",
    target_os = "dragonfly",
    target_os = "freebsd"
));

/// Lets several listeners bind the same address, each then taking a share
/// of its new connections, hashed by the kernel. Call it on every one of
/// them before `bind`.
///
/// Linux, Android and DragonFly spread connections under `SO_REUSEPORT`.
/// FreeBSD's `SO_REUSEPORT` hands every connection to one listener; its
/// `SO_REUSEPORT_LB` spreads them.
///
/// # Errors
///
/// The error of `setsockopt`.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "dragonfly"))]
pub(crate) fn set_reuse_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_port(true)
}

/// Lets several listeners bind the same address, each then taking a share
/// of its new connections: `SO_REUSEPORT_LB`, as FreeBSD's `SO_REUSEPORT`
/// hands every connection to one listener.
///
/// # Errors
///
/// The error of `setsockopt`.
#[cfg(target_os = "freebsd")]
pub(crate) fn set_reuse_port(socket: &Socket) -> io::Result<()> {
    socket.set_reuse_port_lb(true)
}

/// Where the kernel would not spread connections (macOS, NetBSD, OpenBSD,
/// illumos: their `SO_REUSEPORT`, where it exists, gives them all to one
/// listener), sharing a port would leave every loop but one idle.
///
/// # Errors
///
/// Always [`io::ErrorKind::Unsupported`].
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "dragonfly",
    target_os = "freebsd"
)))]
pub(crate) fn set_reuse_port(_: &Socket) -> io::Result<()> {
    Err(super::error::unsupported(
        "SO_REUSEPORT spreading connections over listeners",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    /// A connected pair of blocking sockets.
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (client, listener.accept().unwrap().0)
    }

    /// Waits until `poll` reports `stream` readable. Panics after five seconds.
    #[track_caller]
    fn wait_readable(stream: &TcpStream) {
        let start = std::time::Instant::now();
        while !poll_readable(stream.as_fd()).unwrap() {
            assert!(start.elapsed().as_secs() < 5, "never became readable");
            std::thread::yield_now();
        }
    }

    #[test]
    fn peeking_neither_blocks_nor_takes_the_bytes() {
        let (mut client, server) = pair();
        let socket = socket2::SockRef::from(&server);
        assert!(!poll_readable(server.as_fd()).unwrap());
        let nothing = peek_unread(&socket).unwrap_err();
        assert_eq!(nothing.kind(), io::ErrorKind::WouldBlock);
        client.write_all(b"x").unwrap();
        wait_readable(&server);
        assert!(peek_unread(&socket).unwrap());
        let mut byte = [0];
        (&server).read_exact(&mut byte).unwrap();
        assert_eq!(&byte, b"x", "the byte peeked at is still there");
        drop(client);
        wait_readable(&server);
        assert!(!peek_unread(&socket).unwrap(), "end of stream");
    }

    #[test]
    fn sending_to_a_reset_peer_fails_with_an_error() {
        let (client, server) = pair();
        socket2::SockRef::from(&client)
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
        drop(client);
        let socket = socket2::SockRef::from(&server);
        // The first send may still be accepted; the reset then fails the next.
        let err = loop {
            if let Err(e) = send_nosignal(socket.as_fd(), b"ping") {
                break e;
            }
        };
        assert!(matches!(
            err.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
        ));
    }

    #[test]
    fn reuse_port_is_refused_exactly_where_it_would_not_balance() {
        let socket = Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        assert_eq!(set_reuse_port(&socket).is_ok(), REUSE_PORT_BALANCES);
    }
}
