//! The process's limit on open file descriptors, which a load test raises
//! before it opens thousands of sockets.

use std::io;

/// This process's limit on open file descriptors (`RLIMIT_NOFILE`):
/// `(soft, hard)`. The soft limit is the one enforced; a process may raise it
/// up to the hard limit. `u64::MAX` means unlimited.
///
/// # Errors
///
/// Returns the OS error if `getrlimit` fails.
pub fn fd_limit() -> io::Result<(u64, u64)> {
    let limit = get_nofile()?;
    Ok((rlim(limit.rlim_cur), rlim(limit.rlim_max)))
}

/// Raises this process's soft fd limit to its hard limit and returns the new
/// soft limit. Child processes started afterwards inherit it.
///
/// Servers and load generators that hold thousands of sockets need this: the
/// usual soft limit is 1,024 while the hard limit is often far higher. On
/// macOS, whose hard limit is usually unlimited while the kernel refuses a
/// soft limit above `OPEN_MAX`, the soft limit is raised to `OPEN_MAX`.
///
/// # Errors
///
/// Returns the OS error if `getrlimit` or `setrlimit` fails; the limit is
/// then left as it was.
///
/// # Examples
///
/// ```
/// let (soft, hard) = evloop::sys::fd_limit()?;
/// let raised = evloop::sys::raise_fd_limit()?;
/// assert!(raised >= soft && raised <= hard);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn raise_fd_limit() -> io::Result<u64> {
    let mut limit = get_nofile()?;
    let target = highest_soft_limit(limit.rlim_max);
    if limit.rlim_cur < target {
        limit.rlim_cur = target;
        // SAFETY: `limit` is a valid rlimit, read by the kernel only.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(rlim(limit.rlim_cur))
}

/// `getrlimit(RLIMIT_NOFILE)`.
fn get_nofile() -> io::Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(limit)
}

/// The highest soft limit the kernel accepts under the hard limit `hard`.
#[cfg(not(target_vendor = "apple"))]
fn highest_soft_limit(hard: libc::rlim_t) -> libc::rlim_t {
    hard
}

/// The highest soft limit the kernel accepts under the hard limit `hard`:
/// Apple's kernels refuse more than `OPEN_MAX` (`setrlimit(2)`, COMPATIBILITY).
#[cfg(target_vendor = "apple")]
fn highest_soft_limit(hard: libc::rlim_t) -> libc::rlim_t {
    /// `OPEN_MAX` of `<sys/syslimits.h>`, which the libc crate leaves out.
    const OPEN_MAX: libc::rlim_t = 10_240;
    hard.min(OPEN_MAX)
}

/// An `rlim_t` as `u64`, `RLIM_INFINITY` as `u64::MAX`.
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, i64 on FreeBSD
fn rlim(value: libc::rlim_t) -> u64 {
    if value == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        value as u64
    }
}
