//! The bounded queue of datagrams waiting to be sent.
//!
//! Payloads are copied back to back into one buffer, so queueing a reply
//! allocates nothing once the buffer has grown to its working size.

use std::io;
use std::net::SocketAddr;

use super::config::{MAX_IPV4_PAYLOAD, MAX_IPV6_PAYLOAD};
use crate::sys::{self, SendBatch};

/// One queued datagram.
#[derive(Debug)]
struct Item {
    /// Where its bytes start in [`Outbox::bytes`].
    start: usize,
    /// Its length.
    len: usize,
    /// Its destination; `None`: the connected peer.
    to: Option<SocketAddr>,
}

/// Datagrams queued for sending, oldest first, at most `cap` of them.
#[derive(Debug)]
pub(crate) struct Outbox {
    /// The payloads, back to back; `items[head..]` point into it.
    bytes: Vec<u8>,
    /// The datagrams; those before `head` are sent.
    items: Vec<Item>,
    /// The first unsent datagram.
    head: usize,
    /// The most unsent datagrams.
    cap: usize,
    /// The largest payload accepted.
    max_datagram: usize,
}

/// Sent datagrams are forgotten once this many have piled up before the
/// first unsent one (or all are sent), so a queue that never quite empties
/// does not grow.
const COMPACT_AFTER: usize = 64;

impl Outbox {
    /// An empty queue for up to `cap` datagrams of up to `max_datagram` bytes.
    pub(crate) fn new(cap: usize, max_datagram: usize) -> Self {
        Outbox {
            bytes: Vec::new(),
            items: Vec::new(),
            head: 0,
            cap,
            max_datagram,
        }
    }

    /// Unsent datagrams.
    pub(crate) fn len(&self) -> usize {
        self.items.len() - self.head
    }

    /// Whether nothing waits to be sent.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues a copy of `data` for `to` (`None`: the connected peer).
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) for a datagram over the
    /// limit (see [`check_len`]), [`WouldBlock`](io::ErrorKind::WouldBlock)
    /// when the queue is full; either way nothing is queued.
    pub(crate) fn push(&mut self, data: &[u8], to: Option<SocketAddr>) -> io::Result<()> {
        check_len(data.len(), self.max_datagram, to)?;
        if self.len() >= self.cap {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("the send queue is full ({} datagrams)", self.cap),
            ));
        }
        let start = self.bytes.len();
        self.bytes.extend_from_slice(data);
        self.items.push(Item {
            start,
            len: data.len(),
            to,
        });
        Ok(())
    }

    /// The destination of the oldest unsent datagram.
    pub(crate) fn front_to(&self) -> Option<SocketAddr> {
        self.items.get(self.head)?.to
    }

    /// Forgets the `n` oldest unsent datagrams (sent, or dropped after an error).
    pub(crate) fn consume(&mut self, n: usize) {
        self.head += n.min(self.len());
        if self.head == self.items.len() {
            self.items.clear();
            self.bytes.clear();
            self.head = 0;
        } else if self.head >= COMPACT_AFTER {
            let offset = self.items[self.head].start;
            self.items.drain(..self.head);
            self.bytes.drain(..offset);
            for item in &mut self.items {
                item.start -= offset;
            }
            self.head = 0;
        }
    }

    /// Hands the unsent datagrams to one batched send; returns what it did.
    ///
    /// # Errors
    ///
    /// As [`sys::send_batch`]: the first datagram's error when none went.
    pub(crate) fn send(
        &mut self,
        socket: std::os::fd::BorrowedFd<'_>,
        scratch: &mut SendBatch,
    ) -> io::Result<sys::BatchDone> {
        let bytes = &self.bytes;
        let pending =
            (self.items[self.head..].iter()).map(|item| (&bytes[item.start..item.start + item.len], item.to));
        let done = sys::send_batch(socket, scratch, pending);
        if let Ok(done) = &done {
            self.consume(done.datagrams);
        }
        done
    }
}

/// Refuses a datagram of `len` bytes over `max` or over what the protocol
/// of `to` carries (IPv4: 65,507; IPv6: 65,527), before any system call.
///
/// # Errors
///
/// [`InvalidInput`](io::ErrorKind::InvalidInput), naming both sizes.
pub(crate) fn check_len(len: usize, max: usize, to: Option<SocketAddr>) -> io::Result<()> {
    let protocol = match to {
        Some(SocketAddr::V6(_)) => MAX_IPV6_PAYLOAD,
        _ => MAX_IPV4_PAYLOAD,
    };
    let limit = max.min(protocol);
    if len <= limit {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("a datagram of {len} bytes is over the limit of {limit} bytes"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_refuses_and_keeps_what_it_holds() {
        let mut outbox = Outbox::new(2, 100);
        outbox.push(b"a", None).unwrap();
        outbox.push(b"bc", None).unwrap();
        let err = outbox.push(b"d", None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert_eq!(outbox.len(), 2);
        outbox.consume(1);
        outbox.push(b"d", None).unwrap();
        let left: Vec<&[u8]> = (outbox.items[outbox.head..].iter())
            .map(|i| &outbox.bytes[i.start..i.start + i.len])
            .collect();
        assert_eq!(left, [&b"bc"[..], b"d"]);
    }

    #[test]
    fn oversized_datagrams_are_refused_by_the_configured_and_protocol_limits() {
        let v4 = Some("127.0.0.1:9".parse().unwrap());
        let v6 = Some("[::1]:9".parse().unwrap());
        assert!(check_len(65_507, 70_000, v4).is_ok());
        assert_eq!(
            check_len(65_508, 70_000, v4).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert!(check_len(65_527, 70_000, v6).is_ok());
        assert!(check_len(65_528, 70_000, v6).is_err());
        let err = check_len(101, 100, v4).unwrap_err();
        assert!(
            err.to_string().contains("101 bytes is over the limit of 100"),
            "{err}"
        );
    }

    #[test]
    fn compaction_keeps_the_unsent_datagrams_intact() {
        let mut outbox = Outbox::new(1000, 100);
        for i in 0..200u8 {
            outbox.push(&[i; 3], None).unwrap();
        }
        outbox.consume(150);
        assert_eq!(outbox.head, 0, "compacted");
        assert_eq!(outbox.len(), 50);
        let first = &outbox.items[0];
        assert_eq!(&outbox.bytes[first.start..first.start + first.len], &[150; 3]);
    }
}
