//! [`UdpSock`]: what a datagram handler can do during a callback.

use std::io;
use std::net::SocketAddr;

use super::outbox::Outbox;

/// The loop's socket as a [`DatagramHandler`](super::DatagramHandler) sees
/// it during a callback: send datagrams to any address, learn the
/// addresses.
///
/// Sends are queued and leave when the callback's batch is done: every
/// reply to one batch of received datagrams goes out in one `sendmmsg`
/// (Linux). A send is refused at once, before any system call, when the
/// datagram is too long or the send queue is full; the kernel's own refusal
/// of a queued datagram (say, no route) comes later, to
/// [`on_error`](super::DatagramHandler::on_error).
#[derive(Debug)]
pub struct UdpSock<'a> {
    /// The loop's send queue.
    pub(crate) outbox: &'a mut Outbox,
    /// Datagrams refused because the queue was full, counted here.
    pub(crate) dropped: &'a mut u64,
    /// The socket's own address.
    pub(crate) local: SocketAddr,
    /// The peer the socket is connected to, if any.
    pub(crate) peer: Option<SocketAddr>,
}

impl UdpSock<'_> {
    /// Queues `data` as one datagram for `to`.
    ///
    /// # Errors
    ///
    /// [`InvalidInput`](io::ErrorKind::InvalidInput) if `data` is longer
    /// than [`UdpConfig::max_datagram`](super::UdpConfig::max_datagram) or
    /// than the protocol carries (65,507 bytes over IPv4, 65,527 over IPv6);
    /// [`WouldBlock`](io::ErrorKind::WouldBlock) if the send queue is full
    /// (counted in [`UdpStats::dropped`](super::UdpStats::dropped)). Nothing
    /// is queued then.
    pub fn send_to(&mut self, data: &[u8], to: SocketAddr) -> io::Result<()> {
        self.queue(data, Some(to))
    }

    /// Queues `data` as one datagram for the connected peer
    /// ([`UdpServer::connect`](super::UdpServer::connect)).
    ///
    /// # Errors
    ///
    /// [`NotConnected`](io::ErrorKind::NotConnected) if the socket is not
    /// connected; otherwise as [`send_to`](UdpSock::send_to).
    pub fn send(&mut self, data: &[u8]) -> io::Result<()> {
        if self.peer.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "send needs a connected socket; use send_to",
            ));
        }
        self.queue(data, None)
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The peer the socket is connected to, if it is.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.peer
    }

    /// Datagrams queued and not yet sent.
    pub fn queued(&self) -> usize {
        self.outbox.len()
    }

    /// Queues, counting a refusal for a full queue.
    fn queue(&mut self, data: &[u8], to: Option<SocketAddr>) -> io::Result<()> {
        let queued = self.outbox.push(data, to);
        if matches!(&queued, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
            *self.dropped += 1;
        }
        queued
    }
}
