//! A connection as the rest of the server sees it: its socket, its counters,
//! and its place in the registry.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::Stats;
use crate::stats::Counters;

/// A connection as the rest of the server sees it.
///
/// Aligned to a cache line: its counters are written by the connection's
/// thread at every read and write, and should not share a line with a
/// neighbour's.
#[derive(Debug)]
#[repr(align(64))]
pub(super) struct Link {
    /// The socket, TCP or Unix; closed when the last reference drops.
    pub(super) stream: socket2::Socket,
    /// The connection's counters.
    pub(super) counters: LinkCounters,
}

/// Counters of one connection, as its thread last published them. Only that
/// thread writes them (it counts in plain integers and stores them here
/// after every step), so no locked instruction is paid per read.
#[derive(Debug, Default)]
pub(super) struct LinkCounters {
    /// Bytes read.
    bytes_read: AtomicU64,
    /// Bytes written.
    bytes_written: AtomicU64,
    /// Reads that returned data or end of stream.
    reads: AtomicU64,
    /// Writes that wrote something.
    writes: AtomicU64,
    /// Times output rose above the high watermark.
    read_pauses: AtomicU64,
    /// Callbacks that panicked.
    panics: AtomicU64,
    /// Input left unconsumed at end of stream and discarded.
    input_discarded: AtomicU64,
}

impl LinkCounters {
    /// Publishes a connection thread's counters (it alone writes them).
    pub(super) fn publish(&self, counters: &Counters) {
        let pairs = [
            (&self.bytes_read, counters.bytes_read),
            (&self.bytes_written, counters.bytes_written),
            (&self.reads, counters.reads),
            (&self.writes, counters.writes),
            (&self.read_pauses, counters.read_pauses),
            (&self.panics, counters.panics),
            (&self.input_discarded, counters.input_discarded),
        ];
        for (slot, value) in pairs {
            slot.store(value, Ordering::Relaxed);
        }
    }

    /// Counts a panic outside the session (the handler factory).
    pub(super) fn panicked(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds these counters to `stats`.
    pub(super) fn add_to(&self, stats: &mut Stats) {
        stats.bytes_read += self.bytes_read.load(Ordering::Relaxed);
        stats.bytes_written += self.bytes_written.load(Ordering::Relaxed);
        stats.reads += self.reads.load(Ordering::Relaxed);
        stats.writes += self.writes.load(Ordering::Relaxed);
        stats.read_pauses += self.read_pauses.load(Ordering::Relaxed);
        stats.panics += self.panics.load(Ordering::Relaxed);
        stats.input_discarded += self.input_discarded.load(Ordering::Relaxed);
    }
}
