//! Fuzzes the reactor's output buffer: a connection's `OutputQueue` under
//! any mix of copying writes, zero-copy writes, aborts, and socket writes
//! that take any part of what they are offered, fail with `WouldBlock`, or
//! are interrupted.
//!
//! Input layout: pairs of bytes `(op, arg)`, then a last byte for the drain
//! limit (at least 1 KiB, so the final drain takes few writes). Each run checks (inside `drive_output`) that the queue's length
//! and every byte it writes match a plain byte queue, that a failed write
//! consumes nothing, and that draining delivers all bytes in order, once.
//!
//! Run: `cargo +nightly fuzz run output_queue` (or scripts/fuzz.sh).

#![no_main]

use evloop::fuzzing::{Op, drive_output};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (ops, drain_limit) = script(data);
    drive_output(&ops, drain_limit);
});

/// Most bytes one run queues in all: enough for bursts past the 64 KiB the
/// queue keeps, small enough to keep each run fast.
const BUDGET: usize = 256 * 1024;

/// The operations and drain limit that `data` spells; a write past the
/// byte budget becomes a write to the socket instead.
fn script(data: &[u8]) -> (Vec<Op>, usize) {
    let pairs = data.chunks_exact(2);
    let drain_limit = pairs.remainder().first().map_or(usize::MAX, |&b| size(b));
    let mut queued = 0;
    let ops = pairs
        .map(|pair| {
            let len = size(pair[1]);
            match pair[0] % 5 {
                0 | 1 if queued + len > BUDGET => Op::Write(len),
                0 => {
                    queued += len;
                    Op::Copy(len)
                }
                1 => {
                    queued += len;
                    Op::Share(len)
                }
                2 => Op::Write(if pair[1] == 255 { usize::MAX } else { len }),
                3 => Op::Interrupted,
                _ => Op::Clear,
            }
        })
        .collect();
    (ops, drain_limit.max(BUDGET / 256))
}

/// A byte count: mostly small, and from 240 up steps of 16 KiB, so that a
/// burst passes the 64 KiB of tail memory the queue keeps.
fn size(byte: u8) -> usize {
    match byte {
        0..240 => usize::from(byte),
        _ => usize::from(byte - 239) * 16 * 1024,
    }
}
