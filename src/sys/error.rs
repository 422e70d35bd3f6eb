//! What an OS error number means to the crate: small predicates over
//! [`io::Error`], so that no `errno` constant appears outside `sys`.
//!
//! Every number tested here is POSIX and exists on every Unix that `mio`
//! supports; only its causes differ (noted where they do).

use std::io;

/// A non-blocking `connect` has started and will finish later
/// (`EINPROGRESS`): not a failure. The socket reports writable once the
/// handshake has succeeded or failed.
pub(crate) fn is_in_progress(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::EINPROGRESS)
}

/// The process or the system is out of file descriptors or kernel memory:
/// `EMFILE` (the process's fd limit), `ENFILE` (the system's), `ENOBUFS` or
/// `ENOMEM`. Retrying at once fails the same way; waiting for descriptors
/// to be closed is what helps.
pub(crate) fn is_out_of_resources(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// `accept` failed because of the pending connection it took, not because
/// of the listener: `ECONNABORTED` (the peer reset it while it waited),
/// `EPERM` (a firewall rule refused it, on Linux) or `EPROTO` (a protocol
/// error). That connection is gone; the next one may be accepted at once.
pub(crate) fn is_pending_connection_error(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ECONNABORTED | libc::EPERM | libc::EPROTO)
    )
}

/// `EAGAIN` as starting a thread returns it: the process or user is out of
/// threads, or of memory for their stacks. (On a blocking socket the same
/// number means that a timeout expired.)
pub(crate) fn is_out_of_threads(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::EAGAIN)
}

/// An [`io::ErrorKind::Unsupported`] error saying that `what` is not
/// available on this OS (Linux has all of it).
#[cfg(any(test, not(target_os = "linux")))]
pub(crate) fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{what} is not available on {}", std::env::consts::OS),
    )
}

/// Raw error numbers for tests that build the errors the predicates classify.
#[cfg(test)]
pub(crate) mod errno {
    pub(crate) use libc::{EAGAIN, ECONNABORTED, EMFILE};
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os_error(errno: i32) -> io::Error {
        io::Error::from_raw_os_error(errno)
    }

    #[test]
    fn each_error_falls_in_its_own_class() {
        let emfile = os_error(libc::EMFILE);
        assert!(is_out_of_resources(&emfile));
        assert!(!is_pending_connection_error(&emfile) && !is_out_of_threads(&emfile));
        assert!(is_pending_connection_error(&os_error(libc::ECONNABORTED)));
        assert!(is_out_of_threads(&os_error(libc::EAGAIN)));
        assert!(is_in_progress(&os_error(libc::EINPROGRESS)));
        assert!(!is_in_progress(&os_error(libc::ECONNREFUSED)));
    }

    #[test]
    fn errors_without_a_number_belong_to_no_class() {
        let err = io::Error::other("not from the OS");
        assert!(!is_in_progress(&err) && !is_out_of_resources(&err));
        assert!(!is_pending_connection_error(&err) && !is_out_of_threads(&err));
    }

    #[test]
    fn unsupported_names_the_os() {
        let err = unsupported("CPU affinity");
        assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        assert!(err.to_string().contains(std::env::consts::OS));
    }
}
