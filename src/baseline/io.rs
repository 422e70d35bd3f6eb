//! Blocking socket I/O for connection threads: socket timeouts that are set
//! only when they must change, and the predicates that classify I/O results.

use socket2::Socket;
use std::io;
use std::time::Duration;

pub(super) use crate::reactor::interrupted;

/// Shortest timeout given to a socket. Zero cannot be used: to `setsockopt`
/// it means "no timeout", and `std` refuses it.
pub(super) const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// How late a socket timeout may expire after the deadline it stands for
/// before it is set again. Deadlines move by microseconds with every message;
/// without this slack each read would pay a `setsockopt`.
const SLACK: Duration = Duration::from_millis(1);

/// A blocking call gave up because the socket's timeout expired (`EAGAIN`).
pub(super) fn timed_out(err: &io::Error) -> bool {
    matches!(err.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

/// The read and write timeouts last set on a socket, so that a new one is set
/// only when the old one would expire too late or far too early.
#[derive(Debug, Default)]
pub(super) struct Timeouts {
    /// Current `SO_RCVTIMEO`; `None` blocks without limit (the default).
    read: Option<Duration>,
    /// Current `SO_SNDTIMEO`; `None` blocks without limit (the default).
    write: Option<Duration>,
}

impl Timeouts {
    /// Bounds the next reads by `wanted`.
    ///
    /// # Errors
    ///
    /// The socket's error if `setsockopt` fails.
    pub(super) fn set_read(&mut self, stream: &Socket, wanted: Option<Duration>) -> io::Result<()> {
        if !close_enough(self.read, wanted) {
            stream.set_read_timeout(wanted)?;
            self.read = wanted;
        }
        Ok(())
    }

    /// Bounds the next writes by `wanted`.
    ///
    /// # Errors
    ///
    /// The socket's error if `setsockopt` fails.
    pub(super) fn set_write(&mut self, stream: &Socket, wanted: Option<Duration>) -> io::Result<()> {
        if !close_enough(self.write, wanted) {
            stream.set_write_timeout(wanted)?;
            self.write = wanted;
        }
        Ok(())
    }
}

/// True if a socket timeout of `current` may stand in for `wanted`: it
/// expires at most [`SLACK`] late, and not so early that the thread would
/// wake more than once more before the deadline.
fn close_enough(current: Option<Duration>, wanted: Option<Duration>) -> bool {
    match (current, wanted) {
        (None, None) => true,
        (Some(t), Some(w)) => t <= w + SLACK && t >= w / 2,
        // No limit where one is wanted would miss the deadline; a limit where
        // none is wanted would wake the thread for nothing.
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn ms(n: u64) -> Option<Duration> {
        Some(Duration::from_millis(n))
    }

    #[test]
    fn a_timeout_that_drifts_by_microseconds_is_kept() {
        let set = ms(60_000);
        let wanted = Some(Duration::from_millis(60_000) - Duration::from_micros(40));
        assert!(close_enough(set, wanted));
    }

    #[test]
    fn a_timeout_that_would_expire_late_is_replaced() {
        assert!(!close_enough(ms(60_000), ms(50)));
        assert!(!close_enough(None, ms(50)));
    }

    #[test]
    fn a_timeout_far_shorter_than_needed_is_replaced() {
        assert!(!close_enough(ms(50), ms(60_000)));
        assert!(!close_enough(ms(50), None));
        assert!(close_enough(None, None));
    }
}
