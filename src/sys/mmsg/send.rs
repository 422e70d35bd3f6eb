//! Sending a batch: one `sendmmsg` on Linux and Android, one `sendto` (or
//! `send`) per datagram elsewhere, with the headers a [`SendBatch`] keeps.

use std::io;
use std::net::SocketAddr;
use std::os::fd::BorrowedFd;

use super::Done;

/// The most datagrams one [`send_batch`] hands the kernel: Linux refuses a
/// `sendmmsg` of more than `UIO_MAXIOV` (1024) messages.
pub(crate) const MAX_SEND_BATCH: usize = 1024;

/// The headers of a batch being sent, kept between calls so that a loop
/// does not allocate per call.
#[derive(Default)]
pub(crate) struct SendBatch {
    /// One `iovec` per datagram.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    iovs: Vec<libc::iovec>,
    /// One header per datagram, pointing into `iovs` and `names` during a call.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    hdrs: Vec<libc::mmsghdr>,
    /// One destination per datagram (unused for the connected peer).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    names: Vec<imp::RawAddr>,
}

// SAFETY: between calls the vectors are empty: no pointer outlives the
// `send_batch` call that made it.
unsafe impl Send for SendBatch {}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBatch").finish_non_exhaustive()
    }
}

/// One datagram to send: its bytes, and where to (`None`: the connected peer).
pub(crate) type Outgoing<'a> = (&'a [u8], Option<SocketAddr>);

/// Sends the datagrams of `msgs`, in order, up to [`MAX_SEND_BATCH`] of
/// them, never blocking whatever the socket's mode; returns how many went.
///
/// # Errors
///
/// The error of the first datagram when none was sent: `WouldBlock` when
/// the send buffer is full, or that datagram's own failure (such as
/// `ConnectionRefused`, `EMSGSIZE`). When some were sent, `Ok` with their
/// count: the datagram after them is the one to try again.
pub(crate) fn send_batch<'a>(
    socket: BorrowedFd<'_>,
    scratch: &mut SendBatch,
    msgs: impl Iterator<Item = Outgoing<'a>>,
) -> io::Result<Done> {
    imp::send_batch(socket, scratch, msgs.take(MAX_SEND_BATCH))
}

/// `sendmmsg`.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod imp {
    use super::*;
    use std::os::fd::AsRawFd;

    /// `sockaddr_in` or `sockaddr_in6`, the kernel's form of a destination.
    #[derive(Clone, Copy)]
    #[repr(C)]
    pub(super) union RawSockAddr {
        /// IPv4.
        v4: libc::sockaddr_in,
        /// IPv6.
        v6: libc::sockaddr_in6,
    }

    /// A destination as `sendmmsg` takes it: 28 bytes, where `SockAddr`
    /// holds a whole `sockaddr_storage` (128), to be zeroed and copied.
    #[derive(Clone, Copy)]
    pub(crate) struct RawAddr {
        /// The address.
        pub(super) addr: RawSockAddr,
        /// Its length.
        pub(super) len: libc::socklen_t,
    }

    impl RawAddr {
        /// A placeholder for a datagram to the connected peer.
        pub(super) const NONE: RawAddr = RawAddr {
            // SAFETY: all zeros is a valid `sockaddr_in6`.
            addr: RawSockAddr {
                v6: unsafe { std::mem::zeroed() },
            },
            len: 0,
        };

        /// `addr` in the kernel's form.
        pub(super) fn new(addr: SocketAddr) -> Self {
            // SAFETY: all zeros is a valid `sockaddr_in6` and `sockaddr_in`.
            let mut raw: RawSockAddr = unsafe { std::mem::zeroed() };
            let len = match addr {
                SocketAddr::V4(a) => {
                    raw.v4 = libc::sockaddr_in {
                        sin_family: libc::AF_INET as libc::sa_family_t,
                        sin_port: a.port().to_be(),
                        sin_addr: libc::in_addr {
                            s_addr: u32::from(*a.ip()).to_be(),
                        },
                        sin_zero: [0; 8],
                    };
                    std::mem::size_of::<libc::sockaddr_in>()
                }
                SocketAddr::V6(a) => {
                    raw.v6 = libc::sockaddr_in6 {
                        sin6_family: libc::AF_INET6 as libc::sa_family_t,
                        sin6_port: a.port().to_be(),
                        sin6_flowinfo: a.flowinfo(),
                        sin6_addr: libc::in6_addr {
                            s6_addr: a.ip().octets(),
                        },
                        sin6_scope_id: a.scope_id(),
                    };
                    std::mem::size_of::<libc::sockaddr_in6>()
                }
            };
            RawAddr {
                addr: raw,
                len: len as libc::socklen_t,
            }
        }
    }

    pub(super) fn send_batch<'a>(
        socket: BorrowedFd<'_>,
        scratch: &mut SendBatch,
        msgs: impl Iterator<Item = Outgoing<'a>>,
    ) -> io::Result<Done> {
        scratch.iovs.clear();
        scratch.hdrs.clear();
        scratch.names.clear();
        for (data, to) in msgs {
            scratch.iovs.push(libc::iovec {
                iov_base: data.as_ptr().cast_mut().cast(),
                iov_len: data.len(),
            });
            let (name, len) = match to {
                Some(to) => (RawAddr::new(to), true),
                None => (RawAddr::NONE, false),
            };
            scratch.names.push(name);
            // SAFETY: all zeros is a valid `msghdr` (no buffers, no control data).
            let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
            hdr.msg_iovlen = 1;
            hdr.msg_namelen = if len { name.len } else { 0 };
            scratch.hdrs.push(libc::mmsghdr {
                msg_hdr: hdr,
                msg_len: 0,
            });
        }
        if scratch.hdrs.is_empty() {
            return Ok(Done {
                datagrams: 0,
                calls: 0,
            });
        }
        // Only now that `iovs` and `names` are complete (and will not move)
        // may the headers point into them.
        let parts = scratch.iovs.iter_mut().zip(scratch.names.iter_mut());
        for (hdr, (iov, name)) in scratch.hdrs.iter_mut().zip(parts) {
            hdr.msg_hdr.msg_iov = iov;
            if hdr.msg_hdr.msg_namelen > 0 {
                hdr.msg_hdr.msg_name = (&mut name.addr as *mut RawSockAddr).cast();
            }
        }
        // SAFETY: each header points at one iovec of `scratch.iovs`, which
        // points at bytes the caller lent for the call, and at one address
        // of `scratch.names` (or none); the kernel only reads them, and
        // writes `msg_len` into the headers, which are ours.
        let n = unsafe {
            libc::sendmmsg(
                socket.as_raw_fd(),
                scratch.hdrs.as_mut_ptr(),
                scratch.hdrs.len() as _,
                libc::MSG_DONTWAIT as _,
            )
        };
        scratch.hdrs.clear();
        scratch.iovs.clear();
        scratch.names.clear();
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Done {
            datagrams: n as usize,
            calls: 1,
        })
    }
}

/// One `sendto` (or `send`) per datagram.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod imp {
    use super::*;

    pub(super) fn send_batch<'a>(
        socket: BorrowedFd<'_>,
        _: &mut SendBatch,
        msgs: impl Iterator<Item = Outgoing<'a>>,
    ) -> io::Result<Done> {
        let socket = socket2::SockRef::from(&socket);
        let (mut sent, mut calls) = (0, 0);
        for (data, to) in msgs {
            calls += 1;
            let result = match to {
                Some(to) => socket.send_to(data, &to.into()),
                None => socket.send(data),
            };
            match result {
                Ok(_) => sent += 1,
                Err(e) if sent == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(Done {
            datagrams: sent,
            calls,
        })
    }
}
