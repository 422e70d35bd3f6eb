//! The credentials of the process at the other end of a Unix socket.
//!
//! | call | Linux, Android | elsewhere |
//! |---|---|---|
//! | [`peer_cred`] | `SO_PEERCRED` | `Unsupported` |

use std::io;
use std::os::fd::BorrowedFd;

/// Who is at the other end of a Unix domain socket: the process id, user
/// id and group id the kernel recorded when the connection was made
/// (`SO_PEERCRED`), which the peer cannot forge.
///
/// # Examples
///
/// ```
/// use std::os::fd::AsFd;
/// use std::os::unix::net::UnixStream;
///
/// let (ours, _theirs) = UnixStream::pair()?;
/// let cred = evloop::sys::peer_cred(ours.as_fd())?;
/// assert_eq!(cred.pid, std::process::id() as i32);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerCred {
    /// The peer's process id at the time it connected.
    pub pid: i32,
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
}

/// Reads the credentials of the peer of the connected Unix socket `socket`.
///
/// # Errors
///
/// `Unsupported` outside Linux and Android; the OS error for a socket that
/// is not a connected Unix socket.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn peer_cred(socket: BorrowedFd<'_>) -> io::Result<PeerCred> {
    use std::os::fd::AsRawFd;
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is a `ucred` that lives across the call and `len` is its
    // size, so the kernel writes within it; the fd is borrowed, hence open.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(PeerCred {
        pid: cred.pid,
        uid: cred.uid,
        gid: cred.gid,
    })
}

/// Reads the credentials of the peer of a Unix socket: unsupported here.
///
/// # Errors
///
/// Always `Unsupported`.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub fn peer_cred(_socket: BorrowedFd<'_>) -> io::Result<PeerCred> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "SO_PEERCRED is Linux-only",
    ))
}
