//! Which CPUs the calling thread may run on (Linux only), so that a
//! benchmark can pin a server and its load generator to different CPUs.

use std::io;

/// The CPUs the calling thread may run on, in ascending order (Linux only).
///
/// # Errors
///
/// [`io::ErrorKind::Unsupported`] anywhere but Linux; otherwise the error of
/// `sched_getaffinity`.
pub fn cpu_affinity() -> io::Result<Vec<usize>> {
    mask::get()
}

/// Restricts the calling thread to `cpus` (Linux only). Threads and child
/// processes it starts afterwards inherit the restriction, which is how a
/// benchmark pins a server it spawns: set, spawn, set back.
///
/// # Errors
///
/// [`io::ErrorKind::InvalidInput`] if `cpus` is empty;
/// [`io::ErrorKind::Unsupported`] anywhere but Linux; otherwise the error of
/// `sched_setaffinity` (`EINVAL` when none of `cpus` is online and allowed).
///
/// # Examples
///
/// ```
/// # if cfg!(target_os = "linux") {
/// use evloop::sys::{cpu_affinity, set_cpu_affinity};
///
/// let all = cpu_affinity()?;
/// set_cpu_affinity(&all[..1])?;
/// assert_eq!(cpu_affinity()?, &all[..1]);
/// set_cpu_affinity(&all)?;
/// # }
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn set_cpu_affinity(cpus: &[usize]) -> io::Result<()> {
    if cpus.is_empty() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty CPU set"));
    }
    mask::set(cpus)
}

/// `sched_getaffinity`/`sched_setaffinity` on a mask of our own size, so no
/// CPU count limit applies (glibc's `cpu_set_t` stops at 1,024).
#[cfg(target_os = "linux")]
mod mask {
    use std::io;

    /// Bits per mask word.
    const WORD: usize = libc::c_ulong::BITS as usize;

    pub(super) fn get() -> io::Result<Vec<usize>> {
        let mut words = 1024 / WORD;
        loop {
            let mut mask: Vec<libc::c_ulong> = vec![0; words];
            let bytes = words * size_of::<libc::c_ulong>();
            // SAFETY: `mask` is `bytes` long and writable; the kernel writes at
            // most `bytes` bytes into it. A cpu_set_t is just such a bit array.
            let rc = unsafe { libc::sched_getaffinity(0, bytes, mask.as_mut_ptr().cast()) };
            if rc == 0 {
                return Ok((0..words * WORD)
                    .filter(|&cpu| mask[cpu / WORD] >> (cpu % WORD) & 1 == 1)
                    .collect());
            }
            let err = io::Error::last_os_error();
            // EINVAL: the kernel's mask is larger than ours.
            if err.raw_os_error() != Some(libc::EINVAL) || words >= 1 << 16 {
                return Err(err);
            }
            words *= 2;
        }
    }

    pub(super) fn set(cpus: &[usize]) -> io::Result<()> {
        let words = cpus.iter().max().map_or(1, |&max| max / WORD + 1);
        let mut mask: Vec<libc::c_ulong> = vec![0; words];
        for &cpu in cpus {
            mask[cpu / WORD] |= 1 << (cpu % WORD);
        }
        let bytes = words * size_of::<libc::c_ulong>();
        // SAFETY: `mask` is `bytes` long; the kernel only reads it.
        if unsafe { libc::sched_setaffinity(0, bytes, mask.as_ptr().cast()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Where there is no affinity call (FreeBSD's `cpuset_setaffinity` and the
/// others differ in shape and are not used here).
#[cfg(not(target_os = "linux"))]
mod mask {
    use std::io;

    use crate::sys::error::unsupported;

    pub(super) fn get() -> io::Result<Vec<usize>> {
        Err(unsupported("CPU affinity"))
    }

    pub(super) fn set(_: &[usize]) -> io::Result<()> {
        Err(unsupported("CPU affinity"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_set_is_refused_before_any_call() {
        let err = set_cpu_affinity(&[]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn the_thread_may_run_somewhere() {
        assert!(!cpu_affinity().unwrap().is_empty());
    }
}
