//! What a driver lends a [`Session`](super::Session) for one call: a
//! [`Transport`] that moves bytes, and an [`Env`] with the clock, timers,
//! counters and limits.

use std::io;
use std::time::Instant;

use bytes::BytesMut;

use crate::Config;
use crate::buf::OutputQueue;
use crate::conn::TimerOwner;
use crate::reactor::Remote;
use crate::stats::Counters;
use crate::timer::TimerQueue;

/// The result of one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// `n` bytes were appended; `short` if fewer than there was room for,
    /// which means the socket's receive queue is now empty.
    Data {
        /// Bytes read.
        n: usize,
        /// The read did not fill the space offered.
        short: bool,
    },
    /// End of stream: the peer shut down its write half.
    Eof,
    /// Nothing to read now (non-blocking), or the wait timed out (blocking).
    WouldBlock,
}

/// The byte-moving half of a connection, implemented by each driver over its
/// socket: non-blocking on the reactor, blocking with deadlines on the
/// thread baseline, scripted in the property tests.
pub(crate) trait Transport {
    /// Reads once, appending to `input` after making sure `min_space` bytes
    /// are free.
    ///
    /// # Errors
    ///
    /// A socket error; `EINTR` is retried by the transport.
    fn read(&mut self, input: &mut BytesMut, min_space: usize) -> io::Result<Read>;

    /// Writes from the front of `out` once; returns the bytes taken.
    ///
    /// # Errors
    ///
    /// `WouldBlock` when the socket is full (or a blocking wait timed out);
    /// any other error ends the connection.
    fn write(&mut self, out: &mut OutputQueue) -> io::Result<usize>;

    /// Shuts down the write half: the peer reads end of stream.
    ///
    /// # Errors
    ///
    /// The socket's error; the session only logs it.
    fn shutdown_write(&mut self) -> io::Result<()>;

    /// Makes the coming close abortive: `SO_LINGER` 0, so the peer sees a
    /// reset and queued bytes are dropped.
    fn set_reset(&mut self);

    /// True if the peer's bytes wait unread in the kernel.
    fn has_unread(&mut self) -> bool;

    /// Brings `now` up to date after a call that may have blocked. The
    /// reactor's time of the turn stands (its calls never block), so the
    /// default leaves it; a blocking driver reads the clock, so that timers
    /// set and activity noted after a long wait count from when it ended.
    fn refresh(&self, now: &mut Instant) {
        let _ = now;
    }

    /// Asks to be told when the socket can take more output: held only
    /// while output is buffered. Drivers that block on writes ignore it.
    ///
    /// # Errors
    ///
    /// The poller's error; it ends the connection.
    fn want_writable(&mut self, want: bool) -> io::Result<()> {
        let _ = want;
        Ok(())
    }
}

/// What a session uses besides its connection, lent by the driver for one
/// call: the loop's (or thread's) clock, timers, counters and read buffer.
#[derive(Debug)]
pub(crate) struct Env<'a> {
    /// The time of this turn or step.
    pub(crate) now: Instant,
    /// Per-connection limits.
    pub(crate) config: &'a Config,
    /// Timer queue the connection's timers are filed in.
    pub(crate) timers: &'a mut TimerQueue<TimerOwner>,
    /// Counters the session adds to.
    pub(crate) counters: &'a mut Counters,
    /// A read buffer lent to a connection that holds no input, so that only
    /// connections with a partial message own one.
    pub(crate) scratch: &'a mut BytesMut,
    /// Reaches other connections, where the model has such a door.
    pub(crate) remote: Option<&'a Remote>,
}
