//! [`Slot`]: a connection's place in its server, taken as one guard and
//! given back in one place.

use std::sync::Arc;

use mio::Token;

use super::accept::ConnLimit;
use super::handle::Door;

/// A connection's place in its server: a share of the server-wide cap, a
/// unit of its loop's load (which balancing reads), and, once it has a
/// token, its entry in the loop's set of live ids (which
/// [`Remote`](crate::Remote) checks). Taken together by [`Slot::take`];
/// dropping the slot gives all of it back, on every path — a connection
/// released at the end of a turn, a socket that could not be registered, a
/// hand-off to a loop that has exited.
#[derive(Debug)]
pub(crate) struct Slot {
    /// The server-wide cap the slot counts against.
    limit: Arc<ConnLimit>,
    /// The loop whose load the slot counts in.
    door: Arc<Door>,
    /// The token published as live, once there is one.
    live: Option<Token>,
}

impl Slot {
    /// Takes a place under `limit` on the loop behind `door`; `None` (and
    /// nothing taken) at the cap.
    pub(crate) fn take(limit: &Arc<ConnLimit>, door: &Arc<Door>) -> Option<Slot> {
        if !limit.try_acquire() {
            return None;
        }
        door.add_load();
        Some(Slot {
            limit: Arc::clone(limit),
            door: Arc::clone(door),
            live: None,
        })
    }

    /// Publishes the connection's token as live, for other threads.
    pub(crate) fn publish(&mut self, token: Token) {
        self.door.opened(token);
        self.live = Some(token);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(token) = self.live {
            self.door.closed(token);
        }
        self.door.remove_load();
        self.limit.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_slot_gives_back_its_share_of_the_cap_and_the_load() {
        let poll = mio::Poll::new().unwrap();
        let (door, _commands) = Door::new(poll.registry(), 0).unwrap();
        let limit = Arc::new(ConnLimit::new(1));
        let slot = Slot::take(&limit, &door).expect("one place free");
        assert_eq!(door.load(), 1);
        assert!(Slot::take(&limit, &door).is_none(), "the cap holds");
        drop(slot);
        assert_eq!(door.load(), 0);
        assert!(Slot::take(&limit, &door).is_some(), "the place came back");
    }
}
