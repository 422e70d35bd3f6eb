//! The server's side of the scenario, in a child process of its own, and the
//! test's handle on that process.
//!
//! The fd limit is per process, so the server cannot share the test's: this
//! test binary re-executes itself, running only [`server_process`] with
//! `EVLOOP_EMFILE_CHILD` naming the [`Kind`] to serve. The child starts the
//! server, lowers its own fd limit to what it holds plus [`FD_HEADROOM`],
//! prints `PORT <port>`, and serves until its stdin closes; it then prints
//! `STATS accepted=.. backoffs=.. rejected=..` and exits. Its log goes to
//! stderr, one line per record, naming the thread. Should the test die, the
//! child's stdin closes with it and the child exits too.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use evloop::{Config, Server};

use super::common::{Echo, localhost, set_fd_limit};
use super::{FD_HEADROOM, KINDS, Kind};

/// Set in the environment of the child that runs the server, to the name of
/// its [`Kind`].
const CHILD_ENV: &str = "EVLOOP_EMFILE_CHILD";
/// The full name of [`server_process`], which the child runs alone.
const CHILD_TEST: &str = "child::server_process";

/// The server side: does nothing unless started by [`ChildServer::spawn`].
#[test]
fn server_process() {
    let Some(name) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let kind = KINDS.iter().find(|k| name == k.name).expect("a known kind");
    env_logger::Builder::new()
        .filter_level(log::LevelFilter::Info)
        .format(|buf, record| {
            let thread = std::thread::current();
            let thread = thread.name().unwrap_or("?");
            writeln!(buf, "{} [{thread}] {}", record.level(), record.args())
        })
        .target(env_logger::Target::Stderr)
        .init();

    let mut server = Server::new(localhost())
        .model(kind.model)
        .threads(kind.loops)
        .balance(kind.balance)
        .config(Config::default().idle_timeout(None));
    if let Some(cap) = kind.cap {
        server = server.max_connections(cap);
    }
    let handle = server.start(|| Echo).unwrap();
    set_fd_limit(evloop::sys::open_fds().expect("needs Linux /proc") + FD_HEADROOM);
    let mut stdout = std::io::stdout();
    writeln!(stdout, "PORT {}", handle.local_addr().port()).unwrap();
    stdout.flush().unwrap();

    let stopper = handle.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        stopper.shutdown(Duration::ZERO);
    });
    handle.join().unwrap();
    let stats = handle.stats();
    let (accepted, backoffs, rejected) = (stats.accepted, stats.accept_backoffs, stats.rejected);
    writeln!(
        stdout,
        "STATS accepted={accepted} backoffs={backoffs} rejected={rejected}"
    )
    .unwrap();
}

/// The server's process, killed if the test fails before stopping it.
pub struct ChildServer {
    /// Where the server listens.
    pub addr: SocketAddr,
    /// The process.
    child: Child,
    /// Its stdin; closing it stops the server.
    stdin: Option<ChildStdin>,
    /// Its stderr (the log) so far, and the thread that reads it.
    log: Followed,
    /// Its stdout after the port so far, and the thread that reads it.
    stdout: Followed,
}

/// What a process has written so far to one of its outputs, and the thread
/// that reads the rest, so that the process never blocks writing.
type Followed = (Arc<Mutex<String>>, Option<JoinHandle<()>>);

impl ChildServer {
    /// Re-executes this test binary to serve `kind` in [`server_process`]
    /// and waits for the port it announces.
    pub fn spawn(kind: Kind) -> ChildServer {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, kind.name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let log = follow(BufReader::new(child.stderr.take().unwrap()));
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        // libtest may put "test <name> ... " on the same line first.
        let mut line = String::new();
        while !line.contains("PORT ") {
            line.clear();
            let read = stdout.read_line(&mut line).unwrap();
            assert!(read > 0, "the server process exited without a port");
        }
        let port = line.split("PORT ").nth(1).unwrap().trim().parse().unwrap();
        ChildServer {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
            stdin,
            log,
            stdout: follow(stdout),
        }
    }

    /// How many lines the child has logged so far that contain `needle`.
    pub fn logged(&self, needle: &str) -> usize {
        count_lines(&self.log.0.lock().unwrap(), needle)
    }

    /// The child's soft limit on open fds, as the kernel reports it.
    pub fn fd_limit(&self) -> usize {
        let limits = std::fs::read_to_string(format!("/proc/{}/limits", self.child.id())).unwrap();
        let line = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
        let soft = line["Max open files".len()..].split_whitespace().next();
        soft.unwrap().parse().unwrap()
    }

    /// How many fds the child has open.
    pub fn open_fds(&self) -> usize {
        evloop::sys::ProcessStats::of(self.child.id()).unwrap().open_fds
    }

    /// The child's CPU time so far, user plus system, all threads.
    pub fn cpu_time(&self) -> Duration {
        let stats = evloop::sys::ProcessStats::of(self.child.id()).unwrap();
        stats.cpu.total()
    }

    /// Closes the child's stdin, which shuts the server down; waits for the
    /// process to exit and returns what it left behind.
    pub fn stop(mut self) -> Report {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        Report {
            status,
            log: finish(&mut self.log),
            stdout: finish(&mut self.stdout),
        }
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

/// What a stopped child left behind.
#[derive(Debug)]
pub struct Report {
    /// How the process ended.
    pub status: ExitStatus,
    /// Its stderr: the log.
    pub log: String,
    /// Its stdout after the port: its counters.
    pub stdout: String,
}

impl Report {
    /// How many lines of the log contain `needle`.
    pub fn logged(&self, needle: &str) -> usize {
        count_lines(&self.log, needle)
    }

    /// The counter `name` the child printed on its way out.
    #[track_caller]
    pub fn stat(&self, name: &str) -> u64 {
        let line = self.stdout.lines().find_map(|l| l.split("STATS ").nth(1));
        let line = line.unwrap_or_else(|| panic!("no counters printed:\n{}", self.stdout));
        let field = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='));
        field.and_then(|v| v.parse().ok()).expect("a counter")
    }
}

/// How many lines of `text` contain `needle`.
fn count_lines(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

/// Reads `output` line by line on a thread of its own, until its end.
fn follow(output: impl BufRead + Send + 'static) -> Followed {
    let text = Arc::new(Mutex::new(String::new()));
    let written = Arc::clone(&text);
    let reader = std::thread::spawn(move || {
        for line in output.lines().map_while(Result::ok) {
            *written.lock().unwrap() += &(line + "\n");
        }
    });
    (text, Some(reader))
}

/// Everything `output` held once its writer has exited.
fn finish(output: &mut Followed) -> String {
    if let Some(reader) = output.1.take() {
        reader.join().unwrap();
    }
    std::mem::take(&mut output.0.lock().unwrap())
}
