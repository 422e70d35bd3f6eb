//! `evloop::sys` reads plausible numbers that move the right way: CPU time
//! rises with busy work, threads with spawned threads, fds with opened files,
//! resident memory with touched pages; another process reads like this one.
//!
//! The tests of this binary run one at a time: each counts something (fds,
//! threads) that a test running beside it would change.
#![cfg(target_os = "linux")]

mod common;

use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{serial, wait_until_within};
use evloop::sys::{self, ProcessStats};

/// How long a test may take to see the work it does show in the counters:
/// generous, as a loaded machine may run the work far slower than usual.
const PATIENCE: Duration = Duration::from_secs(20);

/// Spins on the CPU for `time`.
fn busy(time: Duration) {
    let start = Instant::now();
    let mut x = 0u64;
    while start.elapsed() < time {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
    }
}

/// A child process that sleeps until killed, killed on drop.
struct Sleeper(Child);

impl Sleeper {
    fn spawn() -> Sleeper {
        Sleeper(Command::new("sleep").arg("30").spawn().expect("spawn sleep"))
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_snapshot_of_this_process_is_plausible() {
    let _serial = serial();
    let stats = ProcessStats::current().unwrap();
    assert_eq!(stats.pid, std::process::id());
    assert!(stats.rss > 1 << 20, "resident memory {} B", stats.rss);
    assert!(stats.peak_rss >= stats.rss);
    assert!(stats.threads >= 1);
    // libtest starts and ends threads as it goes: the listing and the count
    // may differ by those, but the main thread (tid = pid) is always there.
    assert!(
        stats.per_thread.iter().any(|t| t.tid == stats.pid),
        "{:?}",
        stats.per_thread
    );
    assert!(
        stats.open_fds >= 3,
        "stdin, stdout and stderr at least: {}",
        stats.open_fds
    );
    assert_eq!(Some(stats.open_fds), sys::open_fds());
    let summed: u64 = stats.per_thread.iter().map(|t| t.switches.total()).sum();
    assert_eq!(stats.switches.total(), summed);
}

#[test]
fn busy_work_raises_cpu_time() {
    let _serial = serial();
    let before = ProcessStats::current().unwrap();
    // Spins until 50 ms more show: on a loaded machine spinning for 50 ms of
    // the clock may get far less of the CPU.
    let used = wait_until_within(PATIENCE, "50 ms more CPU time while spinning", || {
        busy(Duration::from_millis(10));
        let used = ProcessStats::current().unwrap().cpu_since(&before);
        (used.total() >= Duration::from_millis(50)).then_some(used)
    });
    assert!(used.user >= used.system, "{used:?} for spinning");
}

#[test]
fn spawned_threads_are_counted_with_their_switches() {
    let _serial = serial();
    let before = ProcessStats::current().unwrap();
    let (done, deadline) = (AtomicBool::new(false), Instant::now() + PATIENCE);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            std::thread::Builder::new()
                .name(SWITCHER.into())
                .spawn_scoped(scope, || {
                    // Sleeping blocks: a voluntary switch each time. The
                    // deadline ends the work should the test fail first.
                    while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
                .unwrap();
        }
        let (during, switched) = wait_until_within(PATIENCE, "4 threads that switched 5 times each", || {
            let now = ProcessStats::current().unwrap();
            let switchers: Vec<u64> = now
                .per_thread
                .iter()
                .filter(|t| t.name == SWITCHER)
                .map(|t| t.switches.voluntary)
                .collect();
            let switched = switchers.iter().sum();
            (switchers.len() == 4 && switchers.iter().all(|&n| n >= 5)).then_some((now, switched))
        });
        done.store(true, Ordering::Relaxed);
        // libtest starts and ends threads of its own meanwhile (the previous
        // test's may just be ending): the count holds the new threads beside
        // those of `before` that are still alive.
        let still_alive = before
            .per_thread
            .iter()
            .filter(|old| {
                during
                    .per_thread
                    .iter()
                    .any(|t| t.tid == old.tid && t.name != SWITCHER)
            })
            .count();
        assert!(
            during.threads >= still_alive + 4,
            "{} threads counted; {still_alive} of the {} before still alive, and 4 new",
            during.threads,
            before.threads
        );
        // Every switch of the new threads counts, beside those of the others.
        let switches = during.switches_since(&before);
        assert!(
            switches.voluntary >= switched,
            "{switches:?}, while the new threads alone switched {switched} times"
        );
    });
}

/// The name of the threads that
/// [`spawned_threads_are_counted_with_their_switches`] spawns.
const SWITCHER: &str = "switcher";

#[test]
fn opening_a_file_raises_open_fds() {
    let _serial = serial();
    let before = ProcessStats::current().unwrap().open_fds;
    let file = std::fs::File::open("Cargo.toml").unwrap();
    assert_eq!(ProcessStats::current().unwrap().open_fds, before + 1);
    drop(file);
    assert_eq!(ProcessStats::current().unwrap().open_fds, before);
}

#[test]
fn touching_a_big_allocation_raises_resident_memory() {
    let _serial = serial();
    const SIZE: usize = 64 << 20;
    let before = ProcessStats::current().unwrap();
    let mut block = vec![0u8; SIZE]; // zeroed pages: not resident until written
    for page in block.chunks_mut(4096) {
        page[0] = 1;
    }
    let after = ProcessStats::current().unwrap();
    std::hint::black_box(&block);
    assert!(
        after.rss >= before.rss + SIZE as u64 / 2,
        "{} -> {}",
        before.rss,
        after.rss
    );
    assert!(after.peak_rss >= after.rss);
    drop(block);
}

#[test]
fn another_process_can_be_read() {
    let _serial = serial();
    let child = Sleeper::spawn();
    let stats = ProcessStats::of(child.0.id()).unwrap();
    assert_eq!(stats.pid, child.0.id());
    assert_eq!(stats.threads, 1);
    assert_eq!(stats.per_thread.len(), 1);
    assert_eq!(stats.per_thread[0].name, "sleep");
    assert!(stats.rss > 0 && stats.peak_rss >= stats.rss);
    assert!(stats.open_fds >= 3, "{}", stats.open_fds);
    assert!(stats.cpu.total() < Duration::from_secs(1));
}

#[test]
fn a_process_that_does_not_exist_is_not_found() {
    let _serial = serial();
    let mut child = Sleeper::spawn();
    let pid = child.0.id();
    child.0.kill().unwrap();
    child.0.wait().unwrap(); // reaped: the pid is free
    let err = ProcessStats::of(pid).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
}

#[test]
fn fd_limit_can_be_raised_to_the_hard_limit() {
    let _serial = serial();
    let (soft, hard) = sys::fd_limit().unwrap();
    assert!(soft <= hard);
    assert_eq!(sys::raise_fd_limit().unwrap(), hard);
    assert_eq!(sys::fd_limit().unwrap(), (hard, hard));
}

#[test]
fn cpu_affinity_can_be_narrowed_and_restored() {
    let _serial = serial();
    // On a fresh thread, so that the test's own thread keeps its CPUs.
    std::thread::spawn(|| {
        let all = sys::cpu_affinity().unwrap();
        assert!(!all.is_empty());
        let one = [*all.last().unwrap()];
        sys::set_cpu_affinity(&one).unwrap();
        assert_eq!(sys::cpu_affinity().unwrap(), one);
        sys::set_cpu_affinity(&all).unwrap();
        assert_eq!(sys::cpu_affinity().unwrap(), all);
        let err = sys::set_cpu_affinity(&[]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
    })
    .join()
    .unwrap();
}
