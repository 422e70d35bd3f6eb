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
    /// End of stream: the peer shut down its write half (over TLS, after
    /// its `close_notify`).
    Eof,
    /// End of stream without TLS's `close_notify`: what the peer sent may
    /// have been cut short.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Truncated,
    /// `n` bytes were taken from the socket that carried nothing for the
    /// session (TLS handshake or other records): read again, as after
    /// `Data`.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Again {
        /// Bytes taken from the socket.
        n: usize,
        /// The read did not fill the space offered: the socket is drained.
        short: bool,
    },
    /// Nothing to read now (non-blocking), or the wait timed out (blocking).
    WouldBlock,
}

/// The byte-moving half of a connection, implemented by each driver over its
/// socket: non-blocking on the reactor, blocking with deadlines on the
/// thread baseline, scripted in the property tests. A TLS layer
/// ([`crate::tls`]) wraps either driver's transport and is one too: the
/// session then reads and writes plaintext.
///
/// The methods with defaults are those of a layer that holds bytes of its
/// own (TLS records); a plain socket holds none, and the defaults, constant,
/// cost it nothing once inlined.
pub(crate) trait Transport {
    /// Reads once, appending to `input` after making sure `min_space` bytes
    /// are free.
    ///
    /// # Errors
    ///
    /// A socket error; `EINTR` is retried by the transport.
    fn read(&mut self, input: &mut BytesMut, min_space: usize) -> io::Result<Read>;

    /// Reads once into `buf`, for a layer that keeps its own buffer (TLS
    /// records): `Data`, `Eof` or `WouldBlock` as [`read`](Transport::read).
    /// The default reads through [`read`](Transport::read) and copies;
    /// the drivers read into `buf` directly.
    ///
    /// # Errors
    ///
    /// As [`read`](Transport::read).
    #[cfg(feature = "tls")]
    fn read_slice(&mut self, buf: &mut [u8]) -> io::Result<Read> {
        let mut staged = BytesMut::with_capacity(buf.len());
        let read = self.read(&mut staged, buf.len())?;
        let n = staged.len().min(buf.len());
        buf[..n].copy_from_slice(&staged[..n]);
        Ok(read)
    }

    /// Writes from the front of `out` once; returns the bytes taken from
    /// `out`. A transport that [holds](Transport::held) bytes writes those
    /// first, and takes from `out` only once they are gone; it returns
    /// `Ok(0)` if it wrote only held bytes.
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

    /// Bytes the transport holds for the socket beyond the session's queue
    /// (TLS records not yet written): output that still waits, counted
    /// against the watermarks with the queue.
    #[inline]
    fn held(&self) -> usize {
        0
    }

    /// True while the transport's own handshake (TLS) is underway: the
    /// session then waits for it before `on_open`.
    #[inline]
    fn handshaking(&self) -> bool {
        false
    }

    /// Ends the stream at the transport's own level, before a graceful
    /// close or a shutdown of the write half: TLS queues its
    /// `close_notify`. Returns true if that queued bytes (then
    /// [`held`](Transport::held) counts them, and they must be written
    /// first); false if there is nothing to send or it was done already.
    #[inline]
    fn end_output(&mut self) -> bool {
        false
    }

    /// What the TLS handshake settled, once it completed.
    #[cfg(feature = "tls")]
    fn tls_info(&self) -> Option<crate::tls::TlsInfo> {
        None
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
