//! Snapshots of a whole process, this one or another, as the OS reports it:
//! CPU time, context switches per thread, memory, threads, open fds.
//!
//! Everything here is read from Linux's `/proc`; elsewhere [`ProcessStats`]
//! returns [`io::ErrorKind::Unsupported`] and [`open_fds`] returns `None`.

use std::io;

use super::rusage::CpuTime;

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
        procfs::current()
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
        procfs::of(pid)
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
    procfs::count_open_fds()
}

/// The reader of `/proc/PID`.
#[cfg(target_os = "linux")]
mod procfs {
    use std::fs;
    use std::io;
    use std::path::Path;
    use std::time::Duration;

    use super::{ContextSwitches, CpuTime, ProcessStats, ThreadStats};
    use crate::sys::rusage::cpu_time;

    /// A snapshot of this process, its CPU time from `getrusage`.
    pub(super) fn current() -> io::Result<ProcessStats> {
        let mut stats = read_process(Path::new("/proc/self"), std::process::id())?;
        // Counting /proc/self/fd opened one more fd for the duration.
        stats.open_fds = stats.open_fds.saturating_sub(1);
        stats.cpu = cpu_time()?;
        Ok(stats)
    }

    /// A snapshot of process `pid`.
    pub(super) fn of(pid: u32) -> io::Result<ProcessStats> {
        read_process(&Path::new("/proc").join(pid.to_string()), pid)
    }

    /// Entries of `/proc/self/fd`, less the one the listing itself holds.
    pub(super) fn count_open_fds() -> Option<usize> {
        let entries = fs::read_dir("/proc/self/fd").ok()?;
        Some(entries.count().saturating_sub(1))
    }

    /// Reads one process's snapshot from its `/proc` directory.
    fn read_process(root: &Path, pid: u32) -> io::Result<ProcessStats> {
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
    pub(super) fn parse_thread(tid: u32, status: &str) -> ThreadStats {
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
    pub(super) fn status_field(status: &str, key: &str) -> Option<u64> {
        status.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            if k != key {
                return None;
            }
            v.split_whitespace().next()?.parse().ok()
        })
    }

    /// User and system time from a `stat` line (fields 14 and 15, in clock ticks).
    pub(super) fn parse_stat_cpu(stat: &str, ticks_per_sec: u64) -> Option<CpuTime> {
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
}

/// Where there is no `/proc` to read.
#[cfg(not(target_os = "linux"))]
mod procfs {
    use std::io;

    use super::ProcessStats;
    use crate::sys::error::unsupported;

    pub(super) fn current() -> io::Result<ProcessStats> {
        Err(unsupported("process statistics"))
    }

    pub(super) fn of(_: u32) -> io::Result<ProcessStats> {
        Err(unsupported("process statistics"))
    }

    pub(super) fn count_open_fds() -> Option<usize> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    // The parsers of /proc text exist on Linux only.
    #[cfg(target_os = "linux")]
    use {
        procfs::{parse_stat_cpu, parse_thread, status_field},
        std::time::Duration,
    };

    #[test]
    #[cfg(target_os = "linux")]
    fn stat_times_are_read_after_a_command_name_with_parentheses() {
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 1234 0 0";
        let cpu = parse_stat_cpu(stat, 100).unwrap();
        assert_eq!(cpu.user, Duration::from_millis(2500));
        assert_eq!(cpu.system, Duration::from_millis(750));
        assert_eq!(parse_stat_cpu("42 (truncated) S 1 2", 100), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    pub(super) fn status_fields_are_found_by_exact_key() {
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
