//! The listeners a [`Server`](super::Server) makes or shares: its own on
//! its address (refusing one a live listener holds, see
//! [`Listeners`](super::Listeners)), or duplicates of an inherited socket.

use std::io;
use std::net::{SocketAddr, TcpListener};

use super::balance::Balance;
use crate::reactor::listen;

/// The listener of a thread-per-connection server: a duplicate of the
/// inherited socket, or a socket of its own on `addr`.
pub(super) fn listen_one(inherited: Option<&TcpListener>, addr: SocketAddr) -> io::Result<TcpListener> {
    match inherited {
        Some(listener) => listener.try_clone(),
        None => listen(addr, false).map_err(|e| named(addr, e)),
    }
}

/// The loops' listeners on an inherited socket: a duplicate for each of the
/// `threads` loops under [`Balance::ReusePort`], else one for the acceptor
/// thread.
pub(super) fn share(
    listener: &TcpListener,
    balance: Balance,
    threads: usize,
    config: &crate::Config,
) -> io::Result<Vec<TcpListener>> {
    let count = if balance == Balance::ReusePort {
        threads
    } else {
        // Accepted sockets inherit the buffer sizes from the handshake on.
        config.apply_buffer_sizes(socket2::SockRef::from(listener));
        1
    };
    (0..count).map(|_| listener.try_clone()).collect()
}

/// The first of a server's own listeners on `addr`, refusing an address a
/// live listener holds even when `reuse_port` would share it (see
/// [`Listeners`](super::Listeners)).
pub(super) fn listen_first(addr: SocketAddr, reuse_port: bool) -> io::Result<TcpListener> {
    if reuse_port && addr.port() != 0 {
        probe(addr).map_err(|e| named(addr, e))?;
    }
    listen(addr, reuse_port).map_err(|e| named(addr, e))
}

/// Binds and closes a plain socket on `addr`: fails with `AddrInUse` when a
/// listener holds it, `SO_REUSEPORT` or not.
fn probe(addr: SocketAddr) -> io::Result<()> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())
}

/// `err`, naming `addr` when it says the address is in use.
pub(super) fn named(addr: SocketAddr, err: io::Error) -> io::Error {
    if err.kind() != io::ErrorKind::AddrInUse {
        return err;
    }
    let msg = format!(
        "{addr} is in use: another listener holds it (to take over a running evloop server's \
         socket, use a handover)"
    );
    io::Error::new(io::ErrorKind::AddrInUse, msg)
}
