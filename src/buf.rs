//! The output queue: what a connection still has to write.
//!
//! Copying writes ([`Conn::write`](crate::Conn::write)) are appended to a
//! `BytesMut` tail, so many small writes become one contiguous chunk and one
//! system call. Zero-copy writes ([`Conn::write_bytes`](crate::Conn::write_bytes))
//! keep their `Bytes` as a chunk of its own. When several chunks are queued the
//! loop writes them with one vectored write (`writev`).
//!
//! ```text
//!  chunks: [Bytes][Bytes][Bytes]   tail: BytesMut (copies since the last Bytes)
//!          ^ front is written first                ^ written last
//! ```
//!
//! The queue only stores and accounts; the loop decides when to write.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};

use bytes::{Buf, Bytes, BytesMut};

/// Most slices handed to one vectored write (Linux's `IOV_MAX` is 1024;
/// beyond a few dozen the gain is nil and the slice array costs stack).
const MAX_IOVECS: usize = 64;

/// Bytes waiting to be written to a socket.
#[derive(Debug, Default)]
pub(crate) struct OutputQueue {
    /// Frozen chunks, in write order, before `tail`.
    chunks: VecDeque<Bytes>,
    /// Bytes copied in since the last zero-copy chunk; written after `chunks`.
    tail: BytesMut,
    /// Total bytes queued: the sum of all chunk lengths plus `tail.len()`.
    len: usize,
}

impl OutputQueue {
    /// Bytes queued.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is queued.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a copy of `data`.
    #[inline]
    pub(crate) fn push_copy(&mut self, data: &[u8]) {
        self.tail.extend_from_slice(data);
        self.len += data.len();
    }

    /// Appends `data` without copying it.
    #[inline]
    pub(crate) fn push_bytes(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        self.len += data.len();
        if !self.tail.is_empty() {
            self.chunks.push_back(self.tail.split().freeze());
        }
        self.chunks.push_back(data);
    }

    /// Drops everything queued (abort) and frees the tail's memory.
    pub(crate) fn clear(&mut self) {
        self.chunks.clear();
        self.tail = BytesMut::new();
        self.len = 0;
    }

    /// Writes as much as `w` takes in one call: a plain write when one buffer
    /// is queued, a vectored write when several are. Returns bytes written.
    ///
    /// # Errors
    ///
    /// Whatever `w` returns, `WouldBlock` included; nothing is consumed then.
    pub(crate) fn write_to<W: Write>(&mut self, w: &mut W) -> io::Result<usize> {
        if self.tail.is_empty() && self.chunks.len() == 1 {
            // One zero-copy chunk, the common case of an echo: written and
            // dropped (or advanced) without the general bookkeeping.
            let front = &mut self.chunks[0];
            let n = w.write(front)?;
            self.len -= n;
            if n == front.len() {
                self.chunks.pop_front();
            } else {
                front.advance(n);
            }
            return Ok(n);
        }
        if self.chunks.is_empty() {
            // Only copies queued: one contiguous write.
            let n = w.write(&self.tail)?;
            self.len -= n;
            self.tail.advance(n);
            self.trim_tail();
            return Ok(n);
        }
        let n = {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let used = self.fill_slices(&mut slices);
            w.write_vectored(&slices[..used])?
        };
        self.consume(n);
        Ok(n)
    }

    /// Points `slices` at the queued buffers in order; returns how many it set.
    fn fill_slices<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let tail = (!self.tail.is_empty()).then_some(&self.tail[..]);
        let bufs = self.chunks.iter().map(|c| &c[..]).chain(tail);
        let mut used = 0;
        for (slot, buf) in slices.iter_mut().zip(bufs) {
            *slot = IoSlice::new(buf);
            used += 1;
        }
        used
    }

    /// Frees the tail's memory once it is empty, if a burst grew it past
    /// [`RETAINED_TAIL`]: an idle connection does not keep it.
    fn trim_tail(&mut self) {
        if self.tail.is_empty() && self.tail.capacity() > RETAINED_TAIL {
            self.tail = BytesMut::new();
        }
    }

    /// Removes the first `n` queued bytes.
    fn consume(&mut self, mut n: usize) {
        debug_assert!(n <= self.len);
        self.len -= n;
        while n > 0 {
            let Some(front) = self.chunks.front_mut() else {
                self.tail.advance(n);
                break;
            };
            if n < front.len() {
                front.advance(n);
                break;
            }
            n -= front.len();
            self.chunks.pop_front();
        }
        self.trim_tail();
    }
}

/// Tail capacity kept across writes so small replies reuse one allocation.
const RETAINED_TAIL: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzzing::{Op, drive_output_inspecting};
    use proptest::prelude::*;

    /// A writer that takes at most `limit` bytes per call and records them.
    struct Trickle {
        limit: usize,
        got: Vec<u8>,
        vectored_calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(self.limit);
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.vectored_calls += 1;
            let mut left = self.limit;
            for buf in bufs {
                let n = buf.len().min(left);
                self.got.extend_from_slice(&buf[..n]);
                left -= n;
            }
            Ok(self.limit - left)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn drain(q: &mut OutputQueue, limit: usize) -> Trickle {
        let mut w = Trickle {
            limit,
            got: Vec::new(),
            vectored_calls: 0,
        };
        while !q.is_empty() {
            q.write_to(&mut w).unwrap();
        }
        w
    }

    #[test]
    fn mixed_copies_and_chunks_come_out_in_order() {
        let mut q = OutputQueue::default();
        q.push_copy(b"ab");
        q.push_bytes(Bytes::from_static(b"cde"));
        q.push_copy(b"f");
        q.push_copy(b"g");
        q.push_bytes(Bytes::from_static(b"hi"));
        assert_eq!(q.len(), 9);
        for limit in 1..=10 {
            let mut copy = OutputQueue::default();
            copy.push_copy(b"ab");
            copy.push_bytes(Bytes::from_static(b"cde"));
            copy.push_copy(b"fg");
            copy.push_bytes(Bytes::from_static(b"hi"));
            assert_eq!(drain(&mut copy, limit).got, b"abcdefghi", "limit {limit}");
        }
    }

    #[test]
    fn several_chunks_use_one_vectored_write() {
        let mut q = OutputQueue::default();
        for _ in 0..10 {
            q.push_bytes(Bytes::from_static(b"xy"));
        }
        let w = drain(&mut q, usize::MAX);
        assert_eq!(w.vectored_calls, 1);
        assert_eq!(w.got.len(), 20);
    }

    #[test]
    fn a_single_chunk_uses_a_plain_write() {
        let mut q = OutputQueue::default();
        q.push_bytes(Bytes::from_static(b"one"));
        let w = drain(&mut q, usize::MAX);
        assert_eq!((w.vectored_calls, &w.got[..]), (0, &b"one"[..]));
    }

    #[test]
    fn copies_alone_use_plain_writes() {
        let mut q = OutputQueue::default();
        q.push_copy(b"hello");
        q.push_copy(b" world");
        let w = drain(&mut q, usize::MAX);
        assert_eq!(w.vectored_calls, 0);
        assert_eq!(w.got, b"hello world");
    }

    #[test]
    fn clear_empties_the_queue() {
        let mut q = OutputQueue::default();
        q.push_copy(&[0; 1000]);
        q.push_bytes(Bytes::from(vec![1; 1000]));
        q.clear();
        assert!(q.is_empty());
        assert_eq!(drain(&mut q, 1).got, b"");
    }

    #[test]
    fn empty_bytes_are_ignored() {
        let mut q = OutputQueue::default();
        q.push_bytes(Bytes::new());
        assert!(q.is_empty());
    }

    #[test]
    fn a_large_burst_does_not_keep_its_memory() {
        let mut q = OutputQueue::default();
        q.push_copy(&vec![7; 4 * RETAINED_TAIL]);
        drain(&mut q, usize::MAX);
        assert!(q.tail.capacity() <= RETAINED_TAIL);
    }

    #[test]
    fn more_chunks_than_one_vectored_write_takes_go_out_over_several() {
        let mut q = OutputQueue::default();
        let mut expected = Vec::new();
        for i in 0..MAX_IOVECS as u8 + 36 {
            q.push_bytes(Bytes::from(vec![i; 3]));
            expected.extend_from_slice(&[i; 3]);
        }
        let w = drain(&mut q, usize::MAX);
        assert_eq!(w.vectored_calls, 2);
        assert_eq!(w.got, expected);
    }

    /// Most steps in one script; Miri, thousands of times slower, runs
    /// shorter ones.
    const MAX_OPS: usize = if cfg!(miri) { 30 } else { 120 };

    /// One step of a script for [`drive_output_inspecting`]: mostly small
    /// writes, sometimes a burst larger than the tail memory kept.
    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..300usize).prop_map(Op::Copy),
            4 => (0..300usize).prop_map(Op::Share),
            1 => (RETAINED_TAIL..3 * RETAINED_TAIL).prop_map(Op::Copy),
            6 => (0..400usize).prop_map(Op::Write),
            1 => Just(Op::Interrupted),
            1 => Just(Op::Clear),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(if cfg!(miri) { 4 } else { 128 }))]

        /// The driver checks every length and written byte against a plain
        /// byte queue; here the queue also keeps its memory bound.
        #[test]
        fn any_mix_of_writes_aborts_and_partial_socket_writes_keeps_bytes_in_order(
            ops in proptest::collection::vec(op(), 0..MAX_OPS),
            drain_limit in 1..5_000usize,
        ) {
            drive_output_inspecting(&ops, drain_limit, |op, q| {
                if matches!(op, Op::Write(n) if *n > 0) && q.tail.is_empty() {
                    assert!(q.tail.capacity() <= RETAINED_TAIL, "an empty tail kept {} bytes", q.tail.capacity());
                }
            });
        }
    }
}
