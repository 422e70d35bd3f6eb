//! This process's own CPU time and context switches, from `getrusage`,
//! which every Unix has.

use std::io;
use std::time::Duration;

/// CPU time used by a process so far, user and system.
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

    /// The time used since `earlier`, part by part (zero where a part would
    /// go backwards).
    pub fn since(&self, earlier: &CpuTime) -> CpuTime {
        CpuTime {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
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

/// Context switches of this process so far, all threads live and exited:
/// `(voluntary, involuntary)`, from `getrusage`.
///
/// Unlike [`ProcessStats::switches`](super::ProcessStats::switches), which
/// sums the live threads only, this includes threads that have exited; it is
/// also much cheaper to read.
///
/// # Errors
///
/// Returns the OS error if `getrusage` fails.
pub fn context_switches() -> io::Result<(u64, u64)> {
    let usage = rusage_self()?;
    Ok((usage.ru_nvcsw as u64, usage.ru_nivcsw as u64))
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
#[allow(clippy::unnecessary_cast)] // tv_usec is i64 on Linux, i32 on macOS
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

    #[test]
    fn cpu_time_since_never_goes_backwards() {
        let earlier = CpuTime {
            user: Duration::from_millis(5),
            system: Duration::from_millis(9),
        };
        let later = CpuTime {
            user: Duration::from_millis(7),
            system: Duration::from_millis(3),
        };
        let spent = later.since(&earlier);
        assert_eq!(spent.user, Duration::from_millis(2));
        assert_eq!(spent.system, Duration::ZERO);
    }
}
