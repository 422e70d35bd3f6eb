//! [`Balance`]: how new connections reach a server's loops.

use crate::sys;

/// How new connections are spread over a server's loops.
///
/// # Which to pick
///
/// * [`ReusePort`](Balance::ReusePort) costs nothing per connection: every
///   loop has its own listener on the same port (`SO_REUSEPORT`) and the
///   kernel hashes each new connection to one of them. The spread is even on
///   average but blind: a loop stuck in a slow handler still receives its
///   share, and a few long-lived connections can land on the same loop. Best
///   for many short connections of similar cost. It is the default where the
///   kernel spreads connections so: Linux, Android, DragonFly, and FreeBSD
///   (with `SO_REUSEPORT_LB`). Elsewhere (macOS, NetBSD, OpenBSD, illumos)
///   the kernel would give every connection to one listener, so a server of
///   several loops refuses it with [`io::ErrorKind::Unsupported`](std::io::ErrorKind::Unsupported) and the
///   default is [`RoundRobin`](Balance::RoundRobin).
/// * [`RoundRobin`](Balance::RoundRobin): one acceptor thread takes every
///   connection and hands it to the next loop in turn (one channel message and
///   at most one wake-up per connection). Exactly even counts, whatever the
///   kernel's hash does.
/// * [`LeastConnections`](Balance::LeastConnections): like round-robin, but
///   to the loop with the fewest open connections, so loops stay within one
///   connection of each other even as connections of uneven life come and go.
///   Best for long-lived connections (chat, streaming).
///
/// Cloudflare's write-up "Why does one NGINX worker take all the load?"
/// describes the trade-off between a shared accept queue and `SO_REUSEPORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// One listener per loop with `SO_REUSEPORT`; the kernel spreads connections.
    ReusePort,
    /// One acceptor thread hands connections to loops in turn.
    RoundRobin,
    /// One acceptor thread hands each connection to the least loaded loop.
    LeastConnections,
}

impl Default for Balance {
    /// [`ReusePort`](Balance::ReusePort) where the kernel spreads connections
    /// over listeners, else [`RoundRobin`](Balance::RoundRobin).
    fn default() -> Self {
        if sys::REUSE_PORT_BALANCES {
            Balance::ReusePort
        } else {
            Balance::RoundRobin
        }
    }
}
