//! Per-loop counters, published once per turn and read as a [`Stats`] snapshot.
//!
//! The loop counts in plain integers ([`Counters`]) and copies them into
//! atomics at the end of every turn, so counting costs no atomic operation
//! per byte or event. A snapshot is therefore at most one turn old.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::CloseReason;

/// Counters of one event loop, as plain integers. Fields are cumulative
/// since the loop started, except `open`, which is a gauge.
///
/// A server's counters are its loops' summed ([`ServerHandle::stats`](crate::ServerHandle::stats));
/// one loop's come from [`LoopHandle::stats`](crate::LoopHandle::stats).
/// [`Display`](fmt::Display) names every counter, on one line, with the
/// connections closed for each reason that occurred; the alternate form
/// (`{:#}`) puts one counter a line and lists every reason, zeros included.
///
/// # Examples
///
/// ```
/// use evloop::{CloseReason, Stats};
///
/// let mut stats = Stats::default();
/// stats.accepted = 2;
/// stats.closed[0] = 2; // how a loop counts a close by its peer
/// assert_eq!(stats.closed_by(&CloseReason::PeerClosed), 2);
/// let line = stats.to_string();
/// assert!(line.starts_with("accepted 2, open 0, rejected 0, closed 2 (closed by peer 2);"), "{line}");
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections currently open.
    pub open: u64,
    /// Connections closed, by [`CloseReason`] (see [`Stats::closed_by`]).
    pub closed: [u64; CloseReason::COUNT],
    /// Bytes read from sockets.
    pub bytes_read: u64,
    /// Bytes written to sockets.
    pub bytes_written: u64,
    /// `read` system calls that returned data or end of stream.
    pub reads: u64,
    /// `write`/`writev` system calls that wrote something.
    pub writes: u64,
    /// Readiness events received from the poller.
    pub events: u64,
    /// Loop turns (one poll each).
    pub turns: u64,
    /// Events that named a connection already closed (dropped, not delivered).
    pub stale_events: u64,
    /// Times accepting was suspended because the process ran out of fds or memory.
    pub accept_backoffs: u64,
    /// Times reading was paused because output passed the high watermark.
    pub read_pauses: u64,
    /// Handler callbacks that panicked.
    pub panics: u64,
    /// The longest loop turn seen, in microseconds (poll wait excluded).
    pub max_turn_micros: u64,
    /// Times the loop was woken from another thread (cross-thread commands).
    pub wakeups: u64,
    /// Commands received from other threads or handlers ([`Remote`](crate::Remote)).
    pub commands: u64,
    /// Connections accepted and closed at once because the server was at its
    /// connection limit.
    pub rejected: u64,
    /// Input bytes the peer sent before its end of stream that the handler
    /// left unconsumed even after [`Handler::on_eof`](crate::Handler::on_eof),
    /// and that were therefore discarded.
    pub input_discarded: u64,
}

impl Stats {
    /// Connections closed for `reason`.
    ///
    /// # Examples
    ///
    /// ```
    /// use evloop::{CloseReason, Stats};
    ///
    /// let stats = Stats::default();
    /// assert_eq!(stats.closed_by(&CloseReason::IdleTimeout), 0);
    /// ```
    pub fn closed_by(&self, reason: &CloseReason) -> u64 {
        self.closed[reason.index()]
    }

    /// Connections closed, all reasons together.
    pub fn closed_total(&self) -> u64 {
        self.closed.iter().sum()
    }

    /// Adds `other`'s counters to these (the longest turn is the larger of
    /// the two): how a server sums its loops.
    pub fn merge(&mut self, other: &Stats) {
        let mut mine = to_slots(self);
        let theirs = to_slots(other);
        for (i, (a, b)) in mine.iter_mut().zip(theirs).enumerate() {
            *a = if i == MAX_TURN_SLOT { (*a).max(b) } else { *a + b };
        }
        *self = from_slots(&mine);
    }
}

/// One line: every counter after its label, closes broken down by the
/// reasons that occurred; `{:#}`: one counter a line, every reason listed.
impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            return self.fmt_lines(f);
        }
        let s = self;
        write!(
            f,
            "accepted {}, open {}, rejected {}, closed {}",
            s.accepted,
            s.open,
            s.rejected,
            s.closed_total()
        )?;
        let mut reasons = (CloseReason::LABELS.iter().zip(s.closed)).filter(|(_, n)| *n > 0);
        if let Some((label, n)) = reasons.next() {
            write!(f, " ({label} {n}")?;
            reasons.try_for_each(|(label, n)| write!(f, ", {label} {n}"))?;
            f.write_str(")")?;
        }
        write!(
            f,
            "; read {} B in {} calls, wrote {} B in {} calls; events {}, turns {}, longest turn {} µs, \
             stale events {}; wake-ups {}, commands {}, accept back-offs {}, read pauses {}, panics {}, \
             input discarded {} B",
            s.bytes_read,
            s.reads,
            s.bytes_written,
            s.writes,
            s.events,
            s.turns,
            s.max_turn_micros,
            s.stale_events,
            s.wakeups,
            s.commands,
            s.accept_backoffs,
            s.read_pauses,
            s.panics,
            s.input_discarded
        )
    }
}

impl Stats {
    /// The alternate form: `label: value`, one a line.
    fn fmt_lines(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self;
        let head = [
            ("accepted", s.accepted),
            ("open", s.open),
            ("rejected", s.rejected),
            ("closed", s.closed_total()),
        ];
        for (label, n) in head {
            writeln!(f, "{label}: {n}")?;
        }
        for (label, n) in CloseReason::LABELS.iter().zip(s.closed) {
            writeln!(f, "  {label}: {n}")?;
        }
        let tail = [
            ("bytes read", s.bytes_read),
            ("read calls", s.reads),
            ("bytes written", s.bytes_written),
            ("write calls", s.writes),
            ("events", s.events),
            ("turns", s.turns),
            ("longest turn (µs)", s.max_turn_micros),
            ("stale events", s.stale_events),
            ("wake-ups", s.wakeups),
            ("commands", s.commands),
            ("accept back-offs", s.accept_backoffs),
            ("read pauses", s.read_pauses),
            ("panics", s.panics),
        ];
        for (label, n) in tail {
            writeln!(f, "{label}: {n}")?;
        }
        write!(f, "input bytes discarded: {}", s.input_discarded)
    }
}

/// Number of `u64` slots a published snapshot needs.
const SLOTS: usize = HEAD + CloseReason::COUNT;
/// Slots before the per-reason counters.
const HEAD: usize = 17;
/// The slot of `max_turn_micros`, merged by maximum instead of sum.
const MAX_TURN_SLOT: usize = 12;

/// The loop-side counters, written by the loop thread only.
pub(crate) type Counters = Stats;

/// Counters shared with other threads, updated at the end of each turn.
#[derive(Debug)]
pub(crate) struct SharedStats {
    /// One atomic per counter, in the order of [`to_slots`].
    slots: [AtomicU64; SLOTS],
}

impl SharedStats {
    /// All zero.
    pub(crate) fn new() -> Self {
        SharedStats {
            slots: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Copies the loop's counters for readers.
    pub(crate) fn publish(&self, counters: &Counters) {
        for (slot, value) in self.slots.iter().zip(to_slots(counters)) {
            slot.store(value, Relaxed);
        }
    }

    /// Reads the last published counters.
    pub(crate) fn snapshot(&self) -> Stats {
        let values: [u64; SLOTS] = std::array::from_fn(|i| self.slots[i].load(Relaxed));
        from_slots(&values)
    }
}

/// Flattens counters into slots.
fn to_slots(s: &Stats) -> [u64; SLOTS] {
    let head = [
        s.accepted,
        s.open,
        s.bytes_read,
        s.bytes_written,
        s.reads,
        s.writes,
        s.events,
        s.turns,
        s.stale_events,
        s.accept_backoffs,
        s.read_pauses,
        s.panics,
        s.max_turn_micros,
        s.wakeups,
        s.commands,
        s.rejected,
        s.input_discarded,
    ];
    std::array::from_fn(|i| {
        if i < head.len() {
            head[i]
        } else {
            s.closed[i - head.len()]
        }
    })
}

/// Inverse of [`to_slots`].
fn from_slots(v: &[u64; SLOTS]) -> Stats {
    Stats {
        accepted: v[0],
        open: v[1],
        bytes_read: v[2],
        bytes_written: v[3],
        reads: v[4],
        writes: v[5],
        events: v[6],
        turns: v[7],
        stale_events: v[8],
        accept_backoffs: v[9],
        read_pauses: v[10],
        panics: v[11],
        max_turn_micros: v[MAX_TURN_SLOT],
        wakeups: v[13],
        commands: v[14],
        rejected: v[15],
        input_discarded: v[16],
        closed: std::array::from_fn(|i| v[HEAD + i]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_counters_read_back_unchanged() {
        let mut c = Counters {
            accepted: 1,
            open: 2,
            bytes_read: 3,
            bytes_written: 4,
            ..Default::default()
        };
        c.reads = 5;
        c.writes = 6;
        c.events = 7;
        c.turns = 8;
        c.stale_events = 9;
        c.accept_backoffs = 10;
        c.read_pauses = 11;
        c.panics = 12;
        c.max_turn_micros = 13;
        c.wakeups = 14;
        c.commands = 15;
        c.rejected = 16;
        c.input_discarded = 17;
        c.closed = std::array::from_fn(|i| 100 + i as u64);
        let shared = SharedStats::new();
        shared.publish(&c);
        assert_eq!(shared.snapshot(), c);
    }

    #[test]
    fn merge_sums_counters_and_keeps_the_longest_turn() {
        let mut a = Stats {
            accepted: 2,
            max_turn_micros: 50,
            wakeups: 1,
            ..Default::default()
        };
        a.closed[0] = 1;
        let mut b = Stats {
            accepted: 3,
            max_turn_micros: 20,
            rejected: 4,
            ..Default::default()
        };
        b.closed[0] = 2;
        a.merge(&b);
        assert_eq!(
            (a.accepted, a.max_turn_micros, a.wakeups, a.rejected),
            (5, 50, 1, 4)
        );
        assert_eq!(a.closed[0], 3);
    }

    #[test]
    fn display_labels_every_counter_and_the_reasons_that_occurred() {
        let mut s = Stats {
            accepted: 201,
            open: 1,
            rejected: 2,
            bytes_read: 12_864,
            bytes_written: 12_800,
            reads: 3,
            writes: 4,
            events: 5,
            turns: 6,
            max_turn_micros: 7,
            stale_events: 8,
            wakeups: 9,
            commands: 10,
            accept_backoffs: 11,
            read_pauses: 12,
            panics: 13,
            input_discarded: 14,
            ..Default::default()
        };
        s.closed[CloseReason::PeerClosed.index()] = 199;
        s.closed[CloseReason::IdleTimeout.index()] = 1;
        assert_eq!(
            s.to_string(),
            "accepted 201, open 1, rejected 2, closed 200 (closed by peer 199, idle timeout 1); \
             read 12864 B in 3 calls, wrote 12800 B in 4 calls; events 5, turns 6, longest turn 7 µs, \
             stale events 8; wake-ups 9, commands 10, accept back-offs 11, read pauses 12, panics 13, \
             input discarded 14 B"
        );
        assert!(
            Stats::default()
                .to_string()
                .starts_with("accepted 0, open 0, rejected 0, closed 0; read 0 B")
        );
    }

    #[test]
    fn alternate_display_lists_every_reason_one_counter_a_line() {
        let mut s = Stats::default();
        s.closed[CloseReason::Shutdown.index()] = 3;
        let text = format!("{s:#}");
        assert!(text.contains("closed: 3\n"), "{text}");
        assert!(text.contains("\n  shutdown: 3\n"), "{text}");
        assert!(text.contains("\n  handler panicked: 0\n"), "{text}");
        assert!(text.ends_with("input bytes discarded: 0"), "{text}");
        assert_eq!(text.lines().count(), 4 + CloseReason::COUNT + 14);
    }

    #[test]
    fn closed_by_reads_the_reason_slot() {
        let mut s = Stats::default();
        s.closed[CloseReason::Panicked.index()] = 3;
        assert_eq!(s.closed_by(&CloseReason::Panicked), 3);
        assert_eq!(s.closed_total(), 3);
    }
}
