//! Descriptors passed between processes over a Unix stream socket
//! (`SCM_RIGHTS`): the receiver gets its own descriptors for the same open
//! sockets, so a listening socket changes hands without ever closing.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// The most descriptors one message carries: far more listeners than a
/// server has, and a bound on the control buffer.
pub(crate) const MAX_PASSED_FDS: usize = 64;

/// Room for the control message of [`MAX_PASSED_FDS`] descriptors, aligned
/// as `cmsghdr` needs.
#[repr(C)]
struct ControlBuf {
    /// Forces `cmsghdr`'s alignment on the bytes.
    _align: [libc::cmsghdr; 0],
    /// `CMSG_SPACE(64 * sizeof(int))`, with room to spare.
    bytes: [u8; 64 * 4 + 64],
}

/// Sends `data` (at least one byte) with `fds` attached, in one `sendmsg`.
///
/// # Errors
///
/// Those of `sendmsg`; `InvalidInput` for no data, more than
/// [`MAX_PASSED_FDS`] descriptors, or a partial send of `data`.
pub(crate) fn send_with_fds(stream: &UnixStream, data: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if data.is_empty() || fds.len() > MAX_PASSED_FDS {
        let msg = format!("cannot pass {} fds with {} bytes", fds.len(), data.len());
        return Err(io::Error::new(io::ErrorKind::InvalidInput, msg));
    }
    let raw: Vec<RawFd> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    let payload = std::mem::size_of_val(raw.as_slice()) as u32;
    let mut control = ControlBuf {
        _align: [],
        bytes: [0; 64 * 4 + 64],
    };
    let iov = [IoSlice::new(data)];
    // SAFETY: an all-zero msghdr is a valid empty one.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_ptr() as *mut libc::iovec;
    msg.msg_iovlen = 1;
    if !raw.is_empty() {
        msg.msg_control = control.bytes.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE only computes a size.
        msg.msg_controllen = unsafe { libc::CMSG_SPACE(payload) } as _;
        // SAFETY: `msg_control` points at `control.bytes`, aligned for
        // `cmsghdr` and larger than CMSG_SPACE(payload), so the first header
        // and its data (`payload` bytes, copied from `raw`) lie within it.
        unsafe {
            let header = libc::CMSG_FIRSTHDR(&msg);
            (*header).cmsg_level = libc::SOL_SOCKET;
            (*header).cmsg_type = libc::SCM_RIGHTS;
            (*header).cmsg_len = libc::CMSG_LEN(payload) as _;
            let dest = libc::CMSG_DATA(header).cast::<RawFd>();
            std::ptr::copy_nonoverlapping(raw.as_ptr(), dest, raw.len());
        }
    }
    // SAFETY: `msg` points at `iov` and `control`, both alive for the call.
    let sent = unsafe { libc::sendmsg(stream.as_raw_fd(), &msg, send_flags()) };
    match sent {
        n if n < 0 => Err(io::Error::last_os_error()),
        n if n as usize != data.len() => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the message with the fds went out in part",
        )),
        _ => Ok(()),
    }
}

/// Receives one message into `buf` and the descriptors attached to it, each
/// close-on-exec. Returns the bytes read (0 at end of stream) and the
/// descriptors, which close when dropped.
///
/// # Errors
///
/// Those of `recvmsg`; `InvalidData` when descriptors were cut off for lack
/// of room (those that arrived are closed).
pub(crate) fn recv_with_fds(stream: &UnixStream, buf: &mut [u8]) -> io::Result<(usize, Vec<OwnedFd>)> {
    let mut control = ControlBuf {
        _align: [],
        bytes: [0; 64 * 4 + 64],
    };
    let mut iov = [IoSliceMut::new(buf)];
    // SAFETY: an all-zero msghdr is a valid empty one.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov.as_mut_ptr().cast();
    msg.msg_iovlen = 1;
    msg.msg_control = control.bytes.as_mut_ptr().cast();
    msg.msg_controllen = control.bytes.len() as _;
    // SAFETY: `msg` points at `iov` and `control`, both alive and writable
    // for the call, with their true lengths.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, recv_flags()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let fds = received_fds(&msg);
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "descriptors were cut off",
        ));
    }
    Ok((n as usize, fds))
}

/// Takes ownership of the descriptors in `msg`'s `SCM_RIGHTS` messages.
fn received_fds(msg: &libc::msghdr) -> Vec<OwnedFd> {
    let mut fds = Vec::new();
    // SAFETY: `msg` was filled by `recvmsg`; CMSG_FIRSTHDR and CMSG_NXTHDR
    // walk its control buffer within `msg_controllen`, and each
    // SCM_RIGHTS header's data holds `(cmsg_len - CMSG_LEN(0)) / 4`
    // descriptors that the kernel has just opened for this process.
    unsafe {
        let mut header = libc::CMSG_FIRSTHDR(msg);
        while !header.is_null() {
            if (*header).cmsg_level == libc::SOL_SOCKET && (*header).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(header).cast::<RawFd>();
                let len = (*header).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                for i in 0..len / std::mem::size_of::<RawFd>() {
                    let fd = std::ptr::read_unaligned(data.add(i));
                    fds.push(OwnedFd::from_raw_fd(fd));
                }
            }
            header = libc::CMSG_NXTHDR(msg, header);
        }
    }
    for fd in &fds {
        // Where MSG_CMSG_CLOEXEC does not exist, set the flag after the fact.
        let _ = socket2::SockRef::from(fd).set_cloexec(true);
    }
    fds
}

/// `sendmsg` flags: no `SIGPIPE` where the flag exists.
fn send_flags() -> libc::c_int {
    #[cfg(not(target_vendor = "apple"))]
    return libc::MSG_NOSIGNAL;
    #[cfg(target_vendor = "apple")]
    return 0;
}

/// `recvmsg` flags: descriptors close-on-exec from the start where the OS
/// can.
fn recv_flags() -> libc::c_int {
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    return libc::MSG_CMSG_CLOEXEC;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    return 0;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_listener_passed_over_a_socket_pair_accepts_on_the_other_side() {
        let (a, b) = UnixStream::pair().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        send_with_fds(&a, b"L", &[listener.as_fd()]).unwrap();
        drop(listener);
        let mut buf = [0; 8];
        let (n, mut fds) = recv_with_fds(&b, &mut buf).unwrap();
        assert_eq!((&buf[..n], fds.len()), (&b"L"[..], 1));
        let passed = std::net::TcpListener::from(fds.pop().unwrap());
        assert_eq!(passed.local_addr().unwrap(), addr);
        let _client = std::net::TcpStream::connect(addr).unwrap();
        passed.accept().unwrap();
    }

    #[test]
    fn no_data_is_refused() {
        let (a, _b) = UnixStream::pair().unwrap();
        let err = send_with_fds(&a, b"", &[]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }
}
