//! UDP on event loops: a [`DatagramHandler`] per socket, datagrams
//! received and sent in batches.
//!
//! A [`UdpServer`] runs several loops, each a thread with its own `mio`
//! poller and its own socket, all bound to one address with
//! `SO_REUSEPORT`: the kernel spreads the senders over the sockets, and no
//! lock or channel stands between a datagram and its handler. On Linux a
//! loop receives up to [`UdpConfig::batch`] datagrams with one `recvmmsg`,
//! hands each to the handler, and sends every reply of the batch with one
//! `sendmmsg`, so under load it makes a fraction of a system call per
//! datagram where a loop of `recv_from` and `send_to` makes two
//! ([`UdpStats`] counts them). Elsewhere it makes one call per datagram.
//!
//! # Example: an echo server
//!
//! ```no_run
//! use std::net::SocketAddr;
//! use evloop::udp::{DatagramHandler, UdpServer, UdpSock};
//!
//! struct Echo;
//!
//! impl DatagramHandler for Echo {
//!     fn on_datagram(&mut self, sock: &mut UdpSock<'_>, data: &[u8], from: SocketAddr) {
//!         let _ = sock.send_to(data, from); // leaves with the batch's other replies
//!     }
//! }
//!
//! let handle = UdpServer::new("127.0.0.1:7001".parse().unwrap()).start(|| Echo)?;
//! handle.shutdown_on_signals()?;
//! handle.join()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # What happens to a datagram
//!
//! * **Received whole**: [`DatagramHandler::on_datagram`], with the bytes
//!   and the sender.
//! * **Longer than [`UdpConfig::max_datagram`]**: the kernel cuts it
//!   (`MSG_TRUNC`); the loop counts it in [`UdpStats::truncated`] and calls
//!   [`DatagramHandler::on_truncated`] with its full length. It never
//!   reaches `on_datagram` as if it were whole.
//! * **Sent** ([`UdpSock::send_to`], or [`UdpSender`] from another
//!   thread): too long for the protocol (65,507 bytes over IPv4) or the
//!   configuration, it is refused at once with
//!   [`InvalidInput`](std::io::ErrorKind::InvalidInput), before any system
//!   call; otherwise queued, and sent with the rest of its batch.
//! * **Refused by the kernel** (no route; on a connected socket, an ICMP
//!   error from the peer): [`DatagramHandler::on_error`]; the loop goes on.
//! * **Send buffer full** (`EAGAIN`): the datagrams stay queued (at most
//!   [`UdpConfig::send_queue`]; beyond, sends fail with
//!   [`WouldBlock`](std::io::ErrorKind::WouldBlock) and count in
//!   [`UdpStats::dropped`]), the loop waits for the socket to be writable
//!   and reads nothing meanwhile: backpressure, counted in
//!   [`UdpStats::send_pauses`], not a busy loop.
//!
//! # Shutting down
//!
//! [`UdpHandle::shutdown`] wakes every loop through its `mio::Waker`; each
//! sends what it has queued, closes its socket, poller and waker, and ends;
//! [`UdpHandle::join`] waits for them.

mod config;
mod door;
mod event_loop;
mod handler;
mod outbox;
mod server;
mod socket;
mod stats;
#[cfg(test)]
mod tests;

pub use config::{MAX_IPV4_PAYLOAD, MAX_IPV6_PAYLOAD, UdpConfig};
pub use handler::DatagramHandler;
pub use server::{UdpHandle, UdpSender, UdpServer};
pub use socket::UdpSock;
pub use stats::UdpStats;
