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
//! The reactor ends an episode when the backlog is empty; a blocking accept
//! cannot see that, so here an episode ends after a quiet spell: failures
//! closer together than [`EPISODE_GAP`] belong to one episode and get one
//! warning.

use crate::reactor::{MAX_BACKOFF, MIN_BACKOFF};
use std::io;
use std::time::{Duration, Instant};

/// Failures further apart than this belong to separate episodes. Pauses are
/// capped at [`MAX_BACKOFF`], so while a shortage lasts failures come at most
/// that far apart (plus an accept); twice as much marks a recovery.
const EPISODE_GAP: Duration = Duration::from_secs(2);

/// Pause lengths and episodes of the acceptor's back-off.
#[derive(Debug)]
pub(super) struct Backoff {
    /// Length of the next pause; doubles while failures go on.
    next_delay: Duration,
    /// When the last failure happened, if any has.
    last_failure: Option<Instant>,
}

impl Backoff {
    /// No failure yet.
    pub(super) fn new() -> Self {
        Backoff {
            next_delay: MIN_BACKOFF,
            last_failure: None,
        }
    }

    /// A connection was accepted and started: retry quickly should the next
    /// one fail. The episode itself goes on until failures stop.
    pub(super) fn succeeded(&mut self) {
        self.next_delay = MIN_BACKOFF;
    }

    /// Records a failure at `now`. Returns how long to pause, and whether this
    /// failure begins a new episode (which the caller reports once).
    pub(super) fn failed(&mut self, now: Instant) -> (Duration, bool) {
        let new_episode = self
            .last_failure
            .is_none_or(|last| now.saturating_duration_since(last) > EPISODE_GAP);
        if new_episode {
            self.next_delay = MIN_BACKOFF;
        }
        self.last_failure = Some(now);
        let delay = self.next_delay;
        self.next_delay = (delay * 2).min(MAX_BACKOFF);
        (delay, new_episode)
    }
}

pub(super) use crate::reactor::is_transient;

/// Errors that mean the process or system is out of fds, memory or threads:
/// the reactor's list, plus `EAGAIN`, which is how starting a thread says
/// the latter.
pub(super) fn is_resource_exhaustion(err: &io::Error) -> bool {
    crate::reactor::is_resource_exhaustion(err) || err.raw_os_error() == Some(libc::EAGAIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap_and_reset_on_success() {
        let mut backoff = Backoff::new();
        let now = Instant::now();
        let delays: Vec<_> = (0..10).map(|_| backoff.failed(now).0).collect();
        assert_eq!(delays[..3], [MIN_BACKOFF, MIN_BACKOFF * 2, MIN_BACKOFF * 4]);
        assert_eq!(*delays.last().unwrap(), MAX_BACKOFF);
        backoff.succeeded();
        assert_eq!(backoff.failed(now).0, MIN_BACKOFF);
    }

    #[test]
    fn one_episode_lasts_while_failures_keep_coming() {
        let mut backoff = Backoff::new();
        let start = Instant::now();
        assert!(backoff.failed(start).1, "the first failure starts an episode");
        backoff.succeeded();
        assert!(
            !backoff.failed(start + MAX_BACKOFF).1,
            "a short success does not end it"
        );
        let later = start + MAX_BACKOFF + EPISODE_GAP + Duration::from_millis(1);
        assert!(backoff.failed(later).1, "a quiet spell ends it");
    }

    #[test]
    fn failing_to_start_a_thread_counts_as_exhaustion() {
        assert!(is_resource_exhaustion(&io::Error::from_raw_os_error(
            libc::EAGAIN
        )));
        assert!(is_resource_exhaustion(&io::Error::from_raw_os_error(
            libc::EMFILE
        )));
        assert!(!is_resource_exhaustion(&io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
    }
}
