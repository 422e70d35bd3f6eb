//! The listeners a [`Server`](super::Server) makes or shares: its own on
//! its address (refusing a TCP port a live listener holds, see
//! [`Listeners`](super::Listeners)), or duplicates of an inherited socket.

use std::io;
use std::net::SocketAddr;

use super::balance::Balance;
use crate::Bind;
use crate::listener::Listener;

/// The listener of a thread-per-connection server: a duplicate of the
/// inherited socket, or a socket of its own on `bind`.
pub(super) fn listen_one(inherited: Option<&Listener>, bind: &Bind) -> io::Result<Listener> {
    match inherited {
        Some(listener) => listener.try_clone(),
        None => Listener::bind(bind, false).map_err(|e| named(bind, e)),
    }
}

/// The loops' listeners on an inherited socket: a duplicate for each of the
/// `threads` loops under [`Balance::ReusePort`], else one for the acceptor
/// thread.
pub(super) fn share(
    listener: &Listener,
    balance: Balance,
    threads: usize,
    config: &crate::Config,
) -> io::Result<Vec<Listener>> {
    let count = if balance == Balance::ReusePort {
        threads
    } else {
        // Accepted sockets inherit the buffer sizes from the handshake on.
        config.apply_buffer_sizes(socket2::SockRef::from(listener));
        1
    };
    (0..count).map(|_| listener.try_clone()).collect()
}

/// The first of a server's own listeners on `bind`, refusing a TCP address
/// a live listener holds even when `reuse_port` would share it (see
/// [`Listeners`](super::Listeners)). A Unix path is refused when live by
/// [`Listener::bind`] itself.
pub(super) fn listen_first(bind: &Bind, reuse_port: bool) -> io::Result<Listener> {
    if let Bind::Tcp(addr) = bind {
        if reuse_port && addr.port() != 0 {
            probe(*addr).map_err(|e| named(bind, e))?;
        }
    }
    Listener::bind(bind, reuse_port).map_err(|e| named(bind, e))
}

/// Binds and closes a plain socket on `addr`: fails with `AddrInUse` when a
/// listener holds it, `SO_REUSEPORT` or not.
fn probe(addr: SocketAddr) -> io::Result<()> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())
}

/// `err`, naming a TCP `bind` when it says the address is in use (a Unix
/// listener names its path already).
pub(super) fn named(bind: &Bind, err: io::Error) -> io::Error {
    let Bind::Tcp(addr) = bind else {
        return err;
    };
    if err.kind() != io::ErrorKind::AddrInUse {
        return err;
    }
    let msg = format!(
        "{addr} is in use: another listener holds it (to take over a running evloop server's \
         socket, use a handover)"
    );
    io::Error::new(io::ErrorKind::AddrInUse, msg)
}
