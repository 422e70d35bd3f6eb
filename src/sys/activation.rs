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
    take_all(FIRST_FD, count, names.as_deref()).map(Some)
}

/// Takes the `count` descriptors from `first` on, each with its name from
/// the colon-separated `names`; if one is refused, closes every one of
/// them and says which.
fn take_all(first: RawFd, count: usize, names: Option<&str>) -> io::Result<Vec<(OwnedFd, String)>> {
    let mut names = names.unwrap_or("").split(':').map(str::to_owned);
    let mut taken = Vec::with_capacity(count);
    let end = first + count as RawFd;
    for fd in first..end {
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
    Ok(taken)
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

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::os::fd::AsRawFd;
    use std::sync::{Mutex, MutexGuard};

    use super::*;

    /// Held by each test while it places descriptors at fixed numbers, so
    /// that two do not pick the same ones.
    static NUMBERS: Mutex<()> = Mutex::new(());

    /// This test's turn with the descriptor numbers.
    fn turn() -> MutexGuard<'static, ()> {
        NUMBERS.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `fd` is open in this process.
    fn is_open(fd: RawFd) -> bool {
        // SAFETY: F_GETFD only reads the descriptor's flags.
        unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
    }

    /// `count` free descriptor numbers in a row, high enough that the other
    /// tests of this process, whose descriptors are allocated lowest first,
    /// do not reach them.
    fn free_run(count: RawFd) -> RawFd {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `limit` is valid for writes.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) }, 0);
        let top = limit.rlim_cur.min(1 << 20) as RawFd;
        (top / 2..top - count)
            .rev()
            .step_by(count as usize)
            .find(|&base| (base..base + count).all(|fd| !is_open(fd)))
            .expect("free descriptor numbers")
    }

    /// Places a duplicate of `fd` at number `at`, as systemd passes it: not
    /// close-on-exec.
    fn place(fd: &impl AsRawFd, at: RawFd) {
        // SAFETY: dup2 onto `at`, which `free_run` found closed; the new
        // descriptor is owned by the test until `take_all` takes it.
        assert_eq!(unsafe { libc::dup2(fd.as_raw_fd(), at) }, at);
    }

    #[test]
    fn passed_listeners_are_taken_named_close_on_exec_and_non_blocking() {
        let _turn = turn();
        let first = free_run(3);
        let listeners: Vec<_> = (0..3)
            .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        for (i, l) in listeners.iter().enumerate() {
            place(l, first + i as RawFd);
        }
        let taken = take_all(first, 3, Some("web::admin")).unwrap();
        let names: Vec<_> = taken.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(names, ["web", "unknown", "admin"]);
        for (i, (fd, _)) in taken.iter().enumerate() {
            assert_eq!(fd.as_raw_fd(), first + i as RawFd);
            // SAFETY: F_GETFD and F_GETFL only read the descriptor's flags.
            let (fd_flags, fl_flags) = unsafe {
                (
                    libc::fcntl(fd.as_raw_fd(), libc::F_GETFD),
                    libc::fcntl(fd.as_raw_fd(), libc::F_GETFL),
                )
            };
            assert_ne!(fd_flags & libc::FD_CLOEXEC, 0, "close-on-exec");
            assert_ne!(fl_flags & libc::O_NONBLOCK, 0, "non-blocking");
        }
        drop(taken);
        assert!((first..first + 3).all(|fd| !is_open(fd)));
    }

    #[test]
    fn one_refused_descriptor_closes_all_that_were_passed() {
        let _turn = turn();
        let first = free_run(3);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        place(&listener, first);
        place(&file, first + 1);
        place(&listener, first + 2);
        let err = take_all(first, 3, None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains(&format!("fd {}", first + 1)), "{err}");
        for fd in first..first + 3 {
            assert!(!is_open(fd), "fd {fd} left open");
        }
        // Ours, not passed, stay open.
        assert!(is_open(listener.as_raw_fd()) && is_open(file.as_raw_fd()));
    }

    #[test]
    fn a_descriptor_that_is_not_open_is_named_and_the_others_closed() {
        let _turn = turn();
        let first = free_run(3);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        place(&listener, first);
        place(&listener, first + 2);
        let err = take_all(first, 3, None).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("fd {}, which is not open", first + 1)),
            "{err}"
        );
        assert!((first..first + 3).all(|fd| !is_open(fd)));
    }
}
