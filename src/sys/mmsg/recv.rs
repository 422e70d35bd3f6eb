//! Receiving a batch: one `recvmmsg` on Linux and Android, one `recvmsg`
//! per datagram elsewhere, into the buffers a [`RecvBatch`] owns.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::BorrowedFd;

use super::Done;

/// One datagram of a [`RecvBatch`], as the kernel reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Received<'a> {
    /// The bytes received: the whole datagram, or its first `size` bytes
    /// when `truncated`.
    pub(crate) data: &'a [u8],
    /// The sender; `None` for an address family other than IPv4 or IPv6.
    pub(crate) from: Option<SocketAddr>,
    /// The datagram's full length when it was longer than the slot
    /// (`MSG_TRUNC`); `None` when `data` is all of it.
    pub(crate) truncated: Option<usize>,
}

/// The buffers of one received batch: `slots` datagrams of up to `size`
/// bytes each.
///
/// The memory is allocated once, `slots * size` bytes; the kernel writes
/// only what arrives, so untouched pages of a large `size` cost address
/// space, not resident memory.
pub(crate) struct RecvBatch {
    /// `slots` buffers of `size` bytes, back to back.
    bytes: Vec<u8>,
    /// Bytes per slot.
    size: usize,
    /// The senders' addresses, one per slot.
    addrs: Vec<libc::sockaddr_storage>,
    /// Per slot: bytes received (the full length if truncated) and whether
    /// `MSG_TRUNC` was set. Valid for the first `filled` slots.
    meta: Vec<(usize, bool)>,
    /// Slots the last receive filled.
    filled: usize,
    /// The `recvmmsg` headers pointing at `bytes` and `addrs`.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    headers: imp::Headers,
    /// An error met after some datagrams of a batch, for the next call.
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    pending: Option<io::Error>,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecvBatch")
            .field("slots", &self.slots())
            .field("size", &self.size)
            .field("filled", &self.filled)
            .finish()
    }
}

impl RecvBatch {
    /// Buffers for `slots` datagrams of up to `size` bytes.
    ///
    /// # Panics
    ///
    /// If `slots` or `size` is 0.
    pub(crate) fn new(slots: usize, size: usize) -> Self {
        assert!(
            slots > 0 && size > 0,
            "a batch needs at least one slot of one byte"
        );
        let mut bytes = vec![0; slots * size];
        // SAFETY: all zeros is a valid `sockaddr_storage` (family AF_UNSPEC).
        let mut addrs = vec![unsafe { std::mem::zeroed::<libc::sockaddr_storage>() }; slots];
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let headers = imp::headers(&mut bytes, size, &mut addrs);
        RecvBatch {
            bytes,
            size,
            addrs,
            meta: vec![(0, false); slots],
            filled: 0,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            headers,
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            pending: None,
        }
    }

    /// How many datagrams one receive may take.
    pub(crate) fn slots(&self) -> usize {
        self.addrs.len()
    }

    /// How many datagrams the last receive filled.
    pub(crate) fn len(&self) -> usize {
        self.filled
    }

    /// Datagram `i` of the last receive.
    ///
    /// # Panics
    ///
    /// If `i` is not below [`len`](RecvBatch::len).
    pub(crate) fn get(&self, i: usize) -> Received<'_> {
        assert!(i < self.filled, "datagram {i} of {}", self.filled);
        let (len, truncated) = self.meta[i];
        let start = i * self.size;
        Received {
            data: &self.bytes[start..start + len.min(self.size)],
            from: socket_addr(&self.addrs[i]),
            truncated: truncated.then_some(len),
        }
    }
}

/// Receives up to [`RecvBatch::slots`] datagrams into `batch`, never
/// blocking whatever the socket's mode.
///
/// # Errors
///
/// `WouldBlock` when nothing waits; otherwise the socket's error, such as
/// `ConnectionRefused` on a connected socket whose peer answered with ICMP
/// port unreachable. An error after some datagrams were received is left
/// for the next call, which returns it.
pub(crate) fn recv_batch(socket: BorrowedFd<'_>, batch: &mut RecvBatch) -> io::Result<Done> {
    batch.filled = 0;
    imp::recv_batch(socket, batch)
}

/// The socket address in `storage`, if it is IPv4 or IPv6.
fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a `sockaddr_in`,
            // which it is large and aligned enough for.
            let sin = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for a `sockaddr_in6`.
            let sin6 = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// `recvmmsg`.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod imp {
    use super::*;
    use std::os::fd::AsRawFd;

    /// The headers of `batch`'s slots, pointing at its buffers and
    /// addresses, whose heap memory stays put however the batch moves.
    pub(super) fn headers(bytes: &mut [u8], size: usize, addrs: &mut [libc::sockaddr_storage]) -> Headers {
        let mut iovs: Vec<libc::iovec> = (bytes.chunks_exact_mut(size))
            .map(|slot| libc::iovec {
                iov_base: slot.as_mut_ptr().cast(),
                iov_len: size,
            })
            .collect();
        let hdrs = (iovs.iter_mut().zip(addrs))
            .map(|(iov, addr)| {
                // SAFETY: all zeros is a valid `msghdr` (no buffers, no control data).
                let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
                hdr.msg_name = (addr as *mut libc::sockaddr_storage).cast();
                hdr.msg_iov = iov;
                hdr.msg_iovlen = 1;
                libc::mmsghdr {
                    msg_hdr: hdr,
                    msg_len: 0,
                }
            })
            .collect();
        Headers { _iovs: iovs, hdrs }
    }

    /// The `recvmmsg` headers of a [`RecvBatch`].
    pub(super) struct Headers {
        /// One per slot; the headers point at them.
        _iovs: Vec<libc::iovec>,
        /// One per slot.
        pub(super) hdrs: Vec<libc::mmsghdr>,
    }

    // SAFETY: the pointers in `Headers` point into the heap memory of the
    // `RecvBatch` that owns it, which moves with it between threads and is
    // only touched through `&mut RecvBatch`.
    unsafe impl Send for Headers {}

    pub(super) fn recv_batch(socket: BorrowedFd<'_>, batch: &mut RecvBatch) -> io::Result<Done> {
        let slots = batch.slots();
        let hdrs = &mut batch.headers.hdrs;
        for hdr in hdrs.iter_mut() {
            // The kernel shortens it to each sender's address length.
            hdr.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
        }
        // MSG_TRUNC makes each message's length its full length, so a cut
        // datagram is reported with the size it had.
        let flags = libc::MSG_DONTWAIT | libc::MSG_TRUNC;
        // SAFETY: `hdrs` holds `slots` headers, each pointing at one iovec
        // (a slot of `bytes`, writable for `size` bytes) and at one
        // `sockaddr_storage` of `addrs` with its size, all owned by `batch`,
        // which the call borrows. A null timeout waits for nothing more.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                hdrs.as_mut_ptr(),
                slots as _,
                flags as _,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for (meta, hdr) in batch.meta.iter_mut().zip(&batch.headers.hdrs[..n]) {
            *meta = (hdr.msg_len as usize, hdr.msg_hdr.msg_flags & libc::MSG_TRUNC != 0);
        }
        batch.filled = n;
        Ok(Done {
            datagrams: n,
            calls: 1,
        })
    }
}

/// One `recvmsg` per datagram.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod imp {
    use super::*;
    use socket2::SockAddr;

    pub(super) fn recv_batch(socket: BorrowedFd<'_>, batch: &mut RecvBatch) -> io::Result<Done> {
        if let Some(e) = batch.pending.take() {
            return Err(e);
        }
        let socket = socket2::SockRef::from(&socket);
        let mut calls = 0;
        while batch.filled < batch.slots() {
            let i = batch.filled;
            let start = i * batch.size;
            let buf = &mut batch.bytes[start..start + batch.size];
            // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and the
            // kernel writes only initialised bytes into the buffer.
            let buf = unsafe { &mut *(buf as *mut [u8] as *mut [std::mem::MaybeUninit<u8>]) };
            calls += 1;
            let flags = libc::MSG_DONTWAIT;
            match socket.recv_from_vectored_with_flags(&mut [socket2::MaybeUninitSlice::new(buf)], flags) {
                Ok((len, recv_flags, addr)) => {
                    let truncated = recv_flags.is_truncated();
                    // Without MSG_TRUNC's full length, a cut datagram is
                    // reported one byte longer than its slot.
                    let len = if truncated { batch.size + 1 } else { len };
                    batch.meta[i] = (len, truncated);
                    batch.addrs[i] = storage_of(&addr);
                    batch.filled += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if batch.filled == 0 => return Err(e),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // Returned by the next call, as recvmmsg does.
                Err(e) => {
                    batch.pending = Some(e);
                    break;
                }
            }
        }
        Ok(Done {
            datagrams: batch.filled,
            calls,
        })
    }

    /// A copy of `addr`'s storage.
    fn storage_of(addr: &SockAddr) -> libc::sockaddr_storage {
        // SAFETY: all zeros is a valid `sockaddr_storage`.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let len = (addr.len() as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
        // SAFETY: both regions are valid for `len` bytes and do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                addr.as_ptr().cast::<u8>(),
                (&mut storage as *mut libc::sockaddr_storage).cast::<u8>(),
                len,
            )
        };
        storage
    }
}
