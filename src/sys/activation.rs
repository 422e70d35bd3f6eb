//! Listening sockets handed to the process by systemd's socket activation
//! (`sd_listen_fds(3)`): `LISTEN_FDS` descriptors from 3 on, meant for the
//! process `LISTEN_PID` names, with their names in `LISTEN_FDNAMES`.
//!
//! Each descriptor is checked to be an open listening stream socket before
//! it is trusted, then marked close-on-exec (so a program this process runs
//! does not keep the port open) and non-blocking (as the loops need).

use std::ffi::OsString;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

/// The first descriptor systemd passes: after stdin, stdout and stderr.
const FIRST_FD: RawFd = 3;

/// Descriptors above this many are refused as a malformed `LISTEN_FDS`;
/// systemd passes one per `ListenStream=` line.
const MAX_FDS: usize = 4096;

/// The activation variables, as read from the environment.
#[derive(Debug)]
struct Activation {
    /// `LISTEN_PID`, if set.
    pid: Option<OsString>,
    /// `LISTEN_FDS`.
    fds: OsString,
    /// `LISTEN_FDNAMES`, if set.
    names: Option<OsString>,
}

/// The sockets systemd passed, with their names (`"unknown"` where
/// `LISTEN_FDNAMES` gives none, as `sd_listen_fds_with_names` does), or
/// `None` if `LISTEN_FDS` is not set or `LISTEN_PID` names another process
/// (a parent's variables, inherited). The variables are removed in both
/// cases once read, so a child process does not take them for its own.
///
/// # Errors
///
/// `InvalidInput` naming the variable when `LISTEN_FDS` or `LISTEN_PID` is
/// not a number, and naming the descriptor when one is not an open
/// listening stream socket. Every descriptor taken is closed on error.
pub(crate) fn listen_fds() -> io::Result<Option<Vec<(OwnedFd, String)>>> {
    let Some(activation) = read_and_unset() else {
        return Ok(None);
    };
    if let Some(pid) = &activation.pid {
        let pid: u32 = number("LISTEN_PID", pid)?;
        if pid != std::process::id() {
            log::debug!("LISTEN_PID {pid} is another process; no sockets inherited");
            return Ok(None);
        }
    }
    let count: usize = number("LISTEN_FDS", &activation.fds)?;
    if count > MAX_FDS {
        return Err(invalid(format!("LISTEN_FDS={count} is more than {MAX_FDS}")));
    }
    let names = activation.names.map(|n| n.to_string_lossy().into_owned());
    let mut names = names.as_deref().unwrap_or("").split(':').map(str::to_owned);
    let mut taken = Vec::with_capacity(count);
    let end = FIRST_FD + count as RawFd;
    for fd in FIRST_FD..end {
        let socket = match take_listener(fd) {
            Ok(socket) => socket,
            Err(e) => {
                // The ones taken close as `taken` drops; close the rest too.
                close_open(fd + 1..end);
                return Err(e);
            }
        };
        let name = names
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "unknown".into());
        taken.push((socket, name));
    }
    Ok(Some(taken))
}

/// Reads the three variables and removes them from the environment.
fn read_and_unset() -> Option<Activation> {
    let fds = std::env::var_os("LISTEN_FDS");
    let activation = fds.map(|fds| Activation {
        pid: std::env::var_os("LISTEN_PID"),
        fds,
        names: std::env::var_os("LISTEN_FDNAMES"),
    });
    for name in ["LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"] {
        // SAFETY: `Listeners::from_systemd` documents that it is to be called
        // before the process starts threads, as `sd_listen_fds` is; std's
        // own readers of the environment take the same lock as this call.
        unsafe { std::env::remove_var(name) };
    }
    activation
}

/// `value` of variable `name` as a number.
fn number<T: std::str::FromStr>(name: &str, value: &std::ffi::OsStr) -> io::Result<T> {
    let text = value.to_string_lossy();
    text.trim()
        .parse()
        .map_err(|_| invalid(format!("{name}={text:?} is not a number")))
}

/// Takes ownership of `fd` once it is known to be an open listening stream
/// socket, marked close-on-exec and non-blocking.
fn take_listener(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD reads the descriptor's flags and touches nothing; on a
    // closed descriptor it fails with EBADF.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        let e = io::Error::last_os_error();
        return Err(invalid(format!(
            "LISTEN_FDS names fd {fd}, which is not open: {e}"
        )));
    }
    // SAFETY: `fd` is open (checked above), and systemd's protocol hands
    // descriptors from 3 on to this process to own; nothing else in the
    // process owns them, as `from_systemd` is called before they are used.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let listening = is_listening_stream(fd)
        .map_err(|e| invalid(format!("fd {fd} from LISTEN_FDS is not a socket: {e}")))?;
    if !listening {
        return Err(invalid(format!(
            "fd {fd} from LISTEN_FDS is not a listening stream socket"
        )));
    }
    let socket = socket2::SockRef::from(&owned);
    socket.set_cloexec(true)?;
    socket.set_nonblocking(true)?;
    Ok(owned)
}

/// Closes the descriptors of `fds` that are open: the rest of what
/// `LISTEN_FDS` passed, once one of them was refused.
fn close_open(fds: std::ops::Range<RawFd>) {
    for fd in fds {
        // SAFETY: F_GETFD only reads the descriptor's flags; it fails with
        // EBADF on a closed descriptor.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0 {
            // SAFETY: `fd` is open and was passed to this process by
            // `LISTEN_FDS` to own; nothing else in the process uses it.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
}

/// Whether `fd` is a stream socket that listens.
///
/// # Errors
///
/// Those of `getsockopt`: `ENOTSOCK` when `fd` is not a socket.
pub(crate) fn is_listening_stream(fd: RawFd) -> io::Result<bool> {
    Ok(int_option(fd, libc::SO_TYPE)? == libc::SOCK_STREAM && int_option(fd, libc::SO_ACCEPTCONN)? == 1)
}

/// The integer socket option `option` of `fd` (an error if `fd` is not a socket).
fn int_option(fd: RawFd, option: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are valid for writes and `len` holds the
    // size of `value`, so the kernel writes within it.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

/// An `InvalidInput` error saying `msg`.
fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}
