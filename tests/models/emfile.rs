//! Running out of file descriptors is survived by the thread model, in this
//! process: the fd limit is lowered and every free slot below it filled, so
//! `accept` fails with `EMFILE` while connections wait in the backlog. The
//! acceptor must then pause instead of spinning, keep the open connections
//! served, say so once, and accept again once fds are free.

use std::fs::File;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::common::{Model, TestServer, assert_echoes, isolated, open_fds};

/// Connections served before fds run out.
const EXISTING: usize = 3;
/// Connections that arrive while none can be accepted.
const WAITING: usize = 10;
/// How long the starved server's CPU use is measured.
const CPU_WINDOW: Duration = Duration::from_millis(500);
/// The most CPU it may use meanwhile; a spinning acceptor uses it all.
const CPU_ALLOWED: Duration = Duration::from_millis(150);

#[test]
fn the_acceptor_pauses_when_fds_run_out_and_recovers() {
    isolated(fds_run_out_and_recover);
}

/// The scenario of [`the_acceptor_pauses_when_fds_run_out_and_recovers`].
fn fds_run_out_and_recover() {
    install_warning_counter();
    WARNINGS.store(0, Ordering::SeqCst);
    let server = TestServer::echo(Model::Threads);
    let mut existing: Vec<_> = (0..EXISTING).map(|_| server.connect()).collect();
    existing.iter_mut().for_each(|c| assert_echoes(c, b"before"));
    // Sockets made now, connected once no fd is left for the server.
    let waiting: Vec<Socket> = (0..WAITING)
        .map(|_| Socket::new(Domain::IPV4, Type::STREAM, None).unwrap())
        .collect();

    let starved = FdStarvation::begin();
    for socket in &waiting {
        socket.connect(&server.addr.into()).unwrap();
    }
    let before = evloop::sys::cpu_time().unwrap();
    std::thread::sleep(CPU_WINDOW);
    let used = evloop::sys::cpu_time().unwrap().total() - before.total();
    assert!(
        used < CPU_ALLOWED,
        "out of fds, the process used {used:?} of CPU in {CPU_WINDOW:?}"
    );
    existing
        .iter_mut()
        .for_each(|c| assert_echoes(c, b"while out of fds"));
    let stats = server.stats();
    assert!(stats.accept_backoffs >= 1, "no pause counted: {stats:?}");
    // An `accept` blocked since before had its fd reserved then (Linux
    // takes the fd first): one connection may get in, no more.
    assert!(stats.accepted <= EXISTING as u64 + 1, "{stats:?}");
    drop(starved);

    for socket in waiting {
        let mut client = connected(socket);
        assert_echoes(&mut client, b"after");
    }
    assert_eq!(WARNINGS.load(Ordering::SeqCst), 1, "one warning per episode");
}

/// Turns a connected socket into a client stream with a read timeout.
fn connected(socket: Socket) -> TcpStream {
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream
}

/// A lowered fd limit with every free slot below it taken; dropping it
/// frees the slots and restores the limit.
struct FdStarvation {
    /// The limit before.
    saved: libc::rlimit,
    /// Files holding the free slots.
    fillers: Vec<File>,
}

impl FdStarvation {
    /// Lowers the soft limit to a little above the fds open now, then fills
    /// what is left below it.
    fn begin() -> Self {
        let saved = rlimit();
        let lowered = libc::rlimit {
            rlim_cur: (open_fds() + 16) as libc::rlim_t,
            ..saved
        };
        set_rlimit(&lowered);
        let fillers = std::iter::from_fn(|| File::open("/dev/null").ok()).collect();
        FdStarvation { saved, fillers }
    }
}

impl Drop for FdStarvation {
    fn drop(&mut self) {
        self.fillers.clear();
        set_rlimit(&self.saved);
    }
}

/// The process's fd limit.
fn rlimit() -> libc::rlimit {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the call to fill.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) }, 0);
    limit
}

/// Sets the process's fd limit.
fn set_rlimit(limit: &libc::rlimit) {
    // SAFETY: `limit` is a valid rlimit that outlives the call.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, limit) }, 0);
}

/// Warnings about running out of fds, counted by [`WarningCounter`].
static WARNINGS: AtomicUsize = AtomicUsize::new(0);

/// A logger that counts the acceptor's out-of-fds warnings.
struct WarningCounter;

impl log::Log for WarningCounter {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record<'_>) {
        if record.args().to_string().contains("out of file descriptors") {
            WARNINGS.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn flush(&self) {}
}

/// Installs [`WarningCounter`] as the process's logger.
fn install_warning_counter() {
    static LOGGER: WarningCounter = WarningCounter;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Warn);
    }
}
