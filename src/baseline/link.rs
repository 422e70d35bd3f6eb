//! A connection as the rest of the server sees it: its socket, its counters,
//! and its place in the registry.

use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::shared::Shared;
use crate::{CloseReason, Stats};

/// A connection as the rest of the server sees it.
///
/// Aligned to a cache line: its counters are written by the connection's
/// thread at every read and write, and should not share a line with a
/// neighbour's.
#[derive(Debug)]
#[repr(align(64))]
pub(super) struct Link {
    /// The socket; closed when the last reference drops.
    pub(super) stream: TcpStream,
    /// The connection's counters.
    pub(super) counters: LinkCounters,
}

/// Counters of one connection. Only its own thread writes them, so a plain
/// load and store count exactly, without a locked instruction per read.
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
}

/// Adds `n` to a counter that only the calling thread writes.
fn bump(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Ordering::Relaxed) + n, Ordering::Relaxed);
}

impl LinkCounters {
    /// A read returned `n` bytes (0 for end of stream).
    pub(super) fn read(&self, n: usize) {
        bump(&self.reads, 1);
        bump(&self.bytes_read, n as u64);
    }

    /// A write took `n` bytes.
    pub(super) fn wrote(&self, n: usize) {
        bump(&self.writes, 1);
        bump(&self.bytes_written, n as u64);
    }

    /// Output rose above the high watermark.
    pub(super) fn paused(&self) {
        bump(&self.read_pauses, 1);
    }

    /// A callback panicked.
    pub(super) fn panicked(&self) {
        bump(&self.panics, 1);
    }

    /// Adds these counters to `stats`.
    pub(super) fn add_to(&self, stats: &mut Stats) {
        stats.bytes_read += self.bytes_read.load(Ordering::Relaxed);
        stats.bytes_written += self.bytes_written.load(Ordering::Relaxed);
        stats.reads += self.reads.load(Ordering::Relaxed);
        stats.writes += self.writes.load(Ordering::Relaxed);
        stats.read_pauses += self.read_pauses.load(Ordering::Relaxed);
        stats.panics += self.panics.load(Ordering::Relaxed);
    }
}

/// A started connection's place in the registry, held by its thread.
///
/// Dropping it, when the connection has ended or while unwinding from a bug,
/// closes the connection in the registry (counted under its reason, `Panicked`
/// unless [`close`](Registration::close) said otherwise) and then releases
/// the thread's reference to the socket, closing its fd.
#[derive(Debug)]
pub(super) struct Registration<'a> {
    /// Where the connection is registered.
    shared: &'a Shared,
    /// Its serial number there.
    serial: u64,
    /// Its socket and counters.
    link: Option<Arc<Link>>,
    /// The reason it will be counted as closed for.
    reason: CloseReason,
}

impl<'a> Registration<'a> {
    /// Counts the connection as accepted and open.
    pub(super) fn open(shared: &'a Shared, serial: u64, link: Arc<Link>) -> Self {
        shared.opened();
        Registration {
            shared,
            serial,
            link: Some(link),
            reason: CloseReason::Panicked,
        }
    }

    /// The connection's socket and counters.
    pub(super) fn link(&self) -> &Link {
        self.link
            .as_deref()
            .expect("a registration holds its link until dropped")
    }

    /// Closes the connection for `reason`, releasing its socket.
    pub(super) fn close(mut self, reason: CloseReason) {
        self.reason = reason;
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        // Our reference goes with the registry's, before the server can be
        // seen to have stopped: `ThreadHandle::wait` returns only once
        // every connection's socket is closed.
        self.shared.closed(self.serial, &self.reason, self.link.take());
    }
}
