//! Measurements read from the operating system, and the few process settings
//! the measuring tools need; the crate's only OS-specific code.
//!
//! * [`cpu_time`], [`context_switches`], [`open_fds`] — cheap readings of this
//!   process, for tests and in-process benchmarks.
//! * [`ProcessStats`] — one snapshot of a whole process, this one
//!   ([`ProcessStats::current`]) or another ([`ProcessStats::of`]): CPU time,
//!   context switches (total and per thread), resident memory now and at its
//!   peak, threads, open fds. Two snapshots give the cost of what happened
//!   between them ([`ProcessStats::cpu_since`], [`ProcessStats::switches_since`]).
//! * [`fd_limit`], [`raise_fd_limit`], [`cpu_affinity`], [`set_cpu_affinity`] —
//!   what a load test needs before it opens thousands of sockets or pins a
//!   server and its client to different CPUs.
//!
//! `getrusage` and `setrlimit` work on every Unix. Everything read from
//! `/proc` and the CPU affinity are Linux-only: elsewhere those functions
//! return `None` or an [`io::ErrorKind::Unsupported`] error.

use std::fs;
use std::io;
use std::path::Path;
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

/// Context switches counted by the kernel.
///
/// A *voluntary* switch happens when a thread blocks (in `epoll_wait`, `read`,
/// a futex); an *involuntary* one when the scheduler preempts a thread that
/// could have run on. A thread-per-connection server pays a voluntary switch
/// or two per message; an event loop under load pays far fewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContextSwitches {
    /// The thread gave up the CPU because it had to wait.
    pub voluntary: u64,
    /// The scheduler took the CPU away from a runnable thread.
    pub involuntary: u64,
}

impl ContextSwitches {
    /// Voluntary plus involuntary switches.
    pub fn total(&self) -> u64 {
        self.voluntary + self.involuntary
    }

    /// Field-wise difference, zero where a counter would go backwards.
    fn since(&self, earlier: &ContextSwitches) -> ContextSwitches {
        ContextSwitches {
            voluntary: self.voluntary.saturating_sub(earlier.voluntary),
            involuntary: self.involuntary.saturating_sub(earlier.involuntary),
        }
    }

    /// Field-wise sum.
    fn add(&mut self, other: &ContextSwitches) {
        self.voluntary += other.voluntary;
        self.involuntary += other.involuntary;
    }
}

/// One thread of a [`ProcessStats`] snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadStats {
    /// The kernel's thread id (TID).
    pub tid: u32,
    /// The thread's name as the kernel knows it (at most 15 bytes).
    pub name: String,
    /// Context switches of this thread since it started.
    pub switches: ContextSwitches,
}

/// A snapshot of one process as the OS sees it (Linux only).
///
/// Take one before and one after some work and subtract: the CPU time and
/// context switches it cost, whichever threads did it. [`ProcessStats::of`]
/// reads any process the caller may inspect (its own children, say), so a
/// load generator can measure the server it drives without touching its code.
///
/// # Sources and their precision
///
/// | field | source | notes |
/// |---|---|---|
/// | `cpu` | `getrusage` for this process, `/proc/PID/stat` for another | all threads, exited ones included; another process's time comes in clock ticks (10 ms) |
/// | `switches`, `per_thread` | `/proc/PID/task/*/status` | live threads only: an exited thread's switches leave the sum |
/// | `rss`, `peak_rss` | `VmRSS`, `VmHWM` in `/proc/PID/status` | bytes |
/// | `threads` | `Threads` in `/proc/PID/status` | |
/// | `open_fds` | entries of `/proc/PID/fd` | |
///
/// Reading costs a few system calls per thread: microseconds for a few
/// threads, tens of milliseconds for a process with thousands.
///
/// # Examples
///
/// ```
/// use evloop::sys::ProcessStats;
///
/// # if cfg!(target_os = "linux") {
/// let before = ProcessStats::current()?;
/// let squares: u64 = (0..1_000_000u64).map(|i| i * i).sum();
/// let after = ProcessStats::current()?;
/// println!(
///     "{squares}: {:?} of CPU, {} context switches, {} KiB resident, {} threads",
///     after.cpu_since(&before).total(),
///     after.switches_since(&before).total(),
///     after.rss / 1024,
///     after.threads,
/// );
/// # }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessStats {
    /// The process id.
    pub pid: u32,
    /// CPU time of all the process's threads so far, exited ones included.
    pub cpu: CpuTime,
    /// Context switches summed over the threads alive at the snapshot.
    pub switches: ContextSwitches,
    /// Resident memory now, in bytes (`VmRSS`).
    pub rss: u64,
    /// The most resident memory the process ever had, in bytes (`VmHWM`).
    pub peak_rss: u64,
    /// Threads alive.
    pub threads: usize,
    /// File descriptors open (the one this snapshot used to count them excluded).
    pub open_fds: usize,
    /// The threads alive at the snapshot, as listed by the kernel (a thread
    /// that exited between listing and reading is left out).
    pub per_thread: Vec<ThreadStats>,
}

impl ProcessStats {
    /// A snapshot of this process. Its `cpu` comes from `getrusage`, exact to
    /// the microsecond.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::Unsupported`] anywhere but Linux; otherwise the error
    /// of reading `/proc/self`.
    pub fn current() -> io::Result<ProcessStats> {
        let mut stats = read_process(Path::new("/proc/self"), std::process::id())?;
        // Counting /proc/self/fd opened one more fd for the duration.
        stats.open_fds = stats.open_fds.saturating_sub(1);
        stats.cpu = cpu_time()?;
        Ok(stats)
    }

    /// A snapshot of process `pid`. For this process prefer
    /// [`current`](Self::current): its CPU time is finer, and its fd count
    /// leaves out the descriptor used to count.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::Unsupported`] anywhere but Linux;
    /// [`io::ErrorKind::NotFound`] if no process `pid` exists or it has exited
    /// (a zombie has no memory to report); [`io::ErrorKind::PermissionDenied`]
    /// if it belongs to another user; otherwise the error of reading `/proc`.
    ///
    /// # Examples
    ///
    /// ```
    /// # if cfg!(target_os = "linux") {
    /// use std::process::Command;
    /// use evloop::sys::ProcessStats;
    ///
    /// let mut child = Command::new("sleep").arg("5").spawn()?;
    /// let stats = ProcessStats::of(child.id())?;
    /// assert_eq!(stats.threads, 1);
    /// assert!(stats.rss > 0);
    /// child.kill()?;
    /// child.wait()?;
    /// # }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn of(pid: u32) -> io::Result<ProcessStats> {
        read_process(&Path::new("/proc").join(pid.to_string()), pid)
    }

    /// CPU time used between `earlier` and this snapshot.
    pub fn cpu_since(&self, earlier: &ProcessStats) -> CpuTime {
        self.cpu.since(&earlier.cpu)
    }

    /// Context switches between `earlier` and this snapshot, thread by thread:
    /// a thread present in both counts its increase, a thread started since
    /// counts all of its switches. Switches of threads that exited in between
    /// are missing after `earlier`, so measure while the threads that do the
    /// work are alive.
    pub fn switches_since(&self, earlier: &ProcessStats) -> ContextSwitches {
        let mut sum = ContextSwitches::default();
        for thread in &self.per_thread {
            let before = earlier.per_thread.iter().find(|t| t.tid == thread.tid);
            sum.add(
                &thread
                    .switches
                    .since(&before.map_or_else(Default::default, |t| t.switches)),
            );
        }
        sum
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
/// Unlike [`ProcessStats::switches`], which sums the live threads only, this
/// includes threads that have exited; it is also much cheaper to read.
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
    let entries = fs::read_dir("/proc/self/fd").ok()?;
    Some(entries.count().saturating_sub(1))
}

/// This process's limit on open file descriptors (`RLIMIT_NOFILE`):
/// `(soft, hard)`. The soft limit is the one enforced; a process may raise it
/// up to the hard limit. `u64::MAX` means unlimited.
///
/// # Errors
///
/// Returns the OS error if `getrlimit` fails.
pub fn fd_limit() -> io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((rlim(limit.rlim_cur), rlim(limit.rlim_max)))
}

/// Raises this process's soft fd limit to its hard limit and returns the new
/// soft limit. Child processes started afterwards inherit it.
///
/// Servers and load generators that hold thousands of sockets need this: the
/// usual soft limit is 1,024 while the hard limit is often far higher.
///
/// # Errors
///
/// Returns the OS error if `getrlimit` or `setrlimit` fails (macOS, for one,
/// refuses an unlimited soft limit: the limit is then left as it was).
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
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if limit.rlim_cur != limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid rlimit, read by the kernel only.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(rlim(limit.rlim_cur))
}

/// The CPUs the calling thread may run on, in ascending order (Linux only).
///
/// # Errors
///
/// [`io::ErrorKind::Unsupported`] anywhere but Linux; otherwise the error of
/// `sched_getaffinity`.
pub fn cpu_affinity() -> io::Result<Vec<usize>> {
    if !cfg!(target_os = "linux") {
        return Err(unsupported("CPU affinity"));
    }
    affinity::get()
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
    if !cfg!(target_os = "linux") {
        return Err(unsupported("CPU affinity"));
    }
    affinity::set(cpus)
}

/// Reads one process's snapshot from its `/proc` directory.
fn read_process(root: &Path, pid: u32) -> io::Result<ProcessStats> {
    if !cfg!(target_os = "linux") {
        return Err(unsupported("process statistics"));
    }
    let status = fs::read_to_string(root.join("status"))?;
    let stat = fs::read_to_string(root.join("stat"))?;
    let gone = || io::Error::new(io::ErrorKind::NotFound, format!("process {pid} has exited"));
    let per_thread = read_threads(root)?;
    let mut switches = ContextSwitches::default();
    per_thread.iter().for_each(|t| switches.add(&t.switches));
    Ok(ProcessStats {
        pid,
        cpu: parse_stat_cpu(&stat, clock_ticks_per_sec()).ok_or_else(|| bad_data(root, "stat"))?,
        switches,
        rss: status_field(&status, "VmRSS").ok_or_else(gone)? * 1024,
        peak_rss: status_field(&status, "VmHWM").ok_or_else(gone)? * 1024,
        threads: status_field(&status, "Threads").ok_or_else(|| bad_data(root, "status"))? as usize,
        open_fds: fs::read_dir(root.join("fd"))?.count(),
        per_thread,
    })
}

/// Reads `/proc/PID/task/*/status`, skipping threads that exit meanwhile.
fn read_threads(root: &Path) -> io::Result<Vec<ThreadStats>> {
    let mut threads = Vec::new();
    for entry in fs::read_dir(root.join("task"))? {
        let entry = entry?;
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        match fs::read_to_string(entry.path().join("status")) {
            Ok(status) => threads.push(parse_thread(tid, &status)),
            // ESRCH: the thread exited after the listing.
            Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(e) => return Err(e),
        }
    }
    threads.sort_by_key(|t| t.tid);
    Ok(threads)
}

/// One thread's name and switches from its `status` text.
fn parse_thread(tid: u32, status: &str) -> ThreadStats {
    let name = status.lines().find_map(|l| l.strip_prefix("Name:")).unwrap_or("");
    ThreadStats {
        tid,
        name: name.trim().to_string(),
        switches: ContextSwitches {
            voluntary: status_field(status, "voluntary_ctxt_switches").unwrap_or(0),
            involuntary: status_field(status, "nonvoluntary_ctxt_switches").unwrap_or(0),
        },
    }
}

/// The number in a `Key:  value [kB]` line of a `status` file.
fn status_field(status: &str, key: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let (k, v) = line.split_once(':')?;
        if k != key {
            return None;
        }
        v.split_whitespace().next()?.parse().ok()
    })
}

/// User and system time from a `stat` line (fields 14 and 15, in clock ticks).
fn parse_stat_cpu(stat: &str, ticks_per_sec: u64) -> Option<CpuTime> {
    // The command name (field 2) may hold spaces and parentheses: split after
    // its last ')'. Field 3 (state) is then index 0, so 14 and 15 are 11 and 12.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let mut ticks = || -> Option<Duration> {
        let t: u64 = fields.next()?.parse().ok()?;
        Some(Duration::from_nanos(
            t.saturating_mul(1_000_000_000) / ticks_per_sec.max(1),
        ))
    };
    Some(CpuTime {
        user: ticks()?,
        system: ticks()?,
    })
}

/// Clock ticks per second, the unit of `/proc/PID/stat` times (almost always 100).
fn clock_ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as u64 } else { 100 }
}

/// An `InvalidData` error naming the `/proc` file that did not parse.
fn bad_data(root: &Path, file: &str) -> io::Error {
    let path = root.join(file);
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("cannot parse {}", path.display()),
    )
}

/// An `Unsupported` error for `what`.
fn unsupported(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!("{what} is only available on Linux"),
    )
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

/// An `rlim_t` as `u64`, `RLIM_INFINITY` as `u64::MAX`.
#[allow(clippy::unnecessary_cast)] // rlim_t is u64 on Linux, not on every Unix
fn rlim(value: libc::rlim_t) -> u64 {
    if value == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        value as u64
    }
}

/// `sched_getaffinity`/`sched_setaffinity` on a mask of our own size, so no
/// CPU count limit applies (glibc's `cpu_set_t` stops at 1,024).
#[cfg(target_os = "linux")]
mod affinity {
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

/// Stand-in where there is no affinity call; the public functions return
/// `Unsupported` before reaching it.
#[cfg(not(target_os = "linux"))]
mod affinity {
    use std::io;

    pub(super) fn get() -> io::Result<Vec<usize>> {
        Err(super::unsupported("CPU affinity"))
    }

    pub(super) fn set(_: &[usize]) -> io::Result<()> {
        Err(super::unsupported("CPU affinity"))
    }
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
    fn stat_times_are_read_after_a_command_name_with_parentheses() {
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 1234 0 0";
        let cpu = parse_stat_cpu(stat, 100).unwrap();
        assert_eq!(cpu.user, Duration::from_millis(2500));
        assert_eq!(cpu.system, Duration::from_millis(750));
        assert_eq!(parse_stat_cpu("42 (truncated) S 1 2", 100), None);
    }

    #[test]
    fn status_fields_are_found_by_exact_key() {
        let status = "Name:\tmy thread\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nThreads:\t7\n\
                      voluntary_ctxt_switches:\t12\nnonvoluntary_ctxt_switches:\t3\n";
        assert_eq!(status_field(status, "VmRSS"), Some(1024));
        assert_eq!(status_field(status, "Threads"), Some(7));
        assert_eq!(status_field(status, "ctxt_switches"), None);
        let thread = parse_thread(9, status);
        assert_eq!(thread.name, "my thread");
        assert_eq!(
            thread.switches,
            ContextSwitches {
                voluntary: 12,
                involuntary: 3
            }
        );
    }

    #[test]
    fn switches_since_counts_new_threads_whole_and_ignores_exited_ones() {
        let thread = |tid, voluntary| ThreadStats {
            tid,
            name: String::new(),
            switches: ContextSwitches {
                voluntary,
                involuntary: 1,
            },
        };
        let snapshot = |per_thread: Vec<ThreadStats>| ProcessStats {
            pid: 1,
            cpu: CpuTime::default(),
            switches: ContextSwitches::default(),
            rss: 0,
            peak_rss: 0,
            threads: per_thread.len(),
            open_fds: 0,
            per_thread,
        };
        let before = snapshot(vec![thread(1, 10), thread(2, 500)]);
        let after = snapshot(vec![thread(1, 15), thread(3, 7)]);
        let delta = after.switches_since(&before);
        assert_eq!(
            delta,
            ContextSwitches {
                voluntary: 5 + 7,
                involuntary: 1
            }
        );
    }
}
