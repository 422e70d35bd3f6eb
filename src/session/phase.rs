//! The phases of a connection's life, as data: each variant carries what
//! that phase needs, so an impossible combination cannot be written down.

use crate::CloseReason;
use crate::timer::TimerId;

/// Where a connection is in its lifecycle; the table in the
/// [module docs](super) says which events move it where.
#[derive(Debug, Clone, PartialEq, Eq)]
// An explicit tag: the hot path asks "which phase?" on every event, and a
// tag byte answers in one comparison where a niche-packed layout (the
// reasons carried inside) needs several.
#[repr(u8)]
pub(crate) enum Phase {
    /// An outbound connection whose handshake has not completed: no reads,
    /// no writes, no `on_open` yet.
    Connecting {
        /// The connect timeout.
        timer: Option<TimerId>,
    },
    /// The transport's handshake (TLS) is underway, after the connection
    /// was accepted or connected: its records are read and written, nothing
    /// reaches the handler, no `on_open` yet.
    Handshaking {
        /// The handshake timeout.
        timer: Option<TimerId>,
    },
    /// Established: reading and writing.
    Open,
    /// The peer's end of stream was read. Input that arrived before it is
    /// still offered to the handler; `on_eof` follows.
    ReadClosed {
        /// The stream ended without TLS's `close_notify`: the connection
        /// closes with [`CloseReason::Truncated`] rather than
        /// [`CloseReason::PeerClosed`].
        truncated: bool,
    },
    /// Ending gracefully: output is flushed, then the connection finishes
    /// (or lingers) with `reason`.
    Closing {
        /// The reason the connection will close with.
        reason: CloseReason,
        /// The peer's end of stream was already read, so nothing it sends
        /// can be left unread: no lingering is needed.
        peer_done: bool,
    },
    /// Our write half is shut and output flushed; what the peer still sends
    /// is read and discarded until its end of stream, so closing with unread
    /// input does not make the kernel reset the connection.
    Lingering {
        /// The reason the connection will close with.
        reason: CloseReason,
        /// Bytes still to discard before giving up.
        left: usize,
        /// Ends the wait after [`LINGER_TIME`](super::LINGER_TIME).
        timer: Option<TimerId>,
    },
    /// Ended: `on_close` has run; nothing else happens.
    Finished {
        /// Why it ended.
        reason: CloseReason,
    },
}

impl Phase {
    /// True in the phases where the handler is still offered input.
    #[inline]
    pub(crate) fn takes_input(&self) -> bool {
        matches!(self, Phase::Open | Phase::ReadClosed { .. })
    }

    /// True once the peer's end of stream was read and input is still offered.
    #[inline]
    pub(crate) fn is_read_closed(&self) -> bool {
        matches!(self, Phase::ReadClosed { .. })
    }

    /// True once the connection has ended.
    #[inline]
    pub(crate) fn is_finished(&self) -> bool {
        matches!(self, Phase::Finished { .. })
    }
}

/// The state of our write half, which moves independently of the read side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WriteHalf {
    /// Writes go out.
    Open,
    /// Shut down (`shutdown(SHUT_WR)`): the peer has read our end of stream.
    Shut,
}
