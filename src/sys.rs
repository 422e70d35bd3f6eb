//! Measurements read from the operating system; the crate's only OS-specific code.
//!
//! Linux gets exact answers from `/proc`; elsewhere the functions that need
//! `/proc` return `None`.

use std::io;
use std::time::Duration;

/// CPU time used by this process so far, user and system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTime {
    /// Time spent running the process's own code.
    pub user: Duration,
    /// Time the kernel spent working for the process (system calls).
    pub system: Duration,
}

impl CpuTime {
    /// User plus system time.
    pub fn total(&self) -> Duration {
        self.user + self.system
    }
}

/// CPU time used by this process (all threads, live and exited), from `getrusage`.
///
/// # Errors
///
/// Returns the OS error if `getrusage` fails (it does not for `RUSAGE_SELF`).
///
/// # Examples
///
/// ```
/// let before = evloop::sys::cpu_time().unwrap();
/// let after = evloop::sys::cpu_time().unwrap();
/// assert!(after.total() >= before.total());
/// ```
pub fn cpu_time() -> io::Result<CpuTime> {
    let usage = rusage_self()?;
    Ok(CpuTime {
        user: timeval(usage.ru_utime),
        system: timeval(usage.ru_stime),
    })
}

/// Context switches of this process so far: `(voluntary, involuntary)`.
///
/// # Errors
///
/// Returns the OS error if `getrusage` fails.
pub fn context_switches() -> io::Result<(u64, u64)> {
    let usage = rusage_self()?;
    Ok((usage.ru_nvcsw as u64, usage.ru_nivcsw as u64))
}

/// Number of file descriptors this process has open, or `None` where the OS
/// offers no cheap way to count them (anything but Linux).
///
/// # Examples
///
/// ```
/// if let Some(before) = evloop::sys::open_fds() {
///     let file = std::fs::File::open("Cargo.toml").unwrap();
///     assert_eq!(evloop::sys::open_fds(), Some(before + 1));
///     drop(file);
///     assert_eq!(evloop::sys::open_fds(), Some(before));
/// }
/// ```
pub fn open_fds() -> Option<usize> {
    if !cfg!(target_os = "linux") {
        return None;
    }
    // The directory handle itself is an open fd while we count; subtract it.
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(entries.count().saturating_sub(1))
}

/// `getrusage(RUSAGE_SELF)`.
fn rusage_self() -> io::Result<libc::rusage> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: `usage` points to writable memory of the right size and type;
    // getrusage initialises it fully when it returns 0.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: rc == 0, so the kernel filled the struct.
    Ok(unsafe { usage.assume_init() })
}

/// Converts a `timeval` to a `Duration`.
fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(tv.tv_sec as u64) + Duration::from_micros(tv.tv_usec as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_work_raises_cpu_time() {
        let before = cpu_time().unwrap();
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(50) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        assert!(cpu_time().unwrap().total() > before.total());
    }
}
