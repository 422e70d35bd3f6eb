//! [`ConnLimit`]: the cap on open connections, one type for both models.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::AcqRel};

/// The server-wide cap on open connections: shared by every loop and the
/// acceptor thread of a [`Server`](crate::Server), and by the acceptor and
/// connection threads of the thread baseline.
#[derive(Debug)]
pub(crate) struct ConnLimit {
    /// Most connections open at once.
    max: usize,
    /// Connections open (or handed over and not yet closed).
    open: AtomicUsize,
}

impl ConnLimit {
    /// A cap of `max` connections.
    pub(crate) fn new(max: usize) -> Self {
        ConnLimit {
            max,
            open: AtomicUsize::new(0),
        }
    }

    /// Takes a place for a new connection; false (and nothing taken) at the cap.
    fn try_acquire(&self) -> bool {
        let taken = self.open.fetch_add(1, AcqRel);
        if taken >= self.max {
            self.open.fetch_sub(1, AcqRel);
            return false;
        }
        true
    }

    /// Takes a place as a guard that gives it back when dropped; `None`
    /// (and nothing taken) at the cap.
    pub(crate) fn take(self: &Arc<Self>) -> Option<Place> {
        self.try_acquire().then(|| Place(Arc::clone(self)))
    }

    /// Gives a place back when a connection closes.
    fn release(&self) {
        self.open.fetch_sub(1, AcqRel);
    }
}

/// One connection's place under a [`ConnLimit`], given back on drop.
#[derive(Debug)]
pub(crate) struct Place(Arc<ConnLimit>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_refuses_above_the_cap_and_a_dropped_place_frees_one() {
        let limit = Arc::new(ConnLimit::new(2));
        let (a, _b) = (limit.take().unwrap(), limit.take().unwrap());
        assert!(limit.take().is_none(), "the cap holds");
        drop(a);
        assert!(limit.take().is_some(), "a dropped place comes back");
    }
}
