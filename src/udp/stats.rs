//! The counters of a UDP loop, published once per turn and read as a
//! [`UdpStats`] snapshot.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Counters of one UDP loop, or of all loops of a server summed
/// ([`UdpHandle::stats`](super::UdpHandle::stats)); cumulative since start.
///
/// The system calls counted are the ones that move datagrams and the
/// poller's waits, so [`syscalls_per_datagram`](UdpStats::syscalls_per_datagram)
/// tells how well batching works: a loop that receives `k` datagrams per
/// `recvmmsg` and answers them with one `sendmmsg` makes three calls
/// (wait, receive, send) for `2k` datagrams.
///
/// # Examples
///
/// ```
/// use evloop::udp::UdpStats;
///
/// let stats = UdpStats { datagrams_in: 32, datagrams_out: 32, recv_calls: 2, send_calls: 1, polls: 1, ..UdpStats::default() };
/// assert_eq!(stats.syscalls_per_datagram(), Some(4.0 / 64.0));
/// assert!(stats.to_string().starts_with("datagrams in 32, out 32;"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpStats {
    /// Datagrams received whole and delivered to the handler.
    pub datagrams_in: u64,
    /// Datagrams the kernel accepted for sending.
    pub datagrams_out: u64,
    /// Receive system calls (`recvmmsg`, or `recvmsg` where there is none),
    /// the last one that found the socket empty included.
    pub recv_calls: u64,
    /// Send system calls (`sendmmsg`, or `sendto`), failed ones included.
    pub send_calls: u64,
    /// Waits in the poller (`epoll_wait`), one per loop turn.
    pub polls: u64,
    /// Datagrams longer than the configured maximum, cut by the kernel:
    /// counted and offered to
    /// [`on_truncated`](super::DatagramHandler::on_truncated), never to
    /// `on_datagram`.
    pub truncated: u64,
    /// Errors reported to [`on_error`](super::DatagramHandler::on_error):
    /// failed receives (an ICMP error on a connected socket) and datagrams
    /// the kernel refused to send.
    pub errors: u64,
    /// Datagrams refused because the send queue was full.
    pub dropped: u64,
    /// Times the send buffer filled (`EAGAIN`) and reading paused until the
    /// queued datagrams had gone.
    pub send_pauses: u64,
}

impl UdpStats {
    /// All the system calls counted: receives, sends and poller waits.
    pub fn syscalls(&self) -> u64 {
        self.recv_calls + self.send_calls + self.polls
    }

    /// [`syscalls`](UdpStats::syscalls) per datagram received or sent;
    /// `None` before the first datagram.
    pub fn syscalls_per_datagram(&self) -> Option<f64> {
        let datagrams = self.datagrams_in + self.datagrams_out;
        (datagrams > 0).then(|| self.syscalls() as f64 / datagrams as f64)
    }

    /// Adds `other`'s counters to these.
    pub fn merge(&mut self, other: &UdpStats) {
        let mut slots = to_slots(self);
        for (slot, add) in slots.iter_mut().zip(to_slots(other)) {
            *slot += add;
        }
        *self = from_slots(&slots);
    }
}

impl fmt::Display for UdpStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "datagrams in {}, out {}; system calls: recv {}, send {}, poll {}",
            self.datagrams_in, self.datagrams_out, self.recv_calls, self.send_calls, self.polls
        )?;
        if let Some(per) = self.syscalls_per_datagram() {
            write!(f, " ({per:.3} per datagram)")?;
        }
        write!(
            f,
            "; truncated {}, errors {}, dropped {}, send pauses {}",
            self.truncated, self.errors, self.dropped, self.send_pauses
        )
    }
}

/// Number of counters.
const SLOTS: usize = 9;

/// The counters in a fixed order.
fn to_slots(s: &UdpStats) -> [u64; SLOTS] {
    [
        s.datagrams_in,
        s.datagrams_out,
        s.recv_calls,
        s.send_calls,
        s.polls,
        s.truncated,
        s.errors,
        s.dropped,
        s.send_pauses,
    ]
}

/// The inverse of [`to_slots`].
fn from_slots(v: &[u64; SLOTS]) -> UdpStats {
    UdpStats {
        datagrams_in: v[0],
        datagrams_out: v[1],
        recv_calls: v[2],
        send_calls: v[3],
        polls: v[4],
        truncated: v[5],
        errors: v[6],
        dropped: v[7],
        send_pauses: v[8],
    }
}

/// A loop's counters for other threads, copied in at the end of each turn
/// so that counting costs no atomic operation per datagram.
#[derive(Debug, Default)]
pub(crate) struct SharedUdpStats {
    /// One atomic per counter, in the order of [`to_slots`].
    slots: [AtomicU64; SLOTS],
}

impl SharedUdpStats {
    /// Copies the loop's counters for readers.
    pub(crate) fn publish(&self, stats: &UdpStats) {
        for (slot, value) in self.slots.iter().zip(to_slots(stats)) {
            slot.store(value, Relaxed);
        }
    }

    /// The last published counters.
    pub(crate) fn snapshot(&self) -> UdpStats {
        from_slots(&std::array::from_fn(|i| self.slots[i].load(Relaxed)))
    }
}
