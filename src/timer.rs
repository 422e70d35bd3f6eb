//! Timers: a min-heap of deadlines with lazy cancellation.
//!
//! This is pure logic, with no I/O and no clock of its own: callers pass `now`.
//! The event loop keeps one [`TimerQueue`] and uses [`TimerQueue::next_deadline`]
//! as its poll timeout.
//!
//! Cancelling does not search the heap: the entry's payload is removed from a
//! map and the heap slot becomes garbage that is skipped when it reaches the
//! top. Garbage is bounded: when it outnumbers live timers the heap is rebuilt,
//! so memory stays proportional to the number of live timers whatever the
//! set/cancel pattern.
//!
//! Idle timeouts do not use one timer per read. A connection keeps the instant
//! of its last activity and a single pending deadline; when that deadline fires
//! early activity simply re-arms it. That keeps heap traffic at one entry per
//! idle period instead of one per message.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::time::{Duration, Instant};

/// Identifies a timer; unique within one event loop for its whole life.
///
/// Returned by [`Conn::set_timer`](crate::Conn::set_timer) and passed back to
/// [`Handler::on_timer`](crate::Handler::on_timer).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub(crate) u64);

impl fmt::Debug for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimerId({})", self.0)
    }
}

/// How far ahead a timer set for "forever" fires: `Instant` cannot hold
/// `now + Duration::MAX`, and a century is as good as never.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + after`, saturating at a century ahead instead of overflowing.
pub(crate) fn deadline(now: Instant, after: Duration) -> Instant {
    now.checked_add(after.min(FOREVER)).unwrap_or(now)
}

/// Below this many heap slots garbage is never worth a rebuild.
const MIN_COMPACT_LEN: usize = 64;

/// A queue of timers, each carrying a payload `T` handed back when it expires.
#[derive(Debug)]
pub struct TimerQueue<T> {
    /// Deadlines ordered earliest first; may hold ids that were cancelled.
    heap: BinaryHeap<Reverse<(Instant, u64)>>,
    /// Payloads of the live timers. An id absent here is garbage in `heap`.
    live: HashMap<u64, T>,
    /// The id the next timer gets; ids are never reused.
    next_id: u64,
}

impl<T> Default for TimerQueue<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> TimerQueue<T> {
    /// Creates an empty queue.
    pub fn new() -> Self {
        TimerQueue {
            heap: BinaryHeap::new(),
            live: HashMap::new(),
            next_id: 1,
        }
    }

    /// Number of live (set and not yet expired or cancelled) timers.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.live.len()
    }

    /// True when no timer is live.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// Sets a timer expiring at `deadline` and returns its id.
    pub fn insert(&mut self, deadline: Instant, payload: T) -> TimerId {
        let id = self.next_id;
        self.next_id += 1;
        self.heap.push(Reverse((deadline, id)));
        self.live.insert(id, payload);
        TimerId(id)
    }

    /// Cancels a timer; returns its payload if it was still live.
    pub fn cancel(&mut self, id: TimerId) -> Option<T> {
        let payload = self.live.remove(&id.0)?;
        self.compact_if_mostly_garbage();
        Some(payload)
    }

    /// The earliest deadline of a live timer, if any.
    pub fn next_deadline(&mut self) -> Option<Instant> {
        self.drop_cancelled_top();
        self.heap.peek().map(|Reverse((deadline, _))| *deadline)
    }

    /// Removes and returns one timer whose deadline is at or before `now`,
    /// earliest first. Call repeatedly until it returns `None`.
    pub fn pop_expired(&mut self, now: Instant) -> Option<(TimerId, T)> {
        self.drop_cancelled_top();
        let &Reverse((deadline, id)) = self.heap.peek()?;
        if deadline > now {
            return None;
        }
        self.heap.pop();
        let payload = self.live.remove(&id).expect("top of heap is live");
        Some((TimerId(id), payload))
    }

    /// Pops garbage off the top so the top, if any, is a live timer.
    fn drop_cancelled_top(&mut self) {
        while let Some(Reverse((_, id))) = self.heap.peek() {
            if self.live.contains_key(id) {
                return;
            }
            self.heap.pop();
        }
    }

    /// Rebuilds the heap once cancelled entries outnumber live ones.
    fn compact_if_mostly_garbage(&mut self) {
        if self.heap.len() >= MIN_COMPACT_LEN && self.heap.len() > 2 * self.live.len() {
            let live = &self.live;
            self.heap.retain(|Reverse((_, id))| live.contains_key(id));
        }
    }

    /// Heap slots in use, garbage included (for tests of the memory bound).
    #[cfg(test)]
    fn slots(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn timers_expire_in_deadline_order() {
        let base = Instant::now();
        let mut q = TimerQueue::new();
        q.insert(at(base, 30), "c");
        q.insert(at(base, 10), "a");
        q.insert(at(base, 20), "b");
        let fired: Vec<_> = std::iter::from_fn(|| q.pop_expired(at(base, 100)))
            .map(|(_, p)| p)
            .collect();
        assert_eq!(fired, ["a", "b", "c"]);
        assert!(q.is_empty());
    }

    #[test]
    fn nothing_expires_before_its_deadline() {
        let base = Instant::now();
        let mut q = TimerQueue::new();
        q.insert(at(base, 10), ());
        assert!(q.pop_expired(at(base, 9)).is_none());
        assert!(q.pop_expired(at(base, 10)).is_some());
    }

    #[test]
    fn cancelled_timer_never_fires_and_leaves_next_deadline() {
        let base = Instant::now();
        let mut q = TimerQueue::new();
        let early = q.insert(at(base, 5), 1);
        q.insert(at(base, 50), 2);
        assert_eq!(q.cancel(early), Some(1));
        assert_eq!(q.cancel(early), None, "double cancel is a no-op");
        assert_eq!(q.next_deadline(), Some(at(base, 50)));
        assert_eq!(q.pop_expired(at(base, 60)).map(|(_, p)| p), Some(2));
    }

    #[test]
    fn ids_are_unique_and_returned_on_expiry() {
        let base = Instant::now();
        let mut q = TimerQueue::new();
        let a = q.insert(base, ());
        let b = q.insert(base, ());
        assert_ne!(a, b);
        let (fired, ()) = q.pop_expired(base).unwrap();
        assert!(fired == a || fired == b);
    }

    #[test]
    fn set_and_cancel_churn_keeps_memory_bounded() {
        let base = Instant::now();
        let mut q = TimerQueue::new();
        q.insert(at(base, 1_000_000), "long-lived");
        for i in 0..100_000 {
            let id = q.insert(at(base, 1_000 + i), "short");
            q.cancel(id);
        }
        assert_eq!(q.len(), 1);
        assert!(q.slots() < 2 * MIN_COMPACT_LEN, "heap holds {} slots", q.slots());
    }

    #[test]
    fn a_deadline_of_duration_max_saturates_instead_of_overflowing() {
        let now = Instant::now();
        let far = deadline(now, Duration::MAX);
        assert!(far > now + Duration::from_secs(3600 * 24 * 365));
        assert_eq!(
            deadline(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }

    #[test]
    fn empty_queue_has_no_deadline() {
        let mut q: TimerQueue<()> = TimerQueue::new();
        assert_eq!(q.next_deadline(), None);
        assert!(q.pop_expired(Instant::now()).is_none());
    }
}
