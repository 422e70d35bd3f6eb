//! Back-off for the acceptor when the process runs out of fds, memory or
//! threads.
//!
//! A blocking `accept` that fails with `EMFILE` or `ENFILE` fails again at once
//! while the pending connection waits in the backlog, so retrying in a loop
//! spins a core while serving nobody; starting a thread fails the same way
//! when the process is out of memory or threads. The acceptor therefore
//! sleeps, 10 ms at first and doubling up to 1 s, exactly as the reactor's
//! acceptor does, while the open connections keep being served and, as they
//! close, free what accepting needs.
//!
//! An episode runs, as on the reactor, from the first pause until accepting
//! succeeds with nothing left in the backlog; it is logged once as it begins
//! and noted once as it ends. A blocking `accept` never reports an empty
//! backlog, so after each success within an episode the acceptor asks
//! ([`backlog_is_empty`]).

use crate::listener::Listener;
use crate::reactor::{Episodes, MAX_BACKOFF, MIN_BACKOFF};
use crate::sys;
use std::io;
use std::os::fd::AsFd;
use std::time::Duration;

/// Pause lengths and episodes of the acceptor's back-off; episodes are
/// logged as the reactor's are ([`Episodes`], with this acceptor its only
/// member).
#[derive(Debug)]
pub(super) struct Backoff {
    /// Length of the next pause; doubles while failures go on.
    next_delay: Duration,
    /// Set from the first pause until a success finds the backlog empty.
    in_episode: bool,
    /// Counts the episode's pauses and logs its beginning and end.
    episodes: Episodes,
}

impl Backoff {
    /// No failures yet.
    pub(super) fn new() -> Self {
        Backoff {
            next_delay: MIN_BACKOFF,
            in_episode: false,
            episodes: Episodes::default(),
        }
    }

    /// A connection was accepted and started: retry quickly should the next
    /// one fail. Within an episode, `backlog_is_empty` is asked (only then,
    /// as it costs a system call); if it holds, the episode ends, is noted,
    /// and its pauses are returned.
    pub(super) fn succeeded(&mut self, backlog_is_empty: impl FnOnce() -> bool) -> Option<u64> {
        self.next_delay = MIN_BACKOFF;
        if !self.in_episode || !backlog_is_empty() {
            return None;
        }
        self.in_episode = false;
        self.episodes.left(true)
    }

    /// Records that `what` failed with `err`. Returns how long to pause,
    /// and whether this failure begins an episode (then warned of, once).
    pub(super) fn failed(&mut self, what: &str, err: &io::Error) -> (Duration, bool) {
        let begins = self
            .episodes
            .paused(!self.in_episode, what, err, is_resource_exhaustion(err));
        self.in_episode = true;
        let delay = self.next_delay;
        self.next_delay = (delay * 2).min(MAX_BACKOFF);
        (delay, begins)
    }
}

/// Whether no connection waits in `listener`'s backlog, asked without
/// blocking.
///
/// `poll` with a zero timeout reports a listening socket readable while a
/// connection waits, and neither takes that connection nor changes the
/// socket, which shutdown reaches from another thread; switching the
/// listener to non-blocking for one more `accept` would do both. On an error
/// the answer is no: the episode stays open until the next success asks again.
pub(super) fn backlog_is_empty(listener: &Listener) -> bool {
    matches!(sys::poll_readable(listener.as_fd()), Ok(false))
}

pub(super) use crate::reactor::is_transient;

/// Errors that mean the process or system is out of fds, memory or threads:
/// the reactor's list, plus `EAGAIN`, which is how starting a thread says
/// the latter.
pub(super) fn is_resource_exhaustion(err: &io::Error) -> bool {
    crate::reactor::is_resource_exhaustion(err) || sys::is_out_of_threads(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::errno::{EAGAIN, ECONNABORTED, EMFILE};

    /// What `accept` fails with when the process is out of fds.
    fn emfile() -> io::Error {
        io::Error::from_raw_os_error(EMFILE)
    }

    #[test]
    fn pauses_double_up_to_the_cap_and_reset_on_success() {
        let mut backoff = Backoff::new();
        let delays: Vec<_> = (0..10).map(|_| backoff.failed("accept", &emfile()).0).collect();
        assert_eq!(delays[..3], [MIN_BACKOFF, MIN_BACKOFF * 2, MIN_BACKOFF * 4]);
        assert_eq!(*delays.last().unwrap(), MAX_BACKOFF);
        backoff.succeeded(|| false);
        assert_eq!(backoff.failed("accept", &emfile()).0, MIN_BACKOFF);
    }

    #[test]
    fn an_episode_lasts_until_a_success_empties_the_backlog() {
        let mut backoff = Backoff::new();
        assert_eq!(backoff.succeeded(|| panic!("not asked outside an episode")), None);
        assert!(
            backoff.failed("accept", &emfile()).1,
            "the first failure begins an episode"
        );
        assert_eq!(backoff.succeeded(|| false), None, "more connections wait");
        assert!(
            !backoff.failed("accept", &emfile()).1,
            "failing again is the same episode"
        );
        assert_eq!(backoff.succeeded(|| true), Some(2), "the backlog is empty");
        assert!(
            backoff.failed("accept", &emfile()).1,
            "the next failure begins a new episode"
        );
    }

    #[test]
    fn the_backlog_check_sees_a_waiting_connection_without_taking_it() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let listener = Listener::Tcp(tcp);
        assert!(backlog_is_empty(&listener));
        let _client = std::net::TcpStream::connect(addr).unwrap();
        let start = std::time::Instant::now();
        while backlog_is_empty(&listener) {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "the connection never arrived"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!backlog_is_empty(&listener), "asking does not take it");
        listener.accept().unwrap();
        assert!(backlog_is_empty(&listener));
    }

    #[test]
    fn failing_to_start_a_thread_counts_as_exhaustion() {
        let os_error = io::Error::from_raw_os_error;
        assert!(is_resource_exhaustion(&os_error(EAGAIN)));
        assert!(is_resource_exhaustion(&emfile()));
        assert!(!is_resource_exhaustion(&os_error(ECONNABORTED)));
    }
}
