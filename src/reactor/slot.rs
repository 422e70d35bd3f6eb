//! [`Slot`]: a connection's place in its server, taken as one guard and
//! given back in one place.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mio::Token;

use crate::limit::{ConnLimit, Place};

/// A loop's connections as other threads see them: the tokens of the open
/// ones, so that a command for a closed connection is refused at once
/// instead of vanishing, and the load, which least-connections balancing
/// reads. Changed only through [`Slot`]s.
#[derive(Debug, Default)]
pub(crate) struct Occupancy {
    /// Tokens of the loop's open connections.
    live: Mutex<HashSet<usize>>,
    /// Connections the loop has or has been handed.
    load: AtomicUsize,
}

impl Occupancy {
    /// Connections the loop has or has been handed.
    pub(crate) fn load(&self) -> usize {
        self.load.load(Ordering::Relaxed)
    }

    /// True while `token` names an open connection.
    pub(crate) fn is_live(&self, token: Token) -> bool {
        self.live_set().contains(&token.0)
    }

    /// The set of live tokens, whatever a panicking holder left.
    fn live_set(&self) -> std::sync::MutexGuard<'_, HashSet<usize>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A connection's place in its server: a share of the server-wide cap, a
/// unit of its loop's load (which balancing reads), and, once it has a
/// token, its entry in the loop's set of live ids (which
/// [`Remote`](crate::Remote) checks). Taken together by [`Slot::take`];
/// dropping the slot gives all of it back, on every path — a connection
/// released at the end of a turn, a socket that could not be registered, a
/// hand-off to a loop that has exited.
#[derive(Debug)]
pub(crate) struct Slot {
    /// The slot's place under the server-wide cap.
    _place: Place,
    /// The loop whose load the slot counts in.
    loop_: Arc<Occupancy>,
    /// The token published as live, once there is one.
    live: Option<Token>,
}

impl Slot {
    /// Takes a place under `limit` on the loop of `occupancy`; `None` (and
    /// nothing taken) at the cap.
    pub(crate) fn take(limit: &Arc<ConnLimit>, occupancy: &Arc<Occupancy>) -> Option<Slot> {
        let place = limit.take()?;
        occupancy.load.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            _place: place,
            loop_: Arc::clone(occupancy),
            live: None,
        })
    }

    /// Publishes the connection's token as live, for other threads.
    pub(crate) fn publish(&mut self, token: Token) {
        self.loop_.live_set().insert(token.0);
        self.live = Some(token);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(token) = self.live {
            self.loop_.live_set().remove(&token.0);
        }
        self.loop_.load.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_slot_gives_back_its_share_of_the_cap_the_load_and_its_id() {
        let occupancy = Arc::new(Occupancy::default());
        let limit = Arc::new(ConnLimit::new(1));
        let mut slot = Slot::take(&limit, &occupancy).expect("one place free");
        slot.publish(Token(7));
        assert_eq!(occupancy.load(), 1);
        assert!(occupancy.is_live(Token(7)));
        assert!(Slot::take(&limit, &occupancy).is_none(), "the cap holds");
        drop(slot);
        assert_eq!(occupancy.load(), 0);
        assert!(!occupancy.is_live(Token(7)));
        assert!(Slot::take(&limit, &occupancy).is_some(), "the place came back");
    }
}
