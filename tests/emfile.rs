//! Running out of file descriptors is survived, over real sockets.
//!
//! The scenario: an echo server whose process may hold only a couple of dozen
//! fds is flooded with several times as many connections as it can accept.
//! The kernel still completes their handshakes into the listen backlog, so
//! `accept` keeps failing with `EMFILE`. The server must then:
//!
//! * stop trying instead of spinning a core on a listener that stays ready;
//! * keep serving the connections it already has;
//! * serve new connections once fds are freed again;
//! * say so once: one warning for the episode, one note when it recovers.
//!
//! The fd limit is per process, so the server runs in a child process: this
//! test binary re-executes itself, running only [`emfile_child_server_process`]
//! with `EVLOOP_EMFILE_CHILD` set. The child lowers its own limit, serves on
//! 127.0.0.1, prints its port and runs until its stdin closes; the parent's
//! client sockets stay outside the limit. Should the parent die, the child's
//! stdin closes with it and the child exits too.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use evloop::{Config, Conn, EventLoop, Handler};

/// Set in the environment of the child that runs the server.
const CHILD_ENV: &str = "EVLOOP_EMFILE_CHILD";
/// The fds the child may open beyond those it holds when it starts serving.
const FD_HEADROOM: libc::rlim_t = 24;
/// Connections held open through the flood, which must keep echoing.
const EXISTING: usize = 5;
/// Connections opened beyond them: several times what the child can accept,
/// yet within the listen backlog (128), so every connect completes at once.
const FLOOD: usize = 100;
/// How long the saturated server's CPU use is measured.
const CPU_WINDOW: Duration = Duration::from_secs(2);
/// The most CPU it may use in that window; a spinning accept loop uses it all.
const CPU_ALLOWED: Duration = Duration::from_millis(200);
/// Read timeout of every client socket, so that no step can hang.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

#[test]
fn server_survives_fd_exhaustion_and_recovers() {
    let server = ChildServer::spawn();
    let addr = server.addr;

    let mut existing: Vec<TcpStream> = (0..EXISTING).map(|_| connect(addr)).collect();
    assert_all_echo(&mut existing, "before the flood");

    let flood: Vec<TcpStream> = (0..FLOOD).map(|_| connect(addr)).collect();
    let limit = server.fd_limit();
    wait_until(
        "the server to use every fd it may",
        Duration::from_secs(5),
        || server.open_fds() >= limit,
    );

    let cpu = server.cpu_used_over(CPU_WINDOW);
    eprintln!("saturated server used {cpu:?} of CPU in {CPU_WINDOW:?}");
    assert!(
        cpu < CPU_ALLOWED,
        "out of fds, the server used {cpu:?} of CPU in {CPU_WINDOW:?}: it is spinning"
    );
    assert_all_echo(&mut existing, "while out of fds");

    drop(flood);
    let mut fresh = connect(addr);
    fresh.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    assert_echoes(&mut fresh, b"a new connection after the flood");

    drop((existing, fresh));
    let (status, log) = server.stop();
    assert!(status.success(), "the server process failed ({status}):\n{log}");
    let warnings = log
        .lines()
        .filter(|l| l.contains("out of file descriptors"))
        .count();
    assert_eq!(warnings, 1, "one warning for the episode expected:\n{log}");
    assert!(
        log.lines().any(|l| l.contains("accepting again")),
        "no note of recovery:\n{log}"
    );
}

/// The server side: does nothing unless started by
/// [`server_survives_fd_exhaustion_and_recovers`] as its child process.
#[test]
fn emfile_child_server_process() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    limit_open_fds(evloop::sys::open_fds().expect("needs Linux /proc") as libc::rlim_t + FD_HEADROOM);
    env_logger::Builder::new()
        .filter_level(log::LevelFilter::Info)
        .target(env_logger::Target::Stderr)
        .init();

    let config = Config::default().idle_timeout(None);
    let event_loop = EventLoop::bind("127.0.0.1:0".parse().unwrap(), config, || Echo).unwrap();
    let handle = event_loop.handle();
    let mut stdout = std::io::stdout();
    writeln!(stdout, "PORT {}", handle.local_addr().port()).unwrap();
    stdout.flush().unwrap();

    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        handle.shutdown(Duration::ZERO);
    });
    event_loop.run().unwrap();
}

/// Echoes everything, zero-copy.
struct Echo;

impl Handler for Echo {
    fn on_data(&mut self, conn: &mut Conn<'_>, input: &mut BytesMut) {
        conn.write_bytes(input.split().freeze());
    }
}

/// Lowers this process's soft limit on open fds to `limit` (never above the
/// hard limit).
fn limit_open_fds(limit: libc::rlim_t) {
    let mut rlim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rlim` is a valid, writable rlimit.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rlim) }, 0);
    rlim.rlim_cur = limit.min(rlim.rlim_max);
    // SAFETY: `rlim` is a valid rlimit.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &rlim) }, 0);
}

/// The server's process, killed if the test fails before stopping it.
struct ChildServer {
    /// Where the server listens.
    addr: SocketAddr,
    /// The process.
    child: Child,
    /// Its stdin; closing it stops the server.
    stdin: Option<ChildStdin>,
    /// Collects its stderr, where the log goes.
    stderr: Option<JoinHandle<String>>,
}

impl ChildServer {
    /// Re-executes this test binary to run [`emfile_child_server_process`]
    /// and waits for the port it announces.
    fn spawn() -> ChildServer {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "emfile_child_server_process"])
            .args(["--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut log = String::new();
            let _ = stderr.read_to_string(&mut log);
            log
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut server = ChildServer {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            child,
            stdin,
            stderr: Some(stderr),
        };
        // libtest may put "test <name> ... " on the same line first.
        let mut line = String::new();
        while !line.contains("PORT ") {
            line.clear();
            let read = stdout.read_line(&mut line).unwrap();
            assert!(read > 0, "the server process exited without a port");
        }
        let port = line.split("PORT ").nth(1).unwrap().trim().parse().unwrap();
        server.addr.set_port(port);
        // Keep draining stdout so the child never blocks on it.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        server
    }

    /// The path of the child's entry `name` under /proc.
    fn proc_path(&self, name: &str) -> String {
        format!("/proc/{}/{name}", self.child.id())
    }

    /// The child's soft limit on open fds.
    fn fd_limit(&self) -> usize {
        let limits = std::fs::read_to_string(self.proc_path("limits")).unwrap();
        let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
        line["Max open files".len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// How many fds the child has open.
    fn open_fds(&self) -> usize {
        evloop::sys::ProcessStats::of(self.child.id()).unwrap().open_fds
    }

    /// The child's CPU time so far, user plus system, all threads.
    fn cpu_time(&self) -> Duration {
        evloop::sys::ProcessStats::of(self.child.id())
            .unwrap()
            .cpu
            .total()
    }

    /// The CPU time the child uses while `window` passes.
    fn cpu_used_over(&self, window: Duration) -> Duration {
        let before = self.cpu_time();
        std::thread::sleep(window);
        self.cpu_time() - before
    }

    /// Closes the child's stdin, which shuts the server down; waits for the
    /// process to exit and returns its status and everything it logged.
    fn stop(mut self) -> (ExitStatus, String) {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        let log = self.stderr.take().unwrap().join().unwrap();
        (status, log)
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Connects a blocking client with a read timeout.
fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect_timeout(&addr, READ_TIMEOUT).unwrap();
    stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Sends `message` and asserts that exactly it comes back.
#[track_caller]
fn assert_echoes(stream: &mut TcpStream, message: &[u8]) {
    stream.write_all(message).unwrap();
    let mut echo = vec![0; message.len()];
    if let Err(e) = stream.read_exact(&mut echo) {
        panic!("no echo of {:?}: {e}", String::from_utf8_lossy(message));
    }
    assert_eq!(echo, message);
}

/// Asserts that each stream echoes a message of its own.
#[track_caller]
fn assert_all_echo(streams: &mut [TcpStream], when: &str) {
    for (i, stream) in streams.iter_mut().enumerate() {
        assert_echoes(stream, format!("connection {i}, {when}").as_bytes());
    }
}

/// Polls `cond` every 5 ms; panics if it is still false after `limit`.
#[track_caller]
fn wait_until(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
