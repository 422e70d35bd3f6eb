//! Datagrams in batches: `recvmmsg` and `sendmmsg` on Linux and Android,
//! one `recvmsg` or `sendto` per datagram elsewhere.
//!
//! A [`RecvBatch`] owns the buffers a batch is received into: `slots`
//! datagrams of at most `size` bytes, each with its sender's address and
//! whether the kernel cut it short (`MSG_TRUNC`). A [`SendBatch`] keeps the
//! headers a `sendmmsg` call is built from, so that a loop allocates nothing
//! per call.
//!
//! # Portability
//!
//! | call | Linux, Android | elsewhere |
//! |---|---|---|
//! | [`recv_batch`] | one `recvmmsg` for up to `slots` datagrams | one `recvmsg` per datagram, until the batch is full or the socket empty |
//! | [`send_batch`] | one `sendmmsg` for up to [`MAX_SEND_BATCH`](send::MAX_SEND_BATCH) datagrams | one `sendto` (or `send`) per datagram |
//!
//! Both report how many system calls they made, so that the counts a UDP
//! loop publishes are the ones the kernel saw.

mod recv;
mod send;

pub(crate) use recv::{RecvBatch, recv_batch};
pub(crate) use send::{SendBatch, send_batch};

/// What one batch call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Done {
    /// Datagrams received or sent.
    pub(crate) datagrams: usize,
    /// System calls made for them (the last one may have failed).
    pub(crate) calls: usize,
}
