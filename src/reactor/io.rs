//! Socket reads into `BytesMut` without zero-filling, the predicates that
//! classify I/O results, and outbound sockets. The thread-per-connection
//! baseline reads through [`read_into`] too, on its blocking sockets.

use std::io;
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;

use bytes::BytesMut;
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use crate::{Config, sys};

pub(crate) use crate::session::Read;

/// Reads once from `socket` into the free space of `input`, growing it to
/// `min_space` free bytes first if less than half of that is free.
///
/// # Errors
///
/// Socket errors other than `WouldBlock`; `EINTR` is retried here.
#[inline]
pub(crate) fn read_into(socket: BorrowedFd<'_>, input: &mut BytesMut, min_space: usize) -> io::Result<Read> {
    // Reserving again after every message would pay for reclaiming the
    // buffer each time (an echo splits off each message): read into what
    // is left while it is at least half of `min_space`.
    if input.capacity() - input.len() < min_space / 2 + 1 {
        input.reserve(min_space);
    }
    let spare = input.spare_capacity_mut();
    let room = spare.len();
    loop {
        match sys::recv(socket, spare) {
            Ok(0) => return Ok(Read::Eof),
            Ok(n) => {
                // SAFETY: `recv` initialised the first `n` bytes of the spare
                // capacity, which directly follows the initialised part.
                unsafe { input.set_len(input.len() + n) };
                return Ok(Read::Data { n, short: n < room });
            }
            Err(e) if would_block(&e) => return Ok(Read::WouldBlock),
            Err(e) if interrupted(&e) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Reads once from `socket` into `buf`, for a layer with a buffer of its
/// own (TLS records): as [`read_into`], `short` if `buf` was not filled.
///
/// # Errors
///
/// Socket errors other than `WouldBlock`; `EINTR` is retried here.
#[cfg(feature = "tls")]
pub(crate) fn read_slice(socket: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Read> {
    loop {
        match sys::recv_slice(socket, buf) {
            Ok(0) if !buf.is_empty() => return Ok(Read::Eof),
            Ok(n) => {
                return Ok(Read::Data {
                    n,
                    short: n < buf.len(),
                });
            }
            Err(e) if would_block(&e) => return Ok(Read::WouldBlock),
            Err(e) if interrupted(&e) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// The socket has no data or no room right now.
#[inline]
pub(crate) fn would_block(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::WouldBlock
}

/// A signal interrupted the system call; retry it.
#[inline]
pub(crate) fn interrupted(err: &io::Error) -> bool {
    err.kind() == io::ErrorKind::Interrupted
}

/// Writes to a socket without raising `SIGPIPE` ([`sys::send_nosignal`]), so
/// a peer that reset the connection yields `EPIPE` instead of a signal that
/// would kill a process which has not ignored it (Rust binaries do; C hosts
/// and some runtimes don't).
#[derive(Debug)]
pub(crate) struct NoSigPipe<'a>(pub(crate) BorrowedFd<'a>);

impl std::io::Write for NoSigPipe<'_> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        sys::send_nosignal(self.0, buf)
    }

    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> io::Result<usize> {
        sys::send_vectored_nosignal(self.0, bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// True if the peer has sent bytes not yet read: a close now would make the
/// kernel answer with a reset. Never blocks, whatever the socket's mode.
pub(crate) fn has_unread(sock: SockRef<'_>) -> bool {
    matches!(sys::peek_unread(&sock), Ok(true))
}

/// Starts a non-blocking connect to `addr` from a new socket that has
/// `config`'s buffer sizes before its SYN goes out, so that the window it
/// offers in the handshake already follows them.
///
/// # Errors
///
/// The socket cannot be created, or the connect fails at once (anything but
/// its being in progress).
pub(crate) fn dial(addr: SocketAddr, config: &Config) -> io::Result<Socket> {
    // socket2 sets close-on-exec on every socket it creates.
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    config.apply_buffer_sizes(SockRef::from(&socket));
    match socket.connect(&addr.into()) {
        Err(e) if !sys::is_in_progress(&e) => return Err(e),
        _ => {}
    }
    Ok(socket)
}
