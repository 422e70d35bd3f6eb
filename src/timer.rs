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
    use proptest::prelude::*;

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
        // Miri runs each step thousands of times slower; a thousand still
        // passes many compactions.
        let churn = if cfg!(miri) { 1_000 } else { 100_000 };
        for i in 0..churn {
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

    /// One step of a timer script.
    #[derive(Debug, Clone)]
    enum Step {
        /// Sets a timer this many ms after the current time.
        Set(u64),
        /// Cancels the n-th timer ever set (modulo how many were set).
        Cancel(usize),
        /// Moves time forward this many ms and pops everything expired.
        Advance(u64),
    }

    /// Most steps in one script; Miri, thousands of times slower, runs
    /// shorter ones.
    const MAX_STEPS: usize = if cfg!(miri) { 40 } else { 300 };

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (0..100u64).prop_map(Step::Set),
            2 => any::<usize>().prop_map(Step::Cancel),
            1 => (0..60u64).prop_map(Step::Advance),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 256 }))]

        /// Against a model (a sorted map of live timers): timers fire in
        /// deadline order, ties in the order set, each once, none early and
        /// none after being cancelled; `next_deadline` is the earliest live
        /// one; and after a cancel the heap holds at most twice the live
        /// timers (or fewer than `MIN_COMPACT_LEN` slots).
        #[test]
        fn any_set_cancel_and_expiry_script_matches_a_sorted_map(
            steps in proptest::collection::vec(step(), 0..MAX_STEPS)
        ) {
            let base = Instant::now();
            let mut now = 0;
            let mut q = TimerQueue::new();
            let mut model = std::collections::BTreeMap::new();
            let mut ids = Vec::new();
            for step in steps {
                let advanced = matches!(step, Step::Advance(_));
                match step {
                    Step::Set(after) => {
                        let id = q.insert(at(base, now + after), ids.len());
                        model.insert((now + after, id), ids.len());
                        ids.push((now + after, id));
                    }
                    Step::Cancel(n) if !ids.is_empty() => {
                        let (when, id) = ids[n % ids.len()];
                        prop_assert_eq!(q.cancel(id), model.remove(&(when, id)));
                        prop_assert!(q.slots() < MIN_COMPACT_LEN || q.slots() <= 2 * q.len());
                    }
                    Step::Cancel(_) => {}
                    Step::Advance(ms) => {
                        now += ms;
                        while let Some((id, payload)) = q.pop_expired(at(base, now)) {
                            let (&(when, expected), _) = model.first_key_value().expect("a live timer fired");
                            prop_assert!(when <= now);
                            prop_assert_eq!(id, expected);
                            prop_assert_eq!(Some(payload), model.remove(&(when, id)));
                        }
                    }
                }
                prop_assert_eq!(q.len(), model.len());
                prop_assert_eq!(q.next_deadline(), model.keys().next().map(|&(when, _)| at(base, when)));
                if advanced {
                    prop_assert!(model.keys().next().is_none_or(|&(when, _)| when > now), "a due timer stayed");
                }
            }
        }
    }
}
