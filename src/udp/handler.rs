//! [`DatagramHandler`]: the application's side of a UDP loop.

use std::io;
use std::net::SocketAddr;

use super::UdpSock;

/// Application logic for a UDP socket: one instance per loop, made by the
/// factory given to [`UdpServer::start`](super::UdpServer::start) on the
/// loop's own thread, so it need not be `Send`.
///
/// Callbacks run on the loop thread and should return quickly: the loop
/// serves nothing else meanwhile. A panic in a callback ends its loop
/// (and [`UdpHandle::join`](super::UdpHandle::join) reports it).
///
/// # Examples
///
/// ```
/// use std::net::{SocketAddr, UdpSocket};
/// use evloop::udp::{DatagramHandler, UdpServer, UdpSock};
///
/// /// Answers every datagram with its length, as text.
/// struct Length;
///
/// impl DatagramHandler for Length {
///     fn on_datagram(&mut self, sock: &mut UdpSock<'_>, data: &[u8], from: SocketAddr) {
///         let _ = sock.send_to(data.len().to_string().as_bytes(), from);
///     }
/// }
///
/// let handle = UdpServer::new("127.0.0.1:0".parse().unwrap()).threads(1).start(|| Length)?;
/// let client = UdpSocket::bind("127.0.0.1:0")?;
/// client.send_to(b"hello", handle.local_addr())?;
/// let mut buf = [0; 8];
/// let n = client.recv(&mut buf)?;
/// assert_eq!(&buf[..n], b"5");
/// handle.shutdown();
/// handle.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait DatagramHandler {
    /// Called once when the loop starts, before any datagram: a client
    /// sends its first datagram here. Default: nothing.
    fn on_start(&mut self, sock: &mut UdpSock<'_>) {
        let _ = sock;
    }

    /// A whole datagram, `data`, arrived from `from`. What the handler sends
    /// in reply goes out with the replies to the rest of its batch.
    fn on_datagram(&mut self, sock: &mut UdpSock<'_>, data: &[u8], from: SocketAddr);

    /// A datagram of `len` bytes from `from` was longer than
    /// [`UdpConfig::max_datagram`](super::UdpConfig::max_datagram) and the
    /// kernel cut it: it is counted in
    /// [`UdpStats::truncated`](super::UdpStats::truncated) and never
    /// reaches [`on_datagram`](DatagramHandler::on_datagram). `len` is its
    /// full length on Linux and Android; elsewhere the kernel does not tell
    /// it, and `len` is the maximum plus one. Default: a debug log line.
    fn on_truncated(&mut self, sock: &mut UdpSock<'_>, from: SocketAddr, len: usize) {
        let _ = sock;
        log::debug!("a datagram of {len} bytes from {from} was truncated");
    }

    /// An error the socket reported, counted in
    /// [`UdpStats::errors`](super::UdpStats::errors):
    ///
    /// * from a receive, with `peer` the connected peer (or `None`): on a
    ///   connected socket an ICMP error the peer's host sent back, such as
    ///   [`ConnectionRefused`](io::ErrorKind::ConnectionRefused) when no one
    ///   listens on its port;
    /// * from a send, with `peer` the datagram's destination (or the
    ///   connected peer): the kernel refused that datagram (no route,
    ///   refused), which is dropped; the datagrams after it are still sent.
    ///
    /// The loop goes on either way. Default: a debug log line.
    fn on_error(&mut self, sock: &mut UdpSock<'_>, err: &io::Error, peer: Option<SocketAddr>) {
        let _ = sock;
        log::debug!("udp error (peer {peer:?}): {err}");
    }
}
