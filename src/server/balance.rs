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
///
/// # Examples
///
/// Two loops taking connections in turn: four clients, two on each loop.
///
/// ```
/// use std::net::TcpStream;
/// use std::time::Duration;
///
/// use evloop::bytes::BytesMut;
/// use evloop::{Balance, Conn, Handler, Server};
///
/// struct Sink;
///
/// impl Handler for Sink {
///     fn on_data(&mut self, _: &mut Conn<'_>, input: &mut BytesMut) {
///         input.clear();
///     }
/// }
///
/// let server = Server::new("127.0.0.1:0".parse().unwrap())
///     .threads(2)
///     .balance(Balance::RoundRobin)
///     .start(|| Sink)?;
/// let clients: Vec<TcpStream> = (0..4)
///     .map(|_| TcpStream::connect(server.local_addr()))
///     .collect::<Result<_, _>>()?;
/// // Each loop publishes its counters once per turn: wait for all four.
/// let accepted = || server.loop_stats().iter().map(|s| s.accepted).collect::<Vec<_>>();
/// while accepted().iter().sum::<u64>() < 4 {
///     std::thread::sleep(Duration::from_millis(1));
/// }
/// assert_eq!(accepted(), [2, 2]);
/// drop(clients);
/// server.shutdown(Duration::from_secs(1));
/// server.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
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
